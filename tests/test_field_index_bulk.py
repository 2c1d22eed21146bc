"""Bulk payload indexing (`FieldIndex.add_many` / `remove_many`, used by `Segment.set_payloads`
and `Segment.delete`) against `add` / `remove` one offset at a time.

For every index type of test_field_index_state (nested and text included, which take the
one-at-a-time path inside), two indexes take the same batches of writes: random payloads,
points without the key, points without any payload, repeated offsets in one batch, rewrites
of offsets that held values, and removals. After every batch both must export the same state
and answer every query of `answers` alike.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pytest

from tessera.segment.field_index import FieldIndex, make_field_index, parse_field_schema
from tessera.segment.field_index_state import export_field_index
from tessera.segment.postings import Postings
from tests.test_field_index_state import (
    DATES,
    IDS,
    SCHEMAS,
    UUIDS,
    WORDS,
    assert_same_answers,
    random_payload,
)

# Values of one kind each: what typed payloads hold (the bulk path stores these together).
PLAIN_KINDS: list[list[Any]] = [
    [-3, 0, 7, 2**62, 12],
    [1.5, -0.0, 2.0, 1e300, 7.25],
    WORDS,
    [True, False],
    UUIDS + [u.upper() for u in UUIDS],
    DATES,
]


def plain_value(rng: random.Random) -> Any:
    """One value of a kind, or an array of 1-4 of one kind (repeats included)."""
    kind = rng.choice(PLAIN_KINDS)
    if rng.random() < 0.6:
        return rng.choice(kind)
    return [rng.choice(kind) for _ in range(rng.randrange(1, 5))]


def batch_payload(rng: random.Random) -> dict[str, Any] | None:
    r = rng.random()
    if r < 0.2:
        return None  # a write without payload
    if r < 0.3:
        return {"other": rng.randrange(5)}  # a payload without the key
    if r < 0.55:
        return {"f": plain_value(rng)}
    if r < 0.65:
        return {"obj": [{"f": plain_value(rng)}]}  # one element: one value at `obj[].f`
    return random_payload(rng)


def one_by_one(index: FieldIndex, offsets: list[int], payloads: list[Any]) -> None:
    for offset, payload in zip(offsets, payloads, strict=True):
        index.add(offset, payload or {})


def exported(index: FieldIndex) -> tuple[bytes, dict[str, bytes]]:
    meta, arrays = export_field_index(index)
    return orjson.dumps(meta, option=orjson.OPT_SORT_KEYS), {
        name: array.dtype.str.encode() + array.tobytes() for name, array in arrays.items()
    }


@pytest.mark.parametrize(("key", "schema"), SCHEMAS, ids=IDS)
def test_bulk_writes_equal_one_at_a_time(key: str, schema: Any) -> None:
    rng = random.Random(f"{key}{schema}")
    parsed = parse_field_schema(schema)
    bulk, single = make_field_index(key, parsed), make_field_index(key, parsed)
    size = 0
    for step in range(60):
        r = rng.random()
        if r < 0.2 and size:
            offsets = rng.sample(range(size), min(size, rng.randrange(1, 12)))
            removed = np.asarray([*offsets, size + 5], dtype=np.int64)  # one never written
            bulk.remove_many(removed)
            for offset in removed.tolist():
                single.remove(offset)
        else:
            count = rng.randrange(1, 20)
            if r < 0.5 or not size:  # new offsets, at the end (and sometimes past a gap)
                start = size + (rng.randrange(3) if rng.random() < 0.3 else 0)
                offsets = list(range(start, start + count))
            else:  # rewrites of earlier offsets, a repeat among them now and then
                offsets = rng.sample(range(size), min(size, count))
                if rng.random() < 0.3:
                    offsets.append(offsets[0])
            payloads = [batch_payload(rng) for _ in offsets]
            bulk.add_many(offsets, payloads)
            one_by_one(single, offsets, payloads)
            size = max(size, max(offsets) + 1)
        assert exported(bulk) == exported(single), f"step {step}"
        assert bulk._multi == single._multi, f"step {step}"  # no stale counts left behind
    assert_same_answers(bulk, single, [size, size + 7])


def test_a_batch_without_the_key_keeps_the_values_of_other_points() -> None:
    index = make_field_index("kw", parse_field_schema("keyword"))
    index.add_many([0, 1, 2], [{"kw": "a"}, {"kw": ["b", 3.5]}, {"kw": None}])
    index.add_many([3, 4, 1], [None, {"x": 1}, None])  # point 1 rewritten without the key
    assert np.flatnonzero(index.match_values(["a"], 5)).tolist() == [0]
    assert not index.match_values(["b"], 5).any()
    assert np.flatnonzero(index.is_empty_mask(5)).tolist() == [1, 2, 3, 4]
    assert np.flatnonzero(index.is_null_mask(5)).tolist() == [2]
    assert not index.has_other_kinds(0xFF)  # point 1's float was the only other kind
    assert index.points_count() == 1


def test_plain_values_of_a_batch_are_stored_as_add_stores_them() -> None:
    index = make_field_index("kw", parse_field_schema("keyword"))
    index.add_many([0, 1, 3], [{"kw": ["a", "a", "b"]}, {"kw": ["c", 1]}, {"kw": ["d"] * 3}])
    index.add_many([2, 0], [{"kw": "b"}, {"kw": "c"}])  # point 0 rewritten
    assert np.flatnonzero(index.match_values(["b"], 4)).tolist() == [2]
    assert np.flatnonzero(index.match_values(["c"], 4)).tolist() == [0, 1]
    assert np.flatnonzero(index.match_values(["d"], 4)).tolist() == [3]
    assert np.flatnonzero(index.values_count_mask(None, 2, None, None, 4)).tolist() == [1, 3]
    assert index.points_count() == 4
    assert index.has_other_kinds(2)  # point 1's integer


def test_postings_replace_many_equals_replace_one_at_a_time() -> None:
    rng = random.Random(7)
    bulk, single = Postings(np.int64), Postings(np.int64)
    for _ in range(40):
        owners = rng.sample(range(300), rng.randrange(1, 30))
        groups = [rng.sample(range(50), rng.randrange(1, 4)) for _ in owners]
        bulk.replace_many(
            np.asarray(owners, dtype=np.int64),
            np.asarray([len(g) for g in groups], dtype=np.int64),
            [k for g in groups for k in g],
        )
        for owner, group in zip(owners, groups, strict=True):
            single.replace(owner, group)
        for name in ("_gen", "_live"):  # grown in other steps: equal up to zeros at the end
            a, b = getattr(bulk, name), getattr(single, name)
            n = min(len(a), len(b))
            assert np.array_equal(a[:n], b[:n]) and not a[n:].any() and not b[n:].any(), name
        for name in ("_stale", "_pk", "_po", "_pg", "_px"):
            assert getattr(bulk, name) == getattr(single, name), name
        if rng.random() < 0.3:
            bulk.sorted_live()
            single.sorted_live()
    for a, b in zip(bulk.export_state(), single.export_state(), strict=True):
        assert np.array_equal(a, b)
