"""Quick point reads run on the event loop instead of a worker thread.

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
read stops with `WouldWait` before reading that shard and runs again on a worker. The first
read of a kind runs on a worker, so a heavy kind never starts on the loop; a heavy request
of a kind that has been quick stalls the loop once and moves its kind back to the workers.

Off in cluster mode, where a read may wait for another peer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from tessera.collection.no_wait import WouldWait, attempt

T = TypeVar("T")

# A read whose kind costs less than this on average runs on the loop.
QUICK_S = 0.001
# Weight of the newest cost in a kind's moving average.
ALPHA = 0.25
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


def is_quick(kind: Hashable) -> bool:
    cost = _costs.get(kind)
    return cost is not None and cost < QUICK_S


def timed(call: Callable[[], T], kind: Hashable) -> Callable[[], T]:
    """`call` measured by its thread's CPU time (what it costs, not the waits for the
    interpreter lock that a busy server adds to its wall time)."""

    def run() -> T:
        started = time.thread_time()
        result = call()
        note(kind, time.thread_time() - started)
        return result

    return run


def on_loop(call: Callable[[], T], kind: Hashable) -> tuple[bool, T | None]:
    """`(True, call())` run here when `kind` is quick and no writer is in the way, else
    `(False, None)`: the caller runs `timed(call, kind)` on a worker thread."""
    if not is_quick(kind):
        return False, None
    try:
        with attempt():
            started = time.perf_counter()
            result = call()
    except WouldWait:
        return False, None  # a writer has the shard: wait for it on a worker
    note(kind, time.perf_counter() - started)
    return True, result
