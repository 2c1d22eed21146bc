"""`shard_number` on a standalone node: one local shard per shard (as Qdrant makes them),
every point in one of them, reads over all of them merged exactly; collection cluster info
lists them; the shards survive a restart; a snapshot holds every point; and points an older
Tessera kept in the collection's single shard move to the shards when the node starts.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tessera.collection import writes
from tessera.collection.distributed import ClusterCollection
from tessera.collection.shard_directory import LocalShards, Placement
from tessera.collection.values import NOTHING
from tessera.collection_config import parse_create_collection
from tessera.errors import ServiceUnavailable
from tessera.shard.operations import DenseColumn
from tests.conftest import ServerProcess
from tests.openapi_check import assert_ok

DIM = 8


def points(n: int) -> tuple[np.ndarray[Any, Any], list[models.PointStruct]]:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    made = [
        models.PointStruct(id=i + 1, vector=vectors[i].tolist(), payload={"g": (i + 1) % 4})
        for i in range(n)
    ]
    return vectors, made


def local_shards(url: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = assert_ok(httpx.get(f"{url}/collections/{name}/cluster"))
    return result


def test_shard_number_makes_local_shards(
    server_factory: Callable[..., ServerProcess],
) -> None:
    node = server_factory()
    client = QdrantClient(url=node.url, timeout=30, check_compatibility=False)
    try:
        client.create_collection(
            "s",
            vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID),
            shard_number=3,
        )
        vectors, made = points(200)
        client.upsert("s", made)
        info = local_shards(node.url, "s")
        assert info["shard_count"] == 3
        counts = [s["points_count"] for s in info["local_shards"]]
        assert len(counts) == 3 and all(c > 0 for c in counts) and sum(counts) == 200
        assert client.count("s").count == 200
        assert client.get_collection("s").points_count == 200
        query = vectors[0] + 0.1
        expected = np.argsort(np.linalg.norm(vectors - query, axis=1), kind="stable")[:10] + 1
        hits = client.query_points("s", query=query.tolist(), limit=10).points
        assert [h.id for h in hits] == expected.tolist()
        page, offset = client.scroll("s", limit=150)
        rest, end = client.scroll("s", limit=150, offset=offset)
        assert [int(p.id) for p in page + rest] == list(range(1, 201)) and end is None
        client.delete(
            "s",
            points_selector=models.FilterSelector(
                filter=models.Filter(
                    must=[models.FieldCondition(key="g", match=models.MatchValue(value=0))]
                )
            ),
        )
        assert client.count("s").count == 150
        snapshot = client.create_snapshot("s")
        assert snapshot is not None
    finally:
        client.close()
    node.stop()
    node.start()
    client = QdrantClient(url=node.url, timeout=30, check_compatibility=False)
    try:
        assert client.count("s").count == 150
        assert local_shards(node.url, "s")["shard_count"] == 3
        assert client.recover_snapshot(
            "restored", f"file://{node.storage}/snapshots/s/{snapshot.name}"
        )
        assert client.count("restored").count == 150
    finally:
        client.close()


def test_points_of_the_single_shard_move_to_the_shards(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """Points in the collection's own `shard/` (where a Tessera that kept one shard per
    collection wrote them) are moved to the local shards at start, none lost."""
    node = server_factory()
    client = QdrantClient(url=node.url, timeout=30, check_compatibility=False)
    try:
        client.create_collection(
            "two",
            vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
            shard_number=2,
        )
        _, made = points(40)
        client.upsert("two", made)
    finally:
        client.close()
    node.stop()
    base = node.storage / "collections" / "two"
    shutil.rmtree(base / "shard")
    shutil.move(str(base / "shard-0"), str(base / "shard"))
    node.start()
    client = QdrantClient(url=node.url, timeout=30, check_compatibility=False)
    try:
        assert client.count("two", exact=True).count == 40
        assert {int(p.id) for p in client.retrieve("two", list(range(1, 41)))} == set(range(1, 41))
        info = local_shards(node.url, "two")
        assert info["shard_count"] == 2
        assert sum(s["points_count"] for s in info["local_shards"]) == 40
    finally:
        client.close()


def test_distance_matrix_over_shards_equals_one_shard(
    server_factory: Callable[..., ServerProcess],
) -> None:
    node = server_factory()
    client = QdrantClient(url=node.url, timeout=30, check_compatibility=False)
    try:
        _, made = points(30)
        for name, shards in (("one", 1), ("three", 3)):
            client.create_collection(
                name,
                vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
                shard_number=shards,
            )
            client.upsert(name, made)
        # A sample as large as the collection: the same points, so the same matrix.
        one = client.search_matrix_offsets("one", sample=30, limit=3)
        three = client.search_matrix_offsets("three", sample=30, limit=3)
        assert three.ids == one.ids and three.offsets_row == one.offsets_row
        assert three.offsets_col == one.offsets_col
        assert three.scores == pytest.approx(one.scores, rel=1e-5)
        # A smaller sample: every id a point of the collection, each once.
        small = client.search_matrix_pairs("three", sample=10, limit=2)
        ids = {p.a for p in small.pairs} | {p.b for p in small.pairs}
        assert len(ids) <= 10 and ids <= set(range(1, 31))
    finally:
        client.close()


class PlacedLater(LocalShards):
    """Local shards whose placement gains shards while the collection runs."""

    def __init__(self, placement: Placement) -> None:
        super().__init__(peer_id=1, shard_number=1)
        self.current = placement
        self.hook: Callable[[], Placement] | None = None

    def placement(self, name: str) -> Placement:
        # The hook answers the test's own call (the collection's threads read the current).
        hook = self.hook
        if hook is not None and threading.current_thread() is threading.main_thread():
            self.hook = None
            return hook()
        return dict(self.current)


def test_a_replica_made_for_a_shard_placed_meanwhile_is_not_dropped(tmp_path: Path) -> None:
    """The catch-up thread drops replicas the placement no longer names. A replica made for
    a shard placed after it read the placement (a shard key created, then written to at once)
    was dropped with its points when it read the placement outside the lock `_part` makes
    replicas under."""
    directory = PlacedLater({0: [1]})
    config = parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}})
    collection = ClusterCollection("c", tmp_path / "c", config, directory)
    made = threading.Thread(target=collection._part, args=(1,))

    def older_placement() -> Placement:
        # Read before the new shard is placed; the replica is made right after.
        directory.current = {0: [1], 1: [1]}
        made.start()
        made.join(timeout=0.5)
        return {0: [1]}

    try:
        directory.hook = older_placement
        collection._drop_unplaced()
        made.join()
        assert 1 in collection.local_parts()
        assert (tmp_path / "c" / "shard-1").is_dir()
    finally:
        collection.close()


class ThreeReplicas(LocalShards):
    """Shard 0 on peers 1 (this one, placed first: it leads), 3 and 2 (being copied);
    `down`: the peers this one sees as gone."""

    def __init__(self) -> None:
        super().__init__(peer_id=1, shard_number=1)
        self.down: set[int] = set()
        self.active = {1, 3}

    def placement(self, name: str) -> Placement:
        return {0: [1, 3, 2]}

    def is_alive(self, peer: int) -> bool:
        return peer not in self.down

    def is_active(self, name: str, shard: int, peer: int) -> bool:
        return peer in self.active

    def set_replica_state(self, name: str, shard: int, peer: int, active: bool) -> None:
        if active:
            self.active.add(peer)
        else:
            self.active.discard(peer)


def _upsert(ids: list[int]) -> Any:
    values = np.ones((len(ids), 2), dtype=np.float32)
    column = DenseColumn(np.ones(len(ids), dtype=bool), values)
    return writes.upsert(list(ids), {"": column}, [None] * len(ids))


def test_a_copy_made_while_another_peer_led_for_a_moment_is_not_called_whole(
    tmp_path: Path,
) -> None:
    """A transfer checked at its end only that its source led the shard then. Had another
    peer led for a moment meanwhile (this one's lease lapsed), its writes reached this replica
    behind the export's cursor and the copy lacked them, yet it was marked active once the
    lead came back: now the transfer fails and the copy catches up again."""
    directory = ThreeReplicas()
    config = parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}})
    collection = ClusterCollection("c", tmp_path / "c", config, directory)
    try:
        collection._part(0).update(_upsert(list(range(1, 601))))  # three export batches
        # A record another leader takes: point 0, before the export's cursor once it moved
        scratch = ClusterCollection("s", tmp_path / "s", config, LocalShards(1, 1))
        logged: list[bytes] = []
        scratch._part(0).update(_upsert([0]), True, logged)
        scratch.close()
        sent: list[int] = []

        def call(peer: int, shard: int, method: str, args: tuple[Any, ...], **_: Any) -> Any:
            if method == "transfer_batch":
                sent.extend(args[0].points)
                if len(sent) == 256:  # after the first batch: peer 3 leads for a moment
                    directory.down.add(1)
                    record = np.frombuffer(logged[0], dtype=np.uint8)
                    collection._replica_apply(0, record, 3, 0)
                    directory.down.discard(1)
            return None

        collection._call = call  # type: ignore[method-assign]
        with pytest.raises(ServiceUnavailable, match="throughout the transfer"):
            collection._transfer_out(0, 2)
        assert 0 not in sent and collection._part(0).retrieve([0], NOTHING).ids == [0]
        assert 2 not in directory.active  # not called whole: it catches up again
    finally:
        collection.close()
