"""Field index state export and import (segment/field_index_state.py).

For every index type: build an index from a few hundred random payloads (nulls, arrays,
wrong-kind values, missing keys, nested paths, rewrites and removals), export it, send the
arrays through real round trips (np.save/np.load, a read-only memmap, a read-only
np.frombuffer) and meta through orjson, import, and check that the imported index answers a
battery of queries exactly like the original, and keeps doing so while both take the same
add()/remove() calls. Damaged states must raise ValueError.

Run as a script (`python tests/test_field_index_state.py`) to time export + import against
a rebuild from payloads for 100k points.
"""

from __future__ import annotations

import math
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pytest

from tessera.query.datetime_parse import parse_datetime_micros
from tessera.query.text_tokenizer import TOKENIZER_VERSION
from tessera.segment.field_index import K_ALL, FieldIndex, make_field_index, parse_field_schema
from tessera.segment.field_index_state import (
    StaleIndexState,
    export_field_index,
    import_field_index,
)
from tessera.segment.field_index_text import TextIndex

Arrays = dict[str, npt.NDArray[Any]]

WORDS = ["alpha", "beta", "Gamma", "delta", "echo", "the", "fox", "Ünïcödé", "straße", "a"]
UUIDS = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(6)]
DATES = ["2024-01-02T03:04:05Z", "2023-06-01", "2024-03-10 12:30", "2022-12-31T23:59:59.5Z"]

SCHEMAS: list[tuple[str, Any]] = [
    ("f", "keyword"),
    ("obj[].f", "keyword"),
    ("f", "integer"),
    ("f", {"type": "integer", "lookup": False, "range": True}),
    ("f", {"type": "integer", "lookup": True, "range": False}),
    ("obj[].f", "integer"),
    ("f", "float"),
    ("f", "bool"),
    ("f", "geo"),
    ("obj[].f", "geo"),
    ("f", "datetime"),
    ("f", "uuid"),
    ("f", "text"),
    ("obj[].f", {"type": "text", "tokenizer": "word"}),
    ("f", {"type": "text", "tokenizer": "prefix", "min_token_len": 2, "max_token_len": 4}),
    (
        "f",
        {
            "type": "text",
            "tokenizer": "whitespace",
            "lowercase": False,
            "ascii_folding": True,
            "stopwords": {"languages": ["english"], "custom": ["Fox"]},
        },
    ),
    ("f", {"type": "text", "tokenizer": "multilingual", "phrase_matching": True}),
    ("f", {"type": "text", "scoring": True}),
    ("obj[].f", {"type": "text", "tokenizer": "prefix", "max_token_len": 4, "scoring": True}),
    ("obj[].f", {"type": "text", "nested": "obj", "scoring": True, "phrase_matching": True}),
    ("obj[].f", {"type": "text", "nested": "obj[]"}),
    ("obj[].f", {"type": "keyword", "nested": "obj"}),
    ("obj[].f", {"type": "integer", "nested": "obj"}),
]
IDS = [f"{key}:{schema if isinstance(schema, str) else orjson.dumps(schema).decode()}"
       for key, schema in SCHEMAS]  # fmt: skip


def random_value(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.12:
        return rng.randrange(-20, 20)
    if r < 0.17:
        return rng.choice([2**62, -(2**63), 2**70, 2**53 + 1])
    if r < 0.25:
        return rng.choice([rng.random() * 40 - 20, 2.0, -0.0, 1e300])
    if r < 0.3:
        return rng.random() < 0.5
    if r < 0.42:
        return rng.choice([*WORDS, "", "x\ud800y", "7"])
    if r < 0.5:
        return " ".join(rng.choices(WORDS, k=rng.randrange(5)))
    if r < 0.56:
        u = rng.choice(UUIDS)
        return rng.choice([u, u.upper(), u.replace("-", ""), "plain"])
    if r < 0.63:
        return rng.choice([*DATES, "garbage"])
    if r < 0.75:
        lat, lon = rng.uniform(-3, 3), rng.uniform(-3, 3)
        return rng.choice(
            [{"lat": lat, "lon": lon}, {"lat": round(lat), "lon": lon}, {"lat": 1}, {"lon": 1}]
        )
    if r < 0.8:
        return {"g": 1}
    return None


def random_field(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.08:
        return []
    if r < 0.28:
        return [random_value(rng) for _ in range(rng.randrange(1, 5))]
    if r < 0.31:
        return [[random_value(rng)], random_value(rng)]
    return random_value(rng)


def random_payload(rng: random.Random) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if rng.random() < 0.85:
        payload["f"] = random_field(rng)
    r = rng.random()
    if r < 0.7:
        items = [
            {"f": random_field(rng)} if rng.random() < 0.8 else {} for _ in range(rng.randrange(4))
        ]
        payload["obj"] = items
    elif r < 0.8:
        payload["obj"] = {"f": random_field(rng)}
    elif r < 0.85:
        payload["obj"] = None
    return payload


# --- queries ----------------------------------------------------------------------------


def micros(text: str) -> float:
    found = parse_datetime_micros(text)
    assert found is not None
    return float(found)


BOUNDS: list[tuple[float | None, float | None, float | None, float | None]] = [
    (None, 0, None, None),
    (-3, None, 10, None),
    (None, -2.5, None, 7.5),
    (1.5, None, None, 1e20),
    (None, None, None, -1e19),
    (2**62 - 1, None, None, None),
    (None, -math.inf, math.inf, None),
    (0, None, 0, None),
]
DT_BOUNDS = [
    (None, micros("2023-01-01"), None, None),
    (micros("2023-06-01"), None, micros("2024-03-10T12:30:00Z"), None),
    (None, None, None, micros("2024-01-02T03:04:05Z")),
]
SQUARE = ((-1.0, -1.0), (2.0, -1.0), (2.0, 2.0), (-1.0, 2.0), (-1.0, -1.0))
HOLE = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0))
TEXTS = ["alpha", "Alpha beta", "the fox", "gam", "ga", "straße", "strasse", "Unicode", "", "x"]


def answers(index: FieldIndex, n: int) -> list[tuple[str, Any]]:
    """Every answer the evaluator, order_by and facets can ask of an index, for n points."""
    out: list[tuple[str, Any]] = []

    def add(name: str, make: Callable[[], Any]) -> None:
        out.append((name, make()))

    scalars: list[Any] = [*WORDS, "", "x\ud800y", "7", "plain", *UUIDS, UUIDS[0].upper(),
                          *DATES, 0, 1, -3, 7, 2**62, -(2**63), True, False]  # fmt: skip
    for v in scalars:
        add(f"match {v!r}", lambda v=v: index.match_values([v], n))
    add("match any words", lambda: index.match_values(WORDS[:4], n))
    add("match any ints", lambda: index.match_values([1, 2, 3, -5], n))
    for values in ([], ["alpha", "x\ud800y"], [1, -3], UUIDS[:3]):
        add(f"except {values!r}", lambda values=values: index.match_except(values, n))
    for text in ("al", "", "ß", "GAM", "x\ud800"):
        add(f"prefix {text!r}", lambda text=text: index.match_prefix(text, n))
        add(f"substring {text!r}", lambda text=text: index.match_substring(text, n))
    for text in TEXTS:
        add(f"text {text!r}", lambda text=text: index.match_text(text, False, n))
        add(f"text_any {text!r}", lambda text=text: index.match_text(text, True, n))
        add(f"phrase {text!r}", lambda text=text: index.match_phrase(text, n))
    for b in BOUNDS:
        add(f"range {b}", lambda b=b: index.range_mask(*b, n))
        add(f"values_count {b}", lambda b=b: index.values_count_mask(*b, n))
    for b in DT_BOUNDS:
        add(f"datetime {b}", lambda b=b: index.datetime_range_mask(*b, n))
    for lat, lon, radius in ((0.0, 0.0, 1e5), (1.0, -1.0, 3e5), (0.0, 0.0, 0.0)):
        add(f"radius {lat} {lon} {radius}", lambda a=(lat, lon, radius): index.geo_radius(*a, n))
    add("bbox", lambda: index.geo_bbox((2.0, -2.0), (-1.0, 1.5), n))
    add("polygon", lambda: index.geo_polygon(SQUARE, (), n))
    add("polygon with hole", lambda: index.geo_polygon(SQUARE, (HOLE,), n))
    add("is_empty", lambda: index.is_empty_mask(n))
    add("is_null", lambda: index.is_null_mask(n))
    add("other_kinds", lambda: index.other_kinds(n))
    add("has_other_kinds", lambda: [index.has_other_kinds(k) for k in range(K_ALL + 1)])
    add("points", index.points_count)
    add("schema", lambda: (index.schema_type(), index.schema()))
    if isinstance(index, TextIndex) and index.scoring:
        for text in TEXTS:
            for term in index.tokenizer.query_terms(text):
                add(f"bm25 {term!r}", lambda term=term: bm25_view(index, term, n))
        add("bm25 lengths", lambda: bm25_view(index, None, n))
    if index.data_type in ("integer", "float", "datetime"):
        for descending in (False, True):
            for start in (None, 0, 3.5, -1e30):
                add(
                    f"order_by {descending} {start}",
                    lambda d=descending, s=start: index.ordered_offsets(d, s),
                )
    if index.data_type in ("keyword", "integer", "bool", "uuid"):
        for step in (1, 2, 3):
            mask = np.zeros(n, dtype=np.bool_)
            mask[::step] = True
            add(f"facet {step}", lambda mask=mask: index.facet_counts(mask))
    return out


def bm25_view(index: TextIndex, term: str | None, n: int) -> list[tuple[int, float, int]]:
    """What BM25 reads of the index, independent of how units are numbered: for a term, each
    (offset, count, unit length) holding it; for None, each unit's (offset, 0, length)."""
    lengths = index.unit_lengths(n)
    if term is None:
        units = np.flatnonzero(lengths)
        counts = np.zeros(len(units))
    else:
        units, counts = index.term_counts(term, n)
    offsets = index.unit_offsets(units)
    return sorted(
        (int(o), float(c), int(lengths[u]))
        for o, c, u in zip(offsets.tolist(), counts.tolist(), units.tolist(), strict=True)
        if o < n
    )


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b)
        )
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def assert_same_answers(a: FieldIndex, b: FieldIndex, sizes: list[int]) -> int:
    """Both indexes answer alike; returns how many answers were masks with a hit."""
    hits = 0
    for n in sizes:
        for (name, x), (_, y) in zip(answers(a, n), answers(b, n), strict=True):
            assert same(x, y), (a.data_type, n, name, x, y)
            hits += isinstance(x, np.ndarray) and x.dtype == np.bool_ and bool(x.any())
    return hits


# --- round trips --------------------------------------------------------------------------


def saved(arrays: Arrays, tmp: Path, mmap: bool) -> Arrays:
    out: Arrays = {}
    tmp.mkdir(exist_ok=True)
    for name, arr in arrays.items():
        path = tmp / f"{name}.npy"
        np.save(path, arr)
        out[name] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    return out


def from_buffer(arrays: Arrays) -> Arrays:
    """Read-only views of one bytes object, as a file reader would produce."""
    blob = b"".join(a.tobytes() for a in arrays.values())
    out: Arrays = {}
    at = 0
    for name, arr in arrays.items():
        out[name] = np.frombuffer(blob, dtype=arr.dtype, count=len(arr), offset=at)
        at += arr.nbytes
        assert not out[name].flags.writeable
    return out


def check_state_shape(meta: dict[str, Any], arrays: Arrays) -> dict[str, Any]:
    """meta survives orjson exactly; arrays are 1-d plain numeric with ASCII names."""
    text = orjson.dumps(meta)
    again: dict[str, Any] = orjson.loads(text)
    assert again == meta
    assert meta["version"] == 1 and isinstance(meta["kind"], str)
    for name, arr in arrays.items():
        assert name.isascii() and name.isidentifier() and len(name) <= 16
        assert isinstance(arr, np.ndarray) and type(arr) is np.ndarray and arr.ndim == 1
        assert arr.dtype.kind in "biuf" and arr.dtype.isnative, (name, arr.dtype)
    return again


def build(key: str, schema: Any, payloads: list[dict[str, Any]]) -> FieldIndex:
    index = make_field_index(key, parse_field_schema(schema))
    for offset, payload in enumerate(payloads):
        if payload is not None:
            index.add(offset, payload)
    return index


def churn(rng: random.Random, payloads: list[Any], steps: int) -> list[tuple[str, int, Any]]:
    """A sequence of writes: rewrites, removals, new offsets past the end."""
    ops: list[tuple[str, int, Any]] = []
    for _ in range(steps):
        offset = rng.randrange(len(payloads) + 40)
        if rng.random() < 0.2:
            ops.append(("remove", offset, None))
        else:
            ops.append(("add", offset, random_payload(rng)))
    return ops


def apply(index: FieldIndex, ops: list[tuple[str, int, Any]]) -> None:
    for op, offset, payload in ops:
        if op == "remove":
            index.remove(offset)
        else:
            index.add(offset, payload)


@pytest.mark.parametrize(("key", "schema"), SCHEMAS, ids=IDS)
def test_round_trip_answers_exactly(key: str, schema: Any, tmp_path: Path) -> None:
    rng = random.Random(f"{key}{schema}")
    payloads: list[Any] = [random_payload(rng) for _ in range(400)]
    for offset in rng.sample(range(400), 40):
        payloads[offset] = None  # never added: reads as a point without the key
    original = build(key, schema, payloads)
    current = [*payloads, *[None] * 40]  # what a fresh build would index
    before = churn(rng, payloads, 150)  # retired entries, dead strings and documents
    apply(original, before)
    meta, arrays = export_field_index(original)
    meta = check_state_shape(meta, arrays)
    assert meta["kind"] == parse_field_schema(schema).data_type

    sizes = [0, 37, 400, 460, 1000]
    parsed = parse_field_schema(schema)
    variants = {
        "load": saved(arrays, tmp_path / "load", mmap=False),
        "mmap": saved(arrays, tmp_path / "mmap", mmap=True),
        "frombuffer": from_buffer(arrays),
    }
    imported: dict[str, FieldIndex] = {}
    for name, given in variants.items():
        index = import_field_index(key, parsed, orjson.loads(orjson.dumps(meta)), given)
        hits = assert_same_answers(original, index, sizes)
        assert hits > 20, (name, hits)  # the comparison is not vacuous
        imported[name] = index

    # Export is canonical: exporting the imported index gives the same state back.
    meta2, arrays2 = export_field_index(imported["frombuffer"])
    assert meta2 == meta and arrays2.keys() == arrays.keys()
    for name in arrays:
        assert same(arrays[name], arrays2[name]), name

    # Writes after import (onto read-only columns) keep the indexes in step with the
    # original and with a fresh build from the final payloads.
    ops = churn(rng, payloads, 300)
    apply(original, ops)
    for op, offset, payload in before + ops:
        current[offset] = payload if op == "add" else None
    fresh = build(key, schema, current)
    given = {name: arr.copy() for name, arr in variants["load"].items()}  # writable input
    for index in imported.values():
        apply(index, ops)
        assert_same_answers(original, index, [440, 500])
    for name, arr in variants["load"].items():
        assert np.array_equal(arr, given[name]), f"the index wrote into its input {name}"
    assert_same_answers(fresh, imported["mmap"], [440])

    # And the state of a mutated imported index round-trips again.
    meta3, arrays3 = export_field_index(imported["mmap"])
    again = import_field_index(key, parsed, check_state_shape(meta3, arrays3), from_buffer(arrays3))
    assert_same_answers(original, again, [440])


@pytest.mark.parametrize("schema", ["keyword", "integer", "geo", "text", "uuid"])
def test_empty_index_round_trips(schema: str) -> None:
    index = make_field_index("f", parse_field_schema(schema))
    meta, arrays = export_field_index(index)
    assert meta["size"] == 0
    back = import_field_index("f", parse_field_schema(schema), meta, from_buffer(arrays))
    assert_same_answers(index, back, [0, 10])
    back.add(5, {"f": "2024-01-01"})
    index.add(5, {"f": "2024-01-01"})
    assert_same_answers(index, back, [10])


# --- damaged states -------------------------------------------------------------------------


def sample_state(schema: Any) -> tuple[dict[str, Any], Arrays]:
    rng = random.Random(7)
    payloads = [random_payload(rng) for _ in range(200)]
    index = build("f", schema, payloads)
    meta, arrays = export_field_index(index)
    return meta, {k: v.copy() for k, v in arrays.items()}


def rejects(schema: Any, meta: dict[str, Any], arrays: Arrays, match: str, key: str = "f") -> None:
    with pytest.raises(ValueError, match=match):
        import_field_index(key, parse_field_schema(schema), meta, arrays)


def test_wrong_kind_version_or_key_is_rejected() -> None:
    meta, arrays = sample_state("keyword")
    rejects("integer", meta, arrays, "cannot load as a 'integer'")
    rejects("uuid", meta, arrays, "cannot load")
    rejects("keyword", {**meta, "version": 2}, arrays, "unknown state version")
    rejects("keyword", {**meta, "version": True}, arrays, "unknown state version")
    rejects("keyword", meta, arrays, "expected 'g'", key="g")
    meta, arrays = sample_state("text")
    rejects({"type": "text", "tokenizer": "prefix"}, meta, arrays, "tokenizer")
    rejects({"type": "text", "lowercase": False}, meta, arrays, "tokenizer")


def test_text_state_of_another_tokenizer_version_is_stale() -> None:
    """Tokens made by other rules: StaleIndexState (the loader rebuilds from payloads, see
    test_text_index_upgrade), raised before anything else is read."""
    meta, arrays = sample_state("text")
    assert meta["tokenizer_version"] == TOKENIZER_VERSION
    older = {k: v for k, v in meta.items() if k != "tokenizer_version"}
    for stale in (
        older,
        {**meta, "tokenizer_version": TOKENIZER_VERSION - 1},
        {**meta, "tokenizer_version": TOKENIZER_VERSION + 1},
        {**meta, "tokenizer_version": str(TOKENIZER_VERSION)},
        {**older, "tokenizer": {"tokenizer": "word"}},  # an old record of another form
    ):
        with pytest.raises(StaleIndexState, match="tokenizer version"):
            import_field_index("f", parse_field_schema("text"), stale, arrays)
    # A current version with another tokenizer record is damage, not staleness.
    with pytest.raises(ValueError, match="built with tokenizer") as caught:
        import_field_index(
            "f", parse_field_schema({"type": "text", "lowercase": False}), meta, arrays
        )
    assert not isinstance(caught.value, StaleIndexState)


def test_geo_state_holding_out_of_range_points_is_stale() -> None:
    """A geo index saved before out-of-range points were left out (Qdrant's index holds only
    `lat` within [-90; 90] and `lon` within [-180; 180]) is rebuilt from the payloads."""
    index = build("g", "geo", [{"g": {"lat": 10, "lon": 20}}, {"g": {"lat": 95, "lon": 0}}])
    assert index.points_count() == 1
    meta, arrays = export_field_index(index)
    import_field_index("g", parse_field_schema("geo"), meta, arrays)
    for name, bad in (("lat", 90.5), ("lon", -180.5)):
        older = {**arrays, name: np.array([bad])}
        with pytest.raises(StaleIndexState, match="outside the valid range"):
            import_field_index("g", parse_field_schema("geo"), meta, older)


@pytest.mark.parametrize("schema", ["keyword", "integer", "float", "geo", "text", "bool"])
def test_missing_truncated_or_mistyped_arrays_are_rejected(schema: str) -> None:
    meta, arrays = sample_state(schema)
    for name in arrays:
        rejects(schema, meta, {k: v for k, v in arrays.items() if k != name}, "missing")
        if len(arrays[name]):
            truncated = {**arrays, name: arrays[name][:-1]}
            rejects(schema, meta, truncated, "entries, expected|must rise")
        wrong = np.zeros(len(arrays[name]), dtype=np.int32)
        rejects(schema, meta, {**arrays, name: wrong}, "must be 1-d")
        rejects(schema, meta, {**arrays, name: wrong.reshape(-1, 1)}, "must be 1-d")
    rejects(schema, meta, {**arrays, "spare": np.zeros(1)}, "unexpected arrays")
    rejects(schema, {**meta, "size": -1}, arrays, "non-negative integer")
    rejects(schema, {**meta, "size": "400"}, arrays, "non-negative integer")
    rejects(schema, {k: v for k, v in meta.items() if k != "entries"}, arrays, "entries")


def test_bad_contents_are_rejected() -> None:
    meta, arrays = sample_state("keyword")
    owners = arrays["owners"].copy()
    owners[3] = meta["size"] + 5
    rejects("keyword", meta, {**arrays, "owners": owners}, "out of range|not sorted")
    owners[3] = -1
    rejects("keyword", meta, {**arrays, "owners": owners}, "out of range|not sorted")
    keys = arrays["keys"].copy()
    keys[-1] = meta["strings"]
    rejects("keyword", meta, {**arrays, "keys": keys}, "string id out of range")
    rejects("keyword", meta, {**arrays, "keys": keys[::-1].copy()}, "out of range|not sorted")
    off = arrays["str_off"].copy()
    off[-1] += 1
    rejects("keyword", meta, {**arrays, "str_off": off}, "must rise")
    off = arrays["str_off"].copy()
    off[1], off[2] = off[2], off[1]
    rejects("keyword", meta, {**arrays, "str_off": off}, "must rise|repeat|UTF-8")
    buf = arrays["str_buf"].copy()
    buf[0] = 0xFF
    rejects("keyword", meta, {**arrays, "str_buf": buf}, "UTF-8")
    other = arrays["other"].copy()
    other[0] = 200
    rejects("keyword", meta, {**arrays, "other": other}, "other kinds out of range")
    count = arrays["count"].copy()
    count[count == 1] = -1
    rejects("keyword", meta, {**arrays, "count": count}, "multi-count")
    empty = arrays["empty"].copy()
    empty[arrays["owners"][0]] = True
    rejects("keyword", meta, {**arrays, "empty": empty}, "marked empty")

    meta, arrays = sample_state("float")
    keys = arrays["keys"].copy()
    keys[0] = np.nan
    rejects("float", meta, {**arrays, "keys": keys}, "NaN")
    meta, arrays = sample_state("geo")
    lon = arrays["lon"].copy()
    lon[0] = np.inf
    rejects("geo", meta, {**arrays, "lon": lon}, "not finite")
    meta, arrays = sample_state("bool")
    keys = arrays["keys"].copy()
    keys[-1] = 2
    rejects("bool", meta, {**arrays, "keys": keys}, "bool key")

    meta, arrays = sample_state("text")
    doc_at = arrays["doc_at"].copy()
    doc_at[0] = meta["size"]
    rejects("text", meta, {**arrays, "doc_at": doc_at}, "document offset out of range")
    words = arrays["word_ids"].copy()
    words[0] = meta["vocab"]
    rejects("text", meta, {**arrays, "word_ids": words}, "word id out of range")
    start = arrays["word_start"].copy()
    start[1] = len(arrays["word_ids"]) + 1
    rejects("text", meta, {**arrays, "word_start": start}, "must rise")
    rejects("text", {**meta, "vocab": meta["vocab"] + 1}, arrays, "vocab_off")
    rejects("text", {**meta, "docs": meta["docs"] - 1}, arrays, "doc_at")
    keys = arrays["keys"].copy()
    keys[-1] = meta["vocab"]
    rejects("text", meta, {**arrays, "keys": keys}, "term id out of range")
    owners = arrays["owners"].copy()
    owners[0] = meta["docs"]
    rejects("text", meta, {**arrays, "owners": owners}, "owner out of range")


# --- timing (run as a script) ----------------------------------------------------------------


def benchmark(points: int = 100_000) -> None:
    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(5000)]
    payloads = [
        {"kw": f"cat-{rng.randrange(1000)}", "tag": f"user-{i}", "n": rng.randrange(-10**6, 10**6),
         "ns": [rng.randrange(100) for _ in range(rng.randrange(4))],
         "txt": " ".join(rng.choices(vocab, k=8))}
        for i in range(points)
    ]  # fmt: skip
    print(f"{points} points, seconds; rebuild and import best of 3")
    for key, schema in (("kw", "keyword"), ("tag", "keyword"), ("n", "integer"),
                        ("ns", "integer"), ("txt", "text")):  # fmt: skip
        parsed = parse_field_schema(schema)

        def timed(run: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
            times, result = [], None
            for _ in range(repeat):
                t0 = time.perf_counter()
                result = run()
                times.append(time.perf_counter() - t0)
            return min(times), result

        def rebuild(key: str = key, parsed: Any = parsed) -> FieldIndex:
            index = make_field_index(key, parsed)
            for offset, payload in enumerate(payloads):
                index.add(offset, payload)
            return index

        t_build, index = timed(rebuild)
        # the first export also merges what the adds left pending
        t_first, _ = timed(lambda index=index: export_field_index(index), 1)
        t_export, (meta, arrays) = timed(lambda index=index: export_field_index(index))
        blob = from_buffer(arrays)
        t_import, _ = timed(
            lambda key=key, parsed=parsed, meta=meta, blob=blob: import_field_index(
                key, parsed, meta, blob
            )
        )
        size = sum(a.nbytes for a in arrays.values())
        print(
            f"{key:4} {schema:8} rebuild {t_build:.3f}  export {t_export:.4f} "
            f"(first {t_first:.4f})  import {t_import:.4f}  "
            f"rebuild/(export+import) {t_build / (t_export + t_import):.0f}x  "
            f"state {size / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    benchmark(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
