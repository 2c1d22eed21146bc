"""A PATCH of a collection's quantization or HNSW config re-optimizes the segments already
indexed, as Qdrant's config-mismatch optimizer does: the collection turns yellow, the
optimizations route lists the rebuild, searches keep answering from the old segment until
the swap, and afterwards every graph is built with the new config (its record, the codes
it holds, its links). Engine level, no server: small data, low indexing threshold."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.api.cluster_info import optimizations
from tessera.collection import writes
from tessera.collection.collection import Collection
from tessera.collection.values import Quantization, SearchParams, VectorInput
from tessera.config_json import decode_update
from tessera.engine import Engine
from tessera.fileformat import FormatError, read_array_file, write_array_file, write_checked_json
from tessera.query.filter_parse import parse_filter
from tessera.segment import build_record
from tessera.segment.quantization import code_bytes, hnsw_of
from tessera.shard import optimizer as optimizer_module
from tessera.shard.shard import (
    MANIFEST_KIND,
    MANIFEST_VERSION,
    manifest_generations,
    manifest_name,
    read_manifest,
)

N, DIM = 3000, 48


def _data(seed: int, n: int = N) -> np.ndarray[Any, Any]:
    """Clusters of low intrinsic dimension, as embeddings are (queries share the bases)."""
    bases = np.random.default_rng(99).standard_normal((16, 6, DIM)) / np.sqrt(6)
    centers = np.random.default_rng(98).standard_normal((16, DIM))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 16, n)
    spread = np.einsum("nk,nkd->nd", rng.standard_normal((n, 6)), bases[labels])
    return (centers[labels] + spread + 0.05 * rng.standard_normal((n, DIM))).astype(np.float32)


QUERIES = _data(7, 12)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine(tmp_path / "storage")
    yield eng
    eng.close()


def _create(engine: Engine, name: str = "c", **extra: Any) -> Collection:
    engine.create_collection(
        name,
        {
            "vectors": {
                "a": {"size": DIM, "distance": "Cosine"},
                "b": {"size": DIM, "distance": "Dot"},
            },
            "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 1},
            "hnsw_config": {"m": 8, "ef_construct": 32, "full_scan_threshold": 10},
            **extra,
        },
    )
    column = writes.DenseColumn(np.ones(N, dtype=bool), _data(0))
    engine.toc.get(name).update(
        writes.upsert(list(range(N)), {"a": column, "b": column}, [None] * N)
    )
    _wait_green(engine, name)
    return engine.toc.get(name)


def _wait_green(engine: Engine, name: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while engine.info(name)["status"] != "green":
        assert time.monotonic() < deadline, "still optimizing"
        time.sleep(0.05)


def _search(
    collection: Collection, using: str, q: Any, exact: bool = False
) -> tuple[list[Any], list[float]]:
    quantization = Quantization(oversampling=4.0, rescore=True)
    params = SearchParams(exact=exact, hnsw_ef=128, quantization=quantization)
    query = VectorInput(using, "dense", np.asarray(q, dtype=np.float32))
    hits = collection.search(query, parse_filter(None), 10, params=params)
    return list(hits.ids), list(hits.scores or ())


def _check_answers(collection: Collection, least: float = 0.8) -> None:
    """Approximate answers agree with exact search, scores exact (rescored)."""
    for using in ("a", "b"):
        found = 0
        for q in QUERIES:
            exact_ids, exact_scores = _search(collection, using, q, exact=True)
            ids, scores = _search(collection, using, q)
            found += len(set(ids) & set(exact_ids))
            by_id = dict(zip(exact_ids, exact_scores, strict=True))
            for pid, score in zip(ids, scores, strict=True):
                if pid in by_id:
                    assert score == pytest.approx(by_id[pid], abs=1e-4)
        assert found / (10 * len(QUERIES)) >= least, (using, found)


def _indexed(collection: Collection) -> list[Any]:
    with collection.shard.read() as holder:
        segments = [s for s in holder.segments if s.vector_indexes]
    assert segments
    return segments


def _graph(segment: Any, name: str) -> tuple[bool, int, int]:
    """(quantized, m, bytes of what the graph walks) of a segment's graph."""
    index = segment.vector_indexes[name]
    return (
        bool(index.quantized),
        int(hnsw_of(index.index).hnsw.nb_neighbors(1)),
        code_bytes(index.index),
    )


FLOAT_BYTES = N * DIM * 4


def test_patch_rebuilds_while_the_old_segment_answers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = _create(engine)
    (old,) = _indexed(collection)
    assert _graph(old, "a") == (False, 8, FLOAT_BYTES)
    assert old.build_record["a"]["quantization"] is None
    # The rebuild waits for the test's go, so the state in between is observed for sure.
    go, started = threading.Event(), threading.Event()
    real_build = optimizer_module.build_segment

    def held_build(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert go.wait(120)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(optimizer_module, "build_segment", held_build)
    collection.update_config(decode_update({"quantization_config": {"scalar": {"type": "int8"}}}))
    try:
        assert started.wait(60)
        assert engine.info("c")["status"] == "yellow"
        report = optimizations(collection, {"queued", "completed", "idle_segments"}, 16)
        (running,) = report["running"]
        assert running["optimizer"] == "config_mismatch"
        assert [s["points_count"] for s in running["segments"]] == [N]
        assert running["segments"][0]["uuid"].replace("-", "") == old.segment_id
        # Searches meanwhile: the old (float) segment answers, correctly.
        assert _indexed(collection) == [old]
        _check_answers(collection)
    finally:
        go.set()
    _wait_green(engine, "c")
    (new,) = _indexed(collection)
    assert new is not old
    for name in ("a", "b"):
        quantized, m, walked = _graph(new, name)
        assert quantized and m == 8 and walked < FLOAT_BYTES / 2
        assert new.build_record[name]["quantization"] == {"scalar": {"type": "int8"}}
    _check_answers(collection)
    report = optimizations(collection, {"completed"}, 16)
    assert report["completed"][0]["optimizer"] == "config_mismatch"
    assert report["completed"][0]["status"] == "done"
    assert report["summary"]["queued_optimizations"] == 0


# (PATCH, then for vectors a and b: quantized, m, the quantization recorded)
STEPS: list[tuple[dict[str, Any], dict[str, tuple[bool, int, Any]]]] = [
    (
        {"quantization_config": {"product": {"compression": "x8"}}},
        {
            "a": (True, 8, {"product": {"compression": "x8"}}),
            "b": (True, 8, {"product": {"compression": "x8"}}),
        },
    ),
    (
        {
            "quantization_config": {
                "binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}
            }
        },
        {
            "a": (True, 8, {"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}}),
            "b": (True, 8, {"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}}),
        },
    ),
    (
        {"quantization_config": "Disabled"},
        {"a": (False, 8, None), "b": (False, 8, None)},
    ),
    (
        {"hnsw_config": {"m": 12}},
        {"a": (False, 12, None), "b": (False, 12, None)},
    ),
    (
        {"vectors": {"b": {"quantization_config": {"turbo": {"bits": "bits2"}}}}},
        {"a": (False, 12, None), "b": (True, 12, {"turbo": {"bits": "bits2"}})},
    ),
    (
        {"vectors": {"a": {"hnsw_config": {"m": 6}}}},
        {"a": (False, 6, None), "b": (True, 12, {"turbo": {"bits": "bits2"}})},
    ),
]


def test_each_patch_rebuilds_to_the_new_config(engine: Engine) -> None:
    collection = _create(engine)
    for patch, want in STEPS:
        (before,) = _indexed(collection)
        collection.update_config(decode_update(patch))
        _wait_green(engine, "c")
        (after,) = _indexed(collection)
        assert after is not before, patch
        for name, (quantized, m, recorded) in want.items():
            got_quantized, got_m, walked = _graph(after, name)
            assert (got_quantized, got_m) == (quantized, m), (patch, name)
            assert (walked < FLOAT_BYTES / 2) is quantized, (patch, name)
            assert after.build_record[name]["quantization"] == recorded, (patch, name)
            assert after.build_record[name]["m"] == m
        # Two-bit codes of uncentered Dot vectors walk less well, rescored or not.
        _check_answers(collection, 0.7 if "binary" in str(patch) else 0.8)
    done = [o for o in collection.shard.optimizer.completed if o.optimizer == "config_mismatch"]
    assert len(done) == len(STEPS)


def test_patches_that_change_no_build_rebuild_nothing(engine: Engine) -> None:
    collection = _create(engine, quantization_config={"scalar": {"type": "int8"}})
    (before,) = _indexed(collection)
    done = collection.shard.optimizer.done_count
    collection.update_config(decode_update({"hnsw_config": {"full_scan_threshold": 20}}))
    collection.update_config(decode_update({"optimizers_config": {"deleted_threshold": 0.3}}))
    collection.update_config(decode_update({"quantization_config": {"scalar": {"type": "int8"}}}))
    assert not collection.shard.optimizer.pending()
    _wait_green(engine, "c")
    assert _indexed(collection) == [before]
    assert collection.shard.optimizer.done_count == done


def test_vectors_on_disk_patch_moves_the_rebuilt_segment(engine: Engine) -> None:
    collection = _create(engine)
    (before,) = _indexed(collection)
    assert before.build_record["a"]["vectors_on_disk"] is False
    collection.update_config(decode_update({"vectors": {"a": {"on_disk": True}}}))
    _wait_green(engine, "c")
    (after,) = _indexed(collection)
    assert after is not before
    assert after.build_record["a"]["vectors_on_disk"] is True
    assert after.build_record["b"]["vectors_on_disk"] is False
    # The rebuilt graph of `a` (and the vectors it holds) is a map of its file now.
    assert after.vector_indexes["a"].mapped and not after.vector_indexes["b"].mapped
    _check_answers(collection)
    collection.update_config(decode_update({"vectors": {"a": {"on_disk": False}}}))
    _wait_green(engine, "c")
    (back,) = _indexed(collection)
    assert back is not after and not back.vector_indexes["a"].mapped
    _check_answers(collection)


def _strip_records(storage: Path, name: str) -> None:
    """Make the newest checkpoint look written before build records existed."""
    shard_dir = storage / "collections" / name / "shard"
    gen = manifest_generations(shard_dir)[0]
    manifest_path = shard_dir / manifest_name(gen)
    manifest = read_manifest(manifest_path)
    for entry in manifest["segments"]:
        files = entry["files"]["ids"]
        path = shard_dir / "segments" / entry["id"] / files[0]["name"]
        meta, arrays = read_array_file(path, "ids")
        assert "build" in meta
        del meta["build"]
        size, crc = write_array_file(path, "ids", meta, arrays)
        files[0].update(size=size, crc32=crc)
    write_checked_json(manifest_path, MANIFEST_KIND, MANIFEST_VERSION, manifest)


def test_record_survives_restart_and_old_segments_are_inferred(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    engine = Engine(storage)
    try:
        collection = _create(engine, quantization_config={"scalar": {"type": "int8"}})
        (segment,) = _indexed(collection)
        recorded = dict(segment.build_record)
    finally:
        engine.close()
    engine = Engine(storage)
    try:
        collection = engine.toc.get("c")
        (segment,) = _indexed(collection)
        assert segment.build_record == recorded
        assert not collection.shard.optimizer.pending()
    finally:
        engine.close()

    _strip_records(storage, "c")
    engine = Engine(storage)
    try:
        collection = engine.toc.get("c")
        assert not collection.damage
        (segment,) = _indexed(collection)
        entry = segment.build_record["a"]
        assert entry["inferred"] and entry["quantized"]
        assert (entry["m"], entry["ef_construct"]) == (8, 32)  # read from the graph
        # Nothing the graph shows differs from the config: no rebuild after an upgrade.
        assert not collection.shard.optimizer.pending()
        assert engine.info("c")["status"] == "green"
        _check_answers(collection)
        collection.update_config(decode_update({"quantization_config": "Disabled"}))
        _wait_green(engine, "c")
        (rebuilt,) = _indexed(collection)
        assert rebuilt is not segment
        assert not rebuilt.build_record["a"]["inferred"]
        assert _graph(rebuilt, "a")[:2] == (False, 8)
        _check_answers(collection)
    finally:
        engine.close()


@pytest.mark.parametrize(
    "raw",
    [
        {"version": 2, "vectors": {}},
        {"version": 1},
        {"version": 1, "vectors": {"a": {"m": "8"}}},
        {"version": 1, "vectors": {"a": {"m": 8, "ef_construct": 32, "quantized": 1}}},
        [1],
    ],
)
def test_malformed_records_are_refused(raw: Any) -> None:
    with pytest.raises(FormatError):
        build_record.from_json(raw, {}, "ids.1.tsr")
