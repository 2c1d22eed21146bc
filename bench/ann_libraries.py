"""Which native HNSW library should Tessera use? faiss vs hnswlib vs usearch vs voyager (vs nmslib).

One command (the libraries live in a throwaway venv, not in Tessera's dependencies)::

    python3 -m venv /tmp/annvenv
    /tmp/annvenv/bin/pip install numpy faiss-cpu hnswlib usearch voyager nmslib
    nice -n 10 /tmp/annvenv/bin/python bench/ann_libraries.py          # 100k x 128, ~3-5 min

A library that is not importable is skipped, and the table says so. Options: ``--n``, ``--dim``,
``--queries``, ``--libs faiss,hnswlib,...``, ``--reps``, ``--no-postfilter``, ``--json FILE``.

The data is ``bench/common.make_dataset`` (the same seeded, clustered, low-intrinsic-dimension
points and held-out queries as ``bench/ann.py``), normalised, cosine. Ground truth is exact
numpy top-10, per filter over the matching points only. The filters are the same masks as in
``bench/ann.py``: ``kw = k0`` (20% of the points) and ``rare = yes`` (0.5%), independent of the
clusters.

Each library runs in its own fresh worker process (so RSS, threads and allocator state do not
leak between them) and gets the same parameters: HNSW M=16, ef_construct=100, built with 2
threads; searched one query per call (as a database serves them) with ef 64/128/256, k=10:

- recall@10 and QPS with one thread, then QPS with two Python threads sharing the index (each
  issuing single queries). Each timing is the best of ``--reps`` passes (default 2); the spread
  between the passes is reported as the noise. On a shared 2-core machine 2t/1t mostly tells how
  many cores were free, so each worker also measures that (sha256 on 2 threads vs 1) and the GIL
  is settled by a separate probe (``gil_probe``: does a pure-Python thread get to run while a
  search is in native code?), checked against two controls that hold and release the GIL.
- filtered search through the library's own filtering mechanism: faiss
  ``SearchParametersHNSW(sel=IDSelectorBitmap)`` built per query from the numpy mask (as
  ``tessera/segment/ann_index.py`` does); hnswlib ``knn_query(filter=callable)``, a Python call
  per candidate (the cheapest callable there is: ``list.__getitem__``). usearch, voyager
  and nmslib have no filtered search in their Python APIs; for them a ``post`` row shows the only
  workaround, over-fetching k' = 20 / selectivity results (ef raised to k') and filtering after.
- index memory: RSS growth of the worker over the build (the input matrix is already resident);
  persistence: save, the cheapest load the library offers (mmap where it has one), RSS growth
  of that load and whether the loaded index answers identically.
- work per query where the library can count it: faiss distance computations
  (``hnsw_stats.ndis``), hnswlib filter callback calls.
- ``exact``: not a library but the numpy scan over the matching rows that Tessera's planner uses
  below ``full_scan_threshold``, as the yardstick for the filtered rows.
- capabilities (L1, inner product, incremental add, delete, int8), each probed by code on a
  small index, not taken from the docs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import exact_topk, make_dataset, normalize, recall_at_k, rss_mb

LIBS = ("faiss", "hnswlib", "usearch", "voyager", "nmslib", "exact")
MODULES = {
    "exact": "numpy",
    "faiss": "faiss",
    "hnswlib": "hnswlib",
    "usearch": "usearch.index",
    "voyager": "voyager",
    "nmslib": "nmslib",
}
M, EF_CONSTRUCT, K = 16, 100, 10
EFS = (64, 128, 256)
FILTERS = ("none", "kw20", "rare05")
BUILD_THREADS = 2

# --------------------------------------------------------------------------------------
# Adapters: one per library, the same small surface
# --------------------------------------------------------------------------------------

Searcher = Callable[[np.ndarray], np.ndarray]  # one query (dim,) -> ids (<= k,)


class Adapter:
    name = ""
    # how filtered search is done: "native: ..." or "" (none in the Python API)
    native_filter = ""

    def build(self, data: np.ndarray) -> None:
        raise NotImplementedError

    def searcher(self, ef: int, k: int, mask: np.ndarray | None) -> Searcher:
        """A function answering one query; `mask` (bool, n) is applied natively."""
        raise NotImplementedError

    def save(self, path: str) -> None:
        raise NotImplementedError

    def load(self, path: str, dim: int, n: int) -> tuple[Adapter, str]:
        """A new adapter over the saved index, loaded the cheapest way; and how."""
        raise NotImplementedError

    def version(self) -> str:
        return ""

    def capabilities(self) -> dict[str, str]:
        return {}

    def work(self, ef: int, k: int, mask: np.ndarray | None, queries: np.ndarray) -> float | None:
        """Work per query, where the library can count it (see WORK)."""
        return None


def _tiny(n: int = 2000, dim: int = 16, seed: int = 7) -> np.ndarray:
    return normalize(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))


def _probe(fn: Callable[[], str]) -> str:
    try:
        return fn()
    except Exception as exc:  # a probe that fails is the answer "no"
        return f"no ({type(exc).__name__}: {str(exc).splitlines()[0][:70]})"


def _self_hit(ids: Any, want: int) -> bool:
    return int(np.asarray(ids).reshape(-1)[0]) == want


class FaissAdapter(Adapter):
    name = "faiss"
    native_filter = "native: SearchParametersHNSW(sel=IDSelectorBitmap), bitmap per query"

    def __init__(self, index: Any = None) -> None:
        import faiss

        self.faiss = faiss
        self.index = index

    def version(self) -> str:
        return str(self.faiss.__version__)

    def build(self, data: np.ndarray) -> None:
        faiss = self.faiss
        faiss.omp_set_num_threads(BUILD_THREADS)
        self.index = faiss.IndexHNSWFlat(data.shape[1], M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EF_CONSTRUCT
        self.index.add(data)
        # A single query per call never forks OpenMP (faiss parallelises over queries); one
        # thread also keeps two Python threads from oversubscribing the two cores.
        faiss.omp_set_num_threads(1)

    def searcher(self, ef: int, k: int, mask: np.ndarray | None) -> Searcher:
        faiss, index = self.faiss, self.index
        n = int(index.ntotal)
        if mask is None:
            params = faiss.SearchParametersHNSW(efSearch=ef)

            def search(q: np.ndarray) -> np.ndarray:
                return index.search(q.reshape(1, -1), k, params=params)[1][0]

            return search

        def search_filtered(q: np.ndarray) -> np.ndarray:
            # As Tessera does: the selector is built per query from the caller's mask.
            bitmap = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
            params = faiss.SearchParametersHNSW(efSearch=ef, sel=sel)
            return index.search(q.reshape(1, -1), k, params=params)[1][0]

        return search_filtered

    def work(self, ef: int, k: int, mask: np.ndarray | None, queries: np.ndarray) -> float | None:
        stats = self.faiss.cvar.hnsw_stats
        search = self.searcher(ef, k, mask)
        stats.reset()
        for q in queries:
            search(q)
        return float(stats.ndis) / len(queries)

    def save(self, path: str) -> None:
        self.faiss.write_index(self.index, path)

    def load(self, path: str, dim: int, n: int) -> tuple[Adapter, str]:
        faiss = self.faiss
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
        return FaissAdapter(faiss.read_index(path, flags)), "read_index(IO_FLAG_MMAP_IFC)"

    def capabilities(self) -> dict[str, str]:
        faiss, x = self.faiss, _tiny()

        def metric(kind: int, label: str) -> Callable[[], str]:
            def run() -> str:
                ix = faiss.IndexHNSWFlat(x.shape[1], M, kind)
                ix.add(x)
                assert _self_hit(ix.search(x[:1], 1)[1], 0)
                return f"yes ({label})"

            return run

        def incremental() -> str:
            ix = faiss.IndexHNSWFlat(x.shape[1], M)
            ix.add(x[:1000])
            ix.add(x[1000:])
            assert _self_hit(ix.search(x[1500:1501], 1)[1], 1500)
            return "yes (add; ids are insertion order)"

        def delete() -> str:
            ix = faiss.IndexHNSWFlat(x.shape[1], M)
            ix.add(x)
            ix.remove_ids(np.array([0], dtype=np.int64))
            return "yes"

        def int8() -> str:
            ix = faiss.IndexHNSWSQ(x.shape[1], faiss.ScalarQuantizer.QT_8bit, M)
            ix.train(x)
            ix.add(x)
            assert _self_hit(ix.search(x[:1], 1)[1], 0)
            return "yes (IndexHNSWSQ QT_8bit; also fp16, PQ, binary)"

        no_delete = _probe(delete)
        if no_delete.startswith("no"):
            no_delete = "no (HNSW remove_ids unsupported: mask it out with the selector)"
        return {
            "L1": _probe(metric(faiss.METRIC_L1, "METRIC_L1")),
            "inner product": _probe(metric(faiss.METRIC_INNER_PRODUCT, "METRIC_INNER_PRODUCT")),
            "incremental add": _probe(incremental),
            "delete": no_delete,
            "int8": _probe(int8),
        }


class HnswlibAdapter(Adapter):
    name = "hnswlib"
    native_filter = "native: knn_query(filter=callable), one Python call per candidate"

    def __init__(self, index: Any = None) -> None:
        import hnswlib

        self.hnswlib = hnswlib
        self.index = index

    def version(self) -> str:
        return str(getattr(self.hnswlib, "__version__", "")) or _dist_version("hnswlib")

    def build(self, data: np.ndarray) -> None:
        ix = self.hnswlib.Index(space="ip", dim=data.shape[1])  # data is normalised: cosine
        ix.init_index(max_elements=data.shape[0], ef_construction=EF_CONSTRUCT, M=M)
        ix.add_items(data, np.arange(data.shape[0]), num_threads=BUILD_THREADS)
        self.index = ix

    def searcher(self, ef: int, k: int, mask: np.ndarray | None) -> Searcher:
        index = self.index
        index.set_ef(ef)  # shared state: fine here, one ef at a time
        if mask is None:

            def search(q: np.ndarray) -> np.ndarray:
                return index.knn_query(q, k=k, num_threads=1)[0][0]

            return search
        allowed = mask.tolist()
        keep = allowed.__getitem__  # a C-level callable: the cheapest filter hnswlib can call

        def search_filtered(q: np.ndarray) -> np.ndarray:
            return index.knn_query(q, k=k, num_threads=1, filter=keep)[0][0]

        return search_filtered

    def work(self, ef: int, k: int, mask: np.ndarray | None, queries: np.ndarray) -> float | None:
        if mask is None:
            return None
        allowed = mask.tolist()
        calls = [0]

        def keep(i: int) -> bool:
            calls[0] += 1
            return bool(allowed[i])

        self.index.set_ef(ef)
        for q in queries:
            self.index.knn_query(q, k=k, num_threads=1, filter=keep)
        return calls[0] / len(queries)

    def save(self, path: str) -> None:
        self.index.save_index(path)

    def load(self, path: str, dim: int, n: int) -> tuple[Adapter, str]:
        ix = self.hnswlib.Index(space="ip", dim=dim)
        ix.load_index(path, max_elements=n)
        return HnswlibAdapter(ix), "load_index (read into memory; no mmap)"

    def capabilities(self) -> dict[str, str]:
        hnswlib, x = self.hnswlib, _tiny()

        def metric(space: str) -> Callable[[], str]:
            def run() -> str:
                ix = hnswlib.Index(space=space, dim=x.shape[1])
                ix.init_index(max_elements=len(x), M=M)
                ix.add_items(x)
                assert _self_hit(ix.knn_query(x[:1], k=1)[0], 0)
                return f"yes (space='{space}')"

            return run

        def incremental() -> str:
            ix = hnswlib.Index(space="ip", dim=x.shape[1])
            ix.init_index(max_elements=1000, M=M, allow_replace_deleted=True)
            ix.add_items(x[:1000], np.arange(1000))
            ix.resize_index(len(x))
            ix.add_items(x[1000:], np.arange(1000, len(x)))
            assert _self_hit(ix.knn_query(x[1500:1501], k=1)[0], 1500)
            return "yes (add_items, resize_index)"

        def delete() -> str:
            ix = hnswlib.Index(space="ip", dim=x.shape[1])
            ix.init_index(max_elements=len(x), M=M, allow_replace_deleted=True)
            ix.add_items(x)
            ix.mark_deleted(0)
            assert not _self_hit(ix.knn_query(x[:1], k=1)[0], 0)
            return "yes (mark_deleted, replace_deleted)"

        return {
            "L1": _probe(metric("l1")),
            "inner product": _probe(metric("ip")),
            "incremental add": _probe(incremental),
            "delete": _probe(delete),
            "int8": "no (float32 storage only)",
        }


class UsearchAdapter(Adapter):
    name = "usearch"
    native_filter = ""

    def __init__(self, index: Any = None) -> None:
        import usearch.index as ui

        self.ui = ui
        self.index = index

    def version(self) -> str:
        import usearch

        return str(usearch.__version__)

    def build(self, data: np.ndarray) -> None:
        ix = self.ui.Index(
            ndim=data.shape[1],
            metric="ip",  # data is normalised: cosine
            dtype="f32",
            connectivity=M,
            expansion_add=EF_CONSTRUCT,
            expansion_search=EFS[0],
        )
        ix.add(np.arange(data.shape[0], dtype=np.uint64), data, threads=BUILD_THREADS)
        self.index = ix

    def searcher(self, ef: int, k: int, mask: np.ndarray | None) -> Searcher:
        if mask is not None:
            raise NotImplementedError("usearch's Python API has no filtered search")
        index = self.index
        index.expansion_search = ef

        def search(q: np.ndarray) -> np.ndarray:
            return index.search(q, k, threads=1).keys

        return search

    def save(self, path: str) -> None:
        self.index.save(path)

    def load(self, path: str, dim: int, n: int) -> tuple[Adapter, str]:
        return UsearchAdapter(self.ui.Index.restore(path, view=True)), "Index.restore(view=True)"

    def capabilities(self) -> dict[str, str]:
        ui, x = self.ui, _tiny()
        keys = np.arange(len(x), dtype=np.uint64)

        def make(metric: str = "ip", dtype: str = "f32") -> Any:
            ix = ui.Index(ndim=x.shape[1], metric=metric, dtype=dtype, connectivity=M)
            ix.add(keys, x)
            assert _self_hit(ix.search(x[0], 1).keys, 0)
            return ix

        def l1() -> str:
            kinds = [k.lower() for k in ui.MetricKind.__members__]
            if not {"l1", "manhattan"} & set(kinds):
                return "no built-in (only a user JIT-compiled metric: numba cfunc)"
            return "yes"

        def incremental() -> str:
            ix = ui.Index(ndim=x.shape[1], metric="ip", connectivity=M)
            ix.add(keys[:1000], x[:1000])
            ix.add(keys[1000:], x[1000:])
            assert _self_hit(ix.search(x[1500], 1).keys, 1500)
            return "yes (add, any u64 keys)"

        def delete() -> str:
            ix = make()
            ix.remove(0)
            assert not _self_hit(ix.search(x[0], 1).keys, 0)
            return "yes (remove)"

        def int8() -> str:
            make(dtype="i8")
            return "yes (dtype i8; also f16, bf16, e4m3..., b1)"

        def ip() -> str:
            make("ip")
            return "yes (metric 'ip')"

        return {
            "L1": _probe(l1),
            "inner product": _probe(ip),
            "incremental add": _probe(incremental),
            "delete": _probe(delete),
            "int8": _probe(int8),
        }


class VoyagerAdapter(Adapter):
    name = "voyager"
    native_filter = ""

    def __init__(self, index: Any = None) -> None:
        import voyager

        self.voyager = voyager
        self.index = index

    def version(self) -> str:
        return _dist_version("voyager")

    def build(self, data: np.ndarray) -> None:
        v = self.voyager
        ix = v.Index(
            v.Space.InnerProduct,  # data is normalised: cosine
            num_dimensions=data.shape[1],
            M=M,
            ef_construction=EF_CONSTRUCT,
            max_elements=data.shape[0],
        )
        ix.add_items(data, ids=list(range(data.shape[0])), num_threads=BUILD_THREADS)
        self.index = ix

    def searcher(self, ef: int, k: int, mask: np.ndarray | None) -> Searcher:
        if mask is not None:
            raise NotImplementedError("voyager's Python API has no filtered search")
        index = self.index

        def search(q: np.ndarray) -> np.ndarray:
            return index.query(q, k=k, num_threads=1, query_ef=ef)[0]

        return search

    def save(self, path: str) -> None:
        self.index.save(path)

    def load(self, path: str, dim: int, n: int) -> tuple[Adapter, str]:
        return VoyagerAdapter(self.voyager.Index.load(path)), "Index.load (read into memory)"

    def capabilities(self) -> dict[str, str]:
        v, x = self.voyager, _tiny()

        def make(space: Any, storage: Any = None) -> Any:
            kw = {} if storage is None else {"storage_data_type": storage}
            ix = v.Index(space, num_dimensions=x.shape[1], M=M, **kw)
            ix.add_items(x, ids=list(range(len(x))))
            assert _self_hit(ix.query(x[0], k=1)[0], 0)
            return ix

        def incremental() -> str:
            ix = v.Index(v.Space.InnerProduct, num_dimensions=x.shape[1], M=M)
            ix.add_items(x[:1000], ids=list(range(1000)))
            ix.add_items(x[1000:], ids=list(range(1000, len(x))))
            assert _self_hit(ix.query(x[1500], k=1)[0], 1500)
            return "yes (add_items)"

        def delete() -> str:
            ix = make(v.Space.InnerProduct)
            ix.mark_deleted(0)
            assert not _self_hit(ix.query(x[0], k=1)[0], 0)
            return "yes (mark_deleted)"

        def int8() -> str:
            make(v.Space.InnerProduct, v.StorageDataType.Float8)
            return "yes (Float8: int8 fixed point in [-1, 1]; also E4M3)"

        def ip() -> str:
            make(v.Space.InnerProduct)
            return "yes (Space.InnerProduct)"

        spaces = list(v.Space.__members__)
        return {
            "L1": "no (spaces: " + ", ".join(spaces) + ")",
            "inner product": _probe(ip),
            "incremental add": _probe(incremental),
            "delete": _probe(delete),
            "int8": _probe(int8),
        }


class NmslibAdapter(Adapter):
    name = "nmslib"
    native_filter = ""

    def __init__(self, index: Any = None) -> None:
        import nmslib

        self.nmslib = nmslib
        self.index = index

    def version(self) -> str:
        return _dist_version("nmslib")

    def _new(self, space: str = "negdotprod") -> Any:
        return self.nmslib.init(method="hnsw", space=space)

    def build(self, data: np.ndarray) -> None:
        ix = self._new()  # data is normalised: cosine
        ix.addDataPointBatch(data)
        params = {"M": M, "efConstruction": EF_CONSTRUCT, "post": 0}
        ix.createIndex({**params, "indexThreadQty": BUILD_THREADS}, print_progress=False)
        self.index = ix

    def searcher(self, ef: int, k: int, mask: np.ndarray | None) -> Searcher:
        if mask is not None:
            raise NotImplementedError("nmslib's Python API has no filtered search")
        index = self.index
        index.setQueryTimeParams({"efSearch": ef})

        def search(q: np.ndarray) -> np.ndarray:
            return index.knnQuery(q, k=k)[0]

        return search

    def save(self, path: str) -> None:
        self.index.saveIndex(path, save_data=True)

    def load(self, path: str, dim: int, n: int) -> tuple[Adapter, str]:
        ix = self._new()
        ix.loadIndex(path, load_data=True)
        return NmslibAdapter(ix), "loadIndex (read into memory)"

    def capabilities(self) -> dict[str, str]:
        x = _tiny()

        def metric(space: str) -> Callable[[], str]:
            def run() -> str:
                ix = self._new(space)
                ix.addDataPointBatch(x)
                ix.createIndex({"M": M, "post": 0}, print_progress=False)
                assert _self_hit(ix.knnQuery(x[0], k=1)[0], 0)
                return f"yes (space '{space}')"

            return run

        return {
            "L1": _probe(metric("l1")),
            "inner product": _probe(metric("negdotprod")),
            "incremental add": "no (createIndex builds once; adding means rebuilding)",
            "delete": "no",
            "int8": "no (float; sparse and string spaces only besides)",
        }


class ExactAdapter(Adapter):
    """Not a library: the exact scan over the matching rows (numpy gather + matrix-vector
    product + argpartition) that Tessera's planner uses below full_scan_threshold."""

    name = "exact"
    native_filter = "numpy gather of the matching rows, per query"

    def version(self) -> str:
        return f"numpy {np.__version__}"

    def build(self, data: np.ndarray) -> None:
        self.data = data

    def searcher(self, ef: int, k: int, mask: np.ndarray | None) -> Searcher:
        data = self.data

        def search(q: np.ndarray) -> np.ndarray:
            if mask is None:
                ids, scores = None, data @ q
            else:
                ids = np.flatnonzero(mask)
                scores = data[ids] @ q
            kk = min(k, len(scores))
            top = np.argpartition(-scores, kk - 1)[:kk]
            top = top[np.argsort(-scores[top])]
            return top if ids is None else ids[top]

        return search


ADAPTERS: dict[str, type[Adapter]] = {
    "faiss": FaissAdapter,
    "hnswlib": HnswlibAdapter,
    "usearch": UsearchAdapter,
    "voyager": VoyagerAdapter,
    "nmslib": NmslibAdapter,
    "exact": ExactAdapter,
}


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


def run_single(search: Searcher, queries: np.ndarray) -> tuple[list[np.ndarray], float]:
    out = []
    t0 = time.perf_counter()
    for q in queries:
        out.append(search(q))
    return out, time.perf_counter() - t0


def run_threads(search: Searcher, queries: np.ndarray, threads: int) -> float:
    """Wall seconds for `threads` Python threads splitting the queries, one per call."""
    parts = np.array_split(np.arange(len(queries)), threads)
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(idx: np.ndarray) -> None:
        barrier.wait()
        try:
            for i in idx:
                search(queries[i])
        except BaseException as exc:  # reported, not swallowed
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return wall


def gil_probe(
    make: Callable[[int], Searcher], queries: np.ndarray, n: int, trials: int = 3
) -> dict[str, float]:
    """Does a search call let another Python thread run while it works?

    A second thread spins in pure Python (it needs the GIL for every step). During the probe
    the switch interval is 100 ms, so the only way the spinner gets the GIL while the caller
    loops over a few searches (~30 ms in all) is a search that releases it. Each search is made
    long (ef raised until one query takes >= 2 ms, same call path) so that a released GIL is
    surely noticed by the waiting spinner; with short calls a release can go unseen. Unlike the
    2-thread QPS, this does not depend on how many cores are free. The fewest steps over
    `trials` is kept (0 = holds the GIL).
    """
    ef = EFS[0]
    while True:
        search = make(ef)
        search(queries[0])
        t0 = time.perf_counter()
        search(queries[1])
        one = time.perf_counter() - t0
        if one >= 0.002 or ef >= min(n, 16384):
            break
        ef *= 2
    batch = queries[: max(1, min(5, int(0.03 / one)))]
    t0 = time.perf_counter()
    for q in batch:
        search(q)
    alone = time.perf_counter() - t0
    best: dict[str, float] = {}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.1)
    try:
        for _ in range(trials):
            box = [0]
            stop = threading.Event()

            def spin(box: list[int] = box, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    box[0] += 1

            spinner = threading.Thread(target=spin)
            spinner.start()
            while box[0] == 0:  # the spinner holds the GIL now; we get it back within 100 ms
                time.sleep(0.001)
            before = box[0]
            t0 = time.perf_counter()
            for q in batch:
                search(q)
            wall = time.perf_counter() - t0
            steps = box[0] - before
            stop.set()
            spinner.join()
            if not best or steps < best["spins"]:
                best = {"spins": float(steps), "with_spinner_ms": wall * 1e3}
            if steps > 0 and wall > 5 * alone:  # let in and then kept waiting: conclusive
                break
    finally:
        sys.setswitchinterval(interval)
    return {**best, "queries": float(len(batch)), "ef": float(ef), "alone_ms": alone * 1e3}


def cores_free() -> float:
    """Speed-up of 2 threads over 1 on work that surely releases the GIL (sha256 of 16 MiB
    buffers): how many cores this process really had just now."""
    import hashlib

    buf = os.urandom(16 << 20)

    def job() -> None:
        for _ in range(4):
            hashlib.sha256(buf).digest()

    t0 = time.perf_counter()
    job()
    job()
    one = time.perf_counter() - t0
    pool = [threading.Thread(target=job) for _ in range(2)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return one / (time.perf_counter() - t0)


def postfilter(search_k: Callable[[np.ndarray], np.ndarray], mask: np.ndarray) -> Searcher:
    def search(q: np.ndarray) -> np.ndarray:
        ids = np.asarray(search_k(q), dtype=np.int64)
        return ids[mask[ids]][:K]

    return search


# --------------------------------------------------------------------------------------
# Worker: one library, one process
# --------------------------------------------------------------------------------------


def worker(lib: str, data_path: str, out_path: str, reps: int, do_post: bool) -> None:
    result: dict[str, Any] = {"lib": lib}
    try:
        __import__(MODULES[lib])
        adapter = ADAPTERS[lib]()
    except Exception as exc:
        result["skipped"] = f"not importable: {type(exc).__name__}: {exc}"
        Path(out_path).write_text(json.dumps(result))
        return
    npz = np.load(data_path)
    data = np.ascontiguousarray(npz["data"])
    queries = np.ascontiguousarray(npz["queries"])
    masks = {"kw20": npz["kw20"], "rare05": npz["rare05"]}
    truth = {f: npz[f"truth_{f}"] for f in FILTERS}
    n, dim = data.shape
    result["version"] = adapter.version()
    result["native_filter"] = adapter.native_filter

    gc.collect()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    adapter.build(data)
    result["build_s"] = time.perf_counter() - t0
    gc.collect()
    result["index_mb"] = rss_mb() - rss0
    log(f"{lib}: built in {result['build_s']:.1f}s, +{result['index_mb']:.0f} MiB")

    cores = [cores_free()]
    rows = []
    warm = queries[: min(20, len(queries))]
    efs = EFS if lib != "exact" else (0,)
    for flt in FILTERS:
        mask = masks.get(flt)
        for ef in efs:
            row: dict[str, Any] = {"filter": flt, "ef": ef}
            try:
                search = adapter.searcher(ef, K, mask)
                row["mode"] = "native" if mask is not None else "plain"
            except NotImplementedError:
                if not do_post:
                    continue
                assert mask is not None
                kk = min(n, math.ceil(2 * K / float(mask.mean())))
                search = postfilter(adapter.searcher(max(ef, kk), kk, None), mask)
                row["mode"] = f"post k'={kk}"
            if lib == "exact":
                row["mode"] = "exact"
            run_single(search, warm)
            single = []
            for _ in range(reps):
                found, wall = run_single(search, queries)
                single.append(len(queries) / wall)
            row["recall"] = recall_at_k(found, truth[flt], K)
            row["qps1"] = max(single)
            row["qps1_all"] = single
            double = [len(queries) / run_threads(search, queries, 2) for _ in range(reps)]
            row["qps2"] = max(double)
            row["qps2_all"] = double
            probe = flt == "none" or (flt == "kw20" and lib in ("faiss", "exact"))
            if ef == efs[0] and probe:
                # hnswlib's filter is not probed: its callback takes the GIL per candidate, so
                # a 100 ms switch interval would stall each query for seconds.
                row["gil"] = gil_probe(lambda e, m=mask: adapter.searcher(e, K, m), queries, n)
                if lib == "exact":  # no ef: the scan is as long as it is
                    row["gil"].pop("ef")
            work = adapter.work(ef, K, mask, queries[:20])
            if work is not None:
                row["work"] = work
            rows.append(row)
            log(
                f"{lib} {flt:6} ef={ef:3} {row['mode']:12} recall={row['recall']:.3f} "
                f"qps1={row['qps1']:.0f} qps2={row['qps2']:.0f}"
                + (f" gil={row['gil']}" if "gil" in row else "")
                + (f" work={work:.0f}" if work is not None else "")
            )
    cores.append(cores_free())
    result["rows"] = rows
    result["cores_free"] = cores
    if lib == "exact":
        Path(out_path).write_text(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix=f"annlib-{lib}-") as tmp:
        path = os.path.join(tmp, "index.bin")
        t0 = time.perf_counter()
        adapter.save(path)
        persist: dict[str, Any] = {"save_s": time.perf_counter() - t0}
        persist["file_mb"] = os.path.getsize(path) / 2**20
        gc.collect()
        r0 = rss_mb()
        t0 = time.perf_counter()
        try:
            loaded, how = adapter.load(path, dim, n)
            persist["load_s"] = time.perf_counter() - t0
            persist["how"] = how
            persist["load_rss_mb"] = rss_mb() - r0
            a = adapter.searcher(EFS[0], K, None)
            b = loaded.searcher(EFS[0], K, None)
            same = all(np.array_equal(np.asarray(a(q)), np.asarray(b(q))) for q in queries)
            persist["same_results"] = same
            persist["rss_after_queries_mb"] = rss_mb() - r0
        except Exception as exc:
            persist["error"] = f"{type(exc).__name__}: {exc}"
    result["persist"] = persist
    result["capabilities"] = adapter.capabilities()
    Path(out_path).write_text(json.dumps(result))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def _gil_cell(g: dict[str, float] | None) -> str:
    if not g:
        return "-"
    verdict = "holds" if g["spins"] == 0 else "releases"
    if g["spins"] == 0 and g["alone_ms"] / g["queries"] < 1.0:
        verdict = "too short to tell"
    at = f" at ef={g['ef']:.0f}" if "ef" in g else ""
    return (
        f"{verdict} ({g['spins']:,.0f} spinner steps during {g['queries']:.0f} calls{at}; "
        f"{g['alone_ms']:.1f} ms alone, {g['with_spinner_ms']:.1f} ms beside it)"
    )


def report(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out: list[str] = []
    w = out.append
    w(
        f"n={meta['n']} dim={meta['dim']} queries={meta['queries']} cosine, HNSW M={M} "
        f"ef_construct={EF_CONSTRUCT}, build {BUILD_THREADS} threads, k={K}; "
        f"selectivity kw20={meta['sel_kw20']:.3f} rare05={meta['sel_rare05']:.4f}; "
        f"load average {meta['load_start']} -> {meta['load_end']}; total {meta['total_s']:.0f}s"
    )
    w("")
    w(
        "| library | version | build s (2 thr) | index MiB (RSS growth) | cores free "
        "(sha256 2t/1t) | filtered search |"
    )
    w("| --- | --- | ---: | ---: | --- | --- |")
    for r in results:
        if "skipped" in r or "error" in r:
            why = r.get("skipped") or r.get("error")
            w(f"| {r['lib']} | - | - | - | - | skipped: {why} |")
            continue
        nf = r["native_filter"] or "none in the Python API (post-filter only)"
        cores = " / ".join(f"{x:.2f}" for x in r.get("cores_free", []))
        w(
            f"| {r['lib']} | {r['version']} | {r['build_s']:.1f} | {r['index_mb']:.0f} | "
            f"{cores} | {nf} |"
        )
    w("")
    w(
        "recall@10 / QPS 1 thread / QPS 2 threads (2t/1t), one query per call; best of "
        f"{meta['reps']} passes"
    )
    w("")
    w("| library | filter | how |" + "".join(f" ef={ef} |" for ef in EFS))
    w("| --- | --- | --- |" + " --- |" * len(EFS))
    spreads: list[float] = []
    for r in results:
        by: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        for row in r.get("rows", []):
            by.setdefault((row["filter"], row["mode"]), {})[row["ef"]] = row
            for key in ("qps1_all", "qps2_all"):
                xs = row[key]
                if len(xs) > 1:
                    spreads.append((max(xs) - min(xs)) / max(xs))
        for (flt, mode), cells in by.items():
            parts = []
            for ef in EFS:
                c = cells.get(ef) or cells.get(0)  # exact: one figure, no ef
                if c is None:
                    parts.append(" - |")
                    continue
                parts.append(
                    f" {c['recall']:.3f} / {fmt_int(c['qps1'])} / {fmt_int(c['qps2'])} "
                    f"({c['qps2'] / c['qps1']:.2f}x) |"
                )
                if 0 in cells:
                    parts.append(" (no ef) |" * (len(EFS) - 1))
                    break
            w(f"| {r['lib']} | {flt} | {mode} |" + "".join(parts))
    if spreads:
        spreads.sort()
        med = spreads[len(spreads) // 2]
        w("")
        w(
            f"noise: spread between the {meta['reps']} passes of a cell, (max-min)/max: median "
            f"{med:.0%}, worst {spreads[-1]:.0%} over {len(spreads)} cells"
        )
    w("")
    w(
        "GIL: a pure-Python spinner thread beside a loop of long searches, switch interval "
        "100 ms (0 steps = the search holds the GIL)"
    )
    w("")
    for what, g in meta.get("gil_control", {}).items():
        w(f"- control, {what}: {_gil_cell(g)}")
    w("")
    w("| library | unfiltered search | filtered search (kw20, native) |")
    w("| --- | --- | --- |")
    for r in results:
        rows = r.get("rows", [])
        if not rows:
            continue
        plain = next((x.get("gil") for x in rows if x["filter"] == "none"), None)
        filt = next((x.get("gil") for x in rows if x["filter"] == "kw20" and "gil" in x), None)
        if filt is not None:
            fcell = _gil_cell(filt)
        elif r["lib"] == "hnswlib":
            fcell = "not probed: the filter callback takes the GIL back for every candidate"
        else:
            fcell = "no native filter (post-filter: as unfiltered)"
        w(f"| {r['lib']} | {_gil_cell(plain)} | {fcell} |")
    work = [(r, x) for r in results for x in r.get("rows", []) if "work" in x]
    if work:
        w("")
        w(
            "work per query (20 queries): faiss = distance computations (hnsw_stats.ndis); "
            "hnswlib = filter callback calls"
        )
        w("")
        w("| library | filter |" + "".join(f" ef={ef} |" for ef in EFS))
        w("| --- | --- |" + " ---: |" * len(EFS))
        keys = sorted(
            {(r["lib"], x["filter"]) for r, x in work},
            key=lambda t: (LIBS.index(t[0]), FILTERS.index(t[1])),
        )
        for lib, flt in keys:
            cells = {x["ef"]: x["work"] for r, x in work if r["lib"] == lib and x["filter"] == flt}
            w(f"| {lib} | {flt} |" + "".join(f" {fmt_int(cells.get(ef, 0))} |" for ef in EFS))
    w("")
    w("| library | persistence (cheapest load) | file MiB | load s | RSS after load | identical |")
    w("| --- | --- | ---: | ---: | ---: | --- |")
    for r in results:
        p = r.get("persist")
        if not p:
            continue
        if "error" in p:
            w(f"| {r['lib']} | error: {p['error']} | {p['file_mb']:.0f} | - | - | - |")
            continue
        w(
            f"| {r['lib']} | {p['how']} | {p['file_mb']:.0f} | {p['load_s']:.2f} | "
            f"+{p['load_rss_mb']:.0f} MiB (+{p['rss_after_queries_mb']:.0f} after "
            f"{meta['queries']} queries) | {'yes' if p['same_results'] else 'NO'} |"
        )
    caps = [r for r in results if r.get("capabilities")]
    if caps:
        keys_ = list(caps[0]["capabilities"])
        w("")
        w("| library | " + " | ".join(keys_) + " |")
        w("| --- |" + " --- |" * len(keys_))
        for r in caps:
            w(f"| {r['lib']} | " + " | ".join(r["capabilities"].get(k, "") for k in keys_) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--reps", type=int, default=2, help="timed passes per cell (best is kept)")
    ap.add_argument("--no-postfilter", action="store_true", help="skip the post-filter rows")
    ap.add_argument("--json", help="also write every raw figure to this file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.out, args.reps, not args.no_postfilter)
        return

    t_start = time.perf_counter()
    big = list(range(300_000))
    control_q = np.zeros((10, 4), dtype=np.float32)
    controls: dict[str, Callable[[np.ndarray], Any]] = {
        "builtin sum() over a list (holds the GIL)": lambda q: sum(big),
        "numpy 300x300 matmul (releases it)": lambda q: np.ones((300, 300)) @ np.ones((300, 300)),
    }
    gil_control = {}
    for what, call in controls.items():
        g = gil_probe(lambda ef, call=call: call, control_q, 100)
        g.pop("ef")
        gil_control[what] = g
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    libs = [x.strip() for x in args.libs.split(",") if x.strip()]
    unknown = set(libs) - set(LIBS)
    if unknown:
        ap.error(f"unknown libraries {sorted(unknown)}; known: {', '.join(LIBS)}")
    log(f"data: {args.n} x {args.dim}, {args.queries} queries")
    ds = make_dataset(n=args.n, dim=args.dim, n_queries=args.queries, seed=args.seed)
    data = normalize(ds.vectors)
    queries = normalize(ds.queries)
    masks = {"kw20": ds.kw == 0, "rare05": ds.rare.copy()}
    truth = {f: exact_topk(data, queries, K, masks.get(f)) for f in FILTERS}
    log(f"ground truth in {time.perf_counter() - t_start:.1f}s")

    results = []
    with tempfile.TemporaryDirectory(prefix="annlib-") as tmp:
        data_path = os.path.join(tmp, "data.npz")
        np.savez(
            data_path,
            data=data,
            queries=queries,
            **masks,
            **{f"truth_{f}": t for f, t in truth.items()},
        )
        del data
        for lib in libs:
            out_path = os.path.join(tmp, f"{lib}.json")
            cmd = [sys.executable, __file__, "--worker", lib, "--data", data_path]
            cmd += ["--out", out_path, "--reps", str(args.reps)]
            if args.no_postfilter:
                cmd.append("--no-postfilter")
            log(f"{lib}: worker starting")
            proc = subprocess.run(cmd, check=False)
            try:
                res = json.loads(Path(out_path).read_text())
            except (OSError, ValueError):
                res = {"lib": lib, "error": f"worker exited {proc.returncode} without a result"}
            if "skipped" in res:
                log(f"{lib}: SKIPPED, {res['skipped']}")
            results.append(res)

    meta = {
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "reps": args.reps,
        "sel_kw20": float(masks["kw20"].mean()),
        "sel_rare05": float(masks["rare05"].mean()),
        "load_start": load_start,
        "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "total_s": time.perf_counter() - t_start,
        "gil_control": gil_control,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(report(results, meta))
    if args.json:
        with contextlib.suppress(OSError):
            Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))


if __name__ == "__main__":
    main()
