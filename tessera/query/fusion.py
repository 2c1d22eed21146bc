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

Scores are float32, computed in Qdrant's order of float32 operations (its fusion works on
f32 scores: RRF's 1 / ((r + 1) / w + k - 1), DBSF's mean and sample variance by Welford's
method, the normalisation, the sums source by source), so fused scores equal Qdrant's to the
last bit (local mode computes in float64 and differs by an ulp or two). A `score_threshold`
on a fused query keeps scores >= threshold, inclusive, unlike nearest queries.
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
Fused = tuple[npt.NDArray[Any], npt.NDArray[np.float32]]
F32 = np.float32


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


def _ranked(totals: npt.NDArray[np.float32], uniques: npt.NDArray[Any], limit: int | None) -> Fused:
    # Stable sort on arrival order: equal scores keep first-seen order, as Python's sort.
    order = np.argsort(-totals, kind="stable")
    if limit is not None:
        order = order[: max(0, limit)]
    return uniques[order], totals[order]


def _summed(
    codes: npt.NDArray[np.int64], values: npt.NDArray[np.float32], lengths: list[int], size: int
) -> npt.NDArray[np.float32]:
    """Each point's values added in float32, source by source (a point is at most once in a
    source), as Qdrant accumulates them."""
    totals = np.zeros(size, dtype=np.float32)
    start = 0
    for m in lengths:
        part = codes[start : start + m]
        totals[part] += values[start : start + m]
        start += m
    return totals


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
        return ids, np.empty(0, dtype=np.float32)
    positions = np.concatenate([np.arange(1, m + 1, dtype=np.float32) for m in lengths])
    w = np.repeat(
        np.asarray([1.0] * len(sources) if weights is None else weights, dtype=np.float32), lengths
    )
    positive = w > F32(0.0)
    with np.errstate(divide="ignore"):
        # Qdrant: 1.0 / ((position + 1) as f32 / weight + k as f32 - 1.0), 0 for weight <= 0
        denominator = positions / np.where(positive, w, F32(1.0)) + F32(constant) - F32(1.0)
        contribution = np.where(positive, F32(1.0) / denominator, F32(0.0)).astype(np.float32)
    codes, uniques = _factorize(ids)
    return _ranked(_summed(codes, contribution, lengths, uniques.size), uniques, limit)


def _welford(scores: npt.NDArray[np.float32]) -> tuple[np.float32, np.float32]:
    """Mean and sample variance in float32 by Welford's one-pass recurrence, Qdrant's
    arithmetic to the bit. A loop over one prefetch's results (its limit bounds it): the
    recurrence rounds at every step, which no vectorised sum reproduces."""
    mean, aggregate = F32(0.0), F32(0.0)
    for k, score in enumerate(scores, 1):
        old_delta = score - mean
        mean = F32(mean + old_delta / F32(k))
        aggregate = F32(aggregate + old_delta * (score - mean))
    return mean, F32(aggregate / (F32(scores.size) - F32(1.0)))


def _dbsf_normalize(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """One source's scores over mean +- 3 sample standard deviations, as Qdrant's distr_norm:
    0.5 for one point, or for no spread (its min == max)."""
    if scores.size < 2:
        return np.full(scores.size, 0.5, dtype=np.float32)
    mean, variance = _welford(scores)
    spread = F32(F32(3.0) * np.sqrt(variance))
    low, high = F32(mean - spread), F32(mean + spread)
    if low == high:
        return np.full(scores.size, 0.5, dtype=np.float32)
    return ((scores - low) / F32(high - low)).astype(np.float32)


def dbsf(sources: Sequence[Source], limit: int | None = None) -> Fused:
    """Distribution-based score fusion of scored sources."""
    ids, lengths = _concat(sources)
    if ids.size == 0:
        return ids, np.empty(0, dtype=np.float32)
    normalized = np.concatenate(
        [
            _dbsf_normalize(np.asarray(s, dtype=np.float32).reshape(-1))
            for _, s in sources
            if np.asarray(s).size
        ]
    )
    codes, uniques = _factorize(ids)
    return _ranked(_summed(codes, normalized, lengths, uniques.size), uniques, limit)
