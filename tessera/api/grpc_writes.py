"""Qdrant's gRPC point updates -> the collection's writes (`collection.writes`), straight
from the protobuf (no REST body in between).

Every update message of the `Points` service has a twin inside `PointsUpdateOperation` (the
items of `UpdateBatch`) with the same field names, so one function per kind serves both.
Vectors are checked by `vectors_parse.typed_columns` (the checks of a JSON vector), the
rules on names and ids by the functions the REST parser runs. A message missing a field
Qdrant's handlers require fails with the texts `grpc_errors` words as Qdrant does.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as pb

from tessera.api import points_parse as parse
from tessera.api.grpc_convert import malformed, opt_shard_selector, payload
from tessera.api.grpc_filter import decode_filter, point_id
from tessera.api.grpc_vectors import inferred, vectors
from tessera.api.vectors_parse import EMPTY_DENSE, VectorRule, typed_columns, unnamed_sparse
from tessera.collection import writes
from tessera.collection.values import ShardSelector
from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest
from tessera.ids import PointId

UPDATE_MODES = {0: "upsert", 1: "insert_only", 2: "update_only"}

# Qdrant's handlers (src/tonic/api/update_common.rs) check what a message lacks before
# converting it, and UpdateBatch runs each operation through the same handler, so these
# texts are the same in a batch (grpc_errors.REWORDED words them as Qdrant does).
NO_POINTS = "Format error in request: `points` is missing"  # Delete, ClearPayload
NO_POINTS_SELECTOR = "Format error in request: `points_selector` is missing"
NO_ID = "Format error in request: a PointVectors must set `id`"
NO_VECTORS = "Format error in request: `vectors` is missing"
# Qdrant's conversion of a PointStruct without `vectors` (an empty `Vectors` is a point
# without vectors)
NO_POINT_VECTORS = "Expected some vectors"


def _ids(raw: Any) -> list[PointId]:
    return [parse.body_point_id(point_id(p)) for p in raw]


def selection(ps: pb.PointsSelector) -> writes.PointSelector:
    """Explicit ids, or a filter resolved to ids when the write is applied."""
    kind = ps.WhichOneof("points_selector_one_of")
    if kind == "points":
        return _ids(ps.points.ids)
    if kind == "filter":
        return writes.Matching(decode_filter(ps.filter))
    raise malformed("a PointsSelector must set one of its variants")


def _required(msg: Any, name: str, missing: str) -> writes.PointSelector:
    if not msg.HasField(name):
        raise BadRequest(missing)
    return selection(getattr(msg, name))


def _point_vectors(vs: pb.Vectors, fast: bool) -> dict[str, tuple[str, Any]]:
    """A point's vectors, documents inferred (as documents, not queries)."""
    if vs.WhichOneof("vectors_options") is None:
        raise BadRequest("No Vector Provided")  # Qdrant's words for a Vectors of no kind
    decoded = vectors(vs, fast)
    if (
        "" in decoded
        and decoded[""][0] == "sparse"
        and vs.WhichOneof("vectors_options") == "vector"
    ):
        raise unnamed_sparse()
    return {name: inferred(kind, value, query=False) for name, (kind, value) in decoded.items()}


def _update_filter(msg: Any) -> Any:
    return (
        decode_filter(msg.update_filter, "update_filter") if msg.HasField("update_filter") else None
    )


def upsert(msg: Any, config: CollectionConfig) -> writes.Write:
    ids: list[PointId] = []
    per_point: list[dict[str, tuple[str, Any]]] = []
    payloads: list[dict[str, Any] | None] = []
    for i, p in enumerate(msg.points):
        ids.append(parse.body_point_id(point_id(p.id)))
        if not p.HasField("vectors"):
            raise BadRequest(NO_POINT_VECTORS)
        try:
            vectors = _point_vectors(p.vectors, fast=True)
        except VectorRule as exc:
            named = p.vectors.WhichOneof("vectors_options") == "vectors"
            raise exc.at_grpc_point(i, named) from None
        unnamed = vectors.get("")
        if unnamed is not None and unnamed[0] == "dense" and not len(unnamed[1]):
            raise BadRequest(f"Wrong input: points[{i}].vector.vector: {EMPTY_DENSE}")
        per_point.append(vectors)
        payloads.append(payload(p.payload) if p.payload else None)
    columns = typed_columns(config, per_point)
    mode = "upsert"
    if msg.HasField("update_mode"):
        mode = UPDATE_MODES.get(msg.update_mode, "upsert")
    return writes.upsert(ids, columns, payloads, _update_filter(msg), mode)


def delete(msg: Any) -> writes.Write:
    return writes.delete(_required(msg, "points", NO_POINTS))


def set_payload(msg: Any, overwrite: bool) -> writes.Write:
    points = _required(msg, "points_selector", NO_POINTS_SELECTOR)
    values = payload(msg.payload)
    key = msg.key if msg.HasField("key") else None
    if key is not None:
        writes.check_payload_key(key)  # also for an overwrite, which ignores it, as Qdrant
    if overwrite:
        return writes.overwrite_payload(points, values)
    return writes.set_payload(points, values, key)


def delete_payload(msg: Any) -> writes.Write:
    points = _required(msg, "points_selector", NO_POINTS_SELECTOR)
    return writes.delete_payload(points, list(msg.keys))


def clear_payload(msg: Any) -> writes.Write:
    return writes.clear_payload(_required(msg, "points", NO_POINTS))


def update_vectors(msg: Any, config: CollectionConfig) -> writes.Write:
    ids: list[PointId] = []
    per_point: list[dict[str, tuple[str, Any]]] = []
    for i, p in enumerate(msg.points):
        if not p.HasField("id"):
            raise BadRequest(NO_ID)
        ids.append(parse.body_point_id(point_id(p.id)))
        if not p.HasField("vectors"):
            raise BadRequest(NO_VECTORS)
        struct = _point_vectors(p.vectors, fast=False)
        if not struct:
            raise parse.no_vectors_to_update(i)
        per_point.append(struct)
    columns = typed_columns(config, per_point)
    return writes.update_vectors(ids, columns, _update_filter(msg))


def delete_vectors(msg: Any, config: CollectionConfig) -> writes.Write:
    points = _required(msg, "points_selector", NO_POINTS_SELECTOR)
    if not msg.HasField("vectors"):
        raise BadRequest(NO_VECTORS)
    names = list(msg.vectors.names)
    parse.check_names_to_delete(config, names)
    return writes.delete_vectors(points, names)


def operation(
    op: pb.PointsUpdateOperation, config: CollectionConfig
) -> tuple[writes.Write, ShardSelector | None]:
    """One item of `UpdateBatch`: its write and the shard keys it names."""
    kind = op.WhichOneof("operation")
    if kind is None:
        raise malformed("a PointsUpdateOperation must set one of its operations")
    inner = getattr(op, kind)
    return _operation(kind, inner, config), opt_shard_selector(inner)


def _operation(kind: str, inner: Any, config: CollectionConfig) -> writes.Write:
    if kind == "upsert":
        return upsert(inner, config)
    if kind == "delete_points":
        return delete(inner)
    if kind in ("delete_deprecated", "clear_payload_deprecated"):
        points = selection(inner)
        return (
            writes.delete(points) if kind == "delete_deprecated" else writes.clear_payload(points)
        )
    if kind in ("set_payload", "overwrite_payload"):
        return set_payload(inner, overwrite=kind == "overwrite_payload")
    if kind == "delete_payload":
        return delete_payload(inner)
    if kind == "clear_payload":
        return clear_payload(inner)
    if kind == "update_vectors":
        return update_vectors(inner, config)
    return delete_vectors(inner, config)
