"""Maximal Marginal Relevance: re-ranking nearest candidates for diversity.

As Qdrant and local mode do it: the candidates are the nearest query's best
`candidates_limit` (default: the request's limit) points; the first pick is the most
relevant one, each next pick maximises

    lambda * sim(query, p) - (1 - lambda) * max over picked q of sim(p, q)

with lambda = 1 - diversity (default diversity 0.5), similarities on the core scale (sparse
pairs without a shared index score 0). The picked points keep their nearest scores. Ties go to the
*last* best of the pending candidates, which are kept in Qdrant's swap-remove order, so that
exact ties resolve as they do there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.execution.query_vectors import Space, pair_sims, vector_at
from tessera.shard.read import PointRef

DEFAULT_DIVERSITY = 0.5


def _last_argmax(values: npt.NDArray[np.float64]) -> int:
    return int(len(values) - 1 - np.argmax(values[::-1]))


def _swap_remove(items: list[int], position: int) -> int:
    value = items[position]
    items[position] = items[-1]
    items.pop()
    return value


def mmr(
    space: Space, query: Any, refs: list[PointRef], diversity: float | None, limit: int
) -> list[int]:
    """Positions in `refs` (nearest results for the raw `query`) of the first `limit` picks."""
    if not refs or limit <= 0:
        return []
    vectors = [vector_at(r.segment, space.name, r.offset) for r in refs]
    return mmr_of_vectors(space, query, vectors, diversity, limit)


def mmr_of_vectors(
    space: Space, query: Any, vectors: list[Any], diversity: float | None, limit: int
) -> list[int]:
    """`mmr` over the candidates' vectors themselves (a collection whose candidates come from
    several shards)."""
    if not vectors or limit <= 0:
        return []
    lam = 1.0 - (DEFAULT_DIVERSITY if diversity is None else diversity)
    relevance = pair_sims(space, vectors, [query])[0][0].astype(np.float64)
    between = pair_sims(space, vectors, vectors)[0].astype(np.float64)
    pending = list(range(len(vectors)))
    first = _swap_remove(pending, _last_argmax(relevance[pending]))
    selected = [first]
    closest = between[:, first].copy()  # per candidate: max similarity to the picked ones
    while len(selected) < limit and pending:
        order = np.asarray(pending, dtype=np.int64)
        scores = lam * relevance[order] - (1.0 - lam) * closest[order]
        if np.all(np.isneginf(scores)):
            break
        chosen = _swap_remove(pending, _last_argmax(scores))
        selected.append(chosen)
        np.maximum(closest, between[:, chosen], out=closest)
    return selected
