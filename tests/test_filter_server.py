"""Randomised differential test of filters through our server, against local mode.

Seeded random points (ids numeric and UUID; payloads with arrays, nested objects, arrays of
objects, nulls, missing keys, empty arrays, numbers, strings, booleans, geo points, datetimes
with and without zone, and values of the "wrong" type under every key) go to our server over
REST and to qdrant-client's local mode (``QdrantClient(":memory:")``). A few hundred random
nested filters then run through both, as scroll (every matching id, in id order, in one page
and page by page) and as exact count, and must agree exactly.

Three rounds on the same collection:

1. no payload indexes;
2. after creating an index on most keys (every type: keyword, integer, float, bool,
   datetime, geo, uuid, text), so that conditions are answered from indexes;
3. after editing through every write path (set, overwrite, delete and clear payload, by ids
   and by filter; re-upserts; deletes by ids and by filter), so the indexes had to follow.

The server's collection has a tiny indexing threshold, so its points are spread over several
segments (sealed and indexed by the optimizer as they arrive) and edits are copied on write.
"""

from __future__ import annotations

import random
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import LOCAL, CollectionFactory
from tests.index_semantics import index_rule_differs

SEED = 20250117
N_POINTS = 500
FILTERS_PER_ROUND = 130
BATCH = 100

WORDS = ["red", "green", "blue", "teal", "Red", "night", "sky", "moon"]
UUIDS = [str(uuid.UUID(int=(i + 3) * 104729 + (i << 90))) for i in range(5)]
KEYS = [
    "color", "size", "price", "ok", "when", "loc", "tags", "desc", "uid", "meta.rank",
    "meta.label", "meta.inner.deep", "items[].sku", "items[].qty", "nothing", "mixed", "items",
]  # fmt: skip
INDEXES: dict[str, Any] = {
    "color": "keyword",
    "size": "integer",
    "price": "float",
    "ok": "bool",
    "when": "datetime",
    "loc": "geo",
    "tags": "keyword",
    # positions kept: local mode matches `phrase` on payloads, and Qdrant's text index
    # without `phrase_matching` matches nothing (tests/test_full_text.py)
    "desc": models.TextIndexParams(type=models.TextIndexType.TEXT, phrase_matching=True),
    "uid": "uuid",
    "meta.rank": "integer",
    "meta.label": "keyword",
    "items[].sku": "keyword",
    "items[].qty": "integer",
    "mixed": "float",
}


# Values each key commonly holds (so that matches often select something), and number spans.
TYPICAL: dict[str, list[Any]] = {
    "color": [*WORDS[:5], 3], "size": [*range(-5, 15), "6", True], "ok": [True, False, 0],
    "uid": [*UUIDS, "nope"], "tags": WORDS, "meta.label": WORDS[:3], "meta.rank": list(range(10)),
    "items[].sku": ["a1", "b2", "c3", 4], "items[].qty": [*range(6), "3"], "sku": ["a1", "b2", 4],
    "qty": list(range(6)), "attrs.c": WORDS[:3], "mixed": [*WORDS, *range(-3, 8), True],
}  # fmt: skip
SPANS = {
    "size": (-5, 15), "price": (0, 100), "meta.rank": (0, 10), "items[].qty": (0, 6),
    "qty": (0, 6), "mixed": (-3, 8),
}  # fmt: skip


# --- data ---------------------------------------------------------------------------------


class Gen:
    """Random payloads and filters from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def maybe(self, make: Callable[[], Any]) -> Any:
        """Usually a value; now and then null, an empty array, or an array of values."""
        r = self.rng.random()
        if r < 0.07:
            return None
        if r < 0.12:
            return []
        if r < 0.3:
            return [make() for _ in range(self.rng.randrange(1, 4))]
        return make()

    def datetime_text(self, valid: bool = False) -> str:
        r = self.rng
        month, day, hour = r.randrange(1, 13), r.randrange(1, 29), r.randrange(24)
        base = f"2024-{month:02d}-{day:02d}"
        return r.choice(
            [
                f"{base}T{hour:02d}:15:00Z",
                f"{base}T{hour:02d}:15:00+02:00",
                f"{base} {hour:02d}:15:00",
                f"{base}T{hour:02d}:15:00.250-05:30",
                base,
                *([] if valid else ["not a date"]),
            ]
        )

    def geo(self) -> Any:
        r = self.rng
        point = {"lat": round(r.uniform(40, 50), 4), "lon": round(r.uniform(0, 10), 4)}
        return r.choice([point, point, point, {"lat": 45.0}, "45,5"])

    def scalar(self) -> Any:
        r = self.rng
        return r.choice([r.choice(WORDS), r.randrange(-3, 8), r.random() * 8, r.random() < 0.5])

    def item(self) -> dict[str, Any]:
        r = self.rng
        out: dict[str, Any] = {"sku": r.choice(["a1", "b2", "c3", 4])}
        if r.random() < 0.8:
            out["qty"] = r.choice([r.randrange(0, 6), 2.5, "3"])
        if r.random() < 0.5:
            out["attrs"] = {"c": self.maybe(lambda: r.choice(WORDS[:3]))}
        return out

    def payload(self) -> dict[str, Any]:
        r = self.rng
        fields: dict[str, Callable[[], Any]] = {
            "color": lambda: self.maybe(lambda: r.choice([*WORDS[:5], 3])),
            "size": lambda: self.maybe(lambda: r.choice([r.randrange(-5, 15), 4.5, "6", True])),
            "price": lambda: self.maybe(lambda: r.choice([r.random() * 100, r.randrange(100)])),
            "ok": lambda: self.maybe(lambda: r.choice([True, False, 0, "true"])),
            "when": lambda: self.maybe(self.datetime_text),
            "loc": lambda: self.maybe(self.geo),
            "tags": lambda: [r.choice(WORDS) for _ in range(r.randrange(0, 4))],
            "desc": lambda: " ".join(r.choice(WORDS).lower() for _ in range(r.randrange(0, 5))),
            # only canonical spellings: a uuid index matches every spelling of a UUID (as
            # Qdrant's), local mode compares strings (test_docs_docsf covers the other ones)
            "uid": lambda: self.maybe(lambda: r.choice([*UUIDS, UUIDS[1], "nope"])),
            "meta": lambda: {
                "rank": self.maybe(lambda: r.randrange(0, 10)),
                "label": r.choice([*WORDS[:3], None]),
                "inner": r.choice([{"deep": self.maybe(self.scalar)}, {}, None, [1, 2]]),
            },
            "items": lambda: [self.item() for _ in range(r.randrange(0, 4))],
            "nothing": lambda: None,
            "mixed": lambda: self.maybe(self.scalar),
        }
        return {k: make() for k, make in fields.items() if r.random() < 0.85}

    # --- filters --------------------------------------------------------------------------

    def bounds(self, make: Callable[[], Any]) -> dict[str, Any]:
        keys = self.rng.sample(["gt", "gte", "lt", "lte"], self.rng.randrange(1, 3))
        return {k: make() for k in keys}

    def field_condition(self, key: str | None = None, inner: bool = False) -> dict[str, Any]:
        r = self.rng
        kind = r.choices(
            ["match", "any", "except", "text", "range", "dt", "geo", "count", "empty", "null"],
            weights=[20, 8, 6, 6, 16, 6, 10, 6, 8, 6],
        )[0]
        if key is None:
            natural = {
                "match": ["color", "size", "ok", "uid", "tags", "meta.label", "items[].sku"],
                "any": ["color", "size", "tags", "items[].sku", "meta.rank"],
                "except": ["color", "size", "tags", "mixed"],
                "text": ["desc", "color", "meta.label"],
                "range": ["size", "price", "meta.rank", "items[].qty", "mixed"],
                "dt": ["when"],
                "geo": ["loc"],
            }.get(kind, KEYS)
            key = r.choice(natural if r.random() < 0.8 else KEYS)
        typical = TYPICAL.get(key, [])
        if r.random() < 0.2 or not typical:
            typical = [*WORDS[:5], "a1", *UUIDS[:2], *range(-3, 10), True, False]
        if kind == "match":
            return {"key": key, "match": {"value": r.choice(typical)}}
        if kind in ("any", "except"):
            # lists of strings or of integers only (booleans have no `any`)
            kind_of = type(r.choice([v for v in typical if not isinstance(v, bool)] or [0]))
            same = [v for v in typical if type(v) is kind_of] or list(range(5))
            return {"key": key, "match": {kind: r.sample(same, min(len(same), r.randrange(4)))}}
        if kind == "text":
            op = r.choice(["text", "text_any", "phrase"])
            words = " ".join(r.choice(WORDS[:6]).lower() for _ in range(r.randrange(1, 3)))
            return {"key": key, "match": {op: words}}
        if kind == "range":
            low, high = SPANS.get(key, (-2, 12))
            number = lambda: r.choice([r.randrange(low, high), round(r.uniform(low, high), 2)])  # noqa: E731
            return {"key": key, "range": self.bounds(number)}
        if kind == "dt":
            return {"key": key, "range": self.bounds(lambda: self.datetime_text(valid=True))}
        if kind == "geo":
            return self.geo_condition(key)
        if kind == "count":
            return {"key": key, "values_count": self.bounds(lambda: r.randrange(0, 4))}
        which = "is_empty" if kind == "empty" else "is_null"
        if inner or r.random() < 0.5:
            return {which: {"key": key}}
        return {"key": key, which: r.random() < 0.5}

    def geo_condition(self, key: str) -> dict[str, Any]:
        r = self.rng
        lat, lon = r.uniform(40, 50), r.uniform(0, 10)
        shape = r.choice(["radius", "box", "polygon", "holed"])
        if shape == "radius":
            radius = r.uniform(5e4, 5e5)
            return {
                "key": key,
                "geo_radius": {"center": {"lat": lat, "lon": lon}, "radius": radius},
            }
        if shape == "box":
            top_left = {"lat": lat + r.uniform(1, 4), "lon": lon - r.uniform(1, 4)}
            bottom_right = {"lat": lat - r.uniform(1, 4), "lon": lon + r.uniform(1, 4)}
            box = {"top_left": top_left, "bottom_right": bottom_right}
            return {"key": key, "geo_bounding_box": box}

        def ring(size: float) -> list[dict[str, float]]:
            corners = [(-1, -1), (-1, 1), (1, 1.5), (1, -1), (-1, -1)]
            return [{"lat": lat + a * size, "lon": lon + b * size} for a, b in corners]

        polygon: dict[str, Any] = {"exterior": {"points": ring(r.uniform(1.5, 4))}}
        if shape == "holed":
            polygon["interiors"] = [{"points": ring(r.uniform(0.3, 1))}]
        return {"key": key, "geo_polygon": polygon}

    def condition(self, depth: int, ids: list[Any]) -> dict[str, Any]:
        r = self.rng
        roll = r.random()
        if depth < 3 and roll < 0.2:
            return self.filter(depth + 1, ids)
        if depth < 3 and roll < 0.26:
            inner = self.filter(3, ids, nested_keys=["sku", "qty", "attrs.c"])
            return {"nested": {"key": "items", "filter": inner}}
        roll = r.random()
        if roll < 0.04:
            return {"has_id": r.sample(ids, r.choice([3, 50, 300]))}
        if roll < 0.07:
            return {"has_vector": r.choice(["v", "w"])}
        return self.field_condition()

    def filter(
        self, depth: int, ids: list[Any], nested_keys: list[str] | None = None
    ) -> dict[str, Any]:
        r = self.rng

        def cond() -> dict[str, Any]:
            if nested_keys:
                return self.field_condition(r.choice(nested_keys), inner=True)
            return self.condition(depth, ids)

        out: dict[str, Any] = {}
        for clause in r.sample(["must", "should", "must_not"], r.choice([1, 1, 2, 3])):
            count = 0 if r.random() < 0.03 else r.choice([1, 1, 2, 3])
            conds = [cond() for _ in range(count)]
            # a single condition may stand where a list is expected
            out[clause] = conds[0] if count == 1 and r.random() < 0.2 else conds
        if r.random() < 0.1:
            conds = [cond() for _ in range(r.randrange(1, 4))]
            out["min_should"] = {"conditions": conds, "min_count": r.randrange(1, 3)}
        return out


# --- the two sides --------------------------------------------------------------------------


def point_id(i: int) -> int | str:
    return i if i % 4 else str(uuid.UUID(int=(i * 2654435761) << 64 | i))


def make_points(gen: Gen, ids: list[int]) -> list[models.PointStruct]:
    points = []
    for i in ids:
        vector: dict[str, list[float]] = {"v": [1.0, float(i % 5)]}
        if gen.rng.random() < 0.6:
            vector["w"] = [0.5, 1.0]
        points.append(models.PointStruct(id=point_id(i), vector=vector, payload=gen.payload()))
    return points


class Pair:
    """The same operations applied to our server and to local mode."""

    def __init__(self, ours: QdrantClient, ours_name: str, local: QdrantClient) -> None:
        self.sides = [(ours, ours_name), (local, "c")]

    def call(self, method: str, *args: Any, **kwargs: Any) -> None:
        """`client.<method>(collection, *args, **kwargs, wait=True)` on both sides."""
        for client, name in self.sides:
            getattr(client, method)(name, *args, wait=True, **kwargs)

    def upsert(self, points: list[models.PointStruct]) -> None:
        for start in range(0, len(points), BATCH):
            self.call("upsert", points=points[start : start + BATCH])

    def live_ids(self) -> list[Any]:
        client, name = self.sides[1]
        return [p.id for p in client.scroll(name, limit=N_POINTS * 2, with_payload=False)[0]]

    def check(self, raw: dict[str, Any], pages: bool) -> int:
        filt = models.Filter.model_validate(raw)
        answers = []
        for client, name in self.sides:
            points, _ = client.scroll(
                name, scroll_filter=filt, limit=N_POINTS * 2, with_payload=False
            )
            ids = [str(p.id) for p in points]
            count = client.count(name, count_filter=filt, exact=True).count
            paged = scroll_pages(client, name, filt) if pages else None
            answers.append((ids, count, paged))
        (ids, count, paged), (want_ids, want_count, want_paged) = answers
        assert ids == want_ids, raw
        assert count == want_count == len(want_ids), raw
        assert paged == want_paged, raw
        return count


def scroll_pages(client: QdrantClient, name: str, filt: models.Filter) -> list[Any]:
    pages: list[Any] = []
    offset = None
    while True:
        points, offset = client.scroll(
            name, scroll_filter=filt, limit=37, offset=offset, with_payload=False
        )
        pages.append(([str(p.id) for p in points], None if offset is None else str(offset)))
        if offset is None:
            return pages


def wait_green(client: QdrantClient, name: str, timeout: float = 30.0) -> None:
    if LOCAL:
        return
    deadline = time.monotonic() + timeout
    while client.get_collection(name).status != models.CollectionStatus.GREEN:
        assert time.monotonic() < deadline, "the optimizer did not finish"
        time.sleep(0.02)


@pytest.fixture
def local() -> Iterator[QdrantClient]:
    qc = QdrantClient(":memory:")
    try:
        yield qc
    finally:
        qc.close()


def run_round(
    pair: Pair, gen: Gen, ids: list[Any], label: str, indexes: dict[str, Any] | None = None
) -> None:
    live = pair.check({}, pages=True)
    selective = 0
    for k in range(FILTERS_PER_ROUND):
        raw = gen.filter(0, ids)
        while index_rule_differs(raw, indexes):  # Qdrant's rule there is not local mode's
            raw = gen.filter(0, ids)
        count = pair.check(raw, pages=k % 10 == 0)
        selective += 0 < count < live
    # most filters select something but not everything, so the comparison says something
    assert selective > FILTERS_PER_ROUND // 2, label


def edit(pair: Pair, gen: Gen, ids: list[Any]) -> None:
    """Every write path that changes payloads, twice over."""
    r = gen.rng
    for _ in range(2):
        chosen = r.sample(pair.live_ids(), 40)
        for pid in chosen[:10]:
            payload = {k: v for k, v in gen.payload().items() if r.random() < 0.4}
            pair.call("set_payload", payload, points=[pid])
        for pid in chosen[10:20]:
            pair.call("overwrite_payload", gen.payload(), points=[pid])
        keys = r.sample(["color", "size", "meta", "loc", "tags", "items", "when"], 3)
        pair.call("delete_payload", keys, points=chosen[20:30])
        pair.call("clear_payload", points_selector=chosen[30:35])
        raw = gen.filter(1, ids)
        while index_rule_differs(raw, INDEXES):  # Qdrant's rule there is not local mode's
            raw = gen.filter(1, ids)
        selector = models.FilterSelector(filter=models.Filter.model_validate(raw))
        patch = {"size": r.randrange(20), "color": r.choice(WORDS)}
        pair.call("set_payload", patch, points=selector)
    raw = {"must": [{"key": "price", "range": {"gt": 97.0}}]}
    pair.call("delete", points_selector=models.FilterSelector(filter=models.Filter(**raw)))
    pair.call("delete", points_selector=r.sample(pair.live_ids(), 15))
    again = [i for i in r.sample(ids, 30) if isinstance(i, int)]
    pair.upsert(make_points(gen, again))


def test_random_filters_through_the_server(
    client: QdrantClient, collection: CollectionFactory, local: QdrantClient
) -> None:
    gen = Gen(SEED)
    vectors = {
        "v": models.VectorParams(size=2, distance=models.Distance.DOT),
        "w": models.VectorParams(size=2, distance=models.Distance.DOT),
    }
    name = collection(
        vectors_config=vectors,
        optimizers_config=models.OptimizersConfigDiff(
            indexing_threshold=1, default_segment_number=4
        ),
    )
    local.create_collection("c", vectors_config=vectors)
    pair = Pair(client, name, local)
    numbers = list(range(N_POINTS))
    pair.upsert(make_points(gen, numbers))
    ids = [point_id(i) for i in numbers]
    pair.call("delete", points_selector=ids[::23])
    wait_green(client, name)

    run_round(pair, gen, ids, "no indexes")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for key, schema in INDEXES.items():
            pair.call("create_payload_index", key, schema)
    if not LOCAL:
        assert set(client.get_collection(name).payload_schema) == set(INDEXES)
    run_round(pair, gen, ids, "indexes", INDEXES)

    edit(pair, gen, ids)
    wait_green(client, name)
    if not LOCAL:
        assert (client.get_collection(name).segments_count or 0) > 1
    run_round(pair, gen, ids, "indexes after edits", INDEXES)


def test_scroll_pages_over_segments_in_id_order(
    client: QdrantClient, collection: CollectionFactory, local: QdrantClient
) -> None:
    """Points written in id order (numbers, then UUIDs) over several segments, then partly
    rewritten (so the newest segment is out of id order): pages agree with local mode."""
    gen = Gen(SEED + 1)
    vectors = {"v": models.VectorParams(size=2, distance=models.Distance.DOT)}
    name = collection(
        vectors_config=vectors,
        optimizers_config=models.OptimizersConfigDiff(
            indexing_threshold=1, default_segment_number=4
        ),
    )
    local.create_collection("c", vectors_config=vectors)
    pair = Pair(client, name, local)
    ids: list[Any] = [*range(0, 600, 2), *sorted(str(uuid.UUID(int=7 * i + 1)) for i in range(60))]
    points = [
        models.PointStruct(id=i, vector={"v": [1.0, 0.5]}, payload=gen.payload()) for i in ids
    ]
    pair.upsert(points)
    wait_green(client, name)
    pair.call("delete", points_selector=ids[5:400:7])
    again = [
        models.PointStruct(id=p.id, vector=p.vector, payload=gen.payload()) for p in points[::9]
    ]
    pair.upsert(again[::-1])
    pair.upsert([models.PointStruct(id=1, vector={"v": [0.0, 1.0]}, payload=gen.payload())])
    if not LOCAL:
        assert (client.get_collection(name).segments_count or 0) > 1
    pair.check({}, pages=True)
    for _ in range(30):
        pair.check(gen.filter(1, ids), pages=True)
