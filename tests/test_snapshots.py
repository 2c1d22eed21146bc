"""Snapshots (issue 11, item 1): collection, shard and full snapshots as Qdrant serves them.

One private server (REST and gRPC) for the module. Through qdrant-client over both wires and
plain HTTP: round trips that compare every point, recovery from a URL served here and from
file:// URLs inside and outside the snapshots directory, checksums, full snapshots, shard
snapshots, qdrant-client's `migrate()`. Hostile archives, each refused with a 4xx and leaving
nothing behind. In-process: a restore killed (SIGKILL) at every step leaves the old
collection or the new one, and writes go on while a snapshot is packed.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse
from qdrant_client.migrate import migrate

from tessera.errors import Conflict
from tests.conftest import REPO_ROOT, ServerProcess, make_grpc_client, module_server

pytestmark = pytest.mark.server_only(reason="snapshots live on the server's disk")

DIM = 8
DOT = models.Distance.DOT


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-snapshots", grpc=True)


@pytest.fixture(scope="module")
def rest(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = QdrantClient(url=server.url, prefer_grpc=False, timeout=60)
    yield qc
    qc.close()


@pytest.fixture(scope="module")
def grpc_client(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = make_grpc_client(server)
    yield qc
    qc.close()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0) as hc:
        yield hc


@pytest.fixture
def name(rest: QdrantClient) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append(f"snap_{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    for n in made:
        rest.delete_collection(n)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP by a local http.server: (directory, base URL)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=root))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# --------------------------------------------------------------------------- helpers


def vec(i: int) -> list[float]:
    return np.random.default_rng(i).random(DIM).astype(np.float32).tolist()


def fill(
    client: QdrantClient, collection: str, n: int = 300, tag: str = "v1", index: bool = True
) -> None:
    client.create_collection(
        collection,
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={"text": models.SparseVectorParams()},
    )
    if index:  # local mode has no payload indexes (and warns)
        client.create_payload_index(collection, "group", models.PayloadSchemaType.KEYWORD)
    points = [
        models.PointStruct(
            id=i if i % 3 else str(uuid.UUID(int=i + 1)),
            vector={
                "dense": vec(i),
                "text": models.SparseVector(indices=[i % 7, 10 + i % 5], values=[0.5, 1.5]),
            },
            payload={"i": i, "group": f"g{i % 4}", "tag": tag, "nested": {"list": [i, "x"]}},
        )
        for i in range(n)
    ]
    client.upsert(collection, points, wait=True)


def everything(client: QdrantClient, collection: str, digits: int = 6) -> dict[str, Any]:
    """Every point with its vectors (to `digits` decimals) and payload, by id."""
    out: dict[str, Any] = {}
    offset = None
    while True:
        page, offset = client.scroll(
            collection, limit=256, offset=offset, with_payload=True, with_vectors=True
        )
        for record in page:
            vectors = record.vector
            assert isinstance(vectors, dict)
            dense = np.asarray(vectors["dense"], dtype=np.float32).round(digits).tolist()
            sparse = vectors["text"]
            assert isinstance(sparse, models.SparseVector)
            out[str(record.id)] = (
                dense,
                (list(sparse.indices), [round(v, digits) for v in sparse.values]),
                record.payload,
            )
        if offset is None:
            return out


def upload(
    http: httpx.Client, collection: str, data: bytes, shard: int | None = None, **params: str
) -> httpx.Response:
    path = f"/collections/{collection}"
    if shard is not None:
        path += f"/shards/{shard}"
    return http.post(
        f"{path}/snapshots/upload", params=params, files={"snapshot": ("a.snapshot", data)}
    )


def leftovers(storage: Path) -> list[str]:
    """Staging and temporary entries a finished operation must not leave behind."""
    found = [e.name for e in (storage / "collections").iterdir() if e.name.startswith(":")]
    tmp = storage / "snapshots" / ":tmp"
    if tmp.exists():
        found += [f":tmp/{e.name}" for e in tmp.iterdir()]
    return found


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("wire", ["rest", "grpc"])
def test_round_trip_every_point(
    wire: str,
    rest: QdrantClient,
    grpc_client: QdrantClient,
    http: httpx.Client,
    server: ServerProcess,
    tmp_path: Path,
    name: Callable[[], str],
) -> None:
    client = grpc_client if wire == "grpc" else rest
    collection = name()
    fill(rest, collection)
    before = everything(rest, collection)
    query = rest.query_points(collection, query=vec(5), using="dense", limit=5).points

    made = client.create_snapshot(collection)
    assert made is not None
    assert made.name.startswith(f"{collection}-") and made.name.endswith(".snapshot")
    assert made.checksum is not None and len(made.checksum) == 64
    assert made.size > 0 and made.creation_time
    listed = client.list_snapshots(collection)
    assert [s.name for s in listed] == [made.name]
    assert listed[0].checksum == made.checksum

    response = http.get(f"/collections/{collection}/snapshots/{made.name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    data = response.content
    assert hashlib.sha256(data).hexdigest() == made.checksum == listed[0].checksum
    assert len(data) == made.size
    beside = server.storage / "snapshots" / collection / (made.name + ".checksum")
    assert beside.read_text() == made.checksum

    assert client.delete_snapshot(collection, made.name) is True
    assert client.list_snapshots(collection) == []
    rest.delete_collection(collection)
    assert not rest.collection_exists(collection)

    if wire == "rest":  # qdrant-client's own (generated) upload call
        (tmp_path / "up.snapshot").write_bytes(data)
        with open(tmp_path / "up.snapshot", "rb") as f:
            answer = rest.http.snapshots_api.recover_from_uploaded_snapshot(
                collection_name=collection,
                snapshot=f,
                checksum=made.checksum,
                priority=models.SnapshotPriority.SNAPSHOT,
            )
        assert answer.result is True
    else:
        response = upload(http, collection, data, checksum=made.checksum, priority="snapshot")
        assert response.status_code == 200, response.text
        assert response.json()["result"] is True
    assert everything(rest, collection) == before
    info = rest.get_collection(collection)
    assert info.points_count == len(before)
    assert info.payload_schema["group"].data_type == models.PayloadSchemaType.KEYWORD
    again = rest.query_points(collection, query=vec(5), using="dense", limit=5).points
    assert [p.id for p in again] == [p.id for p in query]
    assert leftovers(server.storage) == []

    # The restored collection takes writes and survives a restart (kill -9).
    rest.upsert(collection, [models.PointStruct(id=10_000, vector={"dense": vec(1)})])
    if wire == "rest":
        server.restart()
        assert rest.count(collection).count == len(before) + 1


def test_errors_over_both_wires(
    rest: QdrantClient, grpc_client: QdrantClient, http: httpx.Client, name: Callable[[], str]
) -> None:
    collection = name()
    rest.create_collection(collection, vectors_config=models.VectorParams(size=2, distance=DOT))
    missing = f"{collection}-1-2020-01-01-00-00-00.snapshot"
    with pytest.raises(UnexpectedResponse) as info:
        rest.delete_snapshot(collection, missing)
    assert info.value.status_code == 404
    assert "Snapshot" in info.value.structured()["status"]["error"]
    with pytest.raises(grpc.RpcError) as rpc_info:
        grpc_client.delete_snapshot(collection, missing)
    assert rpc_info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as rpc_info:
        grpc_client.create_snapshot("no_such_collection_here")
    assert rpc_info.value.code() == grpc.StatusCode.NOT_FOUND
    assert http.get("/collections/no_such_collection_here/snapshots").status_code == 404
    for bad in ("/etc/passwd", "../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd"):
        assert http.get(f"/collections/{collection}/snapshots/{bad}").status_code == 404
        assert http.get(f"/snapshots/{bad}").status_code == 404
    assert http.get(f"/collections/{collection}/snapshots/config.json").status_code == 404
    response = http.put(
        f"/collections/{collection}/snapshots/recover",
        json={"location": "file:///x.snapshot", "priority": "sometimes"},
    )
    assert response.status_code == 400
    response = http.put(
        f"/collections/{collection}/snapshots/recover",
        json={"location": "ftp://example.com/x.snapshot"},
    )
    assert response.status_code == 400
    assert "not supported" in response.json()["status"]["error"]
    response = http.post(
        f"/collections/{collection}/snapshots/upload", content=b"x", headers={"content-type": "x"}
    )
    assert response.status_code == 400


def test_wait_false_answers_202(
    http: httpx.Client, rest: QdrantClient, name: Callable[[], str]
) -> None:
    collection = name()
    rest.create_collection(collection, vectors_config=models.VectorParams(size=2, distance=DOT))
    response = http.post(f"/collections/{collection}/snapshots", params={"wait": "false"})
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    deadline = time.monotonic() + 30
    while not (found := rest.list_snapshots(collection)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    response = http.delete(
        f"/collections/{collection}/snapshots/{found[0].name}", params={"wait": "false"}
    )
    assert response.status_code == 202
    while rest.list_snapshots(collection):
        assert time.monotonic() < deadline
        time.sleep(0.05)


# --------------------------------------------------------------------------- recovery sources


def test_recover_from_url_with_checksum(
    rest: QdrantClient,
    http: httpx.Client,
    served: tuple[Path, str],
    server: ServerProcess,
    name: Callable[[], str],
) -> None:
    root, base = served
    source, target = name(), name()
    fill(rest, source, n=120)
    made = rest.create_snapshot(source)
    assert made is not None
    data = http.get(f"/collections/{source}/snapshots/{made.name}").content
    (root / "s.snapshot").write_bytes(data)

    wrong = "3" * 64
    with pytest.raises(UnexpectedResponse) as info:
        rest.recover_snapshot(target, f"{base}/s.snapshot", checksum=wrong)
    assert info.value.status_code == 400
    assert "checksum" in info.value.structured()["status"]["error"].lower()
    assert not rest.collection_exists(target)

    with pytest.raises(UnexpectedResponse) as info:
        rest.recover_snapshot(target, f"{base}/missing.snapshot")
    assert info.value.status_code == 400
    assert info.value.structured()["status"]["error"] == (
        f"Wrong input: Failed to download snapshot from {base}/missing.snapshot: status - "
        "404 Not Found"
    )
    assert not rest.collection_exists(target)

    assert rest.recover_snapshot(
        target,
        f"{base}/s.snapshot",
        checksum=made.checksum,
        priority=models.SnapshotPriority.REPLICA,
    )
    assert everything(rest, target) == everything(rest, source)
    assert leftovers(server.storage) == []

    # Over an existing collection: its data is replaced, its config kept.
    rest.upsert(target, [models.PointStruct(id=999_999, vector={"dense": vec(9)})])
    assert rest.recover_snapshot(target, f"{base}/s.snapshot")
    assert rest.count(target).count == 120
    # A snapshot whose vectors do not fit the existing collection is refused.
    other = name()
    rest.create_collection(other, vectors_config=models.VectorParams(size=3, distance=DOT))
    rest.upsert(other, [models.PointStruct(id=1, vector=[1, 2, 3])])
    with pytest.raises(UnexpectedResponse) as info:
        rest.recover_snapshot(other, f"{base}/s.snapshot")
    assert info.value.status_code == 400
    assert "not compatible" in info.value.structured()["status"]["error"]
    assert rest.count(other).count == 1


def test_recover_from_file_only_inside_snapshots_dir(
    rest: QdrantClient,
    http: httpx.Client,
    server: ServerProcess,
    tmp_path: Path,
    name: Callable[[], str],
) -> None:
    source, target = name(), name()
    fill(rest, source, n=40)
    made = rest.create_snapshot(source)
    assert made is not None
    inside = server.storage / "snapshots" / source / made.name
    assert inside.is_file()

    assert rest.recover_snapshot(target, inside.as_uri())
    assert rest.count(target).count == 40

    outside = tmp_path / "copy.snapshot"
    shutil.copyfile(inside, outside)
    link = server.storage / "snapshots" / "link.snapshot"
    link.symlink_to(outside)
    try:
        for location in (outside.as_uri(), "file:///etc/passwd", link.as_uri()):
            response = http.put(
                f"/collections/{name()}/snapshots/recover", json={"location": location}
            )
            assert response.status_code == 403, (location, response.text)
            error = response.json()["status"]["error"]
            assert error.startswith(
                "Forbidden: Snapshot file path must be inside the snapshots directory"
            )
    finally:
        link.unlink()
    for location, status, text in (
        ("file:///whatever.snapshot", 400, 'Snapshot file "/whatever.snapshot" does not exist'),
        ("file://./etc/passwd", 400, "file path must be absolute or on localhost"),
        ("file://elsewhere/x.snapshot", 400, "file path must be absolute or on localhost"),
    ):
        response = http.put(f"/collections/{name()}/snapshots/recover", json={"location": location})
        assert response.status_code == status
        assert text in response.json()["status"]["error"]
    assert leftovers(server.storage) == []


# --------------------------------------------------------------------------- shards, full, migrate


def test_shard_snapshot_routes(
    rest: QdrantClient,
    http: httpx.Client,
    served: tuple[Path, str],
    server: ServerProcess,
    name: Callable[[], str],
) -> None:
    root, base = served
    collection = name()
    fill(rest, collection, n=60)
    before = everything(rest, collection)
    made = rest.create_shard_snapshot(collection, 0)
    assert made is not None and made.name.startswith(f"{collection}-shard-0-")
    assert [s.name for s in rest.list_shard_snapshots(collection, 0)] == [made.name]
    data = http.get(f"/collections/{collection}/shards/0/snapshots/{made.name}").content
    assert hashlib.sha256(data).hexdigest() == made.checksum
    streamed = http.get(f"/collections/{collection}/shards/0/snapshot")
    assert streamed.status_code == 200 and len(streamed.content) > 0
    assert http.get(f"/collections/{collection}/shards/1/snapshots").status_code == 404

    rest.delete(collection, models.PointIdsList(points=[1, 2, 4]))
    assert rest.recover_shard_snapshot(collection, 0, made.name)  # a name in the shard's dir
    assert everything(rest, collection) == before
    rest.delete(collection, models.PointIdsList(points=[1]))
    (root / "shard.snapshot").write_bytes(streamed.content)
    assert rest.recover_shard_snapshot(collection, 0, f"{base}/shard.snapshot")
    assert everything(rest, collection) == before
    rest.delete(collection, models.PointIdsList(points=[1]))
    response = upload(http, collection, data, shard=0, checksum=made.checksum)
    assert response.status_code == 200, response.text
    assert everything(rest, collection) == before
    # A shard snapshot recovers into an existing collection only.
    response = upload(http, name(), data, shard=0)
    assert response.status_code == 404
    assert rest.delete_shard_snapshot(collection, 0, made.name)
    assert rest.list_shard_snapshots(collection, 0) == []
    assert leftovers(server.storage) == []


@pytest.mark.parametrize("wire", ["rest", "grpc"])
def test_full_snapshot(
    wire: str,
    rest: QdrantClient,
    grpc_client: QdrantClient,
    http: httpx.Client,
    server: ServerProcess,
    tmp_path: Path,
    name: Callable[[], str],
) -> None:
    client = grpc_client if wire == "grpc" else rest
    first, second = name(), name()
    fill(rest, first, n=50)
    fill(rest, second, n=30, tag="second")
    expected = {c: everything(rest, c) for c in (first, second)}
    alias = f"{first}_alias"
    rest.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=first, alias_name=alias)
            )
        ]
    )
    made = client.create_full_snapshot()
    assert made is not None and made.name.startswith("full-snapshot-")
    assert made.name in [s.name for s in client.list_full_snapshots()]
    data = http.get(f"/snapshots/{made.name}").content
    assert hashlib.sha256(data).hexdigest() == made.checksum
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        config = tar.extractfile("config.json")
        assert config is not None
        full_config = json.loads(config.read())
        mapping = full_config["collections_mapping"]
    assert "config.json" in names and {first, second} <= set(mapping)
    assert full_config["collections_aliases"][alias] == first
    assert client.delete_full_snapshot(made.name) is True
    assert made.name not in [s.name for s in client.list_full_snapshots()]

    # Restoring a full snapshot is a start-up action in Qdrant (--storage-snapshot); here the
    # store does it on a fresh storage directory, in this process.
    from tessera.storage.toc import TableOfContents

    archive = tmp_path / "full.snapshot"
    archive.write_bytes(data)
    toc = TableOfContents(tmp_path / "restored")
    try:
        restored = toc.snapshots.recover_full(archive)
        assert {first, second} <= set(restored)
        for collection in (first, second):
            assert toc.get(collection).count(None, exact=True) == len(expected[collection])
        assert toc.aliases.resolve(alias) == first
        # Again, without force: everything exists, nothing changes (409 before any work).
        with pytest.raises(Conflict):
            toc.snapshots.recover_full(archive)
        assert toc.snapshots.recover_full(archive, force=True) == restored
        assert toc.aliases.resolve(alias) == first
    finally:
        toc.close()
    # Where a collection has one of the archive's alias names, nothing is restored (it used to
    # restore the collections, then fail on the alias: half a restore).
    from tessera.engine import Engine

    taken = Engine(tmp_path / "taken")
    try:
        taken.create_collection(alias, {"vectors": {"size": DIM, "distance": "Cosine"}})
        with pytest.raises(Conflict, match=alias):
            taken.toc.snapshots.recover_full(archive, force=True)
        assert sorted(taken.toc.collections) == [alias]
    finally:
        taken.close()


def test_startup_recovery(
    rest: QdrantClient,
    http: httpx.Client,
    server_factory: Callable[..., Any],
    tmp_path: Path,
    name: Callable[[], str],
) -> None:
    """Qdrant's start-up flags: `--storage-snapshot` (collections and aliases),
    `--snapshot PATH:NAME` (repeatable), `--force-snapshot`."""
    first = name()
    fill(rest, first, n=40)
    expected = everything(rest, first)
    alias = f"{first}_alias"
    rest.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=first, alias_name=alias)
            )
        ]
    )
    full = rest.create_full_snapshot()
    single = rest.create_snapshot(first)
    assert full is not None and single is not None
    full_file, single_file = tmp_path / "full.snapshot", tmp_path / "one.snapshot"
    full_file.write_bytes(http.get(f"/snapshots/{full.name}").content)
    single_file.write_bytes(http.get(f"/collections/{first}/snapshots/{single.name}").content)
    rest.delete_full_snapshot(full.name)
    rest.delete_snapshot(first, single.name)

    node = server_factory(
        extra_args=["--storage-snapshot", str(full_file), "--snapshot", f"{single_file}:copy"]
    )
    with contextlib.closing(QdrantClient(url=node.url, timeout=30)) as restored:
        assert everything(restored, first) == expected
        assert everything(restored, "copy") == expected
        assert everything(restored, alias) == expected
        assert [(a.alias_name, a.collection_name) for a in restored.get_aliases().aliases] == [
            (alias, first)
        ]
        restored.upsert("copy", [models.PointStruct(id=10_000, vector={"dense": [0.5] * DIM})])
    node.stop()

    # Without --force-snapshot an existing collection stops start-up and is left as it was.
    node.extra_args = ["--snapshot", f"{single_file}:copy"]
    with pytest.raises(RuntimeError, match="exited with code 2"):
        node.start(timeout=15)
    assert "Collection copy already exists. Use --force-snapshot" in node.log_path.read_text()
    node.extra_args = ["--snapshot", f"{single_file}:copy", "--force-snapshot"]
    node.start()
    with contextlib.closing(QdrantClient(url=node.url, timeout=30)) as restored:
        assert everything(restored, "copy") == expected  # point 10000 is gone
    node.stop()


def test_migrate_from_local_mode(rest: QdrantClient, name: Callable[[], str]) -> None:
    source = QdrantClient(":memory:")
    collection = name()
    fill(source, collection, n=230, index=False)
    migrate(source, rest, collection_names=[collection], batch_size=64)
    # Local mode normalises cosine vectors in float64, Tessera in float32.
    assert everything(rest, collection, 4) == everything(source, collection, 4)
    info = rest.get_collection(collection)
    assert set(info.config.params.vectors) == {"dense"}  # type: ignore[arg-type]
    assert set(info.config.params.sparse_vectors or {}) == {"text"}


# --------------------------------------------------------------------------- hostile archives


def _tar(*entries: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(member: str, data: bytes = b"pwned") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(member)
    info.size = len(data)
    return info, data


def _special(member: str, kind: bytes, **attrs: Any) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(member)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, None


def _raw_header(member: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(member)
    info.size = size
    info.type = kind
    return info.tobuf(tarfile.GNU_FORMAT) + bytes(1024)


def _tampered(real: bytes) -> bytes:
    """A real snapshot with one segment file changed and its manifest rewritten to match:
    only the checkpoint's own crc32 can tell."""
    import orjson

    from tessera.fileformat import decode_checked_json, encode_checked_json

    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(fileobj=io.BytesIO(real)) as tar:
        for info in tar.getmembers():
            f = tar.extractfile(info)
            assert f is not None
            members.append((info, f.read()))
    victim = next(i for i, (info, _) in enumerate(members) if "/ids." in info.name)
    info, data = members[victim]
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF
    members[victim] = (info, bytes(flipped))
    manifest_at = next(i for i, (info, _) in enumerate(members) if info.name == "snapshot.json")
    body = decode_checked_json(members[manifest_at][1], "tessera/collection-snapshot", (1,), "x")
    for entry in body["files"]:
        if entry["path"] == info.name:
            entry["sha256"] = hashlib.sha256(flipped).hexdigest()
    new_manifest = encode_checked_json("tessera/collection-snapshot", 1, body)
    manifest_info = members[manifest_at][0]
    manifest_info.size = len(new_manifest)
    members[manifest_at] = (manifest_info, new_manifest)
    assert orjson.loads(new_manifest.partition(b"\n")[2])
    return _tar(*members)


ESCAPE = f"escape-{uuid.uuid4().hex}"
OUTSIDE = Path("/tmp") / f"tessera-outside-{uuid.uuid4().hex}"


def _attacks(real: bytes) -> dict[str, bytes]:
    seg = "shard/segments/0123abcd"
    big = bytes(4 << 20)
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode="wb") as gz:
        gz.write(_tar(_file(f"{seg}/zeros", big)))
    return {
        "dotdot": _tar(_file(f"../../../../{ESCAPE}")),
        "dotdot_inside": _tar(_file(f"{seg}/../../../../{ESCAPE}")),
        "absolute": _tar(_file(f"{OUTSIDE}/{ESCAPE}")),
        "symlink": _tar(
            _special(f"{seg}/link", tarfile.SYMTYPE, linkname=str(OUTSIDE)),
            _file(f"{seg}/link/{ESCAPE}"),
        ),
        "hardlink": _tar(_special(f"{seg}/f", tarfile.LNKTYPE, linkname="/etc/passwd")),
        "char_device": _tar(_special(f"{seg}/null", tarfile.CHRTYPE, devmajor=1, devminor=3)),
        "block_device": _tar(_special(f"{seg}/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)),
        "fifo": _tar(_special(f"{seg}/fifo", tarfile.FIFOTYPE)),
        "directory": _tar(_special(f"{seg}", tarfile.DIRTYPE)),
        "oversized_member": _raw_header(f"{seg}/huge", 1 << 50),
        "truncated_member": _raw_header(f"{seg}/short", 1 << 24),
        # More than the volume's free space, in a 1.5 KiB archive: refused as truncated, not
        # answered 503 with the volume's free bytes.
        "claims_terabytes": _raw_header(f"{seg}/huge", 2 << 40),
        "oversized_pax_header": _pax_bomb(),
        "gnu_long_name": _raw_header("././@LongLink", 1 << 40, tarfile.GNUTYPE_LONGNAME),
        "gnu_sparse": _raw_header(f"{seg}/sparse", 1 << 40, tarfile.GNUTYPE_SPARSE),
        "gzip_bomb": bomb.getvalue(),
        "unexpected_member": _tar(_file("evil.sh", b"#!/bin/sh\nrm -rf /\n")),
        "duplicate_member": _tar(_file("config.json"), _file("config.json")),
        "not_a_tar": b"\x00\x01garbage" * 100,
        "empty": b"",
        "truncated_snapshot": real[: len(real) // 2],
        "tampered_segment": _tampered(real),
    }


def _pax_bomb() -> bytes:
    info = tarfile.TarInfo("config.json")
    info.pax_headers = {"comment": "x" * (1 << 20)}
    return _tar((info, b""))


@pytest.fixture(scope="module")
def victim(
    rest: QdrantClient, http: httpx.Client, server: ServerProcess
) -> Iterator[tuple[str, bytes]]:
    """A collection the attacks are uploaded onto, and a real snapshot to tamper with."""
    collection = f"victim_{uuid.uuid4().hex[:8]}"
    fill(rest, collection, n=50)
    made = rest.create_snapshot(collection)
    assert made is not None
    data = http.get(f"/collections/{collection}/snapshots/{made.name}").content
    yield collection, data
    rest.delete_collection(collection)


@pytest.mark.parametrize(
    "attack",
    [
        "dotdot",
        "dotdot_inside",
        "absolute",
        "symlink",
        "hardlink",
        "char_device",
        "block_device",
        "fifo",
        "directory",
        "oversized_member",
        "truncated_member",
        "claims_terabytes",
        "oversized_pax_header",
        "gnu_long_name",
        "gnu_sparse",
        "gzip_bomb",
        "unexpected_member",
        "duplicate_member",
        "not_a_tar",
        "empty",
        "truncated_snapshot",
        "tampered_segment",
    ],
)
def test_hostile_archive_refused_and_nothing_written(
    attack: str,
    victim: tuple[str, bytes],
    rest: QdrantClient,
    http: httpx.Client,
    server: ServerProcess,
) -> None:
    collection, real = victim
    data = _attacks(real)[attack]
    storage = server.storage
    collections_before = sorted(rest.get_collections().collections, key=lambda c: c.name)
    response = upload(http, collection, data)
    assert 400 <= response.status_code < 500, response.text
    message = response.json()["status"]["error"]
    assert str(storage) not in message  # no server paths in answers
    assert rest.count(collection).count == 50
    fresh = f"hostile_{uuid.uuid4().hex[:8]}"
    assert 400 <= upload(http, fresh, data).status_code < 500
    assert not rest.collection_exists(fresh)
    assert sorted(rest.get_collections().collections, key=lambda c: c.name) == (collections_before)
    assert leftovers(storage) == []
    staging = storage / "collections" / ":restoring-x" / "shard" / "segments" / "s"
    for directory in (staging, *staging.parents):
        assert not (directory / ESCAPE).exists()
    assert not OUTSIDE.exists()


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmHWM")


def test_upload_is_streamed_not_held_in_memory(
    server: ServerProcess, http: httpx.Client, name: Callable[[], str]
) -> None:
    """A 160 MB upload (one big member, then refused: no config) moves the server's peak
    resident memory by far less than its size: streamed to disk, and unpacked from disk."""
    assert server.proc is not None
    size = 160 << 20
    boundary = "tessera-test-boundary"
    header = tarfile.TarInfo("shard/segments/abc/big")
    header.size = size

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="snapshot"; '
            f'filename="big.snapshot"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        yield header.tobuf(tarfile.PAX_FORMAT)
        chunk = bytes(1 << 20)
        for _ in range(size >> 20):
            yield chunk
        yield bytes(1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    before = _peak_rss(server.proc.pid)
    response = http.post(
        f"/collections/{name()}/snapshots/upload",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 400, response.text
    assert "does not contain a collection config" in response.json()["status"]["error"]
    grown = _peak_rss(server.proc.pid) - before
    assert grown < 48 << 20, f"peak RSS grew by {grown >> 20} MiB for a {size >> 20} MiB upload"
    assert leftovers(server.storage) == []


def test_many_members_is_a_tar_bomb(tmp_path: Path) -> None:
    from tessera.errors import BadRequest
    from tessera.storage.snapshot_format import extract

    data = _tar(*(_file(f"shard/segments/s/f{i}", b"") for i in range(20)))
    dest = tmp_path / "x"
    dest.mkdir()
    with pytest.raises(BadRequest, match="more than 10 members"):
        extract(io.BytesIO(data), dest, lambda _: True, reserve=0, max_members=10)


# --------------------------------------------------------------------------- crash, concurrency

_CHILD = r"""
import os, signal, sys
from pathlib import Path
import tessera.storage.snapshot_format as fmt
import tessera.storage.swap as swap
from tessera.storage.toc import TableOfContents

storage, archive, crash_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
calls = [0]

def crashing(fn, at=None):
    def wrapped(*args, **kwargs):
        result = fn(*args, **kwargs)
        if at is None:
            calls[0] += 1
        if (calls[0] if at is None else at) == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

# Step 0: killed in the middle of unpacking (after its second file).
written = [0]
def unpacking(fn):
    def wrapped(*args, **kwargs):
        result = fn(*args, **kwargs)
        written[0] += 1
        if crash_at == 0 and written[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

fmt.write_member = unpacking(fmt.write_member)
# Steps 1..: after each durable step of the swap (journal, old aside, new in, journal gone).
for fn in ("write_checked_json", "rename_durable", "remove_durable"):
    setattr(swap, fn, crashing(getattr(swap, fn)))
toc = TableOfContents(storage)
toc.snapshots.recover("c", archive.as_uri())
print("steps", calls[0])
toc.close()
"""


def _make_storage(base: Path) -> tuple[Path, Path]:
    """A storage directory whose collection `c` holds 30 'old' points, and (in its snapshots
    directory) a snapshot of `c` holding 45 'new' points."""
    from tessera.engine import Engine

    engine = Engine(base / "storage")
    rng = np.random.default_rng(0)

    def make(n: int, tag: str) -> None:
        engine.create_collection("c", {"vectors": {"size": DIM, "distance": "Cosine"}})
        payloads: list[dict[str, Any] | None] = [{"tag": tag} for _ in range(n)]
        engine.upsert_arrays("c", list(range(n)), rng.random((n, DIM), np.float32), payloads)

    make(45, "new")
    made = engine.toc.snapshots.create("c")
    archive = engine.toc.snapshots.path("c", made["name"])
    engine.toc.delete("c")
    make(30, "old")
    engine.toc.close()
    return base / "storage", archive


def _state(storage: Path) -> tuple[int, set[str]]:
    from tessera.collection.values import EVERYTHING
    from tessera.storage.toc import TableOfContents

    toc = TableOfContents(storage)
    try:
        collection = toc.get("c")
        assert collection.damage == []
        page = collection.scroll(None, None, 1000, EVERYTHING)
        payloads = page.points.payloads or []
        return len(page.points.ids), {p["tag"] for p in payloads if p}
    finally:
        toc.close()


def test_kill_9_mid_restore_leaves_old_or_new(tmp_path: Path) -> None:
    """Step 0: killed while unpacking; steps 1-4: after each durable step of the swap
    (journal written, old moved aside, new moved in, journal removed); step 5: not killed.
    The children run side by side (each starts a Python)."""
    template, archive = _make_storage(tmp_path / "template")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    runs = []
    for crash_at in range(6):
        storage = tmp_path / f"run{crash_at}" / "storage"
        shutil.copytree(template, storage, symlinks=True)
        inside = storage / archive.relative_to(template)
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(storage), str(inside), str(crash_at)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs.append((storage, child))
    outcomes = []
    for crash_at, (storage, child) in enumerate(runs):
        out, err = child.communicate(timeout=180)
        if crash_at < 5:
            assert child.returncode == -9, (crash_at, child.returncode, err)
        else:
            assert child.returncode == 0 and "steps 4" in out, (out, err)
        count, tags = _state(storage)
        assert (count, tags) in ((30, {"old"}), (45, {"new"})), (crash_at, count, tags)
        assert leftovers(storage) == []
        outcomes.append(tags.pop())
    assert outcomes == ["old", "new", "new", "new", "new", "new"], outcomes


def test_a_damaged_swap_journal_keeps_both_copies(tmp_path: Path) -> None:
    """Killed between the swap's renames (the old collection aside, the new one staged) with
    its journal then damaged: nothing says which directories are whose, so both are moved
    to `<storage>/damaged/` byte for byte; start-up removed both before."""
    from tessera.fileformat import write_checked_json
    from tessera.storage import swap

    root = tmp_path / "storage" / "collections"
    old, new = root / ":deleting-k", root / ":restoring-k2"
    for directory, text in ((old, b"old collection"), (new, b"new collection")):
        (directory / "shard").mkdir(parents=True)
        (directory / "shard" / "data").write_bytes(text)
    journal = root / ":swap-k.json"
    write_checked_json(
        journal,
        swap.JOURNAL_KIND,
        swap.JOURNAL_VERSION,
        {"name": "c", "staging": new.name, "aside": old.name},
    )
    damaged = bytearray(journal.read_bytes())
    damaged[-3] ^= 0x01
    journal.write_bytes(bytes(damaged))
    swap.roll_forward(root)
    assert [e.name for e in root.iterdir()] == []
    (kept,) = (tmp_path / "storage" / "damaged").iterdir()
    assert (kept / old.name / "shard" / "data").read_bytes() == b"old collection"
    assert (kept / new.name / "shard" / "data").read_bytes() == b"new collection"
    assert (kept / journal.name).read_bytes() == bytes(damaged)


def test_writes_go_on_while_a_snapshot_is_packed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packing is slowed to ~2 s; writes during it answer at once, and the snapshot holds
    exactly the state at its checkpoint (none of the later writes)."""
    import tessera.storage.snapshot_format as fmt
    from tessera.engine import Engine
    from tessera.storage.toc import TableOfContents

    engine = Engine(tmp_path / "storage")
    engine.create_collection("c", {"vectors": {"size": DIM, "distance": "Cosine"}})
    rng = np.random.default_rng(1)
    engine.upsert_arrays("c", list(range(500)), rng.random((500, DIM), np.float32))

    original = fmt.ArchiveWriter.add_file
    packing = threading.Event()

    def slow(self: Any, *args: Any, **kwargs: Any) -> Any:
        packing.set()
        time.sleep(0.5)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(fmt.ArchiveWriter, "add_file", slow)
    made: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: made.update(engine.toc.snapshots.create("c")))
    started = time.monotonic()
    worker.start()
    assert packing.wait(30)
    latencies = []
    next_id = 500
    while worker.is_alive():
        t0 = time.monotonic()
        engine.upsert_arrays("c", [next_id], rng.random((1, DIM), np.float32))
        latencies.append(time.monotonic() - t0)
        next_id += 1
        time.sleep(0.02)
    worker.join()
    elapsed = time.monotonic() - started
    assert elapsed >= 1.5
    assert len(latencies) >= 10
    assert max(latencies) < elapsed / 3, (max(latencies), elapsed)

    archive = engine.toc.snapshots.path("c", made["name"])
    engine.toc.close()
    toc = TableOfContents(tmp_path / "other")
    try:  # the command line's restore, from anywhere
        assert toc.snapshots.restore_file("c", archive).count(None, exact=True) == 500
    finally:
        toc.close()


def test_upload_with_a_directory_for_its_config(http: httpx.Client, tmp_path: Path) -> None:
    """A directory entry is skipped (it carries nothing): one standing where `config.json`
    belongs leaves the archive without a config, which is Qdrant's answer."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        entry = tarfile.TarInfo("config.json")
        entry.type = tarfile.DIRTYPE
        tar.addfile(entry)
    files = {"snapshot": ("x.snapshot", buffer.getvalue(), "application/octet-stream")}
    answer = http.post("/collections/dir_config/snapshots/upload", files=files)
    assert answer.status_code == 400, answer.text
    error = answer.json()["status"]["error"]
    assert "does not contain a collection config" in error
    assert "config.json" not in error


def test_the_peer_id_is_chosen_once_under_concurrent_first_snapshots(tmp_path: Path) -> None:
    """Two first snapshots at once both wrote the peer id's temporary file: one answered 500
    (found by fuzzing); every caller now gets the one id chosen."""
    import threading

    from tessera.storage.snapshots import peer_id

    for attempt in range(20):
        storage = tmp_path / str(attempt)
        found: list[int] = []
        failed: list[BaseException] = []

        def choose(
            storage: Path = storage,
            found: list[int] = found,
            failed: list[BaseException] = failed,
        ) -> None:
            try:
                found.append(peer_id(storage))
            except BaseException as exc:
                failed.append(exc)

        threads = [threading.Thread(target=choose) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failed == [] and len(set(found)) == 1 and len(found) == 8


def test_recover_into_an_alias_restores_its_collection(
    rest: QdrantClient, http: httpx.Client, server: ServerProcess, name: Callable[[], str]
) -> None:
    """A snapshot uploaded or recovered under an alias's name goes into the collection the
    alias names, as Qdrant resolves it: no collection of the alias's name appears to hide
    the alias."""
    target, source = name(), name()
    alias = f"alias_{uuid.uuid4().hex[:8]}"
    fill(rest, target, n=50, tag="target")
    fill(rest, source, n=7, tag="source")
    rest.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=target, alias_name=alias)
            )
        ]
    )
    try:
        made = rest.create_snapshot(source)
        assert made is not None
        data = http.get(f"/collections/{source}/snapshots/{made.name}").content
        response = upload(http, alias, data)
        assert response.status_code == 200, response.text
        assert alias not in {c.name for c in rest.get_collections().collections}
        assert rest.count(target).count == 7
        aliases = {a.alias_name: a.collection_name for a in rest.get_aliases().aliases}
        assert aliases[alias] == target
        # Recovered from a file under the alias: the same collection again.
        rest.upsert(
            source,
            [models.PointStruct(id=1000, vector={"dense": vec(1000)}, payload={"tag": "more"})],
        )
        made = rest.create_snapshot(source)
        assert made is not None
        location = next(server.storage.rglob(made.name)).resolve().as_uri()
        assert rest.recover_snapshot(alias, location, wait=True)
        assert alias not in {c.name for c in rest.get_collections().collections}
        assert rest.count(target).count == 8
        assert rest.count(alias).count == 8
    finally:
        rest.update_collection_aliases(
            change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            ]
        )


def test_recover_refuses_another_shard_number(
    rest: QdrantClient, http: httpx.Client, name: Callable[[], str]
) -> None:
    """Over an existing collection a snapshot must have its shard number, as Qdrant checks
    (after the vectors, before the sparse vectors); the collection is left as it was."""
    single, sharded = name(), name()
    fill(rest, single, n=5)
    rest.create_collection(
        sharded,
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={"text": models.SparseVectorParams()},
        shard_number=3,
    )
    rest.upsert(sharded, [models.PointStruct(id=1, vector={"dense": vec(1)})], wait=True)
    made = rest.create_snapshot(single)
    assert made is not None
    data = http.get(f"/collections/{single}/snapshots/{made.name}").content
    response = upload(http, sharded, data)
    assert response.status_code == 400, response.text
    assert response.json()["status"]["error"] == (
        "Wrong input: Snapshot is not compatible with existing collection: "
        "Collection shard number: 3 Snapshot shard number: 1"
    )
    assert rest.count(sharded).count == 1


def test_recover_from_a_url_with_credentials(
    rest: QdrantClient, http: httpx.Client, tmp_path: Path, name: Callable[[], str]
) -> None:
    """`http://user:password@host/...` is fetched with basic auth (percent-decoded), as
    Qdrant's HTTP client does; wrong credentials get the server's status back."""
    source = name()
    fill(rest, source, n=9)
    made = rest.create_snapshot(source)
    assert made is not None
    data = http.get(f"/collections/{source}/snapshots/{made.name}").content
    expected = "Basic " + base64.b64encode(b"us er:p@ss").decode()

    class Guarded(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Guarded)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        port = httpd.server_address[1]
        target = name()
        url = f"http://us%20er:p%40ss@127.0.0.1:{port}/a.snapshot"
        assert rest.recover_snapshot(target, url, wait=True)
        assert rest.count(target).count == 9
        response = http.put(
            f"/collections/{name()}/snapshots/recover",
            json={"location": f"http://us%20er:wrong@127.0.0.1:{port}/a.snapshot"},
        )
        assert response.status_code == 400
        error = response.json()["status"]["error"]
        assert "status - 401 Unauthorized" in error and "wrong" not in error
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_snapshots_time_is_the_one_its_name_says(
    rest: QdrantClient, name: Callable[[], str]
) -> None:
    """Snapshots taken within one second get names a second apart; each one's
    `creation_time` is the time its name says."""
    collection = name()
    fill(rest, collection, n=3)
    made = [rest.create_snapshot(collection) for _ in range(3)]
    for snapshot in made:
        assert snapshot is not None
        stamp = snapshot.name.removesuffix(".snapshot").rsplit("-", 6)[1:]
        date, clock = "-".join(stamp[:3]), ":".join(stamp[3:])
        assert snapshot.creation_time == f"{date}T{clock}", snapshot
