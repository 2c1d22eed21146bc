"""Giving freed heap back to the operating system.

Rebuilding a segment and flushing one allocate large temporary arrays; glibc keeps the freed
pages in its arenas, so the process's resident memory would stay at its peak. `malloc_trim`
returns them. A no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading

_lock = threading.Lock()
_libc: ctypes.CDLL | None = None
try:
    _path = ctypes.util.find_library("c")
    if _path:
        _libc = ctypes.CDLL(_path)
        if not hasattr(_libc, "malloc_trim"):
            _libc = None
except OSError:
    _libc = None


def release_free_memory(collect: bool = False) -> None:
    """`collect`: first free unreachable cycles (replaced segments), worth it after a rebuild."""
    if collect:
        gc.collect()
    if _libc is None:
        return
    with _lock:
        _libc.malloc_trim(0)
