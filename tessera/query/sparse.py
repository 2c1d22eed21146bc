"""Sparse vector scoring: dot products over shared indices, and Qdrant's IDF modifier.

A segment's sparse vectors form one `SparseMatrix`: rows are points (offsets), columns are
the distinct sparse indices the segment has seen, remapped to 0..vocab-1 (raw indices go up
to 2^32 - 1, far too wide for a column count). Scoring keeps the column-major (CSC) form,
which is an inverted index: a query only touches the postings of its own indices.

Qdrant semantics kept here:
- a nearest query scores only points that share at least one index with it; the others are
  not results at all (not even with score 0), so `score_sparse` reports the overlap;
- recommend / discover / context score a point without overlap as 0 (Qdrant's and local
  mode's `empty_is_zero`), so they use the scores and ignore the overlap;
- IDF: idf(i) = ln((N - n_i + 0.5) / (n_i + 0.5) + 1), n_i = the points whose vector has
  index i; it multiplies the *query* values. N is what Qdrant's own statistics count:
  collection-wide, the live points whose vector holds at least one index (Qdrant's sparse
  index does not index an empty vector, so `vector_count` leaves it out: a BM25 document of
  stopwords only is no document); over an `idf.corpus` filter, the matching points that
  hold the vector at all, empty or not (`collect_corpus_points` counts stored vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest

if TYPE_CHECKING:  # scipy (~0.3 s to import) loads on first use: only sparse vectors need it
    import scipy.sparse as sp

MAX_SPARSE_INDEX = 2**32 - 1


@dataclass(frozen=True)
class SparseMatrix:
    """The sparse vectors of one segment.

    `vocab` holds the sorted distinct raw indices; `csc` is (points x len(vocab)) float32 in
    compressed-column form, explicit zero values kept (a stored 0.0 still shares its index).
    `has_vector` marks rows that hold a vector at all (an empty vector counts as one).
    """

    vocab: npt.NDArray[np.int64]
    csc: sp.csc_matrix
    has_vector: npt.NDArray[np.bool_]

    @property
    def num_points(self) -> int:
        return int(self.csc.shape[0])

    @cached_property
    def nonempty_mask(self) -> npt.NDArray[np.bool_]:
        """`nonempty()` computed once (a write builds a new matrix); not to be written."""
        return np.bincount(self.csc.indices, minlength=self.num_points) > 0

    @classmethod
    def from_csr(cls, csr: Any, has_vector: npt.ArrayLike | None = None) -> SparseMatrix:
        """From a CSR keyed by raw sparse indices (columns = indices)."""
        m = _as_csr(csr)
        return build_sparse_flat(m.indptr, m.indices, m.data, has_vector)

    def nonempty(self) -> npt.NDArray[np.bool_]:
        """Rows holding at least one index (entry counts per row, from the CSC indices)."""
        return self.nonempty_mask.copy()


# A segment's sparse vectors: the remapped inverted form (fast), or any scipy CSR whose
# columns are the raw indices (scored in one pass over its entries).
SparseInput: TypeAlias = "SparseMatrix | sp.csr_matrix | sp.csr_array"


def validate_sparse(indices: npt.ArrayLike, values: npt.ArrayLike) -> None:
    """Reject what Qdrant rejects in a sparse vector (a 400, before anything is stored)."""
    idx = np.asarray(indices)
    val = np.asarray(values, dtype=np.float64)
    if idx.ndim != 1 or idx.shape != val.shape:
        raise BadRequest("Sparse vector indices and values must have the same length")
    if idx.size == 0:
        return
    if not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() > MAX_SPARSE_INDEX:
        raise BadRequest(f"Sparse vector indices must be integers in 0..{MAX_SPARSE_INDEX}")
    if np.unique(idx).size != idx.size:
        raise BadRequest("Sparse vector indices must be unique")
    if not np.isfinite(val).all():
        raise BadRequest("Sparse vector values must be finite numbers")


def build_sparse(
    vectors: Sequence[tuple[Sequence[int] | npt.ArrayLike, Sequence[float] | npt.ArrayLike] | None],
) -> SparseMatrix:
    """A segment's matrix from per-point (indices, values); None where a point has none."""
    lengths = np.fromiter(
        (0 if v is None else len(np.asarray(v[0])) for v in vectors),
        dtype=np.int64,
        count=len(vectors),
    )
    has_vector = np.fromiter((v is not None for v in vectors), dtype=np.bool_, count=len(vectors))
    present = [v for v in vectors if v is not None]
    if present:
        flat_idx = np.concatenate([np.asarray(v[0], dtype=np.int64).reshape(-1) for v in present])
        flat_val = np.concatenate([np.asarray(v[1], dtype=np.float32).reshape(-1) for v in present])
    else:
        flat_idx = np.empty(0, dtype=np.int64)
        flat_val = np.empty(0, dtype=np.float32)
    indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return build_sparse_flat(indptr, flat_idx, flat_val, has_vector)


def build_sparse_flat(
    indptr: npt.ArrayLike,
    indices: npt.ArrayLike,
    values: npt.ArrayLike,
    has_vector: npt.ArrayLike | None = None,
) -> SparseMatrix:
    """A segment's matrix from CSR-style flat arrays over raw indices (row i is
    indices[indptr[i]:indptr[i+1]]); the form a storage keeps on disk."""
    ptr = np.asarray(indptr, dtype=np.int64)
    raw = np.asarray(indices, dtype=np.int64)
    data = np.asarray(values, dtype=np.float32)
    n = ptr.shape[0] - 1
    vocab, cols = np.unique(raw, return_inverse=True)
    import scipy.sparse as sp

    csr = sp.csr_matrix((data, cols.astype(np.int64), ptr), shape=(n, vocab.shape[0]))
    # tocsc keeps explicit zeros and never merges entries (indices are unique per row).
    csc = csr.tocsc()
    mask = (
        np.ones(n, dtype=np.bool_) if has_vector is None else np.asarray(has_vector, dtype=np.bool_)
    )
    return SparseMatrix(vocab=vocab.astype(np.int64), csc=csc, has_vector=mask)


def _query_columns(
    matrix: SparseMatrix, indices: npt.ArrayLike, values: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The query's entries whose index this segment has, as (column, value)."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    val = np.asarray(values, dtype=np.float64).reshape(-1)
    if matrix.vocab.size == 0 or idx.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    pos = np.minimum(np.searchsorted(matrix.vocab, idx), matrix.vocab.size - 1)
    known = matrix.vocab[pos] == idx
    return pos[known], val[known]


def _raw_hits(
    csr: sp.csr_matrix, indices: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(row, query position, stored value) of every stored entry whose index is in the query.

    The fallback for a CSR keyed by raw indices: one pass over its entries. Column slicing
    would allocate an array as wide as the largest index (up to 2^32), so it is avoided.
    """
    query = np.asarray(indices, dtype=np.int64).reshape(-1)
    n = int(csr.shape[0])
    if query.size == 0 or csr.nnz == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float64)
    order = np.argsort(query, kind="stable")
    sorted_query = query[order]
    stored = np.asarray(csr.indices, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_query, stored), sorted_query.size - 1)
    hit = sorted_query[pos] == stored
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(csr.indptr))[hit]
    return rows, order[pos[hit]].astype(np.int64), np.asarray(csr.data, dtype=np.float64)[hit]


def score_sparse(
    query_indices: npt.ArrayLike, query_values: npt.ArrayLike, matrix: SparseInput
) -> npt.NDArray[np.float32]:
    """The dot product of one sparse query with every row over their shared indices,
    accumulated in float64, as float32 (n,); 0 where nothing is shared.

    A nearest query keeps only `shares_index` rows; recommend, discover and context score
    the others as 0, as they are here.
    """
    if isinstance(matrix, SparseMatrix):
        cols, vals = _query_columns(matrix, query_indices, query_values)
        if cols.size == 0:
            return np.zeros(matrix.num_points, dtype=np.float32)
        scores = np.asarray(matrix.csc[:, cols] @ vals, dtype=np.float64).reshape(-1)
        return scores.astype(np.float32)
    csr = _as_csr(matrix)
    rows, qpos, data = _raw_hits(csr, query_indices)
    weights = data * np.asarray(query_values, dtype=np.float64).reshape(-1)[qpos]
    return np.bincount(rows, weights=weights, minlength=int(csr.shape[0])).astype(np.float32)


def shares_index(query_indices: npt.ArrayLike, matrix: SparseInput) -> npt.NDArray[np.bool_]:
    """Rows sharing at least one index with the query: the only nearest-query results
    (an explicitly stored 0.0 value still shares its index)."""
    if isinstance(matrix, SparseMatrix):
        cols, _ = _query_columns(matrix, query_indices, np.zeros(np.size(query_indices)))
        if cols.size == 0:
            return np.zeros(matrix.num_points, dtype=np.bool_)
        postings = matrix.csc[:, cols]
        return np.bincount(postings.indices, minlength=matrix.num_points) > 0
    csr = _as_csr(matrix)
    rows, _, _ = _raw_hits(csr, query_indices)
    return np.bincount(rows, minlength=int(csr.shape[0])) > 0


def score_sparse_batch(
    queries: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]], matrix: SparseInput
) -> npt.NDArray[np.float32]:
    """Scores (q, n) of several sparse queries, no overlap counting as 0 (the
    recommend / discover / context convention)."""
    n = matrix.num_points if isinstance(matrix, SparseMatrix) else int(matrix.shape[0])
    out = np.zeros((len(queries), n), dtype=np.float32)
    for row, (idx, val) in enumerate(queries):
        out[row] = score_sparse(idx, val, matrix)
    return out


def _as_csr(matrix: Any) -> sp.csr_matrix:
    import scipy.sparse as sp

    if not sp.issparse(matrix):
        raise TypeError(f"expected a SparseMatrix or a scipy sparse matrix, got {type(matrix)}")
    return sp.csr_matrix(matrix)


# --------------------------------------------------------------------------- IDF


def document_frequencies(
    matrix: SparseInput,
    indices: npt.ArrayLike,
    rows: npt.ArrayLike | None = None,
    *,
    corpus: bool = False,
) -> tuple[npt.NDArray[np.int64], int]:
    """(n_i for each of `indices`, N) over the rows selected by `rows` (default: all rows
    holding a vector; every row of a plain CSR). Sum both over segments for a shard-wide
    IDF.

    N counts the selected rows whose vector is not empty, as Qdrant's collection-wide
    statistics do; with `corpus` (the rows are an `idf.corpus` filter's points) it counts
    every selected row holding a vector, empty or not, as Qdrant's corpus statistics do.
    (qdrant-client's local mode counts empty vectors in both.)
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    df = np.zeros(idx.shape[0], dtype=np.int64)
    if not isinstance(matrix, SparseMatrix):
        csr = _as_csr(matrix)
        n = int(csr.shape[0])
        selected = np.ones(n, dtype=np.bool_) if rows is None else np.asarray(rows, dtype=np.bool_)
        hit_rows, qpos, _ = _raw_hits(csr, idx)
        keep = selected[hit_rows]
        df += np.bincount(qpos[keep], minlength=idx.shape[0]).astype(np.int64)
        documents = selected if corpus else selected & (np.diff(csr.indptr) > 0)
        return df, int(np.count_nonzero(documents))
    selected = (
        matrix.has_vector if rows is None else np.asarray(rows, dtype=np.bool_) & matrix.has_vector
    )
    if matrix.vocab.size and idx.size:
        pos = np.minimum(np.searchsorted(matrix.vocab, idx), matrix.vocab.size - 1)
        known = np.flatnonzero(matrix.vocab[pos] == idx)
        if known.size:
            sub = matrix.csc[:, pos[known]]
            hits = selected[sub.indices].astype(np.int64)
            # Per-column sums of the selected rows; cumsum differences cope with empty columns.
            csum = np.concatenate(([0], np.cumsum(hits)))
            df[known] = csum[sub.indptr[1:]] - csum[sub.indptr[:-1]]
    documents = selected if corpus else selected & matrix.nonempty_mask
    return df, int(np.count_nonzero(documents))


def idf_weights(df: npt.ArrayLike, num_docs: int) -> npt.NDArray[np.float64]:
    """Qdrant's IDF weight per index: ln((N - n + 0.5) / (n + 0.5) + 1)."""
    n = np.asarray(df, dtype=np.float64)
    return np.asarray(np.log((num_docs - n + 0.5) / (n + 0.5) + 1.0), dtype=np.float64)


def apply_idf(values: npt.ArrayLike, df: npt.ArrayLike, num_docs: int) -> npt.NDArray[np.float64]:
    """Query values weighted by the IDF of their indices (the `idf` modifier)."""
    return np.asarray(values, dtype=np.float64) * idf_weights(df, num_docs)
