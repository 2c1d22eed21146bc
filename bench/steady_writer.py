"""Search under a steady writer (issue 13, target 3), one or more source trees side by side.

Each tree (`--repo`, default this one) serves `--n` points of `--dim` dimensions with a `kw`
keyword index (loaded as in `request_path.py`). Per round, trees taking turns:
1. `wrk` alone (`--connections`, `--duration` s): the filtered query (limit 10, `kw` filter)
   capacity, requests/s;
2. the same `wrk` run while one client sends 10-point upserts (`wait=true`) back to back
   over its own connection: the query capacity then, and the upserts' latency;
3. the writer alone for as long: its latency without readers.
Targets: capacity under the writer >= 70% of alone; upsert p99 <= 10 ms under the readers.
Figures are medians over rounds (capacity) and over all upserts of all rounds (latency).

The writer is a Python client (httpx) by default; `--writer wrk` sends the same upserts from
`wrk -c1` (a Lua script numbering the points), a client that does not itself wait for a core
the way a Python process beside 16 busy connections does. Every acknowledged upsert has been
`fdatasync`ed (Tessera's promise, `wait=true` or not), so the table also prints the disk's own
floor: `fdatasync` after a 6 KiB append (about one 10-point upsert's WAL record), timed in a
loop beside nothing else on the same file system before the rounds.

    .venv/bin/python bench/steady_writer.py
    .venv/bin/python bench/steady_writer.py --repo /tmp/before --repo .
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_dataset, median, print_table
from request_path import Target, serve
from wrk_capacity import ERRORS_LUA, add_wrk_options, filtered_queries, lua_script, run_wrk


def run_counting(url: str, script: Path, args: argparse.Namespace) -> float:
    """wrk's requests/s; non-2xx answers counted and shown, not fatal: a run under a writer
    is where a rare failure would show."""
    return run_wrk(url, script, args, tolerate_errors=True)


class Writer:
    """10-point upserts with `wait=true`, one after the other, until stopped."""

    def __init__(self, url: str, dim: int, first_id: int) -> None:
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        self.http = httpx.Client(
            base_url=url, timeout=60, transport=httpx.HTTPTransport(socket_options=nodelay)
        )
        self.rng = np.random.default_rng(7)
        self.dim = dim
        self.next_id = first_id
        self.took: list[float] = []
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            ids = list(range(self.next_id, self.next_id + 10))
            self.next_id += 10
            vectors = self.rng.normal(size=(10, self.dim)).astype(np.float32).tolist()
            body = {"batch": {"ids": ids, "vectors": vectors}}
            started = time.perf_counter()
            answer = self.http.put("/collections/bench/points?wait=true", json=body)
            self.took.append(time.perf_counter() - started)
            answer.raise_for_status()

    def for_seconds(self, seconds: float, alongside: Any = None) -> list[float]:
        """Write for `seconds` (while `alongside()` runs, when given); the latencies."""
        self.took, self._stop = [], threading.Event()
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        result = alongside() if alongside is not None else time.sleep(seconds)
        self._stop.set()
        thread.join()
        self.last = result
        return self.took


# 10-point upserts from wrk: the vectors of 20 bodies drawn once, the ids counted up per request.
WRITER_LUA = """
local vectors = {{{vectors}}}
local next_id = {first_id}
wrk.method = "PUT"
wrk.path = "/collections/bench/points?wait=true"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local ids = {{}}
  for i = 1, 10 do ids[i] = tostring(next_id + i - 1) end
  next_id = next_id + 10
  local body = '{{"batch":{{"ids":[' .. table.concat(ids, ",") .. '],"vectors":'
    .. vectors[(next_id / 10) % #vectors + 1] .. '}}}}'
  return wrk.format(nil, nil, nil, body)
end
"""


class WrkWriter:
    """The same upserts as `Writer`, sent by `wrk -t1 -c1 --latency`: its p50 / p99."""

    def __init__(self, url: str, dim: int, first_id: int, folder: Path) -> None:
        rng = np.random.default_rng(7)
        bodies = [
            json.dumps(rng.normal(size=(10, dim)).astype(np.float32).tolist()) for _ in range(20)
        ]
        self.url = url
        self.next_id = first_id
        self.folder = folder
        self.vectors = ",".join(json.dumps(b) for b in bodies)  # Lua reads JSON strings
        self.last: Any = None

    def for_seconds(self, seconds: float, alongside: Any = None) -> tuple[float, float, float]:
        """Write for `seconds` (while `alongside()` runs): (p50 ms, p99 ms, upserts/s)."""
        script = self.folder / f"writer-{self.next_id}.lua"
        script.write_text(WRITER_LUA.format(vectors=self.vectors, first_id=self.next_id))
        self.next_id += 10_000_000  # never the same ids twice
        cmd = ["wrk", "-t1", "-c1", f"-d{seconds:.0f}s", "--latency", "-s", str(script), self.url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.last = alongside() if alongside is not None else None
        out, _ = proc.communicate()
        return _wrk_ms(out, "50%"), _wrk_ms(out, "99%"), _wrk_rate(out)


def _wrk_ms(out: str, label: str) -> float:
    found = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\b", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk: {out}")
    return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]


def _wrk_rate(out: str) -> float:
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk writer: {out}")
    return float(found.group(1))


def fdatasync_floor(folder: Path, seconds: float = 3.0) -> tuple[float, float]:
    """The disk's own p50 / p99 (ms) of `fdatasync` after a 6 KiB append, on `folder`'s file
    system: what every acknowledged write waits for at least."""
    path = folder / "fdatasync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, 64 << 20)
        block, offset, took = os.urandom(6144), 0, []
        until = time.monotonic() + seconds
        while time.monotonic() < until and offset + len(block) <= 64 << 20:
            os.pwrite(fd, block, offset)
            offset += len(block)
            started = time.perf_counter()
            os.fdatasync(fd)
            took.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return pct(took, 50), pct(took, 99)


def settle(url: str, n: int, timeout: float = 120.0) -> None:
    """Wait for the optimizer to index the loaded points: a build running during the first
    rounds would take the core the readers measure (it starts once the load has paused)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = httpx.get(f"{url}/collections/bench", timeout=10).json()["result"]
        if info["status"] == "green" and int(info.get("indexed_vectors_count") or 0) >= n:
            return
        time.sleep(0.5)
    print(f"{url}: the points were not all indexed after {timeout:.0f} s; measuring anyway")


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p)) * 1000.0 if values else float("nan")


def latency_cells(
    python_took: list[float], wrk_runs: list[tuple[float, float, float]], seconds: float
) -> tuple[str, str]:
    """("p50 / p99 ms", "upserts/s"): over every upsert (Python writer), or the medians of
    wrk's per-run figures (`--writer wrk`)."""
    if wrk_runs:
        p50 = median([r[0] for r in wrk_runs])
        p99 = median([r[1] for r in wrk_runs])
        return f"{p50:.1f} / {p99:.1f}", f"{median([r[2] for r in wrk_runs]):.0f}"
    return f"{pct(python_took, 50):.1f} / {pct(python_took, 99):.1f}", (
        f"{len(python_took) / seconds:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_wrk_options(parser)
    parser.add_argument(
        "--writer",
        choices=("python", "wrk"),
        default="python",
        help="who sends the upserts: an httpx client (default) or wrk -c1",
    )
    args = parser.parse_args()
    repos = [r.resolve() for r in (args.repo or [Path(__file__).resolve().parent.parent])]
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=500)
    bodies = filtered_queries(ds.queries.tolist())
    alone: dict[int, list[float]] = {}
    loaded: dict[int, list[float]] = {}
    under: dict[int, list[float]] = {}
    quiet: dict[int, list[float]] = {}
    under_wrk: dict[int, list[tuple[float, float, float]]] = {}
    quiet_wrk: dict[int, list[tuple[float, float, float]]] = {}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tessera-sw-")))
        floor = fdatasync_floor(folder)
        script = lua_script(folder, "query", "POST", "/collections/bench/points/query", bodies)
        if args.show_errors:
            script.write_text(script.read_text() + ERRORS_LUA)
        writers: list[Writer | WrkWriter] = []
        urls = []
        for repo in repos:
            url, grpc_port = stack.enter_context(serve(repo, args.read_workers))
            target = Target(url, grpc_port, ds, 100)
            stack.callback(target.close)
            target.load()
            settle(url, args.n)
            urls.append(url)
            if args.writer == "wrk":
                writers.append(WrkWriter(url, args.dim, 10_000_000, folder))
            else:
                writers.append(Writer(url, args.dim, 10_000_000))
        for _ in range(args.rounds):
            for t, url in enumerate(urls):
                writer = writers[t]
                alone.setdefault(t, []).append(run_counting(url, script, args))
                took = writer.for_seconds(
                    args.duration, lambda url=url: run_counting(url, script, args)
                )
                loaded.setdefault(t, []).append(writer.last)
                quiet_took = writer.for_seconds(args.duration)
                if isinstance(writer, WrkWriter):
                    under_wrk.setdefault(t, []).append(took)  # type: ignore[arg-type]
                    quiet_wrk.setdefault(t, []).append(quiet_took)  # type: ignore[arg-type]
                else:
                    under.setdefault(t, []).extend(took)  # type: ignore[arg-type]
                    quiet.setdefault(t, []).extend(quiet_took)  # type: ignore[arg-type]
    rows = []
    seconds = args.duration * args.rounds
    for t in range(len(repos)):
        base, with_writer = median(alone[t]), median(loaded[t])
        latency, rate = latency_cells(under.get(t, []), under_wrk.get(t, []), seconds)
        quiet_latency, _ = latency_cells(quiet.get(t, []), quiet_wrk.get(t, []), seconds)
        rows.append(
            [
                str(t),
                f"{base:,.0f}",
                f"{with_writer:,.0f}",
                f"{with_writer / base:.2f}",
                latency,
                rate,
                quiet_latency,
            ]
        )
    for i, repo in enumerate(repos):
        print(f"{i}: {repo}")
    print(
        f"\n{args.n} x {args.dim}, wrk -c{args.connections} {args.duration}s x {args.rounds} "
        f"rounds; a writer ({args.writer}) of 10-point upserts (wait=true) back to back\n"
    )
    print_table(
        [
            "tree",
            "query req/s alone",
            "with writer",
            "ratio (>= 0.70)",
            "upsert p50 / p99 ms (<= 10)",
            "upserts/s",
            "upsert alone p50 / p99",
        ],
        rows,
    )
    print(
        f"\nthe disk's floor: fdatasync after a 6 KiB append, p50 / p99 "
        f"{floor[0]:.2f} / {floor[1]:.2f} ms (alone, before the rounds)"
    )


if __name__ == "__main__":
    main()
