"""One collection: its persisted config and its (single, local) shard.

Writes are logged and fsynced before they are acknowledged in either wait mode; Tessera
applies an operation before answering even with `wait=false`, which is a stronger promise
than Qdrant's and answers the same shape (`acknowledged`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessera.collection.config import CollectionConfig
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

    def close(self, flush: bool = True) -> None:
        self.shard.close(flush=flush)
