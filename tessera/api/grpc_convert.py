"""Small readers of Qdrant's gRPC messages shared by the decoders: shard key selectors, a
`Value` tree as plain JSON values (payloads, document options), a dense vector's floats
read straight from its wire bytes, optional fields.

The request messages themselves are decoded into typed requests by `grpc_filter`,
`grpc_reads`, `grpc_plan`, `grpc_legacy`, `grpc_vectors` and `grpc_writes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from qdrant_client import grpc as pb

from tessera.collection.values import ShardSelector
from tessera.errors import BadRequest
from tessera.query.recommend import STRATEGIES, RecommendStrategy

_HAS_SELECTOR: dict[type, bool] = {}


def malformed(what: str) -> BadRequest:
    return BadRequest(f"Format error in request: {what}")


def shard_key(message: Any) -> str | int:
    """A `ShardKey` message: a keyword or a number."""
    kind = message.WhichOneof("key")
    if kind is None:
        raise malformed("empty shard key")
    return str(message.keyword) if kind == "keyword" else int(message.number)


def shard_selector(message: Any) -> ShardSelector | None:
    """A `ShardKeySelector` message (None when it names no key)."""
    keys = tuple(shard_key(k) for k in message.shard_keys)
    if not keys:
        return None
    fallback = shard_key(message.fallback) if message.HasField("fallback") else None
    return ShardSelector(keys, fallback)


def opt_shard_selector(message: Any) -> ShardSelector | None:
    """The `shard_key_selector` of a request message, None when it has none set (or the
    message type has no such field: looked up once per type)."""
    kind = type(message)
    has = _HAS_SELECTOR.get(kind)
    if has is None:
        has = _HAS_SELECTOR[kind] = "shard_key_selector" in kind.DESCRIPTOR.fields_by_name
    if not has or not message.HasField("shard_key_selector"):
        return None
    return shard_selector(message.shard_key_selector)


def opt(message: Any, name: str) -> Any:
    """An optional field's value, None when it is not set."""
    return getattr(message, name) if message.HasField(name) else None


def drop_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def value(v: pb.Value) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "integer_value":
        return v.integer_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return payload(v.struct_value.fields)
    if kind == "list_value":
        return [value(x) for x in v.list_value.values]
    return None  # null_value, or a Value with nothing set


def payload(fields: Mapping[str, pb.Value]) -> dict[str, Any]:
    return {key: value(fields[key]) for key in fields}


def packed_f32(message: Any) -> npt.NDArray[np.float32] | None:
    """The floats of a message whose only field is `repeated float data = 1` (a `Vector`
    with nothing but `data`, a `DenseVector`), straight from its wire bytes: one packed
    field, tag 0x0A, a varint length, little-endian float32s. None for anything else
    (unknown fields included), which the caller reads field by field."""
    wire = message.SerializeToString()
    if len(wire) < 2 or wire[0] != 0x0A:
        return None
    size, shift, at = 0, 0, 1
    while at < len(wire):
        byte = wire[at]
        size |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            break
        shift += 7
    if at + size != len(wire) or size % 4:
        return None
    return np.frombuffer(wire, dtype="<f4", count=size // 4, offset=at).astype(np.float32)


def strategy_of(value: int) -> RecommendStrategy:
    """A `RecommendStrategy` enum value; Qdrant refuses one outside the enum in these words."""
    if 0 <= value < len(STRATEGIES):
        return STRATEGIES[value]
    raise BadRequest(f"Unknown recommend strategy: {value}")
