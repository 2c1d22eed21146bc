"""One collection: its persisted config and its (single, local) shard.

Writes are logged and fsynced before they are acknowledged in either wait mode; Tessera
applies an operation before answering even with `wait=false`, which is a stronger promise
than Qdrant's and answers the same shape (`acknowledged`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tessera.collection.config import CollectionConfig, apply_config_diff
from tessera.fsutil import write_durable
from tessera.shard import operations as ops
from tessera.shard.holder import SegmentHolder
from tessera.shard.shard import LocalShard


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
    def __init__(self, name: str, path: Path, config: CollectionConfig) -> None:
        self.name = name
        self.path = path
        self.config = config
        self.shard = LocalShard(path / "shard", config)

    def update(
        self, prepare: Callable[[SegmentHolder], ops.Record | None], wait: bool = True
    ) -> UpdateResult:
        seq = self.shard.update(prepare)
        return UpdateResult(operation_id=seq, completed=wait)

    def update_config(self, diff: Any) -> None:
        """Validate the whole diff on a copy first, so a bad PATCH changes nothing."""
        trial = copy.deepcopy(self.config)
        apply_config_diff(trial, diff)
        apply_config_diff(self.config, diff)
        write_durable(self.path / "config.json", orjson.dumps(self.config.to_storage()))
        self.shard.optimizer.poke()

    def close(self, flush: bool = True) -> None:
        self.shard.close(flush=flush)
