"""Giving back the pages of a file map that a load touched but a search may never need.

faiss reads a graph file with `IO_FLAG_MMAP_IFC` by mapping it whole (shared, read only), and
then checks every neighbour id of the graph against the point count: that pass brings the
whole neighbour table (~130 MiB at 1M x 128, m 16) into the process's resident set, which
for `on_disk: true` is most of what the open costs. `release` drops this process's page
table entries for every map of the file (`madvise(MADV_DONTNEED)`). The file's bytes stay in
the page cache and the next access maps them again (a minor fault): nothing is lost, since a
read-only shared map holds nothing that is not in the file; the kernel may now reclaim those
pages under memory pressure like any other cached file data.

Linux only (the maps are read from `/proc/self/maps`); elsewhere, or if anything fails, it
does nothing: this only ever changes how much memory is counted resident, never what is read.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from pathlib import Path

from tessera.memory import libc_function

log = logging.getLogger(__name__)

_MADV_DONTNEED = 4  # <sys/mman.h> on Linux


@functools.cache
def _madvise() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    fn: ctypes._CFuncPtr | None = libc_function("madvise")  # type: ignore[name-defined]
    if fn is not None:
        fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        fn.restype = ctypes.c_int
    return fn


def read_only_maps(path: Path) -> list[tuple[int, int]]:
    """(start, end) of each read-only map of `path` in this process."""
    target = os.path.realpath(path)
    found: list[tuple[int, int]] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(maxsplit=5)
                if len(fields) < 6 or fields[5] != target or "w" in fields[1]:
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                found.append((start, end))
    except OSError:
        return []
    return found


def release(path: Path) -> int:
    """Drop this process's resident pages of every read-only map of `path`; the bytes of
    the maps released (0 where nothing was mapped or the platform has no madvise)."""
    maps = read_only_maps(path)
    if not maps:
        return 0
    madvise = _madvise()
    if madvise is None:
        return 0
    released = 0
    for start, end in maps:
        if madvise(start, end - start, _MADV_DONTNEED) == 0:
            released += end - start
        else:
            log.debug("madvise on %s failed: errno %d", path, ctypes.get_errno())
    return released
