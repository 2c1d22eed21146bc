"""The scoring arithmetic of tessera.query against qdrant-client's local mode.

Every test builds a small seeded collection in local mode, queries it through the client,
and applies our functions to the same data: ids, order and scores must agree (scores to
1e-4). Storage datatypes, which local mode ignores, are checked against Qdrant Edge
(Qdrant's own engine, in-process) instead.

Ties: neither Qdrant nor local mode orders equal scores deterministically, so rankings
are compared with equal-score groups as sets, over whole result lists (no cut inside a
group).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as scipy_sparse
from qdrant_client import QdrantClient, models

from tessera.errors import BadRequest, UnprocessableEntity
from tessera.query import fusion, multivector, recommend, scoring, sparse
from tessera.query.formula import parse_formula
from tessera.query.formula_eval import evaluate
from tessera.query.scoring import Datatype, Distance

DISTANCES: tuple[Distance, ...] = ("Cosine", "Euclid", "Dot", "Manhattan")
N = 40
DIM = 8

Hit = tuple[list[Any], list[float]]


# --------------------------------------------------------------------------- helpers


def hits(points: Sequence[models.ScoredPoint]) -> Hit:
    return [p.id for p in points], [p.score for p in points]


def ours(order: npt.ArrayLike, scores: npt.ArrayLike, ids: Sequence[Any] | None = None) -> Hit:
    idx = np.asarray(order, dtype=np.int64)
    vals = np.asarray(scores, dtype=np.float64)[idx]
    id_list = idx.tolist() if ids is None else [ids[i] for i in idx.tolist()]
    return id_list, vals.tolist()


def assert_same(expected: Hit, got: Hit, tie: float = 1e-6) -> None:
    """Same scores in order (1e-4), same ids except inside groups of equal scores."""
    e_ids, e_scores = expected
    g_ids, g_scores = got
    assert len(g_ids) == len(e_ids), (e_ids, g_ids)
    np.testing.assert_allclose(g_scores, e_scores, rtol=1e-4, atol=1e-4)
    start = 0
    while start < len(e_ids):
        end = start + 1
        while end < len(e_ids) and abs(e_scores[end] - e_scores[start]) <= tie:
            end += 1
        assert set(g_ids[start:end]) == set(e_ids[start:end]), (start, e_ids, g_ids)
        start = end


def ranked(scores: npt.ArrayLike, higher: bool = True, valid: npt.ArrayLike | None = None) -> Hit:
    """All candidates best first, optionally only the `valid` ones."""
    arr = np.asarray(scores, dtype=np.float64)
    order = scoring.top_k(arr, arr.size, higher)
    if valid is not None:
        keep = np.asarray(valid, dtype=bool)
        order = order[keep[order]]
    return ours(order, arr)


def new_client() -> QdrantClient:
    return QdrantClient(":memory:")


def dense_collection(distance: Distance, vectors: npt.NDArray[np.float32]) -> QdrantClient:
    client = new_client()
    client.create_collection(
        "c", vectors_config=models.VectorParams(size=vectors.shape[1], distance=distance)
    )
    client.upsert("c", [models.PointStruct(id=i, vector=v.tolist()) for i, v in enumerate(vectors)])
    return client


def rng_vectors(seed: int, n: int = N, d: int = DIM) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


# --------------------------------------------------------------------------- dense


@pytest.mark.parametrize("distance", DISTANCES)
def test_dense_nearest_threshold_and_offset(distance: Distance) -> None:
    vectors = rng_vectors(1)
    client = dense_collection(distance, vectors)
    query = np.random.default_rng(2).normal(size=DIM).astype(np.float32)
    stored = scoring.prepare_stored(distance, vectors)
    scores = scoring.score_dense(distance, query, stored)
    higher = scoring.higher_is_better(distance)

    expected = hits(client.query_points("c", query.tolist(), limit=N).points)
    assert_same(expected, ours(scoring.top_k(scores, N, higher), scores))

    page = hits(client.query_points("c", query.tolist(), limit=5, offset=7).points)
    assert_same(page, ours(scoring.top_k(scores, 5, higher, offset=7), scores))

    threshold = float(np.median(scores))
    kept = hits(client.query_points("c", query.tolist(), limit=N, score_threshold=threshold).points)
    mask = scoring.passes_threshold(scores, threshold, distance)
    assert_same(kept, ranked(scores, higher, mask))

    # A stored vector as the query scores itself exactly (1 or 0), no cancellation.
    self_scores = scoring.score_dense(distance, vectors[3], stored)
    expected_self = hits(client.query_points("c", vectors[3].tolist(), limit=N).points)
    assert_same(expected_self, ranked(self_scores, higher))


def test_dense_batch_and_zero_vector() -> None:
    vectors = rng_vectors(3)
    vectors[5] = 0.0
    stored = scoring.prepare_stored("Cosine", vectors)
    assert np.all(stored[5] == 0.0)
    queries = rng_vectors(4, n=3)
    batch = scoring.score_dense("Cosine", queries, stored)
    assert batch.shape == (3, N)
    for row, q in enumerate(queries):
        np.testing.assert_allclose(batch[row], scoring.score_dense("Cosine", q, stored), atol=1e-6)
    assert batch[:, 5].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(BadRequest):
        scoring.score_dense("Dot", np.ones(DIM + 1), stored)


def test_top_k_is_stable_and_partial() -> None:
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0, np.nan, 0.5], dtype=np.float32)
    assert scoring.top_k(scores, 3, True).tolist() == [1, 2, 4]
    assert scoring.top_k(scores, 2, True, offset=2).tolist() == [4, 3]
    assert scoring.top_k(scores, 2, False).tolist() == [6, 0]
    assert scoring.top_k(scores, 10, True).tolist() == [1, 2, 4, 3, 0, 6, 5]
    big = np.random.default_rng(5).integers(0, 50, size=5000).astype(np.float32)
    top = scoring.top_k(big, 100, True)
    assert top.tolist() == np.argsort(-big, kind="stable")[:100].tolist()
    # NaN never wins and ties keep index order, whatever mix of NaN and infinities.
    rng = np.random.default_rng(9)
    pool = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0, 2.5], dtype=np.float32)
    for _ in range(300):
        arr = rng.choice(pool, size=int(rng.integers(1, 40)))
        k, offset, higher = (
            int(rng.integers(0, 12)),
            int(rng.integers(0, 4)),
            bool(rng.random() < 0.5),
        )
        key = np.where(np.isnan(arr), np.inf, -arr if higher else arr)
        expected = np.argsort(key, kind="stable")[offset : offset + k]
        assert scoring.top_k(arr, k, higher, offset).tolist() == expected.tolist()
    assert scoring.threshold_prefix([0.9, 0.5, 0.1], 0.4, "Dot") == 2
    assert scoring.threshold_prefix([0.5, 0.2, -0.1], 0.3, "Euclid") == 0


@pytest.mark.parametrize("datatype", ["float16", "uint8"])
@pytest.mark.parametrize("distance", DISTANCES)
def test_datatypes_against_qdrant_edge(
    tmp_path: Path, distance: Distance, datatype: Datatype
) -> None:
    edge = pytest.importorskip("qdrant_edge")
    rng = np.random.default_rng(6)
    if datatype == "uint8":
        vectors = rng.uniform(-5.0, 270.0, size=(N, DIM)).astype(np.float32)
        query = rng.uniform(-5.0, 270.0, size=DIM).astype(np.float32)
    else:
        vectors = rng.normal(scale=30.0, size=(N, DIM)).astype(np.float32)
        query = rng.normal(scale=30.0, size=DIM).astype(np.float32)
    kinds = {
        "float16": edge.VectorStorageDatatype.Float16,
        "uint8": edge.VectorStorageDatatype.Uint8,
    }
    config = edge.EdgeConfig(
        vectors=edge.EdgeVectorParams(
            size=DIM, distance=getattr(edge.Distance, distance), datatype=kinds[datatype]
        )
    )
    shard = edge.EdgeShard.create(str(tmp_path / "shard"), config)
    shard.update(
        edge.UpdateOperation.upsert_points(
            [edge.Point(i, v.tolist(), {}) for i, v in enumerate(vectors)]
        )
    )
    result = shard.query(
        edge.QueryRequest(limit=N, query=edge.Query.Nearest(query.tolist()), with_vector=True)
    )
    shard.close()
    stored = scoring.prepare_stored(distance, vectors, datatype)
    assert stored.dtype == np.dtype(datatype)
    scores = scoring.score_dense(distance, query, stored, datatype)
    expected = ([p.id for p in result], [p.score for p in result])
    assert_same(expected, ranked(scores, scoring.higher_is_better(distance)))
    returned = np.array([p.vector for p in result], dtype=np.float32)
    ids = [p.id for p in result]
    np.testing.assert_allclose(returned, scoring.as_float32(stored)[ids], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("dim", [3, 20])  # under and over the sequential path's size
@pytest.mark.parametrize("datatype", ["float16", "uint8"])
@pytest.mark.parametrize("distance", DISTANCES)
def test_multivector_datatypes_against_qdrant_edge(
    tmp_path: Path, distance: Distance, datatype: Datatype, dim: int
) -> None:
    """max_sim over stored rows of each datatype; a uint8 Cosine multivector is compared by
    true cosine, as its dense form is (its rows stay raw bytes, not unit vectors)."""
    edge = pytest.importorskip("qdrant_edge")
    rng = np.random.default_rng(7)
    points = [rng.uniform(0.0, 200.0, size=(int(rng.integers(1, 4)), dim)) for _ in range(30)]
    query = rng.uniform(0.0, 200.0, size=(2, dim)).astype(np.float32)
    kinds = {
        "float16": edge.VectorStorageDatatype.Float16,
        "uint8": edge.VectorStorageDatatype.Uint8,
    }
    params = edge.EdgeVectorParams(
        size=dim,
        distance=getattr(edge.Distance, distance),
        datatype=kinds[datatype],
        multivector_config=edge.MultiVectorConfig(edge.MultiVectorComparator.MaxSim),
    )
    shard = edge.EdgeShard.create(str(tmp_path / "shard"), edge.EdgeConfig(vectors={"m": params}))
    shard.update(
        edge.UpdateOperation.upsert_points(
            [edge.Point(i, {"m": p.tolist()}, {}) for i, p in enumerate(points)]
        )
    )
    result = shard.query(
        edge.QueryRequest(
            limit=len(points),
            query=edge.Query.Nearest(query.tolist(), using="m"),
            params=edge.SearchParams(exact=True),
        )
    )
    shard.close()
    rows = [scoring.prepare_stored(distance, p, datatype) for p in points]
    flat = np.concatenate(rows).astype(np.float32)  # as the storage packs them
    offsets = np.cumsum([0] + [len(r) for r in rows])
    scores = multivector.score_multi(distance, query, flat, offsets, datatype=datatype)
    by_id = {p.id: p.score for p in result}
    np.testing.assert_allclose([by_id[i] for i in range(len(points))], scores, rtol=2e-3, atol=1e-3)


# --------------------------------------------------------------------------- sparse


def sparse_points(seed: int, n: int = N, vocab: int = 30) -> list[tuple[list[int], list[float]]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 6))
        idx = sorted(rng.choice(vocab, size=k, replace=False).tolist())
        out.append((idx, rng.uniform(0.1, 2.0, size=k).round(3).tolist()))
    return out


def sparse_collection(points: list[tuple[list[int], list[float]]], idf: bool) -> QdrantClient:
    client = new_client()
    client.create_collection(
        "c",
        vectors_config={},
        sparse_vectors_config={
            "s": models.SparseVectorParams(modifier=models.Modifier.IDF if idf else None)
        },
    )
    client.upsert(
        "c",
        [
            models.PointStruct(id=i, vector={"s": models.SparseVector(indices=ix, values=vx)})
            for i, (ix, vx) in enumerate(points)
        ],
    )
    return client


def weighted(
    matrix: Any, vec: tuple[Sequence[int], Sequence[float]], idf: bool
) -> tuple[Sequence[int], npt.NDArray[np.float64]]:
    idx, val = vec
    if not idf:
        return idx, np.asarray(val, dtype=np.float64)
    df, total = sparse.document_frequencies(matrix, idx)
    return idx, sparse.apply_idf(val, df, total)


def sv(vec: tuple[Sequence[int], Sequence[float]]) -> models.SparseVector:
    return models.SparseVector(indices=list(vec[0]), values=[float(v) for v in vec[1]])


def raw_csr(points: list[tuple[list[int], list[float]]]) -> Any:
    """A CSR keyed by raw indices, the other form `sparse` accepts."""
    indptr = np.cumsum([0] + [len(ix) for ix, _ in points])
    indices = np.concatenate([ix for ix, _ in points]).astype(np.int64)
    data = np.concatenate([vx for _, vx in points]).astype(np.float32)
    return scipy_sparse.csr_matrix((data, indices, indptr), shape=(len(points), 2**32))


@pytest.mark.parametrize("form", ["inverted", "raw_csr"])
@pytest.mark.parametrize("idf", [False, True])
def test_sparse_nearest(idf: bool, form: str) -> None:
    points = sparse_points(7)
    client = sparse_collection(points, idf)
    matrix: Any = sparse.build_sparse(points) if form == "inverted" else raw_csr(points)
    query = ([3, 11, 17, 29], [1.0, 0.5, 2.0, 0.25])
    scores = sparse.score_sparse(*weighted(matrix, query, idf), matrix)
    overlap = sparse.shares_index(query[0], matrix)
    assert 0 < overlap.sum() < N, "some points must share no index with the query"
    expected = hits(client.query_points("c", sv(query), using="s", limit=N).points)
    assert_same(expected, ranked(scores, True, overlap))


def test_sparse_idf_formula_and_corpus() -> None:
    matrix = sparse.build_sparse([([1, 5], [1.0, 2.0]), ([2], [3.0]), ([5, 7], [0.5, 1.0]), None])
    df, total = sparse.document_frequencies(matrix, [5, 1, 3])
    assert df.tolist() == [2, 1, 0] and total == 3
    np.testing.assert_allclose(sparse.idf_weights([2], 4), [np.log(2.0)])
    df_live, total_live = sparse.document_frequencies(matrix, [5], rows=[False, True, True, True])
    assert df_live.tolist() == [1] and total_live == 2
    # An empty vector is no document to Qdrant's collection-wide IDF (its sparse index leaves
    # it out), but counts in an `idf.corpus` (test_bm25.test_idf_counts_documents_as_qdrant).
    with_empty = sparse.build_sparse([([], []), ([5], [1.0]), ([6], [1.0])])
    assert sparse.document_frequencies(with_empty, [5])[1] == 2
    assert sparse.document_frequencies(with_empty, [5], corpus=True)[1] == 3
    assert sparse.document_frequencies(with_empty, [5], [False, True, True], corpus=True)[1] == 2
    raw_empty = raw_csr([([], []), ([5], [1.0]), ([6], [1.0])])
    df_raw, total_raw = sparse.document_frequencies(raw_empty, [5])
    assert df_raw.tolist() == [1] and total_raw == 2
    # An explicit stored 0.0 still shares its index.
    zeros = sparse.build_sparse([([4], [0.0]), ([9], [1.0])])
    scores = sparse.score_sparse([4], [1.0], zeros)
    overlap = sparse.shares_index([4], zeros)
    assert overlap.tolist() == [True, False] and scores.tolist() == [0.0, 0.0]


# --------------------------------------------------------------------------- multivector


def multi_points(seed: int, n: int = N, d: int = 4) -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(int(rng.integers(1, 5)), d)).astype(np.float32) for _ in range(n)]


def multi_collection(distance: Distance, mats: list[npt.NDArray[np.float32]]) -> QdrantClient:
    client = new_client()
    client.create_collection(
        "c",
        vectors_config=models.VectorParams(
            size=mats[0].shape[1],
            distance=distance,
            multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM
            ),
        ),
    )
    client.upsert("c", [models.PointStruct(id=i, vector=m.tolist()) for i, m in enumerate(mats)])
    return client


@pytest.mark.parametrize("distance", DISTANCES)
def test_multivector_max_sim(distance: Distance) -> None:
    mats = multi_points(8)
    client = multi_collection(distance, mats)
    rows, offsets = multivector.flatten(mats)
    stored = scoring.prepare_stored(distance, rows)
    query = np.random.default_rng(9).normal(size=(3, 4)).astype(np.float32)
    scores = multivector.score_multi(distance, query, stored, offsets)
    expected = hits(client.query_points("c", query.tolist(), limit=N).points)
    assert_same(expected, ranked(scores, scoring.higher_is_better(distance)))


def test_multivector_blocks_match_one_shot(monkeypatch: pytest.MonkeyPatch) -> None:
    mats = multi_points(10, n=25)
    rows, offsets = multivector.flatten(mats)
    query = np.random.default_rng(11).normal(size=(2, 4)).astype(np.float32)
    whole = multivector.max_sim("Dot", query, rows, offsets)
    monkeypatch.setattr(multivector, "_BLOCK_ELEMENTS", 8)
    np.testing.assert_allclose(multivector.max_sim("Dot", query, rows, offsets), whole, atol=1e-6)
    subset = np.array([20, 3, 7])
    np.testing.assert_allclose(
        multivector.max_sim("Dot", query, rows, offsets, subset), whole[subset], atol=1e-6
    )
    # A point without rows is never a result; uint8 rows compare as bytes.
    empty = np.concatenate([offsets[:2], offsets[1:]])
    assert multivector.max_sim("Dot", query, rows, empty)[1] == -np.inf
    as_bytes = scoring.prepare_stored("Dot", np.abs(rows) * 100, "uint8")
    byte_query = np.abs(query) * 100
    expected = multivector.max_sim(
        "Dot", scoring.to_uint8(byte_query), as_bytes.astype(np.float32), offsets
    )
    got = multivector.max_sim("Dot", byte_query, as_bytes, offsets, datatype="uint8")
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# --------------------------------------------------------------------------- recommend


def reco_query(pos: list[Any], neg: list[Any], strategy: str) -> models.RecommendQuery:
    return models.RecommendQuery(
        recommend=models.RecommendInput(positive=pos, negative=neg, strategy=strategy)
    )


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
@pytest.mark.parametrize("distance", DISTANCES)
def test_recommend_dense(distance: Distance, strategy: str) -> None:
    vectors = rng_vectors(12)
    client = dense_collection(distance, vectors)
    examples = rng_vectors(13, n=5)
    pos, neg = examples[:3], examples[3:]
    stored = scoring.prepare_stored(distance, vectors)
    q = reco_query(pos.tolist(), neg.tolist(), strategy)
    expected = hits(client.query_points("c", q, limit=N).points)
    if strategy == "average_vector":
        avg = recommend.average_vector(pos, neg)
        scores = scoring.score_dense(distance, avg, stored)
        assert_same(expected, ranked(scores, scoring.higher_is_better(distance)))
        return
    pos_sims = scoring.similarity(distance, pos, stored)
    neg_sims = scoring.similarity(distance, neg, stored)
    fn = recommend.best_score if strategy == "best_score" else recommend.sum_scores
    assert_same(expected, ranked(fn(pos_sims, neg_sims)))


def test_recommend_only_negatives_and_validation() -> None:
    vectors = rng_vectors(14)
    client = dense_collection("Dot", vectors)
    neg = rng_vectors(15, n=2)
    expected = hits(
        client.query_points("c", reco_query([], neg.tolist(), "best_score"), limit=N).points
    )
    sims = scoring.similarity("Dot", neg, scoring.prepare_stored("Dot", vectors))
    assert_same(expected, ranked(recommend.best_score(None, sims)))
    with pytest.raises(BadRequest, match="positive vector ID required"):
        recommend.check_examples(None, 0, 2)
    with pytest.raises(BadRequest, match="positive or negative"):
        recommend.check_examples("best_score", 0, 0)
    assert recommend.check_examples("sum_scores", 0, 1) == "sum_scores"


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
@pytest.mark.parametrize("idf", [False, True])
def test_recommend_sparse(strategy: str, idf: bool) -> None:
    points = sparse_points(16)
    client = sparse_collection(points, idf)
    matrix = sparse.build_sparse(points)
    pos = [([1, 4, 9], [1.0, 0.5, 0.3]), ([4, 20], [0.7, 1.2])]
    neg = [([9, 25], [0.4, 1.0])]
    q = reco_query([sv(v) for v in pos], [sv(v) for v in neg], strategy)
    expected = hits(client.query_points("c", q, using="s", limit=N).points)
    if strategy == "average_vector":
        avg = recommend.average_sparse(pos, neg)
        scores = sparse.score_sparse(*weighted(matrix, avg, idf), matrix)
        overlap = sparse.shares_index(avg[0], matrix)
        assert_same(expected, ranked(scores, True, overlap))
        return
    pos_sims = sparse.score_sparse_batch([weighted(matrix, v, idf) for v in pos], matrix)
    neg_sims = sparse.score_sparse_batch([weighted(matrix, v, idf) for v in neg], matrix)
    fn = recommend.best_score if strategy == "best_score" else recommend.sum_scores
    assert_same(expected, ranked(fn(pos_sims, neg_sims)))


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
def test_recommend_multivector(distance: Distance, strategy: str) -> None:
    mats = multi_points(17)
    client = multi_collection(distance, mats)
    rows, offsets = multivector.flatten(mats)
    stored = scoring.prepare_stored(distance, rows)
    pos = multi_points(18, n=2)
    neg = multi_points(19, n=1)
    q = reco_query([m.tolist() for m in pos], [m.tolist() for m in neg], strategy)
    expected = hits(client.query_points("c", q, limit=N).points)
    if strategy == "average_vector":
        query = recommend.average_multi(pos, neg)
        scores = multivector.score_multi(distance, query, stored, offsets)
        assert_same(expected, ranked(scores, scoring.higher_is_better(distance)))
        return
    pos_sims = np.stack([multivector.max_sim(distance, m, stored, offsets) for m in pos])
    neg_sims = np.stack([multivector.max_sim(distance, m, stored, offsets) for m in neg])
    fn = recommend.best_score if strategy == "best_score" else recommend.sum_scores
    assert_same(expected, ranked(fn(pos_sims, neg_sims)))


# --------------------------------------------------------------------------- discover / context


def context_pairs(pairs: list[tuple[Any, Any]]) -> list[models.ContextPair]:
    return [models.ContextPair(positive=p, negative=n) for p, n in pairs]


@pytest.mark.parametrize("distance", DISTANCES)
def test_discover_and_context_dense(distance: Distance) -> None:
    vectors = rng_vectors(20)
    client = dense_collection(distance, vectors)
    stored = scoring.prepare_stored(distance, vectors)
    target = rng_vectors(21, n=1)[0]
    pos, neg = rng_vectors(22, n=3), rng_vectors(23, n=3)
    pairs = context_pairs(list(zip(pos.tolist(), neg.tolist())))
    pos_sims = scoring.similarity(distance, pos, stored)
    neg_sims = scoring.similarity(distance, neg, stored)

    q = models.DiscoverQuery(discover=models.DiscoverInput(target=target.tolist(), context=pairs))
    expected = hits(client.query_points("c", q, limit=N).points)
    target_sim = scoring.similarity(distance, target, stored)
    assert_same(expected, ranked(recommend.discover(target_sim, pos_sims, neg_sims)))

    cq = models.ContextQuery(context=pairs)
    expected_ctx = hits(client.query_points("c", cq, limit=N).points)
    assert_same(expected_ctx, ranked(recommend.context(pos_sims, neg_sims)))


@pytest.mark.parametrize("idf", [False, True])
def test_discover_and_context_sparse(idf: bool) -> None:
    points = sparse_points(24)
    client = sparse_collection(points, idf)
    matrix = sparse.build_sparse(points)
    target = ([2, 8, 14], [1.0, 0.3, 0.8])
    pairs = [(([1, 2], [0.5, 1.0]), ([8], [1.0])), (([14, 22], [1.0, 0.2]), ([3, 5], [0.6, 0.9]))]
    models_pairs = context_pairs([(sv(p), sv(n)) for p, n in pairs])
    pos_sims = sparse.score_sparse_batch([weighted(matrix, p, idf) for p, _ in pairs], matrix)
    neg_sims = sparse.score_sparse_batch([weighted(matrix, n, idf) for _, n in pairs], matrix)

    q = models.DiscoverQuery(discover=models.DiscoverInput(target=sv(target), context=models_pairs))
    expected = hits(client.query_points("c", q, using="s", limit=N).points)
    target_sim = sparse.score_sparse(*weighted(matrix, target, idf), matrix)
    assert_same(expected, ranked(recommend.discover(target_sim, pos_sims, neg_sims)))

    expected_ctx = hits(
        client.query_points(
            "c", models.ContextQuery(context=models_pairs), using="s", limit=N
        ).points
    )
    assert_same(expected_ctx, ranked(recommend.context(pos_sims, neg_sims)))


def test_discover_and_context_multivector() -> None:
    mats = multi_points(25)
    client = multi_collection("Dot", mats)
    rows, offsets = multivector.flatten(mats)
    stored = scoring.prepare_stored("Dot", rows)
    target = multi_points(26, n=1)[0]
    pos, neg = multi_points(27, n=2), multi_points(28, n=2)
    pairs = context_pairs([(p.tolist(), n.tolist()) for p, n in zip(pos, neg)])
    pos_sims = np.stack([multivector.max_sim("Dot", m, stored, offsets) for m in pos])
    neg_sims = np.stack([multivector.max_sim("Dot", m, stored, offsets) for m in neg])
    q = models.DiscoverQuery(discover=models.DiscoverInput(target=target.tolist(), context=pairs))
    expected = hits(client.query_points("c", q, limit=N).points)
    target_sim = multivector.max_sim("Dot", target, stored, offsets)
    assert_same(expected, ranked(recommend.discover(target_sim, pos_sims, neg_sims)))
    expected_ctx = hits(
        client.query_points("c", models.ContextQuery(context=pairs), limit=N).points
    )
    assert_same(expected_ctx, ranked(recommend.context(pos_sims, neg_sims)))


def test_relevance_feedback_naive() -> None:
    vectors = rng_vectors(29)
    client = dense_collection("Cosine", vectors)
    stored = scoring.prepare_stored("Cosine", vectors)
    target = rng_vectors(30, n=1)[0]
    examples = rng_vectors(31, n=3)
    relevance = [0.9, 0.2, 0.5]
    q = models.RelevanceFeedbackQuery(
        relevance_feedback=models.RelevanceFeedbackInput(
            target=target.tolist(),
            feedback=[
                models.FeedbackItem(example=e.tolist(), score=s)
                for e, s in zip(examples, relevance)
            ],
            strategy=models.NaiveFeedbackStrategy(
                naive=models.NaiveFeedbackStrategyParams(a=1.0, b=0.7, c=0.5)
            ),
        )
    )
    expected = hits(client.query_points("c", q, limit=N).points)
    scores = recommend.naive_feedback(
        scoring.similarity("Cosine", target, stored),
        scoring.similarity("Cosine", examples, stored),
        relevance,
        1.0,
        0.7,
        0.5,
    )
    assert_same(expected, ranked(scores))


# --------------------------------------------------------------------------- fusion


def two_vector_collection(seed: int) -> tuple[QdrantClient, dict[str, npt.NDArray[np.float32]]]:
    data = {"a": rng_vectors(seed), "b": rng_vectors(seed + 1, d=5)}
    client = new_client()
    client.create_collection(
        "c",
        vectors_config={
            "a": models.VectorParams(size=DIM, distance=models.Distance.COSINE),
            "b": models.VectorParams(size=5, distance=models.Distance.EUCLID),
        },
    )
    client.upsert(
        "c",
        [
            models.PointStruct(
                id=i, vector={"a": data["a"][i].tolist(), "b": data["b"][i].tolist()}
            )
            for i in range(N)
        ],
    )
    return client, data


def prefetch_result(
    distance: Distance, vectors: npt.NDArray[np.float32], query: npt.NDArray[np.float32], limit: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    scores = scoring.score_dense(distance, query, scoring.prepare_stored(distance, vectors))
    order = scoring.top_k(scores, limit, scoring.higher_is_better(distance))
    return order, scores[order]


@pytest.mark.parametrize(
    "query",
    [
        models.FusionQuery(fusion=models.Fusion.RRF),
        models.FusionQuery(fusion=models.Fusion.DBSF),
        models.RrfQuery(rrf=models.Rrf(k=5)),
        models.RrfQuery(rrf=models.Rrf(k=3, weights=[3.0, 0.5])),
        models.RrfQuery(rrf=models.Rrf(weights=[1.0, 0.0])),
    ],
)
def test_fusion(query: Any) -> None:
    client, data = two_vector_collection(32)
    qa = rng_vectors(34, n=1)[0]
    qb = rng_vectors(35, n=1, d=5)[0]
    prefetch = [
        models.Prefetch(query=qa.tolist(), using="a", limit=12),
        models.Prefetch(query=qb.tolist(), using="b", limit=15),
    ]
    expected = hits(client.query_points("c", query=query, prefetch=prefetch, limit=N).points)
    sources = [
        prefetch_result("Cosine", data["a"], qa, 12),
        prefetch_result("Euclid", data["b"], qb, 15),
    ]
    if isinstance(query, models.FusionQuery) and query.fusion == models.Fusion.DBSF:
        ids, scores = fusion.dbsf(sources, limit=N)
    elif isinstance(query, models.RrfQuery):
        ids, scores = fusion.rrf(sources, limit=N, k=query.rrf.k, weights=query.rrf.weights)
    else:
        ids, scores = fusion.rrf(sources, limit=N)
    assert_same(expected, (ids.tolist(), scores.tolist()))


def test_fusion_mixed_ids_and_validation() -> None:
    a = (["u1", 7, "u2"], [0.9, 0.5, 0.1])
    b = ([7, "u3"], [3.0, 1.0])
    ids, scores = fusion.rrf([a, b])
    assert ids.tolist() == [7, "u1", "u3", "u2"]
    np.testing.assert_allclose(scores, [1 / 3 + 1 / 2, 1 / 2, 1 / 3, 1 / 4])
    ids, scores = fusion.dbsf([([1], [5.0]), ([2, 1], [2.0, 2.0])], limit=1)
    assert ids.tolist() == [1] and scores.tolist() == [1.0]
    with pytest.raises(
        BadRequest, match=r"RRF weights length \(1\) does not match number of prefetches \(2\)"
    ):
        fusion.rrf([a, b], weights=[1.0])
    empty_ids, empty_scores = fusion.rrf([([], []), ([], [])])
    assert empty_ids.size == 0 and empty_scores.size == 0


# --------------------------------------------------------------------------- formula


PAYLOADS: list[dict[str, Any]] = []


def formula_fixture() -> tuple[QdrantClient, npt.NDArray[np.float32], list[dict[str, Any]]]:
    rng = np.random.default_rng(40)
    vectors = rng_vectors(41)
    payloads: list[dict[str, Any]] = []
    for i in range(N):
        p: dict[str, Any] = {
            "price": round(float(rng.uniform(1.0, 100.0)), 2),
            "count": int(rng.integers(0, 10)),
            "flag": bool(i % 3 == 0),
            "loc": {"lon": float(rng.uniform(-10, 10)), "lat": float(rng.uniform(40, 50))},
            "ts": f"2024-0{1 + i % 9}-1{i % 10}T0{i % 10}:30:00Z",
            "single": [float(i)],
        }
        if i % 4 == 0:
            p["sparse_field"] = float(i) / 2
        payloads.append(p)
    client = new_client()
    client.create_collection("c", vectors_config=models.VectorParams(size=DIM, distance="Dot"))
    client.upsert(
        "c",
        [
            models.PointStruct(id=i, vector=v.tolist(), payload=payloads[i])
            for i, v in enumerate(vectors)
        ],
    )
    return client, vectors, payloads


def top_level_values(
    payloads: list[dict[str, Any]], ids: Sequence[int]
) -> Callable[[str], list[Any]]:
    def values(path: str) -> list[Any]:
        out: list[Any] = []
        for i in ids:
            v = payloads[i].get(path)
            out.append(None if v is None else v if isinstance(v, list) else [v])
        return out

    return values


def flag_condition(payloads: list[dict[str, Any]], ids: Sequence[int]) -> Callable[[Any], Any]:
    def mask(condition: Any) -> npt.NDArray[np.bool_]:
        assert condition == {"key": "flag", "match": {"value": True}}
        return np.array([payloads[i]["flag"] is True for i in ids])

    return mask


FORMULAS: list[tuple[Any, dict[str, Any]]] = [
    ({"sum": ["$score", {"mult": [0.01, "price"]}]}, {}),
    ({"mult": ["$score[0]", {"sum": [1.0, "count"]}, "$score[1]"]}, {}),
    ({"sum": ["$score", "sparse_field"]}, {"sparse_field": 1.5}),
    ({"sum": ["$score[1]", "single"]}, {"$score": 0.5, "$score[1]": -2.0}),
    ({"div": {"left": "count", "right": {"sum": ["count", -3]}, "by_zero_default": 7.0}}, {}),
    ({"pow": {"base": {"abs": "$score"}, "exponent": 0.5}}, {}),
    ({"sqrt": {"abs": {"neg": "$score"}}}, {}),
    ({"sum": [{"exp": {"mult": [0.01, "price"]}}, {"log10": "price"}, {"ln": "price"}]}, {}),
    ({"geo_distance": {"origin": {"lon": 2.35, "lat": 48.85}, "to": "loc"}}, {}),
    ({"sum": [{"datetime_key": "ts"}, {"neg": {"datetime": "2024-01-01T00:00:00Z"}}]}, {}),
    ({"lin_decay": {"x": "price", "target": 50.0, "scale": 25.0, "midpoint": 0.2}}, {}),
    ({"exp_decay": {"x": "price", "target": 20.0, "scale": 10.0}}, {}),
    (
        {
            "gauss_decay": {
                "x": {"datetime_key": "ts"},
                "target": {"datetime": "2024-05-01"},
                "scale": 8e6,
            }
        },
        {},
    ),
    ({"sum": ["$score", {"mult": [2.0, {"key": "flag", "match": {"value": True}}]}]}, {}),
    ({"max": ["$score", {"min": ["count", 3.0]}]}, {}),
    ({"mult": [{"mult": ["count", 0.0]}, "missing_field"]}, {}),
    ({"div": {"left": 0.0, "right": "missing_field"}}, {}),
    ({"acosh": {"sum": [1.0, "count"]}}, {}),
]


@pytest.mark.parametrize("formula_json, defaults", FORMULAS)
def test_formula(formula_json: Any, defaults: dict[str, Any]) -> None:
    client, vectors, payloads = formula_fixture()
    qa = rng_vectors(42, n=1)[0]
    qb = rng_vectors(43, n=1)[0]
    prefetch = [
        models.Prefetch(query=qa.tolist(), limit=10),
        models.Prefetch(query=qb.tolist(), limit=8),
    ]
    fq = models.FormulaQuery(formula=formula_json, defaults=defaults)
    expected = hits(client.query_points("c", query=fq, prefetch=prefetch, limit=N).points)

    sources = [prefetch_result("Dot", vectors, qa, 10), prefetch_result("Dot", vectors, qb, 8)]
    candidates = list(dict.fromkeys(int(i) for ids, _ in sources for i in ids))
    position = {pid: k for k, pid in enumerate(candidates)}
    score_arrays = []
    for ids, scores in sources:
        arr = np.full(len(candidates), np.nan)
        arr[[position[int(i)] for i in ids]] = scores
        score_arrays.append(arr)
    formula = parse_formula(formula_json, defaults)
    result = evaluate(
        formula,
        score_arrays,
        top_level_values(payloads, candidates),
        flag_condition(payloads, candidates),
    )
    order = scoring.top_k(result, len(candidates), True)
    assert_same(expected, ours(order, result, candidates))


@pytest.mark.parametrize(
    "formula_json, defaults, message",
    [
        ("missing_field", {}, "No value found in a payload nor defaults"),
        (
            {"mult": [{"key": "flag", "match": {"value": True}}, "missing_field"]},
            {},
            "No value found in a payload nor defaults",
        ),
        ({"sum": ["$score", "loc"]}, {}, "Value is not a number"),
        ({"sqrt": {"neg": "count"}}, {}, "non-finite"),
        ({"div": {"left": 1.0, "right": {"mult": ["count", 0.0]}}}, {}, "non-finite"),
        ({"pow": {"base": 0.0, "exponent": -1.0}}, {}, "non-finite"),
        ({"ln": {"mult": ["count", 0.0]}}, {}, "non-finite"),
        ({"exp": {"mult": ["price", 1000.0]}}, {}, "non-finite"),
        ({"mult": ["price", 1e37, 1e10]}, {}, "as f32"),
        ({"datetime_key": "price"}, {}, "datetime"),
    ],
)
def test_formula_errors(formula_json: Any, defaults: dict[str, Any], message: str) -> None:
    client, vectors, payloads = formula_fixture()
    qa = rng_vectors(44, n=1)[0]
    prefetch = [models.Prefetch(query=qa.tolist(), limit=10)]
    fq = models.FormulaQuery(formula=formula_json, defaults=defaults)
    # Local mode fails too; on a number where a datetime string belongs it trips over its
    # own parser (AttributeError) rather than reporting the type.
    with pytest.raises((ValueError, TypeError, AttributeError)):
        client.query_points("c", query=fq, prefetch=prefetch, limit=N)
    ids, scores = prefetch_result("Dot", vectors, qa, 10)
    formula = parse_formula(formula_json, defaults)
    with pytest.raises(BadRequest, match=message):
        evaluate(
            formula,
            [scores],
            top_level_values(payloads, ids.tolist()),
            flag_condition(payloads, ids.tolist()),
        )


@pytest.mark.parametrize(
    "formula_json, defaults, error",
    [
        ({"lin_decay": {"x": 1.0, "midpoint": 1.5}}, {}, BadRequest),
        ({"exp_decay": {"x": 1.0, "midpoint": 1.0}}, {}, BadRequest),
        ({"gauss_decay": {"x": 1.0, "scale": 0.0}}, {}, BadRequest),
        ("$scores", {}, BadRequest),
        ("$score[x]", {}, BadRequest),
        ("a..b", {}, BadRequest),
        ({"max": []}, {}, BadRequest),
        ({"datetime": "yesterday"}, {}, BadRequest),
        (True, {}, UnprocessableEntity),
        ([1.0], {}, UnprocessableEntity),
        ({"div": {"left": 1.0}}, {}, UnprocessableEntity),
        (1.0, {"$score[bad]": 1.0}, BadRequest),
    ],
)
def test_formula_parse_errors(formula_json: Any, defaults: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        parse_formula(formula_json, defaults)


def test_formula_parse_shape() -> None:
    formula = parse_formula(
        {
            "sum": [
                "$score[2]",
                "a.b[0]",
                {"key": "k", "match": {"value": 1}},
                {"datetime_key": "t"},
            ]
        },
        {"$score": 1.0, "a.b[0]": 3},
    )
    assert formula.conditions == ({"key": "k", "match": {"value": 1}},)
    assert formula.payload_paths == frozenset({"a.b[0]", "t"})
    assert formula.score_defaults == {0: 1.0}
    # A numeric column (NaN = absent) needs no per-point work and takes the default.
    result = evaluate(
        parse_formula({"sum": ["x", 1.0]}, {"x": 10.0}),
        [np.zeros(3)],
        lambda path: np.array([1.0, np.nan, 2.5]),
        lambda condition: np.zeros(3, dtype=bool),
    )
    assert result.tolist() == [2.0, 11.0, 3.5]
    # The request fails with the first candidate's first error, as local mode walks them,
    # even when a later node fails on a later candidate earlier in the tree.
    columns = {"x": np.array([1.0, np.nan]), "y": np.array([-1.0, 1.0])}
    with pytest.raises(BadRequest, match=r"√-1 = NaN"):
        evaluate(
            parse_formula({"sum": ["x", {"sqrt": "y"}]}),
            [np.zeros(2)],
            columns.__getitem__,
            lambda condition: np.zeros(2, dtype=bool),
        )


def test_a_cosine_query_is_prepared_as_a_stored_vector_is() -> None:
    """A float32 Cosine query (the search's own, one vector) is unit-normalised as a stored
    vector is, in a new array: tiny, huge, zero and NaN vectors included. Bit for bit under 16
    dimensions (where scores are Qdrant's to the bit); above, stored vectors follow Qdrant's
    SIMD kernels (scoring._kernel_norm2), which cost a query 40-140 us, so a query keeps
    numpy's sum and may differ in the last bit or two (its scores do not match Qdrant's to
    the bit there anyway: Qdrant's dot kernels are not replayed)."""
    rng = np.random.default_rng(11)
    vectors = [
        rng.normal(size=dim).astype(np.float32) * np.float32(scale)
        for dim in (1, 3, 128, 1536)
        for scale in (1e-30, 1e-9, 1e-3, 1.0, 1e6)
    ]
    vectors += [np.zeros(8, np.float32), np.full(4, np.nan, np.float32)]
    for vector in vectors:
        prepared = scoring.prepare_query("Cosine", vector)
        stored = scoring.prepare_stored("Cosine", vector[None, :])[0]
        assert prepared.dtype == np.float32 and prepared.shape == vector.shape
        if vector.shape[0] < scoring.SEQUENTIAL_DIMS or not np.isfinite(vector).all():
            assert prepared.tobytes() == stored.tobytes()
        else:
            np.testing.assert_array_max_ulp(prepared, stored, maxulp=2)
        assert not np.shares_memory(prepared, vector)
