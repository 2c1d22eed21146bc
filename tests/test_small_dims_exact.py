"""Scores of vectors under 16 dimensions equal Qdrant's to the last bit.

Below 16 dimensions Qdrant's distance kernels are scalar loops that add their float32 terms
one after the other (tessera.query.scoring.SEQUENTIAL_DIMS); BLAS, numpy and faiss add them in
other orders, and a score then read 1.4063 where Qdrant answers 1.4063001. Small vectors are
what documentation examples and test suites use, and they compare scores exactly. Checked
here over REST against Qdrant Edge (Qdrant's own engine, in-process) for every distance, and
for the distance matrix against the documented pairs of Qdrant's own test collection."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import qdrant_edge as qe

from tests.conftest import ServerProcess, module_server

DIMS = (2, 4, 7, 8, 9, 12, 15)
DISTANCES = ("Dot", "Cosine", "Euclid", "Manhattan")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "small-dims")


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def _edge_scores(
    dim: int, distance: str, vectors: np.ndarray, query: np.ndarray
) -> dict[int, float]:
    with tempfile.TemporaryDirectory() as folder:
        params = qe.EdgeVectorParams(size=dim, distance=getattr(qe.Distance, distance))
        shard = qe.EdgeShard.create(folder, qe.EdgeConfig(vectors=params))
        try:
            points = [qe.Point(i + 1, row.tolist(), {}) for i, row in enumerate(vectors)]
            shard.update(qe.UpdateOperation.upsert_points(points))
            request = qe.QueryRequest(
                limit=len(vectors),
                query=qe.Query.Nearest(query.tolist()),
                with_payload=False,
                with_vector=False,
            )
            return {int(hit.id): hit.score for hit in shard.query(request)}
        finally:
            shard.close()


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("dim", DIMS)
def test_nearest_scores_equal_qdrant_edge_bit_for_bit(
    http: httpx.Client, dim: int, distance: str
) -> None:
    rng = np.random.default_rng(dim * 10 + DISTANCES.index(distance))
    vectors = rng.normal(size=(30, dim)).astype(np.float32)
    query = rng.normal(size=dim).astype(np.float32)
    name = f"small-{dim}-{distance.lower()}"
    body = {"vectors": {"size": dim, "distance": distance}}
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    points = [{"id": i + 1, "vector": row.tolist()} for i, row in enumerate(vectors)]
    put = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
    assert put.status_code == 200, put.text
    # exact=true and a plain query: the two scans (faiss's and numpy's) both keep the order.
    for params in ({}, {"params": {"exact": True}}):
        answer = http.post(
            f"/collections/{name}/points/query",
            json={"query": query.tolist(), "limit": 30, **params},
        )
        assert answer.status_code == 200, answer.text
        ours = {p["id"]: p["score"] for p in answer.json()["result"]["points"]}
        expected = _edge_scores(dim, distance, vectors, query)
        assert ours.keys() == expected.keys()
        differing = {
            pid: (ours[pid], expected[pid])
            for pid in ours
            if np.float32(ours[pid]) != np.float32(expected[pid])
        }
        assert not differing, differing


# Qdrant's own test collection (4 dimensions, Dot) and its documented distance matrix pairs.
MATRIX_POINTS = {
    1: [0.05, 0.61, 0.76, 0.74],
    2: [0.19, 0.81, 0.75, 0.11],
    3: [0.36, 0.55, 0.47, 0.94],
    4: [0.18, 0.01, 0.85, 0.80],
    5: [0.24, 0.18, 0.22, 0.44],
    6: [0.35, 0.08, 0.11, 0.44],
    7: [0.25, 0.98, 0.14, 0.43],
    8: [0.79, 0.53, 0.72, 0.15],
}
MATRIX_PAIRS: list[dict[str, Any]] = [
    {"a": 1, "b": 3, "score": 1.4063001},
    {"a": 1, "b": 4, "score": 1.2531},
    {"a": 2, "b": 1, "score": 1.1550001},
    {"a": 2, "b": 8, "score": 1.1359},
    {"a": 3, "b": 1, "score": 1.4063001},
    {"a": 3, "b": 4, "score": 1.2218001},
    {"a": 4, "b": 1, "score": 1.2531},
    {"a": 4, "b": 3, "score": 1.2218001},
    {"a": 5, "b": 3, "score": 0.70239997},
    {"a": 5, "b": 1, "score": 0.6146},
    {"a": 6, "b": 3, "score": 0.6353},
    {"a": 6, "b": 4, "score": 0.5093},
    {"a": 7, "b": 3, "score": 1.0990001},
    {"a": 7, "b": 1, "score": 1.0349001},
    {"a": 8, "b": 2, "score": 1.1359},
    {"a": 8, "b": 3, "score": 1.0553},
]


def test_distance_matrix_pairs_read_as_qdrant_answers_them(http: httpx.Client) -> None:
    body = {"vectors": {"size": 4, "distance": "Dot"}}
    assert http.put("/collections/matrix-4", json=body).status_code == 200
    points = [{"id": pid, "vector": vector} for pid, vector in MATRIX_POINTS.items()]
    put = http.put("/collections/matrix-4/points?wait=true", json={"points": points})
    assert put.status_code == 200, put.text
    answer = http.post(
        "/collections/matrix-4/points/search/matrix/pairs", json={"sample": 8, "limit": 2}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["pairs"] == MATRIX_PAIRS


FUSIONS: list[tuple[dict[str, Any], Any]] = [
    ({"fusion": "rrf"}, qe.Fusion.Rrf(k=2)),
    ({"rrf": {"k": 5, "weights": [3.0, 0.5]}}, qe.Fusion.Rrf(k=5, weights=[3.0, 0.5])),
    ({"fusion": "dbsf"}, qe.Fusion.Dbsf()),
]


@pytest.mark.parametrize(("rest", "edge"), FUSIONS, ids=["rrf", "rrf-weighted", "dbsf"])
@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
def test_fused_scores_equal_qdrant_edge_bit_for_bit(
    http: httpx.Client, distance: str, rest: dict[str, Any], edge: Any
) -> None:
    """Qdrant fuses in float32: RRF's 1 / ((rank + 1) / weight + k - 1) and DBSF's Welford
    mean and variance, normalisation and sums round at every step (Tessera computed in float64
    and differed from DBSF's scores by an ulp or two). Ties, whose order Qdrant leaves to a hash
    map, are compared as sets."""
    rng = np.random.default_rng(7 if distance == "Cosine" else 8)
    vectors = rng.normal(size=(40, 6)).astype(np.float32)
    queries = rng.normal(size=(2, 6)).astype(np.float32)
    name = f"fused-{distance.lower()}"
    if not http.get(f"/collections/{name}/exists").json()["result"]["exists"]:
        body = {"vectors": {"size": 6, "distance": distance}}
        assert http.put(f"/collections/{name}", json=body).status_code == 200
        points = [{"id": i + 1, "vector": row.tolist()} for i, row in enumerate(vectors)]
        assert http.put(f"/collections/{name}/points?wait=true", json={"points": points}).is_success
    prefetch = [
        {"query": queries[0].tolist(), "limit": 12},
        {"query": queries[1].tolist(), "limit": 9},
    ]
    answer = http.post(
        f"/collections/{name}/points/query", json={"prefetch": prefetch, "query": rest, "limit": 15}
    )
    assert answer.status_code == 200, answer.text
    ours = [(p["id"], np.float32(p["score"])) for p in answer.json()["result"]["points"]]
    with tempfile.TemporaryDirectory() as folder:
        params = qe.EdgeVectorParams(size=6, distance=getattr(qe.Distance, distance))
        shard = qe.EdgeShard.create(folder, qe.EdgeConfig(vectors=params))
        try:
            rows = [qe.Point(i + 1, row.tolist(), {}) for i, row in enumerate(vectors)]
            shard.update(qe.UpdateOperation.upsert_points(rows))
            stages = [
                qe.Prefetch(limit=12, query=qe.Query.Nearest(queries[0].tolist())),
                qe.Prefetch(limit=9, query=qe.Query.Nearest(queries[1].tolist())),
            ]
            request = qe.QueryRequest(limit=15, prefetches=stages, query=edge)
            theirs = [(int(h.id), np.float32(h.score)) for h in shard.query(request)]
        finally:
            shard.close()
    assert [s for _, s in ours] == [s for _, s in theirs]
    by_score: dict[Any, set[int]] = {}
    for pid, score in theirs:
        by_score.setdefault(score, set()).add(pid)
    assert {s: {p for p, t in ours if t == s} for s in by_score} == by_score


@pytest.mark.parametrize("dim", [4, 9, 16, 24, 32, 100, 384])
def test_stored_cosine_vectors_equal_qdrant_edge_bit_for_bit(http: httpx.Client, dim: int) -> None:
    """A Cosine collection stores (and returns) each vector unit-normalised as Qdrant does:
    the squared length summed in its kernels' order (scalar under 16 dimensions, SSE to 31,
    AVX with FMA from 32, which then multiplies by the reciprocal), and a vector whose
    squared length is within 1e-6 of 1 kept as sent (embedding models send unit vectors).
    Tessera summed with numpy above 15 dimensions and divided every vector again."""
    rng = np.random.default_rng(dim)
    raw = rng.normal(size=(40, dim))
    vectors = np.concatenate(
        [raw[:20].astype(np.float32), (raw[20:] / np.linalg.norm(raw[20:], axis=1)[:, None])]
    ).astype(np.float32)
    name = f"cosine-stored-{dim}"
    assert http.put(f"/collections/{name}", json={"vectors": {"size": dim, "distance": "Cosine"}})
    points = [{"id": i + 1, "vector": row.tolist()} for i, row in enumerate(vectors)]
    assert http.put(f"/collections/{name}/points?wait=true", json={"points": points}).is_success
    answer = http.post(
        f"/collections/{name}/points", json={"ids": list(range(1, 41)), "with_vector": True}
    )
    assert answer.status_code == 200, answer.text
    ours = {p["id"]: np.asarray(p["vector"], dtype=np.float32) for p in answer.json()["result"]}
    with tempfile.TemporaryDirectory() as folder:
        params = qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)
        shard = qe.EdgeShard.create(folder, qe.EdgeConfig(vectors=params))
        try:
            rows = [qe.Point(i + 1, row.tolist(), {}) for i, row in enumerate(vectors)]
            shard.update(qe.UpdateOperation.upsert_points(rows))
            records = shard.retrieve(list(range(1, 41)), False, True)
            theirs = {
                int(r.id): np.asarray(
                    r.vector[""] if isinstance(r.vector, dict) else r.vector, dtype=np.float32
                )
                for r in records
            }
        finally:
            shard.close()
    differing = [pid for pid in theirs if not np.array_equal(ours[pid], theirs[pid])]
    assert not differing, differing
