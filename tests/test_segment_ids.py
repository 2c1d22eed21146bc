"""A segment loaded from disk answers ids from its key arrays (no Python id list or map until
a write needs them): lookups, deletes and the lists built later agree with the eager form."""

from __future__ import annotations

import uuid

import numpy as np

from tessera.collection_config import parse_create_collection
from tessera.ids import PointId
from tessera.segment.segment import Segment, id_keys


def _lazy_copy(seg: Segment) -> Segment:
    """What persist.load_segment builds: the same keys, no ext_ids / id_map yet."""
    lazy = Segment("lazy", seg.config, appendable=False)
    lazy.size = seg.size
    lazy.key_kind = seg.key_kind[: seg.size].copy()
    lazy.key_hi = seg.key_hi[: seg.size].copy()
    lazy.key_lo = seg.key_lo[: seg.size].copy()
    lazy.versions = seg.versions[: seg.size].copy()
    lazy.deleted = seg.deleted[: seg.size].copy()
    lazy.ext_ids = None
    lazy.id_map = None
    return lazy


def test_lazy_ids_match_the_eager_segment() -> None:
    config = parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}})
    seg = Segment("s", config, appendable=True)
    base = uuid.UUID(int=(7 << 64) | 1)
    same_high = uuid.UUID(int=(7 << 64) | 2)  # equal high words: told apart by the low ones
    lone = uuid.UUID(int=(9 << 64) | 1)  # the only key with its high word
    ids: list[PointId] = [5, 3, base, 2**63 + 1, same_high, 0, uuid.uuid4(), lone]
    seg.allocate(ids, 1)
    seg.delete(np.array([1], dtype=np.int64), 2)  # id 3
    lazy = _lazy_copy(seg)
    assert lazy._id_map is None
    assert lazy.live_count() == len(ids) - 1
    for off, pid in enumerate(ids):
        assert lazy.external_id_at(off) == pid
        assert lazy.offset_of(pid) == seg.offset_of(pid)
    assert lazy.offset_of(3) is None and lazy.offset_of(uuid.UUID(int=(7 << 64) | 3)) is None
    assert lazy.offset_of(999) is None
    assert lazy.offset_of(uuid.UUID(int=(9 << 64) | 5)) is None  # same high word only
    assert lazy.offset_of(lone) == 7
    assert lazy.offsets_of([same_high, 999, 5, base]).tolist() == [4, 0, 2]
    assert lazy.external_ids_at([6, 2, 0]) == [ids[6], base, 5]
    lazy.delete(np.array([2], dtype=np.int64), 3)
    assert lazy.offset_of(base) is None and lazy.offset_of(same_high) == 4
    assert lazy.live_count() == len(ids) - 2
    assert lazy._id_map is None  # deletes need no map
    assert lazy.ext_ids == ids
    assert lazy.id_map == {pid: off for off, pid in enumerate(ids) if off not in (1, 2)}
    kind, hi, lo = id_keys(ids)
    assert (kind == lazy.key_kind).all() and (hi == lazy.key_hi).all() and (lo == lazy.key_lo).all()


def test_lazy_lookups_of_many_ids_match_the_eager_segment() -> None:
    """Batches large enough for `_SortedIds.find`'s numpy path: numbers written, deleted and
    written again (one key at two offsets), UUIDs sharing high words and UUIDs alone with
    theirs, deleted points, and ids never written (some with a stored UUID's high word),
    against the eager segment's map."""
    import random

    rng = random.Random(3)
    config = parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}})
    seg = Segment("s", config, appendable=True)
    highs = [rng.getrandbits(64) for _ in range(40)]
    alone = [rng.getrandbits(64) for _ in range(100)]
    pool: list[PointId] = [
        *range(200),
        *(uuid.UUID(int=(rng.choice(highs) << 64) | i) for i in range(200)),
        *(uuid.UUID(int=(h << 64) | 1) for h in alone),
    ]
    seg.allocate(pool, 1)
    for round_ in range(3):
        gone = rng.sample(range(seg.size), 60)
        seg.delete(np.asarray(gone, dtype=np.int64), 2 + round_)
        again = rng.sample(pool, 50)  # some of them deleted just now: new offsets
        seg.allocate(again, 10 + round_)
    lazy = _lazy_copy(seg)
    strangers: list[PointId] = [
        *range(1000, 1040),
        *(uuid.UUID(int=(h << 64) | 999) for h in highs + alone),
    ]
    for _ in range(20):
        asked = rng.sample(pool, 80) + rng.sample(strangers, 40)
        rng.shuffle(asked)
        expected = [seg.id_map[pid] for pid in asked if pid in seg.id_map]
        assert lazy.offsets_of(asked).tolist() == expected


def test_ids_of_few_and_many_offsets_read_alike() -> None:
    """`external_ids_at` reads a few offsets one item at a time and longer lists in numpy
    calls: both answer what the ids were, numbers and UUIDs mixed, in the order asked
    (repeats included)."""
    config = parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}})
    seg = Segment("s", config, appendable=True)
    rng = np.random.default_rng(4)
    ids: list[PointId] = [
        uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | i) if i % 3 == 0 else i * 7 + 2**63
        for i in range(200)
    ]
    seg.allocate(ids, 1)
    lazy = _lazy_copy(seg)
    for count in (0, 1, 10, 15, 16, 17, 100):
        offsets = rng.integers(0, len(ids), size=count).tolist()
        expected = [ids[o] for o in offsets]
        assert lazy.external_ids_at(offsets) == expected
        assert seg.external_ids_at(offsets) == expected  # the eager form: its list
