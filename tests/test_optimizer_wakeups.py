"""Every write wakes the optimizer; a wake with nothing to do must not take the shard's write
lock (readers and quick writes would queue behind the optimizer's thread for nothing), and a
wake with work plans it again under the lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.engine import Engine
from tessera.shard import optimizer as optimizer_module
from tessera.shard.optimizer import Optimizer

DIM = 4


def _engine(tmp_path: Path, threshold_kb: int) -> Engine:
    eng = Engine(tmp_path / "storage")
    eng.create_collection(
        "c",
        {
            "vectors": {"size": DIM, "distance": "Dot"},
            "optimizers_config": {"indexing_threshold": threshold_kb},
        },
    )
    return eng


def _count_write_holds(monkeypatch: pytest.MonkeyPatch, optimizer: Optimizer) -> list[int]:
    taken: list[int] = []
    real = optimizer.lock.write

    def counted() -> AbstractContextManager[None]:
        taken.append(1)
        return real()

    monkeypatch.setattr(optimizer.lock, "write", counted)
    return taken


@pytest.fixture
def quiet(tmp_path: Path) -> Iterator[Engine]:
    eng = _engine(tmp_path, threshold_kb=1_000_000)  # never worth an index
    rows = np.random.default_rng(1).normal(size=(50, DIM)).astype(np.float32)
    eng.upsert_arrays("c", list(range(50)), rows)
    yield eng
    eng.close()


def test_a_wake_with_nothing_to_do_takes_no_write_lock(
    quiet: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    optimizer = quiet.toc.get("c").shard.optimizer
    optimizer.stop()  # driven by hand below
    taken = _count_write_holds(monkeypatch, optimizer)
    assert not optimizer.run_once()
    assert taken == []


def test_a_look_that_fails_takes_the_lock_and_plans_there(
    quiet: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    optimizer = quiet.toc.get("c").shard.optimizer
    optimizer.stop()
    taken = _count_write_holds(monkeypatch, optimizer)
    real_plan = Optimizer._plan
    calls: list[int] = []

    def racing_plan(self: Optimizer) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise IndexError("a segment grew under the look")
        return real_plan(self)

    monkeypatch.setattr(Optimizer, "_plan", racing_plan)
    assert not optimizer.run_once()
    assert taken == [1] and len(calls) == 2


def test_a_wake_with_work_plans_again_under_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = _engine(tmp_path, threshold_kb=1)
    try:
        optimizer = eng.toc.get("c").shard.optimizer
        optimizer.stop()
        rows = np.random.default_rng(2).normal(size=(500, DIM)).astype(np.float32)
        eng.upsert_arrays("c", list(range(500)), rows)
        # As after a pause in the writes (streaming writes defer indexing).
        monkeypatch.setattr(optimizer_module, "idle_since", lambda seconds: True)
        taken = _count_write_holds(monkeypatch, optimizer)
        assert optimizer.run_once()
        assert len(taken) >= 2  # the plan and seal, then the swap
        assert int(eng.info("c")["indexed_vectors_count"]) == 500
    finally:
        eng.close()


def test_a_shard_closed_under_a_run_ends_the_loop_without_an_error(
    quiet: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A collection deleted while its optimizer runs closes the shard, whose flush then
    raises ShardClosed: the loop ends quietly (it logged "optimizer failed" with a
    traceback, at ERROR, for a deletion the user asked for)."""
    from tessera.shard.errors import ShardClosed

    optimizer = quiet.toc.get("c").shard.optimizer
    optimizer.stop()

    def closed(self: Optimizer) -> bool:
        self.running = True
        raise ShardClosed("Not found: shard 0 is closed")

    monkeypatch.setattr(Optimizer, "run_once", closed)
    optimizer._stop.clear()
    optimizer.poke()
    with caplog.at_level("DEBUG", logger=optimizer_module.__name__):
        optimizer._loop()  # returns: it does not wait for a stop
    assert not optimizer.running
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
