"""`POST /collections/{name}/facet`: counts of points per value of a payload key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from tessera.api.collections import collection_of
from tessera.api.envelope import expect_object, read_json
from tessera.api.shard_selector import selected
from tessera.api.validation_paths import under
from tessera.collection import requests
from tessera.collection.collection import Collection
from tessera.collection.values import FacetHit
from tessera.errors import BadRequest, UnprocessableEntity
from tessera.query.filter_parse import parse_filter
from tessera.query.payload_path import parse_path

DEFAULT_LIMIT = 10


def facet_limit(raw: Any) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise BadRequest(
            f"Format error in JSON body: invalid type for `limit`: expected usize, got {raw!r}"
        )
    if raw < 0:
        raise BadRequest(
            f"Format error in JSON body: invalid value: integer `{raw}`, expected usize"
        )
    if raw < 1:
        raise UnprocessableEntity(
            f"Validation error in JSON body: [limit: value {raw} invalid, must be 1 or larger]"
        )
    return raw


async def facet(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    run = prepare_facet(collection, expect_object(await read_json(request)))
    return lambda: {"hits": [{"value": h.value, "count": h.count} for h in run()]}


def prepare_facet(collection: Collection, body: dict[str, Any]) -> Callable[[], list[FacetHit]]:
    with under("facet_request"):
        request = facet_request(body)
    return run_facet(selected(collection, body), request)


def facet_request(body: dict[str, Any]) -> requests.Facet:
    key = body.get("key")
    if key is None:
        raise BadRequest("Format error in JSON body: missing field `key`")
    if not isinstance(key, str):
        raise BadRequest("Format error in JSON body: invalid type for `key`: expected a string")
    parse_path(key)
    given = body.get("limit")
    limit = facet_limit(given)
    exact = body.get("exact")
    if exact is not None and not isinstance(exact, bool):
        raise BadRequest("Format error in JSON body: invalid type for `exact`: expected a boolean")
    filt = parse_filter(body.get("filter"))
    return requests.Facet(key, filt, limit, bool(exact), limit if given is not None else None)


def run_facet(collection: Collection, r: requests.Facet) -> Callable[[], list[FacetHit]]:
    return lambda: collection.facet(r.key, r.filter, r.limit, r.exact, r.given_limit)
