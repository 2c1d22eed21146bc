"""Fusion of prefetch results: reciprocal rank fusion (RRF) and distribution-based score
fusion (DBSF).

Each source is one prefetch's ranked result: `(ids, scores)`, best first. Ids are whatever
identifies a point across sources (a numpy array of ints is fastest; external ids, UUID
strings included, work too). The fused result is `(ids, scores)`, best first, ties in the
order the points were first seen (source by source, rank by rank), as local mode sorts.

- RRF: score(p) = sum over sources s holding p at 0-based rank r of
  1 / ((r + 1) / w_s + k - 1), with k = 2 by default (Qdrant >= 1.16 and local mode) and
  weight w_s = 1 unless given; a source with weight <= 0 contributes nothing.
  (With w = 1 that is the textbook 1 / (r + k).)
- DBSF: each source's scores are mapped through its mean +- 3 sample standard deviations
  onto [0, 1]-ish ((s - (mean - 3 sd)) / (6 sd)); one result or zero spread gives 0.5; the
  normalised scores of a point are summed over sources.

Scores are float64 (local mode's Python floats); a `score_threshold` on a fused query keeps
scores >= threshold, inclusive, unlike nearest queries.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest
from tessera.query.query_model import rrf_weights_mismatch

DEFAULT_RRF_K = 2

Source = tuple[npt.ArrayLike | Sequence[Hashable], npt.ArrayLike]
Fused = tuple[npt.NDArray[Any], npt.NDArray[np.float64]]


def _factorize(ids: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """(codes, uniques) with uniques in first-seen order, so code order is arrival order."""
    if ids.dtype != object and ids.size:
        uniques, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        arrival = np.argsort(first, kind="stable")
        rank = np.empty_like(arrival)
        rank[arrival] = np.arange(arrival.size)
        return rank[inverse].astype(np.int64), uniques[arrival]
    # Mixed ints and UUID strings cannot be sorted together: hash them instead, one dict
    # insertion per fused result (a few hundred at most).
    table: dict[Any, int] = {}
    codes = np.fromiter(
        (table.setdefault(x, len(table)) for x in ids.tolist()), dtype=np.int64, count=ids.size
    )
    uniques = np.empty(len(table), dtype=object)
    uniques[:] = list(table)
    return codes, uniques


def _concat(sources: Sequence[Source]) -> tuple[npt.NDArray[Any], list[int]]:
    arrays = [
        np.asarray(ids) if not isinstance(ids, list) else _as_id_array(ids) for ids, _ in sources
    ]
    lengths = [a.size for a in arrays]
    if not arrays or sum(lengths) == 0:
        return np.empty(0, dtype=np.int64), lengths
    kinds = {a.dtype.kind for a in arrays if a.size}
    if len(kinds) > 1 or "O" in kinds or "U" in kinds:
        arrays = [a.astype(object) for a in arrays]
    return np.concatenate(arrays), lengths


def _as_id_array(ids: list[Any]) -> npt.NDArray[Any]:
    if all(isinstance(x, int) and not isinstance(x, bool) for x in ids):
        return np.asarray(ids, dtype=np.uint64) if ids else np.empty(0, dtype=np.uint64)
    out = np.empty(len(ids), dtype=object)
    out[:] = list(ids)
    return out


def _ranked(totals: npt.NDArray[np.float64], uniques: npt.NDArray[Any], limit: int | None) -> Fused:
    # Stable sort on arrival order: equal scores keep first-seen order, as Python's sort.
    order = np.argsort(-totals, kind="stable")
    if limit is not None:
        order = order[: max(0, limit)]
    return uniques[order], totals[order]


def rrf(
    sources: Sequence[Source],
    limit: int | None = None,
    k: int | None = None,
    weights: Sequence[float] | None = None,
) -> Fused:
    """Reciprocal rank fusion of ranked sources."""
    if weights is not None and len(weights) != len(sources):
        raise rrf_weights_mismatch(len(weights), len(sources))
    constant = DEFAULT_RRF_K if k is None else k
    if constant < 1:
        raise BadRequest("RRF k must be at least 1")
    ids, lengths = _concat(sources)
    if ids.size == 0:
        return ids, np.empty(0, dtype=np.float64)
    ranks = np.concatenate([np.arange(m, dtype=np.float64) for m in lengths])
    w = np.repeat(
        np.asarray([1.0] * len(sources) if weights is None else weights, dtype=np.float64), lengths
    )
    with np.errstate(divide="ignore"):
        contribution = np.where(
            w > 0.0, 1.0 / ((ranks + 1.0) / np.where(w > 0.0, w, 1.0) + constant - 1.0), 0.0
        )
    codes, uniques = _factorize(ids)
    # bincount adds in input order, so each total is summed source by source like local mode.
    totals = np.bincount(codes, weights=contribution, minlength=uniques.size).astype(np.float64)
    return _ranked(totals, uniques, limit)


def _dbsf_normalize(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    m = scores.size
    if m == 1:
        return np.full(1, 0.5)
    mean = scores.sum() / m
    variance = ((scores - mean) ** 2).sum() / (m - 1)
    if variance == 0.0:
        return np.full(m, 0.5)
    sd = variance**0.5
    low = mean - 3.0 * sd
    high = mean + 3.0 * sd
    return np.asarray((scores - low) / (high - low), dtype=np.float64)


def dbsf(sources: Sequence[Source], limit: int | None = None) -> Fused:
    """Distribution-based score fusion of scored sources."""
    ids, _ = _concat(sources)
    if ids.size == 0:
        return ids, np.empty(0, dtype=np.float64)
    normalized = np.concatenate(
        [
            _dbsf_normalize(np.asarray(s, dtype=np.float64).reshape(-1))
            for _, s in sources
            if np.asarray(s).size
        ]
    )
    codes, uniques = _factorize(ids)
    totals = np.bincount(codes, weights=normalized, minlength=uniques.size).astype(np.float64)
    return _ranked(totals, uniques, limit)
