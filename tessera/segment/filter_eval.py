"""Filters evaluated over a segment: boolean masks from indexes, payload checks for the rest.

A filter is compiled into a tree of nodes, each able to answer "which of these candidate
offsets match?" as a mask:

- an *index node* answers a field condition from the key's payload index (a vectorised
  lookup), then checks on payloads only the few candidates whose values the index does not
  store but that could still match (see `field_index`);
- id, vector and slice nodes answer from the id tracker and vector storages;
- a *predicate node* reads payloads: one pass over the candidates, whatever the number of
  conditions it folds together (a sub-filter without any index collapses into one);
- a *filter node* runs its clauses on a shrinking candidate set: `must` children narrow it in
  order of expected cost (ids, indexes, vectors, sub-filters, then one payload pass), and
  `must_not`, `should` and `min_should` only look at what is left.

Semantics are Qdrant's as qdrant-client's local mode defines them: an empty `should` is no
constraint, `min_should` counts matching conditions, and so on (`filter_check`).
"""

from __future__ import annotations

import numpy as np

from tessera.query import filter_model as m
from tessera.query.filter_check import (
    Payload,
    Predicate,
    compile_filter_predicate,
    compile_predicate,
)
from tessera.query.slice_hash import slice_of
from tessera.query.target import BoolMask, FilterTarget
from tessera.query.text_tokenizer import Tokenizer
from tessera.segment.field_index import (
    K_ALL,
    K_FLOAT,
    K_INT,
    K_STR,
    FieldIndex,
    kind_of,
)
from tessera.segment.field_index_text import TextIndex

Estimate = tuple[int, int, int]


class _Ctx:
    def __init__(self, target: FilterTarget) -> None:
        self.target = target
        self.n = target.point_count()
        self._payloads: dict[int, Payload] = {}

    def text_rule(self, path: str) -> tuple[Tokenizer, bool] | None:
        """The text index on `path`, as a full-text condition inside `nested` reads it."""
        index = self.target.field_index(path)
        if isinstance(index, TextIndex):
            return index.tokenizer, index.phrase_matching
        return None

    def payload(self, offset: int) -> Payload:
        found = self._payloads.get(offset)
        if found is None:
            found = self._payloads[offset] = self.target.payload_at(offset)
        return found

    def scan(self, cand: BoolMask, pred: Predicate) -> BoolMask:
        """The candidates whose payload passes `pred` (the only per-point loop)."""
        hits = [o for o in np.flatnonzero(cand).tolist() if pred(self.payload(o))]
        out = np.zeros(self.n, dtype=np.bool_)
        out[hits] = True
        return out


class _Node:
    rank = 3

    def mask(self, cand: BoolMask) -> BoolMask:
        """The matching offsets among the candidates (a subset of `cand`)."""
        raise NotImplementedError

    def estimate(self, live: BoolMask, total: int) -> Estimate:
        return (0, total // 2, total)

    def cheap(self) -> bool:
        """Whether `mask` runs without reading payloads or ids."""
        return True


class _PredNode(_Node):
    rank = 9

    def __init__(self, ctx: _Ctx, pred: Predicate) -> None:
        self.ctx, self.pred = ctx, pred

    def mask(self, cand: BoolMask) -> BoolMask:
        return self.ctx.scan(cand, self.pred)

    def cheap(self) -> bool:
        return False


class _IndexNode(_Node):
    rank = 1

    def __init__(
        self, ctx: _Ctx, answer: BoolMask, index: FieldIndex, kinds: int, cond: m.Condition
    ) -> None:
        self.ctx, self.answer, self.kinds, self.cond = ctx, answer, kinds, cond
        self.fallback: BoolMask | None = None
        if kinds and index.has_other_kinds(kinds):
            self.fallback = (index.other_kinds(ctx.n) & np.uint8(kinds)) != 0
            self.fallback &= ~answer
            if not self.fallback.any():
                self.fallback = None

    def mask(self, cand: BoolMask) -> BoolMask:
        out = self.answer & cand
        if self.fallback is not None:
            out |= self.ctx.scan(self.fallback & cand, compile_predicate(self.cond))
        return out

    def estimate(self, live: BoolMask, total: int) -> Estimate:
        c = int(np.count_nonzero(self.answer & live))
        extra = 0 if self.fallback is None else int(np.count_nonzero(self.fallback & live))
        return (c, c + extra // 2, c + extra)

    def cheap(self) -> bool:
        return self.fallback is None


class _MaskNode(_Node):
    """A precomputed mask: has_id, has_vector."""

    def __init__(self, answer: BoolMask, rank: int) -> None:
        self.answer, self.rank = answer, rank

    def mask(self, cand: BoolMask) -> BoolMask:
        return self.answer & cand

    def estimate(self, live: BoolMask, total: int) -> Estimate:
        c = int(np.count_nonzero(self.answer & live))
        return (c, c, c)


class _SliceNode(_Node):
    rank = 5

    def __init__(self, ctx: _Ctx, cond: m.Slice) -> None:
        self.ctx, self.cond = ctx, cond

    def mask(self, cand: BoolMask) -> BoolMask:
        offsets = np.flatnonzero(cand)
        ids = [self.ctx.target.external_id_at(int(o)) for o in offsets]
        out = np.zeros(self.ctx.n, dtype=np.bool_)
        out[offsets[slice_of(ids, self.cond.total) == self.cond.index]] = True
        return out

    def estimate(self, live: BoolMask, total: int) -> Estimate:
        return (0, round(total / self.cond.total), total)

    def cheap(self) -> bool:
        return False


class _FilterNode(_Node):
    rank = 4

    def __init__(self, ctx: _Ctx, f: m.Filter) -> None:
        self.ctx = ctx
        self.must = sorted(_nodes(ctx, f.must), key=lambda x: x.rank)
        self.must_not = _nodes(ctx, f.must_not)
        self.should = _nodes(ctx, f.should)
        ms = f.min_should
        self.min_should = (_nodes(ctx, ms.conditions), ms.min_count) if ms else None

    def _children(self) -> list[_Node]:
        extra = self.min_should[0] if self.min_should else []
        return [*self.must, *self.must_not, *self.should, *extra]

    def cheap(self) -> bool:
        return all(c.cheap() for c in self._children())

    def mask(self, cand: BoolMask) -> BoolMask:
        res = cand.copy()
        scan = self.ctx.scan
        fixed, preds = _split(self.must)
        for i, node in enumerate(fixed):
            if i and not res.any():
                return res
            res = node.mask(res)
        if preds and res.any():
            res = scan(res, _all(preds))
        fixed, preds = _split(self.must_not)
        for node in fixed:
            res &= ~node.mask(res)
        if preds and res.any():
            res &= ~scan(res, _any(preds))
        if self.should:
            fixed, preds = _split(self.should)
            acc = np.zeros_like(res)
            for node in fixed:
                acc |= node.mask(res & ~acc)
            if preds:
                acc |= scan(res & ~acc, _any(preds))
            res = acc
        if self.min_should is not None:
            res = self._min_should(res, *self.min_should)
        return res

    def _min_should(self, res: BoolMask, nodes: list[_Node], need: int) -> BoolMask:
        fixed, preds = _split(nodes)
        counts = np.zeros(len(res), dtype=np.int64)
        for node in fixed:
            counts += node.mask(res)
        if preds:
            todo = res & (counts < need) & (counts + len(preds) >= need)
            for o in np.flatnonzero(todo).tolist():
                payload = self.ctx.payload(o)
                counts[o] += sum(1 for p in preds if p(payload))
        return res & (counts >= need)

    def estimate(self, live: BoolMask, total: int) -> Estimate:
        parts = [c.estimate(live, total) for c in self.must]
        parts += [_invert(c.estimate(live, total), total) for c in self.must_not]
        if self.should:
            parts.append(_combine_should([c.estimate(live, total) for c in self.should], total))
        if self.min_should is not None:
            nodes, need = self.min_should
            est = _combine_should([c.estimate(live, total) for c in nodes], total)
            parts.append(est if need == 1 else (0, est[1] // need, est[2]))
        return _combine_must(parts, total)


def _split(nodes: list[_Node]) -> tuple[list[_Node], list[Predicate]]:
    fixed = [x for x in nodes if not isinstance(x, _PredNode)]
    return fixed, [x.pred for x in nodes if isinstance(x, _PredNode)]


def _all(preds: list[Predicate]) -> Predicate:
    return preds[0] if len(preds) == 1 else lambda p: all(f(p) for f in preds)


def _any(preds: list[Predicate]) -> Predicate:
    return preds[0] if len(preds) == 1 else lambda p: any(f(p) for f in preds)


def _nodes(ctx: _Ctx, conds: tuple[m.Condition, ...] | None) -> list[_Node]:
    return [_compile(ctx, c) for c in conds or ()]


def _compile(ctx: _Ctx, cond: m.Condition) -> _Node:
    target, n = ctx.target, ctx.n
    match cond:
        case m.Filter():
            node = _FilterNode(ctx, cond)
            if not node._children() and cond.min_should is None:
                return _MaskNode(np.ones(n, dtype=np.bool_), 3)
            if all(isinstance(c, _PredNode) for c in node._children()):
                return _PredNode(ctx, compile_filter_predicate(cond, text_rules=ctx.text_rule))
            return node
        case m.HasId():
            answer = np.zeros(n, dtype=np.bool_)
            offsets = np.asarray(target.offsets_of(cond.ids), dtype=np.int64)
            answer[offsets[offsets < n]] = True
            return _MaskNode(answer, 0)
        case m.HasVector():
            return _MaskNode(np.asarray(target.vector_mask(cond.name)[:n], dtype=np.bool_), 2)
        case m.Slice():
            return _SliceNode(ctx, cond)
        case m.Nested():
            return _PredNode(ctx, compile_predicate(cond, text_rules=ctx.text_rule))
        case _:
            index = target.field_index(cond.key.text)
            if isinstance(index, FieldIndex) and _index_serves(index, cond):
                found = _index_answer(index, cond, n)
                if found is not None:
                    return _IndexNode(ctx, found, index, _fallback_kinds(cond, index), cond)
            return _PredNode(ctx, compile_predicate(cond))


def _bounds(b: m.Bounds) -> tuple[float | None, float | None, float | None, float | None]:
    # All four bounds apply. Qdrant's numeric index, when it leads a query, reads one bound a
    # side (`gt` over `gte`, `lt` over `lte`), but checks all four on each point otherwise
    # (Qdrant Edge: `{"gt": 2, "gte": 5}` alone selects 3, beside a has_id it does not): the
    # documented reading is kept.
    return (b.gt, b.gte, b.lt, b.lte)


def _index_serves(idx: FieldIndex, cond: m.FieldTest) -> bool:
    """Whether Qdrant reads this condition from the index rather than the payloads: an
    integer index built without `lookup` answers no match, one without `range` no range (the
    payloads do: 2.5 then passes `gt: 1`). (The FieldCondition form of `is_empty` / `is_null`
    is answered by an index on its key as the condition form is, Qdrant Edge shows; only the
    payloads' check takes it value by value.)"""
    match cond:
        case m.MatchValue() | m.MatchAny() | m.MatchExcept():
            return idx.data_type != "integer" or idx.schema().param("lookup") is not False
        case m.NumericRange() | m.DatetimeRange():
            return idx.data_type != "integer" or idx.schema().param("range") is not False
    return True


def _index_answer(idx: FieldIndex, cond: m.FieldTest, n: int) -> BoolMask | None:
    match cond:
        case m.MatchValue():
            return idx.match_values([cond.value], n)
        case m.MatchAny():
            return idx.match_values(cond.values, n)
        case m.MatchExcept():
            return idx.match_except(cond.values, n)
        case m.MatchText():
            return idx.match_text(cond.text, cond.any_token, n)
        case m.MatchPhrase():
            return idx.match_phrase(cond.phrase, n)
        case m.MatchPrefix():
            return idx.match_prefix(cond.prefix, n)
        case m.MatchSubstring():
            return idx.match_substring(cond.substring, n)
        case m.NumericRange():
            return idx.range_mask(*_bounds(cond.bounds), n)
        case m.DatetimeRange():
            return idx.datetime_range_mask(*_bounds(cond.bounds), n)
        case m.GeoRadius():
            return idx.geo_radius(cond.center[0], cond.center[1], cond.radius, n)
        case m.GeoBoundingBox():
            return idx.geo_bbox(cond.top_left, cond.bottom_right, n)
        case m.GeoPolygon():
            return idx.geo_polygon(cond.exterior, cond.interiors, n)
        case m.ValuesCount():
            return idx.values_count_mask(*_bounds(cond.bounds), n)
        case m.IsEmpty():
            mask = idx.is_empty_mask(n)
            return mask.copy() if cond.expected else ~mask
        case m.IsNull():
            mask = idx.is_null_mask(n)
            return mask.copy() if cond.expected else ~mask
    return None


def _fallback_kinds(cond: m.FieldTest, index: FieldIndex) -> int:
    """Kinds of values an index may leave out that could still satisfy the condition.

    Datetime ranges and geo shapes are answered only by datetime and geo indexes, which store
    every value that could satisfy them, so nothing is left to check; the whole-field tests
    (values_count, is_empty, is_null) are exact from any index."""
    match cond:
        case m.MatchValue():
            return kind_of(cond.value)
        case m.MatchAny():
            return kind_of(cond.values[0]) if cond.values else 0
        case m.MatchExcept():
            return 0 if "except" in index.complete_for else K_ALL
        case m.MatchText() | m.MatchPhrase() | m.MatchPrefix() | m.MatchSubstring():
            return K_STR
        case m.NumericRange():
            return 0 if "range" in index.complete_for else K_INT | K_FLOAT
    return 0


def evaluate(filt: m.Filter, target: FilterTarget) -> BoolMask:
    """Which offsets of the target match the filter, already ANDed with its live mask."""
    ctx = _Ctx(target)
    cand = np.asarray(target.live_mask()[: ctx.n], dtype=np.bool_).copy()
    return _compile(ctx, filt).mask(cand)


def estimate_cardinality(filt: m.Filter, target: FilterTarget) -> Estimate:
    """(min, expected, max) matching live points, from indexes alone.

    When every condition is answered by indexes, ids or vectors the count is exact; otherwise
    a condition read from payloads counts as (0, half, all) and clauses combine the way
    Qdrant's estimator combines them."""
    ctx = _Ctx(target)
    live = np.asarray(target.live_mask()[: ctx.n], dtype=np.bool_)
    total = int(np.count_nonzero(live))
    node = _compile(ctx, filt)
    if node.cheap():
        c = int(np.count_nonzero(node.mask(live.copy())))
        return (c, c, c)
    lo, exp, hi = node.estimate(live, total)
    return (lo, min(max(exp, lo), hi), hi)


def _invert(e: Estimate, total: int) -> Estimate:
    return (total - e[2], total - e[1], total - e[0])


def _combine_must(parts: list[Estimate], total: int) -> Estimate:
    if not parts:
        return (total, total, total)
    lo = total
    prob = 1.0
    for p_lo, p_exp, _ in parts:
        lo = max(0, lo - (total - p_lo))
        prob *= p_exp / total if total else 0.0
    hi = min(p[2] for p in parts)
    return (lo, min(max(round(prob * total), lo), hi), hi)


def _combine_should(parts: list[Estimate], total: int) -> Estimate:
    if not parts:
        return (0, 0, 0)
    miss = 1.0
    for _, p_exp, _ in parts:
        miss *= (total - p_exp) / total if total else 1.0
    lo = max(p[0] for p in parts)
    hi = min(total, sum(p[2] for p in parts))
    return (lo, min(max(round((1.0 - miss) * total), lo), hi), hi)
