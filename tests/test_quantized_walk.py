"""How quantized graphs are walked: product quantizers of sub-byte codes regrouped into byte
sub-quantizers (same codes, same distances, same results), no code-to-code table held, and
TurboQuant's 1-bit scores read from the codes' bits as the dequantized vectors give them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from tessera.segment.ann_index import HnswIndex
from tessera.segment.quantization import byte_sub_quantizers, hnsw_of
from tessera.segment.turbo_codec import TurboCodec


def _unit_rows(n: int, dim: int, seed: int) -> np.ndarray[Any, Any]:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _pq(index: Any) -> Any:
    return faiss.downcast_index(hnsw_of(index).storage).pq


def _sub_byte_graph(dim: int, bits: int, rows: np.ndarray[Any, Any]) -> Any:
    """An HNSW over a product quantizer of one `bits`-bit code per coordinate, trained and
    filled by faiss itself (the layout turbo's 4 / 2 / 1-bit graphs were written in)."""
    index = faiss.IndexHNSWPQ(dim, dim, 8, bits)
    index.train(rows)
    index.add(rows)
    return index


def _walk(index: Any, queries: np.ndarray[Any, Any]) -> tuple[Any, Any]:
    faiss.omp_set_num_threads(1)
    return index.search(queries, 10, params=faiss.SearchParametersHNSW(efSearch=64))


@pytest.mark.parametrize("bits", [4, 2, 1])
def test_regrouped_quantizer_keeps_codes_distances_and_results(bits: int) -> None:
    rows, queries = _unit_rows(1500, 32, 0), _unit_rows(20, 32, 1)
    index = _sub_byte_graph(32, bits, rows)
    codes = faiss.vector_to_array(faiss.downcast_index(index.storage).codes).copy()
    decoded = faiss.downcast_index(index.storage).reconstruct_n(0, 50)
    before = _walk(index, queries)

    byte_sub_quantizers(index)
    pq = _pq(index)
    assert (int(pq.nbits), int(pq.M), int(pq.dsub)) == (8, 32 * bits // 8, 8 // bits)
    assert np.array_equal(faiss.vector_to_array(faiss.downcast_index(index.storage).codes), codes)
    np.testing.assert_allclose(
        faiss.downcast_index(index.storage).reconstruct_n(0, 50), decoded, atol=1e-6
    )
    after = _walk(index, queries)
    assert np.array_equal(after[1], before[1])
    np.testing.assert_allclose(after[0], before[0], rtol=1e-4, atol=1e-5)

    byte_sub_quantizers(index)  # idempotent: byte codes stay as they are
    assert int(_pq(index).M) == 32 * bits // 8


def test_quantizer_whose_codes_do_not_fill_bytes_is_left_alone() -> None:
    rows = _unit_rows(700, 5, 0)
    index = _sub_byte_graph(5, 4, rows)  # 5 codes of 4 bits: the last byte holds one
    before = _walk(index, rows[:5])
    byte_sub_quantizers(index)
    assert (int(_pq(index).nbits), int(_pq(index).M)) == (4, 5)
    assert np.array_equal(_walk(index, rows[:5])[1], before[1])


def test_sub_byte_graph_written_before_loads_regrouped(tmp_path: Path) -> None:
    rows, queries = _unit_rows(1500, 32, 0), _unit_rows(20, 32, 1)
    old = _sub_byte_graph(32, 4, rows)
    expected = _walk(old, queries)
    path = tmp_path / "graph.faiss"
    faiss.write_index(old, str(path))
    for mmap in (False, True):
        loaded = HnswIndex.load(path, "Euclid", mmap=mmap, meta={"lift_norm2": None})
        assert int(_pq(loaded.index).nbits) == 8
        assert np.array_equal(_walk(loaded.index, queries)[1], expected[1])


@pytest.mark.parametrize(
    "quantization",
    [{"product": {"compression": "x8"}}, {"turbo": {}}, {"turbo": {"bits": "bits1"}}],
)
def test_quantized_graphs_hold_no_code_to_code_table(
    tmp_path: Path, quantization: dict[str, Any]
) -> None:
    rows = _unit_rows(1200, 64, 0)
    built = HnswIndex.build(rows, "Cosine", 8, 40, quantization)
    assert int(_pq(built.index).sdc_table.size()) == 0
    path = tmp_path / "graph.faiss"
    built.save(path)
    loaded = HnswIndex.load(path, "Cosine", meta=built.codec_meta())
    assert int(_pq(loaded.index).sdc_table.size()) == 0
    query = rows[7]
    assert np.array_equal(loaded.search(query, 5, 64, None)[1], built.search(query, 5, 64, None)[1])
    if "turbo" not in quantization or quantization["turbo"].get("bits") != "bits1":
        assert int(_pq(built.index).nbits) == 8


@pytest.mark.parametrize("bits", ["bits1", "bits1_5"])
def test_turbo_scores_are_those_of_the_dequantized_vectors(bits: str) -> None:
    rows = _unit_rows(800, 200, 0)
    codec = TurboCodec.fitted(rows, bits)
    codes = codec.encode(rows[:64])
    for seed in range(3):
        query = codec.query(_unit_rows(1, 200, 10 + seed)[0])
        vectors = codec.dequantize(codes)
        norms = np.linalg.norm(vectors, axis=1)
        expected = (vectors @ query) / np.where(norms > 0, norms, 1.0)
        np.testing.assert_allclose(codec.scores(query, codes), expected, atol=1e-6)
    zero = np.zeros((1, codec.code_size), dtype=np.uint8)  # every bit clear: the low levels
    low = codec.levels()[0]
    query = codec.query(rows[3])
    assert codec.scores(query, zero)[0] == pytest.approx(
        float(low @ query / np.linalg.norm(low)), abs=1e-6
    )
