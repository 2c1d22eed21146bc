"""`POST /collections/{c}/cluster` (and gRPC `UpdateCollectionClusterSetup`): Qdrant's
collection cluster operations, parsed here and run by the cluster service.

`move_shard` and `replicate_shard` add a replica on `to_peer_id` that catches up from the
shard's leader (every transfer method streams the shard's records: `stream_records`; the
others are accepted and do the same), a move then drops the `from_peer_id` replica;
`abort_transfer` drops a replica still catching up; `restart_transfer` is answered true for
a running transfer (catching up retries by itself); `drop_replica` drops a replica, keeping
at least one active; `create_sharding_key` and `drop_sharding_key` are the shard key routes'
operations (tessera.api.shard_keys), `create_sharding_key` with Qdrant's `initial_state`
(Active or Partial; a key made Partial gets one replica per shard unless a factor is given);
`replicate_points` copies the points of one shard key that match a filter into another
(Qdrant's "promote a tenant" move: the source key must have one shard, the target one
replica), through the collection's own reads and writes, before it answers. The answer is
`true` once this node has applied the change; a shard transfer runs on after it, as in
Qdrant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tessera.api.shard_selector import parse_key
from tessera.api.vectors_parse import build_columns
from tessera.cluster.service import ClusterService
from tessera.collection import writes
from tessera.collection.collection import Collection
from tessera.collection.values import EVERYTHING, ShardSelector
from tessera.errors import BadRequest, NotFound, UnprocessableEntity, bad_input
from tessera.query.filter_model import Filter
from tessera.query.filter_parse import parse_filter

UNTAGGED = (
    "Format error in JSON body: data did not match any variant of untagged enum ClusterOperations"
)
TRANSFER_METHODS = ("stream_records", "snapshot", "wal_delta", "resharding_stream_records")
# Qdrant's resharding operations: open-source Qdrant refuses to start one (its
# `is_resharding_enabled` is off outside Qdrant Cloud), so none is ever in progress to abort.
RESHARDING = ("start_resharding", "abort_resharding")
RESHARDING_DIRECTIONS = ("up", "down")
INITIAL_STATES = ("Active", "Partial")


@dataclass(frozen=True)
class ClusterOperation:
    kind: str
    shard: int
    source: int | None = None  # from_peer_id
    target: int | None = None  # to_peer_id, or drop_replica's peer_id
    method: str | None = None  # a transfer's `method`, as asked
    # create_sharding_key / drop_sharding_key
    key: str | int | None = None
    shards_number: int | None = None
    replication_factor: int | None = None
    placement: list[int] | None = None
    initial_state: str | None = None  # create_sharding_key: Active or Partial
    # replicate_points: `key` is the source shard key
    to_key: str | int | None = None
    filter: Filter | None = None
    # drop_replica: refused unless this many other replicas of the shard stay active.
    min_other_active: int | None = None


TRANSFERS = ("move_shard", "replicate_shard", "abort_transfer", "restart_transfer")


def transfer_operation(
    kind: str, shard: int, source: int, target: int, method: str | None = None
) -> ClusterOperation:
    """A transfer operation (one of TRANSFERS), REST's or gRPC's, checked."""
    if source == target and kind in ("move_shard", "replicate_shard"):
        # Qdrant's validate_shard_different_peers: a validation error of the body (422).
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{kind}.to_peer_id: cannot transfer shard to "
            f'itself, "to_peer_id" must be different than {source} in "from_peer_id"]'
        )
    return ClusterOperation(kind, shard, source, target, method)


def parse_operation(body: Any) -> ClusterOperation:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest(UNTAGGED)
    ((kind, raw),) = body.items()
    if not isinstance(raw, dict):
        raise BadRequest(UNTAGGED)
    if kind in RESHARDING:
        return resharding_operation(kind, raw)
    if kind in TRANSFERS:
        method = raw.get("method")
        if method is not None and method not in TRANSFER_METHODS:
            raise BadRequest(UNTAGGED)
        if kind == "restart_transfer" and method is None:
            raise BadRequest(UNTAGGED)
        source, target = _u64(raw, "from_peer_id"), _u64(raw, "to_peer_id")
        return transfer_operation(kind, _u32(raw, "shard_id"), source, target, method)
    if kind == "drop_replica":
        return ClusterOperation(
            kind,
            _u32(raw, "shard_id"),
            None,
            _u64(raw, "peer_id"),
            min_other_active=_optional_u32(raw, "min_other_active_replicas"),
        )
    if kind in ("create_sharding_key", "drop_sharding_key"):
        key = parse_key(raw.get("shard_key"), UNTAGGED)
        if kind == "drop_sharding_key":
            return ClusterOperation(kind, 0, key=key)
        placement = raw.get("placement")
        if placement is not None:
            if not isinstance(placement, list):
                raise BadRequest(UNTAGGED)
            placement = [_u64({"p": p}, "p") for p in placement]
        state = raw.get("initial_state")
        if state is not None and not isinstance(state, str):
            raise BadRequest(UNTAGGED)
        return key_creation(
            key,
            _optional_u32(raw, "shards_number"),
            _optional_u32(raw, "replication_factor"),
            placement,
            state,
        )
    if kind == "replicate_points":
        return ClusterOperation(
            kind,
            0,
            key=parse_key(raw.get("from_shard_key"), UNTAGGED),
            to_key=parse_key(raw.get("to_shard_key"), UNTAGGED),
            filter=parse_filter(raw.get("filter")),
        )
    raise BadRequest(UNTAGGED)


def resharding_operation(kind: str, raw: dict[str, Any]) -> ClusterOperation:
    """`start_resharding` (its body checked as Qdrant's decoder does) or `abort_resharding`;
    refused when run, after the collection is found (run_operation)."""
    if kind == "start_resharding":
        if raw.get("direction") not in RESHARDING_DIRECTIONS:
            raise BadRequest(UNTAGGED)
        if raw.get("peer_id") is not None:
            _u64(raw, "peer_id")
        if raw.get("shard_key") is not None:
            parse_key(raw.get("shard_key"), UNTAGGED)
    return ClusterOperation(kind, 0)


def key_creation(
    key: str | int,
    shards_number: int | None,
    replication_factor: int | None,
    placement: list[int] | None,
    initial_state: str | None,
) -> ClusterOperation:
    """`create_sharding_key`, REST's or gRPC's, checked."""
    if initial_state is not None and initial_state not in INITIAL_STATES:
        raise BadRequest(
            f"Bad request: Initial state cannot be {initial_state}, only Active or Partial "
            "are allowed"
        )
    return ClusterOperation(
        "create_sharding_key",
        0,
        key=key,
        shards_number=shards_number,
        replication_factor=replication_factor,
        placement=placement,
        initial_state=initial_state,
    )


def run_operation(
    cluster: ClusterService,
    collection: Collection,
    operation: ClusterOperation,
    timeout: float | None,
) -> bool:
    name = collection.name
    shard, source, target = operation.shard, operation.source, operation.target
    if operation.kind in ("move_shard", "replicate_shard"):
        assert source is not None and target is not None
        move = operation.kind == "move_shard"
        cluster.replicate_shard(name, shard, source, target, move, timeout, operation.method)
    elif operation.kind == "abort_transfer":
        assert source is not None and target is not None
        cluster.abort_transfer(name, shard, source, target, timeout)
    elif operation.kind == "drop_replica":
        assert target is not None
        cluster.drop_replica(name, shard, target, timeout, operation.min_other_active)
    elif operation.kind == "create_sharding_key":
        assert operation.key is not None
        # Qdrant: a key created in a given state (Partial: to be filled by replicate_points)
        # has one replica per shard unless the request says otherwise.
        factor = operation.replication_factor
        if factor is None and operation.initial_state is not None:
            factor = 1
        cluster.create_shard_key(
            name,
            operation.key,
            operation.shards_number,
            factor,
            operation.placement,
            timeout,
            partial=operation.initial_state == "Partial",
        )
    elif operation.kind == "drop_sharding_key":
        assert operation.key is not None
        cluster.delete_shard_key(name, operation.key, timeout)
    elif operation.kind == "replicate_points":
        assert operation.key is not None and operation.to_key is not None
        replicate_points(cluster, collection, operation.key, operation.to_key, operation.filter)
        # Qdrant: the target key's replicas turn Active once the points are in.
        cluster.activate_shard_key(name, operation.to_key, timeout)
    elif operation.kind == "start_resharding":
        raise BadRequest("Bad request: resharding is only supported in Qdrant Cloud")
    elif operation.kind == "abort_resharding":
        raise BadRequest(f"Bad request: resharding is not in progress for collection {name}")
    elif operation.kind == "restart_transfer":
        running = {(s, to) for s, _, to, _ in cluster.transfers(name)}
        if (shard, target) not in running:
            raise NotFound(
                f"Not found: Shard transfer {source} -> {target} for collection {name}:{shard} "
                "does not exist"
            )
    return True


REPLICATE_PAGE = 256


def replicate_points(
    cluster: ClusterService,
    collection: Collection,
    source: str | int,
    target: str | int,
    point_filter: Filter | None,
) -> None:
    """Copy the points of shard key `source` matching `point_filter` into shard key
    `target`, page by page (each page written with `wait`), with Qdrant's checks first."""
    keys = cluster.shard_keys(collection.name)
    placement = cluster.placement(collection.name)
    if source not in keys:
        raise bad_input(f"Shard key {source} not found")
    if len(keys[source]) != 1:
        raise BadRequest(
            "Bad request: Only replicating from shard keys with exactly one shard is "
            f"supported. Shard key {source} has {len(keys[source])} shards"
        )
    if target not in keys:
        raise bad_input(f"Shard key {target} not found")
    replicas = sum(len(placement.get(shard, [])) for shard in keys[target])
    if replicas != 1:
        raise BadRequest(
            "Bad request: Only replicating to shard keys with exactly one replica is "
            f"supported. Shard key {target} has {replicas} replicas"
        )
    reading = collection.with_shards(ShardSelector((source,), None))
    writing = collection.with_shards(ShardSelector((target,), None))
    offset = None
    while True:
        page = reading.scroll(point_filter, offset, REPLICATE_PAGE, EVERYTHING, None)
        points = page.points
        if len(points):
            assert points.vectors is not None and points.payloads is not None
            per_point = [
                vector if isinstance(vector, dict) else {"": vector} for vector in points.vectors
            ]
            columns = build_columns(collection.config, per_point)
            payloads: list[dict[str, Any] | None] = list(points.payloads)
            writing.update(writes.upsert(list(points.ids), columns, payloads), True)
        offset = page.next_offset
        if offset is None:
            return


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
