"""`service.max_request_size_mb` and `Content-Type`, as Qdrant answers them.

Qdrant refuses a REST body over the limit with 400 "Payload error: JSON payload (N bytes) is
larger than allowed (limit: M bytes)." and a body that is not JSON with 400 "Payload error:
Content type error" (actix's JSON extractor, in Qdrant's error envelope). Tessera refuses
before it reads the body: a body streamed without a length is counted as it arrives and
refused once past the limit, so the server's memory does not grow with it. gRPC messages have
no limit (tests/test_grpc_surface.py).
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb

from tests.conftest import ServerProcess, private_server, require_server_target, running

pytestmark = pytest.mark.server_only(reason="the HTTP wire")

LIMIT_MB = 1
LIMIT = LIMIT_MB << 20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_server_target()
    server = private_server(
        tmp_path_factory,
        "tessera-limits",
        grpc=True,
        env={"QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": str(LIMIT_MB)},
        extra_args=["--no-access-log"],
    )
    with running(server):
        client = QdrantClient(url=server.url, timeout=30)
        client.create_collection(
            "c", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
        )
        client.close()
        yield server


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert "result" not in body  # as Qdrant's error bodies (and Tessera's other ones)
    message: str = body["status"]["error"]
    return message


def test_body_over_the_limit_is_refused(small: Any) -> None:
    with httpx.Client(base_url=small.url, timeout=30) as http:
        big = b" " * (LIMIT + 1)
        response = http.post(
            "/collections/c/points/scroll",
            content=big,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400
        assert error_of(response) == (
            f"Payload error: JSON payload ({LIMIT + 1} bytes) is larger than allowed "
            f"(limit: {LIMIT} bytes)."
        )
        # The connection stays usable, and a body within the limit is served.
        fine = http.post("/collections/c/points/scroll", json={"limit": 1})
        assert fine.status_code == 200


def test_streamed_body_over_the_limit_does_not_grow_memory(small: Any) -> None:
    assert small.proc is not None
    before = rss_bytes(small.proc.pid)
    chunk = b" " * (1 << 20)
    sent = 0

    def stream() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(96):  # 96 MiB, no Content-Length: chunked
            sent += len(chunk)
            yield chunk

    with httpx.Client(base_url=small.url, timeout=60) as http:
        response = http.put(
            "/collections/c/points", content=stream(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert error_of(response) == f"Payload error: JSON payload has exceeded limit ({LIMIT} bytes)."
    grown = rss_bytes(small.proc.pid) - before
    assert grown < 24 << 20, f"the server grew by {grown >> 20} MiB for a refused body"


def test_content_type_must_be_json(small: Any) -> None:
    with httpx.Client(base_url=small.url, timeout=30) as http:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"content-type": content_type} if content_type else {}
            response = http.post(
                "/collections/c/points/scroll", content=b'{"limit": 1}', headers=headers
            )
            assert response.status_code == 400, content_type
            assert error_of(response) == "Payload error: Content type error"
        for content_type in ("application/json", "application/json; charset=utf-8", "a/b+json"):
            response = http.post(
                "/collections/c/points/scroll",
                content=b'{"limit": 1}',
                headers={"content-type": content_type},
            )
            assert response.status_code == 200, content_type
        # No body, no Content-Type needed (DELETE, GET, an empty PUT).
        assert http.get("/collections/c").status_code == 200


def test_compressed_bodies_are_decoded_within_the_limit(small: Any) -> None:
    """A gzip or deflate body (`Content-Encoding`) is read as its JSON, as actix decodes it
    for Qdrant; one that inflates past the limit, or does not inflate, is refused."""
    points = [{"id": i, "vector": [i, 1, 0, 0], "payload": {"g": "gz"}} for i in range(50)]
    body = orjson.dumps({"points": points})
    with httpx.Client(base_url=small.url, timeout=30) as http:
        for encoding, packed in (
            ("gzip", gzip.compress(body)),
            ("deflate", zlib.compress(body)),
        ):
            response = http.put(
                "/collections/c/points",
                params={"wait": "true"},
                content=packed,
                headers={"content-type": "application/json", "content-encoding": encoding},
            )
            assert response.status_code == 200, (encoding, response.text)
        counted = http.post(
            "/collections/c/points/count",
            content=gzip.compress(b'{"filter": {"must": {"key": "g", "match": {"value": "gz"}}}}'),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert counted.json()["result"] == {"count": 50}
        bomb = gzip.compress(b"[" + b" " * (LIMIT * 4) + b"]")
        assert len(bomb) < LIMIT
        response = http.post(
            "/collections/c/points/scroll",
            content=bomb,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert response.status_code == 400
        assert (
            error_of(response) == f"Payload error: JSON payload has exceeded limit ({LIMIT} bytes)."
        )
        broken = http.post(
            "/collections/c/points/scroll",
            content=b"not gzip at all",
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        assert broken.status_code == 400
        assert error_of(broken) == (
            "Payload error: Error that occur during reading payload: Can not decode "
            "content-encoding."
        )


def test_grpc_keepalive_pings_on_an_idle_connection_are_accepted(small: Any) -> None:
    """Clients ping idle connections (the Go client every 10 s, without calls): the server
    must not answer GOAWAY too_many_pings (grpc core's default policy) and drop them."""
    options = [
        ("grpc.keepalive_time_ms", 1000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    states: list[str] = []
    with grpc.insecure_channel(f"127.0.0.1:{small.grpc_port}", options=options) as channel:
        channel.subscribe(lambda state: states.append(state.name), try_to_connect=True)
        pb.QdrantStub(channel).HealthCheck(pb.HealthCheckRequest(), timeout=10)
        time.sleep(4.5)  # grpc core's default: GOAWAY after the third ping, about 3 s
        assert states[-1] == "READY", states
        pb.QdrantStub(channel).HealthCheck(pb.HealthCheckRequest(), timeout=10)
    assert states.count("READY") == 1, states  # never dropped and reconnected
