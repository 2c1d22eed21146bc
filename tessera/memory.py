"""Giving freed heap back to the operating system, and arrays of zeros that take none.

Rebuilding a segment and flushing one allocate large temporary arrays; glibc keeps the freed
pages in its arenas, so the process's resident memory would stay at its peak. `malloc_trim`
returns them. A no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import mmap
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

_lock = threading.Lock()


@functools.cache
def libc_function(name: str) -> Any:
    """The C library's function `name` (errno kept for `ctypes.get_errno`), or None where
    there is none (not glibc, or too old). Looked up among the process's own symbols, once:
    `ctypes.util.find_library` would run ldconfig each time."""
    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None


def release_free_memory(collect: bool = False) -> None:
    """`collect`: first free unreachable cycles (replaced segments), worth it after a rebuild."""
    if collect:
        gc.collect()
    trim = libc_function("malloc_trim")
    if trim is None:
        return
    with _lock:
        trim(0)


_ZERO_PAGES_FROM = 1 << 20


def zero_pages(count: int, dtype: Any) -> npt.NDArray[Any]:
    """A writable array of `count` zeros in fresh private anonymous pages: none is resident
    until written (reads map the kernel's shared zero page). `np.zeros` makes no such promise
    for memory calloc takes from what the heap already holds. Small arrays are plain zeros."""
    nbytes = count * np.dtype(dtype).itemsize
    if nbytes < _ZERO_PAGES_FROM:
        return np.zeros(count, dtype=dtype)
    pages = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(pages, dtype=dtype, count=count)
