"""Damage is contained and reported: one file of one collection at a time is flipped,
truncated or deleted while the server is stopped, and the server is started on it.

Every case must: start the server; leave the other collection untouched; serve the damaged
collection's acknowledged data exactly (recovered from an older checkpoint generation and the
WAL) or report it damaged (status red with the reason, 500 on reads) - never a 200 with
wrong data; and keep the damaged bytes on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.server_only(reason="damages files of a stopped server")

DIM = 8
N_INDEXED = 2500  # built into an immutable segment with a graph and a keyword index
N_TAIL = 150  # left in the appendable segment
KINDS = ["ids", "payload", "vec", "hnsw", "fidx", "manifest", "config", "wal"]
DAMAGES = ["flip", "truncate", "delete"]


def _vector(pid: int) -> list[float]:
    return np.random.default_rng(pid).random(DIM).astype(np.float32).tolist()


def _points(ids: range) -> list[dict[str, Any]]:
    return [
        {"id": i, "vector": _vector(i), "payload": {"n": i, "tag": f"t{i % 7}", "s": "é" * (i % 3)}}
        for i in ids
    ]


def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _fill(http: httpx.Client, name: str) -> None:
    r = http.put(
        f"/collections/{name}",
        json={
            "vectors": {"size": DIM, "distance": "Dot"},
            "optimizers_config": {"indexing_threshold": 10, "flush_interval_sec": 1},
        },
    )
    assert r.status_code == 200, r.text
    r = http.put(
        f"/collections/{name}/index?wait=true",
        json={"field_name": "tag", "field_schema": "keyword"},
    )
    assert r.status_code == 200, r.text
    for start in range(0, N_INDEXED, 500):
        r = http.put(
            f"/collections/{name}/points?wait=true",
            json={"points": _points(range(start, min(start + 500, N_INDEXED)))},
        )
        assert r.status_code == 200, r.text
    _wait(lambda: http.get(f"/collections/{name}").json()["result"]["status"] == "green")
    r = http.put(
        f"/collections/{name}/points?wait=true",
        json={"points": _points(range(N_INDEXED, N_INDEXED + N_TAIL))},
    )
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped server's storage with two collections, `victim` and `bystander`."""
    base = tmp_path_factory.mktemp("damage")
    server = ServerProcess(storage=base / "storage", log_path=base / "server.log")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            _fill(http, "victim")
            _fill(http, "bystander")
            shard = base / "storage" / "collections" / "victim" / "shard"
            # Two checkpoint generations after the last write, so that one can stand in for
            # the other.
            time.sleep(2.5)
            assert len(list(shard.glob("manifest.*.json"))) >= 2
    finally:
        server.stop()
    return base / "storage"


def _newest_manifest(shard: Path) -> tuple[Path, dict[str, Any]]:
    path = sorted(shard.glob("manifest.*.json"))[-1]
    raw = path.read_bytes()
    return path, orjson.loads(raw.partition(b"\n")[2])


def _target(storage: Path, kind: str) -> Path:
    collection = storage / "collections" / "victim"
    shard = collection / "shard"
    if kind == "config":
        return collection / "config.json"
    if kind == "wal":
        return sorted((shard / "wal").glob("*.log"))[-1]
    path, manifest = _newest_manifest(shard)
    if kind == "manifest":
        return path

    # The largest segment: the immutable one, with the graph and most of the data.
    def size(entry: dict[str, Any]) -> int:
        return int(sum(f["size"] for fs in entry["files"].values() for f in fs))

    entry = max(manifest["segments"], key=size)
    for component, files in entry["files"].items():
        if component.split(":")[0] == kind:
            return shard / "segments" / entry["id"] / files[0]["name"]
    raise AssertionError(f"no {kind} file in {entry['files']}")


def _damage(path: Path, how: str) -> None:
    if how == "delete":
        path.unlink()
        return
    data = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
        return
    # A flipped byte inside the data, not in zero padding or free space where it is inert.
    nonzero = np.flatnonzero(np.frombuffer(bytes(data), dtype=np.uint8))
    pos = int(nonzero[len(nonzero) * 2 // 3])
    data[pos] ^= 0x40
    path.write_bytes(bytes(data))


def _all_points(http: httpx.Client, name: str) -> httpx.Response:
    return http.post(
        f"/collections/{name}/points",
        json={"ids": list(range(N_INDEXED + N_TAIL)), "with_vector": True, "with_payload": True},
    )


def _assert_exact(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    got = {p["id"]: p for p in response.json()["result"]}
    assert sorted(got) == list(range(N_INDEXED + N_TAIL))
    for pid in range(0, N_INDEXED + N_TAIL, 7):
        expected = _points(range(pid, pid + 1))[0]
        assert got[pid]["payload"] == expected["payload"]
        assert np.allclose(got[pid]["vector"], expected["vector"], rtol=0, atol=1e-7)


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_one_damaged_file_is_contained(pristine: Path, tmp_path: Path, kind: str, how: str) -> None:
    storage = tmp_path / "storage"
    shutil.copytree(pristine, storage)
    target = _target(storage, kind)
    original = target.read_bytes()
    _damage(target, how)
    server = ServerProcess(storage=storage, log_path=tmp_path / "server.log")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            _assert_exact(_all_points(http, "bystander"))
            assert http.get("/collections/bystander").json()["result"]["status"] != "red"
            names = [c["name"] for c in http.get("/collections").json()["result"]["collections"]]
            assert sorted(names) == ["bystander", "victim"]
            info = http.get("/collections/victim")
            assert info.status_code == 200, info.text
            response = _all_points(http, "victim")
            if response.status_code == 200:
                # Served: then exactly what was acknowledged.
                _assert_exact(response)
                count = http.post("/collections/victim/points/count", json={"exact": True})
                assert count.json()["result"]["count"] == N_INDEXED + N_TAIL
                search = http.post(
                    "/collections/victim/points/count",
                    json={"filter": {"must": [{"key": "tag", "match": {"value": "t3"}}]}},
                )
                expected = sum(1 for i in range(N_INDEXED + N_TAIL) if i % 7 == 3)
                assert search.json()["result"]["count"] == expected
            else:
                # Refused: reported, with the reason, never a wrong answer.
                assert response.status_code == 500, response.text
                assert "damaged" in response.text
                result = info.json()["result"]
                assert result["status"] == "red"
                assert result["optimizer_status"]["error"]
                assert kind not in ("manifest", "wal"), "an older generation was available"
            if kind in ("manifest", "ids", "payload") and how != "delete":
                # The damaged bytes are still on disk somewhere under the storage.
                found = [p for p in storage.rglob("*") if p.is_file() and p.name == target.name]
                assert found, f"{target.name} was removed"
        assert "Traceback" not in (tmp_path / "server.log").read_text()
    finally:
        server.stop()
    del original


def _unindexed(http: httpx.Client, name: str, flush_interval_sec: int) -> None:
    """A collection that builds no index, checkpointed every `flush_interval_sec`."""
    r = http.put(
        f"/collections/{name}",
        json={
            "vectors": {"size": DIM, "distance": "Dot"},
            "optimizers_config": {
                "flush_interval_sec": flush_interval_sec,
                "indexing_threshold": 0,
            },
        },
    )
    assert r.status_code == 200, r.text


def test_damage_mid_wal_keeps_the_prefix_and_reports(server_factory: Any) -> None:
    """Writes that live only in the WAL (no checkpoint: the server is killed), then one byte
    flipped in the middle of the log: what comes before is served, the collection reports the
    lost operations, and the damaged log is kept byte for byte."""
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        _unindexed(http, "w", flush_interval_sec=3600)
        for pid in range(40):
            r = http.put(
                "/collections/w/points?wait=true", json={"points": _points(range(pid, pid + 1))}
            )
            assert r.status_code == 200
    server.kill()
    wal = sorted((server.storage / "collections" / "w" / "shard" / "wal").glob("*.log"))[-1]
    data = bytearray(wal.read_bytes())
    end = len(bytes(data).rstrip(b"\x00"))
    data[end // 2] ^= 0x01
    wal.write_bytes(bytes(data))
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        result = http.get("/collections/w").json()["result"]
        assert result["status"] == "red"
        assert "WAL damaged" in result["optimizer_status"]["error"]
        count = http.post("/collections/w/points/count", json={"exact": True}).json()["result"]
        assert 0 < count["count"] < 40
        got = http.post(
            "/collections/w/points", json={"ids": list(range(40)), "with_vector": True}
        ).json()["result"]
        ids = sorted(p["id"] for p in got)
        assert ids == list(range(len(ids)))  # a prefix, exactly
        for p in got:
            assert np.allclose(p["vector"], _vector(p["id"]), rtol=0, atol=1e-7)
        # Writes go on after the damage.
        r = http.put("/collections/w/points?wait=true", json={"points": _points(range(100, 101))})
        assert r.status_code == 200
        reported = result["optimizer_status"]["error"]
    kept = list((server.storage / "collections" / "w" / "shard" / "damaged").iterdir())
    assert any(bytes(data[end // 2 : end]) in p.read_bytes() for p in kept)
    # The loss stays reported across restarts (the replay alone would show a whole log),
    # until the report file is removed.
    server.kill()
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        result = http.get("/collections/w").json()["result"]
        assert result["status"] == "red"
        assert result["optimizer_status"]["error"] == reported
    server.stop()
    (server.storage / "collections" / "w" / "shard" / "damaged" / "lost-operations.json").unlink()
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/collections/w").json()["result"]["status"] == "green"


def test_missing_manifest_is_not_a_silent_subset(server_factory: Any) -> None:
    """With the WAL truncated below the checkpoints, losing every manifest must not start the
    collection from what the WAL still holds."""
    server = server_factory()
    blob = "x" * 200
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.put(
            "/collections/m",
            json={
                "vectors": {"size": DIM, "distance": "Dot"},
                "optimizers_config": {"flush_interval_sec": 1},
                "wal_config": {"wal_capacity_mb": 1},
            },
        )
        assert r.status_code == 200, r.text
        for start in range(0, 8000, 100):
            points = [dict(p, payload={"blob": blob}) for p in _points(range(start, start + 100))]
            r = http.put("/collections/m/points?wait=true", json={"points": points})
            assert r.status_code == 200
        time.sleep(2.5)
    server.stop()
    shard = server.storage / "collections" / "m" / "shard"
    first = min(int(p.name.split(".")[0]) for p in (shard / "wal").glob("*.log"))
    assert first > 1, "the WAL was not truncated: the test proves nothing"
    for manifest in shard.glob("manifest.*.json"):
        manifest.unlink()
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/collections/m").json()["result"]["status"] == "red"
        r = http.post("/collections/m/points/count", json={"exact": True})
        assert r.status_code == 500 and "damaged" in r.text


def test_check_command_reports_damage(pristine: Path, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    shutil.copytree(pristine, storage)
    # A collection whose creation a kill cut after its config was in place: no shard yet,
    # which the server makes when it loads it; nothing is wrong.
    (storage / "collections" / "half").mkdir()
    shutil.copy(
        storage / "collections" / "victim" / "config.json", storage / "collections" / "half"
    )
    check = [sys.executable, "-m", "tessera", "check", "--storage", str(storage)]
    ok = subprocess.run(check, capture_output=True, text=True, env=dict(os.environ))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all intact" in ok.stdout
    _damage(_target(storage, "vec"), "flip")
    bad = subprocess.run(check, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "checksum mismatch" in bad.stdout and "victim" in bad.stdout


def test_deleted_wal_files_are_reported(server_factory: Any) -> None:
    """The WAL's files removed while a checkpoint exists: the log may have held acknowledged
    operations after the checkpoint, so the collection reports it (red, across restarts)
    rather than coming up green with a silent subset; a restored snapshot, whose log never
    held its checkpoint's operations, does not read as such a loss."""
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        _unindexed(http, "d", flush_interval_sec=1)
        r = http.put("/collections/d/points?wait=true", json={"points": _points(range(0, 50))})
        assert r.status_code == 200
        shard = server.storage / "collections" / "d" / "shard"
        _wait(lambda: bool(list(shard.glob("manifest.*.json"))))
        # A snapshot of the checkpoint, restored into another collection below.
        r = http.post("/collections/d/snapshots?wait=true")
        assert r.status_code == 200, r.text
        snapshot = next(server.storage.rglob(r.json()["result"]["name"]))
        r = http.put(
            "/collections/r/snapshots/recover?wait=true",
            json={"location": snapshot.resolve().as_uri()},
        )
        assert r.status_code == 200, r.text
        r = http.put("/collections/r/points?wait=true", json={"points": _points(range(50, 60))})
        assert r.status_code == 200
        r = http.put("/collections/d/points?wait=true", json={"points": _points(range(50, 60))})
        assert r.status_code == 200
    server.kill()
    check = [sys.executable, "-m", "tessera", "check", "--storage", str(server.storage)]
    intact = subprocess.run(check, capture_output=True, text=True)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    for log_file in (shard / "wal").glob("*.log"):
        log_file.unlink()
    found = subprocess.run(check, capture_output=True, text=True)
    assert found.returncode == 1
    assert "FAIL d: WAL files missing" in found.stdout and "FAIL r" not in found.stdout
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        result = http.get("/collections/d").json()["result"]
        assert result["status"] == "red", result
        reported = result["optimizer_status"]["error"]
        assert "WAL files missing" in reported
        # What the checkpoint holds is still served, and writes go on.
        count = http.post("/collections/d/points/count", json={"exact": True}).json()["result"]
        assert 50 <= count["count"] <= 60
        r = http.put("/collections/d/points?wait=true", json={"points": _points(range(70, 71))})
        assert r.status_code == 200
        restored = http.get("/collections/r").json()["result"]
        assert restored["status"] == "green", restored
        assert restored["points_count"] == 60
    server.kill()
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        result = http.get("/collections/d").json()["result"]
        assert result["status"] == "red"
        assert result["optimizer_status"]["error"] == reported
        assert http.get("/collections/r").json()["result"]["status"] == "green"
        # The restored collection's log, whose floor sits right after its checkpoint, loses
        # its only file with acknowledged writes in it: reported too.
        r = http.put("/collections/r/points?wait=true", json={"points": _points(range(80, 90))})
        assert r.status_code == 200
    server.kill()
    restored_wal = server.storage / "collections" / "r" / "shard" / "wal"
    for log_file in restored_wal.glob("*.log"):
        log_file.unlink()
    found = subprocess.run(check, capture_output=True, text=True)
    assert found.returncode == 1 and "FAIL r: WAL files missing" in found.stdout, found.stdout
    server.start()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        result = http.get("/collections/r").json()["result"]
        assert result["status"] == "red", result
        assert "WAL files missing" in result["optimizer_status"]["error"]


def test_check_finds_a_gap_in_the_log(tmp_path: Path) -> None:
    """`tessera check` reads the log's files in order: a file missing between two others,
    with operations the checkpoint does not hold, is reported (the server refuses to load
    such a shard); one the checkpoint covers is not."""
    from tessera.shard.wal import Wal
    from tessera.storage.check import check_wal

    wal_dir = tmp_path / "wal"
    with Wal(wal_dir, segment_capacity=4096) as wal:
        for i in range(40):
            wal.append_and_sync(bytes(1000) + bytes([i]))
    files = sorted(wal_dir.glob("*.log"))
    assert len(files) >= 4
    out: list[str] = []
    assert check_wal(wal_dir, "c", 0, out, None) == (40, True), out
    files[1].unlink()
    first_gone = int(files[1].name.split(".")[0])
    out = []
    assert check_wal(wal_dir, "c", 0, out, None)[1] is False
    assert any(f"operations {first_gone}.." in line for line in out), out
    out = []
    assert check_wal(wal_dir, "c", 40, out, None)[1] is True, out  # the checkpoint holds them
