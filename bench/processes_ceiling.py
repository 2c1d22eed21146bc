"""What more processes serving reads could give on this machine: the ceiling of issue 13's
"next step" (target 2), measured before building it.

`--servers` Tessera servers of this tree (default 2) each load the same data (as
`wrk_capacity.py`: `--n` points of `--dim` dimensions, a `kw` keyword index), so that each
holds what a read-only process sharing the collection's files would serve. Then, in rounds:
one `wrk -c<connections>` against the first server alone (one process, as `tessera serve`
runs today), and one wrk per server at the same time, the connections split between them
(every process serving reads). The sum of the concurrent runs over the single run is the
most that several processes could give here: it leaves out what keeping them in step with
the writer would cost. A third row is what Tessera gives: one server with
`service.read_workers` = `--servers` - 1 (worker processes following the server's files,
tessera.api.read_workers), loaded with all the connections. Each figure is set beside the
in-process engine's single-thread QPS for the same filtered query (target 2: >= 1.0x).
With `--grpc` the same query goes over gRPC, loaded by ghz (`QueryPoints` messages, one
connection per call in flight, so that the kernel spreads them over the processes).

    .venv/bin/python bench/processes_ceiling.py
    .venv/bin/python bench/processes_ceiling.py --servers 3 --rounds 5
    .venv/bin/python bench/processes_ceiling.py --grpc   # the same over gRPC, with ghz
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_dataset, median, print_table
from request_path import Target, serve
from wrk_capacity import (
    engine_qps,
    filtered_queries,
    ghz_path,
    grpc_queries,
    lua_script,
    protoset,
    run_ghz,
    run_wrk,
)

Rate = Callable[[int, argparse.Namespace], float]


def concurrent_rates(count: int, rate: Rate, args: argparse.Namespace) -> list[float]:
    """One load generator per server (`rate(i, args)`), all running at once,
    `args.connections` split between them."""
    share = argparse.Namespace(**vars(args))
    share.connections = max(1, args.connections // count)
    share.grpc_connections = share.connections
    rates = [0.0] * count
    errors: list[BaseException] = []

    def load(i: int) -> None:
        try:
            rates[i] = rate(i, share)
        except BaseException as exc:  # reported below, on the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--duration", type=int, default=8, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16, help="in all, split per server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--grpc",
        action="store_true",
        help="the same query over gRPC, loaded by ghz (one connection per call in flight)",
    )
    args = parser.parse_args()
    args.threads = 1
    args.grpc_connections = args.connections
    ghz = ghz_path()
    if args.grpc and ghz is None:
        sys.exit("ghz is not installed (see bench/wrk_capacity.py)")
    if not args.grpc and shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    repo = Path(__file__).resolve().parent.parent
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=500)
    one: list[float] = []
    every: list[float] = []
    workers: list[float] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tessera-procs-")))
        queries = ds.queries.tolist()
        bodies = filtered_queries(queries)
        script = lua_script(folder, "query", "POST", "/collections/bench/points/query", bodies)
        descriptors = messages = folder
        if args.grpc:
            descriptors = protoset(folder)
            messages = folder / "grpc-queries.json"
            messages.write_text(json.dumps(grpc_queries(queries[:100])))
        urls, ports = [], []
        for i in range(args.servers + 1):  # the last: one server with its read workers
            url, grpc_port = stack.enter_context(
                serve(repo, args.servers - 1 if i == args.servers else 0)
            )
            target = Target(url, grpc_port, ds, 100)
            stack.callback(target.close)
            target.load()
            urls.append(url)
            ports.append(grpc_port)

        def rate(i: int, run: argparse.Namespace) -> float:
            if args.grpc:
                assert ghz is not None
                return run_ghz(ghz, ports[i], descriptors, messages, run)
            return run_wrk(urls[i], script, run)

        last = args.servers
        for _ in range(20):  # the workers load the collection after its first reads
            run_wrk(urls[last], script, argparse.Namespace(**{**vars(args), "duration": 1}))
        for r in range(args.rounds):
            one.append(rate(0, args))
            rates = concurrent_rates(args.servers, rate, args)
            workers.append(rate(last, args))
            every.append(sum(rates))
            split = " + ".join(f"{x:,.0f}" for x in rates)
            note = f"one process {one[-1]:,.0f}/s, {args.servers}: {split} = {every[-1]:,.0f}"
            print(f"round {r + 1}: {note}; read workers {workers[-1]:,.0f}", file=sys.stderr)
    engine = engine_qps(ds, 2000)
    single, several, served = median(one), median(every), median(workers)
    rows = [
        ["one process, all connections", f"{single:,.0f}", f"{single / engine:.2f}x", "1.00"],
        [
            f"{args.servers} processes, connections split",
            f"{several:,.0f}",
            f"{several / engine:.2f}x",
            f"{several / single:.2f}",
        ],
        [
            f"one server, service.read_workers {args.servers - 1}",
            f"{served:,.0f}",
            f"{served / engine:.2f}x",
            f"{served / single:.2f}",
        ],
    ]
    print(f"engine (this tree, in process, 1 thread): {engine:,.0f} QPS for the filtered query")
    how = "gRPC, ghz" if args.grpc else "wrk -t1"
    title = (
        f"filtered query (limit 10, kw filter), {how}, {args.connections} connections in all, "
        f"{args.duration}s, n={args.n} dim={args.dim}, median of {args.rounds} rounds"
    )
    unit = "calls/s" if args.grpc else "requests/s"
    print_table([unit, "capacity", "/ engine", "/ one process"], rows, title)


if __name__ == "__main__":
    main()
