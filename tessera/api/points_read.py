"""Read routes over points: retrieve, get one, scroll, count, search (and plain query)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from starlette.requests import Request

from tessera.api.collections import collection_of
from tessera.api.envelope import expect_object, read_json
from tessera.api.points_parse import body_point_id
from tessera.api.render import (
    check_vector_names,
    parse_selection,
    render_record,
    render_records,
    render_scored,
)
from tessera.api.shard_selector import selected
from tessera.api.validation_paths import under
from tessera.api.vectors_parse import parse_one_vector
from tessera.collection import requests
from tessera.collection.collection import Collection
from tessera.collection.values import (
    EVERYTHING,
    Points,
    Quantization,
    ScrollPage,
    SearchParams,
    VectorInput,
)
from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest, UnprocessableEntity, point_does_not_exist
from tessera.ids import parse_point_id, render_point_id
from tessera.query import query_model as qm
from tessera.query.filter_parse import parse_filter
from tessera.query.payload_path import parse_path


def parse_limit(raw: Any, default: int, name: str = "limit") -> int:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise BadRequest(f"Format error in JSON body: `{name}` must be a non-negative integer")
    return raw


def positive_limit(raw: Any, default: int, name: str = "limit", place: str | None = None) -> int:
    """A count Qdrant validates to be at least 1 (422 otherwise, naming `place`, default
    `name`: the validator's path, e.g. `internal.limit`)."""
    value = parse_limit(raw, default, name)
    if value < 1:
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{place or name}: value {value} invalid, "
            "must be 1 or larger]"
        )
    return value


async def retrieve_points(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    run = prepare_retrieve(collection, expect_object(await read_json(request)))
    return lambda: render_records(run())


def prepare_retrieve(collection: Collection, body: dict[str, Any]) -> Callable[[], Points]:
    return run_retrieve(selected(collection, body), retrieve_request(body))


def retrieve_request(body: dict[str, Any]) -> requests.Retrieve:
    raw_ids = body.get("ids")
    if not isinstance(raw_ids, list):
        raise BadRequest("Format error in JSON body: missing field `ids`")
    ids = tuple(body_point_id(x) for x in raw_ids)
    return requests.Retrieve(ids, parse_selection(body, payload_default=True))


def run_retrieve(collection: Collection, request: requests.Retrieve) -> Callable[[], Points]:
    check_vector_names(request.select, collection.config)
    return lambda: collection.retrieve(list(request.ids), request.select)


async def get_point(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    raw = request.path_params["point_id"]
    try:
        pid = parse_point_id(int(raw) if raw.isdigit() else raw)
    except BadRequest:
        raise BadRequest(f'Wrong input: Can not recognize "{raw}" as point id') from None

    def run() -> Any:
        found = collection.retrieve([pid], EVERYTHING)
        if not found:
            raise point_does_not_exist(render_point_id(pid))
        return render_record(found[0])

    return run


async def scroll_points(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = expect_object(await read_json(request, required=False) or {})
    run = prepare_scroll(collection, body)

    def render() -> dict[str, Any]:
        page = run()
        after = page.next_offset
        return {
            "points": render_records(page.points),
            "next_page_offset": None if after is None else render_point_id(after),
        }

    return render


def prepare_scroll(collection: Collection, body: dict[str, Any]) -> Callable[[], ScrollPage]:
    with under("scroll_request"):
        request = scroll_request(body)
    return run_scroll(selected(collection, body), request)


def scroll_request(body: dict[str, Any]) -> requests.Scroll:
    parsed = _parse_order_by(body.get("order_by"))
    return requests.Scroll(
        filter=parse_filter(body.get("filter")),
        offset=body_point_id(body["offset"]) if body.get("offset") is not None else None,
        limit=positive_limit(body.get("limit"), 10),
        select=parse_selection(body, payload_default=True),
        order_by=None if parsed is None else qm.OrderBy(*parsed),
    )


def run_scroll(collection: Collection, request: requests.Scroll) -> Callable[[], ScrollPage]:
    check_vector_names(request.select, collection.config)
    if request.order_by is not None and request.offset is not None:
        raise BadRequest(
            "Wrong input: Cannot use an `offset` when using `order_by`. The alternative for "
            "paging is to use `order_by.start_from` and a filter to exclude the IDs that "
            "you've already seen for the `order_by.start_from` value"
        )
    r = request
    return lambda: collection.scroll(r.filter, r.offset, r.limit, r.select, r.order_by)


def _parse_order_by(raw: Any) -> tuple[str, bool, float | None] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return parse_path(raw).text, False, None
    if not isinstance(raw, dict) or not isinstance(raw.get("key"), str):
        raise BadRequest("Format error in JSON body: `order_by` needs a `key`")
    direction = raw.get("direction") or "asc"
    if direction not in ("asc", "desc"):
        raise BadRequest(
            f"Format error in JSON body: unknown variant `{direction}`, expected `asc` or `desc`"
        )
    start = raw.get("start_from")
    start_value: float | None = None
    if start is not None:
        if isinstance(start, int) and not isinstance(start, bool) and -(2**63) <= start < 2**63:
            # kept whole: an integer index compares it as an i64 (2^53 + 1 is not 2^53)
            start_value = start
        elif isinstance(start, (int, float)) and not isinstance(start, bool):
            start_value = float(start)
        elif isinstance(start, str):
            from tessera.query.filter_parse import parse_datetime_value

            start_value = parse_datetime_value(start)
        else:
            raise BadRequest("Format error in JSON body: invalid `start_from`")
    return parse_path(raw["key"]).text, direction == "desc", start_value


async def count_points(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = expect_object(await read_json(request, required=False) or {})
    run = prepare_count(collection, body)
    return lambda: {"count": run()}


def prepare_count(collection: Collection, body: dict[str, Any]) -> Callable[[], int]:
    return run_count(selected(collection, body), count_request(body))


def count_request(body: dict[str, Any]) -> requests.Count:
    exact = body.get("exact", True)
    if not isinstance(exact, bool):
        raise BadRequest("Format error in JSON body: `exact` must be a boolean")
    return requests.Count(parse_filter(body.get("filter")), exact)


def run_count(collection: Collection, request: requests.Count) -> Callable[[], int]:
    return lambda: collection.count(request.filter, request.exact)


def parse_vector_query(config: CollectionConfig, using: str, raw: Any) -> VectorInput:
    return vector_query(config, using, parse_one_vector(config, using, raw))


def vector_query(config: CollectionConfig, using: str, value: Any) -> VectorInput:
    """A search's vector, checked against vector `using` (`parse_one_vector` for JSON,
    `checked_vector` for a typed wire form), tagged with its kind."""
    if using in config.sparse_vectors:
        return VectorInput(using, "sparse", value)
    params = config.vectors[using]
    if params.multivector:
        return VectorInput(using, "multi", value.astype(np.float32))
    return VectorInput(using, "dense", value)


def parse_named_vector(config: CollectionConfig, raw: Any) -> VectorInput:
    """`vector` of a search request: a list, or {name, vector} for named dense/sparse."""
    if isinstance(raw, list):
        if "" not in config.vectors:
            raise BadRequest("Wrong input: Not existing vector name error: ")
        return parse_vector_query(config, "", raw)
    if isinstance(raw, dict) and "name" in raw and "vector" in raw:
        return parse_vector_query(config, str(raw["name"]), raw["vector"])
    raise BadRequest("Format error in JSON body: invalid `vector`")


def parse_search_params(raw: Any) -> SearchParams:
    if raw is None:
        return SearchParams()
    params = expect_object(raw, "params")
    from tessera.api.query_parse import (  # imports us
        parse_idf_corpus,
        parse_indexed_only,
        parse_params,
        parse_quantization,
    )

    exact, ef = parse_params(params)  # the Query API's checks (hnsw_ef, acorn, ...)
    quantization = parse_quantization(params) or Quantization()
    corpus = parse_idf_corpus(params)
    return SearchParams(exact, ef, quantization, corpus, parse_indexed_only(params))


def search_request(body: dict[str, Any], query: VectorInput) -> requests.Search:
    filt = parse_filter(body.get("filter"))
    if body.get("limit") is None and body.get("top") is None:
        raise BadRequest("Format error in JSON body: missing field `limit`")
    limit = positive_limit(body.get("limit", body.get("top")), 10)
    offset = parse_limit(body.get("offset"), 0, "offset")
    threshold = body.get("score_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float))
    ):
        raise BadRequest("Format error in JSON body: `score_threshold` must be a number")
    select = parse_selection(body)
    params = parse_search_params(body.get("params"))
    return requests.Search(query, filt, limit, offset, threshold, params, select)


def run_search(
    collection: Collection, request: requests.Search, explain: bool = False
) -> Callable[[], Any]:
    """The search call: its points, or with `explain` `/points/query`'s answer shape,
    `{"points": [...], "explain": {...}}` (a list has no room for the report)."""
    check_vector_names(request.select, collection.config)
    r = request
    args = (r.vector, r.filter, r.limit, r.offset, r.score_threshold, r.params, r.select)
    if not explain:
        return lambda: collection.search(*args)

    def explained() -> dict[str, Any]:
        points, report = collection.explain_search(*args)
        return {"points": render_scored(points), "explain": report}

    return explained


def wants_explain(body: dict[str, Any]) -> bool:
    """`"explain": true`, Tessera's extension of `/points/query` and `/points/search`: the
    answer carries `explain` (README, "Explaining a query") beside the points."""
    explain = body.get("explain", False)
    if not isinstance(explain, bool):
        raise BadRequest("Format error in JSON body: `explain` must be a boolean")
    return explain


async def search_points(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = expect_object(await read_json(request))
    if wants_explain(body):
        return prepare_search(collection, body, explain=True)
    run = prepare_search(collection, body)
    return lambda: render_scored(run())


def prepare_search(
    collection: Collection, body: dict[str, Any], explain: bool = False
) -> Callable[[], Any]:
    collection = selected(collection, body)
    if "vector" not in body:
        raise BadRequest("Format error in JSON body: missing field `vector`")
    with under("search_request"):
        query = parse_named_vector(collection.config, body["vector"])
        request = search_request(body, query)
    return run_search(collection, request, explain)
