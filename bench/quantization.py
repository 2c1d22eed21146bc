"""Quantization (issue 12): memory, recall@10 and QPS per quantization type, Tessera next to
Qdrant Edge with the same config.

    .venv/bin/python bench/quantization.py [--n 20000 --dim 256 --queries 200]

Both engines get the same clustered Cosine data (`common.make_dataset`), HNSW m=16,
ef_construct=100, one segment, and are searched with hnsw_ef=64, limit 10, `rescore` on
(Qdrant's default) with the oversampling of each row. Recall is against exact cosine top 10.
Tessera runs in process (`tessera.engine.Engine`, the same code the server runs), Edge in
process too, both built before either is timed; their queries then alternate in blocks of
`--block` for `--rounds` passes (`bench/interleaved.py`), so that both meet this machine's
speed phases alike. Memory: the bytes per vector of the quantized codes (Tessera: what the
faiss index stores; Edge: the size of its quantized-vector files), next to the 4 x dim bytes
of the float vectors.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common
from interleaved import interleave

CONFIGS: list[tuple[str, dict[str, Any] | None, float]] = [
    ("none", None, 1.0),
    ("scalar int8", {"scalar": {"type": "int8"}}, 1.0),
    ("product x8", {"product": {"compression": "x8"}}, 2.0),
    ("product x32", {"product": {"compression": "x32"}}, 4.0),
    ("binary 1 bit", {"binary": {}}, 4.0),
    ("binary 1.5 bits", {"binary": {"encoding": "one_and_half_bits"}}, 4.0),
    ("binary 2 bits", {"binary": {"encoding": "two_bits"}}, 4.0),
    (
        "binary 2 bits, query 8 bits",
        {"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}},
        4.0,
    ),
    ("turbo 4 bits", {"turbo": {}}, 1.0),
    ("turbo 2 bits", {"turbo": {"bits": "bits2"}}, 2.0),
    ("turbo 1.5 bits", {"turbo": {"bits": "bits1_5"}}, 4.0),
    ("turbo 1 bit", {"turbo": {"bits": "bits1"}}, 4.0),
]


def edge_quantization(config: dict[str, Any] | None) -> Any:
    import qdrant_edge as qe

    if config is None:
        return None
    kind, body = next(iter(config.items()))
    if kind == "scalar":
        return qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, always_ram=True)
    if kind == "product":
        ratio = {"x4": "X4", "x8": "X8", "x16": "X16", "x32": "X32", "x64": "X64"}
        compression = getattr(qe.CompressionRatio, ratio[body["compression"]])
        return qe.ProductQuantizationConfig(compression=compression, always_ram=True)
    if kind == "binary":
        enc = {"two_bits": "TwoBits", "one_and_half_bits": "OneAndHalfBits"}
        qenc = {"scalar8bits": "Scalar8Bits", "scalar4bits": "Scalar4Bits"}
        return qe.BinaryQuantizationConfig(
            always_ram=True,
            encoding=getattr(
                qe.BinaryQuantizationEncoding, enc.get(body.get("encoding"), "OneBit")
            ),
            query_encoding=getattr(
                qe.BinaryQuantizationQueryEncoding, qenc.get(body.get("query_encoding"), "Default")
            ),
        )
    bits = {"bits2": "Bits2", "bits1": "Bits1", "bits1_5": "Bits1_5"}
    return qe.TurboQuantQuantizationConfig(
        always_ram=True, bits=getattr(qe.TurboQuantBitSize, bits.get(body.get("bits"), "Bits4"))
    )


def open_edge(
    ds: common.Dataset, config: dict[str, Any] | None, oversampling: float, path: Path
) -> tuple[Callable[[int], list[int]], Callable[[], float], float]:
    """Edge's shard built over the data: (query i -> ids, close -> quantized bytes per
    vector, build seconds)."""
    import qdrant_edge as qe

    dim = ds.vectors.shape[1]
    shard = qe.EdgeShard.create(
        str(path),
        qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(
                size=dim, distance=qe.Distance.Cosine, quantization_config=edge_quantization(config)
            ),
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=10, default_segment_number=1),
            max_search_threads=1,
        ),
    )
    t0 = time.perf_counter()
    for start, stop in common.batches(len(ds.vectors), 1000):
        points = [qe.Point(i, ds.vectors[i].tolist()) for i in range(start, stop)]
        shard.update(qe.UpdateOperation.upsert_points(points))
    shard.optimize()
    build = time.perf_counter() - t0
    quant = qe.QuantizationSearchParams(rescore=True, oversampling=oversampling)
    params = qe.SearchParams(hnsw_ef=64, quantization=quant if config else None)
    queries = ds.queries.tolist()

    def query(i: int) -> list[int]:
        req = qe.QueryRequest(limit=10, query=qe.Query.Nearest(queries[i]), params=params)
        return [int(p.id) for p in shard.query(req)]

    def close() -> float:
        shard.flush()
        shard.close()
        # Qdrant's quantized codes: vector_storage/quantized.data (or quantized_data/ pages).
        quant_bytes = sum(
            f.stat().st_size
            for f in path.rglob("*")
            if f.is_file() and (f.name == "quantized.data" or f.parent.name == "quantized_data")
        )
        return quant_bytes / len(ds.vectors)

    return query, close, build


def open_tessera(
    ds: common.Dataset, config: dict[str, Any] | None, oversampling: float, path: Path
) -> tuple[Callable[[int], list[int]], Callable[[], float], float]:
    """Tessera's engine built over the data, as `open_edge`."""
    from tessera.collection.values import Quantization, SearchParams, VectorInput
    from tessera.engine import Engine
    from tessera.query.filter_parse import parse_filter
    from tessera.segment.quantization import code_bytes

    dim = ds.vectors.shape[1]
    engine = Engine(path)
    body: dict[str, Any] = {
        "vectors": {"size": dim, "distance": "Cosine"},
        "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 1},
        "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10},
    }
    if config is not None:
        body["quantization_config"] = config
    engine.create_collection("bench", body)
    t0 = time.perf_counter()
    for start, stop in common.batches(len(ds.vectors), 1000):
        ids = list(range(start, stop))
        engine.upsert_arrays("bench", ids, ds.vectors[start:stop], [{} for _ in ids])
    engine.wait_optimized("bench")
    build = time.perf_counter() - t0
    collection = engine.toc.get("bench")
    params = SearchParams(hnsw_ef=64, quantization=Quantization(oversampling=oversampling))
    no_filter = parse_filter(None)
    queries = [VectorInput("", "dense", q) for q in ds.queries]

    def query(i: int) -> list[int]:
        return [int(x) for x in collection.search(queries[i], no_filter, 10, params=params).ids]

    def close() -> float:
        segments = collection.shard.holder.segments
        stored = sum(code_bytes(s.vector_indexes[""].index) for s in segments if s.vector_indexes)
        engine.close()
        return stored / len(ds.vectors) if config is not None else 0.0

    return query, close, build


def measure_row(
    ds: common.Dataset,
    config: dict[str, Any] | None,
    oversampling: float,
    tmp: Path,
    block: int,
    rounds: int,
) -> dict[str, dict[str, float]]:
    """Both engines built, then their queries alternating in blocks (`interleaved.py`), so
    that both meet this machine's speed phases alike; recall from the first pass."""
    common.log("Edge: build")
    edge = open_edge(ds, config, oversampling, tmp / "edge")
    common.log("Tessera: build")
    tessera = open_tessera(ds, config, oversampling, tmp / "tessera")
    fns = {"edge": edge[0], "tessera": tessera[0]}
    spent, found = interleave(fns, np.arange(len(ds.queries)), block, rounds)
    truth = common.exact_topk(ds.vectors, ds.queries)
    out = {}
    for name, (_, close, build) in (("edge", edge), ("tessera", tessera)):
        out[name] = {
            "recall": common.recall_at_k(found[name], truth),
            "qps": rounds * len(ds.queries) / spent[name],
            "bytes": close(),
            "build": build,
        }
    return out


def turbo4_round_trip(dims: tuple[int, ...] = (64, 256, 768)) -> list[list[Any]]:
    """The `turbo4` datatype: how far a stored-and-returned vector is from what was sent
    (relative L2 error, mean over 200 vectors), Edge's codec next to Tessera's."""
    import qdrant_edge as qe

    from tessera.query import turbo

    rows = []
    rng = np.random.default_rng(0)
    for dim in dims:
        x = rng.standard_normal((200, dim)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            params = qe.EdgeVectorParams(
                size=dim, distance=qe.Distance.Dot, datatype=qe.VectorStorageDatatype.Turbo4
            )
            shard = qe.EdgeShard.create(tmp, qe.EdgeConfig(vectors=params))
            shard.update(
                qe.UpdateOperation.upsert_points([qe.Point(i, x[i].tolist()) for i in range(200)])
            )
            got = shard.retrieve(list(range(200)), with_payload=False, with_vector=True)
            edge = np.array([p.vector for p in sorted(got, key=lambda p: p.id)], np.float32)
            shard.close()
        ours = turbo.decode(turbo.encode(x))
        norms = np.linalg.norm(x, axis=1)
        rows.append(
            [
                dim,
                4 * dim,
                common.fmt(float(np.mean(np.linalg.norm(edge - x, axis=1) / norms)), 4),
                turbo.row_bytes(dim),
                common.fmt(float(np.mean(np.linalg.norm(ours - x, axis=1) / norms)), 4),
            ]
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_data_args(ap, n=20_000, dim=256, queries=200)
    ap.add_argument("--only", default="", help="comma-separated row names to run")
    ap.add_argument("--block", type=int, default=25, help="queries per engine turn")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the queries")
    args = ap.parse_args()
    ds = common.make_dataset(args.n, args.dim, args.queries)
    rows = []
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    for name, config, oversampling in CONFIGS:
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            common.log(name)
            both = measure_row(ds, config, oversampling, Path(tmp), args.block, args.rounds)
            edge, tess = both["edge"], both["tessera"]
        rows.append(
            [
                name,
                oversampling,
                common.fmt(edge["bytes"], 0),
                common.fmt(tess["bytes"], 0),
                common.fmt(edge["recall"], 3),
                common.fmt(tess["recall"], 3),
                common.fmt(edge["qps"], 0),
                common.fmt(tess["qps"], 0),
                common.fmt(edge["build"], 1),
                common.fmt(tess["build"], 1),
            ]
        )
    headers = [
        "quantization",
        "oversampling",
        "Edge B/vec",
        "Tessera B/vec",
        "Edge recall@10",
        "Tessera recall@10",
        "Edge QPS",
        "Tessera QPS",
        "Edge build s",
        "Tessera build s",
    ]
    title = f"n={args.n} dim={args.dim} Cosine, float vectors {4 * args.dim} B/vec"
    common.print_table(headers, rows, title)
    common.print_table(
        ["dim", "float32 B/vec", "Edge rel. error", "Tessera B/vec", "Tessera rel. error"],
        turbo4_round_trip(),
        "turbo4 datatype: stored vector vs the one sent (Dot, Gaussian vectors)",
    )


if __name__ == "__main__":
    main()
