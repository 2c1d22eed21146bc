"""`service.read_workers` over gRPC: the workers listen on the server's gRPC port too, serve
point reads of the collections they follow, and pass every other call on to the server
(tessera.api.grpc_forward).

Which process holds a gRPC connection is read from /proc (the one established connection to
the gRPC port a test has open, and the process with its socket), so the tests know they
talk to a worker; that a read was served there and not passed on is shown by stopping the
server (SIGSTOP): the worker still answers it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from qdrant_client import grpc as pb

from tests.conftest import ServerProcess, free_port
from tests.test_read_workers import _children, _holder

Stubs = tuple[grpc.Channel, Any, Any]


def _with_workers(
    server_factory: Callable[..., ServerProcess], workers: int = 2, **env: str
) -> ServerProcess:
    env = {"QDRANT__SERVICE__READ_WORKERS": str(workers), **env}
    server = server_factory(env=env, grpc_port=free_port())
    assert server.proc is not None
    deadline = time.monotonic() + 30
    while len(_children(server.proc.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return server


@pytest.fixture
def served(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    return _with_workers(server_factory)


def _grpc_holder(server: ServerProcess) -> int | None:
    """The process holding the one established connection to the server's gRPC port."""
    assert server.proc is not None
    want = f":{server.grpc_port:04X}"
    # The kernel writes these tables a page at a time while connections come and go: a
    # read can list a socket twice or miss one, so the tables are read until they agree
    inodes: set[str] = set()
    for _ in range(20):
        lines = [
            line
            for table in ("/proc/net/tcp", "/proc/net/tcp6")  # (grpc's: IPv6, v4-mapped)
            for line in Path(table).read_text().splitlines()[1:]
        ]
        inodes = {
            fields[9]
            for fields in map(str.split, lines)
            if fields[1].endswith(want) and fields[3] == "01"
        }
        if len(inodes) == 1:
            break
        time.sleep(0.05)
    assert len(inodes) == 1, inodes
    return _holder([server.proc.pid, *_children(server.proc.pid)], inodes.pop())


def _stubs(server: ServerProcess, key: str | None = None) -> Stubs:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    if key is not None:
        header = ("api-key", key)
        channel = grpc.intercept_channel(channel, _WithKey(header))
    return channel, pb.PointsStub(channel), pb.CollectionsStub(channel)


class _WithKey(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, header: tuple[str, str]) -> None:
        self.header = header

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = [*(details.metadata or ()), self.header]
        return continuation(details._replace(metadata=metadata), request)


@contextlib.contextmanager
def _on_a_worker(server: ServerProcess, key: str | None = None) -> Iterator[tuple[Any, Any]]:
    """The Points and Collections stubs of a gRPC connection a worker accepted (connections
    are opened, one at a time, until the kernel gives one to a worker); closed after."""
    assert server.proc is not None
    for _ in range(60):
        channel, points, collections = _stubs(server, key)
        with contextlib.suppress(grpc.RpcError):  # (refused for a wrong key: connected)
            collections.List(pb.ListCollectionsRequest(), timeout=30)
        if _grpc_holder(server) not in (server.proc.pid, None):
            try:
                yield points, collections
            finally:
                channel.close()
            return
        channel.close()
        time.sleep(0.05)  # (the closed connection leaves the established state)
    pytest.fail("no gRPC connection landed on a worker")


@contextlib.contextmanager
def _stopped(server: ServerProcess) -> Iterator[None]:
    """The server (not its workers) stopped meanwhile: only a worker can answer."""
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def _point(i: int) -> pb.PointStruct:
    return pb.PointStruct(
        id=pb.PointId(num=i),
        vectors=pb.Vectors(vector=pb.Vector(data=[1.0, i % 7, i % 5, 1.0])),
        payload={"tag": pb.Value(string_value=f"t{i % 3}"), "i": pb.Value(integer_value=i)},
    )


def _create(collections: Any, name: str) -> None:
    params = pb.VectorParams(size=4, distance=pb.Distance.Dot)
    create = pb.CreateCollection(
        collection_name=name, vectors_config=pb.VectorsConfig(params=params)
    )
    assert collections.Create(create, timeout=30).result


def _tagged(tag: str) -> pb.Filter:
    match = pb.FieldCondition(key="tag", match=pb.Match(keyword=tag))
    return pb.Filter(must=[pb.Condition(field=match)])


def test_grpc_reads_on_a_worker_see_every_acknowledged_write(served: ServerProcess) -> None:
    with _on_a_worker(served) as (points, collections):
        # Calls a worker does not serve reach the server: a collection made, an index.
        _create(collections, "c")
        index = pb.CreateFieldIndexCollection(
            collection_name="c", field_name="tag", field_type=pb.FieldType.FieldTypeKeyword
        )
        points.CreateFieldIndex(index, timeout=30)
        for i in range(40):
            points.Upsert(pb.UpsertPoints(collection_name="c", wait=True, points=[_point(i)]))
            count = points.Count(pb.CountPoints(collection_name="c", exact=True), timeout=30)
            assert count.result.count == i + 1
            got = points.Get(pb.GetPoints(collection_name="c", ids=[pb.PointId(num=i)]))
            assert [p.id.num for p in got.result] == [i]
            query = pb.QueryPoints(
                collection_name="c",
                query=pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=[1, 1, 1, 1]))),
                filter=_tagged(f"t{i % 3}"),
                limit=100,
            )
            assert i in [p.id.num for p in points.Query(query, timeout=30).result]
        info = collections.Get(pb.GetCollectionInfoRequest(collection_name="c"), timeout=30)
        assert info.result.points_count == 40
        # The server's errors come back as it gave them.
        with pytest.raises(grpc.RpcError) as missing:
            points.Upsert(pb.UpsertPoints(collection_name="nope", points=[_point(1)]))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert "Collection `nope` doesn't exist!" in (missing.value.details() or "")
        # The server's access log names the client, not the worker's socket.
        logged = [
            line
            for line in served.log_path.read_text().splitlines()
            if '"/qdrant.Points/Upsert" NOT_FOUND' in line
        ]
        assert logged and "127.0.0.1" in logged[-1] and "unix:" not in logged[-1], logged
        wrong = pb.PointStruct(id=pb.PointId(num=1), vectors=pb.Vectors(vector=pb.Vector(data=[1])))
        with pytest.raises(grpc.RpcError) as refused:
            points.Upsert(pb.UpsertPoints(collection_name="c", wait=True, points=[wrong]))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as unknown:
            points.Count(pb.CountPoints(collection_name="nope"), timeout=30)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

        # Served by the worker: answered while the server is stopped, and current.
        assert _grpc_holder(served) not in (served.proc and served.proc.pid, None)
        with _stopped(served):
            count = points.Count(pb.CountPoints(collection_name="c", exact=True), timeout=10)
            assert count.result.count == 40
            scroll = points.Scroll(pb.ScrollPoints(collection_name="c", limit=100), timeout=10)
            assert [p.id.num for p in scroll.result] == list(range(40))
            # A read that names another collection goes to the server: no answer now.
            lookup = pb.QueryPoints(
                collection_name="c",
                query=pb.Query(
                    recommend=pb.RecommendInput(positive=[pb.VectorInput(id=pb.PointId(num=1))])
                ),
                lookup_from=pb.LookupLocation(collection_name="c"),
                limit=3,
            )
            with pytest.raises(grpc.RpcError) as waited:
                points.Query(lookup, timeout=1)
            assert waited.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert len(points.Query(lookup, timeout=30).result) == 3


def test_grpc_keys_hold_on_the_workers(server_factory: Callable[..., ServerProcess]) -> None:
    keys = {"QDRANT__SERVICE__API_KEY": "secret", "QDRANT__SERVICE__READ_ONLY_API_KEY": "reader"}
    served = _with_workers(server_factory, 1, **keys)
    with _on_a_worker(served, "secret") as (points, collections):
        _create(collections, "c")
        points.Upsert(pb.UpsertPoints(collection_name="c", wait=True, points=[_point(1)]))
    with _on_a_worker(served, "reader") as (points, _):
        with _stopped(served):  # a read: checked and served by the worker
            count = points.Count(pb.CountPoints(collection_name="c", exact=True), timeout=10)
            assert count.result.count == 1
        with pytest.raises(grpc.RpcError) as denied:  # a write: the server says no
            points.Upsert(pb.UpsertPoints(collection_name="c", points=[_point(2)]), timeout=30)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with _on_a_worker(served, "wrong") as (points, collections):  # (List: refused, but connects)
        for call, request in (
            (points.Count, pb.CountPoints(collection_name="c")),
            (collections.Get, pb.GetCollectionInfoRequest(collection_name="c")),
        ):
            with pytest.raises(grpc.RpcError) as anonymous:
                call(request, timeout=30)
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_calls_a_worker_answered_are_counted(served: ServerProcess) -> None:
    with _on_a_worker(served) as (points, collections):
        _create(collections, "c")
        with _stopped(served):
            for _ in range(7):
                points.Count(pb.CountPoints(collection_name="c"), timeout=10)
    import httpx

    line = 'grpc_responses_total{endpoint="/qdrant.Points/Count",status="0"} 7'
    deadline = time.monotonic() + 10
    while line not in (metrics := httpx.get(f"{served.url}/metrics").text):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.2)


def test_a_call_the_client_cancels_frees_the_worker(served: ServerProcess) -> None:
    """Calls passed on to a stopped server, then cancelled by their client, do not hold the
    worker's threads: a read it serves itself is answered at once (there were 32 threads,
    and 40 cancelled calls kept them until the server answered)."""
    with _on_a_worker(served) as (points, collections):
        _create(collections, "c")
        with _stopped(served):
            info = pb.GetCollectionInfoRequest(collection_name="c")
            passed_on = [collections.Get.future(info) for _ in range(40)]
            time.sleep(0.5)
            for call in passed_on:
                call.cancel()
            count = points.Count(pb.CountPoints(collection_name="c", exact=True), timeout=5)
            assert count.result.count == 0


def test_names_that_walk_the_storage_are_the_servers_to_answer(served: ServerProcess) -> None:
    with _on_a_worker(served) as (points, collections):
        _create(collections, "c")
        for name in ("../collections/c", "./c", "c/", "c\x00"):
            with pytest.raises(grpc.RpcError) as refused:
                points.Count(pb.CountPoints(collection_name=name), timeout=30)
            code = refused.value.code()
            assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), name
        # A method no service has: UNIMPLEMENTED, as from the server (nothing kept for it).
        made_up = grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}")
        try:
            with pytest.raises(grpc.RpcError) as unknown:
                made_up.unary_unary("/qdrant.Points/Nope")(b"", timeout=30)
            assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
        finally:
            made_up.close()


def test_a_worker_that_cannot_reach_the_server_says_so_plainly(
    server_factory: Callable[..., ServerProcess], request: pytest.FixtureRequest
) -> None:
    """UNAVAILABLE, without grpc's own text, which names the server's Unix socket; and the
    calls go through again once the socket is back."""
    # (a short temporary directory of its own: the workers' sockets are found there; a
    # space and a non-ASCII letter in it, which grpc's text percent-encodes)
    temp = Path(tempfile.mkdtemp(dir="/tmp", prefix="wö rk"))
    request.addfinalizer(lambda: shutil.rmtree(temp, ignore_errors=True))
    served = _with_workers(server_factory, 1, TMPDIR=str(temp))
    (sock,) = temp.glob("tessera-read-workers-*/grpc.sock")
    away = sock.with_name("away.sock")
    sock.rename(away)
    with _on_a_worker(served) as (_, collections):
        with pytest.raises(grpc.RpcError) as refused:
            collections.List(pb.ListCollectionsRequest(), timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert refused.value.details() == "Service unavailable: the server process is not reachable"
        away.rename(sock)
        deadline = time.monotonic() + 60
        while True:
            try:
                collections.List(pb.ListCollectionsRequest(), timeout=30)
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() < deadline
                time.sleep(0.2)


def test_workers_start_under_a_temporary_directory_of_a_long_path(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """The workers' Unix sockets go under /tmp when the temporary directory's path would make
    them longer than a socket's path can be (the server failed to start)."""
    temp = tmp_path / ("t" * 90)
    temp.mkdir()
    served = _with_workers(server_factory, 1, TMPDIR=str(temp))
    assert served.proc is not None and len(_children(served.proc.pid)) == 1
    with _on_a_worker(served) as (points, collections):  # (passed on, and served here)
        _create(collections, "c")
        assert points.Count(pb.CountPoints(collection_name="c"), timeout=30).result.count == 0
