"""Recommend, discover, context and relevance-feedback arithmetic.

Everything here works on *core similarities* (`scoring.similarity`, `multivector.max_sim`,
or sparse dot products with no overlap counted as 0), one row per example, one column per
candidate point, so a whole segment is scored with one matrix product per example kind.
The results are float32 and always rank bigger-first, whatever the distance; they are
reported as they are (Euclid / Manhattan are not turned back into distances).

- average_vector: the query avg(pos) + avg(pos) - avg(neg) (just avg(pos) without
  negatives), then an ordinary nearest search. Sparse vectors average over the union of
  their indices; multivectors concatenate the positive rows and the negated negative rows.
- best_score: s = max over positives, t = max over negatives (-inf when there are none);
  score = sigmoid(s) if s > t else -sigmoid(t), sigmoid(x) = 0.5 * (x / (1 + |x|) + 1).
- sum_scores: sum over positives minus sum over negatives.
- discover: per context pair +1 if sim(pos) > sim(neg), 0 if equal, -1 otherwise, summed,
  plus sigmoid(sim(target)): the rank decides, the target orders within a rank.
- context: sum over pairs of fast_sigmoid(min(sim(pos) - sim(neg) - EPSILON, 0)), with
  fast_sigmoid(x) = x / (1 + |x|): 0 for a point on the positive side of every pair.
- relevance feedback (naive): a * sim(target) + sum over ordered pairs (i, j) of feedback
  items with score_i > score_j of (score_i - score_j)^b * c * (sim_i - sim_j).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest, bad_input
from tessera.query.scoring import EPSILON, FloatArray

RecommendStrategy = Literal["average_vector", "best_score", "sum_scores"]
STRATEGIES: tuple[RecommendStrategy, ...] = ("average_vector", "best_score", "sum_scores")


def check_examples(
    strategy: str | None, num_positive: int, num_negative: int, *, query_api: bool = False
) -> RecommendStrategy:
    """The strategy (default average_vector), after Qdrant's checks on the example counts:
    the legacy recommend routes' (`query_api` False) or the Query API's."""
    chosen = "average_vector" if strategy is None else strategy
    if chosen not in STRATEGIES:
        raise BadRequest(
            f"Unknown recommend strategy: {chosen!r}, expected one of {list(STRATEGIES)}"
        )
    if chosen == "average_vector" and num_positive == 0:
        if query_api:
            # The Query API averages the examples while converting the query (avg_vectors),
            # which refuses an empty positive set with a validation error: bad input.
            raise bad_input(
                "Validation failed: Positive vectors should not be empty with `average` strategy"
            )
        raise BadRequest("Bad request: At least one positive vector ID required with this strategy")
    if num_positive == 0 and num_negative == 0:
        raise BadRequest(
            "Bad request: At least one positive or negative vector ID required with this strategy"
        )
    return chosen  # type: ignore[return-value]


# --------------------------------------------------------------------------- sigmoids


def fast_sigmoid(x: npt.ArrayLike) -> FloatArray:
    """x / (1 + |x|), with NaN and +-inf passed through as they are (like local mode)."""
    arr = np.asarray(x, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(arr), arr / (np.float32(1.0) + np.abs(arr)), arr).astype(
            np.float32
        )


def scaled_fast_sigmoid(x: npt.ArrayLike) -> FloatArray:
    """fast_sigmoid mapped onto (0, 1)."""
    return (np.float32(0.5) * (fast_sigmoid(x) + np.float32(1.0))).astype(np.float32)


# --------------------------------------------------------------------------- average_vector


def average_vector(positive: npt.ArrayLike, negative: npt.ArrayLike | None = None) -> FloatArray:
    """avg(pos) + avg(pos) - avg(neg) over dense examples (p, d) and (m, d)."""
    pos = np.asarray(positive, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[0] == 0:
        raise BadRequest("Bad request: At least one positive vector ID required with this strategy")
    mean_pos = pos.mean(axis=0)
    neg = None if negative is None else np.asarray(negative, dtype=np.float64)
    if neg is None or neg.size == 0:
        return np.asarray(mean_pos, dtype=np.float32)
    mean_neg = neg.reshape(-1, pos.shape[1]).mean(axis=0)
    return np.asarray(mean_pos + mean_pos - mean_neg, dtype=np.float32)


def _sparse_mean(
    vectors: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Mean over the union of indices, an index missing from a vector counting as 0."""
    if not vectors:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    idx = np.concatenate([np.asarray(v[0], dtype=np.int64).reshape(-1) for v in vectors])
    val = np.concatenate([np.asarray(v[1], dtype=np.float64).reshape(-1) for v in vectors])
    union, inverse = np.unique(idx, return_inverse=True)
    sums = np.bincount(inverse, weights=val, minlength=union.size)
    return union, sums / len(vectors)


def average_sparse(
    positive: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]],
    negative: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]] = (),
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """avg(pos) + avg(pos) - avg(neg) over sparse (indices, values) examples, indices sorted."""
    if not positive:
        raise BadRequest("Bad request: At least one positive vector ID required with this strategy")
    pos_idx, pos_val = _sparse_mean(positive)
    if not negative:
        return pos_idx, pos_val
    neg_idx, neg_val = _sparse_mean(negative)
    union = np.union1d(pos_idx, neg_idx)
    out = np.zeros(union.size, dtype=np.float64)
    out[np.searchsorted(union, pos_idx)] += 2.0 * pos_val
    out[np.searchsorted(union, neg_idx)] -= neg_val
    return union, out


def average_multi(
    positive: Sequence[npt.ArrayLike], negative: Sequence[npt.ArrayLike] = ()
) -> FloatArray:
    """The multivector 'average': all positive rows, then every negative row negated."""
    if not positive:
        raise BadRequest("Bad request: At least one positive vector ID required with this strategy")
    parts = [np.asarray(m, dtype=np.float32) for m in positive]
    parts += [-np.asarray(m, dtype=np.float32) for m in negative]
    return np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------- scoring


def _as_rows(sims: npt.ArrayLike | None, n: int) -> FloatArray:
    if sims is None:
        return np.empty((0, n), dtype=np.float32)
    arr = np.asarray(sims, dtype=np.float32)
    return arr.reshape(-1, n) if arr.size else np.empty((0, n), dtype=np.float32)


def _num_points(*arrays: npt.ArrayLike | None) -> int:
    for a in arrays:
        if a is not None:
            arr = np.asarray(a)
            if arr.size:
                return int(arr.shape[-1])
    return 0


def best_score(
    positive_sims: npt.ArrayLike | None, negative_sims: npt.ArrayLike | None
) -> FloatArray:
    """best_score over similarities (p, n) to positives and (m, n) to negatives."""
    n = _num_points(positive_sims, negative_sims)
    pos = _as_rows(positive_sims, n)
    neg = _as_rows(negative_sims, n)
    best_pos = pos.max(axis=0) if pos.shape[0] else np.full(n, -np.inf, dtype=np.float32)
    best_neg = neg.max(axis=0) if neg.shape[0] else np.full(n, -np.inf, dtype=np.float32)
    return np.where(
        best_pos > best_neg, scaled_fast_sigmoid(best_pos), -scaled_fast_sigmoid(best_neg)
    ).astype(np.float32)


def sum_scores(
    positive_sims: npt.ArrayLike | None, negative_sims: npt.ArrayLike | None
) -> FloatArray:
    """sum_scores over similarities (p, n) to positives and (m, n) to negatives."""
    n = _num_points(positive_sims, negative_sims)
    pos = _as_rows(positive_sims, n).sum(axis=0, dtype=np.float32)
    neg = _as_rows(negative_sims, n).sum(axis=0, dtype=np.float32)
    return np.asarray(pos - neg, dtype=np.float32)


def _pair_rows(
    positive_sims: npt.ArrayLike, negative_sims: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    n = _num_points(positive_sims, negative_sims)
    pos = _as_rows(positive_sims, n)
    neg = _as_rows(negative_sims, n)
    if pos.shape != neg.shape:
        raise BadRequest("Every context pair needs one positive and one negative example")
    return pos, neg


def discovery_ranks(
    positive_sims: npt.ArrayLike, negative_sims: npt.ArrayLike
) -> npt.NDArray[np.int32]:
    """Sum over context pairs of sign(sim(pos) - sim(neg)), per point."""
    pos, neg = _pair_rows(positive_sims, negative_sims)
    return np.asarray(np.sign(pos - neg).sum(axis=0), dtype=np.int32)


def discover(
    target_sim: npt.ArrayLike, positive_sims: npt.ArrayLike, negative_sims: npt.ArrayLike
) -> FloatArray:
    """Discovery score: the pair rank, plus the sigmoid of the target similarity."""
    target = np.asarray(target_sim, dtype=np.float32)
    n = target.shape[0]
    if np.asarray(positive_sims).size == 0:
        ranks = np.zeros(n, dtype=np.int32)
    else:
        ranks = discovery_ranks(positive_sims, negative_sims)
    return (ranks.astype(np.float32) + scaled_fast_sigmoid(target)).astype(np.float32)


def context(positive_sims: npt.ArrayLike, negative_sims: npt.ArrayLike) -> FloatArray:
    """Context score: a loss that is 0 for points on the positive side of every pair."""
    pos, neg = _pair_rows(positive_sims, negative_sims)
    margin = np.minimum(pos - neg - EPSILON, np.float32(0.0))
    return np.asarray(fast_sigmoid(margin).sum(axis=0, dtype=np.float32), dtype=np.float32)


def naive_feedback(
    target_sim: npt.ArrayLike,
    feedback_sims: npt.ArrayLike,
    feedback_scores: npt.ArrayLike,
    a: float,
    b: float,
    c: float,
) -> FloatArray:
    """Relevance feedback, naive strategy, over similarities to the target (n,) and to the
    feedback examples (f, n) whose user-given relevance scores are (f,)."""
    target = np.asarray(target_sim, dtype=np.float64)
    scores = np.asarray(feedback_scores, dtype=np.float64).reshape(-1)
    sims = np.asarray(feedback_sims, dtype=np.float64).reshape(scores.size, -1)
    result = a * target
    if scores.size >= 2:
        confidence = scores[:, np.newaxis] - scores[np.newaxis, :]
        with np.errstate(invalid="ignore"):
            weights = np.where(confidence > 0.0, np.power(np.maximum(confidence, 0.0), b) * c, 0.0)
        # sum_ij w_ij (sim_i - sim_j) == sum_k sim_k (row_k - col_k): one product, no pair loop.
        coefficients = weights.sum(axis=1) - weights.sum(axis=0)
        result = result + coefficients @ sims
    return result.astype(np.float32)
