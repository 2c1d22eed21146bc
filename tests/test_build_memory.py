"""What an index build holds at once: the new segment reads a whole source's rows where they
are (the graph's copy replaces them, or a copy of its own does), and faiss's tables get their
room up front; the answers stay those of a plain build."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import pytest

from tessera.collection_config import parse_create_collection
from tessera.segment.ann_index import HnswIndex, reserve
from tessera.segment.persist import take_snapshot
from tessera.segment.segment import Segment
from tessera.segment.vector_storage import DenseStorage
from tessera.shard.optimizer import build_segment

DIM = 16


def _source(config: Any, n: int, seed: int = 5) -> Segment:
    segment = Segment("src", config, appendable=True)
    rows = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    offsets = segment.allocate(list(range(n)), 1)
    segment.write_dense("", offsets, rows)
    segment.set_payloads(offsets, [None] * n)
    segment.appendable = False  # sealed, as the optimizer does before a build
    return segment


# A plain float graph (its copy of the vectors becomes the segment's), a quantized one and
# float16 rows (the segment keeps a copy of its own).
LAYOUTS = [(None, "float32"), ({"scalar": {"type": "int8"}}, "float32"), (None, "float16")]


def _config(quantization: dict[str, Any] | None, datatype: str) -> Any:
    body: dict[str, Any] = {"vectors": {"size": DIM, "distance": "Cosine", "datatype": datatype}}
    if quantization is not None:
        body["quantization_config"] = quantization
    return parse_create_collection(body)


def _matrix(segment: Segment) -> Any:
    storage = segment.storages[""]
    assert isinstance(storage, DenseStorage)
    return storage.matrix


@pytest.mark.parametrize(("quantization", "datatype"), LAYOUTS)
def test_a_build_from_one_whole_source_keeps_no_hold_on_its_rows(
    quantization: dict[str, Any] | None, datatype: str
) -> None:
    config = _config(quantization, datatype)
    source = _source(config, 600)
    rows = np.asarray(_matrix(source))[: source.size]
    offsets = np.arange(source.size, dtype=np.int64)
    new = build_segment([(source, offsets)], config, {}, True)
    matrix = np.asarray(_matrix(new))
    np.testing.assert_array_equal(matrix, rows)
    # Either the graph's own vectors (plain float) or a copy (quantized, float16): never
    # the source's buffer, which the swap is about to drop.
    assert not np.shares_memory(matrix, rows)
    index = new.vector_indexes[""]
    hits = index.search(rows[7], 5, 64, None)
    assert int(hits[1][0]) == 7


def test_a_partial_source_is_gathered_as_before() -> None:
    config = parse_create_collection({"vectors": {"size": DIM, "distance": "Cosine"}})
    source = _source(config, 300)
    rows = np.asarray(_matrix(source))[: source.size]
    kept = np.arange(0, 300, 2, dtype=np.int64)
    new = build_segment([(source, kept)], config, {}, True)
    np.testing.assert_array_equal(np.asarray(_matrix(new)), rows[kept])


@pytest.mark.parametrize("metric", [faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2])
def test_reserved_room_changes_no_answer(metric: int) -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3000, DIM)).astype(np.float32)
    plain = faiss.IndexHNSWFlat(DIM, 8, metric)
    roomy = faiss.IndexHNSWFlat(DIM, 8, metric)
    reserve(roomy, len(x))
    for index in (plain, roomy):
        index.hnsw.efConstruction = 40
        for start in range(0, len(x), 1000):
            index.add(x[start : start + 1000])
    assert faiss.downcast_index(roomy.storage).codes.size() == 3000 * DIM * 4
    assert roomy.hnsw.neighbors.size() == plain.hnsw.neighbors.size()
    d1, i1 = plain.search(x[:50], 10)
    d2, i2 = roomy.search(x[:50], 10)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)


def test_an_extended_graph_answers_as_one_built_whole() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2000, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    base = HnswIndex.build(x[:1500], "Cosine", 8, 40)
    extended = base.extended(x[1500:])
    assert extended is not None and extended.size == 2000
    for q in (3, 1600, 1999):
        assert int(extended.search(x[q], 1, 64, None)[1][0]) == q


@pytest.mark.parametrize(("quantization", "datatype"), LAYOUTS)
def test_an_extended_base_gathers_only_the_other_rows(
    quantization: dict[str, Any] | None, datatype: str
) -> None:
    config = _config(quantization, datatype)
    first = _source(config, 500, seed=1)
    base = build_segment([(first, np.arange(500, dtype=np.int64))], config, {}, True)
    leftovers = _source(config, 200, seed=2)
    base_rows = np.asarray(_matrix(base))[:500].copy()
    more_rows = np.asarray(_matrix(leftovers))[:200].copy()
    kept = np.arange(0, 200, 2, dtype=np.int64)
    new = build_segment(
        [(base, np.arange(500, dtype=np.int64)), (leftovers, kept)], config, {}, True, base
    )
    matrix = np.asarray(_matrix(new))
    np.testing.assert_array_equal(matrix, np.concatenate([base_rows, more_rows[kept]]))
    assert not np.shares_memory(matrix, np.asarray(_matrix(base)))
    index = new.vector_indexes[""]
    assert index.size == 600
    for row in (4, 520, 599):
        assert int(index.search(matrix[row], 1, 64, None)[1][0]) == row


def test_a_flush_shares_an_immutable_segments_rows_and_copies_an_appendable_ones() -> None:
    """What a flush takes to write (under the lock, written after it): a built segment's rows
    as they are (they never change: a write moves the point out first), an appendable
    segment's as a copy (the next upsert may write into them while the file is written)."""
    config = parse_create_collection({"vectors": {"size": DIM, "distance": "Cosine"}})
    source = _source(config, 300)
    new = build_segment([(source, np.arange(300, dtype=np.int64))], config, {}, True)
    built = take_snapshot(new).components["vec:"]
    assert np.shares_memory(built[1], _matrix(new))
    source.appendable = True
    taken = take_snapshot(source).components["vec:"]
    assert not np.shares_memory(taken[1], _matrix(source))
    np.testing.assert_array_equal(taken[1], np.asarray(_matrix(source))[:300])
