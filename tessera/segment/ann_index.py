"""The one adapter to the native ANN library: faiss HNSW, filtered from a bitmap in C++.

faiss ids are segment offsets: every row of the dense matrix is added, rows without a vector
included, and the search selector (the caller's candidate mask: live, filtered, has vector)
keeps them out. faiss HNSW cannot delete, which the same mask also covers; the optimizer
rebuilds segments whose deleted share grows.

Scores come back as Qdrant reports them: inner product for Cosine (vectors normalised) and
Dot, the Euclidean distance (faiss gives its square) and the Manhattan distance.

A quantized vector name (scalar, product, binary, turbo) gets a graph over codes instead of
float vectors: `tessera.segment.quantization` says how each is built and persisted.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from tessera.fileformat import FormatError
from tessera.query.exact_knn import native_function
from tessera.segment import mapped_pages
from tessera.segment.quantization import (
    BinaryCodec,
    applies,
    binary_codes_view,
    build_binary,
    build_float_quantized,
    byte_sub_quantizers,
    fill_storage,
    is_binary,
    pq_codes_view,
    transplant_graph,
)
from tessera.segment.turbo_codec import TurboCodec
from tessera.segment.turbo_codec import applies as turbo_v2_applies

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

# Dot is not a metric: its graph is built in L2 over vectors lifted by one dimension
# (x -> [x, sqrt(M^2 - |x|^2)], q -> [q, 0]), where nearest in L2 is largest dot product.
# A plain inner-product graph loses most of its filtered recall on clustered data.
_METRIC = {
    "Cosine": faiss.METRIC_INNER_PRODUCT,
    "Dot": faiss.METRIC_L2,
    "Euclid": faiss.METRIC_L2,
    "Manhattan": faiss.METRIC_L1,
}


_search_thread = threading.local()
_CHUNK = 8192
_CPUS = os.cpu_count() or 1
_last_write = 0.0  # monotonic time of the last update anywhere in the process


def note_write() -> None:
    """Called by the write path. While updates arrive, graph building uses one core so that
    ingest keeps the others; when writes pause it takes every core again."""
    global _last_write
    _last_write = time.monotonic()


def distance_count() -> int:
    """faiss's count of the distances its graph walks have computed (process-wide, growing):
    a request's hardware meter reads it before and after its walk."""
    return int(faiss.cvar.hnsw_stats.ndis)  # type: ignore[attr-defined]


def idle_since(seconds: float) -> bool:
    """No update anywhere in the process for `seconds`."""
    return time.monotonic() - _last_write >= seconds


_UNFILTERED_PARAMS: dict[int, Any] = {}


def _unfiltered_params(ef: int) -> Any:
    """faiss's search parameters for an unfiltered walk with beam `ef`, made once per `ef`
    (a SWIG object and two attribute sets per query otherwise); faiss only reads them."""
    params = _UNFILTERED_PARAMS.get(ef)
    if params is None:
        if len(_UNFILTERED_PARAMS) >= 256:
            _UNFILTERED_PARAMS.clear()
        params = _UNFILTERED_PARAMS[ef] = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]
    return params


def _walk_params(ef: int, selector: Any) -> Any:
    """faiss's parameters of a graph walk with beam `ef`, filtered by `selector` (None: the
    shared unfiltered ones). The caller keeps the selector and its bitmap alive."""
    if selector is None:
        return _unfiltered_params(ef)
    return faiss.SearchParametersHNSW(efSearch=ef, sel=selector)  # type: ignore[attr-defined]


def _search_one(
    index: Any, query: npt.NDArray[Any], k: int, params: Any, binary: bool = False
) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    """faiss's search of one query (1, d), straight to its C++ call: its Python wrapper
    checks and allocates per call what a single query does not need (~5 us a query).
    Returns the distances (int32 Hamming distances for a `binary` index over bit codes)
    and labels (k,), -1 padded."""
    distances = np.empty(k, dtype=np.int32 if binary else np.float32)
    labels = np.empty(k, dtype=np.int64)
    ptr = _swig_ptr
    index.search_c(1, ptr(query), k, ptr(distances), ptr(labels), params)
    return distances, labels


# faiss's `swig_ptr` itself, without its Python wrapper (a frame per call, three per search)
_swig_ptr = native_function("swig_ptr")

# faiss allocates (and zero-fills) each vector a file declares before it reads its bytes, up
# to a process-wide limit of 1 TiB: a graph file from an uploaded snapshot, a few hundred
# bytes long, could claim gigabytes. No vector a file holds is longer than the file, so
# each read runs with that limit (the setting is global: one read at a time changes it).
_DESERIALIZE_LOCK = threading.Lock()


def _read_bounded(size: int, read: Any, *args: Any) -> Any:
    """`read(*args)` (a faiss index reader) allowed vectors of at most `size` bytes."""
    with _DESERIALIZE_LOCK:
        before = faiss.get_deserialization_vector_byte_limit()
        faiss.set_deserialization_vector_byte_limit(max(size, 1))
        try:
            return read(*args)
        finally:
            faiss.set_deserialization_vector_byte_limit(before)


def _copy_bounded(index: Any, binary: bool) -> Any:
    """A copy of `index` through its serialized bytes."""
    if binary:
        data = faiss.serialize_index_binary(index)
        return _read_bounded(data.nbytes, faiss.deserialize_index_binary, data)
    data = faiss.serialize_index(index)
    return _read_bounded(data.nbytes, faiss.deserialize_index, data)


def add_in_chunks(index: Any, data: FloatArray, codec: BinaryCodec | None = None) -> None:
    for start in range(0, len(data), _CHUNK):
        busy = time.monotonic() - _last_write < 1.0
        faiss.omp_set_num_threads(1 if busy else _CPUS)
        chunk = data[start : start + _CHUNK]
        index.add(codec.encode(chunk) if codec is not None else chunk)
    faiss.omp_set_num_threads(_CPUS)


def reserve(index: Any, total: int) -> None:
    """Room in a float graph (`IndexHNSWFlat`) for `total` points before they are added.
    faiss grows its vector and link tables a chunk at a time, and each doubling held the old
    table and the new one at once: the build's peak carried ~0.8x more than the vectors
    (measured at 300k x 128: 320 MiB of growth against 191 reserved). A resize up and back
    down leaves the capacity (std::vector never gives it back on a shrink)."""
    if not isinstance(index, faiss.IndexHNSWFlat):
        return
    storage: Any = faiss.downcast_index(index.storage)
    hnsw: Any = index.hnsw
    m, level0 = int(hnsw.nb_neighbors(1)), int(hnsw.nb_neighbors(0))
    # A point's links: level 0's, plus m per level above it (1 / (m - 1) levels on average).
    links = int(total * (level0 + m / max(m - 1, 1)) * 1.02) + 4096
    for table, size in ((storage.codes, total * int(storage.code_size)), (hnsw.neighbors, links)):
        if not table.is_owned or table.size() >= size:
            continue
        now = table.size()
        table.resize(size)
        table.resize(now)


def _lift(vectors: FloatArray, norm2: float) -> FloatArray:
    lengths = np.einsum("ij,ij->i", vectors, vectors)
    extra = np.sqrt(np.maximum(norm2 - lengths, 0)).astype(np.float32)
    return np.ascontiguousarray(np.hstack([vectors, extra[:, None]]), dtype=np.float32)


class _OwnedView(np.ndarray):  # type: ignore[type-arg]
    """An array over memory owned by `owner`; every view derived from it keeps it alive."""

    owner: Any = None


# The largest graph degree and build beam faiss is given (see `HnswIndex.build`).
MAX_M = 1024
MAX_EF_CONSTRUCT = 1 << 16


class HnswIndex:
    def __init__(
        self,
        index: Any,
        distance: str,
        lift_norm2: float | None = None,
        mapped: bool = False,
        codec: BinaryCodec | None = None,
        turbo: TurboCodec | None = None,
    ) -> None:
        self.index = index
        # Read on every search; an index is complete when it is wrapped (`extended` adds to a
        # copy and wraps that), so its size never changes.
        self._size = int(index.ntotal)
        # The stored vectors are a read-only map of the file (on_disk): faiss cannot grow a
        # copy of it in place, so `extended` copies through a serialised, owned index.
        self.mapped = mapped
        self.distance = distance
        # Dot only: M^2 of the lifting (see _METRIC); every stored row has this squared norm.
        self.lift_norm2 = lift_norm2
        # A quantized graph (tessera.segment.quantization) walks codes: results are
        # approximate and the caller rescores them with the original vectors.
        self.quantized = not isinstance(index, faiss.IndexHNSWFlat)
        if self.quantized and codec is None:
            byte_sub_quantizers(index)  # walks read byte codes a lookup at a time
        # Binary quantization: how vectors (and queries) become the graph's bit codes.
        self.codec = codec
        # A quantized Cosine graph measures L2 between unit vectors: cos = 1 - d^2 / 2.
        metric = getattr(index, "metric_type", None)
        self.cosine_l2 = distance == "Cosine" and metric == faiss.METRIC_L2
        self._codes = binary_codes_view(index) if codec is not None else None
        # Turbo 1 / 1.5 bits (version 2): Qdrant's TQ+ codes (segment.turbo_codec).
        self.turbo = turbo
        self._turbo_codes = pq_codes_view(index) if turbo is not None else None

    @property
    def size(self) -> int:
        return self._size

    @classmethod
    def build(
        cls,
        vectors: FloatArray,
        distance: str,
        m: int,
        ef_construct: int,
        quantization: dict[str, Any] | None = None,
    ) -> HnswIndex:
        # Qdrant bounds neither: faiss takes C ints and reserves 2 * m links per point, so
        # an absurd value (2^64 - 1) would fail every build; the record keeps the config's.
        m, ef_construct = min(m, MAX_M), min(ef_construct, MAX_EF_CONSTRUCT)
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        raw = data
        lift_norm2 = None
        if distance == "Dot":
            lengths = np.einsum("ij,ij->i", data, data) if len(data) else np.zeros(1)
            lift_norm2 = float(lengths.max(initial=0.0)) * 1.0001 + 1e-12
            data = _lift(data, lift_norm2)
        binary = is_binary(quantization)
        if binary:
            # As Qdrant does, a binary graph is linked by the codes' own scores (Hamming):
            # faiss builds the links while adding the codes; no float graph is needed.
            assert quantization is not None
            codec = BinaryCodec.from_config(raw.shape[1], quantization).fitted(raw)
            binary_index = build_binary(codec, max(m, 2), max(ef_construct, 4))
            add_in_chunks(binary_index, raw, codec)
            return cls(binary_index, distance, None, codec=codec)
        if turbo_v2_applies(quantization, distance):
            # As Qdrant does, the graph is linked by the codes' own (normalised) scores.
            assert quantization is not None
            bits = quantization["turbo"].get("bits")
            turbo = TurboCodec.fitted(raw, bits)
            codes = turbo.encode(raw)
            linked = faiss.IndexHNSWFlat(turbo.size, max(m, 2), faiss.METRIC_L2)
            linked.hnsw.efConstruction = max(ef_construct, 4)
            for start in range(0, len(codes), _CHUNK):
                add_in_chunks(linked, turbo.unit_dequantized(codes[start : start + _CHUNK]))
            turbo_index = turbo.empty_index(max(m, 2))
            storage: Any = faiss.downcast_index(turbo_index.storage)
            storage.add_sa_codes(np.ascontiguousarray(codes))
            transplant_graph(turbo_index, linked)
            return cls(turbo_index, distance, None, turbo=turbo)
        quantized = quantization is not None and applies(quantization, distance)
        # A quantized Cosine graph is walked in L2 (unit vectors rank alike): faiss's
        # PQ walks need a distance, and an HNSW built for similarities
        # carries that into the walk of the codes.
        metric = faiss.METRIC_L2 if quantized and distance == "Cosine" else _METRIC[distance]
        graph = faiss.IndexHNSWFlat(data.shape[1], max(m, 2), metric)
        graph.hnsw.efConstruction = max(ef_construct, 4)
        reserve(graph, len(data))
        add_in_chunks(graph, data)
        if quantization is None or not quantized:
            # faiss has no quantized L1 distance: Manhattan keeps a float graph.
            return cls(graph, distance, lift_norm2)
        # As Qdrant does, the graph's links come from the original vectors; only the walk
        # (and what it holds in memory) uses the codes. The float copy is dropped here.
        # Cosine scores convert back from L2 in search.
        index: Any = build_float_quantized(
            data, metric, max(m, 2), max(ef_construct, 4), quantization
        )
        fill_storage(index, data, None)
        transplant_graph(index, graph)
        return cls(index, distance, lift_norm2)

    def _walk(
        self, mask: BoolArray | None, ef: int, flat: bool, walks: dict[Any, Any] | None
    ) -> tuple[Any, Any]:
        """`_float_params` of this walk, kept in `walks` (a filter's cache entry) when given:
        a filter repeated query after query skips the bitmap and the SWIG objects (~55 us)."""
        key = (self._size, ef, flat)
        walk = walks.get(key) if walks is not None else None
        if walk is None:
            walk = self._float_params(mask, ef, flat)
            if walks is not None:
                if len(walks) >= 16:
                    walks.clear()
                walks[key] = walk
        return walk

    def _float_params(self, mask: BoolArray | None, ef: int, flat: bool) -> tuple[Any, Any]:
        """faiss's search parameters of a float graph (or its flat storage) for `mask`, and
        what they point at: the selector and its bitmap must live as long as they do."""
        selector, bitmap = self._selector(mask)
        if flat:
            params = None if selector is None else faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        else:
            params = _walk_params(ef, selector)
        return params, (selector, bitmap)

    def _selector(self, mask: BoolArray | None) -> tuple[Any, npt.NDArray[np.uint8] | None]:
        """faiss's filter for `mask`, or None when it keeps every indexed offset (then no
        selector test runs per visited node). The bitmap must outlive the search: the
        selector only points at it."""
        if mask is None:
            return None, None
        n = self.size
        candidates = mask[:n]
        if candidates.all():
            return None, None
        bitmap = np.packbits(candidates, bitorder="little")
        return faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap)), bitmap

    @property
    def exact_capable(self) -> bool:
        """Whether `search(..., flat=True)` scans the original vectors (exact scores)."""
        return not self.quantized and self.lift_norm2 is None

    def search(
        self,
        query: FloatArray,
        k: int,
        ef: int,
        mask: BoolArray | None,
        flat: bool = False,
        walks: dict[Any, Any] | None = None,
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Best k offsets among `mask` (length >= index size) and their scores, best first.

        `flat`: an exhaustive scan of the stored vectors in C++ (GEMV and heap, no copy of
        the candidates, GIL released) instead of the graph walk: the exact path for large
        candidate sets of a segment that has a graph. `walks`: where to keep faiss's search
        parameters for this mask (the filter's cache entry, which lives while `mask` is
        unchanged): a repeated filter then skips the bitmap and the SWIG objects."""
        if not getattr(_search_thread, "single", False):
            # One query per call: an OpenMP team per search only makes concurrent searches
            # fight over the cores. The setting is per thread, so builds keep theirs.
            faiss.omp_set_num_threads(1)
            _search_thread.single = True
        # `walk` stays referenced through the search: the selector in its parameters only
        # points at the bitmap it holds.
        if self.codec is not None:
            wide = max(k, ef) if self.codec.asymmetric else k
            walk = self._walk(mask, max(ef, wide), False, walks)
            return self._binary_search(query, k, wide, walk[0])
        if self.turbo is not None:
            wide = max(k, ef)
            walk = self._walk(mask, wide, False, walks)
            return self._turbo_search(query, k, wide, walk[0])
        if mask is None and not flat:  # `_walk`'s answer for an unfiltered walk, directly
            target, params = self.index, _unfiltered_params(max(ef, k))
        else:
            target = faiss.downcast_index(self.index.storage) if flat else self.index
            walk = self._walk(mask, max(ef, k), flat, walks)
            params = walk[0]
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if self.lift_norm2 is not None:
            q = np.hstack([q, np.zeros((1, 1), dtype=np.float32)])
        distances, labels = _search_one(target, q, k, params)
        if -1 in labels.tolist():  # fewer than k found: faiss pads with -1 (ndarray.all()
            found = labels >= 0  # costs more than this list for a top-k)
            distances, labels = distances[found], labels[found]
        scores: npt.NDArray[Any] = distances
        if self.lift_norm2 is not None:
            scores = (float(q[0] @ q[0]) + self.lift_norm2 - scores) / 2
        elif self.distance == "Euclid":
            scores = np.sqrt(np.maximum(scores, 0))
        elif self.cosine_l2 and not flat:
            scores = 1 - scores / 2
        return scores.astype(np.float32, copy=False), labels

    def _binary_search(
        self, query: FloatArray, k: int, wide: int, params: Any
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """The Hamming walk over bit codes (`params`: faiss's, with the beam and filter).
        Scores: the query's similarity with the codes' levels for Cosine and Dot, the
        Hamming distance otherwise; an asymmetric query encoding ranks a wider beam
        (`wide` results of the walk) by that similarity."""
        codec, codes = self.codec, self._codes
        assert codec is not None and codes is not None
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        code = np.ascontiguousarray(codec.encode(q))
        distances, labels = _search_one(self.index, code, wide, params, binary=True)
        found = labels >= 0
        labels, hamming = labels[found], distances[found]
        if codec.version >= 2 and not codec.asymmetric:
            # The walk's distances are the Hamming distances of the query's code to these
            # codes: symmetric_scores without encoding and comparing them again.
            similarity = np.asarray(codec.dim - 2 * hamming.astype(np.int64), dtype=np.float32)
        else:
            similarity = codec.query_scores(q[0], codes[labels]) if len(labels) else hamming
        if codec.asymmetric:
            order = np.argsort(-similarity, kind="stable")[:k]
            labels, similarity, hamming = labels[order], similarity[order], hamming[order]
        scores = similarity if self.distance in ("Cosine", "Dot") else hamming
        return np.asarray(scores, dtype=np.float32), labels

    def _turbo_search(
        self, query: FloatArray, k: int, wide: int, params: Any
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """The walk over TQ+ codes (L2, the rotated query scaled to the codes' mean
        length), its `wide` beam (max(k, hnsw_ef)) then ranked by Qdrant's quantized
        cosine; `params`: faiss's, with the beam and filter."""
        turbo, codes = self.turbo, self._turbo_codes
        assert turbo is not None and codes is not None
        rotated = turbo.query(query)
        walk = np.ascontiguousarray((rotated * turbo.norm).reshape(1, -1), dtype=np.float32)
        _distances, labels = _search_one(self.index, walk, wide, params)
        found = labels[labels >= 0]
        if not len(found):
            return np.zeros(0, dtype=np.float32), found
        scores = turbo.scores(rotated, codes[found])
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order], found[order]

    def flat_search_many(
        self, queries: FloatArray, k: int, mask: BoolArray
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Exact best k among `mask` for each of several queries (q, d), from the flat
        storage: BLAS blocks with a heap per query, the GIL released. (q, k) arrays; a
        label of -1 marks a missing result."""
        assert self.exact_capable
        selector, _bitmap = self._selector(mask)
        params = None
        if selector is not None:
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        storage = faiss.downcast_index(self.index.storage)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        distances, labels = storage.search(q, k, params=params)
        if self.distance == "Euclid":
            distances = np.sqrt(np.maximum(distances, 0))
        return distances.astype(np.float32), labels.astype(np.int64)

    def extended(self, vectors: FloatArray) -> HnswIndex | None:
        """A copy of this graph with more vectors inserted (ids continue from `size`); the
        original stays untouched for the searches still running on it. None when the new
        vectors do not fit the Dot lifting, or the graph is quantized: the caller rebuilds."""
        if self.quantized:
            # New links would come from the codes' distances (slow to compute, and worse
            # recall): a quantized graph is rebuilt over the float vectors instead.
            return None
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.lift_norm2 is not None:
            if len(data) and float(np.einsum("ij,ij->i", data, data).max()) > self.lift_norm2:
                return None
            data = _lift(data, self.lift_norm2)
        index: Any
        if self.codec is not None:
            index = _copy_bounded(self.index, binary=True)
        elif self.mapped or self.quantized:
            index = _copy_bounded(self.index, binary=False)
        else:
            index = faiss.clone_index(self.index)
        reserve(index, int(index.ntotal) + len(data))
        add_in_chunks(index, data, self.codec)
        return HnswIndex(index, self.distance, self.lift_norm2, codec=self.codec)

    def vectors_view(self) -> FloatArray | None:
        """The vectors faiss stores, as a numpy view (no copy): a segment with a graph keeps
        one copy of its vectors, not two."""
        if self.quantized or self.lift_norm2 is not None:
            return None
        n, d = self.size, int(self.index.d)
        storage = faiss.downcast_index(self.index.storage)
        flat = faiss.rev_swig_ptr(storage.get_xb(), n * d)  # type: ignore[attr-defined]
        # The memory belongs to the faiss index (heap or a file map): the view keeps this
        # object alive, so a view still in use (an optimizer copying rows outside the shard
        # lock) survives the segment swapping its index for a mapped one.
        view = np.asarray(flat).reshape(n, d).view(_OwnedView)
        view.owner = self
        view.flags.writeable = False
        return view

    def save(self, path: Path) -> None:
        if self.codec is not None:
            faiss.write_index_binary(self.index, str(path))
        else:
            faiss.write_index(self.index, str(path))

    def codec_meta(self) -> dict[str, Any] | None:
        """What the file alone does not say (kept in the segment manifest): a binary
        graph's encoding, a quantized Dot graph's lifting (its rows are approximate)."""
        if self.codec is not None:
            return {**self.codec.meta(), "query_encoding": self.codec.query_encoding}
        if self.turbo is not None:
            return self.turbo.meta()
        if self.quantized and self.lift_norm2 is not None:
            return {"kind": "float", "lift_norm2": self.lift_norm2}
        return None

    @classmethod
    def load(
        cls, path: Path, distance: str, mmap: bool = False, meta: dict[str, Any] | None = None
    ) -> HnswIndex:
        """`mmap`: the stored vectors stay in the file (on_disk), paged in by the kernel.
        `meta`: what `codec_meta` said when the file was written."""
        with open(path, "rb") as f:
            binary = f.read(4) == b"IBHf"
        if binary:
            codec = BinaryCodec.from_meta(meta)  # FormatError: the codes cannot be read
            size = path.stat().st_size
            binary_index: Any = _read_bounded(size, faiss.read_index_binary, str(path))
            if int(binary_index.d) != codec.bits:
                raise FormatError(f"{path}: {binary_index.d} bit codes, the codec says {codec}")
            return cls(binary_index, distance, None, codec=codec)
        # A product quantizer's code-to-code table (M x 256 x 256 floats: 32 MiB for 128
        # sub-quantizers) serves only to link a graph by its codes; these graphs are linked
        # before the codes are stored, never extended, and walked with query-to-code tables.
        flags = faiss.IO_FLAG_PQ_SKIP_SDC_TABLE
        if mmap:
            flags |= faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
        index: Any = _read_bounded(path.stat().st_size, faiss.read_index, str(path), flags)
        if mmap:
            mapped_pages.release(path)  # what faiss's check of the graph's links paged in
        if meta is not None and meta.get("kind") == "turbo":
            turbo = TurboCodec.from_meta(meta)  # FormatError: the codes cannot be read
            storage = getattr(index, "storage", None)
            if (
                not isinstance(index, faiss.IndexHNSWPQ)
                or storage is None
                or (int(faiss.downcast_index(storage).sa_code_size()) != turbo.code_size)
            ):
                raise FormatError(f"{path}: not the turbo graph its codec entry describes")
            return cls(index, distance, None, mapped=mmap, turbo=turbo)
        lift_norm2 = None
        if meta is not None and meta.get("lift_norm2") is not None:
            lift_norm2 = float(meta["lift_norm2"])
        elif distance == "Dot":
            first = index.reconstruct(0) if index.ntotal else np.zeros(1, dtype=np.float32)
            lift_norm2 = float(first @ first)
        return cls(index, distance, lift_norm2, mapped=mmap)
