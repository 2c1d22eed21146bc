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

    .venv/bin/python bench/processes_ceiling.py
    .venv/bin/python bench/processes_ceiling.py --servers 3 --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_dataset, median, print_table
from request_path import Target, serve
from wrk_capacity import engine_qps, filtered_queries, lua_script, run_wrk


def concurrent_rates(urls: list[str], script: Path, args: argparse.Namespace) -> list[float]:
    """One wrk per server, all running at once, `args.connections` split between them."""
    share = argparse.Namespace(**vars(args))
    share.connections = max(1, args.connections // len(urls))
    rates = [0.0] * len(urls)
    errors: list[BaseException] = []

    def load(i: int) -> None:
        try:
            rates[i] = run_wrk(urls[i], script, share)
        except BaseException as exc:  # reported below, on the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(len(urls))]
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
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="in all, split per server")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.threads = 1
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    repo = Path(__file__).resolve().parent.parent
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=500)
    one: list[float] = []
    every: list[float] = []
    workers: list[float] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tessera-procs-")))
        bodies = filtered_queries(ds.queries.tolist())
        script = lua_script(folder, "query", "POST", "/collections/bench/points/query", bodies)
        urls = []
        for i in range(args.servers + 1):  # the last: one server with its read workers
            url, grpc_port = stack.enter_context(
                serve(repo, args.servers - 1 if i == args.servers else 0)
            )
            target = Target(url, grpc_port, ds, 100)
            stack.callback(target.close)
            target.load()
            urls.append(url)
        with_workers = urls.pop()
        for _ in range(20):  # the workers load the collection after its first reads
            run_wrk(with_workers, script, argparse.Namespace(**{**vars(args), "duration": 1}))
        for r in range(args.rounds):
            one.append(run_wrk(urls[0], script, args))
            rates = concurrent_rates(urls, script, args)
            workers.append(run_wrk(with_workers, script, args))
            every.append(sum(rates))
            split = " + ".join(f"{x:,.0f}" for x in rates)
            note = f"one process {one[-1]:,.0f} req/s, {args.servers}: {split} = {every[-1]:,.0f}"
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
    title = (
        f"filtered query (limit 10, kw filter), wrk -t1, {args.connections} connections in all, "
        f"{args.duration}s, n={args.n} dim={args.dim}, median of {args.rounds} rounds"
    )
    print_table(["requests/s", "capacity", "/ engine", "/ one process"], rows, title)


if __name__ == "__main__":
    main()
