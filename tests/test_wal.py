"""The write-ahead log: round trips, recovery from torn and corrupt files, truncation, rolling,
group commit and failure handling.  Crashes are simulated by editing the files of a closed Wal,
which recovers exactly as it would after kill -9 (close() adds nothing but an fdatasync)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tessera.shard.wal import Wal
from tessera.shard.wal_format import (
    FILE_HEADER_SIZE,
    RECORD_HEADER_SIZE,
    parse_segment_name,
    segment_name,
)

# Small segments keep the tests fast (recovery reads a last segment to its end); tests of
# rolling use smaller ones still.
CAP = 256 * 1024


def payload(seq: int, size: int = 40) -> bytes:
    return (f"record {seq}:".encode() * (size // 8 + 1))[:size]


def segments(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if parse_segment_name(p.name) is not None)


def record_offset(index_in_file: int, sizes: list[int]) -> int:
    """Offset of the index-th record of a file whose records have these payload sizes."""
    return FILE_HEADER_SIZE + sum(RECORD_HEADER_SIZE + n for n in sizes[:index_in_file])


def read_all(wal: Wal, seq: int = 1) -> list[tuple[int, bytes]]:
    return list(wal.read_from(seq))


def test_round_trip(tmp_path: Path) -> None:
    with Wal(tmp_path / "wal", segment_capacity=CAP) as wal:
        assert (wal.first_seq, wal.last_seq) == (1, 0)
        assert read_all(wal) == []
        data = [payload(i, size) for i, size in enumerate([0, 1, 17, 1000, 5, 64 * 1024], 1)]
        seqs = [wal.append(d) for d in data]
        assert seqs == [1, 2, 3, 4, 5, 6]
        wal.sync(6)
        assert wal.append_and_sync(b"last") == 7
        assert (wal.first_seq, wal.last_seq) == (1, 7)
        expected = [*zip(seqs, data), (7, b"last")]
        assert read_all(wal) == expected
        assert read_all(wal, 4) == expected[3:]
        assert read_all(wal, 8) == []


def test_reopen_continues_the_sequence(tmp_path: Path) -> None:
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        for i in range(1, 11):
            wal.append(payload(i))
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert (wal.first_seq, wal.last_seq) == (1, 10)
        assert read_all(wal) == [(i, payload(i)) for i in range(1, 11)]
        assert wal.append_and_sync(payload(11)) == 11
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert [s for s, _ in read_all(wal)] == list(range(1, 12))


def test_directory_is_locked_while_open(tmp_path: Path) -> None:
    wal = Wal(tmp_path, segment_capacity=CAP)
    with pytest.raises(BlockingIOError):
        Wal(tmp_path, segment_capacity=CAP)
    wal.close()
    Wal(tmp_path, segment_capacity=CAP).close()


def test_rolling_over_many_files(tmp_path: Path) -> None:
    sizes = [(i * 37) % 150 for i in range(1, 401)]
    with Wal(tmp_path, segment_capacity=512) as wal:
        for i, size in enumerate(sizes, 1):
            assert wal.append(payload(i, size)) == i
            if i % 50 == 0:
                wal.sync(i)
        expected = [(i, payload(i, size)) for i, size in enumerate(sizes, 1)]
        assert read_all(wal) == expected
        assert read_all(wal, 333) == expected[332:]
    files = segments(tmp_path)
    assert len(files) > 50
    # Each file is named after its first record, and records run on without a gap.
    assert parse_segment_name(files[0].name) == 1
    with Wal(tmp_path, segment_capacity=512) as wal:
        assert read_all(wal) == expected
        assert wal.append(b"more") == 401


def test_large_record_gets_a_file_of_its_own_size(tmp_path: Path) -> None:
    big = os.urandom(50_000)
    with Wal(tmp_path, segment_capacity=4096) as wal:
        wal.append(b"small")
        assert wal.append_and_sync(big) == 2
        assert wal.append(b"after") == 3
    file_of_big = tmp_path / segment_name(2)
    assert file_of_big.stat().st_size == FILE_HEADER_SIZE + RECORD_HEADER_SIZE + len(big)
    with Wal(tmp_path, segment_capacity=4096) as wal:
        assert read_all(wal) == [(1, b"small"), (2, big), (3, b"after")]


def test_truncate_before_then_reopen(tmp_path: Path) -> None:
    with Wal(tmp_path, segment_capacity=1024) as wal:
        for i in range(1, 201):
            wal.append(payload(i, 100))  # 116 bytes a record: 8 records a file
        before = len(segments(tmp_path))
        wal.truncate_before(100)
        first = wal.first_seq
        # Whole files below 100 are gone, the file holding 100 stays whole.
        assert first <= 100 < first + 8
        assert len(segments(tmp_path)) < before
        assert read_all(wal)[0] == (first, payload(first, 100))
        assert [s for s, _ in read_all(wal, 100)] == list(range(100, 201))
        wal.truncate_before(50)  # going back is a no-op
        assert wal.first_seq == first
        with pytest.raises(ValueError):
            wal.truncate_before(202)
    with Wal(tmp_path, segment_capacity=1024) as wal:
        assert (wal.first_seq, wal.last_seq) == (first, 200)
        assert [s for s, _ in read_all(wal)] == list(range(first, 201))
        # Truncating everything keeps the current file and with it the sequence.
        wal.truncate_before(201)
        assert len(segments(tmp_path)) == 1
    with Wal(tmp_path, segment_capacity=1024) as wal:
        assert wal.last_seq == 200
        assert wal.append(b"x") == 201


def test_unlinks_undone_by_a_crash_are_redone(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    with Wal(tmp_path / "wal", segment_capacity=1024) as wal:
        for i in range(1, 101):
            wal.append(payload(i, 100))
        shutil.copytree(tmp_path / "wal", saved)
        wal.truncate_before(60)
        first = wal.first_seq
    # A crash before the directory fsync can bring back any of the unlinked files.
    for path in segments(saved)[::2]:
        if not (tmp_path / "wal" / path.name).exists():
            shutil.copy(path, tmp_path / "wal" / path.name)
    with Wal(tmp_path / "wal", segment_capacity=1024) as wal:
        assert (wal.first_seq, wal.last_seq) == (first, 100)
        assert [s for s, _ in read_all(wal)] == list(range(first, 101))


def test_lost_floor_file_keeps_the_newer_records(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    with Wal(tmp_path / "wal", segment_capacity=1024) as wal:
        for i in range(1, 101):
            wal.append(payload(i, 100))
        shutil.copytree(tmp_path / "wal", saved)
        wal.truncate_before(60)
        first = wal.first_seq
    (tmp_path / "wal" / "first_seq").unlink()
    shutil.copy(segments(saved)[0], tmp_path / "wal")  # resurrected, with a gap after it
    with Wal(tmp_path / "wal", segment_capacity=1024) as wal:
        assert (wal.first_seq, wal.last_seq) == (first, 100)


def test_a_file_cut_at_a_record_boundary_is_set_aside_not_deleted(tmp_path: Path) -> None:
    """A non-last file cut where a record starts ends cleanly before a gap, as leftovers of a
    truncation would: its bytes are moved to damaged/, never deleted (the shard then tells
    whether its checkpoint covers the gap)."""
    with Wal(tmp_path / "wal", segment_capacity=1024) as wal:
        for i in range(1, 101):
            wal.append(payload(i, 100))
    files = segments(tmp_path / "wal")
    assert len(files) >= 3
    first_bytes = files[0].read_bytes()
    os.truncate(files[0], record_offset(2, [100, 100]))  # records 1 and 2 left
    with Wal(tmp_path / "wal", segment_capacity=1024) as wal:
        assert wal.first_seq == parse_segment_name(files[1].name)
        assert wal.last_seq == 100
    kept = list((tmp_path / "damaged").glob(f"wal-*-{files[0].name}"))
    assert len(kept) == 1 and first_bytes.startswith(kept[0].read_bytes())
    assert not files[0].exists()
    # The same file set aside again (a second start within the same second): a second copy,
    # the first one never replaced.
    files[0].write_bytes(kept[0].read_bytes())
    with Wal(tmp_path / "wal", segment_capacity=1024) as wal:
        assert wal.last_seq == 100
    kept = list((tmp_path / "damaged").glob(f"wal-*-{files[0].name}*"))
    assert len(kept) == 2


def test_tail_cut_mid_record(tmp_path: Path) -> None:
    sizes = [30, 200, 75, 300]
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        for i, size in enumerate(sizes, 1):
            wal.append(payload(i, size))
    (path,) = segments(tmp_path)
    os.truncate(path, record_offset(3, sizes) + RECORD_HEADER_SIZE + 100)
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert wal.last_seq == 3
        assert read_all(wal) == [(i, payload(i, sizes[i - 1])) for i in (1, 2, 3)]
        # The shortened file still takes records where they fit, then rolls.
        assert wal.append(b"four") == 4
        assert wal.append(payload(5, 500)) == 5
        assert wal.append_and_sync(b"six") == 6
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert [s for s, _ in read_all(wal)] == [1, 2, 3, 4, 5, 6]
        assert read_all(wal, 4) == [(4, b"four"), (5, payload(5, 500)), (6, b"six")]


def test_tail_cut_inside_a_record_header(tmp_path: Path) -> None:
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        wal.append(b"one")
        wal.append(b"two")
    (path,) = segments(tmp_path)
    os.truncate(path, record_offset(1, [3]) + 5)
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert read_all(wal) == [(1, b"one")]
        assert wal.append(b"two again") == 2


@pytest.mark.parametrize("where", ["payload", "length", "crc", "seq"])
def test_overwritten_last_record(tmp_path: Path, where: str) -> None:
    sizes = [50, 50, 50]
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        for i, size in enumerate(sizes, 1):
            wal.append(payload(i, size))
    (path,) = segments(tmp_path)
    at = record_offset(2, sizes) + {"length": 1, "crc": 5, "seq": 9, "payload": 40}[where]
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(b"\xa5\x5a")
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert read_all(wal) == [(1, payload(1, 50)), (2, payload(2, 50))]
        assert wal.append_and_sync(b"three") == 3
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert read_all(wal) == [(1, payload(1, 50)), (2, payload(2, 50)), (3, b"three")]


@pytest.mark.parametrize(
    "bad",
    [[2], [2, 3], [1, 2, 3], [1, 3], [0, 2, 4]],
    ids=["one", "two", "three", "apart", "three apart"],
)
def test_damaged_records_among_intact_ones_are_reported_not_cut_as_a_tail(
    tmp_path: Path, bad: list[int]
) -> None:
    """Bit rot in records followed by intact ones is damage, however many bad records run
    together or lie apart: a torn tail has nothing intact after it. The loss reported runs to
    the file's last intact record. (Two in a row were taken for a torn tail, and a second bad
    record further on ended the report there: the records after it were dropped silently.)"""
    sizes = [50] * 6
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        for i, size in enumerate(sizes, 1):
            wal.append(payload(i, size))
    (path,) = segments(tmp_path)
    with open(path, "r+b") as f:
        for index in bad:
            f.seek(record_offset(index, sizes) + RECORD_HEADER_SIZE + 10)
            f.write(b"\xa5")
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert wal.last_seq == bad[0]
        (damage,) = wal.damage
        assert (damage.first_lost, damage.last_intact) == (bad[0] + 1, 6)
        assert f"operations {bad[0] + 1}..6 lost" in str(damage)


def test_stale_records_after_the_cut_never_come_back(tmp_path: Path) -> None:
    # A crash can leave a later page on disk while an earlier one was lost: record 3 reads
    # as zeros but 4 and 5 are intact.  Rewriting the same record 3 (same bytes, so the same
    # crc) must not make 4 and 5 valid again: recovery zeroes what follows the cut.
    sizes = [60] * 5
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        for i in range(1, 6):
            wal.append(payload(i, 60))
    (path,) = segments(tmp_path)
    with open(path, "r+b") as f:
        f.seek(record_offset(2, sizes))
        f.write(bytes(RECORD_HEADER_SIZE + 60))
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert wal.last_seq == 2
        assert wal.append_and_sync(payload(3, 60)) == 3
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert wal.last_seq == 3
        assert wal.append(b"new four") == 4


def test_corrupt_record_in_an_earlier_file_ends_the_log(tmp_path: Path) -> None:
    with Wal(tmp_path, segment_capacity=1024) as wal:
        for i in range(1, 41):
            wal.append(payload(i, 100))  # 8 records a file: files start at 1, 9, 17, 25, 33
    files = segments(tmp_path)
    assert [parse_segment_name(p.name) for p in files] == [1, 9, 17, 25, 33]
    with open(files[1], "r+b") as f:  # record 12, the 4th of the file starting at 9
        f.seek(record_offset(3, [100] * 8) + 50)
        f.write(b"XX")
    with Wal(tmp_path, segment_capacity=1024) as wal:
        assert wal.last_seq == 11
        assert segments(tmp_path) == files[:2]
        assert wal.append(b"twelve") == 12
        assert [s for s, _ in read_all(wal)] == list(range(1, 13))


def test_bad_header_in_the_only_file_keeps_the_sequence(tmp_path: Path) -> None:
    with Wal(tmp_path, segment_capacity=1024) as wal:
        for i in range(1, 30):
            wal.append(payload(i, 100))
        wal.truncate_before(29)
    (path,) = segments(tmp_path)
    first = parse_segment_name(path.name)
    assert first is not None
    with open(path, "r+b") as f:
        f.write(b"garbage!")
    with Wal(tmp_path, segment_capacity=1024) as wal:
        assert wal.last_seq == first - 1
        assert read_all(wal) == []
        assert wal.append(b"x") == first


def test_concurrent_appenders_share_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads, per_thread = 8, 40
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        real = os.fdatasync
        calls: list[int] = []

        def slow_fdatasync(fd: int) -> None:
            calls.append(fd)
            real(fd)
            threading.Event().wait(0.002)  # a slow disk makes the batching visible

        monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
        results: list[list[tuple[int, bytes]]] = [[] for _ in range(threads)]
        start = threading.Barrier(threads)

        def writer(t: int) -> None:
            start.wait()
            for i in range(per_thread):
                data = f"thread {t} item {i}".encode()
                results[t].append((wal.append_and_sync(data), data))

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        total = threads * per_thread
        written = sorted(r for rs in results for r in rs)
        assert [s for s, _ in written] == list(range(1, total + 1))
        assert read_all(wal) == written
        # One fdatasync per record would be `total`; a leader covers everyone waiting.
        assert len(calls) < total / 3, len(calls)

        # A seq that is already durable costs nothing.
        before = len(calls)
        wal.sync(total)
        wal.sync(1)
        assert len(calls) == before
        wal.append(b"one more")
        wal.sync(total + 1)
        assert len(calls) == before + 1
        with pytest.raises(ValueError):
            wal.sync(total + 2)


def test_full_disk_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Wal(tmp_path, segment_capacity=1024) as wal:
        for i in range(1, 8):
            wal.append(payload(i, 100))
        files = segments(tmp_path)

        def no_space(fd: int, offset: int, length: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "posix_fallocate", no_space)
        wal.append(payload(8, 100))  # still fits in the current file
        with pytest.raises(OSError) as info:
            wal.append(payload(9, 100))  # needs a new file
        assert info.value.errno == errno.ENOSPC
        assert wal.last_seq == 8
        assert segments(tmp_path) == files
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        wal.sync(8)
        monkeypatch.undo()
        assert wal.append(payload(9, 100)) == 9
    with Wal(tmp_path, segment_capacity=1024) as wal:
        assert read_all(wal) == [(i, payload(i, 100)) for i in range(1, 10)]


def test_failed_fdatasync_poisons_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = Wal(tmp_path, segment_capacity=CAP)
    wal.append_and_sync(b"one")
    wal.append(b"two")

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    with pytest.raises(OSError):
        wal.sync(2)
    monkeypatch.undo()
    # fsync after a failed fsync may report success for pages the kernel dropped.
    with pytest.raises(OSError):
        wal.sync(2)
    with pytest.raises(OSError):
        wal.append(b"three")
    wal.close()
    with Wal(tmp_path, segment_capacity=CAP) as wal:
        assert wal.last_seq == 2
        assert wal.append_and_sync(b"three") == 3


def test_read_from_is_a_snapshot_that_survives_truncation(tmp_path: Path) -> None:
    with Wal(tmp_path, segment_capacity=1024) as wal:
        for i in range(1, 41):
            wal.append(payload(i, 100))
        reader = wal.read_from(1)
        assert next(reader) == (1, payload(1, 100))
        wal.truncate_before(41)
        wal.append(b"forty-one")
        assert [s for s, _ in reader] == list(range(2, 41))
        assert read_all(wal, 41) == [(41, b"forty-one")]
        abandoned = wal.read_from(1)
        next(abandoned)
        abandoned.close()


def test_closed_wal_refuses_use(tmp_path: Path) -> None:
    wal = Wal(tmp_path, segment_capacity=CAP)
    wal.append(b"x")
    wal.close()
    wal.close()
    with pytest.raises(ValueError):
        wal.append(b"y")
    with pytest.raises(ValueError):
        read_all(wal)


_CRASH_CHILD = """
import sys, threading
from pathlib import Path
from tessera.shard.wal import Wal

wal = Wal(Path(sys.argv[1]), segment_capacity=64 * 1024)
lock = threading.Lock()

def writer(t):
    while True:
        seq = wal.append_and_sync(b"%d:" % t + bytes(3000))
        with lock:
            print(seq, flush=True)

for t in range(8):
    threading.Thread(target=writer, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASH_CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert child.stdout is not None
    acked = 0
    for line in child.stdout:
        acked = max(acked, int(line))
        if acked >= 300:  # a few dozen rolls
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert acked >= 300
    with Wal(tmp_path, segment_capacity=64 * 1024) as wal:
        assert wal.last_seq >= acked
        records = read_all(wal)
        assert [s for s, _ in records] == list(range(1, wal.last_seq + 1))
        assert all(p.endswith(bytes(3000)) for _, p in records)
        assert wal.append(b"after") == wal.last_seq


def test_a_sync_waiting_when_the_log_closes_returns_once_close_made_it_durable(
    tmp_path: Path,
) -> None:
    """A writer whose record was appended, and which still waits for its sync when the log
    is closed (its collection deleted meanwhile), is answered as durable: close's own
    fdatasync made it so. Appends after the close are refused."""
    wal = Wal(tmp_path / "wal", segment_capacity=CAP)
    seq = wal.append(b"acknowledged")
    wal.close()
    wal.sync(seq)
    with pytest.raises(ValueError, match="closed"):
        wal.append(b"late")
    with Wal(tmp_path / "wal", segment_capacity=CAP) as again:
        assert read_all(again) == [(seq, b"acknowledged")]


def test_wal_segments_of_an_absurd_capacity_are_bounded() -> None:
    """Qdrant takes any `wal_capacity_mb` >= 1; a segment is preallocated whole, and 2^64 - 1
    MB made every write of the collection fail (the preallocation overflowed)."""
    from tessera.collection_config import parse_create_collection
    from tessera.shard.shard import MAX_WAL_SEGMENT, wal_segment_bytes

    def capacity(mb: int | None) -> int:
        body: dict[str, object] = {"vectors": {"size": 2, "distance": "Dot"}}
        if mb is not None:
            body["wal_config"] = {"wal_capacity_mb": mb}
        return wal_segment_bytes(parse_create_collection(body))

    assert capacity(None) == 32 << 20
    assert capacity(64) == 64 << 20
    assert capacity(2**64 - 1) == capacity(2**43) == MAX_WAL_SEGMENT == 1 << 30


def test_an_absurd_flush_interval_keeps_the_checkpoint_thread(tmp_path: Path) -> None:
    """`flush_interval_sec: 2^64 - 1` (Qdrant takes it) overflowed the checkpoint thread's
    wait and killed it: that collection was never checkpointed again."""
    import time

    from tessera.collection_config import parse_create_collection
    from tessera.shard.shard import LocalShard

    config = parse_create_collection(
        {
            "vectors": {"size": 2, "distance": "Dot"},
            "optimizers_config": {"flush_interval_sec": 2**64 - 1},
        }
    )
    shard = LocalShard(tmp_path / "shard", config)
    try:
        time.sleep(0.3)
        assert shard._flusher.is_alive()
    finally:
        shard.close()


def test_floor_of_an_earlier_version_does_not_vouch_for_files(tmp_path: Path) -> None:
    """A floor this version writes says the log keeps a file from it on, so a log with none
    beside a checkpoint has lost files; one an earlier version wrote (flags 0: it left no
    file after a restart) says nothing, and such a log is not taken for a damaged one."""
    from tessera.shard.wal_format import FLOOR_NAME, encode_floor, floor_keeps_file

    wal_dir = tmp_path / "wal"
    with Wal(wal_dir) as wal:
        wal.append_and_sync(b"x")
        wal.restart_at(5)
    assert sorted(p.name for p in wal_dir.glob("*.log")) == [f"{5:020d}.log"]
    assert floor_keeps_file((wal_dir / FLOOR_NAME).read_bytes())
    for log_file in wal_dir.glob("*.log"):
        log_file.unlink()
    with Wal(wal_dir) as wal:
        assert (wal.found_files, wal.files_kept) == (False, True)
    old = bytearray(encode_floor(5))
    old[12:16] = bytes(4)  # the flags an earlier version wrote
    (wal_dir / FLOOR_NAME).write_bytes(bytes(old))
    with Wal(wal_dir) as wal:
        assert (wal.found_files, wal.files_kept, wal.last_seq) == (False, False, 4)
