"""Qdrant's gRPC `Filter` message -> `filter_model.Filter`, straight from the protobuf.

The message already has the types a JSON body may get wrong, so what is left to check are
the rules `filter_parse` shares with this decoder (a closed polygon, `min_count` of at
least 1, a slice index below its total, coordinates in range, no NaN bounds, a field
condition that tests something): the same rule raises the same error by either transport,
and `grpc_errors` words it for gRPC. Error places are named as REST names them
(`filter.must[1].match`).
"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as pb

from tessera.api.grpc_convert import malformed
from tessera.errors import BadRequest
from tessera.ids import PointId, parse_point_id
from tessera.query import filter_model as m
from tessera.query import filter_parse as rules
from tessera.query.payload_path import PayloadPath

_BOUNDS = ("gt", "gte", "lt", "lte")
# filter_model's order of precedence when one FieldCondition sets several tests (gRPC's
# datetime range is a field of its own, tried right after the numeric one)
_FIELD_TESTS = tuple(
    t
    for test in rules.FIELD_TESTS
    for t in ((test, "datetime_range") if test == "range" else (test,))
)


def point_id(pid: pb.PointId) -> int | str:
    """A `PointId` as REST spells it (an integer or a UUID string), not yet checked."""
    kind = pid.WhichOneof("point_id_options")
    if kind == "num":
        return int(pid.num)
    if kind == "uuid":
        return str(pid.uuid)
    raise BadRequest("Unable to parse point id: the PointId sets neither `num` nor `uuid`")


def decode_filter(f: pb.Filter, where: str = "filter") -> m.Filter:
    return _filter(f, where, 0)


def opt_filter(message: Any, name: str = "filter") -> m.Filter | None:
    """The filter in `message.<name>`, None when the field is not set."""
    return _filter(getattr(message, name), name, 0) if message.HasField(name) else None


def _filter(f: pb.Filter, where: str, depth: int) -> m.Filter:
    rules.check_depth(depth, where)
    min_should = None
    if f.HasField("min_should"):
        at = f"{where}.min_should"
        count = rules.check_min_count(int(f.min_should.min_count), where)
        conditions = tuple(
            _condition(c, f"{at}.conditions[{i}]", depth + 1)
            for i, c in enumerate(f.min_should.conditions)
        )
        min_should = m.MinShould(conditions, count)
    return m.Filter(
        must=_clause(f.must, f"{where}.must", depth),
        should=_clause(f.should, f"{where}.should", depth),
        must_not=_clause(f.must_not, f"{where}.must_not", depth),
        min_should=min_should,
    )


def _clause(conditions: Any, where: str, depth: int) -> tuple[m.Condition, ...] | None:
    if not conditions:  # an empty repeated field is an absent one
        return None
    return tuple(_condition(c, f"{where}[{i}]", depth + 1) for i, c in enumerate(conditions))


def _condition(c: pb.Condition, where: str, depth: int) -> m.Condition:
    kind = c.WhichOneof("condition_one_of")
    if kind == "field":
        return _field_condition(c.field, where)
    if kind == "is_empty":
        return m.IsEmpty(rules.key_path(c.is_empty.key, f"{where}.is_empty.key"))
    if kind == "is_null":
        return m.IsNull(rules.key_path(c.is_null.key, f"{where}.is_null.key"))
    if kind == "has_id":
        # Qdrant's `TryFrom<PointId>` words a bad UUID here as anywhere else in gRPC.
        ids: frozenset[PointId] = frozenset(parse_point_id(point_id(p)) for p in c.has_id.has_id)
        return m.HasId(ids)
    if kind == "filter":
        return _filter(c.filter, where, depth)
    if kind == "nested":
        if not c.nested.HasField("filter"):
            raise BadRequest("Nested condition must have a filter")
        key = rules.key_path(c.nested.key, f"{where}.nested.key")
        return m.Nested(key, _filter(c.nested.filter, f"{where}.nested.filter", depth + 1))
    if kind == "has_vector":
        return m.HasVector(c.has_vector.has_vector)
    if kind == "slice":
        return rules.checked_slice(int(c.slice.total), int(c.slice.index), where)
    raise malformed("a Condition must set one of its variants")


def _field_condition(fc: Any, where: str) -> m.Condition:
    key = rules.key_path(fc.key, f"{where}.key")
    for test in _FIELD_TESTS:
        if fc.HasField(test):
            decoded: m.Condition = _FIELD_DECODERS[test](key, getattr(fc, test), f"{where}.{test}")
            return decoded
    rules.no_field_test(where)


def _bounds(message: Any, where: str) -> m.Bounds:
    given = {k: rules.check_number(getattr(message, k), f"{where}.{k}") for k in _BOUNDS}
    return m.Bounds(**{k: float(v) for k, v in given.items() if message.HasField(k)})


def _range(key: PayloadPath, r: pb.Range, where: str) -> m.Condition:
    return m.NumericRange(key, _bounds(r, where))


def timestamp_micros(ts: Any) -> float:
    """A protobuf `Timestamp` as microseconds since the epoch (datetime indexes' unit)."""
    return float(ts.seconds * 1_000_000 + ts.nanos // 1000)


def _datetime_range(key: PayloadPath, r: Any, where: str) -> m.Condition:
    micros = {k: timestamp_micros(getattr(r, k)) for k in _BOUNDS if r.HasField(k)}
    return m.DatetimeRange(key, m.Bounds(**micros))


def _values_count(key: PayloadPath, v: pb.ValuesCount, where: str) -> m.Condition:
    return m.ValuesCount(key, _bounds(v, where))


def _is_empty(key: PayloadPath, value: bool, where: str) -> m.Condition:
    return m.IsEmpty(key, bool(value), per_value=True)


def _is_null(key: PayloadPath, value: bool, where: str) -> m.Condition:
    return m.IsNull(key, bool(value), per_value=True)


def geo_point(p: pb.GeoPoint, where: str) -> tuple[float, float]:
    return rules.checked_geo_point(float(p.lat), float(p.lon), where)


def _bbox(key: PayloadPath, box: pb.GeoBoundingBox, where: str) -> m.Condition:
    if not (box.HasField("top_left") and box.HasField("bottom_right")):
        raise BadRequest("Malformed GeoBoundingBox type")  # Qdrant's TryFrom
    return m.GeoBoundingBox(
        key,
        geo_point(box.top_left, f"{where}.top_left"),
        geo_point(box.bottom_right, f"{where}.bottom_right"),
    )


def _radius(key: PayloadPath, radius: pb.GeoRadius, where: str) -> m.Condition:
    if not radius.HasField("center"):
        raise BadRequest("Malformed GeoRadius type")  # Qdrant's TryFrom
    center = geo_point(radius.center, f"{where}.center")
    return m.GeoRadius(key, center, rules.check_number(float(radius.radius), f"{where}.radius"))


def _ring(line: pb.GeoLineString, where: str) -> tuple[tuple[float, float], ...]:
    points = tuple(geo_point(p, f"{where}.points[{i}]") for i, p in enumerate(line.points))
    return rules.checked_ring(points, where)


def _polygon(key: PayloadPath, polygon: pb.GeoPolygon, where: str) -> m.Condition:
    exterior = _ring(polygon.exterior, f"{where}.exterior")
    interiors = tuple(
        _ring(line, f"{where}.interiors[{i}]") for i, line in enumerate(polygon.interiors)
    )
    return m.GeoPolygon(key, exterior, interiors)


def _match(key: PayloadPath, match: pb.Match, where: str) -> m.Condition:
    kind = match.WhichOneof("match_value")
    if kind in ("keyword", "integer", "boolean"):
        return m.MatchValue(key, getattr(match, kind))
    if kind == "keywords":
        return m.MatchAny(key, rules.distinct(match.keywords.strings))
    if kind == "integers":
        return m.MatchAny(key, rules.distinct(match.integers.integers))
    if kind == "except_keywords":
        return m.MatchExcept(key, rules.distinct(match.except_keywords.strings))
    if kind == "except_integers":
        return m.MatchExcept(key, rules.distinct(match.except_integers.integers))
    if kind == "text":
        return m.MatchText(key, match.text)
    if kind == "text_any":
        return m.MatchText(key, match.text_any, any_token=True)
    if kind == "phrase":
        return m.MatchPhrase(key, match.phrase)
    if kind == "prefix":
        return m.MatchPrefix(key, match.prefix)
    if kind == "substring":
        return m.MatchSubstring(key, match.substring)
    raise malformed("a Match must set one of its variants")


_FIELD_DECODERS: dict[str, Any] = {
    "values_count": _values_count,
    "is_empty": _is_empty,
    "is_null": _is_null,
    "match": _match,
    "range": _range,
    "datetime_range": _datetime_range,
    "geo_bounding_box": _bbox,
    "geo_radius": _radius,
    "geo_polygon": _polygon,
}


def decode_condition(c: pb.Condition, where: str) -> m.Condition:
    """One condition on its own (a formula's), named `where` in errors."""
    return _condition(c, where, 1)
