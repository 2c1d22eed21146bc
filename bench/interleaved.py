"""The engine against Qdrant Edge with their queries interleaved (issue 13, target 1).

`bench/ann.py` measures each engine in a process of its own, one after the other. On a
machine whose speed moves in phases of seconds (this VM: a fixed numpy computation timed
between queries moved 13 -> 23 us from one round to the next), each engine's figure then
carries the phase it met, and a row's ratio moves by up to 2x between runs. Here Edge and
Tessera's in-process engine are built in one process from the same data, and each row's
queries alternate between them in blocks of `--block` (the order of the engines turning
with every block) for `--rounds` rounds: both meet the same phases, and the ratio of their
summed times is the figure to read. One client thread; recall@10 against exact cosine.

For filtered rows Edge also runs with ACORN (Qdrant's 2-hop walk for filters its
payload-aware links do not cover): where Edge's plain walk stays under recall 0.99 (the 20%
filter), ACORN is the setting that meets target 1's recall bar.

    .venv/bin/python bench/interleaved.py                       # 100k x 128, m 16, ef_construct 100
    .venv/bin/python bench/interleaved.py --n 20000 --rounds 3  # quicker
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import EdgeEngine, HnswParams, TesseraEngine

LABELS = {"none": "unfiltered", "kw20": "20% filter", "rare05": "0.5% filter"}


def timed_block(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> tuple[float, list[Any]]:
    found = []
    t0 = time.perf_counter()
    for q in queries:
        found.append(fn(q))
    return time.perf_counter() - t0, found


def interleave(
    fns: dict[str, Callable[[np.ndarray], Any]], queries: np.ndarray, block: int, rounds: int
) -> tuple[dict[str, float], dict[str, list[Any]]]:
    """Seconds per engine over `rounds` passes of the queries, in alternating blocks, and
    each engine's results of the first pass."""
    names = list(fns)
    spent = dict.fromkeys(names, 0.0)
    results: dict[str, list[Any]] = {name: [] for name in names}
    for name in names:  # warm-up
        for q in queries[:20]:
            fns[name](q)
    turn = 0
    for r in range(rounds):
        for start in range(0, len(queries), block):
            part = queries[start : start + block]
            order = names[turn % len(names) :] + names[: turn % len(names)]
            turn += 1
            for name in order:
                took, found = timed_block(fns[name], part)
                spent[name] += took
                if r == 0:
                    results[name].extend(found)
    return spent, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_data_args(ap, n=100_000, dim=128, queries=500)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construct", type=int, default=100)
    ap.add_argument("--full-scan-threshold", type=int, default=10_000, help="KiB")
    ap.add_argument("--efs", default="64,128,256")
    ap.add_argument("--filters", default="none,kw20,rare05")
    ap.add_argument("--block", type=int, default=50, help="queries per engine turn")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    efs = [int(x) for x in args.efs.split(",")]
    filters = [f for f in args.filters.split(",") if f]
    ds = common.make_dataset(args.n, args.dim, args.queries, seed=args.seed)
    truth = common.ground_truth(ds, 10, filters)
    hnsw = HnswParams(args.m, args.ef_construct, args.full_scan_threshold)
    with tempfile.TemporaryDirectory() as tmp:
        edge = EdgeEngine(Path(tmp) / "edge", max_search_threads=1)
        tessera = TesseraEngine(Path(tmp) / "tessera")
        for name, eng in (("Edge", edge), ("Tessera", tessera)):
            eng.create(ds.dim, hnsw, payload_indexes=True)
            with common.timer() as t:
                common.ingest(eng, ds, 1000)
                eng.build(ds.n)
            common.log(f"{name}: ingested and built in {t[0]:.1f} s")
        rows = []
        for flt in filters:
            for ef in efs:
                fns = {"edge": edge.query_fn(flt, ef), "tessera": tessera.query_fn(flt, ef)}
                if flt != "none":
                    edge.acorn = True
                    fns["acorn"] = edge.query_fn(flt, ef)
                    edge.acorn = False
                spent, found = interleave(fns, ds.queries, args.block, args.rounds)
                calls = args.rounds * len(ds.queries)
                qps = {name: calls / s for name, s in spent.items()}
                recall = {name: common.recall_at_k(f, truth[flt]) for name, f in found.items()}
                rows.append(
                    [
                        f"{LABELS.get(flt, flt)}, ef {ef}",
                        f"{recall['edge']:.3f} / {qps['edge']:,.0f}",
                        f"{recall['acorn']:.3f} / {qps['acorn']:,.0f}" if "acorn" in qps else "",
                        f"{recall['tessera']:.3f} / {qps['tessera']:,.0f}",
                        f"{qps['tessera'] / qps['edge']:.2f}x",
                        f"{qps['tessera'] / qps['acorn']:.2f}x" if "acorn" in qps else "",
                    ]
                )
                common.log(f"{flt} ef {ef}: {rows[-1][1:]}")
        edge.close()
        tessera.close()
    common.print_table(
        [
            "row",
            "Edge recall / QPS",
            "Edge+ACORN recall / QPS",
            "Tessera engine recall / QPS",
            "Tessera / Edge",
            "Tessera / ACORN",
        ],
        rows,
        f"{ds.n} x {ds.dim} cosine, m {args.m}, ef_construct {args.ef_construct}, one thread, "
        f"{args.rounds} rounds of {len(ds.queries)} queries in blocks of {args.block}, "
        "engines alternating",
    )


if __name__ == "__main__":
    main()
