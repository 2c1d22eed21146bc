"""The gRPC surface where it differs from REST by Qdrant's own design.

Each test states one thing Qdrant's public gRPC server (`src/tonic/mod.rs`) does that a
REST-minded implementation would get wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from qdrant_client import models

from tessera.api import grpc_reflection as reflection
from tests.conftest import ServerProcess, make_grpc_client, module_server

pytestmark = pytest.mark.server_only(reason="the gRPC wire")

LIMIT_MB = 1


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose REST body limit is 1 MiB."""
    yield from module_server(
        tmp_path_factory,
        "tessera-grpc-surface",
        grpc=True,
        env={"QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": str(LIMIT_MB)},
        extra_args=["--no-access-log"],
    )


def test_a_grpc_message_over_max_request_size_is_accepted(small_limit: ServerProcess) -> None:
    """Qdrant reads gRPC requests of any size (`max_decoding_message_size(usize::MAX)`,
    qdrant/qdrant#1659); `max_request_size_mb` is the REST body limit only."""
    client = make_grpc_client(small_limit, timeout=60)
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


KEY = "surface-key"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that asks for an API key."""
    yield from module_server(
        tmp_path_factory,
        "tessera-grpc-keyed",
        grpc=True,
        env={"QDRANT__SERVICE__API_KEY": KEY},
        extra_args=["--no-access-log"],
    )


def _reflect(server: ServerProcess, requests: list[Any], key: str | None) -> list[Any]:
    metadata = [] if key is None else [("api-key", key)]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.stream_stream(
            reflection.METHOD,
            request_serializer=reflection.Request.SerializeToString,
            response_deserializer=reflection.Response.FromString,
        )
        return list(call(iter(requests), metadata=metadata, timeout=10))


def test_server_reflection_lists_the_services_and_serves_their_files(
    keyed: ServerProcess,
) -> None:
    """Qdrant serves tonic-reflection's v1alpha service (grpcurl, grpcui, Postman)."""
    listed, points, missing = _reflect(
        keyed,
        [
            reflection.Request(list_services=""),
            reflection.Request(file_containing_symbol="qdrant.Points.Upsert"),
            reflection.Request(file_containing_symbol="qdrant.Nope"),
        ],
        KEY,
    )
    names = {service.name for service in listed.list_services_response.service}
    assert {"qdrant.Collections", "qdrant.Points", "qdrant.Snapshots", "qdrant.Qdrant"} <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in points.file_descriptor_response.file_descriptor_proto
    ]
    services = {service.name for file in files for service in file.service}
    assert "Points" in services
    assert {"points.proto", "collections.proto"} <= {file.name for file in files}
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_server_reflection_asks_for_the_key(keyed: ServerProcess) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        _reflect(keyed, [reflection.Request(list_services="")], None)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_reflection_lists_the_health_check_as_qdrant_does(keyed: ServerProcess) -> None:
    """Qdrant's health_check.proto has `Check` only: Tessera listed `Watch` too, which it
    does not serve (UNIMPLEMENTED), and tools that call every listed method tripped on it."""
    (health,) = _reflect(
        keyed, [reflection.Request(file_containing_symbol="grpc.health.v1.Health")], KEY
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in health.file_descriptor_response.file_descriptor_proto
    ]
    methods = [m.name for f in files for s in f.service if s.name == "Health" for m in s.method]
    assert methods == ["Check"]


def test_restart_transfer_over_grpc_is_decoded() -> None:
    """`RestartTransfer.method` is a plain enum in Qdrant's proto (no presence): reading it
    with HasField failed every such request with INTERNAL."""
    from qdrant_client import grpc as pb

    from tessera.api.grpc_collections import cluster_operation

    message = pb.RestartTransfer(shard_id=2, from_peer_id=1, to_peer_id=3, method=pb.Snapshot)
    operation = cluster_operation("restart_transfer", message)
    assert (operation.kind, operation.shard, operation.source, operation.target) == (
        "restart_transfer",
        2,
        1,
        3,
    )
    assert operation.method == "snapshot"
