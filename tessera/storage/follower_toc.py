"""The table of contents of a read worker (tessera.api.read_workers): the collections of a
storage that another process (the server that owns it) writes, followed read-only.

A collection is followed from its files (`Collection(..., follow=True)`: its shard a
`ShardFollower`), current with every write acknowledged before a read starts. What is not in
its WAL, the collection's existence and config, is checked on each lookup against
`config.json` (inode, mtime, size: one `stat`): a collection deleted, created, replaced by a
snapshot or whose config changed is dropped and loaded again. The alias table likewise, by
its file. Nothing here writes a file.

`followable(name)` is what a read worker asks before it serves a request itself: the
collection when it is loaded, current and of a kind a worker serves, else None (the request
goes to the owner) and, where it can be, a load starts in the background for the next one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from tessera.collection.collection import Collection, read_config
from tessera.collection_config import CollectionConfig
from tessera.errors import TesseraError, collection_not_found
from tessera.fileformat import FormatError
from tessera.shard.follower import ShardFollower
from tessera.storage import aliases as alias_file

log = logging.getLogger(__name__)

Stamp = tuple[int, int, int]
# A collection whose segment files take less than this loads on the request that finds it
# missing or changed (milliseconds); a larger one loads in the background while its reads go
# to the owner. (Its WAL is not counted: a file is allocated whole, whatever it holds.)
SMALL_BYTES = 64 << 20
# A copy loads the owner's newer checkpoint (its indexed segments) once it has replayed this
# many records since its last load, or this long after it: the points it replays sit in an
# appendable segment every read scans. (The owner writes a checkpoint every
# `flush_interval_sec`, 5 s by default, and only then is a load worth it.)
STALE_RECORDS = 200
STALE_AGE_S = 10.0
# How long a collection whose files did not load waits before it is tried again.
RETRY_S = 5.0


def _size_under(path: Path, limit: int) -> bool:
    """Whether the files under `path` take less than `limit` bytes (stops counting there)."""
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except OSError:
                continue
            if total >= limit:
                return False
    return True


def _stamp(path: Path | str) -> Stamp | None:
    """What tells one version of a file from the next: inode, mtime (ns), size."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _plain(name: str) -> bool:
    """Whether `name` can only mean a directory right under `collections/`: no path
    separator, NUL or staging mark (`:`), not `.` or `..`. A name a request gives is looked
    up on disk here, and the server's own lookup is by name alone: `../collections/c` or
    `./c` would otherwise load another copy of `c` under that name."""
    return (
        bool(name)
        and "/" not in name
        and "\x00" not in name
        and ":" not in name
        and name not in (".", "..")
    )


def followable_config(config: CollectionConfig) -> bool:
    """Whether read workers serve the reads of a collection of this config: one local shard
    (a collection of several shards reads through the owner), and no strict-mode read rate
    limit (the owner counts every read against it)."""
    if int(config.params_extra.get("shard_number") or 1) > 1:
        return False
    strict = config.strict_mode_config or {}
    return not (strict.get("enabled") and strict.get("read_rate_limit") is not None)


class FollowedAliases:
    """The alias table as its file stands (the mirror when the file does not read)."""

    def __init__(self, storage: Path) -> None:
        self.path = storage / alias_file.FILE_NAME
        self.mirror = storage / alias_file.MIRROR_NAME
        self._stamp: Stamp | None = None
        self._table: dict[str, str] = {}
        self._lock = threading.Lock()

    def _current(self) -> dict[str, str]:
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return self._table
        with self._lock:
            table: dict[str, str] = {}
            for path in (self.path, self.mirror):
                try:
                    table = alias_file.read_table(path)
                except (FormatError, OSError):
                    continue
                break
            self._table, self._stamp = table, stamp
        return table

    def resolve(self, name: str) -> str | None:
        return self._current().get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._current()


class FollowerToc:
    """Collections of `storage`, followed read-only; loaded on first use."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.root = storage / "collections"
        # Looked up on every request, twice or more: a string, not a Path built each time
        # (pathlib's joining was ~5% of a worker's samples under load).
        self._root = str(self.root)
        self.aliases = FollowedAliases(storage)
        # What the owner's table of contents also has, for the routes a worker serves.
        self.cluster = None
        self.recovery_mode = None
        self._lock = threading.Lock()
        self.collections: dict[str, Collection] = {}  # guarded by _lock for changes
        self._stamps: dict[str, Stamp] = {}  # the config.json each collection was loaded at
        self._refused: dict[str, Stamp] = {}  # not served here, at that config.json
        self._loading: set[str] = set()  # guarded by _lock
        self._loaded_at: dict[str, float] = {}  # monotonic time of each collection's load
        self._failing: set[str] = set()  # collections the poller's last pass failed on
        self._closed = False

    def _target(self, name: str) -> tuple[str, Stamp] | None:
        """The collection `name` means (itself, or the one it is an alias of) and the stamp
        of its config, when it exists on disk."""
        if not _plain(name):
            return None  # (the server answers it: 404, or its 422 for the name)
        stamp = _stamp(f"{self._root}/{name}/config.json")
        if stamp is not None:
            return name, stamp
        if name in self.collections:  # deleted by the owner: its copy goes
            self._forget(name)
        target = self.aliases.resolve(name)
        if target is None:
            return None
        stamp = _stamp(f"{self._root}/{target}/config.json")
        return (target, stamp) if stamp is not None else None

    def followable(self, name: str) -> Collection | None:
        """The collection to serve a read of `name` from here, current with its files; None
        when the owner should serve it (missing, not loaded yet, loading, or not a kind a
        worker serves), in which case a load starts for the next request."""
        found = self._target(name)
        if found is None:
            return None
        target, stamp = found
        collection = self._loaded(target, stamp)
        if collection is not None:
            if collection.failure is None:
                return collection
            # Its files did not load (perhaps read while the owner replaced them): the
            # owner serves it, and it is tried again now and then.
            if time.monotonic() - self._loaded_at.get(target, 0.0) > RETRY_S:
                self._load_in_background(target, stamp)
            return None
        if self._refused.get(target) == stamp:
            return None
        if _size_under(self.root / target / "shard" / "segments", SMALL_BYTES):
            # Loaded here and now (a collection just created, or changed while small): a
            # request handed over takes its connection to the owner for good.
            try:
                collection = self._load(target, stamp)
            except TesseraError:
                return None
            return collection if collection.failure is None else None
        self._load_in_background(target, stamp)
        return None

    def get(self, name: str) -> Collection:
        """The collection for a request being served here: current with its files (loaded
        now if it is not); 404 when it does not exist."""
        found = self._target(name)
        if found is None:
            raise collection_not_found(name)
        target, stamp = found
        loaded = self._loaded(target, stamp)
        return loaded if loaded is not None else self._load(target, stamp)

    def _loaded(self, target: str, stamp: Stamp) -> Collection | None:
        """The copy of `target` loaded at this config.json, if there is one."""
        collection = self.collections.get(target)
        return collection if collection is not None and self._stamps.get(target) == stamp else None

    def _forget(self, target: str) -> None:
        with self._lock:
            collection = self.collections.pop(target, None)
            self._stamps.pop(target, None)
        if collection is not None:
            collection.close()

    def exists(self, name: str) -> bool:
        return self._target(name) is not None

    def _load(self, target: str, stamp: Stamp) -> Collection:
        try:
            config = read_config(self.root / target)
        except FormatError:
            config = None
        if config is None or not followable_config(config):
            with self._lock:
                self._refused[target] = stamp
            raise collection_not_found(target)  # (never asked: followable said no)
        collection = Collection(target, self.root / target, config, follow=True)
        with self._lock:
            if self._closed:
                collection.close()
                raise collection_not_found(target)
            old = self.collections.get(target)
            self.collections[target] = collection
            self._stamps[target] = stamp
            self._loaded_at[target] = time.monotonic()
        if old is not None:
            old.close()
        if collection.failure is not None:
            log.warning("read worker: collection %s not followed: %s", target, collection.failure)
        return collection

    def _load_in_background(self, target: str, stamp: Stamp) -> None:
        with self._lock:
            if target in self._loading or self._closed:
                return
            self._loading.add(target)

        def load() -> None:
            try:
                self._load(target, stamp)
            except Exception as exc:
                log.warning("read worker: collection %s not followed: %s", target, exc)
            finally:
                with self._lock:
                    self._loading.discard(target)

        threading.Thread(target=load, name=f"follow-{target}", daemon=True).start()

    def load_all(self) -> None:
        """Every collection on disk, loaded now (a worker's start)."""
        for entry in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            stamp = _stamp(entry / "config.json")
            if stamp is None:
                continue
            try:
                self._load(entry.name, stamp)
            except Exception as exc:
                log.info("read worker: collection %s not followed: %s", entry.name, exc)

    def catch_up(self) -> None:
        """The poller's pass over every followed collection: one whose files are gone (the
        owner deleted it) is dropped, letting go of its files; each other applies what its
        owner wrote since (a read then finds little to apply, and a copy idle for long does
        not fall behind a truncated log), and loads the owner's newer checkpoint when
        `ShardFollower.stale` (STALE_RECORDS, STALE_AGE_S). A failure is logged
        once per collection and does not stop the others."""
        for name, collection in list(self.collections.items()):
            if _stamp(self.root / name / "config.json") is None:
                self._forget(name)
                continue
            shard = collection._shard
            if not isinstance(shard, ShardFollower):
                continue
            try:
                shard.catch_up()
                if shard.stale(records=STALE_RECORDS, age_s=STALE_AGE_S):
                    shard.reload()
            except Exception as exc:
                if name not in self._failing:
                    self._failing.add(name)
                    log.warning("read worker: following collection %s: %r", name, exc)
            else:
                self._failing.discard(name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            collections = list(self.collections.values())
            self.collections.clear()
        for collection in collections:
            collection.close()
