"""Qdrant's documentation pages on vectors, point operations, multitenancy and configuration,
checked against the server over REST (plain HTTP and qdrant-client) and gRPC.

Each test names the behaviour of Qdrant it pins down and where Qdrant defines it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import ServerProcess, make_grpc_client, module_server

pytestmark = pytest.mark.server_only(reason="wire-level checks need a server")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of this module's own, with gRPC (the shared one has none)."""
    yield from module_server(tmp_path_factory, "tessera-docsv", grpc=True)


@pytest.fixture
def grpc_client(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = make_grpc_client(server)
    try:
        yield qc
    finally:
        qc.close()


def _dense(http: httpx.Client, name: str) -> None:
    r = http.put(f"/collections/{name}", json={"vectors": {"size": 2, "distance": "Dot"}})
    assert r.status_code == 200, r.text


def test_update_vectors_with_no_points_is_a_validation_error(
    http: httpx.Client, collection: Any
) -> None:
    # Qdrant's REST UpdateVectors: `#[validate(length(min = 1, message = "must specify points
    # to update"))] points` (lib/api/src/rest/schema.rs); the OpenAPI schema says minItems 1.
    name = collection()
    _dense(http, name)
    r = http.put(f"/collections/{name}/points/vectors", json={"points": []})
    assert r.status_code == 422, r.text
    assert r.json()["status"]["error"] == (
        "Validation error in JSON body: [points: must specify points to update]"
    )


NO_SHARDS = "Wrong input: No shards found for shard key"


def test_keyless_writes_to_a_custom_sharded_collection_find_no_shard(
    http: httpx.Client, grpc_client: QdrantClient, collection: Any
) -> None:
    # Qdrant creates no shard with a custom-sharded collection (ShardDistributionProposal::
    # empty()); a write without `shard_key` goes to the keyless hash ring, which is empty:
    # `split_by_shard` answers BadInput "No shards found for shard key" (400). Nothing is
    # stored, so reads find nothing.
    name = collection()
    body = {"vectors": {"size": 2, "distance": "Dot"}, "sharding_method": "custom"}
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    point = {"id": 1, "vector": [1.0, 0.0], "payload": {"group_id": "a"}}
    writes = [
        ("PUT", "/points", {"points": [point]}),
        ("PUT", "/points", {"batch": {"ids": [1], "vectors": [[1.0, 0.0]]}}),
        ("POST", "/points/delete", {"points": [1]}),
        ("POST", "/points/payload", {"payload": {"x": 1}, "points": [1]}),
        ("PUT", "/points/vectors", {"points": [{"id": 1, "vector": [0.0, 1.0]}]}),
        ("POST", "/points/batch", {"operations": [{"upsert": {"points": [point]}}]}),
    ]
    for method, path, payload in writes:
        r = http.request(method, f"/collections/{name}{path}?wait=true", json=payload)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["status"]["error"] == NO_SHARDS, path
    with pytest.raises(Exception, match=NO_SHARDS):
        grpc_client.upsert(name, [models.PointStruct(id=2, vector=[1.0, 0.0])])
    with pytest.raises(Exception, match=NO_SHARDS):
        grpc_client.batch_update_points(
            name,
            [
                models.UpsertOperation(
                    upsert=models.PointsList(points=[models.PointStruct(id=2, vector=[1.0, 0.0])])
                )
            ],
        )
    count = http.post(f"/collections/{name}/points/count", json={"exact": True})
    assert count.json()["result"]["count"] == 0
    # No shard exists: the collection's cluster info lists none, over REST and gRPC.
    cluster = http.get(f"/collections/{name}/cluster").json()["result"]
    assert (cluster["shard_count"], cluster["local_shards"]) == (0, [])
    grpc_cluster = grpc_client.collection_cluster_info(name)
    assert (grpc_cluster.shard_count, grpc_cluster.local_shards) == (0, [])
    # A payload index is no point write: it is accepted.
    r = http.put(
        f"/collections/{name}/index?wait=true",
        json={"field_name": "group_id", "field_schema": {"type": "keyword", "is_tenant": True}},
    )
    assert r.status_code == 200, r.text


def test_shard_number_per_node_is_the_default_shard_number(server_factory: Any) -> None:
    # Qdrant's config.yaml `storage.collection.shard_number_per_node`: a collection created
    # without `shard_number` gets that many shards per peer (`get_shard_number`, one peer
    # here); an explicit `shard_number` wins; custom sharding keeps 1 (shards per key).
    server = server_factory(env={"QDRANT__STORAGE__COLLECTION__SHARD_NUMBER_PER_NODE": "3"})
    with httpx.Client(base_url=server.url, timeout=30) as http:
        bodies = {
            "auto": {"vectors": {"size": 2, "distance": "Dot"}},
            "explicit": {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2},
            "custom": {"vectors": {"size": 2, "distance": "Dot"}, "sharding_method": "custom"},
        }
        for name, body in bodies.items():
            assert http.put(f"/collections/{name}", json=body).status_code == 200
        shards = {
            name: http.get(f"/collections/{name}").json()["result"]["config"]["params"][
                "shard_number"
            ]
            for name in bodies
        }
        assert shards == {"auto": 3, "explicit": 2, "custom": 1}
        cluster = http.get("/collections/auto/cluster").json()["result"]
        assert cluster["shard_count"] == 3
        points = [{"id": i, "vector": [1.0, float(i)]} for i in range(30)]
        r = http.put("/collections/auto/points?wait=true", json={"points": points})
        assert r.status_code == 200, r.text
        count = http.post("/collections/auto/points/count", json={"exact": True})
        assert count.json()["result"]["count"] == 30


def test_m_zero_builds_no_global_graph_so_queries_scan(
    client: QdrantClient, collection: Any
) -> None:
    # The multitenancy guide: `m: 0` with `payload_m: 16` "will disable building global
    # index for the whole collection" (Qdrant builds the main graph only when m > 0); queries
    # then scan the candidates, so their answers are the exact ones, with a tenant filter
    # or without. A graph walk over a 2-link graph lost a fifth of the true neighbours.
    name = collection(
        vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE),
        hnsw_config=models.HnswConfigDiff(m=0, payload_m=16),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10),
    )
    client.create_payload_index(
        name, "group_id", models.KeywordIndexParams(type="keyword", is_tenant=True)
    )
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 8)).astype(np.float32)
    client.upsert(
        name,
        [
            models.PointStruct(id=i, vector=vectors[i].tolist(), payload={"group_id": f"g{i % 5}"})
            for i in range(len(vectors))
        ],
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        info = client.get_collection(name)
        if info.status == models.CollectionStatus.GREEN and info.indexed_vectors_count:
            break
        time.sleep(0.5)
    assert info.indexed_vectors_count, "the optimizer never indexed the segment"
    tenant = models.Filter(
        must=[models.FieldCondition(key="group_id", match=models.MatchValue(value="g2"))]
    )
    for query in rng.standard_normal((5, 8)).tolist():
        for filt in (None, tenant):
            got = client.query_points(name, query=query, query_filter=filt, limit=20).points
            exact = client.query_points(
                name,
                query=query,
                query_filter=filt,
                limit=20,
                search_params=models.SearchParams(exact=True),
            ).points
            assert [p.id for p in got] == [p.id for p in exact]
