"""The process as the operating system sees it, for `/telemetry` and `/metrics`: memory
(Qdrant's `MemoryTelemetry`, from glibc's allocator and /proc) and Qdrant's `process_*`
metrics (threads, mmaps, file descriptors, page faults). Linux; elsewhere what cannot be
read is left out.
"""

from __future__ import annotations

import ctypes
import os
import resource
from dataclasses import dataclass

from tessera.memory import libc_function

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo2() -> _MallInfo2 | None:
    fn = libc_function("mallinfo2")
    if fn is None:  # not glibc, or glibc older than 2.33
        return None
    fn.restype = _MallInfo2
    info: _MallInfo2 = fn()
    return info


def _statm() -> tuple[int, int]:
    """(virtual, resident) bytes of this process."""
    with open("/proc/self/statm", encoding="ascii") as f:
        size, resident = f.read().split()[:2]
    return int(size) * PAGE, int(resident) * PAGE


def memory_telemetry() -> dict[str, int]:
    """Allocated and active: bytes in use by malloc (small chunks and mmapped blocks);
    metadata: the heap's bytes that are neither in use nor free (chunk headers, padding);
    resident: the process's resident pages; retained: its virtual mappings."""
    try:
        virtual, resident = _statm()
    except OSError:
        virtual = resident = 0
    info = _mallinfo2()
    if info is None:
        in_use, metadata = resident, 0
    else:
        in_use = info.uordblks + info.hblkhd
        metadata = max(info.arena - info.uordblks - info.fordblks, 0)
    return {
        "active_bytes": in_use,
        "allocated_bytes": in_use,
        "metadata_bytes": metadata,
        "resident_bytes": resident,
        "retained_bytes": virtual,
    }


@dataclass(frozen=True)
class ProcessStats:
    threads: int
    open_mmaps: int
    max_mmaps: int | None
    open_fds: int
    max_fds: int
    minor_page_faults: int
    major_page_faults: int


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def process_stats() -> ProcessStats | None:
    try:
        threads = len(os.listdir("/proc/self/task"))
        mmaps = _count_lines("/proc/self/maps")
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        return None
    try:
        with open("/proc/sys/vm/max_map_count", encoding="ascii") as f:
            max_mmaps: int | None = int(f.read().strip())
    except (OSError, ValueError):
        max_mmaps = None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = [v for v in (soft, hard) if v != resource.RLIM_INFINITY]
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ProcessStats(
        threads,
        mmaps,
        max_mmaps,
        fds,
        min(limits) if limits else 0,
        own.ru_minflt + children.ru_minflt,
        own.ru_majflt + children.ru_majflt,
    )
