"""Collection config options that must take effect, not only be accepted: the `quantization`
and `optimizer_config` aliases, `memory` placements, `prevent_unoptimized`,
`CollectionInfo.warnings` and the search parameter `indexed_only`."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tessera.collection_config import parse_create_collection
from tessera.ids import PointId
from tessera.shard import operations as ops
from tessera.shard.apply import apply_record
from tessera.shard.holder import SegmentHolder
from tessera.shard.read import count, retrieve

SCALAR = {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}}


def _params(http: httpx.Client, name: str) -> dict[str, Any]:
    r = http.get(f"/collections/{name}")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["result"]
    return result


@pytest.mark.server_only(reason="the wire")
def test_aliases_memory_and_warnings(http: httpx.Client, collection: Any) -> None:
    name = collection()
    body = {
        "vectors": {
            "a": {"size": 4, "distance": "Dot", "quantization": SCALAR, "memory": "cold"},
            "b": {
                "size": 4,
                "distance": "Dot",
                "hnsw_config": {"inline_storage": True, "memory": "cached"},
            },
        },
        "quantization": SCALAR,
        "optimizer_config": {"indexing_threshold": 1234},
        "payload": {"memory": "cached"},
        "id_tracker": {"memory": "pinned"},
        "sparse_vectors": {"s": {"index": {"memory": "pinned"}}},
    }
    r = http.put(f"/collections/{name}", json=body)
    assert r.status_code == 200, r.text
    info = _params(http, name)
    config = info["config"]
    vectors = config["params"]["vectors"]
    assert vectors["a"]["memory"] == "cold"
    assert vectors["a"]["quantization_config"]["scalar"]["type"] == "int8"
    assert vectors["b"]["hnsw_config"]["memory"] == "cached"
    assert config["quantization_config"]["scalar"]["type"] == "int8"
    assert config["optimizer_config"]["indexing_threshold"] == 1234
    assert config["params"]["payload"] == {"memory": "cached"}
    assert config["params"]["id_tracker"] == {"memory": "pinned"}
    assert config["params"]["sparse_vectors"]["s"]["index"]["memory"] == "pinned"
    assert "warnings" not in info  # quantization is on: inline_storage has what it needs

    # PATCH changes a placement; a vector with inline_storage and no quantization warns.
    r = http.patch(
        f"/collections/{name}",
        json={
            "vectors": {"a": {"memory": "cached", "quantization": {"binary": {}}}},
            "params": {"payload": {"memory": "cold"}, "id_tracker": {"memory": "cold"}},
        },
    )
    assert r.status_code == 200, r.text
    config = _params(http, name)["config"]
    assert config["params"]["vectors"]["a"]["memory"] == "cached"
    assert config["params"]["vectors"]["a"]["quantization_config"] == {"binary": {}}
    assert config["params"]["payload"] == {"memory": "cold"}
    assert config["params"]["id_tracker"] == {"memory": "cold"}

    plain = collection()
    r = http.put(
        f"/collections/{plain}",
        json={
            "vectors": {"size": 4, "distance": "Dot"},
            "hnsw_config": {"inline_storage": True},
        },
    )
    assert r.status_code == 200, r.text
    assert _params(http, plain)["warnings"] == [
        {
            "message": "The `hnsw_config.inline_storage` option for vector '' requires "
            "quantization to be enabled. This option will be ignored."
        }
    ]

    # Refused, and nothing created.
    bad = [
        ({"vectors": {"size": 4, "distance": "Dot", "memory": "pinned"}}, 422, "pinned"),
        ({"vectors": {"size": 4, "distance": "Dot", "memory": "hot"}}, 400, "unknown variant"),
        ({"payload": {"memory": "pinned"}}, 422, "payload storage"),
        ({"hnsw_config": {"memory": "COLD"}}, 400, "unknown variant"),
        ({"id_tracker": {"memory": "hot"}}, 400, "id_tracker.memory: unknown variant"),
        ({"optimizers_config": {"prevent_unoptimized": "yes"}}, 400, "expected a boolean"),
    ]
    for body, status, text in bad:
        other = collection()
        r = http.put(f"/collections/{other}", json=body)
        assert r.status_code == status and text in r.json()["status"]["error"], r.text
        assert http.get(f"/collections/{other}").status_code == 404


@pytest.mark.server_only(reason="restart")
def test_memory_survives_restart_and_cold_vectors_are_served(server_factory: Any) -> None:
    server = server_factory()
    client = QdrantClient(url=server.url, timeout=30, check_compatibility=False)
    client.create_collection(
        "m",
        vectors_config=models.VectorParams(
            size=4, distance=models.Distance.DOT, memory=models.Memory.COLD
        ),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1),
        id_tracker=models.IdTrackerParams(memory=models.Memory.COLD),  # ids mapped once sealed
    )
    rng = np.random.default_rng(3)
    data = rng.random((300, 4)).astype(np.float32)
    client.upsert("m", [models.PointStruct(id=i, vector=data[i].tolist()) for i in range(300)])
    client.close()
    server.restart(graceful=True)
    client = QdrantClient(url=server.url, timeout=30, check_compatibility=False)
    try:
        params = client.get_collection("m").config.params.vectors
        assert isinstance(params, models.VectorParams) and params.memory == models.Memory.COLD
        hits = client.query_points(
            "m", query=data[7].tolist(), limit=1, search_params=models.SearchParams(exact=True)
        ).points
        top = int(np.argmax(data @ data[7]))
        assert hits[0].id == top
        # the ids of the sealed segment, read from its mapped file, answer lookups and writes
        assert client.get_collection("m").config.params.id_tracker == models.IdTrackerParams(
            memory=models.Memory.COLD
        )
        assert [r.id for r in client.retrieve("m", [299, 5, 1000])] == [299, 5]
        client.delete("m", [5, 6])
        client.upsert("m", [models.PointStruct(id=1000, vector=data[0].tolist())])
        assert client.count("m").count == 299
        assert [r.id for r in client.retrieve("m", [5, 1000])] == [1000]
    finally:
        client.close()


def _holder(prevent: bool) -> SegmentHolder:
    config = parse_create_collection(
        {
            "vectors": {"size": 4, "distance": "Dot"},
            # 1 KB of 16-byte vectors: 64 points show before the segment must be indexed.
            "optimizers_config": {"indexing_threshold": 1, "prevent_unoptimized": prevent},
        }
    )
    holder = SegmentHolder(config)
    ids: list[PointId] = list(range(100))
    column = ops.DenseColumn(np.ones(100, dtype=bool), np.ones((100, 4), dtype=np.float32))
    apply_record(holder, 1, ops.UpsertPoints(ids, {"": column}, [None] * 100))
    return holder


def test_prevent_unoptimized_defers_points_past_the_threshold() -> None:
    holder = _holder(prevent=True)
    assert count(holder, None, True) == 64
    assert [ref[1] for ref in retrieve(holder, [0, 63, 64, 99])] == [0, 63]
    segment = holder.segments[0]
    assert int(np.count_nonzero(segment.live_mask())) == 64
    assert int(np.count_nonzero(segment.stored_mask())) == 100  # stored, and rebuilt
    assert segment.live_count() - segment.visible_count() == 36  # update_queue.deferred_points
    assert count(_holder(prevent=False), None, True) == 100


@pytest.mark.server_only(reason="the optimizer of a real server")
def test_prevent_unoptimized_wait_returns_visible_points(
    client: QdrantClient, collection: Any
) -> None:
    name = collection(
        vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
        optimizers_config=models.OptimizersConfigDiff(
            indexing_threshold=1, prevent_unoptimized=True
        ),
    )
    config = client.get_collection(name).config.optimizer_config
    assert config.prevent_unoptimized is True
    rng = np.random.default_rng(5)
    data = rng.random((500, 4)).astype(np.float32)
    client.upsert(
        name, [models.PointStruct(id=i, vector=data[i].tolist()) for i in range(500)], wait=True
    )
    # wait=true returned after the optimizer indexed them: every point is visible.
    assert client.count(name, exact=True).count == 500
    assert len(client.retrieve(name, [0, 250, 499])) == 3
    info = client.get_collection(name)
    assert info.indexed_vectors_count == 500
    assert info.update_queue is not None and not info.update_queue.deferred_points


def _with_deferred_points(http: httpx.Client, name: str, seed: int) -> int:
    """Collection `name` with 500 points of which most are deferred (prevent_unoptimized,
    the optimizer off, an indexing threshold of ~100 points); the count reads see."""
    body = {
        "vectors": {"size": 256, "distance": "Cosine"},
        "optimizers_config": {
            "indexing_threshold": 100,  # KB: ~100 points of 1 KiB are visible
            "prevent_unoptimized": True,
            "max_optimization_threads": 0,
        },
    }
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    rng = np.random.default_rng(seed)
    points = [{"id": i, "vector": rng.random(256).tolist()} for i in range(1, 501)]
    response = http.put(
        f"/collections/{name}/points", params={"wait": "true"}, json={"points": points}
    )
    assert response.status_code == 200
    counted = http.post(f"/collections/{name}/points/count", json={"exact": True})
    visible: int = counted.json()["result"]["count"]
    assert 0 < visible < 500
    return visible


@pytest.mark.server_only(reason="the optimizer of a real server")
def test_deferred_points_are_not_counted_as_points(http: httpx.Client, collection: Any) -> None:
    """Deferred points (prevent_unoptimized, the optimizer off) are stored but unseen:
    collection info counts the points reads see and reports the rest in
    `update_queue.deferred_points`, as Qdrant's own test of deferred points checks (it
    counted every stored point)."""
    name = collection()
    seen = _with_deferred_points(http, name, seed=3)
    info = http.get(f"/collections/{name}").json()["result"]
    assert info["points_count"] == seen
    assert info["update_queue"]["deferred_points"] == 500 - seen


@pytest.mark.server_only(reason="the optimizer of a real server")
def test_segment_telemetry_reports_deferred_points(http: httpx.Client, collection: Any) -> None:
    """Qdrant's SegmentInfo (telemetry, details_level >= 4) has num_deferred_points and
    num_deleted_deferred_points for every segment, 0 when none is deferred, and
    deferred_internal_id where points are held back; num_points counts the deferred ones
    too. Qdrant's own test of deferred points reads the points reads see as num_points -
    num_deferred_points; Tessera's segments had neither field."""
    name = collection()
    visible = _with_deferred_points(http, name, seed=4)
    telemetry = http.get("/telemetry", params={"details_level": 10}).json()["result"]
    (mine,) = [c for c in telemetry["collections"]["collections"] if c["id"] == name]
    infos = [s["info"] for sh in mine["shards"] for s in (sh["local"] or {})["segments"]]
    assert sum(i["num_points"] for i in infos) == 500
    assert sum(i["num_points"] - i["num_deferred_points"] for i in infos) == visible
    assert all(i["num_deleted_deferred_points"] == 0 for i in infos)
    assert any(i.get("deferred_internal_id") is not None for i in infos)


def _idf(df: int, n: int) -> float:
    """Qdrant's IDF (BM25's, plus one): ln((n - df + 0.5) / (df + 0.5) + 1)."""
    return float(np.log((n - df + 0.5) / (df + 0.5) + 1.0))


@pytest.mark.server_only(reason="the wire")
def test_sparse_idf_corpus(client: QdrantClient, http: httpx.Client, collection: Any) -> None:
    name = collection(
        sparse_vectors_config={"s": models.SparseVectorParams(modifier=models.Modifier.IDF)}
    )
    # Term 1 is in every "a" point and in one "b" point; term 2 in one point of each.
    points = [
        (1, "a", [1, 2]),
        (2, "a", [1]),
        (3, "a", [1]),
        (4, "b", [1, 2]),
        (5, "b", [3]),
        (6, "b", [3]),
    ]
    client.upsert(
        name,
        [
            models.PointStruct(
                id=pid,
                vector={"s": models.SparseVector(indices=terms, values=[1.0] * len(terms))},
                payload={"g": group},
            )
            for pid, group, terms in points
        ],
    )
    query = models.SparseVector(indices=[1, 2], values=[1.0, 1.0])
    in_b = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value="b"))])

    def scores(
        params: models.SearchParams | None, filt: models.Filter | None = None
    ) -> dict[Any, float]:
        hits = client.query_points(
            name, query=query, using="s", search_params=params, query_filter=filt, limit=10
        ).points
        return {h.id: h.score for h in hits}

    everywhere = scores(None)
    assert everywhere == scores(models.SearchParams(idf=models.IdfScope.GLOBAL))
    assert everywhere[1] == pytest.approx(_idf(4, 6) + _idf(2, 6), rel=1e-5)
    corpus = scores(models.SearchParams(idf=models.IdfCorpusParams(corpus=in_b)))
    # Over the "b" points only: term 1 in 1 of 3, term 2 in 1 of 3.
    assert corpus[1] == pytest.approx(_idf(1, 3) + _idf(1, 3), rel=1e-5)
    assert corpus[2] == pytest.approx(_idf(1, 3), rel=1e-5)
    # The corpus is independent of the retrieval filter.
    in_a = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value="a"))])
    only_a = scores(models.SearchParams(idf=models.IdfCorpusParams(corpus=in_b)), in_a)
    assert set(only_a) == {1, 2, 3} and only_a[1] == pytest.approx(corpus[1])

    # The legacy search route reads the same parameter; a malformed one is refused.
    r = http.post(
        f"/collections/{name}/points/search",
        json={
            "vector": {"name": "s", "vector": {"indices": [2], "values": [1.0]}},
            "limit": 3,
            "params": {"idf": {"corpus": {"must": [{"key": "g", "match": {"value": "b"}}]}}},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"][0]["score"] == pytest.approx(_idf(1, 3), rel=1e-5)
    for idf in ["local", {"filter": {}}, 3]:
        r = http.post(
            f"/collections/{name}/points/query",
            json={"query": {"indices": [2], "values": [1.0]}, "using": "s", "params": {"idf": idf}},
        )
        assert r.status_code == 400, r.text


@pytest.mark.server_only(reason="the optimizer of a real server")
def test_indexed_only_leaves_out_large_segments_without_a_graph(
    http: httpx.Client, collection: Any
) -> None:
    """`params.indexed_only`: a segment without a graph that holds more than
    `full_scan_threshold` is not searched; a small one is, and so is one with a graph."""
    hnsw = {"full_scan_threshold": 10}  # 10 KB: 640 vectors of 4 floats
    names = {}
    for kind, optimizers, n in (
        ("large", {"indexing_threshold": 0}, 1000),  # never indexed
        ("small", {"indexing_threshold": 0}, 100),
        ("graph", {"indexing_threshold": 1}, 1000),
    ):
        name = names[kind] = collection()
        body = {"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": hnsw}
        r = http.put(f"/collections/{name}", json={**body, "optimizers_config": optimizers})
        assert r.status_code == 200, r.text
        points = [{"id": i, "vector": [1.0, i / n, 0.5, 0.25]} for i in range(n)]
        r = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
        assert r.status_code == 200, r.text
    for _ in range(300):  # the graph's segment is built
        info = _params(http, names["graph"])
        if info["status"] == "green" and info["indexed_vectors_count"] >= 1000:
            break
        time.sleep(0.05)

    def ids(name: str, indexed_only: bool, route: str = "query") -> list[int]:
        params = {"indexed_only": indexed_only}
        if route == "query":
            body: dict[str, Any] = {"query": [1, 1, 0, 0], "params": params, "limit": 3}
        else:
            body = {"vector": [1, 1, 0, 0], "params": params, "limit": 3}
        r = http.post(f"/collections/{name}/points/{route}", json=body)
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        return [p["id"] for p in (result["points"] if route == "query" else result)]

    assert ids(names["large"], False) == [999, 998, 997]
    assert ids(names["large"], True) == []
    assert ids(names["large"], True, "search") == []
    assert ids(names["small"], True) == [99, 98, 97]
    assert ids(names["graph"], True) == [999, 998, 997]


def test_optimizers_overwrite_applies_to_every_collection(server_factory: Any) -> None:
    """`storage.optimizers_overwrite` (here from QDRANT__ variables of its keys) runs every
    collection with those optimizer settings over its own, as Qdrant's does; the
    collection's own config, shown by its info, stays as created."""
    server = server_factory(
        env={"QDRANT__STORAGE__OPTIMIZERS_OVERWRITE__INDEXING_THRESHOLD_KB": "1"}
    )
    client = QdrantClient(url=server.url, timeout=60)
    client.create_collection("over", models.VectorParams(size=8, distance=models.Distance.DOT))
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(2000, 8)).astype(np.float32)
    client.upsert(
        "over",
        [models.PointStruct(id=i, vector=v.tolist()) for i, v in enumerate(vectors)],
    )
    deadline = time.monotonic() + 60
    while client.get_collection("over").indexed_vectors_count != 2000:
        assert time.monotonic() < deadline, "not indexed under the overwritten threshold"
        time.sleep(0.2)
    assert client.get_collection("over").config.optimizer_config.indexing_threshold == 10000
    client.close()
