"""Grouped results (`group_by`) and the distance matrix of a random sample.

Groups follow local mode and Qdrant: results are walked best first; a point joins the
group of every distinct value its `group_by` path holds (ints and strings only: a point
with any other value, booleans and floats included, joins no group); a group keeps its
first `group_size` hits; groups come in the order they were first seen, `limit` of them.

The matrix samples `sample` points that have the vector (under the filter), sorts them by
id and, for each, finds its `limit` nearest among the other sampled points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from tessera import deadline
from tessera.execution.query_exec import Context, Hit, group_points
from tessera.execution.query_vectors import PairScorer, idf_weighted, space_of, stored_vector
from tessera.ids import PointId, id_sort_key
from tessera.query import filter_model as fm
from tessera.query import query_model as qm
from tessera.query.payload_path import extract_values
from tessera.query.scoring import to_reported
from tessera.shard import read
from tessera.shard.read import PointRef

GroupId = int | str
Groups = list[tuple[GroupId, list[Hit]]]


def group_ids(payload: dict[str, Any], path: str) -> list[GroupId]:
    values = extract_values(payload, path)
    if any(type(v) not in (int, str) for v in values):
        return []
    return list(dict.fromkeys(values))


def build_groups(hits: list[Hit], spec: qm.GroupSpec) -> tuple[Groups, bool]:
    """(groups, complete): complete when more hits could not change the answer."""
    payloads = [hit.ref.segment.payload_at(hit.ref.offset) for hit in hits]
    rows, complete = group_rows(payloads, spec)
    return [(gid, [hits[i] for i in members]) for gid, members in rows], complete


def group_rows(
    payloads: Sequence[dict[str, Any] | None], spec: qm.GroupSpec
) -> tuple[list[tuple[GroupId, list[int]]], bool]:
    """The groups of results best first, given their payloads: (per group its id and the
    rows of its hits, complete). A collection of several shards groups its merged results
    with this too."""
    groups: dict[GroupId, list[int]] = {}
    for row, payload in enumerate(payloads):
        for gid in group_ids(payload or {}, spec.group_by):
            members = groups.setdefault(gid, [])
            if len(members) < spec.group_size:
                members.append(row)
    chosen = list(groups.items())[: spec.limit]
    complete = len(chosen) == spec.limit and all(len(m) == spec.group_size for _, m in chosen)
    return chosen, complete


def execute_groups(ctx: Context, plan: qm.Plan) -> Groups:
    spec = plan.groups
    assert spec is not None
    everything = max(ctx.holder.live_count(), 1)
    # The results for a smaller root limit are a prefix of those for a bigger one, so fetch
    # a few more than the groups need and grow until they are complete or exhausted.
    limit = min(everything, max(64, spec.limit * spec.group_size * 4))
    while True:
        hits = group_points(ctx, replace(plan, root=replace(plan.root, limit=limit)))
        groups, complete = build_groups(hits, spec)
        if complete or len(hits) < limit or limit >= everything:
            return groups
        limit = min(everything, limit * 4)


# --------------------------------------------------------------------------- matrix


def _pool(ctx: Context, using: str, filt: fm.Filter | None) -> list[PointRef]:
    pools: list[PointRef] = []
    for segment in ctx.holder.segments:
        mask = read.segment_mask(segment, filt) & segment.vector_mask(using)
        pools.extend(PointRef(segment, int(o)) for o in np.flatnonzero(mask).tolist())
    return pools


def _sample(ctx: Context, using: str, filt: fm.Filter | None, size: int) -> list[PointRef]:
    pools = _pool(ctx, using, filt)
    if len(pools) > size:
        picks = np.random.default_rng().choice(len(pools), size=size, replace=False)
        pools = [pools[i] for i in picks.tolist()]
    return sorted(pools, key=lambda ref: id_sort_key(ref.id))


def sample_ids(
    ctx: Context, using: str, filt: fm.Filter | None, size: int
) -> tuple[int, list[PointId]]:
    """How many points match, and up to `size` of their ids drawn uniformly: one shard's
    part of a distance matrix's sample (the collection draws from the shards' parts)."""
    pools = _pool(ctx, using, filt)
    total = len(pools)
    if total > size:
        picks = np.random.default_rng().choice(total, size=size, replace=False)
        pools = [pools[i] for i in picks.tolist()]
    return total, [ref.id for ref in pools]


def distance_matrix(
    ctx: Context, using: str, filt: fm.Filter | None, sample: int, limit: int
) -> tuple[list[PointId], list[list[tuple[int, float]]]]:
    """(sampled ids sorted, per sampled point its nearest (column, score) among the others)."""
    refs = _sample(ctx, using, filt, sample)
    if len(refs) < 2:
        return [], []
    ids = [ref.id for ref in refs]
    vectors = [stored_vector(ctx.holder, using, pid) for pid in ids]
    return ids, matrix_rows(ctx, using, vectors, limit)


# A distance matrix's similarities are computed this many at a time (16 MiB of float32):
# a sample of 20,000 points is 400 million pairs, which whole would take gigabytes.
MATRIX_BLOCK_PAIRS = 1 << 22


def matrix_rows(
    ctx: Context, using: str, vectors: list[Any], limit: int
) -> list[list[tuple[int, float]]]:
    """Per vector its nearest others among `vectors` as (column, score), best first (ties
    by column); a block of rows at a time, the request's deadline checked between blocks."""
    space = space_of(ctx.config, using)
    queries = [idf_weighted(ctx.holder, space, v) for v in vectors]
    scorer = PairScorer(space, vectors)
    step = max(1, MATRIX_BLOCK_PAIRS // max(1, len(vectors)))
    rows: list[list[tuple[int, float]]] = []
    for first in range(0, len(queries), step):
        deadline.check()
        sims, keep = scorer.score(queries[first : first + step])
        for row in range(len(sims)):
            keep[row, first + row] = False  # a point is not its own neighbour
        reported = sims if space.kind == "sparse" else to_reported(space.distance, sims)
        for row in range(len(sims)):
            order = _best_columns(sims[row], keep[row], limit)
            rows.append(list(zip(order.tolist(), reported[row, order].tolist(), strict=True)))
    return rows


def _best_columns(sims: Any, keep: Any, limit: int) -> Any:
    """The columns of `keep` with the `limit` highest `sims`, best first, ties by column
    (a stable sort of every kept column, without sorting them all)."""
    cols = np.flatnonzero(keep)
    values = sims[cols]
    if len(cols) > limit > 0 and not np.isnan(values).any():  # (NaN: the full sort below)
        kth = np.partition(values, len(values) - limit)[len(values) - limit]
        cols, values = cols[values >= kth], values[values >= kth]
    return cols[np.argsort(-values, kind="stable")][:limit]
