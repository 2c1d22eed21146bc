"""A shard follower (tessera.shard.follower) reads the files another owner writes: every
write the owner has acknowledged is in the follower's next read, through checkpoints, the
optimizer's rebuilt segments, WAL files rolled over and truncated, and a record caught half
written; and it changes nothing on disk. The owner here is an Engine in this process: the
follower reads only the files, as it would from another process."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.collection import writes
from tessera.collection.collection import read_config
from tessera.engine import Engine
from tessera.shard import read as shard_read
from tessera.shard.follower import ShardFollower, WalTail
from tessera.shard.holder import SegmentHolder
from tessera.shard.shard import LocalShard, wal_dir
from tessera.shard.wal import Wal

DIM = 4


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "storage")
    eng.create_collection(
        "c",
        {
            "vectors": {"size": DIM, "distance": "Dot"},
            "optimizers_config": {"indexing_threshold": 50, "flush_interval_sec": 3600},
            "wal_config": {"wal_capacity_mb": 1},
        },
    )
    yield eng
    eng.close()


def _owner(engine: Engine) -> LocalShard:
    return engine.toc.get("c").shard


def _follow(engine: Engine) -> ShardFollower:
    shard = _owner(engine)
    return ShardFollower(shard.path, read_config(shard.path.parent))


def _state(holder: SegmentHolder) -> dict[Any, Any]:
    """Every point: its payload and its vector."""
    ids = shard_read.select_ids(holder, None)
    out = {}
    for ref in shard_read.retrieve(holder, ids):
        vector = np.asarray(ref.segment.vector_at(ref.offset, ""), dtype=np.float32)
        out[ref.id] = (ref.segment.payload_at(ref.offset), vector.tobytes())
    return out


def _same(engine: Engine, follower: ShardFollower) -> None:
    owner = _owner(engine)
    with owner.read() as holder:
        expected = _state(holder)
    with follower.read() as holder:
        found = _state(holder)
    assert found == expected
    assert follower.applied_seq == owner.applied_seq


def _upsert(engine: Engine, ids: list[int], tag: str, pad: int = 0) -> None:
    rows = np.random.default_rng(ids[0]).random((len(ids), DIM), dtype=np.float32)
    engine.upsert_arrays("c", ids, rows, [{"tag": tag, "i": i, "pad": "p" * pad} for i in ids])


def _files(path: Path) -> dict[str, str]:
    """Every file under `path` and a digest of its bytes."""
    out = {}
    for folder, _, names in os.walk(path):
        for name in names:
            full = Path(folder) / name
            out[str(full)] = hashlib.sha256(full.read_bytes()).hexdigest()
    return out


def test_every_acknowledged_write_is_in_the_next_read(engine: Engine) -> None:
    _upsert(engine, list(range(20)), "a")
    follower = _follow(engine)
    _same(engine, follower)
    collection = engine.toc.get("c")
    steps = [
        lambda: _upsert(engine, list(range(10, 30)), "b"),
        lambda: collection.update(writes.delete(list(range(0, 5)))),
        lambda: collection.update(writes.set_payload(list(range(5, 9)), {"x": 1}, None)),
        lambda: engine.create_field_index("c", "tag", "keyword"),
        lambda: collection.update(writes.clear_payload(list(range(9, 12)))),
        lambda: _upsert(engine, [5], "c"),
    ]
    for step in steps:
        step()
        _same(engine, follower)  # the write was acknowledged: the next read has it
    with follower.read() as holder:
        assert "tag" in holder.index_schemas
        assert shard_read.count(holder, None, exact=True) == 25
    follower.close()


def test_follows_checkpoints_rebuilt_segments_and_truncated_logs(engine: Engine) -> None:
    follower = _follow(engine)
    owner = _owner(engine)
    first_files = set(os.listdir(wal_dir(owner.path)))
    # 1 MiB WAL files: these writes roll the log over several files; the optimizer builds
    # indexed segments from the points; checkpoints truncate the log behind them.
    for round_ in range(6):
        _upsert(engine, list(range(round_ * 400, round_ * 400 + 400)), f"r{round_}")
        engine.toc.get("c").update(writes.delete(list(range(round_ * 400, round_ * 400 + 7))))
        _same(engine, follower)
        if round_ % 2:
            engine.wait_optimized("c")
            owner.flush(force=True)
            _same(engine, follower)
    assert set(os.listdir(wal_dir(owner.path))) != first_files  # rolled and truncated
    # A follower idle while the owner truncated past it loads the newest checkpoint.
    idle = _follow(engine)
    for round_ in range(6, 12):  # ~2.4 MB of records: past the file the idle one reads
        _upsert(engine, list(range(round_ * 400, round_ * 400 + 400)), f"r{round_}", pad=1000)
        engine.wait_optimized("c")
        owner.flush(force=True)
    reloads = idle.reloads
    _same(engine, idle)
    _same(engine, follower)
    assert idle.reloads > reloads
    # A reload swaps the replayed tail for the owner's indexed segments, same points.
    follower.reload()
    _same(engine, follower)
    assert follower.generation == max(
        int(n.split(".")[1]) for n in os.listdir(owner.path) if n.startswith("manifest.")
    )
    follower.close()
    idle.close()


def test_the_follower_changes_nothing_on_disk(engine: Engine) -> None:
    _upsert(engine, list(range(300)), "a")
    engine.wait_optimized("c")
    _owner(engine).flush(force=True)
    _upsert(engine, list(range(300, 320)), "b")
    root = _owner(engine).path
    before = _files(root)
    follower = _follow(engine)
    for _ in range(3):
        follower.catch_up()
        follower.reload()
    _same(engine, follower)
    follower.close()
    assert _files(root) == before


def test_a_record_half_written_waits_for_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "wal"
    wal = Wal(folder, segment_capacity=1 << 16)
    tail = WalTail(folder, 1)
    assert list(tail.read_new()) == []  # nothing yet
    wal.append_and_sync(b"one")
    assert list(tail.read_new()) == [(1, b"one")]
    # The owner's next record as a reader may catch it: header and half its payload.
    wal.append_and_sync(b"two-two-two")
    log_file = folder / sorted(n for n in os.listdir(folder) if n.endswith(".log"))[-1]
    whole = log_file.read_bytes()
    end = whole.rindex(b"two-two-two") + len(b"two-two-two")
    with open(log_file, "r+b") as f:
        f.seek(end - 5)
        f.write(b"\0" * 5)
    assert list(tail.read_new()) == []  # torn: not taken
    with open(log_file, "r+b") as f:
        f.seek(end - 5)
        f.write(whole[end - 5 : end])
    assert list(tail.read_new()) == [(2, b"two-two-two")]
    # Records past the first file's capacity go to a new file: the tail moves on to it.
    big = b"x" * 40_000
    wal.append_and_sync(big)
    wal.append_and_sync(big)
    assert [seq for seq, _ in tail.read_new()] == [3, 4]
    assert len([n for n in os.listdir(folder) if n.endswith(".log")]) >= 2
    tail.close()
    wal.close()
