"""The one adapter to the native ANN library: faiss HNSW, filtered from a bitmap in C++.

faiss ids are segment offsets: every row of the dense matrix is added, rows without a vector
included, and the search selector (the caller's candidate mask: live, filtered, has vector)
keeps them out. faiss HNSW cannot delete, which the same mask also covers; the optimizer
rebuilds segments whose deleted share grows.

Scores come back as Qdrant reports them: inner product for Cosine (vectors normalised) and
Dot, the Euclidean distance (faiss gives its square) and the Manhattan distance.
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


def idle_since(seconds: float) -> bool:
    """No update anywhere in the process for `seconds`."""
    return time.monotonic() - _last_write >= seconds


def add_in_chunks(index: Any, data: FloatArray) -> None:
    for start in range(0, len(data), _CHUNK):
        busy = time.monotonic() - _last_write < 1.0
        faiss.omp_set_num_threads(1 if busy else _CPUS)
        index.add(data[start : start + _CHUNK])
    faiss.omp_set_num_threads(_CPUS)


def _lift(vectors: FloatArray, norm2: float) -> FloatArray:
    lengths = np.einsum("ij,ij->i", vectors, vectors)
    extra = np.sqrt(np.maximum(norm2 - lengths, 0)).astype(np.float32)
    return np.ascontiguousarray(np.hstack([vectors, extra[:, None]]), dtype=np.float32)


class _OwnedView(np.ndarray):  # type: ignore[type-arg]
    """An array over memory owned by `owner`; every view derived from it keeps it alive."""

    owner: Any = None


class HnswIndex:
    def __init__(
        self, index: Any, distance: str, lift_norm2: float | None = None, mapped: bool = False
    ) -> None:
        self.index = index
        # The stored vectors are a read-only map of the file (on_disk): faiss cannot grow a
        # copy of it in place, so `extended` copies through a serialised, owned index.
        self.mapped = mapped
        self.distance = distance
        # Dot only: M^2 of the lifting (see _METRIC); every stored row has this squared norm.
        self.lift_norm2 = lift_norm2
        # int8 scalar quantization: the graph walks quantized vectors, results are approximate
        # and the caller rescores them with the original vectors.
        self.quantized = isinstance(index, faiss.IndexHNSWSQ)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls,
        vectors: FloatArray,
        distance: str,
        m: int,
        ef_construct: int,
        quantization: dict[str, Any] | None = None,
    ) -> HnswIndex:
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        lift_norm2 = None
        if distance == "Dot":
            lengths = np.einsum("ij,ij->i", data, data) if len(data) else np.zeros(1)
            lift_norm2 = float(lengths.max(initial=0.0)) * 1.0001 + 1e-12
            data = _lift(data, lift_norm2)
        dim = data.shape[1]
        # faiss's scalar quantizer has no L1 distance: Manhattan graphs stay unquantized.
        index: Any
        if quantization and "scalar" in quantization and distance != "Manhattan":
            index = faiss.IndexHNSWSQ(
                dim,
                faiss.ScalarQuantizer.QT_8bit,  # type: ignore[arg-type]
                max(m, 2),
                _METRIC[distance],
            )
            index.hnsw.efConstruction = max(ef_construct, 4)
            index.train(data if len(data) else np.zeros((1, dim), dtype=np.float32))
        else:
            index = faiss.IndexHNSWFlat(dim, max(m, 2), _METRIC[distance])
            index.hnsw.efConstruction = max(ef_construct, 4)
        add_in_chunks(index, data)
        return cls(index, distance, lift_norm2)

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
        self, query: FloatArray, k: int, ef: int, mask: BoolArray | None, flat: bool = False
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Best k offsets among `mask` (length >= index size) and their scores, best first.

        `flat`: an exhaustive scan of the stored vectors in C++ (GEMV and heap, no copy of
        the candidates, GIL released) instead of the graph walk: the exact path for large
        candidate sets of a segment that has a graph."""
        if not getattr(_search_thread, "single", False):
            # One query per call: an OpenMP team per search only makes concurrent searches
            # fight over the cores. The setting is per thread, so builds keep theirs.
            faiss.omp_set_num_threads(1)
            _search_thread.single = True
        selector, _bitmap = self._selector(mask)
        target = faiss.downcast_index(self.index.storage) if flat else self.index
        if flat:
            params = None if selector is None else faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        elif selector is None:
            params = faiss.SearchParametersHNSW(efSearch=max(ef, k))  # type: ignore[attr-defined]
        else:
            params = faiss.SearchParametersHNSW(efSearch=max(ef, k), sel=selector)  # type: ignore[attr-defined]
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if self.lift_norm2 is not None:
            q = np.hstack([q, np.zeros((1, 1), dtype=np.float32)])
        distances, labels = target.search(q, k, params=params)
        labels = labels[0]
        found = labels >= 0
        scores = distances[0][found]
        if self.lift_norm2 is not None:
            scores = (float(q[0] @ q[0]) + self.lift_norm2 - scores) / 2
        elif self.distance == "Euclid":
            scores = np.sqrt(np.maximum(scores, 0))
        return scores.astype(np.float32), labels[found].astype(np.int64)

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
        vectors do not fit the Dot lifting: the caller rebuilds."""
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.lift_norm2 is not None:
            if len(data) and float(np.einsum("ij,ij->i", data, data).max()) > self.lift_norm2:
                return None
            data = _lift(data, self.lift_norm2)
        if self.mapped:
            index = faiss.deserialize_index(faiss.serialize_index(self.index))
        else:
            index = faiss.clone_index(self.index)
        add_in_chunks(index, data)
        return HnswIndex(index, self.distance, self.lift_norm2)

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
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, distance: str, mmap: bool = False) -> HnswIndex:
        """`mmap`: the stored vectors stay in the file (on_disk), paged in by the kernel."""
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        index = faiss.read_index(str(path), flags)
        lift_norm2 = None
        if distance == "Dot":
            first = index.reconstruct(0) if index.ntotal else np.zeros(1, dtype=np.float32)
            lift_norm2 = float(first @ first)
        return cls(index, distance, lift_norm2, mapped=mmap)
