"""What a standalone Qdrant (no cluster mode) answers about clustering, quotas and
optimizations, for one Tessera node:

- `GET /cluster`: `{"status": "disabled"}`;
- `GET /collections/{c}/cluster` (and gRPC `CollectionClusterInfo`): this node's peer id,
  one shard (0), local, `Active` (`Dead` when the collection is damaged) with its points;
- the routes that need consensus, refused as Qdrant refuses them without it:
  `POST /collections/{c}/cluster` (and gRPC `UpdateCollectionClusterSetup`) 400 "Distributed
  mode disabled", before looking at the collection; `DELETE /cluster/peer/{peer_id}` and
  `POST /cluster/recover` 405 "Qdrant is running in standalone mode", as Qdrant answers its
  cluster routes on a standalone node since 1.19 (it was a 500 and a 400 "Distributed mode
  disabled."; still 400 "Cannot remove peer .. as there are shards on it" for this peer
  without `force`); `GET /cluster/telemetry` 500 "Could not get telemetry from cluster" (no
  peer answers);
- `GET /quotas`: the stored quota config (disabled until `PUT /quotas` sets one) and this
  node's memory and disk use; `PUT /quotas` stores the config in `quota.json` and enforces
  it on updates that add data (tessera.collection.quota);
- `GET /collections/{c}/optimizations`: the optimizer's running, queued (an estimate),
  completed work and idle segments, with `with=queued,completed,idle_segments` and
  `completed_limit` as in Qdrant 1.19.

The peer id is derived from the storage directory, so it stays the same across restarts of
the same node, as Qdrant's persisted one does.

In cluster mode (`cluster.enabled`, tessera.cluster) the answers come from the cluster
service's view of etcd, kept by its watch (no etcd call is made here): `GET /cluster` with
the peers, this peer's id (persisted in its storage) and `raft_info` (term: etcd's Raft term;
commit: the etcd revision this peer has applied; role: Leader for the peer holding the
election key); `DELETE /cluster/peer/{id}` removes a peer without shards (with `force`, its
replicas are dropped from the placement first); `POST /cluster/recover` re-reads the whole
cluster state and reconciles this peer with it; `GET /collections/{c}/cluster` reports the
placement recorded in etcd. Data is not yet routed by that placement: each peer serves the
collection from its own local shard, whose point count is reported on this peer's first
local shard (the others read 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request

from tessera import __version__
from tessera.api.auth import Access
from tessera.api.cluster_ops import parse_operation, run_operation
from tessera.api.collections import collection_of, toc_of
from tessera.api.envelope import QUERY_DESERIALIZE, expect_object, query_flag, read_json
from tessera.api.middleware import ACCESS_SCOPE
from tessera.api.request_stats import iso_time
from tessera.api.telemetry import peer_id, query_int
from tessera.collection import quota, strict_filters
from tessera.collection import stats as cstats
from tessera.collection.collection import Collection
from tessera.collection.distributed import ClusterCollection
from tessera.collection_config import custom_sharding
from tessera.errors import BadRequest, InternalError, NotAllowed, NotFound, TesseraError
from tessera.storage.toc import TableOfContents

DISABLED = "Bad request: Distributed mode disabled"
STANDALONE = "Method not allowed: Qdrant is running in standalone mode"
WITH_VALUES = ("queued", "completed", "idle_segments")


async def cluster_status(request: Request) -> Callable[[], Any]:
    toc = toc_of(request)
    return lambda: enabled_status(toc) if toc.cluster is not None else {"status": "disabled"}


def enabled_status(toc: TableOfContents) -> dict[str, Any]:
    """Qdrant's `ClusterStatus` of an enabled cluster, from the service's view of etcd."""
    cluster = toc.cluster
    assert cluster is not None
    peers = dict(cluster.peers)
    problem = cluster.problem()
    if problem is None:
        thread: dict[str, Any] = {
            "consensus_thread_status": "working",
            "last_update": iso_time(cluster.membership.last_contact),
        }
    else:
        thread = {"consensus_thread_status": "stopped_with_err", "err": problem}
    leader = cluster.leader
    return {
        "status": "enabled",
        "peer_id": cluster.peer_id,
        "peers": {str(peer): {"uri": info.get("uri", "")} for peer, info in sorted(peers.items())},
        "raft_info": {
            "term": cluster.client.raft_term,
            "commit": cluster.applied_revision,
            "pending_operations": 0,  # the watch applies each revision as it arrives
            "leader": leader,
            "role": "Leader" if leader == cluster.peer_id else "Follower",
            "is_voter": True,
        },
        "consensus_thread_status": thread,
        # Qdrant counts failed Raft messages per peer; peers here talk through etcd only.
        "message_send_failures": {},
    }


async def update_collection_cluster(request: Request) -> Callable[[], Any]:
    body = await read_json(request)
    toc = toc_of(request)
    if toc.cluster is None:
        expect_object(body)
        raise BadRequest(DISABLED)
    collection = collection_of(request)
    operation = parse_operation(body)
    timeout = query_int(request, "timeout", None, 1)
    cluster = toc.cluster
    return lambda: run_operation(
        cluster, collection, operation, float(timeout) if timeout else None
    )


async def remove_peer(request: Request) -> Callable[[], Any]:
    raw = request.path_params["peer_id"]
    if not raw.isdigit() or int(raw) >= 1 << 64:
        raise NotFound(f"Not found: can not parse {raw!r} to a u64")
    force = query_flag(request, "force")
    timeout = query_int(request, "timeout", None, 1)
    toc = toc_of(request)
    cluster = toc.cluster
    if cluster is not None:

        def remove() -> bool:
            cluster.remove_peer(int(raw), force, float(timeout) if timeout else None)
            return True

        return remove
    if not force and int(raw) == peer_id(toc) and toc.names():
        raise BadRequest(f"Bad request: Cannot remove peer {raw} as there are shards on it")
    raise NotAllowed(STANDALONE)


async def recover_current_peer(request: Request) -> Callable[[], Any]:
    cluster = toc_of(request).cluster
    if cluster is None:
        raise NotAllowed(STANDALONE)

    def recover() -> bool:
        cluster.recover()  # re-reads the cluster state from etcd and reconciles with it
        return True

    return recover


async def cluster_telemetry(request: Request) -> Callable[[], Any]:
    query_int(request, "details_level", None, 0)
    timeout = query_int(request, "timeout", None, 1)
    toc = toc_of(request)
    if toc.cluster is None:
        raise InternalError("Service internal error: Could not get telemetry from cluster")
    # Any access may ask, as in Qdrant: a collection-scoped one sees its collections only.
    access: Access | None = request.scope.get(ACCESS_SCOPE)
    return lambda: distributed_telemetry(toc, float(timeout or PEER_TIMEOUT_S), access)


PEER_TIMEOUT_S = 2.0


def peer_details(toc: TableOfContents) -> dict[str, Any]:
    """Qdrant's `DistributedPeerDetails` of this peer (what another peer asks over p2p)."""
    status = enabled_status(toc)
    raft = status["raft_info"]
    return {
        "version": __version__,
        "role": raft["role"],
        "is_voter": raft["is_voter"],
        "term": raft["term"],
        "commit": raft["commit"],
        "num_pending_operations": raft["pending_operations"],
        "consensus_thread_status": status["consensus_thread_status"],
    }


def distributed_telemetry(
    toc: TableOfContents, timeout: float, access: Access | None = None
) -> dict[str, Any]:
    """Qdrant's `DistributedTelemetryData`: every peer (asked over its p2p port whether it
    answers) and the shards, replicas and transfers of every collection `access` may read,
    as this peer sees them."""
    cluster = toc.cluster
    assert cluster is not None
    peers: dict[str, Any] = {}
    for peer, info in sorted(cluster.peers.items()):
        uri = str(info.get("uri", ""))
        entry: dict[str, Any] = {"uri": uri, "responsive": False}
        if peer == cluster.peer_id:
            entry.update(responsive=True, details=peer_details(toc))
        else:
            try:
                answer = cluster.p2p.call(uri, "peer", b"{}", timeout)
                entry.update(responsive=True, details=orjson.loads(answer))
            except TesseraError:
                pass
        peers[str(peer)] = entry
    collections: dict[str, Any] = {}
    for name in toc.names():
        if access is not None and not access.can_read(name):
            continue
        placement = cluster.placement(name)
        key_of = {s: key for key, ids in cluster.shard_keys(name).items() for s in ids}
        shards = []
        for shard, replicas in sorted(placement.items()):
            described: dict[str, Any] = {"id": shard}
            if shard in key_of:
                described["key"] = key_of[shard]
            described["replicas"] = [
                {"peer_id": peer, "state": cluster.replica_state(name, shard, peer)}
                for peer in replicas
            ]
            shards.append(described)
        collections[name] = {
            "id": name,
            "shards": shards,
            "shard_transfers": [
                {
                    "shard_id": s,
                    "from": source,
                    "to": target,
                    "sync": not moving,
                    "method": cluster.transfer_method(name, s, target),
                }
                for s, source, target, moving in cluster.transfers(name)
            ],
        }
    return {
        "collections": collections,
        "cluster": {"enabled": True, "number_of_peers": len(peers), "peers": peers},
    }


def cluster_info(toc: TableOfContents, collection: Collection) -> dict[str, Any]:
    """Qdrant's `CollectionClusterInfo` (REST and gRPC): the placement in cluster mode, else
    the collection's one local shard."""
    if toc.cluster is not None:
        return placed_cluster_info(toc, collection)
    if isinstance(collection, ClusterCollection):  # standalone, shard_number > 1
        counts = collection.local_counts()
        return {
            "peer_id": peer_id(toc),
            "shard_count": len(collection.placement()),
            "local_shards": [
                {
                    "shard_id": shard,
                    "points_count": counts.get(shard, 0),
                    "state": "Dead" if collection.failure is not None else "Active",
                }
                for shard in sorted(collection.placement())
            ],
            "remote_shards": [],
            "shard_transfers": [],
        }
    if custom_sharding(collection.config):
        # A standalone node creates no shards for a custom-sharded collection (shard keys
        # need distributed mode): Qdrant's holder is empty.
        return {
            "peer_id": peer_id(toc),
            "shard_count": 0,
            "local_shards": [],
            "remote_shards": [],
            "shard_transfers": [],
        }
    stats = cstats.shard_stats(collection)
    return {
        "peer_id": peer_id(toc),
        "shard_count": 1,
        "local_shards": [
            {
                "shard_id": 0,
                "points_count": stats.points if stats is not None else 0,
                "state": "Active" if stats is not None else "Dead",
            }
        ],
        "remote_shards": [],
        "shard_transfers": [],
    }


async def collection_cluster(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    toc = toc_of(request)
    return lambda: cluster_info(toc, collection)


def placed_cluster_info(toc: TableOfContents, collection: Collection) -> dict[str, Any]:
    """`CollectionClusterInfo` from the placement recorded in etcd (cluster mode)."""
    cluster = toc.cluster
    assert cluster is not None
    me = cluster.peer_id
    damaged = collection.failure is not None
    counts = collection.local_counts() if isinstance(collection, ClusterCollection) else {}
    placement = cluster.placement(collection.name)
    key_of = {s: key for key, ids in cluster.shard_keys(collection.name).items() for s in ids}
    local: list[dict[str, Any]] = []
    remote: list[dict[str, Any]] = []
    for shard, peers in sorted(placement.items()):
        for peer in peers:
            state = cluster.replica_state(collection.name, shard, peer)
            if peer == me:
                if damaged:
                    state = "Dead"
                points = counts.get(shard, 0)
                entry = {"shard_id": shard, "points_count": points, "state": state}
            else:
                entry = {"shard_id": shard, "peer_id": peer, "state": state}
            if shard in key_of:
                entry["shard_key"] = key_of[shard]
            (local if peer == me else remote).append(entry)
    return {
        "peer_id": me,
        "shard_count": len(placement),
        "local_shards": local,
        "remote_shards": remote,
        "shard_transfers": [
            {
                "shard_id": shard,
                "from": source,
                "to": target,
                "sync": not moving,
                "method": cluster.transfer_method(collection.name, shard, target),
                "comment": "catching up: streaming the shard's records",
            }
            for shard, source, target, moving in cluster.transfers(collection.name)
        ],
    }


async def get_quotas(request: Request) -> Callable[[], Any]:
    toc = toc_of(request)
    return lambda: {"config": dict(quota.manager(toc.root).config), "usage": quota_usage(toc)}


async def update_quotas(request: Request) -> Callable[[], Any]:
    """Stores the quota config (tessera.collection.quota) and enforces it from then on;
    `wait` changes nothing on one node (nothing to wait for from consensus)."""
    query_flag(request, "wait")
    config = quota.parse(await read_json(request))
    toc = toc_of(request)

    def run() -> bool:
        quota.manager(toc.root).set_config(config)
        return True

    return run


def quota_usage(toc: TableOfContents) -> dict[str, int | None]:
    """This node's resident memory (of the cgroup limit, else of the machine) and the use of
    the filesystem holding the storage, in whole percent: the figures the quota's own check
    compares with its limits."""
    return {
        "resident_memory_percent": strict_filters.resident_memory_percent(),
        "disk_usage_percent": quota.manager(toc.root).disk_percent(),
    }


# ------------------------------------------------------------------ optimizations


async def get_optimizations(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    wanted: set[str] = set()
    for raw in request.query_params.getlist("with"):
        for item in filter(None, (part.strip() for part in raw.split(","))):
            if item not in WITH_VALUES:
                raise BadRequest(
                    f"{QUERY_DESERIALIZE}: unknown variant `{item}`, expected one of "
                    + ", ".join(f"`{v}`" for v in WITH_VALUES)
                )
            wanted.add(item)
    limit = query_int(request, "completed_limit", 16, 0)
    return lambda: optimizations(collection, wanted, limit or 0)


def optimizations(collection: Collection, wanted: set[str], limit: int) -> dict[str, Any]:
    report = cstats.optimizer_report(collection)
    queued_segments = [s for q in report.queued for s in q.segments]
    out: dict[str, Any] = {
        "summary": {
            "queued_optimizations": len(report.queued),
            "queued_segments": len(queued_segments),
            "queued_points": sum(s.points for s in queued_segments),
            "idle_segments": len(report.idle),
        },
        "running": [optimization(o) for o in report.running],
    }
    if "queued" in wanted:
        out["queued"] = [
            {"optimizer": q.optimizer, "segments": [segment(s) for s in q.segments]}
            for q in report.queued
        ]
    if "completed" in wanted:
        out["completed"] = [optimization(o) for o in report.completed[:limit]]
    if "idle_segments" in wanted:
        out["idle_segments"] = [segment(s) for s in report.idle]
    return out


def segment(ref: cstats.SegmentRef) -> dict[str, Any]:
    return {"uuid": ref.uuid, "points_count": ref.points}


def progress_node(
    name: str, started: float | None, finished: float | None, children: list[dict[str, Any]]
) -> dict[str, Any]:
    """Qdrant's `ProgressTree` node; what is unknown is left out, as Qdrant leaves it out."""
    node: dict[str, Any] = {"name": name}
    if started is not None:
        node["started_at"] = iso_time(started)
    if finished is not None and started is not None:
        node["finished_at"] = iso_time(finished)
        node["duration_sec"] = finished - started
    if children:
        node["children"] = children
    return node


def optimization(o: cstats.Optimization) -> dict[str, Any]:
    steps = [progress_node(name, start, end, []) for name, start, end in o.stages]
    progress = progress_node(o.optimizer, o.started, o.finished, steps)
    # Points carried into the new segment: all of them once it is built.
    total = sum(s.points for s in o.segments)
    progress["done"] = total if o.status == "done" else 0
    progress["total"] = total
    status: Any = o.status if o.status in ("optimizing", "done") else {"error": o.status}
    return {
        "uuid": o.uuid,
        "optimizer": o.optimizer,
        "status": status,
        "segments": [segment(s) for s in o.segments],
        "progress": progress,
    }
