"""One local shard: the WAL, the segment holder, recovery and flush.

Write path (`update`): under the exclusive lock, the caller's `prepare` validates against the
current state and returns the operation (filters already resolved to ids); the operation is
appended to the WAL and applied; after the lock is released the WAL record is fsynced (group
commit, shared with concurrent writers) and only then is the write acknowledged.

Checkpoint (`flush`): under the exclusive lock every segment hands over a snapshot of what
changed plus the sequence number S applied so far; outside the lock the files are written
and fsynced, then a new manifest generation `manifest.<gen>.json` is written (checked JSON,
see tessera.fileformat: every segment's files with size and crc32, S, the payload index
schemas and the vector schema at S, see shard.vector_schema). The last
KEPT_GENERATIONS manifests and every pinned one are kept, with their files; the WAL is kept
from the oldest kept manifest's S+1, so that recovery can fall back to any of them.

Recovery: the newest manifest whose own checksum and every file's checksum hold is loaded
(exactly the state at its S, vector names included: see shard.vector_schema) and the WAL
is replayed from S+1. A damaged newer generation is
reported and its files are moved to `<shard>/damaged/`; when none loads, or when the WAL no
longer reaches back to the chosen S+1, or when checkpoints are missing (the WAL was
truncated but no manifest exists), the shard refuses to load (`ShardDamaged`) rather than
serve a silent subset, and nothing on disk is changed.

Layout: `<shard>/manifest.<gen:020d>.json`, `<shard>/wal/`, `<shard>/segments/<id>/`,
`<shard>/damaged/` (only after damage).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.collection_config import CollectionConfig, optimizer_settings
from tessera.errors import ServiceUnavailable, TesseraError, failure_text
from tessera.fileformat import FormatError, read_checked_json, write_checked_json
from tessera.fsutil import free_name, fsync_dir, mkdir_durable
from tessera.memory import release_free_memory
from tessera.segment.ann_index import note_write
from tessera.segment.persist import (
    load_segment,
    map_on_disk_data,
    take_snapshot,
    verify_segments,
    write_snapshot,
)
from tessera.shard import operations as ops
from tessera.shard.apply import apply_record
from tessera.shard.errors import ShardClosed
from tessera.shard.holder import SegmentHolder
from tessera.shard.optimizer import Optimizer
from tessera.shard.rwlock import NO_WAIT, RWLock
from tessera.shard.vector_schema import restore_schema, schema_json
from tessera.shard.wal import Wal

if TYPE_CHECKING:  # a follower reads through the same HolderRead
    from tessera.shard.follower import ShardFollower

log = logging.getLogger(__name__)


class ApplyThenRaise(Exception):
    """Raised by a write's `prepare`: log and apply `record` (None: nothing), then fail with
    `error`. Qdrant applies a payload or vector write to the points it finds and reports
    the first one it did not find afterwards."""

    def __init__(self, record: ops.Record | None, error: TesseraError) -> None:
        super().__init__(error.message)
        self.record = record
        self.error = error


MANIFEST_KIND = "tessera/shard-manifest"
MANIFEST_VERSION = 1
KEPT_GENERATIONS = 2
# How long a free-space reading stands for the writes after it (`LocalShard._check_disk`).
_FREE_SPACE_TTL_S = 1.0
_MANIFEST_RE = re.compile(r"^manifest\.(\d{20})\.json$")


def wal_dir(shard_path: Path) -> Path:
    return shard_path / "wal"


def manifest_name(gen: int) -> str:
    return f"manifest.{gen:020d}.json"


def manifest_generations(path: Path) -> list[int]:
    """Generations of the manifests in a shard directory, newest first."""
    gens = []
    for entry in os.scandir(path):
        m = _MANIFEST_RE.match(entry.name)
        if m:
            gens.append(int(m.group(1)))
    return sorted(gens, reverse=True)


def read_manifest(path: Path) -> dict[str, Any]:
    body = read_checked_json(path, MANIFEST_KIND, (MANIFEST_VERSION,))
    if not isinstance(body, dict) or not isinstance(body.get("segments"), list):
        raise FormatError(f"{path}: not a shard manifest")
    return body


def verify_checkpoint(shard_dir: Path, gen: int) -> dict[str, Any]:
    """The manifest of generation `gen`, after its own checksum and every file it names
    (size and crc32) checked out; FormatError otherwise."""
    manifest = read_manifest(shard_dir / manifest_name(gen))
    verify_segments(
        [(shard_dir / "segments" / entry["id"], entry["files"]) for entry in manifest["segments"]]
    )
    return manifest


class ShardDamaged(Exception):
    """The shard cannot be loaded without serving a silent subset of its data."""


MAX_WAL_SEGMENT = 1 << 30
MAX_FLUSH_WAIT_S = 86_400.0


def wal_segment_bytes(config: CollectionConfig) -> int:
    """The size of a WAL segment. Qdrant takes any `wal_capacity_mb` >= 1, but a segment is
    preallocated whole (2^43 MB overflows the call, and every write failed): past 1 GiB
    segments are 1 GiB, rotated sooner, every record kept."""
    return min(int(config.wal_config.get("wal_capacity_mb") or 32) << 20, MAX_WAL_SEGMENT)


_REFUSAL_LOG_S = 60.0


def min_free_bytes(path: Path, wal_capacity: int) -> int:
    """Free space kept for checkpoints and the next WAL segments; writes beyond it are
    refused. Scales with the WAL segment size and the volume (1%), capped at 1 GiB, so that a
    small volume is still usable and a large one keeps a real margin."""
    configured = os.environ.get("TESSERA_MIN_FREE_BYTES")
    if configured is not None:
        return int(configured)
    total = shutil.disk_usage(path).total
    return min(max(2 * wal_capacity, total // 100), 1 << 30)


# Acknowledged operations a recovery found lost (WAL damage) stay reported across restarts:
# the replay that follows hides them (the collection serves what it kept and takes new
# writes), so without this file a second restart would report nothing. Removing the file,
# once the damage is dealt with, clears the report.
LOSSES_FILE = "lost-operations.json"
LOSSES_KIND = "lost-operations"
LOSSES_VERSION = 1


def _remembered_losses(path: Path, found: list[str]) -> list[str]:
    """The losses reported before (`damaged/lost-operations.json`) and `found` now, which
    are added to the file before the shard serves."""
    record = path / "damaged" / LOSSES_FILE
    known: list[str] = []
    if record.exists():
        try:
            body = read_checked_json(record, LOSSES_KIND, (LOSSES_VERSION,))
            known = [str(r) for r in body["reports"]]
        except (FormatError, KeyError, TypeError) as exc:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            aside = free_name(record.with_name(f"{LOSSES_FILE}.damaged-{stamp}"))
            os.rename(record, aside)  # kept byte for byte; a new report takes its place
            found = [f"an earlier report of lost operations is unreadable ({exc}): {aside}", *found]
    new = [r for r in found if r not in known]
    if new:
        mkdir_durable(record.parent)
        write_checked_json(record, LOSSES_KIND, LOSSES_VERSION, {"reports": [*known, *new]})
    return [*known, *new]


def _newest_manifest_seq(path: Path, candidates: list[int]) -> int:
    """The operation the newest readable manifest holds up to (its own checksum only, not its
    files'); 0 without one."""
    for gen in candidates:
        try:
            return int(
                read_checked_json(path / manifest_name(gen), MANIFEST_KIND, (MANIFEST_VERSION,))[
                    "seq"
                ]
            )
        except (FormatError, KeyError, TypeError, ValueError):
            continue
    return 0


class LocalShard:
    def __init__(self, path: Path, config: CollectionConfig) -> None:
        self.path = path
        self.config = config
        self.lock = RWLock()
        self._holder_read = HolderRead(self)  # stateless: one serves every reader
        self._flush_lock = threading.Lock()
        self.holder = SegmentHolder(config)
        self.applied_seq = 0  # guarded by lock (write side)
        self._gen = 0  # guarded by _flush_lock
        self._flushed_seq = -1  # guarded by _flush_lock
        self._closed = False
        # Closed without a final checkpoint (its collection deleted or replaced): no
        # checkpoint may write files any more, they would land in a directory that is gone.
        self._dropped = False
        # Manifests kept whatever the generation count: gen -> pin count (snapshots).
        self._pins: dict[int, int] = {}
        self._kept: list[tuple[int, int, dict[str, Any]]] = []  # (gen, seq, manifest) newest first
        # Damage found at recovery or later: reported in the collection's info, never silent.
        self.damage: list[str] = []
        self._write_failure: str | None = None
        self._flush_error: str | None = None  # why the last checkpoint failed, until one works
        mkdir_durable(path / "segments")
        wal_capacity = wal_segment_bytes(config)
        self._reserve = min_free_bytes(path, wal_capacity)
        # The last free-space reading, when, and the bytes written since (`_check_disk`).
        self._free_seen, self._free_read_at, self._written_since = 0, -math.inf, 0
        self._refusal_logged_at = -math.inf  # (`_check_disk`: one log line per minute)
        candidates = manifest_generations(path)
        if (path / "manifest.json").exists():
            raise ShardDamaged(
                f"{path / 'manifest.json'} is from an older Tessera (pickle format), which is "
                "no longer readable; re-create the collection"
            )
        self.wal = Wal(wal_dir(path), segment_capacity=wal_capacity, aside=path / "damaged")
        try:
            # The WAL's recovery has set damaged records aside already: the losses are
            # recorded before anything else (a kill during a long load or replay must not
            # leave a shorter, clean log and no report), against the newest checkpoint that
            # reads, then again against the one loaded (an older one may lose more).
            if self.wal.damage:  # (a manifest read more at start-up only then)
                _remembered_losses(path, self._lost(_newest_manifest_seq(path, candidates)))
            self._load_manifest(candidates)
            self.damage.extend(_remembered_losses(path, self._lost(self.applied_seq)))
            # What was loaded is on disk already: only replayed records call for a new
            # checkpoint (a restart with nothing to replay writes no manifest).
            self._flushed_seq = self.applied_seq if self._kept else -1
            self._replay()
        except BaseException:
            self.wal.close()
            raise
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="flush", daemon=True)
        self._flusher.start()
        self.optimizer = Optimizer(self.holder, self.lock, config, self.flush)

    # ---- recovery -----------------------------------------------------------------

    def _lost(self, checkpoint_seq: int) -> list[str]:
        """The WAL's damage that loses acknowledged operations past a checkpoint of
        `checkpoint_seq` (replay stops at the damage, so intact records after it are lost)."""
        return [
            str(damage)
            for damage in self.wal.damage
            if damage.last_intact is None or damage.last_intact > checkpoint_seq
        ]

    def _load_manifest(self, candidates: list[int]) -> None:
        errors: list[str] = []
        # The vector names of config.json: those of a checkpoint older than the schema in
        # manifests (a failed newer candidate must not leave its schema behind).
        initial_schema = schema_json(self.config)
        for gen in candidates:
            manifest_path = self.path / manifest_name(gen)
            try:
                manifest = verify_checkpoint(self.path, gen)
                seq = int(manifest["seq"])
                if seq + 1 < self.wal.first_seq and seq < self.wal.last_seq:
                    raise FormatError(
                        f"{manifest_path}: the WAL starts at {self.wal.first_seq}, after this "
                        f"checkpoint ({seq}): the operations between are gone"
                    )
                # The replay starts from the vector names of this checkpoint.
                restore_schema(self.config, manifest.get("vectors", initial_schema))
                segments = []
                for entry in manifest["segments"]:
                    seg_dir = self.path / "segments" / entry["id"]
                    segments.append(load_segment(seg_dir, entry["id"], entry["files"], self.config))
            except (FormatError, KeyError, TypeError, ValueError) as exc:
                log.error("shard %s: checkpoint generation %d unusable: %s", self.path, gen, exc)
                errors.append(str(exc))
                continue
            self.holder.segments = segments
            self.holder.index_schemas = dict(manifest.get("index_schemas", {}))
            self.applied_seq = seq
            self._gen = max(candidates)
            self._kept = [(gen, seq, manifest)]
            if errors:
                self.damage.append(
                    f"checkpoint damaged, recovered from the previous generation {gen} and the "
                    f"WAL: {'; '.join(errors)}"
                )
                self._set_aside_newer(gen, candidates)
            return
        if errors:
            raise ShardDamaged("no checkpoint generation is intact: " + "; ".join(errors))
        # Segment files without any manifest are a first checkpoint that never finished: the
        # WAL still holds everything (it is only truncated below a manifest's operation).
        if self.wal.first_seq > 1:
            raise ShardDamaged(
                f"the checkpoint manifest is missing but the WAL of {self.path} starts at "
                f"operation {self.wal.first_seq}: the operations before it would be lost"
            )

    def _set_aside_newer(self, good: int, candidates: list[int]) -> None:
        """Moves the damaged newer manifests, and the files only they name, to damaged/."""
        keep = self._referenced([m for _, _, m in self._kept])
        aside = self.path / "damaged" / time.strftime("checkpoint-%Y%m%dT%H%M%S")
        mkdir_durable(aside)
        for gen in candidates:
            if gen > good:
                source = self.path / manifest_name(gen)
                os.rename(source, aside / source.name)
        for seg_dir in (self.path / "segments").iterdir():
            for f in seg_dir.iterdir():
                if f.name not in keep.get(seg_dir.name, set()):
                    mkdir_durable(aside / seg_dir.name)
                    os.rename(f, aside / seg_dir.name / f.name)
            fsync_dir(seg_dir)
        fsync_dir(aside)
        fsync_dir(self.path)

    def _replay(self) -> None:
        replayed = 0
        for seq, data in self.wal.read_from(self.applied_seq + 1):
            record = ops.decode(data)
            apply_record(self.holder, seq, record)
            self.applied_seq = seq
            replayed += 1
        if replayed:
            log.info("shard %s: replayed %d WAL records", self.path, replayed)
        wal = self.wal
        short = wal.last_seq < self.applied_seq
        emptied = self.applied_seq > 0 and not wal.found_files and wal.files_kept
        if (short or emptied) and not (wal.damage or wal.torn_tail):
            # Nothing cut the log short, and a log keeps a file from its first record on (a
            # checkpoint never deletes the newest; a snapshot's unpacking makes an empty one):
            # its files were removed, and whatever was acknowledged after the checkpoint
            # went with them.
            self.damage.extend(_remembered_losses(self.path, [self._missing_log()]))
        if short:
            # The WAL lost records the checkpoint already holds (damage cut it short): new
            # operations must not reuse their numbers.
            wal.restart_at(self.applied_seq + 1)

    def _missing_log(self) -> str:
        wal = self.wal
        held = f"ends at operation {wal.last_seq}" if wal.found_files else "has no file"
        report = (
            f"WAL files missing: the log {held} but the checkpoint "
            f"holds operations up to {self.applied_seq}; operations acknowledged after "
            f"{self.applied_seq}, if any, are lost"
        )
        log.error("shard %s: %s", self.path, report)
        return report

    # ---- writes -------------------------------------------------------------------

    def update(
        self,
        prepare: Callable[[SegmentHolder], ops.Record | None],
        logged: list[bytes] | None = None,
    ) -> int:
        """Validate, log, apply, then fsync. Returns the operation's sequence number;
        `logged` gets the record as logged (cluster mode sends it to the other replicas).
        A `prepare` that raises `ApplyThenRaise` has its record logged and applied (durable
        as any other) before its error is raised."""
        with self.lock.write():
            # From here this write changes things: whatever it waits for later (the WAL's
            # group commit, a read of the deferred points), it must finish, not stop to be
            # retried (see rwlock's NO_WAIT).
            NO_WAIT.set(False)
            if self._closed:  # closed meanwhile: its collection was deleted (or is closing)
                raise ShardClosed(f"Not found: shard {self.path.name} is closed")
            failure: TesseraError | None = None
            try:
                record = prepare(self.holder)
            except ApplyThenRaise as partial:
                record, failure = partial.record, partial.error
            if record is None:
                if failure is not None:
                    raise failure
                return self.applied_seq
            data = ops.encode(record)
            if logged is not None:
                logged.append(data)
            if self._write_failure is not None:
                raise ServiceUnavailable(f"Service unavailable: {self._write_failure}")
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
        except ValueError:
            if self._dropped:  # deleted between the append and its sync: it is gone anyway
                raise ShardClosed(f"Not found: shard {self.path.name} is closed") from None
            raise
        except OSError as exc:
            # fsyncgate: after a failed fsync the kernel may have dropped the pages and a
            # retry would lie. This shard takes no more writes until it is reloaded from
            # what is on disk (a restart); reads go on.
            self._write_failure = f"WAL sync failed ({exc}); writes refused until restart"
            log.error("shard %s: %s", self.path, self._write_failure)
            raise ServiceUnavailable(f"Service unavailable: WAL sync failed: {exc}") from exc
        note_write()
        self.optimizer.poke()
        if failure is not None:
            raise failure
        return seq

    def _check_disk(self, need: int) -> None:
        """Refuse a write the disk cannot hold, before it is logged; reads go on. The free
        space is read again at least once a second, and at once when what this shard
        wrote since, plus this write, would leave less than three times the reserve (two
        reserves above the point where writes are refused): statvfs right behind a write's
        fdatasync costs ~20 us, a few percent of a small write's CPU."""
        now = time.monotonic()
        if (
            now - self._free_read_at < _FREE_SPACE_TTL_S
            and self._free_seen - self._written_since - need >= 3 * self._reserve
        ):
            self._written_since += need
            return
        free = shutil.disk_usage(self.path).free
        self._free_seen, self._free_read_at, self._written_since = free, now, need
        if free < need + self._reserve:
            reason = (
                f"No space left on device: {free} bytes free, "
                f"{need + self._reserve} needed for the WAL and checkpoints"
            )
            # The operator's signal, as Qdrant logs a write the disk cannot take (the client
            # gets the 503); at most once a minute while writes keep being refused.
            if now - self._refusal_logged_at >= _REFUSAL_LOG_S:
                self._refusal_logged_at = now
                log.error("shard %s: write refused: %s", self.path, reason)
            raise ServiceUnavailable(f"Service unavailable: {reason}")

    def read(self) -> HolderRead:
        """`with shard.read() as holder:` the segments under a shared hold of the lock."""
        return self._holder_read

    # ---- checkpoints --------------------------------------------------------------

    def flush(self, force: bool = False) -> None:
        """Write a checkpoint of everything applied so far (`force`: even if nothing
        changed since the last one). A failure is reported by `problems` until one
        succeeds."""
        try:
            self._flush(force)
        except ShardClosed:
            raise
        except Exception as exc:
            self._flush_error = f"Checkpoint failed: {failure_text(exc)}"
            raise
        self._flush_error = None

    def _flush(self, force: bool) -> None:
        with self._flush_lock:
            if self._dropped:
                raise ShardClosed(f"Not found: shard {self.path.name} is closed")
            with self.lock.write():
                seq = self.applied_seq
                snapshots = [take_snapshot(s) for s in self.holder.segments]
                segments = list(self.holder.segments)
                index_schemas = dict(self.holder.index_schemas)
                vectors = schema_json(self.config)
            if not force and seq == self._flushed_seq and not any(s.components for s in snapshots):
                return
            gen = self._gen + 1
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
                    "vectors": vectors,
                }
                # The manifest must not claim a seq the WAL could still lose.
                if seq:
                    self.wal.sync(seq)
                write_checked_json(
                    self.path / manifest_name(gen), MANIFEST_KIND, MANIFEST_VERSION, manifest
                )
            except BaseException:
                # The snapshot consumed the dirty marks: make the next flush rewrite all.
                for segment in segments:
                    segment.files_by_component = {}
                raise
            self._gen = gen
            with self.lock.write():
                for segment, entry in zip(segments, entries, strict=True):
                    # A copy: a segment drops components from its own map (a payload index
                    # dropped or rebuilt), which must not drop them from this kept manifest
                    # (its files would go while a snapshot or a fallback still needs them).
                    segment.files_by_component = dict(entry["files"])
                    map_on_disk_data(
                        segment, self.path / "segments" / segment.segment_id, self.config
                    )
            self._flushed_seq = seq
            self._kept.insert(0, (gen, seq, manifest))
            self._retire_old_generations()
            del snapshots
            release_free_memory()

    def _retire_old_generations(self) -> None:
        """Keep the newest KEPT_GENERATIONS manifests and the pinned ones; delete the rest,
        then the WAL records and files that no kept manifest needs."""
        kept = [k for i, k in enumerate(self._kept) if i < KEPT_GENERATIONS or k[0] in self._pins]
        self._kept = kept
        # Every other generation goes, those left by earlier runs of the server included.
        keep_gens = {gen for gen, _, _ in kept}
        retired = [g for g in manifest_generations(self.path) if g not in keep_gens]
        for gen in retired:
            (self.path / manifest_name(gen)).unlink(missing_ok=True)
        if retired:
            fsync_dir(self.path)
        self.wal.truncate_before(min(seq for _, seq, _ in kept) + 1)
        self._remove_unreferenced(self._referenced([m for _, _, m in kept]))

    @staticmethod
    def _referenced(manifests: list[dict[str, Any]]) -> dict[str, set[str]]:
        referenced: dict[str, set[str]] = {}
        for manifest in manifests:
            for entry in manifest["segments"]:
                names = referenced.setdefault(entry["id"], set())
                for files in entry["files"].values():
                    names.update(f["name"] for f in files)
        return referenced

    def _remove_unreferenced(self, referenced: dict[str, set[str]]) -> None:
        segments_dir = self.path / "segments"
        removed_dir = False
        for seg_dir in segments_dir.iterdir():
            keep = referenced.get(seg_dir.name)
            if keep is None:
                shutil.rmtree(seg_dir, ignore_errors=True)
                removed_dir = True
                continue
            removed = False
            for f in seg_dir.iterdir():
                if f.name not in keep:
                    f.unlink(missing_ok=True)
                    removed = True
            if removed:
                fsync_dir(seg_dir)
        if removed_dir:
            fsync_dir(segments_dir)

    # ---- pins (snapshots) ---------------------------------------------------------

    def pin_checkpoint(self) -> tuple[int, dict[str, Any]]:
        """Flush, then pin the newest manifest generation: neither flush nor the optimizer
        deletes its files or its WAL records until `unpin_checkpoint`. Returns (gen,
        manifest)."""
        self.flush(force=True)
        with self._flush_lock:
            if not self._kept:
                raise ServiceUnavailable("Service unavailable: no checkpoint to pin")
            gen, _, manifest = self._kept[0]
            self._pins[gen] = self._pins.get(gen, 0) + 1
            # A copy: the kept manifest is updated in place by later checkpoints and vector
            # name changes while the caller reads it ("dictionary changed size").
            return gen, copy.deepcopy(manifest)

    def unpin_checkpoint(self, gen: int) -> None:
        with self._flush_lock:
            count = self._pins.get(gen, 0) - 1
            if count > 0:
                self._pins[gen] = count
            else:
                self._pins.pop(gen, None)
                self._retire_old_generations()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._flush_interval()):
            try:
                self.flush()
            except Exception:  # a failed checkpoint leaves the WAL intact; retry later
                log.exception("flush of %s failed", self.path)

    def problems(self) -> list[str]:
        """What is wrong: damage found at recovery, writes refused after a failed WAL sync,
        and a checkpoint or optimization that keeps failing (a full disk), until it
        succeeds again."""
        found = list(self.damage)
        for current in (self._write_failure, self._flush_error, self.optimizer.error):
            if current is not None:
                found.append(current)
        return found

    def _flush_interval(self) -> float:
        interval = optimizer_settings(self.config).get("flush_interval_sec") or 5
        # Qdrant bounds it not; a wait past a day (2^64 - 1 s overflows it and killed
        # this thread) is a wait of a day: the checkpoint then runs, the PATCH is re-read.
        return min(float(interval), MAX_FLUSH_WAIT_S)

    @property
    def dropped(self) -> bool:
        """Closed for good, its files to be removed (its collection deleted or replaced)."""
        return self._dropped

    def close(self, flush: bool = True) -> None:
        if self._closed:
            return
        if not flush:
            # Deleted or replaced: a checkpoint or a write in flight finishes first (both
            # locks, in flush's order), and none starts after; then the files may go.
            with self._flush_lock, self.lock.write():
                self._dropped = True
                self._closed = True
        self._closed = True
        self._stop.set()
        self.optimizer.stop()
        self._flusher.join(timeout=30)
        if flush and self._write_failure is None:
            try:
                self.flush()
            except Exception:  # the WAL holds everything; the next start replays it
                log.exception("final checkpoint of %s failed", self.path)
        try:
            self.wal.close()
        except OSError:
            log.exception("closing the WAL of %s failed", self.path)


class HolderRead:
    """`Shard.read`'s context manager (a plain object: every search takes one). It keeps
    no state of a hold, so the shard's one instance serves every reader at once."""

    __slots__ = ("_shard",)

    def __init__(self, shard: LocalShard | ShardFollower) -> None:
        self._shard = shard

    def __enter__(self) -> SegmentHolder:
        self._shard.lock.acquire_read()
        holder: SegmentHolder = self._shard.holder
        return holder

    def __exit__(self, *exc: object) -> None:
        self._shard.lock.release_read()
