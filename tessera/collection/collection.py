"""One collection: its persisted config and its (single, local) shard.

Writes are logged and fsynced before they are acknowledged in either wait mode; Tessera
applies an operation before answering even with `wait=false`, which is a stronger promise
than Qdrant's and answers the same shape (`acknowledged`).

A collection whose files cannot be loaded without losing data silently is *damaged*: it is
listed, its info says why (status red), every other request on it answers 500 with the
reason, and its files stay untouched for an operator (or `tessera check`) to look at. The
other collections are not affected.

`config.json` is a checked JSON file (tessera.fileformat) of kind CONFIG_KIND.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tessera.collection_config import CollectionConfig, apply_config_diff
from tessera.errors import InternalError
from tessera.fileformat import FormatError, read_checked_json, write_checked_json
from tessera.shard import operations as ops
from tessera.shard.holder import SegmentHolder
from tessera.shard.shard import LocalShard, ShardDamaged

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
CONFIG_KIND = "tessera/collection-config"
CONFIG_VERSION = 1


def write_config(path: Path, config: CollectionConfig) -> None:
    write_checked_json(path / CONFIG_NAME, CONFIG_KIND, CONFIG_VERSION, config.to_storage())


def read_config(path: Path) -> CollectionConfig:
    """The config of the collection in `path`; FormatError when missing or damaged."""
    config_path = path / CONFIG_NAME
    try:
        body = read_checked_json(config_path, CONFIG_KIND, (CONFIG_VERSION,))
    except FormatError as damaged:
        try:
            orjson.loads(config_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            raise damaged from None
        raise FormatError(
            f"{config_path} is from an older Tessera, whose data files are no longer "
            "readable; re-create the collection"
        ) from None
    try:
        return CollectionConfig.from_storage(body)
    except Exception as exc:
        raise FormatError(f"{config_path}: not a collection config ({exc})") from None


@dataclass(frozen=True)
class UpdateResult:
    operation_id: int
    completed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "status": "completed" if self.completed else "acknowledged",
        }


class Collection:
    def __init__(self, name: str, path: Path, config: CollectionConfig | None) -> None:
        """Loads the collection's shard; `config` None: read it from `path`. Never raises
        for damaged files: the collection is then marked damaged (`failure`)."""
        self.name = name
        self.path = path
        self.failure: str | None = None
        self._shard: LocalShard | None = None
        try:
            self.config = config if config is not None else read_config(path)
            self._shard = LocalShard(path / "shard", self.config)
        except (FormatError, ShardDamaged) as exc:
            self.failure = str(exc)
            log.error("collection %s is damaged and will not serve: %s", name, exc)
        except Exception as exc:  # an unexpected failure must not take the server down
            self.failure = f"failed to load: {exc!r}"
            log.exception("collection %s failed to load", name)
        if self.failure is not None and not hasattr(self, "config"):
            self.config = CollectionConfig(vectors={}, sparse_vectors={}, unnamed=False)

    @property
    def shard(self) -> LocalShard:
        if self._shard is None:
            raise InternalError(
                f"Service internal error: collection `{self.name}` is damaged and cannot "
                f"serve: {self.failure}"
            )
        return self._shard

    @property
    def damage(self) -> list[str]:
        """What is wrong with this collection, for its info; empty when healthy."""
        if self._shard is None:
            return [self.failure or "not loaded"]
        return list(self._shard.damage)

    def update(
        self, prepare: Callable[[SegmentHolder], ops.Record | None], wait: bool = True
    ) -> UpdateResult:
        seq = self.shard.update(prepare)
        return UpdateResult(operation_id=seq, completed=wait)

    def update_config(self, diff: Any) -> None:
        """Validate the whole diff on a copy first, so a bad PATCH changes nothing."""
        trial = copy.deepcopy(self.config)
        apply_config_diff(trial, diff)
        shard = self.shard
        apply_config_diff(self.config, diff)
        write_config(self.path, self.config)
        shard.optimizer.poke()

    def close(self, flush: bool = True) -> None:
        if self._shard is not None:
            self._shard.close(flush=flush)
