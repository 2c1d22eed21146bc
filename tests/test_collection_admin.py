"""Collection updates (PATCH), the optimizer's visible effects, refusing writes on a full disk."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import free_port

pytestmark = pytest.mark.server_only(reason="restarts servers and reads optimizer state")


def _client(url: str) -> QdrantClient:
    return QdrantClient(url=url, prefer_grpc=False, timeout=60, check_compatibility=False)


def test_patch_collection_persists_and_drives_the_optimizer(server_factory: Any) -> None:
    server = server_factory()
    client = _client(server.url)
    client.create_collection(
        "patched", vectors_config=models.VectorParams(size=16, distance=models.Distance.DOT)
    )
    rng = np.random.default_rng(3)
    vectors = rng.random((3000, 16)).astype(np.float32)
    client.upsert(
        "patched",
        points=models.Batch(ids=list(range(3000)), vectors=vectors.tolist()),
        wait=True,
    )
    info = client.get_collection("patched")
    assert info.indexed_vectors_count == 0  # 3000 x 16 floats is under the default threshold
    client.update_collection(
        "patched",
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10),
        # 10 KB (Qdrant's least) = 160 vectors of 16 floats: 3000 are searched on the graph.
        hnsw_config=models.HnswConfigDiff(m=8, full_scan_threshold=10),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = client.get_collection("patched")
        if info.indexed_vectors_count == 3000 and info.status == models.CollectionStatus.GREEN:
            break
        time.sleep(0.2)
    assert info.indexed_vectors_count == 3000
    assert info.config.optimizer_config.indexing_threshold == 10
    assert info.config.hnsw_config.m == 8
    # Graph search on the indexed segment agrees with exact search on the nearest point.
    query = vectors[42]
    exact = client.query_points(
        "patched", query=query.tolist(), limit=5, search_params=models.SearchParams(exact=True)
    ).points
    approx = client.query_points("patched", query=query.tolist(), limit=5).points
    assert approx[0].id == exact[0].id
    server.kill()
    server.start()
    client = _client(server.url)
    info = client.get_collection("patched")
    assert info.config.optimizer_config.indexing_threshold == 10
    assert info.config.hnsw_config.m == 8
    assert info.points_count == 3000
    assert info.indexed_vectors_count == 3000  # the graph was persisted, not rebuilt


def test_writes_are_refused_when_the_disk_is_full(
    server_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_MIN_FREE_BYTES", str(10**18))  # no disk is this big
    server = server_factory()
    client = _client(server.url)
    client.create_collection(
        "full", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    with pytest.raises(Exception) as raised:
        client.upsert("full", points=[models.PointStruct(id=1, vector=[1, 2, 3, 4])], wait=True)
    assert "503" in str(raised.value) and "no space left" in str(raised.value).lower()
    assert client.count("full").count == 0  # reads go on, nothing was written


def test_read_fan_out_params_are_kept_and_reported(server_factory: Any) -> None:
    """`read_fan_out_factor` / `read_fan_out_delay_ms` (set by PATCH only, REST or gRPC) come
    back in the collection's params, survive a restart, and a negative one is refused."""
    server = server_factory(grpc_port=free_port())
    client = _client(server.url)
    client.create_collection(
        "fan", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
    )
    assert client.get_collection("fan").config.params.read_fan_out_factor is None
    client.update_collection(
        "fan",
        collection_params=models.CollectionParamsDiff(
            read_fan_out_factor=2, read_fan_out_delay_ms=10
        ),
    )
    grpc = QdrantClient(
        url=server.url, prefer_grpc=True, grpc_port=server.grpc_port, check_compatibility=False
    )
    params = grpc.get_collection("fan").config.params
    assert (params.read_fan_out_factor, params.read_fan_out_delay_ms) == (2, 10)
    grpc.update_collection(
        "fan", collection_params=models.CollectionParamsDiff(read_fan_out_factor=3)
    )
    grpc.close()
    with pytest.raises(Exception, match="expected u32"):
        client.update_collection(
            "fan", collection_params=models.CollectionParamsDiff(read_fan_out_factor=-1)
        )
    server.kill()
    server.start()
    params = _client(server.url).get_collection("fan").config.params
    assert (params.read_fan_out_factor, params.read_fan_out_delay_ms) == (3, 10)


def test_max_collections_refuses_one_more(server_factory: Any) -> None:
    """`storage.max_collections` (here from QDRANT__STORAGE__MAX_COLLECTIONS), as Qdrant:
    a create beyond it is a 400 naming the limit; an existing name is still a 409 first, and
    a delete makes room again."""
    server = server_factory(env={"QDRANT__STORAGE__MAX_COLLECTIONS": "2"})
    client = _client(server.url)
    params = models.VectorParams(size=2, distance=models.Distance.DOT)
    client.create_collection("one", vectors_config=params)
    client.create_collection("two", vectors_config=params)
    with pytest.raises(Exception, match="409"):
        client.create_collection("two", vectors_config=params)
    with pytest.raises(Exception) as refused:
        client.create_collection("three", vectors_config=params)
    assert "400" in str(refused.value)
    assert "collection with name three. Max collections limit reached: 2" in str(refused.value)
    assert not client.collection_exists("three")
    client.delete_collection("one")
    client.create_collection("three", vectors_config=params)


def test_max_optimization_threads_0_disables_optimizations(server_factory: Any) -> None:
    """Qdrant's config: "If 0 - no optimization threads, optimizations will be disabled";
    set again to a count or `auto`, the optimizer goes on."""
    server = server_factory()
    client = _client(server.url)
    client.create_collection(
        "idle",
        vectors_config=models.VectorParams(size=16, distance=models.Distance.DOT),
        optimizers_config=models.OptimizersConfigDiff(
            indexing_threshold=10, max_optimization_threads=0
        ),
    )
    vectors = np.random.default_rng(4).random((1000, 16)).astype(np.float32)
    client.upsert("idle", points=models.Batch(ids=list(range(1000)), vectors=vectors.tolist()))
    time.sleep(3)  # the optimizer looks at least once a second
    assert client.get_collection("idle").indexed_vectors_count == 0
    client.update_collection(
        "idle",
        optimizers_config=models.OptimizersConfigDiff(
            max_optimization_threads=models.MaxOptimizationThreadsSetting.AUTO
        ),
    )
    deadline = time.monotonic() + 120
    while client.get_collection("idle").indexed_vectors_count != 1000:
        assert time.monotonic() < deadline, "the optimizer did not index after the PATCH"
        time.sleep(0.2)


def test_a_collection_deleted_under_concurrent_changes(http: Any) -> None:
    """Deleting a collection while a snapshot, a vector name change, a PATCH and a write are
    in flight: each answers or finds the collection gone (never a 500: a checkpoint wrote
    into the removed directory, a config write found it missing, the WAL was closed under a
    write), and the name is usable at once (a late checkpoint re-created the directory, and
    creating the collection again answered "data already exists at the path")."""
    import threading

    name = "deleted_under_changes"
    failures: list[tuple[str, int, str]] = []

    def call(label: str, method: str, path: str, body: Any = None) -> None:
        response = http.request(method, path, json=body)
        if response.status_code >= 500:
            failures.append((label, response.status_code, response.text))

    for round_ in range(40):
        created = http.put(f"/collections/{name}", json={"vectors": {"size": 4, "distance": "Dot"}})
        assert created.status_code == 200, created.text
        points = [{"id": i, "vector": [i, 1, 0, 0]} for i in range(1, 30)]
        http.put(f"/collections/{name}/points", params={"wait": "true"}, json={"points": points})
        threads = [
            threading.Thread(target=call, args=a)
            for a in (
                ("snapshot", "POST", f"/collections/{name}/snapshots?wait=true"),
                ("vector", "PUT", f"/collections/{name}/vectors/v{round_}?wait=true",
                 {"dense": {"size": 2, "distance": "Dot"}}),
                ("patch", "PATCH", f"/collections/{name}",
                 {"optimizers_config": {"indexing_threshold": 1000 + round_}}),
                ("write", "PUT", f"/collections/{name}/points?wait=true",
                 {"points": [{"id": 99, "vector": [1, 2, 3, 4]}]}),
                ("delete", "DELETE", f"/collections/{name}"),
            )
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        http.delete(f"/collections/{name}")
    assert failures == []
    assert (
        http.put(
            f"/collections/{name}", json={"vectors": {"size": 4, "distance": "Dot"}}
        ).status_code
        == 200
    )
    http.delete(f"/collections/{name}")
