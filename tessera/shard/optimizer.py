"""The optimizer: rebuilds segments in the background without blocking reads or writes.

Three reasons to rebuild, checked in order:
- indexing: a segment whose vectors exceed `indexing_threshold` (KB) and has no HNSW index;
- vacuum: a segment with more than `deleted_threshold` of its points deleted (and at least
  `vacuum_min_vector_number` of them);
- merge: more immutable segments than `default_segment_number` (0: the CPU count): the two
  smallest are merged.

A rebuild first *seals* its sources under the write lock (an appendable source stops taking
points; writes then go to a fresh appendable segment, and an edit to a sealed point is a
copy-on-write that only flips the source's deleted bit). The new segment is built from the
sealed data with no lock held, then swapped in under the write lock, where every point that
was deleted from a source meanwhile is deleted from the new segment too. The sources stay in
the manifest until the next flush names the new segment, so a crash loses nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.collection.config import CollectionConfig
from tessera.query.scoring import as_float32
from tessera.segment.ann_index import HnswIndex
from tessera.segment.segment import Segment
from tessera.segment.vector_storage import DenseStorage, ObjectStorage
from tessera.shard.holder import SegmentHolder
from tessera.shard.rwlock import RWLock

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]


@dataclass
class Plan:
    reason: str
    sources: list[Segment]
    build_index: bool


def vector_bytes(segment: Segment, config: CollectionConfig) -> int:
    per_point = sum(p.size * 4 for p in config.vectors.values() if not p.multivector)
    return segment.live_count() * per_point


def _index_wanted(config: CollectionConfig, points_bytes: int) -> bool:
    threshold_kb = config.optimizer_config.get("indexing_threshold")
    if threshold_kb is None:
        threshold_kb = 10000
    dense = [p for p in config.vectors.values() if not p.multivector]
    if not threshold_kb or not dense:
        return False
    return points_bytes >= threshold_kb * 1024


def plan_optimization(holder: SegmentHolder, config: CollectionConfig) -> Plan | None:
    opt = config.optimizer_config
    for segment in holder.segments:
        if not segment.vector_indexes and _index_wanted(config, vector_bytes(segment, config)):
            return Plan("indexing", [segment], True)
    deleted_threshold = float(opt.get("deleted_threshold") or 0.2)
    vacuum_min = int(opt.get("vacuum_min_vector_number") or 1000)
    for segment in holder.segments:
        if segment.appendable or not segment.size:
            continue
        deleted = segment.size - segment.live_count()
        if deleted >= vacuum_min and deleted / segment.size > deleted_threshold:
            return Plan("vacuum", [segment], bool(segment.vector_indexes))
    target = int(opt.get("default_segment_number") or 0) or max(os.cpu_count() or 2, 2)
    sealed = [s for s in holder.segments if not s.appendable]
    if len(sealed) > target:
        smallest = sorted(sealed, key=lambda s: s.live_count())[:2]
        total = sum(vector_bytes(s, config) for s in smallest)
        max_kb = opt.get("max_segment_size")
        if max_kb is None or total <= int(max_kb) * 1024:
            return Plan("merge", smallest, _index_wanted(config, total))
    return None


def build_segment(
    sources: list[tuple[Segment, IntArray]],
    config: CollectionConfig,
    index_schemas: dict[str, Any],
    build_index: bool,
) -> Segment:
    new = Segment(uuid.uuid4().hex, config, appendable=False)
    ext_ids = [src.ext_ids[o] for src, offs in sources for o in offs.tolist()]
    n = len(ext_ids)
    new._ensure(n)
    new.size = n
    new.ext_ids = ext_ids
    new._set_keys(0, ext_ids)
    new.id_map = dict(zip(ext_ids, range(n), strict=True))
    if n:
        new.versions[:n] = np.concatenate([src.versions[offs] for src, offs in sources])
    new.payloads = [src.payloads[o] for src, offs in sources for o in offs.tolist()]
    for name, storage in new.storages.items():
        if isinstance(storage, DenseStorage):
            parts = [src.storages[name] for src, _ in sources]
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
            for src, offs in sources:
                src_storage = src.storages[name]
                assert isinstance(src_storage, ObjectStorage)
                src_storage.ensure(src.size)
                items.extend(src_storage.items[o] for o in offs.tolist())
            storage.items = items
    for key, schema in index_schemas.items():
        new.create_field_index(key, schema)
    if build_index:
        for name, params in config.vectors.items():
            storage = new.storages[name]
            if params.multivector or not isinstance(storage, DenseStorage):
                continue
            hnsw = config.hnsw_for(name)
            vectors = as_float32(storage.matrix[:n])
            index = HnswIndex.build(
                vectors, params.distance, int(hnsw["m"]), int(hnsw["ef_construct"])
            )
            new.vector_indexes[name] = index
            if storage.matrix.dtype == np.float32:
                storage.matrix = index.vectors_view()
            new.dirty.add(f"hnsw:{name}")
    new.dirty.update({"ids", "payload", *(f"vec:{name}" for name in new.storages)})
    return new


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
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="optimizer", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def pending(self) -> bool:
        with self.lock.read():
            return self.running or plan_optimization(self.holder, self.config) is not None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while not self._stop.is_set() and self.run_once():
                    pass
            except Exception:
                log.exception("optimizer failed; sources are kept")
                self.running = False

    def run_once(self) -> bool:
        with self.lock.write():
            plan = plan_optimization(self.holder, self.config)
            if plan is None:
                return False
            self.running = True
            taken: list[tuple[Segment, IntArray]] = []
            for segment in plan.sources:
                if segment.appendable:
                    segment.appendable = False
                    segment.dirty.add("ids")
                taken.append((segment, np.flatnonzero(segment.live_mask()).astype(np.int64)))
            schemas = dict(self.holder.index_schemas)
        try:
            new = build_segment(taken, self.config, schemas, plan.build_index)
            with self.lock.write():
                self._swap(plan.sources, taken, new)
            self.flush()
            log.info(
                "optimizer: %s of %d segment(s) -> %d points",
                plan.reason,
                len(plan.sources),
                new.live_count(),
            )
        finally:
            self.running = False
        return True

    def _swap(
        self, sources: list[Segment], taken: list[tuple[Segment, IntArray]], new: Segment
    ) -> None:
        start = 0
        gone: list[IntArray] = []
        for src, offs in taken:
            deleted_since = np.flatnonzero(src.deleted[offs]).astype(np.int64)
            gone.append(deleted_since + start)
            start += len(offs)
        if gone:
            new.delete(np.concatenate(gone), int(new.versions.max(initial=0)))
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
