"""Qdrant's distributed-deployment documentation (guides/distributed_deployment.md and the
pages it links) checked against a three-node cluster: the collection cluster operations'
answers and errors as Qdrant's handlers (src/common/collections.rs) give them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from tests.cluster_fixtures import clients, cluster, etcd  # noqa: F401
from tests.cluster_harness import Cluster


@pytest.fixture
def http(cluster: Cluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.nodes[0].url, timeout=60) as made:
        yield made


@pytest.fixture
def sharded(clients: list[QdrantClient]) -> Iterator[str]:
    """A collection of three shards, two replicas each."""
    name = f"docs_{uuid.uuid4().hex[:8]}"
    clients[0].create_collection(
        name,
        vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
        shard_number=3,
        replication_factor=2,
    )
    yield name
    clients[0].delete_collection(name)


def post_operation(http: httpx.Client, name: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"/collections/{name}/cluster", json=body)


def test_resharding_answers_as_open_source_qdrant(http: httpx.Client, sharded: str) -> None:
    # Outside Qdrant Cloud resharding is off: starting one is refused, and none is ever in
    # progress to abort.
    started = post_operation(http, sharded, {"start_resharding": {"direction": "up"}})
    assert started.status_code == 400
    assert started.json()["status"]["error"] == (
        "Bad request: resharding is only supported in Qdrant Cloud"
    )
    aborted = post_operation(http, sharded, {"abort_resharding": {}})
    assert aborted.status_code == 400
    assert aborted.json()["status"]["error"] == (
        f"Bad request: resharding is not in progress for collection {sharded}"
    )
    # A direction that is neither `up` nor `down` fails to decode first.
    wrong = post_operation(http, sharded, {"start_resharding": {"direction": "sideways"}})
    assert wrong.status_code == 400
    assert "did not match any variant" in wrong.json()["status"]["error"]
    # The collection is looked up before the operation is refused.
    missing = post_operation(http, "no_such_collection", {"start_resharding": {"direction": "up"}})
    assert missing.status_code == 404
