"""An exact scan's best k in one native call (`query.exact_knn`) answers what the numpy path
(`score_dense` + `top_k`) answers, ties and NaN included, and a filtered search takes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.engine import Engine
from tessera.query import exact_knn, scoring
from tessera.query.filter_parse import parse_filter


def _numpy_answer(
    distance: Any, query: np.ndarray, rows: np.ndarray, k: int, subset: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    candidates = np.arange(len(rows)) if subset is None else subset
    scores = scoring.score_dense(distance, query, rows[candidates])
    best = scoring.top_k(scores, k, scoring.higher_is_better(distance))
    return scores[best], candidates[best]


@pytest.mark.parametrize("distance", ["Dot", "Cosine", "Euclid"])
def test_same_best_rows_as_numpy(distance: Any) -> None:
    rng = np.random.default_rng(3)
    answered = 0
    for trial in range(60):
        n, k = int(rng.integers(2, 2000)), int(rng.integers(1, 40))
        dim = int(rng.integers(1, 130))
        rows = scoring.prepare_stored(distance, rng.normal(size=(n, dim)).astype(np.float32))
        query = scoring.prepare_query(distance, rng.normal(size=dim).astype(np.float32))
        subset = None
        if trial % 2:
            subset = np.sort(rng.choice(n, max(1, n // 3), replace=False)).astype(np.int64)
        found = exact_knn.nearest(distance, query, rows, k, subset)
        if dim < scoring.SEQUENTIAL_DIMS:  # summed in Qdrant's order by the numpy path
            assert found is None
            answered += 1
            continue
        assert found is not None  # random floats: no tie
        answered += 1
        scores, best = _numpy_answer(distance, query, rows, k, subset)
        assert found[1].tolist() == best.tolist()
        np.testing.assert_allclose(found[0], scores, rtol=1e-5, atol=1e-5)
    assert answered == 60


@pytest.mark.parametrize("distance", ["Dot", "Cosine", "Euclid"])
def test_no_more_rows_than_k_come_all_in_order(distance: Any) -> None:
    rng = np.random.default_rng(4)
    rows = scoring.prepare_stored(distance, rng.normal(size=(30, 16)).astype(np.float32))
    query = scoring.prepare_query(distance, rng.normal(size=16).astype(np.float32))
    for count, k in [(1, 1), (1, 10), (10, 10), (7, 10), (30, 30)]:
        subset = np.sort(rng.choice(30, count, replace=False)).astype(np.int64)
        found = exact_knn.nearest(distance, query, rows, k, subset)
        assert found is not None
        scores, best = _numpy_answer(distance, query, rows, k, subset)
        assert found[1].tolist() == best.tolist() and len(best) == count
        np.testing.assert_allclose(found[0], scores, rtol=1e-5, atol=1e-5)
    tied = rows.copy()
    tied[3] = tied[9]
    assert exact_knn.nearest(distance, query, tied, 40, np.array([3, 9, 12])) is None


def test_ties_nan_and_small_vectors_are_left_to_numpy() -> None:
    dim = scoring.SEQUENTIAL_DIMS
    rows = np.ones((20, dim), dtype=np.float32)
    query = np.ones(dim, dtype=np.float32)
    assert exact_knn.nearest("Dot", query, rows, 3) is None  # every score equal
    rows = np.arange(20 * dim, dtype=np.float32).reshape(20, dim)
    rows[7] = rows[12]  # a tie among the best
    assert exact_knn.nearest("Dot", query, rows, 15) is None
    assert exact_knn.nearest("Dot", query, rows, 3) is not None  # the tie is not among them
    # Under SEQUENTIAL_DIMS numpy sums in Qdrant's order (faiss would not).
    assert exact_knn.nearest("Dot", query[:-1], np.ascontiguousarray(rows[:, :-1]), 3) is None
    rows[18] = np.nan
    assert exact_knn.nearest("Dot", np.full(dim, np.nan, np.float32), rows, 3) is None
    assert exact_knn.nearest("Manhattan", query, rows, 3) is None  # no native k-NN for it
    assert exact_knn.nearest("Dot", query, rows.astype(np.float16), 3) is None


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "storage")
    yield eng
    eng.close()


@pytest.mark.parametrize("distance", ["Cosine", "Euclid", "Manhattan"])
def test_filtered_search_takes_it_and_keeps_tie_order(
    engine: Engine, distance: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.create_collection("c", {"vectors": {"size": 16, "distance": distance}})
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    vectors[300:310] = vectors[5]  # ten copies of point 5, all in the filter
    payloads = [{"tag": "a" if i % 4 == 1 else "b"} for i in range(400)]
    engine.upsert_arrays("c", list(range(400)), vectors, payloads)
    calls: list[bool] = []
    native = exact_knn._best  # what `nearest` and `nearest_listed` both ask

    def counted(*args: Any, **kwargs: Any) -> Any:
        found = native(*args, **kwargs)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(exact_knn, "_best", counted)
    filt = parse_filter({"must": [{"key": "tag", "match": {"value": "a"}}]})
    in_filter = np.array([i % 4 == 1 for i in range(400)])
    for query in rng.normal(size=(5, 16)).astype(np.float32):
        hits = engine.search("c", query, 7, filt, exact=True)
        scores, best = _numpy_answer(
            distance,
            scoring.prepare_query(distance, query),
            scoring.prepare_stored(distance, vectors),
            7,
            np.flatnonzero(in_filter),
        )
        assert [pid for pid, _ in hits] == best.tolist()
        np.testing.assert_allclose([s for _, s in hits], scores, rtol=1e-5, atol=1e-5)
    # Point 5 and its copies in the filter tie: best first, in id order (the numpy path).
    hits = engine.search("c", vectors[5], 12, filt, exact=True)
    assert [pid for pid, _ in hits][:4] == [5, 301, 305, 309]
    if distance == "Manhattan":
        assert calls == []
    else:
        # (a random query near point 5 ties too, and is answered by numpy as well)
        assert calls.count(True) >= 3 and calls[-1] is False


def test_euclid_distances_equal_after_the_root_keep_id_order(engine: Engine) -> None:
    # Squared distances 2.0 and 1.9999999 (a float apart) both report sqrt = 1.4142135: a
    # tie in what the user sees, so the smaller id comes first, as the numpy path answers.
    engine.create_collection("c", {"vectors": {"size": 2, "distance": "Euclid"}})
    far = [[50.0 + i, 50.0] for i in range(20)]
    engine.upsert_arrays("c", list(range(22)), np.array([[1, 1], [1.4142135, 0], *far]), None)
    origin = np.zeros(2, dtype=np.float32)
    assert [pid for pid, _ in engine.search("c", origin, 1, exact=True)] == [0]
    assert [pid for pid, _ in engine.search("c", origin, 2, exact=True)] == [0, 1]
