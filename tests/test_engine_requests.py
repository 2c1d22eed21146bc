"""The in-process engine takes the typed requests the transports decode into, and answers
what the routes answer for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.api.query_parse import parse_query_request
from tessera.collection import requests, writes
from tessera.collection.values import (
    EVERYTHING,
    NOTHING,
    PayloadSelector,
    SearchParams,
    Selection,
    VectorInput,
    VectorSelector,
)
from tessera.engine import Engine
from tessera.errors import BadRequest
from tessera.query import filter_model as fm
from tessera.query import query_model as qm
from tessera.query.payload_path import parse_path


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "storage")
    eng.create_collection("c", {"vectors": {"size": 4, "distance": "Euclid"}})
    yield eng
    eng.close()


def test_typed_requests_end_to_end(engine: Engine) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(50, 4)).astype(np.float32)
    ids = list(range(1, 51))
    column = writes.DenseColumn(np.ones(50, dtype=bool), vectors)
    payloads = [{"even": i % 2 == 0, "n": i} for i in ids]
    assert engine.write("c", writes.upsert(ids, {"": column}, list(payloads))) >= 0

    even = fm.Filter(must=(fm.MatchValue(parse_path("even"), True),))
    assert engine.read("c", requests.Count(even)) == 25
    page = engine.read("c", requests.Scroll(even, None, 10, EVERYTHING, None))
    assert page.points.ids == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20] and page.next_offset == 22
    got = engine.read("c", requests.Retrieve((3, 99), EVERYTHING))
    assert got.ids == [3] and got.payloads == [{"even": False, "n": 3}]

    query = vectors[4]
    expected = np.argsort(((vectors - query) ** 2).sum(axis=1))[:5] + 1
    search = requests.Search(
        VectorInput("", "dense", query), None, 5, 0, None, SearchParams(exact=True), NOTHING
    )
    assert engine.read("c", search).ids == expected.tolist()
    plan, select = parse_query_request(
        {"query": query.tolist(), "limit": 5, "params": {"exact": True}}, engine.toc.get("c").config
    )
    assert engine.query("c", plan, select).ids == expected.tolist()
    assert engine.query("c", qm.Plan(qm.QueryNode(query=qm.Sample(), limit=3))).ids

    assert engine.write("c", writes.delete([1, 2])) >= 0
    assert engine.read("c", requests.Count(None)) == 48
    unknown = Selection(PayloadSelector(False), VectorSelector(True, ["nope"]))
    with pytest.raises(BadRequest):  # the route's checks run too: vector names
        engine.read("c", requests.Retrieve((3,), unknown))


@pytest.mark.parametrize("graph", [False, True], ids=["exact", "graph"])
def test_a_repeated_filter_sees_every_change(tmp_path: Path, graph: bool) -> None:
    """A filter repeated query after query keeps what it can between queries (the mask; for
    the exact scan its offsets and gathered rows, for the graph walk faiss's parameters and
    bitmap): every write that changes a vector, a payload or a point's liveness must show
    in the next answer."""
    eng = Engine(tmp_path / "storage")
    config: dict[str, Any] = {"vectors": {"size": 8, "distance": "Cosine"}}
    if graph:  # a graph over the points: a filter keeping 10% or more of them walks it
        config["optimizers_config"] = {"indexing_threshold": 1}
        config["hnsw_config"] = {"full_scan_threshold": 10}
    eng.create_collection("c", config)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    ids = list(range(300))
    eng.upsert_arrays("c", ids, vectors, [{"t": "a" if i % 4 == 0 else "b"} for i in ids])
    if graph:
        eng.wait_optimized("c", 60)
        assert eng.info("c")["indexed_vectors_count"] == 300
    flt = {"must": [{"key": "t", "match": {"value": "a"}}]}
    query = rng.normal(size=8).astype(np.float32)

    def expected() -> list[int]:
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        scores = unit @ (query / np.linalg.norm(query))
        matching = [i for i in ids if tags[i] == "a" and i not in deleted]
        return sorted(matching, key=lambda i: -scores[i])[:5]

    def found() -> list[int]:
        hits = eng.search("c", query, 5, flt, hnsw_ef=256)
        return [int(pid) for pid, _ in hits]  # type: ignore[call-overload]

    tags = {i: "a" if i % 4 == 0 else "b" for i in ids}
    deleted: set[int] = set()
    for _ in range(3):  # warm: what the filter keeps is made on the first queries
        assert found() == expected()
    best = found()[0]  # deleted where it lies (the graph's segment, for the walk)
    eng.write("c", writes.delete([best]))
    deleted.add(best)
    assert best not in found() and found() == expected()
    vectors[20] = query * 3  # a candidate's vector changes: now the nearest
    eng.upsert_arrays("c", [20], vectors[20:21], [{"t": "a"}])
    assert found()[0] == 20 and found() == expected()
    vectors[7] = query  # a point starts to match, with the best vector
    eng.upsert_arrays("c", [7], vectors[7:8], [{"t": "a"}])
    tags[7] = "a"
    assert found()[:2] == [7, 20] or found()[:2] == [20, 7]
    # 7 and 20 both score cosine 1.0: which comes first is the last bit of two summation
    # orders (Qdrant's, under 16 dimensions, and numpy's here), so only the rest is ordered.
    assert found()[2:] == expected()[2:] and set(found()[:2]) == set(expected()[:2])
    eng.upsert("c", {"points": [{"id": 7, "vector": vectors[7].tolist(), "payload": {"t": "b"}}]})
    tags[7] = "b"
    assert found() == expected()
    eng.write("c", writes.delete([20]))
    deleted.add(20)
    assert 20 not in found() and found() == expected()
    eng.close()


def test_the_filter_cache_keeps_to_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filters cycled through are kept up to the cache's entry and byte limits, oldest
    dropped first, and a dropped filter answers the same when it comes back."""
    from tessera.shard import search as shard_search

    eng = Engine(tmp_path / "storage")
    eng.create_collection("c", {"vectors": {"size": 4, "distance": "Dot"}})
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(1000, 4)).astype(np.float32)
    eng.upsert_arrays("c", list(range(1000)), vectors, [{"k": i % 12} for i in range(1000)])
    segment = eng.toc.get("c").shard.holder.segments[0]
    query = rng.normal(size=4).astype(np.float32)

    def top(k: int) -> list[int]:
        hits = eng.search("c", query, 3, {"must": [{"key": "k", "match": {"value": k}}]})
        return [int(pid) for pid, _ in hits]  # type: ignore[call-overload]

    first = [top(k) for k in range(12)]
    assert len(segment.filter_masks) == 12  # under both limits: every filter kept
    mask_bytes = segment.size  # one bool per offset
    monkeypatch.setattr(shard_search, "FILTER_CACHE_BYTES", 3 * mask_bytes + 2 * 3 * 8)
    segment.filter_masks.clear()
    again = [top(k) for k in range(12)]
    assert again == first
    assert 1 <= len(segment.filter_masks) <= 3
    held = sum(entry.nbytes() for entry in segment.filter_masks.values())
    assert held <= 3 * mask_bytes + 2 * 3 * 8 + 200 * 4 * 4  # rows added after the check
    monkeypatch.setattr(shard_search, "FILTER_CACHE_SIZE", 2)
    assert [top(k) for k in range(12)] == first and len(segment.filter_masks) <= 2
    eng.close()
