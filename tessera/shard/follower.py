"""A read-only copy of a shard that another process owns: the ground of serving reads from
more than one process (issue 13, target 2).

The shard's owner (`LocalShard`, one process) writes its WAL and checkpoints; a follower,
in any process, loads the newest checkpoint from the same files and replays the WAL after
it, then follows the WAL as the owner appends to it (`WalTail`). It never writes, moves or
locks a file of the shard: checkpoint files are immutable once a manifest names them (a
generation's files carry its number) and the WAL is only appended to, so mapped files stay
valid and a record that reads back whole with its chained CRC is the owner's.

Read-your-writes: the owner acknowledges a write after its record is in the WAL, so a read
that starts after the acknowledgement finds the record there. `read()` first applies every
record that has landed (one 16-byte read when none has), then takes the read lock, as
`LocalShard.read()` does: a `Collection` reads through either in the same way.

A record the owner is still writing reads as torn (its CRC does not match yet): the tail
stops before it and takes it on a later read. When the owner has truncated the WAL past
what the follower holds (a checkpoint while the follower was idle), the follower loads the
newest checkpoint again (`reload`), as it does when asked to drop what it replayed.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tessera.collection_config import CollectionConfig
from tessera.fileformat import FormatError
from tessera.memory import release_free_memory
from tessera.segment.persist import load_segment, verify_segments
from tessera.shard import operations as ops
from tessera.shard.apply import apply_record
from tessera.shard.holder import SegmentHolder
from tessera.shard.rwlock import RWLock
from tessera.shard.shard import (
    HolderRead,
    ShardDamaged,
    manifest_generations,
    manifest_name,
    read_manifest,
    wal_dir,
)
from tessera.shard.vector_schema import restore_schema, schema_json
from tessera.shard.wal_format import (
    FILE_HEADER_SIZE,
    RecordReader,
    Stop,
    decode_file_header,
    parse_segment_name,
)

log = logging.getLogger(__name__)

# How often a load retries when the owner retires the generation it is reading.
_LOAD_ATTEMPTS = 5


def _replay(holder: SegmentHolder, tail: WalTail, seq: int) -> int:
    """Applies to `holder` (not shared yet: no lock) what `tail` has landed since; the seq it
    reaches (`seq` when nothing has)."""
    for record_seq, data in tail.read_new():
        apply_record(holder, record_seq, ops.decode(data))
        seq = record_seq
    return seq


class FollowerBehind(Exception):
    """The WAL no longer holds the next record the follower needs (truncated by a
    checkpoint): it must load a newer checkpoint."""


class WalTail:
    """The records of a shard's WAL from `next_seq` on, read as another process appends
    them. Reads go through an unbuffered file (a buffer would keep the zeros of space the
    owner has since written) and never past the first record that does not read back."""

    def __init__(self, directory: Path, next_seq: int) -> None:
        self.directory = directory
        self.next_seq = next_seq
        self._file: io.FileIO | None = None
        self._first = 0  # the first seq of _file, which names it
        self._offset = 0  # where the next record starts in _file
        self._crc = 0  # the chain's value before that record
        self._size = 0  # of _file when last looked at

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _firsts(self) -> list[int]:
        """The first seq of every segment file, in order."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(s for s in map(parse_segment_name, names) if s is not None)

    def _open(self) -> bool:
        """Opens the segment that holds (or will hold) `next_seq` and walks to it; False when
        the log has no file yet."""
        firsts = self._firsts()
        below = [s for s in firsts if s <= self.next_seq]
        if not below:
            if firsts:  # every file starts after the record wanted: it is gone
                raise FollowerBehind(f"the WAL starts at {firsts[0]}, after {self.next_seq}")
            return False
        first = below[-1]
        path = self.directory / f"{first:020d}.log"
        try:
            f = io.FileIO(path, "r")
        except FileNotFoundError:  # truncated between the listing and the open
            raise FollowerBehind(f"{path} was removed") from None
        header = decode_file_header(f.read(FILE_HEADER_SIZE))
        if header is None or header[0] != first:
            f.close()
            raise FormatError(f"{path}: not a WAL segment this version reads")
        size = os.fstat(f.fileno()).st_size
        reader = RecordReader(f, first_seq=first, seed=header[1], limit=size)
        while reader.next_seq < self.next_seq:
            if reader.skip() is None:
                f.close()
                if reader.stop is not None and reader.next_seq < self.next_seq:
                    # The file ends before the record wanted, which is neither here nor in a
                    # later file: the owner lost records this follower already holds.
                    raise FollowerBehind(f"{path} ends at {reader.next_seq - 1}")
        self._file, self._first = f, first
        self._offset, self._crc, self._size = reader.offset, reader.crc, size
        return True

    def read_new(self, thorough: bool = True) -> Iterator[tuple[int, bytes]]:
        """Every record that has landed since the last call, in order. `thorough`: the log's
        files are listed, to find one that is gone (the follower then is behind); without
        (a read's catch-up), only the file the owner's next one would be is looked for, and
        the files are listed only when the one being read has been removed: the owner
        removes the oldest files first, so while this one is there, so is the next."""
        while True:
            if self._file is None and not self._open():
                return
            yield from self._read_file()
            # Stopped at the end of what is written, or at a record still being written. The
            # owner may have moved on to a newer file: it writes a file's last record before
            # it makes the next one, so once a newer file is there this one is read to its
            # end again, and the next file must start where it ends.
            assert self._file is not None
            if thorough or not os.fstat(self._file.fileno()).st_nlink:
                firsts = self._firsts()
                if not firsts or firsts[-1] == self._first:
                    return
                yield from self._read_file()
                if self.next_seq not in firsts:
                    raise FollowerBehind(f"no WAL file starts at {self.next_seq} any more")
            else:
                # (the file being read may be the one that starts at next_seq: a log started
                # afresh, as after a snapshot's recovery, before its first record)
                if self._first == self.next_seq or not os.path.exists(
                    self.directory / f"{self.next_seq:020d}.log"
                ):
                    return
                yield from self._read_file()
            self.close()

    def _read_file(self) -> Iterator[tuple[int, bytes]]:
        f = self._file
        assert f is not None
        f.seek(self._offset)
        # (a segment is allocated whole when it is made: its size is read again only when
        # a record seems to run past it)
        reader = RecordReader(f, first_seq=self.next_seq, seed=self._crc, limit=self._size)
        reader.offset = self._offset
        while True:
            while (record := reader.read()) is not None:
                self._offset, self._crc = reader.offset, reader.crc
                self.next_seq = record[0] + 1
                yield record
            if reader.stop is not Stop.CORRUPT:
                return
            size = os.fstat(f.fileno()).st_size
            if size == self._size:
                return  # a record still being written (or damage): not taken
            self._size = size
            f.seek(self._offset)
            reader = RecordReader(f, first_seq=self.next_seq, seed=self._crc, limit=size)
            reader.offset = self._offset


class ShardFollower:
    """A shard loaded read-only from the files another process writes (see the module's
    docstring). Reads as `LocalShard` reads: `read()`, `lock`, `holder`, `applied_seq`."""

    def __init__(self, path: Path, config: CollectionConfig) -> None:
        self.path = path
        self.config = config
        self.lock = RWLock()
        self._holder_read = HolderRead(self)
        self._tail_lock = threading.Lock()
        self._reload_lock = threading.Lock()  # one load at a time
        # (path, size, crc32) of the checkpoint files checked so far (`_verified_manifest`):
        # used by loads only, under _reload_lock.
        self._verified: set[tuple[str, int, int]] = set()
        # Records read from the tail but not applied yet (the lock was refused): guarded by
        # _tail_lock.
        self._pending: list[tuple[int, bytes]] = []
        self.holder = SegmentHolder(config)
        self.applied_seq = 0
        self.generation = 0  # of the checkpoint loaded (0: none)
        self.reloads = 0
        self.replayed = 0  # records applied since the last load
        self.loaded_at = time.monotonic()
        self._tail = WalTail(wal_dir(path), 1)
        self.reload(first=True)
        self.reloads = 0

    # ---- loading --------------------------------------------------------------------

    def _load(self) -> tuple[SegmentHolder, int, int, WalTail]:
        """A holder at the newest checkpoint that loads, its seq and generation, and a tail
        from the record after it (the WAL replayed into the holder). Retries when the owner
        retires the files of a generation while it is read."""
        initial_schema = schema_json(self.config)
        errors: list[str] = []
        for _ in range(_LOAD_ATTEMPTS):
            holder = SegmentHolder(self.config)
            seq = gen = 0
            try:
                gens = manifest_generations(self.path)
                if gens:
                    gen = gens[0]
                    manifest = self._verified_manifest(gen)
                    seq = int(manifest["seq"])
                    restore_schema(self.config, manifest.get("vectors", initial_schema))
                    holder.segments = [
                        load_segment(
                            self.path / "segments" / entry["id"],
                            entry["id"],
                            entry["files"],
                            self.config,
                            map_graphs=True,
                        )
                        for entry in manifest["segments"]
                    ]
                    holder.index_schemas = dict(manifest.get("index_schemas", {}))
                tail = WalTail(wal_dir(self.path), seq + 1)
                try:
                    seq = _replay(holder, tail, seq)
                except BaseException:
                    tail.close()
                    raise
                return holder, seq, gen, tail
            except (FormatError, FollowerBehind, FileNotFoundError, KeyError, ValueError) as exc:
                # A generation retired (its files removed) while it was read shows as a
                # missing or short file; a newer manifest is there by then.
                errors.append(str(exc))
                restore_schema(self.config, initial_schema)
        raise ShardDamaged(f"{self.path}: no checkpoint loads: {'; '.join(errors)}")

    def _verified_manifest(self, gen: int) -> dict[str, Any]:
        """The manifest of `gen` with every file it names checked (size and crc32), as
        `verify_checkpoint` checks them; a file checked for an earlier load is not read
        again: a checkpoint's files never change once a manifest names them (their names
        carry their generation), and a reload comes with every checkpoint the owner
        writes."""
        manifest = read_manifest(self.path / manifest_name(gen))
        named: set[tuple[str, int, int]] = set()
        unchecked = []
        for entry in manifest["segments"]:
            directory = self.path / "segments" / entry["id"]
            new: dict[str, list[Any]] = {}
            for component, files in entry["files"].items():
                for file in files:
                    key = (str(directory / file["name"]), int(file["size"]), int(file["crc32"]))
                    named.add(key)
                    if key not in self._verified:
                        new.setdefault(component, []).append(file)
            unchecked.append((directory, new))
        verify_segments(unchecked)
        self._verified = named  # (files of older generations are gone or going)
        return manifest

    def reload(self, first: bool = False) -> None:
        """Loads the newest checkpoint and the WAL after it, then swaps it in: what was
        replayed before (in the appendable segment, never indexed here) is dropped for the
        owner's indexed segments. The load runs without the locks (reads go on); before the
        swap the new copy takes what landed meanwhile, so no read sees an older state after
        a newer one."""
        with self._reload_lock:
            holder, seq, gen, tail = self._load()
            try:
                with self._tail_lock:
                    seq = _replay(holder, tail, seq)
                    with self.lock.write():
                        self.holder, self.applied_seq, self.generation = holder, seq, gen
                        tail, self._tail = self._tail, tail
                        self._pending.clear()
                        self.reloads += 1
                        self.replayed, self.loaded_at = 0, time.monotonic()
            finally:
                tail.close()  # the old one once swapped, else the new one
        # The copy replaced (the replayed points' appendable segment, the old indexes) is
        # freed now; glibc would keep its pages, and a worker's memory would stay at the
        # high-water mark of the points it replayed. (`first`: nothing was replaced, and a
        # worker loads its collections before anything else, some on the event loop.)
        if not first:
            release_free_memory(collect=True)

    def stale(self, records: int, age_s: float) -> bool:
        """Whether the owner has a newer checkpoint and this copy has replayed `records`
        records since it loaded, or loaded `age_s` seconds ago: its replayed points sit in
        an appendable segment that is scanned, never indexed, until it loads again."""
        if self.newest_generation() <= self.generation:
            return False
        return self.replayed >= records or time.monotonic() - self.loaded_at >= age_s

    def newest_generation(self) -> int:
        """The generation of the owner's newest checkpoint (0: none yet)."""
        gens = manifest_generations(self.path)
        return gens[0] if gens else 0

    # ---- reads ----------------------------------------------------------------------

    def catch_up(self, thorough: bool = True) -> int:
        """Applies every record the owner has written since; returns how many. One caller
        at a time reads the tail and applies what it read, so records apply in order. Under
        `NO_WAIT` (a read on the event loop) the write lock may be refused (`WouldWait`):
        the records read stay pending for the next call, none is lost or applied twice.
        `thorough`: see `WalTail.read_new` (a read's catch-up is not)."""
        with self._tail_lock:
            try:
                self._pending.extend(self._tail.read_new(thorough))
            except FollowerBehind as exc:
                log.info("shard follower %s: %s; loading the newest checkpoint", self.path, exc)
                behind = True
            else:
                behind = False
            applied = len(self._pending)
            if self._pending and not behind:
                with self.lock.write():
                    for seq, data in self._pending:
                        if seq > self.applied_seq:
                            apply_record(self.holder, seq, ops.decode(data))
                            self.applied_seq = seq
                            self.replayed += 1
                self._pending.clear()
        if behind:
            self.reload()
            return 0
        return applied

    def read(self) -> HolderRead:
        """The holder under the read lock, after every write acknowledged so far."""
        self.catch_up(thorough=False)
        return self._holder_read

    def problems(self) -> list[str]:
        return []

    def close(self, flush: bool = False) -> None:
        """Lets go of the WAL file (`flush`: as `LocalShard.close` takes it; a follower has
        nothing to write)."""
        with self._tail_lock:
            self._tail.close()
