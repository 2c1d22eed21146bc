"""Every durable file-system change goes through here, so durability lives in one place.

The promise is strict POSIX, not ext4's journal ordering: a file's bytes are durable after an
fsync of the file, and a directory entry (create, mkdir, rename, unlink) only after an fsync
of the directory that holds it. So every helper below that changes a directory fsyncs it
before returning, and a caller that returns from one may build on the change.

A failed fsync is never retried as if the data were safe ("fsyncgate": Linux may drop the
dirty pages and report success next time); the error propagates and the caller refuses the
write and reloads from what is known durable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mkdir_durable(path: Path) -> None:
    """mkdir -p, with every directory it creates made durable in its parent."""
    path = Path(path)
    if path.is_dir():
        return
    mkdir_durable(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir():
            raise
        return
    fsync_dir(path)
    fsync_dir(path.parent)


@contextmanager
def durable_file(path: Path) -> Iterator[BinaryIO]:
    """Write a new file that never exists half-written: tmp + fsync + rename + fsync parent.
    On an exception nothing is left behind."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_durable(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, durable on return."""
    with durable_file(path) as f:
        f.write(data)


def write_file_synced(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Create `path` (a name never used before) and fsync its bytes; the caller fsyncs the
    directory once for a whole group of such files before anything refers to them."""
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def free_name(path: Path) -> Path:
    """`path`, or `path` with a counter (`name.2`, `name.3`...) where a file of that name
    exists: a copy set aside as damaged (the same second, the same file) is never
    replaced by a later one."""
    n = 1
    candidate = path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def rename_durable(src: Path, dst: Path) -> None:
    os.replace(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def remove_durable(path: Path) -> None:
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def rmtree_durable(path: Path) -> None:
    """Remove a tree that nothing refers to any more (it was renamed aside durably first)."""
    shutil.rmtree(path, ignore_errors=True)
    if path.parent.exists():
        fsync_dir(path.parent)


def remove_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
