"""Cluster mode, data routing (issue 15): points spread over shards on three real nodes, a
real etcd (tests.cluster_harness), the official client and plain HTTP.

What is checked: a point written through any node is read through every node (retrieve,
count, scroll pages, search, the Query API with fusion and order_by, facets) with answers
equal to one computed over all the points; writes by filter reach every shard; replicated
shards keep every acknowledged write through a kill -9 of one node, and the node catches up
when it comes back; a snapshot of a sharded collection holds all of its points.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
import uuid
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.cluster_fixtures import client_for, clients, cluster, etcd  # noqa: F401
from tests.cluster_harness import (
    Cluster,
    PortProxy,
    eventually,
)
from tests.conftest import TARGET
from tests.openapi_check import assert_ok, validate_component

pytestmark = pytest.mark.skipif(TARGET != "server", reason="the harness starts its own nodes")

DIM = 8


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def make_points(ids: list[int], seed: int = 1) -> tuple[np.ndarray[Any, Any], list[Any]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    points = [
        models.PointStruct(
            id=pid,
            vector=vectors[i].tolist(),
            payload={"n": pid, "group": f"g{pid % 5}", "even": pid % 2 == 0},
        )
        for i, pid in enumerate(ids)
    ]
    return vectors, points


def create(
    client: QdrantClient,
    name: str,
    distance: models.Distance = models.Distance.DOT,
    **params: Any,
) -> None:
    assert client.create_collection(
        name, vectors_config=models.VectorParams(size=DIM, distance=distance), **params
    )


def grpc_client(cluster: Cluster, node: int) -> QdrantClient:
    """qdrant-client over gRPC to one node of the cluster."""
    return QdrantClient(
        host="127.0.0.1",
        port=cluster.nodes[node].port,
        grpc_port=cluster.nodes[node].grpc_port,
        prefer_grpc=True,
        check_compatibility=False,
    )


def replicas_active(cluster: Cluster, node: int, name: str, expected: int) -> bool:
    """Whether `node` sees `expected` replicas of the collection, all Active."""
    view = cluster_view(cluster, node, name)
    states = [s["state"] for s in view["local_shards"] + view["remote_shards"]]
    return len(states) == expected and all(s == "Active" for s in states)


def cluster_view(cluster: Cluster, node: int, name: str) -> dict[str, Any]:
    result: dict[str, Any] = assert_ok(
        httpx.get(f"{cluster.nodes[node].url}/collections/{name}/cluster", timeout=30)
    )
    return result


def test_points_are_spread_and_read_through_every_node(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, c = clients
    name = unique("spread")
    create(a, name, distance=models.Distance.EUCLID, shard_number=3)
    ids = list(range(1, 301))
    vectors, points = make_points(ids)
    a.upsert(name, points, wait=True)

    # Every shard holds some points, and together exactly the points written.
    held = [
        s["points_count"] for n in range(3) for s in cluster_view(cluster, n, name)["local_shards"]
    ]
    assert len(held) == 3 and all(h > 0 for h in held) and sum(held) == 300
    # Each peer's metrics count its own replicas, as Qdrant's do.
    pattern = re.compile(r'^collection_points\{[^}]*"' + name + r'"[^}]*\} (\d+)$', re.M)
    local = [
        int(pattern.findall(httpx.get(f"{node.url}/metrics", timeout=30).text)[0])
        for node in cluster.nodes[:3]
    ]
    assert sorted(local) == sorted(held)

    query = np.random.default_rng(7).normal(size=DIM).astype(np.float32)
    distances = np.linalg.norm(vectors - query, axis=1)
    expected = [ids[i] for i in np.argsort(distances, kind="stable")[:10]]
    for client in (a, b, c):
        assert client.count(name, exact=True).count == 300
        got = client.retrieve(name, [5, 300, 1000, 5], with_payload=True)
        assert [p.id for p in got] == [5, 300]
        assert got[0].payload == {"n": 5, "group": "g0", "even": False}
        # Scroll pages across shards: every id once, in id order.
        seen: list[int] = []
        offset = None
        while True:
            page, offset = client.scroll(name, limit=37, offset=offset)
            seen.extend(int(p.id) for p in page)
            if offset is None:
                break
        assert seen == ids
        # Nearest by Euclid: smallest distance first, as over all the points.
        hits = client.query_points(name, query=query.tolist(), limit=10).points
        assert [h.id for h in hits] == expected
        assert [h.score for h in hits] == pytest.approx(sorted(distances)[:10], rel=1e-4)
        # Offset: the collection's, not each shard's.
        page2 = client.query_points(name, query=query.tolist(), limit=5, offset=5).points
        assert [h.id for h in page2] == expected[5:10]
        # A filter.
        even = client.query_points(
            name,
            query=query.tolist(),
            query_filter=models.Filter(
                must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))]
            ),
            limit=5,
        ).points
        assert [h.id for h in even] == [i for i in expected_all(ids, distances) if i % 2 == 0][:5]
        # Counting with a filter and facets add up over shards.
        assert (
            client.count(
                name,
                count_filter=models.Filter(
                    must=[models.FieldCondition(key="group", match=models.MatchValue(value="g1"))]
                ),
            ).count
            == 60
        )


def expected_all(ids: list[int], distances: np.ndarray[Any, Any]) -> list[int]:
    return [ids[i] for i in np.argsort(distances, kind="stable")]


def test_query_api_merges_fusion_order_by_and_facets(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, _ = clients
    name = unique("merge")
    create(a, name, shard_number=3)
    a.create_payload_index(name, "n", models.PayloadSchemaType.INTEGER)
    a.create_payload_index(name, "group", models.PayloadSchemaType.KEYWORD)
    ids = list(range(1, 201))
    vectors, points = make_points(ids, seed=3)
    b.upsert(name, points)

    ordered = a.query_points(
        name, query=models.OrderByQuery(order_by=models.OrderBy(key="n", direction="desc")), limit=7
    ).points
    assert [p.id for p in ordered] == list(range(200, 193, -1))

    facet = b.facet(name, "group", limit=10, exact=True)
    assert sorted((h.value, h.count) for h in facet.hits) == [(f"g{i}", 40) for i in range(5)]

    # RRF over two prefetches ranks by the collection's ranks, not a shard's.
    q1 = vectors[0]
    q2 = vectors[1]
    fused = a.query_points(
        name,
        prefetch=[
            models.Prefetch(query=q1.tolist(), limit=20),
            models.Prefetch(query=q2.tolist(), limit=20),
        ],
        query=models.FusionQuery(fusion=models.Fusion.RRF),
        limit=10,
    ).points
    rank1 = [ids[i] for i in np.argsort(-(vectors @ q1), kind="stable")[:20]]
    rank2 = [ids[i] for i in np.argsort(-(vectors @ q2), kind="stable")[:20]]
    scores: dict[int, float] = {}
    for ranking in (rank1, rank2):
        for r, pid in enumerate(ranking):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (r + 1 + 2)
    best = sorted(scores, key=lambda pid: -scores[pid])[:10]
    assert [p.id for p in fused] == best

    # A recommendation by point ids: the examples live on any shard.
    recommended = b.query_points(
        name, query=models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 2])), limit=3
    ).points
    assert {p.id for p in recommended}.isdisjoint({1, 2}) and len(recommended) == 3


def test_writes_by_filter_and_payload_updates_reach_every_shard(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, c = clients
    name = unique("filtered")
    create(a, name, distance=models.Distance.COSINE, shard_number=3)
    _, points = make_points(list(range(1, 101)), seed=5)
    a.upsert(name, points)
    b.set_payload(
        name,
        payload={"flag": True},
        points=models.Filter(
            must=[models.FieldCondition(key="group", match=models.MatchValue(value="g2"))]
        ),
    )
    flagged = models.Filter(
        must=[models.FieldCondition(key="flag", match=models.MatchValue(value=True))]
    )
    assert c.count(name, count_filter=flagged).count == 20
    c.delete(name, points_selector=models.FilterSelector(filter=flagged))
    assert a.count(name).count == 80
    a.delete(name, points_selector=models.PointIdsList(points=[1, 3, 4]))  # 2 is gone
    assert b.count(name).count == 77
    assert [p.id for p in b.retrieve(name, [1, 5])] == [5]
    # set_payload on ids that live on several shards; a missing one is a 404 as standalone,
    # after the points found are written (as Qdrant), on every replica.
    a.set_payload(name, payload={"x": 1}, points=[5, 6, 8, 9])
    found = c.retrieve(name, [5, 6, 8, 9])
    assert len(found) == 4 and all(p.payload and p.payload["x"] == 1 for p in found)
    missing = httpx.post(
        f"{cluster.nodes[1].url}/collections/{name}/points/payload?wait=true",
        json={"payload": {"x": 2}, "points": [5, 99999]},
        timeout=30,
    )
    assert missing.status_code == 404
    for client in clients:
        (five,) = client.retrieve(name, [5])
        assert five.payload is not None and five.payload["x"] == 2


def test_snapshot_of_a_sharded_collection_holds_every_point(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, _ = clients
    name, restored = unique("snapped"), unique("restored")
    create(a, name, shard_number=3)
    _, points = make_points(list(range(1, 61)), seed=9)
    a.upsert(name, points)
    made = a.create_snapshot(name)
    assert made is not None
    url = f"{cluster.nodes[0].url}/collections/{name}/snapshots/{made.name}"
    data = httpx.get(url, timeout=60).content
    answer = httpx.post(
        f"{cluster.nodes[1].url}/collections/{restored}/snapshots/upload",
        files={"snapshot": ("s.snapshot", data)},
        timeout=120,
    )
    assert assert_ok(answer) is True
    eventually(lambda: a.collection_exists(restored), "restored collection")
    assert a.count(restored, exact=True).count == 60
    assert [p.id for p in b.retrieve(restored, [60])] == [60]


def test_replicated_writes_survive_a_killed_node_which_catches_up(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, _ = clients
    name = unique("replicated")
    create(a, name, shard_number=3, replication_factor=2)
    view = cluster_view(cluster, 0, name)
    assert len(view["local_shards"]) + len(view["remote_shards"]) == 6
    _, first = make_points(list(range(1, 101)), seed=11)
    a.upsert(name, first)

    node = cluster.nodes[2]
    node.kill()  # kill -9, its lease still alive for a while
    acknowledged = set(range(1, 101))
    _, second = make_points(list(range(101, 201)), seed=12)
    for start in range(0, 100, 10):
        batch = second[start : start + 10]
        a.upsert(name, batch)  # every shard keeps a live replica: no write may fail
        acknowledged.update(int(p.id) for p in batch)
    b.delete(name, points_selector=models.PointIdsList(points=[1, 150]))
    acknowledged -= {1, 150}
    for client in (a, b):
        assert client.count(name, exact=True).count == len(acknowledged)
        got = client.retrieve(name, sorted(acknowledged))
        assert {int(p.id) for p in got} == acknowledged

    node.start()
    own = client_for(node.url)
    try:
        # Its two replicas catch up one after the other; only the one streaming at a time is
        # a transfer (Qdrant lists a transfer once it runs; one waiting is just Dead). All
        # replicas that lagged were listed as transfers at once.
        most = 0

        def caught_up() -> bool:
            nonlocal most
            listed = cluster_view(cluster, 0, name)["shard_transfers"]
            most = max(most, len(listed))
            return replicas_active(cluster, 2, name, 6)

        eventually(caught_up, "the restarted node's replicas caught up", timeout=60)
        assert most <= 1
        assert own.count(name, exact=True).count == len(acknowledged)
        assert {int(p.id) for p in own.retrieve(name, sorted(acknowledged | {1}))} == acknowledged
        # Its own replicas hold their shards' points again.
        local = cluster_view(cluster, 2, name)["local_shards"]
        for shard in local:
            others = [
                s["points_count"]
                for n in (0, 1)
                for s in cluster_view(cluster, n, name)["local_shards"]
                if s["shard_id"] == shard["shard_id"]
            ]
            assert others and shard["points_count"] == others[0]
        # And writes through it reach the others.
        own.upsert(name, [models.PointStruct(id=999, vector=[1.0] * DIM)])
        assert [p.id for p in a.retrieve(name, [999])] == [999]
    finally:
        own.close()


def test_a_node_whose_collection_files_are_gone_catches_up_before_it_serves(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """A node killed, its collection's directory removed, started again: the replicas it
    makes again are empty, so they catch up from the others instead of serving, Active,
    an empty copy (they answered 0 points for their shards; Qdrant's
    test_collection_recovery)."""
    a, _, _ = clients
    name = unique("lost")
    create(a, name, shard_number=2, replication_factor=3)
    _, points = make_points(list(range(1, 101)), seed=21)
    a.upsert(name, points)
    node = cluster.nodes[2]
    node.kill()
    shutil.rmtree(cluster.node_directory(2) / "storage" / "collections" / name)
    node.start()
    own = client_for(node.url)
    try:
        eventually(
            lambda: replicas_active(cluster, 2, name, 6), "the node's replicas caught up", 60
        )
        local = cluster_view(cluster, 2, name)["local_shards"]
        assert len(local) == 2 and sum(s["points_count"] for s in local) == 100
        assert own.count(name, exact=True).count == 100
    finally:
        own.close()


def test_write_consistency_factor_refuses_writes_that_too_few_replicas_took(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, _ = clients
    name = unique("consistent")
    create(a, name, shard_number=3, replication_factor=2, write_consistency_factor=2)
    _, points = make_points(list(range(1, 31)), seed=41)
    a.upsert(name, points)
    node = cluster.nodes[2]
    node.kill()
    # Every point's shard has two replicas; two of the three shards have one on the killed
    # node: a write to them is applied by one replica only, fewer than the factor asks.
    _, more = make_points(list(range(100, 130)), seed=42)
    refused = httpx.put(
        f"{cluster.nodes[0].url}/collections/{name}/points?wait=true",
        json={"points": [p.model_dump(exclude_none=True) for p in more]},
        timeout=60,
    )
    assert refused.status_code == 503, refused.text
    assert "write_consistency_factor" in refused.text
    # Reads go on through the live replicas, with every acknowledged point.
    assert {int(p.id) for p in b.retrieve(name, list(range(1, 31)))} == set(range(1, 31))
    node.start()
    own = client_for(node.url)
    try:
        eventually(lambda: replicas_active(cluster, 2, name, 6), "replicas caught up", 60)
        a.upsert(name, more)  # every replica live again: taken
        assert own.count(name, exact=True).count >= 60
    finally:
        own.close()


def test_points_keep_flowing_while_etcd_restarts(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, c = clients
    name = unique("etcdless")
    create(a, name, shard_number=3, replication_factor=2)
    _, points = make_points(list(range(1, 61)), seed=61)
    a.upsert(name, points[:20])
    cluster.etcd.stop()
    try:
        # The placement and replica states are known on every peer: writes and reads need
        # no metadata change while every replica answers.
        b.upsert(name, points[20:40])
        c.upsert(name, points[40:])
        for client in (a, b, c):
            assert client.count(name, exact=True).count == 60
    finally:
        cluster.etcd.start()
    for node in cluster.nodes[:3]:
        eventually(
            lambda n=node: (
                assert_ok(httpx.get(f"{n.url}/cluster"))["consensus_thread_status"][
                    "consensus_thread_status"
                ]
                == "working"
            ),
            "node follows the cluster again",
            30,
        )
    a.upsert(name, [models.PointStruct(id=61, vector=[1.0] * DIM)])
    for client in (a, b, c):
        assert {int(p.id) for p in client.retrieve(name, list(range(1, 62)))} == set(range(1, 62))


def peer_ids(cluster: Cluster) -> list[int]:
    """Every peer of the cluster, as the first node lists them, in order."""
    return sorted(int(p) for p in assert_ok(httpx.get(f"{cluster.nodes[0].url}/cluster"))["peers"])


def placement_of(cluster: Cluster, name: str) -> dict[int, dict[int, tuple[str, int | None]]]:
    """shard -> {peer: (state, points on that peer or None when remote)} from every node."""
    out: dict[int, dict[int, tuple[str, int | None]]] = {}
    for n in range(3):
        view = cluster_view(cluster, n, name)
        for s in view["local_shards"]:
            out.setdefault(s["shard_id"], {})[view["peer_id"]] = (s["state"], s["points_count"])
    return out


def test_replicate_move_and_drop_a_shard(cluster: Cluster, clients: list[QdrantClient]) -> None:
    a, b, _ = clients
    name = unique("moved")
    create(a, name, shard_number=1)
    _, points = make_points(list(range(1, 51)), seed=21)
    a.upsert(name, points)
    peers = peer_ids(cluster)
    (holder,) = placement_of(cluster, name)[0]
    first, second = [p for p in peers if p != holder]

    def replicate(source: int, target: int) -> models.ClusterOperations:
        return models.ReplicateShardOperation(
            replicate_shard=models.ReplicateShard(
                shard_id=0, from_peer_id=source, to_peer_id=target
            )
        )

    assert a.cluster_collection_update(name, replicate(holder, first))
    eventually(
        lambda: placement_of(cluster, name)[0].get(first) == ("Active", 50), "replica caught up"
    )
    assert placement_of(cluster, name)[0][holder] == ("Active", 50)
    # A replica that exists is copied again (Qdrant's transfer replaces the target's copy):
    # it catches up once more and holds the shard's points.
    again = {"replicate_shard": {"shard_id": 0, "from_peer_id": holder, "to_peer_id": first}}
    assert_ok(httpx.post(f"{cluster.nodes[0].url}/collections/{name}/cluster", json=again))
    eventually(lambda: placement_of(cluster, name)[0].get(first) == ("Active", 50), "copied again")
    assert set(placement_of(cluster, name)[0]) == {holder, first}
    # Refusals: a shard that does not exist, an unknown operation.
    for bad in (
        {"replicate_shard": {"shard_id": 7, "from_peer_id": holder, "to_peer_id": second}},
        {"frobnicate": {}},
    ):
        answer = httpx.post(f"{cluster.nodes[0].url}/collections/{name}/cluster", json=bad)
        assert answer.status_code == 400, answer.text

    # A condition the drop must meet (newer Qdrant's `min_other_active_replicas`): with one
    # other active replica, asking for two is refused and changes nothing.
    url = f"{cluster.nodes[0].url}/collections/{name}/cluster?wait=true"
    conditional = {"drop_replica": {"shard_id": 0, "peer_id": holder}}
    conditional["drop_replica"]["min_other_active_replicas"] = 2
    refused = httpx.post(url, json=conditional, timeout=30)
    assert refused.status_code == 400 and "at least 2 are required" in refused.text
    assert set(placement_of(cluster, name)[0]) == {holder, first}
    # The old holder's replica dropped: the data lives on.
    drop = models.DropReplicaOperation(drop_replica=models.Replica(shard_id=0, peer_id=holder))
    assert b.cluster_collection_update(name, drop)
    eventually(lambda: set(placement_of(cluster, name)[0]) == {first}, "replica dropped")
    assert a.count(name, exact=True).count == 50
    # The last replica cannot go.
    last = models.DropReplicaOperation(drop_replica=models.Replica(shard_id=0, peer_id=first))
    with pytest.raises(Exception, match="at least one"):
        a.cluster_collection_update(name, last)

    # A move through gRPC: the target catches up, then the source goes.
    grpc = grpc_client(cluster, 0)
    try:
        move = models.MoveShardOperation(
            move_shard=models.MoveShard(shard_id=0, from_peer_id=first, to_peer_id=second)
        )
        assert grpc.cluster_collection_update(name, move)
    finally:
        grpc.close()
    eventually(
        lambda: placement_of(cluster, name)[0] == {second: ("Active", 50)}, "shard moved", 60
    )
    for client in (a, b):
        assert client.count(name, exact=True).count == 50
    a.upsert(name, [models.PointStruct(id=77, vector=[0.5] * DIM)])
    assert b.count(name, exact=True).count == 51


def test_a_replica_copied_from_a_new_leader_stays_active(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """A shard moved to a peer, then copied from it to another right away: the copy, which
    has every point of its new leader, stays Active. (The new leader once took it for a
    replica its previous leader might have left behind and marked it dead a moment after it
    caught up, for a second transfer: writes in that window had one replica only, and one
    cut off from the leader then had none to go to.) Three rounds: the window was a race."""
    a, _, _ = clients
    name = unique("relead")
    leader = filled_one_shard(a, cluster, name, 40, seed=23)
    peers = peer_ids(cluster)
    url = f"{cluster.nodes[0].url}/collections/{name}/cluster"
    for _ in range(3):
        target, copy = [p for p in peers if p != leader]
        move = {"move_shard": {"shard_id": 0, "from_peer_id": leader, "to_peer_id": target}}
        assert_ok(httpx.post(url, json=move))
        moved = {target: "Active"}
        eventually(lambda moved=moved: states_of(url) == moved, "shard moved", 60)
        replicate = {"replicate_shard": {"shard_id": 0, "from_peer_id": target, "to_peer_id": copy}}
        assert_ok(httpx.post(url, json=replicate))
        both = {target: "Active", copy: "Active"}
        seen = []  # the copy's states: Partial while it takes the transfer, then Active
        watched_until = time.monotonic() + 60
        while time.monotonic() < watched_until:
            states = states_of(url)
            seen.append(states.get(copy))
            if states == both and watched_until - time.monotonic() > 1.2:
                watched_until = time.monotonic() + 1.2  # past the peers' next catch-up round
            time.sleep(0.02)
        assert states_of(url) == both
        assert "Dead" not in seen, seen
        drop = {"drop_replica": {"shard_id": 0, "peer_id": target}}
        assert_ok(httpx.post(url, json=drop))
        kept = {copy: "Active"}
        eventually(lambda kept=kept: states_of(url) == kept, "replica dropped", 60)
        leader = copy
    assert a.count(name, exact=True).count == 40
    a.delete_collection(name)


def remove_added_node(cluster: Cluster, node: Any, proxy: PortProxy) -> None:
    """Stop a node a test added beside the module's three and wait until it has left: the
    module's later tests place replicas on the three nodes they know."""
    peer = str(assert_ok(httpx.get(f"{node.url}/cluster"))["peer_id"]) if node.running else None
    node.stop()
    cluster.nodes.remove(node)
    proxy.close()
    if peer is not None:
        eventually(
            lambda: peer not in assert_ok(httpx.get(f"{cluster.nodes[0].url}/cluster"))["peers"],
            "the added node left",
        )


def has_point(node_url: str, name: str, pid: int) -> bool:
    """Whether the node at `node_url` answers point `pid` of `name` (from its own replica
    where it holds an active one)."""
    found = assert_ok(httpx.post(f"{node_url}/collections/{name}/points", json={"ids": [pid]}))
    return [p["id"] for p in found] == [pid]


def states_of(url: str) -> dict[int, str]:
    """Replica states of a one-shard collection, by peer, as the node at `url` (its
    `/collections/{c}/cluster`) sees them."""
    view = assert_ok(httpx.get(url))
    states = {s["peer_id"]: s["state"] for s in view["remote_shards"]}
    for local in view["local_shards"]:  # one shard: at most one here
        states[view["peer_id"]] = local["state"]
    return states


def filled_one_shard(client: QdrantClient, cluster: Cluster, name: str, n: int, seed: int) -> int:
    """A one-shard collection of `n` points (long enough to transfer that its states can be
    watched); the peer holding the shard."""
    create(client, name, shard_number=1)
    _, points = make_points(list(range(n)), seed=seed)
    for start in range(0, n, 2000):
        client.upsert(name, points[start : start + 2000])
    (holder,) = placement_of(cluster, name)[0]
    return holder


def test_a_replica_taking_a_transfer_is_partial(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """Qdrant's replica states through a transfer: the new replica is Dead until the
    stream starts, Partial while it takes it, then Active with every point."""
    a, _, _ = clients
    name = unique("partial")
    n = 20_000
    holder = filled_one_shard(a, cluster, name, n, seed=31)
    peers = peer_ids(cluster)
    target = next(p for p in peers if p != holder)
    url = f"{cluster.nodes[0].url}/collections/{name}/cluster"
    copy = {"replicate_shard": {"shard_id": 0, "from_peer_id": holder, "to_peer_id": target}}
    assert_ok(httpx.post(url, json=copy))
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = assert_ok(httpx.get(url))
        states = {s["peer_id"]: s["state"] for s in view["remote_shards"]}
        for local in view["local_shards"]:  # one shard: at most one here
            states[view["peer_id"]] = local["state"]
        state = states.get(target)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == "Active":
            break
        time.sleep(0.005)
    assert seen[-1] == "Active", seen
    assert "Partial" in seen, seen
    assert set(seen) <= {"Dead", "Partial", "Active"}, seen
    assert placement_of(cluster, name)[0][target] == ("Active", n)


def test_shard_keys_route_points_and_select_shards(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, c = clients
    name = unique("tenants")
    create(a, name, sharding_method=models.ShardingMethod.CUSTOM)
    assert a.get_collection(name).config.params.sharding_method == models.ShardingMethod.CUSTOM
    assert a.create_shard_key(name, "tenant_a")
    assert b.create_shard_key(name, "tenant_b", shards_number=2)
    assert {k.key for k in (c.list_shard_keys(name).shard_keys or [])} == {"tenant_a", "tenant_b"}
    with pytest.raises(Exception, match="already exists"):
        a.create_shard_key(name, "tenant_a")

    _, first = make_points(list(range(1, 11)), seed=31)
    _, second = make_points(list(range(11, 31)), seed=32)
    a.upsert(name, first, shard_key_selector="tenant_a")
    b.upsert(name, second, shard_key_selector="tenant_b")
    unkeyed = httpx.put(
        f"{cluster.nodes[0].url}/collections/{name}/points",
        json={"points": [{"id": 99, "vector": [0.1] * DIM}]},
    )
    # Qdrant's keyless ring exists (empty) in every collection: "No shards found for shard key"
    assert unkeyed.status_code == 400 and "No shards found for shard key" in unkeyed.text
    unknown = httpx.put(
        f"{cluster.nodes[0].url}/collections/{name}/points",
        json={"points": [{"id": 99, "vector": [0.1] * DIM}], "shard_key": "nobody"},
    )
    assert unknown.status_code == 400 and "Shard key nobody not found" in unknown.text

    for client in (a, b, c):
        assert client.count(name, shard_key_selector="tenant_a").count == 10
        assert client.count(name, shard_key_selector="tenant_b").count == 20
        assert client.count(name).count == 30
        assert client.count(name, shard_key_selector=["tenant_a", "tenant_b"]).count == 30
        hits = client.query_points(
            name, query=[1.0] * DIM, limit=50, shard_key_selector="tenant_a"
        ).points
        assert sorted(int(h.id) for h in hits) == list(range(1, 11))
        assert {h.shard_key for h in hits} == {"tenant_a"}  # as Qdrant marks them
        assert [p.id for p in client.retrieve(name, [5], shard_key_selector="tenant_a")] == [5]
        assert client.retrieve(name, [5], shard_key_selector="tenant_b") == []
        assert [p.id for p in client.retrieve(name, [5, 25])] == [5, 25]
    unknown_read = httpx.post(
        f"{cluster.nodes[1].url}/collections/{name}/points/count",
        json={"shard_key": "nobody"},
    )
    assert unknown_read.status_code == 400 and "Shard key nobody not found" in unknown_read.text

    keyed = [
        s.get("shard_key") for n in range(3) for s in cluster_view(cluster, n, name)["local_shards"]
    ]
    assert sorted(keyed) == ["tenant_a", "tenant_b", "tenant_b"]

    # Through gRPC too: the selector of a count.
    grpc = grpc_client(cluster, 1)
    try:
        assert grpc.count(name, shard_key_selector="tenant_b").count == 20
        found = grpc.query_points(name, query=[1.0] * DIM, limit=3, shard_key_selector="tenant_b")
        assert {p.shard_key for p in found.points} == {"tenant_b"}
        # A batch whose operations name their keys (gRPC UpdateBatch).
        grpc.batch_update_points(
            name,
            [
                models.UpsertOperation(
                    upsert=models.PointsList(
                        points=[models.PointStruct(id=500, vector=[0.5] * DIM)],
                        shard_key="tenant_b",
                    )
                )
            ],
        )
        assert grpc.count(name, shard_key_selector="tenant_b").count == 21
        grpc.delete(
            name, points_selector=models.PointIdsList(points=[500]), shard_key_selector="tenant_b"
        )
        assert {k.key for k in (grpc.list_shard_keys(name).shard_keys or [])} == {
            "tenant_a",
            "tenant_b",
        }
    finally:
        grpc.close()

    # Dropping a key drops its points.
    assert a.delete_shard_key(name, "tenant_a")
    assert b.count(name).count == 20
    assert {k.key for k in (c.list_shard_keys(name).shard_keys or [])} == {"tenant_b"}

    # An auto-sharded collection has no shard keys.
    auto = unique("auto")
    create(a, auto)
    with pytest.raises(Exception, match="Auto sharding method"):
        a.create_shard_key(auto, "k")
    assert a.list_shard_keys(auto).shard_keys is None


def test_what_a_peer_creates_every_peer_knows_when_it_answers(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """As Qdrant synchronises every node after creating a collection, a shard key, a named
    vector or an alias: the next request may go to any peer, which must know it already (a
    write through another peer right after a shard key was created answered "Shard key 7
    not found" when that peer's watch had not caught up)."""
    a, b, c = clients
    name = unique("synced")
    create(a, name, sharding_method=models.ShardingMethod.CUSTOM)
    for other in (b, c):
        assert other.collection_exists(name)
    for key in range(5):
        assert a.create_shard_key(name, key)
        for other in (b, c):
            other.upsert(
                name, [models.PointStruct(id=key, vector=[1.0] * DIM)], shard_key_selector=key
            )
        alias = f"{name}_a{key}"
        a.update_collection_aliases(
            [
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(collection_name=name, alias_name=alias)
                )
            ]
        )
        for other in (b, c):
            assert other.count(alias, shard_key_selector=key).count == 1
    response = httpx.put(
        f"{cluster.nodes[0].url}/collections/{name}/vectors/extra",
        json={"dense": {"size": 2, "distance": "Dot"}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    for other in (b, c):
        assert "extra" in other.get_collection(name).config.params.vectors  # type: ignore[operator]
    a.delete_collection(name)


def test_what_a_peer_drops_no_peer_knows_when_it_answers(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """Dropping a shard key answers once every peer has applied it too: a read through
    another peer right after must not list the key nor count its points (the peers' lists
    of keys differed for a moment after the answer)."""
    a, b, c = clients
    name = unique("dropped")
    create(a, name, sharding_method=models.ShardingMethod.CUSTOM)
    assert a.create_shard_key(name, "kept")
    a.upsert(name, [models.PointStruct(id=0, vector=[1.0] * DIM)], shard_key_selector="kept")
    for key in range(8):
        assert a.create_shard_key(name, key)
        b.upsert(name, [models.PointStruct(id=key + 1, vector=[1.0] * DIM)], shard_key_selector=key)
        assert a.delete_shard_key(name, key)
        for other in (b, c):
            assert {k.key for k in (other.list_shard_keys(name).shard_keys or [])} == {"kept"}
            assert other.count(name).count == 1
    a.delete_collection(name)


def test_cluster_telemetry_and_sharding_key_operations(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    a, b, _ = clients
    name = unique("keyed")
    create(a, name, sharding_method=models.ShardingMethod.CUSTOM)
    # The cluster operation forms of the shard key routes.
    made = models.CreateShardingKeyOperation(
        create_sharding_key=models.CreateShardingKey(shard_key=7, shards_number=2)
    )
    assert a.cluster_collection_update(name, made)
    b.upsert(name, [models.PointStruct(id=1, vector=[1.0] * DIM)], shard_key_selector=7)
    assert a.count(name, shard_key_selector=7).count == 1

    answer = assert_ok(httpx.get(f"{cluster.nodes[1].url}/cluster/telemetry", timeout=30))
    validate_component("DistributedTelemetryData", answer)
    peers = answer["cluster"]["peers"]
    assert len(peers) == 3 and all(p["responsive"] for p in peers.values())
    assert all(p["details"]["version"] for p in peers.values())
    shards = answer["collections"][name]["shards"]
    assert [s["key"] for s in shards] == [7, 7]
    assert [s["id"] for s in shards] == [1, 2]  # as Qdrant numbers a first key's shards
    assert all(r["state"] == "Active" for s in shards for r in s["replicas"])
    # Each node's /telemetry: every shard of the key, with its key and replicas' states
    for node in cluster.nodes:
        params = {"details_level": 4}
        found = assert_ok(httpx.get(f"{node.url}/telemetry", params=params, timeout=30))
        validate_component("TelemetryData", found)
        (seen,) = [c for c in found["collections"]["collections"] if c["id"] == name]
        assert [s["key"] for s in seen["shards"]] == [7, 7]
        assert all(set(s["replicate_states"].values()) == {"Active"} for s in seen["shards"])
        assert name in found["hardware"]["collection_data"]

    dropped = models.DropShardingKeyOperation(drop_sharding_key=models.DropShardingKey(shard_key=7))
    assert b.cluster_collection_update(name, dropped)
    assert a.list_shard_keys(name).shard_keys == []
    assert a.count(name).count == 0
    # A key made right after gets new shards, never the dropped key's (whose files a peer
    # may not have removed yet).
    assert a.create_shard_key(name, 8, shards_number=2)
    assert b.count(name, shard_key_selector=8).count == 0
    keyed = {
        s["shard_id"]: s.get("shard_key")
        for n in range(3)
        for s in cluster_view(cluster, n, name)["local_shards"]
    }
    assert sorted(keyed) == [3, 4] and set(keyed.values()) == {8}


def test_replicate_points_copies_a_tenant_into_another_shard_key(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """Qdrant's "promote a tenant": a key made Partial gets one replica per shard, and
    `replicate_points` copies the points of one key matching a filter into it, vectors
    and payloads alike (REST and gRPC), after Qdrant's checks."""
    a, b, c = clients
    name = unique("promote")
    create(a, name, sharding_method=models.ShardingMethod.CUSTOM, replication_factor=2)
    assert a.create_shard_key(name, "shared", shards_number=1)
    made = models.CreateShardingKeyOperation(
        create_sharding_key=models.CreateShardingKey(
            shard_key="vip", shards_number=1, initial_state=models.ReplicaState.PARTIAL
        )
    )
    assert b.cluster_collection_update(name, made)
    assert a.create_shard_key(name, "two", shards_number=2)
    points = [
        models.PointStruct(id=i, vector=[float(i)] * DIM, payload={"tenant": "x" if i < 5 else "y"})
        for i in range(1, 11)
    ]
    a.upsert(name, points, shard_key_selector="shared")

    def copy(client: QdrantClient, source: str, target: str, tenant: str) -> bool:
        return client.cluster_collection_update(
            name,
            models.ReplicatePointsOperation(
                replicate_points=models.ReplicatePoints(
                    from_shard_key=source,
                    to_shard_key=target,
                    filter=models.Filter(
                        must=[
                            models.FieldCondition(
                                key="tenant", match=models.MatchValue(value=tenant)
                            )
                        ]
                    ),
                )
            ),
        )

    assert copy(c, "shared", "vip", "x")
    copied = a.scroll(name, shard_key_selector="vip", with_vectors=True, limit=100)[0]
    assert sorted(int(p.id) for p in copied) == [1, 2, 3, 4]
    assert all(p.payload == {"tenant": "x"} for p in copied)
    assert all(p.vector == [float(p.id)] * DIM for p in copied)
    assert a.count(name, shard_key_selector="shared").count == 10  # a copy, not a move

    with pytest.raises(Exception, match=r"exactly one shard is supported\. Shard key two has 2"):
        copy(a, "two", "vip", "y")
    with pytest.raises(
        Exception, match=r"exactly one replica is supported\. Shard key shared has 2"
    ):
        copy(a, "vip", "shared", "x")
    with pytest.raises(Exception, match="Shard key nobody not found"):
        copy(a, "nobody", "vip", "x")
    bad_state = httpx.post(
        f"{cluster.nodes[0].url}/collections/{name}/cluster",
        json={"create_sharding_key": {"shard_key": "z", "initial_state": "Dead"}},
    )
    assert bad_state.status_code == 400
    assert "Initial state cannot be Dead, only Active or Partial are allowed" in bad_state.text

    grpc = grpc_client(cluster, 2)
    try:
        assert copy(grpc, "shared", "vip", "y")
    finally:
        grpc.close()
    assert b.count(name, shard_key_selector="vip").count == 10


def test_a_leader_cut_off_from_its_peers_cannot_make_replicas_diverge(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """A fourth node whose p2p port is behind a proxy leads a shard of two replicas; the
    proxy then cuts it off from the others (it still reaches them, and etcd): writes go on
    through the other replica, every acknowledged one is read back everywhere, the cut-off
    leader is dead meanwhile, and once healed it catches up to the same points."""
    a, b, _ = clients
    proxy = PortProxy()
    node = cluster.add_node(proxy=proxy)
    cut = client_for(node.url)
    try:
        me = int(assert_ok(httpx.get(f"{node.url}/cluster"))["peer_id"])
        eventually(
            lambda: str(me) in assert_ok(httpx.get(f"{cluster.nodes[0].url}/cluster"))["peers"],
            "the new peer joined",
        )
        name = unique("fenced")
        create(a, name, shard_number=1)

        def replicas() -> dict[int, str]:
            view = assert_ok(httpx.get(f"{cluster.nodes[0].url}/collections/{name}/cluster"))
            found = {s["peer_id"]: s["state"] for s in view["remote_shards"]}
            for local in view["local_shards"]:  # one shard: at most one here
                found[view["peer_id"]] = local["state"]
            return found

        (holder,) = replicas()
        other = int(assert_ok(httpx.get(f"{cluster.nodes[0].url}/cluster"))["peer_id"])
        if holder == other:
            other = int(assert_ok(httpx.get(f"{cluster.nodes[1].url}/cluster"))["peer_id"])

        if holder != me:  # the cut-off node must lead: it first in placement order
            move = models.MoveShardOperation(
                move_shard=models.MoveShard(shard_id=0, from_peer_id=holder, to_peer_id=me)
            )
            assert a.cluster_collection_update(name, move)
            eventually(lambda: replicas() == {me: "Active"}, "moved to the new node", 60)
        copy = models.ReplicateShardOperation(
            replicate_shard=models.ReplicateShard(shard_id=0, from_peer_id=me, to_peer_id=other)
        )
        assert a.cluster_collection_update(name, copy)
        eventually(lambda: replicas() == {me: "Active", other: "Active"}, "second replica", 60)
        _, points = make_points(list(range(1, 21)), seed=51)
        a.upsert(name, points)
        acknowledged = set(range(1, 21))

        proxy.block()
        for i in range(10):
            a.upsert(name, [models.PointStruct(id=100 + i, vector=[0.5] * DIM)])
            acknowledged.add(100 + i)
            try:
                cut.upsert(name, [models.PointStruct(id=200 + i, vector=[0.25] * DIM)])
                acknowledged.add(200 + i)
            except Exception:  # refused while the cut-off node learns it no longer leads
                pass
        assert replicas()[me] == "Dead"
        for client in (a, b, cut):
            got = {int(p.id) for p in client.retrieve(name, sorted(acknowledged))}
            assert got == acknowledged

        proxy.unblock()
        eventually(
            lambda: replicas() == {me: "Active", other: "Active"}, "the cut-off node caught up", 60
        )
        counts = {
            peer: points
            for n in (0, 1, 3)
            for peer, (state, points) in placement_of_all(cluster, name, n).items()
        }
        assert counts[me] == counts[other]
        assert {int(p.id) for p in cut.retrieve(name, sorted(acknowledged))} == acknowledged
        a.delete_collection(name)
    finally:
        cut.close()
        remove_added_node(cluster, node, proxy)


def placement_of_all(cluster: Cluster, name: str, node: int) -> dict[int, tuple[str, int]]:
    """This node's replica of a one-shard collection: {its peer id: (state, points)}."""
    view = cluster_view(cluster, node, name)
    found = {}
    for local in view["local_shards"]:
        found[view["peer_id"]] = (local["state"], local["points_count"])
    return found


def test_writes_go_on_while_a_shard_moves_and_its_leader_is_dropped(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """Qdrant's transfers do not interrupt writes: while a shard moves back and forth and its
    leading replica is dropped, every upsert sent through any node is acknowledged (none is
    refused with a 503 for the leadership change) and every acknowledged point is there."""
    import threading

    name = unique("steady")
    create(clients[0], name, shard_number=1, replication_factor=2)
    eventually(lambda: len(placement_of(cluster, name).get(0, {})) == 2, "two replicas")
    stop = threading.Event()
    acknowledged: list[int] = []
    refused: list[str] = []

    def writer(node: int, first_id: int) -> None:
        with httpx.Client(base_url=cluster.nodes[node].url, timeout=60) as http:
            pid = first_id
            while not stop.is_set():
                answer = http.put(
                    f"/collections/{name}/points?wait=true",
                    json={"points": [{"id": pid, "vector": [0.1 * (pid % 7)] * DIM}]},
                )
                if answer.status_code == 200:
                    acknowledged.append(pid)
                else:
                    refused.append(f"{answer.status_code} {answer.text}")
                pid += 1

    threads = [threading.Thread(target=writer, args=(n, n * 1_000_000)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        url = f"{cluster.nodes[0].url}/collections/{name}/cluster"
        peers = sorted(
            int(p) for p in assert_ok(httpx.get(f"{cluster.nodes[0].url}/cluster"))["peers"]
        )
        for _ in range(3):
            holders = sorted(placement_of(cluster, name)[0])
            spare = next(p for p in peers if p not in holders)
            move = {"move_shard": {"shard_id": 0, "from_peer_id": holders[0], "to_peer_id": spare}}
            assert_ok(httpx.post(url, json=move))
            moved = sorted([holders[1], spare])
            eventually(
                lambda moved=moved: (
                    sorted(placement_of(cluster, name)[0]) == moved
                    and replicas_active(cluster, 0, name, 2)
                ),
                "shard moved",
                60,
            )
            time.sleep(0.3)
        # The leader's replica dropped, then replicated again.
        leader = sorted(placement_of(cluster, name)[0])[0]
        drop = {"drop_replica": {"shard_id": 0, "peer_id": leader}}
        assert_ok(httpx.post(url, json=drop))
        eventually(lambda: leader not in placement_of(cluster, name)[0], "replica dropped")
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not refused, refused[:5]
    assert len(acknowledged) > 50
    found = clients[1].retrieve(name, acknowledged, with_payload=False)
    assert len(found) == len(acknowledged)


def test_a_transfer_whose_source_dies_leaves_its_target_dead(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """Qdrant aborts a transfer whose source peer goes away: the replica that was taking it
    is Dead (not Partial), and no transfer from the gone peer is listed."""
    a = clients[0]
    name = unique("orphan")
    n = 30_000
    holder = filled_one_shard(a, cluster, name, n, seed=41)
    ids = [assert_ok(httpx.get(f"{node.url}/cluster"))["peer_id"] for node in cluster.nodes[:3]]
    source = cluster.nodes[ids.index(holder)]
    target = next(p for p in ids if p != holder)
    observer = cluster.nodes[next(i for i, p in enumerate(ids) if p not in (holder, target))]
    url = f"{observer.url}/collections/{name}/cluster"

    def target_state() -> str | None:
        view = assert_ok(httpx.get(url))
        states = {s["peer_id"]: s["state"] for s in view["remote_shards"]}
        for local in view["local_shards"]:  # one shard: at most one here
            states[view["peer_id"]] = local["state"]
        return states.get(target)

    copy = {"replicate_shard": {"shard_id": 0, "from_peer_id": holder, "to_peer_id": target}}
    assert_ok(httpx.post(url, json=copy))
    eventually(lambda: target_state() == "Partial", "transfer started", 30)
    source.kill()
    try:
        eventually(
            lambda: str(holder) not in assert_ok(httpx.get(f"{observer.url}/cluster"))["peers"],
            "the source left",
            30,
        )
        eventually(lambda: target_state() == "Dead", "the target dead", 10)
        view = assert_ok(httpx.get(url))
        assert not [t for t in view["shard_transfers"] if t["from"] == holder], view
    finally:
        source.start()
    eventually(lambda: target_state() == "Active", "caught up from the source once back", 60)
    assert a.count(name, exact=True).count == n
    a.delete_collection(name)


def test_a_leader_killed_mid_replication_leaves_no_replica_behind(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """The leader of a 3-replica shard gives a delete to one replica and is killed before the
    third takes it (its p2p port stalls). The client's retry through the new leader changes
    nothing there; the third replica must not go on serving the deleted point: a peer that
    takes over a shard has the others catch up from it."""
    import threading

    a = clients[0]
    name = unique("takeover")
    # Placed on the module's three nodes first; the fourth, whose p2p port can stall, joins after.
    holder = filled_one_shard(a, cluster, name, 1, seed=61)
    proxy = PortProxy()
    lagging = cluster.add_node(proxy=proxy)
    try:
        ids = [assert_ok(httpx.get(f"{n.url}/cluster"))["peer_id"] for n in cluster.nodes[:3]]
        lag_id = int(assert_ok(httpx.get(f"{lagging.url}/cluster"))["peer_id"])
        second = next(p for p in ids if p != holder)
        url = f"{cluster.nodes[0].url}/collections/{name}/cluster"
        for target in (second, lag_id):
            copy = {
                "replicate_shard": {"shard_id": 0, "from_peer_id": holder, "to_peer_id": target}
            }
            assert_ok(httpx.post(url, json=copy))
            eventually(lambda t=target: states_of(url).get(t) == "Active", "replica active", 60)
        leader_node = cluster.nodes[ids.index(holder)]
        second_node = cluster.nodes[ids.index(second)]
        point = {"points": [{"id": 7, "vector": [1.0] * DIM, "payload": {"k": 1}}]}
        assert_ok(httpx.put(f"{leader_node.url}/collections/{name}/points?wait=true", json=point))
        eventually(lambda: has_point(lagging.url, name, 7), "the lagging replica has the point")
        by_filter = {"filter": {"must": [{"key": "k", "match": {"value": 1}}]}}
        proxy.hold()

        def delete() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(
                    f"{leader_node.url}/collections/{name}/points/delete?wait=true",
                    json=by_filter,
                    timeout=30,
                )

        thread = threading.Thread(target=delete)
        thread.start()
        eventually(
            lambda: has_point(second_node.url, name, 7) is False,
            "the second replica took the delete",
        )
        leader_node.kill()
        thread.join()
        # The stalled call is lost with the killed leader: cut, never delivered late.
        proxy.block()
        proxy.release()
        proxy.unblock()

        def retried() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.post(
                    f"{second_node.url}/collections/{name}/points/delete?wait=true",
                    json=by_filter,
                    timeout=30,
                )
                return answer.status_code == 200
            return False

        eventually(retried, "the retry acknowledged", 60)
        eventually(
            lambda: has_point(lagging.url, name, 7) is False,
            "the lagging replica's node no longer serves the deleted point",
            60,
        )
    finally:
        proxy.release()
        for node in cluster.nodes[:3]:
            if node.proc is None or node.proc.poll() is not None:
                node.start()
        with contextlib.suppress(Exception):
            a.delete_collection(name)
        remove_added_node(cluster, lagging, proxy)


def test_a_node_in_recovery_mode_loads_nothing_and_steps_aside(
    cluster: Cluster, clients: list[QdrantClient]
) -> None:
    """`storage.recovery_mode` in cluster mode (Qdrant's test_recovery_mode): the node's
    collections stay unloaded (the reason an operator starts it so), its replicas are marked
    dead so that the other peers serve without them, and once it runs without recovery mode
    it catches up. It used to load and serve every replica as if not in recovery mode."""
    a, b, _ = clients
    name = unique("recovery")
    create(a, name, shard_number=1, replication_factor=3)
    _, first = make_points(list(range(1, 101)), seed=21)
    a.upsert(name, first)
    node = cluster.nodes[2]
    plain = dict(node.env)
    node.stop()
    node.env = {**plain, "QDRANT__STORAGE__RECOVERY_MODE": "Custom recovery msg"}
    try:
        node.start()
        answer = httpx.post(
            f"{node.url}/collections/{name}/points/count", json={"exact": True}, timeout=30
        )
        assert answer.status_code >= 400 and "Custom recovery msg" in answer.text, answer.text

        def stepped_aside() -> bool:
            states = [
                s["state"]
                for s in cluster_view(cluster, 0, name)["local_shards"]
                + cluster_view(cluster, 0, name)["remote_shards"]
            ]
            return sorted(states) == ["Active", "Active", "Dead"]

        eventually(stepped_aside, "the replica of the node in recovery mode marked dead")
        _, second = make_points(list(range(101, 151)), seed=22)
        a.upsert(name, second)  # the two others take writes
        for client in (a, b):
            assert client.count(name, exact=True).count == 150
    finally:
        node.stop()
        node.env = plain
        node.start()
    eventually(
        lambda: replicas_active(cluster, 2, name, 3),
        "the node caught up once out of recovery mode",
        timeout=60,
    )
    own = client_for(node.url)
    try:
        assert own.count(name, exact=True).count == 150
    finally:
        own.close()
