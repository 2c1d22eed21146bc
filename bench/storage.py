"""Storage (format v1): startup time, checksum cost, size on disk and RSS, Tessera vs Qdrant Edge.

For each vector placement (``--modes ram,disk``: ``on_disk`` false / true on the vector params
and on ``hnsw_config`` alike, in both engines), one run on the same data (``common.make_dataset``,
clustered, 1M x 128 cosine by default; ``--payload`` adds the benchmark payload):

- Tessera: a fresh ``python -m tessera serve --grpc-port 0 --storage DIR``; the points go in
  over REST (``httpx``, ``orjson``-encoded column batches, ``wait=true``); then it waits until
  ``GET /collections/c`` is green with every vector indexed and stops the server with SIGINT
  (a graceful stop writes the last checkpoint).
- Qdrant Edge: a worker process creates the shard with the same config (``EdgeVectorParams
  (on_disk=X)``, ``HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10000,
  on_disk=X)``), upserts the same batches, ``optimize()``, ``flush()``, ``close()``.

Then, per engine, on the closed data:

- startup: from process start (``Popen``) until the data is served in full (Tessera: ``GET
  /collections/c`` answers 200 with ``points_count == n``; Edge: a fresh ``python -c`` process
  has imported ``qdrant_edge``, run ``EdgeShard.load(dir)`` and ``info().points_count == n``),
  ``--repeats`` times with the page cache warm (median and best) and once after ``echo 3 >
  /proc/sys/vm/drop_caches`` (cold; needs root, skipped otherwise);
- where startup goes: ``--repeats`` more starts of the same server code with time stamps
  (``TRACED_SERVE``: imports done, ``TableOfContents()`` begun and done; the fastest start's
  phases are shown), Edge's import / ``load()`` / ``info()`` likewise; a worker process times
  ``TableOfContents(storage)`` with the checksum, WAL, segment-load, graph-load and
  array-read steps wrapped, then profiles the load once more with cProfile (to stderr);
- Tessera's checksum cost alone: ``tessera.fileformat.file_crc`` over every file the newest
  manifest names, in a separate process, warm and cold;
- RSS of the serving process (``/proc/PID/status``: VmRSS, RssAnon, RssFile) right after the
  warm start, and after ``--queries`` searches (top-10, ``hnsw_ef`` 128, one after another);
- size on disk: every file under the collection / shard directory, and what the newest
  manifest names.

The table prints Tessera / Edge ratios from this one run. Other work on this machine moves
timings by up to 2x; compare ratios, not figures across runs.

    .venv/bin/python bench/storage.py                     # 1M x 128, both placements (~40 min)
    .venv/bin/python bench/storage.py --n 100000          # 100k (~5 min)
    .venv/bin/python bench/storage.py --modes disk --no-edge
    .venv/bin/python bench/storage.py --workdir W --reuse # measure again what a run built in W
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import numpy as np

COLLECTION = "c"
HNSW = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10_000}
MODES = {"ram": False, "disk": True}


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def proc_mem(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon, RssFile, RssShmem, VmHWM of a process, in MiB."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                    out[key] = int(rest.split()[0]) / 1024.0
    except OSError:
        pass
    return out


def drop_caches() -> bool:
    """Empty the page cache (root only). True when it worked."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def files_mb(path: Path, match: Any = None) -> float:
    total = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            if match is None or match(os.path.join(root, name)):
                with contextlib.suppress(OSError):
                    total += os.path.getsize(os.path.join(root, name))
    return total / (1 << 20)


def last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"no JSON result in worker output:\n{text[-2000:]}")


def run_worker(args: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args[0]} exited {proc.returncode}: {proc.stderr[-1500:]}")
    return last_json(proc.stdout)


# --------------------------------------------------------------------------------------
# Tessera: the server process
# --------------------------------------------------------------------------------------


# `python -m tessera serve` with time stamps (time.monotonic, comparable across processes):
# interpreter up, imports done, TableOfContents() (the load before the server listens) begun
# and done.
TRACED_SERVE = r"""
import json, sys, time
stamps = {"python": time.monotonic()}
import uvicorn, tessera.cli, tessera.api.app
from tessera.storage.toc import TableOfContents
stamps["imported"] = time.monotonic()
_init = TableOfContents.__init__
def _traced(self, *a, **k):
    stamps["toc_begin"] = time.monotonic()
    _init(self, *a, **k)
    stamps["toc_done"] = time.monotonic()
    with open(sys.argv[1], "w") as fh:
        json.dump(stamps, fh)
TableOfContents.__init__ = _traced
tessera.cli.main(sys.argv[2:])
"""


class Server:
    """``python -m tessera serve`` on ``storage``; ``t0`` is just before the process starts."""

    def __init__(self, storage: Path, venv: str, log_path: Path, trace: Path | None = None) -> None:
        import httpx

        self.port = common.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        python = Path(venv) / "bin" / "python"
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--grpc-port", "0"]
        args += ["--storage", str(storage)]
        if trace is None:
            cmd = [str(python), "-m", "tessera", *args]
        else:  # the same server, with time stamps of its phases written to `trace`
            cmd = [str(python), "-c", TRACED_SERVE, str(trace), *args]
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=str(common.REPO), stdout=self.log, stderr=self.log)
        self.http = httpx.Client(base_url=self.url, timeout=600.0)
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def wait_served(self, n: int | None, timeout: float = 900.0) -> float:
        """Seconds from process start until GET /collections/c answers 200 with n points
        (n None: until /readyz answers)."""
        import httpx

        path = "/readyz" if n is None else f"/collections/{COLLECTION}"
        deadline = self.t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.tail()}")
            try:
                r = self.http.get(path, timeout=5.0)
            except httpx.TransportError:
                time.sleep(0.005)
                continue
            now = time.monotonic()
            if r.status_code == 200 and (n is None or int(r.json()["result"]["points_count"]) == n):
                return now - self.t0
            time.sleep(0.005)
        raise TimeoutError(f"not served within {timeout}s:\n{self.tail()}")

    def info(self) -> dict[str, Any]:
        r = self.http.get(f"/collections/{COLLECTION}")
        r.raise_for_status()
        return dict(r.json()["result"])

    def stop(self, timeout: float = 900.0) -> float:
        """SIGINT (graceful: the last checkpoint is written); seconds until it exited."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("server did not stop within its timeout") from None
        dt = time.monotonic() - t0
        self.http.close()
        self.log.close()
        if self.proc.returncode not in (0, -signal.SIGINT):
            sys.stderr.write(f"server exit code {self.proc.returncode}\n{self.tail()}\n")
        return dt


def fastest(phases: dict[str, list[float]]) -> dict[str, float]:
    """The phases of the fastest start (the least disturbed by other work on the machine)."""
    runs = len(next(iter(phases.values())))
    best = min(range(runs), key=lambda i: sum(v[i] for v in phases.values()))
    out = {k: v[best] for k, v in phases.items()}
    out["total_s"] = sum(out.values())
    return out


def tessera_config(dim: int, on_disk: bool) -> dict[str, Any]:
    return {
        "vectors": {"size": dim, "distance": "Cosine", "on_disk": on_disk},
        "hnsw_config": {**HNSW, "on_disk": on_disk},
    }


def tessera_build(
    ds: common.Dataset, storage: Path, on_disk: bool, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    import orjson

    srv = Server(storage, args.venv, log)
    try:
        srv.wait_served(None, timeout=120)
        r = srv.http.put(f"/collections/{COLLECTION}", json=tessera_config(ds.dim, on_disk))
        r.raise_for_status()
        headers = {"content-type": "application/json"}
        t0 = time.monotonic()
        for s, e in common.batches(ds.n, args.batch):
            body: dict[str, Any] = {"ids": list(range(s, e)), "vectors": ds.vectors[s:e]}
            if args.payload:
                body["payloads"] = ds.payloads(s, e)
            data = orjson.dumps({"batch": body}, option=orjson.OPT_SERIALIZE_NUMPY)
            r = srv.http.put(
                f"/collections/{COLLECTION}/points?wait=true", content=data, headers=headers
            )
            if r.status_code != 200:
                raise RuntimeError(f"upsert {s}..{e}: {r.status_code} {r.text[:300]}")
        t_ingest = time.monotonic() - t0
        common.log(f"  tessera: {ds.n} points in {t_ingest:.1f} s; waiting for green")
        t1 = time.monotonic()
        green_since = None
        info: dict[str, Any] = {}
        while True:
            info = srv.info()
            now = time.monotonic()
            if info["status"] == "green":
                if int(info["indexed_vectors_count"] or 0) >= ds.n:
                    green_since = now
                    break
                green_since = green_since or now
                if now - green_since >= 5.0:
                    break
            else:
                green_since = None
            if now - t1 > args.timeout:
                raise TimeoutError(f"not green after {args.timeout}s: {info}")
            time.sleep(0.2)
        t_index = green_since - t1
        mem = proc_mem(srv.pid)
        common.log(f"  tessera: green after {t_index:.1f} s; {info['segments_count']} segments")
    except BaseException:
        srv.stop()
        raise
    t_stop = srv.stop()
    shard = storage / "collections" / COLLECTION / "shard"
    return {
        "disk_mb": files_mb(storage / "collections" / COLLECTION),
        "disk_vec_mb": files_mb(shard / "segments", lambda p: os.path.basename(p)[:3] == "vec"),
        "disk_hnsw_mb": files_mb(shard / "segments", lambda p: os.path.basename(p)[:4] == "hnsw"),
        "disk_wal_mb": files_mb(shard / "wal"),
        "segment_dirs": len(list((shard / "segments").iterdir())),
        "manifests": len(list(shard.glob("manifest.*.json"))),
        "ingest_s": t_ingest,
        "index_s": t_index,
        "stop_s": t_stop,
        "segments": int(info["segments_count"]),
        "indexed": int(info["indexed_vectors_count"] or 0),
        "build_hwm_mb": mem.get("VmHWM"),
        "build_rss_mb": mem.get("VmRSS"),
    }


def tessera_queries(srv: Server, queries: np.ndarray, ef: int) -> float:
    import orjson

    headers = {"content-type": "application/json"}
    t0 = time.monotonic()
    for q in queries:
        body = orjson.dumps(
            {"query": q, "limit": 10, "params": {"hnsw_ef": ef}},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        r = srv.http.post(f"/collections/{COLLECTION}/points/query", content=body, headers=headers)
        if r.status_code != 200 or len(r.json()["result"]["points"]) != 10:
            raise RuntimeError(f"query: {r.status_code} {r.text[:300]}")
    return time.monotonic() - t0


def tessera_measure(
    ds: common.Dataset, storage: Path, args: argparse.Namespace, log: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    shard = storage / "collections" / COLLECTION / "shard"
    warm: list[float] = []
    for i in range(args.repeats):
        srv = Server(storage, args.venv, log)
        try:
            warm.append(srv.wait_served(ds.n))
            if i == 0:
                out["mem_start"] = proc_mem(srv.pid)
                out["queries_s"] = tessera_queries(srv, ds.queries[: args.queries], args.ef)
                out["mem_queries"] = proc_mem(srv.pid)
        finally:
            srv.stop()
    out["start_warm_s"] = common.median(warm)
    out["start_warm_min_s"] = min(warm)
    out["start_warm_all"] = warm
    phases: dict[str, list[float]] = {"import_s": [], "setup_s": [], "load_s": [], "serve_s": []}
    trace = log.with_name("trace.json")
    for _ in range(args.repeats):
        srv = Server(storage, args.venv, log, trace=trace)
        try:
            served = srv.wait_served(ds.n) + srv.t0
        finally:
            srv.stop()
        st = json.loads(trace.read_text())
        phases["import_s"].append(st["imported"] - srv.t0)
        phases["setup_s"].append(st["toc_begin"] - st["imported"])
        phases["load_s"].append(st["toc_done"] - st["toc_begin"])
        phases["serve_s"].append(served - st["toc_done"])
    out["traced"] = fastest(phases)
    out["traced_all"] = phases
    out["crc_warm"] = run_worker(["crc", "--storage", str(storage)], args.timeout)
    if args.cold and drop_caches():
        srv = Server(storage, args.venv, log)
        try:
            out["start_cold_s"] = srv.wait_served(ds.n)
            out["mem_cold_start"] = proc_mem(srv.pid)
        finally:
            srv.stop()
        drop_caches()
        out["crc_cold"] = run_worker(["crc", "--storage", str(storage)], args.timeout)
    # Warm again (the load profile is about CPU, not the disk).
    run_worker(["crc", "--storage", str(storage)], args.timeout)
    out["load"] = run_worker(["tessera-load", "--storage", str(storage)], args.timeout)
    out["disk_after_mb"] = files_mb(storage / "collections" / COLLECTION)
    out["manifests"] = len(list(shard.glob("manifest.*.json")))
    return out


# --------------------------------------------------------------------------------------
# Qdrant Edge
# --------------------------------------------------------------------------------------

# The reopen process: as little as possible besides qdrant_edge (no numpy), so that its RSS
# is the shard's. Protocol: prints "LOADED {json}" once served, then on stdin "q" runs the
# queries (from a JSON file) and prints "DONE {json}", "x" closes and exits.
EDGE_OPEN = r"""
import json, sys, time
t_start = time.monotonic()
import qdrant_edge as qe
t_import = time.monotonic()
path, n, queries_path, ef = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
shard = qe.EdgeShard.load(path)
t_load = time.monotonic()
info = shard.info()
assert int(info.points_count) == n, (info.points_count, n)
t_info = time.monotonic()
print("LOADED " + json.dumps({"t_start": t_start, "t_import": t_import, "t_load": t_load,
      "t_info": t_info, "segments": int(info.segments_count),
      "indexed": int(info.indexed_vectors_count)}), flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "q":
        with open(queries_path) as fh:
            qs = json.load(fh)
        params = qe.SearchParams(hnsw_ef=ef)
        t0 = time.monotonic()
        for v in qs:
            hits = shard.query(qe.QueryRequest(limit=10, query=qe.Query.Nearest(v),
                               params=params, with_payload=False, with_vector=False))
            assert len(hits) == 10
        print("DONE " + json.dumps({"queries_s": time.monotonic() - t0}), flush=True)
    elif cmd == "x":
        break
shard.close()
"""


def edge_config(dim: int, on_disk: bool) -> Any:
    import qdrant_edge as qe

    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine, on_disk=on_disk),
        hnsw_config=qe.HnswIndexConfig(**HNSW, on_disk=on_disk),
    )


def edge_build_worker(args: argparse.Namespace) -> None:
    import qdrant_edge as qe

    vectors = np.load(args.vectors, mmap_mode="r")
    payloads = None
    if args.payload:
        ds = common.make_dataset(args.n, args.dim, n_queries=1, seed=args.seed)
        payloads = ds
    shard = qe.EdgeShard.create(args.dir, edge_config(vectors.shape[1], bool(args.on_disk)))
    t0 = time.monotonic()
    for s, e in common.batches(len(vectors), args.batch):
        vecs = np.asarray(vectors[s:e]).tolist()
        if payloads is not None:
            pls = payloads.payloads(s, e)
            pts = [qe.Point(s + j, v, p) for j, (v, p) in enumerate(zip(vecs, pls))]
        else:
            pts = [qe.Point(s + j, v) for j, v in enumerate(vecs)]
        shard.update(qe.UpdateOperation.upsert_points(pts))
    shard.flush()
    t_ingest = time.monotonic() - t0
    common.log(f"  edge: {len(vectors)} points in {t_ingest:.1f} s; optimize()")
    t1 = time.monotonic()
    shard.optimize()
    t_index = time.monotonic() - t1
    info = shard.info()
    mem = proc_mem(os.getpid())
    t2 = time.monotonic()
    shard.flush()
    shard.close()
    t_stop = time.monotonic() - t2
    print(
        json.dumps(
            {
                "ingest_s": t_ingest,
                "index_s": t_index,
                "stop_s": t_stop,
                "segments": int(info.segments_count),
                "indexed": int(info.indexed_vectors_count),
                "build_hwm_mb": mem.get("VmHWM"),
                "build_rss_mb": mem.get("VmRSS"),
            }
        )
    )


class EdgeProc:
    def __init__(self, shard_dir: Path, n: int, queries_json: Path, ef: int) -> None:
        cmd = [sys.executable, "-c", EDGE_OPEN, str(shard_dir), str(n), str(queries_json), str(ef)]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def expect(self, tag: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(tag + " "):
            self.proc.kill()
            raise RuntimeError(f"Edge worker: expected {tag}, got {line!r}")
        return dict(json.loads(line[len(tag) + 1 :]))

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def loaded(self) -> dict[str, Any]:
        d = self.expect("LOADED")
        d["served_s"] = time.monotonic() - self.t0
        d["import_s"] = d["t_import"] - self.t0
        d["load_s"] = d["t_load"] - d["t_import"]
        d["serve_s"] = d["served_s"] - d["load_s"] - d["import_s"]
        return d

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.send("x")
        try:
            self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def edge_measure(
    ds: common.Dataset, shard_dir: Path, queries_json: Path, args: argparse.Namespace
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    warm: list[float] = []
    phases: dict[str, list[float]] = {"import_s": [], "load_s": [], "serve_s": []}
    for i in range(args.repeats):
        p = EdgeProc(shard_dir, ds.n, queries_json, args.ef)
        try:
            d = p.loaded()
            warm.append(d["served_s"])
            for k, v in phases.items():
                v.append(d[k])
            if i == 0:
                out["open"] = d
                out["mem_start"] = proc_mem(p.proc.pid)
                p.send("q")
                out["queries_s"] = p.expect("DONE")["queries_s"]
                out["mem_queries"] = proc_mem(p.proc.pid)
        finally:
            p.close()
    out["start_warm_s"] = common.median(warm)
    out["start_warm_min_s"] = min(warm)
    out["start_warm_all"] = warm
    out["traced"] = fastest(phases)
    out["traced_all"] = phases
    out["disk_after_mb"] = files_mb(shard_dir)
    if args.cold and drop_caches():
        p = EdgeProc(shard_dir, ds.n, queries_json, args.ef)
        try:
            d = p.loaded()
            out["start_cold_s"] = d["served_s"]
            out["open_cold"] = d
            out["mem_cold_start"] = proc_mem(p.proc.pid)
        finally:
            p.close()
    return out


# --------------------------------------------------------------------------------------
# Workers: checksums, Tessera's load path
# --------------------------------------------------------------------------------------


def newest_manifest_files(storage: Path) -> list[Path]:
    from tessera.shard.shard import manifest_generations, manifest_name, read_manifest

    shard = storage / "collections" / COLLECTION / "shard"
    gen = manifest_generations(shard)[0]
    manifest = read_manifest(shard / manifest_name(gen))
    paths = []
    for entry in manifest["segments"]:
        for files in entry["files"].values():
            paths += [shard / "segments" / entry["id"] / f["name"] for f in files]
    return paths


def crc_worker(args: argparse.Namespace) -> None:
    from tessera.fileformat import file_crc

    paths = newest_manifest_files(Path(args.storage))
    t0 = time.monotonic()
    total = 0
    for p in paths:
        size, _ = file_crc(p)
        total += size
    dt = time.monotonic() - t0
    print(json.dumps({"files": len(paths), "bytes": total, "seconds": dt}))


def load_worker(args: argparse.Namespace) -> None:
    """Tessera's load path in this process: imports, then TableOfContents(storage) with its
    steps timed (wrappers; a few calls each, so no measurable overhead), then cProfile."""
    import cProfile
    import pstats

    import tessera.segment.persist as persist
    import tessera.shard.shard as shard_mod
    from tessera.segment.ann_index import HnswIndex
    from tessera.storage.toc import TableOfContents

    spent: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.monotonic()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] = spent.get(name, 0.0) + time.monotonic() - t

        return wrapper

    shard_mod.verify_segments = timed("verify (crc)", shard_mod.verify_segments)
    shard_mod.load_segment = timed("load_segment", shard_mod.load_segment)
    persist.read_array_file = timed("  read_array_file", persist.read_array_file)
    persist._load_field_indexes = timed("  field indexes", persist._load_field_indexes)
    hload = HnswIndex.load.__func__  # type: ignore[attr-defined]
    HnswIndex.load = classmethod(timed("  faiss read_index", hload))  # type: ignore[method-assign]
    shard_mod.Wal = timed("WAL open", shard_mod.Wal)
    shard_mod.LocalShard._replay = timed("WAL replay", shard_mod.LocalShard._replay)

    storage = Path(args.storage)
    t1 = time.monotonic()
    toc = TableOfContents(storage)
    t_load = time.monotonic() - t1
    steps = dict(spent)  # the wrappers stay on for the profiled run below
    col = toc.get(COLLECTION)
    with col.shard.read() as holder:
        points = holder.live_count()
    for c in toc.collections.values():
        c.close(flush=False)
    del toc, col

    prof = cProfile.Profile()
    prof.enable()
    toc = TableOfContents(storage)
    prof.disable()
    for c in toc.collections.values():
        c.close(flush=False)
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative")
    common.log("  tessera load path, cProfile (cumulative):")
    stats.stream = sys.stderr  # type: ignore[attr-defined]
    stats.print_stats(22)
    top = []
    for (fname, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        top.append((tt, f"{Path(fname).name}:{line}({func})", nc, ct))
    top.sort(reverse=True)
    print(
        json.dumps(
            {
                "toc_s": t_load,
                "points": points,
                "steps": steps,
                "self_time_top": [
                    {"fn": f, "self_s": tt, "calls": nc, "cum_s": ct} for tt, f, nc, ct in top[:8]
                ],
            }
        )
    )


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------


def num(d: Any, *keys: str) -> float | None:
    cur: Any = d
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return float(cur) if isinstance(cur, int | float) else None


def f2(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.2f}"


def f0(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def mem3(m: Any) -> str:
    if not isinstance(m, dict) or not m:
        return "-"
    return f"{m.get('VmRSS', 0):.0f} / {m.get('RssAnon', 0):.0f} / {m.get('RssFile', 0):.0f}"


# One table row: label, then per engine a function of its result dict giving the number (for
# the ratio) and one giving the text (default: the number formatted); None: no ratio.
Getter = Any


def print_results(res: dict[str, Any], n: int, dim: int, args: argparse.Namespace) -> None:
    headers = ["metric"]
    for mode in args.modes:
        d = str(MODES[mode]).lower()
        headers += [f"Tessera on_disk={d}", f"Edge on_disk={d}", "T/E"]
    rows: list[list[Any]] = []

    def row(
        label: str,
        t_num: Getter,
        e_num: Getter,
        fmt: Any = f2,
        t_text: Getter = None,
        e_text: Getter = None,
        ratio: bool = True,
    ) -> None:
        cells: list[Any] = [label]
        for mode in args.modes:
            t = res.get(mode, {}).get("tessera")
            e = res.get(mode, {}).get("edge")
            tv = t_num(t) if isinstance(t, dict) and t_num else None
            ev = e_num(e) if isinstance(e, dict) and e_num else None
            ts = "n/a" if isinstance(t, str) else (t_text(t) if t_text and t else fmt(tv))
            es = "n/a" if isinstance(e, str) else (e_text(e) if e_text and e else fmt(ev))
            cells += [ts, es, common.ratio(tv, ev) if ratio else ""]
        rows.append(cells)

    def both(*keys: str) -> tuple[Getter, Getter]:
        return (lambda r: num(r, *keys)), (lambda r: num(r, *keys))

    row("ingest s (Tessera REST, Edge in-process)", *both("build", "ingest_s"))
    row("index build s (to green / optimize())", *both("build", "index_s"))
    row("graceful stop / close s", *both("build", "stop_s"))
    row("segments", *both("build", "segments"), fmt=f0, ratio=False)
    row("peak RSS while building MiB", *both("build", "build_hwm_mb"), fmt=f0)
    row("data on disk MiB, after the build", *both("build", "disk_mb"), fmt=f0)
    row(
        "  of which vec*.tsr / hnsw*.faiss / wal MiB",
        None,
        None,
        t_text=lambda r: " / ".join(
            f0(num(r, "build", k)) for k in ("disk_vec_mb", "disk_hnsw_mb", "disk_wal_mb")
        ),
        e_text=lambda r: "",
        ratio=False,
    )
    row("data on disk MiB, after the restarts", *both("m", "disk_after_mb"), fmt=f0)
    row(
        "  files the newest manifest names MiB (checksummed at start)",
        lambda r: (num(r, "m", "crc_warm", "bytes") or 0) / 2**20 or None,
        None,
        fmt=f0,
        ratio=False,
    )
    row(
        f"startup s, warm: process start -> {n:,} points served, median of {args.repeats}",
        *both("m", "start_warm_s"),
    )
    row("  best of them", *both("m", "start_warm_min_s"))
    row(
        f"  fastest of {args.repeats} traced starts: total",
        *both("m", "traced", "total_s"),
    )
    row(
        "    process start -> imports done (tessera.api.app+uvicorn / qdrant_edge)",
        *both("m", "traced", "import_s"),
    )
    row(
        "    imports done -> load begins (settings, logging, app)",
        lambda r: num(r, "m", "traced", "setup_s"),
        None,
        ratio=False,
    )
    row(
        "    load (TableOfContents() / EdgeShard.load())",
        *both("m", "traced", "load_s"),
    )
    row(
        "    load done -> served (uvicorn start, GET / info())",
        *both("m", "traced", "serve_s"),
    )
    row(
        "    load steps (worker): checksums / faiss read_index / WAL open",
        None,
        None,
        t_text=lambda r: " / ".join(
            f2(num(r, "m", "load", "steps", k))
            for k in ("verify (crc)", "  faiss read_index", "WAL open")
        ),
        e_text=lambda r: "",
        ratio=False,
    )
    row("startup s, cold (after drop_caches)", *both("m", "start_cold_s"))
    row(
        "checksums alone s, warm / cold (file_crc, own process)",
        lambda r: num(r, "m", "crc_warm", "seconds"),
        None,
        t_text=lambda r: (
            f"{f2(num(r, 'm', 'crc_warm', 'seconds'))} / {f2(num(r, 'm', 'crc_cold', 'seconds'))}"
        ),
        ratio=False,
    )
    for key, label in (
        ("mem_start", "RSS after a warm start"),
        ("mem_queries", f"RSS after {args.queries} queries"),
        ("mem_cold_start", "RSS after a cold start"),
    ):
        row(
            f"{label} MiB: VmRSS / RssAnon / RssFile",
            *both("m", key, "VmRSS"),
            t_text=lambda r, k=key: mem3(r.get("m", {}).get(k)),
            e_text=lambda r, k=key: mem3(r.get("m", {}).get(k)),
        )
    row(
        f"{args.queries} queries s after the warm start (REST vs in-process)",
        *both("m", "queries_s"),
        ratio=False,
    )
    common.print_table(
        headers,
        rows,
        title=f"Storage: {n:,} x {dim} cosine, m=16 ef_construct=100, payload "
        f"{'yes' if args.payload else 'no'}; ratios Tessera / Edge (lower is better)",
    )
    for mode in args.modes:
        for eng in ("tessera", "edge"):
            r = res.get(mode, {}).get(eng)
            if isinstance(r, str):
                print(f"{eng} {mode}: {r}")
    for mode in args.modes:
        t = res.get(mode, {}).get("tessera")
        if not isinstance(t, dict) or "m" not in t:
            continue
        m = t["m"]
        load = m.get("load", {})
        print(f"\nTessera on_disk={str(MODES[mode]).lower()}: load steps (s)")
        for k, v in load.get("steps", {}).items():
            print(f"  {k:22s} {v:7.3f}")
        print("  top self time under cProfile:")
        for e in load.get("self_time_top", []):
            print(f"    {e['self_s']:7.3f} s  {e['calls']:>9} calls  {e['fn']}")
        cw, cc = m.get("crc_warm"), m.get("crc_cold")
        if cw:
            line = f"  checksums: {cw['files']} files, {cw['bytes'] / 2**20:.0f} MiB, "
            line += f"{cw['bytes'] / cw['seconds'] / 1e9:.2f} GB/s warm"
            if cc:
                line += f", {cc['bytes'] / cc['seconds'] / 1e9:.2f} GB/s cold"
            print(line)
        print(f"  warm starts s: {', '.join(f'{x:.2f}' for x in m.get('start_warm_all', []))}")
        for k, v in m.get("traced_all", {}).items():
            print(f"  traced {k}: {', '.join(f'{x:.2f}' for x in v)}")
        print(
            f"  manifest files on disk: {t.get('build', {}).get('manifests')} after the build, "
            f"{m.get('manifests')} after the restarts"
        )
        e = res.get(mode, {}).get("edge")
        if isinstance(e, dict) and "m" in e:
            ws = ", ".join(f"{x:.2f}" for x in e["m"].get("start_warm_all", []))
            print(f"Edge on_disk={str(MODES[mode]).lower()} warm starts s: {ws}")


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def reuse_or_build(
    args: argparse.Namespace, record: Path, data: Path, build: Any
) -> dict[str, Any]:
    """The build's figures: from `record` when --reuse finds it and its data, else build
    (into a fresh `data`) and write them there."""
    if args.reuse and record.exists() and data.exists():
        common.log(f"  reusing {data} (build figures from {record.name})")
        return dict(json.loads(record.read_text()))
    common.log(f"  building {data.name}")
    shutil.rmtree(data, ignore_errors=True)
    record.unlink(missing_ok=True)
    result: dict[str, Any] = build()
    record.write_text(json.dumps(result))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    common.add_data_args(ap, n=1_000_000, queries=500)
    ap.add_argument(
        "--venv", default=str(common.DEFAULT_VENV), help="venv whose python runs tessera"
    )
    ap.add_argument("--batch", type=int, default=2000, help="points per upsert (default 2000)")
    ap.add_argument("--modes", default="ram,disk", help="ram (on_disk false), disk (true)")
    ap.add_argument("--repeats", type=int, default=5, help="warm starts per engine (median, best)")
    ap.add_argument("--ef", type=int, default=128, help="hnsw_ef of the queries")
    ap.add_argument("--payload", action="store_true", help="with the benchmark payload")
    ap.add_argument("--no-cold", dest="cold", action="store_false", help="skip drop_caches")
    ap.add_argument("--no-edge", action="store_true")
    ap.add_argument("--no-tessera", action="store_true")
    ap.add_argument("--timeout", type=float, default=3600.0, help="per build / worker")
    ap.add_argument("--workdir", default=None, help="keep the data here (default: a temp dir)")
    ap.add_argument("--json", default=None, help="write every raw figure here")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --workdir: measure the data a previous run built there (its build figures)",
    )
    # workers
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--storage", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--vectors", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--on-disk", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        {"crc": crc_worker, "tessera-load": load_worker, "edge-build": edge_build_worker}[
            args.worker
        ](args)
        return

    args.modes = [m for m in args.modes.split(",") if m]
    for m in args.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    ds = common.make_dataset(args.n, args.dim, n_queries=args.queries, seed=args.seed)
    rev = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=common.REPO, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"storage: tessera {rev or '?'}, {ds.n:,} x {ds.dim} cosine, batches of {args.batch}, "
        f"payload {'yes' if args.payload else 'no'}, modes {args.modes}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    own = args.workdir is None
    wd = Path(args.workdir or tempfile.mkdtemp(prefix="bench-storage-"))
    wd.mkdir(parents=True, exist_ok=True)
    vec_path = wd / "vectors.npy"
    np.save(vec_path, ds.vectors)
    queries_json = wd / "queries.json"
    queries_json.write_text(json.dumps(ds.queries.tolist()))
    res: dict[str, Any] = {}
    try:
        for mode in args.modes:
            on_disk = MODES[mode]
            res[mode] = {}
            if not args.no_tessera:
                storage = wd / f"tessera-{mode}"
                try:
                    r: dict[str, Any] = {
                        "build": reuse_or_build(
                            args,
                            wd / f"build-tessera-{mode}.json",
                            storage,
                            lambda st=storage, d=on_disk: tessera_build(
                                ds, st, d, args, wd / "server.log"
                            ),
                        )
                    }
                    common.log(f"[{mode}] Tessera: startups")
                    r["m"] = tessera_measure(ds, storage, args, wd / "server.log")
                    res[mode]["tessera"] = r
                except Exception as exc:
                    res[mode]["tessera"] = f"failed: {common.describe(exc)}"
                    common.log(f"  tessera failed: {exc}")
                if own:
                    shutil.rmtree(storage, ignore_errors=True)
            if not args.no_edge:
                shard_dir = wd / f"edge-{mode}"
                worker = ["edge-build", "--dir", str(shard_dir), "--vectors", str(vec_path)]
                worker += ["--on-disk", str(int(on_disk)), "--batch", str(args.batch)]
                worker += ["--n", str(args.n), "--dim", str(args.dim), "--seed", str(args.seed)]
                worker += ["--payload"] if args.payload else []

                def edge_build(w: list[str] = worker, d: Path = shard_dir) -> dict[str, Any]:
                    b = run_worker(w, args.timeout)
                    b["disk_mb"] = files_mb(d)
                    return b

                try:
                    b = reuse_or_build(args, wd / f"build-edge-{mode}.json", shard_dir, edge_build)
                    common.log(f"[{mode}] Edge: reopens")
                    res[mode]["edge"] = {
                        "build": b,
                        "m": edge_measure(ds, shard_dir, queries_json, args),
                    }
                except Exception as exc:
                    res[mode]["edge"] = f"failed: {common.describe(exc)}"
                    common.log(f"  edge failed: {exc}")
                if own:
                    shutil.rmtree(shard_dir, ignore_errors=True)
    finally:
        if own:
            shutil.rmtree(wd, ignore_errors=True)
    print_results(res, ds.n, ds.dim, args)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
