"""Payload indexes with `nested` (each object of an array indexed as its own entry), and text
indexes taking a point's strings together, against Qdrant Edge.

With `nested: "offers"` an index on `offers[].kind` treats each element of `offers` as its own
entry: `is_empty` matches a point when one of its elements lacks the field, full-text
conditions and BM25 take one element's strings at a time (a point scores its best element).
Without it a text index takes all of a point's strings together. The same points, edits and
conditions go to a Tessera server (through qdrant-client) and to an Edge shard.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import ServerProcess, assert_clean_log, make_grpc_client, module_server

edge = pytest.importorskip("qdrant_edge")

WORDS = ["cat", "dog", "bird", "fish", "red", "blue", "the", "a"]


def random_payloads(seed: int, n: int) -> dict[int, dict[str, Any]]:
    rng = random.Random(seed)

    def text() -> Any:
        words = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4)))  # noqa: E731
        return [words() for _ in range(rng.randint(0, 2))] if rng.random() < 0.2 else words()

    def element() -> Any:
        r = rng.random()
        if r < 0.05:
            return rng.choice([5, "x", None])
        out: dict[str, Any] = {}
        for key, make in (
            ("kind", lambda: rng.choice(["a", "b", "c", None, ["a", "c"], []])),
            ("price", lambda: rng.choice([1, 5, 10, None, [2, 20]])),
            ("title", text),
        ):
            if rng.random() < 0.75:
                out[key] = make()
        return out

    payloads: dict[int, dict[str, Any]] = {}
    for i in range(n):
        r = rng.random()
        if r < 0.08:
            payloads[i] = {}
        elif r < 0.12:
            payloads[i] = {"offers": []}
        elif r < 0.16:
            payloads[i] = {"offers": element()}  # an object, not an array
        else:
            payloads[i] = {"offers": [element() for _ in range(rng.randint(1, 4))]}
    return payloads


CONDITIONS: list[dict[str, Any]] = [
    {"key": "offers[].kind", "match": {"value": "a"}},
    {"key": "offers[].kind", "match": {"any": ["b", "c"]}},
    {"key": "offers[].kind", "match": {"except": ["a"]}},
    {"key": "offers[].price", "range": {"gt": 4}},
    {"key": "offers[].price", "range": {"lte": 5}},
    {"key": "offers[].kind", "values_count": {"gte": 2}},
    {"is_empty": {"key": "offers[].kind"}},
    {"is_empty": {"key": "offers[].price"}},
    {"is_empty": {"key": "offers[].title"}},
    {"is_null": {"key": "offers[].kind"}},
    {"key": "offers[].title", "match": {"text": "cat"}},
    {"key": "offers[].title", "match": {"text": "cat dog"}},
    {"key": "offers[].title", "match": {"text": "red fish blue"}},
    {"key": "offers[].title", "match": {"text_any": "bird red"}},
    {"key": "offers[].title", "match": {"phrase": "cat dog"}},
]


def edge_condition(raw: dict[str, Any]) -> Any:
    if "is_empty" in raw:
        return edge.IsEmptyCondition(raw["is_empty"]["key"])
    if "is_null" in raw:
        return edge.IsNullCondition(raw["is_null"]["key"])
    key = raw["key"]
    if "range" in raw:
        return edge.FieldCondition(key=key, range=edge.RangeFloat(**raw["range"]))
    if "values_count" in raw:
        return edge.FieldCondition(key=key, values_count=edge.ValuesCount(**raw["values_count"]))
    ((kind, value),) = raw["match"].items()
    match = {
        "value": edge.MatchValue,
        "any": edge.MatchAny,
        "except": edge.MatchExcept,
        "text": edge.MatchText,
        "text_any": edge.MatchTextAny,
        "phrase": edge.MatchPhrase,
    }[kind](value)
    return edge.FieldCondition(key=key, match=match)


class EdgeShard:
    def __init__(self, path: Path, nested: str | None) -> None:
        config = edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=2, distance=edge.Distance.Dot))
        self.shard = edge.EdgeShard.create(str(path), config)
        for key, params in (
            ("offers[].kind", edge.KeywordIndexParams(nested=nested)),
            ("offers[].price", edge.IntegerIndexParams(nested=nested)),
            (
                "offers[].title",
                edge.TextIndexParams(scoring=True, phrase_matching=True, nested=nested),
            ),
        ):
            self.shard.update(edge.UpdateOperation.create_field_index(key, params))

    def upsert(self, payloads: dict[int, dict[str, Any]]) -> None:
        points = [edge.Point(i, [1.0, 0.5], p) for i, p in payloads.items()]
        self.shard.update(edge.UpdateOperation.upsert_points(points))

    def select(self, raw: dict[str, Any]) -> list[int]:
        filt = edge.Filter(must=[edge_condition(raw)])
        found, _ = self.shard.scroll(edge.ScrollRequest(filter=filt, limit=10_000))
        return sorted(int(p.id) for p in found)

    def rank(self, text: str) -> dict[int, float]:
        query = edge.TextQuery("offers[].title", text)
        found = self.shard.query(edge.QueryRequest(limit=10_000, query=query))
        return {int(p.id): p.score for p in found}


def points(payloads: dict[int, dict[str, Any]]) -> list[models.PointStruct]:
    return [models.PointStruct(id=i, vector=[1.0, 0.5], payload=p) for i, p in payloads.items()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-nested", grpc=True)


def index_schemas(nested: str | None) -> dict[str, Any]:
    extra = {} if nested is None else {"nested": nested}
    return {
        "offers[].kind": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, **extra),
        "offers[].price": models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, **extra),
        "offers[].title": models.TextIndexParams(
            type=models.TextIndexType.TEXT, scoring=True, phrase_matching=True, **extra
        ),
    }


@pytest.mark.parametrize("nested", [None, "offers", "offers[]"])
def test_conditions_and_scores_are_qdrant_edges(
    server: ServerProcess, tmp_path: Path, nested: str | None
) -> None:
    qc = QdrantClient(url=server.url, timeout=30)
    name = f"nested_{'no' if nested is None else nested.replace('[]', '_arr')}"
    qc.create_collection(name, vectors_config=models.VectorParams(size=2, distance="Dot"))
    try:
        for key, schema in index_schemas(nested).items():
            qc.create_payload_index(name, key, field_schema=schema, wait=True)
        shard = EdgeShard(tmp_path / "edge", nested)
        payloads = random_payloads(11, 200)
        edits = {i * 7: p for i, p in random_payloads(12, 25).items()}  # overwrites
        for batch in (payloads, edits):
            qc.upsert(name, points(batch))
            shard.upsert(batch)
        schema = qc.get_collection(name).payload_schema["offers[].kind"]
        assert schema.params.nested == (None if nested is None else "offers[]")  # type: ignore[union-attr]
        checked = 0
        for raw in CONDITIONS:
            filt = models.Filter(must=[models.Filter.model_validate({"must": [raw]}).must[0]])  # type: ignore[index]
            got = sorted(int(p.id) for p in qc.scroll(name, scroll_filter=filt, limit=1000)[0])
            assert got == shard.select(raw), raw
            checked += bool(got)
        assert checked >= 12
        for text in ("cat", "cat dog", "red fish blue", "the", "zzz"):
            got = qc.query_points(
                name, query=models.TextQuery(text=text), using="offers[].title", limit=1000
            ).points
            want = shard.rank(text)
            assert {p.id: p.score for p in got} == pytest.approx(want, rel=1e-4, abs=1e-6), text
            assert [p.score for p in got] == sorted((p.score for p in got), reverse=True)
    finally:
        qc.delete_collection(name)
        qc.close()


def test_nested_text_index_survives_a_restart(server_factory: Any) -> None:
    proc = server_factory()
    qc = QdrantClient(url=proc.url, timeout=30)
    qc.create_collection(
        "c",
        vectors_config=models.VectorParams(size=2, distance="Dot"),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1),
    )
    for key, schema in index_schemas("offers").items():
        qc.create_payload_index("c", key, field_schema=schema, wait=True)
    payloads = random_payloads(5, 150)
    qc.upsert("c", points(payloads))

    def answers() -> list[Any]:
        out: list[Any] = []
        for text in ("cat dog", "bird"):
            query = models.TextQuery(text=text)
            hits = qc.query_points("c", query=query, using="offers[].title", limit=500).points
            out.append([(p.id, round(p.score, 5)) for p in hits])
            match = models.MatchText(text=text)
            filt = models.Filter(must=[models.FieldCondition(key="offers[].title", match=match)])
            out.append(sorted(int(p.id) for p in qc.scroll("c", scroll_filter=filt, limit=500)[0]))
        empty = models.IsEmptyCondition(is_empty=models.PayloadField(key="offers[].kind"))
        filt = models.Filter(must=[empty])
        out.append(sorted(int(p.id) for p in qc.scroll("c", scroll_filter=filt, limit=500)[0]))
        return out

    before = answers()
    assert all(before)
    qc.close()
    proc.restart(graceful=True)
    qc = QdrantClient(url=proc.url, timeout=30)
    assert answers() == before
    qc.close()
    assert_clean_log(proc)


def test_nested_refusals(server: ServerProcess) -> None:
    url = f"{server.url}/collections/nested_refusals"
    with httpx.Client(timeout=30) as http:
        http.put(url, json={"vectors": {"size": 2, "distance": "Dot"}})
        try:

            def create(field: str, nested: Any) -> tuple[int, str]:
                body = {"field_name": field, "field_schema": {"type": "keyword", "nested": nested}}
                r = http.put(f"{url}/index?wait=true", json=body)
                if r.status_code == 200:
                    return 200, ""
                return r.status_code, r.json()["status"]["error"]

            assert create("offers[].kind", "other") == (
                400,
                "Wrong input: Validation failed: field `offers[].kind` must be inside the "
                "elements of nested `other[]`, like `other[].price`",
            )
            assert create("a[].b[].c", "a[].b") == (
                400,
                "Wrong input: Validation failed: nested `a[].b[]` must point to a single array "
                "level, like `offers` or `offers[]`",
            )
            assert create("offers.kind", "offers")[0] == 400
            assert create("offers[].kind", 5)[0] == 400
            assert http.get(url).json()["result"]["payload_schema"] == {}
            assert create("a[].b[].c", "a") == (200, "")
        finally:
            http.delete(url)


def test_grpc_takes_the_1_20_additions(server: ServerProcess) -> None:
    """Over gRPC too: turbo8 storage with TurboQuant bits8, `id_tracker`, `created_at`, a
    nested keyword index, a code-tokenized text index with BM25 scoring and a text query."""
    qc = make_grpc_client(server)
    name = "nested_grpc"
    try:
        qc.create_collection(
            name,
            vectors_config=models.VectorParams(
                size=4, distance=models.Distance.DOT, datatype=models.Datatype.TURBO8
            ),
            quantization_config=models.TurboQuantization(
                turbo=models.TurboQuantQuantizationConfig(bits=models.TurboQuantBitSize.BITS8)
            ),
            id_tracker=models.IdTrackerParams(memory=models.Memory.COLD),
        )
        info = qc.get_collection(name)
        params = info.config.params
        assert params.vectors.datatype == models.Datatype.TURBO8  # type: ignore[union-attr]
        assert params.id_tracker == models.IdTrackerParams(memory=models.Memory.COLD)
        turbo = info.config.quantization_config
        assert turbo.turbo.bits == models.TurboQuantBitSize.BITS8  # type: ignore[union-attr]
        assert info.created_at is not None
        keyword = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, nested="offers")
        qc.create_payload_index(name, "offers[].kind", field_schema=keyword, wait=True)
        code = models.TextIndexParams(
            type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.CODE, scoring=True
        )
        qc.create_payload_index(name, "src", field_schema=code, wait=True)
        schema = qc.get_collection(name).payload_schema
        assert schema["offers[].kind"].params.nested == "offers[]"  # type: ignore[union-attr]
        assert schema["src"].params.tokenizer == models.TokenizerType.CODE  # type: ignore[union-attr]
        qc.upsert(
            name,
            [
                models.PointStruct(
                    id=1,
                    vector=[1, 0, 0, 0],
                    payload={"src": "getUserName()", "offers": [{"kind": "a"}, {"price": 1}]},
                ),
                models.PointStruct(
                    id=2,
                    vector=[0, 1, 0, 0],
                    payload={"src": "user_name = 1", "offers": [{"kind": "b"}]},
                ),
                models.PointStruct(id=3, vector=[0, 0, 1, 0], payload={"src": "setX"}),
            ],
        )

        def ranked(text: str) -> list[Any]:
            hits = qc.query_points(name, query=models.TextQuery(text=text), using="src").points
            return [p.id for p in hits]

        assert sorted(ranked("user name")) == [1, 2]
        assert ranked("username") == [2]  # `user_name` joins into it, `getUserName` does not
        assert ranked("getUser")[0] == 1
        empty = models.IsEmptyCondition(is_empty=models.PayloadField(key="offers[].kind"))
        found, _ = qc.scroll(name, scroll_filter=models.Filter(must=[empty]))
        assert [p.id for p in found] == [1]  # an element lacks it; 3 has no elements
        (stored,) = qc.retrieve(name, [1], with_vectors=True)
        assert stored.vector == pytest.approx([1, 0, 0, 0], abs=0.02)
    finally:
        qc.delete_collection(name)
        qc.close()
