"""Qdrant's gRPC request messages -> the JSON values a REST body would carry.

Each function here reads one protobuf message and returns what the same thing looks like in
a REST request (`spec/qdrant-openapi.json`): a `PointId` becomes an integer or a UUID string,
a `Value` tree plain JSON, a `Filter` the filter object, a `Vector` a list (dense), a list of
lists (multi) or `{"indices", "values"}` (sparse). The gRPC services then hand the REST parse
functions exactly what a REST client would have sent, so both APIs validate and answer alike.

Unset optional fields are left out (or None), so that the REST defaults apply. Nothing here
checks more than the protobuf shape; what a REST body can get wrong, the REST parser reports.
Read consistency, write ordering and timeouts have no meaning in Tessera (writes are applied
before the answer, every active replica has them) and are ignored, as the REST layer ignores
them; shard key selectors are read by the points service (`shard_selector`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client import grpc as pb

from tessera.collection.values import ShardSelector
from tessera.errors import BadRequest

BOUNDS = ("lt", "gt", "gte", "lte")
UPDATE_MODES = {0: "upsert", 1: "insert_only", 2: "update_only"}
STRATEGIES = {0: "average_vector", 1: "best_score", 2: "sum_scores"}


def shard_key(message: Any) -> str | int:
    """A `ShardKey` message: a keyword or a number."""
    kind = message.WhichOneof("key")
    if kind is None:
        raise malformed("empty shard key")
    return str(message.keyword) if kind == "keyword" else int(message.number)


def shard_selector(message: Any) -> ShardSelector | None:
    """A `ShardKeySelector` message (None when it names no key)."""
    keys = tuple(shard_key(k) for k in message.shard_keys)
    if not keys:
        return None
    fallback = shard_key(message.fallback) if message.HasField("fallback") else None
    return ShardSelector(keys, fallback)


_HAS_SELECTOR: dict[type, bool] = {}


def opt_shard_selector(message: Any) -> ShardSelector | None:
    """The `shard_key_selector` of a request message, None when it has none set (or the
    message type has no such field: looked up once per type)."""
    kind = type(message)
    has = _HAS_SELECTOR.get(kind)
    if has is None:
        has = _HAS_SELECTOR[kind] = "shard_key_selector" in kind.DESCRIPTOR.fields_by_name
    if not has or not message.HasField("shard_key_selector"):
        return None
    return shard_selector(message.shard_key_selector)


def with_shard_key(body: dict[str, Any], message: Any) -> dict[str, Any]:
    """`body` with the `shard_key` of `message`'s `shard_key_selector` (REST's form: a key,
    a list of keys, or `{"target", "fallback"}`), when it has one set: what the items of a
    batch carry each."""
    fields = type(message).DESCRIPTOR.fields_by_name
    if "shard_key_selector" not in fields or not message.HasField("shard_key_selector"):
        return body
    selector = message.shard_key_selector
    keys = [shard_key(k) for k in selector.shard_keys]
    if selector.HasField("fallback") and keys:
        body["shard_key"] = {"target": keys[0], "fallback": shard_key(selector.fallback)}
    elif keys:
        body["shard_key"] = keys[0] if len(keys) == 1 else keys
    return body


def malformed(what: str) -> BadRequest:
    return BadRequest(f"Format error in request: {what}")


def opt(message: Any, name: str) -> Any:
    """An optional field's value, None when it is not set."""
    return getattr(message, name) if message.HasField(name) else None


def drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


# --------------------------------------------------------------------------- ids and values


def point_id(pid: pb.PointId) -> int | str:
    kind = pid.WhichOneof("point_id_options")
    if kind == "num":
        return pid.num
    if kind == "uuid":
        return pid.uuid
    raise BadRequest("Unable to parse point id: the PointId sets neither `num` nor `uuid`")


def point_ids(ids: Any) -> list[int | str]:
    return [point_id(p) for p in ids]


def value(v: pb.Value) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "integer_value":
        return v.integer_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return payload(v.struct_value.fields)
    if kind == "list_value":
        return [value(x) for x in v.list_value.values]
    return None  # null_value, or a Value with nothing set


def payload(fields: Mapping[str, pb.Value]) -> dict[str, Any]:
    return {key: value(fields[key]) for key in fields}


# --------------------------------------------------------------------------- vectors


def _flat_multi(data: list[float], count: int) -> list[list[float]]:
    if count == 0 or len(data) % count:
        raise BadRequest(
            f"Unable to convert to multi-dense vector: data length {len(data)} is not "
            f"divisible by vectors count {count}"
        )
    step = len(data) // count
    return [data[i : i + step] for i in range(0, len(data), step)]


def vector(v: pb.Vector) -> Any:
    """One vector: the `vector` oneof, or the deprecated `data`/`indices`/`vectors_count`."""
    kind = v.WhichOneof("vector")
    if kind == "dense":
        return list(v.dense.data)
    if kind == "sparse":
        return {"indices": list(v.sparse.indices), "values": list(v.sparse.values)}
    if kind == "multi_dense":
        return [list(row.data) for row in v.multi_dense.vectors]
    if kind == "document":
        return document(v.document)
    if kind is not None:  # image, object: inference inputs
        return {kind: "inference input"}
    if v.HasField("indices"):
        return {"indices": list(v.indices.data), "values": list(v.data)}
    if v.HasField("vectors_count"):
        return _flat_multi(list(v.data), v.vectors_count)
    return list(v.data)


def vectors(vs: pb.Vectors) -> Any:
    """A point's `Vectors`: the unnamed vector, or {name: vector}."""
    kind = vs.WhichOneof("vectors_options")
    if kind == "vector":
        return vector(vs.vector)
    if kind == "vectors":
        named = vs.vectors.vectors
        return {name: vector(named[name]) for name in named}
    return None


def _packed_f32(message: Any) -> npt.NDArray[np.float32] | None:
    """The floats of a message whose only field is `repeated float data = 1` (a `Vector`
    with nothing but `data`, a `DenseVector`), straight from its wire bytes: one packed
    field, tag 0x0A, a varint length, little-endian float32s. None for anything else
    (unknown fields included), which the caller reads field by field."""
    wire = message.SerializeToString()
    if len(wire) < 2 or wire[0] != 0x0A:
        return None
    size, shift, at = 0, 0, 1
    while at < len(wire):
        byte = wire[at]
        size |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            break
        shift += 7
    if at + size != len(wire) or size % 4:
        return None
    return np.frombuffer(wire, dtype="<f4", count=size // 4, offset=at).astype(np.float32)


def _is_plain_data(v: pb.Vector) -> bool:
    return not v.HasField("indices") and not v.HasField("vectors_count")


def dense_fast(v: pb.Vector) -> Any:
    """`vector(v)`, but a dense vector comes as a float32 array read from its wire bytes
    (no Python float per component; the upsert's dense column takes it as is)."""
    kind = v.WhichOneof("vector")
    if kind == "dense" or (kind is None and _is_plain_data(v)):
        packed = _packed_f32(v.dense if kind == "dense" else v)
        if packed is not None:
            return packed
    return vector(v)


def vectors_fast(vs: pb.Vectors) -> Any:
    """`vectors(vs)` with dense vectors as float32 arrays (`dense_fast`): for upserts."""
    kind = vs.WhichOneof("vectors_options")
    if kind == "vector":
        return dense_fast(vs.vector)
    if kind == "vectors":
        named = vs.vectors.vectors
        return {name: dense_fast(named[name]) for name in named}
    return None


def document(d: pb.Document) -> dict[str, Any]:
    """A `Document` inference input, as its REST JSON."""
    return {"text": d.text, "model": d.model, "options": payload(d.options)}


def vector_example(ve: pb.VectorExample) -> Any:
    kind = ve.WhichOneof("example")
    if kind == "id":
        return point_id(ve.id)
    if kind == "vector":
        return vector(ve.vector)
    raise malformed("a VectorExample must set `id` or `vector`")


# --------------------------------------------------------------------------- filters


def filter_(f: pb.Filter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if f.must:
        out["must"] = [condition(c) for c in f.must]
    if f.should:
        out["should"] = [condition(c) for c in f.should]
    if f.must_not:
        out["must_not"] = [condition(c) for c in f.must_not]
    if f.HasField("min_should"):
        out["min_should"] = {
            "conditions": [condition(c) for c in f.min_should.conditions],
            "min_count": f.min_should.min_count,
        }
    return out


def opt_filter(message: Any, name: str = "filter") -> dict[str, Any] | None:
    return filter_(getattr(message, name)) if message.HasField(name) else None


def condition(c: pb.Condition) -> dict[str, Any]:
    kind = c.WhichOneof("condition_one_of")
    if kind == "field":
        return field_condition(c.field)
    if kind == "is_empty":
        return {"is_empty": {"key": c.is_empty.key}}
    if kind == "is_null":
        return {"is_null": {"key": c.is_null.key}}
    if kind == "has_id":
        return {"has_id": point_ids(c.has_id.has_id)}
    if kind == "filter":
        return filter_(c.filter)
    if kind == "nested":
        return {"nested": {"key": c.nested.key, "filter": filter_(c.nested.filter)}}
    if kind == "has_vector":
        return {"has_vector": c.has_vector.has_vector}
    if kind == "slice":
        return {"slice": {"total": c.slice.total, "index": c.slice.index}}
    raise malformed("a Condition must set one of its variants")


def _bounds(message: Any) -> dict[str, Any]:
    return {k: getattr(message, k) for k in BOUNDS if message.HasField(k)}


def _datetime_bounds(message: Any) -> dict[str, str]:
    """Timestamps as RFC 3339 strings: REST's datetime range."""
    return {k: getattr(message, k).ToJsonString() for k in BOUNDS if message.HasField(k)}


def geo_point(p: pb.GeoPoint) -> dict[str, float]:
    return {"lat": p.lat, "lon": p.lon}


def _line(line: pb.GeoLineString) -> dict[str, Any]:
    return {"points": [geo_point(p) for p in line.points]}


def field_condition(fc: pb.FieldCondition) -> dict[str, Any]:
    out: dict[str, Any] = {"key": fc.key}
    if fc.HasField("match"):
        out["match"] = match(fc.match)
    if fc.HasField("range"):
        out["range"] = _bounds(fc.range)
    elif fc.HasField("datetime_range"):
        out["range"] = _datetime_bounds(fc.datetime_range)
    if fc.HasField("geo_bounding_box"):
        box = fc.geo_bounding_box
        out["geo_bounding_box"] = {
            "top_left": geo_point(box.top_left),
            "bottom_right": geo_point(box.bottom_right),
        }
    if fc.HasField("geo_radius"):
        radius = fc.geo_radius
        out["geo_radius"] = {"center": geo_point(radius.center), "radius": radius.radius}
    if fc.HasField("geo_polygon"):
        polygon: dict[str, Any] = {"exterior": _line(fc.geo_polygon.exterior)}
        if fc.geo_polygon.interiors:
            polygon["interiors"] = [_line(x) for x in fc.geo_polygon.interiors]
        out["geo_polygon"] = polygon
    if fc.HasField("values_count"):
        out["values_count"] = _bounds(fc.values_count)
    if fc.HasField("is_empty"):
        out["is_empty"] = fc.is_empty
    if fc.HasField("is_null"):
        out["is_null"] = fc.is_null
    return out


def match(m: pb.Match) -> dict[str, Any]:
    kind = m.WhichOneof("match_value")
    if kind == "keyword":
        return {"value": m.keyword}
    if kind == "integer":
        return {"value": m.integer}
    if kind == "boolean":
        return {"value": m.boolean}
    if kind == "keywords":
        return {"any": list(m.keywords.strings)}
    if kind == "integers":
        return {"any": list(m.integers.integers)}
    if kind == "except_keywords":
        return {"except": list(m.except_keywords.strings)}
    if kind == "except_integers":
        return {"except": list(m.except_integers.integers)}
    if kind is not None:  # text, phrase, text_any, prefix, substring
        return {kind: getattr(m, kind)}
    raise malformed("a Match must set one of its variants")


# --------------------------------------------------------------------------- selectors


def points_selector(ps: pb.PointsSelector) -> dict[str, Any]:
    """`{"points": [...]}` or `{"filter": {...}}`, merged into an operation body."""
    kind = ps.WhichOneof("points_selector_one_of")
    if kind == "points":
        return {"points": point_ids(ps.points.ids)}
    if kind == "filter":
        return {"filter": filter_(ps.filter)}
    raise malformed("a PointsSelector must set one of its variants")


def opt_selector(message: Any, name: str) -> dict[str, Any]:
    return points_selector(getattr(message, name)) if message.HasField(name) else {}


def with_payload(message: Any, name: str = "with_payload") -> Any:
    if not message.HasField(name):
        return None
    selector: pb.WithPayloadSelector = getattr(message, name)
    kind = selector.WhichOneof("selector_options")
    if kind == "enable":
        return selector.enable
    if kind == "include":
        return {"include": list(selector.include.fields)}
    if kind == "exclude":
        return {"exclude": list(selector.exclude.fields)}
    return None


def with_vectors(message: Any, name: str = "with_vectors") -> Any:
    if not message.HasField(name):
        return None
    selector: pb.WithVectorsSelector = getattr(message, name)
    kind = selector.WhichOneof("selector_options")
    if kind == "enable":
        return selector.enable
    if kind == "include":
        return list(selector.include.names)
    return None


def search_params(message: Any, name: str = "params") -> dict[str, Any] | None:
    if not message.HasField(name):
        return None
    p: pb.SearchParams = getattr(message, name)
    out = drop_none({"hnsw_ef": opt(p, "hnsw_ef"), "exact": opt(p, "exact")})
    if p.HasField("quantization"):
        q = p.quantization
        out["quantization"] = drop_none(
            {
                "ignore": opt(q, "ignore"),
                "rescore": opt(q, "rescore"),
                "oversampling": opt(q, "oversampling"),
            }
        )
    if p.HasField("idf"):
        corpus = opt_filter(p.idf, "corpus")
        out["idf"] = "global" if corpus is None else {"corpus": corpus}
    return out


def lookup_location(message: Any, name: str = "lookup_from") -> dict[str, Any] | None:
    if not message.HasField(name):
        return None
    loc: pb.LookupLocation = getattr(message, name)
    return drop_none({"collection": loc.collection_name, "vector": opt(loc, "vector_name")})


def with_lookup(message: Any, name: str = "with_lookup") -> dict[str, Any] | None:
    if not message.HasField(name):
        return None
    wl: pb.WithLookup = getattr(message, name)
    return drop_none(
        {
            "collection": wl.collection,
            "with_payload": with_payload(wl),
            "with_vectors": with_vectors(wl),
        }
    )
