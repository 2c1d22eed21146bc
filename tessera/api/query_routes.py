"""Routes of the Query API (`/points/query`, `/query/batch`, `/query/groups`), the distance
matrix (`/search/matrix/pairs`, `/search/matrix/offsets`), and the helpers the older search /
recommend / discover routes (`query_legacy`) share with them.

A request runs in three steps: vectors that `lookup_from` takes from other collections are
fetched first (each under that collection's read lock, released before the next lock is
taken), then the plans run and render under this collection's read lock, then groups get
their `with_lookup` records from the lookup collection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from tessera.api.collections import collection_of, toc_of
from tessera.api.envelope import endpoint, expect_object, read_json
from tessera.api.query_parse import (
    Rendering,
    WithLookup,
    parse_groups_request,
    parse_query_request,
    positive_int,
    shape_error,
    validation_error,
)
from tessera.api.render import render_record, render_scored
from tessera.collection.collection import Collection
from tessera.errors import BadRequest
from tessera.execution.query_batch import execute_many
from tessera.execution.query_exec import Context, ExternalVectors, Hit
from tessera.execution.query_groups import Groups, distance_matrix, execute_groups
from tessera.execution.query_vectors import stored_vector
from tessera.ids import parse_point_id, render_point_id
from tessera.query import query_model as qm
from tessera.query.filter_parse import parse_filter
from tessera.shard import read
from tessera.storage.toc import TableOfContents

Prepared = tuple[qm.Plan, Rendering]


# --------------------------------------------------------------------------- running


def _lookups(node: qm.QueryNode, own: str, out: dict[tuple[str, str], set[Any]]) -> None:
    lookup = node.lookup_from
    if lookup is not None and lookup.collection != own:
        ids = qm.referenced_ids(node.query)
        if ids:
            name = lookup.vector if lookup.vector is not None else node.using
            out.setdefault((lookup.collection, name), set()).update(ids)
    for child in node.prefetch:
        _lookups(child, own, out)


def fetch_external(toc: TableOfContents, own: str, plans: list[qm.Plan]) -> ExternalVectors:
    wanted: dict[tuple[str, str], set[Any]] = {}
    for plan in plans:
        _lookups(plan.root, own, wanted)
    found: ExternalVectors = {}
    for (name, vector), ids in wanted.items():
        other = toc.get(name)
        with other.shard.read() as holder:
            for pid in ids:
                found[(name, vector, pid)] = stored_vector(holder, vector, pid)
    return found


def render_hits(hits: list[Hit], rendering: Rendering, unnamed: bool) -> list[dict[str, Any]]:
    out = []
    for hit in hits:
        point = render_scored(hit.ref, hit.score, rendering.payload, rendering.vectors, unnamed)
        if hit.order_value is not None:
            point["order_value"] = hit.order_value
        out.append(point)
    return out


def run_plans(
    toc: TableOfContents, collection: Collection, prepared: list[Prepared]
) -> Callable[[], list[list[dict[str, Any]]]]:
    """The engine call answering several plans: one list of rendered points per plan."""
    unnamed = collection.config.unnamed

    def run() -> list[list[dict[str, Any]]]:
        external = fetch_external(toc, collection.name, [plan for plan, _ in prepared])
        with collection.shard.read() as holder:
            ctx = Context(holder, collection.config, collection.name, external)
            hits = execute_many(ctx, [plan for plan, _ in prepared])
            return [render_hits(h, r, unnamed) for h, (_, r) in zip(hits, prepared, strict=True)]

    return run


def run_groups(
    toc: TableOfContents,
    collection: Collection,
    plan: qm.Plan,
    rendering: Rendering,
    with_lookup: WithLookup | None,
) -> Callable[[], dict[str, Any]]:
    unnamed = collection.config.unnamed

    def run() -> dict[str, Any]:
        external = fetch_external(toc, collection.name, [plan])
        with collection.shard.read() as holder:
            ctx = Context(holder, collection.config, collection.name, external)
            groups: Groups = execute_groups(ctx, plan)
            rendered = [
                {"id": gid, "hits": render_hits(hits, rendering, unnamed)} for gid, hits in groups
            ]
        if with_lookup is not None:
            _attach_lookups(toc, with_lookup, rendered)
        return {"groups": rendered}

    return run


def _attach_lookups(
    toc: TableOfContents, with_lookup: WithLookup, groups: list[dict[str, Any]]
) -> None:
    other = toc.get(with_lookup.collection)
    with other.shard.read() as holder:
        for group in groups:
            try:
                pid = parse_point_id(group["id"])
            except BadRequest:  # a group value that is no point id has no lookup
                continue
            refs = read.retrieve(holder, [pid])
            if refs:
                group["lookup"] = render_record(
                    refs[0], with_lookup.payload, with_lookup.vectors, other.config.unnamed
                )


# --------------------------------------------------------------------------- handlers


async def query_points(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = expect_object(await read_json(request, required=False) or {})
    return prepare_query(toc_of(request), collection, body)


def prepare_query(
    toc: TableOfContents, collection: Collection, body: dict[str, Any]
) -> Callable[[], dict[str, Any]]:
    run = run_plans(toc, collection, [parse_query_request(body, collection.config)])
    return lambda: {"points": run()[0]}


async def query_batch(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = expect_object(await read_json(request))
    return prepare_query_batch(toc_of(request), collection, body)


def prepare_query_batch(
    toc: TableOfContents, collection: Collection, body: dict[str, Any]
) -> Callable[[], list[dict[str, Any]]]:
    searches = body.get("searches")
    if not isinstance(searches, list):
        raise shape_error("missing field `searches`")
    prepared = [
        parse_query_request(expect_object(s, "search"), collection.config) for s in searches
    ]
    run = run_plans(toc, collection, prepared)
    return lambda: [{"points": points} for points in run()]


async def query_groups(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = expect_object(await read_json(request))
    return prepare_query_groups(toc_of(request), collection, body)


def prepare_query_groups(
    toc: TableOfContents, collection: Collection, body: dict[str, Any]
) -> Callable[[], dict[str, Any]]:
    plan, rendering, with_lookup = parse_groups_request(body, collection.config)
    return run_groups(toc, collection, plan, rendering, with_lookup)


def _matrix(
    request: Request, body: dict[str, Any]
) -> Callable[[], tuple[list[Any], list[list[tuple[int, float]]]]]:
    return prepare_matrix(collection_of(request), body)


def prepare_matrix(
    collection: Collection, body: dict[str, Any]
) -> Callable[[], tuple[list[Any], list[list[tuple[int, float]]]]]:
    """The distance matrix over a sample: (point ids, per row its (column, score) pairs)."""
    filt = parse_filter(body.get("filter"))
    sample = positive_int(body.get("sample"), 10, "sample")
    if sample < 2:
        raise validation_error("sample", f"value {sample} invalid, must be 2 or larger")
    limit = positive_int(body.get("limit"), 3, "limit")
    using = body.get("using") or ""
    if not isinstance(using, str):
        raise shape_error("`using` must be a string")

    def run() -> tuple[list[Any], list[list[tuple[int, float]]]]:
        with collection.shard.read() as holder:
            ctx = Context(holder, collection.config, collection.name, {})
            return distance_matrix(ctx, using, filt, sample, limit)

    return run


async def matrix_pairs(request: Request) -> Callable[[], Any]:
    compute = _matrix(request, expect_object(await read_json(request, required=False) or {}))

    def run() -> Any:
        ids, rows = compute()
        pairs = [
            {"a": render_point_id(ids[i]), "b": render_point_id(ids[j]), "score": score}
            for i, row in enumerate(rows)
            for j, score in row
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
            "scores": [score for row in rows for _, score in row],
            "ids": [render_point_id(pid) for pid in ids],
        }

    return run


def routes(prefix: str) -> list[Route]:
    from tessera.api import query_legacy as legacy

    p = prefix + "/points"
    e = endpoint
    return [
        Route(p + "/query", e(query_points), methods=["POST"]),
        Route(p + "/query/batch", e(query_batch), methods=["POST"]),
        Route(p + "/query/groups", e(query_groups), methods=["POST"]),
        Route(p + "/search/matrix/pairs", e(matrix_pairs), methods=["POST"]),
        Route(p + "/search/matrix/offsets", e(matrix_offsets), methods=["POST"]),
        *legacy.routes(p),
    ]
