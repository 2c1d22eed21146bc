"""One request's hardware usage: Qdrant's `usage.hardware` in API answers, with
`service.hardware_reporting: true`.

The transport starts a meter for a point read or write (`start`); the layers below add to it
while the request runs (`current()`: None when nothing is measured, so a server that does not
report pays one context-variable read per search or write). It lives in a context variable,
so worker threads and the loop's read queue, which run a request's work in a copy of its
context, add to the request's own meter.

What is counted, per request:
- `cpu`: vector elements scored, as Qdrant counts its scorers' work: each candidate scored
  exactly counts the vector's dimension, and a graph walk the vectors it compared (faiss's
  distance count) times the dimension;
- `vector_io_read`: the bytes of those vectors where they are read from disk
  (`on_disk: true`), as Qdrant counts reads of its on-disk storages only;
- `payload_io_read`: the JSON bytes of the payloads an answer reads from disk
  (`on_disk_payload: true`, the default), as Qdrant counts reads of its on-disk payloads;
  payloads a filter reads are not counted;
- `vector_io_write` / `payload_io_write`: the bytes of the vectors and of the payloads' JSON
  a write stores (the same figures `/telemetry`'s `hardware` adds up per collection).
The payload index counters are not measured: they stay 0.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import asdict, dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Meter:
    """Counters of one request. Plain integer additions: the GIL keeps each one whole, and
    the threads of one request add to them one at a time in practice."""

    cpu: int = 0
    payload_io_read: int = 0
    payload_io_write: int = 0
    payload_index_io_read: int = 0
    payload_index_io_write: int = 0
    vector_io_read: int = 0
    vector_io_write: int = 0

    def add(self, cpu: int = 0, vector_io_read: int = 0) -> None:
        self.cpu += cpu
        self.vector_io_read += vector_io_read

    def add_writes(self, vector_bytes: int, payload_bytes: int) -> None:
        self.vector_io_write += vector_bytes
        self.payload_io_write += payload_bytes

    def to_json(self) -> dict[str, int]:
        """Qdrant's `HardwareUsage`: every counter, in its order."""
        return asdict(self)


_CURRENT: ContextVar[Meter | None] = ContextVar("hw_meter", default=None)


def start() -> tuple[Meter, Token[Meter | None]]:
    meter = Meter()
    return meter, _CURRENT.set(meter)


def stop(token: Token[Meter | None]) -> None:
    _CURRENT.reset(token)


def current() -> Meter | None:
    return _CURRENT.get()


def carried(call: Callable[[], T]) -> Callable[[], T]:
    """`call`, measured into the current meter wherever it runs (a worker thread of a shard
    fan-out starts without the request's context)."""
    meter = _CURRENT.get()
    if meter is None:
        return call

    def run() -> T:
        token = _CURRENT.set(meter)
        try:
            return call()
        finally:
            _CURRENT.reset(token)

    return run
