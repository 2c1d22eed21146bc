"""The older search endpoints (search, search/batch, search/groups, recommend (+batch,
+groups), discover (+batch)) over plain HTTP, against local mode's Query API equivalents.

qdrant-client 1.20 no longer calls these routes, but older clients do; their bodies are
Qdrant's SearchRequest, RecommendRequest, DiscoverRequest (qdrant_client/http/models).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import models

from tests.openapi_check import assert_error, assert_ok
from tests.test_query_api import (
    UUIDS,
    Pair,
    assert_same,
    assert_same_groups,
    g_is,
    paired,
    sparse,
)

G1 = {"must": [{"key": "g", "match": {"value": 1}}]}


@dataclass(frozen=True)
class Scored:
    id: Any
    score: float
    payload: Any = None


@dataclass
class Legacy:
    pair: Pair
    http: httpx.Client

    def post(self, key: str, route: str, body: dict[str, Any], status: int = 200) -> Any:
        name = self.pair.ours_names[key]
        response = self.http.post(f"/collections/{name}/points/{route}", json=body)
        assert response.status_code == status, response.text
        return response.json().get("result")

    def local(self, key: str, **kwargs: Any) -> list[models.ScoredPoint]:
        return list(self.pair.local.query_points(self.pair.local_names[key], **kwargs).points)

    def error(self, key: str, route: str, body: dict[str, Any], status: int) -> str:
        name = self.pair.ours_names[key]
        response = self.http.post(f"/collections/{name}/points/{route}", json=body)
        assert response.status_code == status, response.text
        message: str = response.json()["status"]["error"]
        return message


def scored(points: list[dict[str, Any]]) -> list[Scored]:
    return [Scored(p["id"], p["score"], p.get("payload")) for p in points]


@pytest.fixture(scope="module")
def legacy(server: Any) -> Iterator[Legacy]:
    with paired(server) as both, httpx.Client(base_url=server.url, timeout=30) as http:
        yield Legacy(both, http)


def sparse_json(vector: models.SparseVector) -> dict[str, Any]:
    return {"indices": vector.indices, "values": vector.values}


def test_search_and_batch(legacy: Legacy) -> None:
    rng = np.random.default_rng(11)
    q8 = rng.normal(size=8).tolist()
    qa = rng.normal(size=6).tolist()
    qs = sparse(rng)
    qm = rng.normal(size=(2, 4)).tolist()
    key = models.Distance.EUCLID.value
    ours = legacy.post(key, "search", {"vector": q8, "limit": 6, "with_payload": True})
    expected = legacy.local(key, query=q8, limit=6, with_payload=True)
    assert_same(scored(ours), expected)
    assert [p["payload"] for p in ours] == [p.payload for p in expected]
    searches = [
        {"vector": {"name": "a", "vector": qa}, "limit": 5, "filter": G1},
        {"vector": {"name": "s", "vector": sparse_json(qs)}, "limit": 6, "offset": 1},
        {"vector": {"name": "m", "vector": qm}, "limit": 4, "score_threshold": 5.0},
        {"vector": {"name": "b", "vector": rng.normal(size=5).tolist()}, "limit": 500},
    ]
    results = legacy.post("named", "search/batch", {"searches": searches})
    assert len(results) == 4
    assert_same(
        scored(results[0]),
        legacy.local("named", query=qa, using="a", limit=5, query_filter=g_is(1)),
    )
    assert_same(scored(results[1]), legacy.local("named", query=qs, using="s", limit=6, offset=1))
    assert_same(
        scored(results[2]), legacy.local("named", query=qm, using="m", limit=4, score_threshold=5.0)
    )
    assert_same(
        scored(results[3]),
        legacy.local("named", query=searches[3]["vector"]["vector"], using="b", limit=500),
    )


def test_search_groups(legacy: Legacy) -> None:
    rng = np.random.default_rng(12)
    qa = rng.normal(size=6).tolist()
    body = {
        "vector": {"name": "a", "vector": qa},
        "group_by": "multi",
        "group_size": 2,
        "limit": 4,
        "with_lookup": legacy.pair.ours_names["lookup"],
    }
    ours = legacy.post("named", "search/groups", body)
    theirs = legacy.pair.local.query_points_groups(
        legacy.pair.local_names["named"],
        query=qa,
        using="a",
        group_by="multi",
        group_size=2,
        limit=4,
        with_lookup=legacy.pair.local_names["lookup"],
    )
    assert_same_groups(models.GroupsResult(**ours), theirs)


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
def test_recommend(legacy: Legacy, strategy: str) -> None:
    body = {
        "positive": [1, 2, UUIDS[1]],
        "negative": [9],
        "strategy": strategy,
        "using": "a",
        "limit": 7,
        "offset": 1,
        "filter": {"must_not": G1},
        "with_payload": ["i"],
    }
    ours = legacy.post("named", "recommend", body)
    reco = models.RecommendInput(positive=[1, 2, UUIDS[1]], negative=[9], strategy=strategy)
    expected = legacy.local(
        "named",
        query=models.RecommendQuery(recommend=reco),
        using="a",
        limit=7,
        offset=1,
        query_filter=models.Filter(must_not=[g_is(1)]),
        with_payload=["i"],
    )
    assert_same(scored(ours), expected)
    assert [p["payload"] for p in ours] == [p.payload for p in expected]
    batch = legacy.post(
        "named",
        "recommend/batch",
        {
            "searches": [
                dict(body, using="s"),
                {"positive": [11], "using": "m", "limit": 3, "strategy": strategy},
            ]
        },
    )
    assert_same(
        scored(batch[0]),
        legacy.local(
            "named",
            query=models.RecommendQuery(recommend=reco),
            using="s",
            limit=7,
            offset=1,
            query_filter=models.Filter(must_not=[g_is(1)]),
        ),
    )
    single = models.RecommendInput(positive=[11], strategy=strategy)
    assert_same(
        scored(batch[1]),
        legacy.local("named", query=models.RecommendQuery(recommend=single), using="m", limit=3),
    )


def test_recommend_lookup_and_groups(legacy: Legacy) -> None:
    lookup = {"collection": legacy.pair.ours_names["lookup"], "vector": "v"}
    ours = legacy.post(
        "named",
        "recommend",
        {"positive": [3, 4], "using": "a", "limit": 5, "lookup_from": lookup},
    )
    reco = models.RecommendInput(positive=[3, 4])
    expected = legacy.local(
        "named",
        query=models.RecommendQuery(recommend=reco),
        using="a",
        limit=5,
        lookup_from=models.LookupLocation(collection=legacy.pair.local_names["lookup"], vector="v"),
    )
    assert_same(scored(ours), expected)
    groups = legacy.post(
        "named",
        "recommend/groups",
        {
            "positive": [1],
            "negative": [2],
            "using": "b",
            "group_by": "g",
            "group_size": 3,
            "limit": 2,
            "strategy": "best_score",
        },
    )
    reco = models.RecommendInput(positive=[1], negative=[2], strategy="best_score")
    theirs = legacy.pair.local.query_points_groups(
        legacy.pair.local_names["named"],
        query=models.RecommendQuery(recommend=reco),
        using="b",
        group_by="g",
        group_size=3,
        limit=2,
    )
    assert_same_groups(models.GroupsResult(**groups), theirs)


def test_discover(legacy: Legacy) -> None:
    context = [{"positive": 1, "negative": 2}, {"positive": 19, "negative": 9}]
    pairs = [models.ContextPair(**c) for c in context]
    for using in ("a", "m", "si"):
        ours = legacy.post(
            "named", "discover", {"target": 11, "context": context, "using": using, "limit": 6}
        )
        discover = models.DiscoverQuery(discover=models.DiscoverInput(target=11, context=pairs))
        assert_same(scored(ours), legacy.local("named", query=discover, using=using, limit=6))
    batch = legacy.post(
        "named",
        "discover/batch",
        {
            "searches": [
                {"context": context, "using": "b", "limit": 50},
                {"target": [0.5] * 6, "context": context[:1], "using": "a", "limit": 4},
            ]
        },
    )
    assert_same(
        scored(batch[0]),
        legacy.local("named", query=models.ContextQuery(context=pairs), using="b", limit=50),
    )
    raw_target = models.DiscoverQuery(
        discover=models.DiscoverInput(target=[0.5] * 6, context=pairs[:1])
    )
    assert_same(scored(batch[1]), legacy.local("named", query=raw_target, using="a", limit=4))


def test_legacy_errors(legacy: Legacy) -> None:
    dense = models.Distance.DOT.value
    message = legacy.error(dense, "search", {"vector": [1.0, 2.0, 3.0], "limit": 3}, 400)
    assert "Vector dimension error: expected dim: 8, got 3" in message
    message = legacy.error(
        dense, "search/batch", {"searches": [{"vector": [1.0, 2.0], "limit": 3}]}, 400
    )
    assert "expected dim: 8, got 2" in message
    legacy.error(dense, "search/batch", {"searches": [{"vector": [1.0] * 8}]}, 400)  # no limit
    legacy.error("named", "recommend", {"negative": [1], "using": "a", "limit": 3}, 400)
    legacy.error("named", "recommend", {"positive": [17], "using": "a", "limit": 3}, 404)
    legacy.error("named", "recommend", {"positive": [1], "using": "zzz", "limit": 3}, 400)
    legacy.error("named", "discover", {"using": "a", "limit": 3}, 400)
    legacy.error(
        "named", "search/groups", {"vector": {"name": "a", "vector": [1.0] * 6}, "limit": 3}, 400
    )
    assert legacy.post("empty", "recommend", {"positive": [[1, 2, 3, 4]], "limit": 3}) == []


def test_query_wire_shapes(legacy: Legacy) -> None:
    """The Query API's answers, raw, against Qdrant's OpenAPI document."""
    http = legacy.http
    name = legacy.pair.ours_names["named"]
    base = f"/collections/{name}/points"
    q = "/collections/{collection_name}/points/query"
    body = {
        "query": [0.5] * 6,
        "using": "a",
        "limit": 3,
        "with_payload": True,
        "with_vector": True,
        "filter": G1,
    }
    points = assert_ok(http.post(base + "/query", json=body), "post", q)["points"]
    assert len(points) == 3 and all(p["payload"]["g"] == 1 for p in points)
    ordered = {"query": {"order_by": {"key": "price", "direction": "desc"}}, "limit": 2}
    points = assert_ok(http.post(base + "/query", json=ordered), "post", q)["points"]
    assert points[0]["order_value"] >= points[1]["order_value"]
    batch = {"searches": [body, {"query": {"sample": "random"}, "limit": 2}, {}]}
    results = assert_ok(http.post(base + "/query/batch", json=batch), "post", q + "/batch")
    assert [len(r["points"]) for r in results] == [3, 2, 10]
    groups = dict(body, group_by="g", group_size=2, with_lookup=legacy.pair.ours_names["lookup"])
    result = assert_ok(http.post(base + "/query/groups", json=groups), "post", q + "/groups")
    assert result["groups"] and result["groups"][0]["lookup"]["id"] == result["groups"][0]["id"]
    matrix = {"sample": 6, "limit": 2, "using": "b"}
    m = "/collections/{collection_name}/points/search/matrix"
    pairs = assert_ok(http.post(base + "/search/matrix/pairs", json=matrix), "post", m + "/pairs")
    assert len(pairs["pairs"]) == 12
    offsets = assert_ok(
        http.post(base + "/search/matrix/offsets", json=matrix), "post", m + "/offsets"
    )
    assert len(offsets["ids"]) == 6 and len(offsets["scores"]) == 12
    assert_error(http.post(base + "/query", json={"query": [1.0] * 3, "using": "a"}), 400)
    assert_error(http.post(base + "/query", json={"query": {"sample": "often"}}), 400)
    assert_error(http.post(base + "/query", json={"limit": 0}), 422)
    assert_error(http.post(base + "/query/batch", json={}), 400)
