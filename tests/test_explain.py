"""`"explain": true` on `/points/query` and `/points/search` (a Tessera extension): the plan
each segment ran matches the situation (an unindexed segment: exact; an indexed one without
filter: the graph; a selective filter: an exact scan of the matching points; a quantized
graph: codes walked, then rescored with the oversampling asked), prefetches get one report
each with their path, and answers without explain are unchanged."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import CollectionFactory

pytestmark = pytest.mark.server_only(reason="explain is a REST extension")

N, DIM, GROUPS = 2000, 16, 50


def _create(http: httpx.Client, name: str, **extra: Any) -> None:
    body: dict[str, Any] = {"vectors": {"size": DIM, "distance": "Cosine"}, **extra}
    response = http.put(f"/collections/{name}", json=body)
    assert response.status_code == 200, response.text


def _load(http: httpx.Client, name: str, count: int) -> np.ndarray[Any, Any]:
    vectors = np.random.default_rng(3).normal(size=(count, DIM)).astype(np.float32)
    for start in range(0, count, 500):
        points = [
            {"id": i, "vector": vectors[i].tolist(), "payload": {"g": i % GROUPS}}
            for i in range(start, min(start + 500, count))
        ]
        response = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
        assert response.status_code == 200, response.text
    return vectors


def _indexed(http: httpx.Client, name: str, quantization: dict[str, Any] | None = None) -> Any:
    """N points in one segment with an HNSW graph (full_scan_threshold 10 KB = 160 points
    of 16 dimensions)."""
    extra: dict[str, Any] = {
        "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 1},
        "hnsw_config": {"full_scan_threshold": 10, "m": 16, "ef_construct": 64},
    }
    if quantization is not None:
        extra["quantization_config"] = quantization
    _create(http, name, **extra)
    vectors = _load(http, name, N)
    _wait_indexed(http, name)
    return vectors


def _wait_indexed(http: httpx.Client, name: str) -> None:
    """Until the optimizer has indexed the collection's N points (in one segment)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = http.get(f"/collections/{name}").json()["result"]
        if info["status"] == "green" and info["indexed_vectors_count"] >= N:
            break
        time.sleep(0.2)


def _query(http: httpx.Client, name: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"/collections/{name}/points/query", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def _searched(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in report["segments"] if s["candidates"]]


def test_unindexed_segment_is_scanned_exactly(
    http: httpx.Client, collection: CollectionFactory
) -> None:
    name = collection()
    _create(http, name)
    vectors = _load(http, name, 50)
    result = _query(http, name, {"query": vectors[0].tolist(), "limit": 3, "explain": True})
    assert result["points"][0]["id"] == 0
    explain = result["explain"]
    assert set(explain) == {"total_ms", "stages_ms", "queries"}
    assert "fetch" in explain["stages_ms"]
    [report] = explain["queries"]
    assert report["path"] == "query" and report["query"] == "nearest"
    assert report["limit"] == 3 and not report["filtered"] and report["results"] == 3
    segments = _searched(report)
    assert sum(s["candidates"] for s in segments) == 50
    for seg in segments:
        assert seg["plan"] == "exact" and seg["indexed"] == 0
        assert "not indexed" in seg["reason"]
        assert seg["scored"] == seg["candidates"] and not seg["quantized"]
        assert {"filter", "search"} <= set(seg["stages_ms"])
    assert {"filter", "search", "merge"} <= set(report["stages_ms"])


def test_graph_filter_and_prefetch_plans(http: httpx.Client, collection: CollectionFactory) -> None:
    name = collection()
    vectors = _indexed(http, name)
    q = vectors[7].tolist()

    # No filter: every point is a candidate, far above the threshold: the graph.
    [report] = _query(http, name, {"query": q, "limit": 5, "explain": True})["explain"]["queries"]
    [seg] = _searched(report)
    assert seg["plan"] == "graph" and seg["indexed"] == seg["points"] == N
    assert seg["candidates"] == N and "full_scan_threshold" in seg["reason"]
    assert seg["full_scan_threshold_points"] == 10 * 1024 // (DIM * 4)
    assert seg["hnsw_ef"] >= 64 and seg["walked"] == 5 and seg["returned"] == 5
    assert not seg["quantized"] and not seg["rescored"]
    ef = _query(http, name, {"query": q, "limit": 5, "params": {"hnsw_ef": 200}, "explain": True})
    assert _searched(ef["explain"]["queries"][0])[0]["hnsw_ef"] == 200

    # A selective filter (2% of the points, under the threshold): the matching ids, exactly.
    only = {"must": [{"key": "g", "match": {"value": 3}}]}
    body = {"query": q, "limit": 5, "filter": only, "explain": True}
    result = _query(http, name, body)
    [report] = result["explain"]["queries"]
    [seg] = _searched(report)
    assert report["filtered"] and seg["plan"] == "exact"
    assert seg["candidates"] == seg["scored"] == N // GROUPS
    assert "<= full_scan_threshold" in seg["reason"] and "hnsw_ef" not in seg
    assert all(p["id"] % GROUPS == 3 for p in result["points"])

    # params.exact: exact, and said why.
    exact = _query(http, name, {"query": q, "params": {"exact": True}, "explain": True})
    assert _searched(exact["explain"]["queries"][0])[0]["reason"].startswith("params.exact")

    # Prefetches and fusion: one report per query of the tree, the root first.
    fused = _query(
        http,
        name,
        {
            "prefetch": [
                {"query": q, "limit": 10},
                {"query": vectors[8].tolist(), "limit": 10, "filter": only},
            ],
            "query": {"fusion": "rrf"},
            "limit": 4,
            "explain": True,
        },
    )
    reports = fused["explain"]["queries"]
    assert [r["path"] for r in reports] == ["query", "prefetch[0]", "prefetch[1]"]
    assert reports[0]["query"] == "fusion (rrf)" and "fusion" in reports[0]["stages_ms"]
    assert reports[0]["results"] == len(fused["points"]) == 4
    assert _searched(reports[1])[0]["plan"] == "graph"
    assert _searched(reports[2])[0]["plan"] == "exact"


def test_quantized_graph_is_walked_then_rescored(
    http: httpx.Client, collection: CollectionFactory
) -> None:
    name = collection()
    vectors = _indexed(http, name, {"scalar": {"type": "int8", "quantile": 0.99}})
    body = {
        "vector": vectors[11].tolist(),
        "limit": 4,
        "params": {"quantization": {"rescore": True, "oversampling": 2.0}},
        "explain": True,
    }
    response = http.post(f"/collections/{name}/points/search", json=body)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["points"][0]["id"] == 11
    [seg] = _searched(result["explain"]["queries"][0])
    assert seg["plan"] == "graph" and seg["quantized"] and seg["rescored"]
    assert seg["oversampling"] == 2.0 and seg["walked"] == 8 and seg["scored"] == 8
    assert seg["returned"] == 4 and "rescore" in seg["stages_ms"]
    no_rescore = {**body, "params": {"quantization": {"rescore": False}}}
    plain = http.post(f"/collections/{name}/points/search", json=no_rescore).json()["result"]
    [seg] = _searched(plain["explain"]["queries"][0])
    assert seg["quantized"] and not seg["rescored"] and "rescore" not in seg["stages_ms"]


def test_answers_without_explain_are_unchanged(
    http: httpx.Client, collection: CollectionFactory
) -> None:
    name = collection()
    _create(http, name)
    vectors = _load(http, name, 60)
    query = {"query": vectors[1].tolist(), "limit": 5, "with_payload": True}
    search = {"vector": vectors[1].tolist(), "limit": 5, "with_payload": True}
    for path, body in (("query", query), ("search", search)):
        url = f"/collections/{name}/points/{path}"
        plain = http.post(url, json=body).json()
        off = http.post(url, json={**body, "explain": False}).json()
        on = http.post(url, json={**body, "explain": True}).json()
        assert set(plain) == {"result", "status", "time"}
        assert off["result"] == plain["result"]
        points = plain["result"] if path == "search" else plain["result"]["points"]
        if path == "query":
            assert set(plain["result"]) == {"points"}
        else:
            assert isinstance(plain["result"], list)
        assert on["result"]["points"] == points
        assert set(on["result"]) == {"points", "explain"}
        bad = http.post(url, json={**body, "explain": "yes"})
        assert bad.status_code == 400
        assert bad.json()["status"]["error"].endswith("`explain` must be a boolean")


def test_a_vectors_own_full_scan_threshold_decides_its_plan(
    http: httpx.Client, collection: CollectionFactory
) -> None:
    """`vectors.<name>.hnsw_config.full_scan_threshold` overrides the collection's for that
    vector's searches: 80 candidates (4%) of 64 dimensions are over the collection's 10 KB
    (40 points) but under vector "own"'s 1,000 KB."""
    name = collection()
    body = {
        "vectors": {
            "shared": {"size": 64, "distance": "Cosine"},
            "own": {"size": 64, "distance": "Cosine", "hnsw_config": {"full_scan_threshold": 1000}},
        },
        "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 1},
        "hnsw_config": {"full_scan_threshold": 10, "m": 16, "ef_construct": 64},
    }
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    vectors = np.random.default_rng(5).normal(size=(N, 64)).astype(np.float32)
    for start in range(0, N, 500):
        points = [
            {
                "id": i,
                "vector": {"shared": vectors[i].tolist(), "own": vectors[i].tolist()},
                "payload": {"g": i % GROUPS},
            }
            for i in range(start, start + 500)
        ]
        response = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
        assert response.status_code == 200, response.text
    _wait_indexed(http, name)
    only = {"must": [{"key": "g", "match": {"any": [3, 4]}}]}
    plans = {}
    for using in ("shared", "own"):
        body = {"query": vectors[3].tolist(), "using": using, "filter": only, "explain": True}
        result = _query(http, name, body)
        assert result["points"][0]["id"] == 3
        [seg] = _searched(result["explain"]["queries"][0])
        assert seg["candidates"] == 2 * N // GROUPS
        plans[using] = (seg["plan"], seg["full_scan_threshold_kb"])
    assert plans == {"shared": ("graph", 10), "own": ("exact", 1000)}
