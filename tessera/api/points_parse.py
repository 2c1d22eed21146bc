"""Point update requests -> validated `prepare` functions for the shard's write path.

Parsing checks everything that does not depend on stored state; the returned `prepare` runs
under the shard's write lock and checks what does (points that must exist), resolving
filters to ids so that the WAL record is explicit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tessera.api.vectors_parse import build_columns, normalize_vector_struct, parse_one_vector
from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest, point_not_found
from tessera.ids import PointId, parse_point_id, render_point_id
from tessera.query.filter_parse import parse_filter
from tessera.shard import operations as ops
from tessera.shard.holder import SegmentHolder
from tessera.shard.read import select_ids

Prepare = Callable[[SegmentHolder], ops.Record | None]

UPDATE_MODES = ("upsert", "insert_only", "update_only")


def _obj(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest(f"Format error in JSON body: {what} must be an object")
    return raw


def _payload(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadRequest("Format error in JSON body: payload must be a JSON object")
    return raw


def parse_ids(raw: Any) -> list[PointId]:
    if not isinstance(raw, list):
        raise BadRequest("Format error in JSON body: `points` must be a list of ids")
    return [parse_point_id(x) for x in raw]


def _require_existing(holder: SegmentHolder, ids: list[PointId]) -> None:
    missing = holder.missing(ids)
    if missing:
        raise point_not_found(render_point_id(missing[0]))


def parse_upsert(config: CollectionConfig, body: dict[str, Any]) -> Prepare:
    if "points" in body and "batch" not in body:
        points = body["points"]
        if not isinstance(points, list):
            raise BadRequest("Format error in JSON body: `points` must be a list")
        ids: list[PointId] = []
        vectors: list[dict[str, Any]] = []
        payloads: list[dict[str, Any] | None] = []
        for p in points:
            p = _obj(p, "point")
            if "id" not in p:
                raise BadRequest("Format error in JSON body: missing field `id`")
            ids.append(parse_point_id(p["id"]))
            vectors.append(normalize_vector_struct(p.get("vector", p.get("vectors"))))
            payloads.append(_payload(p.get("payload")))
    elif "batch" in body:
        ids, vectors, payloads = _parse_batch(_obj(body["batch"], "batch"))
    else:
        raise BadRequest("Format error in JSON body: expected `points` or `batch`")
    columns = build_columns(config, vectors)
    update_filter = parse_filter(body.get("update_filter"))
    mode = body.get("update_mode") or "upsert"
    if mode not in UPDATE_MODES:
        raise BadRequest(
            f"Format error in JSON body: unknown variant `{mode}`, expected one of "
            "`upsert`, `insert_only`, `update_only`"
        )
    op = ops.UpsertPoints(ids=ids, vectors=columns, payloads=payloads)
    if update_filter is None and mode == "upsert":
        return lambda holder: op

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        # Existing points are replaced only where the mode and the filter allow it; new
        # points are inserted unless the mode is update_only.
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

    return prepare


def _subset_upsert(op: ops.UpsertPoints, keep: list[int]) -> ops.UpsertPoints:
    import numpy as np

    rows = np.asarray(keep, dtype=np.int64)
    columns: dict[str, ops.VectorColumn] = {}
    for name, col in op.vectors.items():
        if isinstance(col, ops.DenseColumn):
            columns[name] = ops.DenseColumn(col.present[rows], col.values[rows])
        else:
            columns[name] = ops.ObjectColumn([col.values[i] for i in keep])
    return ops.UpsertPoints(
        ids=[op.ids[i] for i in keep], vectors=columns, payloads=[op.payloads[i] for i in keep]
    )


def _parse_batch(
    batch: dict[str, Any],
) -> tuple[list[PointId], list[dict[str, Any]], list[dict[str, Any] | None]]:
    ids = parse_ids(batch.get("ids"))
    n = len(ids)
    raw_vectors = batch.get("vectors")
    vectors: list[dict[str, Any]]
    if isinstance(raw_vectors, list):
        if len(raw_vectors) != n:
            raise BadRequest("Wrong input: number of ids and vectors must be equal")
        vectors = [{"": v} for v in raw_vectors]
    elif isinstance(raw_vectors, dict):
        vectors = [{} for _ in range(n)]
        for name, column in raw_vectors.items():
            if not isinstance(column, list) or len(column) != n:
                raise BadRequest("Wrong input: number of ids and vectors must be equal")
            for i, v in enumerate(column):
                if v is not None:
                    vectors[i][name] = v
    elif raw_vectors is None:
        vectors = [{} for _ in range(n)]
    else:
        raise BadRequest("Format error in JSON body: invalid batch vectors")
    raw_payloads = batch.get("payloads")
    if raw_payloads is None:
        payloads: list[dict[str, Any] | None] = [None] * n
    elif isinstance(raw_payloads, list) and len(raw_payloads) == n:
        payloads = [_payload(p) for p in raw_payloads]
    else:
        raise BadRequest("Wrong input: number of ids and payloads must be equal")
    return ids, vectors, payloads


def _selection(body: dict[str, Any]) -> Callable[[SegmentHolder], list[PointId]] | list[PointId]:
    """Explicit ids, or a filter resolved to ids at prepare time."""
    if body.get("points") is not None:
        return parse_ids(body["points"])
    if "filter" in body:
        filt = parse_filter(body["filter"])
        return lambda holder: select_ids(holder, filt)
    raise BadRequest("Format error in JSON body: expected `points` or `filter`")


def _with_ids(
    body: dict[str, Any], build: Callable[[list[PointId]], ops.Record], must_exist: bool
) -> Prepare:
    selection = _selection(body)

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        if isinstance(selection, list):
            ids = selection
            if must_exist:
                _require_existing(holder, ids)
        else:
            ids = selection(holder)
        return build(ids)

    return prepare


def parse_delete(body: dict[str, Any]) -> Prepare:
    return _with_ids(body, lambda ids: ops.DeletePoints(ids), must_exist=False)


def parse_set_payload(body: dict[str, Any], overwrite: bool) -> Prepare:
    payload = _payload(body.get("payload"))
    if payload is None:
        raise BadRequest("Format error in JSON body: missing field `payload`")
    key = body.get("key")
    if key is not None and not isinstance(key, str):
        raise BadRequest("Format error in JSON body: `key` must be a string")
    if overwrite:
        return _with_ids(body, lambda ids: ops.OverwritePayload(ids, payload), must_exist=True)
    if key is not None:
        from tessera.shard.payload_ops import parse_key_path

        parse_key_path(key)
    return _with_ids(body, lambda ids: ops.SetPayload(ids, payload, key), must_exist=True)


def parse_delete_payload(body: dict[str, Any]) -> Prepare:
    keys = body.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BadRequest("Format error in JSON body: `keys` must be a list of strings")
    return _with_ids(body, lambda ids: ops.DeletePayload(ids, list(keys)), must_exist=True)


def parse_clear_payload(body: dict[str, Any]) -> Prepare:
    return _with_ids(body, lambda ids: ops.ClearPayload(ids), must_exist=True)


def parse_update_vectors(config: CollectionConfig, body: dict[str, Any]) -> Prepare:
    points = body.get("points")
    if not isinstance(points, list):
        raise BadRequest("Format error in JSON body: `points` must be a list")
    ids: list[PointId] = []
    vectors: list[dict[str, Any]] = []
    for p in points:
        p = _obj(p, "point")
        ids.append(parse_point_id(p.get("id")))
        struct = normalize_vector_struct(p.get("vector"))
        for name, raw in struct.items():
            parse_one_vector(config, name, raw)
        vectors.append(struct)
    columns = build_columns(config, vectors)
    update_filter = parse_filter(body.get("update_filter"))

    def prepare(holder: SegmentHolder) -> ops.Record | None:
        _require_existing(holder, ids)
        op = ops.UpdateVectors(ids, columns)
        if update_filter is None:
            return op
        allowed = set(select_ids(holder, update_filter))
        keep = [i for i, pid in enumerate(ids) if pid in allowed]
        sub = _subset_upsert(ops.UpsertPoints(ids, columns, [None] * len(ids)), keep)
        return ops.UpdateVectors(sub.ids, sub.vectors) if keep else None

    return prepare


def parse_delete_vectors(config: CollectionConfig, body: dict[str, Any]) -> Prepare:
    names = body.get("vector")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequest("Format error in JSON body: `vector` must be a list of names")
    for name in names:
        if name not in config.vectors and name not in config.sparse_vectors:
            raise BadRequest(f"Wrong input: Not existing vector name error: {name}")
    return _with_ids(body, lambda ids: ops.DeleteVectors(ids, list(names)), must_exist=True)


BATCH_KINDS = (
    "upsert",
    "delete",
    "set_payload",
    "overwrite_payload",
    "delete_payload",
    "clear_payload",
    "update_vectors",
    "delete_vectors",
)


def parse_batch_operation(config: CollectionConfig, raw: Any) -> Prepare:
    item = _obj(raw, "operation")
    if len(item) != 1 or next(iter(item)) not in BATCH_KINDS:
        raise BadRequest(
            "Format error in JSON body: each operation must be one of " + ", ".join(BATCH_KINDS)
        )
    kind, inner = next(iter(item.items()))
    inner = _obj(inner, kind)
    if kind == "upsert":
        return parse_upsert(config, inner)
    if kind == "delete":
        return parse_delete(inner)
    if kind == "set_payload":
        return parse_set_payload(inner, overwrite=False)
    if kind == "overwrite_payload":
        return parse_set_payload(inner, overwrite=True)
    if kind == "delete_payload":
        return parse_delete_payload(inner)
    if kind == "clear_payload":
        return parse_clear_payload(inner)
    if kind == "update_vectors":
        return parse_update_vectors(config, inner)
    return parse_delete_vectors(config, inner)
