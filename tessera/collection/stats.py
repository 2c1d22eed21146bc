"""What a collection can tell about itself for `/telemetry`, `/metrics` and
`GET /collections/{c}/optimizations`: counts, the optimizer's work (running, queued, done),
and the WAL's fsync timings. Plain values, read under the shard's read lock; the transports
render them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from tessera.collection.collection import Collection
from tessera.segment.ann_index import idle_since
from tessera.shard.optimizer import IDLE_SECONDS, Tracker, plan_optimization


@dataclass(frozen=True)
class SegmentRef:
    uuid: str
    points: int


@dataclass(frozen=True)
class Optimization:
    uuid: str
    optimizer: str
    status: str  # "optimizing", "done", or the error that stopped it
    segments: list[SegmentRef]
    started: float  # Unix seconds
    finished: float | None
    points: int  # points of the segment it built (0 until built)
    stages: list[tuple[str, float, float | None]]  # (step, started, finished)


@dataclass(frozen=True)
class PendingOptimization:
    optimizer: str
    segments: list[SegmentRef]


@dataclass(frozen=True)
class OptimizerReport:
    running: list[Optimization]
    queued: list[PendingOptimization]
    completed: list[Optimization]  # newest first
    idle: list[SegmentRef]


@dataclass(frozen=True)
class ShardStats:
    """The collection's one local shard."""

    points: int
    vectors_by_name: dict[str, int]
    segments: int
    optimizer_status: str  # Qdrant's OptimizersStatus: "ok" or the error
    optimizing: bool
    optimizations: list[Optimization]  # the log of completed ones, newest first
    optimizations_done: int  # completed since start
    fsync_count: int
    fsync_seconds: float
    fsync_max_seconds: float


def as_uuid(segment_id: str) -> str:
    """A segment id (32 hex digits) in the UUID form Qdrant reports segments in."""
    try:
        return str(uuid.UUID(hex=segment_id))
    except ValueError:
        return segment_id


def _view(tracker: Tracker) -> Optimization:
    return Optimization(
        as_uuid(tracker.uuid),
        tracker.optimizer,
        tracker.status,
        [SegmentRef(as_uuid(sid), n) for sid, n in tracker.sources],
        tracker.started,
        tracker.finished,
        tracker.points,
        list(tracker.stages),
    )


def optimizer_report(collection: Collection) -> OptimizerReport:
    """The running optimization, the next one planned (an estimate, as in Qdrant), the log
    of completed ones and the segments nothing is planned for. A damaged collection
    answers as to any other request: InternalError with the reason. A collection sharded
    over several local shards reports them together (this node's replicas)."""
    replicas = collection.local_replicas()
    if replicas != [collection] and replicas:
        found = [optimizer_report(r) for r in replicas]
        return OptimizerReport(
            [o for r in found for o in r.running],
            [o for r in found for o in r.queued],
            [o for r in found for o in r.completed],
            [o for r in found for o in r.idle],
        )
    shard = collection.shard
    optimizer = shard.optimizer
    with shard.read() as holder:
        current = optimizer.current
        busy = {sid for sid, _ in current.sources} if current is not None else set()
        plan = plan_optimization(holder, collection.config, idle_since(IDLE_SECONDS))
        queued = []
        planned: set[str] = set()
        if plan is not None and not busy & {s.segment_id for s in plan.sources}:
            refs = [SegmentRef(as_uuid(s.segment_id), s.live_count()) for s in plan.sources]
            queued.append(PendingOptimization(plan.reason, refs))
            planned = {s.segment_id for s in plan.sources}
        idle = [
            SegmentRef(as_uuid(s.segment_id), s.live_count())
            for s in holder.segments
            if s.segment_id not in busy | planned
        ]
    running = [_view(current)] if current is not None else []
    completed = [_view(t) for t in reversed(list(optimizer.completed))]
    return OptimizerReport(running, queued, completed, idle)


def shard_stats(collection: Collection) -> ShardStats | None:
    """None for a damaged collection (nothing loaded to count). A collection sharded over
    peers counts this peer's replicas (its own shard keeps no points there), as Qdrant's
    metrics and telemetry report a peer's local shards."""
    if collection.failure is not None:
        return None
    replicas = collection.local_replicas()
    if replicas != [collection]:
        found = [s for s in (shard_stats(r) for r in replicas) if s is not None]
        return _summed(found) if found else _one(collection)
    return _one(collection)


def _summed(found: list[ShardStats]) -> ShardStats:
    vectors: dict[str, int] = {}
    for stats in found:
        for name, n in stats.vectors_by_name.items():
            vectors[name] = vectors.get(name, 0) + n
    errors = [s.optimizer_status for s in found if s.optimizer_status != "ok"]
    return ShardStats(
        sum(s.points for s in found),
        vectors,
        sum(s.segments for s in found),
        errors[0] if errors else "ok",
        any(s.optimizing for s in found),
        [o for s in found for o in s.optimizations],
        sum(s.optimizations_done for s in found),
        sum(s.fsync_count for s in found),
        sum(s.fsync_seconds for s in found),
        max(s.fsync_max_seconds for s in found),
    )


def _one(collection: Collection) -> ShardStats:
    shard = collection.shard
    with shard.read() as holder:
        points = holder.live_count()
        vectors: dict[str, int] = {}
        for segment in holder.segments:
            live = segment.live_mask()
            for name, storage in segment.storages.items():
                present = storage.has(segment.size)
                count = int(np.count_nonzero(present[: len(live)] & live[: len(present)]))
                vectors[name] = vectors.get(name, 0) + count
        segments = len(holder.segments)
    optimizer = shard.optimizer
    completed = [_view(t) for t in reversed(list(optimizer.completed))]
    # As Qdrant's optimizer status: the error of the last optimization, if it failed.
    failed = completed[0].status if completed and completed[0].status != "done" else None
    wal = shard.wal
    return ShardStats(
        points,
        vectors,
        max(segments, 1),
        "ok" if failed is None else failed,
        optimizer.running,
        completed,
        optimizer.done_count,
        wal.fsync_count,
        wal.fsync_seconds,
        wal.fsync_max_seconds,
    )
