"""The older gRPC searches -> REST bodies: `SearchPoints`, `RecommendPoints`,
`DiscoverPoints` and their group forms, each as the body the REST route of the same name
parses. (The Query API decodes straight into plans: `grpc_plan`; these are next.)"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as pb

from tessera.api import grpc_convert as cv
from tessera.api.grpc_convert import drop_none, opt

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
