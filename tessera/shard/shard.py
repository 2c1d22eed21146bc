"""One local shard: the WAL, the segment holder, recovery and flush.

Write path (`update`): under the exclusive lock, the caller's `prepare` validates against the
current state and returns the operation (filters already resolved to ids); the operation is
appended to the WAL and applied; after the lock is released the WAL record is fsynced (group
commit, shared with concurrent writers) and only then is the write acknowledged.

Checkpoint (`flush`): under the exclusive lock every segment hands over a snapshot of what
changed plus the sequence number S applied so far; outside the lock the files are written
and fsynced, then `manifest.json` is replaced atomically (it names every segment's files and
S). The WAL is truncated below S+1 and files no manifest names are removed. Recovery loads
the manifest's segments (exactly the state at S) and replays the WAL from S+1.

Layout: `<shard>/manifest.json`, `<shard>/wal/`, `<shard>/segments/<segment_id>/`.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from tessera.collection.config import CollectionConfig
from tessera.errors import ServiceUnavailable
from tessera.fsutil import write_durable
from tessera.memory import release_free_memory
from tessera.segment.ann_index import note_write
from tessera.segment.persist import load_segment, take_snapshot, write_snapshot
from tessera.shard import operations as ops
from tessera.shard.apply import apply_record
from tessera.shard.holder import SegmentHolder
from tessera.shard.optimizer import Optimizer
from tessera.shard.rwlock import RWLock
from tessera.shard.wal import Wal

log = logging.getLogger(__name__)

# Head room kept free for checkpoints and WAL segment files; writes beyond it are refused.
MIN_FREE_BYTES = int(os.environ.get("TESSERA_MIN_FREE_BYTES", 64 * 1024 * 1024))


class LocalShard:
    def __init__(self, path: Path, config: CollectionConfig) -> None:
        self.path = path
        self.config = config
        self.lock = RWLock()
        self._flush_lock = threading.Lock()
        self.holder = SegmentHolder(config)
        self.applied_seq = 0  # guarded by lock (write side)
        self._gen = 0  # guarded by _flush_lock
        self._flushed_seq = -1  # guarded by _flush_lock
        self._closed = False
        path.mkdir(parents=True, exist_ok=True)
        (path / "segments").mkdir(exist_ok=True)
        self._load_manifest()
        self.wal = Wal(path / "wal")
        self._replay()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="flush", daemon=True)
        self._flusher.start()
        self.optimizer = Optimizer(self.holder, self.lock, config, self.flush)

    # ---- recovery -----------------------------------------------------------------

    def _load_manifest(self) -> None:
        manifest_path = self.path / "manifest.json"
        if not manifest_path.exists():
            return
        manifest = orjson.loads(manifest_path.read_bytes())
        self.applied_seq = int(manifest["seq"])
        self._gen = int(manifest["gen"])
        self.holder.index_schemas = dict(manifest.get("index_schemas", {}))
        for entry in manifest["segments"]:
            seg_dir = self.path / "segments" / entry["id"]
            self.holder.segments.append(
                load_segment(seg_dir, entry["id"], entry["files"], self.config)
            )

    def _replay(self) -> None:
        replayed = 0
        for seq, data in self.wal.read_from(self.applied_seq + 1):
            record = ops.decode(data)
            apply_record(self.holder, seq, record)
            self.applied_seq = seq
            replayed += 1
        if replayed:
            log.info("shard %s: replayed %d WAL records", self.path, replayed)

    # ---- writes -------------------------------------------------------------------

    def update(self, prepare: Callable[[SegmentHolder], ops.Record | None]) -> int:
        """Validate, log, apply, then fsync. Returns the operation's sequence number."""
        with self.lock.write():
            record = prepare(self.holder)
            if record is None:
                return self.applied_seq
            data = ops.encode(record)
            self._check_disk(len(data))
            try:
                seq = self.wal.append(data)
            except OSError as exc:
                raise ServiceUnavailable(f"Service unavailable: WAL write failed: {exc}") from exc
            try:
                apply_record(self.holder, seq, record)
            finally:
                self.applied_seq = seq
        try:
            self.wal.sync(seq)
        except OSError as exc:
            raise ServiceUnavailable(f"Service unavailable: WAL sync failed: {exc}") from exc
        note_write()
        self.optimizer.poke()
        return seq

    def _check_disk(self, need: int) -> None:
        """Refuse a write the disk cannot hold, before it is logged; reads go on."""
        free = shutil.disk_usage(self.path).free
        if free < need + MIN_FREE_BYTES:
            raise ServiceUnavailable(
                f"Service unavailable: no space left on device for the WAL: {free} bytes free, "
                f"{need + MIN_FREE_BYTES} needed"
            )

    @contextmanager
    def read(self) -> Iterator[SegmentHolder]:
        with self.lock.read():
            yield self.holder

    # ---- checkpoints --------------------------------------------------------------

    def flush(self) -> None:
        with self._flush_lock:
            with self.lock.write():
                seq = self.applied_seq
                snapshots = [take_snapshot(s) for s in self.holder.segments]
                segments = list(self.holder.segments)
                index_schemas = dict(self.holder.index_schemas)
            if seq == self._flushed_seq and not any(s.components for s in snapshots):
                return
            self._gen += 1
            gen = self._gen
            entries: list[dict[str, Any]] = []
            try:
                for segment, snap in zip(segments, snapshots, strict=True):
                    names = sorted(segment.storages)
                    seg_dir = self.path / "segments" / segment.segment_id
                    files = write_snapshot(snap, seg_dir, gen, names)
                    entries.append({"id": segment.segment_id, "files": files})
                manifest = {
                    "seq": seq,
                    "gen": gen,
                    "segments": entries,
                    "index_schemas": index_schemas,
                }
                # The manifest must not claim a seq the WAL could still lose.
                if seq:
                    self.wal.sync(seq)
                write_durable(self.path / "manifest.json", orjson.dumps(manifest))
            except BaseException:
                # The snapshot consumed the dirty marks: make the next flush rewrite all.
                for segment in segments:
                    segment.files_by_component = {}
                raise
            for segment, entry in zip(segments, entries, strict=True):
                segment.files_by_component = entry["files"]
            self._flushed_seq = seq
            self.wal.truncate_before(seq + 1)
            self._remove_unreferenced(entries)
            del snapshots
            release_free_memory()

    def _remove_unreferenced(self, entries: list[dict[str, Any]]) -> None:
        referenced = {e["id"]: {f for fs in e["files"].values() for f in fs} for e in entries}
        for seg_dir in (self.path / "segments").iterdir():
            keep = referenced.get(seg_dir.name)
            if keep is None:
                shutil.rmtree(seg_dir, ignore_errors=True)
                continue
            for f in seg_dir.iterdir():
                if f.name not in keep:
                    f.unlink(missing_ok=True)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_interval()):
            try:
                self.flush()
            except Exception:  # a failed checkpoint leaves the WAL intact; retry later
                log.exception("flush of %s failed", self.path)

    def _flush_interval(self) -> float:
        interval = self.config.optimizer_config.get("flush_interval_sec") or 5
        return float(interval)

    def close(self, flush: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self.optimizer.stop()
        self._flusher.join(timeout=30)
        if flush:
            self.flush()
        self.wal.close()
