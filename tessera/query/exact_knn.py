"""The best k of an exact scan over float32 rows in one native call.

`score_dense` followed by `top_k` is five or six numpy calls, ~20 us for a few hundred rows
of 128 dimensions, most of it the calls themselves: a selective filter's whole query. faiss's
brute-force k-NN scores the rows with SIMD and keeps the best in a heap, ~5 us, and reads a
subset of a matrix's rows in place (no gather). Its sums run in another order than BLAS's, so
a score may differ from `score_dense`'s in the last bit, as faiss's graph walks already do.

`top_k` orders equal scores by index, smaller first; a heap does not. So one more than the k
wanted is asked for, and when any two of those (reported) scores are equal, or one is not a
finite number, the caller takes the numpy path instead. What can still differ from that path
is the order of two scores within the last bit of each other, which the two summation orders
may rank either way (as the graph walks and the exact path already may): not a tie in one,
a tie or the other order in the other.
"""

from __future__ import annotations

import operator
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from tessera.query.scoring import SEQUENTIAL_DIMS, Distance, FloatArray

IndexArray = npt.NDArray[np.int64]

# Euclid is reported as the distance (the square root of faiss's squared one); Manhattan has
# no brute-force k-NN in faiss.
METRICS = ("Dot", "Cosine", "Euclid")


def native_function(name: str) -> Any:
    """faiss's SWIG function `name` itself, without its Python wrapper (a frame per call that
    only passes the arguments on: four `swig_ptr` and a k-NN per query); the wrapper where
    the module is not where this expects it."""
    wrapper = getattr(faiss, name)
    module = getattr(wrapper, "__globals__", {}).get("_swigfaiss")
    return getattr(module, name, wrapper)


_ptr = native_function("swig_ptr")
_knn_ip, _knn_l2 = native_function("knn_inner_product"), native_function("knn_L2sqr")
_knn_ip_by_idx = native_function("knn_inner_products_by_idx")
_knn_l2_by_idx = native_function("knn_L2sqr_by_idx")
_FLOAT32 = np.dtype(np.float32)


def nearest(
    distance: Distance,
    query: FloatArray,
    rows: npt.NDArray[Any],
    k: int,
    subset: IndexArray | None = None,
) -> tuple[FloatArray, IndexArray] | None:
    """(reported scores, row numbers) of the best `k` rows (of `subset` of them, when given),
    best first; None where this cannot answer exactly as `score_dense` + `top_k` would:
    another metric or datatype, or a tie or a non-finite score among the best k + 1 (among
    all the rows, when there are no more than k: a quantized walk's candidates rescored at
    oversampling 1, every one of them kept and ordered). `query` is prepared as the rows
    were (`prepare_query`)."""
    found = _best(distance, np.ascontiguousarray(query, dtype=np.float32), rows, k, subset)
    if found is None:
        return None
    scores, labels, _ = found
    return scores[:k], labels[:k]


def nearest_listed(
    distance: Distance,
    query: FloatArray,
    rows: npt.NDArray[Any],
    k: int,
    subset: IndexArray | None = None,
) -> tuple[list[float], list[int]] | None:
    """`nearest`'s answer as lists (the scores, the row numbers), for a caller that wants
    Python values: fewer numpy calls than `nearest` and `tolist`. `query` must be prepared
    float32, C-contiguous (`prepare_query`'s answer)."""
    if query.dtype != _FLOAT32 or not query.flags.c_contiguous:
        return None  # (faiss reads the raw buffer)
    found = _best(distance, query, rows, k, subset)
    if found is None:
        return None
    listed, labels = found[2], found[1].tolist()
    if len(listed) > k:
        del listed[k:], labels[k:]
    return listed, labels


def _best(
    distance: Distance,
    q: FloatArray,
    rows: npt.NDArray[Any],
    k: int,
    subset: IndexArray | None,
) -> tuple[FloatArray, IndexArray, list[float]] | None:
    """The best min(k + 1, rows) of `nearest` as arrays (scores, labels) and the scores as a
    list; None as `nearest`. `q`: contiguous float32 of the rows' width."""
    if not rows.flags.c_contiguous or rows.ndim != 2 or q.shape != (rows.shape[1],):
        return None
    count = rows.shape[0] if subset is None else len(subset)
    if distance not in METRICS or k < 1 or count < 1 or rows.dtype != _FLOAT32:
        return None
    if rows.shape[1] < SEQUENTIAL_DIMS:  # scored in Qdrant's order by the numpy path
        return None
    wanted = min(k + 1, count)
    scores = np.empty(wanted, dtype=np.float32)
    found = np.empty(wanted, dtype=np.int64)
    ptr = _ptr
    dim, total = rows.shape[1], rows.shape[0]
    euclid = distance == "Euclid"
    if subset is None:
        run = _knn_l2 if euclid else _knn_ip
        run(ptr(q), ptr(rows), dim, 1, total, wanted, ptr(scores), ptr(found))
    else:
        ids = np.ascontiguousarray(subset, dtype=np.int64)
        run = _knn_l2_by_idx if euclid else _knn_ip_by_idx
        run(ptr(q), ptr(rows), ptr(ids), dim, 1, total, count, wanted, ptr(scores), ptr(found))
    if euclid:  # the reported distance; two squared ones a float apart may meet in a root
        scores = np.sqrt(scores)
    # Strictly ordered, best first: no tie, and no NaN (every comparison with NaN is false).
    # On the k + 1 floats as a list: numpy's calls would cost more than the comparisons.
    listed = scores.tolist()
    # (operator's functions: half the cost of float.__gt__'s slot wrapper per comparison)
    if not all(map(operator.lt if euclid else operator.gt, listed, listed[1:])):
        return None
    return scores, found, listed
