"""Qdrant's gRPC API (port 6334) against REST on the same server.

One private server serves both APIs; every test drives it with the official client twice,
``prefer_grpc=True`` and plain REST, and expects the same answers and the same failures
(REST status -> gRPC status code, same message where Qdrant's two APIs say the same; the
failures Qdrant words differently over gRPC are in test_grpc_errors). Older RPCs that
qdrant-client no longer wraps (Search, Recommend, Discover and their batch and group forms)
are called through the client's own gRPC stubs and compared with the REST routes of the
same name.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.conftest import ServerProcess, make_grpc_client, module_server

pytestmark = pytest.mark.server_only(reason="the gRPC wire")

DIM = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-grpc", grpc=True)


@pytest.fixture(scope="module")
def g(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = make_grpc_client(server, timeout=30)
    yield qc
    qc.close()


@pytest.fixture(scope="module")
def r(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = QdrantClient(url=server.url, prefer_grpc=False, timeout=30)
    yield qc
    qc.close()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as hc:
        yield hc


@pytest.fixture
def name(r: QdrantClient) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append(f"grpc_{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    for n in made:
        r.delete_collection(n)


# --------------------------------------------------------------------------- helpers


def norm(x: Any) -> Any:
    """Models as plain data, floats as float32: the same answer over both wires compares
    equal (gRPC carries scores as float, REST as JSON numbers)."""
    if hasattr(x, "model_dump"):
        return norm(x.model_dump())
    if isinstance(x, dict):
        # a protobuf map cannot tell a missing payload from an empty one
        return {k: {} if k == "payload" and v is None else norm(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [norm(v) for v in x]
    if isinstance(x, float):
        return float(np.float32(x))
    return x


def same(a: Any, b: Any) -> None:
    assert norm(a) == norm(b)


def grpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def rest_error(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(UnexpectedResponse) as info:
        call()
    return info.value.status_code, info.value.structured()["status"]["error"]


def vec(i: int, dim: int = DIM) -> list[float]:
    return np.random.default_rng(i).random(dim).astype(np.float32).tolist()


def payload(i: int) -> dict[str, Any]:
    return {
        "n": i,
        "f": i / 4,
        "color": ["red", "green", "blue"][i % 3],
        "tags": [f"t{i % 2}", f"u{i % 5}"],
        "nested": {"a": [1, 2.5, None, True], "b": {"deep": f"x{i}"}},
        "maybe": None if i % 4 == 0 else i,
    }


def fill(client: QdrantClient, coll: str, n: int = 30, sparse: bool = False) -> None:
    points = []
    for i in range(n):
        vector: Any = vec(i)
        if sparse:
            vector = {
                "": vector,
                "sp": models.SparseVector(indices=[i % 7, 10 + i], values=[1.0, i]),
            }
        points.append(models.PointStruct(id=i, vector=vector, payload=payload(i)))
    client.upsert(coll, points=points, wait=True)


def simple(client: QdrantClient, coll: str, sparse: bool = False) -> None:
    client.create_collection(
        coll,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        sparse_vectors_config={"sp": models.SparseVectorParams()} if sparse else None,
    )


# --------------------------------------------------------------------------- collections


def test_health_check(g: QdrantClient, r: QdrantClient) -> None:
    info = g.info()
    assert info.title == r.info().title
    assert info.version == r.info().version


def test_collection_lifecycle(g: QdrantClient, r: QdrantClient, name: Callable[[], str]) -> None:
    unnamed, named = name(), name()
    assert g.create_collection(
        unnamed,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        hnsw_config=models.HnswConfigDiff(m=8),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=500),
    )
    assert g.create_collection(
        named,
        vectors_config={
            "a": models.VectorParams(size=3, distance=models.Distance.EUCLID),
            "m": models.VectorParams(
                size=2,
                distance=models.Distance.COSINE,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            ),
        },
        sparse_vectors_config={"s": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        quantization_config=models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8)
        ),
    )
    sparse_only = name()
    assert g.create_collection(
        sparse_only, sparse_vectors_config={"s": models.SparseVectorParams()}
    )
    for coll in (unnamed, named, sparse_only):
        assert g.collection_exists(coll)
        same(g.get_collection(coll), r.get_collection(coll))
    assert g.get_collection(unnamed).config.hnsw_config.m == 8
    config = g.get_collection(named).config
    assert config.params.sparse_vectors["s"].modifier == models.Modifier.IDF
    assert isinstance(config.quantization_config, models.ScalarQuantization)
    names = {c.name for c in g.get_collections().collections}
    assert {unnamed, named, sparse_only} <= names
    assert names == {c.name for c in r.get_collections().collections}

    assert g.update_collection(
        unnamed, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=777)
    )
    assert r.get_collection(unnamed).config.optimizer_config.indexing_threshold == 777
    same(g.get_collection(unnamed), r.get_collection(unnamed))
    assert g.update_collection(
        named,
        vectors_config={"a": models.VectorParamsDiff(hnsw_config=models.HnswConfigDiff(m=32))},
        sparse_vectors_config={"s": models.SparseVectorParams(modifier=models.Modifier.NONE)},
    )
    config = r.get_collection(named).config
    assert config.params.vectors["a"].hnsw_config.m == 32
    assert config.params.sparse_vectors["s"].modifier == models.Modifier.NONE
    same(g.get_collection(named), r.get_collection(named))

    assert g.delete_collection(unnamed)
    assert not g.collection_exists(unnamed)
    assert not r.collection_exists(unnamed)
    assert not g.delete_collection(unnamed)


def test_every_config_part_round_trips_over_grpc(
    g: QdrantClient, r: QdrantClient, name: Callable[[], str]
) -> None:
    """Collections created over gRPC with each config part (the bodies the decoder tests
    use) read back over gRPC as over REST, with payload indexes of every kind."""
    from tests.test_grpc_config_decode import CREATES, SCHEMAS

    for body in CREATES:
        m = models.CreateCollection.model_validate(body)
        coll = name()
        assert g.create_collection(
            coll,
            vectors_config=m.vectors,
            sparse_vectors_config=m.sparse_vectors,
            shard_number=m.shard_number,
            sharding_method=m.sharding_method,
            replication_factor=m.replication_factor,
            write_consistency_factor=m.write_consistency_factor,
            on_disk_payload=m.on_disk_payload,
            hnsw_config=m.hnsw_config,
            optimizers_config=m.optimizers_config,
            wal_config=m.wal_config,
            quantization_config=m.quantization_config,
            strict_mode_config=m.strict_mode_config,
            metadata=m.metadata,
        )
        if m.sharding_method is None:
            for i, params in enumerate(SCHEMAS):
                g.create_payload_index(coll, f"f{i}", field_schema=params, wait=True)
        same(g.get_collection(coll), r.get_collection(coll))


def test_collection_errors(g: QdrantClient, r: QdrantClient, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll)
    err = grpc_error(lambda: simple(g, coll))
    status, message = rest_error(lambda: simple(r, coll))
    assert (err.code(), status) == (grpc.StatusCode.ALREADY_EXISTS, 409)
    assert err.details() == message

    missing = name()
    err = grpc_error(lambda: g.get_collection(missing))
    status, message = rest_error(lambda: r.get_collection(missing))
    assert (err.code(), status) == (grpc.StatusCode.NOT_FOUND, 404)
    assert err.details() == message == f"Not found: Collection `{missing}` doesn't exist!"
    err = grpc_error(lambda: g.count(missing))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    err = grpc_error(lambda: g.create_collection("bad/name", vectors_config=None))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_create_with_an_empty_vectors_config(
    g: QdrantClient, r: QdrantClient, name: Callable[[], str]
) -> None:
    """A `vectors_config` set with neither `params` nor `params_map` converts to no dense
    vectors in Qdrant (as if it were unset): the collection is created, sparse only."""
    coll = name()
    sparse = pb.SparseVectorConfig(map={"sp": pb.SparseVectorParams()})
    created = g.grpc_collections.Create(
        pb.CreateCollection(
            collection_name=coll, vectors_config=pb.VectorsConfig(), sparse_vectors_config=sparse
        )
    )
    assert created.result is True
    params = r.get_collection(coll).config.params
    assert not params.vectors
    assert params.sparse_vectors is not None and set(params.sparse_vectors) == {"sp"}


# --------------------------------------------------------------------------- points


def test_upsert_and_retrieve(g: QdrantClient, r: QdrantClient, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll)
    fill(g, coll, 20)
    uid = str(uuid.uuid4())
    g.upsert(
        coll,
        points=models.Batch(
            ids=[100, 101, uid],
            vectors=[vec(100), vec(101), vec(102)],
            payloads=[{"k": "a"}, {"k": [1, {"x": -5}]}, {"big": 2**63 - 1}],
        ),
        wait=True,
    )
    ids: list[Any] = [0, 5, 19, 100, 101, uid, 555]
    for kwargs in (
        {},
        {"with_vectors": True},
        {"with_payload": ["nested.b", "n"]},
        {"with_payload": models.PayloadSelectorExclude(exclude=["nested"])},
        {"with_payload": False, "with_vectors": True},
    ):
        got = g.retrieve(coll, ids, **kwargs)
        assert len(got) == 6
        same(got, r.retrieve(coll, ids, **kwargs))
    assert g.retrieve(coll, [uid])[0].id == uid
    assert g.count(coll).count == r.count(coll).count == 23


def test_wait_false_and_operation_ids(g: QdrantClient, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll)
    first = g.upsert(coll, points=[models.PointStruct(id=1, vector=vec(1))], wait=False)
    second = g.upsert(coll, points=[models.PointStruct(id=2, vector=vec(2))], wait=True)
    assert first.status == models.UpdateStatus.ACKNOWLEDGED
    assert second.status == models.UpdateStatus.COMPLETED
    assert second.operation_id is not None and first.operation_id is not None
    assert second.operation_id > first.operation_id
    assert second.operation_id == 1  # Qdrant numbers a collection's operations from 0
    assert g.count(coll).count == 2


def test_named_sparse_and_multi_vectors(
    g: QdrantClient, r: QdrantClient, name: Callable[[], str]
) -> None:
    coll = name()
    g.create_collection(
        coll,
        vectors_config={
            "a": models.VectorParams(size=3, distance=models.Distance.DOT),
            "m": models.VectorParams(
                size=2,
                distance=models.Distance.DOT,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            ),
        },
        sparse_vectors_config={"s": models.SparseVectorParams()},
    )
    points = [
        models.PointStruct(
            id=i,
            vector={
                "a": vec(i, 3),
                "m": [vec(i, 2), vec(i + 50, 2), vec(i + 99, 2)][: 1 + i % 3],
                "s": models.SparseVector(indices=[i, 40 - i], values=[0.5, float(i)]),
            },
            payload={"i": i},
        )
        for i in range(12)
    ]
    g.upsert(coll, points=points, wait=True)
    g.upsert(coll, points=[models.PointStruct(id=50, vector={"a": [1.0, 2.0, 3.0]})], wait=True)
    ids = [*range(12), 50]
    for with_vectors in (True, ["s"], ["m", "a"]):
        got = g.retrieve(coll, ids, with_vectors=with_vectors)
        same(got, r.retrieve(coll, ids, with_vectors=with_vectors))
    assert g.retrieve(coll, [2], with_vectors=True)[0].vector["m"] == points[2].vector["m"]
    for using, query in (
        ("a", [0.1, 0.2, 0.3]),
        ("m", [[0.1, 0.9], [0.5, 0.5]]),
        ("s", models.SparseVector(indices=[3, 37], values=[1.0, 2.0])),
    ):
        same(
            g.query_points(coll, query=query, using=using, limit=5, with_vectors=True),
            r.query_points(coll, query=query, using=using, limit=5, with_vectors=True),
        )
    g.update_vectors(
        coll,
        points=[
            models.PointVectors(id=50, vector={"s": models.SparseVector(indices=[1], values=[2.0])})
        ],
    )
    g.delete_vectors(coll, vectors=["a"], points=[0, 1])
    same(
        g.retrieve(coll, [0, 1, 50], with_vectors=True),
        r.retrieve(coll, [0, 1, 50], with_vectors=True),
    )
    assert set(g.retrieve(coll, [0], with_vectors=True)[0].vector) == {"m", "s"}


FILTERS = [
    models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]),
    models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=5, lt=17.5))]),
    models.Filter(
        should=[
            models.FieldCondition(key="tags", match=models.MatchAny(any=["t1"])),
            models.HasIdCondition(has_id=[2, 4]),
        ],
        must_not=[models.FieldCondition(key="n", match=models.MatchExcept(**{"except": [3, 5]}))],
    ),
    models.Filter(must=[models.IsNullCondition(is_null=models.PayloadField(key="maybe"))]),
    models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key="tags"))]),
    models.Filter(
        min_should=models.MinShould(
            conditions=[
                models.FieldCondition(key="color", match=models.MatchValue(value="blue")),
                models.FieldCondition(key="n", range=models.Range(lte=10)),
                models.FieldCondition(key="tags", match=models.MatchValue(value="u0")),
            ],
            min_count=2,
        )
    ),
    models.Filter(
        must=[
            models.Filter(
                should=[
                    models.FieldCondition(key="nested.b.deep", match=models.MatchValue(value="x7")),
                    models.FieldCondition(key="f", range=models.Range(gt=6.0)),
                ]
            ),
            models.FieldCondition(key="tags", values_count=models.ValuesCount(gte=2)),
        ]
    ),
]


def test_scroll_count_and_filters(
    g: QdrantClient, r: QdrantClient, name: Callable[[], str]
) -> None:
    coll = name()
    simple(g, coll)
    fill(g, coll, 30)
    for i, flt in enumerate(FILTERS):
        got, after = g.scroll(coll, scroll_filter=flt, limit=100, with_vectors=i % 2 == 0)
        assert got, i
        same((got, after), r.scroll(coll, scroll_filter=flt, limit=100, with_vectors=i % 2 == 0))
        assert g.count(coll, count_filter=flt).count == r.count(coll, count_filter=flt).count
        approx = g.count(coll, count_filter=flt, exact=False).count
        assert approx == r.count(coll, count_filter=flt, exact=False).count

    page, after = g.scroll(coll, limit=7, offset=3)
    assert [p.id for p in page] == list(range(3, 10)) and after == 10
    same((page, after), r.scroll(coll, limit=7, offset=3))

    assert g.create_payload_index(coll, "n", models.PayloadSchemaType.INTEGER).status == (
        models.UpdateStatus.COMPLETED
    )
    g.create_payload_index(coll, "f", models.PayloadSchemaType.FLOAT)
    g.create_payload_index(
        coll,
        "color",
        models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
    )
    g.create_payload_index(
        coll,
        "nested.b.deep",
        models.TextIndexParams(
            type=models.TextIndexType.TEXT,
            tokenizer=models.TokenizerType.PREFIX,
            lowercase=True,
            min_token_len=1,
        ),
    )
    info = g.get_collection(coll)
    same(info, r.get_collection(coll))
    schema = info.payload_schema
    assert schema["n"].data_type == models.PayloadSchemaType.INTEGER
    assert schema["color"].params.is_tenant is True
    assert schema["nested.b.deep"].params.tokenizer == models.TokenizerType.PREFIX
    text = models.Filter(
        must=[models.FieldCondition(key="nested.b.deep", match=models.MatchText(text="x1"))]
    )
    assert g.count(coll, count_filter=text).count == r.count(coll, count_filter=text).count == 11
    for order in (
        models.OrderBy(key="n", direction=models.Direction.DESC),
        models.OrderBy(key="f", start_from=3.5),
        models.OrderBy(key="n", start_from=20),
    ):
        got, _ = g.scroll(coll, order_by=order, limit=6)
        assert got and all(p.order_value is not None for p in got)
        same(got, r.scroll(coll, order_by=order, limit=6)[0])
    assert [p.id for p in g.scroll(coll, order_by="n", limit=3)[0]] == [0, 1, 2]
    g.delete_payload_index(coll, "f")
    g.delete_payload_index(coll, "nested.b.deep")
    assert set(g.get_collection(coll).payload_schema) == {"n", "color"}


def test_payload_operations(g: QdrantClient, r: QdrantClient, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll)
    fill(g, coll, 12)
    red = models.Filter(
        must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]
    )
    g.set_payload(coll, payload={"extra": {"k": 1}, "n": -1}, points=[1, 2])
    g.set_payload(coll, payload={"deep": True}, points=[2], key="nested.b")
    g.set_payload(coll, payload={"red": True}, points=red)
    g.overwrite_payload(coll, payload={"only": "this"}, points=[3])
    g.delete_payload(coll, keys=["tags", "nested.a"], points=[4, 5])
    g.delete_payload(coll, keys=["f"], points=red)
    g.clear_payload(coll, points_selector=[6])
    g.clear_payload(coll, points_selector=models.Filter(must=[models.HasIdCondition(has_id=[7])]))
    got = g.retrieve(coll, list(range(12)))
    same(got, r.retrieve(coll, list(range(12))))
    by_id = {p.id: p.payload for p in got}
    assert by_id[1]["extra"] == {"k": 1} and by_id[1]["n"] == -1
    assert by_id[2]["nested"]["b"] == {"deep": True}
    assert by_id[3] == {"only": "this"}
    assert "tags" not in by_id[4] and "a" not in by_id[4]["nested"]
    assert by_id[6] == {} and by_id[7] == {}
    assert all(by_id[i].get("red") for i in (0, 9)) and "f" not in by_id[9]

    err = grpc_error(lambda: g.set_payload(coll, payload={"a": 1}, points=[999]))
    status, message = rest_error(lambda: r.set_payload(coll, payload={"a": 1}, points=[999]))
    assert (err.code(), status) == (grpc.StatusCode.NOT_FOUND, 404)
    assert err.details() == message


def test_delete_points(g: QdrantClient, r: QdrantClient, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll)
    fill(g, coll, 20)
    g.delete(coll, points_selector=[0, 1, 2])
    g.delete(
        coll,
        points_selector=models.FilterSelector(
            filter=models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=15))])
        ),
    )
    assert [p.id for p in g.scroll(coll, limit=100)[0]] == list(range(3, 15))
    same(g.scroll(coll, limit=100), r.scroll(coll, limit=100))
    g.update_vectors(coll, points=[models.PointVectors(id=3, vector=[1.0, 0.0, 0.0, 0.0])])
    assert g.retrieve(coll, [3], with_vectors=True)[0].vector == [1.0, 0.0, 0.0, 0.0]


def test_batch_update(g: QdrantClient, r: QdrantClient, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll)
    fill(g, coll, 10)
    ops = [
        models.UpsertOperation(
            upsert=models.PointsList(
                points=[models.PointStruct(id=50, vector=vec(50), payload={"a": 1})]
            )
        ),
        models.UpsertOperation(
            upsert=models.PointsBatch(batch=models.Batch(ids=[51, 52], vectors=[vec(51), vec(52)]))
        ),
        models.DeleteOperation(delete=models.PointIdsList(points=[0])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"s": 1}, points=[1, 50])),
        models.OverwritePayloadOperation(
            overwrite_payload=models.SetPayload(payload={"o": 2}, points=[2])
        ),
        models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["n"], points=[3])),
        models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[4])),
        models.UpdateVectorsOperation(
            update_vectors=models.UpdateVectors(points=[models.PointVectors(id=5, vector=vec(500))])
        ),
        models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(vector=[""], points=[6])),
    ]
    results = g.batch_update_points(coll, ops)
    assert len(results) == len(ops)
    assert all(res.status == models.UpdateStatus.COMPLETED for res in results)
    ids = [*range(10), 50, 51, 52]
    got = g.retrieve(coll, ids, with_vectors=True)
    same(got, r.retrieve(coll, ids, with_vectors=True))
    by_id = {p.id: p for p in got}
    assert 0 not in by_id and by_id[50].payload == {"a": 1, "s": 1}
    assert by_id[2].payload == {"o": 2} and by_id[4].payload == {}
    assert by_id[5].vector != by_id[7].vector and by_id[5].vector is not None
    assert not by_id[6].vector


def test_upsert_errors(g: QdrantClient, r: QdrantClient, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll, sparse=True)
    cases: list[Callable[[QdrantClient], Any]] = [
        lambda c: c.upsert(coll, points=[models.PointStruct(id=1, vector=[1.0, 2.0])]),
        lambda c: c.upsert(coll, points=[models.PointStruct(id=1, vector={"nope": [1.0]})]),
        lambda c: c.query_points(coll, query=[1.0, 2.0, 3.0]),
        lambda c: c.query_points(coll, query=[1.0] * DIM, using="sp"),
        lambda c: c.update_vectors(coll, points=[models.PointVectors(id=77, vector=vec(1))]),
    ]
    for case in cases:
        err = grpc_error(lambda case=case: case(g))
        status, message = rest_error(lambda case=case: case(r))
        expected = grpc.StatusCode.NOT_FOUND if status == 404 else grpc.StatusCode.INVALID_ARGUMENT
        assert err.code() == expected, message
        assert err.details() == message
    assert g.count(coll).count == 0


# --------------------------------------------------------------------------- queries


RENAMED = {"query_filter": "filter", "with_vectors": "with_vector"}  # QueryRequest's names


def test_query_points(g: QdrantClient, r: QdrantClient, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll, sparse=True)
    fill(g, coll, 40, sparse=True)
    g.create_payload_index(coll, "n", models.PayloadSchemaType.INTEGER)
    requests: list[dict[str, Any]] = [
        {"query": vec(1000), "limit": 5},
        {"query": vec(1001), "query_filter": FILTERS[1], "with_payload": True, "limit": 4},
        {"query": 7, "limit": 3, "with_vectors": True, "offset": 2},
        {"query": 3, "limit": 3, "query_filter": FILTERS[2]},
        {
            "query": models.SparseVector(indices=[1, 12], values=[1.0, 0.5]),
            "using": "sp",
            "limit": 6,
        },
        {
            "prefetch": [
                models.Prefetch(query=vec(1002), limit=10),
                models.Prefetch(
                    query=models.SparseVector(indices=[2, 15], values=[1.0, 1.0]),
                    using="sp",
                    limit=10,
                ),
            ],
            "query": models.FusionQuery(fusion=models.Fusion.RRF),
            "limit": 5,
            "with_payload": ["color"],
        },
        {
            "prefetch": [
                models.Prefetch(query=vec(1003), limit=8, filter=FILTERS[0]),
                models.Prefetch(query=vec(1004), limit=8),
            ],
            "query": models.FusionQuery(fusion=models.Fusion.DBSF),
            "limit": 5,
        },
        {
            "query": models.OrderByQuery(order_by=models.OrderBy(key="n", direction="desc")),
            "limit": 4,
        },
        {
            "query": models.RecommendQuery(
                recommend=models.RecommendInput(positive=[1, 2], negative=[3])
            ),
            "limit": 4,
        },
        {
            "query": models.DiscoverQuery(
                discover=models.DiscoverInput(
                    target=vec(9), context=[models.ContextPair(positive=4, negative=5)]
                )
            ),
            "limit": 4,
        },
        {
            "query": models.ContextQuery(context=[models.ContextPair(positive=1, negative=2)]),
            "limit": 4,
        },
        {"query": vec(1005), "score_threshold": 0.8, "limit": 50},
        {
            "query": models.NearestQuery(nearest=vec(1006), mmr=models.Mmr(diversity=0.5)),
            "limit": 5,
        },
        {
            "prefetch": models.Prefetch(query=vec(1007), limit=20),
            "query": models.FormulaQuery(
                formula=models.SumExpression(
                    sum=["$score", models.MultExpression(mult=[0.01, "n"])]
                )
            ),
            "limit": 5,
        },
    ]
    for kwargs in requests:
        got = g.query_points(coll, **kwargs)
        assert got.points, kwargs
        same(got, r.query_points(coll, **kwargs))

    batch = [
        models.QueryRequest(**{RENAMED.get(k, k): v for k, v in kw.items()}) for kw in requests[:6]
    ]
    same(g.query_batch_points(coll, batch), r.query_batch_points(coll, batch))

    for kwargs in (
        {"query": vec(1010), "group_by": "color", "limit": 3, "group_size": 2},
        {"query": vec(1011), "group_by": "tags", "limit": 4, "group_size": 3, "with_payload": True},
    ):
        got_groups = g.query_points_groups(coll, **kwargs)
        assert got_groups.groups
        same(got_groups, r.query_points_groups(coll, **kwargs))


def test_facet_and_matrix(g: QdrantClient, r: QdrantClient, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll)
    fill(g, coll, 30)
    g.create_payload_index(coll, "color", models.PayloadSchemaType.KEYWORD)
    g.create_payload_index(coll, "n", models.PayloadSchemaType.INTEGER)
    for kwargs in (
        {"key": "color"},
        {"key": "n", "limit": 5, "exact": True},
        {"key": "color", "facet_filter": FILTERS[1]},
    ):
        got = g.facet(coll, **kwargs)
        assert got.hits
        same(got, r.facet(coll, **kwargs))
    # A sample as large as the filtered set takes all of it: the same pairs either way.
    few = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(lt=8))])
    pairs = [
        {
            (p.a, p.b, float(np.float32(p.score)))
            for p in c.search_matrix_pairs(coll, few, 3, 10).pairs
        }
        for c in (g, r)
    ]
    assert pairs[0] == pairs[1] and len(pairs[0]) == 8 * 3
    offsets = [c.search_matrix_offsets(coll, few, 2, 10) for c in (g, r)]
    triples = [
        {
            (o.ids[i], o.ids[j], float(np.float32(s)))
            for i, j, s in zip(o.offsets_row, o.offsets_col, o.scores)
        }
        for o in offsets
    ]
    assert triples[0] == triples[1] and len(triples[0]) == 8 * 2


# --------------------------------------------------------------------------- older RPCs


def _hits(points: Any) -> list[tuple[Any, float]]:
    out = []
    for p in points:
        pid = p["id"] if isinstance(p, dict) else (p.id.num if p.id.HasField("num") else p.id.uuid)
        score = p["score"] if isinstance(p, dict) else p.score
        out.append((pid, float(np.float32(score))))
    return out


def test_older_search_rpcs(g: QdrantClient, http: httpx.Client, name: Callable[[], str]) -> None:
    coll = name()
    simple(g, coll, sparse=True)
    fill(g, coll, 25, sparse=True)
    stub = g.grpc_points
    red = pb.Filter(
        must=[pb.Condition(field=pb.FieldCondition(key="color", match=pb.Match(keyword="red")))]
    )

    def rest(path: str, body: dict[str, Any]) -> Any:
        response = http.post(f"/collections/{coll}/points/{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()["result"]

    search = pb.SearchPoints(
        collection_name=coll,
        vector=vec(300),
        limit=5,
        filter=red,
        with_payload=pb.WithPayloadSelector(enable=True),
    )
    answer = stub.Search(search)
    assert answer.time > 0 and len(answer.result) > 0
    red_json = {"must": [{"key": "color", "match": {"value": "red"}}]}
    expected = rest(
        "search", {"vector": vec(300), "limit": 5, "filter": red_json, "with_payload": True}
    )
    assert _hits(answer.result) == _hits(expected)
    assert answer.result[0].payload["color"].string_value == "red"
    # GetPoints without a payload selector answers no payload (Qdrant's retrieve default).
    got = stub.Get(pb.GetPoints(collection_name=coll, ids=[pb.PointId(num=1)]))
    assert [p.id.num for p in got.result] == [1] and not got.result[0].payload
    got = stub.Get(
        pb.GetPoints(
            collection_name=coll,
            ids=[pb.PointId(num=1)],
            with_payload=pb.WithPayloadSelector(enable=True),
        )
    )
    assert got.result[0].payload

    sparse = pb.SearchPoints(
        collection_name=coll,
        vector=[1.0, 2.0],
        sparse_indices=pb.SparseIndices(data=[3, 14]),
        vector_name="sp",
        limit=4,
    )
    expected = rest(
        "search",
        {
            "vector": {"name": "sp", "vector": {"indices": [3, 14], "values": [1.0, 2.0]}},
            "limit": 4,
        },
    )
    assert _hits(stub.Search(sparse).result) == _hits(expected)

    batch = stub.SearchBatch(
        pb.SearchBatchPoints(collection_name=coll, search_points=[search, sparse])
    )
    assert [_hits(b.result) for b in batch.result] == [
        _hits(stub.Search(search).result),
        _hits(stub.Search(sparse).result),
    ]

    ids = [pb.PointId(num=n) for n in (1, 2)]
    recommend = pb.RecommendPoints(
        collection_name=coll,
        positive=ids,
        negative=[pb.PointId(num=3)],
        positive_vectors=[pb.Vector(data=vec(301))],
        limit=6,
        strategy=pb.RecommendStrategy.BestScore,
    )
    expected = rest(
        "recommend",
        {"positive": [1, 2, vec(301)], "negative": [3], "limit": 6, "strategy": "best_score"},
    )
    assert _hits(stub.Recommend(recommend).result) == _hits(expected)
    both = stub.RecommendBatch(
        pb.RecommendBatchPoints(collection_name=coll, recommend_points=[recommend, recommend])
    )
    assert [_hits(b.result) for b in both.result] == [_hits(expected)] * 2

    discover = pb.DiscoverPoints(
        collection_name=coll,
        target=pb.TargetVector(single=pb.VectorExample(id=pb.PointId(num=4))),
        context=[
            pb.ContextExamplePair(
                positive=pb.VectorExample(id=pb.PointId(num=5)),
                negative=pb.VectorExample(vector=pb.Vector(data=vec(302))),
            )
        ],
        limit=5,
    )
    expected = rest(
        "discover", {"target": 4, "context": [{"positive": 5, "negative": vec(302)}], "limit": 5}
    )
    assert _hits(stub.Discover(discover).result) == _hits(expected)
    batch_d = stub.DiscoverBatch(
        pb.DiscoverBatchPoints(collection_name=coll, discover_points=[discover])
    )
    assert [_hits(b.result) for b in batch_d.result] == [_hits(expected)]

    groups = stub.SearchGroups(
        pb.SearchPointGroups(
            collection_name=coll, vector=vec(303), limit=3, group_by="color", group_size=2
        )
    )
    expected = rest(
        "search/groups", {"vector": vec(303), "limit": 3, "group_by": "color", "group_size": 2}
    )
    assert [g_.id.string_value for g_ in groups.result.groups] == [
        x["id"] for x in expected["groups"]
    ]
    assert [_hits(g_.hits) for g_ in groups.result.groups] == [
        _hits(x["hits"]) for x in expected["groups"]
    ]
    rgroups = stub.RecommendGroups(
        pb.RecommendPointGroups(
            collection_name=coll, positive=ids, limit=2, group_by="n", group_size=1
        )
    )
    expected = rest(
        "recommend/groups", {"positive": [1, 2], "limit": 2, "group_by": "n", "group_size": 1}
    )
    assert [g_.id.unsigned_value for g_ in rgroups.result.groups] == [
        x["id"] for x in expected["groups"]
    ]


def test_rpc_errors_carry_rest_messages(
    g: QdrantClient, http: httpx.Client, name: Callable[[], str]
) -> None:
    coll = name()
    simple(g, coll)
    stub = g.grpc_points
    err = grpc_error(
        lambda: stub.Search(pb.SearchPoints(collection_name=coll, vector=[1.0], limit=3))
    )
    response = http.post(f"/collections/{coll}/points/search", json={"vector": [1.0], "limit": 3})
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == response.json()["status"]["error"]
    err = grpc_error(lambda: stub.Get(pb.GetPoints(collection_name=coll, ids=[pb.PointId()])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad_filter = pb.Filter(must=[pb.Condition()])
    err = grpc_error(lambda: stub.Count(pb.CountPoints(collection_name=coll, filter=bad_filter)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
