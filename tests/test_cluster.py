"""Cluster mode, first slice (issue 15): membership and collection metadata in a real etcd,
three real Tessera nodes (tests.cluster_harness), the official client and plain HTTP.

What is checked: `/cluster` answers Qdrant's enabled shape on every node, with the same
peers and one leader; peer ids survive restarts; a peer that stops leaves; collections,
PATCHes, deletions and aliases made through one node are applied by the others (and by the
node itself before it answers); placement is spread evenly and reported consistently by
`/collections/{c}/cluster` (REST and gRPC); a restarted node catches up with what changed
while it was down; `DELETE /cluster/peer/{id}` follows Qdrant's rules; `/metrics` and
`/telemetry` report the cluster; payload index and named vector changes through one node are
applied by every node; `shard_number` defaults to the number of peers; `timeout` bounds the
wait for the local apply. Data routing between peers is not part of this slice: writes and
reads here use each node's local shard.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from unittest.mock import Mock

import httpx
import pytest
from qdrant_client import QdrantClient, models

from tessera.api import p2p
from tessera.cluster.etcd import (
    EtcdClient,
    EtcdUnavailable,
    Event,
    KeyValue,
    WatchCompacted,
    compare_created,
    compare_modified,
    put_op,
)
from tessera.cluster.membership import Membership
from tessera.cluster.metadata import ClusterState, CollectionRecord, MetadataStore
from tessera.cluster.placement import place
from tessera.cluster.service import ClusterService
from tessera.collection.distributed import ClusterCollection
from tessera.errors import InternalError, ServiceUnavailable
from tests.cluster_fixtures import client_for, clients, cluster, etcd  # noqa: F401
from tests.cluster_harness import (
    Cluster,
    EtcdProcess,
    eventually,
)
from tests.conftest import TARGET, ServerProcess
from tests.openapi_check import assert_error, assert_ok, spec_path, validate_component

pytestmark = pytest.mark.skipif(TARGET != "server", reason="the harness starts its own nodes")

VECTORS = {"size": 4, "distance": "Dot"}


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def status_of(node: ServerProcess) -> dict[str, Any]:
    result: dict[str, Any] = assert_ok(httpx.get(f"{node.url}/cluster", timeout=10))
    return result


def names_on(node: ServerProcess) -> set[str]:
    result = assert_ok(httpx.get(f"{node.url}/collections", timeout=10))
    return {c["name"] for c in result["collections"]}


def aliases_on(node: ServerProcess) -> dict[str, str]:
    result = assert_ok(httpx.get(f"{node.url}/aliases", timeout=10))
    return {a["alias_name"]: a["collection_name"] for a in result["aliases"]}


@pytest.mark.parametrize("peers", [1, 2, 3, 5])
def test_placement_is_even(peers: int) -> None:
    ids = [10 + 7 * i for i in range(peers)]
    for shards in range(1, 9):
        for factor in range(1, 5):
            placement = place(shards, factor, ids)
            assert sorted(placement) == list(range(shards))
            for holders in placement.values():
                assert len(holders) == len(set(holders)) == min(factor, peers)
                assert set(holders) <= set(ids)
            load = Counter(p for holders in placement.values() for p in holders)
            counts = [load.get(p, 0) for p in ids]
            assert max(counts) - min(counts) <= 1, (shards, factor, placement)


def test_etcd_client_transactions_and_watch(etcd: EtcdProcess) -> None:
    client = EtcdClient([etcd.endpoint])
    prefix = f"/client-test-{uuid.uuid4().hex[:6]}/"
    try:
        start, _ = client.get_prefix(prefix)
        ok, first = client.txn([compare_created(prefix + "a", 0)], [put_op(prefix + "a", {"n": 1})])
        assert ok and first > start
        # The same compare now fails, and nothing is written.
        ok, again = client.txn([compare_created(prefix + "a", 0)], [put_op(prefix + "a", {"n": 2})])
        assert not ok and again == first
        kv = client.get(prefix + "a")
        assert kv is not None and kv.value == {"n": 1} and kv.mod_revision == first
        ok, second = client.txn(
            [compare_modified(prefix + "a", first)],
            [put_op(prefix + "a", {"n": 3}), put_op(prefix + "b", [1, 2])],
        )
        assert ok
        deleted = client.delete(prefix + "a")
        client.put(f"{prefix[:-1]}0/outside", "not under the prefix")
        # A watch from the first revision replays every change under the prefix in order;
        # each answer says up to which revision everything has been delivered.
        seen: list[tuple[int, str, str, Any]] = []
        for revision, events in client.watch(prefix, first, lambda: False):
            seen += [(e.kv.mod_revision, e.kind, e.kv.key, e.kv.value) for e in events]
            assert revision == max(r for r, *_ in seen)
            if len(seen) >= 4:
                break
        assert seen == [
            (first, "PUT", prefix + "a", {"n": 1}),
            (second, "PUT", prefix + "a", {"n": 3}),
            (second, "PUT", prefix + "b", [1, 2]),
            (deleted, "DELETE", prefix + "a", None),
        ]
        _, kvs = client.get_prefix(prefix)
        assert [(kv.key, kv.value) for kv in kvs] == [(prefix + "b", [1, 2])]
    finally:
        client.close()


def test_every_node_reports_the_same_cluster(cluster: Cluster, clients: list[QdrantClient]) -> None:
    nodes = cluster.nodes[:3]

    # Membership is eventual: a node may start before the others registered.
    def full() -> list[dict[str, Any]] | None:
        found = [status_of(n) for n in nodes]
        return found if all(len(x["peers"]) == 3 for x in found) else None

    def agreed() -> list[dict[str, Any]] | None:
        found = [status_of(n) for n in nodes]
        return found if len({x["raft_info"].get("leader") for x in found}) == 1 else None

    statuses = eventually(full, "three peers seen by every node")
    ids = [s["peer_id"] for s in statuses]
    assert len(set(ids)) == 3
    for status in statuses:
        assert status["status"] == "enabled"
        assert set(status["peers"]) == {str(i) for i in ids}
        assert status["consensus_thread_status"]["consensus_thread_status"] == "working"
        assert status["message_send_failures"] == {}
        raft = status["raft_info"]
        assert raft["is_voter"] is True and raft["commit"] > 0 and raft["term"] >= 1
        if spec_path() is not None:
            validate_component("ClusterStatus", status)
    # The advertised URIs are the ones given with --uri (given without a path: kept with
    # the `/` Qdrant's Uri adds).
    uris = {s["peers"][str(s["peer_id"])]["uri"] for s in statuses}
    for node in nodes:
        assert node.extra_args[0] == "--uri" and not node.extra_args[1].endswith("/")
        assert node.extra_args[1] + "/" in uris
    # One leader, the same for everyone, and it says so itself.
    leaders = eventually(agreed, "every node agrees on the leader")
    # The official client reads it into its own typed model.
    typed = clients[0].http.distributed_api.cluster_status().result
    assert typed is not None and typed.status == "enabled" and typed.peer_id in ids
    assert typed.raft_info.is_voter is True  # type: ignore[union-attr]
    leader = leaders[0]["raft_info"]["leader"]
    assert leader in ids
    roles = {s["peer_id"]: s["raft_info"]["role"] for s in leaders}
    assert roles[leader] == "Leader"
    assert sorted(roles.values()) == ["Follower", "Follower", "Leader"]


def metric_values(node: ServerProcess) -> dict[str, float]:
    """`/metrics` as {"name{labels}": value}."""
    response = httpx.get(f"{node.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    values: dict[str, float] = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_and_telemetry_report_the_cluster(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    me = status_of(node)["peer_id"]
    values = eventually(
        lambda: (v := metric_values(node)).get("cluster_peers_total") == 3 and v,
        "three peers in /metrics",
    )
    assert values["cluster_enabled"] == 1
    assert values["cluster_term"] >= 1
    assert values[f'cluster_commit{{peer_id="{me}"}}'] > 0
    assert values["cluster_pending_operations_total"] == 0
    assert values["cluster_voter"] == 1
    assert values['cluster_working_state{state="working"}'] == 1
    assert values['cluster_working_state{state="stopped"}'] == 0
    assert values["cluster_last_update_timestamp_seconds"] > 0

    def telemetry(level: int) -> dict[str, Any]:
        params = {"details_level": level}
        body = assert_ok(httpx.get(f"{node.url}/telemetry", params=params, timeout=10))
        section: dict[str, Any] = body["cluster"]
        if spec_path() is not None:
            validate_component("ClusterTelemetry", section)
        return section

    assert telemetry(0) == {"enabled": True, "resharding_enabled": False}
    status = telemetry(1)["status"]
    assert status["number_of_peers"] == 3 and status["peer_id"] == me
    assert status["is_voter"] is True and status["pending_operations"] == 0
    assert status["role"] in ("Leader", "Follower") and status["commit"] > 0
    assert status["consensus_thread_status"]["consensus_thread_status"] == "working"
    detailed = telemetry(2)
    assert detailed["config"]["etcd"]["endpoints"] == [cluster.etcd.endpoint]
    assert detailed["config"]["etcd"]["prefix"] == cluster.prefix
    assert set(detailed["peers"]) == set(status_of(node)["peers"])
    assert "peer_metadata" not in detailed
    # From level 3, each peer's version (Qdrant's peer metadata; its tests wait on it).
    versions = telemetry(3)["peer_metadata"]
    assert set(versions) == set(detailed["peers"])
    assert {v["version"] for v in versions.values()} == {httpx.get(node.url).json()["version"]}


def test_shard_number_defaults_to_peers_and_timeout_bounds_the_wait(cluster: Cluster) -> None:
    url = cluster.nodes[1].url
    name, single = unique("auto"), unique("single")
    # No shard_number: one shard per peer, as Qdrant suggests; `timeout` accepted.
    body = {"vectors": VECTORS}
    assert assert_ok(httpx.put(f"{url}/collections/{name}?timeout=20", json=body)) is True
    info = assert_ok(httpx.get(f"{url}/collections/{name}"))
    assert info["config"]["params"]["shard_number"] == 3
    assert assert_ok(httpx.get(f"{url}/collections/{name}/cluster"))["shard_count"] == 3
    # An explicit one is kept.
    body = {"vectors": VECTORS, "shard_number": 1}
    assert assert_ok(httpx.put(f"{url}/collections/{single}", json=body)) is True
    assert assert_ok(httpx.get(f"{url}/collections/{single}/cluster"))["shard_count"] == 1
    # Qdrant's validation of `timeout` (as standalone's); nothing is changed.
    patch = {"optimizers_config": {"indexing_threshold": 999}}
    assert_error(
        httpx.patch(f"{url}/collections/{name}?timeout=0", json=patch),
        422,
        "Validation error in query parameters: [timeout: value 0 invalid, must be 1 or larger]",
    )
    assert_error(httpx.delete(f"{url}/collections/{name}?timeout=x"), 400, "invalid digit")
    assert_ok(httpx.patch(f"{url}/collections/{name}?timeout=20", json=patch))
    for path in (name, single):
        assert assert_ok(httpx.delete(f"{url}/collections/{path}?timeout=20")) is True
    # gRPC's `timeout` fields take the same path.
    node = cluster.nodes[2]
    grpc = client_for(node.url, grpc_port=node.grpc_port, prefer_grpc=True)
    try:
        params = models.VectorParams(size=4, distance=models.Distance.DOT)
        assert grpc.create_collection(name, vectors_config=params, timeout=20)
        assert grpc.get_collection(name).config.params.shard_number == 3
        assert grpc.delete_collection(name, timeout=20)
    finally:
        grpc.close()


def test_wait_for_the_local_apply_times_out_as_qdrant(
    etcd: EtcdProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A service that never applies anything (not started): the wait for a revision it has
    # not applied ends after `timeout`, with Qdrant's consensus timeout error.
    storage = tmp_path_factory.mktemp("unstarted")
    service = ClusterService(storage, [etcd.endpoint], "/unused/", "http://x:1/", "http://x:2")
    try:
        with pytest.raises(InternalError) as caught:
            service.wait_applied(service.applied_revision + 1, timeout=1)
        assert caught.value.status_code == 500
        assert caught.value.message == (
            "Service internal error: Waiting for consensus operation commit failed. "
            "Timeout set at: 1 seconds"
        )
    finally:
        service.client.close()


def schema_on(node: ServerProcess, name: str) -> dict[str, Any]:
    info = assert_ok(httpx.get(f"{node.url}/collections/{name}", timeout=10))
    return {
        "indexes": {k: v["data_type"] for k, v in info["payload_schema"].items()},
        "vectors": set(info["config"]["params"]["vectors"]),
    }


def test_payload_indexes_and_named_vectors_are_cluster_wide(cluster: Cluster) -> None:
    nodes = cluster.nodes[:3]
    name = unique("schema")
    body = {"vectors": {"dense": VECTORS}}
    assert_ok(httpx.put(f"{nodes[0].url}/collections/{name}", json=body))
    for node in nodes:
        eventually(lambda n=node: name in names_on(n), "collection everywhere")

    # A payload index through node 1: there when it answers, on the others eventually.
    index = {"field_name": "city", "field_schema": "keyword"}
    answer = assert_ok(httpx.put(f"{nodes[1].url}/collections/{name}/index?wait=true", json=index))
    assert answer["status"] == "completed"
    assert schema_on(nodes[1], name)["indexes"] == {"city": "keyword"}
    for node in (nodes[0], nodes[2]):
        eventually(
            lambda n=node: schema_on(n, name)["indexes"] == {"city": "keyword"}, "index applied"
        )
    # A named vector through node 2, the same way; usable by every node's local shard.
    extra = {"dense": {"size": 2, "distance": "Cosine"}}
    assert_ok(httpx.put(f"{nodes[2].url}/collections/{name}/vectors/extra", json=extra))
    assert schema_on(nodes[2], name)["vectors"] == {"dense", "extra"}
    for node in nodes:
        eventually(
            lambda n=node: schema_on(n, name)["vectors"] == {"dense", "extra"}, "vector applied"
        )
        point = {"id": 1, "vector": {"dense": [1, 0, 0, 0], "extra": [0, 1]}}
        put = httpx.put(f"{node.url}/collections/{name}/points?wait=true", json={"points": [point]})
        assert_ok(put)
    # Refused as standalone refuses it, through any node; nothing changes.
    other = {"dense": {"size": 3, "distance": "Cosine"}}
    assert_error(
        httpx.put(f"{nodes[0].url}/collections/{name}/vectors/extra", json=other),
        400,
        "Vector `extra` already exists with a different configuration",
    )
    # gRPC takes the same path: the index dropped through node 0's gRPC port.
    grpc = client_for(nodes[0].url, grpc_port=nodes[0].grpc_port, prefer_grpc=True)
    try:
        grpc.delete_payload_index(name, "city", wait=True)
    finally:
        grpc.close()
    assert_ok(httpx.delete(f"{nodes[1].url}/collections/{name}/vectors/extra"))
    for node in nodes:
        eventually(
            lambda n=node: schema_on(n, name) == {"indexes": {}, "vectors": {"dense"}},
            "index and vector dropped everywhere",
        )
    assert_ok(httpx.delete(f"{nodes[0].url}/collections/{name}"))


def test_collection_made_through_one_node_is_usable_on_the_others(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, c = clients
    name = unique("spread")
    assert a.create_collection(
        name,
        vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
        shard_number=3,
        replication_factor=2,
    )
    # The creating node has applied it when it answers (Qdrant waits for the commit).
    assert a.collection_exists(name)
    for client in (b, c):
        eventually(lambda cl=client: cl.collection_exists(name), "collection seen by a peer")
    info = b.get_collection(name)
    assert info.config.params.shard_number == 3
    assert info.config.params.replication_factor == 2
    # Usable on that node's own local shard (no routing between peers yet).
    b.upsert(name, [models.PointStruct(id=1, vector=[1, 0, 0, 0], payload={"on": "b"})])
    hits = b.query_points(name, query=[1, 0, 0, 0], limit=1).points
    assert [h.id for h in hits] == [1]

    # Creating it again, through any node, is Qdrant's 409.
    for node in cluster.nodes[:3]:
        response = httpx.put(f"{node.url}/collections/{name}", json={"vectors": VECTORS})
        assert_error(response, 409, f"Collection `{name}` already exists!")

    # Placement: 3 shards x 2 replicas on distinct peers, 2 replicas per peer, and every
    # node reports the same placement from its own point of view.
    views = [
        assert_ok(
            httpx.get(f"{n.url}/collections/{name}/cluster"),
            "GET",
            "/collections/{collection_name}/cluster",
        )
        for n in cluster.nodes[:3]
    ]
    placements = []
    for view in views:
        assert view["shard_count"] == 3 and view["shard_transfers"] == []
        replicas = {(s["shard_id"], view["peer_id"]) for s in view["local_shards"]}
        replicas |= {(s["shard_id"], s["peer_id"]) for s in view["remote_shards"]}
        assert all(s["state"] == "Active" for s in view["local_shards"] + view["remote_shards"])
        placements.append(replicas)
    assert placements[0] == placements[1] == placements[2]
    per_shard = Counter(shard for shard, _ in placements[0])
    per_peer = Counter(peer for _, peer in placements[0])
    assert per_shard == {0: 2, 1: 2, 2: 2}
    assert sorted(per_peer.values()) == [2, 2, 2]
    # The gRPC twin tells the same.
    node = cluster.nodes[2]
    grpc = client_for(node.url, grpc_port=node.grpc_port, prefer_grpc=True)
    try:
        info_grpc = grpc.collection_cluster_info(name)
    finally:
        grpc.close()
    assert info_grpc.peer_id == views[2]["peer_id"] and info_grpc.shard_count == 3
    grpc_replicas = {(s.shard_id, info_grpc.peer_id) for s in info_grpc.local_shards}
    grpc_replicas |= {(s.shard_id, s.peer_id) for s in info_grpc.remote_shards}
    assert grpc_replicas == placements[0]
    a.delete_collection(name)


def test_patch_and_delete_are_applied_everywhere(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, c = clients
    name = unique("patched")
    assert a.create_collection(
        name, vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)
    )
    for client in (b, c):
        eventually(lambda cl=client: cl.collection_exists(name), "collection seen by a peer")
    assert b.update_collection(
        name, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1234)
    )
    # Applied on b before it answered; on the others eventually.
    assert b.get_collection(name).config.optimizer_config.indexing_threshold == 1234
    for client in (a, c):
        eventually(
            lambda cl=client: (
                cl.get_collection(name).config.optimizer_config.indexing_threshold == 1234
            ),
            "PATCH applied by a peer",
        )
    # Recovering a peer re-reads the cluster state; it changes nothing that was in line.
    assert assert_ok(httpx.post(f"{cluster.nodes[2].url}/cluster/recover", timeout=40)) is True
    assert c.get_collection(name).config.optimizer_config.indexing_threshold == 1234
    # A refused PATCH changes nothing anywhere.
    bad = httpx.patch(
        f"{cluster.nodes[0].url}/collections/{name}",
        json={"optimizers_config": {"deleted_threshold": 7}},
    )
    assert bad.status_code in (400, 422), bad.text
    for client in clients:
        assert client.get_collection(name).config.optimizer_config.deleted_threshold != 7

    assert c.delete_collection(name) is True
    assert not c.collection_exists(name)
    for client in (a, b):
        eventually(lambda cl=client: not cl.collection_exists(name), "deletion applied by a peer")
    # Deleting what is not there answers false, as standalone.
    assert a.delete_collection(name) is False
    assert_error(httpx.patch(f"{cluster.nodes[1].url}/collections/{name}", json={}), 404)


def test_concurrent_changes_through_different_nodes_serialise(cluster: Cluster) -> None:
    nodes = cluster.nodes[:3]
    name = unique("raced")

    def create(node: ServerProcess) -> int:
        body = {"vectors": VECTORS}
        return httpx.put(f"{node.url}/collections/{name}", json=body, timeout=30).status_code

    with ThreadPoolExecutor(3) as pool:
        codes = sorted(pool.map(create, nodes))
    assert codes == [200, 409, 409]
    for node in nodes:
        eventually(lambda n=node: name in names_on(n), "raced collection everywhere")

    # Two PATCHes of different settings through different nodes at once: both land.
    patches = [
        (nodes[0], {"optimizers_config": {"indexing_threshold": 4321}}),
        (nodes[1], {"hnsw_config": {"ef_construct": 77}}),
    ]

    def patch(item: tuple[ServerProcess, dict[str, Any]]) -> int:
        node, body = item
        return httpx.patch(f"{node.url}/collections/{name}", json=body, timeout=30).status_code

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(patch, patches)) == [200, 200]

    def settled(node: ServerProcess) -> bool:
        config = assert_ok(httpx.get(f"{node.url}/collections/{name}"))["config"]
        return (
            config["optimizer_config"]["indexing_threshold"] == 4321
            and config["hnsw_config"]["ef_construct"] == 77
        )

    for node in nodes:
        eventually(lambda n=node: settled(n), "both PATCHes applied")
    assert_ok(httpx.delete(f"{nodes[2].url}/collections/{name}"))


def test_aliases_are_cluster_wide(cluster: Cluster, clients: list[QdrantClient]) -> None:
    a, b, c = clients
    first, second = unique("first"), unique("second")
    for name in (first, second):
        assert a.create_collection(
            name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
        )
    alias = unique("alias")
    assert b.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=first, alias_name=alias)
            )
        ]
    )
    assert aliases_on(cluster.nodes[1])[alias] == first
    for node in (cluster.nodes[0], cluster.nodes[2]):
        eventually(lambda n=node: aliases_on(n).get(alias) == first, "alias seen by a peer")
    # The alias works as a collection name on another node.
    assert c.get_collection(alias).config.params.vectors.size == 4  # type: ignore[union-attr]

    # Qdrant's refusals: an alias named like a collection (409), renaming a missing alias
    # (404); nothing changes.
    url = cluster.nodes[2].url
    create_clash = {"actions": [{"create_alias": {"collection_name": first, "alias_name": second}}]}
    assert_error(httpx.post(f"{url}/collections/aliases", json=create_clash), 409)
    rename_missing = {
        "actions": [{"rename_alias": {"old_alias_name": "nope", "new_alias_name": "x"}}]
    }
    assert_error(httpx.post(f"{url}/collections/aliases", json=rename_missing), 404)

    # Switching the alias in one action list is atomic for everyone.
    switch = {
        "actions": [
            {"delete_alias": {"alias_name": alias}},
            {"create_alias": {"collection_name": second, "alias_name": alias}},
        ]
    }
    assert_ok(httpx.post(f"{url}/collections/aliases", json=switch))
    for node in cluster.nodes[:3]:
        eventually(lambda n=node: aliases_on(n).get(alias) == second, "switched alias")
    # Dropping the collection drops its aliases, on every node.
    assert a.delete_collection(second)
    for node in cluster.nodes[:3]:
        eventually(lambda n=node: alias not in aliases_on(n), "alias dropped with collection")
    assert a.delete_collection(first)


def test_killed_node_leaves_then_comes_back_and_catches_up(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a = clients[0]
    node = cluster.nodes[2]
    before = status_of(node)["peer_id"]
    kept, dropped, made = unique("kept"), unique("dropped"), unique("made")
    # Three shards on three peers: the node holds one of each collection's shards.
    for name in (kept, dropped):
        assert a.create_collection(
            name,
            vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
            shard_number=3,
        )
    eventually(lambda: {kept, dropped} <= names_on(node), "collections reached the node")
    own = client_for(node.url)
    own.upsert(kept, [models.PointStruct(id=7, vector=[0, 1, 0, 0])])
    own.close()

    node.kill()  # kill -9: no goodbye; it leaves when its lease expires
    for other in cluster.nodes[:2]:
        eventually(lambda o=other: str(before) not in status_of(o)["peers"], "killed peer left")
    view = assert_ok(httpx.get(f"{cluster.nodes[0].url}/collections/{kept}/cluster"))
    held = [s for s in view["remote_shards"] if s["peer_id"] == before]
    assert held and all(s["state"] == "Dead" for s in held)

    assert a.delete_collection(dropped)
    assert a.create_collection(
        made, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    # A payload index and a named vector it misses too.
    a.create_payload_index(kept, "tag", models.PayloadSchemaType.INTEGER)
    extra = {"sparse": {}}
    assert_ok(httpx.put(f"{cluster.nodes[0].url}/collections/{kept}/vectors/words", json=extra))
    node.start()
    # It reconciles with the cluster's state before it serves.
    names = names_on(node)
    assert kept in names and made in names and dropped not in names
    assert status_of(node)["peer_id"] == before
    own = client_for(node.url)
    assert [p.id for p in own.retrieve(kept, [7])] == [7]  # its local data survived
    kept_info = own.get_collection(kept)
    assert set(kept_info.payload_schema) == {"tag"}
    assert set(kept_info.config.params.sparse_vectors or {}) == {"words"}
    own.close()
    for other in cluster.nodes[:2]:
        eventually(lambda o=other: str(before) in status_of(o)["peers"], "peer back")
    view = assert_ok(httpx.get(f"{cluster.nodes[0].url}/collections/{kept}/cluster"))
    assert all(s["state"] == "Active" for s in view["remote_shards"])
    a.delete_collection(kept)
    a.delete_collection(made)


def test_etcd_restart_is_survived(cluster: Cluster, clients: list[QdrantClient]) -> None:
    nodes = cluster.nodes[:3]
    cluster.etcd.stop()
    # While etcd is away: metadata changes fail cleanly (503) and change nothing; the
    # nodes say their consensus is failing; reads go on.
    name = unique("after_etcd")
    refused = httpx.put(f"{nodes[0].url}/collections/{name}", json={"vectors": VECTORS})
    assert_error(refused, 503, "etcd")
    eventually(
        lambda: (
            status_of(nodes[1])["consensus_thread_status"]["consensus_thread_status"]
            == "stopped_with_err"
        ),
        "etcd outage reported",
    )
    assert_ok(httpx.get(f"{nodes[2].url}/collections"))

    cluster.etcd.start()  # same data directory and ports
    for node in nodes:
        eventually(
            lambda n=node: (
                (s := status_of(n))["consensus_thread_status"]["consensus_thread_status"]
                == "working"
                and len(s["peers"]) == 3
            ),
            "node follows the cluster again",
        )
    for node in nodes:
        assert name not in names_on(node)
    a, b, c = clients
    assert b.create_collection(
        name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    for client in (a, c):
        eventually(lambda cl=client: cl.collection_exists(name), "collection after restart")
    b.delete_collection(name)


def test_standalone_storage_joins_with_its_collections(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a = clients[0]
    legacy, clash = unique("legacy"), unique("clash")
    assert a.create_collection(
        clash, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    # A node's storage made in standalone mode, with a collection the cluster does not
    # have and one it has (another collection under the same name).
    directory = cluster.node_directory(len(cluster.nodes))
    standalone = ServerProcess(directory / "storage", directory / "standalone.log")
    standalone.start()
    try:
        own = client_for(standalone.url)
        for name in (legacy, clash):
            own.create_collection(
                name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
            )
            own.upsert(name, [models.PointStruct(id=5, vector=[1, 1, 0, 0])])
        own.close()
    finally:
        standalone.stop()

    (joined,) = cluster.start_nodes(1)
    own = client_for(joined.url)
    try:
        # Its own collection is published to the cluster, data kept; the clashing one is
        # the cluster's now, its local files moved aside, not deleted.
        assert [p.id for p in own.retrieve(legacy, [5])] == [5]
        assert own.retrieve(clash, [5]) == []
        aside = list((directory / "storage" / "cluster-orphans").iterdir())
        assert [p.name.startswith(f"{clash}-") for p in aside] == [True]
        for client in clients:
            eventually(lambda cl=client: cl.collection_exists(legacy), "published collection")
    finally:
        own.close()
    a.delete_collection(legacy)
    a.delete_collection(clash)
    joined.stop()


def test_snapshot_restored_on_one_node_joins_the_cluster(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, c = clients
    source, restored = unique("source"), unique("restored")
    assert a.create_collection(
        source, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    a.upsert(source, [models.PointStruct(id=3, vector=[0, 0, 1, 0], payload={"k": "v"})])
    made = a.create_snapshot(source)
    assert made is not None
    url = f"{cluster.nodes[0].url}/collections/{source}/snapshots/{made.name}"
    data = httpx.get(url, timeout=30).content
    # Restored on b under a name the cluster does not have: it becomes a cluster collection.
    answer = httpx.post(
        f"{cluster.nodes[1].url}/collections/{restored}/snapshots/upload",
        files={"snapshot": ("s.snapshot", data)},
        timeout=60,
    )
    assert assert_ok(answer) is True
    assert [p.payload for p in b.retrieve(restored, [3])] == [{"k": "v"}]
    for client in (a, c):
        eventually(lambda cl=client: cl.collection_exists(restored), "restored collection")
    view = assert_ok(httpx.get(f"{cluster.nodes[2].url}/collections/{restored}/cluster"))
    assert view["shard_count"] == 3  # the source's: one shard per peer by default
    # Restored over an existing cluster collection: these files are b's copy of it.
    answer = httpx.post(
        f"{cluster.nodes[1].url}/collections/{source}/snapshots/upload",
        files={"snapshot": ("s.snapshot", data)},
        timeout=60,
    )
    assert assert_ok(answer) is True
    assert [p.id for p in b.retrieve(source, [3])] == [3]
    b.delete_collection(restored)
    b.delete_collection(source)


def test_snapshot_recovered_over_a_cluster_collection_replaces_its_points(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """A snapshot recovered into an existing cluster collection leaves it holding the
    snapshot's points, on every shard and read through every node (points written or deleted
    since the snapshot do not survive it), whatever the priority."""
    a, b, c = clients
    name = unique("rewound")
    assert a.create_collection(
        name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    points = [models.PointStruct(id=i, vector=[1, 0, 0, i]) for i in range(1, 31)]
    a.upsert(name, points[:20])
    made = a.create_snapshot(name)
    assert made is not None
    data = httpx.get(
        f"{cluster.nodes[0].url}/collections/{name}/snapshots/{made.name}", timeout=30
    ).content
    a.upsert(name, points[20:])
    a.delete(name, models.PointIdsList(points=[1, 2, 3]))

    def upload(priority: str | None) -> None:
        query = f"?priority={priority}" if priority else ""
        answer = httpx.post(
            f"{cluster.nodes[1].url}/collections/{name}/snapshots/upload{query}",
            files={"snapshot": ("s.snapshot", data)},
            timeout=60,
        )
        assert assert_ok(answer) is True

    def ids(client: QdrantClient) -> list[int]:
        found, _ = client.scroll(name, limit=100)
        return sorted(int(p.id) for p in found)

    for priority in (None, "replica"):
        upload(priority)
        for client in (a, b, c):
            eventually(lambda cl=client: ids(cl) == list(range(1, 21)), "the snapshot's points")
        a.upsert(name, points[20:])
        a.delete(name, models.PointIdsList(points=[1, 2, 3]))
    a.delete_collection(name)


def test_remove_peer(cluster: Cluster, clients: list[QdrantClient]) -> None:
    a = clients[0]
    name = unique("held")
    assert a.create_collection(
        name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    holder = assert_ok(httpx.get(f"{cluster.nodes[0].url}/collections/{name}/cluster"))
    peer = holder["peer_id"] if holder["local_shards"] else holder["remote_shards"][0]["peer_id"]
    url = cluster.nodes[1].url
    assert_error(
        httpx.delete(f"{url}/cluster/peer/{peer}"),
        400,
        f"Bad request: Cannot remove peer {peer} as there are shards on it",
    )
    assert_error(httpx.delete(f"{url}/cluster/peer/12345"), 404, "Peer 12345 doesn't exist")

    # A fourth node joins after the collection was placed: it holds no shards.
    (extra,) = cluster.start_nodes(1)
    extra_id = status_of(extra)["peer_id"]
    eventually(lambda: str(extra_id) in status_of(cluster.nodes[1])["peers"], "fourth peer")
    # A clean stop leaves at once: its key is gone when the process has exited, long
    # before its lease (LEASE_TTL_S) would have run out.
    peer_key = f"{cluster.prefix}peers/{extra_id}"
    assert peer_key in cluster.etcd.keys(cluster.prefix)
    extra.stop()
    assert peer_key not in cluster.etcd.keys(cluster.prefix)
    extra.start()
    eventually(lambda: str(extra_id) in status_of(cluster.nodes[1])["peers"], "fourth back")
    assert (
        assert_ok(
            httpx.delete(f"{url}/cluster/peer/{extra_id}"), "DELETE", "/cluster/peer/{peer_id}"
        )
        is True
    )
    for node in cluster.nodes[:3]:
        eventually(lambda n=node: str(extra_id) not in status_of(n)["peers"], "removed peer gone")
    # A removed peer does not come back: it stops registering, and cannot start again.
    extra.stop()
    with pytest.raises(RuntimeError, match="exited"):
        extra.start(timeout=60)
    assert "was removed from the cluster" in extra.log_tail()
    a.delete_collection(name)


# ---------------------------------------------------------------------- offline unit checks
# The service's own decisions, with a stand-in for the node's storage and for etcd.


class FakeNode:
    def __init__(self, names: list[str]) -> None:
        self.names = set(names)
        self.dropped: list[tuple[str, bool]] = []

    def local_collections(self) -> list[str]:
        return sorted(self.names)

    def local_config(self, name: str) -> dict[str, Any] | None:
        return {}

    def local_indexes(self, name: str) -> dict[str, Any]:
        return {}

    def apply_collection(self, record: CollectionRecord) -> None:
        self.names.add(record.name)

    def drop_local(self, name: str, keep_data: bool) -> None:
        self.names.discard(name)
        self.dropped.append((name, keep_data))

    def apply_aliases(self, table: dict[str, str]) -> None:
        pass


def offline_service(storage: Path, node: FakeNode) -> ClusterService:
    service = ClusterService(storage, ["http://127.0.0.1:9"], "/t/", "http://n:6335/", "http://n")
    service._node = node
    return service


def test_sync_moves_aside_rather_than_deletes_what_etcd_no_longer_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A collection this node applied, absent from a whole-state read (dropped while the node
    # was away, or etcd lost its data): its files are kept aside, never deleted.
    node = FakeNode(["gone"])
    service = offline_service(tmp_path, node)
    service.applied.set("gone", "incarnation-1")
    monkeypatch.setattr(service.store, "read", lambda: ClusterState(5, {}, None, set(), {}, {}, 0))
    service._sync()
    assert node.dropped == [("gone", True)]
    assert service.applied.get("gone") is None
    service.client.close()


def test_watch_delete_keeps_a_copy_never_applied_from_the_cluster(tmp_path: Path) -> None:
    node = FakeNode(["ours", "unknown"])
    service = offline_service(tmp_path, node)
    service.applied.set("ours", "incarnation-1")
    for name in ("ours", "unknown"):
        service._apply_event(Event("DELETE", KeyValue(f"/t/collections/{name}", None, 0, 9)))
    assert node.dropped == [("ours", False), ("unknown", True)]
    service.client.close()


def test_watch_replaces_the_shared_tables_instead_of_changing_them(tmp_path: Path) -> None:
    # Request threads iterate peers / collections while the watch thread applies events:
    # the watch publishes new tables, an iteration in progress keeps its own.
    node = FakeNode([])
    service = offline_service(tmp_path, node)
    peers, collections, removed = service.peers, service.collections, service.removed
    record = {"uuid": "u", "config": {}, "patch": None, "shards": {"0": [1]}}
    service._apply_event(Event("PUT", KeyValue("/t/peers/7", {"uri": "x"}, 3, 3)))
    service._apply_event(Event("PUT", KeyValue("/t/collections/c", record, 4, 4)))
    service._apply_event(Event("PUT", KeyValue("/t/removed/8", {"at": 0}, 5, 5)))
    assert (peers, collections, removed) == ({}, {}, set())
    assert set(service.peers) == {7} and set(service.collections) == {"c"}
    assert service.removed == {8}
    peers, collections = service.peers, service.collections
    service._apply_event(Event("DELETE", KeyValue("/t/peers/7", None, 0, 6)))
    service._apply_event(Event("DELETE", KeyValue("/t/collections/c", None, 0, 7)))
    assert set(peers) == {7} and set(collections) == {"c"}
    assert service.peers == {} and service.collections == {}
    service.client.close()


def test_a_peer_call_waits_until_this_peer_knows_what_the_caller_knows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer's shard call names the revision its caller's view includes; the peer serves it
    once its own watch has applied that revision (a write to a collection just published by
    a joining node answered 404 on a peer whose watch had not applied it yet)."""
    service = offline_service(tmp_path, FakeNode([]))
    collection = Mock(spec=ClusterCollection)
    collection.cluster = Mock(incarnation=Mock(return_value="u"))
    collection.serve_shard.return_value = 42
    toc = SimpleNamespace(following=service, collections={})
    call = {"collection": "c", "uuid": "u", "shard": 0, "method": "count", "args": []}

    def apply_later() -> None:
        time.sleep(0.3)
        toc.collections["c"] = collection
        with service._changed:
            service.applied_revision = 9
            service._changed.notify_all()

    threading.Thread(target=apply_later, daemon=True).start()
    assert p2p.serve(cast(Any, toc), {**call, "kwargs": {}, "view": 9}) == 42
    # A revision this peer does not reach in time: 503, which a reader takes as "ask
    # another replica", never a 404 from a state the caller knows is gone.
    monkeypatch.setattr(p2p, "VIEW_WAIT_S", 0.1)
    with pytest.raises(ServiceUnavailable, match="has not caught up"):
        p2p.serve(cast(Any, toc), {**call, "kwargs": {}, "view": 10})
    service.client.close()


class FlakyKeepalive:
    """An etcd client whose first keepalive answer is not what the code expects."""

    def __init__(self) -> None:
        self.keepalives = 0

    def keepalive(self, lease: int) -> int:
        self.keepalives += 1
        if self.keepalives == 1:
            raise ValueError("an answer without a TTL")
        return 10

    def txn(self, *args: Any) -> tuple[bool, int]:
        return True, 1

    def revoke(self, lease: int) -> None:
        pass


def test_keepalive_thread_survives_an_unexpected_error() -> None:
    client = FlakyKeepalive()
    store = MetadataStore(cast(EtcdClient, client), "/t/")
    membership = Membership(store, 1, "http://n:6335/", "http://n", lambda: False, lease_ttl=1)
    membership.lease = 5
    membership.start()
    try:
        eventually(lambda: client.keepalives >= 2, "keepalive after an unexpected error")
        eventually(lambda: membership.error is None, "error cleared once etcd answers")
    finally:
        membership.stop()


def test_two_orphans_of_one_name_in_one_second_are_both_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.collection_config import parse_create_collection
    from tessera.storage.toc import TableOfContents

    monkeypatch.setattr(time, "strftime", lambda *args: "20260101T000000")
    toc = TableOfContents(tmp_path)
    try:
        for _ in range(2):
            toc.create("twice", parse_create_collection({"vectors": VECTORS}))
            toc.drop_local("twice", keep_data=True)
        assert len(list((tmp_path / "cluster-orphans").iterdir())) == 2
    finally:
        toc.close()


def test_a_hung_etcd_fails_the_watch_instead_of_looking_quiet() -> None:
    # An endpoint that accepts connections and never answers (a stopped etcd process):
    # the watch reports it, so the node says it is not following the cluster.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    client = EtcdClient([f"http://127.0.0.1:{listener.getsockname()[1]}"])
    try:
        with pytest.raises(EtcdUnavailable, match="no answer to the watch"):
            for _ in client.watch("/t/", 1, lambda: False):
                pass
    finally:
        client.close()
        listener.close()


def test_publish_whose_answer_was_lost_keeps_the_incarnation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # etcd commits the new record, then the answer times out: the node must still know the
    # record as its own copy, or it moves its own files aside when the watch delivers it.
    node = FakeNode(["legacy"])
    service = offline_service(tmp_path, node)
    committed: dict[str, CollectionRecord] = {}

    def create(name: str, config: Any, placement: Any, incarnation: str, indexes: Any) -> int:
        committed[name] = CollectionRecord(name, incarnation, config, None, indexes, {}, 3, 3)
        raise EtcdUnavailable("read timeout")

    def read() -> ClusterState:
        return ClusterState(3, {}, None, set(), dict(committed), {}, 0)

    monkeypatch.setattr(service.store, "create_collection", create)
    monkeypatch.setattr(service.store, "read", read)
    service._publish("legacy")
    assert service.applied.get("legacy") == committed["legacy"].uuid
    service._apply_record(committed["legacy"])
    assert node.dropped == []
    # Not committed (etcd really failed): the incarnation is forgotten and the error raised.
    node.names.add("other")

    def refuse(*args: Any) -> int:
        raise EtcdUnavailable("etcd down")

    monkeypatch.setattr(service.store, "create_collection", refuse)
    with pytest.raises(ServiceUnavailable):
        service._publish("other")
    assert service.applied.get("other") is None
    service.client.close()


def test_watch_from_a_compacted_revision_fails_so_the_node_resyncs(etcd: EtcdProcess) -> None:
    # etcd compacted its history past where a node would resume: the watch must fail (the
    # service then reads the whole state again), never resume silently after a gap.
    client = EtcdClient([etcd.endpoint])
    prefix = f"/compact-test-{uuid.uuid4().hex[:6]}/"
    try:
        first = client.put(prefix + "a", 1)
        latest = client.put(prefix + "a", 2)
        client._call("kv/compaction", {"revision": str(latest), "physical": True})
        with pytest.raises(EtcdUnavailable, match="cancelled"):
            for _ in client.watch(prefix, first, lambda: False):
                pass
    finally:
        client.close()


def test_standalone_imports_leave_httpx_and_logging_alone() -> None:
    # A standalone server imports the cluster modules (the table of contents names the
    # service): no httpx import and no change to anyone's logging may come with that.
    probe = (
        "import logging, sys\n"
        "import tessera.api.app, tessera.storage.toc\n"
        "print(logging.getLogger('httpx').level, 'httpx' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["0", "False"]


def test_a_lease_lost_while_running_is_replaced(cluster: Cluster) -> None:
    # The node's lease ends under it (revoked here; in production: etcd out of reach for
    # longer than the TTL): the node leaves the peers, then registers again on its own.
    node = cluster.nodes[1]
    peer = status_of(node)["peer_id"]
    key = f"/tessera-test/peers/{peer}"
    client = EtcdClient([cluster.etcd.endpoint])

    def lease() -> int:
        kvs = client._call("kv/range", {"key": base64.b64encode(key.encode()).decode()})
        return int((kvs.get("kvs") or [{}])[0].get("lease", 0))

    try:
        old = lease()
        assert old
        client.revoke(old)
        eventually(lambda: lease() not in (0, old), "registered again under a new lease")
        for other in cluster.nodes[:3]:
            eventually(lambda o=other: str(peer) in status_of(o)["peers"], "peer listed again")
    finally:
        client.close()


def test_another_incarnation_moves_the_old_one_aside(tmp_path: Path) -> None:
    # The record names another incarnation than the one this node applied: the deletion of
    # the old one was never seen here, so its files are moved aside, not deleted.
    node = FakeNode(["c"])
    service = offline_service(tmp_path, node)
    service.applied.set("c", "old-incarnation")
    service._apply_record(CollectionRecord("c", "new-incarnation", {}, None, {}, {}, 8, 8))
    assert node.dropped == [("c", True)]
    assert "c" in node.names and service.applied.get("c") == "new-incarnation"
    service.client.close()


def test_stop_ends_the_threads_and_leaves(etcd: EtcdProcess, tmp_path: Path) -> None:
    # A clean stop: the watch and keepalive threads end, the lease is revoked (the peer's key
    # goes at once) and the HTTP clients are closed.
    prefix = f"/stop-test-{uuid.uuid4().hex[:6]}/"
    service = ClusterService(tmp_path, [etcd.endpoint], prefix, "http://n:6335/", "http://n")
    service.start(FakeNode([]))
    key = service.store.peer_key(service.peer_id)
    threads = [service._watcher, service.membership._thread]
    assert all(t is not None and t.is_alive() for t in threads)
    service.stop()
    assert not any(t is not None and t.is_alive() for t in threads)
    probe = EtcdClient([etcd.endpoint])
    try:
        assert probe.get(key) is None
    finally:
        probe.close()
    assert service.client._http.is_closed and service.client._watch_http.is_closed


def test_a_failed_join_leaves_no_lease_or_connection(etcd: EtcdProcess, tmp_path: Path) -> None:
    # Start-up fails after registering (here: the node's storage raises while it is
    # reconciled): the peer must not stay listed until its lease runs out, and the HTTP
    # clients are closed.
    prefix = f"/failed-join-{uuid.uuid4().hex[:6]}/"

    class BrokenNode(FakeNode):
        def local_collections(self) -> list[str]:
            raise RuntimeError("storage unreadable")

    service = ClusterService(tmp_path, [etcd.endpoint], prefix, "http://n:6335/", "http://n")
    with pytest.raises(RuntimeError, match="storage unreadable"):
        service.start(BrokenNode([]))
    probe = EtcdClient([etcd.endpoint])
    try:
        assert probe.get(service.store.peer_key(service.peer_id)) is None
    finally:
        probe.close()
    assert service.client._http.is_closed and service.client._watch_http.is_closed


def test_a_compacted_watch_resyncs_without_reporting_an_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # etcd compacted past this node's revision (its prefix was quiet while other keys
    # changed): the node reads the whole state again at once; /cluster must not report the
    # consensus as failing for it.
    service = offline_service(tmp_path, FakeNode([]))
    reads: list[int] = []
    watches: list[int] = []
    problems: list[str | None] = []

    def read() -> ClusterState:
        reads.append(len(reads))
        return ClusterState(40 + len(reads), {}, None, set(), {}, {}, 0)

    def watch(prefix: str, start: int, stopped: Any) -> Iterator[tuple[int, list[Event]]]:
        watches.append(start)
        problems.append(service.problem())
        if len(watches) == 1:
            raise WatchCompacted("watch cancelled: compacted at 40")
        service._stop.set()
        return iter(())

    monkeypatch.setattr(service.store, "read", read)
    monkeypatch.setattr(service.client, "watch", watch)
    service._sync()
    service._watch()
    assert watches == [42, 43]  # resynced (a second whole read), then watched on from it
    assert problems == [None, None]
    assert service.watch_error is None
    service.client.close()


def test_a_watch_answer_without_a_header_is_a_lost_watch() -> None:
    """What the gateway streams when etcd stops under a watch (an `error` object, no header)
    ends the watch as a lost connection does (EtcdUnavailable: one ERROR line, a resync),
    not as a bug (it raised KeyError, logged with a traceback every time etcd stopped)."""
    from tessera.cluster.etcd import EtcdUnavailable, _watch_result

    with pytest.raises(EtcdUnavailable, match="watch ended"):
        _watch_result({"error": {"grpc_code": 14, "message": "error reading from server: EOF"}})
    assert _watch_result({"header": {"revision": "12"}}) == (12, [])


def test_a_peer_call_cut_before_its_answer_is_made_once_more() -> None:
    """A kept-alive connection a peer closes before answering (it restarted, or let an idle
    one go) is not the peer being away: the call is made once more on a new connection
    (it failed the write with a 503 'unreachable' while the peer was up)."""
    import socket as sockets

    from tessera.cluster.p2p import PeerClient

    listener = sockets.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        first, _ = listener.accept()
        first.recv(65536)
        first.close()  # read, no answer
        second, _ = listener.accept()
        second.recv(65536)
        second.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        second.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    client = PeerClient()
    try:
        assert client.call(f"http://127.0.0.1:{port}/", "shard", b"{}", timeout=10) == b"ok"
    finally:
        client.close()
        listener.close()
    server.join(timeout=10)
