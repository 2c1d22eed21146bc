"""Approximate search at scale (issue 5): Tessera vs Qdrant Edge, one run, same data.

One command generates the data (seeded, clustered, low intrinsic dimension; 100k x 128 cosine
by default, ``--large`` for 1M x 96), computes the exact ground truth with numpy, then loads the
same points into each engine and measures, per engine:

- upsert time (batches of 256), index build time (until the HNSW covers the data), RSS growth;
- for the unfiltered search and the 20% (``kw = k0``) and 0.5% (``rare = yes``) filters, at
  ``hnsw_ef`` 64/128/256: recall@10, QPS and p50/p99 latency with one client, QPS and p99
  with two client threads.

Engines (``--engines``, default all):

- ``edge``: Qdrant Edge (``qdrant-edge-py``) in-process, same m/ef_construct/full_scan_threshold,
  the same payload indexes, built by ``optimize()``. Its Python binding holds the GIL while it
  searches, so two threads run no faster than one; the ``QPS 2 procs`` row runs two processes
  on two copies of the shard (one search thread each), which is what two cores give Edge.
  Ratios on the 2-threads row are taken against Edge's better two-way figure.
- ``tessera-engine``: Tessera in-process (``tessera.engine.Engine`` through
  ``bench/tessera_adapter.py``), no HTTP; the build waits for the optimizer to settle.
- ``tessera-rest``: ``python -m tessera serve`` (or ``--url``) through ``qdrant-client`` REST;
  the build waits until the collection is green with every vector indexed.
- ``local``: ``qdrant-client`` local mode; exact (ef is ignored, so one figure per filter),
  pure Python and slow (filtered queries scan every payload in Python: ~1 s each at 100k), so
  it runs only ``--local-queries`` queries and one client thread.

Each engine runs in its own fresh worker process (so RSS, threads and allocator state do not
leak between engines); RSS growth is measured from just before the engine is created to after
its searches (for REST: the server process, from ready-and-empty to loaded).

    .venv/bin/python bench/ann.py                      # 100k x 128, every engine
    .venv/bin/python bench/ann.py --engines edge       # one engine
    .venv/bin/python bench/ann.py --large              # 1M x 96 (takes a long while)
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import numpy as np
from common import FILTERS, Dataset, EdgeEngine, Engine, HnswParams

ENGINES = ("edge", "tessera-engine", "tessera-rest", "local")
COLUMNS = ("edge", "edge-acorn", "tessera-engine", "tessera-rest", "local")
TITLES = {
    "edge": "Qdrant Edge",
    "edge-acorn": "Edge+ACORN",
    "tessera-engine": "Tessera engine",
    "tessera-rest": "Tessera REST",
    "local": "client local",
}
FILTER_LABEL = {"none": "unfiltered", "kw20": "kw=k0", "rare05": "rare=yes"}


# --------------------------------------------------------------------------------------
# Worker side: one engine, one process
# --------------------------------------------------------------------------------------


def _edge_child(
    path: str,
    dim: int,
    hnsw: dict[str, int],
    data: str,
    configs: list[tuple[str, int]],
    nq: int,
    barrier: Any,
    out: Any,
    idx: int,
) -> None:
    """One of the processes of the Edge multi-process measurement (spawned)."""
    try:
        queries = np.load(data)["queries"][:nq]
        eng = EdgeEngine(path, max_search_threads=1)
        eng.open(dim, HnswParams(**hnsw))
        for flt, ef in configs:
            fn = eng.query_fn(flt, ef)
            for i in range(min(10, nq)):
                fn(queries[i])
            barrier.wait()
            r = common.run_queries(lambda i, fn=fn: fn(queries[i]), nq, warmup=0)
            out.put((idx, flt, ef, r.wall_s, r.lat_ms))
        eng.close()
    except BaseException as exc:
        barrier.abort()
        out.put((idx, "error", 0, 0.0, [repr(exc)]))


def edge_multiproc(
    eng: EdgeEngine,
    wd: Path,
    configs: list[tuple[str, int]],
    nq: int,
    procs: int = 2,
) -> dict[str, dict[str, float]]:
    """QPS of ``procs`` processes each searching its own copy of the (closed) shard."""
    paths = [eng.path]
    for k in range(1, procs):
        dst = wd / f"edge-shard-copy{k}"
        shutil.copytree(eng.path, dst)
        paths.append(dst)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    out = ctx.Queue()
    hnsw = {
        "m": eng.hnsw.m,
        "ef_construct": eng.hnsw.ef_construct,
        "full_scan_threshold": eng.hnsw.full_scan_threshold,
    }
    ps = [
        ctx.Process(
            target=_edge_child,
            args=(str(p), eng.dim, hnsw, str(wd / "data.npz"), configs, nq, barrier, out, k),
        )
        for k, p in enumerate(paths)
    ]
    for p in ps:
        p.start()
    got: dict[tuple[str, int], list[tuple[float, list[float]]]] = {}
    for _ in range(procs * len(configs)):
        _idx, flt, ef, wall, lat = out.get(timeout=1800)
        if flt == "error":
            raise RuntimeError(f"Edge child failed: {lat[0]}")
        got.setdefault((flt, ef), []).append((wall, lat))
    for p in ps:
        p.join()
    res = {}
    for (flt, ef), parts in got.items():
        lat_all = [x for _, lat in parts for x in lat]
        res[f"{flt}/{ef}"] = {
            "qps": sum(len(lat) for _, lat in parts) / max(w for w, _ in parts),
            "p50": common.percentile(lat_all, 50),
            "p99": common.percentile(lat_all, 99),
        }
    for p in paths[1:]:
        shutil.rmtree(p, ignore_errors=True)
    return res


def search_rows(
    name: str,
    eng: Engine,
    ds: Dataset,
    gt: dict[str, np.ndarray],
    a: dict[str, Any],
    filters: list[str],
) -> dict[str, Any]:
    """Recall, QPS and latency per (filter, ef); local mode: once per filter (exact)."""
    exact_only = name == "local"
    nq = min(a["local_queries"] if exact_only else a["queries"], len(ds.queries))
    threads = [1] if exact_only else [1, 2]
    efs: list[int | None] = [None] if exact_only else list(a["efs"])
    q = ds.queries[:nq]
    rows: dict[str, Any] = {}
    for flt in filters:
        for ef in efs:
            fn = eng.query_fn(flt, ef)
            row: dict[str, Any] = {}
            for th in threads:
                r = common.run_queries(lambda i, fn=fn: fn(q[i]), nq, threads=th)
                row[f"qps{th}"] = r.qps
                row[f"p50_{th}"] = r.p50_ms
                row[f"p99_{th}"] = r.p99_ms
                if th == 1:
                    row["recall"] = common.recall_at_k(r.results, gt[flt][:nq])
            keys = [f"{flt}/{e}" for e in a["efs"]] if exact_only else [f"{flt}/{ef}"]
            for k in keys:
                rows[k] = row
            common.log(
                f"[{name}] {flt} ef={ef}: recall {row['recall']:.3f}, "
                f"{row['qps1']:.0f} QPS, p99 {row['p99_1']:.2f} ms"
            )
    return rows


def measure(
    name: str,
    eng: Engine,
    ds: Dataset,
    gt: dict[str, np.ndarray],
    a: dict[str, Any],
    out: dict[str, Any],
) -> dict[str, Any]:
    """Load, build, search; fills ``out`` as it goes (kept if a later step fails)."""
    hnsw = HnswParams(a["m"], a["ef_construct"], a["full_scan_threshold"])
    gc.collect()
    rss0 = eng.rss_mb()
    eng.create(ds.dim, hnsw, payload_indexes=True)
    out["ingest_s"] = common.ingest(eng, ds, a["batch"])
    common.log(f"[{name}] upserted {ds.n} in {out['ingest_s']:.1f}s")
    with common.timer() as tb:
        took = eng.build(ds.n)
    out["build_s"] = tb[0] if took is None else took
    out["indexed"] = eng.indexed_vectors()
    out["rss_built_mb"] = eng.rss_mb() - rss0
    common.log(f"[{name}] built in {out['build_s']:.1f}s, {out['indexed']} vectors indexed")
    out["queries"] = min(a["local_queries"] if name == "local" else a["queries"], len(ds.queries))
    out["rows"] = search_rows(name, eng, ds, gt, a, a["filters"])
    out["rss_mb"] = eng.rss_mb() - rss0
    return out


def worker(name: str, wd: Path) -> None:
    a = json.loads((wd / "args.json").read_text())
    ds, extra = common.load_dataset(wd / "data.npz")
    gt = {flt: extra[f"gt_{flt}"] for flt in a["filters"]}
    result: dict[str, Any] = {}
    srv: common.TesseraServer | None = None
    eng: Engine | None = None
    try:
        if name == "edge":
            eng = EdgeEngine(wd / "edge-shard", a["edge_search_threads"] or None)
        elif name == "tessera-engine":
            eng = common.TesseraEngine(wd / "tessera-engine")
        elif name == "tessera-rest":
            srv = common.TesseraServer(
                venv=a["venv"], url=a["url"], storage=None if a["url"] else wd / "tessera-storage"
            )
            srv.start()
            eng = common.RestEngine(srv.url, srv.pid)
        elif name == "local":
            eng = common.LocalEngine()
        else:
            raise ValueError(f"unknown engine {name}")
        measure(name, eng, ds, gt, a, result)
        if isinstance(eng, EdgeEngine):
            result["segments"] = eng.segments()
            filtered = [f for f in a["filters"] if f != "none"]
            if a["edge_acorn"] and filtered:
                eng.acorn = True
                acorn = search_rows("edge+acorn", eng, ds, gt, a, filtered)
                eng.acorn = False
                result["acorn"] = {**result, "rows": {**result["rows"], **acorn}}
            eng.close()
            if a["procs"] > 1:
                configs = [(f, e) for f in a["filters"] for e in a["efs"]]
                result["procs"] = edge_multiproc(eng, wd, configs, a["queries"], a["procs"])
    except NotImplementedError as exc:
        result["error"] = f"n/a: {exc}"
    except BaseException as exc:
        traceback.print_exc()
        result["error"] = common.describe(exc)
    finally:
        if eng is not None:
            eng.close()
        if srv is not None:
            srv.stop()
    (wd / f"{name}.json").write_text(json.dumps(result))


# --------------------------------------------------------------------------------------
# Parent side: data, ground truth, workers, the table
# --------------------------------------------------------------------------------------


def run_worker(name: str, wd: Path, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--workdir", str(wd)]
    try:
        subprocess.run(cmd, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s"}
    path = wd / f"{name}.json"
    if not path.exists():
        return {"error": "worker died without a result"}
    res: dict[str, Any] = json.loads(path.read_text())
    return res


def build_table(
    res: dict[str, dict[str, Any]], ds: Dataset, a: dict[str, Any]
) -> tuple[list[str], list[list[Any]], list[str]]:
    cols = [e for e in COLUMNS if e in res]
    ratio_heads = ["engine/Edge", "REST/Edge", "REST/engine"]
    acorn_col = "edge-acorn" in cols
    if acorn_col:
        ratio_heads.append("engine/ACORN")
    headers = ["metric", *(TITLES[e] for e in cols), *ratio_heads]
    notes: list[str] = []

    def get(e: str, path: list[str]) -> Any:
        cur: Any = res.get(e, {})
        failed = "error" in cur
        for p in path:
            if not isinstance(cur, dict) or p not in cur:
                return "n/a" if failed else None
            cur = cur[p]
        return cur

    def num(x: Any) -> float | None:
        return float(x) if isinstance(x, int | float) and x == x else None

    def add(label: str, vals: dict[str, Any], fmt: str | None = None, ratios: bool = True) -> None:
        edge2 = vals.pop("_edge_ratio_base", None)
        cells = []
        for e in cols:
            v = vals.get(e)
            cells.append(fmt.format(v) if fmt and isinstance(v, int | float) else v)
        base = num(edge2) if edge2 is not None else num(vals.get("edge"))
        eng, rest = num(vals.get("tessera-engine")), num(vals.get("tessera-rest"))
        r = [common.ratio(eng, base), common.ratio(rest, base), common.ratio(rest, eng)]
        if acorn_col:
            r.append(common.ratio(eng, num(vals.get("edge-acorn"))))
        rows.append([label, *cells, *(r if ratios else [""] * len(r))])

    rows: list[list[Any]] = []
    add("upsert s (batches of 256)", {e: get(e, ["ingest_s"]) for e in cols})
    add("index build s", {e: get(e, ["build_s"]) for e in cols})
    tot = {}
    for e in cols:
        i, b = num(get(e, ["ingest_s"])), num(get(e, ["build_s"]))
        tot[e] = i + b if i is not None and b is not None else get(e, ["ingest_s"])
    add("ingest + index s", tot)
    add("indexed vectors", {e: get(e, ["indexed"]) for e in cols}, ratios=False)
    add("RSS growth MiB, loaded", {e: get(e, ["rss_built_mb"]) for e in cols})
    add("RSS growth MiB, after searches", {e: get(e, ["rss_mb"]) for e in cols})
    add("queries per row", {e: get(e, ["queries"]) for e in cols}, ratios=False)

    for flt in a["filters"]:
        sel = ds.selectivity(flt)
        for ef in a["efs"]:
            key = f"{flt}/{ef}"
            head = f"{FILTER_LABEL[flt]} ({sel:.1%}) ef={ef}"
            rows.append([head, *([""] * (len(headers) - 1))])

            def row(metric: str, e: str, key: str = key) -> Any:
                return get(e, ["rows", key, metric])

            add("  recall@10", {e: row("recall", e) for e in cols}, fmt="{:.3f}")
            add("  QPS 1 client", {e: row("qps1", e) for e in cols})
            add("  p50 ms", {e: row("p50_1", e) for e in cols}, fmt="{:.2f}")
            add("  p99 ms", {e: row("p99_1", e) for e in cols}, fmt="{:.2f}")
            v2 = {e: row("qps2", e) for e in cols}
            p2 = num(get("edge", ["procs", key, "qps"]))
            e2 = num(v2.get("edge"))
            if p2 is not None or e2 is not None:
                v2["_edge_ratio_base"] = max(x for x in (p2, e2) if x is not None)
            add("  QPS 2 threads", v2)
            add("  p99 ms, 2 threads", {e: row("p99_2", e) for e in cols}, fmt="{:.2f}")
            if "edge" in cols and p2 is not None:
                vals: dict[str, Any] = dict.fromkeys(cols)
                vals["edge"] = p2
                add("  QPS 2 procs (Edge)", vals, ratios=False)
    for e in cols:
        err = res[e].get("error")
        if err:
            notes.append(f"{TITLES[e]}: {err}")
    if "local" in cols and "error" not in res["local"]:
        notes.append(
            f"client local: exact search (ef ignored), first {res['local'].get('queries')} "
            "queries only, one thread"
        )
    if "edge" in cols and "segments" in res.get("edge", {}):
        notes.append(
            f"Qdrant Edge: {res['edge']['segments']} segments after optimize(); "
            f"max_search_threads={a['edge_search_threads'] or 'auto'}; its binding holds the GIL "
            "while searching, so 'QPS 2 threads' ratios use max(Edge 2 threads, Edge 2 procs)"
        )
    if acorn_col:
        notes.append(
            "Edge+ACORN: the same Edge shard, filtered searches with params.acorn.enable=true "
            "(unfiltered rows and load figures are Edge's own)"
        )
    low = [
        f"{TITLES[e]} {k} ({v['recall']:.3f})"
        for e in ("edge", "edge-acorn")
        for k, v in sorted(res.get(e, {}).get("rows", {}).items())
        if v["recall"] < 0.95
    ]
    if low:
        notes.append("anchor rows under 0.95 recall@10: " + ", ".join(low))
    notes.append("ratios are Tessera / anchor; in s, ms and MiB rows lower is better")
    return headers, rows, notes


def targets(res: dict[str, dict[str, Any]], a: dict[str, Any]) -> list[str]:
    out: list[str] = []
    edge = res.get("edge", {})
    for name in ("tessera-engine", "tessera-rest"):
        t = res.get(name, {})
        if "rows" not in t:
            continue
        recalls = [r["recall"] for r in t["rows"].values()]
        out.append(f"{TITLES[name]}: min recall@10 {min(recalls):.3f} (target >= 0.95)")
        if "rows" in edge:
            for flt_set, label in ((["none"], "unfiltered"), (["kw20", "rare05"], "filtered")):
                rs = [
                    t["rows"][k]["qps1"] / edge["rows"][k]["qps1"]
                    for k in t["rows"]
                    if k.split("/")[0] in flt_set and k in edge["rows"]
                ]
                if rs:
                    out.append(
                        f"{TITLES[name]}: QPS / Edge, {label}: min {min(rs):.2f}x "
                        f"(target >= 1.0 for the engine)"
                    )
            acorn = res.get("edge-acorn", {}).get("rows", {})
            rs = [
                t["rows"][k]["qps1"] / acorn[k]["qps1"]
                for k in t["rows"]
                if k.split("/")[0] != "none" and k in acorn
            ]
            if rs:
                out.append(
                    f"{TITLES[name]}: QPS / Edge+ACORN, filtered: min {min(rs):.2f}x "
                    "(Edge at its high-recall setting)"
                )
            for key, label, tgt in (("build_s", "build time", 1.5), ("rss_mb", "RSS", 1.5)):
                if t.get(key) and edge.get(key):
                    out.append(
                        f"{TITLES[name]}: {label} / Edge {t[key] / edge[key]:.2f}x "
                        f"(target <= {tgt})"
                    )
    te, tr = res.get("tessera-engine", {}), res.get("tessera-rest", {})
    if "rows" in te and "rows" in tr:
        rs = [tr["rows"][k]["qps1"] / te["rows"][k]["qps1"] for k in tr["rows"] if k in te["rows"]]
        out.append(f"REST / engine QPS: min {min(rs):.2f}x (target >= 0.5)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(ap, queries=1000)
    common.add_server_args(ap)
    ap.add_argument("--large", action="store_true", help="1M x 96 (overrides --n/--dim)")
    ap.add_argument(
        "--engines", default=",".join(ENGINES), help="comma list of " + ",".join(ENGINES)
    )
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construct", type=int, default=100)
    ap.add_argument("--full-scan-threshold", type=int, default=10_000, help="KiB (Qdrant default)")
    ap.add_argument("--efs", default="64,128,256", help="hnsw_ef values")
    ap.add_argument("--filters", default=",".join(FILTERS), help="none,kw20,rare05")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--local-queries", type=int, default=20, help="queries for local mode")
    ap.add_argument(
        "--edge-search-threads",
        type=int,
        default=1,
        help="Edge max_search_threads; 0 = Edge's own default from the CPU count (default 1:\n"
        "Edge's fastest setting here, as one search thread skips its pool hand-off)",
    )
    ap.add_argument("--procs", type=int, default=2, help="Edge processes for 'QPS 2 procs'")
    ap.add_argument(
        "--no-edge-acorn",
        dest="edge_acorn",
        action="store_false",
        help="skip the extra Edge pass with ACORN on filtered searches",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per engine")
    ap.add_argument("--json", default=None, help="also write all results to this file")
    ap.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        worker(args.worker, Path(args.workdir))
        return

    if args.large:
        args.n, args.dim = 1_000_000, 96
    a = vars(args).copy()
    a["efs"] = [int(x) for x in args.efs.split(",") if x]
    a["filters"] = [x for x in args.filters.split(",") if x]
    engines = [e for e in args.engines.split(",") if e]
    for e in engines:
        if e not in ENGINES:
            ap.error(f"unknown engine {e!r}")
    if args.no_tessera:
        engines = [e for e in engines if e != "tessera-rest"]

    wd = Path(tempfile.mkdtemp(prefix="tessera-ann-"))
    try:
        with common.timer() as tg:
            ds = common.make_dataset(args.n, args.dim, n_queries=args.queries, seed=args.seed)
            gt = common.ground_truth(ds, 10, a["filters"])
        common.log(
            f"data: {ds.n} x {ds.dim} cosine, {ds.meta['n_clusters']} clusters, intrinsic dim "
            f"{ds.meta['intrinsic_dim']}, {len(ds.queries)} queries; generated with ground "
            f"truth in {tg[0]:.1f}s"
        )
        common.save_dataset(ds, wd / "data.npz", {f"gt_{k}": v for k, v in gt.items()})
        (wd / "args.json").write_text(json.dumps(a))
        res: dict[str, dict[str, Any]] = {}
        for e in engines:
            common.log(f"--- {TITLES[e]}")
            t0 = time.perf_counter()
            res[e] = run_worker(e, wd, args.timeout)
            if e == "edge" and "acorn" in res[e]:
                res["edge-acorn"] = res[e].pop("acorn")
            common.log(f"--- {TITLES[e]} done in {time.perf_counter() - t0:.0f}s")
    finally:
        shutil.rmtree(wd, ignore_errors=True)

    headers, rows, notes = build_table(res, ds, a)
    common.print_table(
        headers,
        rows,
        title=(
            f"ANN benchmark: {ds.n} x {ds.dim} cosine, m={args.m}, ef_construct="
            f"{args.ef_construct}, top-10, seed {args.seed}"
        ),
    )
    for n in notes:
        print(f"- {n}")
    tg_lines = targets(res, a)
    if tg_lines:
        print("\ntargets:")
        for line in tg_lines:
            print(f"- {line}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": a, "results": res}, indent=1))


if __name__ == "__main__":
    main()
