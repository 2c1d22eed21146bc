"""Requests that must not wait for a shard's lock (the REST event loop's quick reads and
writes): with `NO_WAIT` set, a read that would wait for a writer, or a write that would
wait for the lock, raises `WouldWait` before it has read or changed anything of that shard,
and the caller runs it again where waiting is allowed.

What such a request charged before it stopped (strict mode's rate limits) must not be
charged twice: `attempt` gives back whatever was registered with `undo_if_retried`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tessera.shard.rwlock import NO_WAIT, WouldWait

__all__ = ["NO_WAIT", "WouldWait", "attempt", "undo_if_retried"]

_UNDO: ContextVar[list[Callable[[], None]] | None] = ContextVar("no_wait_undo", default=None)


@contextmanager
def attempt() -> Iterator[None]:
    """Run a request under `NO_WAIT`; when it stops with `WouldWait`, undo what it
    charged."""
    undo: list[Callable[[], None]] = []
    no_wait, undo_token = NO_WAIT.set(True), _UNDO.set(undo)
    try:
        yield
    except WouldWait:
        for action in undo:
            action()
        raise
    finally:
        _UNDO.reset(undo_token)
        NO_WAIT.reset(no_wait)


def undo_if_retried(action: Callable[[], None]) -> None:
    """Within `attempt`, run `action` should the request stop to be retried; else
    nothing."""
    undo = _UNDO.get()
    if undo is not None:
        undo.append(action)
