"""Exact search QPS (issue 4): Tessera REST vs Qdrant Edge (exact) vs qdrant-client local mode.

Same data for all three (default 100k x 128 cosine, with payload), top-10, no filter,
``params.exact = true``:

- single query: one request per query, one client thread, ``--queries`` queries;
- batch of 16: ``query_batch_points`` (REST, local mode) / ``EdgeShard.query_batch`` (Edge)
  with 16 queries per call; QPS counts queries, latency is per call.

Tessera runs as ``python -m tessera serve`` (or ``--url``) and is driven by ``qdrant-client``
over REST. Edge runs in this process; its shard is ``optimize()``d first with m=0 (no graph is
needed for exact search; this only turns the appendable segment into an immutable one, which
Edge scans ~10% faster). Local mode is slow (pure Python/numpy, ~20 QPS at 100k), so it runs
``--local-queries`` queries only (a prefix of the same queries). Every result is checked
against numpy's exact top-10 (recall@10 should read 1.00).

Targets: Tessera >= 1x Edge, >= 20x local mode.

    .venv/bin/python bench/search_exact.py [--n 100000] [--dim 128] [--queries 1000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import Dataset, EdgeEngine, Engine, HnswParams, LocalEngine, RestEngine

BATCH = 16


def measure(eng: Engine, ds: Dataset, truth: Any, nq: int, threads: int) -> dict[str, float]:
    q = ds.queries[:nq]
    fn = eng.query_fn("none", None, exact=True)
    single = common.run_queries(lambda i: fn(q[i]), nq, threads=threads, warmup=min(10, nq))
    nb = max(1, nq // BATCH)
    bfn = eng.batch_fn("none", None, exact=True)
    batch = common.run_queries(
        lambda i: bfn(q[i * BATCH : (i + 1) * BATCH]),
        nb,
        threads=threads,
        per_call=BATCH,
        warmup=min(2, nb),
    )
    got_batch = [ids for call in batch.results for ids in call]
    return {
        "queries": nq,
        "qps1": single.qps,
        "p50_1": single.p50_ms,
        "p99_1": single.p99_ms,
        "qps16": batch.qps,
        "p50_16": batch.p50_ms,
        "p99_16": batch.p99_ms,
        "recall": common.recall_at_k(single.results, truth[:nq]),
        "recall16": common.recall_at_k(got_batch, truth[: len(got_batch)]),
    }


def load(eng: Engine, ds: Dataset) -> float:
    eng.create(ds.dim, HnswParams(m=0), payload_indexes=False)
    t = common.ingest(eng, ds)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(ap, queries=1000)
    common.add_server_args(ap)
    ap.add_argument("--local-queries", type=int, default=64, help="queries for local mode")
    ap.add_argument(
        "--local-n", type=int, default=None, help="smaller dataset for local mode (default: --n)"
    )
    ap.add_argument("--threads", type=int, default=1, help="client threads (default 1)")
    ap.add_argument("--no-edge", action="store_true")
    ap.add_argument("--no-local", action="store_true")
    args = ap.parse_args()

    ds = common.make_dataset(args.n, args.dim, n_queries=args.queries, seed=args.seed)
    truth = common.exact_topk(ds.vectors, ds.queries, 10)
    print(f"exact search: {ds.n} x {ds.dim} cosine, top-10, {args.threads} client thread(s)")
    res: dict[str, dict[str, float] | str] = {}

    if not args.no_edge:
        tmp = Path(tempfile.mkdtemp(prefix="edge-exact-"))
        try:
            edge = EdgeEngine(tmp / "shard")
            load(edge, ds)
            edge.build(ds.n)
            print(f"  Edge loaded, {edge.segments()} segments", flush=True)
            res["edge"] = measure(edge, ds, truth, args.queries, args.threads)
            edge.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    if not args.no_tessera:
        try:
            with common.TesseraServer(venv=args.venv, url=args.url) as srv:
                rest = RestEngine(srv.url, srv.pid)
                load(rest, ds)
                # Settled state, as Edge after optimize(): the background optimizer done.
                rest.build(ds.n)
                print("  Tessera loaded", flush=True)
                res["tessera"] = measure(rest, ds, truth, args.queries, args.threads)
                rest.close()
        except Exception as exc:  # not built yet, or a request it does not serve yet
            res["tessera"] = f"failed: {common.describe(exc)}"

    local_note = ""
    if not args.no_local:
        lds, ltruth = ds, truth
        if args.local_n and args.local_n < ds.n:
            lds = common.make_dataset(
                args.local_n, args.dim, n_queries=args.local_queries, seed=args.seed
            )
            ltruth = common.exact_topk(lds.vectors, lds.queries, 10)
            local_note = f" (local mode on n={lds.n}, not comparable row for row)"
        local = LocalEngine()
        load(local, lds)
        print("  local mode loaded", flush=True)
        res["local"] = measure(local, lds, ltruth, min(args.local_queries, len(lds.queries)), 1)
        local.close()

    def val(key: str, metric: str) -> float | str | None:
        r = res.get(key)
        if r is None:
            return None
        return "n/a" if isinstance(r, str) else r[metric]

    def num(x: float | str | None) -> float | None:
        return x if isinstance(x, float | int) else None

    rows = []
    for label, metric in [
        ("QPS, single query", "qps1"),
        ("  p50 ms", "p50_1"),
        ("  p99 ms", "p99_1"),
        ("QPS, batches of 16", "qps16"),
        ("  p50 ms per batch", "p50_16"),
        ("  p99 ms per batch", "p99_16"),
        ("recall@10 vs numpy (single)", "recall"),
        ("recall@10 vs numpy (batch)", "recall16"),
        ("queries run", "queries"),
    ]:
        e, t, lo = val("edge", metric), val("tessera", metric), val("local", metric)
        if metric == "queries":
            rows.append([label, e, t, lo, "", "", ""])
            continue
        if metric.startswith("recall"):
            e, t, lo = (f"{x:.3f}" if isinstance(x, float) else x for x in (e, t, lo))
            rows.append([label, e, t, lo, "", "", ""])
            continue
        shown = [f"{x:.2f}" if "ms" in label and isinstance(x, float) else x for x in (e, t, lo)]
        rows.append(
            [
                label,
                *shown,
                common.ratio(num(t), num(e)),
                common.ratio(num(t), num(lo)),
                common.ratio(num(e), num(lo)),
            ]
        )
    common.print_table(
        [
            "metric",
            "Qdrant Edge exact",
            "Tessera REST exact",
            "local mode",
            "Tessera/Edge",
            "Tessera/local",
            "Edge/local",
        ],
        rows,
        title=f"Exact search, {ds.n} x {ds.dim}, top-10{local_note}",
    )
    for key in ("tessera",):
        if isinstance(res.get(key), str):
            print(f"\nTessera: {res[key]}")
    e1, t1, l1 = (num(val(k, "qps1")) for k in ("edge", "tessera", "local"))
    e16, t16 = num(val("edge", "qps16")), num(val("tessera", "qps16"))
    if t1 and e1:
        print(f"\ntarget Tessera >= 1x Edge: single {t1 / e1:.2f}x", end="")
        print(f", batch {t16 / e16:.2f}x" if t16 and e16 else "")
    if t1 and l1:
        print(f"target Tessera >= 20x local mode: single {t1 / l1:.1f}x")


if __name__ == "__main__":
    main()
