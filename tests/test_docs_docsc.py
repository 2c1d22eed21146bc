"""Qdrant's documentation of collections, snapshots, administration, security and monitoring,
checked against the server through qdrant-client (REST and gRPC) and plain HTTP.

Each test names the page and the behaviour it holds Tessera to; the expected values are
Qdrant's (its documentation, or its source where the page is silent).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import CollectionFactory, free_port

pytestmark = pytest.mark.server_only(reason="server behaviour through both APIs")


@pytest.fixture
def grpc_client(request: pytest.FixtureRequest) -> Iterator[QdrantClient]:
    """qdrant-client over gRPC (prefer_grpc=True) to a server of its own with gRPC on."""
    factory = request.getfixturevalue("server_factory")
    srv = factory(grpc_port=free_port())
    qc = QdrantClient(url=srv.url, grpc_port=srv.grpc_port, prefer_grpc=True, timeout=30)
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
