"""Qdrant's gRPC Query API (`QueryPoints`, `PrefetchQuery`, `QueryPointGroups`) ->
`query_model` plans, straight from the protobuf (no REST body in between).

Vector inputs are checked against the node's `using` vector by `InputParser.vector`, the
rules of each query kind (MMR's diversity, RRF's k, non-empty feedback, hnsw_ef and
oversampling bounds) by the functions `query_parse`
runs on a JSON body: the same rule, the same error, whichever transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qdrant_client import grpc as pb

from tessera.api import query_parse as qp
from tessera.api.envelope import expect_object
from tessera.api.grpc_convert import malformed, opt, payload, strategy_of
from tessera.api.grpc_filter import decode_condition, decode_filter, opt_filter, point_id
from tessera.api.grpc_reads import order_by, selection, with_lookup
from tessera.api.grpc_validate import nested
from tessera.api.grpc_vectors import inferred, sparse
from tessera.api.points_read import parse_limit
from tessera.api.render import check_vector_names
from tessera.collection.values import Lookup, Selection
from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest, UnprocessableEntity
from tessera.ids import parse_point_id
from tessera.query import filter_model as fm
from tessera.query import formula as fx
from tessera.query import query_model as qm
from tessera.query.recommend import check_examples

FUSIONS = {0: "rrf", 1: "dbsf"}


# --------------------------------------------------------------------------- inputs


def vector_input(inputs: qp.InputParser, vi: pb.VectorInput) -> Any:
    kind = vi.WhichOneof("variant")
    if kind == "id":
        return inputs.point(parse_point_id(point_id(vi.id)))
    if kind == "dense":
        return inputs.vector("dense", np.asarray(vi.dense.data, dtype=np.float64))
    if kind == "sparse":
        return inputs.vector("sparse", sparse(vi.sparse.indices, vi.sparse.values))
    if kind == "multi_dense":
        rows = [np.asarray(row.data, dtype=np.float64) for row in vi.multi_dense.vectors]
        return inputs.vector("multi", rows)
    if kind is not None:  # a document (BM25 infers it), or an image or object (refused)
        given = "document" if kind == "document" else "inference"
        return inputs.vector(*inferred(given, vi.document, query=True))
    raise malformed("a VectorInput must set one of its variants")


def _pairs(inputs: qp.InputParser, ctx: pb.ContextInput) -> tuple[qm.ContextPair, ...]:
    return tuple(
        qm.ContextPair(vector_input(inputs, p.positive), vector_input(inputs, p.negative))
        for p in ctx.pairs
    )


# --------------------------------------------------------------------------- queries


def query(q: pb.Query, config: CollectionConfig, using: str) -> qm.Query:
    inputs = qp.InputParser(config, using)
    kind = q.WhichOneof("variant")
    if kind == "nearest":
        return qm.Nearest(vector_input(inputs, q.nearest))
    if kind == "nearest_with_mmr":
        mmr = q.nearest_with_mmr.mmr
        diversity = opt(mmr, "diversity")
        return qp.nearest_mmr(
            vector_input(inputs, q.nearest_with_mmr.nearest),
            None if diversity is None else float(diversity),
            opt(mmr, "candidates_limit"),
            "query.variant.",  # the message's path, as Qdrant's gRPC validator names it
        )
    if kind == "recommend":
        rec = q.recommend
        if not rec.positive and not rec.negative:
            raise qp.no_examples()
        positive = tuple(vector_input(inputs, x) for x in rec.positive)
        negative = tuple(vector_input(inputs, x) for x in rec.negative)
        chosen = strategy_of(rec.strategy) if rec.HasField("strategy") else None
        return qm.Recommend(
            positive,
            negative,
            check_examples(chosen, len(positive), len(negative), query_api=True),
        )
    if kind == "discover":
        if not q.discover.HasField("context"):
            raise BadRequest("DiscoverInput context is missing")
        target = vector_input(inputs, q.discover.target)
        return qm.Discover(target, _pairs(inputs, q.discover.context))
    if kind == "context":
        return qp.context_query(_pairs(inputs, q.context))
    if kind == "order_by":
        return order_by(q.order_by)
    if kind == "fusion":
        if q.fusion not in FUSIONS:
            raise BadRequest(f"invalid fusion type value {q.fusion}")
        return qm.Fusion("dbsf" if FUSIONS[q.fusion] == "dbsf" else "rrf")
    if kind == "rrf":
        weights = tuple(float(w) for w in q.rrf.weights) or None
        return qp.rrf_fusion(opt(q.rrf, "k"), weights, "query.variant.")
    if kind == "sample":
        if q.sample != pb.Sample.Random:
            raise BadRequest(f"invalid sample type value {q.sample}")
        return qm.Sample()
    if kind == "formula":
        return formula_query(q.formula)
    if kind == "relevance_feedback":
        return _feedback(inputs, q.relevance_feedback)
    if kind == "text":
        bm25 = q.text.bm25 if q.text.HasField("bm25") else None
        k = bm25.k if bm25 is not None and bm25.HasField("k") else None
        b = bm25.b if bm25 is not None and bm25.HasField("b") else None
        return qm.text_query(q.text.query, k, b)
    raise malformed("a Query must set one of its variants")


def _feedback(inputs: qp.InputParser, fb: pb.RelevanceFeedbackInput) -> qm.RelevanceFeedback:
    # The places as Qdrant's gRPC validator names them: a oneof's message is `variant`
    # (`query.variant.k` for an rrf's k), its fields follow
    qp.check_feedback(len(fb.feedback), "query.variant")
    items = tuple(
        qm.FeedbackItem(vector_input(inputs, i.example), float(i.score)) for i in fb.feedback
    )
    if fb.strategy.WhichOneof("variant") != "naive":
        expect_object(None, "strategy")  # REST's error for a missing strategy
    naive = fb.strategy.naive
    target = vector_input(inputs, fb.target)
    b_at = "query.variant.strategy.variant.b"
    return qp.relevance_feedback(target, items, naive.a, naive.b, naive.c, b_at)


# --------------------------------------------------------------------------- formulas


class _Formula:
    """A formula `Expression` tree -> `formula.Formula`, with its conditions decoded."""

    def __init__(self) -> None:
        self.conditions: list[fm.Condition] = []
        self.paths: set[str] = set()

    def expr(self, e: pb.Expression) -> fx.Expr:
        kind = e.WhichOneof("variant")
        if kind == "constant":
            return fx.Const(float(e.constant))
        if kind == "variable":
            var = fx.parse_variable(e.variable)
            if isinstance(var, int):
                return fx.ScoreVar(var)
            self.paths.add(var)
            return fx.PayloadVar(var)
        if kind == "condition":
            # REST parses each condition as the filter {"must": [condition]}
            self.conditions.append(decode_condition(e.condition, "formula.must[0]"))
            return fx.ConditionVar(len(self.conditions) - 1)
        if kind == "geo_distance":
            lat, lon = float(e.geo_distance.origin.lat), float(e.geo_distance.origin.lon)
            fx.check_origin(lat, lon)
            return fx.GeoDistance(lon, lat, fx.payload_key(e.geo_distance.to, self.paths))
        if kind == "datetime":
            return fx.datetime_constant(e.datetime)
        if kind == "datetime_key":
            return fx.DatetimeKey(fx.payload_key(e.datetime_key, self.paths))
        if kind in ("mult", "sum", "max", "min"):
            items = getattr(getattr(e, kind), kind)
            fx.check_operands(kind, len(items))
            return fx.Nary(kind, tuple(self.expr(x) for x in items))  # type: ignore[arg-type]
        if kind in ("neg", "abs", "sqrt", "exp", "log10", "ln", "acosh"):
            return fx.Unary(kind, self.expr(getattr(e, kind)))  # type: ignore[arg-type]
        if kind == "div":
            default = opt(e.div, "by_zero_default")
            return fx.Div(
                self.expr(e.div.left),
                self.expr(e.div.right),
                None if default is None else float(default),
            )
        if kind == "pow":
            return fx.Pow(self.expr(e.pow.base), self.expr(e.pow.exponent))
        if kind in ("exp_decay", "gauss_decay", "lin_decay"):
            return self._decay(kind, getattr(e, kind))
        raise malformed("an Expression must set one of its variants")

    def _decay(self, kind: str, params: pb.DecayParamsExpression) -> fx.Decay:
        short: fx.DecayKind = (
            "lin" if kind == "lin_decay" else "exp" if kind == "exp_decay" else "gauss"
        )
        lam = fx.decay_lambda(short, opt(params, "midpoint"), opt(params, "scale"))
        target = self.expr(params.target) if params.HasField("target") else None
        return fx.Decay(short, self.expr(params.x), target, lam)


def formula_query(f: pb.Formula) -> qm.FormulaQuery:
    decoder = _Formula()
    root = decoder.expr(f.expression)
    score_defaults, payload_defaults = fx.defaults_by_variable(payload(f.defaults))
    formula = fx.Formula(
        root=root,
        conditions=tuple(decoder.conditions),
        payload_paths=frozenset(decoder.paths),
        score_defaults=score_defaults,
        payload_defaults=payload_defaults,
    )
    filters = tuple(fm.Filter(must=(c,)) for c in decoder.conditions)
    return qm.FormulaQuery(formula, filters)


# --------------------------------------------------------------------------- nodes


def exact_and_ef(message: Any) -> tuple[bool, int | None]:
    """`params.exact` and `params.hnsw_ef`: all the older searches' nodes read of `params`
    (as REST's `parse_params`)."""
    if not message.HasField("params"):
        return False, None
    p: pb.SearchParams = message.params
    if p.HasField("acorn"):
        qp.check_acorn({"max_selectivity": opt(p.acorn, "max_selectivity")})
    return bool(opt(p, "exact")), qp.checked_hnsw_ef(opt(p, "hnsw_ef"))


def indexed_only(message: Any) -> bool:
    """`params.indexed_only` of a request with `params`."""
    return message.HasField("params") and bool(opt(message.params, "indexed_only"))


def search_params(message: Any) -> tuple[bool, int | None, qm.QuantizationParams | None, Any]:
    """`params`: exact, hnsw_ef, quantization and the IDF corpus filter."""
    if not message.HasField("params"):
        return False, None, None, None
    exact, ef = exact_and_ef(message)
    p: pb.SearchParams = message.params
    quantization = None
    if p.HasField("quantization"):
        q = p.quantization
        oversampling = opt(q, "oversampling")
        quantization = qp.quantization_params(
            bool(opt(q, "ignore")),
            opt(q, "rescore"),
            None if oversampling is None else float(oversampling),
        )
    corpus = None
    if p.HasField("idf") and p.idf.HasField("corpus"):
        corpus = decode_filter(p.idf.corpus)
    return exact, ef, quantization, corpus


def node(message: Any, config: CollectionConfig, default_limit: int = 10) -> qm.QueryNode:
    """A `QueryPoints`, `PrefetchQuery` or `QueryPointGroups` as a query node."""
    using = opt(message, "using") or ""
    prefetch = tuple(
        nested("prefetch", i, lambda p=p: node(p, config))  # type: ignore[misc]
        for i, p in enumerate(message.prefetch)
    )
    parsed = query(message.query, config, using) if message.HasField("query") else None
    threshold = opt(message, "score_threshold")
    exact, ef, quantization, corpus = search_params(message)
    lookup = None
    if message.HasField("lookup_from"):
        loc = message.lookup_from
        lookup = qm.LookupFrom(loc.collection_name, opt(loc, "vector_name"))
    result = qm.QueryNode(
        query=parsed,
        prefetch=prefetch,
        using=using,
        filter=opt_filter(message),
        score_threshold=None if threshold is None else float(threshold),
        limit=qp.positive_int(opt(message, "limit"), default_limit, "limit"),
        lookup_from=lookup,
        exact=exact,
        hnsw_ef=ef,
        idf_corpus=corpus,
        quantization=quantization,
        indexed_only=indexed_only(message),
    )
    return result


def decoded_plan(
    req: Any, config: CollectionConfig, decode: Callable[[Any, CollectionConfig], qm.QueryNode]
) -> tuple[qm.Plan, Selection]:
    """A request's plan: its node (`decode`), `offset` and what it answers of each point."""
    root = decode(req, config)
    offset = parse_limit(opt(req, "offset"), 0, "offset")
    select = selection(req, payload_default=False)
    check_vector_names(select, config)
    return qm.Plan(root, offset), select


def query_points(req: pb.QueryPoints, config: CollectionConfig) -> tuple[qm.Plan, Selection]:
    return decoded_plan(req, config, node)


def query_groups(
    req: pb.QueryPointGroups, config: CollectionConfig
) -> tuple[qm.Plan, Selection, Lookup | None]:
    if not req.group_by:  # Qdrant validates `length(min = 1)` before converting
        raise UnprocessableEntity(
            'Validation error in JSON body: [group_by: value "" invalid, must be at least 1 '
            "characters]"
        )
    root = node(req, config)
    groups = qm.GroupSpec(
        req.group_by,
        qp.positive_int(opt(req, "group_size"), 3, "group_size"),
        qp.positive_int(opt(req, "limit"), 10, "limit"),
    )
    select = selection(req, payload_default=False)
    check_vector_names(select, config)
    return qm.Plan(root, 0, groups), select, with_lookup(req)
