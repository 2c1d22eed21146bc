"""Qdrant's documentation pages on filtering, payload and indexing, run against the server.

Each test is an example (or a rule) from concepts/filtering, concepts/payload or
concepts/indexing whose answer once differed from Qdrant's; both wires are checked: plain
HTTP and qdrant-client over gRPC (a private server of this module has gRPC on).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import ServerProcess, module_server

pytestmark = pytest.mark.server_only(reason="plain HTTP and gRPC need a server")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-docs-docsf", grpc=True)


@pytest.fixture
def web(srv: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=30.0) as hc:
        yield hc


@pytest.fixture
def grpc(srv: ServerProcess) -> Iterator[QdrantClient]:
    qc = QdrantClient(
        url=srv.url,
        grpc_port=srv.grpc_port,
        prefer_grpc=True,
        timeout=30,
        check_compatibility=False,
    )
    try:
        yield qc
    finally:
        qc.close()


@pytest.fixture
def name(web: httpx.Client) -> Iterator[str]:
    """A fresh collection name, deleted afterwards."""
    found = f"docsf_{uuid.uuid4().hex[:10]}"
    yield found
    web.delete(f"/collections/{found}")


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["result"]


# ------------------------------------------------------------------ indexing: sparse vectors


SPARSE_CREATE = {
    "sparse_vectors": {
        "text": {
            "index": {"on_disk": False, "full_scan_threshold": 5000, "datatype": "float16"},
            "modifier": "idf",
        }
    }
}


def sparse_index(web: httpx.Client, name: str) -> Any:
    return ok(web.get(f"/collections/{name}"))["config"]["params"]["sparse_vectors"]["text"]


def test_sparse_index_update_keeps_the_fields_it_does_not_give(
    web: httpx.Client, name: str
) -> None:
    """PATCH of a sparse vector's `index` merges into the stored one (Qdrant's
    SparseIndexParams::update_from_other): full_scan_threshold and datatype survive a
    change of on_disk alone."""
    ok(web.put(f"/collections/{name}", json=SPARSE_CREATE))
    patch = {"sparse_vectors": {"text": {"index": {"on_disk": True}}}}
    assert ok(web.patch(f"/collections/{name}", json=patch)) is True
    assert sparse_index(web, name) == {
        "index": {"full_scan_threshold": 5000, "on_disk": True, "datatype": "float16"},
        "modifier": "idf",
    }
    patch = {"sparse_vectors": {"text": {"index": {"full_scan_threshold": 100}}}}
    assert ok(web.patch(f"/collections/{name}", json=patch)) is True
    assert sparse_index(web, name)["index"] == {
        "full_scan_threshold": 100,
        "on_disk": True,
        "datatype": "float16",
    }


def test_sparse_index_update_over_grpc_merges_too(
    web: httpx.Client, grpc: QdrantClient, name: str
) -> None:
    ok(web.put(f"/collections/{name}", json=SPARSE_CREATE))
    grpc.update_collection(
        name,
        sparse_vectors_config={
            "text": models.SparseVectorParams(index=models.SparseIndexParams(on_disk=True))
        },
    )
    params = grpc.get_collection(name).config.params.sparse_vectors
    assert params is not None
    index = params["text"].index
    assert index is not None
    assert (index.full_scan_threshold, index.on_disk, index.datatype) == (
        5000,
        True,
        models.Datatype.FLOAT16,
    )
