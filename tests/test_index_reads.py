"""Which conditions Qdrant answers from a payload index and which from the payloads.

Found by a randomized comparison with Qdrant Edge (Qdrant's engine in-process), the oracle
here, which each case is checked against over REST:
- an integer index built with `lookup: false` answers no `match`, one with `range: false` no
  `range`: the payloads do (2.5 passes `gt: 1`, a string never passes a datetime range);
- a geo index holds only valid points (`lat` within [-90; 90], `lon` within [-180; 180]),
  where a payload check reads any coordinates;
- the FieldCondition form of `is_empty` / `is_null` (`{"key": ..., "is_empty": true}`) is
  checked on each value the path selects (one null or empty array passes `is_empty: true`),
  unlike the condition form, which looks at them all; an index on the key answers both forms
  alike.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qdrant_client import models

from tests.conftest import make_grpc_client, private_server, require_server_target

qe = pytest.importorskip("qdrant_edge")

PAYLOADS: dict[int, dict[str, Any]] = {
    1: {"y": 2.5, "i": "3", "g": {"lon": 0, "lat": 95}, "m": [None, "b"]},
    2: {"y": 3, "i": 1.5, "g": {"lon": 200, "lat": 0}, "m": [[], "c"]},
    3: {"y": "2024-01-01T00:00:00Z", "i": 5, "g": {"lon": 0, "lat": 50}, "m": ["a"]},
    4: {"y": [1, 7.5], "i": 7, "g": {"lon": -180, "lat": -90}, "n": 1},
    5: {"y": None, "i": [5, 2.5], "m": None},
    6: {"m": []},
    7: {"m": "x", "g": [{"lon": 10, "lat": 10}, {"lon": 10, "lat": 100}]},
}
# (REST schema, Edge schema) per case; each case its own collection
INDEXES: dict[str, dict[str, tuple[Any, Any]]] = {
    "none": {},
    "no range": {"y": ({"type": "integer", "range": False}, ("integer", {"range": False}))},
    "no lookup": {"i": ({"type": "integer", "lookup": False}, ("integer", {"lookup": False}))},
    "both": {
        "y": ({"type": "integer"}, ("integer", {})),
        "i": ({"type": "integer"}, ("integer", {})),
    },
    "geo": {"g": ("geo", ("geo", {}))},
    "keyword on m[]": {"m[]": ("keyword", ("keyword", {}))},
    "keyword on m": {"m": ("keyword", ("keyword", {}))},
}
CONDITIONS: list[dict[str, Any]] = [
    {"key": "y", "range": {"gt": 1}},
    {"key": "y", "range": {"gte": 2, "lt": 7}},
    {"key": "y", "range": {"lt": "2030-01-01T00:00:00Z"}},
    {"key": "y", "match": {"value": 3}},
    {"key": "i", "match": {"except": [5]}},
    {"key": "i", "match": {"any": [3, 7]}},
    {"key": "i", "match": {"value": 5}},
    {"key": "i", "range": {"gt": 2}},
    {"key": "g", "geo_radius": {"center": {"lon": 0, "lat": 0}, "radius": 30_000_000}},
    {
        "key": "g",
        "geo_bounding_box": {
            "top_left": {"lon": -20, "lat": 60},
            "bottom_right": {"lon": 20, "lat": -60},
        },
    },
    *(
        {"key": key, test: value}
        for key in ("m", "m[]")
        for test in ("is_empty", "is_null")
        for value in (True, False)
    ),
    {"is_empty": {"key": "m[]"}},
    {"is_null": {"key": "m[]"}},
]


def _edge_schema(kind: str, params: dict[str, Any]) -> Any:
    if kind == "integer":
        return qe.IntegerIndexParams(**params)
    return getattr(qe.PayloadSchemaType, kind.capitalize())


def _edge_condition(c: dict[str, Any]) -> Any:
    if "key" not in c:
        ((test, body),) = c.items()
        made = qe.IsEmptyCondition if test == "is_empty" else qe.IsNullCondition
        return made(body["key"])
    kw: dict[str, Any] = {}
    if "range" in c:
        r = c["range"]
        datetime = any(isinstance(v, str) for v in r.values())
        kw["range"] = qe.RangeDateTime(**r) if datetime else qe.RangeFloat(**r)
    if "match" in c:
        ((kind, value),) = c["match"].items()
        made = {"value": qe.MatchValue, "any": qe.MatchAny, "except": qe.MatchExcept}[kind]
        kw["match"] = made(value)
    if "geo_radius" in c:
        center = c["geo_radius"]["center"]
        point = qe.GeoPoint(lon=center["lon"], lat=center["lat"])
        kw["geo_radius"] = qe.GeoRadius(point, c["geo_radius"]["radius"])
    if "geo_bounding_box" in c:
        box = c["geo_bounding_box"]
        corners = [qe.GeoPoint(lon=box[k]["lon"], lat=box[k]["lat"]) for k in box]
        kw["geo_bounding_box"] = qe.GeoBoundingBox(*corners)
    for test in ("is_empty", "is_null"):
        if test in c:
            kw[test] = c[test]
    return qe.FieldCondition(key=c["key"], **kw)


@pytest.fixture(scope="module")
def edge_shards() -> Iterator[dict[str, Any]]:
    shards: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as root:
        for case, indexes in INDEXES.items():
            params = qe.EdgeVectorParams(size=2, distance=qe.Distance.Dot)
            shard = qe.EdgeShard.create(f"{root}/{len(shards)}", qe.EdgeConfig(vectors=params))
            points = [qe.Point(i, [1.0, float(i)], p) for i, p in PAYLOADS.items()]
            shard.update(qe.UpdateOperation.upsert_points(points))
            for key, (_, edge) in indexes.items():
                shard.update(qe.UpdateOperation.create_field_index(key, _edge_schema(*edge)))
            shards[case] = shard
        yield shards
        for shard in shards.values():
            shard.close()


def _collection(http: httpx.Client, case: str) -> str:
    name = "index_reads_" + case.replace(" ", "_").replace("[]", "_all")
    http.delete(f"/collections/{name}")
    assert http.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}})
    points = [{"id": i, "vector": [1.0, float(i)], "payload": p} for i, p in PAYLOADS.items()]
    assert http.put(f"/collections/{name}/points?wait=true", json={"points": points}).is_success
    for key, (schema, _) in INDEXES[case].items():
        body = {"field_name": key, "field_schema": schema}
        assert http.put(f"/collections/{name}/index?wait=true", json=body).is_success
    return name


@pytest.mark.parametrize("case", list(INDEXES))
def test_conditions_read_from_the_index_or_the_payloads_as_qdrant(
    http: httpx.Client, edge_shards: dict[str, Any], case: str
) -> None:
    name = _collection(http, case)
    differ = []
    for condition in CONDITIONS:
        for negate in (False, True):
            filt = {"must_not" if negate else "must": [condition]}
            answer = http.post(
                f"/collections/{name}/points/scroll", json={"filter": filt, "limit": 100}
            )
            assert answer.status_code == 200, answer.text
            got = sorted(p["id"] for p in answer.json()["result"]["points"])
            edge = _edge_condition(condition)
            edge_filter = qe.Filter(must_not=[edge]) if negate else qe.Filter(must=[edge])
            found = edge_shards[case].scroll(qe.ScrollRequest(filter=edge_filter, limit=100))
            points = found[0] if isinstance(found, tuple) else found
            expected = sorted(int(p.id) for p in points)
            if got != expected:
                differ.append((filt, got, expected))
    assert differ == []
    http.delete(f"/collections/{name}")


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_server_target()
    server = private_server(tmp_path_factory, "index-reads-grpc", grpc=True)
    server.start()
    yield server
    server.stop()


def test_the_field_form_over_grpc(grpc_server: Any, edge_shards: dict[str, Any]) -> None:
    """gRPC's FieldCondition `is_empty` / `is_null` are the field form too."""
    _collection(httpx.Client(base_url=grpc_server.url, timeout=30), "none")
    client = make_grpc_client(grpc_server, timeout=30, check_compatibility=False)
    for test in ("is_empty", "is_null"):
        for value in (True, False):
            condition = models.FieldCondition(key="m[]", **{test: value})
            found = client.scroll(
                "index_reads_none", scroll_filter=models.Filter(must=[condition]), limit=100
            )[0]
            edge = qe.Filter(must=[_edge_condition({"key": "m[]", test: value})])
            points = edge_shards["none"].scroll(qe.ScrollRequest(filter=edge, limit=100))
            points = points[0] if isinstance(points, tuple) else points
            expected = sorted(int(p.id) for p in points)
            assert sorted(int(p.id) for p in found) == expected, (test, value)  # type: ignore[arg-type]
    client.close()
