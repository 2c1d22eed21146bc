"""A read's deadline: Qdrant's `timeout` (seconds) on searches, queries, scrolls, counts,
facets and distance matrices.

The transport starts it when the request asks for one (REST `?timeout=`, a gRPC request's
`timeout` field) and answers Qdrant's timeout error once it has passed: 408 / gRPC
DEADLINE_EXCEEDED, "Timeout error: Operation 'Search' timed out after 2s". The REST transport
answers at the deadline even while a worker thread is still inside one long numpy or faiss
call; the work itself stops at its next `check()` (between segments, queries of a batch,
stages of a query, blocks of a distance matrix), as Qdrant's searches stop on its `is_stopped`
flag. It lives in a context variable, so worker threads and the loop's read queue (which run
a request's work in a copy of its context) see the request's own deadline.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass

from tessera.errors import RequestTimeout


@dataclass(frozen=True, slots=True)
class Deadline:
    expires: float  # time.monotonic()
    seconds: int
    operation: str

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def error(self) -> RequestTimeout:
        """Qdrant's `CollectionError::timeout` (a `Duration` of whole seconds prints "2s")."""
        return RequestTimeout(
            f"Timeout error: Operation '{self.operation}' timed out after {self.seconds}s"
        )


_CURRENT: ContextVar[Deadline | None] = ContextVar("deadline", default=None)


def start(seconds: int | None, operation: str) -> Deadline | None:
    """The current context's deadline from now (`seconds` None or 0: none)."""
    deadline = Deadline(time.monotonic() + seconds, seconds, operation) if seconds else None
    _CURRENT.set(deadline)
    return deadline


def check() -> None:
    """Raise the timeout error when the current request's deadline has passed."""
    deadline = _CURRENT.get()
    if deadline is not None and time.monotonic() >= deadline.expires:
        raise deadline.error()
