"""Snapshot activity per collection, for `/telemetry` and `/metrics`.

Qdrant keeps, per collection that has made or recovered a snapshot since the process
started, the snapshots being created now, the recoveries running now and the snapshots
created in all (`CollectionSnapshotTelemetry`; the `snapshot_creation_running`,
`snapshot_recovery_running` and `snapshot_created_total` metrics). Counters live in memory
only, as Qdrant's do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace


@dataclass(slots=True)
class SnapshotCounts:
    running_snapshots: int = 0
    running_snapshot_recovery: int = 0
    total_snapshot_creations: int = 0


class SnapshotActivity:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, SnapshotCounts] = {}

    def _of(self, collection: str) -> SnapshotCounts:
        found = self._counts.get(collection)
        if found is None:
            found = self._counts[collection] = SnapshotCounts()
        return found

    @contextmanager
    def creating(self, collection: str) -> Iterator[None]:
        """A snapshot of `collection` being made; counted as created once it is."""
        with self._running(collection, "running_snapshots"):
            yield
        with self._lock:
            self._of(collection).total_snapshot_creations += 1

    def recovering(self, collection: str) -> AbstractContextManager[None]:
        return self._running(collection, "running_snapshot_recovery")

    @contextmanager
    def _running(self, collection: str, field: str) -> Iterator[None]:
        """One more `field` (a SnapshotCounts gauge) of `collection` while it runs."""
        with self._lock:
            counts = self._of(collection)
            setattr(counts, field, getattr(counts, field) + 1)
        try:
            yield
        finally:
            with self._lock:
                setattr(counts, field, getattr(counts, field) - 1)

    def counts(self) -> list[tuple[str, SnapshotCounts]]:
        """Each collection with snapshot activity, by name (copies)."""
        with self._lock:
            return [(name, replace(c)) for name, c in sorted(self._counts.items())]
