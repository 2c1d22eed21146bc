"""Qdrant's filter JSON -> `filter_model` dataclasses, validated completely up front.

Errors follow Qdrant's split: a body that does not have the schema's shape (an unknown
condition, a wrong JSON type, a latitude out of range, an unreadable datetime) is a
`BadRequest` "Format error in JSON body: ..."; a well-shaped value that breaks a rule (a
polygon that is not closed, `min_count: 0`, a slice index past its total, a field condition
with nothing to test) is an `UnprocessableEntity` "Validation error in JSON body: [...]".
Both are 4xx and both name the offending place, e.g. `filter.must[1].match`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from tessera.errors import BadRequest, UnprocessableEntity
from tessera.ids import PointId, not_a_point_id, parse_point_id
from tessera.query import filter_model as m
from tessera.query.datetime_parse import parse_datetime_micros
from tessera.query.payload_path import PayloadPath, parse_path

_MAX_DEPTH = 64
_I64 = (-(2**63), 2**63 - 1)
# Qdrant's `Filter` refuses unknown fields (in its fields' order); its conditions' structs
# (field conditions, `match`, `range`, geo shapes, `has_id`, `nested`...) ignore them.
_FILTER_KEYS = ("should", "min_should", "must", "must_not")
# Local mode's order of precedence when one FieldCondition sets several tests.
FIELD_TESTS = (
    "values_count",
    "is_empty",
    "is_null",
    "match",
    "range",
    "geo_bounding_box",
    "geo_radius",
    "geo_polygon",
)
_BOUND_KEYS = ("gt", "gte", "lt", "lte")


def _shape(where: str, message: str) -> NoReturn:
    raise BadRequest(f"Format error in JSON body: {where}: {message}")


def _rule(where: str, message: str) -> NoReturn:
    raise UnprocessableEntity(f"Validation error in JSON body: [{where}: {message}]")


def _object(raw: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """An object whose fields are all `allowed` (serde's `deny_unknown_fields`)."""
    obj = _record(raw, where)
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        expected = ", ".join(f"`{a}`" for a in allowed)
        _shape(where, f"unknown field `{unknown[0]}`, expected one of {expected}")
    return obj


def _record(raw: Any, where: str) -> dict[str, Any]:
    """An object; fields it has beyond those read are ignored, as serde ignores them."""
    if not isinstance(raw, dict):
        _shape(where, f"expected an object, got {_json_type(raw)}")
    return raw


def _json_type(raw: Any) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int | float):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    if isinstance(raw, list):
        return "an array"
    return "an object"


def _number(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        _shape(where, f"expected a number, got {_json_type(raw)}")
    value = float(raw)
    if math.isnan(value):
        _shape(where, "expected a number, got NaN")
    return value


def _string(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        _shape(where, f"expected a string, got {_json_type(raw)}")
    return raw


def _uint(raw: Any, where: str, limit: int = 2**64 - 1) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= limit:
        _shape(where, f"expected an unsigned integer, got {raw!r}")
    return raw


def _key(raw: Any, where: str) -> PayloadPath:
    return parse_path(_string(raw, where))


def parse_filter(raw: Any, where: str = "filter") -> m.Filter | None:
    """Parse a Qdrant `Filter` object (None stays None)."""
    if raw is None:
        return None
    return _filter(raw, where, 0)


def _filter(raw: Any, where: str, depth: int) -> m.Filter:
    check_depth(depth, where)
    obj = _object(raw, where, _FILTER_KEYS)
    min_should = None
    if obj.get("min_should") is not None:
        ms = _object(obj["min_should"], f"{where}.min_should", ("conditions", "min_count"))
        if "conditions" not in ms or "min_count" not in ms:
            _shape(f"{where}.min_should", "missing field `conditions` or `min_count`")
        conds = ms["conditions"]
        if not isinstance(conds, list):
            _shape(f"{where}.min_should.conditions", "expected an array of conditions")
        count = check_min_count(_uint(ms["min_count"], f"{where}.min_should.min_count"), where)
        parsed = tuple(
            _condition(c, f"{where}.min_should.conditions[{i}]", depth + 1)
            for i, c in enumerate(conds)
        )
        min_should = m.MinShould(parsed, count)
    return m.Filter(
        must=_clause(obj.get("must"), f"{where}.must", depth),
        should=_clause(obj.get("should"), f"{where}.should", depth),
        must_not=_clause(obj.get("must_not"), f"{where}.must_not", depth),
        min_should=min_should,
    )


def _clause(raw: Any, where: str, depth: int) -> tuple[m.Condition, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        # Qdrant takes a lone condition where a list is expected
        return (_condition(raw, where, depth + 1),)
    if not isinstance(raw, list):
        _shape(where, f"expected a condition or an array of conditions, got {_json_type(raw)}")
    return tuple(_condition(c, f"{where}[{i}]", depth + 1) for i, c in enumerate(raw))


def _condition(raw: Any, where: str, depth: int) -> m.Condition:
    if not isinstance(raw, dict):
        _shape(where, f"expected a condition object, got {_json_type(raw)}")
    # Tried in the order of Qdrant's untagged `Condition` (what has several names is the
    # first that fits)
    if "key" in raw:
        return _field_condition(raw, where)
    for name, cls in (("is_empty", m.IsEmpty), ("is_null", m.IsNull)):
        if name in raw:
            field = _record(raw[name], f"{where}.{name}")
            if "key" not in field:
                _shape(f"{where}.{name}", "missing field `key`")
            return cls(_key(field["key"], f"{where}.{name}.key"))
    if "has_id" in raw:
        ids = raw["has_id"]
        if not isinstance(ids, list):
            _shape(f"{where}.has_id", f"expected an array of point ids, got {_json_type(ids)}")
        return m.HasId(frozenset(_point_id(p, f"{where}.has_id[{i}]") for i, p in enumerate(ids)))
    if "has_vector" in raw:
        name = raw["has_vector"]
        return m.HasVector(_string(name, f"{where}.has_vector"))
    if "nested" in raw:
        nested = _record(raw["nested"], f"{where}.nested")
        if "key" not in nested or "filter" not in nested:
            _shape(f"{where}.nested", "missing field `key` or `filter`")
        key = _key(nested["key"], f"{where}.nested.key")
        return m.Nested(key, _filter(nested["filter"], f"{where}.nested.filter", depth + 1))
    if "slice" in raw:
        body = _object(raw["slice"], f"{where}.slice", _SLICE)
        if "total" not in body or "index" not in body:
            _shape(f"{where}.slice", "missing field `total` or `index`")
        total = _uint(body["total"], f"{where}.slice.total", 2**32 - 1)
        if total == 0:  # Qdrant's `total` is a NonZeroU32: refused as it is read (400)
            _shape(f"{where}.slice.total", "invalid value: integer `0`, expected a nonzero u32")
        index = _uint(body["index"], f"{where}.slice.index", 2**32 - 1)
        return checked_slice(total, index, where)
    if raw.keys() <= set(_FILTER_KEYS):
        return _filter(raw, where, depth)
    # Qdrant's words for an object that is none of its conditions
    _shape(
        where,
        'Expected some form of condition, which can be a field condition (like {"key": ..., '
        '"match": ... }), or some other mentioned in the documentation: '
        "https://qdrant.tech/documentation/concepts/filtering/#filtering-conditions",
    )


_SLICE = ("total", "index")


def _point_id(raw: Any, where: str) -> PointId:
    try:
        return parse_point_id(raw)
    except BadRequest:
        _shape(where, not_a_point_id(raw))


def _field_condition(raw: dict[str, Any], where: str) -> m.Condition:
    key = _key(raw["key"], f"{where}.key")
    for test in FIELD_TESTS:
        value = raw.get(test)
        if value is not None:
            return _FIELD_PARSERS[test](key, value, f"{where}.{test}")
    no_field_test(where)


def _bool_test(
    cls: type[m.IsEmpty] | type[m.IsNull],
) -> Callable[[PayloadPath, Any, str], m.Condition]:
    def parse(key: PayloadPath, raw: Any, where: str) -> m.Condition:
        if not isinstance(raw, bool):
            _shape(where, f"expected a boolean, got {_json_type(raw)}")
        return cls(key, raw, per_value=True)

    return parse


def _values_count(key: PayloadPath, raw: Any, where: str) -> m.Condition:
    obj = _record(raw, where)
    b = {k: _uint(obj[k], f"{where}.{k}") for k in _BOUND_KEYS if obj.get(k) is not None}
    return m.ValuesCount(key, m.Bounds(**{k: float(v) for k, v in b.items()}))


def _match(key: PayloadPath, raw: Any, where: str) -> m.Condition:
    kinds = ("value", "text", "text_any", "phrase", "prefix", "substring", "any", "except")
    obj = _record(raw, where)
    present = [k for k in kinds if k in obj]
    if len(present) != 1:
        _shape(where, f"expected exactly one of {list(kinds)}, got {sorted(obj)}")
    kind = present[0]
    value = obj[kind]
    at = f"{where}.{kind}"
    if kind == "value":
        return m.MatchValue(key, _scalar(value, at))
    if kind in ("any", "except"):
        values = _any_variants(value, at)
        return m.MatchAny(key, values) if kind == "any" else m.MatchExcept(key, values)
    text = _string(value, at)
    if kind == "text":
        return m.MatchText(key, text)
    if kind == "text_any":
        return m.MatchText(key, text, any_token=True)
    if kind == "phrase":
        return m.MatchPhrase(key, text)
    if kind == "prefix":
        return m.MatchPrefix(key, text)
    return m.MatchSubstring(key, text)


def _scalar(raw: Any, where: str) -> m.MatchScalar:
    if isinstance(raw, bool | str):
        return raw
    if isinstance(raw, int):
        if not _I64[0] <= raw <= _I64[1]:
            _shape(where, f"integer {raw} is out of the 64-bit range")
        return raw
    _shape(where, f"expected a string, an integer or a boolean, got {_json_type(raw)}")


def _any_variants(raw: Any, where: str) -> tuple[str, ...] | tuple[int, ...]:
    if not isinstance(raw, list):
        _shape(where, f"expected an array of strings or of integers, got {_json_type(raw)}")
    if all(isinstance(v, str) for v in raw):
        strings: tuple[str, ...] = distinct(raw)
        return strings
    ints: list[int] = []
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int):
            _shape(f"{where}[{i}]", "expected all strings or all integers")
        if not _I64[0] <= v <= _I64[1]:
            _shape(f"{where}[{i}]", f"integer {v} is out of the 64-bit range")
        ints.append(v)
    integers: tuple[int, ...] = distinct(ints)
    return integers


def _range(key: PayloadPath, raw: Any, where: str) -> m.Condition:
    obj = _record(raw, where)
    given = {k: obj[k] for k in _BOUND_KEYS if obj.get(k) is not None}
    if any(isinstance(v, str) for v in given.values()):
        micros: dict[str, float] = {}
        for k, v in given.items():
            if not isinstance(v, str):
                _shape(f"{where}.{k}", "expected a datetime string like the other bounds")
            us = parse_datetime_micros(v)
            if us is None:
                _shape(f"{where}.{k}", f"{v!r} is not an RFC 3339 datetime")
            micros[k] = us
        return m.DatetimeRange(key, m.Bounds(**micros))
    return m.NumericRange(
        key, m.Bounds(**{k: _number(v, f"{where}.{k}") for k, v in given.items()})
    )


def _geo_point(raw: Any, where: str) -> tuple[float, float]:
    obj = _record(raw, where)
    if "lat" not in obj or "lon" not in obj:
        _shape(where, "missing field `lat` or `lon`")
    return checked_geo_point(
        _number(obj["lat"], f"{where}.lat"), _number(obj["lon"], f"{where}.lon"), where
    )


def _bbox(key: PayloadPath, raw: Any, where: str) -> m.Condition:
    obj = _record(raw, where)
    if "top_left" not in obj or "bottom_right" not in obj:
        _shape(where, "missing field `top_left` or `bottom_right`")
    return m.GeoBoundingBox(
        key,
        _geo_point(obj["top_left"], f"{where}.top_left"),
        _geo_point(obj["bottom_right"], f"{where}.bottom_right"),
    )


def _radius(key: PayloadPath, raw: Any, where: str) -> m.Condition:
    obj = _record(raw, where)
    if "center" not in obj or "radius" not in obj:
        _shape(where, "missing field `center` or `radius`")
    center = _geo_point(obj["center"], f"{where}.center")
    return m.GeoRadius(key, center, _number(obj["radius"], f"{where}.radius"))


def _ring(raw: Any, where: str) -> tuple[tuple[float, float], ...]:
    obj = _record(raw, where)
    points = obj.get("points")
    if not isinstance(points, list):
        _shape(f"{where}.points", "expected an array of geo points")
    return checked_ring(
        tuple(_geo_point(p, f"{where}.points[{i}]") for i, p in enumerate(points)), where
    )


def _polygon(key: PayloadPath, raw: Any, where: str) -> m.Condition:
    obj = _record(raw, where)
    if "exterior" not in obj:
        _shape(where, "missing field `exterior`")
    exterior = _ring(obj["exterior"], f"{where}.exterior")
    interiors_raw = obj.get("interiors")
    if interiors_raw is None:
        return m.GeoPolygon(key, exterior)
    if not isinstance(interiors_raw, list):
        _shape(f"{where}.interiors", "expected an array of line strings")
    interiors = tuple(_ring(r, f"{where}.interiors[{i}]") for i, r in enumerate(interiors_raw))
    return m.GeoPolygon(key, exterior, interiors)


_FIELD_PARSERS: dict[str, Callable[[PayloadPath, Any, str], m.Condition]] = {
    "values_count": _values_count,
    "is_empty": _bool_test(m.IsEmpty),
    "is_null": _bool_test(m.IsNull),
    "match": _match,
    "range": _range,
    "geo_bounding_box": _bbox,
    "geo_radius": _radius,
    "geo_polygon": _polygon,
}


# ---------------------------------------------------------------------------- rules
# Checks on values already of the right type, shared by this parser and the gRPC decoder of
# the same filter (a protobuf message cannot have the wrong type, but can break these rules):
# the same rule, the same text, whichever transport the filter came by.


def check_depth(depth: int, where: str) -> None:
    if depth > _MAX_DEPTH:
        _shape(where, f"filter nested deeper than {_MAX_DEPTH} levels")


def check_number(value: float, where: str) -> float:
    if math.isnan(value):
        _shape(where, "expected a number, got NaN")
    return value


def check_min_count(count: int, where: str) -> int:
    if count < 1:
        _rule(f"{where}.min_should.min_count", f"value {count} invalid, must be 1 or larger")
    return count


def checked_slice(total: int, index: int, where: str) -> m.Slice:
    if total < 1:
        _rule(f"{where}.slice.total", f"value {total} invalid, must be 1 or larger")
    if index >= total:
        _rule(f"{where}.slice.index", f"value {index} invalid, must be in [0;{total - 1}]")
    return m.Slice(total, index)


def no_field_test(where: str) -> NoReturn:
    _rule(where, "At least one field condition must be specified")


def distinct(values: Iterable[Any]) -> Any:  # a tuple of the values' own type
    """`match.any` / `match.except` values, each once, in their first order."""
    return tuple(dict.fromkeys(values))


def checked_geo_point(lat: float, lon: float, where: str) -> tuple[float, float]:
    check_number(lat, f"{where}.lat")
    check_number(lon, f"{where}.lon")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        _shape(
            where,
            f"Wrong format of GeoPoint payload: expected `lat` = {lat} within [-90;90] "
            f"and `lon` = {lon} within [-180;180]",
        )
    return (lat, lon)


def checked_ring(
    ring: tuple[tuple[float, float], ...], where: str
) -> tuple[tuple[float, float], ...]:
    """A polygon's line: at least 4 points, the last one the first (closed)."""
    if len(ring) < 4:
        _rule(where, f"polygon invalid, the size must be at least 4, got {len(ring)}")
    first, last = ring[0], ring[-1]
    eps = 2.220446049250313e-16
    if abs(first[0] - last[0]) > eps or abs(first[1] - last[1]) > eps:
        _rule(
            where,
            "polygon invalid, the first and the last points should be the same "
            "to form a closed line",
        )
    return ring


def key_path(raw: str, where: str) -> PayloadPath:
    return _key(raw, where)


def point_id_at(raw: Any, where: str) -> PointId:
    return _point_id(raw, where)


def parse_datetime_value(text: str, where: str = "start_from") -> float:
    """A datetime given where a number may stand (order_by `start_from`), as microseconds
    since the epoch: the unit datetime indexes order by."""
    us = parse_datetime_micros(text)
    if us is None:
        _shape(where, f"{text!r} is not an RFC 3339 datetime")
    return float(us)
