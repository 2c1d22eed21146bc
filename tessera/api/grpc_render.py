"""The collection's plain answers (tessera.collection.values) -> gRPC messages.

Points are built as nested dicts of constructor arguments, which protobuf turns into a
message tree in one pass (much faster than building every `Value` and copying it into its
parent). Vectors are answered in the deprecated `data` / `indices` / `vectors_count` fields
of `VectorOutput`, as Qdrant's own server answers them, so that old and new clients alike
read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from typing import Any, TypeVar

from qdrant_client import grpc as pb

from tessera.collection.values import FacetHit, Group, Points, Record
from tessera.ids import render_point_id

M = TypeVar("M")

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_SCALARS: dict[type, str] = {str: "string_value", bool: "bool_value", float: "double_value"}
_NULL: dict[str, Any] = {"null_value": 0}


def build(cls: type[M], **fields: Any) -> M:
    """A message from constructor arguments that may be nested dicts."""
    return cls(**fields)


def point_id(raw: int | str) -> dict[str, Any]:
    return {"num": raw} if isinstance(raw, int) else {"uuid": raw}


def value(v: Any) -> dict[str, Any]:
    """A JSON value as the arguments of a `Value`."""
    field = _SCALARS.get(type(v))
    if field is not None:
        return {field: v}
    if type(v) is int:
        if _I64_MIN <= v <= _I64_MAX:
            return {"integer_value": v}
        return {"double_value": float(v)}  # an u64 beyond i64, as Qdrant sends it
    if v is None:
        return _NULL
    if isinstance(v, dict):
        return {"struct_value": {"fields": payload(v)}}
    if isinstance(v, list | tuple):
        return {"list_value": {"values": [value(x) for x in v]}}
    if isinstance(v, bool):
        return {"bool_value": v}
    if isinstance(v, int):
        return {"integer_value": int(v)}
    if isinstance(v, float):
        return {"double_value": float(v)}
    return {"string_value": str(v)}


def payload(p: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    if not p:
        return None
    out: dict[str, dict[str, Any]] = {}
    for key, v in p.items():
        field = _SCALARS.get(type(v))  # the common case without a call per value
        out[key] = {field: v} if field is not None else value(v)
    return out


def vector_output(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):  # sparse
        return {"data": raw["values"], "indices": {"data": raw["indices"]}}
    if raw and isinstance(raw[0], list):  # multivector: rows flattened
        return {"data": [x for row in raw for x in row], "vectors_count": len(raw)}
    return {"data": raw}


def vectors_output(raw: Any) -> dict[str, Any] | None:
    """`VectorsOutput` for a point's `vector` as REST renders it: None, a list (the unnamed
    vector) or {name: vector}."""
    if raw is None:
        return None
    if isinstance(raw, dict):
        return {"vectors": {"vectors": {name: vector_output(v) for name, v in raw.items()}}}
    return {"vector": vector_output(raw)}


def order_value(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return {"int": raw}
    return {"float": float(raw)}


def _column(values: list[Any] | None, n: int) -> Iterable[Any]:
    return values if values is not None else repeat(None, n)


def _ids(points: Points) -> list[dict[str, Any]]:
    return [
        {"num": pid} if type(pid) is int else point_id(render_point_id(pid)) for pid in points.ids
    ]


def _add_optional(out: list[dict[str, Any]], points: Points) -> None:
    """The columns an answer may leave out (payload, vectors, order value) into each point's
    arguments, only where selected: a field given as None costs protobuf a check each."""
    if points.payloads is not None:
        for item, p in zip(out, points.payloads):
            if p:
                item["payload"] = payload(p)
    if points.vectors is not None:
        for item, vector in zip(out, points.vectors):
            if vector is not None:
                item["vectors"] = vectors_output(vector)
    if points.order_values is not None:
        for item, raw in zip(out, points.order_values):
            if raw is not None:
                item["order_value"] = order_value(raw)
    if points.shard_keys is not None:
        for item, key in zip(out, points.shard_keys):
            if key is not None:
                item["shard_key"] = {"keyword": key} if isinstance(key, str) else {"number": key}


def scored(points: Points) -> list[dict[str, Any]]:
    """Scored points as the arguments of gRPC `ScoredPoint`s."""
    n = len(points.ids)
    out = [
        {"id": pid, "score": score, "version": version or 0}
        for pid, score, version in zip(
            _ids(points), _column(points.scores, n), _column(points.versions, n)
        )
    ]
    _add_optional(out, points)
    return out


def records(points: Points) -> list[dict[str, Any]]:
    """Points as the arguments of gRPC `RetrievedPoint`s."""
    out = [{"id": pid} for pid in _ids(points)]
    _add_optional(out, points)
    return out


def record(r: Record) -> dict[str, Any]:
    """One record as the arguments of a gRPC `RetrievedPoint`."""
    return {
        "id": point_id(render_point_id(r.id)),
        "payload": payload(r.payload),
        "vectors": vectors_output(r.vector),
        "order_value": order_value(r.order_value),
    }


def batch(results: list[Points]) -> list[dict[str, Any]]:
    """Lists of scored points as `BatchResult`s."""
    return [{"result": scored(points)} for points in results]


def group_id(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        return {"string_value": raw}
    if raw >= 0:
        return {"unsigned_value": raw}
    return {"integer_value": raw}


def groups(found: list[Group]) -> dict[str, Any]:
    """Groups as the arguments of a `GroupsResult`."""
    out = []
    for group in found:
        item: dict[str, Any] = {
            "id": group_id(group.id),
            "hits": scored(group.hits),
        }
        if group.lookup is not None:
            item["lookup"] = record(group.lookup)
        out.append(item)
    return {"groups": out}


def facet_hit(hit: FacetHit) -> dict[str, Any]:
    return {"value": facet_value(hit.value), "count": hit.count}


def update_result(result: dict[str, Any]) -> dict[str, Any]:
    completed = result["status"] == "completed"
    status = pb.UpdateStatus.Completed if completed else pb.UpdateStatus.Acknowledged
    return {"operation_id": result["operation_id"], "status": status}


def facet_value(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bool):
        return {"bool_value": raw}
    if isinstance(raw, int):
        return {"integer_value": raw}
    return {"string_value": str(raw)}
