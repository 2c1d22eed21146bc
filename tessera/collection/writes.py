"""Updates as the collection takes them: parsed values in, a `Write` out.

Each builder gets what a transport parsed (ids, vector columns, payloads, filters) and
returns a `Write`: the function the shard calls under its write lock with the segment
holder. It checks what depends on stored state (points that must exist, `update_filter`,
`update_mode`) and resolves filters to explicit ids, so that the WAL record it returns is
explicit; `Collection.update` logs and applies it and answers the operation id. The
checks that do not depend on stored state are the transport's, before a builder is called
(`check_payload_key`, `check_field_schema` for the two that need storage code).

The vector columns of a batch are the WAL's own column records (one array per vector
name for the whole batch), so a parsed batch is logged without another copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tessera.errors import point_not_found
from tessera.ids import PointId, render_point_id
from tessera.query.filter_model import Filter
from tessera.segment.field_index import parse_field_schema
from tessera.shard import operations as ops
from tessera.shard.holder import SegmentHolder
from tessera.shard.operations import DenseColumn, ObjectColumn, VectorColumn
from tessera.shard.payload_ops import parse_key_path
from tessera.shard.read import select_ids

__all__ = [
    "DenseColumn",
    "Matching",
    "ObjectColumn",
    "Planned",
    "PointSelector",
    "VectorColumn",
    "Write",
    "check_field_schema",
    "check_payload_key",
    "clear_payload",
    "create_field_index",
    "delete",
    "delete_field_index",
    "delete_payload",
    "delete_vectors",
    "overwrite_payload",
    "set_payload",
    "update_vectors",
    "upsert",
]

Write = Callable[[SegmentHolder], ops.Record | None]

UPDATE_MODES = ("upsert", "insert_only", "update_only")


@dataclass(frozen=True)
class Matching:
    """The points that match `filter` (every point: None) when the write is applied."""

    filter: Filter | None


# Explicit ids, or the points a filter selects under the write lock.
PointSelector = list[PointId] | Matching


@dataclass(frozen=True)
class Planned:
    """A write with what it asks before stored state narrows it, for strict mode: `asked`
    the record of every point requested (None when a filter selects them), `filter` the
    filter that selects points."""

    prepare: Write
    asked: ops.Record | None = None
    filter: Filter | None = None

    def __call__(self, holder: SegmentHolder) -> ops.Record | None:
        return self.prepare(holder)


def check_payload_key(key: str) -> None:
    """400 for a `key` of set_payload that is no payload path (`a.b[].c[0]`)."""
    parse_key_path(key)


def check_field_schema(schema: Any) -> None:
    """400 for a payload index schema Tessera does not know."""
    parse_field_schema(schema)


def _require_existing(holder: SegmentHolder, ids: list[PointId]) -> None:
    missing = holder.missing(ids)
    if missing:
        raise point_not_found(render_point_id(missing[0]))


# --------------------------------------------------------------------------- points


def upsert(
    ids: list[PointId],
    columns: dict[str, VectorColumn],
    payloads: list[dict[str, Any] | None],
    update_filter: Filter | None = None,
    mode: str = "upsert",
) -> Write:
    """Insert or replace points. Existing points are replaced only where `mode`
    ("upsert", "insert_only", "update_only") and `update_filter` allow it; new points are
    inserted unless the mode is update_only."""
    op = ops.UpsertPoints(ids=ids, vectors=columns, payloads=payloads)
    if update_filter is None and mode == "upsert":
        return Planned(lambda holder: op, op)

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        allowed = set(select_ids(holder, update_filter)) if update_filter is not None else None
        keep = []
        for i, pid in enumerate(ids):
            if holder.contains(pid):
                if mode != "insert_only" and (allowed is None or pid in allowed):
                    keep.append(i)
            elif mode != "update_only":
                keep.append(i)
        if not keep:
            return None
        return _subset_upsert(op, keep)

    return Planned(prepare, op, update_filter)


def _subset_upsert(op: ops.UpsertPoints, keep: list[int]) -> ops.UpsertPoints:
    rows = np.asarray(keep, dtype=np.int64)
    columns: dict[str, VectorColumn] = {}
    for name, col in op.vectors.items():
        if isinstance(col, DenseColumn):
            columns[name] = DenseColumn(col.present[rows], col.values[rows])
        else:
            columns[name] = ObjectColumn([col.values[i] for i in keep])
    return ops.UpsertPoints(
        ids=[op.ids[i] for i in keep], vectors=columns, payloads=[op.payloads[i] for i in keep]
    )


def update_vectors(
    ids: list[PointId], columns: dict[str, VectorColumn], update_filter: Filter | None = None
) -> Write:
    """Replace the given vectors of existing points (404 for a missing one); with
    `update_filter`, only of those that match it."""

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        _require_existing(holder, ids)
        op = ops.UpdateVectors(ids, columns)
        if update_filter is None:
            return op
        allowed = set(select_ids(holder, update_filter))
        keep = [i for i, pid in enumerate(ids) if pid in allowed]
        sub = _subset_upsert(ops.UpsertPoints(ids, columns, [None] * len(ids)), keep)
        return ops.UpdateVectors(sub.ids, sub.vectors) if keep else None

    return Planned(prepare, ops.UpdateVectors(ids, columns), update_filter)


def _with_ids(
    points: PointSelector, build: Callable[[list[PointId]], ops.Record], must_exist: bool
) -> Write:
    def prepare(holder: SegmentHolder) -> ops.Record | None:
        if isinstance(points, Matching):
            ids = select_ids(holder, points.filter)
        else:
            ids = points
            if must_exist:
                _require_existing(holder, ids)
        return build(ids)

    if isinstance(points, Matching):
        return Planned(prepare, None, points.filter)
    return Planned(prepare, build(points))


def delete(points: PointSelector) -> Write:
    return _with_ids(points, lambda ids: ops.DeletePoints(ids), must_exist=False)


def set_payload(points: PointSelector, payload: dict[str, Any], key: str | None) -> Write:
    """Merge `payload` into each point's (at the nested path `key` when given)."""
    return _with_ids(points, lambda ids: ops.SetPayload(ids, payload, key), must_exist=True)


def overwrite_payload(points: PointSelector, payload: dict[str, Any]) -> Write:
    return _with_ids(points, lambda ids: ops.OverwritePayload(ids, payload), must_exist=True)


def delete_payload(points: PointSelector, keys: list[str]) -> Write:
    return _with_ids(points, lambda ids: ops.DeletePayload(ids, keys), must_exist=True)


def clear_payload(points: PointSelector) -> Write:
    return _with_ids(points, lambda ids: ops.ClearPayload(ids), must_exist=True)


def delete_vectors(points: PointSelector, names: list[str]) -> Write:
    return _with_ids(points, lambda ids: ops.DeleteVectors(ids, names), must_exist=True)


# --------------------------------------------------------------------------- indexes


def create_field_index(field: str, schema: Any) -> Write:
    """A payload index on `field`; `schema` as the user gave it (see check_field_schema)."""
    return lambda holder: ops.CreateFieldIndex(field, schema)


def delete_field_index(field: str) -> Write:
    return lambda holder: ops.DeleteFieldIndex(field)
