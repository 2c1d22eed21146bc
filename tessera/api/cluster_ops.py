"""`POST /collections/{c}/cluster` (and gRPC `UpdateCollectionClusterSetup`): Qdrant's
collection cluster operations, parsed here and run by the cluster service.

`move_shard` and `replicate_shard` add a replica on `to_peer_id` that catches up from the
shard's leader (every transfer method streams the shard's records: `stream_records`; the
others are accepted and do the same), a move then drops the `from_peer_id` replica;
`abort_transfer` drops a replica still catching up; `restart_transfer` is answered true for
a running transfer (catching up retries by itself); `drop_replica` drops a replica, keeping
at least one active; `create_sharding_key` and `drop_sharding_key` are the shard key routes'
operations (tessera.api.shard_keys). The answer is `true` once this node has applied the change; the
transfer itself runs on after it, as in Qdrant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tessera.api.shard_selector import parse_key
from tessera.cluster.service import ClusterService
from tessera.errors import BadRequest, NotFound

UNTAGGED = (
    "Format error in JSON body: data did not match any variant of untagged enum ClusterOperations"
)
TRANSFER_METHODS = ("stream_records", "snapshot", "wal_delta", "resharding_stream_records")
SUPPORTED_LATER = (
    "start_resharding",
    "abort_resharding",
    "replicate_points",
)


@dataclass(frozen=True)
class ClusterOperation:
    kind: str
    shard: int
    source: int | None = None  # from_peer_id
    target: int | None = None  # to_peer_id, or drop_replica's peer_id
    # create_sharding_key / drop_sharding_key
    key: str | int | None = None
    shards_number: int | None = None
    replication_factor: int | None = None
    placement: list[int] | None = None


TRANSFERS = ("move_shard", "replicate_shard", "abort_transfer", "restart_transfer")


def transfer_operation(kind: str, shard: int, source: int, target: int) -> ClusterOperation:
    """A transfer operation (one of TRANSFERS), REST's or gRPC's, checked."""
    if source == target and kind in ("move_shard", "replicate_shard"):
        raise BadRequest(
            "Validation error in JSON body: [from_peer_id: cannot transfer a shard to the "
            "peer it is on]"
        )
    return ClusterOperation(kind, shard, source, target)


def parse_operation(body: Any) -> ClusterOperation:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest(UNTAGGED)
    ((kind, raw),) = body.items()
    if kind in SUPPORTED_LATER:
        raise BadRequest(f"Bad request: `{kind}` is not supported yet in Tessera's cluster mode")
    if not isinstance(raw, dict):
        raise BadRequest(UNTAGGED)
    if kind in TRANSFERS:
        method = raw.get("method")
        if method is not None and method not in TRANSFER_METHODS:
            raise BadRequest(UNTAGGED)
        if kind == "restart_transfer" and method is None:
            raise BadRequest(UNTAGGED)
        source, target = _u64(raw, "from_peer_id"), _u64(raw, "to_peer_id")
        return transfer_operation(kind, _u32(raw, "shard_id"), source, target)
    if kind == "drop_replica":
        return ClusterOperation(kind, _u32(raw, "shard_id"), None, _u64(raw, "peer_id"))
    if kind in ("create_sharding_key", "drop_sharding_key"):
        key = parse_key(raw.get("shard_key"), UNTAGGED)
        if kind == "drop_sharding_key":
            return ClusterOperation(kind, 0, key=key)
        placement = raw.get("placement")
        if placement is not None:
            if not isinstance(placement, list):
                raise BadRequest(UNTAGGED)
            placement = [_u64({"p": p}, "p") for p in placement]
        return ClusterOperation(
            kind,
            0,
            key=key,
            shards_number=_optional_u32(raw, "shards_number"),
            replication_factor=_optional_u32(raw, "replication_factor"),
            placement=placement,
        )
    raise BadRequest(UNTAGGED)


def run_operation(
    cluster: ClusterService, name: str, operation: ClusterOperation, timeout: float | None
) -> bool:
    shard, source, target = operation.shard, operation.source, operation.target
    if operation.kind in ("move_shard", "replicate_shard"):
        assert source is not None and target is not None
        move = operation.kind == "move_shard"
        cluster.replicate_shard(name, shard, source, target, move, timeout)
    elif operation.kind == "abort_transfer":
        assert source is not None and target is not None
        cluster.abort_transfer(name, shard, source, target, timeout)
    elif operation.kind == "drop_replica":
        assert target is not None
        cluster.drop_replica(name, shard, target, timeout)
    elif operation.kind == "create_sharding_key":
        assert operation.key is not None
        cluster.create_shard_key(
            name,
            operation.key,
            operation.shards_number,
            operation.replication_factor,
            operation.placement,
            timeout,
        )
    elif operation.kind == "drop_sharding_key":
        assert operation.key is not None
        cluster.delete_shard_key(name, operation.key, timeout)
    elif operation.kind == "restart_transfer":
        running = {(s, to) for s, _, to, _ in cluster.transfers(name)}
        if (shard, target) not in running:
            raise NotFound(
                f"Not found: Shard transfer {source} -> {target} for collection {name}:{shard} "
                "does not exist"
            )
    return True


def _uint(raw: dict[str, Any], key: str, bits: int) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise BadRequest(UNTAGGED)
    return value


def _optional_u32(raw: dict[str, Any], key: str) -> int | None:
    if raw.get(key) is None:
        return None
    value = _uint(raw, key, 32)
    if value == 0:
        raise BadRequest(f"Validation error in JSON body: [{key}: must be at least 1]")
    return value


def _u32(raw: dict[str, Any], key: str) -> int:
    return _uint(raw, key, 32)


def _u64(raw: dict[str, Any], key: str) -> int:
    return _uint(raw, key, 64)
