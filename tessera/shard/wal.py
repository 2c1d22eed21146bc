"""The write-ahead log of one shard: numbered records, durable before they are acknowledged.

The byte format, the recovery rules and the truncation floor are described in
``tessera.shard.wal_format``; this module holds the files' lifecycle and the concurrency.

Writing: ``append`` pwrites a record into space that ``posix_fallocate`` reserved when the
segment was made, so a full disk surfaces as an ``OSError`` from ``posix_fallocate`` when a new
segment is needed and never as SIGBUS or a half-written record.  ``sync`` is a group commit:
one caller at a time (the leader) runs fdatasync for everything appended so far, and callers
that arrive meanwhile wait and are then covered by it or by the next leader's.

Zeros are written ahead of the records, 1 MiB at a time.  On ext4 a write into fallocated
but unwritten blocks makes the next fdatasync commit an extent conversion through the journal:
a 64 KiB write+fdatasync measured 0.21-4.7 ms that way (the disk here varies), against
0.13-0.3 ms into blocks already written with zeros, and 0.15 ms with the 1 MiB zero-ahead,
which pays the conversion once per MiB instead of once per record.  (A background thread
preparing whole zeroed segments was tried: no faster at 8 writers, worse p99 from 32 MiB
flushes, and a thread plus a spare file per shard.)

Failure model: an fdatasync error poisons the Wal (every later append/sync raises ``OSError``)
because after a failed fsync Linux may have dropped the dirty pages and a retry would report
success for data that is gone; reopening the directory recovers from what is on disk.  A
failure to make a new segment (ENOSPC from fallocate) leaves the Wal usable and unchanged:
the record is not written and the next append tries again.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import shutil
import struct
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from tessera.errors import StorageCorruption
from tessera.fsutil import (
    free_name,
    fsync_dir,
    fsync_file,
    mkdir_durable,
    remove_quietly,
    write_durable,
)
from tessera.shard.wal_format import (
    FILE_HEADER_SIZE,
    FLOOR_NAME,
    LOCK_NAME,
    MAX_PAYLOAD,
    RECORD_HEADER_SIZE,
    TMP_SUFFIX,
    RecordReader,
    Stop,
    decode_file_header,
    decode_floor,
    encode_file_header,
    encode_floor,
    encode_record_header,
    floor_keeps_file,
    parse_segment_name,
    record_size,
    segment_name,
)

__all__ = ["Wal", "WalCorruptionError", "WalDamage", "start_log_at"]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_CAPACITY = 32 * 1024 * 1024
_ZERO_AHEAD = 1 << 20
_ZERO_BYTES = bytes(_ZERO_AHEAD)
_ZEROS = memoryview(_ZERO_BYTES)  # the same MiB, not a second one
_READ_BUFFER = 1 << 16
_OPEN_FLAGS = os.O_CLOEXEC


class WalCorruptionError(StorageCorruption):
    """A record that recovery accepted no longer checks out when read back (media damage)."""


class WalDamage:
    """Damage found by recovery: the log ends before ``first_lost`` although records up to
    ``last_intact`` (or unknown: None) were found intact after the damage; the bytes are
    kept in ``kept_in``."""

    def __init__(self, path: Path, offset: int, first_lost: int, last_intact: int | None) -> None:
        self.path = path
        self.offset = offset
        self.first_lost = first_lost
        self.last_intact = last_intact
        self.kept_in: Path | None = None

    def __str__(self) -> str:
        lost = (
            f"operations {self.first_lost}..{self.last_intact}"
            if self.last_intact is not None
            else f"operations from {self.first_lost} on"
        )
        where = f"; the damaged bytes are kept in {self.kept_in}" if self.kept_in else ""
        return f"WAL damaged in {self.path.name} at offset {self.offset}: {lost} lost{where}"


class _Segment:
    """What the Wal knows about one segment file.  The fields of the current (last) segment
    change on append and are guarded by ``Wal._lock``; earlier segments never change."""

    __slots__ = ("crc", "end", "first_seq", "last_seq", "path", "seed", "size", "zeroed")

    def __init__(
        self, path: Path, first_seq: int, seed: int, size: int, end: int, last_seq: int, crc: int
    ) -> None:
        self.path = path
        self.first_seq = first_seq
        self.seed = seed
        self.size = size  # records never extend past it
        self.end = end  # offset just past the last good record
        self.last_seq = last_seq  # first_seq - 1 while the segment is empty
        self.crc = crc  # the chain value the next record is seeded with
        self.zeroed = end  # zeros have been written (not just reserved) up to here

    @classmethod
    def empty(cls, path: Path, first_seq: int, seed: int, size: int) -> _Segment:
        return cls(path, first_seq, seed, size, FILE_HEADER_SIZE, first_seq - 1, seed)


class Wal:
    """A directory of WAL segments; see the module docstring.  Thread-safe."""

    def __init__(
        self,
        directory: Path,
        segment_capacity: int = DEFAULT_SEGMENT_CAPACITY,
        aside: Path | None = None,
    ) -> None:
        """``aside``: where recovery moves damaged or cut-off WAL bytes (default: a
        ``damaged`` directory beside the WAL directory); nothing is ever zeroed or deleted
        that was not copied there first."""
        if segment_capacity < FILE_HEADER_SIZE + record_size(0):
            raise ValueError(f"segment_capacity {segment_capacity} is too small")
        self._dir = Path(directory)
        self._capacity = segment_capacity
        self._aside = Path(aside) if aside is not None else self._dir.parent / "damaged"
        # What recovery found: records that were intact but could not be replayed because
        # an earlier record was damaged (media damage, not a torn tail); see _recover.
        self.damage: list[WalDamage] = []
        # Whether recovery cut a torn record off the end (a write a crash interrupted).
        self.torn_tail = False
        # Whether recovery found any segment file, and whether the log must have one once it
        # has held a record: the current file is never deleted and `restart_at` makes the
        # next first, which a floor written by an earlier version does not vouch for.
        self.found_files = False
        self.files_kept = True

        # _lock guards the write state: _segments, _fd, _last_seq, _closed and _failed.  Held
        # for the pwrite of one record, never across an fdatasync except while rolling to a
        # new segment (once per segment_capacity bytes).
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []  # ascending; the last one is written to
        self._fd: int | None = None  # open O_RDWR on _segments[-1]
        self._last_seq = 0
        # Set once, never cleared; also read without _lock (a single reference read), where a
        # stale value only delays the error by one call.
        self._closed = False
        self._failed: OSError | None = None

        # _sync_cond's lock guards _synced_seq and _sync_leader.  Lock order: never take
        # _sync_cond while holding _lock.
        self._sync_cond = threading.Condition(threading.Lock())
        self._synced_seq = 0
        self._sync_leader = False
        # fdatasyncs done by sync() and their seconds (total, slowest): read for /metrics.
        self.fsync_count = 0
        self.fsync_seconds = 0.0
        self.fsync_max_seconds = 0.0

        # _truncate_lock serialises truncate_before, so that the floor file's I/O can run
        # outside _lock; it guards _floor.  Order: _truncate_lock before _lock.
        self._truncate_lock = threading.Lock()
        self._floor = 0  # the persisted truncation floor

        self._lock_file = self._take_directory_lock()
        try:
            self._recover()
        except BaseException:
            self._release_resources()
            raise
        self._synced_seq = self._last_seq

    # ---------------------------------------------------------------- public API

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._last_seq

    @property
    def first_seq(self) -> int:
        with self._lock:
            return self._segments[0].first_seq if self._segments else self._last_seq + 1

    def append(self, data: bytes) -> int:
        """Writes one record (not yet durable: see ``sync``) and returns its seq."""
        if len(data) > MAX_PAYLOAD:
            raise ValueError(f"WAL record of {len(data)} bytes exceeds {MAX_PAYLOAD}")
        with self._lock:
            self._check_writable()
            seq = self._last_seq + 1
            need = record_size(len(data))
            if self._fd is None or self._segments[-1].end + need > self._segments[-1].size:
                self._roll(seq, need)
            seg = self._segments[-1]
            fd = self._fd
            assert fd is not None
            end = seg.end + need
            if end > seg.zeroed and end < seg.size:
                # Written zeros make the blocks ahead ordinary written blocks, so the
                # fdatasyncs of the next MiB of records commit no extent conversion (see the
                # module docstring).  Free space reads as zeros anyway: a failure here
                # changes nothing that recovery reads.
                ahead = min(_ZERO_AHEAD, seg.size - end)
                _pwrite_all(fd, (_ZEROS[:ahead],), end)
                seg.zeroed = end + ahead
            header, crc = encode_record_header(seq, data, seg.crc)
            # A failed or short pwrite leaves seg.end where it was, so the next append
            # overwrites the partial bytes; nothing about this record was acknowledged.
            _pwrite_all(fd, (header, data), seg.end)
            seg.end = end
            seg.crc = crc
            seg.last_seq = seq
            self._last_seq = seq
            return seq

    def sync(self, seq: int) -> None:
        """Returns once every record with seq <= ``seq`` is durable."""
        if seq <= 0:
            return
        with self._lock:
            if seq > self._last_seq:
                raise ValueError(f"cannot sync seq {seq}: last written is {self._last_seq}")
        with self._sync_cond:
            while True:
                if self._failed is not None:
                    raise _poisoned(self._failed)
                if self._synced_seq >= seq:
                    return
                if self._closed:
                    raise ValueError("WAL is closed")
                if not self._sync_leader:
                    break
                self._sync_cond.wait()
            self._sync_leader = True
        synced = -1
        try:
            with self._lock:
                self._check_writable()
                target = self._last_seq
                # A dup, because a roll or close may close self._fd while we are in
                # fdatasync; a closed, reused fd number would sync some other file.
                fd = os.dup(self._fd) if self._fd is not None else None
            if fd is not None:
                started = time.perf_counter()
                try:
                    self._fdatasync_or_poison(fd)
                finally:
                    os.close(fd)
                elapsed = time.perf_counter() - started  # only the sync leader gets here
                self.fsync_count += 1
                self.fsync_seconds += elapsed
                self.fsync_max_seconds = max(self.fsync_max_seconds, elapsed)
            # Records in earlier segments were fdatasynced when the Wal rolled past them.
            synced = target
        finally:
            with self._sync_cond:
                self._sync_leader = False
                self._synced_seq = max(self._synced_seq, synced)
                self._sync_cond.notify_all()

    def append_and_sync(self, data: bytes) -> int:
        seq = self.append(data)
        self.sync(seq)
        return seq

    def read_from(self, seq: int) -> Generator[tuple[int, bytes], None, None]:
        """Yields (seq, payload) for every stored record with seq >= ``seq``, in order, as the
        log stands when iteration starts.  Records below ``first_seq`` are gone.  The files
        stay open until the generator is exhausted or closed."""
        fds: list[tuple[int, _Segment]] = []
        try:
            with self._lock:
                if self._closed:
                    raise ValueError("WAL is closed")
                for seg in self._segments:
                    if seg.last_seq >= seq:
                        # Opened under _lock so that a concurrent truncate_before cannot
                        # unlink the file first; an open fd keeps an unlinked file readable.
                        snapshot = _Segment(
                            seg.path, seg.first_seq, seg.seed, seg.size, seg.end, seg.last_seq, 0
                        )
                        fds.append((os.open(seg.path, os.O_RDONLY | _OPEN_FLAGS), snapshot))
            while fds:
                fd, seg = fds.pop(0)
                with open(fd, "rb", buffering=_READ_BUFFER) as f:
                    yield from _read_segment(f, seg, seq)
        finally:
            for fd, _ in fds:
                os.close(fd)

    def truncate_before(self, seq: int) -> None:
        """Deletes whole segments whose records all have seq < ``seq`` (never the current
        one) and persists ``seq`` as the floor, so that recovery cannot bring them back."""
        with self._truncate_lock:
            with self._lock:
                self._check_open()
                if seq > self._last_seq + 1:
                    raise ValueError(f"cannot truncate before {seq}: last is {self._last_seq}")
                doomed: list[_Segment] = []
                for seg, successor in zip(self._segments, self._segments[1:]):
                    if successor.first_seq > seq:
                        break
                    doomed.append(seg)
            if not doomed:
                return  # the floor only matters for files that get deleted
            # The floor goes to disk before any unlink: an unlink that a crash undoes is
            # then recognised and redone by recovery instead of looking like a gap in the log.
            floor = max(seq, self._floor)
            self._write_floor(floor)
            self._floor = floor
            with self._lock:
                # Only this method removes segments and _truncate_lock is held, so the doomed
                # ones are still the prefix of the list.
                del self._segments[: len(doomed)]
            for seg in doomed:
                remove_quietly(seg.path)
            fsync_dir(self._dir)

    def restart_at(self, seq: int) -> None:
        """Makes ``seq`` the next record's number when the log ends before it (recovery cut
        records that a checkpoint already holds).  Every record present is below ``seq``
        and already checkpointed; damaged bytes were set aside by recovery."""
        with self._truncate_lock, self._lock:
            self._check_writable()
            if seq <= self._last_seq + 1:
                return
            self._write_floor(seq)
            self._floor = seq
            old, self._segments = self._segments, []
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            # The log's next file, empty, made before the old ones go: a log never lacks a
            # file once it has held a record, so one with none has lost them (see LocalShard).
            fresh = _empty_segment(self._dir, seq, self._capacity)
            if fresh is not None:
                self._segments, self._fd = [fresh[0]], fresh[1]
            for seg in old:
                remove_quietly(seg.path)
            fsync_dir(self._dir)
            self._last_seq = seq - 1
        with self._sync_cond:
            self._synced_seq = seq - 1

    def close(self) -> None:
        """Syncs what was appended and releases the directory.  Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            fd, self._fd = self._fd, None
            failed = self._failed
            last = self._last_seq
        error: OSError | None = None
        if fd is not None:
            if failed is None:
                try:
                    os.fdatasync(fd)
                except OSError as e:
                    error = e
            os.close(fd)
        self._release_resources()
        with self._sync_cond:
            if fd is not None and failed is None and error is None:
                # Everything appended is durable now: a writer still waiting for its
                # record's sync (the collection was closed or deleted meanwhile) returns
                # as if its group commit had done it.
                self._synced_seq = max(self._synced_seq, last)
            self._sync_cond.notify_all()  # the other waiters see _closed and raise
        if error is not None:
            raise error

    def __enter__(self) -> Wal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("WAL is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._failed is not None:
            raise _poisoned(self._failed)

    def _fdatasync_or_poison(self, fd: int) -> None:
        try:
            os.fdatasync(fd)
        except OSError as e:
            log.error("WAL fdatasync failed in %s; refusing writes until reopened", self._dir)
            with self._lock:
                if self._failed is None:
                    self._failed = e
            raise

    def _roll(self, seq: int, need: int) -> None:
        """Makes the segment that record ``seq`` (``need`` bytes) will start.  Caller holds
        _lock.  On error nothing changes except that the old segment may have been synced."""
        if self._fd is not None:
            # Every non-last segment is complete on disk: sync() then only ever needs the
            # current file, and recovery can trust that a gap before the next file is not an
            # unsynced tail.
            try:
                os.fdatasync(self._fd)
            except OSError as e:
                log.error("WAL fdatasync failed in %s; refusing writes until reopened", self._dir)
                self._failed = e
                raise
        seg, fd = _new_segment(self._dir, seq, max(self._capacity, FILE_HEADER_SIZE + need))
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._segments.append(seg)

    # ----------------------------------------------------------------- recovery

    def _take_directory_lock(self) -> BinaryIO:
        mkdir_durable(self._dir)
        # A file object rather than a bare fd, so that a Wal dropped without close() (a
        # simulated crash in a test) releases the lock when it is collected.
        f = open(self._dir / LOCK_NAME, "ab")  # noqa: SIM115 - lives as long as the Wal
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise BlockingIOError(
                errno.EWOULDBLOCK, f"WAL directory {self._dir} is open in another Wal"
            ) from None
        return f

    def _release_resources(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._lock_file.close()

    def _recover(self) -> None:
        """Runs before the Wal is shared, so it takes no locks."""
        paths: list[tuple[int, Path]] = []
        for entry in os.scandir(self._dir):
            if entry.name.endswith(TMP_SUFFIX):
                # An unfinished segment or floor file from before a crash.
                remove_quietly(Path(entry.path))
                continue
            first = parse_segment_name(entry.name)
            if first is not None:
                paths.append((first, Path(entry.path)))
        paths.sort()

        self._floor = self._read_floor()
        changed = False
        while len(paths) > 1 and paths[1][0] <= self._floor:
            log.info("WAL: removing %s, below the truncation floor %d", paths[0][1], self._floor)
            remove_quietly(paths[0][1])
            del paths[0]
            changed = True

        segments: list[_Segment] = []
        tail_stop: Stop | None = None
        i = 0
        while i < len(paths):
            first, path = paths[i]
            scanned = _scan_segment(path, first)
            if scanned is None:
                log.error("WAL: %s has a bad header; the log ends before it", path)
                self.damage.append(WalDamage(path, 0, first, None))
                changed = True
                self._set_aside([p for _, p in paths[i:]])
                if not segments:
                    # A fresh file under its name, so that seqs below it are never reused.
                    fresh, fd = _new_segment(self._dir, first, self._capacity)
                    os.close(fd)
                    segments.append(fresh)
                break
            seg, stop = scanned
            if i == len(paths) - 1:
                segments.append(seg)
                tail_stop = stop
                break
            successor = paths[i + 1][0]
            if seg.last_seq == successor - 1:
                segments.append(seg)
                i += 1
                continue
            if stop is Stop.END and seg.last_seq < successor - 1:
                # Files that end cleanly before a gap: unlinks from a truncation that a crash
                # brought back while the floor file was lost, or a file cut (or its next
                # record's length zeroed) at a record boundary, which reads the same. They are
                # older than what follows, so the log goes on from the newer part, and they are
                # moved aside, never deleted: the shard checks that its checkpoint covers the
                # gap (leftovers) or reports the operations lost (damage).
                older = [*(s.path for s in segments), path]
                self._set_aside(older)
                log.warning(
                    "WAL: %s and older files end at seq %d, before a gap (the next file starts "
                    "at %d); moved to %s",
                    path,
                    seg.last_seq,
                    successor,
                    self._aside,
                )
                segments = []
                changed = True
                i += 1
                continue
            # A non-last file is complete on disk before the next one is made (_roll), so a
            # bad record here is damage, not a torn write: later files are set aside.
            damage = WalDamage(path, seg.end, seg.last_seq + 1, _last_intact(paths[i + 1 :]))
            log.error("WAL: %s", damage)
            self.damage.append(damage)
            segments.append(seg)
            tail_stop = stop
            self._set_aside([p for _, p in paths[i + 1 :]], copy=[path])
            damage.kept_in = self._aside
            changed = True
            break

        if changed:
            fsync_dir(self._dir)
        self.found_files = bool(paths)
        self._segments = segments
        if not segments:
            self._last_seq = max(self._floor - 1, 0)
            return
        last = segments[-1]
        self._last_seq = last.last_seq
        fd = os.open(last.path, os.O_RDWR | _OPEN_FLAGS)
        try:
            if tail_stop is Stop.CORRUPT:
                intact = _salvage(last.path, last.end, last.last_seq + 1)
                if intact is not None:
                    damage = WalDamage(last.path, last.end, last.last_seq + 1, intact)
                    log.error("WAL: %s", damage)
                    self.damage.append(damage)
                else:
                    self.torn_tail = True
                    log.warning("WAL: torn tail in %s cut after seq %d", last.path, last.last_seq)
            # One scan of the free space: its non-zero bytes are copied aside, then zeroed.
            stale_end = _last_nonzero(fd, last.end, last.size)
            kept = self._keep_tail(fd, last, stale_end)
            if kept is not None:
                for damage in self.damage:
                    if damage.path == last.path and damage.kept_in is None:
                        damage.kept_in = kept
            zeroed = _zero_range(fd, last.end, stale_end)
            if zeroed:
                log.warning(
                    "WAL: zeroed %d stale bytes after seq %d in %s (a copy is in %s)",
                    zeroed,
                    last.last_seq,
                    last.path,
                    kept,
                )
            # What the file holds may so far live only in the page cache of a process that
            # was killed; make it durable before anything is built on it.
            os.fdatasync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _aside_dir(self) -> Path:
        mkdir_durable(self._aside)
        return self._aside

    def _set_aside(self, paths: list[Path], copy: Sequence[Path] = ()) -> None:
        """Moves files out of the log byte for byte (and copies ``copy``, which stays)."""
        if not paths and not copy:
            return
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self._aside_dir()
        for p in copy:
            _copy_synced(p, free_name(target / f"wal-{stamp}-{p.name}"))
        for p in paths:
            os.rename(p, free_name(target / f"wal-{stamp}-{p.name}"))
        fsync_dir(target)

    def _keep_tail(self, fd: int, seg: _Segment, end: int) -> Path | None:
        """Copies the bytes after the last good record, up to ``end`` (the last non-zero
        one), aside before they are zeroed; returns the copy's path, None when there were
        none."""
        if end <= seg.end:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = free_name(self._aside_dir() / f"wal-{stamp}-{seg.path.name}-tail-at-{seg.end}")
        with open(path, "wb") as f:
            off = seg.end
            while off < end:
                chunk = os.pread(fd, min(_ZERO_AHEAD, end - off), off)
                if not chunk:
                    break
                f.write(chunk)
                off += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(path.parent)
        return path

    def _read_floor(self) -> int:
        try:
            buf = (self._dir / FLOOR_NAME).read_bytes()
        except FileNotFoundError:
            return 0
        self.files_kept = floor_keeps_file(buf)
        floor = decode_floor(buf)
        if floor is None:
            log.warning("WAL: unreadable truncation floor in %s, taken as 0", self._dir)
            return 0
        return floor

    def _write_floor(self, floor: int) -> None:
        path = self._dir / FLOOR_NAME
        data = encode_floor(floor)
        try:
            fd = os.open(path, os.O_WRONLY | _OPEN_FLAGS)
        except FileNotFoundError:
            write_durable(path, data)
            return
        try:
            # In place: an overwrite needs no new blocks, so it works on a full disk, and 16
            # bytes at offset 0 sit in one sector, which the disk writes whole.
            _pwrite_all(fd, (data,), 0)
            os.fdatasync(fd)
        finally:
            os.close(fd)


def start_log_at(directory: Path, seq: int) -> None:
    """Makes ``directory`` a log whose first record will be ``seq``: a shard unpacked from a
    checkpoint of operations up to ``seq - 1`` (a snapshot), whose log never held them.  The
    floor file says so, and an empty file for ``seq`` on is there from the start: a log with
    no file beside a checkpoint has lost its files (see LocalShard)."""
    mkdir_durable(directory)
    write_durable(directory / FLOOR_NAME, encode_floor(seq))
    fresh = _empty_segment(directory, seq, DEFAULT_SEGMENT_CAPACITY)
    if fresh is not None:
        os.close(fresh[1])


def _empty_segment(directory: Path, seq: int, capacity: int) -> tuple[_Segment, int] | None:
    """A new empty segment for ``seq`` on, with its fd; None (logged) on a disk too full for
    it, where the log goes on without one until its next record makes it."""
    try:
        return _new_segment(directory, seq, capacity)
    except OSError as exc:
        log.warning("WAL: no empty segment for %d in %s (%s)", seq, directory, exc)
        return None


# ---------------------------------------------------------------------- helpers


def _poisoned(cause: OSError) -> OSError:
    err = OSError(
        cause.errno or errno.EIO,
        f"WAL refuses writes after a failed fdatasync ({cause}); reopen it to recover",
    )
    err.__cause__ = cause
    return err


def _pwrite_all(fd: int, parts: Sequence[bytes | memoryview], offset: int) -> None:
    """pwritev that carries on after short writes."""
    views = [memoryview(p) for p in parts if len(p)]
    while views:
        n = os.pwritev(fd, views, offset)
        if n <= 0:
            raise OSError(errno.EIO, "pwritev wrote nothing")
        offset += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            del views[0]
        if n:
            views[0] = views[0][n:]


def _create_file(path: Path, size: int, header: bytes) -> int:
    """Makes ``path`` as tmp + posix_fallocate + header + fsync + rename and returns an O_RDWR
    fd on it; the caller fsyncs the directory.  A full disk raises OSError(ENOSPC) from
    posix_fallocate and leaves nothing behind."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | _OPEN_FLAGS, 0o644)
    try:
        os.posix_fallocate(fd, 0, size)
        _pwrite_all(fd, (header,), 0)
        os.fsync(fd)
        os.rename(tmp, path)
    except BaseException:
        os.close(fd)
        remove_quietly(tmp)
        raise
    return fd


def _new_segment(directory: Path, first_seq: int, size: int) -> tuple[_Segment, int]:
    """A new empty segment made synchronously, durable in the directory; with its fd."""
    path = directory / segment_name(first_seq)
    seed = secrets.randbits(32)
    fd = _create_file(path, size, encode_file_header(first_seq, seed))
    try:
        fsync_dir(directory)
    except BaseException:
        os.close(fd)
        raise
    return _Segment.empty(path, first_seq, seed, size), fd


def _scan_segment(path: Path, first_seq: int) -> tuple[_Segment, Stop] | None:
    """Checks every record of a segment; None when its header is bad."""
    with open(path, "rb", buffering=_READ_BUFFER) as f:
        size = os.fstat(f.fileno()).st_size
        header = decode_file_header(f.read(FILE_HEADER_SIZE))
        if header is None or header[0] != first_seq:
            return None
        seed = header[1]
        reader = RecordReader(f, first_seq=first_seq, seed=seed, limit=size)
        while reader.read() is not None:
            pass
        assert reader.stop is not None
        seg = _Segment(path, first_seq, seed, size, reader.offset, reader.next_seq - 1, reader.crc)
        return seg, reader.stop


def _read_segment(f: BinaryIO, seg: _Segment, min_seq: int) -> Iterator[tuple[int, bytes]]:
    f.seek(FILE_HEADER_SIZE)
    reader = RecordReader(f, first_seq=seg.first_seq, seed=seg.seed, limit=seg.end)
    while reader.next_seq < min_seq and reader.next_seq <= seg.last_seq:
        if reader.skip() is None:
            break
    while reader.next_seq <= seg.last_seq:
        record = reader.read()
        if record is None:
            raise WalCorruptionError(
                f"WAL record {reader.next_seq} in {seg.path} no longer reads back ({reader.stop})"
            )
        yield record


def _last_nonzero(fd: int, start: int, size: int) -> int:
    """The offset just past the last non-zero byte in [start, size), or start."""
    last_nonzero = start
    off = start
    while off < size:
        chunk = os.pread(fd, min(_ZERO_AHEAD, size - off), off)
        if not chunk:
            break
        if chunk == _ZERO_BYTES[: len(chunk)]:  # memcmp; rstrip walks zeros a byte at a time
            off += len(chunk)
            continue
        stripped = len(chunk.rstrip(b"\x00"))
        if stripped:
            last_nonzero = off + stripped
        off += len(chunk)
    return last_nonzero


def _copy_synced(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    fsync_file(dst)


def _salvage(path: Path, offset: int, bad_seq: int) -> int | None:
    """After a bad record at ``offset``: if its framing is sound and the records after it
    validate against the chain (seeded with the bad record's stored crc), the bad record is
    damage among intact records, not a torn tail. Every bad record whose framing is sound
    (its length and seq in order) is stepped over the same way, in a run or between intact
    records, to the last intact record of the file: records past a second damaged one are
    acknowledged writes too. Returns the last intact seq, else None: nothing intact follows,
    which is what a torn tail leaves (its unwritten part reads as zeros, no sound framing)."""
    last = None
    with open(path, "rb", buffering=_READ_BUFFER) as f:
        size = os.fstat(f.fileno()).st_size
        while True:
            f.seek(offset)
            hdr = f.read(RECORD_HEADER_SIZE)
            if len(hdr) < RECORD_HEADER_SIZE:
                return last
            length, stored_crc, seq = struct.unpack("<IIQ", hdr)
            if seq != bad_seq or length < 8 or offset + 8 + length > size:
                return last
            f.seek(offset + 8 + length)
            reader = RecordReader(f, first_seq=bad_seq + 1, seed=stored_crc, limit=size)
            reader.offset = offset + 8 + length
            while (record := reader.read()) is not None:
                last = record[0]
            # the reader stopped at the next bad record (or the end): step over it too
            offset, bad_seq = reader.offset, reader.next_seq


def _last_intact(paths: list[tuple[int, Path]]) -> int | None:
    """The last seq of the records in later files that still read back, if any."""
    last = None
    for first, path in paths:
        scanned = _scan_segment(path, first)
        if scanned is None or scanned[0].last_seq < first:
            break
        last = scanned[0].last_seq
    return last


def _zero_range(fd: int, start: int, end: int) -> int:
    """Zeroes [start, end) (``end`` from _last_nonzero), since free space must read as the end
    of data; returns how many bytes that was."""
    off = start
    while off < end:
        n = min(_ZERO_AHEAD, end - off)
        _pwrite_all(fd, (_ZEROS[:n],), off)
        off += n
    return max(end - start, 0)


def scan_wal_file(
    path: Path, first_seq: int, decode: Callable[[bytes], object] | None = None
) -> tuple[str | None, int]:
    """Offline check of one segment file (tessera check): (what is wrong or None, how many
    records read back). `decode` is tried on every record payload. A torn tail with nothing
    intact after it is what a crash leaves and recovery cuts: not reported as damage."""
    scanned = _scan_segment(path, first_seq)
    if scanned is None:
        return "bad file header", 0
    seg, stop = scanned
    count = seg.last_seq - first_seq + 1
    if decode is not None:
        with open(path, "rb", buffering=_READ_BUFFER) as f:
            for seq, payload in _read_segment(f, seg, first_seq):
                try:
                    decode(payload)
                except ValueError as exc:
                    return f"record {seq} does not decode: {exc}", count
    if stop is Stop.CORRUPT:
        intact = _salvage(path, seg.end, seg.last_seq + 1)
        if intact is not None:
            return (
                f"record {seg.last_seq + 1} at offset {seg.end} is damaged; records up to "
                f"{intact} after it are intact but cannot be replayed",
                count,
            )
    return None, count
