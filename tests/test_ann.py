"""HNSW segments against exact search: recall per distance, under filters, with quantization,
through optimizer rebuilds (indexing, extension, vacuum) and a restart. In-process engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.collection.values import Quantization, SearchParams, VectorInput
from tessera.engine import Engine

N, DIM = 4000, 24


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "storage")
    yield eng
    eng.close()


def _data(seed: int = 0) -> tuple[np.ndarray[Any, Any], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, DIM))
    labels = rng.integers(0, 20, N)
    vectors = (centers[labels] + 0.3 * rng.standard_normal((N, DIM))).astype(np.float32)
    payloads = [{"tag": f"t{i % 10}", "rare": i % 200 == 0, "x": float(i)} for i in range(N)]
    return vectors, payloads


def _create(engine: Engine, name: str, distance: str, **extra: Any) -> None:
    body: dict[str, Any] = {
        "vectors": {"size": DIM, "distance": distance},
        # Index from ~100 points on, and walk the graph for anything above 106 candidates
        # (Qdrant's least full_scan_threshold, 10 KB, of 96-byte vectors): the 400 of a tag,
        # not the 20 rare ones.
        "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 1},
        "hnsw_config": {"full_scan_threshold": 10, "m": 16, "ef_construct": 64},
    }
    body.update(extra)
    engine.create_collection(name, body)


def _load(engine: Engine, name: str, vectors: np.ndarray[Any, Any], payloads: list[Any]) -> None:
    for start in range(0, N, 500):
        ids = list(range(start, min(N, start + 500)))
        engine.upsert_arrays(name, ids, vectors[ids], [payloads[i] for i in ids])
    engine.create_field_index(name, "tag", "keyword")
    engine.create_field_index(name, "rare", "bool")
    engine.wait_optimized(name)


def _recall(engine: Engine, name: str, queries: np.ndarray[Any, Any], filt: Any = None) -> float:
    found = 0
    total = 0
    for q in queries:
        exact = [pid for pid, _ in engine.search(name, q, 10, filter=filt, exact=True)]
        approx = [pid for pid, _ in engine.search(name, q, 10, filter=filt, hnsw_ef=128)]
        found += len(set(exact) & set(approx))
        total += len(exact)
    return found / max(total, 1)


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid", "Manhattan"])
def test_graph_matches_exact_search(engine: Engine, distance: str) -> None:
    vectors, payloads = _data()
    _create(engine, "c", distance)
    _load(engine, "c", vectors, payloads)
    info = engine.info("c")
    assert info["indexed_vectors_count"] == N
    assert info["status"] == "green"
    queries = vectors[:30] + 0.05
    assert _recall(engine, "c", queries) >= 0.95
    tag = {"must": [{"key": "tag", "match": {"value": "t3"}}]}
    assert _recall(engine, "c", queries, tag) >= 0.95
    rare = {"must": [{"key": "rare", "match": {"value": True}}]}
    assert _recall(engine, "c", queries, rare) == 1.0  # under the threshold: exact
    hits = engine.search("c", queries[0], 10, filter=tag)
    assert all(payloads[int(pid)]["tag"] == "t3" for pid, _ in hits)  # type: ignore[call-overload]


def test_scalar_quantization_rescores_to_exact_scores(engine: Engine) -> None:
    vectors, payloads = _data(1)
    _create(engine, "q", "Cosine", quantization_config={"scalar": {"type": "int8"}})
    _load(engine, "q", vectors, payloads)
    segment = engine.toc.get("q").shard.holder.segments[0]
    assert segment.vector_indexes[""].quantized
    queries = vectors[:20] + 0.05
    assert _recall(engine, "q", queries) >= 0.9
    exact = engine.search("q", queries[0], 5, exact=True)
    # Asked to rescore (scalar codes are not rescored unless a search asks, as in Qdrant)
    params = SearchParams(quantization=Quantization(rescore=True))
    query = VectorInput("", "dense", np.asarray(queries[0], dtype=np.float32))
    hits = engine.toc.get("q").search(query, None, 5, params=params)
    approx = list(zip(hits.ids, hits.scores or (), strict=True))
    common = {pid for pid, _ in exact} & {pid for pid, _ in approx}
    assert common
    exact_scores = dict(exact)
    for pid, score in approx:
        if pid in common:
            assert abs(score - exact_scores[pid]) < 1e-5  # rescored with the originals


def test_updates_and_deletes_after_indexing_stay_correct(engine: Engine, tmp_path: Path) -> None:
    vectors, payloads = _data(2)
    _create(
        engine,
        "u",
        "Euclid",
        optimizers_config={
            "indexing_threshold": 10,
            "default_segment_number": 1,
            "deleted_threshold": 0.1,
            "vacuum_min_vector_number": 100,
        },
    )
    _load(engine, "u", vectors, payloads)
    collection = engine.toc.get("u")
    # Delete a third of the points, and move some others far away.
    collection.update(lambda holder: _delete_op(list(range(0, N, 3))))
    moved = list(range(1, 300, 3))
    far = np.full((len(moved), DIM), 100.0, dtype=np.float32)
    engine.upsert_arrays("u", moved, far, [{"tag": "moved"}] * len(moved))
    engine.wait_optimized("u")
    info = engine.info("u")
    assert info["points_count"] == N - len(range(0, N, 3))
    holder = collection.shard.holder
    # Vacuumed by the optimizer's rule (100 or more deleted and over 10%). Which segments hold
    # the moved points' old copies depends on whether a vacuum ran between the deletes and the
    # moves (it may, on a loaded machine), so the rule is checked rather than one end state.
    sealed = [s for s in holder.segments if not s.appendable]
    assert sealed
    for segment in sealed:
        deleted = segment.size - segment.live_count()
        assert deleted < 100 or deleted / segment.size <= 0.1, (deleted, segment.size)
    assert sum(s.size - s.live_count() for s in sealed) < len(range(0, N, 3))
    hits = engine.search("u", far[0], 5)
    assert {pid for pid, _ in hits} <= set(moved)
    deleted = set(range(0, N, 3))
    for q in vectors[:10]:
        assert not deleted & {pid for pid, _ in engine.search("u", q, 20)}
    engine.close()
    reopened = Engine(tmp_path / "storage")
    try:
        assert reopened.info("u")["points_count"] == info["points_count"]
        assert {pid for pid, _ in reopened.search("u", far[0], 5)} <= set(moved)
    finally:
        reopened.close()
    engine.toc = Engine(tmp_path / "storage2").toc  # the fixture closes something valid


def _delete_op(ids: list[int]) -> Any:
    from tessera.shard import operations as ops

    return ops.DeletePoints(ids)  # type: ignore[arg-type]


def test_multivector_first_stage_finds_the_exact_best(engine: Engine) -> None:
    rng = np.random.default_rng(5)
    engine.create_collection(
        "m",
        {
            "vectors": {
                "size": 16,
                "distance": "Cosine",
                "multivector_config": {"comparator": "max_sim"},
            },
            "optimizers_config": {"indexing_threshold": 1, "default_segment_number": 1},
            # 10 KB: 160 vectors of 16 floats, well under the 1500 points' ~3750.
            "hnsw_config": {"full_scan_threshold": 10},
        },
    )
    multis = [rng.standard_normal((int(rng.integers(1, 5)), 16)).tolist() for _ in range(1500)]
    engine.upsert("m", {"points": [{"id": i, "vector": v} for i, v in enumerate(multis)]})
    engine.wait_optimized("m")
    collection = engine.toc.get("m")
    with collection.shard.read() as holder:
        assert any("" in s.vector_indexes for s in holder.segments)
    from tessera.shard.search import VectorQuery, search

    hits_found = 0
    for i in range(20):
        query = np.asarray(multis[i], dtype=np.float32) + 0.01
        vq = VectorQuery("", "multi", query)
        with collection.shard.read() as holder:
            exact = [h.ref.id for h in search(holder, vq, None, 5, exact=True)]
            approx = [h.ref.id for h in search(holder, vq, None, 5)]
        hits_found += len(set(exact) & set(approx))
        assert approx[0] == exact[0] == i
    assert hits_found >= 0.9 * 100


@pytest.mark.parametrize("distance", ["Cosine", "Euclid", "Manhattan"])
def test_flat_scan_of_an_indexed_segment_is_exact(
    engine: Engine, distance: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.shard import search as search_module

    vectors, payloads = _data(7)
    _create(engine, "f", distance)
    _load(engine, "f", vectors, payloads)
    queries = vectors[:10] + 0.05
    tag = {"must": [{"key": "tag", "match": {"value": "t3"}}]}
    numpy_path = [
        engine.search("f", q, 10, filter=f, exact=True) for q in queries for f in (None, tag)
    ]
    monkeypatch.setattr(search_module, "FLAT_SCAN_MIN", 1)
    faiss_path = [
        engine.search("f", q, 10, filter=f, exact=True) for q in queries for f in (None, tag)
    ]
    for a, b in zip(numpy_path, faiss_path, strict=True):
        assert [pid for pid, _ in a] == [pid for pid, _ in b]
        assert np.allclose([s for _, s in a], [s for _, s in b], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("datatype", ["float16", "uint8"])
def test_graph_over_compact_datatypes_agrees_with_exact(engine: Engine, datatype: str) -> None:
    vectors, payloads = _data(9)
    if datatype == "uint8":
        vectors = np.clip((vectors + 3) * 40, 0, 255).astype(np.float32)
    engine.create_collection(
        "d",
        {
            "vectors": {"size": DIM, "distance": "Cosine", "datatype": datatype},
            "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 1},
            "hnsw_config": {"full_scan_threshold": 10, "m": 16, "ef_construct": 64},
        },
    )
    _load(engine, "d", vectors, payloads)
    assert engine.info("d")["indexed_vectors_count"] == N
    queries = vectors[:20] + 0.5
    assert _recall(engine, "d", queries) >= 0.95
    for q in queries[:5]:
        exact = dict(engine.search("d", q, 5, exact=True))
        for pid, score in engine.search("d", q, 5):
            if pid in exact:
                assert abs(score - exact[pid]) < 1e-2


def test_repeated_filter_sees_every_change(engine: Engine) -> None:
    vectors, payloads = _data(4)
    _create(engine, "r", "Cosine")
    _load(engine, "r", vectors, payloads)
    rare = {"must": [{"key": "rare", "match": {"value": True}}]}
    query = vectors[1]
    before = {pid for pid, _ in engine.search("r", query, 50, filter=rare)}
    assert 1 not in before  # point 1 is not rare
    collection = engine.toc.get("r")
    from tessera.shard import operations as ops

    collection.update(lambda holder: ops.SetPayload([1], {"rare": True}, None))
    after_set = {pid for pid, _ in engine.search("r", query, 50, filter=rare)}
    assert after_set == before | {1}
    collection.update(lambda holder: ops.DeletePoints([1]))
    assert {pid for pid, _ in engine.search("r", query, 50, filter=rare)} == before


def test_absurd_graph_parameters_still_build(tmp_path: Path) -> None:
    """Qdrant bounds neither `m` nor `ef_construct`; faiss takes C ints, so 2^64 - 1 failed
    every build (the optimizer retried forever). The build uses a bounded degree and beam;
    the collection's config keeps what was given."""
    from tessera.segment.ann_index import HnswIndex

    rng = np.random.default_rng(1)
    data = rng.random((300, 4)).astype(np.float32)
    huge = 2**64 - 1
    for m, ef in ((huge, 100), (16, huge), (2**31, 2**31)):
        index = HnswIndex.build(data, "Cosine", m, ef)
        assert index.index.ntotal == 300
