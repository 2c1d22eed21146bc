"""A read's `timeout`: past it Qdrant answers its timeout error (408 over REST, gRPC
DEADLINE_EXCEEDED), "Timeout error: Operation 'Search' timed out after 1s", and the server
goes on serving; a read that finishes in time answers as without one.

The slow read is a distance matrix over 20,000 sparse points (sample 20,000): ~5 s on this
project's 2-core machine, sparse scoring being one pass per sampled point.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb

from tests.conftest import ServerProcess, module_server

POINTS = 20_000
NAME = "slow_matrix"
TIMEOUT_TEXT = "Timeout error: Operation 'Search' timed out after 1s"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-timeout", grpc=True)


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120.0) as hc:
        hc.put(f"/collections/{NAME}", json={"sparse_vectors": {"sp": {}}}).raise_for_status()
        rng = random.Random(7)
        for first in range(0, POINTS, 5_000):
            points = [
                {
                    "id": i,
                    "vector": {
                        "sp": {"indices": rng.sample(range(50), 3), "values": [1, 0.5, 0.2]}
                    },
                    "payload": {"n": i},
                }
                for i in range(first, first + 5_000)
            ]
            hc.put(
                f"/collections/{NAME}/points", params={"wait": "true"}, json={"points": points}
            ).raise_for_status()
        yield hc


def test_rest_read_past_its_timeout_is_408(http: httpx.Client, server: ServerProcess) -> None:
    started = time.monotonic()
    response = http.post(
        f"/collections/{NAME}/points/search/matrix/pairs",
        params={"timeout": 1},
        json={"sample": POINTS, "limit": 1, "using": "sp"},
    )
    answered = time.monotonic() - started
    assert response.status_code == 408, response.text
    assert response.json()["status"] == {"error": TIMEOUT_TEXT}
    # Answered at the deadline, not when the work would have ended (the point of a timeout).
    assert answered < 4.0
    # The server goes on serving, and the same read without a timeout still completes.
    count = http.post(f"/collections/{NAME}/points/count", json={"exact": True})
    assert count.json()["result"] == {"count": POINTS}


def test_reads_done_in_time_answer_as_without_a_timeout(
    http: httpx.Client, server: ServerProcess
) -> None:
    # (qdrant-client also gives its HTTP request the same timeout, so past it the client
    # gives up on its own as the server answers: the 408 is checked over plain HTTP above.)
    client = QdrantClient(url=server.url, timeout=120)
    try:
        # A read done in time answers as it would without a timeout.
        found = client.query_points(
            NAME,
            query=models.SparseVector(indices=[1, 2], values=[1.0, 1.0]),
            using="sp",
            limit=3,
            timeout=30,
        )
        assert len(found.points) == 3
        page = client.scroll(NAME, limit=5, timeout=30)[0]
        assert [p.id for p in page] == [0, 1, 2, 3, 4]
    finally:
        client.close()


def test_grpc_read_past_its_timeout_is_deadline_exceeded(
    http: httpx.Client, server: ServerProcess
) -> None:
    with grpc.insecure_channel(f"{server.host}:{server.grpc_port}") as channel:
        points = pb.PointsStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            points.SearchMatrixPairs(
                pb.SearchMatrixPoints(
                    collection_name=NAME, sample=POINTS, limit=1, using="sp", timeout=1
                ),
                timeout=120,  # the call's own gRPC deadline is not what stops it
            )
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert caught.value.details() == TIMEOUT_TEXT
        # Every pool thread goes on serving reads and writes without a deadline of its own.
        for i in range(40):
            points.Upsert(
                pb.UpsertPoints(
                    collection_name=NAME,
                    wait=True,
                    points=[
                        pb.PointStruct(
                            id=pb.PointId(num=i),
                            vectors=pb.Vectors(
                                vectors=pb.NamedVectors(
                                    vectors={
                                        "sp": pb.Vector(
                                            indices=pb.SparseIndices(data=[1]), data=[1.0]
                                        )
                                    }
                                )
                            ),
                        )
                    ],
                    update_filter=pb.Filter(
                        must=[pb.Condition(field=pb.FieldCondition(key="n", range=pb.Range(gte=0)))]
                    ),
                ),
                timeout=30,
            )
        counted = points.Count(pb.CountPoints(collection_name=NAME, exact=True), timeout=30)
        assert counted.result.count == POINTS
