"""Shared pieces of the benchmarks: data, ground truth, timing, memory, a Tessera server.

Everything here is deterministic for a given seed, so that every engine in one run (and every
run with the same flags) sees exactly the same points, payloads and queries.

The data is synthetic but shaped like real embeddings: points lie in clusters, and inside each
cluster they vary along a few directions only (low intrinsic dimension), plus a little
isotropic noise. Each point carries a payload with

- ``kw``:   one of 10 keywords ``k0``..``k9`` drawn from a Zipf law; the exponent is chosen so
  that ``k0`` holds ~20% of the points (the "20% filter"),
- ``rare``: the keyword ``"yes"`` on ~0.5% of the points at random, ``"no"`` elsewhere (the
  "0.5% filter"),
- ``f``:    a float, uniform in [0, 1).
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VENV = REPO / ".venv"

KEYWORDS = [f"k{i}" for i in range(10)]
# p(k_i) ~ (i + 1) ** -ZIPF_S over 10 values; with s = 0.5, p(k0) = 0.199.
ZIPF_S = 0.5
RARE_P = 0.005
FILTERS = ("none", "kw20", "rare05")


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


@dataclass
class Dataset:
    vectors: np.ndarray  # (n, dim) float32, raw (not normalised)
    queries: np.ndarray  # (q, dim) float32, raw
    kw: np.ndarray  # (n,) int8 index into KEYWORDS
    rare: np.ndarray  # (n,) bool
    f: np.ndarray  # (n,) float64
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def payload(self, i: int) -> dict[str, Any]:
        return {
            "kw": KEYWORDS[self.kw[i]],
            "rare": "yes" if self.rare[i] else "no",
            "f": float(self.f[i]),
        }

    def payloads(self, start: int, stop: int) -> list[dict[str, Any]]:
        kws = self.kw[start:stop].tolist()
        rares = self.rare[start:stop].tolist()
        fs = self.f[start:stop].tolist()
        return [
            {"kw": KEYWORDS[k], "rare": "yes" if r else "no", "f": x}
            for k, r, x in zip(kws, rares, fs)
        ]

    def mask(self, flt: str) -> np.ndarray | None:
        """Boolean mask of the points a named filter keeps (None: no filter)."""
        if flt == "none":
            return None
        if flt == "kw20":
            return self.kw == 0
        if flt == "rare05":
            return self.rare
        raise ValueError(f"unknown filter {flt!r}")

    def selectivity(self, flt: str) -> float:
        m = self.mask(flt)
        return 1.0 if m is None else float(m.mean())


def zipf_probs(k: int = 10, s: float = ZIPF_S) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1, dtype=np.float64) ** s
    return w / w.sum()


def make_dataset(
    n: int = 100_000,
    dim: int = 128,
    n_queries: int = 1000,
    seed: int = 42,
    n_clusters: int | None = None,
    intrinsic_dim: int = 32,
    noise: float = 0.05,
) -> Dataset:
    """Clustered low-intrinsic-dimension vectors, payloads and held-out queries.

    x = center[c] + B[c] @ z + noise * e, with z ~ N(0, I_r) in r = intrinsic_dim dims and
    B[c] a random (dim x r) basis per cluster, scaled so that the within-cluster spread is
    comparable to the distance between centers. Queries are fresh draws from the same
    distribution (not copies of stored points).
    """
    rng = np.random.default_rng(seed)
    if n_clusters is None:
        n_clusters = max(8, min(1024, n // 2000))
    r = min(intrinsic_dim, dim)
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    bases = rng.standard_normal((n_clusters, r, dim)).astype(np.float32) * (0.6 / np.sqrt(r))

    def draw(count: int, rng_: np.random.Generator) -> np.ndarray:
        labels = rng_.integers(0, n_clusters, size=count)
        out = np.empty((count, dim), dtype=np.float32)
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
        for c in range(n_clusters):
            idx = order[bounds[c] : bounds[c + 1]]
            if idx.size == 0:
                continue
            z = rng_.standard_normal((idx.size, r)).astype(np.float32)
            out[idx] = centers[c] + z @ bases[c]
        for s in range(0, count, 65536):  # in chunks: a float64 (n, dim) draw is big at 1M
            e = min(count, s + 65536)
            out[s:e] += noise * rng_.standard_normal((e - s, dim), dtype=np.float32)
        return out

    vectors = draw(n, rng)
    queries = draw(n_queries, np.random.default_rng(seed + 1))
    prng = np.random.default_rng(seed + 2)
    kw = prng.choice(len(KEYWORDS), size=n, p=zipf_probs()).astype(np.int8)
    rare = prng.random(n) < RARE_P
    f = prng.random(n)
    meta = {"n_clusters": n_clusters, "intrinsic_dim": r, "noise": noise}
    return Dataset(vectors, queries, kw, rare, f, seed, meta)


def normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32)


def exact_topk(
    base: np.ndarray,
    queries: np.ndarray,
    k: int = 10,
    mask: np.ndarray | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """Exact top-k ids by cosine (inputs need not be normalised); -1 pads short results."""
    xb = normalize(base)
    xq = normalize(queries)
    ids = np.arange(xb.shape[0])
    if mask is not None:
        ids = np.flatnonzero(mask)
        xb = xb[ids]
    kk = min(k, xb.shape[0])
    if chunk is None:  # keep the (chunk x n) score block near 128 MiB
        chunk = max(1, min(1024, (32 << 20) // max(1, xb.shape[0])))
    out = np.full((xq.shape[0], k), -1, dtype=np.int64)
    if kk == 0:
        return out
    for s in range(0, xq.shape[0], chunk):
        sc = xq[s : s + chunk] @ xb.T
        part = np.argpartition(-sc, kk - 1, axis=1)[:, :kk]
        psc = np.take_along_axis(sc, part, axis=1)
        order = np.argsort(-psc, axis=1, kind="stable")
        out[s : s + chunk, :kk] = ids[np.take_along_axis(part, order, axis=1)]
    return out


def ground_truth(ds: Dataset, k: int = 10, filters: Sequence[str] = FILTERS) -> dict[str, Any]:
    return {flt: exact_topk(ds.vectors, ds.queries, k, ds.mask(flt)) for flt in filters}


def recall_at_k(found: Sequence[Sequence[int]], truth: np.ndarray, k: int = 10) -> float:
    """Mean |found[:k] & truth[:k]| / |truth[:k]| over the queries."""
    total = 0.0
    for got, exp in zip(found, truth):
        want = {int(x) for x in exp[:k] if x >= 0}
        if not want:
            total += 1.0
            continue
        total += len(want & {int(x) for x in list(got)[:k]}) / len(want)
    return total / max(1, len(truth))


# --------------------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    box = [0.0]
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - t0


def percentile(xs: Sequence[float], p: float) -> float:
    if not xs:
        return float("nan")
    return float(np.percentile(np.asarray(xs, dtype=np.float64), p))


@dataclass
class LatencyRun:
    qps: float
    p50_ms: float
    p99_ms: float
    results: list[Any]
    wall_s: float
    lat_ms: list[float] = field(default_factory=list)


def run_queries(
    fn: Callable[[int], Any],
    n_calls: int,
    threads: int = 1,
    per_call: int = 1,
    warmup: int = 10,
) -> LatencyRun:
    """Call ``fn(i)`` for i in range(n_calls) from ``threads`` threads.

    QPS counts ``per_call`` queries per call (16 for a batch of 16); latencies are per call.
    Results come back in call order.
    """
    for i in range(min(warmup, n_calls)):
        fn(i)
    results: list[Any] = [None] * n_calls
    lat: list[float] = [0.0] * n_calls
    next_i = [0]
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= n_calls:
                return
            t0 = time.perf_counter()
            results[i] = fn(i)
            lat[i] = time.perf_counter() - t0

    gc.collect()
    t0 = time.perf_counter()
    if threads <= 1:
        worker()
    else:
        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    wall = time.perf_counter() - t0
    return LatencyRun(
        qps=n_calls * per_call / wall,
        p50_ms=percentile(lat, 50) * 1e3,
        p99_ms=percentile(lat, 99) * 1e3,
        results=results,
        wall_s=wall,
        lat_ms=[x * 1e3 for x in lat],
    )


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of a process (default: this one) in MiB, from /proc."""
    path = f"/proc/{pid or 'self'}/status"
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def hwm_mb(pid: int | None = None) -> float:
    """Peak resident set size (VmHWM) in MiB."""
    path = f"/proc/{pid or 'self'}/status"
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def dir_size_mb(path: str | Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total / (1024 * 1024)


def batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for s in range(0, n, size):
        yield s, min(n, s + size)


# --------------------------------------------------------------------------------------
# Table output
# --------------------------------------------------------------------------------------


def fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, float):
        if x != x:  # NaN
            return "-"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.{digits}f}"
    return str(x)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or a != a or b != b or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    if title:
        print(f"\n{title}")
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in cells:
        print(
            " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        )
    sys.stdout.flush()


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------------------
# Tessera server as a subprocess
# --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TesseraUnavailable(RuntimeError):
    """The Tessera server could not be started or reached."""


class TesseraServer:
    """``python -m tessera serve`` on a free port with a temporary storage directory.

    Use as a context manager; ``url`` is the REST base URL and ``pid`` the server's pid (for
    RSS). With ``url=`` given, nothing is started and that server is used as is (pid unknown).
    """

    def __init__(
        self,
        venv: str | Path | None = None,
        port: int | None = None,
        storage: str | Path | None = None,
        url: str | None = None,
        startup_timeout: float = 60.0,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.venv = Path(venv) if venv else DEFAULT_VENV
        self.port = port or free_port()
        self._own_storage = storage is None
        self.storage = Path(storage) if storage else None
        self.external_url = url
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return self.external_url or f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def rss_mb(self) -> float:
        return rss_mb(self.pid) if self.pid else float("nan")

    def hwm_mb(self) -> float:
        return hwm_mb(self.pid) if self.pid else float("nan")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def start(self) -> TesseraServer:
        if self.external_url:
            if not self._ready():
                raise TesseraUnavailable(f"{self.url}/readyz does not answer 200")
            return self
        if self.storage is None:
            self.storage = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
        python = self.venv / "bin" / "python"
        cmd = [
            str(python),
            "-m",
            "tessera",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage",
            str(self.storage),
            *self.extra_args,
        ]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(
            cmd, cwd=str(REPO), stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                tail = self.log_tail()
                self.stop()  # closes the log, removes a storage dir of our own
                raise TesseraUnavailable(
                    f"`python {' '.join(cmd[1:4])}` exited with {rc} before /readyz:\n{tail}"
                )
            if self._ready():
                return self
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise TesseraUnavailable(f"no 200 from /readyz within {self.startup_timeout}s:\n{tail}")

    def log_tail(self, n: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        data: bytes = self._log.read()
        return data[-n:].decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._own_storage and self.storage is not None:
            shutil.rmtree(self.storage, ignore_errors=True)
            self.storage = None

    def __enter__(self) -> TesseraServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def qdrant_rest_client(url: str, timeout: float = 300.0) -> Any:
    """The official client over REST, without the version-check warning noise."""
    from qdrant_client import QdrantClient

    try:
        return QdrantClient(
            url=url, prefer_grpc=False, timeout=int(timeout), check_compatibility=False
        )
    except TypeError:  # older clients without check_compatibility
        return QdrantClient(url=url, prefer_grpc=False, timeout=int(timeout))


# --------------------------------------------------------------------------------------
# The systems under test, behind one small interface
# --------------------------------------------------------------------------------------

# Payload indexes every benchmark creates (where it creates any): field -> Qdrant schema type.
PAYLOAD_INDEXES = {"kw": "keyword", "rare": "keyword", "f": "float"}


@dataclass
class HnswParams:
    m: int = 16
    ef_construct: int = 100
    # Qdrant's default, in KiB of vector data: filtered searches whose candidates fit under it
    # are scored exactly instead of walking the graph.
    full_scan_threshold: int = 10_000


def filter_json(flt: str) -> dict[str, Any] | None:
    """A named benchmark filter as Qdrant REST JSON."""
    if flt == "none":
        return None
    key, value = {"kw20": ("kw", "k0"), "rare05": ("rare", "yes")}[flt]
    return {"must": [{"key": key, "match": {"value": value}}]}


QueryFn = Callable[[np.ndarray], list[int]]
BatchFn = Callable[[np.ndarray], list[list[int]]]


class Engine:
    """One system under test. Every benchmark drives every engine through these methods.

    ``query_fn``/``batch_fn`` return closures with the request objects prepared once, so the
    timed part is what a real caller pays per query: build the request, run it, read ids.
    """

    name = "engine"

    def create(self, dim: int, hnsw: HnswParams, payload_indexes: bool) -> None:
        raise NotImplementedError

    def upsert(self, ds: Dataset, start: int, stop: int, with_payload: bool = True) -> None:
        raise NotImplementedError

    def build(self, n: int, timeout: float = 1800.0) -> float | None:
        """Block until the ANN index covers the data (no-op for exact-only engines).

        May return the seconds the build really took when that is less than the call's wall
        time (a poll that has to wait to be sure it is done).
        """
        return None

    def indexed_vectors(self) -> int | None:
        return None

    def query_fn(self, flt: str, ef: int | None, exact: bool = False, limit: int = 10) -> QueryFn:
        raise NotImplementedError

    def batch_fn(self, flt: str, ef: int | None, exact: bool = False, limit: int = 10) -> BatchFn:
        raise NotImplementedError

    def rss_mb(self) -> float:
        """RSS of the process that holds the data (this one, or the server)."""
        return rss_mb()

    def close(self) -> None:
        pass


class EdgeEngine(Engine):
    """Qdrant Edge (``qdrant-edge-py``): Qdrant's shard engine in this process."""

    name = "Qdrant Edge"

    def __init__(
        self, path: str | Path, max_search_threads: int | None = None, acorn: bool = False
    ) -> None:
        self.path = Path(path)
        self.max_search_threads = max_search_threads
        # ACORN (params.acorn.enable) for filtered searches: Qdrant's 2-hop graph walk for
        # filters the payload-aware HNSW links do not cover; off by default, as in Qdrant.
        self.acorn = acorn
        self.shard: Any = None
        self.dim = 0
        self.hnsw = HnswParams()

    def config(self, max_search_threads: int | None = None) -> Any:
        import qdrant_edge as qe

        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self.dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(
                m=self.hnsw.m,
                ef_construct=self.hnsw.ef_construct,
                full_scan_threshold=self.hnsw.full_scan_threshold,
            ),
            max_search_threads=max_search_threads or self.max_search_threads,
        )

    def create(self, dim: int, hnsw: HnswParams, payload_indexes: bool) -> None:
        import qdrant_edge as qe

        self.dim, self.hnsw = dim, hnsw
        self.shard = qe.EdgeShard.create(str(self.path), self.config())
        if payload_indexes:
            kinds = {"keyword": qe.PayloadSchemaType.Keyword, "float": qe.PayloadSchemaType.Float}
            for fld, kind in PAYLOAD_INDEXES.items():
                self.shard.update(qe.UpdateOperation.create_field_index(fld, kinds[kind]))

    def open(self, dim: int, hnsw: HnswParams) -> None:
        """Load an existing (closed) shard from ``path``."""
        import qdrant_edge as qe

        self.dim, self.hnsw = dim, hnsw
        self.shard = qe.EdgeShard.load(str(self.path), self.config())

    def upsert(self, ds: Dataset, start: int, stop: int, with_payload: bool = True) -> None:
        import qdrant_edge as qe

        vecs = ds.vectors[start:stop].tolist()
        if with_payload:
            pls = ds.payloads(start, stop)
            pts = [qe.Point(start + j, v, p) for j, (v, p) in enumerate(zip(vecs, pls))]
        else:
            pts = [qe.Point(start + j, v) for j, v in enumerate(vecs)]
        self.shard.update(qe.UpdateOperation.upsert_points(pts))

    def build(self, n: int, timeout: float = 1800.0) -> float | None:
        self.shard.optimize()
        return None

    def indexed_vectors(self) -> int | None:
        return int(self.shard.info().indexed_vectors_count)

    def segments(self) -> int:
        return int(self.shard.info().segments_count)

    def _parts(self, flt: str, ef: int | None, exact: bool) -> tuple[Any, Any]:
        import qdrant_edge as qe

        fj = filter_json(flt)
        filt = None
        if fj is not None:
            cond = fj["must"][0]
            filt = qe.Filter(
                must=[
                    qe.FieldCondition(key=cond["key"], match=qe.MatchValue(cond["match"]["value"]))
                ]
            )
        acorn = qe.AcornSearchParams(enable=True) if self.acorn and filt is not None else None
        return filt, qe.SearchParams(hnsw_ef=ef, exact=exact, acorn=acorn)

    def query_fn(self, flt: str, ef: int | None, exact: bool = False, limit: int = 10) -> QueryFn:
        import qdrant_edge as qe

        filt, params = self._parts(flt, ef, exact)
        shard, Req, Nearest = self.shard, qe.QueryRequest, qe.Query.Nearest

        def fn(vec: np.ndarray) -> list[int]:
            req = Req(
                limit=limit,
                query=Nearest(vec.tolist()),
                filter=filt,
                params=params,
                with_payload=False,
                with_vector=False,
            )
            return [p.id for p in shard.query(req)]

        return fn

    def batch_fn(self, flt: str, ef: int | None, exact: bool = False, limit: int = 10) -> BatchFn:
        import qdrant_edge as qe

        filt, params = self._parts(flt, ef, exact)
        shard, Req, Nearest = self.shard, qe.QueryRequest, qe.Query.Nearest

        def fn(vecs: np.ndarray) -> list[list[int]]:
            reqs = [
                Req(
                    limit=limit,
                    query=Nearest(v),
                    filter=filt,
                    params=params,
                    with_payload=False,
                    with_vector=False,
                )
                for v in vecs.tolist()
            ]
            return [[p.id for p in r] for r in shard.query_batch(qe.QueryBatchRequest(reqs))]

        return fn

    def close(self) -> None:
        if self.shard is not None:
            self.shard.flush()
            self.shard.close()
            self.shard = None


class ClientEngine(Engine):
    """Anything ``qdrant-client`` talks to: a REST server, or its own local mode."""

    name = "qdrant-client"
    collection = "bench"

    def __init__(self, client: Any, server_pid: int | None = None) -> None:
        self.client = client
        self.server_pid = server_pid
        self._indexed: int | None = None

    def create(self, dim: int, hnsw: HnswParams, payload_indexes: bool) -> None:
        from qdrant_client import models

        if self.client.collection_exists(self.collection):
            self.client.delete_collection(self.collection)
        self.client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            hnsw_config=models.HnswConfigDiff(
                m=hnsw.m,
                ef_construct=hnsw.ef_construct,
                full_scan_threshold=hnsw.full_scan_threshold,
            ),
        )
        if payload_indexes:
            kinds = {
                "keyword": models.PayloadSchemaType.KEYWORD,
                "float": models.PayloadSchemaType.FLOAT,
            }
            for fld, kind in PAYLOAD_INDEXES.items():
                self.client.create_payload_index(
                    self.collection, field_name=fld, field_schema=kinds[kind], wait=True
                )

    def upsert(self, ds: Dataset, start: int, stop: int, with_payload: bool = True) -> None:
        from qdrant_client import models

        self.client.upsert(
            self.collection,
            points=models.Batch(
                ids=list(range(start, stop)),
                vectors=ds.vectors[start:stop].tolist(),
                payloads=ds.payloads(start, stop) if with_payload else None,
            ),
            wait=True,
        )

    def build(self, n: int, timeout: float = 1800.0, settle: float = 5.0) -> float | None:
        """Poll collection info until it is green with every vector indexed.

        A collection that stays green for ``settle`` seconds without reaching ``n`` indexed
        vectors is taken as done (some points may live in a small unindexed segment, as in
        Qdrant); ``indexed_vectors()`` then tells how many are indexed, and the time returned
        is when it first turned green.
        """
        t0 = time.monotonic()
        deadline = t0 + timeout
        green_since: float | None = None
        time.sleep(0.2)
        while time.monotonic() < deadline:
            info = self.client.get_collection(self.collection)
            status = getattr(info.status, "value", info.status)
            self._indexed = int(info.indexed_vectors_count or 0)
            now = time.monotonic()
            if status == "green":
                if self._indexed >= n:
                    return now - t0
                green_since = green_since or now
                if now - green_since >= settle:
                    return green_since - t0
            else:
                green_since = None
            time.sleep(0.2)
        raise TimeoutError(f"collection not green with {n} indexed vectors after {timeout}s")

    def indexed_vectors(self) -> int | None:
        return self._indexed

    def _parts(self, flt: str, ef: int | None, exact: bool) -> tuple[Any, Any]:
        from qdrant_client import models

        fj = filter_json(flt)
        filt = models.Filter.model_validate(fj) if fj is not None else None
        return filt, models.SearchParams(hnsw_ef=ef, exact=exact)

    def query_fn(self, flt: str, ef: int | None, exact: bool = False, limit: int = 10) -> QueryFn:
        filt, params = self._parts(flt, ef, exact)
        client, coll = self.client, self.collection

        def fn(vec: np.ndarray) -> list[int]:
            res = client.query_points(
                coll,
                query=vec.tolist(),
                limit=limit,
                query_filter=filt,
                search_params=params,
                with_payload=False,
                with_vectors=False,
            )
            return [p.id for p in res.points]

        return fn

    def batch_fn(self, flt: str, ef: int | None, exact: bool = False, limit: int = 10) -> BatchFn:
        from qdrant_client import models

        filt, params = self._parts(flt, ef, exact)
        client, coll = self.client, self.collection

        def fn(vecs: np.ndarray) -> list[list[int]]:
            reqs = [
                models.QueryRequest(
                    query=v,
                    limit=limit,
                    filter=filt,
                    params=params,
                    with_payload=False,
                    with_vector=False,
                )
                for v in vecs.tolist()
            ]
            res = client.query_batch_points(coll, requests=reqs)
            return [[p.id for p in r.points] for r in res]

        return fn

    def rss_mb(self) -> float:
        return rss_mb(self.server_pid) if self.server_pid else rss_mb()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


class RestEngine(ClientEngine):
    """Tessera (or any Qdrant-compatible server) over REST through ``qdrant-client``."""

    name = "Tessera REST"

    def __init__(self, url: str, server_pid: int | None = None, timeout: float = 300.0) -> None:
        super().__init__(qdrant_rest_client(url, timeout), server_pid)


class LocalEngine(ClientEngine):
    """``qdrant-client`` local mode (``QdrantClient(":memory:")``): pure Python/numpy, exact."""

    name = "qdrant-client local"

    def __init__(self) -> None:
        import warnings

        from qdrant_client import QdrantClient

        # Local mode warns past 20k points and that search_params are ignored; we know.
        warnings.filterwarnings("ignore", message=r"Local mode", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Payload indexes", category=UserWarning)
        super().__init__(QdrantClient(":memory:"))

    def build(self, n: int, timeout: float = 1800.0, settle: float = 5.0) -> float | None:
        """Nothing to build: local mode has no index and scans every vector."""
        return 0.0


def open_tessera_engine(path: Path, dim: int, hnsw: HnswParams) -> Any:
    """Tessera's in-process engine (no HTTP), used by ``TesseraEngine``.

    Return an object with these methods (a thin wrapper over Tessera's collection/shard API):

    - ``create_field_index(field: str, schema: str) -> None``: schema "keyword" or "float";
    - ``upsert(ids: list[int], vectors: np.ndarray, payloads: list[dict] | None) -> None``:
      applied and visible when it returns (``wait=true`` semantics), vectors float32 (n, dim);
    - ``wait_indexed(timeout: float) -> int``: block until the optimizer has built the HNSW
      index over the data; return the indexed vector count;
    - ``search(vector: np.ndarray, limit: int, filter: dict | None, hnsw_ef: int | None,
      exact: bool) -> list[int]``: ids best first; ``filter`` is Qdrant filter JSON;
    - ``search_batch(vectors: np.ndarray, limit, filter, hnsw_ef, exact) -> list[list[int]]``;
    - ``close() -> None``: flush and release.

    The collection is cosine, one unnamed dense vector of size ``dim``, with ``hnsw`` as its
    hnsw_config (m, ef_construct, full_scan_threshold) and Qdrant's default optimizer config,
    stored under ``path``.
    """
    # bench/tessera_adapter.py implements this interface over tessera.engine.Engine; where
    # Tessera cannot be imported the column reads n/a.
    try:
        from tessera_adapter import open_engine
    except ImportError as exc:
        raise NotImplementedError(f"Tessera's engine cannot be imported here: {exc}") from exc
    return open_engine(path, dim, hnsw)


class TesseraEngine(Engine):
    """Tessera's engine in this process, through ``open_tessera_engine``."""

    name = "Tessera engine"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.eng: Any = None
        self._indexed: int | None = None

    def create(self, dim: int, hnsw: HnswParams, payload_indexes: bool) -> None:
        self.eng = open_tessera_engine(self.path, dim, hnsw)
        if payload_indexes:
            for fld, kind in PAYLOAD_INDEXES.items():
                self.eng.create_field_index(fld, kind)

    def upsert(self, ds: Dataset, start: int, stop: int, with_payload: bool = True) -> None:
        pls = ds.payloads(start, stop) if with_payload else None
        self.eng.upsert(list(range(start, stop)), ds.vectors[start:stop], pls)

    def build(self, n: int, timeout: float = 1800.0) -> float | None:
        self._indexed = int(self.eng.wait_indexed(timeout))
        return None

    def indexed_vectors(self) -> int | None:
        return self._indexed

    def query_fn(self, flt: str, ef: int | None, exact: bool = False, limit: int = 10) -> QueryFn:
        # The filter parsed once per row, as Edge's row builds its `Filter` once.
        eng, fj = self.eng, self.eng.prepare_filter(filter_json(flt))

        def fn(vec: np.ndarray) -> list[int]:
            # ints already (TesseraInProcess.search): one list built per query, as Edge's row
            result: list[int] = eng.search(vec, limit, fj, ef, exact)
            return result

        return fn

    def batch_fn(self, flt: str, ef: int | None, exact: bool = False, limit: int = 10) -> BatchFn:
        eng, fj = self.eng, self.eng.prepare_filter(filter_json(flt))

        def fn(vecs: np.ndarray) -> list[list[int]]:
            return [[int(x) for x in r] for r in eng.search_batch(vecs, limit, fj, ef, exact)]

        return fn

    def close(self) -> None:
        if self.eng is not None:
            self.eng.close()
            self.eng = None


def ingest(engine: Engine, ds: Dataset, batch: int = 256, with_payload: bool = True) -> float:
    """Upsert the whole dataset in batches, one call per batch; returns seconds."""
    t0 = time.perf_counter()
    for s, e in batches(ds.n, batch):
        engine.upsert(ds, s, e, with_payload)
    return time.perf_counter() - t0


def save_dataset(ds: Dataset, path: Path, extra: dict[str, np.ndarray] | None = None) -> None:
    arrays = {
        "vectors": ds.vectors,
        "queries": ds.queries,
        "kw": ds.kw,
        "rare": ds.rare,
        "f": ds.f,
        "seed": np.array(ds.seed),
    }
    np.savez(path, **arrays, **(extra or {}))


def load_dataset(path: Path) -> tuple[Dataset, dict[str, np.ndarray]]:
    z = np.load(path)
    ds = Dataset(z["vectors"], z["queries"], z["kw"], z["rare"], z["f"], int(z["seed"]))
    extra = {k: z[k] for k in z.files if k not in {"vectors", "queries", "kw", "rare", "f", "seed"}}
    return ds, extra


def add_data_args(ap: Any, n: int = 100_000, dim: int = 128, queries: int = 1000) -> None:
    ap.add_argument("--n", type=int, default=n, help=f"points (default {n})")
    ap.add_argument("--dim", type=int, default=dim, help=f"dimensions (default {dim})")
    ap.add_argument("--queries", type=int, default=queries, help="query vectors")
    ap.add_argument("--seed", type=int, default=42)


def add_server_args(ap: Any) -> None:
    ap.add_argument(
        "--url", default=None, help="use a running Tessera at this URL instead of starting one"
    )
    ap.add_argument("--venv", default=str(DEFAULT_VENV), help="venv whose python runs tessera")
    ap.add_argument("--no-tessera", action="store_true", help="skip the Tessera REST rows")


def log(msg: str) -> None:
    """Progress to stderr (the table goes to stdout)."""
    print(msg, file=sys.stderr, flush=True)


def describe(exc: BaseException) -> str:
    """One line for an exception: its type and the most telling line of its message.

    For a server that died on start, that is the last ``SomethingError: ...`` line of its log
    rather than uvicorn's closing "Application startup failed".
    """
    import re

    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b", ln)]
    line = errs[-1] if errs else (lines[-1] if lines else "")
    return f"{type(exc).__name__}: {line[:200]}"
