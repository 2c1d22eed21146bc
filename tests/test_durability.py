"""Durability: every acknowledged write survives kill -9, and a torn WAL tail is cut, not fatal."""

from __future__ import annotations

import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import ServerProcess

pytestmark = pytest.mark.server_only(reason="kills and restarts the server")

DIM = 8


def _vector(pid: int) -> list[float]:
    rng = np.random.default_rng(pid)
    return rng.random(DIM).astype(np.float32).tolist()


def _create(client: QdrantClient, name: str, flush_interval: int = 1) -> None:
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        optimizers_config=models.OptimizersConfigDiff(
            flush_interval_sec=flush_interval, indexing_threshold=20
        ),
    )


def _writer(url: str, name: str, first: int, acked: list[int], stop: threading.Event) -> None:
    client = QdrantClient(url=url, prefer_grpc=False, timeout=10, check_compatibility=False)
    pid = first
    while not stop.is_set():
        ids = list(range(pid, pid + 7))
        try:
            client.upsert(
                name,
                points=[
                    models.PointStruct(id=i, vector=_vector(i), payload={"n": i, "tag": f"t{i}"})
                    for i in ids
                ],
                wait=True,
            )
        except Exception:
            return  # the server was killed mid-request: this batch was never acknowledged
        acked.extend(ids)
        pid += 7


def _check_all_present(client: QdrantClient, name: str, acked: list[int]) -> None:
    for start in range(0, len(acked), 500):
        chunk = acked[start : start + 500]
        records = client.retrieve(name, ids=chunk, with_vectors=True, with_payload=True)
        by_id = {r.id: r for r in records}
        missing = [i for i in chunk if i not in by_id]
        assert not missing, f"acknowledged points lost after kill -9: {missing[:10]}"
        for i in chunk:
            rec = by_id[i]
            assert rec.payload == {"n": i, "tag": f"t{i}"}
            assert np.allclose(rec.vector, _vector(i), atol=1e-6)


def test_acknowledged_writes_survive_kill_9(server_factory: Any) -> None:
    server: ServerProcess = server_factory()
    client = QdrantClient(url=server.url, prefer_grpc=False, timeout=30, check_compatibility=False)
    _create(client, "durable")
    acked: list[int] = []
    for cycle in range(3):
        stop = threading.Event()
        lists: list[list[int]] = [[] for _ in range(4)]
        threads = [
            threading.Thread(
                target=_writer,
                args=(server.url, "durable", 1_000_000 * (cycle * 4 + k), lists[k], stop),
            )
            for k in range(4)
        ]
        for t in threads:
            t.start()
        time.sleep(1.5 + 0.5 * cycle)  # let a flush and the optimizer run in some cycles
        server.kill()
        stop.set()
        for t in threads:
            t.join()
        for chunk in lists:
            acked.extend(chunk)
        assert acked, "no write was acknowledged before the kill"
        server.start()
        client = QdrantClient(
            url=server.url, prefer_grpc=False, timeout=30, check_compatibility=False
        )
        _check_all_present(client, "durable", acked)
        count = client.count("durable", exact=True).count
        assert count >= len(set(acked))


def _last_record_start(wal_file: Path) -> int:
    """Offset of the last record in a WAL segment (see tessera/shard/wal_format.py)."""
    data = wal_file.read_bytes()
    pos, last = 32, -1
    while pos + 16 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        if length == 0:
            break
        last = pos
        pos += 8 + length
    assert last > 0, "the WAL holds no record"
    return last


def test_torn_wal_tail_is_cut_and_earlier_writes_survive(server_factory: Any) -> None:
    server: ServerProcess = server_factory()
    client = QdrantClient(url=server.url, prefer_grpc=False, timeout=30, check_compatibility=False)
    _create(client, "torn", flush_interval=3600)  # keep everything in the WAL
    for i in range(10):
        client.upsert(
            "torn",
            points=[models.PointStruct(id=i, vector=_vector(i), payload={"n": i})],
            wait=True,
        )
    server.kill()
    wal_dir = next(server.storage.glob("collections/torn/**/wal"))
    wal_file = sorted(wal_dir.glob("*.log"))[-1]
    cut = _last_record_start(wal_file) + 20  # inside the last record's payload
    with open(wal_file, "r+b") as f:
        f.truncate(cut)
    server.start()
    client = QdrantClient(url=server.url, prefer_grpc=False, timeout=30, check_compatibility=False)
    ids = {r.id for r in client.scroll("torn", limit=100)[0]}
    assert ids == set(range(9)), ids
    # The server goes on writing after the tear, and that survives another crash.
    client.upsert(
        "torn", points=[models.PointStruct(id=99, vector=_vector(99), payload={"n": 99})], wait=True
    )
    server.kill()
    server.start()
    client = QdrantClient(url=server.url, prefer_grpc=False, timeout=30, check_compatibility=False)
    ids = {r.id for r in client.scroll("torn", limit=100)[0]}
    assert ids == {*range(9), 99}
