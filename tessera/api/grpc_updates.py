"""gRPC point updates -> REST operation bodies.

Every update message of the `Points` service has a twin inside `PointsUpdateOperation` (the
items of `UpdateBatch`) with the same field names, so one function per kind serves both:
`upsert(UpsertPoints | PointStructList)`, `set_payload(SetPayloadPoints | SetPayload)`, ...
Each returns the body of the REST operation (`PUT /points`, `POST /points/payload`, ...),
which is also the value under that operation's key in `POST /points/batch`.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as pb

from tessera.api import grpc_convert as cv
from tessera.api.grpc_convert import drop_none, opt
from tessera.errors import BadRequest

FIELD_TYPES = ("keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid")


def point(p: pb.PointStruct) -> dict[str, Any]:
    return {
        "id": cv.point_id(p.id),
        "vector": cv.vectors_fast(p.vectors) if p.HasField("vectors") else None,
        "payload": cv.payload(p.payload) if p.payload else None,
    }


def upsert(msg: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"points": [point(p) for p in msg.points]}
    if msg.HasField("update_filter"):
        body["update_filter"] = cv.filter_(msg.update_filter)
    if msg.HasField("update_mode"):
        body["update_mode"] = cv.UPDATE_MODES.get(msg.update_mode, "upsert")
    return body


# Qdrant's handlers (src/tonic/api/update_common.rs) check what a message lacks before
# converting it, and UpdateBatch runs each operation through the same handler, so these
# texts are the same in a batch (grpc_errors.REWORDED words them as Qdrant does).
NO_POINTS = "Format error in request: `points` is missing"  # Delete, ClearPayload
NO_POINTS_SELECTOR = "Format error in request: `points_selector` is missing"
NO_ID = "Format error in request: a PointVectors must set `id`"
NO_VECTORS = "Format error in request: `vectors` is missing"


def _selector(msg: Any, name: str, missing: str) -> dict[str, Any]:
    if not msg.HasField(name):
        raise BadRequest(missing)
    return cv.points_selector(getattr(msg, name))


def set_payload(msg: Any) -> dict[str, Any]:
    selector = _selector(msg, "points_selector", NO_POINTS_SELECTOR)
    body = {"payload": cv.payload(msg.payload), **selector}
    return drop_none({**body, "key": opt(msg, "key")})


def delete_payload(msg: Any) -> dict[str, Any]:
    return {"keys": list(msg.keys), **_selector(msg, "points_selector", NO_POINTS_SELECTOR)}


def _point_vectors(p: pb.PointVectors) -> dict[str, Any]:
    if not p.HasField("id"):
        raise BadRequest(NO_ID)
    pid = cv.point_id(p.id)
    if not p.HasField("vectors"):
        raise BadRequest(NO_VECTORS)
    return {"id": pid, "vector": cv.vectors(p.vectors)}


def update_vectors(msg: Any) -> dict[str, Any]:
    points = [_point_vectors(p) for p in msg.points]
    body: dict[str, Any] = {"points": points}
    if msg.HasField("update_filter"):
        body["update_filter"] = cv.filter_(msg.update_filter)
    return body


def delete_vectors(msg: Any) -> dict[str, Any]:
    selector = _selector(msg, "points_selector", NO_POINTS_SELECTOR)
    if not msg.HasField("vectors"):
        raise BadRequest(NO_VECTORS)
    return {"vector": list(msg.vectors.names), **selector}


def operation(op: pb.PointsUpdateOperation) -> dict[str, Any]:
    """One item of `UpdateBatch` as one item of REST's `operations` (with its shard key)."""
    body = _operation(op)
    kind = op.WhichOneof("operation")
    if kind is not None:
        (inner,) = body.values()
        if isinstance(inner, dict):
            cv.with_shard_key(inner, getattr(op, kind))
    return body


def _operation(op: pb.PointsUpdateOperation) -> dict[str, Any]:
    kind = op.WhichOneof("operation")
    if kind == "upsert":
        return {"upsert": upsert(op.upsert)}
    if kind == "delete_points":
        return {"delete": _selector(op.delete_points, "points", NO_POINTS)}
    if kind == "delete_deprecated":
        return {"delete": cv.points_selector(op.delete_deprecated)}
    if kind == "set_payload":
        return {"set_payload": set_payload(op.set_payload)}
    if kind == "overwrite_payload":
        return {"overwrite_payload": set_payload(op.overwrite_payload)}
    if kind == "delete_payload":
        return {"delete_payload": delete_payload(op.delete_payload)}
    if kind == "clear_payload":
        return {"clear_payload": _selector(op.clear_payload, "points", NO_POINTS)}
    if kind == "clear_payload_deprecated":
        return {"clear_payload": cv.points_selector(op.clear_payload_deprecated)}
    if kind == "update_vectors":
        return {"update_vectors": update_vectors(op.update_vectors)}
    if kind == "delete_vectors":
        return {"delete_vectors": delete_vectors(op.delete_vectors)}
    raise cv.malformed("a PointsUpdateOperation must set one of its operations")


def field_index(req: pb.CreateFieldIndexCollection) -> dict[str, Any]:
    """`CreateFieldIndexCollection` as the body of `PUT /collections/{name}/index`: the
    index params object when given, else the bare type name."""
    schema: Any = None
    if req.HasField("field_index_params"):
        from tessera.api.grpc_collections import convert_index_params

        schema = convert_index_params(req.field_index_params)
    elif req.HasField("field_type") and 0 <= req.field_type < len(FIELD_TYPES):
        schema = FIELD_TYPES[req.field_type]
    return drop_none({"field_name": req.field_name, "field_schema": schema})
