"""Qdrant's documentation of collections, snapshots, administration, security and monitoring,
checked against the server through qdrant-client (REST and gRPC) and plain HTTP.

Each test names the page and the behaviour it holds Tessera to; the expected values are
Qdrant's (its documentation, or its source where the page is silent).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import closing

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import CollectionFactory, ServerProcess, free_port, make_grpc_client

pytestmark = pytest.mark.server_only(reason="server behaviour through both APIs")


@pytest.fixture
def grpc_client(request: pytest.FixtureRequest) -> Iterator[QdrantClient]:
    """qdrant-client over gRPC (prefer_grpc=True) to a server of its own with gRPC on."""
    factory = request.getfixturevalue("server_factory")
    srv = factory(grpc_port=free_port())
    qc = make_grpc_client(srv, timeout=30)
    try:
        yield qc
    finally:
        qc.close()


def _wait_indexed(client: QdrantClient, name: str, timeout: float = 60.0) -> models.CollectionInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_collection(name)
        if info.status == models.CollectionStatus.GREEN and info.indexed_vectors_count:
            return info
        assert time.monotonic() < deadline, f"{name} never indexed: {info}"
        time.sleep(0.2)


# --------------------------------------------------------------------------------------------
# concepts/collections: collection info


def test_indexed_vectors_count_counts_each_named_vector(
    client: QdrantClient, collection: CollectionFactory
) -> None:
    """`indexed_vectors_count` is "total number of vectors stored in the HNSW index": Qdrant
    sums every vector index of each indexed segment (segment.rs `info()`), so with two named
    vectors a point counts once per vector it has, not once."""
    name = collection(
        vectors_config={
            "image": models.VectorParams(size=8, distance=models.Distance.COSINE),
            "text": models.VectorParams(size=4, distance=models.Distance.DOT),
        },
        optimizers_config=models.OptimizersConfigDiff(
            indexing_threshold=10, default_segment_number=1
        ),
    )
    rng = np.random.default_rng(7)
    points = [
        models.PointStruct(
            id=i,
            vector={
                "image": rng.random(8).tolist(),
                # every other point has no "text" vector
                **({"text": rng.random(4).tolist()} if i % 2 else {}),
            },
        )
        for i in range(1000)
    ]
    client.upsert(name, points=points, wait=True)
    info = _wait_indexed(client, name)
    assert info.points_count == 1000
    assert info.indexed_vectors_count == 1000 + 500


# --------------------------------------------------------------------------------------------
# guides/monitoring: /metrics


HARDWARE_FAMILIES = [
    "collection_hardware_metric_cpu",
    "collection_hardware_metric_payload_io_read",
    "collection_hardware_metric_payload_index_io_read",
    "collection_hardware_metric_payload_index_io_write",
    "collection_hardware_metric_payload_io_write",
    "collection_hardware_metric_vector_io_read",
    "collection_hardware_metric_vector_io_write",
]


def test_metrics_expose_collection_hardware_counters(
    client: QdrantClient, collection: CollectionFactory, http: httpx.Client
) -> None:
    """The monitoring page lists `collection_hardware_metric_cpu` ("CPU measurements of a
    collection"); Qdrant's /metrics writes it and the six IO counters of the telemetry's
    `hardware` section as counters labelled `id` = the collection (src/common/metrics.rs)."""
    name = collection(vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, points=[models.PointStruct(id=1, vector=[1.0, 2.0])], wait=True)
    text = http.get("/metrics").text
    for family in HARDWARE_FAMILIES:
        assert f"# TYPE {family} counter" in text, family
        assert re.search(rf'^{family}{{id="{name}"}} \d+$', text, re.M), family
    written = re.search(
        rf'^collection_hardware_metric_vector_io_write{{id="{name}"}} (\d+)$', text, re.M
    )
    assert written is not None and int(written.group(1)) > 0
    hardware = http.get("/telemetry", params={"details_level": 1}).json()["result"]["hardware"]
    assert int(written.group(1)) == hardware["collection_data"][name]["vector_io_write"]


# --------------------------------------------------------------------------------------------
# guides/administration: recovery mode

RECOVERY_MESSAGE = "My recovery message"


def test_recovery_mode_loads_only_metadata_and_allows_deleting(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """`QDRANT__STORAGE__RECOVERY_MODE="My recovery message"`: "Qdrant only loads collection
    metadata", and "collection operations are limited to deleting a collection". Qdrant
    serves the collections from dummy shards whose every operation fails with a service
    error (500) naming the message; the listing, existence and delete still work, and
    /telemetry and /metrics report the mode. A collection created then is a normal one."""
    srv = server_factory(grpc_port=free_port())
    with closing(QdrantClient(url=srv.url, prefer_grpc=False, timeout=30)) as qc:
        for name in ("kept", "dropped"):
            qc.create_collection(name, models.VectorParams(size=2, distance=models.Distance.DOT))
            qc.upsert(name, [models.PointStruct(id=1, vector=[1.0, 0.0])], wait=True)
    srv.stop()
    srv.env = {"QDRANT__STORAGE__RECOVERY_MODE": RECOVERY_MESSAGE}
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=30) as http:
        names = {c["name"] for c in http.get("/collections").json()["result"]["collections"]}
        assert names == {"kept", "dropped"}
        assert http.get("/collections/kept/exists").json()["result"] == {"exists": True}
        for method, path, body in [
            ("GET", "/collections/kept", None),
            ("POST", "/collections/kept/points/count", {}),
            ("POST", "/collections/kept/points/query", {"query": [1.0, 0.0]}),
            (
                "PUT",
                "/collections/kept/points?wait=true",
                {"points": [{"id": 2, "vector": [0, 1]}]},
            ),
        ]:
            r = http.request(method, path, json=body)
            assert r.status_code == 500, (path, r.text)
            assert RECOVERY_MESSAGE in r.json()["status"]["error"], r.text
        assert http.delete("/collections/dropped").json()["result"] is True
        assert http.get("/collections/dropped/exists").json()["result"] == {"exists": False}
        features = http.get("/telemetry", params={"details_level": 1}).json()["result"]
        assert features["app"]["features"]["recovery_mode"] is True
        assert re.search(r"^app_status_recovery_mode 1$", http.get("/metrics").text, re.M)
        # A new collection is not loaded from disk: it works.
        created = http.put("/collections/fresh", json={"vectors": {"size": 2, "distance": "Dot"}})
        assert created.json()["result"] is True
        upserted = http.put(
            "/collections/fresh/points?wait=true", json={"points": [{"id": 1, "vector": [1, 0]}]}
        )
        assert upserted.status_code == 200, upserted.text
    grpc_qc = make_grpc_client(srv)
    with closing(grpc_qc), pytest.raises(Exception, match=RECOVERY_MESSAGE):
        grpc_qc.count("kept")
    # Started normally again, the collection left alone is whole.
    srv.stop()
    srv.env = {}
    srv.start()
    with closing(QdrantClient(url=srv.url, prefer_grpc=False, timeout=30)) as qc:
        assert qc.count("kept").count == 1
        assert not qc.collection_exists("dropped")


def test_metrics_expose_indexed_only_excluded_points(
    client: QdrantClient, collection: CollectionFactory, http: httpx.Client
) -> None:
    """The monitoring page lists `collection_indexed_only_excluded_points`: per collection
    (`id`) and dense vector name (`vector`), the points an `indexed_only` search leaves out
    (large segments without an index), 0 for a name with none excluded (as Qdrant reports
    every vector name), the telemetry's `indexed_only_excluded_vectors`."""
    name = collection(
        vectors_config={
            "a": models.VectorParams(size=2, distance=models.Distance.DOT),
            "b": models.VectorParams(size=2, distance=models.Distance.DOT),
        }
    )
    client.upsert(name, points=[models.PointStruct(id=1, vector={"a": [1.0, 2.0]})], wait=True)
    text = http.get("/metrics").text
    assert "# TYPE collection_indexed_only_excluded_points gauge" in text
    for vector in ("a", "b"):
        sample = rf'^collection_indexed_only_excluded_points{{id="{name}",vector="{vector}"}} 0$'
        assert re.search(sample, text, re.M), vector


def test_metrics_count_points_indexed_only_leaves_out(
    client: QdrantClient, collection: CollectionFactory, http: httpx.Client
) -> None:
    """Indexing off and 64 kB of vectors, over full_scan_threshold (10 kB): every point is
    left out of an `indexed_only` search; /metrics says so as the telemetry does."""
    name = collection(
        vectors_config={"a": models.VectorParams(size=8, distance=models.Distance.DOT)},
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=0),
        hnsw_config=models.HnswConfigDiff(full_scan_threshold=10),
    )
    rng = np.random.default_rng(3)
    points = [models.PointStruct(id=i, vector={"a": rng.random(8).tolist()}) for i in range(2000)]
    client.upsert(name, points=points, wait=True)
    text = http.get("/metrics").text
    sample = rf'^collection_indexed_only_excluded_points{{id="{name}",vector="a"}} (\d+)$'
    found = re.search(sample, text, re.M)
    assert found is not None and int(found.group(1)) == 2000
    telemetry = http.get("/telemetry", params={"details_level": 4}).json()["result"]
    (entry,) = [c for c in telemetry["collections"]["collections"] if c["id"] == name]
    assert entry["shards"][0]["local"]["indexed_only_excluded_vectors"] == {"a": 2000}


def test_indexed_vectors_count_counts_sparse_vectors_of_indexed_segments(
    client: QdrantClient, collection: CollectionFactory
) -> None:
    """An indexed segment's sparse vector index counts too: Qdrant sums every vector index
    of the segment, sparse ones included (their inverted index holds every non-empty
    sparse vector of a live point)."""
    name = collection(
        vectors_config={"d": models.VectorParams(size=8, distance=models.Distance.DOT)},
        sparse_vectors_config={"s": models.SparseVectorParams()},
        optimizers_config=models.OptimizersConfigDiff(
            indexing_threshold=10, default_segment_number=1
        ),
    )
    rng = np.random.default_rng(11)
    points = [
        models.PointStruct(
            id=i,
            vector={
                "d": rng.random(8).tolist(),
                **(
                    {"s": models.SparseVector(indices=[i, i + 1], values=[1.0, 0.5])}
                    if i % 4
                    else {}
                ),
            },
        )
        for i in range(1000)
    ]
    client.upsert(name, points=points, wait=True)
    info = _wait_indexed(client, name)
    assert info.indexed_vectors_count == 1000 + 750
