"""`POST /collections/{name}/facet` through the official client, against local mode.

The same points go to our server (or whatever ``client`` talks to) and to qdrant-client's
local mode (``QdrantClient(":memory:")``); every facet request must answer the same hits in
the same order (count descending, then value ascending). Local mode counts whatever values it
finds under the key and needs no index, so the data keeps each faceted key to one type; what
an index of one type does with values of another type is checked by hand, as is Qdrant's 400
for a key without a keyword, integer (lookup), bool or uuid index.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import LOCAL, CollectionFactory

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")

DIM = 2
INDEXES: dict[str, Any] = {
    "kw": models.PayloadSchemaType.KEYWORD,
    "num": models.PayloadSchemaType.INTEGER,
    "flag": models.PayloadSchemaType.BOOL,
    "uid": models.PayloadSchemaType.UUID,
    "nested.kw": models.PayloadSchemaType.KEYWORD,
    "arr[].n": models.PayloadSchemaType.INTEGER,
    "f": models.PayloadSchemaType.FLOAT,
    "city": models.PayloadSchemaType.KEYWORD,
}
WORDS = ["apple", "Banana", "cherry", "date", "elder", "fig", "grape", "ünïcode", "", "zeta"]
UUIDS = [uuid.UUID(int=random.Random(i).getrandbits(128)) for i in range(6)]


def _uuid_spelling(u: uuid.UUID, rng: random.Random) -> str:
    return rng.choice([str(u), str(u).upper(), u.hex, "{" + str(u) + "}"])


def _maybe_list(rng: random.Random, draw: Any) -> Any:
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.15:
        return []
    if roll < 0.45:
        values = [draw() for _ in range(rng.randint(1, 4))]
        return values + values[:1]  # a repeated value counts once per point
    return draw()


def make_payload(rng: random.Random) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    fields = {
        "kw": lambda: rng.choice(WORDS),
        "num": lambda: rng.randint(-3, 8) * (10**12 if rng.random() < 0.1 else 1),
        "flag": lambda: rng.random() < 0.3,
        "uid": lambda: _uuid_spelling(rng.choice(UUIDS), rng),
        "city": lambda: rng.choice(["Berlin", "Paris", "Oslo"]),
    }
    for key, draw in fields.items():
        if rng.random() < 0.85:
            payload[key] = _maybe_list(rng, draw)
    if rng.random() < 0.7:
        payload["nested"] = {"kw": _maybe_list(rng, lambda: rng.choice(WORDS[:4]))}
    if rng.random() < 0.7:
        payload["arr"] = [{"n": rng.randint(0, 5)} for _ in range(rng.randint(0, 3))]
    payload["f"] = rng.random()
    payload["plain"] = rng.choice(["x", "y"])
    return payload


def fill(client: QdrantClient, name: str, seed: int = 7, n: int = 300, batch: int = 100) -> None:
    rng = random.Random(seed)
    points = [
        models.PointStruct(id=i, vector=[1.0, float(i % 7)], payload=make_payload(rng))
        for i in range(n)
    ]
    for start in range(0, n, batch):
        client.upsert(name, points=points[start : start + batch], wait=True)
        wait_green(client, name)
    # Index maintenance: overwrite, set, delete payloads and delete points.
    client.overwrite_payload(name, payload={"kw": "fig", "num": 1}, points=[0, 1, 2], wait=True)
    client.set_payload(name, payload={"flag": True, "uid": str(UUIDS[0])}, points=[3, 4], wait=True)
    client.delete_payload(name, keys=["kw", "num"], points=[5, 6], wait=True)
    client.delete(name, points_selector=models.PointIdsList(points=[7, 8, 9]), wait=True)


@pytest.fixture(scope="module")
def local() -> Iterator[QdrantClient]:
    qc = QdrantClient(":memory:")
    name = "facets"
    qc.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance="Dot"))
    fill(qc, name)
    try:
        yield qc
    finally:
        qc.close()


def wait_green(client: QdrantClient, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get_collection(name).status != models.CollectionStatus.GREEN:
        assert time.monotonic() < deadline, "the optimizer did not finish"
        time.sleep(0.02)


@pytest.fixture(params=["one_segment", "segments"])
def facets(client: QdrantClient, collection: CollectionFactory, request: Any) -> str:
    """The data in one appendable segment, or (with a tiny indexing threshold, so the optimizer
    seals and indexes each batch) spread over several segments, edits copied on write."""
    optimizers = None
    if request.param == "segments":
        optimizers = models.OptimizersConfigDiff(indexing_threshold=1, default_segment_number=4)
    name = collection(
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        optimizers_config=optimizers,
    )
    for key, schema in INDEXES.items():
        client.create_payload_index(name, key, field_schema=schema, wait=True)
    fill(client, name)
    if request.param == "segments" and not LOCAL:
        assert (client.get_collection(name).segments_count or 0) > 1
    return name


def hits(response: models.FacetResponse) -> list[tuple[Any, int]]:
    return [(h.value, h.count) for h in response.hits]


def same(
    client: QdrantClient, name: str, local: QdrantClient, key: str, **kwargs: Any
) -> list[tuple[Any, int]]:
    exact = kwargs.pop("exact", False)
    ours = hits(client.facet(name, key, exact=exact, **kwargs))
    theirs = hits(local.facet("facets", key, **kwargs))
    assert ours == theirs, (key, kwargs)
    return ours


@pytest.mark.parametrize("key", ["kw", "num", "flag", "uid", "nested.kw", "arr[].n", "city"])
@pytest.mark.parametrize("exact", [False, True])
def test_facet_matches_local_mode(
    client: QdrantClient, facets: str, local: QdrantClient, key: str, exact: bool
) -> None:
    got = same(client, facets, local, key, exact=exact)
    assert got, key
    for limit in (1, 3, 50):
        assert len(same(client, facets, local, key, limit=limit, exact=exact)) <= limit


FILTERS = [
    models.Filter(must=[models.FieldCondition(key="f", range=models.Range(lt=0.5))]),
    models.Filter(must_not=[models.FieldCondition(key="kw", match=models.MatchValue(value="fig"))]),
    models.Filter(
        should=[
            models.FieldCondition(key="plain", match=models.MatchValue(value="x")),
            models.FieldCondition(key="flag", match=models.MatchValue(value=True)),
        ]
    ),
    models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="num"))]),
    models.Filter(must=[models.HasIdCondition(has_id=list(range(0, 300, 3)))]),
    models.Filter(
        must=[models.FieldCondition(key="num", range=models.Range(gte=0, lte=4))],
        must_not=[models.FieldCondition(key="plain", match=models.MatchValue(value="y"))],
    ),
    models.Filter(must=[models.FieldCondition(key="kw", match=models.MatchValue(value="nope"))]),
]


@pytest.mark.parametrize("which", range(len(FILTERS)))
@pytest.mark.parametrize("key", ["kw", "num", "flag", "uid", "arr[].n"])
def test_facet_with_filter_matches_local_mode(
    client: QdrantClient, facets: str, local: QdrantClient, key: str, which: int
) -> None:
    for exact in (False, True):
        same(client, facets, local, key, facet_filter=FILTERS[which], limit=20, exact=exact)


def test_facet_order_and_default_limit(client: QdrantClient, collection: CollectionFactory) -> None:
    name = collection(vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    client.create_payload_index(name, "k", field_schema="keyword", wait=True)
    words = [f"w{i:02d}" for i in range(14)]
    counts = {w: 1 + (i % 3) for i, w in enumerate(words)}  # many ties: value order decides
    points, pid = [], 0
    for w, c in counts.items():
        for _ in range(c):
            points.append(models.PointStruct(id=pid, vector=[1.0, 0.0], payload={"k": w}))
            pid += 1
    client.upsert(name, points=points, wait=True)
    got = hits(client.facet(name, "k"))
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert got == want
    assert len(hits(client.facet(name, "k", limit=100))) == 14


@pytest.mark.server_only(reason="local mode counts values of every type")
def test_index_of_one_type_counts_only_its_values(
    client: QdrantClient, collection: CollectionFactory
) -> None:
    """Qdrant reads one payload index: values of other types under the key are not counted."""
    name = collection(vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    payloads: list[dict[str, Any]] = [
        {"m": "a", "i": 1},
        {"m": ["a", 1, 1.5, True, None], "i": [1, 2, "2", 2.0, False]},
        {"m": 7, "i": "x"},
        {"m": {"a": 1}, "i": 2},
        {"m": "b"},
        {},
    ]
    client.upsert(
        name,
        points=[
            models.PointStruct(id=i, vector=[1.0, 0.0], payload=p) for i, p in enumerate(payloads)
        ],
        wait=True,
    )
    client.create_payload_index(name, "m", field_schema="keyword", wait=True)
    client.create_payload_index(name, "i", field_schema="integer", wait=True)
    assert hits(client.facet(name, "m")) == [("a", 2), ("b", 1)]
    assert hits(client.facet(name, "i")) == [(1, 2), (2, 2)]


@pytest.mark.server_only(reason="local mode facets without an index")
@pytest.mark.parametrize(
    "schema",
    [
        None,
        models.PayloadSchemaType.FLOAT,
        models.PayloadSchemaType.TEXT,
        models.PayloadSchemaType.DATETIME,
        models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, lookup=False, range=True),
    ],
)
def test_facet_without_a_suitable_index_is_400(
    client: QdrantClient, collection: CollectionFactory, expect_error: Any, schema: Any
) -> None:
    name = collection(vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    client.upsert(
        name, points=[models.PointStruct(id=1, vector=[1.0, 0.0], payload={"k": 1})], wait=True
    )
    if schema is not None:
        client.create_payload_index(name, "k", field_schema=schema, wait=True)
    with expect_error(400, "No appropriate index for faceting: `k`"):
        client.facet(name, "k")
    with expect_error(400, "No appropriate index for faceting: `k`"):
        client.facet(name, "k", exact=True)


@pytest.mark.server_only(reason="the wire")
def test_facet_wire(
    client: QdrantClient, collection: CollectionFactory, http: httpx.Client
) -> None:
    name = collection(vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    client.create_payload_index(name, "k", field_schema="keyword", wait=True)
    client.upsert(
        name,
        points=[
            models.PointStruct(id=i, vector=[1.0, 0.0], payload={"k": "ab"[i % 2]})
            for i in range(5)
        ],
        wait=True,
    )
    r = http.post(f"/collections/{name}/facet", json={"key": "k"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["result"] == {"hits": [{"value": "a", "count": 3}, {"value": "b", "count": 2}]}
    r = http.post(f"/collections/{name}/facet", json={"key": "k", "limit": 0})
    assert r.status_code == 422, r.text
    assert "limit" in r.json()["status"]["error"]
    r = http.post(f"/collections/{name}/facet", json={"limit": 3})
    assert r.status_code == 400, r.text
    assert "key" in r.json()["status"]["error"]
    r = http.post(f"/collections/{name}/facet", json={"key": "k", "filter": {"must": [{"x": 1}]}})
    assert r.status_code == 400, r.text
    r = http.post("/collections/no_such_collection_facet/facet", json={"key": "k"})
    assert r.status_code == 404, r.text


@pytest.mark.server_only(reason="Qdrant's shortcut for a collection without points")
def test_empty_collection_without_index(
    client: QdrantClient, collection: CollectionFactory, expect_error: Any
) -> None:
    """Qdrant's approximate facet skips segments without points before it looks for the
    index; its exact facet does not."""
    name = collection(vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    assert hits(client.facet(name, "k")) == []
    with expect_error(400, "No appropriate index for faceting"):
        client.facet(name, "k", exact=True)
