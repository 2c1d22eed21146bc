"""`GET /metrics`: this process in Prometheus' text format, with Qdrant's metric names and
help texts where Qdrant has the metric, and `tessera_*` for Tessera's own.

Qdrant's: `app_info`, `app_status_recovery_mode`, `collections_total`,
`collections_vector_total`, `collection_vectors`, `collection_indexed_only_excluded_points`,
`collection_points`, `collection_running_optimizations`, `collection_active_replicas_min/max`,
`collection_dead_replicas` (a damaged collection's shard is not active), shard transfers and
update queues (always 0 on one node that applies updates before it answers),
`cluster_enabled` (and in cluster mode `cluster_peers_total`, `cluster_term`, `cluster_commit`,
`cluster_pending_operations_total`, `cluster_voter`, `cluster_last_update_timestamp_seconds`,
`cluster_working_state`, from api.telemetry's cluster section), `rest_responses_*` and
`grpc_responses_*` (total, avg/min/max duration, duration histogram; only Qdrant's
whitelisted search, scroll and update endpoints, REST timings only for status 200),
`collection_hardware_metric_*` (the telemetry's `hardware` section, per collection),
`memory_*`, `process_*` and `system_max_mmaps`. Tessera adds
`rest_responses_fail_total`/`grpc_responses_fail_total` (as Qdrant before 1.13), WAL fsync
counts and seconds, and the optimizer's queue and completed work per collection.

`anonymize=true` replaces collection names by hashes and rounds large counts, as
`/telemetry` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tessera import QDRANT_API_VERSION
from tessera.api.collections import toc_of
from tessera.api.envelope import error, query_flag
from tessera.api.request_stats import STATS, Stats, anonymized
from tessera.api.telemetry import cluster_section, hardware_section, hidden, query_int
from tessera.api.telemetry_system import memory_telemetry, process_stats
from tessera.collection import stats as cstats
from tessera.collection.shard_telemetry import indexed_only_excluded
from tessera.errors import TesseraError
from tessera.storage.toc import TableOfContents

CONTENT_TYPE = "text/plain; charset=utf-8"  # as Qdrant sends it

# Qdrant's whitelist of endpoints reported in /metrics (search, scroll and update ones).
REST_ENDPOINTS = frozenset(
    "/collections/{collection_name}/" + p
    for p in (
        "index",
        "points",
        "points/batch",
        "points/count",
        "points/delete",
        "points/discover",
        "points/discover/batch",
        "points/facet",
        "points/payload",
        "points/payload/clear",
        "points/payload/delete",
        "points/query",
        "points/query/batch",
        "points/query/groups",
        "points/recommend",
        "points/recommend/batch",
        "points/recommend/groups",
        "points/scroll",
        "points/search",
        "points/search/batch",
        "points/search/groups",
        "points/search/matrix/offsets",
        "points/search/matrix/pairs",
        "points/vectors",
        "points/vectors/delete",
        "vectors/{vector_name}",
    )
)
GRPC_ENDPOINTS = frozenset(
    "/qdrant.Points/" + m
    for m in [
        "ClearPayload",
        "Count",
        "CreateFieldIndex",
        "CreateVectorName",
        "Delete",
        "DeleteFieldIndex",
        "DeletePayload",
        "DeleteVectorName",
        "DeleteVectors",
        "Discover",
        "DiscoverBatch",
        "Facet",
        "Get",
        "OverwritePayload",
        "Query",
        "QueryBatch",
        "QueryGroups",
        "Recommend",
        "RecommendBatch",
        "RecommendGroups",
        "Scroll",
        "Search",
        "SearchBatch",
        "SearchGroups",
        "SearchMatrixOffsets",
        "SearchMatrixPairs",
        "SetPayload",
        "UpdateBatch",
        "UpdateVectors",
        "Upsert",
    ]
)

Labels = tuple[tuple[str, str], ...]

# Per collection with snapshot activity (storage.snapshot_activity): family, help, type, field.
SNAPSHOT_FAMILIES = (
    ("snapshot_creation_running", "amount of snapshot creations that are currently running",
     "gauge", "running_snapshots"),
    ("snapshot_recovery_running", "amount of snapshot recovery operations currently running",
     "gauge", "running_snapshot_recovery"),
    ("snapshot_created_total", "total amount of snapshots created", "counter",
     "total_snapshot_creations"),
)  # fmt: skip


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


class Exposition:
    """Metric families in the order added, each written once with its HELP and TYPE; a
    family without samples is left out (as Qdrant leaves it out)."""

    def __init__(self, prefix: str = "") -> None:
        self.lines: list[str] = []
        self.prefix = prefix  # `service.metrics_prefix`, prepended to every name as Qdrant does

    def family(
        self, name: str, help_text: str, kind: str, samples: Sequence[tuple[Labels, float]]
    ) -> None:
        if not samples:
            return
        name = self.prefix + name
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.lines += [f"{name}{self._labels(labels)} {_number(v)}" for labels, v in samples]

    def histogram(self, name: str, help_text: str, samples: Sequence[tuple[Labels, Stats]]) -> None:
        if not samples:
            return
        name = self.prefix + name
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for labels, stats in samples:
            for bound, count in stats.cumulative():
                le = (*labels, ("le", _number(bound)))
                self.lines.append(f"{name}_bucket{self._labels(le)} {count}")
            inf = (*labels, ("le", "+Inf"))
            self.lines.append(f"{name}_bucket{self._labels(inf)} {stats.count}")
            self.lines.append(f"{name}_sum{self._labels(labels)} {_number(stats.total)}")
            self.lines.append(f"{name}_count{self._labels(labels)} {stats.count}")

    @staticmethod
    def _labels(labels: Labels) -> str:
        if not labels:
            return ""
        return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


async def get_metrics(request: Request) -> Response:
    started = time.perf_counter()
    try:
        anonymize = query_flag(request, "anonymize")
        per_collection = query_flag(request, "per_collection")
        query_int(request, "timeout", 60, 1)
    except TesseraError as exc:
        return error(exc.status_code, exc.message, started)
    toc = toc_of(request)
    prefix: str = getattr(request.app.state, "metrics_prefix", None) or ""
    text = await run_in_threadpool(render_metrics, toc, anonymize, per_collection, prefix)
    return Response(text, media_type=CONTENT_TYPE)


def render_metrics(
    toc: TableOfContents, anonymize: bool, per_collection: bool = False, prefix: str = ""
) -> str:
    out = Exposition(prefix)
    out.family(
        "app_info",
        "information about qdrant server",
        "gauge",
        [((("name", "tessera"), ("version", QDRANT_API_VERSION)), 1)],
    )
    recovering = 1 if toc.recovery_mode is not None else 0
    out.family(
        "app_status_recovery_mode", "features enabled in qdrant server", "gauge", [((), recovering)]
    )
    _collections(out, toc, anonymize)
    _cluster(out, toc)
    STATS.prune(toc.exists)
    _requests(out, anonymize, per_collection)
    _hardware(out, toc, anonymize)
    _memory(out)
    _process(out)
    return out.text()


# Per-collection families: (name, help, type, the value of one collection's shard).
PER_COLLECTION: list[tuple[str, str, str, Callable[[cstats.ShardStats, Any], float]]] = [
    ("collection_running_optimizations",
     "number of currently running optimization tasks per collection", "gauge",
     lambda s, report: len(report.running)),
    ("collection_points", "approximate amount of points per collection", "gauge",
     lambda s, report: s.points),
    ("collection_shard_transfer_incoming", "incoming shard transfers currently running",
     "gauge", lambda s, report: 0),
    ("collection_shard_transfer_outgoing", "outgoing shard transfers currently running",
     "gauge", lambda s, report: 0),
    ("collection_shard_transfer_failed", "number of failed shard transfers", "gauge",
     lambda s, report: 0),
    # Tessera applies every update before it answers: nothing ever waits in a queue.
    ("collection_update_queue_length",
     "number of pending operations in update queues per collection", "gauge",
     lambda s, report: 0),
    ("tessera_wal_fsync_total", "WAL fdatasyncs done per collection", "counter",
     lambda s, report: s.fsync_count),
    ("tessera_wal_fsync_seconds_total", "seconds spent in WAL fdatasyncs per collection",
     "counter", lambda s, report: s.fsync_seconds),
    ("tessera_wal_fsync_max_seconds", "slowest WAL fdatasync per collection", "gauge",
     lambda s, report: s.fsync_max_seconds),
    ("tessera_optimizer_queued_optimizations",
     "optimizations planned next per collection (an estimate)", "gauge",
     lambda s, report: len(report.queued)),
    ("tessera_optimizer_queued_points", "points in the segments of the planned optimizations",
     "gauge", lambda s, report: sum(g.points for q in report.queued for g in q.segments)),
    ("tessera_optimizations_completed_total", "optimizations completed per collection",
     "counter", lambda s, report: s.optimizations_done),
]  # fmt: skip
# Counts that anonymization rounds.
COUNTS = {"collection_points", "tessera_optimizer_queued_points"}


def _collections(out: Exposition, toc: TableOfContents, anonymize: bool) -> None:
    count: Callable[[int], int] = anonymized if anonymize else (lambda n: n)
    name_of: Callable[[str], str] = hidden if anonymize else (lambda n: n)
    collections = sorted(toc.collections.items())
    rows: dict[str, list[tuple[Labels, float]]] = {name: [] for name, *_ in PER_COLLECTION}
    vectors: list[tuple[Labels, float]] = []
    excluded: list[tuple[Labels, float]] = []
    dead = 0
    for name, collection in collections:
        stats = cstats.shard_stats(collection)
        if stats is None:  # damaged: its one shard is not active
            dead += 1
            continue
        shown = name_of(name)
        report = cstats.optimizer_report(collection)
        for family, _, _, value in PER_COLLECTION:
            v = value(stats, report)
            rows[family].append(((("id", shown),), count(int(v)) if family in COUNTS else v))
        for vector, n in sorted(stats.vectors_by_name.items()):
            vectors.append(((("collection", shown), ("vector", vector)), count(n)))
        for vector, n in sorted((indexed_only_excluded(collection) or {}).items()):
            excluded.append(((("id", shown), ("vector", vector)), count(n)))
    # Each collection has one shard with one replica: active unless damaged.
    active = {"min": 0 if dead else min(len(collections), 1), "max": int(dead < len(collections))}
    total = [((), len(collections))]
    out.family("collections_total", "number of collections", "gauge", total)
    out.family("collections_vector_total", "total number of vectors in all collections",
               "gauge", [((), sum(v for _, v in vectors))])  # fmt: skip
    out.family("collection_vectors", "amount of vectors grouped by vector name", "gauge", vectors)
    out.family("collection_indexed_only_excluded_points",
               "amount of points excluded in indexed_only requests", "gauge", excluded)  # fmt: skip
    for bound in ("min", "max"):
        out.family(f"collection_active_replicas_{bound}",
                   f"{'minimum' if bound == 'min' else 'maximum'} number of active replicas "
                   "across all shards", "gauge", [((), active[bound])])  # fmt: skip
    out.family("collection_dead_replicas", "total amount of shard replicas in non-active state",
               "gauge", [((), dead)])  # fmt: skip
    activity = [((("id", name_of(name)),), c) for name, c in toc.snapshots.activity.counts()]
    for family, help_text, kind, field in SNAPSHOT_FAMILIES:
        out.family(family, help_text, kind, [(id_, getattr(c, field)) for id_, c in activity])
    for family, help_text, kind, _ in PER_COLLECTION:
        out.family(family, help_text, kind, rows[family])


def _cluster(out: Exposition, toc: TableOfContents) -> None:
    """Qdrant's cluster families (src/common/metrics: ClusterTelemetry's)."""
    section = cluster_section(toc, 1)
    out.family("cluster_enabled", "is cluster support enabled", "gauge",
               [((), int(section["enabled"]))])  # fmt: skip
    status = section.get("status")
    if status is None:
        return
    peer = (("peer_id", str(status["peer_id"])),)
    out.family("cluster_peers_total", "total number of cluster peers", "gauge",
               [((), status["number_of_peers"])])  # fmt: skip
    out.family("cluster_term", "current cluster term", "counter", [((), status["term"])])
    out.family("cluster_commit",
               "index of last committed (finalized) operation cluster peer is aware of",
               "counter", [(peer, status["commit"])])  # fmt: skip
    out.family("cluster_pending_operations_total",
               "total number of pending operations for cluster peer", "gauge",
               [((), status["pending_operations"])])  # fmt: skip
    out.family("cluster_voter", "is cluster peer a voter or learner", "gauge",
               [((), int(status["is_voter"]))])  # fmt: skip
    working = toc.cluster is not None and toc.cluster.problem() is None
    if working and toc.cluster is not None:
        out.family("cluster_last_update_timestamp_seconds", "unix timestamp of last update",
                   "counter", [((), int(toc.cluster.membership.last_contact))])  # fmt: skip
    out.family("cluster_working_state", "working state of the cluster", "gauge",
               [((("state", "working"),), int(working)),
                ((("state", "stopped"),), int(not working))])  # fmt: skip


Row = tuple[Labels, Stats, bool]  # labels, statistics, whether timings are reported


def _request_rows(anonymize: bool, per_collection: bool) -> list[tuple[str, list[Row]]]:
    """REST and gRPC rows of Qdrant's whitelisted endpoints: global, or (`per_collection`)
    one per collection with a `collection` label instead."""
    name_of: Callable[[str], str] = hidden if anonymize else (lambda n: n)
    if per_collection:
        rest: list[Row] = [
            ((("method", m), ("endpoint", e), ("status", str(s)), ("collection", name_of(c))),
             st, s == 200)
            for c, m, e, s, st in STATS.rest_by_collection_snapshot()
            if e in REST_ENDPOINTS
        ]  # fmt: skip
        grpc: list[Row] = [
            ((("endpoint", m), ("status", str(code)), ("collection", name_of(c))), st, True)
            for c, m, code, st in STATS.grpc_by_collection_snapshot()
            if m in GRPC_ENDPOINTS
        ]
    else:
        rest = [
            ((("method", m), ("endpoint", e), ("status", str(s))), st, s == 200)
            for m, e, s, st in STATS.rest_snapshot()
            if e in REST_ENDPOINTS
        ]
        grpc = [
            ((("endpoint", m), ("status", str(c))), st, True)
            for m, c, st in STATS.grpc_snapshot()
            if m in GRPC_ENDPOINTS
        ]
    return [("rest", rest), ("grpc", grpc)]


def _requests(out: Exposition, anonymize: bool, per_collection: bool) -> None:
    for prefix, rows in _request_rows(anonymize, per_collection):
        n: Callable[[int], int] = anonymized if anonymize else (lambda v: v)
        timed = [(labels, st) for labels, st, timings in rows if timings]
        out.family(
            f"{prefix}_responses_total",
            "total number of responses",
            "counter",
            [(labels, n(st.count)) for labels, st, _ in rows],
        )
        out.family(
            f"{prefix}_responses_fail_total",
            "total number of failed responses",
            "counter",
            [(labels, n(st.fail_count)) for labels, st, _ in rows],
        )
        out.family(
            f"{prefix}_responses_avg_duration_seconds",
            "average response duration",
            "gauge",
            [(lb, st.total / st.count) for lb, st in timed],
        )
        out.family(
            f"{prefix}_responses_min_duration_seconds",
            "minimum response duration",
            "gauge",
            [(lb, st.min) for lb, st in timed],
        )
        out.family(
            f"{prefix}_responses_max_duration_seconds",
            "maximum response duration",
            "gauge",
            [(lb, st.max) for lb, st in timed],
        )
        out.histogram(f"{prefix}_responses_duration_seconds", "response duration histogram", timed)


MEMORY_HELP = {
    "active_bytes": "Total number of bytes in active pages allocated by the application",
    "allocated_bytes": "Total number of bytes allocated by the application",
    "metadata_bytes": "Total number of bytes dedicated to metadata",
    "resident_bytes": "Maximum number of bytes in physically resident data pages mapped",
    "retained_bytes": "Total number of bytes in virtual memory mappings",
}


# Qdrant's `HardwareTelemetry` families, in its order: (usage key, help text).
HARDWARE_HELP = [
    ("cpu", "CPU measurements of a collection"),
    ("payload_io_read", "Total IO payload read metrics of a collection"),
    ("payload_index_io_read", "Total IO payload index read metrics of a collection"),
    ("payload_index_io_write", "Total IO payload index write metrics of a collection"),
    ("payload_io_write", "Total IO payload write metrics of a collection"),
    ("vector_io_read", "Total IO vector read metrics of a collection"),
    ("vector_io_write", "Total IO vector write metrics of a collection"),
]


def _hardware(out: Exposition, toc: TableOfContents, anonymize: bool) -> None:
    """`collection_hardware_metric_*`: the telemetry's `hardware` section as counters
    labelled `id` (the collection), as Qdrant writes them; none without collections."""
    usage = hardware_section(dict(toc.collections), anonymize)["collection_data"]
    for key, help_text in HARDWARE_HELP:
        samples = [((("id", name),), float(used[key])) for name, used in usage.items()]
        out.family(f"collection_hardware_metric_{key}", help_text, "counter", samples)


def _memory(out: Exposition) -> None:
    for key, value in memory_telemetry().items():
        out.family(f"memory_{key}", MEMORY_HELP[key], "gauge", [((), value)])


def _process(out: Exposition) -> None:
    stats = process_stats()
    if stats is None:
        return
    rows: list[tuple[str, str, str, Any]] = [
        ("process_threads", "count of active threads", "gauge", stats.threads),
        ("process_open_mmaps", "count of open mmaps", "gauge", stats.open_mmaps),
        ("system_max_mmaps", "system wide limit of open mmaps", "gauge", stats.max_mmaps),
        ("process_open_fds", "count of currently open file descriptors", "gauge", stats.open_fds),
        ("process_max_fds", "limit for open file descriptors", "gauge", stats.max_fds),
        (
            "process_minor_page_faults_total",
            "count of minor page faults which didn't cause a disk access",
            "counter",
            stats.minor_page_faults,
        ),
        (
            "process_major_page_faults_total",
            "count of disk accesses caused by a mmap page fault",
            "counter",
            stats.major_page_faults,
        ),
    ]
    for name, help_text, kind, value in rows:
        if value is not None:
            out.family(name, help_text, kind, [((), value)])
