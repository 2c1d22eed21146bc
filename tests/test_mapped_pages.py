"""A graph opened from its file (`on_disk: true`) does not stay resident because faiss's load
read all of it: the pages go back, the answers stay the same."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.segment import mapped_pages
from tessera.segment.ann_index import HnswIndex

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/smaps"), reason="reads the process's maps (Linux)"
)


def _resident_bytes(path: Path) -> int:
    """Resident bytes of this process's maps of `path` (/proc/self/smaps)."""
    target = os.path.realpath(path)
    total, inside = 0, False
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as f:
        for line in f:
            head = line.split(maxsplit=5)
            if head and "-" in head[0] and not head[0].endswith(":"):
                inside = len(head) == 6 and head[5].rstrip("\n") == target
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total


def _graph(tmp_path: Path) -> tuple[Path, HnswIndex, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20_000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    built = HnswIndex.build(x, "Cosine", 16, 32, None)
    path = tmp_path / "hnsw0.faiss"
    built.save(path)
    return path, built, x


def test_a_mapped_graph_is_not_left_resident_by_its_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, built, x = _graph(tmp_path)
    links = 20_000 * 32 * 4  # the graph's level-0 neighbour table, which faiss's load checks
    kept = HnswIndex.load(path, "Cosine", mmap=True)
    assert mapped_pages.read_only_maps(path), "the graph is read from a map of its file"
    assert _resident_bytes(path) < links // 4
    # Without the release, faiss's check of the links leaves them all resident.
    monkeypatch.setattr(mapped_pages, "release", lambda path: 0)
    unreleased = HnswIndex.load(path, "Cosine", mmap=True)
    assert _resident_bytes(path) >= links
    monkeypatch.undo()
    # Same answers from the released map (paged in again on use) as from the build.
    for q in x[:50]:
        got, want = kept.search(q, 10, 64, None), built.search(q, 10, 64, None)
        assert got[1].tolist() == want[1].tolist()
        np.testing.assert_array_equal(got[0], want[0])
    del unreleased


def test_release_leaves_writable_maps_and_unmapped_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "rows.bin"
    np.arange(1 << 16, dtype=np.int64).tofile(path)
    assert mapped_pages.release(path) == 0  # not mapped
    rows = np.memmap(path, dtype=np.int64, mode="r+")
    rows[:10] = -1  # not yet written back: a release would lose it
    assert mapped_pages.release(path) == 0
    assert rows[:10].tolist() == [-1] * 10
    readonly = np.memmap(path, dtype=np.int64, mode="r")
    assert int(readonly[5000]) == 5000
    assert mapped_pages.release(path) > 0
    assert int(readonly[5000]) == 5000 and rows[:10].tolist() == [-1] * 10
