"""`/telemetry`'s shards of a collection (details level 3 and up): Qdrant's
`ReplicaSetTelemetry` per shard, with this peer's replica as `LocalShardTelemetry` (level 4
adds its segments). A collection of one local shard reports shard 0; a sharded one (cluster
mode, or `shard_number` > 1 standalone) every shard of its placement, each with its shard
key (null without one, as Qdrant sends it), the other peers' replicas and each replica's
state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tessera.collection import stats as cstats
from tessera.collection.collection import Collection
from tessera.collection.distributed import ClusterCollection
from tessera.collection.shard_telemetry import shard_detail
from tessera.storage.toc import TableOfContents

Count = Callable[[int], int]
# Renders the optimizer section of a local shard (api.telemetry.optimizer_section).
Optimizations = Callable[[cstats.ShardStats, int], dict[str, Any]]


def shards_section(
    toc: TableOfContents,
    name: str,
    collection: Collection,
    level: int,
    count: Count,
    peer: int,
    optimizations: Optimizations,
) -> list[dict[str, Any]]:
    recovering = any(
        c.running_snapshot_recovery for n, c in toc.snapshots.activity.counts() if n == name
    )
    if not isinstance(collection, ClusterCollection):
        local = local_shard(collection, level, count, optimizations)
        state = "Active" if local is not None else "Dead"
        return [replica_set(0, None, local, [], {str(peer): state}, recovering)]
    directory = collection.cluster
    key_of = {s: key for key, ids in directory.shard_keys(name).items() for s in ids}
    parts = collection.local_parts() if collection.failure is None else {}
    out = []
    for shard, replicas in sorted(directory.placement(name).items()):
        part = parts.get(shard)
        local = local_shard(part, level, count, optimizations) if part is not None else None
        states = {}
        for p in replicas:
            if toc.cluster is not None:
                states[str(p)] = toc.cluster.replica_state(name, shard, p)
            else:  # standalone shards: this peer's, active unless damaged
                states[str(p)] = "Active" if directory.is_active(name, shard, p) else "Dead"
        remote = [{"shard_id": shard, "peer_id": p} for p in replicas if p != peer]
        out.append(replica_set(shard, key_of.get(shard), local, remote, states, recovering))
    return out


def replica_set(
    shard: int,
    key: str | int | None,
    local: dict[str, Any] | None,
    remote: list[dict[str, Any]],
    states: dict[str, str],
    recovering: bool,
) -> dict[str, Any]:
    return {
        "id": shard,
        "key": key,
        "local": local,  # null: no replica here, or a damaged one (nothing loaded)
        "remote": remote,
        "replicate_states": states,
        # Tessera makes no partial snapshots: none ongoing, none ever recovered from
        # (timestamp 0); a full snapshot recovery of the collection counts as recovering.
        "partial_snapshot": {
            "ongoing_create_snapshot_requests": 0,
            "is_recovering": recovering,
            "recovery_timestamp": 0,
        },
    }


def local_shard(
    collection: Collection, level: int, count: Count, optimizations: Optimizations
) -> dict[str, Any] | None:
    """Qdrant's `LocalShardTelemetry` of one local shard; None when it is damaged."""
    stats = cstats.shard_stats(collection)
    detail = shard_detail(collection, segments=level >= 4)
    if stats is None or detail is None:
        return None
    out: dict[str, Any] = {
        "variant_name": "local",
        "status": collection.info().status,
        "total_optimized_points": count(sum(o.points for o in stats.optimizations)),
        "vectors_size_bytes": count(detail.vectors_size_bytes),
        "payloads_size_bytes": count(detail.payloads_size_bytes),
        "num_points": count(stats.points),
        "num_vectors": count(sum(stats.vectors_by_name.values())),
        "num_vectors_by_name": {k: count(v) for k, v in stats.vectors_by_name.items()},
    }
    if level >= 4:
        out["segments"] = [_counted(s, count) for s in detail.segments]
    out["optimizations"] = optimizations(stats, level)
    out["async_scorer"] = False  # no io_uring scorer: searches read vectors from memory
    if level >= 4:
        out["indexed_only_excluded_vectors"] = {
            name: count(n) for name, n in detail.indexed_only_excluded.items()
        }
    # Writes are applied as they are logged: nothing waits in a queue.
    queue: dict[str, Any] = {"length": 0, "op_num": collection.shard.applied_seq}
    deferred = collection.deferred_points()
    if deferred:
        queue["deferred_points"] = count(deferred)
    out["update_queue"] = queue
    return out


def _counted(segment: dict[str, Any], count: Count) -> dict[str, Any]:
    """A segment with its counts and sizes through `count` (anonymized: low digits gone)."""
    info = dict(segment["info"])
    for key, value in info.items():
        if key.startswith("num_") or key.endswith("_bytes"):
            info[key] = count(value)
    info["vector_data"] = {
        name: {k: count(v) for k, v in data.items()} for name, data in info["vector_data"].items()
    }
    indices = [
        {
            **i,
            "points_values_count": count(i["points_values_count"]),
            "points_count": count(i["points_count"]),
        }
        for i in segment["payload_field_indices"]
    ]
    return {**segment, "info": info, "payload_field_indices": indices}
