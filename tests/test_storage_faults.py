"""Fault injection in-process: fsync failing with EIO and the disk filling up in the middle of a
checkpoint or a WAL write. Nothing acknowledged is lost, nothing unwritten is served, reads go
on, and a failed fsync is never retried as if the data were safe."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tessera.fileformat as fileformat
from tessera.collection import writes
from tessera.engine import Engine
from tessera.errors import ServiceUnavailable
from tessera.shard import optimizer as optimizer_module

DIM = 8


def _vectors(ids: list[int]) -> np.ndarray[Any, Any]:
    return np.stack([np.random.default_rng(i).random(DIM).astype(np.float32) for i in ids])


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "storage")
    eng.create_collection(
        "c",
        {
            "vectors": {"size": DIM, "distance": "Dot"},
            "optimizers_config": {"flush_interval_sec": 3600, "indexing_threshold": 0},
        },
    )
    yield eng
    eng.close()


def _upsert(engine: Engine, ids: list[int]) -> None:
    engine.upsert_arrays("c", ids, _vectors(ids), [{"n": i} for i in ids])


def _crash_copy(src: Path, dst: Path) -> Path:
    """The storage as a crash right now would leave it (kill -9: the page cache survives)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("lock"))
    return dst


def _assert_exactly(storage: Path, ids: list[int]) -> None:
    eng = Engine(storage)
    try:
        collection = eng.toc.get("c")
        assert collection.failure is None, collection.failure
        with collection.shard.read() as holder:
            assert holder.live_count() == len(ids)
            for pid in ids:
                found = holder.locate(pid)
                assert found is not None, pid
                segment, off = found
                assert np.allclose(segment.vector_at(off, ""), _vectors([pid])[0])
                assert segment.payload_at(off) == {"n": pid}
    finally:
        eng.close()


def _failing_fsync_under(marker: str, exc: OSError) -> Callable[[int], None]:
    real = os.fsync

    def fsync(fd: int) -> None:
        if marker in os.readlink(f"/proc/self/fd/{fd}"):
            raise exc
        real(fd)

    return fsync


def test_fsync_eio_during_a_checkpoint_loses_nothing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upsert(engine, list(range(100)))
    engine.toc.get("c").shard.flush()
    _upsert(engine, list(range(100, 200)))
    monkeypatch.setattr(os, "fsync", _failing_fsync_under("segments", OSError(errno.EIO, "EIO")))
    with pytest.raises(OSError):
        engine.toc.get("c").shard.flush()
    # Reads go on, and writes (their WAL is intact) too.
    _upsert(engine, [200])
    storage = engine.toc.root.parent
    _assert_exactly(_crash_copy(storage, tmp_path / "after-eio"), list(range(201)))
    monkeypatch.undo()
    # The next checkpoint rewrites everything rather than trusting the failed files.
    engine.toc.get("c").shard.flush()
    _assert_exactly(_crash_copy(storage, tmp_path / "after-retry"), list(range(201)))


def test_disk_full_in_the_middle_of_a_checkpoint_loses_nothing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upsert(engine, list(range(300)))
    real = fileformat.write_array_file
    calls = {"n": 0}

    def write_array_file(*args: Any, **kwargs: Any) -> tuple[int, int]:
        calls["n"] += 1
        if calls["n"] == 2:  # the first file is written, the second finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr("tessera.segment.persist.write_array_file", write_array_file)
    with pytest.raises(OSError):
        engine.toc.get("c").shard.flush()
    # Reported (red, the reason) until a checkpoint succeeds, as Qdrant reports its
    # optimizer errors.
    info = engine.toc.get("c").info()
    assert info.status == "red"
    assert info.damage == ["Checkpoint failed: No space left on device (os error 28)"]
    shard_dir = engine.toc.root / "c" / "shard"
    assert not list(shard_dir.glob("manifest.*.json")), "a checkpoint claimed half its files"
    storage = engine.toc.root.parent
    _assert_exactly(_crash_copy(storage, tmp_path / "after-enospc"), list(range(300)))
    monkeypatch.undo()
    engine.toc.get("c").shard.flush()
    assert engine.toc.get("c").info().damage == []
    assert len(list(shard_dir.glob("manifest.*.json"))) == 1
    _assert_exactly(_crash_copy(storage, tmp_path / "after-retry"), list(range(300)))


def test_wal_fsync_eio_refuses_writes_and_keeps_reads(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upsert(engine, list(range(50)))

    def fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    with pytest.raises(ServiceUnavailable):
        _upsert(engine, [50])
    monkeypatch.undo()
    # Never retried as if the data were safe: the shard refuses writes until reloaded.
    with pytest.raises(ServiceUnavailable, match="refused"):
        _upsert(engine, [51])
    hits = engine.search("c", _vectors([7])[0], limit=3, exact=True)
    assert hits
    storage = engine.toc.root.parent
    copy = _crash_copy(storage, tmp_path / "after-wal-eio")
    eng = Engine(copy)
    try:
        with eng.toc.get("c").shard.read() as holder:
            live = holder.live_count()
    finally:
        eng.close()
    # Everything acknowledged is there; the refused write may or may not have reached disk.
    assert live in (50, 51)
    _upsert_after_restart(copy)


def _upsert_after_restart(storage: Path) -> None:
    eng = Engine(storage)
    try:
        _upsert(eng, [1000])
    finally:
        eng.close()


def test_a_pinned_checkpoint_keeps_its_files_until_released(engine: Engine) -> None:
    shard = engine.toc.get("c").shard
    _upsert(engine, list(range(100)))
    gen, manifest = shard.pin_checkpoint()
    pinned = shard.path / f"manifest.{gen:020d}.json"
    files = [
        shard.path / "segments" / entry["id"] / f["name"]
        for entry in manifest["segments"]
        for fs in entry["files"].values()
        for f in fs
    ]
    assert pinned.exists() and files and all(f.exists() for f in files)
    for round_ in range(4):  # more generations than are kept
        _upsert(engine, [1000 + round_])
        shard.flush()
    assert pinned.exists() and all(f.exists() for f in files)
    # Recovery could start from the pinned generation: the WAL still reaches back to it.
    assert shard.wal.first_seq <= int(manifest["seq"]) + 1
    shard.unpin_checkpoint(gen)
    assert not pinned.exists()


def _files_of(shard: Any, manifest: dict[str, Any]) -> list[Path]:
    return [
        shard.path / "segments" / entry["id"] / f["name"]
        for entry in manifest["segments"]
        for fs in entry["files"].values()
        for f in fs
    ]


def test_a_dropped_payload_index_keeps_the_files_of_pinned_and_kept_checkpoints(
    engine: Engine,
) -> None:
    """Dropping (or rebuilding) a payload index must not take its file from a checkpoint
    still kept: a snapshot reading its pinned one answered 500 on the missing file, and a
    fallback generation lost it (the segment dropped the component from the kept manifest,
    which it shared)."""
    shard = engine.toc.get("c").shard
    engine.create_field_index("c", "n", "integer")
    _upsert(engine, list(range(100)))
    gen, manifest = shard.pin_checkpoint()
    files = _files_of(shard, manifest)
    assert any(f.name.startswith("fidx") for f in files)
    engine.write("c", writes.delete_field_index("n"))
    for round_ in range(3):  # more generations than are kept
        _upsert(engine, [1000 + round_])
        shard.flush(force=True)
        missing = [f.name for f in files if not f.exists()]
        assert not missing, (round_, missing)
    shard.unpin_checkpoint(gen)
    engine.create_field_index("c", "n", "integer")
    shard.flush(force=True)
    engine.write("c", writes.delete_field_index("n"))
    shard.flush(force=True)
    # Every generation kept on disk (the fallbacks of a damaged newest one) is whole.
    for kept_gen, _, kept in shard._kept:
        missing = [f.name for f in _files_of(shard, kept) if not f.exists()]
        assert not missing, (kept_gen, missing)


def test_free_space_is_read_again_near_the_reserve_and_every_second(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A free-space reading stands for the writes of the next second only while they leave
    three reserves free; nearer the limit, and after a second, every write reads again, and
    a write the disk cannot hold is refused before it is logged."""
    import tessera.shard.shard as shard_module

    shard = engine.toc.get("c").shard
    reserve = shard._reserve
    free = {"bytes": 100 * reserve, "reads": 0}
    clock = {"now": 1000.0}

    def disk_usage(path: Any) -> Any:
        free["reads"] += 1
        return shutil._ntuple_diskusage(10**15, 0, free["bytes"])  # type: ignore[attr-defined]

    monkeypatch.setattr(shard_module.shutil, "disk_usage", disk_usage)

    class Clock:  # the shard module's `time`, its monotonic clock moved by hand
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        def monotonic(self) -> float:
            return clock["now"]

    monkeypatch.setattr(shard_module, "time", Clock())
    _upsert(engine, [1])
    _upsert(engine, [2])
    _upsert(engine, [3])
    assert free["reads"] == 1  # plenty of room: one reading for the three writes
    clock["now"] += 1.5
    _upsert(engine, [4])
    assert free["reads"] == 2  # a second later: read again
    free["bytes"] = 3 * reserve + 10  # near the limit: every write reads
    clock["now"] += 1.5
    _upsert(engine, [5])
    _upsert(engine, [6])
    assert free["reads"] == 4
    free["bytes"] = reserve  # full: refused, nothing logged
    with caplog.at_level(logging.ERROR, logger="tessera.shard.shard"):
        for _ in range(3):
            with pytest.raises(ServiceUnavailable, match="No space left on device: "):
                _upsert(engine, [7])
        # The operator sees it in the log, as in Qdrant's ("No space left on device:"),
        # once a minute while writes keep being refused.
        refused = [r.getMessage() for r in caplog.records if "write refused" in r.getMessage()]
        assert len(refused) == 1 and "No space left on device: " in refused[0]
        clock["now"] += 61
        with pytest.raises(ServiceUnavailable):
            _upsert(engine, [7])
        assert sum("write refused" in r.getMessage() for r in caplog.records) == 2
    assert engine.toc.get("c").count(None, exact=True) == 6


def test_a_failing_optimization_is_reported_until_one_succeeds(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An optimization that fails (a full disk while the new segment is written) keeps its
    sources and is reported (red, the reason), as Qdrant reports its optimizer errors; the
    next one that succeeds clears it."""
    engine.create_collection(
        "o",
        {
            "vectors": {"size": DIM, "distance": "Dot"},
            "optimizers_config": {"flush_interval_sec": 3600, "indexing_threshold": 1},
        },
    )
    collection = engine.toc.get("o")
    optimizer = collection.shard.optimizer
    optimizer.stop()  # the test runs the optimizer itself
    # 400 x 32 bytes: past ten times the 1 KB threshold, so built even while writes stream
    ids = list(range(400))
    engine.upsert_arrays("o", ids, _vectors(ids), [{"n": i} for i in ids])
    real = optimizer_module.build_segment

    def build_segment(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(optimizer_module, "build_segment", build_segment)
    with pytest.raises(OSError):
        optimizer.run_once()
    info = collection.info()
    assert info.status == "red"
    assert info.damage == ["Optimization failed: No space left on device (os error 28)"]
    assert info.points_count == 400
    monkeypatch.setattr(optimizer_module, "build_segment", real)
    assert optimizer.run_once()
    assert collection.info().damage == []
