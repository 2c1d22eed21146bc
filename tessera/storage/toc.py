"""The table of contents: which collections exist on disk, created and dropped atomically.

Layout: `<storage>/collections/<name>/config.json` plus the collection's shard directory.
A collection is created in a `:creating-*` directory and renamed into place, and dropped by
renaming it to `:deleting-*` before removal, so a crash never leaves half a collection that
refuses to start; leftovers of either kind are removed at start-up. A collection restored
from a snapshot replaces the old one through a journaled swap (tessera.storage.swap), which
start-up completes before it removes the leftovers.

Aliases (tessera.storage.aliases) are other names for collections, kept in
`<storage>/aliases.json`: `get` resolves them, so an alias works wherever a collection name
does; an alias and a collection never share a name, and dropping a collection drops its
aliases.

Snapshots (tessera.storage.snapshots) live under `snapshots_path`, `<storage>/snapshots` by
default.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import uuid
from pathlib import Path

from tessera.collection.collection import Collection, write_config
from tessera.collection_config import CollectionConfig
from tessera.errors import (
    BadRequest,
    Conflict,
    ServiceUnavailable,
    UnprocessableEntity,
    collection_not_found,
)
from tessera.fsutil import mkdir_durable, rename_durable, rmtree_durable
from tessera.storage import swap
from tessera.storage.aliases import AliasAction, AliasTable
from tessera.storage.snapshots import SnapshotStore

log = logging.getLogger(__name__)

# Staging directories start with a character no collection name may contain.
_STAGING = ":"
_FORBIDDEN = '<>:"/\\|?*\x00\x1f'
# A new collection needs its config, directories and first WAL segment.
_MIN_FREE_TO_CREATE = 1 << 20


def validate_collection_name(name: str) -> None:
    """Qdrant's rule: 1-255 characters, none of `<>:"/\\|?*`, NUL or 0x1F."""
    if not 1 <= len(name) <= 255:
        raise UnprocessableEntity(
            "Validation error in path parameters: [name: length must be between 1 and 255]"
        )
    for ch in name:
        if ch in _FORBIDDEN:
            raise UnprocessableEntity(
                f"Validation error in path parameters: [name: collection name cannot contain "
                f'"{ch}" char]'
            )
    if len(name.encode()) > 255:  # the collection's directory name: a file system limit
        raise UnprocessableEntity(
            "Validation error in path parameters: [name: collection name must be at most "
            "255 bytes in UTF-8]"
        )
    if name in (".", ".."):
        raise UnprocessableEntity(
            "Validation error in path parameters: [name: collection name cannot be `.` or `..`]"
        )


class TableOfContents:
    def __init__(self, storage: Path, snapshots_path: Path | None = None) -> None:
        self.root = storage / "collections"
        mkdir_durable(self.root)
        self._lock = threading.Lock()
        self.collections: dict[str, Collection] = {}  # guarded by _lock for changes
        swap.roll_forward(self.root)
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(_STAGING):
                # Never acknowledged (creating) or already confirmed to the user (deleting).
                rmtree_durable(entry)
                continue
            if not entry.is_dir():
                continue
            # A damaged collection is loaded as such (listed, reporting why), never skipped
            # and never a reason for the others not to load.
            self.collections[entry.name] = Collection(entry.name, entry, None)
        self.aliases = AliasTable(storage, self.collections)
        self.snapshots = SnapshotStore(self, storage, snapshots_path or storage / "snapshots")

    def get(self, name: str) -> Collection:
        collection = self.collections.get(name)
        if collection is None:
            target = self.aliases.resolve(name)
            if target is not None:
                collection = self.collections.get(target)
        if collection is None:
            raise collection_not_found(name)
        return collection

    def exists(self, name: str) -> bool:
        """A collection or an alias of one by that name (Qdrant's `exists` answers true for an
        alias)."""
        return name in self.collections or self.aliases.resolve(name) in self.collections

    def update_aliases(self, actions: list[AliasAction]) -> None:
        """Qdrant's alias action list, applied all or none and persisted before it returns."""
        with self._lock:
            self.aliases.apply(actions, lambda name: name in self.collections)

    def restore_aliases(self, pairs: dict[str, str], force: bool) -> None:
        """A full snapshot's alias table, merged into this one (all or none)."""
        with self._lock:
            self.aliases.restore(pairs, force, lambda name: name in self.collections)

    def names(self) -> list[str]:
        return list(self.collections)

    def create(self, name: str, config: CollectionConfig) -> None:
        validate_collection_name(name)
        with self._lock:
            if name in self.collections:
                raise Conflict(f"Wrong input: Collection `{name}` already exists!")
            if name in self.aliases:  # Qdrant: bad input (400), not a conflict
                raise BadRequest(
                    f"Wrong input: Can't create collection with name {name}. Alias with the "
                    "same name already exists"
                )
            if (self.root / name).exists():
                raise Conflict(
                    f"Wrong input: Can't create collection with name {name}. Collection data "
                    "already exists at the path"
                )
            staging = self.root / f"{_STAGING}creating-{uuid.uuid4().hex}"
            final = self.root / name
            try:
                self._check_space()
                mkdir_durable(staging)
                write_config(staging, config)
                rename_durable(staging, final)
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise ServiceUnavailable(
                        f"Service unavailable: No space left on device: {exc}"
                    ) from exc
                raise
            collection = Collection(name, final, config)
            if collection.failure is not None:
                # The files could not be made (e.g. the disk filled up meanwhile): undo.
                doomed = self.root / f"{_STAGING}deleting-{uuid.uuid4().hex}"
                rename_durable(final, doomed)
                rmtree_durable(doomed)
                raise ServiceUnavailable(
                    f"Service unavailable: could not create collection: {collection.failure}"
                )
            self.collections[name] = collection

    def delete(self, name: str) -> bool:
        with self._lock:
            collection = self.collections.pop(name, None)
            if collection is None:
                return False
            collection.close(flush=False)
            doomed = self.root / f"{_STAGING}deleting-{uuid.uuid4().hex}"
            rename_durable(collection.path, doomed)
            # After the collection is gone: a crash between leaves aliases that start-up drops.
            self.aliases.drop_collection(name)
        rmtree_durable(doomed)
        return True

    def install(self, name: str, staging: Path) -> Collection:
        """Replace collection `name`, or create it, with the collection in `staging`: a
        complete, durable directory made by `swap.staging_dir(self.root)` and verified to load.
        A crash at any point leaves the old collection or the new one (tessera.storage.swap)."""
        validate_collection_name(name)
        with self._lock:
            journal, aside = swap.begin(self.root, name, staging)
            old = self.collections.pop(name, None)
            if old is not None:
                old.close(flush=False)  # replaced: its last state need not be kept
            swap.complete(self.root, name, staging, aside)
            swap.finish(journal)
            collection = Collection(name, self.root / name, None)
            self.collections[name] = collection
        if aside.exists():
            rmtree_durable(aside)
        return collection

    def _check_space(self) -> None:
        free = shutil.disk_usage(self.root).free
        if free < _MIN_FREE_TO_CREATE:
            raise ServiceUnavailable(
                f"Service unavailable: No space left on device: {free} bytes free"
            )

    def close(self) -> None:
        with self._lock:
            for collection in self.collections.values():
                collection.close()
