"""The table of contents: which collections exist on disk, created and dropped atomically.

Layout: `<storage>/collections/<name>/config.json` plus the collection's shard directory.
A collection is created in a `:creating-*` directory and renamed into place, and dropped by
renaming it to `:deleting-*` before removal, so a crash never leaves half a collection that
refuses to start; leftovers of either kind are removed at start-up.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from pathlib import Path

import orjson

from tessera.collection.collection import Collection
from tessera.collection.config import CollectionConfig
from tessera.errors import Conflict, UnprocessableEntity, collection_not_found
from tessera.fsutil import fsync_dir, write_durable

log = logging.getLogger(__name__)

# Staging directories start with a character no collection name may contain.
_STAGING = ":"
_FORBIDDEN = '<>:"/\\|?*\x00\x1f'


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
    if name in (".", ".."):
        raise UnprocessableEntity(
            "Validation error in path parameters: [name: collection name cannot be `.` or `..`]"
        )


class TableOfContents:
    def __init__(self, storage: Path) -> None:
        self.root = storage / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.collections: dict[str, Collection] = {}  # guarded by _lock for changes
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(_STAGING):
                shutil.rmtree(entry, ignore_errors=True)
                continue
            config_path = entry / "config.json"
            if not config_path.exists():
                log.warning("ignoring %s: no config.json", entry)
                continue
            config = CollectionConfig.from_storage(orjson.loads(config_path.read_bytes()))
            self.collections[entry.name] = Collection(entry.name, entry, config)

    def get(self, name: str) -> Collection:
        collection = self.collections.get(name)
        if collection is None:
            raise collection_not_found(name)
        return collection

    def names(self) -> list[str]:
        return list(self.collections)

    def create(self, name: str, config: CollectionConfig) -> None:
        validate_collection_name(name)
        with self._lock:
            if name in self.collections:
                raise Conflict(f"Wrong input: Collection `{name}` already exists!")
            staging = self.root / f"{_STAGING}creating-{uuid.uuid4().hex}"
            staging.mkdir()
            write_durable(staging / "config.json", orjson.dumps(config.to_storage()))
            final = self.root / name
            staging.rename(final)
            fsync_dir(self.root)
            self.collections[name] = Collection(name, final, config)

    def delete(self, name: str) -> bool:
        with self._lock:
            collection = self.collections.pop(name, None)
            if collection is None:
                return False
            collection.close(flush=False)
            doomed = self.root / f"{_STAGING}deleting-{uuid.uuid4().hex}"
            collection.path.rename(doomed)
            fsync_dir(self.root)
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def close(self) -> None:
        with self._lock:
            for collection in self.collections.values():
                collection.close()
