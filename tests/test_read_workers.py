"""`service.read_workers`: worker processes serve REST point reads on the server's port and
hand every other request, with its connection, to the server (tessera.api.read_workers).

Which process holds a connection is read from /proc (the server-side socket of the client's
port, and the process with that socket open), so the tests know they went through a worker:
a read there sees every write the server acknowledged before it, on any connection; a write
or any other request there is answered by the server, which keeps the connection."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess, make_client

WORKERS = 2


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's end of the connection from `client_port`."""
    want_local, want_remote = f":{server_port:04X}", f":{client_port:04X}"
    for _ in range(20):  # (the kernel writes the table a page at a time: a read can miss one)
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(want_local) and fields[2].endswith(want_remote):
                return fields[9]
        time.sleep(0.05)
    return None


def _holder(pids: list[int], inode: str) -> int | None:
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


class Conn:
    """One keep-alive HTTP/1.1 connection (a raw socket, so its port is known)."""

    def __init__(self, port: int, headers: str = "") -> None:
        self.port = port
        self.headers = headers  # extra header lines, each ending with \r\n
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(30)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
        head += self.headers
        if body is not None:
            head += "Content-Type: application/json\r\n"
        self.sock.sendall(head.encode() + b"\r\n")
        if data:
            self.sock.sendall(data)  # a second write: the body may come apart from the head
        buf = b""
        while b"\r\n\r\n" not in buf:
            part = self.sock.recv(65536)
            assert part, "connection closed"
            buf += part
        head_bytes, _, rest = buf.partition(b"\r\n\r\n")
        lines = head_bytes.decode().split("\r\n")
        length = int(
            next(
                v for k, v in (h.split(": ", 1) for h in lines[1:]) if k.lower() == "content-length"
            )
        )
        while len(rest) < length:
            part = self.sock.recv(65536)
            assert part, "connection closed"
            rest += part
        try:
            answer = json.loads(rest) if rest else None
        except ValueError:
            answer = rest.decode(errors="replace")  # (401: a line of text, as Qdrant's)
        return int(lines[0].split()[1]), answer

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.request(method, path, body)
        assert status == 200, (method, path, status, answer)
        return answer["result"]

    def holder(self, server: ServerProcess) -> int | None:
        inode = _inode(self.port, self.sock.getsockname()[1])
        assert server.proc is not None and inode is not None
        return _holder([server.proc.pid, *_children(server.proc.pid)], inode)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def served(server_factory: Callable[..., ServerProcess]) -> Iterator[ServerProcess]:
    proc = server_factory(env={"QDRANT__SERVICE__READ_WORKERS": str(WORKERS)})
    deadline = time.monotonic() + 30
    assert proc.proc is not None
    while len(_children(proc.proc.pid)) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.1)
    yield proc


def _on_workers(
    server: ServerProcess, count: int = 24, headers: str = ""
) -> tuple[list[Conn], list[Conn]]:
    """Connections a worker holds after a read of `c` (at least a few), and those the server
    holds. A worker loads a collection it has not seen in the background, handing its first
    reads to the server meanwhile: connections are opened until reads stay on workers."""
    assert server.proc is not None
    owner = server.proc.pid
    workers: list[Conn] = []
    mine: list[Conn] = []
    deadline = time.monotonic() + 30
    while len(workers) < count // 3 and time.monotonic() < deadline:
        for _ in range(count):
            conn = Conn(server.port, headers)
            conn.ok("POST", "/collections/c/points/count", {"exact": True})
            (mine if conn.holder(server) == owner else workers).append(conn)
        time.sleep(0.05)
    assert len(workers) >= count // 3, "no read stayed on a worker"
    assert all(c.holder(server) not in (owner, None) for c in workers)
    return workers, mine


def _collection(conn: Conn, dim: int = 4) -> None:
    conn.ok("PUT", "/collections/c", {"vectors": {"size": dim, "distance": "Dot"}})
    conn.ok(
        "PUT", "/collections/c/index?wait=true", {"field_name": "tag", "field_schema": "keyword"}
    )


def _point(i: int) -> dict[str, Any]:
    return {"id": i, "vector": [1.0, i % 7, i % 5, 1.0], "payload": {"tag": f"t{i % 3}", "i": i}}


def test_every_acknowledged_write_is_read_back_through_the_workers(served: ServerProcess) -> None:
    setup = Conn(served.port)
    _collection(setup)
    workers, _ = _on_workers(served)
    writer = Conn(served.port)
    for i in range(60):
        writer.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(i)]})
        reader = workers[i % len(workers)]
        assert reader.ok("POST", "/collections/c/points/count", {"exact": True}) == {"count": i + 1}
        got = reader.ok("POST", "/collections/c/points", {"ids": [i], "with_payload": True})
        assert got == [{"id": i, "payload": {"tag": f"t{i % 3}", "i": i}}]
        hits = reader.ok(
            "POST",
            "/collections/c/points/query",
            {
                "query": [1, 1, 1, 1],
                "limit": 100,
                "filter": {"must": [{"key": "tag", "match": {"value": f"t{i % 3}"}}]},
            },
        )["points"]
        assert i in [h["id"] for h in hits]
    writer.ok("POST", "/collections/c/points/delete?wait=true", {"points": [0, 1]})
    writer.ok(
        "POST", "/collections/c/points/payload?wait=true", {"payload": {"x": 1}, "points": [5]}
    )
    for reader in workers:
        assert reader.ok("POST", "/collections/c/points/count", {"exact": True}) == {"count": 58}
        assert reader.ok("GET", "/collections/c/points/5")["payload"] == {
            "tag": "t2",
            "i": 5,
            "x": 1,
        }
        scroll = reader.ok("POST", "/collections/c/points/scroll", {"limit": 100})
        assert [p["id"] for p in scroll["points"]] == list(range(2, 60))
        facet = reader.ok("POST", "/collections/c/facet", {"key": "tag", "exact": True})
        assert sum(h["count"] for h in facet["hits"]) == 58
    # They were served by the workers (the connections are still theirs).
    assert all(
        c.holder(served) not in (None, served.proc.pid if served.proc else None) for c in workers
    )


def test_other_requests_on_a_worker_connection_go_to_the_server(served: ServerProcess) -> None:
    setup = Conn(served.port)
    _collection(setup)
    workers, _ = _on_workers(served, 24)
    assert served.proc is not None
    owner = served.proc.pid
    conn = workers[0]
    conn.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(i) for i in range(10)]})
    assert conn.holder(served) == owner  # handed over with the write
    # The next read takes it back to a worker, the next write to the server again.
    assert conn.ok("POST", "/collections/c/points/count", {"exact": True}) == {"count": 10}
    assert conn.holder(served) not in (owner, None)
    conn.ok("POST", "/collections/c/points/payload?wait=true", {"payload": {"y": 2}, "points": [3]})
    assert conn.holder(served) == owner
    assert conn.ok("GET", "/collections/c/points/3")["payload"]["y"] == 2
    assert conn.holder(served) not in (owner, None)
    info = workers[1].ok("GET", "/collections/c")
    assert info["points_count"] == 10 and workers[1].holder(served) == owner
    status, answer = workers[2].request("PUT", "/collections/c/points", {"points": [{"id": 1}]})
    assert status == 400 and "vector" in answer["status"]["error"]  # the server's own answer
    snapshot = workers[3].ok("POST", "/collections/c/snapshots")
    assert snapshot["name"].endswith(".snapshot")
    status, _ = workers[4].request("GET", "/collections/nope/points/1")
    assert status == 404
    # A write with a body far larger than one read, split by TCP.
    big = {"points": [_point(i) for i in range(10, 2010)]}
    workers[5].ok("PUT", "/collections/c/points?wait=true", big)
    assert workers[6].ok("POST", "/collections/c/points/count", {"exact": True}) == {"count": 2010}


def test_collections_and_aliases_change_under_the_workers(served: ServerProcess) -> None:
    setup = Conn(served.port)
    _collection(setup)
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(i) for i in range(5)]})
    workers, _ = _on_workers(served, 24)
    reader = workers[0]
    setup.ok(
        "POST",
        "/collections/aliases",
        {"actions": [{"create_alias": {"collection_name": "c", "alias_name": "a"}}]},
    )
    assert reader.ok("POST", "/collections/a/points/count", {"exact": True}) == {"count": 5}
    # Deleted, then made again with another size: the worker follows the new one.
    setup.ok("DELETE", "/collections/c")
    status, _ = workers[1].request("POST", "/collections/c/points/count", {"exact": True})
    assert status == 404
    setup.ok("PUT", "/collections/c", {"vectors": {"size": 2, "distance": "Dot"}})
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [{"id": 9, "vector": [1, 2]}]})
    for conn in workers[2:6]:
        hits = conn.ok("POST", "/collections/c/points/query", {"query": [1, 1], "limit": 3})[
            "points"
        ]
        assert [h["id"] for h in hits] == [9]
    # A config change (not in the WAL) reaches the workers too.
    setup.ok("PATCH", "/collections/c", {"hnsw_config": {"ef_construct": 50}})
    time.sleep(0.05)
    assert workers[6].ok("POST", "/collections/c/points/count", {}) == {"count": 1}


def test_a_worker_that_dies_is_replaced(served: ServerProcess) -> None:
    setup = Conn(served.port)
    _collection(setup)
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(i) for i in range(5)]})
    assert served.proc is not None
    victim = _children(served.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = _children(served.proc.pid)
        if len(children) == WORKERS and victim not in children:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the worker was not started again")
    # Reads go on, through the new worker too.
    time.sleep(1.0)
    workers, _ = _on_workers(served, 16)
    assert all(
        c.ok("POST", "/collections/c/points/count", {"exact": True}) == {"count": 5}
        for c in workers
    )
    assert "read worker" in served.log_tail(200)


def test_the_official_client_reads_its_writes_on_any_connection(served: ServerProcess) -> None:
    from qdrant_client import models

    clients = [make_client(served.url) for _ in range(6)]
    first = clients[0]
    first.create_collection("c", vectors_config=models.VectorParams(size=4, distance="Dot"))
    first.create_payload_index("c", "tag", "keyword")
    for i in range(120):
        point = _point(i)
        clients[i % 6].upsert("c", [models.PointStruct(**point)], wait=True)
        reader = clients[(i * 5 + 1) % 6]
        assert reader.count("c", exact=True).count == i + 1
        assert [p.id for p in reader.retrieve("c", [i])] == [i]
        found = reader.query_points(
            "c",
            query=point["vector"],
            limit=200,
            query_filter=models.Filter(
                must=[models.FieldCondition(key="tag", match=models.MatchValue(value=f"t{i % 3}"))]
            ),
        ).points
        assert i in [p.id for p in found]
    first.delete("c", points_selector=models.PointIdsList(points=[0, 1, 2]), wait=True)
    assert all(c.count("c", exact=True).count == 117 for c in clients)


def test_api_keys_hold_on_the_workers(server_factory: Callable[..., ServerProcess]) -> None:
    env = {"QDRANT__SERVICE__READ_WORKERS": "1", "QDRANT__SERVICE__API_KEY": "secret"}
    env["QDRANT__SERVICE__READ_ONLY_API_KEY"] = "reader"
    served = server_factory(env=env)
    _collection(Conn(served.port, "api-key: secret\r\n"))
    workers, _ = _on_workers(served, 12, "api-key: reader\r\n")
    reader = workers[0]
    assert reader.ok("POST", "/collections/c/points/count", {}) == {"count": 0}
    status, _ = reader.request("PUT", "/collections/c/points?wait=true", {"points": [_point(1)]})
    assert status == 403  # the read-only key, on a write the server answers
    anonymous = [Conn(served.port) for _ in range(12)]
    for conn in anonymous:
        status, answer = conn.request("POST", "/collections/c/points/count", {})
        assert status == 401, answer
    assert any(c.holder(served) not in (None, served.proc and served.proc.pid) for c in anonymous)


def test_collections_the_workers_do_not_serve_go_to_the_server(served: ServerProcess) -> None:
    setup = Conn(served.port)
    _collection(setup)
    workers, _ = _on_workers(served, 12)
    assert served.proc is not None
    # Several shards: read through the server. A read rate limit: counted by the server.
    setup.ok(
        "PUT", "/collections/s", {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 2}
    )
    setup.ok("PUT", "/collections/s/points?wait=true", {"points": [_point(i) for i in range(8)]})
    limited = {"vectors": {"size": 4, "distance": "Dot"}}
    limited["strict_mode_config"] = {"enabled": True, "read_rate_limit": 1000}
    setup.ok("PUT", "/collections/r", limited)
    for name, count in (("s", 8), ("r", 0)):
        conn = workers.pop()
        for _ in range(3):  # (the first is handed over while the worker looks at it)
            assert conn.ok("POST", f"/collections/{name}/points/count", {"exact": True}) == {
                "count": count
            }
        assert conn.holder(served) == served.proc.pid  # (and it stays there for such reads)


def test_metrics_and_telemetry_count_what_the_workers_answered(served: ServerProcess) -> None:
    setup = Conn(served.port)
    _collection(setup)
    workers, mine = _on_workers(served, 12)
    for conn in workers:
        for _ in range(5):
            conn.ok("POST", "/collections/c/points/count", {"exact": True})
    # Every count of _on_workers' connections, and five more on each worker's.
    expected = len(workers) + len(mine) + 5 * len(workers)
    key = "POST /collections/{collection_name}/points/count"
    deadline = time.monotonic() + 10
    while True:
        rest = setup.ok("GET", "/telemetry?details_level=2")["requests"]["rest"]["responses"]
        counted = rest.get(key, {}).get("200", {}).get("count", 0)
        if counted >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counted == expected
    metrics = setup.request("GET", "/metrics")[1]
    line = f'rest_responses_total{{method="POST",endpoint="{key.split()[1]}",status="200"}}'
    assert f"{line} {expected}" in metrics


def test_workers_end_with_a_killed_server(served: ServerProcess) -> None:
    assert served.proc is not None
    workers = _children(served.proc.pid)
    assert len(workers) == WORKERS
    os.kill(served.proc.pid, signal.SIGKILL)  # the server alone, not its process group
    served.proc.wait()
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    for pid in alive:  # (zombies are reaped by init; a live one fails the test)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "Z", f"worker {pid} still running"
    served.proc = None
    served.start()  # the port and the storage are free again
    assert Conn(served.port).ok("GET", "/collections")["collections"] == []


def test_a_collection_recovered_from_a_snapshot_reads_back(served: ServerProcess) -> None:
    import httpx

    setup = Conn(served.port)
    _collection(setup)
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(i) for i in range(3)]})
    name = setup.ok("POST", "/collections/c/snapshots")["name"]
    snapshot = httpx.get(f"{served.url}/collections/c/snapshots/{name}", timeout=30).content
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(i) for i in range(3, 6)]})
    workers, _ = _on_workers(served, 12)
    answer = httpx.post(
        f"{served.url}/collections/c/snapshots/upload?wait=true",
        files={"snapshot": ("c.snapshot", snapshot)},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    # The recovered shard's log starts afresh, empty: the workers read it back at once
    # (they spun in a loop over that empty file, and every connection on them hung).
    for conn in [*workers, *(Conn(served.port) for _ in range(6))]:
        conn.sock.settimeout(10)
        assert conn.ok("POST", "/collections/c/points/count", {"exact": True}) == {"count": 3}
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(9)]})
    assert all(
        c.ok("POST", "/collections/c/points/count", {"exact": True}) == {"count": 4}
        for c in workers
    )


def _with_a_lookup_collection(setup: Conn) -> None:
    """`c` with 4 points, and `s` of two shards (no worker holds it) with 2."""
    _collection(setup)
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(i) for i in range(4)]})
    body = {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 2}
    setup.ok("PUT", "/collections/s", body)
    setup.ok("PUT", "/collections/s/points?wait=true", {"points": [_point(i) for i in range(2)]})


def test_lookups_of_collections_the_workers_do_not_serve(served: ServerProcess) -> None:
    _with_a_lookup_collection(Conn(served.port))
    workers, _ = _on_workers(served, 12)
    query = {"query": {"recommend": {"positive": [0]}}, "lookup_from": {"collection": "s"}}
    for conn in workers:  # (the worker passes it to the server, which has every collection)
        assert len(conn.ok("POST", "/collections/c/points/query", {**query, "limit": 2})["points"])
        assert conn.holder(served) == (served.proc.pid if served.proc else None)
        # A read without a lookup goes back to a worker.
        conn.ok("POST", "/collections/c/points/count", {})
        assert conn.holder(served) != (served.proc.pid if served.proc else None)


def test_a_deleted_collection_is_let_go(served: ServerProcess) -> None:
    setup = Conn(served.port)
    _collection(setup)
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(i) for i in range(4)]})
    _on_workers(served, 12)
    assert served.proc is not None
    setup.ok("DELETE", "/collections/c")

    def held() -> list[str]:
        """Files under the storage the workers hold open though they are deleted."""
        assert served.proc is not None
        out = []
        for pid in _children(served.proc.pid):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if "(deleted)" in target and str(served.storage) in target:
                        out.append(target)
        return out

    deadline = time.monotonic() + 10  # (the workers' poller passes every 0.1 s)
    while held() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not held()
    time.sleep(0.5)
    assert "ERROR" not in served.log_tail(400)


def test_jwt_value_exists_is_checked_by_the_server(
    server_factory: Callable[..., ServerProcess],
) -> None:
    import jwt as pyjwt

    KEY = "a-key-long-enough-for-hs256-0123456789"

    env = {"QDRANT__SERVICE__READ_WORKERS": "1", "QDRANT__SERVICE__API_KEY": KEY}
    env["QDRANT__SERVICE__JWT_RBAC"] = "true"
    served = server_factory(env=env)
    admin = Conn(served.port, f"api-key: {KEY}\r\n")
    _collection(admin)
    # The users' collection has two shards: no worker holds a copy of it.
    users = {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2}
    admin.ok("PUT", "/collections/users", users)
    admin.ok(
        "PUT",
        "/collections/users/points?wait=true",
        {"points": [{"id": 1, "vector": [1, 0], "payload": {"user": "alice"}}]},
    )
    claims = {
        "access": "r",
        "value_exists": {"collection": "users", "matches": [{"key": "user", "value": "alice"}]},
    }
    token = pyjwt.encode(claims, KEY, algorithm="HS256")
    # The same claims with the claim's name escaped (`\u0076alue_exists`), as JSON allows.
    escaped = _hs256_token(KEY, json.dumps(claims).replace("value_exists", "\\u0076alue_exists"))
    _on_workers(served, 12, f"api-key: {KEY}\r\n")  # the worker is up and serves reads
    # Reads with the token go to the server, wherever they land (a worker took the claim's
    # collection for missing: 403).
    assert served.proc is not None
    conns = [Conn(served.port, f"Authorization: Bearer {t}\r\n") for t in [token, escaped] * 8]
    for conn in conns:
        assert conn.ok("POST", "/collections/c/points/count", {}) == {"count": 0}
        assert conn.holder(served) == served.proc.pid
    admin.ok("POST", "/collections/users/points/delete?wait=true", {"points": [1]})
    for conn in conns:  # revoked: the next request of each is refused
        status, _ = conn.request("POST", "/collections/c/points/count", {})
        assert status == 401


def _hs256_token(key: str, claims: str) -> str:
    """A JWT of these claims, written as given (pyjwt writes its own JSON)."""
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signed = part(b'{"alg":"HS256","typ":"JWT"}') + b"." + part(claims.encode())
    signature = hmac.new(key.encode(), signed, hashlib.sha256).digest()
    return (signed + b"." + part(signature)).decode()


def test_upgrade_and_connect_are_answered_as_the_server_answers(served: ServerProcess) -> None:
    """`Upgrade` headers and CONNECT stop an HTTP parser where they are: a worker's gate
    closed such connections unanswered; now they are answered as without workers."""
    setup = Conn(served.port)
    _collection(setup)
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(1)]})
    _on_workers(served, 12)
    body = b'{"limit": 5}'
    cases = [
        (
            _post("/collections/c/points/scroll", body, "Upgrade: h2c\r\nConnection: Upgrade\r\n"),
            b"200",
        ),
        (
            _post(
                "/collections/c/points/count", body, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            ),
            b"400",
        ),
        (
            b"GET /collections/c/points/1 HTTP/1.1\r\nHost: x\r\n"
            b"Upgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
            b"200",
        ),
        (b"CONNECT /collections/c/points/scroll HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
    ]
    for payload, status in cases * 6:  # (the kernel gives most connections to a worker)
        answers = _raw_exchange(served.port, payload, 1)
        assert answers and answers[0].split()[1] == status, (payload, answers)


def _raw_exchange(port: int, payload: bytes, answers: int, timeout: float = 10) -> list[bytes]:
    """Sends `payload` on a fresh connection and reads `answers` responses' status lines."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(timeout)
    sock.sendall(payload)
    buf = b""
    try:
        while buf.count(b"HTTP/1.1 ") < answers or not buf.endswith(b"}"):
            part = sock.recv(65536)
            if not part:
                break
            buf += part
    finally:
        sock.close()
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", buf)


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_reads_whose_body_a_worker_cannot_look_into(served: ServerProcess) -> None:
    import gzip

    _with_a_lookup_collection(Conn(served.port))
    _on_workers(served, 12)
    query = {"query": {"recommend": {"positive": [0]}}, "lookup_from": {"collection": "s"}}
    plain = json.dumps({**query, "limit": 2}).encode()
    escaped = plain.replace(b'"lookup_from"', b'"\\u006cookup_from"')
    packed = gzip.compress(plain)
    for _ in range(8):  # (a worker answered 404 for the collection it does not hold)
        for payload in (
            _post("/collections/c/points/query", packed, "Content-Encoding: gzip\r\n"),
            _post("/collections/c/points/query", escaped),
        ):
            assert _raw_exchange(served.port, payload, 1) == [b"HTTP/1.1 200 OK"]
    # Expect: 100-continue: the body comes after the server's "100 Continue" only.
    count = json.dumps({"exact": True, "filter": {"must": [{"key": "i", "range": {"gte": 0}}]}})
    for _ in range(8):
        sock = socket.create_connection(("127.0.0.1", served.port))
        sock.settimeout(5)  # (a worker waited for the body, the client for "100 Continue")
        data = count.encode()
        head = _post("/collections/c/points/count", b"", "Expect: 100-continue\r\n")
        head = head.replace(b"Content-Length: 0", f"Content-Length: {len(data)}".encode())
        sock.sendall(head)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100")
        sock.sendall(data)
        answer = b""
        while not answer.endswith(b"}"):
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200") and b'"count":4' in answer
        sock.close()


def test_pipelined_requests_are_all_answered(served: ServerProcess) -> None:
    setup = Conn(served.port)
    _collection(setup)
    _on_workers(served, 12)
    for i in range(12):  # a write and a read in one packet, the first on a fresh connection
        write = json.dumps({"points": [_point(100 + i)]}).encode()
        payload = _post("/collections/c/points?wait=true", write).replace(b"POST", b"PUT", 1)
        payload += _post("/collections/c/points/count", b'{"exact": true}')
        assert _raw_exchange(served.port, payload, 2) == [b"HTTP/1.1 200 OK"] * 2


def test_a_client_gone_mid_body_is_no_internal_error(served: ServerProcess) -> None:
    setup = Conn(served.port)
    _collection(setup)
    for _ in range(6):  # (wherever it lands: a worker, or the server)
        sock = socket.create_connection(("127.0.0.1", served.port))
        head = _post("/collections/c/points/count", b"", "")
        sock.sendall(head.replace(b"Content-Length: 0", b"Content-Length: 1000") + b'{"ex')
        time.sleep(0.05)
        sock.close()
    time.sleep(0.5)
    assert setup.ok("POST", "/collections/c/points/count", {}) == {"count": 0}
    log = served.log_tail(300)
    assert "internal error" not in log and "ClientDisconnect" not in log, log


def test_names_that_walk_the_storage_are_the_servers_to_answer(served: ServerProcess) -> None:
    """A collection is looked up by name alone: `../collections/c` or `./c` is no way to
    read `c` (the server answers 404 or its 422 for the name), also where a worker looks
    the name up on disk, and a NUL in a name is the server's 422, not a worker's failure."""
    setup = Conn(served.port)
    _collection(setup)
    setup.ok("PUT", "/collections/c/points?wait=true", {"points": [_point(1)]})
    workers, _ = _on_workers(served, 24)
    names = ["..%2Fcollections%2Fc", ".%2Fc", "c%2F", "..", "%00c", "c%3A"]
    for conn, name in zip(workers, names, strict=False):
        status, answer = conn.request("POST", f"/collections/{name}/points/count", {})
        assert status in (404, 422), (name, status, answer)
    assert workers[-1].ok("POST", "/collections/c/points/count", {}) == {"count": 1}
