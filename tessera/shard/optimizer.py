"""The optimizer: rebuilds segments in the background without blocking reads or writes.

Three reasons to rebuild, checked in order:
- indexing: a segment whose vectors exceed `indexing_threshold` (KB) and has no HNSW index;
- vacuum: a segment with more than `deleted_threshold` of its points deleted (and at least
  `vacuum_min_vector_number` of them);
- merge: more immutable segments than `default_segment_number` (0: the CPU count): the two
  smallest are merged;
- config mismatch (Qdrant's ConfigMismatchOptimizer): an indexed segment whose graphs were
  built with another HNSW `m`/`ef_construct`/`on_disk`, vectors `on_disk` or quantization
  than the collection's config asks now (`segment.build_record`, set by `build_segment`):
  after a PATCH of those, it is rebuilt from scratch with the new config, the largest
  first. Searches meanwhile are answered by the old segment, as for every rebuild. A graph
  never extends another built with a different config (`_extendable`).

A rebuild first *seals* its sources under the write lock (an appendable source stops taking
points; writes then go to a fresh appendable segment, and an edit to a sealed point is a
copy-on-write that only flips the source's deleted bit). The new segment is built from the
sealed data with no lock held, then swapped in under the write lock, where every point that
was deleted from a source meanwhile is deleted from the new segment too. The sources stay in
the manifest until the next flush names the new segment, so a crash loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.collection_config import CollectionConfig, optimizer_settings
from tessera.errors import failure_text
from tessera.memory import release_free_memory
from tessera.query.scoring import as_float32, normalize_rows
from tessera.segment import build_record
from tessera.segment.ann_index import HnswIndex, idle_since
from tessera.segment.segment import Segment, Storage
from tessera.segment.vector_storage import DenseStorage, ObjectStorage
from tessera.shard.errors import ShardClosed
from tessera.shard.holder import SegmentHolder
from tessera.shard.rwlock import RWLock

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]


@dataclass
class Plan:
    reason: str
    sources: list[Segment]
    build_index: bool
    # An indexed source whose graph is extended (cloned, then the other sources' points added)
    # instead of rebuilding from scratch: each point is inserted into a graph once.
    base: Segment | None = None


@dataclass
class Tracker:
    """One optimization as `GET /collections/{c}/optimizations` reports it (read-only for
    everyone but the optimizer thread): `uuid` is the id of the segment it builds, `sources`
    the (segment id, live points) it replaces, times are Unix seconds."""

    uuid: str
    optimizer: str
    sources: list[tuple[str, int]]
    started: float
    finished: float | None = None
    status: str = "optimizing"  # then "done", or the error that stopped it
    points: int = field(default=0)  # points in the new segment, once built
    # The steps so far: (name, started, finished or None while it runs).
    stages: list[tuple[str, float, float | None]] = field(default_factory=list)

    def enter(self, stage: str | None) -> None:
        """Ends the running step; starts `stage` (None: none, the optimization is over)."""
        now = time.time()
        if self.stages and self.stages[-1][2] is None:
            name, started, _ = self.stages[-1]
            self.stages[-1] = (name, started, now)
        if stage is not None:
            self.stages.append((stage, now, None))


# Completed optimizations kept for the report (Qdrant keeps a bounded log too).
TRACKER_LOG = 64

# Seconds without an update after which the appendable leftovers are indexed too.
IDLE_SECONDS = 2.0
# Updates within this many seconds mean a stream of writes: indexing waits (see below),
# unless the unindexed backlog passes BACKLOG_FACTOR times the indexing threshold.
WRITING_SECONDS = 0.5
BACKLOG_FACTOR = 10

# Qdrant picks a maximum segment size from the machine when none is configured.
DEFAULT_MAX_SEGMENT_KB = 512 * 1024


def _point_bytes(config: CollectionConfig) -> int:
    return sum(p.size * 4 for p in config.vectors.values() if not p.multivector)


def vector_bytes(segment: Segment, config: CollectionConfig) -> int:
    multi = 0
    for name, params in config.vectors.items():
        storage = segment.storages.get(name)
        if params.multivector and isinstance(storage, ObjectStorage):
            multi += storage.rows_total * params.size * 4
    return segment.live_count() * _point_bytes(config) + multi


def _index_wanted(config: CollectionConfig, points_bytes: int) -> bool:
    threshold_kb = optimizer_settings(config).get("indexing_threshold")
    if threshold_kb is None:
        threshold_kb = 10000
    if not threshold_kb or not config.vectors:
        return False
    return points_bytes >= threshold_kb * 1024


def _max_bytes(config: CollectionConfig) -> int:
    max_kb = optimizer_settings(config).get("max_segment_size") or DEFAULT_MAX_SEGMENT_KB
    return int(max_kb) * 1024


def _extendable(base: Segment, config: CollectionConfig) -> bool:
    dense = [n for n, p in config.vectors.items() if not p.multivector]
    return (
        bool(dense)
        and all(n in base.vector_indexes for n in dense)
        and config_mismatch(base, config) is None
    )


def config_mismatch(segment: Segment, config: CollectionConfig) -> str | None:
    """Why an indexed segment's graphs differ from what `config` asks now (None: they do
    not, or the segment has no graph)."""
    if segment.appendable or not segment.vector_indexes:
        return None
    return build_record.segment_mismatch(segment.build_record, segment.vector_indexes, config)


def _pick_base(
    candidates: list[Segment], extra_bytes: int, config: CollectionConfig
) -> Segment | None:
    room = _max_bytes(config) - extra_bytes
    fitting = [
        s for s in candidates if _extendable(s, config) and s.size * _point_bytes(config) <= room
    ]
    return max(fitting, key=lambda s: s.size, default=None)


def optimizations_disabled(config: CollectionConfig) -> bool:
    """`max_optimization_threads: 0`: "no optimization threads, optimizations will be
    disabled" (Qdrant's config): nothing is indexed, merged or vacuumed until it changes."""
    return optimizer_settings(config).get("max_optimization_threads") == 0


def plan_optimization(
    holder: SegmentHolder, config: CollectionConfig, idle: bool = False, writing: bool = False
) -> Plan | None:
    """`idle`: no update for a while. Then the points left in the appendable segment under
    the indexing threshold (1000 or more, and 1% of the base or more) are added to an
    indexed segment's graph too, so that searches walk one graph instead of also scanning
    the leftovers."""
    opt = optimizer_settings(config)
    if optimizations_disabled(config):
        return None
    target = int(opt.get("default_segment_number") or 0) or 1
    indexed = [s for s in holder.segments if s.vector_indexes and not s.appendable]
    # Until there are `default_segment_number` sealed segments, new data gets its own.
    sealed_count = sum(1 for s in holder.segments if not s.appendable)
    extend = sealed_count >= target
    for segment in holder.segments:
        if segment.vector_indexes:
            continue
        size = vector_bytes(segment, config)
        wanted = _index_wanted(config, size)
        # prevent_unoptimized: points past the threshold wait for this index, unseen.
        prevent = bool(opt.get("prevent_unoptimized"))
        if wanted and writing and not prevent and not _index_wanted(config, size // BACKLOG_FACTOR):
            # Updates are streaming in: building now would take the cores they need. The
            # appendable segment keeps them (searched exactly) until a pause, or until it
            # holds BACKLOG_FACTOR times the threshold.
            continue
        leftovers = idle and _index_wanted(config, 1 << 62) and segment.live_count() >= 1000
        if wanted or leftovers:
            base = _pick_base(indexed, size, config) if extend else None
            # Extending copies the base's graph and rewrites the segment at the next flush:
            # for leftovers, only worth it when they are a noticeable share of the base.
            if base is not None and (wanted or segment.live_count() * 100 >= base.size):
                return Plan("indexing", [base, segment], True, base)
            if wanted:
                return Plan("indexing", [segment], True)
    deleted_threshold = float(opt.get("deleted_threshold") or 0.2)
    vacuum_min = int(opt.get("vacuum_min_vector_number") or 1000)
    for segment in holder.segments:
        if segment.appendable or not segment.size:
            continue
        deleted = segment.size - segment.live_count()
        if deleted >= vacuum_min and deleted / segment.size > deleted_threshold:
            return Plan("vacuum", [segment], bool(segment.vector_indexes))
    # Segments are searched one after another here, so fewer is faster: by default merge
    # toward a single sealed segment, within the maximum segment size.
    sealed = [s for s in holder.segments if not s.appendable]
    if len(sealed) > target:
        smallest = sorted(sealed, key=lambda s: s.live_count())[:2]
        total = sum(vector_bytes(s, config) for s in smallest)
        if total <= _max_bytes(config):
            wanted = _index_wanted(config, total)
            larger = max(smallest, key=lambda s: s.size)
            base = larger if wanted and _extendable(larger, config) else None
            order = [larger, *[s for s in smallest if s is not larger]] if base else smallest
            return Plan("merge", order, wanted, base)
    mismatched = [s for s in holder.segments if config_mismatch(s, config) is not None]
    if mismatched:
        worst = max(mismatched, key=lambda s: vector_bytes(s, config))
        return Plan("config_mismatch", [worst], True)
    return None


def build_segment(
    sources: list[tuple[Segment, IntArray]],
    config: CollectionConfig,
    index_schemas: dict[str, Any],
    build_index: bool,
    base: Segment | None = None,
    segment_id: str | None = None,
    sealed: list[dict[str, Storage]] | None = None,
) -> Segment:
    """A new immutable segment from the given offsets of each source, in order.

    With a `base` (the first source, taken whole: deleted offsets included, so its graph ids
    stay valid), the base's graph is cloned and the other sources' points are added to it.
    `sealed`: each source's storages as sealed (a name removed meanwhile is still read from
    there, without a race with the removal; the swap drops it).
    """
    storages = sealed if sealed is not None else [dict(src.storages) for src, _ in sources]
    new = Segment(segment_id or uuid.uuid4().hex, config, appendable=False)
    n = sum(len(offs) for _, offs in sources)
    new._ensure(n)
    new.size = n
    if n:
        new.versions[:n] = np.concatenate([src.versions[offs] for src, offs in sources])
        new.deleted[:n] = np.concatenate([src.deleted[offs] for src, offs in sources])
        # The ids as key arrays only: the segment builds Python id objects if a write needs them.
        new.key_kind = np.concatenate([src.key_kind[offs] for src, offs in sources])
        new.key_hi = np.concatenate([src.key_hi[offs] for src, offs in sources])
        new.key_lo = np.concatenate([src.key_lo[offs] for src, offs in sources])
    new.ext_ids = None
    new.id_map = None
    new.payloads = [src.payloads[o] for src, offs in sources for o in offs.tolist()]
    # name -> (the first source's rows, read where they are; the other sources' gathered)
    in_place: dict[str, tuple[Any, Any]] = {}
    for name, storage in new.storages.items():
        if any(name not in src for src in storages):
            continue  # a vector name added meanwhile: _swap gives it an empty storage
        if isinstance(storage, DenseStorage):
            parts = [src[name] for src in storages]
            if (
                build_index
                and (len(sources) == 1 or sources[0][0] is base)
                and _taken_whole(*sources[0])
            ):
                # The first source is taken whole, and is all there is or a base whose graph
                # grows: the build reads its rows where they are and only the others' are
                # gathered; the graph's own copy becomes the matrix below (else a copy of
                # the whole). Gathering all now made a third copy of every vector at the
                # build's peak (~0.5 GB at 1M x 128). (A merge with no base gathers all: its
                # graph is built over the whole anyway.)
                first = np.asarray(parts[0].rows(sources[0][0].size))  # type: ignore[union-attr]
                others = [
                    np.asarray(p.rows(src.size))[offs]  # type: ignore[union-attr]
                    for p, (src, offs) in zip(parts[1:], sources[1:], strict=True)
                ]
                in_place[name] = (first, np.concatenate(others) if others else first[:0])
                storage.matrix = first  # until the graph is built
            else:
                mats = [
                    np.asarray(p.rows(src.size))[offs]  # type: ignore[union-attr]
                    for p, (src, offs) in zip(parts, sources, strict=True)
                ]
                storage.matrix = np.concatenate(mats) if mats else storage.matrix
            storage.present = np.concatenate(
                [p.has(src.size)[offs] for p, (src, offs) in zip(parts, sources, strict=True)]
            )
        elif isinstance(storage, ObjectStorage):
            items: list[Any] = []
            for (src, offs), src_storages in zip(sources, storages, strict=True):
                src_storage = src_storages[name]
                assert isinstance(src_storage, ObjectStorage)
                src_storage.ensure(src.size)
                items.extend(src_storage.items[o] for o in offs.tolist())
            storage.set_items(items)
    for key, schema in index_schemas.items():
        new.create_field_index(key, schema)
    if build_index:
        for name, params in config.vectors.items():
            dense = new.storages.get(name)  # None: added meanwhile (see _swap)
            if params.multivector or not isinstance(dense, DenseStorage):
                continue
            index = None
            base_index = base.vector_indexes.get(name) if base is not None else None
            entry = build_record.target_entry(config, name)  # one read of the config
            first, rest = in_place.pop(name, (None, None))
            if base is not None and base_index is not None:
                tail = rest if first is not None else dense.matrix[base.size : n]
                index = base_index.extended(_graph_rows(tail, params))
                entry = base.build_record.get(name, entry) if index is not None else entry
            joined = None  # the whole matrix, once gathered
            if index is None:
                if first is not None:
                    joined = np.concatenate([first, rest]) if len(rest) else first
                index = HnswIndex.build(
                    _graph_rows(dense.matrix[:n] if joined is None else joined, params),
                    params.distance,
                    entry["m"],
                    entry["ef_construct"],
                    entry["quantization"],
                )
            new.vector_indexes[name] = index
            new.build_record[name] = entry
            view = index.vectors_view()
            if view is not None and dense.matrix.dtype == np.float32:
                dense.matrix = view
            elif first is not None:
                # No graph's copy stands for the rows (a quantized graph, or rows stored as
                # another type): a matrix of the segment's own, never the source's buffer.
                dense.matrix = (
                    joined
                    if joined is not None and joined is not first
                    else np.concatenate([first, rest])
                )
            new.dirty.add(f"hnsw:{name}")
        for name, params in config.vectors.items():
            multi = new.storages.get(name)
            if params.multivector and isinstance(multi, ObjectStorage):
                # A graph over every row of every multivector: the first stage of a
                # multivector search, rescored with exact max_sim.
                entry = build_record.target_entry(config, name)
                rows, _ = multi.packed(n)
                new.vector_indexes[name] = HnswIndex.build(
                    as_float32(rows), params.distance, entry["m"], entry["ef_construct"]
                )
                new.build_record[name] = entry
                new.dirty.add(f"hnsw:{name}")
    for name, (first, rest) in in_place.items():  # no graph was built over these rows
        new.storages[name].matrix = np.concatenate([first, rest])  # type: ignore[union-attr]
    new.dirty.update({"ids", "payload", *(f"vec:{name}" for name in new.storages)})
    return new


def _graph_rows(stored: Any, params: Any) -> Any:
    """Stored rows as a graph takes them: float32, and unit length for Cosine bytes (stored
    as given; the graph needs unit vectors to rank by cosine)."""
    vectors = as_float32(stored, params.size)
    if params.distance == "Cosine" and params.datatype == "uint8":
        vectors = normalize_rows(vectors)
    return vectors


def _taken_whole(segment: Segment, offsets: IntArray) -> bool:
    """Every offset of the segment, in order (increasing offsets, as a plan takes them)."""
    n = segment.size
    return len(offsets) == n and (n == 0 or (int(offsets[0]) == 0 and int(offsets[-1]) == n - 1))


class Optimizer:
    def __init__(
        self,
        holder: SegmentHolder,
        lock: RWLock,
        config: CollectionConfig,
        flush: Callable[[], None],
    ) -> None:
        self.holder = holder
        self.lock = lock
        self.config = config
        self.flush = flush
        self.running = False  # whether a rebuild is in progress (read for status)
        self.current: Tracker | None = None  # the rebuild in progress, for progress reports
        self.completed: deque[Tracker] = deque(maxlen=TRACKER_LOG)
        self.done_count = 0  # optimizations completed since start (the log keeps the last)
        # Why the last run failed, until one succeeds (the collection reports it, red, as
        # Qdrant reports its optimizer errors).
        self.error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="optimizer", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def pending(self) -> bool:
        with self.lock.read():
            # Work deferred while updates stream in is still pending work.
            plan = plan_optimization(self.holder, self.config, idle_since(IDLE_SECONDS))
            return self.running or plan is not None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while not self._stop.is_set() and self.run_once():
                    pass
            except ShardClosed:
                # Its collection was deleted under the run: nothing is left to keep.
                log.debug("optimizer stopped: the shard closed during a run")
                self.running = False
                return
            except Exception as exc:
                log.exception("optimizer failed; sources are kept")
                self.error = f"Optimization failed: {failure_text(exc)}"
                self.running = False

    def _plan(self) -> Plan | None:
        return plan_optimization(
            self.holder,
            self.config,
            idle=idle_since(IDLE_SECONDS),
            writing=not idle_since(WRITING_SECONDS),
        )

    def _nothing_to_do(self) -> bool:
        """Whether a look without the lock finds nothing to do. Every write wakes the
        optimizer: taking the shard's write lock just to find nothing (the usual answer)
        made readers and quick writes queue behind this thread, which waits for the
        interpreter lock while a busy event loop holds it. A write racing this look can
        only make it wrong for now; the next write's wake, or the one-second tick, looks
        again, and a plan found is made again under the lock."""
        try:
            return self._plan() is None
        except Exception:
            return False

    def run_once(self) -> bool:
        if self._nothing_to_do():
            return False
        with self.lock.write():
            plan = self._plan()
            if plan is None:
                return False
            self.running = True
            taken: list[tuple[Segment, IntArray]] = []
            for segment in plan.sources:
                if segment.appendable:
                    segment.appendable = False
                    segment.dirty.add("ids")
                if segment is plan.base:
                    offsets = np.arange(segment.size, dtype=np.int64)
                else:
                    offsets = np.flatnonzero(segment.stored_mask()).astype(np.int64)
                taken.append((segment, offsets))
            # The storages sealed: a name removed (and maybe created again) before the swap
            # is told apart by identity, whatever its schema now (see _swap).
            sealed = [dict(segment.storages) for segment in plan.sources]
            schemas = dict(self.holder.index_schemas)
            tracker = Tracker(
                uuid.uuid4().hex,
                plan.reason,
                [(s.segment_id, s.live_count()) for s in plan.sources],
                time.time(),
            )
            self.current = tracker
        try:
            tracker.enter("build segment")
            new = build_segment(
                taken, self.config, schemas, plan.build_index, plan.base, tracker.uuid, sealed
            )
            tracker.enter("swap")
            with self.lock.write():
                self._swap(plan.sources, taken, new, sealed)
            tracker.enter("flush")
            self.flush()
            points = new.live_count()
            tracker.points, tracker.status = points, "done"
            self.done_count += 1
            self.error = None
            del new, taken
            release_free_memory(collect=True)
            log.info(
                "optimizer: %s of %d segment(s) -> %d points",
                plan.reason,
                len(plan.sources),
                points,
            )
        except Exception as exc:
            tracker.status = f"{exc}"
            self.error = f"Optimization failed: {failure_text(exc)}"
            raise
        finally:
            tracker.enter(None)
            tracker.finished = time.time()
            self.completed.append(tracker)
            self.current = None
            self.running = False
        return True

    def _swap(
        self,
        sources: list[Segment],
        taken: list[tuple[Segment, IntArray]],
        new: Segment,
        sealed: list[dict[str, Storage]],
    ) -> None:
        start = 0
        gone: list[IntArray] = []
        for src, offs in taken:
            deleted_since = np.flatnonzero(src.deleted[offs]).astype(np.int64)
            gone.append(deleted_since + start)
            start += len(offs)
        if gone:
            new.delete(np.concatenate(gone), int(new.versions.max(initial=0)))
        # Vector names added or removed while the segment was built (shard.vector_schema).
        # A name whose storage in a source is no longer the one sealed was removed and
        # created again: what the new segment copied is the removed vector's, dropped too.
        names = {*self.config.vectors, *self.config.sparse_vectors}
        for name in list(new.storages):
            recreated = any(
                src.storages.get(name) is not before.get(name)
                for src, before in zip(sources, sealed, strict=True)
            )
            if name not in names or recreated:
                new.drop_vector_storage(name)
        for name in [*self.config.vectors, *self.config.sparse_vectors]:
            if name not in new.storages:
                new.add_vector_storage(name)
        for key in list(new.field_indexes):
            if key not in self.holder.index_schemas:
                new.drop_field_index(key)
        for key, schema in self.holder.index_schemas.items():
            if key not in new.field_indexes:
                new.create_field_index(key, schema)
        first = self.holder.segments.index(sources[0])
        remaining = [s for s in self.holder.segments if s not in sources]
        remaining.insert(min(first, len(remaining)), new)
        self.holder.segments = remaining

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
