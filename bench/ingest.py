"""Ingest throughput (issue 2): Tessera over REST vs Qdrant Edge in-process, same data.

Upserts N points (default 100k x 128, cosine, with the benchmark payload) in batches of 256:

- Tessera: a fresh ``python -m tessera serve`` (or ``--url``), through ``qdrant-client`` over
  REST, column-oriented ``Batch`` upserts with ``wait=true``, one request after another
  (``--clients K`` runs K client threads, each with its own connection);
- Qdrant Edge: ``EdgeShard.update(upsert_points(...))`` per batch, in this process.

Both are timed from numpy arrays to applied writes (building the request or the Point objects
included). No ANN index is built in either (Edge builds HNSW only on ``optimize()``; this is
the write path alone). Target: Tessera >= 50% of Edge's points/s.

    .venv/bin/python bench/ingest.py [--n 100000] [--dim 128] [--batch 256] [--clients 1]
    .venv/bin/python bench/ingest.py --batch 1000 --raw   # issue 13 target 4: JSON bodies
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import Dataset, EdgeEngine, HnswParams, RestEngine, TesseraServer, batches


def run_edge(ds: Dataset, args: argparse.Namespace) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="edge-ingest-"))
    try:
        eng = EdgeEngine(tmp / "shard")
        eng.create(ds.dim, HnswParams(), payload_indexes=args.indexes)
        rss0 = common.rss_mb()
        t = common.ingest(eng, ds, args.batch, not args.no_payload)
        with common.timer() as tf:
            eng.shard.flush()
        count = int(eng.shard.info().points_count)
        rss = common.rss_mb() - rss0
        eng.close()
        return {"upsert_s": t, "flush_s": tf[0], "count": count, "rss_mb": rss}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def raw_bodies(ds: Dataset, args: argparse.Namespace) -> list[bytes]:
    """Every batch as the JSON body qdrant-client sends (`{"batch": {...}}`), serialized
    before the clock starts: the server's side of REST ingest alone."""
    import orjson

    out = []
    for s, e in batches(ds.n, args.batch):
        batch: dict[str, object] = {
            "ids": list(range(s, e)),
            "vectors": ds.vectors[s:e].tolist(),
        }
        if not args.no_payload:
            batch["payloads"] = ds.payloads(s, e)
        out.append(orjson.dumps({"batch": batch}))
    return out


def run_tessera_raw(ds: Dataset, args: argparse.Namespace) -> dict[str, float]:
    import httpx

    bodies = raw_bodies(ds, args)
    with TesseraServer(venv=args.venv, url=args.url) as srv:
        engine = RestEngine(srv.url, srv.pid)
        engine.create(ds.dim, HnswParams(), payload_indexes=args.indexes)
        rss0 = srv.rss_mb()
        url = f"{srv.url}/collections/{engine.collection}/points?wait=true"
        headers = {"content-type": "application/json"}
        with httpx.Client(timeout=300.0) as http:
            t0 = time.perf_counter()
            for body in bodies:
                http.put(url, content=body, headers=headers).raise_for_status()
            t = time.perf_counter() - t0
        count = int(engine.client.count(engine.collection, exact=True).count)
        rss = srv.rss_mb() - rss0
        engine.close()
        return {"upsert_s": t, "flush_s": float("nan"), "count": count, "rss_mb": rss}


def run_tessera(ds: Dataset, args: argparse.Namespace) -> dict[str, float]:
    if args.raw:
        return run_tessera_raw(ds, args)
    with TesseraServer(venv=args.venv, url=args.url) as srv:
        engines = [RestEngine(srv.url, srv.pid) for _ in range(max(1, args.clients))]
        engines[0].create(ds.dim, HnswParams(), payload_indexes=args.indexes)
        rss0 = srv.rss_mb()
        spans = list(batches(ds.n, args.batch))
        errors: list[BaseException] = []

        def work(k: int) -> None:
            try:
                for s, e in spans[k :: len(engines)]:
                    engines[k].upsert(ds, s, e, not args.no_payload)
            except BaseException as exc:  # reported below
                errors.append(exc)

        t0 = time.perf_counter()
        if len(engines) == 1:
            work(0)
        else:
            ts = [threading.Thread(target=work, args=(k,)) for k in range(len(engines))]
            for th in ts:
                th.start()
            for th in ts:
                th.join()
        t = time.perf_counter() - t0
        if errors:
            raise errors[0]
        count = int(engines[0].client.count(engines[0].collection, exact=True).count)
        rss = srv.rss_mb() - rss0
        for eng in engines:
            eng.close()
        return {"upsert_s": t, "flush_s": float("nan"), "count": count, "rss_mb": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(ap, queries=1)
    common.add_server_args(ap)
    ap.add_argument("--batch", type=int, default=256, help="points per upsert (default 256)")
    ap.add_argument("--clients", type=int, default=1, help="concurrent REST clients (default 1)")
    ap.add_argument("--no-payload", action="store_true", help="vectors only")
    ap.add_argument(
        "--indexes", action="store_true", help="create the kw/rare/f payload indexes first"
    )
    ap.add_argument("--no-edge", action="store_true", help="skip Qdrant Edge")
    ap.add_argument(
        "--raw",
        action="store_true",
        help="send pre-serialized JSON bodies over httpx instead of qdrant-client",
    )
    args = ap.parse_args()

    ds = common.make_dataset(args.n, args.dim, n_queries=1, seed=args.seed)
    print(
        f"ingest: {ds.n} x {ds.dim} cosine, batch {args.batch}, "
        f"payload={'no' if args.no_payload else 'yes'}, payload indexes="
        f"{'yes' if args.indexes else 'no'}, REST clients={args.clients}"
        f"{', raw JSON bodies' if args.raw else ''}",
        flush=True,
    )
    res: dict[str, dict[str, float] | str] = {}
    if not args.no_edge:
        res["edge"] = run_edge(ds, args)
    if not args.no_tessera:
        try:
            res["tessera"] = run_tessera(ds, args)
        except Exception as exc:  # not built yet, or a request it does not serve yet
            res["tessera"] = f"failed: {common.describe(exc)}"

    def cell(key: str, metric: str) -> float | str | None:
        r = res.get(key)
        if r is None:
            return None
        if isinstance(r, str):
            return "n/a"
        if metric == "pps":
            return ds.n / r["upsert_s"]
        if metric == "pps_flush":
            fl = r["flush_s"]
            return ds.n / (r["upsert_s"] + fl) if fl == fl else None
        return r[metric]

    rows = []
    for label, metric in [
        ("points/s (upsert)", "pps"),
        ("upsert time s", "upsert_s"),
        ("final flush s", "flush_s"),
        ("points/s incl. final flush", "pps_flush"),
        ("points counted", "count"),
        ("RSS growth MiB", "rss_mb"),
    ]:
        e, t = cell("edge", metric), cell("tessera", metric)
        ef = e if isinstance(e, float | int) else None
        tf = t if isinstance(t, float | int) else None
        rows.append([label, e, t, common.ratio(tf, ef)])
    common.print_table(
        ["metric", "Qdrant Edge (in-process)", "Tessera (REST, wait=true)", "Tessera/Edge"],
        rows,
        title=f"Ingest {ds.n} x {ds.dim}, batches of {args.batch}",
    )
    if isinstance(res.get("tessera"), str):
        print(f"\nTessera: {res['tessera']}")
    e_pps, t_pps = cell("edge", "pps"), cell("tessera", "pps")
    if isinstance(e_pps, float) and isinstance(t_pps, float):
        verdict = "met" if t_pps >= 0.5 * e_pps else "MISSED"
        print(f"\ntarget Tessera >= 0.50x Edge points/s: {t_pps / e_pps:.2f}x -> {verdict}")


if __name__ == "__main__":
    main()
