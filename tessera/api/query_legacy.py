"""The older endpoints clients still call, answered by the Query API's engine.

`/points/search/batch`, `/search/groups`, `/points/recommend` (+ `/batch`, `/groups`),
`/points/discover` (+ `/batch`): each body (shapes as in qdrant-client's
`http/models/models.py`: SearchRequest, RecommendRequest, DiscoverRequest,
SearchGroupsRequest, RecommendGroupsRequest) becomes a one-node query plan. Their answers
are Qdrant's older shapes: a list of scored points (a list of lists for a batch), or
`{"groups": [...]}`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from tessera.api.collections import collection_of, toc_of
from tessera.api.envelope import endpoint, expect_object, read_json
from tessera.api.points_read import parse_limit, parse_named_vector
from tessera.api.query_parse import (
    InputParser,
    group_spec,
    parse_indexed_only,
    parse_lookup_from,
    parse_params,
    parse_threshold,
    parse_with_lookup,
    positive_int,
    shape_error,
)
from tessera.api.query_routes import (
    body_selectors,
    render_groups,
    run_groups,
    run_plans,
    run_selected,
)
from tessera.api.render import check_vector_names, parse_selection, render_scored
from tessera.api.shard_selector import selected
from tessera.api.validation_paths import under
from tessera.collection.collection import Collection
from tessera.collection.values import Group, Points, Selection
from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest
from tessera.query import query_model as qm
from tessera.query.filter_parse import parse_filter
from tessera.query.recommend import check_examples
from tessera.storage.toc import TableOfContents

Parser = Callable[[dict[str, Any], CollectionConfig], qm.QueryNode]


def _node(body: dict[str, Any], query: qm.Query, using: str) -> qm.QueryNode:
    limit = body.get("limit", body.get("top"))  # `top` is the field's old alias
    if limit is None:
        raise shape_error("missing field `limit`")
    exact, ef = parse_params(body.get("params"))
    return qm.QueryNode(
        query=query,
        using=using,
        filter=parse_filter(body.get("filter")),
        score_threshold=parse_threshold(body.get("score_threshold")),
        limit=positive_int(limit, 10, "limit"),
        lookup_from=parse_lookup_from(body.get("lookup_from")),
        exact=exact,
        hnsw_ef=ef,
        indexed_only=parse_indexed_only(body.get("params")),
    )


def _using(body: dict[str, Any]) -> str:
    using = body.get("using")
    if using is not None and not isinstance(using, str):
        raise shape_error("`using` must be a string")
    return using or ""


def search_node(body: dict[str, Any], config: CollectionConfig) -> qm.QueryNode:
    if "vector" not in body:
        raise shape_error("missing field `vector`")
    query = parse_named_vector(config, body["vector"])
    value = query.value if query.kind == "sparse" else query.value.astype("float32")
    return _node(body, qm.Nearest(value), query.using)


def recommend_node(body: dict[str, Any], config: CollectionConfig) -> qm.QueryNode:
    using = _using(body)
    inputs = InputParser(config, using)
    positive = inputs.inputs(body.get("positive"), "positive")
    negative = inputs.inputs(body.get("negative"), "negative")
    strategy = check_examples(body.get("strategy"), len(positive), len(negative))
    return _node(body, qm.Recommend(positive, negative, strategy), using)


def discover_node(body: dict[str, Any], config: CollectionConfig) -> qm.QueryNode:
    using = _using(body)
    inputs = InputParser(config, using)
    pairs = inputs.pairs(body.get("context"))
    target = body.get("target")
    if target is None:
        if not pairs:
            raise BadRequest("Bad request: discover needs a target or at least one context pair")
        return _node(body, qm.Context(pairs), using)
    return _node(body, qm.Discover(inputs.input(target), pairs), using)


def _prepared(
    body: dict[str, Any], config: CollectionConfig, parse: Parser, within: str = ""
) -> tuple[qm.Plan, Selection]:
    """One request's plan; `within`: where a batch holds it (`searches[2].`)."""
    with under(within + _REQUESTS[parse]):
        node = parse(body, config)
        offset = parse_limit(body.get("offset"), 0, "offset")
        select = parse_selection(body)
    check_vector_names(select, config)
    return qm.Plan(node, offset), select


def prepare_single(
    toc: TableOfContents, collection: Collection, body: dict[str, Any], parse: Parser
) -> Callable[[], Points]:
    collection = selected(collection, body)
    run = run_plans(toc, collection, [_prepared(body, collection.config, parse)])
    return lambda: run()[0]


def prepare_batch(
    toc: TableOfContents, collection: Collection, body: dict[str, Any], parse: Parser
) -> Callable[[], list[Points]]:
    searches = body.get("searches")
    if not isinstance(searches, list):
        raise shape_error("missing field `searches`")
    prepared = [
        _prepared(expect_object(s, "search"), collection.config, parse, f"searches[{i}].")
        for i, s in enumerate(searches)
    ]
    return run_selected(toc, collection, body_selectors(searches), prepared)


def prepare_groups(
    toc: TableOfContents, collection: Collection, body: dict[str, Any], parse: Parser
) -> Callable[[], list[Group]]:
    collection = selected(collection, body)
    request = "recommend_group_request" if parse is recommend_node else "search_group_request"
    spec = group_spec(body, request, default_size=None)
    node = parse(body, collection.config)
    select = parse_selection(body)
    check_vector_names(select, collection.config)
    return run_groups(
        toc, collection, qm.Plan(node, 0, spec), select, parse_with_lookup(body.get("with_lookup"))
    )


Prepare = Callable[[TableOfContents, Collection, dict[str, Any], Parser], Callable[[], Any]]

# The field each route's request struct is flattened from, as Qdrant's validator names it.
_REQUESTS: dict[Parser, str] = {
    search_node: "search_request",
    recommend_node: "recommend_request",
    discover_node: "discover_request",
}


def _render_batch(results: list[Points]) -> list[list[dict[str, Any]]]:
    return [render_scored(points) for points in results]


# What each kind of route prepares, and how its answer is rendered.
SINGLE: tuple[Prepare, Callable[[Any], Any]] = (prepare_single, render_scored)
BATCH: tuple[Prepare, Callable[[Any], Any]] = (prepare_batch, _render_batch)
GROUPS: tuple[Prepare, Callable[[Any], Any]] = (prepare_groups, render_groups)


def _route(kind: tuple[Prepare, Callable[[Any], Any]], parse: Parser) -> Callable[[Request], Any]:
    prepare, render = kind

    async def handle(request: Request) -> Callable[[], Any]:
        collection = collection_of(request)
        body = expect_object(await read_json(request))
        run = prepare(toc_of(request), collection, body, parse)
        return lambda: render(run())

    return handle


def routes(points: str) -> list[Route]:
    e = functools.partial(endpoint, quick=True)  # point reads: on the loop when quick
    return [
        Route(points + "/search/batch", e(_route(BATCH, search_node)), methods=["POST"]),
        Route(points + "/search/groups", e(_route(GROUPS, search_node)), methods=["POST"]),
        Route(points + "/recommend", e(_route(SINGLE, recommend_node)), methods=["POST"]),
        Route(points + "/recommend/batch", e(_route(BATCH, recommend_node)), methods=["POST"]),
        Route(points + "/recommend/groups", e(_route(GROUPS, recommend_node)), methods=["POST"]),
        Route(points + "/discover", e(_route(SINGLE, discover_node)), methods=["POST"]),
        Route(points + "/discover/batch", e(_route(BATCH, discover_node)), methods=["POST"]),
    ]
