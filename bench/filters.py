"""Filtered count and scroll (issue 3): Tessera vs Qdrant Edge vs qdrant-client local mode.

The same points for every engine (``common.make_dataset``: default 1M points; the vectors
are tiny, dim 4, since only the filters matter), with payload indexes on ``kw`` and ``rare``
(keyword) and ``f`` (float), created before the data is loaded. Three filters:

- ``kw = k0``: keyword match, 20% of the points;
- ``rare = yes``: keyword match, 0.5% of the points;
- ``0.25 <= f < 0.35``: float range, 10% of the points.

Two operations per filter, each timed as the median of repeated calls (warm):

- ``count``: exact count;
- ``scroll 10k``: the first page of 10,000 matching ids in id order (``with_payload`` and
  ``with_vector`` off: the filter and the paging are measured, not payload rendering).

Engines:

- Qdrant Edge (``qdrant-edge-py``, in this process), after ``optimize()`` (with m=0: no graph
  is needed here; the points land in immutable segments with their payload indexes);
- Tessera in-process: ``tessera.engine.Engine`` for loading, then the shard's read path
  (``tessera.shard.read.count`` / ``scroll_by_id`` under the read lock, the filter parsed
  from JSON per call), vector indexing off (``indexing_threshold: 0``);
- Tessera over REST (``--rest``): ``python -m tessera serve`` driven by ``qdrant-client``;
- ``qdrant-client`` local mode: pure Python, so on ``--local-n`` points only (default 50k);
  Tessera in-process is timed again on those same points, and the speed-up is taken from
  those two columns (same n), never across different n.

Every answer is checked against numpy (the count, and the exact ids of the page).
Targets: Tessera within 2x of Edge, and >= 100x faster than local mode.

    .venv/bin/python bench/filters.py [--n 1000000] [--local-n 50000] [--rest]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common
from common import Dataset, EdgeEngine, HnswParams

PAGE = 10_000
COLLECTION = "bench"
FILTERS: dict[str, dict[str, Any]] = {
    "kw = k0 (20%)": {"must": [{"key": "kw", "match": {"value": "k0"}}]},
    "rare = yes (0.5%)": {"must": [{"key": "rare", "match": {"value": "yes"}}]},
    "0.25 <= f < 0.35 (10%)": {"must": [{"key": "f", "range": {"gte": 0.25, "lt": 0.35}}]},
}
OPS = ("count", "scroll 10k")

Runner = Callable[[dict[str, Any]], Any]


def truth_mask(ds: Dataset, label: str, n: int) -> np.ndarray:
    if label.startswith("kw"):
        return np.asarray(ds.kw[:n] == 0)
    if label.startswith("rare"):
        return np.asarray(ds.rare[:n])
    f = ds.f[:n]
    return np.asarray((f >= 0.25) & (f < 0.35))


def timed(fn: Callable[[], Any], min_time: float, max_reps: int) -> tuple[float, Any]:
    """Median milliseconds over repeated calls (after two warm-up calls), and one result."""
    result = fn()
    fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_reps and (len(times) < 3 or time.perf_counter() - started < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0, result


# --------------------------------------------------------------------------------------
# Engines: each loads the first n points of the dataset and answers count / scroll
# --------------------------------------------------------------------------------------


class TesseraLocal:
    """Tessera's engine in this process."""

    def __init__(self, path: Path) -> None:
        from tessera.engine import Engine

        self.engine = Engine(path)
        self.names: list[str] = []

    def load(self, name: str, ds: Dataset, n: int, batch: int) -> None:
        eng = self.engine
        eng.create_collection(
            name,
            {
                "vectors": {"size": ds.dim, "distance": "Cosine"},
                "optimizers_config": {"indexing_threshold": 0},
            },
        )
        for key, kind in common.PAYLOAD_INDEXES.items():
            eng.create_field_index(name, key, kind)
        for start, stop in common.batches(n, batch):
            eng.upsert_arrays(
                name, list(range(start, stop)), ds.vectors[start:stop], ds.payloads(start, stop)
            )
        eng.wait_optimized(name)

    def runners(self, name: str) -> dict[str, Runner]:
        from tessera.query.filter_parse import parse_filter
        from tessera.shard import read

        collection = self.engine.toc.get(name)

        def count(fj: dict[str, Any]) -> int:
            filt = parse_filter(fj)
            with collection.shard.read() as holder:
                return read.count(holder, filt, True)

        def scroll(fj: dict[str, Any]) -> list[Any]:
            filt = parse_filter(fj)
            with collection.shard.read() as holder:
                refs, _ = read.scroll_by_id(holder, filt, None, PAGE)
                return [r.id for r in refs]

        return {"count": count, "scroll 10k": scroll}

    def close(self) -> None:
        self.engine.close()


class Edge:
    def __init__(self, path: Path) -> None:
        self.engine = EdgeEngine(path, max_search_threads=1)

    def load(self, ds: Dataset, n: int, batch: int) -> None:
        self.engine.create(ds.dim, HnswParams(m=0), payload_indexes=True)
        for start, stop in common.batches(n, batch):
            self.engine.upsert(ds, start, stop)
        self.engine.build(n)

    @staticmethod
    def edge_filter(fj: dict[str, Any]) -> Any:
        import qdrant_edge as qe

        cond = fj["must"][0]
        if "match" in cond:
            return qe.Filter(
                must=[
                    qe.FieldCondition(key=cond["key"], match=qe.MatchValue(cond["match"]["value"]))
                ]
            )
        return qe.Filter(
            must=[qe.FieldCondition(key=cond["key"], range=qe.RangeFloat(**cond["range"]))]
        )

    def runners(self) -> dict[str, Runner]:
        import qdrant_edge as qe

        shard = self.engine.shard

        def count(fj: dict[str, Any]) -> int:
            return int(shard.count(qe.CountRequest(exact=True, filter=self.edge_filter(fj))))

        def scroll(fj: dict[str, Any]) -> list[Any]:
            req = qe.ScrollRequest(
                limit=PAGE, filter=self.edge_filter(fj), with_payload=False, with_vector=False
            )
            points, _ = shard.scroll(req)
            return [p.id for p in points]

        return {"count": count, "scroll 10k": scroll}

    def close(self) -> None:
        self.engine.close()


def client_runners(client: Any, name: str) -> dict[str, Runner]:
    """qdrant-client (REST or local mode); the filter model is built per call."""
    from qdrant_client import models

    def count(fj: dict[str, Any]) -> int:
        filt = models.Filter.model_validate(fj)
        return int(client.count(name, count_filter=filt, exact=True).count)

    def scroll(fj: dict[str, Any]) -> list[Any]:
        filt = models.Filter.model_validate(fj)
        points, _ = client.scroll(
            name, scroll_filter=filt, limit=PAGE, with_payload=False, with_vectors=False
        )
        return [p.id for p in points]

    return {"count": count, "scroll 10k": scroll}


def load_client(client: Any, name: str, ds: Dataset, n: int, batch: int, rest: bool) -> None:
    from qdrant_client import models

    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=ds.dim, distance=models.Distance.COSINE),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=0) if rest else None,
    )
    kinds = {"keyword": models.PayloadSchemaType.KEYWORD, "float": models.PayloadSchemaType.FLOAT}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for key, kind in common.PAYLOAD_INDEXES.items():
            client.create_payload_index(name, key, field_schema=kinds[kind], wait=True)
    for start, stop in common.batches(n, batch):
        client.upsert(
            name,
            points=models.Batch(
                ids=list(range(start, stop)),
                vectors=ds.vectors[start:stop].tolist(),
                payloads=ds.payloads(start, stop),
            ),
            wait=True,
        )


# --------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------


Results = dict[tuple[str, str], float | str]


def measure(
    runners: dict[str, Runner], ds: Dataset, n: int, min_time: float, max_reps: int
) -> Results:
    out: Results = {}
    for label, fj in FILTERS.items():
        mask = truth_mask(ds, label, n)
        want_ids = np.flatnonzero(mask)[:PAGE].tolist()
        for op in OPS:
            ms, got = timed(lambda op=op, fj=fj: runners[op](fj), min_time, max_reps)
            want = int(mask.sum()) if op == "count" else want_ids
            got_cmp = got if op == "count" else [int(x) for x in got]
            out[(label, op)] = ms if got_cmp == want else f"WRONG ({ms:.2f} ms)"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="points (default 1M)")
    ap.add_argument("--dim", type=int, default=4, help="vector dimensions (default 4)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--local-n", type=int, default=50_000, help="points for local mode")
    ap.add_argument("--batch", type=int, default=10_000, help="points per upsert")
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds of timing per cell")
    ap.add_argument("--max-reps", type=int, default=200)
    ap.add_argument("--rest", action="store_true", help="also Tessera over REST")
    ap.add_argument("--no-edge", action="store_true")
    ap.add_argument("--no-local", action="store_true")
    common.add_server_args(ap)
    args = ap.parse_args()

    ds = common.make_dataset(args.n, args.dim, n_queries=1, seed=args.seed)
    local_n = min(args.local_n, ds.n)
    res: dict[str, Results | str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-filters-"))
    try:
        if not args.no_edge:
            common.log(f"Edge: loading {ds.n} points")
            edge = Edge(tmp / "edge")
            with common.timer() as t:
                edge.load(ds, ds.n, args.batch)
            common.log(f"  loaded + optimized in {t[0]:.1f} s")
            res["edge"] = measure(edge.runners(), ds, ds.n, args.min_time, args.max_reps)
            edge.close()

        common.log(f"Tessera in-process: loading {ds.n} points")
        tess = TesseraLocal(tmp / "tessera")
        with common.timer() as t:
            tess.load(COLLECTION, ds, ds.n, args.batch)
        common.log(f"  loaded in {t[0]:.1f} s")
        res["tessera"] = measure(tess.runners(COLLECTION), ds, ds.n, args.min_time, args.max_reps)
        if not args.no_local:
            tess.load("small", ds, local_n, args.batch)
            res["tessera_small"] = measure(
                tess.runners("small"), ds, local_n, args.min_time, args.max_reps
            )
        tess.close()

        if args.rest and not args.no_tessera:
            common.log(f"Tessera REST: loading {ds.n} points")
            try:
                with common.TesseraServer(venv=args.venv, url=args.url) as srv:
                    client = common.qdrant_rest_client(srv.url)
                    load_client(client, COLLECTION, ds, ds.n, 1000, rest=True)
                    res["rest"] = measure(
                        client_runners(client, COLLECTION), ds, ds.n, args.min_time, args.max_reps
                    )
                    client.close()
            except Exception as exc:
                res["rest"] = f"failed: {common.describe(exc)}"

        if not args.no_local:
            common.log(f"local mode: loading {local_n} points")
            local = common.LocalEngine().client
            load_client(local, COLLECTION, ds, local_n, 1000, rest=False)
            res["local"] = measure(
                client_runners(local, COLLECTION),
                ds,
                local_n,
                min(args.min_time, 0.5),
                min(args.max_reps, 5),
            )
            local.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report(res, ds.n, local_n)


def report(res: dict[str, Results | str], n: int, local_n: int) -> None:
    def cell(engine: str, key: tuple[str, str]) -> float | str | None:
        r = res.get(engine)
        if r is None:
            return None
        return "n/a" if isinstance(r, str) else r.get(key)

    def num(x: float | str | None) -> float | None:
        return x if isinstance(x, float) else None

    headers = ["operation", "filter", "Edge ms", "Tessera ms", "Tessera/Edge"]
    if "rest" in res:
        headers += ["REST ms", "REST/Edge"]
    headers += [f"local ms (n={local_n:,})", f"Tessera ms (n={local_n:,})", "local/Tessera"]
    rows = []
    worst_edge, worst_local = 0.0, float("inf")
    for op in OPS:
        for label in FILTERS:
            key = (label, op)
            e, t = cell("edge", key), cell("tessera", key)
            lo, ts = cell("local", key), cell("tessera_small", key)
            row: list[Any] = [op, label, e, t, common.ratio(num(t), num(e))]
            if "rest" in res:
                r = cell("rest", key)
                row += [r, common.ratio(num(r), num(e))]
            row += [lo, ts, common.ratio(num(lo), num(ts))]
            rows.append([f"{x:.2f}" if isinstance(x, float) else x for x in row])
            if num(t) and num(e):
                worst_edge = max(worst_edge, num(t) / num(e))  # type: ignore[operator]
            if num(lo) and num(ts):
                worst_local = min(worst_local, num(lo) / num(ts))  # type: ignore[operator]
    common.print_table(
        headers,
        rows,
        title=f"Filtered count / scroll, {n:,} points with payload indexes (median ms per call; "
        f"local mode and its Tessera column on the first {local_n:,} points)",
    )
    for engine in ("rest",):
        if isinstance(res.get(engine), str):
            print(f"\nTessera REST: {res[engine]}")
    if worst_edge:
        print(f"\ntarget Tessera within 2x of Edge: worst cell {worst_edge:.2f}x")
    if worst_local != float("inf"):
        print(f"target Tessera >= 100x faster than local mode: worst cell {worst_local:.0f}x")


if __name__ == "__main__":
    main()
