"""`GET /telemetry`: Qdrant's `TelemetryData` for this process, by `details_level`.

- level 0: `id`, `app` (name, version, startup), `collections.number_of_collections`,
  `cluster` (`enabled`; in cluster mode, from level 1 its `status` as Qdrant's: peers,
  term, commit, role, ...; from level 2 its `config` and `peers`), `requests` (every REST
  and gRPC endpoint's responses by status, from `api.request_stats`);
- level 1: also the app's features and system, every collection aggregated (vectors,
  optimizer status, params), `memory`, and `hardware` (each collection's accumulated usage,
  tessera.collection.hw_usage);
- level 2: each collection's config and `init_time_ms`;
- level 3: its shards (api.telemetry_shards): key, replicas' states, partial snapshot state,
  the local replica's counts, size estimates and optimizer status and log;
- level 4: also each local replica's segments (tessera.collection.shard_telemetry).

`anonymize=true` hides what could identify the data, as Qdrant does: collection names become
hashes and large counts lose their low digits. The app section carries Tessera's own name and
version (`GET /` answers Qdrant's API version).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from tessera import QDRANT_API_VERSION
from tessera.api.auth import Access
from tessera.api.collections import toc_of
from tessera.api.envelope import QUERY_DESERIALIZE, query_flag
from tessera.api.middleware import ACCESS_SCOPE
from tessera.api.render import collection_info
from tessera.api.request_stats import STATS, anonymized, iso_time
from tessera.api.telemetry_shards import shards_section
from tessera.api.telemetry_system import memory_telemetry
from tessera.cluster.etcd import CALL_TIMEOUT_S
from tessera.cluster.service import START_TIMEOUT_S
from tessera.collection import stats as cstats
from tessera.collection.collection import Collection
from tessera.errors import BadRequest
from tessera.storage.toc import TableOfContents

# This process: Qdrant reports a fresh id per start, and the time it started.
PROCESS_ID = str(uuid.uuid4())
STARTED = time.time()


def query_int(request: Request, name: str, default: int | None, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{QUERY_DESERIALIZE}: invalid digit found in string: {name}") from None
    if value < minimum:
        raise BadRequest(
            f"Validation error in query parameters: [{name}: value {value} invalid, must be "
            f"{minimum} or larger]"
        )
    return value


def peer_id(toc: TableOfContents) -> int:
    """This node's id: the cluster's, or outside cluster mode the one kept in
    `<storage>/peer_id`, which snapshot names carry too (one id, as in Qdrant)."""
    if toc.cluster is not None:
        return toc.cluster.peer_id
    return toc.snapshots.peer_id


def hidden(name: str) -> str:
    """An anonymized name: stable within and across runs, not reversible."""
    return hashlib.sha256(name.encode()).hexdigest()[:16]


async def get_telemetry(request: Request) -> Callable[[], Any]:
    anonymize = query_flag(request, "anonymize")
    level = query_int(request, "details_level", 0, 0) or 0
    per_collection = query_flag(request, "per_collection")
    query_int(request, "timeout", 60, 1)
    toc = toc_of(request)
    access: Access | None = request.scope.get(ACCESS_SCOPE)
    return lambda: telemetry(toc, level, anonymize, per_collection, access)


def telemetry(
    toc: TableOfContents,
    level: int,
    anonymize: bool,
    per_collection: bool = False,
    access: Access | None = None,
) -> dict[str, Any]:
    """With access to some collections only (a scoped JWT), as Qdrant: just those
    collections, and nothing about the process (cluster, requests, memory)."""
    scoped = access is not None and access.collections is not None
    collections = {
        name: c for name, c in toc.collections.items() if access is None or access.can_read(name)
    }
    out: dict[str, Any] = {
        "id": PROCESS_ID,
        "app": app_section(level, toc.recovery_mode is not None, toc.service_flags),
        "collections": collections_section(
            toc,
            collections,
            level,
            anonymize,
            peer_id(toc),
            snapshots_section(toc, access, anonymize),
        ),
    }
    if not scoped:
        STATS.prune(toc.exists)
        out["cluster"] = cluster_section(toc, level)
        out["requests"] = requests_section(anonymize, per_collection)
        if level >= 1:
            out["memory"] = memory_telemetry()
    if level >= 1:  # as Qdrant: a scoped token sees its collections' usage
        out["hardware"] = hardware_section(collections, anonymize)
    return out


def cluster_section(toc: TableOfContents, level: int) -> dict[str, Any]:
    """Qdrant's `ClusterTelemetry`, from the cluster service's view of etcd (no etcd call):
    `status` from level 1, `config` (Tessera's: the p2p URI and the etcd it follows, in
    place of Qdrant's Raft settings) and `peers` from level 2, `peer_metadata` from 3."""
    cluster = toc.cluster
    if cluster is None:
        # Qdrant's `resharding_enabled` is its setting, always shown; resharding is refused
        # here as in open-source Qdrant (a Cloud feature).
        return {"enabled": False, "resharding_enabled": False}
    out: dict[str, Any] = {"enabled": True}
    if level >= 1:
        problem = cluster.problem()
        thread: dict[str, Any] = (
            {
                "consensus_thread_status": "working",
                "last_update": iso_time(cluster.membership.last_contact),
            }
            if problem is None
            else {"consensus_thread_status": "stopped_with_err", "err": problem}
        )
        out["status"] = {
            "number_of_peers": len(cluster.peers),
            "term": cluster.client.raft_term,
            "commit": cluster.applied_revision,
            "pending_operations": 0,  # the watch applies each revision as it arrives
            "role": "Leader" if cluster.leader == cluster.peer_id else "Follower",
            "is_voter": True,
            "peer_id": cluster.peer_id,
            "consensus_thread_status": thread,
        }
    if level >= 2:
        out["config"] = {
            # Qdrant's keys, with what plays their part here: etcd calls' timeout, one HTTP
            # connection pool to etcd, no message queue (the watch applies in order), the
            # lease renewal period, how long start-up waits for etcd.
            "grpc_timeout_ms": int(CALL_TIMEOUT_S * 1000),
            "p2p": {"connection_pool_size": 1, "uri": cluster.membership.uri},
            "consensus": {
                "max_message_queue_size": 0,
                "tick_period_ms": int(cluster.membership.keepalive_s * 1000),
                "bootstrap_timeout_sec": int(START_TIMEOUT_S),
            },
            "etcd": {  # Tessera's: the etcd it follows (endpoints without credentials)
                "endpoints": [e.rpartition("@")[2] for e in cluster.client.endpoints],
                "prefix": cluster.store.prefix,
                "lease_ttl_sec": cluster.membership.lease_ttl,
            },
        }
        out["peers"] = {
            str(peer): {"uri": info.get("uri", "")} for peer, info in sorted(cluster.peers.items())
        }
    if level >= 3:  # the version each peer registered with (an older Tessera's: none)
        out["peer_metadata"] = {
            str(peer): {"version": info["version"]}
            for peer, info in sorted(cluster.peers.items())
            if isinstance(info.get("version"), str)
        }
    out["resharding_enabled"] = False
    return out


def app_section(
    level: int, recovery_mode: bool = False, service_flags: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`service_flags`: `jwt_rbac` and `hide_jwt_dashboard` as configured, shown at every
    level when set (Qdrant leaves out the unset ones)."""
    # The version is the Qdrant API's, as `GET /` and gRPC's HealthCheck give it: tools read it
    # from here to decide what the server speaks (`tessera --version` names the release).
    app: dict[str, Any] = {"name": "tessera", "version": QDRANT_API_VERSION}
    if level >= 1:
        app["features"] = {
            "debug": sys.flags.dev_mode,
            "service_debug_feature": False,
            "recovery_mode": recovery_mode,
            "gpu": False,
            "rocksdb": False,
            "staging": False,
        }
        app["system"] = system_section()
    for key, value in (service_flags or {}).items():
        if value is not None:
            app[key] = value
    app["startup"] = iso_time(STARTED)
    return app


def system_section() -> dict[str, Any]:
    release = _os_release()
    total_ram = None
    with contextlib.suppress(ValueError, OSError):
        total_ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "distribution": release.get("ID") or platform.system(),
        "distribution_version": release.get("VERSION_ID") or platform.release(),
        "is_docker": os.path.exists("/.dockerenv"),
        "container_runtime": container_runtime(),
        "cores": os.cpu_count(),
        "ram_size": total_ram // 1024 if total_ram else None,  # KiB, as Qdrant's sys_info
        "disk_size": shutil.disk_usage("/").total // 1024,
        "cpu_flags": "",
        "cpu_endian": sys.byteorder,
    }


def container_runtime() -> str:
    """Qdrant's `ContainerRuntime` (telemetry `app.system`; qdrant-client 1.20 requires it):
    `kubernetes` (the pod's service environment), `docker` (its marker file), `other` (a
    container's cgroup otherwise), `none` on bare metal."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if os.path.exists("/.dockerenv"):
        return "docker"
    try:
        cgroup = open("/proc/1/cgroup", encoding="utf-8").read()  # noqa: SIM115
    except OSError:
        return "none"
    markers = ("docker", "kubepods", "containerd", "lxc", "podman", "libpod")
    return "other" if any(m in cgroup for m in markers) else "none"


def _os_release() -> dict[str, str]:
    try:
        text = open("/etc/os-release", encoding="utf-8").read()  # noqa: SIM115
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k: v.strip('"') for k, v in pairs}


def collections_section(
    toc: TableOfContents,
    collections: dict[str, Collection],
    level: int,
    anonymize: bool,
    peer: int,
    snapshots: list[dict[str, Any]],
) -> dict[str, Any]:
    """`snapshots`: the snapshot activity (`snapshots_section`), shown from level 1 on."""
    out: dict[str, Any] = {"number_of_collections": len(collections)}
    if toc.max_collections is not None:
        out["max_collections"] = toc.max_collections
    if level >= 1:
        items = [
            full_collection(toc, name, c, level, anonymize, peer)
            if level >= 2
            else aggregated_collection(c, anonymize)
            for name, c in sorted(collections.items())
        ]
        out["collections"] = items
        out["snapshots"] = snapshots
    return out


def snapshots_section(
    toc: TableOfContents, access: Access | None, anonymize: bool
) -> list[dict[str, Any]]:
    """Qdrant's `CollectionSnapshotTelemetry` of each collection with snapshot activity
    that `access` may read."""
    return [
        {
            "id": hidden(name) if anonymize else name,
            "running_snapshots": counts.running_snapshots,
            "running_snapshot_recovery": counts.running_snapshot_recovery,
            "total_snapshot_creations": counts.total_snapshot_creations,
        }
        for name, counts in toc.snapshots.activity.counts()
        if access is None or access.can_read(name)
    ]


def aggregated_collection(collection: Collection, anonymize: bool) -> dict[str, Any]:
    info = collection_info(collection)
    stats = cstats.shard_stats(collection)
    vectors = sum(stats.vectors_by_name.values()) if stats is not None else 0
    return {
        "vectors": anonymized(vectors) if anonymize else vectors,
        "optimizers_status": info.get("optimizer_status", "ok"),
        "params": info["config"]["params"],
    }


def full_collection(
    toc: TableOfContents, name: str, collection: Collection, level: int, anonymize: bool, peer: int
) -> dict[str, Any]:
    info = collection_info(collection)
    out: dict[str, Any] = {
        "id": hidden(name) if anonymize else name,
        "init_time_ms": collection.init_time_ms,
        "config": info["config"],
    }
    if level >= 3:  # Qdrant describes the shards from details level 3 on
        count: Callable[[int], int] = anonymized if anonymize else (lambda n: n)
        shards = shards_section(toc, name, collection, level, count, peer, optimizer_section)
        out.update(shards=shards, transfers=[], resharding=[])
    return out


def hardware_section(
    collections: dict[str, Collection], anonymize: bool
) -> dict[str, dict[str, Any]]:
    """Qdrant's `HardwareTelemetry`: each collection's accumulated usage (its own counters
    and its local replicas', which take the writes of a sharded collection)."""
    data: dict[str, Any] = {}
    for name, collection in sorted(collections.items()):
        found = [collection.hardware.to_json()]
        found += [r.hardware.to_json() for r in collection.local_replicas() if r is not collection]
        usage = {k: sum(f[k] for f in found) for k in found[0]}
        if anonymize:
            usage = {k: anonymized(v) for k, v in usage.items()}
        data[hidden(name) if anonymize else name] = usage
    return {"collection_data": data}


def optimizer_section(stats: cstats.ShardStats, level: int) -> dict[str, Any]:
    status: Any = "ok" if stats.optimizer_status == "ok" else {"error": stats.optimizer_status}
    durations = [o.finished - o.started for o in stats.optimizations if o.finished is not None]
    summary: dict[str, Any] = {"count": stats.optimizations_done}  # timings: the log's
    if durations:
        summary.update(
            avg_duration_micros=sum(durations) / len(durations) * 1e6,
            min_duration_micros=min(durations) * 1e6,
            max_duration_micros=max(durations) * 1e6,
            total_duration_micros=int(sum(durations) * 1e6),
        )
    out: dict[str, Any] = {"status": status, "optimizations": summary}
    if level >= 3:
        out["log"] = [
            {
                "name": o.optimizer,
                "uuid": o.uuid,
                "segment_ids": list(range(len(o.segments))),
                "segment_uuids": [s.uuid for s in o.segments],
                "status": tracker_status(o.status),
                "start_at": iso_time(o.started),
                "end_at": iso_time(o.finished) if o.finished is not None else None,
            }
            for o in stats.optimizations
        ]
    return out


def tracker_status(status: str) -> Any:
    """Qdrant's `TrackerStatus`: "optimizing", "done" or `{"error": ...}`."""
    return status if status in ("optimizing", "done") else {"error": status}


def requests_section(anonymize: bool, per_collection: bool = False) -> dict[str, Any]:
    """Responses by endpoint and status; with `per_collection`, also by collection (left
    out when anonymized: collection names are the user's data)."""
    rest: dict[str, dict[str, Any]] = {}
    for method, endpoint, status, stats in STATS.rest_snapshot():
        rest.setdefault(f"{method} {endpoint}", {})[str(status)] = stats.to_json(anonymize)
    grpc: dict[str, dict[str, Any]] = {}
    for method, code, stats in STATS.grpc_snapshot():
        grpc.setdefault(method, {})[str(code)] = stats.to_json(anonymize)
    out: dict[str, Any] = {"rest": {"responses": rest}, "grpc": {"responses": grpc}}
    if per_collection and not anonymize:
        by_rest: dict[str, dict[str, dict[str, Any]]] = {}
        for name, method, endpoint, status, stats in STATS.rest_by_collection_snapshot():
            methods = by_rest.setdefault(name, {})
            methods.setdefault(f"{method} {endpoint}", {})[str(status)] = stats.to_json()
        by_grpc: dict[str, dict[str, dict[str, Any]]] = {}
        for name, method, code, stats in STATS.grpc_by_collection_snapshot():
            by_grpc.setdefault(name, {}).setdefault(method, {})[str(code)] = stats.to_json()
        out["rest"]["per_collection_responses"] = by_rest
        out["grpc"]["per_collection_responses"] = by_grpc
    return out
