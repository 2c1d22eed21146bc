"""BM25 ranking over a text index (`scoring` on the index, the Query API's `text` query),
against Qdrant Edge.

Qdrant Edge runs Qdrant's own engine: a shard with the same text index, the same points and
the same edits must give the same scores for every query (ties in any order). The data mixes
what changes a document's length and term counts: arrays of strings (repeats included),
values that are not strings, stopwords, tokens cut by the length limits, prefixes, deletes and
overwrites, points spread over several segments.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import ServerProcess, assert_clean_log, make_grpc_client, module_server

edge = pytest.importorskip("qdrant_edge")

WORDS_TEXT = (
    "the quick brown fox foxes jumps over lazy dog dogs Dogs running runs ran runner park "
    "search searching searched vector vectors café naïve Straße über a of and is it qdrant "
    "bm25 ranking ranks rank x y abcdefgh getUserName get_user_name HTTPServer user_id"
)
WORDS = WORDS_TEXT.split()

# (index params as REST JSON, the same as qdrant_edge.TextIndexParams keyword arguments)
CONFIGS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {}),
    (
        {"tokenizer": "prefix", "min_token_len": 2, "max_token_len": 5},
        {"tokenizer": "Prefix", "min_token_len": 2, "max_token_len": 5},
    ),
    ({"stopwords": "english", "min_token_len": 2}, {"stopwords": ["english"], "min_token_len": 2}),
    (
        {"stemmer": {"type": "snowball", "language": "english"}, "lowercase": False},
        {"stemmer": "english", "lowercase": False},
    ),
    (
        {"tokenizer": "whitespace", "max_token_len": 6, "ascii_folding": True},
        {"tokenizer": "Whitespace", "max_token_len": 6, "ascii_folding": True},
    ),
    ({"tokenizer": "code"}, {"tokenizer": "Code"}),
]
QUERIES = [
    "dog",
    "the lazy dogs",
    "running fox",
    "vectors search ranking",
    "Straße cafe",
    "ab",
    "zzz",
    "",
    "userName HTTP",
]
SCORINGS: list[dict[str, float] | None] = [
    None,
    {"k": 2.0, "b": 0.3},
    {"k": 0.0, "b": 0.0},
    {"b": 1.0},
]


def edge_params(given: dict[str, Any]) -> Any:
    kw: dict[str, Any] = {"scoring": True}
    for name, value in given.items():
        if name == "tokenizer":
            kw[name] = getattr(edge.TokenizerType, value)
        elif name == "stopwords":
            kw[name] = edge.StopwordsSet(
                languages={getattr(edge.Language, x.capitalize()) for x in value}
            )
        elif name == "stemmer":
            kw[name] = edge.SnowballParams(getattr(edge.SnowballLanguage, value.capitalize()))
        else:
            kw[name] = value
    return edge.TextIndexParams(**kw)


def random_payloads(seed: int, n: int) -> dict[int, dict[str, Any]]:
    rng = random.Random(seed)

    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 9)))

    out: dict[int, dict[str, Any]] = {}
    for i in range(n):
        roll = rng.random()
        if roll < 0.1:
            out[i] = {"other": 1}
        elif roll < 0.2:
            same = text()
            out[i] = {"t": [same, same, text(), 7]}
        elif roll < 0.3:
            out[i] = {"t": [text() for _ in range(rng.randint(0, 3))]}
        elif roll < 0.35:
            out[i] = {"t": 12}
        else:
            out[i] = {"t": text()}
    return out


class EdgeShard:
    def __init__(self, path: Path, params: dict[str, Any]) -> None:
        config = edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=2, distance=edge.Distance.Dot))
        self.shard = edge.EdgeShard.create(str(path), config)
        self.shard.update(edge.UpdateOperation.create_field_index("t", edge_params(params)))

    def upsert(self, payloads: dict[int, dict[str, Any]]) -> None:
        points = [edge.Point(i, [1.0, 0.5], p) for i, p in payloads.items()]
        self.shard.update(edge.UpdateOperation.upsert_points(points))

    def delete(self, ids: list[int]) -> None:
        self.shard.update(edge.UpdateOperation.delete_points(ids))

    def query(
        self,
        text: str,
        scoring: dict[str, float] | None,
        ids: set[int] | None = None,
        corpus: set[int] | None = None,
    ) -> list[tuple[int, float]]:
        params = None if scoring is None else edge.Bm25Params(**scoring)
        filt = None if ids is None else edge.Filter(must=[edge.HasIdCondition(ids)])
        search = None
        if corpus is not None:
            population = edge.Filter(must=[edge.HasIdCondition(corpus)])
            search = edge.SearchParams(idf=edge.IdfParams(corpus=population))
        query = edge.TextQuery("t", text, params)
        found = self.shard.query(
            edge.QueryRequest(limit=1000, query=query, filter=filt, params=search)
        )
        return [(int(p.id), p.score) for p in found]


def assert_same(got: list[models.ScoredPoint], want: list[tuple[int, float]], what: str) -> None:
    """The same points with the same scores, best first (ties may come in any order)."""
    scores = {p.id: p.score for p in got}
    assert len(scores) == len(got), what
    assert scores == pytest.approx(dict(want), rel=1e-4, abs=1e-6), what
    assert [p.score for p in got] == sorted(scores.values(), reverse=True), what


def wait_green(qc: QdrantClient, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while qc.get_collection(name).status != models.CollectionStatus.GREEN:
        assert time.monotonic() < deadline, "the optimizer did not finish"
        time.sleep(0.02)


def text_query(text: str, scoring: dict[str, float] | None) -> models.TextQuery:
    if scoring is None:
        return models.TextQuery(text=text)
    return models.TextQuery(
        text=models.TextQueryInput(
            query=text, scoring=models.Bm25Scoring(bm25=models.Bm25Params(**scoring))
        )
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-text-scoring", grpc=True)


def client(server: ServerProcess, grpc: bool) -> QdrantClient:
    if grpc:
        return make_grpc_client(server)
    return QdrantClient(url=server.url, prefer_grpc=False, timeout=30)


@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
@pytest.mark.parametrize("case", range(len(CONFIGS)))
def test_scores_are_qdrant_edges(
    server: ServerProcess, tmp_path: Path, grpc: bool, case: int
) -> None:
    rest, _ = CONFIGS[case]
    params = CONFIGS[case][1]
    qc = client(server, grpc)
    name = f"text_scoring_{case}_{'grpc' if grpc else 'rest'}"
    segments = case % 2 == 1  # every other config spreads the points over several segments
    qc.create_collection(
        name,
        vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
        optimizers_config=models.OptimizersConfigDiff(
            indexing_threshold=1, default_segment_number=3
        )
        if segments
        else None,
    )
    try:
        qc.create_payload_index(
            name,
            "t",
            models.TextIndexParams(type=models.TextIndexType.TEXT, scoring=True, **rest),
            wait=True,
        )
        shard = EdgeShard(tmp_path / "edge", params)
        payloads = random_payloads(case, 240)
        batches = [dict(list(payloads.items())[i : i + 60]) for i in range(0, 240, 60)]
        for batch in batches:
            qc.upsert(
                name,
                [models.PointStruct(id=i, vector=[1.0, 0.5], payload=p) for i, p in batch.items()],
            )
            shard.upsert(batch)
            if segments:  # the optimizer seals each batch into a segment of its own
                wait_green(qc, name)
            # answered between writes too: what a query keeps (lengths, counts) must follow
            got = qc.query_points(name, query=text_query("dog", None), using="t", limit=1000)
            assert_same(got.points, shard.query("dog", None), "between writes")
        # edits: deletes, overwrites (a string that was an array, an array that was missing)
        qc.delete(name, models.PointIdsList(points=list(range(0, 240, 7))))
        shard.delete(list(range(0, 240, 7)))
        edits = random_payloads(case + 100, 30)
        edits = {i * 5 + 1: p for i, p in edits.items()}
        qc.upsert(
            name, [models.PointStruct(id=i, vector=[1.0, 0.5], payload=p) for i, p in edits.items()]
        )
        shard.upsert(edits)
        if segments:
            assert (qc.get_collection(name).segments_count or 0) > 1
        for text in QUERIES:
            for scoring in SCORINGS:
                got = qc.query_points(
                    name, query=text_query(text, scoring), using="t", limit=1000
                ).points
                assert_same(got, shard.query(text, scoring), f"{text!r} {scoring}")
        # a filter picks among the scored points and leaves the statistics alone
        ids = set(range(1, 240, 3))
        got = qc.query_points(
            name,
            query=text_query("the lazy dogs", None),
            using="t",
            query_filter=models.Filter(must=[models.HasIdCondition(has_id=sorted(ids))]),
            limit=1000,
        ).points
        assert_same(got, shard.query("the lazy dogs", None, ids), "filtered")
        # `params.idf.corpus`: the statistics of those points only, every point scored
        corpus = set(range(0, 240, 2))
        population = models.Filter(must=[models.HasIdCondition(has_id=sorted(corpus))])
        got = qc.query_points(
            name,
            query=text_query("the lazy dogs", None),
            using="t",
            search_params=models.SearchParams(idf=models.IdfCorpusParams(corpus=population)),
            limit=1000,
        ).points
        assert_same(got, shard.query("the lazy dogs", None, corpus=corpus), "idf corpus")
        # limit, offset and score_threshold over the same order
        full = qc.query_points(
            name, query=text_query("dog fox", None), using="t", limit=1000
        ).points
        page = qc.query_points(
            name, query=text_query("dog fox", None), using="t", limit=5, offset=3
        ).points
        assert [p.score for p in page] == pytest.approx([p.score for p in full[3:8]])
        if len(full) > 4:
            cut = full[4].score
            above = qc.query_points(
                name, query=text_query("dog fox", None), using="t", limit=1000, score_threshold=cut
            ).points
            assert above and all(p.score > cut for p in above)
            assert len(above) == sum(p.score > cut for p in full)
    finally:
        qc.delete_collection(name)
        qc.close()


def test_scores_survive_a_restart(server_factory: Any) -> None:
    """The index state is saved and loaded (lengths recounted): the same scores after."""
    proc = server_factory()
    qc = QdrantClient(url=proc.url, timeout=30)
    qc.create_collection(
        "c",
        vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1),
    )
    prefix = models.TokenizerType.PREFIX
    schema = models.TextIndexParams(type=models.TextIndexType.TEXT, tokenizer=prefix, scoring=True)
    qc.create_payload_index("c", "t", schema)
    payloads = random_payloads(7, 150)
    qc.upsert(
        "c", [models.PointStruct(id=i, vector=[1.0, 0.5], payload=p) for i, p in payloads.items()]
    )

    def answers() -> dict[str, list[tuple[Any, float]]]:
        out = {}
        for text in QUERIES:
            query = models.TextQuery(text=text)
            hits = qc.query_points("c", query=query, using="t", limit=200).points
            out[text] = [(p.id, p.score) for p in hits]
        return out

    before = answers()
    assert any(before.values())
    qc.close()
    proc.restart(graceful=True)
    qc = QdrantClient(url=proc.url, timeout=30)
    assert answers() == before
    qc.close()
    assert_clean_log(proc)


def test_hybrid_with_a_dense_prefetch(server: ServerProcess) -> None:
    """A text query is a prefetch like any other: fused with a vector search by RRF."""
    qc = client(server, False)
    name = "text_scoring_hybrid"
    qc.create_collection(
        name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
    )
    try:
        qc.create_payload_index(
            name, "t", models.TextIndexParams(type=models.TextIndexType.TEXT, scoring=True)
        )
        qc.upsert(
            name,
            [
                models.PointStruct(id=1, vector=[1.0, 0.0], payload={"t": "lazy dog"}),
                models.PointStruct(id=2, vector=[0.0, 1.0], payload={"t": "dog dog dog"}),
                models.PointStruct(id=3, vector=[0.9, 0.1], payload={"t": "quick fox"}),
            ],
        )
        text = qc.query_points(name, query=models.TextQuery(text="dog"), using="t").points
        assert [p.id for p in text] == [2, 1]
        fused = qc.query_points(
            name,
            prefetch=[
                models.Prefetch(query=models.TextQuery(text="dog"), using="t", limit=10),
                models.Prefetch(query=[1.0, 0.0], limit=10),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
        ).points
        assert fused[0].id == 1  # second in the text ranking, first in the vector one
        # a vector query over the text query's results only
        over = qc.query_points(
            name,
            prefetch=models.Prefetch(query=models.TextQuery(text="dog"), using="t"),
            query=[0.0, 1.0],
        ).points
        assert [p.id for p in over] == [2, 1]
    finally:
        qc.delete_collection(name)
        qc.close()


def test_refusals(server: ServerProcess) -> None:
    """Qdrant's errors for a field that cannot rank and for bad BM25 parameters; the index's
    `scoring` is rendered as its params object."""
    url = f"{server.url}/collections/text_scoring_errors"
    with httpx.Client(timeout=30) as http:
        assert http.put(url, json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
        try:
            http.put(
                f"{url}/index?wait=true",
                json={"field_name": "plain", "field_schema": {"type": "text"}},
            )
            http.put(f"{url}/index?wait=true", json={"field_name": "kw", "field_schema": "keyword"})
            r = http.put(
                f"{url}/index?wait=true",
                json={"field_name": "t", "field_schema": {"type": "text", "scoring": True}},
            )
            assert r.status_code == 200, r.text
            http.put(
                f"{url}/points?wait=true",
                json={"points": [{"id": 1, "vector": [1, 0], "payload": {"t": "a dog"}}]},
            )
            schema = http.get(url).json()["result"]["payload_schema"]
            assert schema["t"]["params"]["scoring"] == {"type": "bm25"}
            assert "scoring" not in schema["plain"]["params"]

            def error(body: dict[str, Any]) -> tuple[int, str]:
                r = http.post(f"{url}/points/query", json=body)
                return r.status_code, r.json()["status"]["error"]

            assert error({"query": {"text": "dog"}, "using": "plain"}) == (
                400,
                "Wrong input: Validation failed: The text index on `plain` does not score: "
                "set `scoring` on it to query it",
            )
            for field in ("kw", "missing"):
                assert error({"query": {"text": "dog"}, "using": field}) == (
                    400,
                    "Wrong input: Validation failed: BM25 requires a text index on field "
                    f"{field}, which has none",
                )
            # BM25's ranges: in Qdrant's REST form (k and b in `text`) rules of the request
            # (422); in the `scoring.bm25` form (qdrant-client's model) the scorer's (400)
            for params, message, scorer in (
                (
                    {"k": -1},
                    "k: value -1.0 invalid, must be 0.0 or larger",
                    "k1 must be finite and non-negative, got -1",
                ),
                (
                    {"b": 1.5},
                    "b: value 1.5 invalid, must be from 0.0 to 1.0",
                    "b must be finite and within [0, 1], got 1.5",
                ),
            ):
                flat = {"query": {"text": {"query": "dog", **params}}, "using": "t"}
                assert error(flat) == (
                    422,
                    f"Validation error in JSON body: [internal.query.text.{message}]",
                )
                nested = {
                    "query": {"text": {"query": "dog", "scoring": {"bm25": params}}},
                    "using": "t",
                }
                assert error(nested) == (400, f"Wrong input: Validation failed: BM25 {scorer}")
            # The two forms rank alike
            ranked = []
            for form in (
                {"query": "a dog", "k": 2.0, "b": 0.3},
                {"query": "a dog", "scoring": {"bm25": {"k": 2.0, "b": 0.3}}},
            ):
                r = http.post(f"{url}/points/query", json={"query": {"text": form}, "using": "t"})
                assert r.status_code == 200, r.text
                ranked.append([(p["id"], p["score"]) for p in r.json()["result"]["points"]])
            assert ranked[0] == ranked[1] != []
            assert error({"query": {"text": "dog"}})[0] == 400
            assert "needs `using`" in error({"query": {"text": "dog"}})[1]
            both = {"query": "dog", "k": 1.0, "scoring": {"bm25": {"b": 0.5}}}
            assert error({"query": {"text": both}, "using": "t"})[0] == 400
            assert error({"query": {"text": {"scoring": None}}, "using": "t"})[0] == 400
            assert error({"query": {"text": "dog", "extra": 1}, "using": "t"})[0] == 400
            r = http.put(
                f"{url}/index",
                json={
                    "field_name": "u",
                    "field_schema": {"type": "text", "scoring": {"type": "tfidf"}},
                },
            )
            assert r.status_code == 400
            ok = http.post(f"{url}/points/query", json={"query": {"text": "dog"}, "using": "t"})
            assert [p["id"] for p in ok.json()["result"]["points"]] == [1]
        finally:
            http.delete(url)
