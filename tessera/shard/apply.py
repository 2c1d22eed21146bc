"""Applying an operation to the segment holder: deterministic, in sequence order.

Every operation was validated before it entered the WAL, so applying cannot fail on user
input; replaying the same records from the same checkpoint gives the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, assert_never

import numpy as np
import numpy.typing as npt

from tessera.ids import PointId
from tessera.segment.segment import Segment
from tessera.shard import operations as ops
from tessera.shard import vector_schema
from tessera.shard.holder import SegmentHolder
from tessera.shard.payload_ops import delete_keys, set_payload


def apply_record(holder: SegmentHolder, seq: int, record: ops.Record) -> None:
    if isinstance(record, ops.OperationBatch):
        for op in record.operations:
            apply_operation(holder, seq, op)
    else:
        apply_operation(holder, seq, record)


def apply_operation(holder: SegmentHolder, seq: int, op: ops.Operation) -> None:
    match op:
        case ops.UpsertPoints():
            _upsert(holder, seq, op)
        case ops.UpdateVectors():
            _update_vectors(holder, seq, op)
        case ops.DeleteVectors():
            offsets = holder.writable_offsets(op.ids, seq)
            segment = holder.appendable
            for name in op.names:
                segment.clear_vectors(name, offsets)
            segment.touch(offsets, seq)
        case ops.SetPayload():
            _edit_payloads(holder, seq, op.ids, lambda p: set_payload(p, op.payload, op.key))
        case ops.OverwritePayload():
            _edit_payloads(holder, seq, op.ids, lambda p: dict(op.payload))
        case ops.DeletePayload():
            _edit_payloads(holder, seq, op.ids, lambda p: delete_keys(p, op.keys))
        case ops.ClearPayload():
            _edit_payloads(holder, seq, op.ids, lambda p: None)
        case ops.DeletePoints():
            for segment in holder.segments:
                segment.delete(segment.offsets_of(op.ids), seq)
        case ops.CreateFieldIndex():
            holder.index_schemas[op.key] = op.schema
            for segment in holder.segments:
                segment.create_field_index(op.key, op.schema)
        case ops.DeleteFieldIndex():
            holder.index_schemas.pop(op.key, None)
            for segment in holder.segments:
                segment.drop_field_index(op.key)
        case ops.CreateVectorName():
            vector_schema.apply_create(holder, op.name, op.config)
        case ops.DeleteVectorName():
            vector_schema.apply_delete(holder, op.name)
        case _:
            assert_never(op)


def _last_occurrences(ids: list[PointId]) -> list[int]:
    """Positions of the last occurrence of each id: within one batch the last one wins."""
    last = {pid: i for i, pid in enumerate(ids)}
    if len(last) == len(ids):
        return list(range(len(ids)))
    return sorted(last.values())


def _upsert(holder: SegmentHolder, seq: int, op: ops.UpsertPoints) -> None:
    rows = _last_occurrences(op.ids)
    ids = [op.ids[i] for i in rows] if len(rows) != len(op.ids) else op.ids
    target = holder.appendable
    for segment in holder.segments:
        if segment is not target:
            segment.delete(segment.offsets_of(ids), seq)
    offsets = target.allocate(ids, seq)
    row_index = np.asarray(rows, dtype=np.int64)
    for name in target.storages:
        column = op.vectors.get(name)
        if column is None:
            target.clear_vectors(name, offsets)
        else:
            _write_column(target, name, offsets, column, row_index, replace=True)
    payloads = [op.payloads[i] for i in rows]
    target.set_payloads(offsets, payloads)


def _update_vectors(holder: SegmentHolder, seq: int, op: ops.UpdateVectors) -> None:
    rows = _last_occurrences(op.ids)
    ids = [op.ids[i] for i in rows]
    offsets = holder.writable_offsets(ids, seq)
    target = holder.appendable
    if len(rows) == len(op.ids):
        row_index = np.asarray(rows, dtype=np.int64)
        for name, column in op.vectors.items():
            _write_column(target, name, offsets, column, row_index, replace=False)
    else:
        # A point named more than once: each of its vectors comes from the last item that
        # gives that vector, as Qdrant merges the items of one point.
        where = {pid: k for k, pid in enumerate(ids)}
        for name, column in op.vectors.items():
            given = _given_rows(column)
            last = {op.ids[i]: i for i in given}
            chosen = np.asarray(sorted(last.values()), dtype=np.int64)
            at = np.asarray([where[op.ids[i]] for i in chosen.tolist()], dtype=np.int64)
            _write_column(target, name, offsets[at], column, chosen, replace=False)
    target.touch(offsets, seq)


def _given_rows(column: ops.VectorColumn) -> list[int]:
    """The rows of a column that give a vector."""
    if isinstance(column, ops.DenseColumn):
        return np.flatnonzero(column.present).tolist()
    return [i for i, value in enumerate(column.values) if value is not None]


def _write_column(
    target: Segment,
    name: str,
    offsets: npt.NDArray[np.int64],
    column: ops.VectorColumn,
    rows: npt.NDArray[np.int64],
    replace: bool,
) -> None:
    if isinstance(column, ops.DenseColumn):
        present = column.present[rows]
        if present.any():
            target.write_dense(name, offsets[present], column.values[rows[present]])
        if replace and not present.all():
            target.clear_vectors(name, offsets[~present])
    else:
        values = [column.values[i] for i in rows.tolist()]
        if replace:
            target.write_objects(name, offsets, values)
        else:
            keep = [i for i, v in enumerate(values) if v is not None]
            target.write_objects(name, offsets[keep], [values[i] for i in keep])


def _edit_payloads(
    holder: SegmentHolder,
    seq: int,
    ids: list[PointId],
    edit: Callable[[dict[str, Any] | None], dict[str, Any] | None],
) -> None:
    offsets = holder.writable_offsets(ids, seq)
    target = holder.appendable
    new = [edit(target.payloads[off]) for off in offsets.tolist()]
    target.set_payloads(offsets, new)
    target.touch(offsets, seq)
