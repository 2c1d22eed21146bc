"""A collection being replaced by a recovered snapshot is never missing to a lookup: the
request waits for the new one instead of answering 404 (found with Qdrant's shard snapshot
script, whose two concurrent recoveries into one collection sometimes got "doesn't exist")."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.engine import Engine
from tessera.storage import swap


def test_a_lookup_during_a_replacement_waits_for_the_new_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(tmp_path / "storage")
    try:
        engine.create_collection("c", {"vectors": {"size": 2, "distance": "Dot"}})
        ids = [1, 2, 3]
        engine.upsert_arrays("c", ids, np.ones((3, 2), dtype=np.float32), [{}] * 3)
        store = engine.toc.snapshots
        snapshot = store.create("c", shard=0)
        engine.upsert_arrays("c", [4], np.ones((1, 2), dtype=np.float32), [{}])

        entered, release = threading.Event(), threading.Event()
        complete = swap.complete

        def held(*args: Any) -> None:  # the old collection is gone, the new one not yet open
            entered.set()
            release.wait(10)
            complete(*args)

        monkeypatch.setattr(swap, "complete", held)
        recovery = threading.Thread(
            target=store.recover, args=("c", snapshot["name"]), kwargs={"shard": 0}
        )
        recovery.start()
        assert entered.wait(10)
        found: dict[str, Any] = {}

        def lookup() -> None:
            try:
                found["collection"] = engine.toc.get("c")
            except Exception as exc:  # what the test reports
                found["error"] = exc

        looking = threading.Thread(target=lookup)
        looking.start()
        looking.join(0.3)
        assert looking.is_alive(), found  # waiting, not a 404
        release.set()
        looking.join(10)
        recovery.join(30)
        assert "error" not in found, found["error"]
        assert found["collection"] is engine.toc.collections["c"]
        assert found["collection"].count(None, exact=True) == 3  # the snapshot's points
    finally:
        engine.close()
