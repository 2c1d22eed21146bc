"""Writes whose WAL fdatasync is finished elsewhere: the REST event loop's quick writes.

A write on the event loop (`api.quick_requests`) appends its record and applies it there,
but its fdatasync (0.3 ms typical on this disk, 10 ms and more at its 99th percentile) would
hold the whole loop: every read queued behind it waited too, and under 16 readers and a
steady writer the readers' capacity fell to a third. With `DEFERRED` set to a list, a
shard's `update` leaves what follows its append and apply (the sync, the error a failed sync
becomes, waking the optimizer) in that list instead of doing it; the caller runs the list
on a thread (`finish`) and answers only after it has: no write is acknowledged before its
record is on disk, as before. A write with an error to raise after it is applied (an
`ApplyThenRaise`) finishes in place."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Finisher = Callable[[], None]

DEFERRED: ContextVar[list[Finisher] | None] = ContextVar("deferred_syncs", default=None)


@contextmanager
def deferring(pending: list[Finisher]) -> Iterator[None]:
    """Within the block, shard updates leave their syncs in `pending`."""
    token = DEFERRED.set(pending)
    try:
        yield
    finally:
        DEFERRED.reset(token)


def defer(finisher: Finisher) -> bool:
    """Leave `finisher` to the caller that set `DEFERRED`; False when none did."""
    pending = DEFERRED.get()
    if pending is None:
        return False
    pending.append(finisher)
    return True


def finish(pending: list[Finisher]) -> None:
    """Run every finisher in order (each sync covers its own record, whatever an earlier one
    raised); then raise the first error."""
    first: BaseException | None = None
    for finisher in pending:
        try:
            finisher()
        except BaseException as exc:  # re-raised below, once the others ran
            if first is None:
                first = exc
    pending.clear()
    if first is not None:
        raise first
