"""REST server capacity with `wrk` (Debian: `apt-get install wrk`), one or more source trees
side by side on the same data.

Each tree (`--repo`, default this one) is served by `python -m tessera serve` in that tree
and loaded as in `request_path.py` (`--n` points of `--dim` dimensions, a `kw` keyword
index). Then, in rounds with the trees taking turns, wrk runs `--duration` seconds with
`--connections` connections against: `GET /` (what HTTP alone serves), a query with limit
10 and a `kw` filter, and a scroll of 100 points with payload. The table shows the median
requests/s over rounds, and the query's capacity against the in-process engine's
single-thread QPS for the same queries (target 2 of issue 13: >= 1.0x).

Where `ghz` is installed (`go install github.com/bojand/ghz/cmd/ghz@latest`; found on PATH
or in ~/go/bin), the same filtered query is also sent over gRPC (`qdrant.Points/Query`, the
same `--connections` concurrent calls over `--grpc-connections` connections (default 4),
`--duration` seconds), the
messages described by qdrant-client's own protobuf descriptors: target 2 asks the same of
gRPC. Calls still in flight when ghz stops are reported by it as UNAVAILABLE ("transport is
closing") and are not counted.

    .venv/bin/python bench/wrk_capacity.py
    .venv/bin/python bench/wrk_capacity.py --repo /tmp/before --repo .
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_dataset, median, print_table
from request_path import Target, serve

LUA = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
bodies = {{{bodies}}}
counter = 0
request = function()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  if body == "" then return wrk.format(nil, "{path}") end
  return wrk.format(nil, "{path}", nil, body)
end
"""


def lua_script(folder: Path, name: str, method: str, path: str, bodies: list[Any]) -> Path:
    quoted = ",".join(json.dumps("" if b is None else json.dumps(b)) for b in bodies)
    script = folder / f"{name}.lua"
    script.write_text(LUA.format(method=method, path=path, bodies=quoted))
    return script


# With `tolerate_errors`, wrk's count of non-2xx answers is shown, not fatal (a rare failure
# under load is reported). This script also writes each such answer, for `--show-errors`:
# a Lua `response` callback per answer makes wrk itself the bottleneck (~900 requests/s
# here), so it is off by default.
ERRORS_LUA = """
response = function(status, headers, body)
  if status ~= 200 then io.write("STATUS " .. status .. " " .. body .. "\\n") end
end
"""


def run_wrk(
    url: str, script: Path, args: argparse.Namespace, tolerate_errors: bool = False
) -> float:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    out = subprocess.run(
        [*cmd, "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if found is None or (errors is not None and not tolerate_errors):
        raise RuntimeError(f"wrk: {out}")
    if errors is not None:
        print(f"{errors.group(1)} non-2xx answers", file=sys.stderr)
    failed = [line for line in out.splitlines() if line.startswith("STATUS")]
    if failed:
        print(f"{len(failed)} non-2xx answers, e.g.:", *failed[:3], sep="\n  ", file=sys.stderr)
    return float(found.group(1))


def ghz_path() -> str | None:
    found = shutil.which("ghz")
    home = Path.home() / "go" / "bin" / "ghz"
    return found or (str(home) if home.exists() else None)


def protoset(folder: Path) -> Path:
    """qdrant-client's protobuf descriptors (the `Points` and `Qdrant` services and what they
    import) as a descriptor set file, which ghz reads instead of .proto sources."""
    from google.protobuf import descriptor_pb2
    from qdrant_client.grpc import points_service_pb2, qdrant_pb2

    files = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(descriptor: Any) -> None:
        if descriptor.name in seen:
            return
        for dependency in descriptor.dependencies:
            add(dependency)
        seen.add(descriptor.name)
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor.CopyToProto(proto)
        files.file.append(proto)

    add(points_service_pb2.DESCRIPTOR)
    add(qdrant_pb2.DESCRIPTOR)
    path = folder / "qdrant.protoset"
    path.write_bytes(files.SerializeToString())
    return path


def filtered_queries(queries: list[list[float]]) -> list[dict[str, Any]]:
    """The filtered query row's REST bodies (limit 10, a `kw` match), of the first 100
    queries; `steady_writer.py` and `processes_ceiling.py` send the same."""
    return [
        {
            "query": q,
            "limit": 10,
            "filter": {"must": [{"key": "kw", "match": {"value": f"k{i % 10}"}}]},
        }
        for i, q in enumerate(queries[:100])
    ]


def grpc_queries(queries: list[list[float]]) -> list[dict[str, Any]]:
    """The REST rows' filtered queries as `QueryPoints` messages (protobuf JSON)."""
    return [
        {
            "collection_name": "bench",
            "query": {"nearest": {"dense": {"data": q}}},
            "limit": 10,
            "filter": {"must": [{"field": {"key": "kw", "match": {"keyword": f"k{i % 10}"}}}]},
        }
        for i, q in enumerate(queries)
    ]


def run_ghz(ghz: str, port: int, descriptors: Path, data: Path, args: argparse.Namespace) -> float:
    """Completed calls per second of `qdrant.Points/Query` over gRPC; any status but OK (and
    UNAVAILABLE or CANCELED for the calls cut off at the end) fails the run."""
    cmd = [ghz, "--insecure", "--protoset", str(descriptors), "--call", "qdrant.Points/Query"]
    cmd += ["-D", str(data), "-c", str(args.connections)]
    cmd += ["--connections", str(args.grpc_connections)]
    cmd += ["-z", f"{args.duration}s", "-O", "json", f"127.0.0.1:{port}"]
    report = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    codes = dict(report.get("statusCodeDistribution") or {})
    ok = codes.pop("OK", 0)
    codes.pop("Unavailable", None)
    codes.pop("Canceled", None)  # how ghz 0.93 reports the calls it cuts off at the end
    if codes or not ok:
        raise RuntimeError(f"ghz: {codes or 'no call answered OK'}")
    # ghz's rate counts every call it made: the OK ones over the same time.
    return float(report["rps"]) * ok / float(report["count"])


def engine_qps(ds: Any, queries: int) -> float:
    """Single-thread QPS of the in-process engine (this tree) for the filtered query."""
    from tessera.engine import Engine

    with tempfile.TemporaryDirectory(prefix="tessera-wrk-") as storage:
        engine = Engine(storage)
        engine.create_collection("bench", {"vectors": {"size": ds.dim, "distance": "Cosine"}})
        engine.create_field_index("bench", "kw", "keyword")
        for start in range(0, ds.n, 1000):
            stop = min(ds.n, start + 1000)
            engine.upsert_arrays(
                "bench", list(range(start, stop)), ds.vectors[start:stop], ds.payloads(start, stop)
            )
        engine.wait_optimized("bench")
        filters = [{"must": [{"key": "kw", "match": {"value": f"k{k}"}}]} for k in range(10)]
        for i in range(50):
            engine.search("bench", ds.queries[i % len(ds.queries)], 10, filters[i % 10])
        started = time.perf_counter()
        for i in range(queries):
            engine.search("bench", ds.queries[i % len(ds.queries)], 10, filters[i % 10])
        qps = queries / (time.perf_counter() - started)
        engine.close()
        return qps


def add_wrk_options(parser: argparse.ArgumentParser) -> None:
    """The options every wrk benchmark here takes: trees, data, and the wrk runs."""
    parser.add_argument("--repo", action="append", type=Path, help="a source tree (repeatable)")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--show-errors", action="store_true", help="print non-2xx answers (slows wrk down)"
    )
    parser.add_argument(
        "--grpc-connections",
        type=int,
        default=4,
        help="ghz's connections (the calls are spread over them; with read workers the kernel "
        "spreads the connections over the processes: give it enough to spread)",
    )
    parser.add_argument(
        "--read-workers",
        type=int,
        default=0,
        help="the servers' service.read_workers (processes serving point reads beside each)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_wrk_options(parser)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    repos = [r.resolve() for r in (args.repo or [Path(__file__).resolve().parent.parent])]
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=500)
    queries = ds.queries.tolist()
    kinds = {
        "GET /": ("GET", "/", [None]),
        "query limit 10 + kw filter": (
            "POST",
            "/collections/bench/points/query",
            filtered_queries(queries),
        ),
        "scroll 100 + payload": (
            "POST",
            "/collections/bench/points/scroll",
            [{"limit": 100, "with_payload": True, "offset": i * 97} for i in range(100)],
        ),
    }
    ghz = ghz_path()
    grpc_kind = "gRPC query limit 10 + kw filter"
    times: dict[tuple[int, str], list[float]] = {}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tessera-wrk-")))
        urls, grpc_ports = [], []
        for repo in repos:
            url, grpc_port = stack.enter_context(serve(repo, args.read_workers))
            target = Target(url, grpc_port, ds, 100)
            stack.callback(target.close)
            target.load()
            urls.append(url)
            grpc_ports.append(grpc_port)
        if ghz is not None:
            descriptors = protoset(folder)
            messages = folder / "grpc-queries.json"
            messages.write_text(json.dumps(grpc_queries(queries[:100])))
        scripts = {
            kind: lua_script(folder, f"k{i}", method, path, bodies)
            for i, (kind, (method, path, bodies)) in enumerate(kinds.items())
        }
        for _ in range(args.rounds):
            for kind, script in scripts.items():
                for t, url in enumerate(urls):
                    times.setdefault((t, kind), []).append(run_wrk(url, script, args))
            if ghz is not None:
                for t, port in enumerate(grpc_ports):
                    rate = run_ghz(ghz, port, descriptors, messages, args)
                    times.setdefault((t, grpc_kind), []).append(rate)
    if ghz is None:
        print("ghz is not installed: no gRPC row (see the module's docstring)", file=sys.stderr)
    engine = engine_qps(ds, 2000)
    headers = ["requests/s", *(f"{i}" for i in range(len(repos)))]
    if len(repos) > 1:
        headers.append("last / first")
    rows = []
    for kind in [*kinds, *([grpc_kind] if ghz is not None else [])]:
        figures = [median(times[(t, kind)]) for t in range(len(repos))]
        row: list[Any] = [kind, *(f"{f:,.0f}" for f in figures)]
        if len(repos) > 1:
            row.append(f"{figures[-1] / figures[0]:.2f}")
        rows.append(row)
    for kind in ("query limit 10 + kw filter", grpc_kind):
        if (0, kind) not in times:
            continue
        query = [median(times[(t, kind)]) for t in range(len(repos))]
        name = "gRPC query" if kind == grpc_kind else "query"
        row = [f"{name} / engine single-thread QPS", *(f"{q / engine:.2f}x" for q in query)]
        rows.append(row + ([""] if len(repos) > 1 else []))
    for i, repo in enumerate(repos):
        print(f"{i}: {repo}")
    print(f"engine (this tree, in process, 1 thread): {engine:,.0f} QPS for the filtered query")
    title = (
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, n={args.n} "
        f"dim={args.dim}, median of {args.rounds} rounds"
        + (f", service.read_workers={args.read_workers}" if args.read_workers else "")
    )
    print_table(headers, rows, title)


if __name__ == "__main__":
    main()
