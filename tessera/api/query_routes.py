"""Routes of the Query API (`/points/query`, `/query/batch`, `/query/groups`), the distance
matrix (`/search/matrix/pairs`, `/search/matrix/offsets`), and the helpers the older search /
recommend / discover routes (`query_legacy`) share with them.

Each route parses its body into query plans and selections (`query_parse`), has the
collection run them (`Collection.query`, `query_groups`, `distance_matrix`: the locks, the
vectors `lookup_from` takes from other collections and the records `with_lookup` adds are
the collection's business) and renders the plain answers. The `prepare_*` functions, shared
with gRPC, return the collection call; its answer is rendered by the transport.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from tessera.api.auth import check_readable
from tessera.api.collections import collection_of, toc_of
from tessera.api.envelope import endpoint, expect_object, read_json
from tessera.api.float_render import f32_scores
from tessera.api.points_read import parse_limit, wants_explain
from tessera.api.query_parse import (
    parse_groups_request,
    parse_query_request,
    positive_int,
    shape_error,
    validation_error,
)
from tessera.api.render import render_record, render_scored
from tessera.api.shard_selector import parse_selector, selected
from tessera.api.validation_paths import under
from tessera.collection import requests
from tessera.collection.collection import Collection
from tessera.collection.reads import external_inputs
from tessera.collection.values import Group, Lookup, Matrix, Points, Selection, ShardSelector
from tessera.ids import render_point_id
from tessera.query import query_model as qm
from tessera.query.filter_parse import parse_filter
from tessera.storage.toc import TableOfContents

Prepared = tuple[qm.Plan, Selection]


# --------------------------------------------------------------------------- running


def looked_up(plans: list[qm.Plan]) -> set[str]:
    """Every collection the `lookup_from` of these plans (prefetches included) names, the
    one they run on too (no collection has the empty name)."""
    return {name for name, _ in external_inputs(plans, "")}


def run_plans(
    toc: TableOfContents, collection: Collection, prepared: list[Prepared]
) -> Callable[[], list[Points]]:
    """The collection call answering several plans: one list of scored records per plan.
    The collections they look vectors up in must be readable by the request, as Qdrant
    checks them before anything runs."""
    check_readable(looked_up([plan for plan, _ in prepared]))
    return lambda: collection.query(prepared, toc.get)


def run_selected(
    toc: TableOfContents,
    collection: Collection,
    selectors: list[ShardSelector | None],
    prepared: list[Prepared],
) -> Callable[[], list[Points]]:
    """A batch whose searches may each name shard keys (`selectors`, one per search): run
    together when they name the same (or none), else one by one."""
    if len(set(selectors)) <= 1:
        chosen = selectors[0] if selectors else None
        return run_plans(toc, collection.with_shards(chosen), prepared)
    runs = [
        run_plans(toc, collection.with_shards(sel), [p])
        for sel, p in zip(selectors, prepared, strict=True)
    ]
    return lambda: [run()[0] for run in runs]


def run_groups(
    toc: TableOfContents,
    collection: Collection,
    plan: qm.Plan,
    select: Selection,
    with_lookup: Lookup | None,
) -> Callable[[], list[Group]]:
    named = looked_up([plan])
    if with_lookup is not None:
        named.add(with_lookup.collection)
    check_readable(named)
    return lambda: collection.query_groups(plan, select, with_lookup, toc.get)


def render_groups(groups: list[Group]) -> dict[str, Any]:
    """Qdrant's `{"groups": [{"id", "hits", "lookup"?}]}`."""
    rendered = []
    for group in groups:
        item: dict[str, Any] = {"id": group.id, "hits": render_scored(group.hits)}
        if group.lookup is not None:
            item["lookup"] = render_record(group.lookup)
        rendered.append(item)
    return {"groups": rendered}


# --------------------------------------------------------------------------- handlers


async def query_points(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = expect_object(await read_json(request, required=False) or {})
    if wants_explain(body):
        plan, select = parse_query_request(body, collection.config)
        check_readable(looked_up([plan]))
        toc = toc_of(request)

        def explained() -> dict[str, Any]:
            points, report = collection.explain_query(plan, select, toc.get)
            return {"points": render_scored(points), "explain": report}

        return explained
    run = prepare_query(toc_of(request), collection, body)
    return lambda: {"points": render_scored(run())}


def prepare_query(
    toc: TableOfContents, collection: Collection, body: dict[str, Any]
) -> Callable[[], Points]:
    collection = selected(collection, body)
    run = run_plans(toc, collection, [parse_query_request(body, collection.config)])
    return lambda: run()[0]


async def query_batch(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = expect_object(await read_json(request))
    run = prepare_query_batch(toc_of(request), collection, body)
    return lambda: [{"points": render_scored(points)} for points in run()]


def prepare_query_batch(
    toc: TableOfContents, collection: Collection, body: dict[str, Any]
) -> Callable[[], list[Points]]:
    searches = body.get("searches")
    if not isinstance(searches, list):
        raise shape_error("missing field `searches`")
    prepared = [
        parse_query_request(
            expect_object(s, "search"), collection.config, f"searches[{i}].internal"
        )
        for i, s in enumerate(searches)
    ]
    return run_selected(toc, collection, body_selectors(searches), prepared)


def body_selectors(searches: list[Any]) -> list[ShardSelector | None]:
    """The `shard_key` of each search of a REST batch body."""
    return [parse_selector(s.get("shard_key")) for s in searches if isinstance(s, dict)]


async def query_groups(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = expect_object(await read_json(request))
    run = prepare_query_groups(toc_of(request), collection, body)
    return lambda: render_groups(run())


def prepare_query_groups(
    toc: TableOfContents, collection: Collection, body: dict[str, Any]
) -> Callable[[], list[Group]]:
    collection = selected(collection, body)
    plan, select, with_lookup = parse_groups_request(body, collection.config)
    return run_groups(toc, collection, plan, select, with_lookup)


def _matrix(request: Request, body: dict[str, Any]) -> Callable[[], Matrix]:
    return prepare_matrix(collection_of(request), body)


def prepare_matrix(collection: Collection, body: dict[str, Any]) -> Callable[[], Matrix]:
    """The distance matrix over a sample: (point ids, per row its (column, score) pairs)."""
    collection = selected(collection, body)
    with under("search_request"):
        filt = parse_filter(body.get("filter"))
        sample = matrix_sample(parse_limit(body.get("sample"), 10, "sample"))
        limit = positive_int(body.get("limit"), 3, "limit")
    using = body.get("using") or ""
    if not isinstance(using, str):
        raise shape_error("`using` must be a string")
    return run_matrix(collection, requests.DistanceMatrix(using, filt, sample, limit))


def matrix_sample(sample: int) -> int:
    """The rule on `sample` (both transports check it)."""
    if sample < 2:
        raise validation_error("sample", f"value {sample} invalid, must be 2 or larger")
    return sample


def run_matrix(collection: Collection, r: requests.DistanceMatrix) -> Callable[[], Matrix]:
    return lambda: collection.distance_matrix(r.using, r.filter, r.sample, r.limit)


async def matrix_pairs(request: Request) -> Callable[[], Any]:
    compute = _matrix(request, expect_object(await read_json(request, required=False) or {}))

    def run() -> Any:
        ids, rows = compute()
        cells = [(i, j, score) for i, row in enumerate(rows) for j, score in row]
        scores = f32_scores([score for _, _, score in cells]) or []
        pairs = [
            {"a": render_point_id(ids[i]), "b": render_point_id(ids[j]), "score": score}
            for (i, j, _), score in zip(cells, scores, strict=True)
        ]
        return {"pairs": pairs}

    return run


async def matrix_offsets(request: Request) -> Callable[[], Any]:
    compute = _matrix(request, expect_object(await read_json(request, required=False) or {}))

    def run() -> Any:
        ids, rows = compute()
        return {
            "offsets_row": [i for i, row in enumerate(rows) for _ in row],
            "offsets_col": [j for row in rows for j, _ in row],
            "scores": f32_scores([score for row in rows for _, score in row]),
            "ids": [render_point_id(pid) for pid in ids],
        }

    return run


def routes(prefix: str) -> list[Route]:
    from tessera.api import query_legacy as legacy

    p = prefix + "/points"
    e = functools.partial(endpoint, quick=True)  # point reads: on the loop when quick
    return [
        Route(p + "/query", e(query_points), methods=["POST"]),
        Route(p + "/query/batch", e(query_batch), methods=["POST"]),
        Route(p + "/query/groups", e(query_groups), methods=["POST"]),
        Route(p + "/search/matrix/pairs", e(matrix_pairs), methods=["POST"]),
        Route(p + "/search/matrix/offsets", e(matrix_offsets), methods=["POST"]),
        *legacy.routes(p),
    ]
