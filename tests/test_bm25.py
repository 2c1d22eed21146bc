"""Server-side BM25 inference (`Document` with model `qdrant/bm25`), against Qdrant Edge.

Qdrant Edge ships Qdrant's own BM25 model (`qdrant_edge.Bm25`): the sparse vectors
`tessera.query.bm25` computes must equal its document and query embeddings for every
tokenizer option, and a collection fed `models.Document`s through qdrant-client (REST and
gRPC) must rank queries as an Edge shard with the same data does (sparse vector with the
`idf` modifier).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from tessera.query.bm25 import Bm25
from tests.conftest import ServerProcess, make_grpc_client, module_server

edge = pytest.importorskip("qdrant_edge")

WORDS_TEXT = (
    "The quick brown foxes were running over lazy dogs; dog DOGS Running runner ran "
    "café naïve façade Straße ÆON Über über Привет мир Ёлка ёлками Ελληνικά hello-world "
    "x_y 3.14 abc123 the a of and Tessera qdrant vector vectors search searching searched "
    "stemming stemmed isn't it's Hund Hunde laufen läuft gehen"
)
WORDS = WORDS_TEXT.split()


def random_texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 14))) for _ in range(n)]
    return [*texts, "", "the of and a", "DOGS dogs Dogs dog"]


def edge_config(options: dict[str, Any]) -> Any:
    """The `qdrant_edge.Bm25Config` of a `Bm25Config` JSON object."""
    kw: dict[str, Any] = {}
    for name in ("k", "b", "avg_len", "language", "lowercase", "ascii_folding"):
        if name in options:
            kw[name] = options[name]
    for name in ("min_token_len", "max_token_len"):
        if name in options:
            kw[name] = options[name]
    if "tokenizer" in options:
        kw["tokenizer"] = getattr(edge.TokenizerType, options["tokenizer"].capitalize())
    stop = options.get("stopwords")
    if isinstance(stop, str):
        kw["stopwords"] = getattr(edge.Language, stop.capitalize())
    elif isinstance(stop, dict):
        kw["stopwords"] = edge.StopwordsSet(
            languages={getattr(edge.Language, x.capitalize()) for x in stop.get("languages", [])},
            custom=set(stop.get("custom", [])),
        )
    stem = options.get("stemmer")
    if stem is not None:
        kw["stemmer"] = (
            edge.DisabledStemmer()
            if stem["type"] == "none"
            else edge.SnowballParams(getattr(edge.SnowballLanguage, stem["language"].capitalize()))
        )
    return edge.Bm25Config(**kw)


CONFIGS: list[dict[str, Any]] = [
    {},
    {"k": 2.0, "b": 0.3, "avg_len": 12.0},
    {"b": 0.0},
    {"tokenizer": "whitespace"},
    {"tokenizer": "prefix", "min_token_len": 2, "max_token_len": 5},
    {"tokenizer": "multilingual", "language": "russian"},
    {"language": "german"},
    {"language": "chinese"},
    {"stemmer": {"type": "snowball", "language": "armenian"}, "stopwords": {"custom": []}},
    {"lowercase": False, "ascii_folding": True},
    {"stemmer": {"type": "none"}, "stopwords": {"custom": ["Dogs", "the"]}, "lowercase": False},
    {"stopwords": {"languages": ["english", "german"], "custom": ["qdrant"]}},
    {"stemmer": {"type": "snowball", "language": "german"}, "min_token_len": 4},
    {"max_token_len": 4, "stemmer": {"type": "none"}},
]


@pytest.mark.parametrize("options", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_embeddings_equal_qdrant_edge(options: dict[str, Any]) -> None:
    ours = Bm25.from_options(options)
    theirs = edge.Bm25(edge_config(options))
    for text in random_texts(len(str(options)), 40):
        want = theirs.embed_document(text)
        indices, values = ours.embed_document(text)
        assert sorted(want.indices) == indices, text
        by_index = dict(zip(want.indices, want.values, strict=True))
        assert values == pytest.approx([by_index[i] for i in indices], rel=1e-6), text
        assert ours.embed_query(text) == (
            sorted(theirs.embed_query(text).indices),
            [1.0] * len(theirs.embed_query(text).indices),
        ), text


def test_bad_options_are_refused() -> None:
    for options in (
        {"k": -1},
        {"b": 1.5},
        {"avg_len": 0},
        {"tokenizer": "kanji"},
        {"stopwords": "klingon"},
        {"stemmer": {"type": "snowball", "language": "klingon"}},
        {"lowercase": "yes"},
        {"unknown": 1},
    ):
        with pytest.raises(Exception, match="BM25 options"):
            Bm25.from_options(options)


# --------------------------------------------------------------------------- end to end

DOCS = [
    "The quick brown fox jumps over the lazy dog",
    "Dogs are running in the park, dogs everywhere",
    "A fox is a small omnivorous mammal",
    "Vector search with sparse vectors and BM25 ranking",
    "Running a search engine: Qdrant ranks documents by BM25",
    "Brown bears and brown foxes",
    "Nothing relevant here at all",
    "the fox, the dog and the park",
]
QUERIES = ["running dogs", "brown fox", "BM25 search ranking", "the", "mammal fox dog"]


def edge_ranking(tmp_path: Path, options: dict[str, Any]) -> list[list[tuple[int, float]]]:
    """What Qdrant gives: Edge's BM25 vectors in an Edge shard with an IDF sparse vector."""
    model = edge.Bm25(edge_config(options))
    config = edge.EdgeConfig(
        sparse_vectors={"bm25": edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)}
    )
    shard = edge.EdgeShard.create(str(tmp_path / "edge"), config)
    shard.update(
        edge.UpdateOperation.upsert_points(
            [edge.Point(i, {"bm25": model.embed_document(t)}, {}) for i, t in enumerate(DOCS)]
        )
    )
    out = []
    for text in QUERIES:
        found = shard.query(
            edge.QueryRequest(
                limit=len(DOCS), query=edge.Query.Nearest(model.embed_query(text), using="bm25")
            )
        )
        out.append([(p.id, p.score) for p in found])
    shard.close()
    return out


def assert_same_ranking(got: list[models.ScoredPoint], want: list[tuple[int, float]]) -> None:
    assert [p.score for p in got] == pytest.approx([s for _, s in want], rel=1e-4, abs=1e-6)
    # ties may come in any order: compare ids per distinct score
    assert {(round(p.score, 4), p.id) for p in got} == {(round(s, 4), i) for i, s in want}


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-bm25", grpc=True)


@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
@pytest.mark.parametrize("options", [None, {"k": 1.5, "b": 0.5, "avg_len": 8.0}])
def test_documents_rank_as_qdrant(
    grpc_server: ServerProcess, tmp_path: Path, grpc: bool, options: dict[str, Any] | None
) -> None:
    server = grpc_server
    if grpc:
        qc = make_grpc_client(server)
    else:
        qc = QdrantClient(url=server.url, prefer_grpc=False, timeout=30)
    name = f"bm25_{'grpc' if grpc else 'rest'}_{'opt' if options else 'default'}"
    try:
        qc.create_collection(
            name,
            vectors_config={},
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        qc.upsert(
            name,
            [
                models.PointStruct(
                    id=i,
                    vector={"bm25": models.Document(text=t, model="qdrant/bm25", options=options)},
                    payload={"text": t},
                )
                for i, t in enumerate(DOCS)
            ],
        )
        want = edge_ranking(tmp_path, options or {})
        for text, expected in zip(QUERIES, want, strict=True):
            got = qc.query_points(
                name,
                query=models.Document(text=text, model="Qdrant/bm25", options=options),
                using="bm25",
                limit=len(DOCS),
            ).points
            assert_same_ranking(got, expected)
        stored = qc.retrieve(name, [1], with_vectors=True)[0].vector
        assert isinstance(stored, dict)
        sparse = stored["bm25"]
        assert isinstance(sparse, models.SparseVector)
        indices, values = Bm25.from_options(options).embed_document(DOCS[1])
        assert sparse.values == pytest.approx(values, rel=1e-6)
        assert sorted(sparse.indices) == indices
    finally:
        qc.delete_collection(name)
        qc.close()


def test_bad_documents_are_refused(http: httpx.Client) -> None:
    name = "bm25_refusals"
    http.put(
        f"/collections/{name}",
        json={"vectors": {"dense": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"s": {}}},
    ).raise_for_status()
    try:
        bad_vectors = [
            {"s": {"text": "hello", "model": "qdrant/bm25", "options": {"b": 2}}},
            {"s": {"text": "hello", "model": "qdrant/bm25", "options": {"stopwords": "xx"}}},
            {"dense": {"text": "hello", "model": "qdrant/bm25"}},  # sparse into a dense vector
        ]
        for vector in bad_vectors:
            r = http.put(
                f"/collections/{name}/points?wait=true",
                json={"points": [{"id": 1, "vector": vector}]},
            )
            assert r.status_code == 400, (vector, r.text)
            assert r.json()["status"]["error"]
        # Another model needs an inference service, which Qdrant without one configured
        # answers with a service error (500), writing nothing either.
        r = http.put(
            f"/collections/{name}/points?wait=true",
            json={"points": [{"id": 1, "vector": {"s": {"text": "hi", "model": "openai/x"}}}]},
        )
        assert r.status_code == 500, r.text
        assert "InferenceService is not initialized" in r.json()["status"]["error"]
        r = http.post(
            f"/collections/{name}/points/query",
            json={
                "query": {"text": "x", "model": "qdrant/bm25", "options": {"k": -1}},
                "using": "s",
            },
        )
        assert r.status_code == 400, r.text
        r = http.post(f"/collections/{name}/points/count", json={"exact": True})
        assert r.json()["result"]["count"] == 0
    finally:
        http.delete(f"/collections/{name}")


# Documents of English stopwords only (and an empty one) get empty BM25 vectors: Qdrant's
# sparse index leaves them out of its collection-wide IDF statistics (N), while an
# `idf.corpus` counts every matching point that holds the vector, empty or not.
STOPWORDS_ONLY = ["the of and a", "", "The THE the", "it is what it is", "Dogs and the fox"]


def edge_idf_scores(
    tmp_path: Path, texts: list[str], queries: list[Any], corpus: int | None
) -> list[dict[int, float]]:
    config = edge.EdgeConfig(
        sparse_vectors={"bm25": edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)}
    )
    shard = edge.EdgeShard.create(str(tmp_path / f"edge-idf-{corpus}"), config)
    model = edge.Bm25(edge_config({}))
    points = [
        edge.Point(i, {"bm25": model.embed_document(t)}, {"g": i % 2}) for i, t in enumerate(texts)
    ]
    points.append(edge.Point(len(texts), {}, {"g": 0}))  # no vector at all
    shard.update(edge.UpdateOperation.upsert_points(points))
    params = None
    if corpus is not None:
        where = edge.Filter(must=[edge.FieldCondition("g", match=edge.MatchValue(corpus))])
        params = edge.SearchParams(idf=edge.IdfParams(corpus=where))
    out = []
    for query in queries:
        request = edge.QueryRequest(
            limit=len(texts) + 1, query=edge.Query.Nearest(query, using="bm25"), params=params
        )
        out.append({p.id: p.score for p in shard.query(request)})
    shard.close()
    return out


@pytest.mark.server_only(reason="server-side inference")
@pytest.mark.parametrize("corpus", [None, 0, 1], ids=["global", "corpus0", "corpus1"])
def test_idf_counts_documents_as_qdrant(
    client: QdrantClient, http: httpx.Client, collection: Any, tmp_path: Path, corpus: int | None
) -> None:
    texts = [*DOCS, *STOPWORDS_ONLY]
    assert sum(not Bm25.from_options(None).embed_document(t)[0] for t in texts) == 4
    name = collection(
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)}
    )
    bm25 = "qdrant/bm25"
    client.upsert(
        name,
        [
            *(
                models.PointStruct(
                    id=i, vector={"bm25": models.Document(text=t, model=bm25)}, payload={"g": i % 2}
                )
                for i, t in enumerate(texts)
            ),
            models.PointStruct(id=len(texts), vector={}, payload={"g": 0}),
        ],
    )
    model = edge.Bm25(edge_config({}))
    queries = [model.embed_query(q) for q in QUERIES]
    want = edge_idf_scores(tmp_path, texts, queries, corpus)
    where = None
    params = None
    if corpus is not None:
        where = models.Filter(
            must=[models.FieldCondition(key="g", match=models.MatchValue(value=corpus))]
        )
        params = models.SearchParams(idf=models.IdfCorpusParams(corpus=where))
    for text, query, expected in zip(QUERIES, queries, want, strict=True):
        hits = client.query_points(
            name,
            query=models.Document(text=text, model=bm25),
            using="bm25",
            search_params=params,
            limit=len(texts) + 1,
        ).points
        got = {int(h.id): h.score for h in hits}
        assert got == pytest.approx(expected, abs=1e-5), text
        # the legacy search route takes its statistics elsewhere (shard.search)
        body: dict[str, Any] = {
            "vector": {
                "name": "bm25",
                "vector": {"indices": query.indices, "values": query.values},
            },
            "limit": len(texts) + 1,
        }
        if where is not None:
            body["params"] = {"idf": {"corpus": where.model_dump(exclude_none=True)}}
        r = http.post(f"/collections/{name}/points/search", json=body)
        assert r.status_code == 200, r.text
        legacy = {int(h["id"]): h["score"] for h in r.json()["result"]}
        assert legacy == pytest.approx(expected, abs=1e-5), text
