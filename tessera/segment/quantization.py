"""Quantized graphs: the faiss index a segment's HNSW walks when a vector name is quantized.

Qdrant keeps quantized codes beside the original vectors, builds its graph from the
originals, walks it with the codes and rescores the best candidates with the originals.
Here the links come from an HNSW over the float vectors (`transplant_graph`; binary and
version 2 turbo graphs excepted: they are linked by the codes' own scores, as Qdrant's
quantized scorer does, which matches Edge's recall), but the
index then stores one code per row instead of the float vector, so the walk and the memory
it touches are the quantized ones; `tessera.shard.search` rescores with the original
vectors, which the segment's dense storage still holds. A quantized graph is never
extended (new links would come from the codes): the optimizer rebuilds it.

    scalar  int8     IndexHNSWSQ QT_8bit, per-dimension ranges (`quantile`: the ranges of
                     the central `quantile` share of the values, faiss's RS_quantiles)
    product xN       IndexHNSWPQ: one 8-bit code per N/4 dimensions (x4: 1 byte per
                     dimension ... x64: 1 byte per 16), dimensions zero-padded to fit
    binary           IndexBinaryHNSW over bit codes, Hamming distance (BinaryCodec, in
                     tessera.segment.binary_codec: Qdrant's encodings, two_bits and
                     one_and_half_bits with per-dimension statistics of the segment's
                     vectors): one_bit 1 bit per dimension, two_bits 2, one_and_half_bits 1.5
    turbo   bitsB    bits1 and bits1_5 on Cosine vectors (version 2): Qdrant's TQ+ codes
                     and scores, bit for bit (TurboCodec, in tessera.segment.turbo_codec:
                     a Hadamard rotation, 1 bit per rotated coordinate with per-coordinate
                     shift and scale from the segment's quantiles; bits1_5 rotates into a
                     1.5x wider space), a graph linked by the codes' scores, the walk's beam
                     ranked by Qdrant's normalised quantized cosine.
                     Otherwise (bits8, bits4, bits2; bits1 and bits1_5 on Dot and Euclid; and
                     every turbo segment written before version 2), TurboQuant's recipe:
                     a random rotation (faiss RandomRotationMatrix, saved in the index)
                     spreads every vector's energy evenly over the coordinates, then each
                     rotated coordinate gets its own Lloyd-Max codebook of 2^B levels (a
                     product quantizer with one sub-vector per coordinate: bits8 256
                     levels, bits4 16, bits2 4, bits1 2; bits1_5 one 3-bit code per pair of
                     coordinates), fitted to the segment's vectors (Qdrant fixes it for
                     Gaussian coordinates).

faiss has no quantized L1 distance: Manhattan vectors keep a float graph for scalar,
product and turbo quantization (binary works for every distance).

Walks: faiss scores byte codes with a table lookup per byte but reads narrower ones bit by
bit, so a product quantizer of 4, 2 or 1-bit codes (turbo's per-coordinate levels) is
regrouped into one 8-bit sub-quantizer per byte of code (`byte_sub_quantizers`: the same
code bytes, the same distances summed in another grouping) when the graph is built or
loaded. None of these graphs holds faiss's code-to-code table (M x 256 x 256 floats per
product quantizer, which only linking a graph by its codes would use).

Persistence: the faiss file holds the codes, the trained codebooks and the rotation, so a
load rebuilds nothing. A turbo graph written before the regrouping (4-bit sub-quantizers,
one per coordinate) is regrouped as it loads; written since, it holds the byte
sub-quantizers (the same code bytes). A binary graph's file does not say which encoding made
its codes: `codec_meta` goes into the segment manifest beside the file's crc and comes back at
load (`BinaryCodec.meta`: encoding, version, and the statistics two_bits and one_and_half_bits
encode with; an entry without "version" is read with the version 1 encoding it was
written with). A version 2 turbo graph (a bare IndexHNSWPQ whose codes are Qdrant's) has
the entry `TurboCodec.meta` (kind "turbo": bits, the TQ+ shift and scale, the walk's
query scale); a turbo graph without it (version 1: IndexPreTransform over a rotated
product quantizer, everything in the file) is read as it was written.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from tessera.collection_config import CollectionConfig

# Re-exported: the graph code (segment.ann_index) takes the codec from here.
from tessera.segment.binary_codec import BinaryCodec as BinaryCodec

FloatArray = npt.NDArray[np.float32]
CodeArray = npt.NDArray[np.uint8]

# Training uses at most this many vectors (k-means cost grows with it, quality barely).
TRAIN_SAMPLE = 20_000
PQ_TRAIN_SAMPLE = 5_000
_PQ_DIMS_PER_CODE = {"x4": 1, "x8": 2, "x16": 4, "x32": 8, "x64": 16}
# TurboQuant bit sizes: (coordinates per code, bits per code).
_TURBO = {
    "bits8": (1, 8), "bits4": (1, 4), "bits2": (1, 2), "bits1": (1, 1), "bits1_5": (2, 3)
}  # fmt: skip


def quantization_for(config: CollectionConfig, name: str) -> dict[str, Any] | None:
    """The quantization that applies to a vector name: its own, else the collection's."""
    params = config.vectors.get(name)
    if params is not None and params.quantization_config is not None:
        return params.quantization_config
    return config.quantization_config


def default_rescoring(quantization: dict[str, Any] | None) -> bool:
    """Whether a search rescores a quantized walk's results with the original vectors when
    it does not say (Qdrant's `default_rescoring`): binary and TurboQuant under 4 bits do,
    scalar, product and TurboQuant at 4 bits answer the codes' scores."""
    if not quantization:
        return False
    if "binary" in quantization:
        return True
    if "turbo" in quantization:
        return (quantization["turbo"] or {}).get("bits") in ("bits1", "bits1_5", "bits2")
    return False


def keeps_in_ram(quantization: dict[str, Any] | None) -> bool:
    """`always_ram` (or `memory` pinned / cached): the quantized codes are read into RAM
    even when the vectors are on disk; otherwise they follow the vectors' placement."""
    if not quantization:
        return False
    body = next(iter(quantization.values()))
    memory = body.get("memory")
    if memory is not None:
        return bool(memory in ("pinned", "cached"))
    return bool(body.get("always_ram"))


def is_binary(quantization: dict[str, Any] | None) -> bool:
    return bool(quantization) and "binary" in quantization  # type: ignore[operator]


def applies(quantization: dict[str, Any] | None, distance: str) -> bool:
    """Whether this quantization builds a quantized graph for `distance`."""
    if not quantization:
        return False
    return is_binary(quantization) or distance != "Manhattan"


def _sample(data: FloatArray) -> FloatArray:
    if len(data) <= TRAIN_SAMPLE:
        return data if len(data) else np.zeros((1, data.shape[1]), dtype=np.float32)
    rows = np.random.default_rng(0).choice(len(data), TRAIN_SAMPLE, replace=False)
    return data[np.sort(rows)]


def _kmeans(xs: FloatArray, k: int, rng: np.random.Generator, iters: int = 8) -> FloatArray:
    """Lloyd's algorithm for one sub-quantizer's codebook. One dimension (scalar codes:
    product x4 and turbo) starts from quantiles and assigns by sorted boundaries."""
    n, dsub = xs.shape
    if dsub == 1:
        values = np.sort(xs[:, 0])
        cents = np.quantile(values, (np.arange(k) + 0.5) / k).astype(np.float32)
        for _ in range(iters):
            bounds = (cents[1:] + cents[:-1]) / 2
            starts = np.concatenate([[0], np.searchsorted(values, bounds), [n]])
            sums = np.add.reduceat(values, np.minimum(starts[:-1], n - 1))
            counts = np.diff(starts)
            cents = np.where(counts > 0, sums / np.maximum(counts, 1), cents).astype(np.float32)
            cents.sort()
        return cents.reshape(k, 1)
    centroids = xs[rng.choice(n, k, replace=n < k)].astype(np.float32)
    norms = np.einsum("ij,ij->i", xs, xs)
    for _ in range(iters):
        dists = norms[:, None] - 2 * xs @ centroids.T + np.einsum("ij,ij->i", centroids, centroids)
        nearest = dists.argmin(axis=1)
        counts = np.bincount(nearest, minlength=k)
        filled = counts > 0
        for j in range(dsub):
            sums = np.bincount(nearest, weights=xs[:, j], minlength=k)
            centroids[filled, j] = sums[filled] / counts[filled]
    return centroids


def _train_pq(index: Any, sample: FloatArray) -> None:
    """Trains an IndexHNSWPQ's codebooks in numpy: faiss's k-means per sub-quantizer costs
    minutes for hundreds of them, this seconds."""
    storage: Any = faiss.downcast_index(index.storage)
    pq = storage.pq
    m, ksub, dsub = int(pq.M), int(pq.ksub), int(pq.dsub)
    rng = np.random.default_rng(0)
    rows = sample[rng.choice(len(sample), min(len(sample), PQ_TRAIN_SAMPLE), replace=False)]
    books = np.empty((m, ksub, dsub), dtype=np.float32)
    for sub in range(m):
        part = np.ascontiguousarray(rows[:, sub * dsub : (sub + 1) * dsub])
        books[sub] = _kmeans(part, ksub, rng)
    faiss.copy_array_to_vector(books.ravel(), pq.centroids)
    storage.is_trained = True
    index.is_trained = True


def _pq_bits(n: int, wanted: int) -> int:
    """k-means needs a training vector per centroid: tiny segments get smaller codebooks."""
    return int(max(1, min(wanted, int(np.log2(max(n, 2))))))


def build_float_quantized(
    data: FloatArray, metric: Any, m: int, ef_construct: int, quantization: dict[str, Any]
) -> Any:
    """A trained, empty faiss HNSW over scalar, product or turbo codes of `data`'s rows."""
    dim = data.shape[1]
    sample = _sample(data)
    index: Any
    if "scalar" in quantization:
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, m, metric)  # type: ignore[arg-type]
        quantile = quantization["scalar"].get("quantile")
        if quantile is not None and quantile < 1.0:
            sq = faiss.downcast_index(index.storage).sq  # type: ignore[attr-defined]
            sq.rangestat = faiss.ScalarQuantizer.RS_quantiles
            sq.rangestat_arg = (1.0 - float(quantile)) / 2
        index.hnsw.efConstruction = ef_construct
        index.train(sample)
        return index
    if "product" in quantization:
        per_code = _PQ_DIMS_PER_CODE[quantization["product"]["compression"]]
        codes = -(-dim // per_code)
        padded = codes * per_code
        inner: Any = faiss.IndexHNSWPQ(padded, codes, m, _pq_bits(len(sample), 8), metric)  # type: ignore[call-arg]
        inner.hnsw.efConstruction = ef_construct
        if padded == dim:
            _train_pq(inner, sample)
            return inner
        # Zero dimensions change no distance: a fixed identity-and-zeros map pads them.
        pad = faiss.RemapDimensionsTransform(dim, padded, True)  # type: ignore[arg-type]
        _train_pq(inner, pad.apply(sample))
        index = faiss.IndexPreTransform(pad, inner)
        index.is_trained = True
        return index
    per_code, bits = _TURBO[quantization["turbo"].get("bits") or "bits4"]
    codes = -(-dim // per_code)
    padded = codes * per_code
    rotation = faiss.RandomRotationMatrix(dim, padded)
    rotation.init(1234)
    inner = faiss.IndexHNSWPQ(padded, codes, m, _pq_bits(len(sample), bits), metric)  # type: ignore[call-arg]
    inner.hnsw.efConstruction = ef_construct
    _train_pq(inner, rotation.apply(sample))
    index = faiss.IndexPreTransform(rotation, inner)
    index.is_trained = True
    return index


def fill_storage(index: Any, data: FloatArray, encode: Any) -> None:
    """Adds `data`'s rows to a quantized HNSW's code storage only (no graph links):
    `encode` turns them into bit codes (binary), a pre-transform pads or rotates them."""
    inner = hnsw_of(index)
    storage = inner.storage
    if not isinstance(index, faiss.IndexBinary):
        storage = faiss.downcast_index(storage)
    step = 8192
    for start in range(0, len(data), step):
        chunk = np.ascontiguousarray(data[start : start + step])
        if encode is not None:
            storage.add(encode(chunk))
        elif isinstance(index, faiss.IndexPreTransform):
            storage.add(index.chain.at(0).apply(chunk))  # type: ignore[attr-defined]
        else:
            storage.add(chunk)


def byte_sub_quantizers(index: Any) -> None:
    """Regroups, in place, the product quantizer of an HNSW over codes narrower than a byte
    (turbo's 4, 2 and 1-bit levels per coordinate) into one 8-bit sub-quantizer per byte of
    code: centroid v of a byte's sub-quantizer is its sub-codes' centroids side by side (the
    low bits of v are the first sub-code's, as faiss packs them). The codes stay byte for
    byte what they were and a distance is the same sum of the same terms, grouped; but faiss
    scores byte codes with one table lookup per byte, and narrower ones by reading them bit by
    bit: a turbo 4-bit walk of 20k x 256 at hnsw_ef 64 went from 504 to 128 us a query, with
    the same results. A quantizer of byte codes, or whose codes do not fill whole bytes, stays
    as it is (so this is idempotent)."""
    inner = hnsw_of(index)
    if not isinstance(inner, faiss.IndexHNSWPQ):
        return
    storage: Any = faiss.downcast_index(inner.storage)
    pq = storage.pq
    m, bits, dsub = int(pq.M), int(pq.nbits), int(pq.dsub)
    if bits >= 8 or 8 % bits or m % (8 // bits):
        return
    per_byte = 8 // bits
    books = faiss.vector_to_array(pq.centroids).reshape(m, 1 << bits, dsub)
    byte = np.arange(256)
    grouped = np.concatenate(
        [
            books[j::per_byte][:, (byte >> (j * bits)) & ((1 << bits) - 1), :]
            for j in range(per_byte)
        ],
        axis=2,
    )
    regrouped = faiss.ProductQuantizer(int(pq.d), m // per_byte, 8)
    faiss.copy_array_to_vector(
        np.ascontiguousarray(grouped, dtype=np.float32).ravel(), regrouped.centroids
    )
    assert int(regrouped.code_size) == int(pq.code_size)
    storage.pq = regrouped


def transplant_graph(index: Any, graph: Any) -> None:
    """Gives a quantized HNSW (codes already stored, same order) the links of `graph`, an
    HNSW built over the float vectors."""
    inner = hnsw_of(index)
    inner.hnsw = graph.hnsw
    inner.ntotal = graph.ntotal
    index.ntotal = graph.ntotal


def hnsw_of(index: Any) -> Any:
    """The faiss HNSW index inside a (possibly pre-transformed) quantized index."""
    if isinstance(index, faiss.IndexPreTransform):
        return faiss.downcast_index(index.index)
    return index


def code_bytes(index: Any) -> int:
    """Bytes of quantized codes (or float vectors) the index stores, graph links aside."""
    if isinstance(index, faiss.IndexBinary):
        return int(index.ntotal) * int(index.code_size)
    storage = faiss.downcast_index(hnsw_of(index).storage)
    return int(storage.ntotal) * int(storage.sa_code_size())


def build_binary(codec: BinaryCodec, m: int, ef_construct: int) -> Any:
    index = faiss.IndexBinaryHNSW(codec.bits, m)
    index.hnsw.efConstruction = ef_construct
    return index


def pq_codes_view(index: Any) -> CodeArray:
    """The codes an HNSW over a product quantizer stores, as a read-only numpy view."""
    storage = faiss.downcast_index(hnsw_of(index).storage)
    n, size = int(storage.ntotal), int(storage.sa_code_size())
    flat = faiss.rev_swig_ptr(storage.codes.data(), n * size)  # type: ignore[attr-defined]
    view: CodeArray = np.asarray(flat).reshape(n, size)
    view.flags.writeable = False
    return view


def binary_codes_view(index: Any) -> CodeArray:
    """The codes a binary HNSW stores, as a read-only numpy view (no copy)."""
    storage = faiss.downcast_IndexBinary(index.storage)
    n, size = int(storage.ntotal), int(storage.code_size)
    flat = faiss.rev_swig_ptr(storage.xb.data(), n * size)  # type: ignore[attr-defined]
    view: CodeArray = np.asarray(flat).reshape(n, size)
    view.flags.writeable = False
    return view
