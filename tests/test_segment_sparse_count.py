"""`Segment._indexed_sparse_count` counts from each sparse storage's per-offset lengths: the
same as walking the stored pairs one by one, through writes, clears, deletes and reloads."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from tessera.collection_config import parse_create_collection
from tessera.segment.segment import Segment
from tessera.segment.vector_storage import ObjectStorage

NAMES = ("a", "b")


def _per_item(seg: Segment) -> int:
    """The obvious count: every non-empty sparse vector of a live point, item by item."""
    total = 0
    for storage in seg.storages.values():
        if isinstance(storage, ObjectStorage) and storage.kind == "sparse":
            for off in range(seg.size):
                item = storage.items[off] if off < len(storage.items) else None
                if not seg.deleted[off] and item is not None and len(item[0]) > 0:
                    total += 1
    return total


def _vector(rng: random.Random) -> Any:
    """None (no vector), an empty one, or a few pairs."""
    n = rng.choice([None, 0, 0, 1, 3, 7])
    if n is None:
        return None
    indices = np.asarray(sorted(rng.sample(range(100), n)), dtype=np.int32)
    return indices, np.asarray([rng.random() for _ in range(n)], dtype=np.float32)


def _write(seg: Segment, rng: random.Random, offsets: list[int]) -> None:
    for name in NAMES:
        picked = [off for off in offsets if rng.random() < 0.8]
        seg.write_objects(name, np.asarray(picked, dtype=np.int64), [_vector(rng) for _ in picked])


def test_indexed_sparse_count_matches_the_per_item_count() -> None:
    rng = random.Random(11)
    config = parse_create_collection(
        {
            "vectors": {"d": {"size": 2, "distance": "Dot"}},
            "sparse_vectors": {name: {} for name in NAMES},
        }
    )
    seg = Segment("s", config, appendable=True)
    assert seg._indexed_sparse_count(seg.stored_mask()) == 0

    def check() -> None:
        assert seg._indexed_sparse_count(seg.stored_mask()) == _per_item(seg)

    offsets = seg.allocate(list(range(300)), 1).tolist()
    _write(seg, rng, offsets)
    check()
    seg.delete(np.asarray(rng.sample(offsets, 60), dtype=np.int64), 2)
    check()
    for round_ in range(5):  # the lengths kept up to date on write, once derived
        more = seg.allocate(list(range(1000 + 50 * round_, 1050 + 50 * round_)), 3 + round_)
        _write(seg, rng, [*more.tolist(), *rng.sample(offsets, 30)])
        seg.clear_vectors(rng.choice(NAMES), np.asarray(rng.sample(offsets, 20), np.int64))
        seg.delete(np.asarray(rng.sample(offsets, 10), dtype=np.int64), 3 + round_)
        check()
    for name in NAMES:  # as a reload or the optimizer sets them: derived again
        storage = seg.storages[name]
        assert isinstance(storage, ObjectStorage)
        storage.set_items(list(storage.items))
    seg.generation += 1
    check()
    assert _per_item(seg) > 0
