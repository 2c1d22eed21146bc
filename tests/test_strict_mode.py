"""Strict mode enforced as Qdrant enforces it (`strict_mode_config` of a collection).

Every limit answers 400 in Qdrant's words (`Bad request: Limit exceeded 8 > 4 for "limit".
Help: ...`), rate limits 429 with `Retry-After` (gRPC: RESOURCE_EXHAUSTED and a
`retry-after` trailer); a PATCH merges the config field by field, persists it, and the
server's `storage.collection.strict_mode` is the default of new collections.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import UnexpectedResponse

from tessera.collection import strict_filters
from tessera.collection.strict_filters import cgroup_memory_limit, resident_memory_percent
from tests.conftest import ServerProcess, make_grpc_client, private_server, running

pytestmark = pytest.mark.server_only(reason="strict mode is the server's")

DIM = 4


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running(private_server(tmp_path_factory, "strict", grpc=True)) as proc:
        yield proc


@pytest.fixture(scope="module")
def rest(node: ServerProcess) -> Iterator[QdrantClient]:
    qc = QdrantClient(url=node.url, prefer_grpc=False, timeout=30)
    yield qc
    qc.close()


@pytest.fixture(scope="module")
def grpc_client(node: ServerProcess) -> Iterator[QdrantClient]:
    qc = make_grpc_client(node)
    yield qc
    qc.close()


@pytest.fixture(scope="module")
def http(node: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.url, timeout=30.0) as hc:
        yield hc


def vec(i: int) -> list[float]:
    return [float(i + 1), 1.0, 0.5, float(i % 3)]


def points(ids: range, **payload: Any) -> list[models.PointStruct]:
    return [
        models.PointStruct(id=i, vector=vec(i), payload={"num": i, "tag": f"t{i % 2}", **payload})
        for i in ids
    ]


def new_name() -> str:
    return f"strict_{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def refused(status: int, *needles: str) -> Iterator[None]:
    with pytest.raises(UnexpectedResponse) as info:
        yield
    assert info.value.status_code == status, str(info.value)
    message = info.value.structured()["status"]["error"]
    for needle in needles:
        assert needle in message, message


def refused_http(answer: httpx.Response, status: int, needle: str) -> None:
    assert answer.status_code == status, answer.text
    assert needle in answer.json()["status"]["error"], answer.text


def limit_error(value: int, limit: int, name: str) -> str:
    return (
        f'Bad request: Limit exceeded {value} > {limit} for "{name}". '
        f'Help: Reduce the "{name}" parameter to or below {limit}.'
    )


def unindexed(key: str, schemas: str) -> str:
    return f'Index required but not found for "{key}" of one of the following types: [{schemas}]'


STRICT = models.StrictModeConfig(
    enabled=True,
    max_query_limit=4,
    search_max_hnsw_ef=16,
    search_allow_exact=False,
    search_max_oversampling=2.0,
    unindexed_filtering_retrieve=False,
    unindexed_filtering_update=False,
    filter_max_conditions=3,
    condition_max_size=3,
    upsert_max_batchsize=2,
    search_max_batchsize=2,
    max_payload_index_count=2,
    max_timeout=10,
)


@pytest.fixture(scope="module")
def strict(rest: QdrantClient) -> Iterator[str]:
    """8 points, indexes on `num` (integer) and `tag` (keyword), then strict mode on."""
    name = new_name()
    rest.create_collection(name, models.VectorParams(size=DIM, distance=models.Distance.DOT))
    rest.upsert(name, points(range(8)))
    rest.create_payload_index(name, "num", models.PayloadSchemaType.INTEGER)
    rest.create_payload_index(name, "tag", models.PayloadSchemaType.KEYWORD)
    rest.update_collection(name, strict_mode_config=STRICT)
    yield name
    rest.delete_collection(name)


def tag_is(value: str) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key="tag", match=models.MatchValue(value=value))]
    )


def test_off_by_default_nothing_is_enforced(rest: QdrantClient) -> None:
    name = new_name()
    rest.create_collection(
        name,
        models.VectorParams(size=DIM, distance=models.Distance.DOT),
        strict_mode_config=models.StrictModeConfig(enabled=False, max_query_limit=1),
    )
    rest.upsert(name, points(range(5)))
    assert len(rest.query_points(name, vec(0), limit=5).points) == 5
    rest.delete_collection(name)


def test_query_limits(rest: QdrantClient, http: httpx.Client, strict: str) -> None:
    with refused(400, limit_error(8, 4, "limit")):
        rest.query_points(strict, vec(0), limit=8)
    assert len(rest.query_points(strict, vec(0), limit=4).points) == 4
    with refused(400, limit_error(8, 4, "limit")):
        rest.query_points(
            strict, vec(0), limit=2, prefetch=[models.Prefetch(query=vec(1), limit=8)]
        )
    at = f"/collections/{strict}/points"
    refused_http(
        http.post(f"{at}/search", json={"vector": vec(0), "limit": 8}),
        400,
        limit_error(8, 4, "limit"),
    )
    with refused(400, limit_error(8, 4, "limit")):
        rest.scroll(strict, limit=8)
    assert len(rest.scroll(strict, limit=4)[0]) == 4
    with refused(400, limit_error(6, 4, "limit")):
        rest.query_points_groups(strict, "tag", query=vec(0), limit=2, group_size=3)
    with refused(400, limit_error(8, 4, "limit")):
        rest.search_matrix_pairs(strict, sample=4, limit=2)
    with refused(400, limit_error(8, 4, "limit")):
        rest.facet(strict, "tag", limit=8, exact=False)
    # The default facet limit (10) is not checked, only a limit the request gives.
    facet = http.post(f"/collections/{strict}/facet", json={"key": "tag"})
    assert facet.status_code == 200, facet.text
    refused_http(
        http.post(f"{at}/recommend", json={"positive": [1], "limit": 8}),
        400,
        limit_error(8, 4, "limit"),
    )
    discover = {"target": 1, "context": [{"positive": 2, "negative": 3}], "limit": 8}
    refused_http(http.post(f"{at}/discover", json=discover), 400, limit_error(8, 4, "limit"))
    searches = {"searches": [{"vector": vec(0), "limit": 1}] * 3}
    refused_http(
        http.post(f"{at}/search/batch", json=searches), 400, limit_error(3, 2, "search batch size")
    )
    with refused(400, limit_error(8, 4, "limit")):
        rest.query_batch_points(
            strict,
            [
                models.QueryRequest(query=vec(0), limit=2),
                models.QueryRequest(query=vec(1), limit=8),
            ],
        )
    with refused(400, limit_error(3, 2, "search batch size")):
        rest.query_batch_points(strict, [models.QueryRequest(query=vec(0), limit=1)] * 3)


def test_search_params(rest: QdrantClient, http: httpx.Client, strict: str) -> None:
    with refused(400, limit_error(32, 16, "hnsw_ef")):
        rest.query_points(strict, vec(0), limit=2, search_params=models.SearchParams(hnsw_ef=32))
    with refused(400, "Bad request: Exact search disabled!. Help: Set exact=false."):
        rest.query_points(strict, vec(0), limit=2, search_params=models.SearchParams(exact=True))
    over = {"vector": vec(0), "limit": 2, "params": {"quantization": {"oversampling": 3.0}}}
    answer = http.post(f"/collections/{strict}/points/search", json=over)
    refused_http(answer, 400, limit_error(3, 2, "oversampling"))
    query = {"query": vec(0), "limit": 2, "params": {"quantization": {"oversampling": 3.0}}}
    answer = http.post(f"/collections/{strict}/points/query", json=query)
    refused_http(answer, 400, limit_error(3, 2, "oversampling"))
    # count is exact unless told otherwise, so strict mode refuses the default
    with refused(400, "Exact search disabled!"):
        rest.count(strict)
    assert rest.count(strict, exact=False).count >= 0
    with refused(400, "Exact search disabled!"):
        rest.facet(strict, "tag", limit=2, exact=True)


def test_filters(rest: QdrantClient, strict: str) -> None:
    color = models.Filter(
        must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]
    )
    with refused(400, unindexed("color", "keyword"), "Help: Create an index for this key"):
        rest.query_points(strict, vec(0), limit=2, query_filter=color)
    with refused(400, unindexed("color", "keyword")):
        rest.scroll(strict, scroll_filter=color, limit=2)
    price = models.Filter(must=[models.FieldCondition(key="price", range=models.Range(gte=1))])
    with refused(400, unindexed("price", "float, integer")):
        rest.count(strict, count_filter=price, exact=False)
    hits = rest.query_points(strict, vec(0), limit=4, query_filter=tag_is("t1")).points
    assert hits and all(p.payload is None or p.payload["tag"] == "t1" for p in hits)
    four = models.Filter(
        must=[models.FieldCondition(key="num", range=models.Range(gte=i)) for i in range(4)]
    )
    with refused(400, "Filter condition limit reached (4 > 3)"):
        rest.scroll(strict, scroll_filter=four, limit=2)
    many = models.Filter(
        must=[models.FieldCondition(key="num", match=models.MatchAny(any=[1, 2, 3, 4]))]
    )
    with refused(400, "Condition size limit reached (4 > 3)"):
        rest.scroll(strict, scroll_filter=many, limit=2)
    with refused(400, 'Index required but not found for "color"', "supporting `match`"):
        rest.query_points_groups(strict, "color", query=vec(0), limit=2, group_size=1)
    groups = rest.query_points_groups(strict, "tag", query=vec(0), limit=2, group_size=2).groups
    assert {g.id for g in groups} == {"t0", "t1"}


def test_writes(rest: QdrantClient, strict: str) -> None:
    with refused(400, limit_error(3, 2, "upsert limit")):
        rest.upsert(strict, points(range(100, 103)))
    rest.upsert(strict, points(range(100, 102)))
    with refused(400, limit_error(3, 2, "update limit")):
        rest.update_vectors(
            strict, [models.PointVectors(id=i, vector=vec(i)) for i in (100, 101, 1)]
        )
    color = models.Filter(
        must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]
    )
    with refused(400, unindexed("color", "keyword")):
        rest.delete(strict, models.FilterSelector(filter=color))
    with refused(400, unindexed("color", "keyword")):
        rest.set_payload(strict, {"x": 1}, points=color)
    rest.delete(strict, models.FilterSelector(filter=tag_is("none")))
    with refused(400, "Collection already has the maximum number of payload indices (2)"):
        rest.create_payload_index(strict, "color", models.PayloadSchemaType.KEYWORD)
    assert rest.count(strict, exact=False).count == 10


def test_collection_size_limits(rest: QdrantClient) -> None:
    name = new_name()
    rest.create_collection(
        name,
        models.VectorParams(size=DIM, distance=models.Distance.DOT),
        strict_mode_config=models.StrictModeConfig(enabled=True, max_points_count=3),
    )
    rest.upsert(name, points(range(2)))
    rest.upsert(name, points(range(2, 5)))  # 2 < 3 before it: Qdrant lets it through
    with refused(400, "Bad request: Max points count limit of 3 reached!"):
        rest.upsert(name, points(range(5, 6)))
    rest.update_collection(
        name,
        strict_mode_config=models.StrictModeConfig(
            max_points_count=100, max_collection_vector_size_bytes=1024 * 1024
        ),
    )
    rest.upsert(name, points(range(5, 6)))
    rest.update_collection(
        name, strict_mode_config=models.StrictModeConfig(max_collection_vector_size_bytes=64)
    )
    with refused(400, "Max vector storage size limit of 0.000061035156MB reached!"):
        rest.upsert(name, points(range(6, 7)))
    rest.update_collection(
        name,
        strict_mode_config=models.StrictModeConfig(
            max_collection_vector_size_bytes=1 << 20, max_collection_payload_size_bytes=1 << 20
        ),
    )
    rest.set_payload(name, {"blob": "x" * 100}, points=[0])
    rest.update_collection(
        name, strict_mode_config=models.StrictModeConfig(max_collection_payload_size_bytes=100)
    )
    with refused(400, "Max payload storage size limit of 0.00009536743MB reached!"):
        rest.set_payload(name, {"more": 1}, points=[1])
    rest.delete(name, [0])  # deletes are never refused for size
    rest.delete_collection(name)


def test_multivector_and_sparse_limits(rest: QdrantClient, grpc_client: QdrantClient) -> None:
    name = new_name()
    rest.create_collection(
        name,
        {
            "colbert": models.VectorParams(
                size=2,
                distance=models.Distance.DOT,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            )
        },
        sparse_vectors_config={"words": models.SparseVectorParams()},
        strict_mode_config=models.StrictModeConfig(
            enabled=True,
            multivector_config={"colbert": models.StrictModeMultivector(max_vectors=2)},
            sparse_config={"words": models.StrictModeSparse(max_length=3)},
        ),
    )
    ok: dict[str, Any] = {
        "colbert": [[1.0, 0.0], [0.0, 1.0]],
        "words": models.SparseVector(indices=[1, 2], values=[1.0, 1.0]),
    }
    rest.upsert(name, [models.PointStruct(id=1, vector=ok)])
    three: dict[str, Any] = {"colbert": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]}
    with refused(
        400, "Bad request: Multivector 'colbert' has a limit of 2 vectors, but 3 were provided!"
    ):
        rest.upsert(name, [models.PointStruct(id=2, vector=three)])
    long: dict[str, Any] = {"words": models.SparseVector(indices=[1, 2, 3, 4], values=[1.0] * 4)}
    with refused(400, "Sparse vector 'words' has a limit of 3 indices, but 4 were provided!"):
        rest.update_vectors(name, [models.PointVectors(id=1, vector=long)])
    with pytest.raises(grpc.RpcError) as info:
        grpc_client.upsert(name, [models.PointStruct(id=2, vector=three)])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Multivector 'colbert' has a limit of 2 vectors" in str(info.value.details())
    rest.delete_collection(name)


def test_grpc_sample(grpc_client: QdrantClient, strict: str) -> None:
    def grpc_error(call: Callable[[], Any]) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        return info.value

    err = grpc_error(lambda: grpc_client.query_points(strict, vec(0), limit=8))
    assert limit_error(8, 4, "limit") in str(err.details())
    err = grpc_error(lambda: grpc_client.scroll(strict, limit=8))
    assert limit_error(8, 4, "limit") in str(err.details())
    err = grpc_error(lambda: grpc_client.upsert(strict, points(range(200, 203))))
    assert limit_error(3, 2, "upsert limit") in str(err.details())
    color = models.Filter(
        must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]
    )
    err = grpc_error(lambda: grpc_client.count(strict, count_filter=color, exact=False))
    assert unindexed("color", "keyword") in str(err.details())
    assert len(grpc_client.query_points(strict, vec(0), limit=3).points) == 3
    err = grpc_error(lambda: grpc_client.query_points(strict, vec(0), limit=2, timeout=30))
    assert limit_error(30, 10, "timeout") in str(err.details())
    assert len(grpc_client.query_points(strict, vec(0), limit=2, timeout=5).points) == 2
    err = grpc_error(lambda: grpc_client.facet(strict, "tag", limit=8))
    assert limit_error(8, 4, "limit") in str(err.details())
    from qdrant_client.grpc import FacetCounts

    # Without a limit (the client always sends one): the default (10) is not checked.
    grpc_client.grpc_points.Facet(FacetCounts(collection_name=strict, key="tag"))


def test_max_timeout_rest(rest: QdrantClient, http: httpx.Client, strict: str) -> None:
    with refused(400, limit_error(30, 10, "timeout")):
        rest.query_points(strict, vec(0), limit=2, timeout=30)
    assert len(rest.query_points(strict, vec(0), limit=2, timeout=10).points) == 2
    answer = http.post(f"/collections/{strict}/points/scroll?timeout=11", json={"limit": 1})
    refused_http(answer, 400, limit_error(11, 10, "timeout"))
    answer = http.put(
        f"/collections/{strict}/points?timeout=60", json={"points": [{"id": 1, "vector": vec(1)}]}
    )
    refused_http(answer, 400, limit_error(60, 10, "timeout"))


def test_created_over_grpc(grpc_client: QdrantClient, rest: QdrantClient) -> None:
    name = new_name()
    grpc_client.create_collection(
        name,
        models.VectorParams(size=DIM, distance=models.Distance.DOT),
        strict_mode_config=models.StrictModeConfig(
            enabled=True,
            max_query_limit=2,
            sparse_config={"words": models.StrictModeSparse(max_length=3)},
        ),
    )
    grpc_client.update_collection(
        name, strict_mode_config=models.StrictModeConfig(read_rate_limit=100)
    )
    shown = grpc_client.get_collection(name).config.strict_mode_config
    assert shown is not None
    assert (shown.enabled, shown.max_query_limit, shown.read_rate_limit) == (True, 2, 100)
    assert shown.sparse_config is not None and shown.sparse_config["words"].max_length == 3
    with refused(400, limit_error(3, 2, "limit")):
        rest.query_points(name, vec(0), limit=3)
    grpc_client.delete_collection(name)


def test_rate_limits_answer_429(
    rest: QdrantClient, grpc_client: QdrantClient, http: httpx.Client
) -> None:
    name = new_name()
    rest.create_collection(
        name,
        models.VectorParams(size=DIM, distance=models.Distance.DOT),
        strict_mode_config=models.StrictModeConfig(
            enabled=True, write_rate_limit=3, read_rate_limit=2
        ),
    )
    body = {"points": [{"id": 1, "vector": vec(1)}, {"id": 2, "vector": vec(2)}]}
    # a write costs one token per point: 2 of the 3
    assert http.put(f"/collections/{name}/points", json=body).status_code == 200
    answer = http.put(f"/collections/{name}/points", json=body)
    assert answer.status_code == 429, answer.text
    error = answer.json()["status"]["error"]
    assert error.startswith(
        "Rate limiting exceeded: Write rate limit exceeded: Operation requires 2 tokens but only 1."
    ), error
    assert int(answer.headers["retry-after"]) >= 1
    four = {"points": [{"id": i, "vector": vec(i)} for i in range(4)]}
    answer = http.put(f"/collections/{name}/points", json=four)
    assert answer.status_code == 429
    assert answer.json()["status"]["error"] == (
        "Rate limiting exceeded: Write rate limit exceeded, request larger than than rate limiter "
        "capacity, please try to split your request"
    )
    assert "retry-after" not in answer.headers
    # reads: 1 token each (a scroll without filter)
    for _ in range(2):
        assert http.post(f"/collections/{name}/points/scroll", json={"limit": 1}).status_code == 200
    answer = http.post(f"/collections/{name}/points/scroll", json={"limit": 1})
    assert answer.status_code == 429
    assert "Read rate limit exceeded" in answer.json()["status"]["error"]
    # the official client reads the trailer (REST: the header) into `retry_after_s`
    with pytest.raises(ResourceExhaustedResponse) as exhausted:
        grpc_client.scroll(name, limit=1)
    assert exhausted.value.retry_after_s >= 1
    assert "Read rate limit exceeded" in exhausted.value.message
    with pytest.raises(ResourceExhaustedResponse):
        rest.scroll(name, limit=1)
    # a PATCH that lifts the limit takes effect at once
    rest.update_collection(name, strict_mode_config=models.StrictModeConfig(enabled=False))
    assert http.post(f"/collections/{name}/points/scroll", json={"limit": 1}).status_code == 200
    rest.delete_collection(name)


def test_a_filtered_write_costs_its_estimated_points(
    rest: QdrantClient, http: httpx.Client
) -> None:
    """Points chosen by a filter cost the filter's estimated cardinality, as Qdrant charges
    them (`1.max(estimate.exp)`): an unindexed condition counts half the points, whatever
    it matches (here one point, or none)."""
    name = new_name()
    rest.create_collection(name, models.VectorParams(size=DIM, distance=models.Distance.DOT))
    points = [
        {"id": i, "vector": vec(i), "payload": {"city": "Berlin" if i == 1 else "x"}}
        for i in range(1, 11)
    ]
    http.put(f"/collections/{name}/points", params={"wait": "true"}, json={"points": points})
    http.patch(
        f"/collections/{name}",
        json={"strict_mode_config": {"enabled": True, "write_rate_limit": 7}},
    ).raise_for_status()
    url = f"/collections/{name}/points/payload"
    for city, status in (("Berlin", 200), ("London", 429)):
        body = {
            "payload": {"seen": True},
            "filter": {"must": [{"key": "city", "match": {"value": city}}]},
        }
        answer = http.post(url, json=body)
        assert answer.status_code == status, answer.text
    assert answer.json()["status"]["error"].startswith(
        "Rate limiting exceeded: Write rate limit exceeded: Operation requires 5 tokens but only 2."
    )
    rest.delete_collection(name)


def test_config_validation(http: httpx.Client, rest: QdrantClient) -> None:
    name = new_name()
    answer = http.put(
        f"/collections/{name}",
        json={
            "vectors": {"size": DIM, "distance": "Dot"},
            "strict_mode_config": {"max_query_limit": 0},
        },
    )
    assert answer.status_code == 422, answer.text
    assert "max_query_limit" in answer.json()["status"]["error"]
    assert not rest.collection_exists(name)
    rest.create_collection(
        name,
        models.VectorParams(size=DIM, distance=models.Distance.DOT),
        strict_mode_config=models.StrictModeConfig(enabled=True, max_query_limit=5),
    )
    answer = http.patch(
        f"/collections/{name}", json={"strict_mode_config": {"upsert_max_batchsize": -1}}
    )
    assert answer.status_code == 400, answer.text
    answer = http.patch(f"/collections/{name}", json={"strict_mode_config": {"read_rate_limit": 0}})
    assert answer.status_code == 422, answer.text
    config = rest.get_collection(name).config.strict_mode_config
    assert (
        config is not None and config.max_query_limit == 5 and config.upsert_max_batchsize is None
    )
    answer = http.patch(
        f"/collections/{name}", json={"strict_mode_config": {"max_resident_memory_percent": 101}}
    )
    assert answer.status_code == 422, answer.text
    # the deprecated memory cap: far above this process's share, writes pass
    patch = {"strict_mode_config": {"max_resident_memory_percent": 100}}
    assert http.patch(f"/collections/{name}", json=patch).status_code == 200
    rest.upsert(name, points(range(2)))
    used = resident_memory_percent()
    assert used is not None and 0 <= used <= 100
    rest.delete_collection(name)


def test_storage_defaults_from_environment_variables_of_inner_keys(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """Qdrant's config merges QDRANT__ variables into nested settings key by key: the inner
    keys of `storage.collection.strict_mode` (Tessera ignored them with a warning), and
    `storage.collection.shard_number` (ignored too)."""
    proc = server_factory(
        env={
            "QDRANT__STORAGE__COLLECTION__STRICT_MODE__ENABLED": "true",
            "QDRANT__STORAGE__COLLECTION__STRICT_MODE__MAX_QUERY_LIMIT": "3",
            "QDRANT__STORAGE__COLLECTION__SHARD_NUMBER": "2",
        }
    )
    qc = QdrantClient(url=proc.url, timeout=30)
    qc.create_collection("by_env", models.VectorParams(size=DIM, distance=models.Distance.DOT))
    info = qc.get_collection("by_env")
    assert info.config.strict_mode_config is not None
    assert info.config.strict_mode_config.enabled is True
    assert info.config.strict_mode_config.max_query_limit == 3
    assert info.config.params.shard_number == 2
    qc.upsert("by_env", points(range(6)))
    with refused(400, limit_error(4, 3, "limit")):
        qc.query_points("by_env", vec(0), limit=4)
    qc.close()


def test_patch_merges_persists_and_storage_default(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "storage:\n  collection:\n    strict_mode:\n      enabled: true\n      max_query_limit: 3\n"
    )
    proc = server_factory(config=config)
    qc = QdrantClient(url=proc.url, timeout=30)
    qc.create_collection("defaulted", models.VectorParams(size=DIM, distance=models.Distance.DOT))
    qc.upsert("defaulted", points(range(6)))
    with refused(400, limit_error(4, 3, "limit")):
        qc.query_points("defaulted", vec(0), limit=4)
    qc.create_collection(
        "merged",
        models.VectorParams(size=DIM, distance=models.Distance.DOT),
        strict_mode_config=models.StrictModeConfig(upsert_max_batchsize=10),
    )
    qc.update_collection("merged", strict_mode_config=models.StrictModeConfig(max_points_count=100))
    qc.update_collection(
        "merged", strict_mode_config=models.StrictModeConfig(max_query_limit=5, enabled=None)
    )
    expected = {
        "enabled": True,
        "max_query_limit": 5,
        "upsert_max_batchsize": 10,
        "max_points_count": 100,
    }

    def shown() -> dict[str, Any]:
        got = httpx.get(f"{proc.url}/collections/merged").json()["result"]["config"]
        return {k: v for k, v in got["strict_mode_config"].items() if v is not None}

    assert shown() == expected
    qc.close()
    proc.restart()
    qc = QdrantClient(url=proc.url, timeout=30)
    assert shown() == expected
    with refused(400, limit_error(11, 10, "upsert limit")):
        qc.upsert("merged", points(range(11)))
    with refused(400, limit_error(4, 3, "limit")):
        qc.query_points("defaulted", vec(0), limit=4)
    qc.close()


def test_payload_size_counts_only_points_written_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`max_collection_payload_size_bytes` is checked before every write: the count must not
    encode every payload of the collection each time, only the points written since the
    last count, and still equal a count from scratch."""
    import types

    import numpy as np
    import orjson

    from tessera.collection import strict_filters as sf
    from tessera.collection_config import parse_create_collection
    from tessera.shard import operations as ops
    from tessera.shard.shard import LocalShard

    config = parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}})
    shard = LocalShard(tmp_path, config)
    encoded: list[Any] = []

    def dumps(value: Any) -> bytes:
        encoded.append(value)
        return orjson.dumps(value)

    monkeypatch.setattr(sf, "orjson", types.SimpleNamespace(dumps=dumps))
    try:
        n = 500
        column = ops.DenseColumn(np.ones(n, dtype=bool), np.ones((n, 2), dtype=np.float32))
        payloads: list[dict[str, Any] | None] = [{"i": i} for i in range(n)]
        shard.update(lambda h: ops.UpsertPoints(list(range(n)), {"": column}, payloads))
        counter = sf.PayloadBytes()

        def counted() -> tuple[int, int]:
            """The count and how many payloads it encoded."""
            encoded.clear()
            with shard.read() as holder:
                return counter.total(holder), len(encoded)

        def scratch() -> int:
            with shard.read() as holder:
                return sf.PayloadBytes().total(holder)

        assert counted() == (sum(len(orjson.dumps({"i": i})) for i in range(n)), n)
        assert counted() == (scratch(), 0)  # nothing written since: nothing encoded
        shard.update(lambda h: ops.SetPayload([3], {"long": "x" * 100}, None))
        shard.update(lambda h: ops.OverwritePayload([4], {}))
        shard.update(lambda h: ops.DeletePoints([5]))
        one = ops.DenseColumn(np.ones(1, dtype=bool), np.ones((1, 2), dtype=np.float32))
        shard.update(lambda h: ops.UpsertPoints([n], {"": one}, [{"new": True}]))
        total, encodings = counted()
        assert total == scratch()
        assert encodings <= 4  # the points written, not the collection
    finally:
        shard.close(flush=False)


def test_a_refused_write_filter_is_not_evaluated_first(tmp_path: Path) -> None:
    """`unindexed_filtering_update: false` exists to forbid a scan of every payload under the
    write lock: a write whose points a filter selects is refused before the filter runs."""
    from tessera.collection import writes
    from tessera.collection.collection import Collection
    from tessera.collection_config import parse_create_collection
    from tessera.errors import BadRequest
    from tessera.query.filter_parse import parse_filter

    config = parse_create_collection(
        {
            "vectors": {"size": 2, "distance": "Dot"},
            "strict_mode_config": {"enabled": True, "unindexed_filtering_update": False},
        }
    )
    collection = Collection("c", tmp_path, config)
    try:
        filt = parse_filter({"must": [{"key": "color", "match": {"value": "red"}}]})
        planned = writes.delete(writes.Matching(filt))
        assert isinstance(planned, writes.Planned)
        selected: list[bool] = []

        def prepare(holder: Any) -> Any:
            selected.append(True)
            return planned.prepare(holder)

        with pytest.raises(BadRequest) as refusal:
            collection.update(writes.Planned(prepare, None, filt))
        assert unindexed("color", "keyword") in str(refusal.value)
        assert selected == []
    finally:
        collection.close(flush=False)


def test_group_routes_are_weighed_as_qdrant_weighs_each(http: httpx.Client, strict: str) -> None:
    """Qdrant's `/query/groups` counts `limit` x `group_size` and needs an index on the
    grouping key, but does not look at its prefetches; the older `/search/groups` and
    `/recommend/groups` count their `limit` only and need no index on the key."""
    at = f"/collections/{strict}/points"
    older = {"limit": 2, "group_size": 3, "group_by": "color"}
    for path, body in (
        ("/search/groups", {"vector": vec(0), **older}),
        ("/recommend/groups", {"positive": [1], **older}),
    ):
        answer = http.post(at + path, json=body)
        assert answer.status_code == 200, (path, answer.text)
    refused_http(
        http.post(at + "/search/groups", json={"vector": vec(0), **older, "limit": 8}),
        400,
        limit_error(8, 4, "limit"),
    )
    prefetched = {
        "prefetch": [{"query": vec(1), "limit": 8}],
        "query": vec(0),
        "group_by": "tag",
        "limit": 2,
        "group_size": 2,
    }
    answer = http.post(at + "/query/groups", json=prefetched)
    assert answer.status_code == 200, answer.text


def test_memory_limit_of_a_cgroup_v1_container_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`max_resident_memory_percent` is of the cgroup's limit where there is one, as
    Qdrant's: a container under cgroup v1 has it in `memory/memory.limit_in_bytes` (only
    the v2 file was read, so the percentage was of the whole machine and never reached)."""
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("419430400\n")
    assert cgroup_memory_limit(tmp_path) == 419430400
    (tmp_path / "memory.max").write_text("max\n")  # v2 without a limit: the v1 file counts
    assert cgroup_memory_limit(tmp_path) == 419430400
    (tmp_path / "memory.max").write_text("1048576\n")
    assert cgroup_memory_limit(tmp_path) == 1048576
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (tmp_path / "memory.max").unlink()
    assert cgroup_memory_limit(tmp_path) is None  # v1's "no limit"
    # This process under a 1 MiB limit uses far more than all of it.
    monkeypatch.setattr(strict_filters, "cgroup_memory_limit", lambda: 1 << 20)
    assert (resident_memory_percent() or 0) > 100
