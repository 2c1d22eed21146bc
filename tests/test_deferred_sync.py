"""A write run on the REST event loop leaves its WAL fdatasync to a write thread and answers
only once that thread has synced it (tessera.shard.deferred_sync, api.quick_requests.write):
the loop keeps serving while the disk works, and no write is acknowledged before its record
is on disk."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from tessera.api import quick_requests
from tessera.collection.no_wait import deferring, finish
from tessera.engine import Engine
from tessera.errors import BadRequest, ServiceUnavailable
from tessera.shard import deferred_sync
from tessera.shard.wal import Wal

T = TypeVar("T")


def _point(pid: int) -> dict[str, Any]:
    return {"points": [{"id": pid, "vector": [0.1, 0.2, 0.3, 0.4]}]}


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    found = Engine(tmp_path / "storage")
    found.create_collection("c", {"vectors": {"size": 4, "distance": "Dot"}})
    yield found
    found.toc.close()


def test_an_update_leaves_its_sync_to_the_caller_that_defers_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_sync = Wal.sync

    def recording_sync(wal: Wal, seq: int) -> None:
        synced.append(seq)
        real_sync(wal, seq)

    monkeypatch.setattr(Wal, "sync", recording_sync)
    engine.upsert("c", _point(1))
    assert len(synced) == 1  # not deferred: synced within the update, as before
    pending: list[deferred_sync.Finisher] = []
    with deferring(pending):
        seq = engine.upsert("c", _point(2))
    assert len(synced) == 1 and len(pending) == 1  # applied, not yet synced
    query = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    assert {pid for pid, _ in engine.search("c", query, 5)} == {1, 2}  # readable already
    finish(pending)
    assert synced[-1] == seq and not pending


def test_finish_runs_every_sync_then_raises_the_first_error() -> None:
    ran: list[str] = []

    def failing(name: str) -> Callable[[], None]:
        def run() -> None:
            ran.append(name)
            raise ServiceUnavailable(f"Service unavailable: {name}")

        return run

    pending = [failing("a"), lambda: ran.append("b"), failing("c")]
    with pytest.raises(ServiceUnavailable, match=": a"):
        finish(pending)
    assert ran == ["a", "b", "c"]


def _on_thread(call: Callable[[], T]) -> Any:
    return asyncio.to_thread(call)


def _quick(kind: str) -> None:
    quick_requests.note(kind, 0.0001)  # measured cheap: runs on the loop


def test_a_quick_write_answers_after_its_sync_ran_on_a_thread_while_the_loop_served() -> None:
    kind = "deferred-write-kind"
    _quick(kind)
    log: list[str] = []
    sync_thread: list[int] = []

    def slow_sync() -> None:
        sync_thread.append(threading.get_ident())
        time.sleep(0.1)  # a slow fdatasync
        log.append("synced")

    def write() -> str:
        assert deferred_sync.defer(slow_sync)
        log.append("applied")
        return "done"

    async def scenario() -> tuple[str, int, int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.get_running_loop().create_task(ticker())
        result = await quick_requests.write(write, kind, _on_thread)
        log.append("answered")
        stop.set()
        await task
        return result, ticks, threading.get_ident()

    result, ticks, loop_thread = asyncio.run(scenario())
    assert result == "done"
    assert log == ["applied", "synced", "answered"]
    assert sync_thread and sync_thread[0] != loop_thread
    # The loop went on while the disk worked (blocked on the loop, it would tick ~once).
    assert ticks >= 5


def test_a_quick_write_that_fails_after_applying_is_synced_before_its_error() -> None:
    kind = "deferred-write-failing-kind"
    _quick(kind)
    log: list[str] = []

    def write() -> None:
        deferred_sync.defer(lambda: log.append("synced"))
        raise BadRequest("Wrong input: after the apply")

    with pytest.raises(BadRequest):
        asyncio.run(quick_requests.write(write, kind, _on_thread))
    assert log == ["synced"]


def test_a_failed_sync_is_the_quick_writes_answer() -> None:
    kind = "deferred-write-sync-fails-kind"
    _quick(kind)

    def broken_sync() -> None:
        raise ServiceUnavailable("Service unavailable: WAL sync failed: [Errno 5] EIO")

    def write() -> str:
        deferred_sync.defer(broken_sync)
        return "done"

    with pytest.raises(ServiceUnavailable, match="WAL sync failed"):
        asyncio.run(quick_requests.write(write, kind, _on_thread))
