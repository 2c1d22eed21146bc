"""Vector queries (nearest, recommend, discover, context, relevance feedback) turned into a
per-segment scorer.

`score_vector_query` resolves the query's inputs once (point ids to stored vectors, the
average of recommend's examples, IDF weights of sparse queries) and returns a function
that scores candidate offsets of one segment as `(rank, reported, keep)`:

- `rank`: bigger is better, what results are ordered by (the core similarity);
- `reported`: the score a result carries (for a nearest query on Euclid / Manhattan the
  distance, for everything else the rank itself);
- `keep`: which candidates are results at all (a sparse nearest query only returns points
  sharing an index with it; a multivector without rows is never a result).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest
from tessera.execution.query_vectors import (
    Space,
    example_sims,
    idf_weighted,
    nearest_sims,
)
from tessera.query import query_model as qm
from tessera.query import recommend as reco
from tessera.query.scoring import to_reported
from tessera.segment.segment import Segment
from tessera.shard.holder import SegmentHolder

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Scorer = Callable[[Segment, IntArray], tuple[FloatArray, FloatArray, BoolArray]]


def score_vector_query(
    holder: SegmentHolder,
    space: Space,
    query: qm.VectorQuery,
    resolve: Callable[[Any], Any],
) -> Scorer:
    def prepared(values: list[Any]) -> list[Any]:
        return [idf_weighted(holder, space, resolve(v)) for v in values]

    match query:
        case qm.Nearest():
            return _nearest(space, idf_weighted(holder, space, resolve(query.vector)))
        case qm.Recommend(strategy="average_vector"):
            average = _average(
                space, [resolve(v) for v in query.positive], [resolve(v) for v in query.negative]
            )
            return _nearest(space, idf_weighted(holder, space, average))
        case qm.Recommend():
            positive, negative = prepared(list(query.positive)), prepared(list(query.negative))
            combine = reco.best_score if query.strategy == "best_score" else reco.sum_scores

            def recommend(segment: Segment, candidates: IntArray) -> tuple[Any, Any, Any]:
                pos = example_sims(segment, space, positive, candidates)
                neg = example_sims(segment, space, negative, candidates)
                return _ranked(combine(pos, neg), len(candidates))

            return recommend
        case qm.Discover():
            target = prepared([query.target])
            pos_ex = prepared([p.positive for p in query.pairs])
            neg_ex = prepared([p.negative for p in query.pairs])

            def discover(segment: Segment, candidates: IntArray) -> tuple[Any, Any, Any]:
                t = example_sims(segment, space, target, candidates)[0]
                pos = example_sims(segment, space, pos_ex, candidates)
                neg = example_sims(segment, space, neg_ex, candidates)
                return _ranked(reco.discover(t, pos, neg), len(candidates))

            return discover
        case qm.Context():
            pos_ctx = prepared([p.positive for p in query.pairs])
            neg_ctx = prepared([p.negative for p in query.pairs])

            def context(segment: Segment, candidates: IntArray) -> tuple[Any, Any, Any]:
                pos = example_sims(segment, space, pos_ctx, candidates)
                neg = example_sims(segment, space, neg_ctx, candidates)
                return _ranked(reco.context(pos, neg), len(candidates))

            return context
        case qm.RelevanceFeedback():
            fb_target = prepared([query.target])
            examples = prepared([item.example for item in query.feedback])
            relevance = np.asarray([item.score for item in query.feedback], dtype=np.float64)
            a, b, c = query.a, query.b, query.c

            def feedback(segment: Segment, candidates: IntArray) -> tuple[Any, Any, Any]:
                t = example_sims(segment, space, fb_target, candidates)[0]
                sims = example_sims(segment, space, examples, candidates)
                scores = reco.naive_feedback(t, sims, relevance, a, b, c)
                return _ranked(scores, len(candidates))

            return feedback
    raise BadRequest(f"Bad request: unsupported query {type(query).__name__}")


def _ranked(scores: FloatArray, n: int) -> tuple[FloatArray, FloatArray, BoolArray]:
    scores = np.asarray(scores, dtype=np.float32).reshape(n)
    return scores, scores, ~np.isnan(scores)


def _nearest(space: Space, value: Any) -> Scorer:
    def nearest(segment: Segment, candidates: IntArray) -> tuple[Any, Any, Any]:
        sims, keep = nearest_sims(segment, space, value, candidates)
        if space.kind == "sparse":
            return sims, sims, keep
        return sims, to_reported(space.distance, sims), keep

    return nearest


def _average(space: Space, positive: list[Any], negative: list[Any]) -> Any:
    if not positive:
        raise BadRequest("Bad request: At least one positive vector ID required with this strategy")
    if space.kind == "sparse":
        idx, vals = reco.average_sparse(positive, negative)
        return idx, vals.astype(np.float32)
    if space.kind == "multi":
        return reco.average_multi(positive, negative)
    return reco.average_vector(np.stack(positive), np.stack(negative) if negative else None)
