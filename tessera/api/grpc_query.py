"""gRPC search requests -> REST bodies: the Query API (`QueryPoints`, `PrefetchQuery`,
`QueryPointGroups`) and the older `SearchPoints`, `RecommendPoints`, `DiscoverPoints` and
their group forms, each as the body the REST route of the same name parses."""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as pb

from tessera.api import grpc_convert as cv
from tessera.api.grpc_convert import drop_none, opt
from tessera.errors import BadRequest, UnprocessableEntity

FUSIONS = {0: "rrf", 1: "dbsf"}


# --------------------------------------------------------------------------- Query API


def _pair(positive: Any, negative: Any) -> dict[str, Any]:
    return {"positive": cv.vector_input(positive), "negative": cv.vector_input(negative)}


def _context(ctx: pb.ContextInput) -> list[dict[str, Any]]:
    return [_pair(p.positive, p.negative) for p in ctx.pairs]


def query(q: pb.Query) -> Any:
    kind = q.WhichOneof("variant")
    if kind == "nearest":
        return {"nearest": cv.vector_input(q.nearest)}
    if kind == "nearest_with_mmr":
        mmr = q.nearest_with_mmr.mmr
        return {
            "nearest": cv.vector_input(q.nearest_with_mmr.nearest),
            "mmr": drop_none(
                {
                    "diversity": opt(mmr, "diversity"),
                    "candidates_limit": opt(mmr, "candidates_limit"),
                }
            ),
        }
    if kind == "recommend":
        rec = q.recommend
        body: dict[str, Any] = {
            "positive": [cv.vector_input(x) for x in rec.positive],
            "negative": [cv.vector_input(x) for x in rec.negative],
        }
        if rec.HasField("strategy"):
            body["strategy"] = cv.STRATEGIES.get(rec.strategy, "average_vector")
        return {"recommend": body}
    if kind == "discover":
        return {
            "discover": {
                "target": cv.vector_input(q.discover.target),
                "context": _context(q.discover.context),
            }
        }
    if kind == "context":
        return {"context": _context(q.context)}
    if kind == "order_by":
        return {"order_by": cv.order_by(q.order_by)}
    if kind == "fusion":
        return {"fusion": FUSIONS.get(q.fusion, "rrf")}
    if kind == "rrf":
        rrf = drop_none({"k": opt(q.rrf, "k")})
        if q.rrf.weights:
            rrf["weights"] = list(q.rrf.weights)
        return {"rrf": rrf}
    if kind == "sample":
        return {"sample": "random"}
    if kind == "formula":
        formula: dict[str, Any] = {"formula": expression(q.formula.expression)}
        if q.formula.defaults:
            formula["defaults"] = cv.payload(q.formula.defaults)
        return formula
    if kind == "relevance_feedback":
        return {"relevance_feedback": _feedback(q.relevance_feedback)}
    if kind == "text":
        raise BadRequest("Wrong input: Text (BM25) queries are not supported by Tessera")
    raise cv.malformed("a Query must set one of its variants")


def _feedback(fb: pb.RelevanceFeedbackInput) -> dict[str, Any]:
    out: dict[str, Any] = {
        "target": cv.vector_input(fb.target),
        "feedback": [
            {"example": cv.vector_input(i.example), "score": i.score} for i in fb.feedback
        ],
    }
    if fb.strategy.WhichOneof("variant") == "naive":
        naive = fb.strategy.naive
        out["strategy"] = {"naive": {"a": naive.a, "b": naive.b, "c": naive.c}}
    return out


_UNARY = ("neg", "abs", "sqrt", "exp", "log10", "ln", "acosh")
_DECAYS = ("exp_decay", "gauss_decay", "lin_decay")


def expression(e: pb.Expression) -> Any:
    kind = e.WhichOneof("variant")
    if kind == "constant":
        return e.constant
    if kind == "variable":
        return e.variable
    if kind == "condition":
        return cv.condition(e.condition)
    if kind == "geo_distance":
        return {
            "geo_distance": {"origin": cv.geo_point(e.geo_distance.origin), "to": e.geo_distance.to}
        }
    if kind in ("datetime", "datetime_key"):
        return {kind: getattr(e, kind)}
    if kind in ("mult", "sum", "max", "min"):
        return {kind: [expression(x) for x in getattr(getattr(e, kind), kind)]}
    if kind in _UNARY:
        return {kind: expression(getattr(e, kind))}
    if kind == "div":
        div = {"left": expression(e.div.left), "right": expression(e.div.right)}
        if e.div.HasField("by_zero_default"):
            div["by_zero_default"] = e.div.by_zero_default
        return {"div": div}
    if kind == "pow":
        return {"pow": {"base": expression(e.pow.base), "exponent": expression(e.pow.exponent)}}
    if kind in _DECAYS:
        params: pb.DecayParamsExpression = getattr(e, kind)
        decay: dict[str, Any] = {"x": expression(params.x)}
        if params.HasField("target"):
            decay["target"] = expression(params.target)
        decay.update(
            drop_none({"scale": opt(params, "scale"), "midpoint": opt(params, "midpoint")})
        )
        return {kind: decay}
    raise cv.malformed("an Expression must set one of its variants")


def _node(message: Any) -> dict[str, Any]:
    """The fields a prefetch and a query request share."""
    body = drop_none(
        {
            "query": query(message.query) if message.HasField("query") else None,
            "using": opt(message, "using"),
            "filter": cv.opt_filter(message),
            "params": cv.search_params(message),
            "score_threshold": opt(message, "score_threshold"),
            "limit": opt(message, "limit"),
            "lookup_from": cv.lookup_location(message),
        }
    )
    if message.prefetch:
        body["prefetch"] = [_node(p) for p in message.prefetch]
    return body


def query_points(req: pb.QueryPoints) -> dict[str, Any]:
    body = _node(req)
    body.update(
        drop_none(
            {
                "offset": opt(req, "offset"),
                "with_payload": cv.with_payload(req),
                "with_vector": cv.with_vectors(req),
            }
        )
    )
    return body


def query_groups(req: pb.QueryPointGroups) -> dict[str, Any]:
    if not req.group_by:  # Qdrant validates `length(min = 1)` before converting
        raise UnprocessableEntity(
            'Validation error in JSON body: [group_by: value "" invalid, must be at least 1 '
            "characters]"
        )
    body = _node(req)
    body.update(
        drop_none(
            {
                "group_by": req.group_by,
                "group_size": opt(req, "group_size"),
                "with_payload": cv.with_payload(req),
                "with_vector": cv.with_vectors(req),
                "with_lookup": cv.with_lookup(req),
            }
        )
    )
    return body


# --------------------------------------------------------------------------- older searches


def _common(req: Any) -> dict[str, Any]:
    """Fields of SearchPoints, RecommendPoints, DiscoverPoints and their group forms."""
    return drop_none(
        {
            "filter": cv.opt_filter(req),
            "limit": req.limit,
            "params": cv.search_params(req),
            "with_payload": cv.with_payload(req),
            "with_vector": cv.with_vectors(req),
        }
    )


def _grouping(req: Any, body: dict[str, Any]) -> dict[str, Any]:
    body.update(
        drop_none(
            {
                "group_by": req.group_by,
                "group_size": req.group_size,
                "with_lookup": cv.with_lookup(req),
            }
        )
    )
    return body


def search(req: pb.SearchPoints | pb.SearchPointGroups) -> dict[str, Any]:
    body = _common(req)
    raw: Any = list(req.vector)
    if req.HasField("sparse_indices"):
        raw = {"indices": list(req.sparse_indices.data), "values": raw}
    if req.HasField("vector_name") or req.HasField("sparse_indices"):
        raw = {"name": req.vector_name, "vector": raw}
    body["vector"] = raw
    body.update(drop_none({"score_threshold": opt(req, "score_threshold")}))
    if isinstance(req, pb.SearchPoints):
        body.update(drop_none({"offset": opt(req, "offset")}))
    return body


def search_groups(req: pb.SearchPointGroups) -> dict[str, Any]:
    return _grouping(req, search(req))


def recommend(req: pb.RecommendPoints | pb.RecommendPointGroups) -> dict[str, Any]:
    body = _common(req)
    body["positive"] = cv.point_ids(req.positive) + [cv.vector(v) for v in req.positive_vectors]
    body["negative"] = cv.point_ids(req.negative) + [cv.vector(v) for v in req.negative_vectors]
    if req.HasField("strategy"):
        body["strategy"] = cv.STRATEGIES.get(req.strategy, "average_vector")
    body.update(
        drop_none(
            {
                "score_threshold": opt(req, "score_threshold"),
                "using": opt(req, "using"),
                "lookup_from": cv.lookup_location(req),
            }
        )
    )
    if isinstance(req, pb.RecommendPoints):
        body.update(drop_none({"offset": opt(req, "offset")}))
    return body


def recommend_groups(req: pb.RecommendPointGroups) -> dict[str, Any]:
    return _grouping(req, recommend(req))


def discover(req: pb.DiscoverPoints) -> dict[str, Any]:
    body = _common(req)
    if req.HasField("target") and req.target.WhichOneof("target") == "single":
        body["target"] = cv.vector_example(req.target.single)
    body["context"] = [
        {
            "positive": cv.vector_example(pair.positive),
            "negative": cv.vector_example(pair.negative),
        }
        for pair in req.context
    ]
    body.update(
        drop_none(
            {
                "offset": opt(req, "offset"),
                "using": opt(req, "using"),
                "lookup_from": cv.lookup_location(req),
            }
        )
    )
    return body
