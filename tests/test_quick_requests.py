"""Quick point reads and writes on the REST event loop (`api.quick_requests`): a read never
blocks the loop behind a writer (it waits for it asynchronously), a write that would wait
stops before it changes anything and waits on the loop for the lock (or, past a short wait,
on a write thread), a kind runs on the loop only once measured cheap, and reads on the loop
still see every acknowledged write."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import numpy as np
import pytest

from tessera.api import quick_requests
from tessera.collection.no_wait import NO_WAIT, WouldWait, attempt
from tessera.collection.rate_limit import RateLimiter
from tessera.engine import Engine
from tessera.shard.rwlock import RWLock

DIM = 8
T = TypeVar("T")


def _no_wait_read(lock: RWLock) -> None:
    token = NO_WAIT.set(True)
    try:
        with lock.read():
            pass
    finally:
        NO_WAIT.reset(token)


class _Writer:
    """A thread that takes `lock`'s write hold (once it can) and keeps it until `finish`."""

    def __init__(self, lock: RWLock) -> None:
        self.holding, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, args=(lock,))
        self._thread.start()

    def _run(self, lock: RWLock) -> None:
        with lock.write():
            self.holding.set()
            self._release.wait(10)

    def finish(self) -> None:
        self._release.set()
        self._thread.join(10)


def test_a_no_wait_read_stops_where_it_would_wait_for_a_writer() -> None:
    lock = RWLock()
    _no_wait_read(lock)  # no writer: reads
    writer = _Writer(lock)
    assert writer.holding.wait(10)
    with pytest.raises(WouldWait):
        _no_wait_read(lock)
    # Without NO_WAIT the same read waits for the writer, then reads.
    done = threading.Event()
    reader = threading.Thread(target=lambda: (lock.acquire_read(), done.set()))
    reader.start()
    assert not done.wait(0.2)
    writer.finish()
    reader.join(10)
    assert done.is_set()
    lock.release_read()


def test_a_read_sent_away_is_not_charged_twice_by_the_rate_limit() -> None:
    limiter = RateLimiter(10, None)
    assert limiter.read is not None
    with pytest.raises(WouldWait), attempt():
        limiter.check_read(4)
        raise WouldWait(RWLock())  # the shard's lock had a writer: the read runs again
    limiter.check_read(4)  # the retry
    with attempt():
        limiter.check_read(4)  # a read that completed keeps its charge
    assert limiter.read.try_consume(4) is not None  # 10 - 4 - 4 (plus a trickle of refill)


def test_a_waiting_writer_also_sends_a_no_wait_read_away() -> None:
    lock = RWLock()
    lock.acquire_read()  # a reader holds it, so the writer waits
    waiting = threading.Thread(target=lambda: lock.write().__enter__())
    waiting.start()
    deadline = time.monotonic() + 10
    while not lock._waiting_writers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lock._waiting_writers == 1
    with pytest.raises(WouldWait):
        _no_wait_read(lock)  # writers are preferred: a new reader would queue
    lock.release_read()
    waiting.join(10)


def test_when_free_calls_back_once_no_writer_holds_or_waits() -> None:
    lock = RWLock()
    called: list[str] = []
    lock.when_free(lambda: called.append("free"))
    assert called == ["free"]  # nobody in the way: at once
    lock.acquire_read()  # a reader holds it, so a writer waits
    writer = _Writer(lock)
    deadline = time.monotonic() + 10
    while not lock._waiting_writers and time.monotonic() < deadline:
        time.sleep(0.01)
    lock.when_free(lambda: called.append("after the writer"))
    lock.release_read()
    assert writer.holding.wait(10)
    assert called == ["free"]  # the writer holds it now
    writer.finish()
    assert called == ["free", "after the writer"]


def _worker_log(log: list[str]) -> Callable[[Callable[[], T]], Awaitable[T]]:
    async def in_worker(call: Callable[[], T]) -> T:
        log.append("worker")
        return await asyncio.to_thread(call)

    return in_worker


def _quick_kind(
    name: str,
) -> tuple[tuple[str, str, tuple[()]], list[str], Callable[[Callable[[], T]], Awaitable[T]]]:
    """A kind of collection "c" already measured cheap, the log of the calls sent to a
    worker, and that worker."""
    kind = (name, "c", ())
    quick_requests.note(kind, 0.0)
    log: list[str] = []
    return kind, log, _worker_log(log)


def test_a_kind_runs_on_the_loop_only_while_measured_cheap() -> None:
    kind = ("test-kind", "c", ())
    log: list[str] = []
    in_worker = _worker_log(log)
    assert asyncio.run(quick_requests.read(lambda: 1, kind, in_worker)) == 1
    assert log == ["worker"]  # unknown kinds go to a worker, where they are measured
    assert quick_requests.is_quick(kind)
    assert asyncio.run(quick_requests.read(lambda: 42, kind, in_worker)) == 42
    assert log == ["worker"]  # on the loop
    for _ in range(20):  # a kind that became heavy moves back to the workers
        quick_requests.note(kind, 10 * quick_requests.QUICK_S)
    assert not quick_requests.is_quick(kind)
    assert asyncio.run(quick_requests.read(lambda: 43, kind, in_worker)) == 43
    assert log == ["worker", "worker"]


def test_the_shape_of_a_read_tells_heavier_requests_apart() -> None:
    small = quick_requests.shape({"query": [0.1] * 4, "limit": 10})
    assert quick_requests.shape({"query": [0.2] * 4, "limit": 12}) == small
    assert quick_requests.shape({"query": [0.1] * 4, "limit": 10_000}) != small
    assert quick_requests.shape({"query": [0.1] * 4, "limit": 10, "with_vector": True}) != small
    assert quick_requests.shape({"limit": 10, "params": {"exact": True}}) != small
    assert quick_requests.shape({"limit": 10, "filter": {"must": []}}) != small
    assert quick_requests.shape({"searches": [{}] * 100}) != quick_requests.shape(
        {"searches": [{}]}
    )
    assert quick_requests.shape([1, 2]) == ()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "storage")
    eng.create_collection("c", {"vectors": {"size": DIM, "distance": "Dot"}})
    rng = np.random.default_rng(0)
    eng.upsert_arrays("c", list(range(100)), rng.normal(size=(100, DIM)).astype(np.float32))
    yield eng
    eng.close()


def test_a_quick_read_behind_a_writer_waits_for_it_without_blocking_the_loop(
    engine: Engine,
) -> None:
    collection = engine.toc.get("c")
    kind, log, in_worker = _quick_kind("test-engine")
    query = np.ones(DIM, dtype=np.float32)

    def read() -> list[int]:
        return [int(hit[0]) for hit in engine.search("c", query, 5)]

    hits = asyncio.run(quick_requests.read(read, kind, in_worker))
    assert len(hits) == 5 and log == []
    writer = _Writer(collection.shard.lock)

    async def scenario() -> tuple[list[int], int]:
        task = asyncio.create_task(quick_requests.read(read, kind, in_worker))
        ticks = 0
        for _ in range(20):  # the loop goes on serving while the read waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not task.done()
        assert not NO_WAIT.get()
        writer.finish()
        return await asyncio.wait_for(task, 10), ticks

    assert writer.holding.wait(10)
    again, ticks = asyncio.run(scenario())
    assert again == hits and ticks == 20
    assert log == []  # it ran on the loop once the writer was done


def _count(engine: Engine, name: str) -> int:
    return int(engine.info(name)["points_count"])


def test_a_no_wait_write_stops_only_before_it_changes_anything(engine: Engine) -> None:
    collection = engine.toc.get("c")
    body = {"points": [{"id": 500, "vector": [0.5] * DIM}]}
    collection.shard.lock.acquire_read()  # a reader on a worker thread holds the lock
    try:
        with pytest.raises(WouldWait), attempt():
            engine.upsert("c", body)
        assert collection.shard.lock._waiting_writers == 0
    finally:
        collection.shard.lock.release_read()
    assert _count(engine, "c") == 100  # nothing was written
    with attempt():
        assert NO_WAIT.get()
        engine.upsert("c", body)  # the lock is free: written here
        assert not NO_WAIT.get()  # and from the lock on, anything it waits for is waited for
    assert _count(engine, "c") == 101


def test_when_idle_calls_back_once_nobody_holds_or_waits() -> None:
    lock = RWLock()
    called: list[str] = []
    lock.when_idle(lambda: called.append("idle"))
    assert called == ["idle"]
    lock.acquire_read()
    lock.acquire_read()
    lock.when_idle(lambda: called.append("readers gone"))
    lock.release_read()
    assert called == ["idle"]  # one reader still holds it
    lock.release_read()
    assert called == ["idle", "readers gone"]
    lock.acquire_read()
    writer = _Writer(lock)  # waits for the reader
    deadline = time.monotonic() + 10
    while not lock._waiting_writers and time.monotonic() < deadline:
        time.sleep(0.01)
    lock.when_idle(lambda: called.append("writer gone"))
    lock.release_read()  # the reader leaves, but the writer takes the lock next
    assert writer.holding.wait(10)
    assert called == ["idle", "readers gone"]
    writer.finish()
    assert called == ["idle", "readers gone", "writer gone"]


def test_a_quick_write_behind_a_short_reader_waits_for_it_on_the_loop(engine: Engine) -> None:
    collection = engine.toc.get("c")
    kind, log, in_worker = _quick_kind("test-write-short")
    collection.shard.lock.acquire_read()  # a read on a worker thread, about to finish

    async def behind_a_reader() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.005, collection.shard.lock.release_read)

        def write() -> None:
            engine.upsert("c", {"points": [{"id": 700, "vector": [1.0] * DIM}]})

        await asyncio.wait_for(quick_requests.write(write, kind, in_worker), 10)

    asyncio.run(behind_a_reader())
    assert log == []  # it waited on the loop, then ran there
    assert _count(engine, "c") == 101


def test_a_quick_write_behind_a_long_reader_goes_to_a_write_thread(engine: Engine) -> None:
    collection = engine.toc.get("c")
    kind, log, in_worker = _quick_kind("test-write")

    def write(point: int) -> Callable[[], int]:
        return lambda: engine.upsert("c", {"points": [{"id": point, "vector": [1.0] * DIM}]})

    asyncio.run(quick_requests.write(write(600), kind, in_worker))
    assert log == [] and _count(engine, "c") == 101  # on the loop
    collection.shard.lock.acquire_read()

    async def behind_a_reader() -> None:
        task = asyncio.create_task(quick_requests.write(write(601), kind, in_worker))
        await asyncio.sleep(0.2)  # longer than a write waits on the loop (WRITE_WAIT_S)
        assert not task.done() and log == ["worker"]  # waiting for the reader, off the loop
        collection.shard.lock.release_read()
        await asyncio.wait_for(task, 10)

    asyncio.run(behind_a_reader())
    assert _count(engine, "c") == 102


def test_a_write_that_may_wait_for_the_optimizer_never_runs_on_the_loop(
    engine: Engine,
) -> None:
    engine.create_collection(
        "deferred",
        {
            "vectors": {"size": DIM, "distance": "Dot"},
            "optimizers_config": {"prevent_unoptimized": True, "indexing_threshold": 10},
        },
    )
    with pytest.raises(WouldWait), attempt():
        engine.upsert("deferred", {"points": [{"id": 1, "vector": [1.0] * DIM}]})
    assert _count(engine, "deferred") == 0


def test_reads_on_the_loop_see_every_acknowledged_write(http: httpx.Client) -> None:
    """A writer and readers over REST at once: every read after a `wait=true` upsert was
    acknowledged sees it (retrieve and a filtered count), and nothing fails."""
    name = "quick_requests_ryw"
    http.delete(f"/collections/{name}")
    assert (
        http.put(
            f"/collections/{name}", json={"vectors": {"size": DIM, "distance": "Cosine"}}
        ).status_code
        == 200
    )
    rng = np.random.default_rng(1)
    base = http.base_url
    errors: list[str] = []
    acknowledged = [0]
    stop = threading.Event()

    def write() -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            for i in range(1, 121):
                body = {
                    "points": [
                        {"id": i, "vector": rng.normal(size=DIM).tolist(), "payload": {"n": i}}
                    ]
                }
                r = c.put(f"/collections/{name}/points?wait=true", json=body)
                if r.status_code != 200:
                    errors.append(f"upsert {r.status_code} {r.text}")
                acknowledged[0] = i
        stop.set()

    def read() -> None:
        rng = np.random.default_rng(threading.get_ident())
        with httpx.Client(base_url=base, timeout=30) as c:
            while not stop.is_set():
                seen = acknowledged[0]
                if not seen:
                    continue
                got = c.post(f"/collections/{name}/points", json={"ids": [seen]})
                if got.status_code != 200 or [p["id"] for p in got.json()["result"]] != [seen]:
                    errors.append(f"retrieve {seen}: {got.status_code} {got.text[:200]}")
                count = c.post(
                    f"/collections/{name}/points/count",
                    json={"filter": {"must": [{"key": "n", "range": {"lte": seen}}]}},
                )
                if count.status_code != 200 or count.json()["result"]["count"] != seen:
                    errors.append(f"count <= {seen}: {count.status_code} {count.text[:200]}")
                query = c.post(
                    f"/collections/{name}/points/query",
                    json={"query": rng.normal(size=DIM).tolist(), "limit": 3},
                )
                found = query.json()["result"]["points"] if query.status_code == 200 else []
                if len(found) < min(3, seen):  # more when a later write was applied
                    errors.append(f"query: {query.status_code} {query.text[:200]}")

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    http.delete(f"/collections/{name}")
    assert errors == []
    assert acknowledged[0] == 120
