"""A checkpoint writes its files without the shard's lock, then maps on-disk payloads and
vectors of immutable segments from those files. A segment the optimizer sealed in that gap,
and a write that edited it there, must not be mapped from the older files: the write was
acknowledged, and mapping would undo it in memory, in the segment the optimizer builds from
it, and after a restart. (Found by a kill-and-damage torture run: set_payload and
update_vectors reverted, the collection green.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.collection import writes
from tessera.engine import Engine
from tessera.shard import shard as shard_module

DIM = 4
N = 200


def _engine(path: Path) -> Engine:
    eng = Engine(path)
    eng.create_collection(
        "c",
        {
            "vectors": {"size": DIM, "distance": "Dot", "on_disk": True},
            "on_disk_payload": True,
            "optimizers_config": {"indexing_threshold": 0},
        },
    )
    return eng


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = _engine(tmp_path / "storage")
    rows = np.ones((N, DIM), dtype=np.float32)
    eng.upsert_arrays("c", list(range(N)), rows, [{"w": 0} for _ in range(N)])
    yield eng
    eng.close()


def _in_the_gap(monkeypatch: pytest.MonkeyPatch, engine: Engine, write: Callable[[], None]) -> None:
    """After the next flush wrote its files and before it maps them: run `write` (in place,
    on the appendable segment), then seal that segment, as the optimizer does when it takes
    it for a build."""
    shard = engine.toc.get("c").shard
    real = shard_module.write_snapshot
    done: list[bool] = []

    def write_snapshot(*args: Any, **kwargs: Any) -> Any:
        files = real(*args, **kwargs)
        if not done:
            done.append(True)
            write()
            with shard.lock.write():
                for segment in shard.holder.segments:
                    if segment.appendable:
                        segment.appendable = False
                        segment.dirty.add("ids")
        return files

    monkeypatch.setattr(shard_module, "write_snapshot", write_snapshot)


def _payloads(engine: Engine) -> set[Any]:
    shard = engine.toc.get("c").shard
    with shard.read() as holder:
        return {
            (segment.payloads[o] or {}).get("w")
            for segment in holder.segments
            for o in np.flatnonzero(~segment.deleted[: segment.size]).tolist()
        }


def test_a_payload_edited_in_the_gap_is_not_undone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shard = engine.toc.get("c").shard
    shard.optimizer.stop()
    _in_the_gap(
        monkeypatch,
        engine,
        lambda: engine.write("c", writes.set_payload(list(range(N)), {"w": 1}, None)),
    )
    shard.flush(force=True)
    assert _payloads(engine) == {1}
    shard.flush(force=True)  # the next checkpoint writes the edit and maps it
    assert _payloads(engine) == {1}
    engine.close()
    again = Engine(tmp_path / "storage")
    try:
        assert _payloads(again) == {1}
    finally:
        again.close()


def test_vectors_updated_in_the_gap_are_not_undone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shard = engine.toc.get("c").shard
    shard.optimizer.stop()
    twos = np.full((N, DIM), 2.0, dtype=np.float32)
    column = writes.DenseColumn(np.ones(N, dtype=bool), twos)

    def update() -> None:
        engine.write("c", writes.update_vectors(list(range(N)), {"": column}))

    _in_the_gap(monkeypatch, engine, update)
    shard.flush(force=True)

    def stored() -> set[float]:
        with shard.read() as holder:
            return {
                float(v)
                for segment in holder.segments
                for v in np.asarray(segment.storages[""].matrix[: segment.size])[
                    ~segment.deleted[: segment.size]
                ].ravel()
            }

    assert stored() == {2.0}
    shard.flush(force=True)
    assert stored() == {2.0}
