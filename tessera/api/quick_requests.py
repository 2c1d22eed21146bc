"""Quick point reads (and writes) run on the event loop instead of a worker thread.

Handing a read to a worker thread and its answer back to the loop costs more than a typical
read itself: with 16 connections, a filtered query limit 10 on 20k points served 1,680
requests/s through the worker pool and 2,410 run on the loop, a scroll of 100 points 1,130
against 2,610 (bench/README.md, "Quick reads on the event loop"). Under the interpreter
lock the worker gives no parallelism to the Python part of a read anyway; it is only worth
its cost when a read would block (a writer holds the shard's lock) or runs long enough that
the loop must keep serving others meanwhile (the lock is handed over every 5 ms).

So each kind of read (route, collection, and the parts of the body that set its cost:
limit, offset, vectors asked for, a filter, exact search, batch size...) keeps a moving
average of what it cost: CPU time on a worker, wall time on the loop. A kind whose average
is under `QUICK_S` runs on the loop with `NO_WAIT` set: if a shard's lock has a writer, the
read stops with `WouldWait` before reading that shard, and runs again on the loop once the
writer is done. Meanwhile the loop serves other requests or sleeps, leaving the interpreter
lock to the writer: a writer holding the shard's lock is not slowed down by the reads
queued behind it (on worker threads they would take turns with it for the interpreter
lock, every 5 ms, and hold the shard's lock that long too). The first
read of a kind runs on a worker, so a heavy kind never starts on the loop; a heavy request
of a kind that has been quick stalls the loop once and moves its kind back to the workers.

Point writes go the same way, under `QUICK_WRITE_S` (their time on the loop includes the
WAL's fdatasync, which a write waits for before it answers, wherever it runs): a write sent
to a thread waits for the interpreter lock at every step while the loop serves reads, and
under 16 readers took 10.7 / 49.8 ms (p50 / p99) against 6.2 / 27.2 ms run on the loop
(bench/README.md, "Quick reads on the event loop"). A write that finds the shard's lock
held (by reads on worker threads, or a write on a write thread) waits on the loop for it to
be free, as a read waits for a writer: sent to a write thread instead, it took ~20 ms there
under the readers, one 5 ms handover of the interpreter lock at each of its system calls.
It stops (`WouldWait`) only before it has changed anything. A batch of writes always runs
on a write thread.

Off in cluster mode, where a read or write may wait for another peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from tessera.api import read_queue
from tessera.collection.no_wait import WouldWait, attempt

T = TypeVar("T")

# A read whose kind costs less than this on average runs on the loop. Its wall time on a
# busy loop includes waits for the interpreter lock: a filtered query of ~0.5 ms measured
# 1-2 ms under 16 readers and a writer, and at a 1 ms limit 2-3% of them went back and
# forth to the workers, where they held the shard's lock across those waits.
QUICK_S = 0.003
# The same for a point write (its wall time on the loop includes the WAL's fdatasync).
QUICK_WRITE_S = 0.005
# How long a quick write waits on the loop for the shard's lock to be free, each try.
WRITE_WAIT_S = 0.02
# Weight of the newest cost in a kind's moving average.
ALPHA = 0.25
# Times a read (or write) tries the loop, each after waiting for what held the lock in its
# way (then it goes to a worker, where it waits its turn like any other).
TRIES = 3
# Kinds remembered at most (then forgotten all at once: each is measured again).
MAX_KINDS = 4096

_costs: dict[Hashable, float] = {}


def _bucket(value: Any) -> int | None:
    """An integer's order of magnitude (its bit length), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length()
    return None


def _length(value: Any) -> int | None:
    return len(value).bit_length() if isinstance(value, list) else None


def shape(body: Any) -> tuple[Any, ...]:
    """What in a read's body sets its cost, coarsely (sizes by order of magnitude)."""
    if not isinstance(body, dict):
        return ()
    params = body.get("params")
    return (
        _bucket(body.get("limit")),
        _bucket(body.get("offset")),
        bool(body.get("with_vector") or body.get("with_vectors")),
        body.get("filter") is not None,
        isinstance(params, dict) and bool(params.get("exact")),
        _length(body.get("searches")),
        _length(body.get("ids")),
        _length(body.get("points")),
        _length(body["batch"].get("ids")) if isinstance(body.get("batch"), dict) else None,
        _length(body.get("prefetch")) if "prefetch" in body else None,
        _bucket(body.get("group_size")),
        _bucket(body.get("sample")),
    )


def note(kind: Hashable, seconds: float) -> None:
    """Take one cost of `kind` into its moving average (from any thread: a lost update
    under a race only delays the average)."""
    old = _costs.get(kind)
    if old is None:
        if len(_costs) >= MAX_KINDS:
            _costs.clear()
        _costs[kind] = seconds
    else:
        _costs[kind] = old + ALPHA * (seconds - old)


def is_quick(kind: Hashable, limit: float = QUICK_S) -> bool:
    cost = _costs.get(kind)
    return cost is not None and cost < limit


def timed(call: Callable[[], T], kind: Hashable) -> Callable[[], T]:
    """`call` measured by its thread's CPU time (what it costs, not the waits for the
    interpreter lock that a busy server adds to its wall time)."""

    def run() -> T:
        started = time.thread_time()
        result = call()
        note(kind, time.thread_time() - started)
        return result

    return run


def _on_loop(call: Callable[[], T], kind: Hashable) -> T:
    """`call()` here, under `NO_WAIT` (it may raise `WouldWait`), its wall time noted."""
    with attempt():
        started = time.perf_counter()
        result = call()
    note(kind, time.perf_counter() - started)
    return result


async def read(
    call: Callable[[], T],
    kind: Hashable,
    in_worker: Callable[[Callable[[], T]], Awaitable[T]],
) -> T:
    """`call()` on the loop while `kind` is quick, waiting (asynchronously) for a writer in
    its way; else timed on a worker thread through `in_worker`."""
    for _ in range(TRIES):
        if not is_quick(kind):
            break
        try:
            # In the loop's queue of reads, which a write overtakes (api.read_queue).
            return await read_queue.for_loop().submit(functools.partial(_on_loop, call, kind))
        except WouldWait as blocked:
            await _lock_free(blocked)
    return await in_worker(timed(call, kind))


async def write(
    call: Callable[[], T],
    kind: Hashable,
    in_worker: Callable[[Callable[[], T]], Awaitable[T]],
) -> T:
    """A point write: on the loop while `kind` is quick (`QUICK_WRITE_S`), waiting
    (asynchronously, up to `WRITE_WAIT_S` each time) for the readers or writer holding the
    shard's lock to leave it; else timed on a write thread through `in_worker`. A write stops
    with `WouldWait` only before it has changed anything (it clears `NO_WAIT` once it holds
    the lock)."""
    if is_quick(kind, QUICK_WRITE_S):
        for _ in range(TRIES):
            try:
                return _on_loop(call, kind)
            except WouldWait as blocked:
                if blocked.lock is None:
                    break  # not a lock in the way (an optimizer to wait for): a thread waits
                # Readers on worker threads may overlap without end (the loop only sees the
                # lock idle between them): past a short wait, a write thread queues as a
                # writer, ahead of new readers.
                try:
                    await asyncio.wait_for(_lock_free(blocked), WRITE_WAIT_S)
                except TimeoutError:
                    break
    return await in_worker(timed(call, kind))


async def _lock_free(blocked: WouldWait) -> None:
    """Until the lock in `blocked`'s way is free for it (a read: no writer; a write: nobody)."""
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def wake() -> None:  # on the thread that left the lock free
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits now
            loop.call_soon_threadsafe(_resolve, gone)

    blocked.when_free(wake)
    await gone


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # not cancelled (the client went away)
        future.set_result(None)
