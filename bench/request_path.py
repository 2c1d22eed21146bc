"""Per-request cost of the REST and gRPC read paths (and a 100-point upsert), one or more
source trees side by side.

Each tree given with `--repo` (default: this one) is served by `python -m tessera serve` run
in that tree (so a `git worktree` of an older commit is the "before" of a change), on the
same data: `--n` points of `--dim` dimensions (cosine, clustered, payloads `kw`, `rare`, `f`
as in `common.make_dataset`). The measurements run in rounds, the trees taking turns inside
each round, so a busy machine slows them alike; the table shows the median over rounds of
the mean microseconds per request, one client, sequential requests over one connection.

    .venv/bin/python bench/request_path.py
    git worktree add /tmp/before HEAD~3
    .venv/bin/python bench/request_path.py --repo /tmp/before --repo .
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
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
def serve(repo: Path) -> Iterator[tuple[str, int]]:
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
        self.http = httpx.Client(base_url=url, timeout=300)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        self.points = pb.PointsStub(self.channel)
        self.ds = ds
        self.queries = ds.queries.tolist()
        self.batch = batch
        self.grpc_queries = [
            pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=q))) for q in self.queries
        ]
        self.next_id = ds.n

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", action="append", type=Path, help="a source tree (repeatable)")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--requests", type=int, default=2000, help="per kind and tree")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--upsert-batch", type=int, default=100)
    args = parser.parse_args()
    repos = [r.resolve() for r in (args.repo or [Path(__file__).resolve().parent.parent])]
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=500)
    per_round = max(1, args.requests // args.rounds)
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
    headers = ["request (us)", *(str(r) for r in repos)]
    if len(repos) > 1:
        headers.append("last / first")
    rows = []
    for kind in kinds:
        figures = [median(times[(t, kind)]) for t in range(len(repos))]
        row: list[Any] = [kind, *(f"{f:.0f}" for f in figures)]
        if len(repos) > 1:
            row.append(f"{figures[-1] / figures[0]:.3f}")
        rows.append(row)
    print_table(headers, rows, f"n={args.n} dim={args.dim}, {args.rounds} rounds of {per_round}")


if __name__ == "__main__":
    main()
