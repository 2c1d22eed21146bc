"""A collection's accumulated hardware usage since start, Qdrant's `HardwareUsage` as
`/telemetry` reports it (`hardware.collection_data`, details level 1 and up).

Tessera measures what its writes store: the bytes of the vectors (`vector_io_write`) and of
the payloads (`payload_io_write`, their JSON) in each accepted write, counted by the node
that took the write. A request's own usage, which also counts its reads' scoring, is
`tessera.hw_meter`'s; these per-collection totals keep the writes' only: `cpu`, the reads
and the payload index counters stay 0 here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from tessera import hw_meter
from tessera.shard import operations as ops


def _column_bytes(column: ops.VectorColumn) -> int:
    if isinstance(column, ops.DenseColumn):
        rows = int(column.present.sum())
        return rows * int(column.values.shape[1] if column.values.ndim == 2 else 0) * 4
    total = 0
    for value in column.values:
        if value is None:
            continue
        if isinstance(value, tuple):  # sparse: (indices, values)
            total += sum(int(part.nbytes) for part in value)
        else:  # a multivector's (m, d) rows
            total += int(getattr(value, "nbytes", 0))
    return total


def _json_bytes(value: Any) -> int:
    """Bytes of `value` as JSON, in one call (a list of payloads: theirs, with the list's
    commas and a `null` per point without one). What orjson cannot write (integers past 64
    bits, which the WAL keeps another way) is not counted: the write is done by now."""
    try:
        return len(orjson.dumps(value))
    except TypeError:  # orjson.JSONEncodeError
        return 0


def write_bytes(record: ops.Record) -> tuple[int, int]:
    """(vector bytes, payload bytes) that `record` stores. Dense rows count 4 bytes an
    element, as they come in (float32); the stored datatype may be smaller."""
    if isinstance(record, ops.OperationBatch):
        found = [write_bytes(op) for op in record.operations]
        return sum(v for v, _ in found), sum(p for _, p in found)
    match record:
        case ops.UpsertPoints():
            vectors = sum(_column_bytes(c) for c in record.vectors.values())
            return vectors, _json_bytes(record.payloads) if any(record.payloads) else 0
        case ops.UpdateVectors():
            return sum(_column_bytes(c) for c in record.vectors.values()), 0
        case ops.SetPayload() | ops.OverwritePayload():
            return 0, _json_bytes(record.payload) * len(record.ids) if record.payload else 0
    return 0, 0


@dataclass
class HardwareCounters:
    """Guarded by its own lock: writes to different shards of a collection count at once."""

    vector_io_write: int = 0
    payload_io_write: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_write(self, record: ops.Record) -> None:
        """Counted here, and in the request's meter when it reports its usage."""
        vectors, payloads = write_bytes(record)
        with self._lock:
            self.vector_io_write += vectors
            self.payload_io_write += payloads
        meter = hw_meter.current()
        if meter is not None:
            meter.add_writes(vectors, payloads)

    def to_json(self) -> dict[str, int]:
        with self._lock:
            return {
                "cpu": 0,  # not metered (see the module's docstring)
                "payload_io_read": 0,
                "payload_io_write": self.payload_io_write,
                "payload_index_io_read": 0,
                "payload_index_io_write": 0,
                "vector_io_read": 0,
                "vector_io_write": self.vector_io_write,
            }
