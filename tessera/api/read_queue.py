"""Quick reads wait their turn in a queue of their own, so that a write overtakes them.

On the event loop each request's handler runs when its turn in the loop's ready list comes,
in arrival order, and a quick read runs whole in that turn. With 16 readers keeping the
server busy, a write that arrives waits behind every read that arrived before it: ~16
reads, ~9 ms at ~0.55 ms each, whatever runs them. So a quick read does not run in its
handler's turn: it joins this queue, which the loop works through one slice (`SLICE_S`) per
turn of its own. A write's handler runs its write in its first turn, behind at most one
slice of reads. Reads keep their order among themselves and the loop stays as busy, so their
capacity is the same (one future and one more turn per read, a few microseconds).

Each read runs in its request's context (a copy taken when it joined), as it would have in
the handler; its result or exception (`WouldWait` included) goes back through a future. A
read whose request went away (its future cancelled) is dropped unrun.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Reads run back to back in one turn of the loop until this much time has gone.
SLICE_S = 0.0005

_Waiting = tuple[contextvars.Context, Callable[[], Any], "asyncio.Future[Any]"]


class ReadQueue:
    """One loop's queue (it keeps no reference to the loop, whose key in `_queues` is weak:
    the queue goes with its loop)."""

    def __init__(self) -> None:
        self._waiting: deque[_Waiting] = deque()
        self._scheduled = False

    def submit(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """`call()`'s outcome, once its turn has come (run in the caller's context); on
        the running loop, the one this queue belongs to."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append((contextvars.copy_context(), call, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run_slice)
        return future

    def _run_slice(self) -> None:
        deadline = time.perf_counter() + SLICE_S
        try:
            while self._waiting:
                context, call, future = self._waiting.popleft()
                if future.cancelled():
                    continue
                try:
                    result = context.run(call)
                except Exception as exc:  # the read's own outcome: its handler raises it
                    future.set_exception(
                        exc
                        if not isinstance(exc, StopIteration)
                        else RuntimeError("a read raised StopIteration")
                    )
                else:
                    future.set_result(result)
                if time.perf_counter() >= deadline:
                    break
        finally:
            if self._waiting:
                asyncio.get_running_loop().call_soon(self._run_slice)
            else:
                self._scheduled = False


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReadQueue] = (
    weakref.WeakKeyDictionary()
)


def for_loop() -> ReadQueue:
    """The running loop's queue."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        queue = _queues[loop] = ReadQueue()
    return queue
