"""What an open leaves resident: arrays of zeros take no pages until written, a segment
loaded from its files keeps its all-zero id and deletion arrays that way and still takes
writes, and nothing read at load is held twice."""

from __future__ import annotations

import mmap
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from tessera import memory
from tessera.collection import requests, writes
from tessera.collection.values import EVERYTHING
from tessera.engine import Engine
from tessera.memory import zero_pages
from tessera.segment.segment import Segment

N = 140_000


def _rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


def test_zero_pages_are_resident_only_once_written() -> None:
    before = _rss_anon_kib()
    zeros = zero_pages(64 << 20, np.uint8)  # 64 MiB
    assert zeros.flags.writeable and not zeros.any()  # read whole: the shared zero page
    assert _rss_anon_kib() - before < 8 << 10
    zeros[::4096] = 1  # one byte a page
    assert _rss_anon_kib() - before >= 60 << 10
    assert int(zeros.sum()) == (64 << 20) // 4096
    small = zero_pages(10, np.uint64)
    assert small.dtype == np.uint64 and small.shape == (10,) and not small.any()


def _in_zero_pages(array: np.ndarray) -> bool:  # type: ignore[type-arg]
    base = array.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, mmap.mmap)


def _segment(engine: Engine) -> Segment:
    with engine.toc.get("c").shard.read() as holder:
        (segment,) = [s for s in holder.segments if s.size]
    return segment


def test_a_loaded_segment_keeps_zero_arrays_unallocated_and_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "_ZERO_PAGES_FROM", 4096)  # the 1-byte arrays too, at this N
    engine = Engine(tmp_path)
    engine.create_collection("c", {"vectors": {"size": 2, "distance": "Dot"}})
    vectors = np.random.default_rng(1).normal(size=(N, 2)).astype(np.float32)
    engine.upsert_arrays("c", list(range(N)), vectors, [{"n": i} for i in range(N)])
    engine.close()

    engine = Engine(tmp_path)
    segment = _segment(engine)
    for name in ("key_kind", "key_lo", "deleted"):
        # numeric ids: no kind, no low word; nothing deleted
        assert _in_zero_pages(getattr(segment, name)), name
    assert not _in_zero_pages(segment.key_hi)  # the ids themselves
    assert segment.key_hi[:5].tolist() == [0, 1, 2, 3, 4]

    engine.write("c", writes.delete([7]))
    point = str(uuid.UUID(int=12345))
    engine.upsert("c", {"points": [{"id": point, "vector": [1.0, 0.0], "payload": {"u": 1}}]})
    hits = [pid for pid, _ in engine.search("c", np.array([1.0, 0.0], np.float32), 3)]
    assert len(hits) == 3
    engine.close()

    engine = Engine(tmp_path)  # what was written over the zero pages was persisted
    assert engine.info("c")["points_count"] == N
    found = engine.read("c", requests.Retrieve((7, 8, uuid.UUID(point)), EVERYTHING))
    assert found.ids == [8, uuid.UUID(point)]
    assert found.payloads == [{"n": 8}, {"u": 1}]
    engine.close()


def test_the_embedded_engine_leaves_the_http_stack_unloaded(tmp_path: Path) -> None:
    # Search and info in process need no web framework: its modules (several MiB of the
    # resident set) load only for the typed requests that run the REST layer's functions.
    script = f"""
import sys, numpy as np
from tessera.engine import Engine
engine = Engine({str(tmp_path)!r})
engine.create_collection("c", {{"vectors": {{"size": 2, "distance": "Dot"}}}})
engine.upsert("c", {{"points": [{{"id": 1, "vector": [1.0, 0.0]}}]}})
assert engine.info("c")["points_count"] == 1
assert engine.search("c", np.array([1.0, 0.0], np.float32), 1)[0][0] == 1
print("starlette" in sys.modules)
"""
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert found.stdout.strip() == "False", found.stderr
