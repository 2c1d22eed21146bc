"""Per-request cost of the REST and gRPC read paths (and a 100-point upsert), one or more
source trees side by side.

Each tree given with `--repo` (default: this one) is served by `python -m tessera serve` run
in that tree (so a `git worktree` of an older commit is the "before" of a change), on the
same data: `--n` points of `--dim` dimensions (cosine, clustered, payloads `kw`, `rare`, `f`
as in `common.make_dataset`). The measurements run in rounds, the trees taking turns inside
each round, so a busy machine slows them alike; the table shows the median over rounds of
the mean microseconds per request, one client, sequential requests over one connection.

`--in-process` leaves HTTP, gRPC transport and threads out: each tree runs in a worker
process that calls the REST handlers (parse, collection, render, orjson envelope) and the
gRPC servicer methods (including the answer's serialization) directly, and the figure is
the worker's CPU time per request (`--wall` for wall-clock time), which shows the cost of
Tessera's own code with much less noise than a round trip through a busy machine. Set
OPENBLAS_NUM_THREADS=1 (and OMP_NUM_THREADS=1) so that CPU time is one thread's work.

    .venv/bin/python bench/request_path.py
    git worktree add /tmp/before HEAD~3
    .venv/bin/python bench/request_path.py --repo /tmp/before --repo .
    .venv/bin/python bench/request_path.py --repo /tmp/before --repo . --in-process
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
from qdrant_client import grpc as pb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, make_dataset, median, print_table

Call = Callable[[int], Any]


@contextlib.contextmanager
def serve(repo: Path, read_workers: int = 0) -> Iterator[tuple[str, int]]:
    """`python -m tessera serve` of `repo` on free ports and a fresh storage (`read_workers`:
    its `service.read_workers`, for a tree that has them); (REST URL, gRPC port)."""
    port, grpc_port = free_port(), free_port()
    storage = Path(tempfile.mkdtemp(prefix="tessera-reqpath-"))
    cmd = [
        sys.executable,
        "-m",
        "tessera",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--grpc-port",
        str(grpc_port),
        "--storage",
        str(storage),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    if read_workers:
        env["QDRANT__SERVICE__READ_WORKERS"] = str(read_workers)
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=repo, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"{repo}: server did not start:\n{log.read()[-2000:]!r}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield url, grpc_port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(storage, ignore_errors=True)


class Target:
    """One running server: a REST client, a gRPC stub and the request kinds to time."""

    def __init__(self, url: str, grpc_port: int, ds: Any, batch: int) -> None:
        # TCP_NODELAY: without it, a request whose headers and body go out in two writes
        # can wait for the server's delayed ACK (40 ms) depending on the sizes.
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        transport = httpx.HTTPTransport(socket_options=nodelay)
        self.http = httpx.Client(base_url=url, timeout=300, transport=transport)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        self.points = pb.PointsStub(self.channel)
        self.ds = ds
        self.queries = ds.queries.tolist()
        self.batch = batch
        self.grpc_queries = [
            pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=q))) for q in self.queries
        ]
        self.next_id = ds.n
        self.grpc_rows = [pb.Vector(data=row) for row in ds.vectors[:batch].tolist()]

    def rest(self, method: str, path: str, body: Any) -> Any:
        resp = self.http.request(method, "/collections/bench" + path, json=body)
        if resp.status_code != 200:
            raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
        return resp.json()["result"]

    def load(self) -> None:
        ds = self.ds
        self.rest("PUT", "", {"vectors": {"size": ds.dim, "distance": "Cosine"}})
        self.rest("PUT", "/index", {"field_name": "kw", "field_schema": "keyword"})
        for start in range(0, ds.n, 1000):
            stop = min(ds.n, start + 1000)
            body = {
                "batch": {
                    "ids": list(range(start, stop)),
                    "vectors": ds.vectors[start:stop].tolist(),
                    "payloads": ds.payloads(start, stop),
                }
            }
            self.http.put("/collections/bench/points?wait=true", json=body).raise_for_status()
        deadline = time.monotonic() + 600
        while self.rest("GET", "", None)["status"] != "green":
            if time.monotonic() > deadline:
                raise RuntimeError("optimizer did not finish")
            time.sleep(0.5)

    def calls(self) -> dict[str, Call]:
        q, gq = self.queries, self.grpc_queries
        n = len(q)
        rest, points = self.rest, self.points

        def rest_query(i: int) -> Any:
            return rest("POST", "/points/query", {"query": q[i % n], "limit": 10})

        def rest_query_payload(i: int) -> Any:
            body = {"query": q[i % n], "limit": 10, "with_payload": True}
            return rest("POST", "/points/query", body)

        def rest_query_filter(i: int) -> Any:
            body = {"query": q[i % n], "limit": 10, "filter": {"must": [_kw(i)]}}
            return rest("POST", "/points/query", body)

        def grpc_query_filter(i: int) -> Any:
            request = pb.QueryPoints(
                collection_name="bench", query=gq[i % n], limit=10, filter=_grpc_kw(i)
            )
            return points.Query(request)

        def grpc_upsert(i: int) -> Any:
            first = self.next_id
            self.next_id += self.batch
            rows = [
                pb.PointStruct(id=pb.PointId(num=first + k), vectors=pb.Vectors(vector=v))
                for k, v in enumerate(self.grpc_rows)
            ]
            return points.Upsert(pb.UpsertPoints(collection_name="bench", wait=True, points=rows))

        def rest_search(i: int) -> Any:
            return rest("POST", "/points/search", {"vector": q[i % n], "limit": 10})

        def rest_scroll(i: int) -> Any:
            body = {"limit": 100, "with_payload": True, "offset": (i * 97) % 19000}
            return rest("POST", "/points/scroll", body)

        def rest_retrieve(i: int) -> Any:
            ids = list(range((i * 97) % 19000, (i * 97) % 19000 + 100))
            return rest("POST", "/points", {"ids": ids, "with_payload": True})

        def rest_count(i: int) -> Any:
            return rest("POST", "/points/count", {"filter": {"must": [_kw(i)]}})

        def grpc_query(i: int) -> Any:
            return points.Query(pb.QueryPoints(collection_name="bench", query=gq[i % n], limit=10))

        def grpc_query_payload(i: int) -> Any:
            request = pb.QueryPoints(
                collection_name="bench",
                query=gq[i % n],
                limit=10,
                with_payload=pb.WithPayloadSelector(enable=True),
            )
            return points.Query(request)

        def grpc_scroll(i: int) -> Any:
            request = pb.ScrollPoints(
                collection_name="bench",
                limit=100,
                offset=pb.PointId(num=(i * 97) % 19000),
                with_payload=pb.WithPayloadSelector(enable=True),
            )
            return points.Scroll(request)

        def rest_upsert(i: int) -> Any:
            ids = list(range(self.next_id, self.next_id + self.batch))
            self.next_id += self.batch
            rows = self.ds.vectors[: self.batch]
            body = {"batch": {"ids": ids, "vectors": rows.tolist()}}
            return rest("PUT", "/points?wait=true", body)

        return {
            "REST query limit 10 + filter": rest_query_filter,
            "gRPC query limit 10 + filter": grpc_query_filter,
            "gRPC upsert 100": grpc_upsert,
            "REST query limit 10": rest_query,
            "REST query limit 10 + payload": rest_query_payload,
            "REST search limit 10": rest_search,
            "REST scroll 100 + payload": rest_scroll,
            "REST retrieve 100 + payload": rest_retrieve,
            "REST count kw filter": rest_count,
            "gRPC query limit 10": grpc_query,
            "gRPC query limit 10 + payload": grpc_query_payload,
            "gRPC scroll 100 + payload": grpc_scroll,
            "REST upsert 100": rest_upsert,
        }

    def close(self) -> None:
        self.http.close()
        self.channel.close()


def _kw(i: int) -> dict[str, Any]:
    return {"key": "kw", "match": {"value": f"k{i % 10}"}}


def _grpc_kw(i: int) -> pb.Filter:
    match = pb.Match(keyword=f"k{i % 10}")
    return pb.Filter(must=[pb.Condition(field=pb.FieldCondition(key="kw", match=match))])


# --------------------------------------------------------------------------- in process


def in_process_calls(ds: Any, storage: Path, batch: int) -> dict[str, Call]:
    """The request kinds as direct calls of the tree's handlers (imported from the tree
    this process runs in)."""
    import asyncio
    from types import SimpleNamespace

    import orjson
    from starlette.requests import Request

    from tessera.api import points_read as reads
    from tessera.api import points_write as writes
    from tessera.api import query_routes
    from tessera.api.envelope import ok
    from tessera.api.grpc_points import PointsService
    from tessera.engine import Engine

    engine = Engine(storage)
    engine.create_collection("bench", {"vectors": {"size": ds.dim, "distance": "Cosine"}})
    engine.create_field_index("bench", "kw", "keyword")
    for start in range(0, ds.n, 1000):
        stop = min(ds.n, start + 1000)
        body = {
            "batch": {
                "ids": list(range(start, stop)),
                "vectors": ds.vectors[start:stop].tolist(),
                "payloads": ds.payloads(start, stop),
            }
        }
        engine.upsert("bench", body)
    engine.wait_optimized("bench")
    app = SimpleNamespace(state=SimpleNamespace(toc=engine.toc))
    loop = asyncio.new_event_loop()
    service = PointsService(engine.toc)
    q = ds.queries.tolist()
    n = len(q)
    qa = ds.queries
    gq = [pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=v))) for v in q]
    next_id = [ds.n]

    def rest(handler: Any, body: Any, query: bytes = b"") -> bytes:
        raw = orjson.dumps(body)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "headers": [],
            "query_string": query,
            "path_params": {"collection_name": "bench"},
            "app": app,
        }
        started = time.perf_counter()
        call = loop.run_until_complete(handler(Request(scope, receive)))
        return bytes(ok(call(), started).body)

    def upsert(i: int) -> Any:
        ids = list(range(next_id[0], next_id[0] + batch))
        next_id[0] += batch
        body = {"batch": {"ids": ids, "vectors": ds.vectors[:batch].tolist()}}
        return rest(writes.upsert_points, body, b"wait=true")

    def grpc_scroll(i: int) -> Any:
        request = pb.ScrollPoints(
            collection_name="bench",
            limit=100,
            offset=pb.PointId(num=(i * 97) % (ds.n - 1000)),
            with_payload=pb.WithPayloadSelector(enable=True),
        )
        return service.Scroll(request, None).SerializeToString()

    def grpc_get(i: int) -> Any:
        first = (i * 97) % (ds.n - 1000)
        ids = [pb.PointId(num=x) for x in range(first, first + 100)]
        request = pb.GetPoints(
            collection_name="bench", ids=ids, with_payload=pb.WithPayloadSelector(enable=True)
        )
        return service.Get(request, None).SerializeToString()

    def grpc_query(i: int, payload: bool) -> Any:
        request = pb.QueryPoints(
            collection_name="bench",
            query=gq[i % n],
            limit=10,
            with_payload=pb.WithPayloadSelector(enable=payload),
        )
        return service.Query(request, None).SerializeToString()

    scroll_at = ds.n - 1000
    app_call = asgi_caller(storage, engine, loop)

    def app_query_filter(i: int) -> bytes:
        body = {"query": q[i % n], "limit": 10, "filter": {"must": [_kw(i)]}}
        return app_call("POST", "/collections/bench/points/query", body)

    def app_scroll(i: int) -> bytes:
        body = {"limit": 100, "with_payload": True, "offset": (i * 97) % scroll_at}
        return app_call("POST", "/collections/bench/points/scroll", body)

    def app_upsert(i: int) -> bytes:
        ids = list(range(next_id[0], next_id[0] + batch))
        next_id[0] += batch
        body = {"batch": {"ids": ids, "vectors": ds.vectors[:batch].tolist()}}
        return app_call("PUT", "/collections/bench/points", body, b"wait=true")

    kw_filters = [_grpc_kw(k) for k in range(10)]

    def grpc_query_filter(i: int) -> Any:
        request = pb.QueryPoints(
            collection_name="bench", query=gq[i % n], limit=10, filter=kw_filters[i % 10]
        )
        return service.Query(request, None).SerializeToString()

    grpc_rows = [
        pb.PointStruct(id=pb.PointId(num=0), vectors=pb.Vectors(vector=pb.Vector(data=row)))
        for row in ds.vectors[:batch].tolist()
    ]

    def grpc_upsert(i: int) -> Any:
        rows = []
        for row in grpc_rows:
            point = pb.PointStruct()
            point.CopyFrom(row)
            point.id.num = next_id[0]
            next_id[0] += 1
            rows.append(point)
        request = pb.UpsertPoints(collection_name="bench", wait=True, points=rows)
        return service.Upsert(request, None).SerializeToString()

    return {
        "app: REST query limit 10 + filter": app_query_filter,
        "app: REST upsert 100 wait": app_upsert,
        "app: REST scroll 100 + payload": app_scroll,
        "gRPC query limit 10 + filter": grpc_query_filter,
        "gRPC upsert 100 wait": grpc_upsert,
        "REST query limit 10": lambda i: rest(
            query_routes.query_points, {"query": q[i % n], "limit": 10}
        ),
        "REST query limit 10 + payload": lambda i: rest(
            query_routes.query_points, {"query": q[i % n], "limit": 10, "with_payload": True}
        ),
        "REST search limit 10": lambda i: rest(
            reads.search_points, {"vector": q[i % n], "limit": 10}
        ),
        "REST scroll 100 + payload": lambda i: rest(
            reads.scroll_points,
            {"limit": 100, "with_payload": True, "offset": (i * 97) % scroll_at},
        ),
        "REST scroll 100 + vectors": lambda i: rest(
            reads.scroll_points,
            {"limit": 100, "with_payload": False, "with_vector": True, "offset": i % scroll_at},
        ),
        "REST retrieve 100 + payload": lambda i: rest(
            reads.retrieve_points,
            {"ids": list(range(i % scroll_at, i % scroll_at + 100)), "with_payload": True},
        ),
        "REST count kw filter": lambda i: rest(reads.count_points, {"filter": {"must": [_kw(i)]}}),
        "gRPC query limit 10": lambda i: grpc_query(i, False),
        "gRPC query limit 10 + payload": lambda i: grpc_query(i, True),
        "gRPC scroll 100 + payload": grpc_scroll,
        "gRPC get 100 + payload": grpc_get,
        "engine search limit 10": lambda i: engine.search("bench", qa[i % n], 10),
        "engine search limit 10 + filter": lambda i: engine.search(
            "bench", qa[i % n], 10, {"must": [_kw(i)]}
        ),
        "REST upsert 100": upsert,
    }


def asgi_caller(storage: Path, engine: Any, loop: Any) -> Callable[..., bytes]:
    """A call of the whole REST app (its middleware, router, endpoint wrapper and worker
    thread hop) over ASGI, without a socket: `(method, path, body, query) -> body bytes`."""
    import orjson

    from tessera.api.app import build_app

    app = build_app(storage)
    app.state.toc = engine.toc  # what the lifespan would open

    def call(method: str, path: str, body: Any, query: bytes = b"") -> bytes:
        raw = orjson.dumps(body)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query,
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 6333),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        loop.run_until_complete(app(scope, receive, send))
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {b''.join(chunks)[:300]!r}")
        return b"".join(chunks)

    return call


def worker(args: argparse.Namespace) -> None:
    """One tree, in process: load, answer `ready`, then time `KIND<TAB>FIRST<TAB>COUNT`
    lines from stdin, one `WALL CPU` line (seconds) each."""
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=500)
    scratch = tempfile.TemporaryDirectory(prefix="tessera-reqpath-", ignore_cleanup_errors=True)
    with scratch as storage:
        calls = in_process_calls(ds, Path(storage), args.upsert_batch)
        print("ready " + "\t".join(calls), flush=True)
        for line in sys.stdin:
            kind, first, count = line.rstrip("\n").split("\t")
            call = calls[kind]
            start = int(first)
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(start, start + int(count)):
                call(i)
            print(time.perf_counter() - started, time.process_time() - cpu, flush=True)


def profile(args: argparse.Namespace) -> None:
    """Profile one in-process kind: the functions by their own time, then by the time
    below them (every thread, the worker thread of a REST request included, with yappi)."""
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=500)
    with tempfile.TemporaryDirectory(prefix="tessera-reqpath-") as storage:
        calls = in_process_calls(ds, Path(storage), args.upsert_batch)
        call = calls[args.profile]
        for i in range(50):
            call(i)
        if args.profiler == "none":  # under an outside sampler (py-spy record)
            for i in range(args.requests):
                call(i)
            return
        try:
            import yappi
        except ImportError:
            yappi = None
        if yappi is None or args.profiler == "cprofile":
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            for i in range(args.requests):
                call(i)
            prof.disable()
            stats = pstats.Stats(prof)
            stats.sort_stats("tottime").print_stats(35)
            stats.sort_stats("cumulative").print_stats(45)
            if os.environ.get("CALLERS"):
                stats.print_callers(os.environ["CALLERS"])
            return
        yappi.set_clock_type("cpu")
        yappi.start()
        cpu = time.process_time()
        for i in range(args.requests):
            call(i)
        cpu = time.process_time() - cpu
        yappi.stop()
        print(f"{args.profile}: {cpu / args.requests * 1e6:.0f} us CPU per request (profiled)")
        funcs = yappi.get_func_stats()
        for key in ("tsub", "ttot"):
            funcs.sort(key, "desc")
            print(f"--- by {key} (us per request)")
            for f in list(funcs)[:40]:
                own, total = f.tsub / args.requests * 1e6, f.ttot / args.requests * 1e6
                where = f"{Path(f.module).name}:{f.lineno}"
                print(f"{own:8.1f} {total:8.1f} {f.ncall / args.requests:6.1f}  {f.name} {where}")


class InProcess:
    """A worker process running in one tree."""

    def __init__(self, repo: Path, args: argparse.Namespace) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        env["PYTHONPATH"] = str(repo)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker"]
        cmd += ["--n", str(args.n), "--dim", str(args.dim)]
        cmd += ["--upsert-batch", str(args.upsert_batch)]
        self.proc = subprocess.Popen(
            cmd, cwd=repo, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if not ready.startswith("ready "):
            raise RuntimeError(f"{repo}: the worker did not start")
        self.kinds = ready.rstrip("\n")[len("ready ") :].split("\t")

    def time(self, kind: str, first: int, count: int) -> tuple[float, float]:
        """(wall, cpu) seconds for `count` requests of `kind`."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{kind}\t{first}\t{count}\n")
        self.proc.stdin.flush()
        wall, cpu = self.proc.stdout.readline().split()
        return float(wall), float(cpu)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", action="append", type=Path, help="a source tree (repeatable)")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--requests", type=int, default=2000, help="per kind and tree")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--upsert-batch", type=int, default=100)
    parser.add_argument("--in-process", action="store_true", help="no HTTP / gRPC transport")
    parser.add_argument("--wall", action="store_true", help="in process: wall-clock time")
    parser.add_argument(
        "--only", action="append", help="in process: only the kinds containing this (repeatable)"
    )
    parser.add_argument(
        "--profile",
        metavar="KIND",
        help="in this process and tree: profile --requests calls of one in-process kind "
        "(yappi over all threads, CPU clock, if installed; else cProfile)",
    )
    parser.add_argument(
        "--profiler",
        choices=("yappi", "cprofile", "none"),
        default="yappi",
        help="with --profile: none runs the calls unprofiled (for py-spy record -f raw)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.profile:
        profile(args)
        return
    repos = [r.resolve() for r in (args.repo or [Path(__file__).resolve().parent.parent])]
    per_round = max(1, args.requests // args.rounds)
    if args.in_process:
        kinds, times = measure_in_process(repos, args, per_round)
    else:
        kinds, times = measure_servers(repos, args, per_round)
    names = [f"{i}: median / min" for i in range(len(repos))]
    headers = ["request (us)", *names]
    if len(repos) > 1:
        headers += ["last / first (median)", "(min)"]
    rows = []
    for kind in kinds:
        medians = [median(times[(t, kind)]) for t in range(len(repos))]
        minima = [min(times[(t, kind)]) for t in range(len(repos))]
        row: list[Any] = [kind, *(f"{a:.0f} / {b:.0f}" for a, b in zip(medians, minima))]
        if len(repos) > 1:
            row += [f"{medians[-1] / medians[0]:.3f}", f"{minima[-1] / minima[0]:.3f}"]
        rows.append(row)
    for i, repo in enumerate(repos):
        print(f"{i}: {repo}")
    mode = "over HTTP / gRPC, wall time"
    if args.in_process:
        mode = "in process, " + ("wall time" if args.wall else "CPU time")
    title = f"{mode}, n={args.n} dim={args.dim}, {args.rounds} rounds of {per_round}"
    print_table(headers, rows, title)


Times = dict[tuple[int, str], list[float]]


def measure_in_process(
    repos: list[Path], args: argparse.Namespace, per_round: int
) -> tuple[list[str], Times]:
    workers = [InProcess(repo, args) for repo in repos]
    try:
        kinds = [k for k in workers[0].kinds if all(k in w.kinds for w in workers)]
        if args.only:
            kinds = [k for k in kinds if any(part in k for part in args.only)]
        times: Times = {}
        # Reads first, writes after: upserts grow the collection and wake the optimizer,
        # whose threads' CPU time would land on whatever is measured next. Fewer writes
        # per round (a fifth), for the same reason.
        reads = [k for k in kinds if "upsert" not in k]
        writes = [k for k in kinds if "upsert" in k]
        for phase, count in ((reads, per_round), (writes, max(1, per_round // 5))):
            for kind in phase:  # warm up
                for w in workers:
                    w.time(kind, 0, min(20, count))
            for r in range(args.rounds):
                for kind in phase:
                    for t, w in enumerate(workers):
                        wall, cpu = w.time(kind, r * count, count)
                        elapsed = wall if args.wall else cpu
                        times.setdefault((t, kind), []).append(elapsed / count * 1e6)
        return reads + writes, times
    finally:
        for w in workers:
            w.close()


def measure_servers(
    repos: list[Path], args: argparse.Namespace, per_round: int
) -> tuple[list[str], Times]:
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=500)
    with contextlib.ExitStack() as stack:
        targets = []
        for repo in repos:
            url, grpc_port = stack.enter_context(serve(repo))
            target = Target(url, grpc_port, ds, args.upsert_batch)
            stack.callback(target.close)
            target.load()
            targets.append(target)
        calls = [t.calls() for t in targets]
        kinds = list(calls[0])
        if args.only:
            kinds = [k for k in kinds if any(part in k for part in args.only)]
        times: dict[tuple[int, str], list[float]] = {}
        for kind in kinds:
            for c in calls:  # warm up
                for i in range(min(50, per_round)):
                    c[kind](i)
        for r in range(args.rounds):
            for kind in kinds:
                for t, c in enumerate(calls):
                    call = c[kind]
                    started = time.perf_counter()
                    for i in range(r * per_round, (r + 1) * per_round):
                        call(i)
                    elapsed = time.perf_counter() - started
                    times.setdefault((t, kind), []).append(elapsed / per_round * 1e6)
    return kinds, times


if __name__ == "__main__":
    main()
