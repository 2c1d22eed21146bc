"""`on_disk: true` vectors: served from maps of the segment files, exactly as from memory."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.server_only(reason="restarts the server")

DIM = 16
N = 3000


def _vectors() -> np.ndarray[Any, Any]:
    return np.random.default_rng(7).random((N, DIM)).astype(np.float32)


def _check(http: httpx.Client, name: str, vectors: np.ndarray[Any, Any], distance: str) -> None:
    got = http.post(
        f"/collections/{name}/points", json={"ids": list(range(0, N, 97)), "with_vector": True}
    ).json()["result"]
    assert len(got) == len(range(0, N, 97))
    for p in got:
        assert np.allclose(p["vector"], vectors[p["id"]], rtol=0, atol=1e-6)
    query = vectors[5] + 0.01
    hits = http.post(
        f"/collections/{name}/points/query",
        json={"query": query.tolist(), "limit": 5, "params": {"exact": False, "hnsw_ef": 128}},
    ).json()["result"]["points"]
    if distance == "Dot":
        exact = np.argsort(-(vectors @ query))[:5].tolist()
    else:
        exact = np.argsort(np.linalg.norm(vectors - query, axis=1))[:5].tolist()
    assert hits[0]["id"] == exact[0]


@pytest.mark.parametrize("distance", ["Dot", "Euclid"])
def test_on_disk_vectors_are_served_from_files(server_factory: Any, distance: str) -> None:
    server = server_factory()
    vectors = _vectors()
    name = f"disk_{distance.lower()}"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.put(
            f"/collections/{name}",
            json={
                "vectors": {"size": DIM, "distance": distance, "on_disk": True},
                "hnsw_config": {"on_disk": True},
                "optimizers_config": {"indexing_threshold": 10, "flush_interval_sec": 1},
            },
        )
        assert r.status_code == 200, r.text
        for start in range(0, N, 500):
            points = [{"id": i, "vector": vectors[i].tolist()} for i in range(start, start + 500)]
            r = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
            assert r.status_code == 200
        deadline = time.monotonic() + 60
        while http.get(f"/collections/{name}").json()["result"]["status"] != "green":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.5)  # a checkpoint maps the indexed segment's files
        _check(http, name, vectors, distance)
        if distance == "Euclid":
            query = vectors[5] + 0.01
            hits = http.post(
                f"/collections/{name}/points/query",
                json={"query": query.tolist(), "limit": 3},
            ).json()["result"]["points"]
            exact = np.argsort(np.linalg.norm(vectors - query, axis=1))[:3].tolist()
            assert [h["id"] for h in hits] == exact
    server.restart()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        _check(http, name, vectors, distance)


@pytest.mark.parametrize("on_disk_payload", [True, False])
def test_on_disk_payload_is_mapped_from_the_segment_file(
    tmp_path: Any, on_disk_payload: bool
) -> None:
    from tessera.engine import Engine
    from tessera.segment.payload_storage import MappedPayloads

    vectors = _vectors()
    ids = list(range(N))
    payloads = [{"n": i, "tag": f"t{i % 5}"} if i % 3 else None for i in ids]

    def check(engine: Engine) -> None:
        collection = engine.toc.get("p")
        with collection.shard.read() as holder:
            sealed = [s for s in holder.segments if not s.appendable]
            assert sealed
            for segment in sealed:
                assert isinstance(segment.payloads, MappedPayloads) == on_disk_payload
            for pid in range(0, N, 101):
                found = holder.locate(pid)
                assert found is not None
                assert found[0].payloads[found[1]] == payloads[pid]

    engine = Engine(tmp_path / "storage")
    engine.create_collection(
        "p",
        {
            "vectors": {"size": DIM, "distance": "Dot"},
            "on_disk_payload": on_disk_payload,
            "optimizers_config": {"indexing_threshold": 10, "flush_interval_sec": 3600},
        },
    )
    engine.upsert_arrays("p", ids, vectors, payloads)
    engine.wait_optimized("p")
    engine.toc.get("p").shard.flush()
    check(engine)
    engine.close()
    engine = Engine(tmp_path / "storage")
    try:
        check(engine)
    finally:
        engine.close()
