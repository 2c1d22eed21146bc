"""Qdrant's documentation pages on vectors, point operations, multitenancy and configuration,
checked against the server over REST (plain HTTP and qdrant-client) and gRPC.

Each test names the behaviour of Qdrant it pins down and where Qdrant defines it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient

from tests.conftest import ServerProcess, module_server

pytestmark = pytest.mark.server_only(reason="wire-level checks need a server")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of this module's own, with gRPC (the shared one has none)."""
    yield from module_server(tmp_path_factory, "tessera-docsv", grpc=True)


@pytest.fixture
def grpc_client(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = QdrantClient(
        host=server.host, port=server.port, grpc_port=server.grpc_port, prefer_grpc=True
    )
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
