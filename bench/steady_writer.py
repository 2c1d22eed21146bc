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

    .venv/bin/python bench/steady_writer.py
    .venv/bin/python bench/steady_writer.py --repo /tmp/before --repo .
"""

from __future__ import annotations

import argparse
import contextlib
import socket
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
from wrk_capacity import ERRORS_LUA, add_wrk_options, lua_script, run_wrk


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_wrk_options(parser)
    args = parser.parse_args()
    repos = [r.resolve() for r in (args.repo or [Path(__file__).resolve().parent.parent])]
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=500)
    bodies = [
        {
            "query": q,
            "limit": 10,
            "filter": {"must": [{"key": "kw", "match": {"value": f"k{i % 10}"}}]},
        }
        for i, q in enumerate(ds.queries.tolist()[:100])
    ]
    alone: dict[int, list[float]] = {}
    loaded: dict[int, list[float]] = {}
    under: dict[int, list[float]] = {}
    quiet: dict[int, list[float]] = {}
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tessera-sw-")))
        script = lua_script(folder, "query", "POST", "/collections/bench/points/query", bodies)
        if args.show_errors:
            script.write_text(script.read_text() + ERRORS_LUA)
        writers = []
        urls = []
        for repo in repos:
            url, grpc_port = stack.enter_context(serve(repo))
            target = Target(url, grpc_port, ds, 100)
            stack.callback(target.close)
            target.load()
            settle(url, args.n)
            urls.append(url)
            writers.append(Writer(url, args.dim, 10_000_000))
        for _ in range(args.rounds):
            for t, url in enumerate(urls):
                writer = writers[t]
                alone.setdefault(t, []).append(run_counting(url, script, args))
                took = writer.for_seconds(
                    args.duration, lambda url=url: run_counting(url, script, args)
                )
                loaded.setdefault(t, []).append(writer.last)
                under.setdefault(t, []).extend(took)
                quiet.setdefault(t, []).extend(writer.for_seconds(args.duration))
    rows = []
    for t in range(len(repos)):
        base, with_writer = median(alone[t]), median(loaded[t])
        rows.append(
            [
                str(t),
                f"{base:,.0f}",
                f"{with_writer:,.0f}",
                f"{with_writer / base:.2f}",
                f"{pct(under[t], 50):.1f} / {pct(under[t], 99):.1f}",
                f"{len(under[t]) / (args.duration * args.rounds):.0f}",
                f"{pct(quiet[t], 50):.1f} / {pct(quiet[t], 99):.1f}",
            ]
        )
    for i, repo in enumerate(repos):
        print(f"{i}: {repo}")
    print(
        f"\n{args.n} x {args.dim}, wrk -c{args.connections} {args.duration}s x {args.rounds} "
        "rounds; a writer of 10-point upserts (wait=true) back to back\n"
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


if __name__ == "__main__":
    main()
