"""A power-loss simulator: a FUSE passthrough file system that remembers what is durable.

The model is strict POSIX, as on a file system without ext4's journal ordering:

* A file's bytes (and its size) are durable only as of its last ``fsync``/``fdatasync``.
  Every ``write``/``pwrite``, ``truncate``/``ftruncate``, ``open(O_TRUNC)`` and ``fallocate``
  after that is lost at the cut.
* A directory's entries (create, mkdir, mknod, symlink, rename in or out, unlink, rmdir) are
  durable only as of the last ``fsync`` of *that directory* (FUSE ``fsyncdir``). At the cut a
  directory holds exactly the entries it had at its last fsync, each naming the object (the
  inode) it named then, with that object's durable content. So a file that was fsynced but
  whose directory was not is gone; a rename not followed by an fsync of the new parent is not
  there under the new name, and the old name comes back (with the old object's durable bytes)
  unless the old parent was fsynced after the rename; a rename across directories where only
  the new parent was fsynced leaves both names (as two copies).
* What was in the backing directory when the file system was mounted is durable (it is the
  state the machine found at boot).

The daemon (``python tests/powerloss_fs.py --backing B --mountpoint M --shadow S --control C``)
passes every operation through to the backing directory ``B`` and keeps a *durable shadow*:

* per object (a node, identified by the backing inode number while it is live, and by a
  fresh node id whenever create/mkdir/mknod/symlink makes a new object, so a reused inode
  number never aliases an old object): its content as of its last fsync, kept as a file in
  ``S`` (``S/<node id>``) and updated at each fsync from the ranges written since the last one
  (the node keeps a list of dirty byte ranges, so an fsync of a 32 MiB preallocated log file
  after a 100-byte pwrite copies 100 bytes);
* per directory node: the mapping name -> node as of its last fsyncdir.

Control, over a Unix socket ``C`` (one JSON line in, one JSON line out):
``{"op": "cut"}`` freezes the file system (every later operation fails with EIO: the power is
off); ``{"op": "materialise", "dest": DIR}`` writes the durable state into the empty or new
directory ``DIR`` (the disk as a machine would find it after the power loss) and returns a
summary of what was lost; ``{"op": "stats"}`` returns counters.

Flock and POSIX locks are left to the kernel (no ``flock``/``lock`` handler, so the kernel
keeps them locally). Reads go through the page cache (no ``direct_io``) so ``mmap`` works;
writes are write-through (no writeback cache), so every ``write`` reaches the daemon in order.
Hard links are refused (EPERM). File modes, owners and times pass through but their
durability is not modelled.

``PowerLossMount`` is the test-side handle: it starts the daemon as a subprocess, waits for
the mount, and offers ``cut()``, ``materialise(dest)``, ``crash(dest)`` (both) and ``stop()``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import errno
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("powerloss_fs")

_CHUNK = 1 << 20
_ZERO_CHUNK = bytes(_CHUNK)
MOUNT_TIMEOUT_S = 20.0


def fuse_unavailable_reason() -> str | None:
    """Why FUSE cannot be used here, or None when it can."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist"
    if importlib.util.find_spec("mfusepy") is None:
        return "the Python package mfusepy is not installed (pip install -e '.[dev]')"
    if not ctypes.util.find_library("fuse3"):
        return "libfuse 3 is not installed (apt-get install fuse3)"
    return None


# --------------------------------------------------------------------------------------------
# The model


class Node:
    """One file-system object (an inode) as the durable shadow knows it."""

    __slots__ = ("dirty", "durable_entries", "durable_size", "id", "kind", "link_target")

    def __init__(self, node_id: int, kind: str) -> None:
        self.id = node_id
        self.kind = kind  # "file", "dir", "symlink" or "other"
        # file: byte ranges [start, end) changed since the last fsync (a superset is fine)
        self.dirty: list[tuple[int, int]] = []
        # file: the durable size; the durable bytes live in the shadow file (absent: empty)
        self.durable_size = 0
        # dir: name -> node as of the last fsyncdir
        self.durable_entries: dict[str, Node] = {}
        self.link_target = ""

    def mark_dirty(self, start: int, end: int) -> None:
        if end <= start:
            return
        if self.dirty:
            last_start, last_end = self.dirty[-1]
            if last_start <= start <= last_end:
                self.dirty[-1] = (last_start, max(last_end, end))
                return
        self.dirty.append((start, end))
        if len(self.dirty) > 4096:
            self.dirty = _merge(self.dirty)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.fallocate.restype = ctypes.c_int


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    if _libc.fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _stat_dict(st: os.stat_result) -> dict[str, Any]:
    return {
        "st_mode": st.st_mode,
        "st_nlink": st.st_nlink,
        "st_size": st.st_size,
        "st_uid": st.st_uid,
        "st_gid": st.st_gid,
        "st_blocks": st.st_blocks,
        "st_blksize": st.st_blksize,
        "st_rdev": st.st_rdev,
        "st_atime": st.st_atime_ns,
        "st_mtime": st.st_mtime_ns,
        "st_ctime": st.st_ctime_ns,
    }


class PowerLossFS:
    """The passthrough operations (mfusepy's path-based API) plus the durable shadow.

    Every operation that changes the backing directory or the shadow runs under one lock, so
    the shadow's view of the order of operations is the order they were applied in. Reads
    take no lock.
    """

    use_ns = True
    # Operations on files that are open but were unlinked arrive with path None.
    flag_nullpath_ok = True
    flag_nopath = True

    def __init__(self, backing: Path, shadow: Path) -> None:
        self.backing = backing.resolve()
        self.shadow = shadow.resolve()
        self.shadow.mkdir(parents=True, exist_ok=True)
        self._mutex = threading.RLock()
        self.frozen = False
        self.next_id = 0
        self.by_ino: dict[int, Node] = {}  # backing inode number -> live node
        self.handles: dict[int, Node] = {}  # open backing fd (the FUSE fh) -> node
        self.counters: dict[str, int] = {}
        self.root = self._baseline()

    # ---- helpers ------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _new_node(self, kind: str) -> Node:
        self.next_id += 1
        return Node(self.next_id, kind)

    def _shadow_path(self, node: Node) -> Path:
        return self.shadow / str(node.id)

    def _bp(self, path: str) -> str:
        return str(self.backing) + path if path != "/" else str(self.backing)

    def _check(self) -> None:
        if self.frozen:
            raise OSError(errno.EIO, "power is off")

    def _register(self, backing_path: str, kind: str) -> Node:
        """A new object made through the mount: a fresh node, never durable content."""
        node = self._new_node(kind)
        self.by_ino[os.lstat(backing_path).st_ino] = node
        return node

    def _node_at(self, backing_path: str) -> Node:
        st = os.lstat(backing_path)
        node = self.by_ino.get(st.st_ino)
        if node is None:
            # Cannot happen unless someone changed the backing directory behind the mount.
            log.warning("%s was not made through the mount; taken as new", backing_path)
            node = self._new_node(_kind(st.st_mode))
            self.by_ino[st.st_ino] = node
        return node

    def _baseline(self) -> Node:
        """Everything already in the backing directory is durable."""

        def visit(path: str, st: os.stat_result) -> Node:
            node = self._new_node(_kind(st.st_mode))
            self.by_ino[st.st_ino] = node
            if node.kind == "dir":
                with os.scandir(path) as it:
                    for entry in it:
                        node.durable_entries[entry.name] = visit(
                            entry.path, entry.stat(follow_symlinks=False)
                        )
            elif node.kind == "file":
                if st.st_size:
                    shutil.copyfile(path, self._shadow_path(node))
                node.durable_size = st.st_size
            elif node.kind == "symlink":
                node.link_target = os.readlink(path)
            return node

        return visit(str(self.backing), os.lstat(self.backing))

    def _sync_file(self, node: Node, fd: int) -> None:
        """fsync: the file's current bytes and size become its durable content."""
        size = os.fstat(fd).st_size
        shadow = os.open(self._shadow_path(node), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            old = os.fstat(shadow).st_size
            if size < old:
                os.ftruncate(shadow, size)
            base = min(old, size)  # past this the shadow reads as zeros once extended
            copied = 0
            for start, end in _merge(node.dirty):
                pos, end = start, min(end, size)
                while pos < end:
                    n = min(_CHUNK, end - pos)
                    data = os.pread(fd, n, pos)
                    if len(data) < n:
                        raise OSError(errno.EIO, f"short read of {n} bytes at {pos}")
                    if pos < base or data != _ZERO_CHUNK[:n]:
                        os.pwrite(shadow, data, pos)
                        copied += n
                    pos += n
            os.ftruncate(shadow, size)
        finally:
            os.close(shadow)
        node.dirty = []
        node.durable_size = size
        self.counters["bytes_made_durable"] = self.counters.get("bytes_made_durable", 0) + copied

    # ---- control ------------------------------------------------------------------------

    def cut(self) -> None:
        with self._mutex:
            self.frozen = True

    def materialise(self, dest: Path) -> dict[str, Any]:
        """Write the durable state into dest; compare it with the live tree."""
        with self._mutex:
            dest.mkdir(parents=True, exist_ok=True)
            if any(dest.iterdir()):
                raise ValueError(f"{dest} is not empty")
            summary: dict[str, Any] = {"files": 0, "dirs": 0, "bytes": 0}
            durable_paths: dict[str, int] = {}
            self._write_dir(self.root, dest, "", [self.root.id], summary, durable_paths)
            live_paths = _tree_sizes(self.backing)
            lost = sorted(p for p in live_paths if p not in durable_paths)
            shorter = sorted(
                p
                for p, size in live_paths.items()
                if p in durable_paths and 0 <= durable_paths[p] < size
            )
            resurrected = sorted(p for p in durable_paths if p not in live_paths)
            summary["lost_entries"] = len(lost)
            summary["lost_examples"] = lost[:20]
            summary["shorter_files"] = len(shorter)
            summary["shorter_examples"] = shorter[:20]
            summary["resurrected_entries"] = len(resurrected)
            summary["resurrected_examples"] = resurrected[:20]
            summary["counters"] = dict(self.counters)
            return summary

    def _write_dir(
        self,
        node: Node,
        dest: Path,
        rel: str,
        stack: list[int],
        summary: dict[str, Any],
        sizes: dict[str, int],
    ) -> None:
        for name, child in sorted(node.durable_entries.items()):
            target = dest / name
            child_rel = f"{rel}/{name}"
            if child.kind == "dir":
                if child.id in stack:
                    continue  # a directory renamed into itself across unsynced parents
                target.mkdir()
                summary["dirs"] += 1
                sizes[child_rel] = -1
                self._write_dir(child, target, child_rel, [*stack, child.id], summary, sizes)
            elif child.kind == "file":
                src = self._shadow_path(child)
                if child.durable_size and src.exists():
                    shutil.copyfile(src, target)
                else:
                    target.touch()
                summary["files"] += 1
                summary["bytes"] += child.durable_size
                sizes[child_rel] = child.durable_size
            elif child.kind == "symlink":
                os.symlink(child.link_target, target)
                sizes[child_rel] = -1

    def stats(self) -> dict[str, Any]:
        with self._mutex:
            return {"frozen": self.frozen, "counters": dict(self.counters)}

    # ---- FUSE operations: metadata ------------------------------------------------------

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        self._check()
        if fh is not None and fh in self.handles:
            return _stat_dict(os.fstat(fh))
        if path is None:
            raise OSError(errno.ENOENT, "no path")
        return _stat_dict(os.lstat(self._bp(path)))

    def access(self, path: str, amode: int) -> int:
        self._check()
        if not os.access(self._bp(path), amode):
            raise OSError(errno.EACCES, "access denied")
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        self._check()
        sv = os.statvfs(self.backing)
        return {
            "f_bsize": sv.f_bsize,
            "f_frsize": sv.f_frsize,
            "f_blocks": sv.f_blocks,
            "f_bfree": sv.f_bfree,
            "f_bavail": sv.f_bavail,
            "f_files": sv.f_files,
            "f_ffree": sv.f_ffree,
            "f_favail": sv.f_favail,
            "f_namemax": sv.f_namemax,
        }

    def readlink(self, path: str) -> str:
        self._check()
        return os.readlink(self._bp(path))

    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> int:
        with self._mutex:
            self._check()
            if fh is not None and fh in self.handles:
                os.fchmod(fh, mode)
            elif path is not None:
                os.chmod(self._bp(path), mode, follow_symlinks=False)
            return 0

    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> int:
        with self._mutex:
            self._check()
            if fh is not None and fh in self.handles:
                os.fchown(fh, uid, gid)
            elif path is not None:
                os.lchown(self._bp(path), uid, gid)
            return 0

    def utimens(
        self, path: str | None, times: tuple[int, int] | None = None, fh: int | None = None
    ) -> int:
        with self._mutex:
            self._check()
            target: int | str
            if fh is not None and fh in self.handles:
                target = fh
            elif path is not None:
                target = self._bp(path)
            else:
                return 0
            follow = not isinstance(target, str)
            if times is None:
                os.utime(target, follow_symlinks=follow)
            else:
                os.utime(target, ns=(int(times[0]), int(times[1])), follow_symlinks=follow)
            return 0

    # ---- FUSE operations: directories ---------------------------------------------------

    def opendir(self, path: str) -> int:
        with self._mutex:
            self._check()
            bp = self._bp(path)
            fd = os.open(bp, os.O_RDONLY | os.O_DIRECTORY)
            self.handles[fd] = self._node_at(bp)
            return fd

    def releasedir(self, path: str | None, fh: int) -> int:
        with self._mutex:
            if self.handles.pop(fh, None) is not None:
                os.close(fh)
            return 0

    def readdir(self, path: str | None, fh: int) -> list[str]:
        self._check()
        return [".", "..", *os.listdir(fh)]

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        with self._mutex:
            self._check()
            node = self.handles[fh]
            self._count("fsyncdir")
            entries: dict[str, Node] = {}
            for name in os.listdir(fh):  # empty when the directory was removed
                ino = os.lstat(name, dir_fd=fh).st_ino
                child = self.by_ino.get(ino)
                if child is None:
                    log.warning("%s was not made through the mount; taken as new", name)
                    child = self._new_node(_kind(os.lstat(name, dir_fd=fh).st_mode))
                    self.by_ino[ino] = child
                entries[name] = child
            node.durable_entries = entries
            return 0

    def mkdir(self, path: str, mode: int) -> int:
        with self._mutex:
            self._check()
            bp = self._bp(path)
            os.mkdir(bp, mode)
            self._register(bp, "dir")
            self._count("mkdir")
            return 0

    def rmdir(self, path: str) -> int:
        with self._mutex:
            self._check()
            os.rmdir(self._bp(path))
            self._count("rmdir")
            return 0

    def unlink(self, path: str) -> int:
        with self._mutex:
            self._check()
            os.unlink(self._bp(path))
            self._count("unlink")
            return 0

    def rename(self, old: str, new: str) -> int:
        with self._mutex:
            self._check()
            os.rename(self._bp(old), self._bp(new))
            self._count("rename")
            return 0

    def symlink(self, target: str, source: str) -> int:
        """Creates target -> source (ln -s source target)."""
        with self._mutex:
            self._check()
            bp = self._bp(target)
            os.symlink(source, bp)
            node = self._register(bp, "symlink")
            node.link_target = source
            self._count("symlink")
            return 0

    def link(self, target: str, source: str) -> int:
        raise OSError(errno.EPERM, "hard links are not modelled")

    def mknod(self, path: str, mode: int, dev: int) -> int:
        with self._mutex:
            self._check()
            bp = self._bp(path)
            os.mknod(bp, mode, dev)
            self._register(bp, _kind(mode))
            self._count("mknod")
            return 0

    # ---- FUSE operations: files ---------------------------------------------------------

    def create(self, path: str, mode: int, flags: int) -> int:
        with self._mutex:
            self._check()
            bp = self._bp(path)
            existed = os.path.lexists(bp)
            old_size = os.lstat(bp).st_size if existed else 0
            fd = os.open(bp, _backing_flags(flags) | os.O_CREAT, mode)
            if existed:
                node = self._node_at(bp)
                if flags & os.O_TRUNC:
                    node.mark_dirty(0, old_size)
            else:
                node = self._register(bp, "file")
                self._count("create")
            self.handles[fd] = node
            return fd

    def open(self, path: str, flags: int) -> int:
        with self._mutex:
            self._check()
            bp = self._bp(path)
            node = self._node_at(bp)
            old_size = os.stat(bp).st_size
            fd = os.open(bp, _backing_flags(flags) & ~(os.O_CREAT | os.O_EXCL))
            if flags & os.O_TRUNC:
                node.mark_dirty(0, old_size)
            self.handles[fd] = node
            return fd

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        self._check()
        return os.pread(fh, size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        with self._mutex:
            self._check()
            node = self.handles[fh]
            before = os.fstat(fh).st_size
            n = os.pwrite(fh, data, offset)
            node.mark_dirty(min(offset, before), offset + n)
            self._count("write")
            return n

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        with self._mutex:
            self._check()
            if fh is not None and fh in self.handles:
                node = self.handles[fh]
                before = os.fstat(fh).st_size
                os.ftruncate(fh, length)
            elif path is not None:
                bp = self._bp(path)
                node = self._node_at(bp)
                before = os.lstat(bp).st_size
                os.truncate(bp, length)
            else:
                raise OSError(errno.EBADF, "truncate without path or handle")
            node.mark_dirty(min(before, length), max(before, length))
            self._count("truncate")
            return 0

    def fallocate(self, path: str | None, mode: int, offset: int, size: int, fh: int) -> int:
        with self._mutex:
            self._check()
            node = self.handles[fh]
            before = os.fstat(fh).st_size
            _fallocate(fh, mode, offset, size)
            after = os.fstat(fh).st_size
            node.mark_dirty(min(before, offset), max(after, offset + size))
            self._count("fallocate")
            return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        with self._mutex:
            self._check()
            node = self.handles[fh]
            self._count("fdatasync" if datasync else "fsync")
            if node.kind == "dir":  # not expected: the kernel sends fsyncdir for directories
                return self.fsyncdir(path, datasync, fh)
            self._sync_file(node, fh)
            return 0

    def release(self, path: str | None, fh: int) -> int:
        with self._mutex:
            if self.handles.pop(fh, None) is not None:
                os.close(fh)
            return 0


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _backing_flags(flags: int) -> int:
    # The kernel passes the offset of every write (O_APPEND included), and pwrite on an
    # O_APPEND fd would ignore it; O_DIRECT's alignment rules belong to the mount, not here.
    # fsync reads the dirty ranges back through the same fd, so write-only becomes read-write.
    flags &= ~(os.O_APPEND | getattr(os, "O_DIRECT", 0) | os.O_NOCTTY)
    if flags & os.O_ACCMODE == os.O_WRONLY:
        flags = (flags & ~os.O_ACCMODE) | os.O_RDWR
    return flags


def _tree_sizes(root: Path) -> dict[str, int]:
    """Relative path -> size (-1 for directories and symlinks) of everything under root."""
    out: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = dirpath[len(str(root)) :]
        for d in dirnames:
            out[f"{rel}/{d}"] = -1
        for f in filenames:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            out[f"{rel}/{f}"] = st.st_size if stat.S_ISREG(st.st_mode) else -1
    return out


# --------------------------------------------------------------------------------------------
# The daemon


class _ControlHandler(socketserver.StreamRequestHandler):
    fs: PowerLossFS

    def handle(self) -> None:
        line = self.rfile.readline()
        try:
            request = json.loads(line)
            op = request["op"]
            if op == "ping":
                reply: dict[str, Any] = {"ok": True}
            elif op == "cut":
                self.fs.cut()
                reply = {"ok": True}
            elif op == "materialise":
                reply = {"ok": True, "summary": self.fs.materialise(Path(request["dest"]))}
            elif op == "stats":
                reply = {"ok": True, **self.fs.stats()}
            else:
                reply = {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as exc:
            log.exception("control request %r failed", line)
            reply = {"ok": False, "error": repr(exc)}
        self.wfile.write(json.dumps(reply).encode() + b"\n")


def serve(backing: Path, mountpoint: Path, shadow: Path, control: Path, debug: bool) -> None:
    # libfuse 3 only: the handlers below are its signatures (mfusepy would take libfuse 2
    # first when both are installed).
    os.environ["FUSE_LIBRARY_NAME"] = "fuse3"
    import mfusepy

    if mfusepy.fuse_version_major != 3:
        raise RuntimeError(f"libfuse 3 is needed, found {mfusepy.fuse_version_major}")

    fs_class = type("PowerLossOperations", (PowerLossFS, mfusepy.Operations), {})
    fs: PowerLossFS = fs_class(backing, shadow)

    def _path(path: bytes | None) -> str | None:
        return None if path is None else os.fsdecode(path)

    def _fh(fip: Any) -> int | None:
        return int(fip.contents.fh) if fip else None

    class PowerLossFUSE(mfusepy.FUSE):  # type: ignore[misc]
        """mfusepy drops the file handle of ftruncate, fchmod, fchown and futimens; with
        nullpath_ok (an unlinked file stays usable through its fd) the path is then None."""

        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            return fs.truncate(_path(path), length, _fh(fip))

        def chmod_fuse_3(self, path: bytes | None, mode: int, fip: Any) -> int:
            return fs.chmod(_path(path), mode, _fh(fip))

        def chown_fuse_3(self, path: bytes | None, uid: int, gid: int, fip: Any) -> int:
            if ctypes.c_uint32(uid + 1).value == 0:
                uid = -1
            if ctypes.c_uint32(gid + 1).value == 0:
                gid = -1
            return fs.chown(_path(path), uid, gid, _fh(fip))

        def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
            times = None
            if buf:
                times = (
                    mfusepy.time_of_timespec(buf.contents.actime, use_ns=True),
                    mfusepy.time_of_timespec(buf.contents.modtime, use_ns=True),
                )
            return fs.utimens(_path(path), times, _fh(fip))

    handler = type("Handler", (_ControlHandler,), {"fs": fs})
    with contextlib.suppress(FileNotFoundError):
        control.unlink()
    server = socketserver.ThreadingUnixStreamServer(str(control), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="control", daemon=True).start()
    log.info("mounting %s on %s (shadow %s)", backing, mountpoint, shadow)
    try:
        PowerLossFUSE(
            fs,
            str(mountpoint),
            foreground=True,
            nothreads=False,
            debug=debug,
            fsname="powerloss",
            hard_remove=True,  # no .fuse_hidden files: unlink means unlink
        )
    finally:
        server.shutdown()
        with contextlib.suppress(FileNotFoundError):
            control.unlink()
    log.info("unmounted %s", mountpoint)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backing", type=Path, required=True)
    parser.add_argument("--mountpoint", type=Path, required=True)
    parser.add_argument("--shadow", type=Path, required=True)
    parser.add_argument("--control", type=Path, required=True)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    serve(
        args.backing.resolve(),
        args.mountpoint.resolve(),
        args.shadow.resolve(),
        args.control.resolve(),
        args.debug,
    )


# --------------------------------------------------------------------------------------------
# The test-side handle


def _is_mounted(mountpoint: Path) -> bool:
    """From /proc/self/mountinfo: os.path.ismount would stat the mount, which fails with EIO
    once the power is cut."""
    target = os.path.realpath(mountpoint)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                point = fields[4].encode().decode("unicode_escape")
                if point == target:
                    return True
    except OSError:
        return os.path.ismount(mountpoint)
    return False


def _unmount(mountpoint: Path, lazy: bool) -> None:
    for cmd in (["fusermount3", "-u"], ["umount"]):
        args = [*cmd, "-z"] if lazy else cmd
        with contextlib.suppress(OSError):
            subprocess.run([*args, str(mountpoint)], check=False, capture_output=True)
        if not _is_mounted(mountpoint):
            return


class PowerLossMount:
    """A mounted simulator over ``backing`` at ``mountpoint``; its files live under ``workdir``."""

    def __init__(self, backing: Path, mountpoint: Path, workdir: Path) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        self.workdir = workdir
        self.shadow = workdir / "shadow"
        self.control = workdir / "control.sock"
        self.log_path = workdir / "fuse.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PowerLossMount:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as logf:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--backing",
                    str(self.backing),
                    "--mountpoint",
                    str(self.mountpoint),
                    "--shadow",
                    str(self.shadow),
                    "--control",
                    str(self.control),
                ],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the power-loss FUSE daemon exited with {self.proc.returncode} before "
                    f"mounting\n{self.log_tail()}"
                )
            if _is_mounted(self.mountpoint) and self.control.exists():
                with contextlib.suppress(OSError):
                    self.request({"op": "ping"})
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.mountpoint} was not mounted in time\n{self.log_tail()}")

    def request(self, message: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.control))
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply: dict[str, Any] = json.loads(data)
        if not reply.get("ok"):
            raise RuntimeError(f"power-loss control {message['op']} failed: {reply}")
        return reply

    def cut(self) -> None:
        """The power goes off: from now on every operation on the mount fails with EIO."""
        self.request({"op": "cut"})

    def materialise(self, dest: Path) -> dict[str, Any]:
        """Write what was durable into ``dest`` (new or empty); returns a summary."""
        summary: dict[str, Any] = self.request({"op": "materialise", "dest": str(dest)})["summary"]
        return summary

    def stats(self) -> dict[str, Any]:
        return self.request({"op": "stats"})

    def crash(self, dest: Path) -> dict[str, Any]:
        self.cut()
        return self.materialise(dest)

    def stop(self) -> None:
        """Unmount and end the daemon; whatever used the mount must have exited."""
        if self.proc is not None:
            if self.proc.poll() is None and _is_mounted(self.mountpoint):
                _unmount(self.mountpoint, lazy=False)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            self.proc = None
        if _is_mounted(self.mountpoint):
            _unmount(self.mountpoint, lazy=True)

    def internal_errors(self) -> list[str]:
        """Lines of the daemon's log that say the simulator itself went wrong (an operation
        raised something other than an OSError, or the backing directory was changed behind
        its back): its verdict is worthless then."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        markers = ("Uncaught exception", "not made through the mount", "control request")
        return [line for line in text.splitlines() if any(m in line for m in markers)]

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no FUSE daemon log)"
        return "--- FUSE daemon log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> PowerLossMount:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
