"""The older gRPC searches (`SearchPoints`, `RecommendPoints`, `DiscoverPoints`, their batch
and group forms) -> typed requests, straight from the protobuf: a `requests.Search` for
`Search` (as REST's `/points/search`), one-node query plans for the others (as REST's
`query_legacy` routes). Defaults and rules are REST's, checked by the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qdrant_client import grpc as pb

from tessera.api import query_parse as qp
from tessera.api.grpc_convert import malformed, opt, strategy_of
from tessera.api.grpc_filter import opt_filter, point_id
from tessera.api.grpc_plan import decoded_plan, exact_and_ef, indexed_only, search_params
from tessera.api.grpc_reads import selection, with_lookup
from tessera.api.grpc_vectors import inferred, sparse, vector
from tessera.api.points_read import parse_limit, positive_limit, vector_query
from tessera.api.render import check_vector_names
from tessera.api.vectors_parse import VectorRule, checked_vector
from tessera.collection import requests
from tessera.collection.values import Lookup, Quantization, SearchParams, Selection, VectorInput
from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest
from tessera.ids import parse_point_id
from tessera.query import query_model as qm
from tessera.query.recommend import check_examples

NodeDecoder = Callable[[Any, CollectionConfig], qm.QueryNode]
_NO_LOOKUP_FROM = (pb.SearchPoints, pb.SearchPointGroups)


def _search_vector(req: Any, config: CollectionConfig) -> VectorInput:
    """`vector` (with `sparse_indices`: a sparse one) of vector `vector_name` ("": the
    unnamed one)."""
    value: Any
    if req.HasField("sparse_indices"):
        kind, value = "sparse", sparse(req.sparse_indices.data, req.vector)
    else:
        kind, value = "dense", np.asarray(req.vector, dtype=np.float64)
    name = req.vector_name if req.HasField("vector_name") else ""
    try:
        return vector_query(config, name, checked_vector(config, name, kind, value))
    except VectorRule as exc:
        if kind != "sparse":
            raise
        # Qdrant's conversion of `vector` + `sparse_indices` into a sparse vector
        raise BadRequest(
            f"Sparse indices does not match sparse vector conditions: {exc.field}: {exc.shown}"
        ) from None


def search(req: pb.SearchPoints, config: CollectionConfig) -> requests.Search:
    query = _search_vector(req, config)
    exact, ef, quantization, corpus = search_params(req)
    threshold = opt(req, "score_threshold")
    return requests.Search(
        vector=query,
        filter=opt_filter(req),
        limit=positive_limit(req.limit, 10),
        offset=parse_limit(opt(req, "offset"), 0, "offset"),
        score_threshold=None if threshold is None else float(threshold),
        params=SearchParams(exact, ef, quantization or Quantization(), corpus, indexed_only(req)),
        select=selection(req, payload_default=False),
    )


# --------------------------------------------------------------------------- one-node plans


def _node(req: Any, query: qm.Query, using: str) -> qm.QueryNode:
    """The node an older search runs as (its `params` give exact and hnsw_ef only)."""
    exact, ef = exact_and_ef(req)
    threshold = None if isinstance(req, pb.DiscoverPoints) else opt(req, "score_threshold")
    lookup = None
    if not isinstance(req, _NO_LOOKUP_FROM) and req.HasField("lookup_from"):
        loc = req.lookup_from
        lookup = qm.LookupFrom(loc.collection_name, opt(loc, "vector_name"))
    return qm.QueryNode(
        query=query,
        using=using,
        filter=opt_filter(req),
        score_threshold=None if threshold is None else float(threshold),
        limit=qp.positive_int(req.limit, 10, "limit"),
        lookup_from=lookup,
        exact=exact,
        hnsw_ef=ef,
        indexed_only=indexed_only(req),
    )


def search_node(req: Any, config: CollectionConfig) -> qm.QueryNode:
    query = _search_vector(req, config)
    value = query.value if query.kind == "sparse" else query.value.astype("float32")
    return _node(req, qm.Nearest(value), query.using)


def _input(inputs: qp.InputParser, v: pb.Vector) -> Any:
    return inputs.vector(*inferred(*vector(v), query=True))


def _example(inputs: qp.InputParser, example: pb.VectorExample) -> Any:
    kind = example.WhichOneof("example")
    if kind == "id":
        return inputs.point(parse_point_id(point_id(example.id)))
    if kind == "vector":
        return _input(inputs, example.vector)
    raise malformed("a VectorExample must set `id` or `vector`")


def recommend_node(req: Any, config: CollectionConfig) -> qm.QueryNode:
    using = opt(req, "using") or ""
    inputs = qp.InputParser(config, using)
    positive = tuple(
        [inputs.point(parse_point_id(point_id(p))) for p in req.positive]
        + [_input(inputs, v) for v in req.positive_vectors]
    )
    negative = tuple(
        [inputs.point(parse_point_id(point_id(p))) for p in req.negative]
        + [_input(inputs, v) for v in req.negative_vectors]
    )
    chosen = strategy_of(req.strategy) if req.HasField("strategy") else None
    strategy = check_examples(chosen, len(positive), len(negative))
    return _node(req, qm.Recommend(positive, negative, strategy), using)


def discover_node(req: pb.DiscoverPoints, config: CollectionConfig) -> qm.QueryNode:
    using = opt(req, "using") or ""
    inputs = qp.InputParser(config, using)
    target = None
    if req.HasField("target") and req.target.WhichOneof("target") == "single":
        target = _example(inputs, req.target.single)
    pairs = tuple(
        qm.ContextPair(_example(inputs, p.positive), _example(inputs, p.negative))
        for p in req.context
    )
    if target is None:
        if not pairs:
            raise BadRequest("Bad request: discover needs a target or at least one context pair")
        return _node(req, qm.Context(pairs), using)
    return _node(req, qm.Discover(target, pairs), using)


def plan(req: Any, config: CollectionConfig, decode: NodeDecoder) -> tuple[qm.Plan, Selection]:
    return decoded_plan(req, config, decode)


def group_plan(
    req: Any, config: CollectionConfig, decode: NodeDecoder
) -> tuple[qm.Plan, Selection, Lookup | None]:
    if not req.group_by:
        raise qp.shape_error("missing field `group_by`")
    node = decode(req, config)
    spec = qm.GroupSpec(
        req.group_by,
        qp.positive_int(req.group_size, 1, "group_size"),
        qp.positive_int(req.limit, 10, "limit"),
        query_api=False,
    )
    select = selection(req, payload_default=False)
    check_vector_names(select, config)
    return qm.Plan(node, 0, spec), select, with_lookup(req)
