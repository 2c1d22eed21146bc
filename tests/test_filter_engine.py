"""The filter engine: parsing, payload checks, field indexes, and both against Qdrant's own
local mode (qdrant-client `:memory:`), the reference for every id a filter selects.

Every filter runs three ways: on payloads only, with each field indexed by its natural type,
and with each field indexed by a *wrong* type (so the index answers for some values and the
payload fallback for the rest). All three must select exactly the points local mode does.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import QdrantClient, models

from tessera.errors import BadRequest, UnprocessableEntity
from tessera.ids import PointId
from tessera.query.datetime_parse import parse_datetime_micros
from tessera.query.filter_parse import parse_filter
from tessera.query.payload_path import extract_values, nested_elements, raw_values
from tessera.query.slice_hash import slice_of
from tessera.segment.field_index import FieldIndex, make_field_index, parse_field_schema
from tessera.segment.filter_eval import estimate_cardinality, evaluate
from tests.index_semantics import crossed_range, index_rule_differs, is_uuid

BoolMask = npt.NDArray[np.bool_]


class FakeTarget:
    """A segment stand-in: payloads in a list, offsets are list positions."""

    def __init__(
        self,
        payloads: list[dict[str, Any]],
        ids: list[PointId] | None = None,
        schemas: dict[str, Any] | None = None,
        vectors: dict[str, BoolMask] | None = None,
    ) -> None:
        self.payloads = payloads
        self.ids = ids if ids is not None else list(range(len(payloads)))
        self.live = np.ones(len(payloads), dtype=np.bool_)
        self.vectors = vectors or {}
        self.indexes: dict[str, FieldIndex] = {}
        for key, schema in (schemas or {}).items():
            index = make_field_index(key, parse_field_schema(schema))
            for offset, payload in enumerate(payloads):
                index.add(offset, payload)
            self.indexes[key] = index

    def point_count(self) -> int:
        return len(self.payloads)

    def live_mask(self) -> BoolMask:
        return self.live

    def payload_at(self, offset: int) -> dict[str, Any]:
        return self.payloads[offset]

    def external_id_at(self, offset: int) -> PointId:
        return self.ids[offset]

    def offsets_of(self, ids: Iterable[PointId]) -> npt.NDArray[np.int64]:
        wanted = set(ids)
        return np.array(
            [o for o, pid in enumerate(self.ids) if pid in wanted and self.live[o]], dtype=np.int64
        )

    def vector_mask(self, name: str) -> BoolMask:
        return self.vectors.get(name, np.zeros(len(self.payloads), dtype=np.bool_))

    def field_index(self, key: str) -> FieldIndex | None:
        return self.indexes.get(key)

    def set_payload(self, offset: int, payload: dict[str, Any]) -> None:
        self.payloads[offset] = payload
        for index in self.indexes.values():
            index.add(offset, payload)

    def delete(self, offset: int) -> None:
        self.live[offset] = False
        for index in self.indexes.values():
            index.remove(offset)


def select(target: FakeTarget, raw: Any) -> list[PointId]:
    filt = parse_filter(raw)
    assert filt is not None
    mask = evaluate(filt, target)
    return sorted((target.ids[o] for o in np.flatnonzero(mask)), key=str)


# --- hand-made payloads: one field `f` in every shape that matters --------------------------

EDGE: list[dict[str, Any]] = [
    {"f": 1},
    {"f": [1, 2]},
    {"f": 1.0},
    {"f": 2.5},
    {"f": True},
    {"f": False},
    {"f": "a"},
    {"f": ["a", "b"]},
    {"f": "Hello World"},
    {"f": None},
    {"f": [None]},
    {"f": [None, 1]},
    {"f": []},
    {},
    {"f": {"lat": 10.0, "lon": 20.0}},
    {"f": [{"lat": 10.5, "lon": 20.5}, {"lat": -5, "lon": 3}]},
    {"f": {"lat": 10.0}},
    {"f": [[1, 2], 3]},
    {"f": "2024-01-02T03:04:05Z"},
    {"f": ["2023-06-01", "nope"]},
    {"f": "550e8400-e29b-41d4-a716-446655440000"},
    {"f": 2**70},
    {"f": {"g": 1}},
    {"other": 5},
    {"f": {"lat": 0, "lon": 179.5}},
    {"f": [{"lat": 15, "lon": 15}, {"lat": 0, "lon": 30}]},
]

EDGE_FILTERS: list[dict[str, Any]] = [
    {"must": [{"key": "f", "match": {"value": 1}}]},
    {"must": [{"key": "f", "match": {"value": True}}]},
    {"must": [{"key": "f", "match": {"value": "a"}}]},
    {"must": [{"key": "f", "match": {"any": [1, 3]}}]},
    {"must": [{"key": "f", "match": {"any": ["b", "zz"]}}]},
    {"must": [{"key": "f", "match": {"any": []}}]},
    {"must": [{"key": "f", "match": {"except": [1]}}]},
    {"must": [{"key": "f", "match": {"except": ["a"]}}]},
    {"must": [{"key": "f", "match": {"except": []}}]},
    {"must": [{"key": "f", "match": {"text": "hello"}}]},
    {"must": [{"key": "f", "match": {"text_any": "world b"}}]},
    {"must": [{"key": "f", "match": {"phrase": "hello world"}}]},
    {"must": [{"key": "f", "match": {"prefix": "He"}}]},
    {"must": [{"key": "f", "match": {"substring": "o W"}}]},
    {"must": [{"key": "f", "range": {"gte": 1}}]},
    {"must": [{"key": "f", "range": {"gt": 1, "lt": 3}}]},
    {"must": [{"key": "f", "range": {"gt": 1e20}}]},
    {"must": [{"key": "f", "range": {"gte": "2023-01-01T00:00:00Z"}}]},
    {"must": [{"key": "f", "range": {"lt": "2024-01-01"}}]},
    {"must": [{"key": "f", "geo_radius": {"center": {"lat": 10, "lon": 20}, "radius": 100000}}]},
    {
        "must": [
            {
                "key": "f",
                "geo_bounding_box": {
                    "top_left": {"lat": 11, "lon": 19},
                    "bottom_right": {"lat": -6, "lon": 21},
                },
            }
        ]
    },
    {
        "must": [
            {
                "key": "f",
                "geo_polygon": {
                    "exterior": {
                        "points": [
                            {"lat": 0, "lon": 0},
                            {"lat": 20, "lon": 0},
                            {"lat": 20, "lon": 30},
                            {"lat": 0, "lon": 30},
                            {"lat": 0, "lon": 0},
                        ]
                    }
                },
            }
        ]
    },
    {
        "must": [
            {
                "key": "f",
                "geo_bounding_box": {
                    "top_left": {"lat": 5, "lon": 170},
                    "bottom_right": {"lat": -5, "lon": -170},
                },
            }
        ]
    },
    {
        "must": [
            {
                "key": "f",
                "geo_polygon": {
                    "exterior": {
                        "points": [
                            {"lat": -10, "lon": -10},
                            {"lat": 30, "lon": -10},
                            {"lat": 30, "lon": 40},
                            {"lat": -10, "lon": 40},
                            {"lat": -10, "lon": -10},
                        ]
                    },
                    "interiors": [
                        {
                            "points": [
                                {"lat": 9, "lon": 19},
                                {"lat": 11, "lon": 19},
                                {"lat": 11, "lon": 21},
                                {"lat": 9, "lon": 21},
                                {"lat": 9, "lon": 19},
                            ]
                        }
                    ],
                },
            }
        ]
    },
    {"must": [{"key": "f", "geo_radius": {"center": {"lat": 0, "lon": -179.9}, "radius": 1e5}}]},
    {"must": [{"key": "f", "values_count": {"gte": 2}}]},
    {"must": [{"key": "f", "values_count": {"lt": 1}}]},
    {"must": [{"is_empty": {"key": "f"}}]},
    {"must": [{"is_null": {"key": "f"}}]},
    {"must": [{"key": "f", "is_empty": False}]},
    {"must": [{"key": "f", "is_null": False}]},
    {"must_not": [{"is_empty": {"key": "f"}}]},
    {"must": [{"key": "f.g", "match": {"value": 1}}]},
    {"must": [{"key": "f[].lat", "range": {"gt": 0}}]},
    {"must": [{"key": "f[0]", "match": {"value": "a"}}]},
    {"should": []},
    {"should": [{"key": "f", "match": {"value": 1}}, {"key": "f", "match": {"value": "a"}}]},
    {
        "min_should": {
            "conditions": [{"is_null": {"key": "f"}}, {"is_empty": {"key": "f"}}],
            "min_count": 2,
        }
    },
    {"must": {"key": "f", "match": {"value": 2}}},
    {},
]

NATURAL = ("keyword", "integer", "float", "bool", "datetime", "geo", "uuid", "text")
# Local mode matches `phrase` on the payload; Qdrant's text index answers it only when it
# keeps word positions (without them nothing matches: test_phrase_needs_phrase_matching).
PHRASE_TEXT = {"type": "text", "phrase_matching": True}


def local_client(payloads: list[dict[str, Any]]) -> QdrantClient:
    client = QdrantClient(":memory:")
    client.create_collection("c", vectors_config={})
    points = [models.PointStruct(id=i, vector={}, payload=p) for i, p in enumerate(payloads)]
    client.upsert("c", points)
    return client


@pytest.fixture(scope="module")
def local_edge() -> QdrantClient:
    return local_client(EDGE)


def as_integer_index_reads(value: Any) -> Any:
    """`f` as Qdrant's integer index sees it: a float with an integral value inside int64 is
    the integer (`value_to_integer`: 1.0 is 1), at the top level and one array level down."""
    if isinstance(value, list):
        return [as_integer_index_reads(v) if not isinstance(v, list) else v for v in value]
    if isinstance(value, float) and value.is_integer() and -(2.0**63) <= value < 2.0**63:
        return int(value)
    return value


@pytest.fixture(scope="module")
def local_edge_integer() -> QdrantClient:
    return local_client([{k: as_integer_index_reads(v) for k, v in p.items()} for p in EDGE])


def local_ids(client: QdrantClient, raw: dict[str, Any], limit: int = 10_000) -> list[Any]:
    filt = models.Filter.model_validate(raw)
    points, _ = client.scroll("c", scroll_filter=filt, limit=limit)
    return sorted((p.id for p in points), key=str)


@pytest.mark.parametrize("schema", [None, *NATURAL])
def test_edge_payloads_match_local_mode(
    local_edge: QdrantClient, local_edge_integer: QdrantClient, schema: str | None
) -> None:
    """Indexed or not, a filter selects what local mode does over the payloads, but for the
    integer index, which reads an integral float as the integer, as Qdrant's does."""
    indexed = PHRASE_TEXT if schema == "text" else schema
    target = FakeTarget([dict(p) for p in EDGE], schemas={"f": indexed} if indexed else None)
    reference = local_edge_integer if schema == "integer" else local_edge
    for raw in EDGE_FILTERS:
        got = select(target, raw)
        must = raw.get("must")
        condition = must[0] if isinstance(must, list) and must else must
        if schema is not None and crossed_range(condition, {"f": schema}):
            continue  # no reading of it in local mode: test_indexed_conditions checks it
        if index_rule_differs(raw, {"f": schema}):
            # a map index answers `except` from the values it holds (Qdrant Edge agrees:
            # tests/test_indexed_conditions.py): local mode over those values only
            assert schema is not None
            held = local_client([{"f": held_by_map_index(p.get("f"), schema)} for p in EDGE])
            want = local_ids(held, raw)
        else:
            want = local_ids(reference, raw)
        want = [str(x) if isinstance(x, uuid.UUID) else x for x in want]
        assert got == want, (schema, raw)


def held_by_map_index(value: Any, schema: str) -> list[Any]:
    """The values of one field a keyword, integer or uuid index holds: the scalars at the top
    level or one array level down, of the index's type."""
    items = value if isinstance(value, list) else [value]
    if schema == "integer":
        items = [as_integer_index_reads(v) for v in items]
        return [v for v in items if type(v) is int and -(2**63) <= v < 2**63]
    if schema == "uuid":
        return [v for v in items if isinstance(v, str) and is_uuid(v)]
    return [v for v in items if isinstance(v, str)]


def test_edge_payloads_spot_checks() -> None:
    target = FakeTarget([dict(p) for p in EDGE])

    def ids(raw: dict[str, Any]) -> set[PointId]:
        return set(select(target, raw))

    assert ids({"must": [{"key": "f", "match": {"value": 1}}]}) == {0, 1, 11}
    # a null or missing field is not a value outside the list; an object or array is
    assert 9 not in ids({"must": [{"key": "f", "match": {"except": [1]}}]})
    assert 17 in ids({"must": [{"key": "f", "match": {"except": [1]}}]})
    assert ids({"must": [{"is_null": {"key": "f"}}]}) == {9, 10, 11}
    assert ids({"must": [{"is_empty": {"key": "f"}}]}) == {9, 12, 13, 23}
    assert ids({"must": [{"key": "f", "range": {"gte": 2, "lte": 2.5}}]}) == {1, 3}


# --- payload paths -----------------------------------------------------------------------


def test_payload_paths() -> None:
    p = {"a": {"b": [1, [2, 3]]}, "c": [{"d": 1}, {"d": [2, 3]}, {"e": 0}], "x.y": 7}
    assert extract_values(p, "a.b") == [1, [2, 3]]
    assert raw_values(p, "a.b") == [[1, [2, 3]]]
    assert extract_values(p, "c[].d") == [1, 2, 3]
    assert extract_values(p, "c[1].d") == [2, 3]
    assert extract_values(p, "c[5].d") == []
    assert extract_values(p, '"x.y"') == [7]
    assert extract_values(p, "missing.path") == []
    assert nested_elements(p, "c") == nested_elements(p, "c[]") == p["c"]
    for bad in ("", "a.", ".a", "a[", "a[x]", "a..b", "a b"):
        with pytest.raises(BadRequest):
            parse_filter({"must": [{"key": bad, "match": {"value": 1}}]})


# --- parsing and validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"must": [{"foo": 1}]}, BadRequest),
        ({"must": [{"key": "a"}]}, UnprocessableEntity),
        ({"must": [{"key": "a", "match": {"value": 1.5}}]}, BadRequest),
        ({"must": [{"key": "a", "match": {"any": [1, "a"]}}]}, BadRequest),
        ({"must": [{"key": "a", "match": {"value": 1, "text": "x"}}]}, BadRequest),
        ({"must": [{"key": "a", "range": {"gt": "yesterday"}}]}, BadRequest),
        ({"must": [{"key": "a", "range": {"gt": 1, "lt": "2024-01-01"}}]}, BadRequest),
        ({"must": [{"key": "a", "values_count": {"gt": -1}}]}, BadRequest),
        ({"must": [{"has_id": [-1]}]}, BadRequest),
        ({"must": [{"has_id": ["not-a-uuid"]}]}, BadRequest),
        ({"must": [{"has_id": 5}]}, BadRequest),
        ({"min_should": {"conditions": [], "min_count": 0}}, UnprocessableEntity),
        ({"must": [{"slice": {"total": 2, "index": 2}}]}, UnprocessableEntity),
        ({"unknown": []}, BadRequest),
        ({"must": 5}, BadRequest),
        ({"must": [{"nested": {"key": "a"}}]}, BadRequest),
        (
            {"must": [{"key": "g", "geo_radius": {"center": {"lat": 91, "lon": 0}, "radius": 1}}]},
            BadRequest,
        ),
        (
            {
                "must": [
                    {
                        "key": "g",
                        "geo_polygon": {
                            "exterior": {
                                "points": [
                                    {"lat": 0, "lon": 0},
                                    {"lat": 1, "lon": 0},
                                    {"lat": 1, "lon": 1},
                                    {"lat": 0, "lon": 1},
                                ]
                            }
                        },
                    }
                ]
            },
            UnprocessableEntity,
        ),
    ],
)
def test_invalid_filters(raw: Any, error: type[BadRequest]) -> None:
    with pytest.raises(error) as info:
        parse_filter(raw)
    assert "filter" in info.value.message


def test_parse_shapes() -> None:
    assert parse_filter(None) is None
    lone = parse_filter({"must": {"key": "a", "match": {"value": 1}}})
    listed = parse_filter({"must": [{"key": "a", "match": {"value": 1}}]})
    assert lone == listed
    nested = parse_filter(
        {"must": [{"must_not": [{"has_id": [1, "550e8400e29b41d4a716446655440000"]}]}]}
    )
    assert nested is not None and nested.must is not None
    utc = parse_filter({"must": {"key": "t", "range": {"gt": "2024-01-01T00:00:00Z"}}})
    naive = parse_filter({"must": {"key": "t", "range": {"gt": "2024-01-01 00:00"}}})
    offset = parse_filter({"must": {"key": "t", "range": {"gt": "2024-01-01T01:00:00+01:00"}}})
    assert utc == naive == offset


def test_indexed_conditions_do_not_read_payloads() -> None:
    rng = random.Random(5)
    payloads = [
        {"k": rng.choice(WORDS), "n": rng.randrange(100), "g": {"lat": 1.0, "lon": i / 100}}
        for i in range(500)
    ]
    schemas = {"k": "keyword", "n": "integer", "g": "geo"}
    target = FakeTarget(payloads, schemas=schemas)
    reads: list[int] = []

    def counting_payload_at(offset: int) -> dict[str, Any]:
        reads.append(offset)
        return payloads[offset]

    target.payload_at = counting_payload_at  # type: ignore[method-assign]
    indexed = {
        "must": [{"key": "n", "range": {"gte": 10, "lt": 60}}],
        "should": [{"key": "k", "match": {"any": ["alpha", "beta"]}}, {"is_empty": {"key": "k"}}],
        "must_not": [
            {"key": "g", "geo_radius": {"center": {"lat": 1, "lon": 2}, "radius": 50_000}}
        ],
    }
    assert select(target, indexed) and reads == []
    # a payload-only condition is checked only where the indexed ones left candidates
    mixed = {"must": [{"key": "n", "match": {"value": 7}}, {"key": "zz", "is_null": False}]}
    expected = [o for o, p in enumerate(payloads) if p["n"] == 7]
    assert select(target, mixed) == sorted(expected, key=str)
    assert sorted(reads) == expected


def test_deep_filters_evaluate() -> None:
    target = FakeTarget([{"a": i % 3} for i in range(30)], schemas={"a": "integer"})
    raw: dict[str, Any] = {"must": [{"key": "a", "match": {"value": 1}}]}
    for depth in range(60):
        raw = {"must": [raw]} if depth % 2 else {"should": [raw, {"has_id": [0]}]}
    assert set(select(target, raw)) == {0, *range(1, 30, 3)}
    with pytest.raises(BadRequest):
        parse_filter(_deep(80))


def _deep(levels: int) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for _ in range(levels):
        raw = {"must_not": raw}
    return raw


def test_datetime_parsing_agrees_with_local_mode() -> None:
    from qdrant_client.local import datetime_utils
    from qdrant_client.local.order_by import datetime_to_microseconds

    samples = [
        "2024-01-02T03:04:05Z", "2024-01-02 03:04:05.123456789+02:00", "2024-1-2",
        "2024-01-02T03:04", "2024-01-02T03:04:05-0330", "2024-01-02T03:04:05 +01",
        " 2024-01-02T03:04:05z", "2024-01-02 03:04:05 UTC", "2024-01-02T03", "yesterday",
        "2024-13-01", "2024-01-02T03:04:05.5+01", "2024-02-30",
    ]  # fmt: skip
    for s in samples:
        ref = datetime_utils.parse(s)
        want = None if ref is None else datetime_to_microseconds(ref)
        assert parse_datetime_micros(s) == want, s


def test_a_leap_second_reads_as_qdrant_reads_it() -> None:
    # chrono (Qdrant's parser) reads second 60 as a leap second, a second past :59; local
    # mode's strptime refuses it (Qdrant Edge agrees with the first: test_indexed_conditions)
    minute = parse_datetime_micros("2024-01-01T00:01:00Z")
    assert parse_datetime_micros("2024-01-01T00:00:60Z") == minute
    assert parse_datetime_micros("2024-01-01 00:00:60.25") == (minute or 0) + 250_000
    for bad in ("2024-01-01T00:00:61Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:600Z"):
        assert parse_datetime_micros(bad) is None, bad


def test_slice_hash_agrees_with_local_mode() -> None:
    from qdrant_client.local.siphash import point_id_slice

    rng = random.Random(7)
    ids: list[PointId] = [rng.randrange(2**64) for _ in range(50)]
    ids += [0, 1, 2**64 - 1]
    ids += [uuid.UUID(int=rng.randrange(2**128)) for _ in range(50)]
    for total in (1, 2, 3, 7, 1000):
        want = [point_id_slice(str(i) if isinstance(i, uuid.UUID) else i, total) for i in ids]
        assert slice_of(ids, total).tolist() == want


# --- field schemas ------------------------------------------------------------------------


def test_field_schema_parse_and_render() -> None:
    assert parse_field_schema("keyword").to_json(3) == {"data_type": "keyword", "points": 3}
    text = parse_field_schema({"type": "text", "lowercase": False, "min_token_len": 2})
    assert text.to_json(0) == {
        "data_type": "text",
        "params": {"type": "text", "tokenizer": "word", "min_token_len": 2, "lowercase": False},
        "points": 0,
    }
    integer = parse_field_schema({"type": "integer", "lookup": True, "is_principal": None})
    assert integer.to_json()["params"] == {"type": "integer", "lookup": True}
    # a field the type's params lack is ignored, as Qdrant's structs ignore it
    assert parse_field_schema({"type": "keyword", "tokenizer": "word"}).to_json() == {
        "data_type": "keyword",
        "params": {"type": "keyword"},
    }
    for bad in (
        "strings",
        5,
        {"type": "nope"},
        {"type": "text", "tokenizer": "chars"},
        {"type": "text", "min_token_len": -1},
        {"type": "text", "stopwords": "klingon"},
        {"type": "integer", "lookup": False, "range": False},
        {"type": "keyword", "on_disk": "yes"},
    ):
        with pytest.raises(BadRequest):
            parse_field_schema(bad)


# --- text index configurations -----------------------------------------------------------


def test_text_index_tokenizers() -> None:
    docs: list[dict[str, Any]] = [
        {"t": "The quick brown fox"},
        {"t": ["jumps over", "the lazy dog"]},
        {"t": "Ação rápida"},
        {"t": "hello-world foo_bar"},
        {"t": 5},
    ]

    def run(params: dict[str, Any], match: dict[str, Any]) -> list[PointId]:
        target = FakeTarget([dict(d) for d in docs], schemas={"t": {"type": "text", **params}})
        return select(target, {"must": [{"key": "t", "match": match}]})

    assert run({}, {"text": "QUICK fox"}) == [0]
    # an index takes a point's strings together, as Qdrant Edge does (phrases stay in one)
    assert run({}, {"text": "over lazy"}) == [1]
    assert run({}, {"text_any": "over lazy"}) == [1]
    phrases = {"phrase_matching": True}
    assert run(phrases, {"phrase": "lazy dog"}) == [1]
    assert run(phrases, {"phrase": "dog lazy"}) == []
    assert run({}, {"phrase": "lazy dog"}) == []  # no word positions kept: Qdrant matches none
    assert run({"lowercase": False}, {"text": "quick"}) == [0]
    assert run({"lowercase": False}, {"text": "the"}) == [1]
    assert run({"tokenizer": "prefix"}, {"text": "qui br"}) == [0]
    assert run({"tokenizer": "prefix", "max_token_len": 3}, {"text": "quixotic"}) == [0]
    assert run({"tokenizer": "whitespace"}, {"text": "hello-world"}) == [3]
    assert run({"tokenizer": "word"}, {"text": "hello"}) == [3]
    assert run({"ascii_folding": True}, {"text": "acao"}) == [2]
    assert run({"stopwords": "english", **phrases}, {"phrase": "quick brown"}) == [0]
    assert run({"stopwords": {"custom": ["fox"]}}, {"text": "fox"}) == []
    assert run({"min_token_len": 4}, {"text": "fox"}) == []


# --- incremental index updates, order_by, facets -----------------------------------------


def test_index_updates_match_fresh_build() -> None:
    rng = random.Random(3)

    def payload() -> dict[str, Any]:
        choice = rng.random()
        if choice < 0.1:
            return {}
        value: Any = rng.choice([rng.randrange(50), rng.random() * 50, str(rng.randrange(9))])
        return {"v": [value, rng.randrange(50)] if choice < 0.3 else value}

    payloads = [payload() for _ in range(400)]
    schemas = {"v": "integer"}
    live = FakeTarget(list(payloads), schemas=schemas)
    live.indexes["w"] = make_field_index("v", parse_field_schema("float"))
    for o, p in enumerate(payloads):
        live.indexes["w"].add(o, p)
    for step in range(3000):
        o = rng.randrange(len(payloads))
        if rng.random() < 0.1:
            live.delete(o)
        else:
            live.live[o] = True
            live.set_payload(o, payload())
        if step % 500 == 0:
            fresh = FakeTarget(list(live.payloads), schemas=schemas)
            fresh.live = live.live.copy()
            for raw in ({"must": {"key": "v", "range": {"gte": 10, "lt": 30.5}}},
                        {"must": {"key": "v", "match": {"any": [1, 2, 3, 40]}}},
                        {"must": {"key": "v", "match": {"except": [1, 2]}}}):  # fmt: skip
                alive = [p if live.live[i] else {} for i, p in enumerate(live.payloads)]
                if index_rule_differs(raw, schemas):  # the values the index holds
                    alive = [{"v": held_by_map_index(p.get("v"), "integer")} for p in alive]
                assert select(live, raw) == select(fresh, raw) == select(FakeTarget(alive), raw)
    values, offsets = live.indexes["v"].ordered_offsets(False, 10)
    pairs = sorted(
        (v, o)
        for o, p in enumerate(live.payloads)
        if live.live[o]
        for v in set(extract_values(p, "v"))
        if isinstance(v, int) and not isinstance(v, bool) and v >= 10
    )
    assert list(zip(values.tolist(), offsets.tolist())) == pairs
    values, offsets = live.indexes["w"].ordered_offsets(True, 20.0)
    assert values.tolist() == sorted(values.tolist(), reverse=True) and values[0] <= 20
    mask = live.live.copy()
    mask[::2] = False
    counts = live.indexes["v"].facet_counts(mask)
    for value, count in counts.items():
        holders = [o for o, p in enumerate(live.payloads) if mask[o] and value in
                   [v for v in extract_values(p, "v") if type(v) is int]]  # fmt: skip
        assert count == len(holders)


# --- randomised differential test against local mode -------------------------------------

WORDS = ["alpha", "beta", "gamma", "delta", "Echo", "fox"]
KEYS = ["k", "n", "f", "b", "dt", "geo", "txt", "u", "mix", "obj.a[].x", "obj.a[].y", "arr"]
CROSSED = {
    "k": "integer", "n": "keyword", "f": "integer", "b": "keyword", "dt": "keyword",
    "geo": "keyword", "txt": "keyword", "u": "keyword", "mix": "bool", "obj.a[].x": "float",
    "obj.a[].y": PHRASE_TEXT, "arr": "float",
}  # fmt: skip
NATURAL_SCHEMAS = {
    "k": "keyword", "n": "integer", "f": "float", "b": "bool", "dt": "datetime", "geo": "geo",
    "txt": PHRASE_TEXT, "u": "uuid", "mix": "keyword", "obj.a[].x": "integer",
    "obj.a[].y": "keyword", "arr": "integer",
}  # fmt: skip
UUIDS = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(5)]


def random_payload(rng: random.Random) -> dict[str, Any]:
    def maybe(make: Callable[[], Any]) -> Any:
        r = rng.random()
        if r < 0.08:
            return None
        if r < 0.14:
            return []
        if r < 0.3:
            return [make() for _ in range(rng.randrange(1, 4))]
        return make()

    def pick(*options: Any) -> Callable[[], Any]:
        return lambda: maybe(lambda: rng.choice(options))

    def datetime_text() -> str:
        month, day, hour = rng.randrange(1, 10), rng.randrange(10), rng.randrange(10)
        return rng.choice(
            [f"2024-0{month}-1{day}T1{hour}:00:00Z", f"2023-12-0{month} 0{hour}:30", "garbage"]
        )

    def geo() -> Any:
        lat, lon = rng.uniform(-2, 2), rng.uniform(-2, 2)
        return rng.choice([{"lat": lat, "lon": lon}, {"lat": lat, "lon": round(lon)}, {"lat": 1}])

    def obj() -> Any:
        return {"a": [{"x": rng.randrange(5), "y": rng.choice(WORDS[:3])} for _ in range(3)][
            : rng.randrange(4)
        ]}  # fmt: skip

    fields: dict[str, Callable[[], Any]] = {
        "k": pick(*WORDS[:4], 3),
        "n": lambda: maybe(lambda: rng.choice([rng.randrange(-5, 10), 2.5, "7", False])),
        "f": lambda: maybe(lambda: rng.choice([rng.random() * 10, rng.randrange(10)])),
        "b": pick(True, False, 1),
        "dt": lambda: maybe(datetime_text),
        "geo": lambda: maybe(geo),
        "txt": lambda: maybe(lambda: " ".join(rng.choices(WORDS, k=rng.randrange(4)))),
        "u": pick(*UUIDS, "plain"),
        "mix": lambda: maybe(
            lambda: rng.choice([rng.randrange(-3, 4), rng.random() * 4, *WORDS, True, None])
        ),
        "obj": obj,
        "arr": lambda: rng.choice([[rng.randrange(4), [rng.randrange(4)]], [], None, 2]),
    }
    return {k: make() for k, make in fields.items() if rng.random() < 0.85}


def random_condition(rng: random.Random, depth: int, ids: list[PointId]) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.2:
        return random_filter(rng, depth + 1, ids)
    if depth < 2 and rng.random() < 0.05:
        return {"nested": {"key": "obj.a", "filter": random_filter(rng, 2, ids, nested=True)}}
    r = rng.random()
    if r < 0.04:
        return {"has_id": [str(x) if isinstance(x, uuid.UUID) else x for x in rng.sample(ids, 5)]}
    if r < 0.07:
        return {"has_vector": rng.choice(["v", "w"])}
    if r < 0.09:
        total = rng.randrange(1, 4)
        return {"slice": {"total": total, "index": rng.randrange(total)}}
    return field_condition(rng, None)


# Values each key commonly holds, so that matches often select something.
TYPICAL: dict[str, list[Any]] = {
    "k": [*WORDS[:4], 3], "n": [*range(-5, 10), "7", False], "b": [True, False, 1],
    "u": [*UUIDS, "plain"], "mix": [-1, 0, 1, 2, *WORDS, True], "obj.a[].x": list(range(5)),
    "obj.a[].y": WORDS[:3], "arr": list(range(4)),
}  # fmt: skip
# Keys whose values suit each group of conditions; other keys are picked now and then.
SUITED = {
    "match": ["k", "n", "b", "u", "mix", "obj.a[].x", "obj.a[].y", "arr"],
    "text": ["txt", "k", "obj.a[].y"],
    "range": ["n", "f", "mix", "obj.a[].x", "arr"],
    "dt": ["dt"],
    "geo": ["geo"],
    "count": KEYS,
}
SCALARS: list[Any] = [*WORDS[:4], 3, 1, 0, -2, True, False, "7", "plain", UUIDS[0]]


def random_bounds(rng: random.Random, make: Callable[[], Any]) -> dict[str, Any]:
    return {b: make() for b in rng.sample(["gt", "gte", "lt", "lte"], rng.randrange(1, 3))}


def field_condition(rng: random.Random, key: str | None) -> dict[str, Any]:
    r = rng.random()
    group = (
        "match" if r < 0.3 else "text" if r < 0.38 else "range" if r < 0.55
        else "dt" if r < 0.62 else "geo" if r < 0.76 else "count"
    )  # fmt: skip
    if key is None:
        key = rng.choice(SUITED[group] if rng.random() < 0.75 else KEYS)
    typical = [v for v in TYPICAL.get(key, ()) if rng.random() < 0.5]
    if r < 0.2:
        return {"key": key, "match": {"value": rng.choice(typical or SCALARS)}}
    if r < 0.3:
        pool: list[Any] = rng.choice([[*WORDS, "plain", UUIDS[1]], list(range(-3, 8))])
        same_type = [v for v in typical if type(v) is type(pool[0])]
        pool = same_type if len(same_type) >= 3 else pool
        kind = rng.choice(["any", "except"])
        return {"key": key, "match": {kind: rng.sample(pool, rng.randrange(0, 4))}}
    if r < 0.38:
        kind = rng.choice(["text", "text_any", "phrase", "prefix", "substring"])
        # One word for `text`: with several, an index takes a point's strings together (as
        # Qdrant does; tests/test_text_scoring.py) where local mode wants them in one string.
        words = 1 if kind == "text" else rng.randrange(1, 3)
        text = " ".join(rng.choice(WORDS).lower() for _ in range(words))
        if kind in ("prefix", "substring"):
            text = text[: rng.randrange(1, 6)]
        return {"key": key, "match": {kind: text}}
    if r < 0.55:
        number = lambda: rng.choice([rng.randrange(-2, 8), rng.random() * 8])  # noqa: E731
        return {"key": key, "range": random_bounds(rng, number)}
    if r < 0.62:
        moment = lambda: f"2024-0{rng.randrange(1, 10)}-15T12:00:00Z"  # noqa: E731
        return {"key": key, "range": random_bounds(rng, moment)}
    lat, lon = rng.uniform(-2, 1), rng.uniform(-2, 1)
    if r < 0.68:
        center = {"lat": lat + 1, "lon": lon + 1}
        return {"key": key, "geo_radius": {"center": center, "radius": rng.uniform(1e4, 2e5)}}
    if r < 0.72:
        corners = {"lat": lat + 1.5, "lon": lon}, {"lat": lat, "lon": lon + 1.5}
        return {"key": key, "geo_bounding_box": dict(zip(("top_left", "bottom_right"), corners))}
    if r < 0.76:
        ring = [(0, 0), (2, 0.5), (1, 2), (-0.5, 1), (0, 0)]
        points = [{"lat": lat + a, "lon": lon + b} for a, b in ring]
        return {"key": key, "geo_polygon": {"exterior": {"points": points}}}
    if r < 0.84:
        return {"key": key, "values_count": random_bounds(rng, lambda: rng.randrange(0, 4))}
    if r < 0.92:
        return {rng.choice(["is_empty", "is_null"]): {"key": key}}
    return {"key": key, rng.choice(["is_empty", "is_null"]): rng.choice([True, False])}


def random_filter(
    rng: random.Random, depth: int, ids: list[PointId], nested: bool = False
) -> dict[str, Any]:
    def cond() -> dict[str, Any]:
        if nested:
            return field_condition(rng, rng.choice(["x", "y"]))
        return random_condition(rng, depth, ids)

    out: dict[str, Any] = {}
    for clause in rng.sample(["must", "should", "must_not"], rng.choice([1, 1, 2, 3])):
        sizes = [1, 1, 2] if clause == "must" else [1, 2, 3]
        out[clause] = [cond() for _ in range(0 if rng.random() < 0.04 else rng.choice(sizes))]
    if rng.random() < 0.12:
        conds = [cond() for _ in range(rng.randrange(0, 4))]
        out["min_should"] = {"conditions": conds, "min_count": rng.randrange(1, 3)}
    return out


def test_random_filters_against_local_mode() -> None:
    rng = random.Random(20240601)
    n = 240
    ids: list[PointId] = [i if i % 3 else uuid.UUID(int=rng.randrange(2**128)) for i in range(n)]
    payloads = [random_payload(rng) for _ in range(n)]
    has_w = np.array([rng.random() < 0.6 for _ in range(n)], dtype=np.bool_)

    client = QdrantClient(":memory:")
    client.create_collection(
        "c",
        vectors_config={
            "v": models.VectorParams(size=2, distance=models.Distance.DOT),
            "w": models.VectorParams(size=2, distance=models.Distance.DOT),
        },
    )
    client.upsert(
        "c",
        [
            models.PointStruct(
                id=str(pid) if isinstance(pid, uuid.UUID) else pid,
                vector={"v": [1.0, 0.0], **({"w": [0.0, 1.0]} if has_w[i] else {})},
                payload=payloads[i],
            )
            for i, pid in enumerate(ids)
        ],
    )
    deleted = rng.sample(range(n), 12)
    client.delete("c", [str(ids[o]) if isinstance(ids[o], uuid.UUID) else ids[o] for o in deleted])

    vectors = {"v": np.ones(n, dtype=np.bool_), "w": has_w}
    targets = [
        FakeTarget(payloads, ids, None, vectors),
        FakeTarget(payloads, ids, NATURAL_SCHEMAS, vectors),
        FakeTarget(payloads, ids, CROSSED, vectors),
    ]
    for t in targets:
        for o in deleted:
            t.delete(o)

    checked = 0
    for _ in range(500):
        raw = random_filter(rng, 0, ids)
        filt = models.Filter.model_validate(raw)
        want = client.count("c", count_filter=filt).count
        points, _ = client.scroll("c", scroll_filter=filt, limit=n)
        want_ids = sorted(str(p.id) for p in points)
        assert len(want_ids) == want
        for t, schemas in zip(targets, (None, NATURAL_SCHEMAS, CROSSED)):
            if index_rule_differs(raw, schemas):
                continue  # Qdrant's rule there is not local mode's (test_indexed_conditions)
            got = select(t, raw)
            assert sorted(str(x) for x in got) == want_ids, (raw, t.indexes.keys())
            parsed = parse_filter(raw)
            assert parsed is not None
            lo, exp, hi = estimate_cardinality(parsed, t)
            assert lo <= want <= hi and lo <= exp <= hi, raw
        checked += want > 0
    assert checked > 200  # most filters select something, so the comparison is not vacuous


def test_a_filter_hashes_once_and_as_its_fields() -> None:
    # Filters key per-segment caches: equal filters must meet in them, different ones not,
    # and the hash is kept on the filter (computed once, not at every lookup).
    import dataclasses

    raw = {"must": [{"key": "kw", "match": {"value": "k1"}}], "must_not": [{"has_id": [3]}]}
    one, two = parse_filter(raw), parse_filter(raw)
    assert one is not two and one == two and hash(one) == hash(two)
    assert hash(one) == hash((one.must, one.should, one.must_not, one.min_should))
    assert one.__dict__.get("_hash") == hash(one)
    other = dataclasses.replace(one, must_not=None)
    assert other != one and hash(other) != hash(one)
    assert {one: 1}.get(two) == 1 and {one: 1}.get(other) is None
