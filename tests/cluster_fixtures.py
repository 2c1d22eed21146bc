"""The fixtures of the cluster test modules: one etcd and three nodes per module (shared by
its tests, as starting them costs seconds), and a client per node for each test. A module
imports them by name (`from tests.cluster_fixtures import clients, cluster, etcd`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient

from tests.cluster_harness import Cluster, EtcdProcess, running_cluster, running_etcd


def client_for(url: str, **kwargs: Any) -> QdrantClient:
    # No background version check: a node of the module may stop while it would run.
    return QdrantClient(url=url, timeout=60, check_compatibility=False, **kwargs)


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    """One etcd, shared by the module's tests."""
    with running_etcd(tmp_path_factory.mktemp("etcd")) as process:
        yield process


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, etcd: EtcdProcess) -> Iterator[Cluster]:
    """Three nodes over the module's etcd, shared by the module's tests."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), etcd) as nodes:
        yield nodes


@pytest.fixture
def clients(cluster: Cluster) -> Iterator[list[QdrantClient]]:
    made = [client_for(node.url) for node in cluster.nodes[:3]]
    try:
        yield made
    finally:
        for client in made:
            client.close()
