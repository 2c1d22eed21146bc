"""The Query API against qdrant-client's local mode, through the official client.

Every collection is built twice from the same seeded data: on our server and in
`QdrantClient(":memory:")`. Each test runs the same request on both and compares ids, order
and scores (to 1e-4). Ties are compared as sets: local mode leaves their order to numpy's
argsort, and the engine keeps ties in storage order.
"""

from __future__ import annotations

import contextlib
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.conftest import make_client

D = models.Distance
DISTANCES = [D.COSINE, D.DOT, D.EUCLID, D.MANHATTAN]
N_DENSE = 120
N_NAMED = 150
DELETED = [3, 17, 40, 41, 99]
UUIDS = [str(uuid.UUID(int=(7919 * k) << 64 | k)) for k in range(1, 11)]
TOL = 1e-4


# --------------------------------------------------------------------------- data


def named_id(i: int) -> int | str:
    return UUIDS[i - N_NAMED + len(UUIDS)] if i >= N_NAMED - len(UUIDS) else i


def sparse(rng: np.random.Generator, vocab: int = 40) -> models.SparseVector:
    k = int(rng.integers(2, 9))
    indices = sorted(rng.choice(vocab, size=k, replace=False).tolist())
    return models.SparseVector(indices=indices, values=rng.normal(size=k).round(4).tolist())


def payload(i: int, rng: np.random.Generator) -> dict[str, Any]:
    return {
        "i": i,
        "g": i % 4,
        "color": ["red", "green", "blue"][i % 3],
        "price": round(float(rng.uniform(1, 100)), 3),
        "multi": [i % 3, i % 5],
    }


def dense_points(rng: np.random.Generator) -> list[models.PointStruct]:
    return [
        models.PointStruct(id=i, vector=rng.normal(size=8).tolist(), payload=payload(i, rng))
        for i in range(N_DENSE)
    ]


def named_points(rng: np.random.Generator) -> list[models.PointStruct]:
    points = []
    for i in range(N_NAMED):
        vec: dict[str, Any] = {}
        if i % 6:
            vec["a"] = rng.normal(size=6).tolist()
        vec["b"] = rng.normal(size=5).tolist()
        if i % 7:
            vec["m"] = rng.normal(size=(int(rng.integers(1, 4)), 4)).tolist()
        if i % 5:
            vec["s"] = sparse(rng)
        if i % 4:
            vec["si"] = sparse(rng, 25)
        points.append(models.PointStruct(id=named_id(i), vector=vec, payload=payload(i, rng)))
    return points


def named_config() -> dict[str, Any]:
    return {
        "vectors_config": {
            "a": models.VectorParams(size=6, distance=D.COSINE),
            "b": models.VectorParams(size=5, distance=D.MANHATTAN),
            "m": models.VectorParams(
                size=4,
                distance=D.EUCLID,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            ),
        },
        "sparse_vectors_config": {
            "s": models.SparseVectorParams(),
            "si": models.SparseVectorParams(modifier=models.Modifier.IDF),
        },
    }


def populate(client: QdrantClient, prefix: str) -> dict[str, str]:
    names = {}
    rng = np.random.default_rng(7)
    for distance in DISTANCES:
        name = f"{prefix}_dense_{distance.value.lower()}"
        client.create_collection(
            name, vectors_config=models.VectorParams(size=8, distance=distance)
        )
        client.upsert(name, dense_points(rng), wait=True)
        client.delete(name, models.PointIdsList(points=DELETED), wait=True)
        names[distance.value] = name
    name = f"{prefix}_named"
    client.create_collection(name, **named_config())
    client.upsert(name, named_points(rng), wait=True)
    client.delete(name, models.PointIdsList(points=DELETED), wait=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        client.create_payload_index(name, "price", models.PayloadSchemaType.FLOAT, wait=True)
    names["named"] = name
    name = f"{prefix}_lookup"
    client.create_collection(
        name, vectors_config={"v": models.VectorParams(size=6, distance=D.DOT)}
    )
    client.upsert(
        name,
        [
            models.PointStruct(id=i, vector={"v": rng.normal(size=6).tolist()}, payload={"n": i})
            for i in range(10)
        ],
        wait=True,
    )
    names["lookup"] = name
    name = f"{prefix}_empty"
    client.create_collection(name, vectors_config=models.VectorParams(size=4, distance=D.DOT))
    names["empty"] = name
    return names


@dataclass
class Pair:
    ours: QdrantClient
    local: QdrantClient
    ours_names: dict[str, str]
    local_names: dict[str, str]

    def both(self, method: str, key: str, **kwargs: Any) -> tuple[Any, Any]:
        if "lookup_from" in kwargs:
            lookup = kwargs["lookup_from"]
            kw_ours = dict(kwargs, lookup_from=_renamed(lookup, self.ours_names))
            kw_local = dict(kwargs, lookup_from=_renamed(lookup, self.local_names))
        else:
            kw_ours = kw_local = kwargs
        if "prefetch" in kwargs:
            kw_ours = dict(kw_ours, prefetch=_renamed_prefetch(kwargs["prefetch"], self.ours_names))
            kw_local = dict(
                kw_local, prefetch=_renamed_prefetch(kwargs["prefetch"], self.local_names)
            )
        if "with_lookup" in kwargs:
            kw_ours = dict(kw_ours, with_lookup=self.ours_names[kwargs["with_lookup"]])
            kw_local = dict(kw_local, with_lookup=self.local_names[kwargs["with_lookup"]])
        ours = getattr(self.ours, method)(self.ours_names[key], **kw_ours)
        theirs = getattr(self.local, method)(self.local_names[key], **kw_local)
        return ours, theirs

    def query(self, key: str, **kwargs: Any) -> list[models.ScoredPoint]:
        ours, theirs = self.both("query_points", key, **kwargs)
        assert_same(ours.points, theirs.points)
        return list(ours.points)


def _renamed(lookup: models.LookupLocation, names: dict[str, str]) -> models.LookupLocation:
    return models.LookupLocation(collection=names[lookup.collection], vector=lookup.vector)


def _renamed_prefetch(prefetch: Any, names: dict[str, str]) -> Any:
    """Prefetches with their `lookup_from` collections named as on one side."""
    if isinstance(prefetch, list):
        return [_renamed_prefetch(p, names) for p in prefetch]
    update: dict[str, Any] = {}
    if prefetch.lookup_from is not None:
        update["lookup_from"] = _renamed(prefetch.lookup_from, names)
    if prefetch.prefetch is not None:
        update["prefetch"] = _renamed_prefetch(prefetch.prefetch, names)
    return prefetch.model_copy(update=update)


def assert_same(ours: list[Any], theirs: list[Any]) -> None:
    """Same scores in the same order; same ids, ties compared as sets (a tie cut by the
    limit only by its scores)."""
    ours_view = [(p.id, round(p.score, 4)) for p in ours]
    theirs_view = [(p.id, round(p.score, 4)) for p in theirs]
    assert len(ours) == len(theirs), (ours_view, theirs_view)
    for a, b in zip(ours, theirs, strict=True):
        assert abs(a.score - b.score) <= TOL * max(1.0, abs(b.score)), (ours_view, theirs_view)
    i, n = 0, len(theirs)
    while i < n:
        j = i + 1
        while j < n and abs(theirs[j].score - theirs[i].score) <= TOL:
            j += 1
        if j - i == 1:
            assert ours[i].id == theirs[i].id, (ours_view, theirs_view)
        elif j < n:
            assert {p.id for p in ours[i:j]} == {p.id for p in theirs[i:j]}, ours_view
        i = j


def assert_same_records(ours: list[Any], theirs: list[Any]) -> None:
    for a, b in zip(ours, theirs, strict=True):
        assert a.id == b.id
        assert a.payload == b.payload
        assert _flat(a.vector) == pytest.approx(_flat(b.vector), abs=1e-5)


def _flat(vector: Any) -> Any:
    """Every number of a vector output, names and sparse indices folded in, as one list."""
    if isinstance(vector, dict):
        return [x for k, v in sorted(vector.items()) for x in [float(len(k)), *_flat(v)]]
    if isinstance(vector, models.SparseVector):
        return [*map(float, vector.indices), *vector.values]
    if isinstance(vector, list) and vector and isinstance(vector[0], list):
        return [x for row in vector for x in row]
    return vector


@contextlib.contextmanager
def paired(server: Any) -> Iterator[Pair]:
    """Our server and local mode, both holding the same seeded collections."""
    prefix = f"q{uuid.uuid4().hex[:8]}"
    ours = make_client(server.url)
    local = QdrantClient(":memory:")
    ours_names: dict[str, str] = {}
    try:
        ours_names = populate(ours, prefix)
        yield Pair(ours, local, ours_names, populate(local, prefix))
    finally:
        for name in ours_names.values():
            with contextlib.suppress(Exception):
                ours.delete_collection(name)
        ours.close()
        local.close()


@pytest.fixture(scope="module")
def pair(server: Any) -> Iterator[Pair]:
    with paired(server) as both:
        yield both


@contextlib.contextmanager
def api_error(status: int, contains: str | None = None) -> Iterator[None]:
    with pytest.raises(UnexpectedResponse) as info:
        yield
    assert info.value.status_code == status, str(info.value)
    if contains is not None:
        assert contains in info.value.structured()["status"]["error"]


def between(a: models.ScoredPoint, b: models.ScoredPoint) -> float:
    """A threshold between two results, clear of float rounding on either side."""
    return (a.score + b.score) / 2


def gap_after(top: list[models.ScoredPoint], start: int) -> float:
    """A threshold between the first two results from `start` on whose scores differ beyond
    float32 rounding: fused scores equal in exact arithmetic (1/3 and 1/4 + 1/12) differ in
    their last bits, in float32 in Tessera and Qdrant and in float64 in local mode."""
    for a, b in zip(top[start:], top[start + 1 :]):
        if a.score - b.score > 1e-5:
            return between(a, b)
    raise AssertionError("no gap in the scores")


def rng_for(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def g_is(value: int) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key="g", match=models.MatchValue(value=value))]
    )


# --------------------------------------------------------------------------- nearest


@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.value)
def test_nearest_dense(pair: Pair, distance: models.Distance) -> None:
    key = distance.value
    q = rng_for(1).normal(size=8).tolist()
    top = pair.query(key, query=q, limit=20)
    assert {p.id for p in top}.isdisjoint(DELETED)
    pair.query(key, query=q, limit=500)  # more than the collection holds
    pair.query(key, query=q, limit=5, offset=7)
    pair.query(key, query=q, limit=10, query_filter=g_is(2))
    pair.query(key, query=q, limit=50, score_threshold=between(top[10], top[11]))
    pair.query(key, query=models.NearestQuery(nearest=q), limit=3, offset=2)
    by_id = pair.query(key, query=5, limit=10)
    assert 5 not in {p.id for p in by_id}
    ours, theirs = pair.both(
        "query_points", key, query=q, limit=4, with_payload=True, with_vectors=True
    )
    assert_same_records(ours.points, theirs.points)


@pytest.mark.parametrize("using", ["a", "b", "m", "s", "si"])
def test_nearest_named_kinds(pair: Pair, using: str) -> None:
    rng = rng_for(2)
    raw: Any = {
        "a": rng.normal(size=6).tolist(),
        "b": rng.normal(size=5).tolist(),
        "m": rng.normal(size=(2, 4)).tolist(),
        "s": sparse(rng),
        "si": sparse(rng, 25),
    }[using]
    pair.query("named", query=raw, using=using, limit=15)
    pair.query("named", query=raw, using=using, limit=200)
    pair.query("named", query=raw, using=using, limit=5, query_filter=g_is(1), offset=1)
    pair.query("named", query=13, using=using, limit=10)
    pair.query("named", query=UUIDS[2], using=using, limit=10)
    ours, theirs = pair.both(
        "query_points",
        "named",
        query=raw,
        using=using,
        limit=5,
        with_payload=["i", "color"],
        with_vectors=[using, "b"],
    )
    assert_same_records(ours.points, theirs.points)


@pytest.mark.parametrize("using", ["a", "b", "m", "s"])
def test_nearest_mmr(pair: Pair, using: str) -> None:
    rng = rng_for(21)
    raw: Any = {
        "a": rng.normal(size=6).tolist(),
        "b": rng.normal(size=5).tolist(),
        "m": rng.normal(size=(2, 4)).tolist(),
        "s": sparse(rng),
    }[using]
    for mmr in (
        models.Mmr(),
        models.Mmr(diversity=0.8, candidates_limit=40),
        models.Mmr(diversity=0.0, candidates_limit=5),
    ):
        query = models.NearestQuery(nearest=raw, mmr=mmr)
        hits = pair.query("named", query=query, using=using, limit=8)
        assert hits
        pair.query("named", query=query, using=using, limit=4, offset=3, query_filter=g_is(0))


def numpy_scores(distance: models.Distance, stored: np.ndarray, q: np.ndarray) -> np.ndarray:
    if distance == D.COSINE:
        norms = np.linalg.norm(stored, axis=1) * np.linalg.norm(q)
        return np.asarray((stored @ q) / np.where(norms > 0, norms, 1.0))
    if distance == D.DOT:
        return np.asarray(stored @ q)
    if distance == D.EUCLID:
        return np.asarray(np.linalg.norm(stored - q, axis=1))
    return np.asarray(np.abs(stored - q).sum(axis=1))


@pytest.mark.parametrize("datatype", [models.Datatype.UINT8, models.Datatype.FLOAT16])
@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.value)
def test_datatypes(pair: Pair, distance: models.Distance, datatype: models.Datatype) -> None:
    """Scores over the vectors as the server stores them (bytes, half floats), with the
    query converted the same way. (Local mode keeps float32 whatever the datatype, so it is
    no oracle here.)"""
    rng = rng_for(31)
    name = f"{pair.ours_names['named']}_{datatype.value}_{distance.value.lower()}"
    params = models.VectorParams(size=8, distance=distance, datatype=datatype)
    if datatype == models.Datatype.UINT8:
        vectors = rng.integers(0, 256, size=(60, 8)).astype(np.float64)
        q = rng.integers(0, 256, size=8).astype(np.float64)
    else:
        vectors = rng.normal(size=(60, 8))
        q = rng.normal(size=8)
        if distance == D.COSINE:
            q = q / np.linalg.norm(q)
        q = q.astype(np.float16).astype(np.float64)
    try:
        pair.ours.create_collection(name, vectors_config=params)
        pair.ours.upsert(
            name,
            [models.PointStruct(id=i, vector=v.tolist()) for i, v in enumerate(vectors)],
            wait=True,
        )
        records = pair.ours.scroll(name, limit=100, with_vectors=True)[0]
        stored = np.asarray([r.vector for r in records], dtype=np.float64)
        if datatype == models.Datatype.UINT8:
            assert np.array_equal(stored, vectors)  # bytes are not normalised
        expected = numpy_scores(distance, stored, q)
        order = np.argsort(-expected if distance in (D.COSINE, D.DOT) else expected)[:10]
        hits = pair.ours.query_points(name, query=q.tolist(), limit=10).points
        assert [h.id for h in hits] == [records[i].id for i in order]
        assert [h.score for h in hits] == pytest.approx(expected[order].tolist(), rel=1e-3)
    finally:
        pair.ours.delete_collection(name)


# --------------------------------------------------------------------------- recommend etc.


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
@pytest.mark.parametrize("using", ["a", "b", "m", "s", "si"])
def test_recommend(pair: Pair, using: str, strategy: str) -> None:
    rng = rng_for(3)
    extra: Any = {
        "a": rng.normal(size=6).tolist(),
        "b": rng.normal(size=5).tolist(),
        "m": rng.normal(size=(2, 4)).tolist(),
        "s": sparse(rng),
        "si": sparse(rng, 25),
    }[using]
    reco = models.RecommendInput(positive=[1, 2, extra], negative=[9, UUIDS[1]], strategy=strategy)
    pair.query("named", query=models.RecommendQuery(recommend=reco), using=using, limit=12)
    only_pos = models.RecommendInput(positive=[11], strategy=strategy)
    pair.query(
        "named",
        query=models.RecommendQuery(recommend=only_pos),
        using=using,
        limit=8,
        query_filter=g_is(3),
    )
    if strategy != "average_vector":
        only_neg = models.RecommendInput(negative=[1, 2], strategy=strategy)
        pair.query("named", query=models.RecommendQuery(recommend=only_neg), using=using, limit=6)


@pytest.mark.parametrize("using", ["a", "b", "m", "s", "si"])
def test_discover_and_context(pair: Pair, using: str) -> None:
    pairs = [
        models.ContextPair(positive=1, negative=2),
        models.ContextPair(positive=19, negative=9),
    ]
    discover = models.DiscoverInput(target=11, context=pairs)
    pair.query("named", query=models.DiscoverQuery(discover=discover), using=using, limit=10)
    pair.query("named", query=models.ContextQuery(context=pairs), using=using, limit=10)
    pair.query("named", query=models.ContextQuery(context=pairs[0]), using=using, limit=200)


def test_relevance_feedback(pair: Pair) -> None:
    feedback = models.RelevanceFeedbackInput(
        target=5,
        feedback=[
            models.FeedbackItem(example=1, score=0.9),
            models.FeedbackItem(example=2, score=0.1),
            models.FeedbackItem(example=8, score=0.5),
        ],
        strategy=models.NaiveFeedbackStrategy(
            naive=models.NaiveFeedbackStrategyParams(a=1, b=1, c=1)
        ),
    )
    query = models.RelevanceFeedbackQuery(relevance_feedback=feedback)
    pair.query("named", query=query, using="a", limit=10)


# --------------------------------------------------------------------------- prefetch


def test_prefetch_rescoring(pair: Pair) -> None:
    rng = rng_for(4)
    qa, qb = rng.normal(size=6).tolist(), rng.normal(size=5).tolist()
    inner = models.Prefetch(query=qa, using="a", limit=40, filter=g_is(1))
    pair.query("named", prefetch=inner, query=qb, using="b", limit=10)
    nested = models.Prefetch(
        prefetch=[inner, models.Prefetch(query=sparse(rng), using="s", limit=30)],
        query=qb,
        using="b",
        limit=20,
    )
    pair.query("named", prefetch=[nested], query=7, using="a", limit=8)
    pair.query(
        "named",
        prefetch=[models.Prefetch(query=qa, using="a", limit=30)],
        query=models.ContextQuery(context=[models.ContextPair(positive=1, negative=2)]),
        using="m",
        limit=5,
        query_filter=models.Filter(must_not=[g_is(2)]),
    )
    # prefetch thresholds, lookups and order_by over prefetched points
    lookup = models.LookupLocation(collection="lookup", vector="v")
    mixed = [
        models.Prefetch(query=qb, using="b", limit=50, score_threshold=3.0),
        models.Prefetch(query=4, using="a", lookup_from=lookup, limit=20),
    ]
    pair.query("named", prefetch=mixed, query=qa, using="a", limit=10)
    ours, theirs = pair.both(
        "query_points",
        "named",
        prefetch=mixed,
        query=models.OrderByQuery(order_by=models.OrderBy(key="price")),
        limit=10,
    )
    assert [p.id for p in ours.points] == [p.id for p in theirs.points]
    # the outer filter reaches the prefetch: nothing with color red anywhere
    red = models.Filter(
        must_not=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]
    )
    hits = pair.query("named", prefetch=inner, query=qb, using="b", limit=10, query_filter=red)
    assert all(p.id % 3 != 0 for p in hits if isinstance(p.id, int))


@pytest.mark.parametrize(
    "fusion",
    [
        models.FusionQuery(fusion=models.Fusion.RRF),
        models.FusionQuery(fusion=models.Fusion.DBSF),
        models.RrfQuery(rrf=models.Rrf(k=5)),
        models.RrfQuery(rrf=models.Rrf(weights=[2.0, 0.5, 1.0])),
    ],
    ids=["rrf", "dbsf", "rrf_k", "rrf_weights"],
)
def test_fusion(pair: Pair, fusion: Any) -> None:
    rng = rng_for(5)
    prefetch = [
        models.Prefetch(query=rng.normal(size=6).tolist(), using="a", limit=25),
        models.Prefetch(query=sparse(rng), using="s", limit=25),
        models.Prefetch(query=rng.normal(size=(2, 4)).tolist(), using="m", limit=25),
    ]
    top = pair.query("named", prefetch=prefetch, query=fusion, limit=15)
    pair.query("named", prefetch=prefetch, query=fusion, limit=5, offset=3)
    pair.query(
        "named", prefetch=prefetch, query=fusion, limit=50, score_threshold=gap_after(top, 6)
    )
    pair.query("named", prefetch=prefetch, query=fusion, limit=10, query_filter=g_is(0))


def test_formula(pair: Pair) -> None:
    rng = rng_for(6)
    prefetch = [
        models.Prefetch(query=rng.normal(size=6).tolist(), using="a", limit=30),
        models.Prefetch(query=rng.normal(size=5).tolist(), using="b", limit=30),
    ]
    blue = models.FieldCondition(key="color", match=models.MatchValue(value="blue"))
    formula = models.FormulaQuery(
        formula=models.SumExpression(
            sum=[
                "$score",
                models.MultExpression(mult=[0.01, "price"]),
                models.MultExpression(mult=[0.5, blue]),
                models.MultExpression(mult=[-0.1, "$score[1]"]),
            ]
        ),
        defaults={"$score[1]": 3.0},
    )
    top = pair.query("named", prefetch=prefetch, query=formula, limit=12)
    pair.query(
        "named", prefetch=prefetch, query=formula, limit=40, score_threshold=between(top[5], top[6])
    )
    decay = models.FormulaQuery(
        formula=models.ExpDecayExpression(
            exp_decay=models.DecayParamsExpression(x="price", target=50.0, scale=20.0)
        )
    )
    pair.query("named", prefetch=prefetch, query=decay, limit=10, offset=2)


def test_order_by_scroll_and_sample(pair: Pair) -> None:
    for direction in (models.Direction.ASC, models.Direction.DESC):
        order = models.OrderBy(key="price", direction=direction)
        ours, theirs = pair.both(
            "query_points", "named", query=models.OrderByQuery(order_by=order), limit=12
        )
        assert [p.id for p in ours.points] == [p.id for p in theirs.points]
        assert [p.order_value for p in ours.points] == pytest.approx(
            [p.order_value for p in theirs.points]
        )
    start = models.OrderBy(key="price", direction=models.Direction.DESC, start_from=50)
    ours, theirs = pair.both(
        "query_points", "named", query=models.OrderByQuery(order_by=start), limit=5, offset=2
    )
    assert [p.id for p in ours.points] == [p.id for p in theirs.points]
    # no query: points by id
    ours, theirs = pair.both("query_points", "named", limit=15, offset=3, query_filter=g_is(1))
    assert [p.id for p in ours.points] == [p.id for p in theirs.points]
    # sample: distinct points from the filter, in any order
    sampled = pair.ours.query_points(
        pair.ours_names["named"],
        query=models.SampleQuery(sample=models.Sample.RANDOM),
        limit=10,
        query_filter=g_is(2),
        with_payload=True,
    ).points
    assert len({p.id for p in sampled}) == 10
    assert all(p.payload is not None and p.payload["g"] == 2 for p in sampled)


def test_batch(pair: Pair) -> None:
    rng = rng_for(8)
    requests = [
        models.QueryRequest(query=rng.normal(size=6).tolist(), using="a", limit=5),
        models.QueryRequest(query=sparse(rng), using="si", limit=7, filter=g_is(2)),
        models.QueryRequest(
            prefetch=[models.Prefetch(query=13, using="b", limit=20)],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=4,
        ),
        models.QueryRequest(query=12, using="m", limit=6, offset=2),
    ]
    ours, theirs = pair.both("query_batch_points", "named", requests=requests)
    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs, strict=True):
        assert_same(a.points, b.points)


# --------------------------------------------------------------------------- groups


def assert_same_groups(ours: models.GroupsResult, theirs: models.GroupsResult) -> None:
    assert [g.id for g in ours.groups] == [g.id for g in theirs.groups]
    for a, b in zip(ours.groups, theirs.groups, strict=True):
        assert_same(a.hits, b.hits)
        if b.lookup is None:
            assert a.lookup is None
        else:
            assert a.lookup is not None and a.lookup.id == b.lookup.id
            assert a.lookup.payload == b.lookup.payload


def test_groups(pair: Pair) -> None:
    rng = rng_for(9)
    q = rng.normal(size=6).tolist()
    for group_by, size, limit in (("g", 3, 3), ("multi", 2, 4), ("color", 5, 2), ("i", 1, 5)):
        ours, theirs = pair.both(
            "query_points_groups",
            "named",
            query=q,
            using="a",
            group_by=group_by,
            group_size=size,
            limit=limit,
        )
        assert_same_groups(ours, theirs)
    ours, theirs = pair.both(
        "query_points_groups",
        "named",
        query=sparse(rng),
        using="s",
        group_by="g",
        group_size=2,
        limit=10,
        query_filter=g_is(1),
    )
    assert_same_groups(ours, theirs)
    prefetch = [models.Prefetch(query=q, using="a", limit=5)]
    ours, theirs = pair.both(
        "query_points_groups",
        "named",
        prefetch=prefetch,
        query=4,
        using="b",
        group_by="g",
        group_size=2,
        limit=3,
    )
    assert_same_groups(ours, theirs)
    ours, theirs = pair.both(
        "query_points_groups",
        "named",
        query=q,
        using="a",
        group_by="multi",
        group_size=2,
        limit=6,
        with_lookup="lookup",
    )
    assert_same_groups(ours, theirs)
    assert any(g.lookup is not None for g in ours.groups)


def test_lookup_from(pair: Pair) -> None:
    lookup = models.LookupLocation(collection="lookup", vector="v")
    pair.query("named", query=3, using="a", lookup_from=lookup, limit=10)
    reco = models.RecommendInput(positive=[1, 2], negative=[5], strategy="best_score")
    pair.query(
        "named",
        query=models.RecommendQuery(recommend=reco),
        using="a",
        lookup_from=lookup,
        limit=10,
    )


def test_search_matrix(pair: Pair) -> None:
    for using in ("a", "s", "m"):
        kwargs: dict[str, Any] = dict(query_filter=g_is(1), sample=1000, limit=3, using=using)
        ours, theirs = pair.both("search_matrix_pairs", "named", **kwargs)
        assert [(p.a, p.b) for p in ours.pairs] == [(p.a, p.b) for p in theirs.pairs]
        assert [p.score for p in ours.pairs] == pytest.approx(
            [p.score for p in theirs.pairs], abs=TOL
        )
        ours, theirs = pair.both("search_matrix_offsets", "named", **kwargs)
        assert ours.ids == theirs.ids
        assert ours.offsets_row == theirs.offsets_row
        assert ours.offsets_col == theirs.offsets_col
        assert ours.scores == pytest.approx(theirs.scores, abs=TOL)
    sampled = pair.ours.search_matrix_pairs(pair.ours_names["named"], sample=5, limit=2, using="b")
    assert len(sampled.pairs) == 10


# --------------------------------------------------------------------------- edge cases


def test_empty_and_nothing_matches(pair: Pair) -> None:
    pair.query("empty", query=[1, 2, 3, 4], limit=10)
    assert pair.ours.query_points(pair.ours_names["empty"], query=[1, 2, 3, 4]).points == []
    nothing = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=9))])
    assert pair.query("named", query=[1.0] * 6, using="a", query_filter=nothing) == []
    fused = pair.query(
        "named",
        prefetch=[models.Prefetch(query=[1.0] * 6, using="a", filter=nothing)],
        query=models.FusionQuery(fusion=models.Fusion.RRF),
    )
    assert fused == []
    groups = pair.ours.query_points_groups(
        pair.ours_names["empty"], query=[1, 2, 3, 4], group_by="g"
    )
    assert groups.groups == []


def test_deleted_points(pair: Pair) -> None:
    name = pair.ours_names["named"]
    hits = pair.ours.query_points(name, query=[1.0] * 5, using="b", limit=1000).points
    assert len(hits) == N_NAMED - len(DELETED)
    assert {p.id for p in hits}.isdisjoint(DELETED)
    with api_error(404, "No point with id 17 found"):
        pair.ours.query_points(name, query=17, using="b")


def test_errors(pair: Pair) -> None:
    dense = pair.ours_names[D.DOT.value]
    named = pair.ours_names["named"]
    with api_error(400, "Wrong input: Vector dimension error: expected dim: 8, got 3"):
        pair.ours.query_points(dense, query=[1.0, 2.0, 3.0])
    with api_error(400, "Wrong input: Vector dimension error: expected dim: 6, got 2"):
        pair.ours.query_points(
            named,
            query=models.RecommendQuery(recommend=models.RecommendInput(positive=[1, [0.5, 0.5]])),
            using="a",
        )
    with api_error(400, "Not existing vector name error: nope"):
        pair.ours.query_points(named, query=[1.0] * 6, using="nope")
    with api_error(400, "Not existing vector name error"):
        pair.ours.query_points(named, query=[1.0] * 6)
    with api_error(404, "No point with id 12345 found"):
        pair.ours.query_points(dense, query=12345)
    with api_error(404, "Vector with name"):
        pair.ours.query_points(named, query=6, using="a")  # point 6 has no vector `a`
    with api_error(400, "A query is needed to merge the prefetches"):
        pair.ours.query_points(named, prefetch=models.Prefetch(query=[1.0] * 5, using="b"))
    with api_error(400, "A query is needed to use the score_threshold"):
        pair.ours.query_points(named, score_threshold=0.5)
    with api_error(400, "Fusion queries cannot be combined with the 'using' field"):
        pair.ours.query_points(
            named,
            prefetch=models.Prefetch(query=[1.0] * 5, using="b"),
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            using="b",
        )
    with api_error(404):
        pair.ours.query_points("no_such_collection", query=[1.0])
    with api_error(400, "No range index"):
        pair.ours.query_points(named, query=models.OrderByQuery(order_by="i"))
