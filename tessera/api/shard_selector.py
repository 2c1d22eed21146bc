"""The `shard_key` selector of point requests (custom sharding): which shard keys a read
looks in and a write sends its points to (tessera.collection.distributed); the collection
routes them (`Collection.with_shards`, `Collection.for_write`)."""

from __future__ import annotations

from typing import Any

from tessera.collection.collection import Collection
from tessera.collection.values import ShardKey, ShardSelector
from tessera.errors import BadRequest

SELECTOR_ERROR = (
    "Format error in JSON body: data did not match any variant of untagged enum ShardKeySelector"
)


def parse_key(raw: Any, error: str = SELECTOR_ERROR) -> ShardKey:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 1 << 64:
        return raw
    raise BadRequest(error)


def parse_selector(raw: Any) -> ShardSelector | None:
    if raw is None:
        return None
    if isinstance(raw, list):
        keys = tuple(parse_key(k) for k in raw)
        return ShardSelector(keys) if keys else None
    if isinstance(raw, dict):
        if set(raw) != {"target", "fallback"}:
            raise BadRequest(SELECTOR_ERROR)
        return ShardSelector((parse_key(raw["target"]),), parse_key(raw["fallback"]))
    return ShardSelector((parse_key(raw),))


def selected(collection: Collection, body: dict[str, Any]) -> Collection:
    """`collection` as the request's `shard_key` selects it."""
    return collection.with_shards(parse_selector(body.get("shard_key")))


def selected_for_write(collection: Collection, body: dict[str, Any]) -> Collection:
    """Where a point write goes, for the request's `shard_key` (`Collection.for_write`)."""
    return collection.for_write(parse_selector(body.get("shard_key")))
