"""The one adapter to the native ANN library: faiss HNSW, filtered from a bitmap in C++.

faiss ids are segment offsets: every row of the dense matrix is added, rows without a vector
included, and the search selector (the caller's candidate mask: live, filtered, has vector)
keeps them out. faiss HNSW cannot delete, which the same mask also covers; the optimizer
rebuilds segments whose deleted share grows.

Scores come back as Qdrant reports them: inner product for Cosine (vectors normalised) and
Dot, the Euclidean distance (faiss gives its square) and the Manhattan distance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

_METRIC = {
    "Cosine": faiss.METRIC_INNER_PRODUCT,
    "Dot": faiss.METRIC_INNER_PRODUCT,
    "Euclid": faiss.METRIC_L2,
    "Manhattan": faiss.METRIC_L1,
}


class HnswIndex:
    def __init__(self, index: Any, distance: str) -> None:
        self.index = index
        self.distance = distance

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, vectors: FloatArray, distance: str, m: int, ef_construct: int) -> HnswIndex:
        dim = vectors.shape[1]
        index = faiss.IndexHNSWFlat(dim, max(m, 2), _METRIC[distance])
        index.hnsw.efConstruction = max(ef_construct, 4)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, distance)

    def search(
        self, query: FloatArray, k: int, ef: int, mask: BoolArray
    ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """Best k offsets among `mask` (length >= index size) and their scores, best first."""
        n = self.size
        candidates = mask[:n]
        if candidates.all():
            # Nothing to exclude: a plain graph walk, no selector test per visited node.
            params = faiss.SearchParametersHNSW(efSearch=max(ef, k))  # type: ignore[attr-defined]
        else:
            bitmap = np.packbits(candidates, bitorder="little")
            selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
            params = faiss.SearchParametersHNSW(efSearch=max(ef, k), sel=selector)  # type: ignore[attr-defined]
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        distances, labels = self.index.search(q, k, params=params)
        labels = labels[0]
        found = labels >= 0
        scores = distances[0][found]
        if self.distance == "Euclid":
            scores = np.sqrt(np.maximum(scores, 0))
        return scores.astype(np.float32), labels[found].astype(np.int64)

    def extended(self, vectors: FloatArray) -> HnswIndex:
        """A copy of this graph with more vectors inserted (ids continue from `size`); the
        original stays untouched for the searches still running on it."""
        index = faiss.clone_index(self.index)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return HnswIndex(index, self.distance)

    def vectors_view(self) -> FloatArray:
        """The vectors faiss stores, as a numpy view (no copy): a segment with a graph keeps
        one copy of its vectors, not two."""
        n, d = self.size, int(self.index.d)
        storage = faiss.downcast_index(self.index.storage)
        flat = faiss.rev_swig_ptr(storage.get_xb(), n * d)  # type: ignore[attr-defined]
        view: FloatArray = np.asarray(flat).reshape(n, d)
        view.flags.writeable = False
        return view

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, distance: str) -> HnswIndex:
        return cls(faiss.read_index(str(path)), distance)
