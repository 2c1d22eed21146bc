"""A write that reaches a collection after it was closed (deleted by another request while
the write came in) is answered as a missing collection, never an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.collection import writes
from tessera.engine import Engine
from tessera.errors import NotFound


def test_a_write_to_a_collection_closed_meanwhile_is_a_missing_collection(
    tmp_path: Path,
) -> None:
    engine = Engine(tmp_path)
    try:
        engine.create_collection("c", {"vectors": {"size": 2, "distance": "Dot"}})
        collection = engine.toc.get("c")
        collection.update(writes.delete([1]))  # open: a write goes through
        collection.close()
        with pytest.raises(NotFound, match="Collection `c` doesn't exist!"):
            collection.update(writes.delete([1]))
    finally:
        engine.close()
