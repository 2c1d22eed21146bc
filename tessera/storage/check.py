"""`tessera check --storage DIR`: verify every checksum of a storage directory offline.

Reads only; changes nothing. For each collection: the config, every manifest generation and
every file it names (size and crc32), and every WAL segment (header, and every record against
the CRC chain). Prints one line per finding and a summary; the exit status is 0 when
everything checks out and 1 otherwise. Run it on a stopped server (a running one may be
rotating files underneath).
"""

from __future__ import annotations

import os
from pathlib import Path

from tessera.collection.collection import read_config
from tessera.fileformat import FormatError
from tessera.shard import operations as ops
from tessera.shard.shard import LOSSES_FILE, manifest_generations, verify_checkpoint
from tessera.shard.wal import scan_wal_file
from tessera.shard.wal_format import FLOOR_NAME, decode_floor, parse_segment_name


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
        out.append(f"FAIL {name}: no shard directory")
        return False
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
    wal = shard / "wal"
    records = 0
    wal_ok = True
    reach = 0  # the last operation the log holds (or, with no files, its floor's predecessor)
    if wal.is_dir():
        floor = decode_floor((wal / FLOOR_NAME).read_bytes()) if (wal / FLOOR_NAME).exists() else 0
        reach = max((floor or 1) - 1, 0)
        for entry in sorted(os.scandir(wal), key=lambda e: e.name):
            first = parse_segment_name(entry.name)
            if first is None:
                continue
            problem, count = scan_wal_file(Path(entry.path), first, ops.decode)
            records += count
            reach = max(reach, first + count - 1)
            if problem is not None:
                out.append(f"FAIL {name}: WAL {entry.name}: {problem}")
                wal_ok = False
    if wal_ok and reach < newest_seq:
        # A checkpoint keeps the log's newest file: a log that ends before the checkpoint
        # lost files, and with them whatever was acknowledged after the checkpoint.
        out.append(
            f"FAIL {name}: WAL files missing: the log ends at operation {reach}, before the "
            f"checkpoint's {newest_seq}; operations acknowledged after it, if any, are lost"
        )
        wal_ok = False
    ok &= wal_ok
    if (shard / "damaged" / LOSSES_FILE).exists():  # an earlier recovery lost operations
        out.append(f"FAIL {name}: lost operations reported in {shard / 'damaged' / LOSSES_FILE}")
        ok = False
    out.append(
        f"{'ok  ' if ok else 'FAIL'} {name}: {intact_gens}/{len(gens)} checkpoint(s) intact, "
        f"{records} WAL record(s) readable"
    )
    return ok
