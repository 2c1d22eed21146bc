"""Several query plans of one request, with the plain exact ones answered together.

A batch of exact, unfiltered nearest queries on one dense vector is one matrix product per
segment (`shard.search.exact_batch`); every other plan runs on its own through `execute`.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from tessera.execution.query_exec import Context, Hit, execute
from tessera.execution.query_vectors import space_of
from tessera.query import query_model as qm
from tessera.shard.search import exact_batch


def _plain_exact_key(ctx: Context, plan: qm.Plan) -> tuple[str, int] | None:
    root = plan.root
    query = root.query
    if (
        plan.groups is not None
        or root.prefetch
        or root.filter is not None
        or root.score_threshold is not None
        or root.lookup_from is not None
        or not root.exact
        or not isinstance(query, qm.Nearest)
        or query.mmr
        or not isinstance(query.vector, np.ndarray)
        or space_of(ctx.config, root.using).kind != "dense"
    ):
        return None
    return root.using, root.limit + plan.offset


def execute_many(ctx: Context, plans: list[qm.Plan]) -> list[list[Hit]]:
    results: list[list[Hit] | None] = [None] * len(plans)
    batches: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, plan in enumerate(plans):
        key = _plain_exact_key(ctx, plan)
        if key is not None:
            batches[key].append(i)
    for (using, want), members in batches.items():
        if len(members) < 2:
            continue
        queries = np.stack(
            [np.asarray(plans[i].root.query.vector, dtype=np.float32) for i in members]  # type: ignore[union-attr]
        )
        for i, hits in zip(members, exact_batch(ctx.holder, using, queries, want), strict=True):
            results[i] = [Hit(score, ref) for score, ref in hits[plans[i].offset :]]
    return [r if r is not None else execute(ctx, plans[i]) for i, r in enumerate(results)]
