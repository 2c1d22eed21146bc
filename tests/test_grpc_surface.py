"""The gRPC surface where it differs from REST by Qdrant's own design.

Each test states one thing Qdrant's public gRPC server (`src/tonic/mod.rs`) does that a
REST-minded implementation would get wrong.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import TARGET, ServerProcess, free_port

pytestmark = pytest.mark.server_only(reason="the gRPC wire")

LIMIT_MB = 1


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose REST body limit is 1 MiB."""
    if TARGET != "server":
        pytest.skip(f"TESSERA_TEST_TARGET={TARGET}: starts its own server")
    base = tmp_path_factory.mktemp("tessera-grpc-surface")
    server = ServerProcess(
        base / "storage",
        base / "server.log",
        grpc_port=free_port(),
        env={"QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": str(LIMIT_MB)},
        extra_args=["--no-access-log"],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_grpc_message_over_max_request_size_is_accepted(small_limit: ServerProcess) -> None:
    """Qdrant reads gRPC requests of any size (`max_decoding_message_size(usize::MAX)`,
    qdrant/qdrant#1659); `max_request_size_mb` is the REST body limit only."""
    client = QdrantClient(
        host=small_limit.host,
        port=small_limit.port,
        grpc_port=small_limit.grpc_port,
        prefer_grpc=True,
        timeout=60,
    )
    try:
        client.create_collection(
            "big", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
        )
        text = "y" * (3 * (LIMIT_MB << 20))
        client.upsert(
            "big",
            points=[models.PointStruct(id=1, vector=[1, 2, 3, 4], payload={"x": text})],
            wait=True,
        )
        (point,) = client.retrieve("big", [1])
        assert point.payload == {"x": text}
    finally:
        client.close()
