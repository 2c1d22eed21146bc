"""Updates as the collection takes them: parsed values in, a `Write` out.

Each builder gets what a transport parsed (ids, vector columns, payloads, filters) and
returns a `Write`: the function the shard calls under its write lock with the segment
holder. It checks what depends on stored state (points that must exist, `update_filter`,
`update_mode`) and resolves filters to explicit ids, so that the WAL record it returns is
explicit; `Collection.update` logs and applies it and answers the operation id. The
checks that do not depend on stored state are the transport's, before a builder is called
(`check_payload_key`; a payload index's schema is decoded by the segment layer's
`parse_field_schema` / `schema_of`, re-exported here for the transports).

The vector columns of a batch are the WAL's own column records (one array per vector
name for the whole batch), so a parsed batch is logged without another copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tessera.errors import BadRequest, point_not_found
from tessera.ids import PointId, render_point_id
from tessera.query.filter_model import Filter
from tessera.query.payload_path import check_paths, parse_path
from tessera.segment.field_schema import (
    FieldSchema,
    check_nested,
    parse_field_schema,
    schema_of,
)
from tessera.shard import operations as ops
from tessera.shard.holder import SegmentHolder
from tessera.shard.operations import DenseColumn, ObjectColumn, VectorColumn
from tessera.shard.payload_ops import parse_key_path
from tessera.shard.read import select_ids
from tessera.shard.shard import ApplyThenRaise

__all__ = [
    "DenseColumn",
    "FieldSchema",
    "Matching",
    "ObjectColumn",
    "Planned",
    "PointSelector",
    "VectorColumn",
    "Write",
    "WriteSpec",
    "build",
    "check_nested",
    "check_payload_key",
    "clear_payload",
    "create_field_index",
    "delete",
    "delete_field_index",
    "delete_payload",
    "delete_vectors",
    "overwrite_payload",
    "parse_field_schema",
    "schema_of",
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
class WriteSpec:
    """A write as its builder's name (`kind`), the points it names and the builder's other
    arguments: what cluster mode splits by shard and sends to the peer leading each shard,
    which builds the write again (`build`)."""

    kind: str
    points: PointSelector
    args: tuple[Any, ...] = ()

    def split(
        self, shards: Sequence[int], shard_of: Callable[[list[PointId]], Any]
    ) -> dict[int, WriteSpec]:
        """This write per shard: the points of each (`shard_of`: ids -> shard per id);
        a filter's write goes to every shard of `shards`."""
        if isinstance(self.points, Matching):
            return dict.fromkeys(shards, self)
        ids = self.points
        which = np.asarray(shard_of(ids), dtype=np.int64)
        parts: dict[int, WriteSpec] = {}
        for shard in np.unique(which).tolist():
            keep = np.flatnonzero(which == shard).tolist()
            if len(keep) == len(ids):
                return {int(shard): self}
            part_ids = [ids[i] for i in keep]
            args = self.args
            if self.kind == "upsert":
                columns, payloads, *rest = args
                args = (_subset_columns(columns, keep), [payloads[i] for i in keep], *rest)
            elif self.kind == "update_vectors":
                columns, *rest = args
                args = (_subset_columns(columns, keep), *rest)
            parts[int(shard)] = WriteSpec(self.kind, part_ids, args)
        return parts


@dataclass(frozen=True)
class Planned:
    """A write with what it asks before stored state narrows it, for strict mode: `asked`
    the record of every point requested (None when a filter selects them), `filter` the
    filter that selects points; `spec` the write as data (cluster mode routes it)."""

    prepare: Write
    asked: ops.Record | None = None
    filter: Filter | None = None
    spec: WriteSpec | None = None

    def __call__(self, holder: SegmentHolder) -> ops.Record | None:
        return self.prepare(holder)


def check_payload_key(key: str) -> None:
    """400 for a `key` of set_payload that is no payload path (`a.b[].c[0]`)."""
    parse_path(key)
    parse_key_path(key)


def _on_existing(
    holder: SegmentHolder,
    ids: list[PointId],
    build: Callable[[list[int]], ops.Record | None],
) -> ops.Record | None:
    """`build` over the positions in `ids` of the points the collection holds; when one is
    missing, that record is applied to the others and the first missing id is a 404
    afterwards: Qdrant writes the points it finds before it reports the one it did not
    (`check_unprocessed_points`; Qdrant Edge does, and qdrant-client's congruence tests
    check it for every payload and vector write)."""
    missing = holder.missing(ids)
    if not missing:
        return build(list(range(len(ids))))
    absent = set(missing)
    present = [i for i, pid in enumerate(ids) if pid not in absent]
    raise ApplyThenRaise(
        build(present) if present else None, point_not_found(render_point_id(missing[0]))
    )


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
    spec = WriteSpec("upsert", ids, (columns, payloads, update_filter, mode))
    if update_filter is None and mode == "upsert":
        return Planned(lambda holder: op, op, spec=spec)

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        allowed = set(select_ids(holder, update_filter)) if update_filter is not None else None
        keep = []
        for i, pid in enumerate(ids):
            if holder.contains(pid):
                if mode != "insert_only" and (allowed is None or pid in allowed):
                    keep.append(i)
            elif mode != "update_only":
                keep.append(i)
        # Even with no point left the write is logged (an empty upsert), as Qdrant logs an
        # operation before its condition is applied: it answers a new operation id.
        return _subset_upsert(op, keep)

    return Planned(prepare, op, update_filter, spec)


def _subset_columns(columns: dict[str, VectorColumn], keep: list[int]) -> dict[str, VectorColumn]:
    rows = np.asarray(keep, dtype=np.int64)
    subset: dict[str, VectorColumn] = {}
    for name, col in columns.items():
        if isinstance(col, DenseColumn):
            subset[name] = DenseColumn(col.present[rows], col.values[rows])
        else:
            subset[name] = ObjectColumn([col.values[i] for i in keep])
    return subset


def _subset_upsert(op: ops.UpsertPoints, keep: list[int]) -> ops.UpsertPoints:
    return ops.UpsertPoints(
        ids=[op.ids[i] for i in keep],
        vectors=_subset_columns(op.vectors, keep),
        payloads=[op.payloads[i] for i in keep],
    )


def update_vectors(
    ids: list[PointId], columns: dict[str, VectorColumn], update_filter: Filter | None = None
) -> Write:
    """Replace the given vectors of existing points (a missing one: the others are
    written, then 404, as `_on_existing`); with `update_filter`, only of those that match
    it."""

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        allowed = None if update_filter is None else set(select_ids(holder, update_filter))

        def build(keep: list[int]) -> ops.Record | None:
            if allowed is not None:
                keep = [i for i in keep if ids[i] in allowed]
            if len(keep) == len(ids):
                return ops.UpdateVectors(ids, columns)
            if not keep:
                return None
            sub = _subset_upsert(ops.UpsertPoints(ids, columns, [None] * len(ids)), keep)
            return ops.UpdateVectors(sub.ids, sub.vectors)

        return _on_existing(holder, ids, build)

    spec = WriteSpec("update_vectors", ids, (columns, update_filter))
    return Planned(prepare, ops.UpdateVectors(ids, columns), update_filter, spec)


def _with_ids(
    points: PointSelector,
    build: Callable[[list[PointId]], ops.Record],
    must_exist: bool,
    spec: WriteSpec,
) -> Write:
    def prepare(holder: SegmentHolder) -> ops.Record | None:
        if isinstance(points, Matching):
            return build(select_ids(holder, points.filter))
        if must_exist:
            return _on_existing(
                holder,
                points,
                lambda keep: build(
                    points if len(keep) == len(points) else [points[i] for i in keep]
                ),
            )
        return build(points)

    if isinstance(points, Matching):
        return Planned(prepare, None, points.filter, spec)
    return Planned(prepare, build(points), spec=spec)


def delete(points: PointSelector) -> Write:
    spec = WriteSpec("delete", points)
    return _with_ids(points, lambda ids: ops.DeletePoints(ids), False, spec)


def set_payload(points: PointSelector, payload: dict[str, Any], key: str | None) -> Write:
    """Merge `payload` into each point's (at the nested path `key` when given)."""
    spec = WriteSpec("set_payload", points, (payload, key))
    return _with_ids(points, lambda ids: ops.SetPayload(ids, payload, key), True, spec)


def overwrite_payload(points: PointSelector, payload: dict[str, Any]) -> Write:
    spec = WriteSpec("overwrite_payload", points, (payload,))
    return _with_ids(points, lambda ids: ops.OverwritePayload(ids, payload), True, spec)


def delete_payload(points: PointSelector, keys: list[str]) -> Write:
    check_paths(keys)
    spec = WriteSpec("delete_payload", points, (keys,))
    return _with_ids(points, lambda ids: ops.DeletePayload(ids, keys), True, spec)


def clear_payload(points: PointSelector) -> Write:
    spec = WriteSpec("clear_payload", points)
    return _with_ids(points, lambda ids: ops.ClearPayload(ids), True, spec)


def delete_vectors(points: PointSelector, names: list[str]) -> Write:
    spec = WriteSpec("delete_vectors", points, (names,))
    return _with_ids(points, lambda ids: ops.DeleteVectors(ids, names), True, spec)


_BUILDERS: dict[str, Callable[..., Write]] = {
    "upsert": upsert,
    "update_vectors": update_vectors,
    "delete": delete,
    "set_payload": set_payload,
    "overwrite_payload": overwrite_payload,
    "delete_payload": delete_payload,
    "clear_payload": clear_payload,
    "delete_vectors": delete_vectors,
}


def build(spec: WriteSpec) -> Write:
    """The write `spec` describes (a peer's: 400 for a kind Tessera does not know)."""
    builder = _BUILDERS.get(spec.kind)
    if builder is None:
        raise BadRequest(f"Bad request: unknown write kind {spec.kind!r}")
    return builder(spec.points, *spec.args)


# --------------------------------------------------------------------------- indexes


def create_field_index(field: str, schema: Any) -> Write:
    """A payload index on `field`; `schema` its JSON form (`FieldSchema.wire()`). A malformed
    `field` is refused here, before the index's schema is logged (it was recorded, then failed
    to build)."""
    parse_path(field)
    return lambda holder: ops.CreateFieldIndex(field, schema)


def delete_field_index(field: str) -> Write:
    return lambda holder: ops.DeleteFieldIndex(field)
