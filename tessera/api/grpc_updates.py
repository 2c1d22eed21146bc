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


def set_payload(msg: Any) -> dict[str, Any]:
    body = {"payload": cv.payload(msg.payload), **cv.opt_selector(msg, "points_selector")}
    return drop_none({**body, "key": opt(msg, "key")})


def delete_payload(msg: Any) -> dict[str, Any]:
    return {"keys": list(msg.keys), **cv.opt_selector(msg, "points_selector")}


def update_vectors(msg: Any) -> dict[str, Any]:
    points = [
        {"id": cv.point_id(p.id), "vector": cv.vectors(p.vectors) if p.HasField("vectors") else {}}
        for p in msg.points
    ]
    body: dict[str, Any] = {"points": points}
    if msg.HasField("update_filter"):
        body["update_filter"] = cv.filter_(msg.update_filter)
    return body


def delete_vectors(msg: Any) -> dict[str, Any]:
    names = list(msg.vectors.names)
    return {"vector": names, **cv.opt_selector(msg, "points_selector")}


def operation(op: pb.PointsUpdateOperation) -> dict[str, Any]:
    """One item of `UpdateBatch` as one item of REST's `operations`."""
    kind = op.WhichOneof("operation")
    if kind == "upsert":
        return {"upsert": upsert(op.upsert)}
    if kind == "delete_points":
        return {"delete": cv.opt_selector(op.delete_points, "points")}
    if kind == "delete_deprecated":
        return {"delete": cv.points_selector(op.delete_deprecated)}
    if kind == "set_payload":
        return {"set_payload": set_payload(op.set_payload)}
    if kind == "overwrite_payload":
        return {"overwrite_payload": set_payload(op.overwrite_payload)}
    if kind == "delete_payload":
        return {"delete_payload": delete_payload(op.delete_payload)}
    if kind == "clear_payload":
        return {"clear_payload": cv.opt_selector(op.clear_payload, "points")}
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
