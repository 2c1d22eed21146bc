"""`tessera check --storage DIR`: verify every checksum of a storage directory offline.

Reads only; changes nothing. For each collection: the config, every manifest generation and
every file it names (size and crc32), and every WAL segment (header, and every record against
the CRC chain). Prints one line per finding and a summary; the exit status is 0 when
everything checks out and 1 otherwise. Run it on a stopped server (a running one may be
rotating files underneath).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tessera.collection.collection import read_config
from tessera.fileformat import FormatError
from tessera.shard import operations as ops
from tessera.shard.shard import LOSSES_FILE, manifest_generations, verify_checkpoint
from tessera.shard.wal import scan_wal_file
from tessera.shard.wal_format import (
    FLOOR_NAME,
    decode_floor,
    floor_keeps_file,
    parse_segment_name,
)


def check_storage(storage: Path, out: list[str]) -> bool:
    """Appends report lines to `out`; True when everything is intact."""
    root = storage / "collections"
    if not root.is_dir():
        out.append(f"FAIL {storage}: no collections directory")
        return False
    ok = True
    names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(":"))
    for name in names:
        ok &= _check_collection(root / name, name, out)
    out.append(f"{len(names)} collection(s) checked: " + ("all intact" if ok else "damage found"))
    return ok


def _check_collection(path: Path, name: str, out: list[str]) -> bool:
    ok = True
    try:
        read_config(path)
    except FormatError as exc:
        out.append(f"FAIL {name}: config: {exc}")
        ok = False
    shard = path / "shard"
    if not shard.is_dir():
        # A collection whose creation a crash interrupted after its config was in place:
        # the server makes the empty shard when it loads it.
        out.append(f"{'ok  ' if ok else 'FAIL'} {name}: no shard yet (made at the next start)")
        return ok
    if (shard / "manifest.json").exists():
        out.append(f"FAIL {name}: {shard / 'manifest.json'} is from an older Tessera (pickle)")
        ok = False
    gens = manifest_generations(shard)
    intact_gens = 0
    newest_seq = 0  # the operation the newest intact checkpoint holds up to
    for gen in gens:
        try:
            manifest = verify_checkpoint(shard, gen)
            files = sum(len(v) for e in manifest["segments"] for v in e["files"].values())
            out.append(
                f"ok   {name}: checkpoint {gen} (operation {manifest['seq']}, {files} files)"
            )
            intact_gens += 1
            newest_seq = max(newest_seq, int(manifest["seq"]))
        except (FormatError, KeyError, TypeError, ValueError) as exc:
            out.append(f"FAIL {name}: checkpoint {gen}: {exc}")
            ok = False
    records, wal_ok = check_wal(shard / "wal", name, newest_seq, out)
    ok &= wal_ok
    if (shard / "damaged" / LOSSES_FILE).exists():  # an earlier recovery lost operations
        out.append(f"FAIL {name}: lost operations reported in {shard / 'damaged' / LOSSES_FILE}")
        ok = False
    out.append(
        f"{'ok  ' if ok else 'FAIL'} {name}: {intact_gens}/{len(gens)} checkpoint(s) intact, "
        f"{records} WAL record(s) readable"
    )
    return ok


def check_wal(
    wal: Path,
    name: str,
    newest_seq: int,
    out: list[str],
    decode: Callable[[bytes], object] | None = ops.decode,
) -> tuple[int, bool]:
    """(records read back, whether the log is whole): every file's records, and no
    operation after the newest checkpoint (`newest_seq`) missing: a log keeps a file from
    its first record on, and its files follow one another without gaps where the
    checkpoint does not hold what the gap would (see the server's recovery)."""
    if not wal.is_dir():
        return 0, True
    floor_path = wal / FLOOR_NAME
    floor_bytes = floor_path.read_bytes() if floor_path.exists() else None
    floor = decode_floor(floor_bytes) if floor_bytes is not None else None
    # a floor an earlier version wrote says nothing of whether the log keeps a file
    files_kept = floor_bytes is None or floor_keeps_file(floor_bytes)
    expected = max(floor or 1, 1)  # the first operation the log must hold
    records = 0
    ok = True
    found = False
    for entry in sorted(os.scandir(wal), key=lambda e: e.name):
        first = parse_segment_name(entry.name)
        if first is None:
            continue
        found = True
        if first > expected and first - 1 > newest_seq:
            out.append(
                f"FAIL {name}: WAL files missing: operations {expected}..{first - 1} are gone "
                f"(the checkpoint holds up to {newest_seq})"
            )
            ok = False
        problem, count = scan_wal_file(Path(entry.path), first, decode)
        records += count
        expected = max(expected, first + count)
        if problem is not None:
            out.append(f"FAIL {name}: WAL {entry.name}: {problem}")
            ok = False
    if ok and newest_seq and ((not found and files_kept) or expected - 1 < newest_seq):
        # A checkpoint keeps the log's newest file: a log that has none, or ends before
        # the checkpoint, lost whatever was acknowledged after it.
        held = f"ends at operation {expected - 1}" if found else "has no file"
        out.append(
            f"FAIL {name}: WAL files missing: the log {held} but the checkpoint holds "
            f"operations up to {newest_seq}; operations acknowledged after it, if any, are lost"
        )
        ok = False
    return records, ok
