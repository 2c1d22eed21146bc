"""Start-up and memory at scale (issue 13, target 5): Tessera's engine vs Qdrant Edge, in-process.

For each placement (``--modes ram,disk``: ``on_disk`` false / true on the vector params and on
``hnsw_config`` alike, in both engines), on the same data (``common.make_dataset``, cosine, no
payload), each step in a fresh process:

1. build: create the collection / shard (m=16, ef_construct=100, full_scan_threshold 10,000
   KiB), upsert batches of ``--batch`` (Tessera: ``Engine.upsert_arrays``, durable per batch;
   Edge: ``EdgeShard.update``), then the index build (Tessera: until the optimizer has indexed
   every vector; Edge: ``optimize()``), then close (Tessera: the last checkpoint; Edge:
   ``flush()`` + ``close()``). Peak RSS of the build (VmHWM).
2. open, ``--repeats`` times with the page cache warm: from ``Popen`` of a fresh ``python``
   until the data is served (Tessera: ``tessera.engine.Engine(dir)``, which verifies every
   file's crc32 before anything is served, and ``info`` reports n points; Edge: import
   ``qdrant_edge``, ``EdgeShard.load`` and ``info().points_count``); the child's own stamps
   split it into imports and open. RSS (VmRSS / RssAnon / RssFile) right after the open.
3. In the last open's process: ``--queries`` single queries (top-10, ``hnsw_ef`` ``--ef``),
   QPS on one thread and recall@10 against exact numpy, then RSS again.

Ratios are Tessera / Edge from this one run (lower is better for times and memory).

    .venv/bin/python bench/startup.py                  # 1M x 128 (long: both builds, twice)
    .venv/bin/python bench/startup.py --n 100000       # 100k (a few minutes)
    .venv/bin/python bench/startup.py --modes disk --workdir W --reuse
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import numpy as np

HNSW = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10_000}
MODES = {"ram": False, "disk": True}
NAME = "c"


def mem() -> dict[str, float]:
    """VmRSS, RssAnon, RssFile, VmHWM of this process, MiB."""
    out: dict[str, float] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(rest.split()[0]) / 1024.0
    return out


# ---- workers (each in a fresh process) -------------------------------------------------


def tessera_body(dim: int, on_disk: bool) -> dict[str, Any]:
    return {
        "vectors": {"size": dim, "distance": "Cosine", "on_disk": on_disk},
        "hnsw_config": {**HNSW, "on_disk": on_disk},
    }


def edge_config(dim: int, on_disk: bool) -> Any:
    import qdrant_edge as qe

    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine, on_disk=on_disk),
        hnsw_config=qe.HnswIndexConfig(**HNSW, on_disk=on_disk),
        max_search_threads=1,
    )


def build_worker(a: argparse.Namespace) -> dict[str, Any]:
    vectors = np.load(a.vectors, mmap_mode="r")
    n, dim = vectors.shape
    out: dict[str, Any] = {}
    if a.engine == "tessera":
        from tessera.engine import Engine

        eng = Engine(a.dir)
        eng.create_collection(NAME, tessera_body(dim, bool(a.on_disk)))
        t0 = time.perf_counter()
        for s in range(0, n, a.batch):
            e = min(n, s + a.batch)
            eng.upsert_arrays(NAME, list(range(s, e)), np.asarray(vectors[s:e]), None)
        out["ingest_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        eng.wait_optimized(NAME, a.timeout)
        out["build_s"] = time.perf_counter() - t0
        out["indexed"] = int(eng.info(NAME)["indexed_vectors_count"])
        t0 = time.perf_counter()
        eng.close()
        out["close_s"] = time.perf_counter() - t0
    else:
        import qdrant_edge as qe

        shard = qe.EdgeShard.create(a.dir, edge_config(dim, bool(a.on_disk)))
        t0 = time.perf_counter()
        for s in range(0, n, a.batch):
            e = min(n, s + a.batch)
            rows = np.asarray(vectors[s:e]).tolist()
            points = [qe.Point(i, v, None) for i, v in zip(range(s, e), rows, strict=True)]
            shard.update(qe.UpdateOperation.upsert_points(points))
        out["ingest_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        shard.optimize()
        out["build_s"] = time.perf_counter() - t0
        out["indexed"] = int(shard.info().indexed_vectors_count)
        t0 = time.perf_counter()
        shard.flush()
        shard.close()
        out["close_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = mem().get("VmHWM")
    return out


def open_worker(a: argparse.Namespace) -> dict[str, Any]:
    stamps = {"python": time.monotonic()}
    if a.engine == "tessera":
        from tessera.engine import Engine

        stamps["imported"] = time.monotonic()
        eng = Engine(a.dir)
        points = int(eng.info(NAME)["points_count"])

        def search(q: np.ndarray) -> list[int]:
            return [int(pid) for pid, _ in eng.search(NAME, q, 10, None, a.ef, False)]  # type: ignore[call-overload]
    else:
        import qdrant_edge as qe

        stamps["imported"] = time.monotonic()
        shard = qe.EdgeShard.load(a.dir, None)
        points = int(shard.info().points_count)
        params = qe.SearchParams(hnsw_ef=a.ef, exact=False)

        def search(q: np.ndarray) -> list[int]:
            req = qe.QueryRequest(
                limit=10, query=qe.Query.Nearest(q.tolist()), params=params, with_payload=False
            )
            return [int(h.id) for h in shard.query(req)]

    stamps["served"] = time.monotonic()
    out: dict[str, Any] = {"stamps": stamps, "points": points, "mem_open": mem()}
    if a.queries_file:
        queries = np.load(a.queries_file)
        truth = np.load(a.truth_file)
        for q in queries[:20]:  # warm-up, not timed
            search(q)
        t0 = time.perf_counter()
        found = [search(q) for q in queries]
        out["qps"] = len(queries) / (time.perf_counter() - t0)
        out["recall"] = common.recall_at_k(found, truth)
        out["mem_queried"] = mem()
    return out


# ---- the parent ------------------------------------------------------------------------


def run_child(args: list[str], timeout: float) -> tuple[dict[str, Any], float]:
    """(the child's JSON result, the monotonic time just before it started)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=str(common.REPO)
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} exited {proc.returncode}: {proc.stderr[-2000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("{")][-1]
    return dict(json.loads(line)), t0


def measure(engine: str, mode: str, a: argparse.Namespace, work: Path) -> dict[str, Any]:
    on_disk = str(int(MODES[mode]))
    d = work / f"{engine}-{mode}"
    common_args = ["--engine", engine, "--dir", str(d), "--on-disk", on_disk]
    res: dict[str, Any] = {}
    record = work / f"{engine}-{mode}.build.json"
    if a.reuse and record.exists():
        res["build"] = json.loads(record.read_text())
    else:
        shutil.rmtree(d, ignore_errors=True)
        if engine == "tessera":
            d.mkdir(parents=True)
        print(f"[{engine} {mode}] building {a.n} x {a.dim} ...", flush=True)
        build, _ = run_child(
            [
                "build",
                *common_args,
                "--vectors",
                str(work / "vectors.npy"),
                "--batch",
                str(a.batch),
            ],
            a.timeout,
        )
        record.write_text(json.dumps(build))
        res["build"] = build
    res["disk_mb"] = common.dir_size_mb(d)
    opens = []
    for i in range(a.repeats):
        last = i == a.repeats - 1
        extra = [
            "--queries-file",
            str(work / "queries.npy"),
            "--truth-file",
            str(work / "truth.npy"),
        ]
        r, t0 = run_child(["open", *common_args, "--ef", str(a.ef), *(extra if last else [])], 900)
        if r["points"] != a.n:
            raise RuntimeError(f"{engine} {mode}: {r['points']} points served, not {a.n}")
        st = r["stamps"]
        r["start_s"] = st["served"] - t0
        r["import_s"] = st["imported"] - t0
        r["open_s"] = st["served"] - st["imported"]
        opens.append(r)
    res["opens"] = opens
    print(f"[{engine} {mode}] {json.dumps(summary(res))}", flush=True)
    return res


def summary(res: dict[str, Any]) -> dict[str, Any]:
    opens = res["opens"]
    last = opens[-1]
    return {
        "ingest_s": res["build"]["ingest_s"],
        "build_s": res["build"]["build_s"],
        "close_s": res["build"]["close_s"],
        "peak_rss_mb": res["build"]["peak_rss_mb"],
        "disk_mb": res["disk_mb"],
        "start_med_s": statistics.median(o["start_s"] for o in opens),
        "start_best_s": min(o["start_s"] for o in opens),
        "import_s": statistics.median(o["import_s"] for o in opens),
        "open_s": statistics.median(o["open_s"] for o in opens),
        "open_best_s": min(o["open_s"] for o in opens),
        "rss_open": last["mem_open"],
        "rss_queried": last.get("mem_queried", {}),
        "qps": last.get("qps"),
        "recall": last.get("recall"),
    }


def print_table(results: dict[str, dict[str, Any]], a: argparse.Namespace) -> None:
    modes = [m for m in a.modes.split(",") if f"tessera-{m}" in results or f"edge-{m}" in results]
    headers = [""]
    for m in modes:
        headers += [f"Tessera {m}", f"Edge {m}", "T/E"]

    def get(key: str, sub: str | None = None) -> Any:
        def f(s: dict[str, Any] | None) -> float | None:
            if s is None:
                return None
            v = s.get(key)
            return v.get(sub) if isinstance(v, dict) and sub else v

        return f

    rows_spec = [
        ("ingest s", get("ingest_s"), 1),
        ("index build s", get("build_s"), 1),
        ("close s", get("close_s"), 2),
        ("peak RSS while building MiB", get("peak_rss_mb"), 0),
        ("data on disk MiB", get("disk_mb"), 0),
        ("start to served s, median", get("start_med_s"), 2),
        ("start to served s, best", get("start_best_s"), 2),
        ("- imports s (median)", get("import_s"), 2),
        ("- open s (median)", get("open_s"), 2),
        ("RSS after open MiB", get("rss_open", "VmRSS"), 0),
        ("- RssAnon", get("rss_open", "RssAnon"), 0),
        ("- RssFile", get("rss_open", "RssFile"), 0),
        (f"QPS (1 thread, ef {a.ef})", get("qps"), 0),
        ("recall@10", get("recall"), 3),
        ("RSS after the queries MiB", get("rss_queried", "VmRSS"), 0),
    ]
    rows = []
    for label, fn, digits in rows_spec:
        row: list[Any] = [label]
        for m in modes:
            t = fn(results.get(f"tessera-{m}"))
            e = fn(results.get(f"edge-{m}"))
            row += [common.fmt(t, digits), common.fmt(e, digits), common.ratio(t, e)]
        rows.append(row)
    common.print_table(headers, rows, title=f"Start-up and memory, {a.n} x {a.dim} cosine")
    if "tessera-ram" in results and "tessera-disk" in results:
        ram = results["tessera-ram"]["rss_open"].get("VmRSS")
        disk = results["tessera-disk"]["rss_open"].get("VmRSS")
        if ram and disk:
            print(f"Tessera RSS after open, on_disk true / false: {disk / ram:.2f} (target < 0.25)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--modes", default="ram,disk")
    ap.add_argument("--engines", default="tessera,edge")
    ap.add_argument("--repeats", type=int, default=3, help="warm opens per engine and mode")
    ap.add_argument("--ef", type=int, default=128)
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--workdir", default=None, help="keep the data here (default: a temp dir)")
    ap.add_argument("--reuse", action="store_true", help="measure again what --workdir holds")
    ap.add_argument("--json", default=None, help="write every raw figure here")
    # worker arguments
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="tessera", help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--on-disk", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--vectors", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--queries-file", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--truth-file", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker is not None:
        fn = build_worker if a.worker == "build" else open_worker
        print(json.dumps(fn(a)), flush=True)
        return

    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="tessera-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    if not (a.reuse and (work / "truth.npy").exists()):
        t0 = time.perf_counter()
        ds = common.make_dataset(a.n, a.dim, a.queries, seed=a.seed)
        np.save(work / "vectors.npy", ds.vectors)
        np.save(work / "queries.npy", ds.queries)
        np.save(work / "truth.npy", common.exact_topk(ds.vectors, ds.queries, 10))
        print(f"data and ground truth: {time.perf_counter() - t0:.1f} s", flush=True)
    results: dict[str, dict[str, Any]] = {}
    raw: dict[str, Any] = {}
    try:
        for mode in a.modes.split(","):
            for engine in a.engines.split(","):
                try:
                    r = measure(engine, mode, a, work)
                except Exception as exc:  # one failed column reads n/a
                    print(f"[{engine} {mode}] failed: {exc}", flush=True)
                    continue
                raw[f"{engine}-{mode}"] = r
                results[f"{engine}-{mode}"] = summary(r)
    finally:
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results, a)
    if a.json:
        Path(a.json).write_text(json.dumps({"summary": results, "raw": raw}, indent=1))
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f}")


if __name__ == "__main__":
    main()
