"""Qdrant's distributed-deployment documentation (guides/distributed_deployment.md and the
pages it links) checked against a three-node cluster: the collection cluster operations'
answers and errors as Qdrant's handlers (src/common/collections.rs) give them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb

from tessera.api.grpc_collections import transfer_method
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


def replica_states(http: httpx.Client, name: str, shard: int) -> dict[int, str]:
    """Every replica of `shard` -> its state, as the node asked lists them."""
    info = http.get(f"/collections/{name}/cluster").json()["result"]
    states = {r["peer_id"]: r["state"] for r in info["remote_shards"] if r["shard_id"] == shard}
    for local in info["local_shards"]:
        if local["shard_id"] == shard:
            states[info["peer_id"]] = local["state"]
    return states


def test_a_replicated_shard_is_partial_from_the_peer_asked(
    http: httpx.Client, clients: list[QdrantClient], sharded: str
) -> None:
    # Qdrant's transfer start adds the new replica as Partial and lists the transfer with
    # the `from_peer_id` given, in one consensus operation: the answer is never followed by
    # a Dead replica, nor by a transfer from another peer.
    clients[0].upsert(
        sharded,
        [models.PointStruct(id=i, vector=[1.0, 0.5, 0.25, float(i)]) for i in range(300)],
    )
    peers = {int(p) for p in http.get("/cluster").json()["result"]["peers"]}
    holders = replica_states(http, sharded, 0)
    (target,) = peers - set(holders)
    for source in sorted(holders):
        body = {"replicate_shard": {"shard_id": 0, "from_peer_id": source, "to_peer_id": target}}
        answer = post_operation(http, sharded, body)
        assert answer.json()["result"] is True, answer.text
        info = http.get(f"/collections/{sharded}/cluster").json()["result"]
        states = replica_states(http, sharded, 0)
        assert states[target] in ("Partial", "Active"), states
        for transfer in info["shard_transfers"]:
            assert (transfer["shard_id"], transfer["from"], transfer["to"]) == (0, source, target)
            assert transfer["sync"] is True
        deadline = time.monotonic() + 60
        while replica_states(http, sharded, 0)[target] != "Active":
            assert time.monotonic() < deadline, "the new replica never became Active"
            time.sleep(0.05)
        dropped = post_operation(
            http, sharded, {"drop_replica": {"shard_id": 0, "peer_id": target}}
        )
        assert dropped.json()["result"] is True, dropped.text


def test_read_consistency_is_a_positive_factor_or_a_type(http: httpx.Client, sharded: str) -> None:
    # The documented values are `all`, `majority`, `quorum` and `1`/`2`/`3`/...: Qdrant's
    # factor may not be zero, and a read asking for it is refused.
    search = {"vector": [1.0, 0.0, 0.0, 0.0], "limit": 1}
    for good in ("all", "majority", "quorum", "1", "3"):
        answer = http.post(
            f"/collections/{sharded}/points/search", params={"consistency": good}, json=search
        )
        assert answer.status_code == 200, (good, answer.text)
    for path, body in (("search", search), ("scroll", {}), ("count", {})):
        answer = http.post(
            f"/collections/{sharded}/points/{path}", params={"consistency": "0"}, json=body
        )
        assert answer.status_code == 400, (path, answer.text)
        assert "ReadConsistency" in answer.json()["status"]["error"]


def key_states(http: httpx.Client, name: str, key: str) -> set[str]:
    """The states of every replica of shard key `key`."""
    info = http.get(f"/collections/{name}/cluster").json()["result"]
    replicas = info["local_shards"] + info["remote_shards"]
    return {r["state"] for r in replicas if r.get("shard_key") == key}


def test_a_tenant_is_promoted_to_a_partial_shard_key(
    http: httpx.Client, clients: list[QdrantClient]
) -> None:
    # guides/multitenancy.md, "Promote tenant to dedicated Shard": the tenant's key is created
    # Partial; until replicate_points fills it, reads naming it with a fallback go to the
    # fallback and writes to both; then it is Active and takes the tenant's requests.
    client = clients[0]
    name = f"docs_tiers_{uuid.uuid4().hex[:8]}"
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
        sharding_method=models.ShardingMethod.CUSTOM,
    )
    try:
        client.create_shard_key(name, "default")
        tenant = [
            models.PointStruct(id=i, vector=[1.0, 0.0, 0.0, float(i)], payload={"group_id": "u1"})
            for i in range(1, 6)
        ]
        client.upsert(name, tenant, shard_key_selector="default")
        created = http.put(
            f"/collections/{name}/shards", json={"shard_key": "u1", "initial_state": "Partial"}
        )
        assert created.json()["result"] is True, created.text
        assert key_states(http, name, "u1") == {"Partial"}
        selector = models.ShardKeyWithFallback(target="u1", fallback="default")
        own = models.Filter(
            must=[models.FieldCondition(key="group_id", match=models.MatchValue(value="u1"))]
        )
        found, _ = client.scroll(name, own, shard_key_selector=selector, limit=100)
        assert sorted(p.id for p in found) == [1, 2, 3, 4, 5]
        assert {p.shard_key for p in found} == {"default"}
        late = models.PointStruct(id=6, vector=[0.0, 1.0, 0.0, 0.0], payload={"group_id": "u1"})
        client.upsert(name, [late], shard_key_selector=selector)
        assert [p.id for p in client.retrieve(name, [6], shard_key_selector="default")] == [6]
        assert [p.id for p in client.retrieve(name, [6], shard_key_selector="u1")] == [6]

        promote = {"replicate_points": {"filter": own.model_dump(exclude_none=True)}}
        promote["replicate_points"].update(from_shard_key="default", to_shard_key="u1")
        answer = http.post(f"/collections/{name}/cluster", json=promote)
        assert answer.json()["result"] is True, answer.text
        assert key_states(http, name, "u1") == {"Active"}
        found, _ = client.scroll(name, own, shard_key_selector=selector, limit=100)
        assert sorted(p.id for p in found) == [1, 2, 3, 4, 5, 6]
        assert {p.shard_key for p in found} == {"u1"}
    finally:
        client.delete_collection(name)


@pytest.mark.parametrize("method", ["snapshot", "wal_delta"])
def test_a_transfer_reports_the_method_asked_for(
    http: httpx.Client, clients: list[QdrantClient], sharded: str, method: str
) -> None:
    # A transfer's `method` (guides/distributed_deployment.md, "Shard transfer method") is
    # the one the request named, in GET /collections/{c}/cluster's shard_transfers.
    clients[0].upsert(
        sharded,
        [models.PointStruct(id=i, vector=[1.0, 0.5, 0.25, float(i)]) for i in range(300)],
    )
    peers = {int(p) for p in http.get("/cluster").json()["result"]["peers"]}
    holders = replica_states(http, sharded, 1)
    (target,) = peers - set(holders)
    source = min(holders)
    body = {
        "replicate_shard": {
            "shard_id": 1,
            "from_peer_id": source,
            "to_peer_id": target,
            "method": method,
        }
    }
    answer = post_operation(http, sharded, body)
    assert answer.json()["result"] is True, answer.text
    transfers = http.get(f"/collections/{sharded}/cluster").json()["result"]["shard_transfers"]
    telemetry = http.get("/cluster/telemetry").json()["result"]["collections"][sharded]
    assert transfers, "the transfer is listed once the answer came"
    assert all(t["method"] == method for t in transfers), transfers
    # /cluster/telemetry's ShardTransferInfo alike (read just after: it may have ended)
    assert all(t["method"] == method for t in telemetry["shard_transfers"]), telemetry
    deadline = time.monotonic() + 60
    while replica_states(http, sharded, 1)[target] != "Active":
        assert time.monotonic() < deadline, "the new replica never became Active"
        time.sleep(0.05)
    dropped = post_operation(http, sharded, {"drop_replica": {"shard_id": 1, "peer_id": target}})
    assert dropped.json()["result"] is True, dropped.text


def test_grpc_transfer_method_reads_as_rest_names_it() -> None:
    asked = pb.MoveShard(shard_id=0, from_peer_id=1, to_peer_id=2, method=pb.WalDelta)
    assert transfer_method(asked) == "wal_delta"
    assert transfer_method(pb.MoveShard(shard_id=0, from_peer_id=1, to_peer_id=2)) is None
    assert transfer_method(pb.AbortShardTransfer(shard_id=0, from_peer_id=1, to_peer_id=2)) is None


def test_a_second_transfer_of_a_shard_in_transfer_is_refused(
    http: httpx.Client, clients: list[QdrantClient], sharded: str
) -> None:
    # Qdrant refuses a transfer of a shard that a running transfer involves on either side
    # (transfer helpers' check_transfer_conflicts): "Shard .. is already involved in
    # transfer <from> -> <to>".
    clients[0].upsert(
        sharded,
        [models.PointStruct(id=i, vector=[1.0, 0.5, 0.25, float(i)]) for i in range(2000)],
    )
    peers = {int(p) for p in http.get("/cluster").json()["result"]["peers"]}
    holders = sorted(replica_states(http, sharded, 2))
    (target,) = peers - set(holders)
    first = {"replicate_shard": {"shard_id": 2, "from_peer_id": holders[0], "to_peer_id": target}}
    assert post_operation(http, sharded, first).json()["result"] is True
    again = {"replicate_shard": {"shard_id": 2, "from_peer_id": holders[1], "to_peer_id": target}}
    running = replica_states(http, sharded, 2)[target] == "Partial"
    refused = post_operation(http, sharded, again)
    assert refused.status_code == 400, refused.text
    if running:  # 2000 points take a while to stream: the usual case
        assert refused.json()["status"]["error"] == (
            f"Bad request: Shard 2 is already involved in transfer {holders[0]} -> {target}"
        )
    deadline = time.monotonic() + 60
    while replica_states(http, sharded, 2)[target] != "Active":
        assert time.monotonic() < deadline, "the new replica never became Active"
        time.sleep(0.05)
    dropped = post_operation(http, sharded, {"drop_replica": {"shard_id": 2, "peer_id": target}})
    assert dropped.json()["result"] is True, dropped.text
