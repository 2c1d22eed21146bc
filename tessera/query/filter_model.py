"""The filter language as frozen dataclasses, one class per condition kind.

`filter_parse.parse_filter` builds these from Qdrant's JSON; `filter_eval.evaluate` runs them.
A Qdrant `FieldCondition` carries exactly one test here: when a request sets several (say
`match` and `range` under one key), the first in Qdrant's local-mode order wins: values_count,
is_empty, is_null, match, range, geo_bounding_box, geo_radius, geo_polygon.

Datetime bounds are kept as microseconds since the epoch (UTC); geo points as (lat, lon).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tessera.ids import PointId
from tessera.query.payload_path import PayloadPath

# A MatchValue operand; Qdrant has no float variant, so a float payload never matches one.
MatchScalar = str | int | bool


@dataclass(frozen=True)
class MatchValue:
    key: PayloadPath
    value: MatchScalar


@dataclass(frozen=True)
class MatchAny:
    key: PayloadPath
    values: tuple[str, ...] | tuple[int, ...]


@dataclass(frozen=True)
class MatchExcept:
    key: PayloadPath
    values: tuple[str, ...] | tuple[int, ...]


@dataclass(frozen=True)
class MatchText:
    """Every query token in one string value (`text`); any token (`text_any`)."""

    key: PayloadPath
    text: str
    any_token: bool = False


@dataclass(frozen=True)
class MatchPhrase:
    key: PayloadPath
    phrase: str


@dataclass(frozen=True)
class MatchPrefix:
    key: PayloadPath
    prefix: str


@dataclass(frozen=True)
class MatchSubstring:
    key: PayloadPath
    substring: str


@dataclass(frozen=True)
class Bounds:
    """Open/closed bounds; a None bound is absent. Shared by ranges and values_count."""

    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@dataclass(frozen=True)
class NumericRange:
    key: PayloadPath
    bounds: Bounds


@dataclass(frozen=True)
class DatetimeRange:
    """Bounds in microseconds since the epoch."""

    key: PayloadPath
    bounds: Bounds


@dataclass(frozen=True)
class GeoBoundingBox:
    key: PayloadPath
    top_left: tuple[float, float]
    bottom_right: tuple[float, float]


@dataclass(frozen=True)
class GeoRadius:
    key: PayloadPath
    center: tuple[float, float]
    radius: float


@dataclass(frozen=True)
class GeoPolygon:
    key: PayloadPath
    exterior: tuple[tuple[float, float], ...]
    interiors: tuple[tuple[tuple[float, float], ...], ...] = ()


@dataclass(frozen=True)
class ValuesCount:
    key: PayloadPath
    bounds: Bounds


@dataclass(frozen=True)
class IsEmpty:
    """`{"is_empty": {"key": ...}}`, or with `per_value` the FieldCondition form
    `{"key": ..., "is_empty": expected}`, which Qdrant checks on each value the path selects
    (any one null or empty array passes `true`), not on them all."""

    key: PayloadPath
    expected: bool = True
    per_value: bool = False


@dataclass(frozen=True)
class IsNull:
    """`{"is_null": {"key": ...}}`, or with `per_value` the FieldCondition form (see IsEmpty)."""

    key: PayloadPath
    expected: bool = True
    per_value: bool = False


@dataclass(frozen=True)
class HasId:
    ids: frozenset[PointId]


@dataclass(frozen=True)
class HasVector:
    name: str


@dataclass(frozen=True)
class Slice:
    """Points whose SipHash-2-4 id hash modulo `total` equals `index`."""

    total: int
    index: int


@dataclass(frozen=True)
class Nested:
    key: PayloadPath
    filter: Filter


@dataclass(frozen=True)
class MinShould:
    conditions: tuple[Condition, ...]
    min_count: int


@dataclass(frozen=True)
class Filter:
    """None means the clause was absent; an empty `should` is no constraint."""

    must: tuple[Condition, ...] | None = None
    should: tuple[Condition, ...] | None = None
    must_not: tuple[Condition, ...] | None = None
    min_should: MinShould | None = None

    def __hash__(self) -> int:
        # A filter keys the caches every filtered search looks in (a segment's masks, the
        # issues board): hashed once, not condition by condition at each lookup. The value
        # is the generated hash's (the fields' tuple).
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.must, self.should, self.must_not, self.min_should))
            object.__setattr__(self, "_hash", cached)
        return cached


FieldTest = (
    MatchValue
    | MatchAny
    | MatchExcept
    | MatchText
    | MatchPhrase
    | MatchPrefix
    | MatchSubstring
    | NumericRange
    | DatetimeRange
    | GeoBoundingBox
    | GeoRadius
    | GeoPolygon
    | ValuesCount
    | IsEmpty
    | IsNull
)

Condition = FieldTest | HasId | HasVector | Slice | Nested | Filter


def merged(outer: Filter | None, inner: Filter | None) -> Filter | None:
    """A filter a query node inherits (`outer`) combined with its own (`inner`) as Qdrant
    combines them (`Filter::merge`): clause by clause, so `must` and `must_not` conditions
    all hold, but the `should` conditions of both become alternatives of each other (not
    one group per filter), and `min_should` pools both lists with the larger count."""
    if outer is None:
        return inner
    if inner is None:
        return outer

    def joined(a: tuple[Condition, ...] | None, b: tuple[Condition, ...] | None) -> Any:
        return b if a is None else a if b is None else (*a, *b)

    min_should = outer.min_should or inner.min_should
    if outer.min_should is not None and inner.min_should is not None:
        min_should = MinShould(
            (*outer.min_should.conditions, *inner.min_should.conditions),
            max(outer.min_should.min_count, inner.min_should.min_count),
        )
    return Filter(
        must=joined(outer.must, inner.must),
        should=joined(outer.should, inner.should),
        must_not=joined(outer.must_not, inner.must_not),
        min_should=min_should,
    )
