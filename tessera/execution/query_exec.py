"""Executing a parsed query tree over a segment holder (the caller holds the read lock).

The semantics are Qdrant's, as qdrant-client's local mode reproduces them:

- a node with prefetches runs them first, each under the filters of every node above it
  plus its own; its query then merges their results: fusion (rrf / dbsf) and formulas
  rescore the union of the prefetched points, any other query runs over that union only
  (those points, whatever the filters above: they were applied below);
- a node without prefetches queries the whole collection (under its filters);
- the ids a node uses as query inputs (in the searched collection) are excluded from that
  node's results and from everything below it;
- `limit + offset` best points are kept, `score_threshold` cuts the ordered results at the
  first point that fails it (for vector queries) or keeps scores >= it (fusion, formula),
  then `offset` points are skipped.

Results are `Hit`s: a score, the point (segment, offset) and, for order_by, the value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from tessera import deadline
from tessera.collection_config import CollectionConfig
from tessera.errors import bad_input
from tessera.execution.formula_values import variable_values
from tessera.execution.query_mmr import mmr
from tessera.execution.query_score import score_vector_query
from tessera.execution.query_vectors import Space, check_value, space_of, stored_vector
from tessera.ids import PointId
from tessera.query import filter_model as fm
from tessera.query import fusion
from tessera.query import query_model as qm
from tessera.query.formula_eval import evaluate as evaluate_formula
from tessera.query.scoring import threshold_prefix, top_k
from tessera.segment.filter_eval import evaluate
from tessera.shard import read, text_rank
from tessera.shard.explain import Explain, QueryReport, now
from tessera.shard.holder import SegmentHolder
from tessera.shard.read import PointRef, tuple_maker
from tessera.shard.search import ScoredRef, VectorQuery, search, unindexed_and_large

# Vectors of points in other collections (`lookup_from`), fetched before the read lock:
# (collection, vector name, point id) -> vector.
ExternalVectors = dict[tuple[str, str, PointId], Any]


class Hit(NamedTuple):
    """A result: its score, the point, and (order_by) the value it was ordered by. A tuple:
    every query builds one per result."""

    score: float
    ref: PointRef
    order_value: Any = None


_new_hit = tuple_maker(Hit)  # Hit((score, ref, order_value))


def _hits_of(found: list[ScoredRef]) -> list[Hit]:
    """The shard's hits as Hits with no order value: (score, ref) + (None,), in C."""
    return list(map(_new_hit, map(tuple.__add__, found, repeat((None,)))))


@dataclass
class Context:
    holder: SegmentHolder
    config: CollectionConfig
    collection: str
    external: ExternalVectors
    # `explain`: one report per query of the tree is recorded here (None: nothing is).
    explain: Explain | None = None


def execute(ctx: Context, plan: qm.Plan) -> list[Hit]:
    root = plan.root
    return _run(ctx, root, (), root.limit, plan.offset)


def group_points(ctx: Context, plan: qm.Plan) -> list[Hit]:
    """The results a groups request groups, best first: the root's own limit, but every
    prefetch limit raised to the collection size (as local mode does)."""
    everything = max(ctx.holder.live_count(), 1)
    root = plan.root
    prefetch = tuple(_with_limits(p, everything) for p in root.prefetch)
    return _run(ctx, replace(root, prefetch=prefetch), (), root.limit, 0)


def _with_limits(node: qm.QueryNode, limit: int) -> qm.QueryNode:
    return replace(node, limit=limit, prefetch=tuple(_with_limits(p, limit) for p in node.prefetch))


# --------------------------------------------------------------------------- tree


def _run(
    ctx: Context,
    node: qm.QueryNode,
    inherited: tuple[fm.Filter, ...],
    limit: int,
    offset: int,
    path: str = "",
) -> list[Hit]:
    deadline.check()
    filters = inherited
    if node.filter is not None:
        filters = (*filters, node.filter)
    excluded = _excluded_ids(ctx, node)
    if excluded:
        filters = (*filters, fm.Filter(must_not=(fm.HasId(frozenset(excluded)),)))
    report = None if ctx.explain is None else _report(ctx.explain, path, node, filters, limit)
    if not node.prefetch:
        return _query_collection(ctx, node, filters, limit, offset, report)
    prefix = f"{path}." if path else ""
    sources = [
        _run(ctx, p, filters, p.limit, 0, f"{prefix}prefetch[{i}]")
        for i, p in enumerate(node.prefetch)
    ]
    query = node.query
    if isinstance(query, qm.Fusion | qm.FormulaQuery):
        t = 0.0 if report is None else now()
        if isinstance(query, qm.Fusion):
            hits = _fuse(query, sources, limit, offset, node.score_threshold)
        else:
            hits = _formula(query, sources, limit, offset, node.score_threshold)
        if report is not None:
            report.add("fusion" if isinstance(query, qm.Fusion) else "formula", t)
            report.results = len(hits)
            report.note = f"merges {sum(len(s) for s in sources)} prefetched results"
        return hits
    ids = {hit.ref.id for source in sources for hit in source}
    if not ids:
        if isinstance(query, qm.OrderBy):
            read.require_range_index(ctx.holder, query.key)
        return []
    # Only the prefetched points, as Qdrant rescores (`has_id` alone): the filters above
    # were merged into every prefetch's own already, where a `should` of the prefetch's
    # joins theirs as one more alternative; applying them again here would drop the
    # points only that alternative let in.
    scope = (fm.Filter(must=(fm.HasId(frozenset(ids)),)),)
    if report is not None:
        report.note = f"runs over the {len(ids)} prefetched points only"
    return _query_collection(ctx, node, scope, limit, offset, report)


def _report(
    explain: Explain,
    path: str,
    node: qm.QueryNode,
    filters: tuple[fm.Filter, ...],
    limit: int,
) -> QueryReport:
    """The report of one node of the tree (explain only)."""
    query = node.query
    if query is None:
        kind = "scroll"
    elif isinstance(query, qm.Fusion):
        kind = f"fusion ({query.method})"
    elif isinstance(query, qm.Nearest) and query.mmr:
        kind = "nearest (mmr)"
    else:
        kind = {
            qm.Nearest: "nearest",
            qm.Recommend: "recommend",
            qm.Discover: "discover",
            qm.Context: "context",
            qm.RelevanceFeedback: "relevance feedback",
            qm.OrderBy: "order_by",
            qm.FormulaQuery: "formula",
            qm.Sample: "sample",
            qm.TextQuery: "text (bm25)",
        }.get(type(query), type(query).__name__.lower())
    report = explain.query(path, kind)
    report.limit = limit
    report.filtered = bool(filters)
    report.exact = node.exact
    report.hnsw_ef = node.hnsw_ef
    if not isinstance(query, qm.OrderBy | qm.Fusion | qm.FormulaQuery | qm.Sample | None):
        report.using = node.using
    return report


def _excluded_ids(ctx: Context, node: qm.QueryNode) -> list[PointId]:
    lookup = node.lookup_from
    if lookup is not None and lookup.collection != ctx.collection:
        return []
    return qm.referenced_ids(node.query)


def _combined(filters: tuple[fm.Filter, ...]) -> fm.Filter | None:
    """The filters a node inherited and its own, merged as Qdrant merges them (clause by
    clause: the `should` lists become one list of alternatives)."""
    combined: fm.Filter | None = None
    for f in filters:
        combined = fm.merged(combined, f)
    return combined


def _query_collection(
    ctx: Context,
    node: qm.QueryNode,
    filters: tuple[fm.Filter, ...],
    limit: int,
    offset: int,
    report: QueryReport | None = None,
) -> list[Hit]:
    query = node.query
    if report is not None and (query is None or isinstance(query, qm.OrderBy | qm.Sample)):
        # Reads in id or payload order, or a random sample: no vector search, no planner.
        t = now()
        hits = _query_collection(ctx, node, filters, limit, offset)
        report.add("read", t)
        report.results = len(hits)
        report.note = report.note or "a read in id or payload order (or a sample): no search"
        return hits
    filt = _combined(filters)
    want = limit + offset
    if query is None:
        refs, _ = read.scroll_by_id(ctx.holder, filt, None, want)
        return [Hit(1.0, ref) for ref in refs[offset:]]
    if isinstance(query, qm.OrderBy):
        rows = read.scroll_by_payload(
            ctx.holder, filt, query.key, query.descending, query.start_from, want
        )
        return [Hit(1.0, ref, value) for ref, value in rows[offset:]]
    if isinstance(query, qm.Sample):
        return _sample(ctx.holder, filt, want)[offset:]  # a root sample's is 0 (qm.Plan)
    if isinstance(query, qm.Fusion | qm.FormulaQuery):
        what = "Fusion" if isinstance(query, qm.Fusion) else "Formula"
        # Qdrant's shard query planner refuses it (a validation error, answered as bad input).
        raise bad_input(f"Validation failed: cannot apply {what} without prefetches")
    if isinstance(query, qm.TextQuery):
        return _text_search(ctx, node, query, filt, limit, offset, report)
    space = space_of(ctx.config, node.using)
    if node.idf_corpus is not None:
        space = replace(space, idf_corpus=node.idf_corpus)
    resolve = _resolver(ctx, node, space)
    threshold = node.score_threshold
    if isinstance(query, qm.Nearest) and query.mmr:
        # MMR re-ranks the nearest candidates, then the offset applies to its picks.
        plain = qm.Nearest(query.vector)
        pool = query.mmr_candidates if query.mmr_candidates is not None else limit
        hits = _vector_search(
            ctx, space, plain, resolve, filt, pool, 0, threshold, report, node.indexed_only
        )
        t = 0.0 if report is None else now()
        picks = mmr(space, resolve(query.vector), [h.ref for h in hits], query.mmr_diversity, want)
        if report is not None:
            report.add("mmr", t)
            report.results = len(picks[offset:])
        return [hits[i] for i in picks][offset:]
    if isinstance(query, qm.Nearest) and space.kind == "dense":
        # The shard's search: exact here, and the ANN index where the planner prefers it.
        found = search(
            ctx.holder,
            VectorQuery(space.name, "dense", resolve(query.vector)),
            filt,
            limit,
            offset,
            threshold,
            exact=node.exact,
            hnsw_ef=node.hnsw_ef,
            quantization=node.quantization,
            indexed_only=node.indexed_only,
            report=report,
        )
        return _hits_of(found)
    return _vector_search(
        ctx, space, query, resolve, filt, limit, offset, threshold, report, node.indexed_only
    )


def _text_search(
    ctx: Context,
    node: qm.QueryNode,
    query: qm.TextQuery,
    filt: fm.Filter | None,
    limit: int,
    offset: int,
    report: QueryReport | None,
) -> list[Hit]:
    """BM25 over the text index of the payload field `using` names; `score_threshold` keeps
    the scores above it, as for any bigger-is-better score."""
    t = 0.0 if report is None else now()
    found = text_rank.rank(ctx.holder, node.using, query, filt, limit + offset, node.idf_corpus)
    threshold = node.score_threshold
    cut = threshold_prefix(np.asarray([s for s, _ in found], np.float32), threshold, "Dot")
    hits = [Hit(score, ref) for score, ref in found[:cut][offset:]]
    if report is not None:
        report.add("bm25", t)
        report.results = len(hits)
        report.note = f"BM25 over the text index of `{node.using}`: no vectors"
    return hits


# --------------------------------------------------------------------------- vector queries


def _resolver(ctx: Context, node: qm.QueryNode, space: Space) -> Callable[[Any], Any]:
    """Vector inputs -> vectors of `space`: point ids through their stored vector."""
    lookup = node.lookup_from
    name = node.using if lookup is None or lookup.vector is None else lookup.vector

    def resolve(value: Any) -> Any:
        if not isinstance(value, qm.PointInput):
            return value
        if lookup is not None and lookup.collection != ctx.collection:
            found = ctx.external[(lookup.collection, name, value.id)]
        else:
            # A collection sharded over peers reads its own points' vectors first too.
            found = ctx.external.get((ctx.collection, name, value.id))
            if found is None:
                found = stored_vector(ctx.holder, name, value.id)
        return check_value(space, found)

    return resolve


def _vector_search(
    ctx: Context,
    space: Space,
    query: qm.VectorQuery,
    resolve: Callable[[Any], Any],
    filt: fm.Filter | None,
    limit: int,
    offset: int,
    threshold: float | None,
    report: QueryReport | None = None,
    indexed_only: bool = False,
) -> list[Hit]:
    """Every candidate of every segment scored (no graph): sparse and multivector queries
    and the recommend / discover / context family."""
    want = limit + offset
    scorer = score_vector_query(ctx.holder, space, query, resolve)
    rows: list[tuple[float, float, PointRef]] = []
    t = 0.0
    for number, segment in enumerate(ctx.holder.segments):
        if not segment.size:
            continue
        deadline.check()
        if indexed_only and unindexed_and_large(ctx.holder, segment, space.name):
            continue
        if report is not None:
            t = now()
        mask = read.segment_mask(segment, filt) & segment.vector_mask(space.name)
        candidates = np.flatnonzero(mask)
        seg = None
        if report is not None:
            index = segment.vector_indexes.get(space.name)
            indexed = index.size if index is not None else 0
            seg = report.segment(number, segment.size, indexed, len(candidates))
            seg.reason = f"{space.kind} {type(query).__name__.lower()} query: no graph"
            t = seg.add("filter", t)
        if not len(candidates):
            continue
        rank, reported, keep = scorer(segment, candidates)
        if seg is not None:
            seg.plan, seg.scored = "exact", len(candidates)
            seg.reason += ", every candidate is scored"
        if not keep.all():
            candidates, rank, reported = candidates[keep], rank[keep], reported[keep]
        best = top_k(rank, want, True).tolist()
        for i in best:
            rows.append((float(rank[i]), float(reported[i]), PointRef(segment, int(candidates[i]))))
        if seg is not None:
            seg.returned = len(best)
            seg.add("search", t)
    if report is not None:
        t = now()
    rows.sort(key=lambda r: -r[0])
    rows = rows[:want]
    cut = threshold_prefix(
        np.asarray([r[1] for r in rows], dtype=np.float32), threshold, space.threshold_distance
    )
    hits = [Hit(reported, ref) for _, reported, ref in rows[:cut][offset:]]
    if report is not None:
        report.add("merge", t)
        report.results = len(hits)
    return hits


# --------------------------------------------------------------------------- other queries


def _sample(holder: SegmentHolder, filt: fm.Filter | None, limit: int) -> list[Hit]:
    pools: list[tuple[Any, npt.NDArray[np.int64]]] = []
    for segment in holder.segments:
        offsets = np.flatnonzero(read.segment_mask(segment, filt))
        if len(offsets):
            pools.append((segment, offsets))
    total = sum(len(o) for _, o in pools)
    if not total:
        return []
    picks = np.random.default_rng().choice(total, size=min(limit, total), replace=False)
    starts = np.cumsum([0, *(len(o) for _, o in pools)])
    hits = []
    for pick in picks.tolist():
        which = int(np.searchsorted(starts, pick, side="right")) - 1
        segment, offsets = pools[which]
        hits.append(Hit(1.0, PointRef(segment, int(offsets[pick - starts[which]]))))
    return hits


def _by_id(sources: list[list[Hit]]) -> dict[PointId, Hit]:
    """Each point's first hit over the sources: fusion keeps it (its `order_value` too, when
    it came from an order_by prefetch) and sets its score, as Qdrant's fusions do."""
    first: dict[PointId, Hit] = {}
    for source in sources:
        for hit in source:
            first.setdefault(hit.ref.id, hit)
    return first


def _fuse(
    query: qm.Fusion,
    sources: list[list[Hit]],
    limit: int,
    offset: int,
    threshold: float | None,
) -> list[Hit]:
    refs = _by_id(sources)
    ranked = [([h.ref.id for h in s], [h.score for h in s]) for s in sources]
    if query.method == "rrf":
        ids, scores = fusion.rrf(ranked, limit=limit + offset, k=query.k, weights=query.weights)
    else:
        ids, scores = fusion.dbsf(ranked, limit=limit + offset)
    hits = [
        refs[_native_id(pid)]._replace(score=float(score))
        for pid, score in zip(ids.tolist(), scores.tolist(), strict=True)
    ]
    return _at_least(hits, threshold)[offset:]


def _at_least(hits: list[Hit], threshold: float | None) -> list[Hit]:
    """Fused and formula scores at or above `score_threshold`, both as float32 (Qdrant's
    ScoreType): a threshold between two float32 values compares as the one it rounds to."""
    if threshold is None:
        return hits
    cut = np.float32(threshold)
    return [h for h in hits if np.float32(h.score) >= cut]


def _native_id(pid: Any) -> PointId:
    return int(pid) if isinstance(pid, int | np.integer) else pid  # type: ignore[no-any-return]


def _formula(
    query: qm.FormulaQuery,
    sources: list[list[Hit]],
    limit: int,
    offset: int,
    threshold: float | None,
) -> list[Hit]:
    refs = [hit.ref for hit in _by_id(sources).values()]
    if not refs:
        return []
    position = {ref.id: i for i, ref in enumerate(refs)}
    scores = []
    for source in sources:
        column = np.full(len(refs), np.nan)
        for hit in source:
            column[position[hit.ref.id]] = hit.score
        scores.append(column)
    payloads = [ref.segment.payload_at(ref.offset) for ref in refs]
    owners = [ref.segment for ref in refs]

    def payload_values(path: str) -> list[Any]:
        return variable_values(path, owners, payloads)

    segments = list({id(ref.segment): ref.segment for ref in refs}.values())
    which = np.asarray([segments.index(ref.segment) for ref in refs], dtype=np.int64)
    offsets = np.asarray([ref.offset for ref in refs], dtype=np.int64)

    def condition_mask(condition: Any) -> npt.NDArray[np.bool_]:
        index = next(i for i, c in enumerate(query.formula.conditions) if c is condition)
        out = np.zeros(len(refs), dtype=np.bool_)
        for number, segment in enumerate(segments):
            selected = which == number
            out[selected] = evaluate(query.conditions[index], segment)[offsets[selected]]
        return out

    values = evaluate_formula(
        query.formula, scores, payload_values, condition_mask, num_candidates=len(refs)
    )
    order = np.argsort(-values.astype(np.float64), kind="stable")[: limit + offset]
    hits = [Hit(float(values[i]), refs[i]) for i in order.tolist()]
    return _at_least(hits, threshold)[offset:]
