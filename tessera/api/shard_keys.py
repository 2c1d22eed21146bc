"""Shard keys (custom sharding, cluster mode): `PUT /collections/{c}/shards` creates one,
`POST /collections/{c}/shards/delete` drops one with its points, `GET /collections/{c}/shards`
lists them; and the `shard_key` selector of point requests (`selected`), which restricts
a read to the shards of those keys and sends a write's points to them.

A selector is a key (a string or an unsigned integer), a list of keys, or `{"target": key,
"fallback": key}` (the fallback's shards when the target key does not exist). Outside
cluster mode creating or dropping a key answers Qdrant's "Distributed mode disabled".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from tessera.api.cluster_info import DISABLED
from tessera.api.cluster_ops import parse_operation, run_operation
from tessera.api.collections import collection_of, toc_of
from tessera.api.envelope import expect_object, read_json
from tessera.api.shard_selector import parse_key
from tessera.api.telemetry import query_int
from tessera.collection.collection import Collection
from tessera.collection_config import custom_sharding
from tessera.errors import BadRequest, UnprocessableEntity
from tessera.storage.toc import TableOfContents


async def create_shard_key(request: Request) -> Callable[[], Any]:
    return await _key_operation(request, "create_sharding_key")


async def delete_shard_key(request: Request) -> Callable[[], Any]:
    return await _key_operation(request, "drop_sharding_key")


async def _key_operation(request: Request, kind: str) -> Callable[[], Any]:
    """A shard key route's body is its cluster operation's (`create_sharding_key`,
    `drop_sharding_key`), run the same way."""
    body = expect_object(await read_json(request))
    toc = toc_of(request)
    cluster = toc.cluster
    if cluster is None:
        raise BadRequest(DISABLED)
    collection = collection_of(request)
    timeout = query_int(request, "timeout", None, 1)
    if "shard_key" not in body:
        raise UnprocessableEntity("Format error in JSON body: missing field `shard_key`")
    parse_key(body["shard_key"], "Format error in JSON body: invalid shard key")
    operation = parse_operation({kind: body})
    return lambda: run_operation(
        cluster, collection, operation, float(timeout) if timeout else None
    )


async def list_shard_keys(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    toc = toc_of(request)
    return lambda: shard_keys_of(toc, collection)


def shard_keys_of(toc: TableOfContents, collection: Collection) -> dict[str, Any]:
    """Qdrant's `ShardKeysResponse`: the keys of a custom-sharded collection, else null."""
    if not custom_sharding(collection.config):
        return {"shard_keys": None}
    keys = toc.cluster.shard_keys(collection.name) if toc.cluster is not None else {}
    return {"shard_keys": [{"key": k} for k in keys]}
