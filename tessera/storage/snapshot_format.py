"""The snapshot archive: a plain POSIX tar, written here and read back only by a strict reader.

Collection (and shard) snapshot
===============================

One uncompressed tar (ustar headers; a pax `x` header only where a name or size does not fit
ustar) of regular files, in this order::

    shard/segments/<segment id>/<file>    every file the pinned checkpoint names
    config.json                           the collection config (checked JSON, CONFIG_KIND)
    shard/manifest.<gen:020d>.json        the pinned checkpoint's manifest, as on disk
    snapshot.json                         checked JSON of kind SNAPSHOT_KIND, version 1

`snapshot.json` is the archive's own manifest::

    {"collection": <name>, "scope": "collection" | "shard", "created": <ISO time, UTC>,
     "tessera_version": <str>, "gen": <manifest generation>, "seq": <its operation>,
     "files": [{"path": <member name>, "size": <bytes>, "sha256": <hex>}, ...]}

naming every other member with its size and SHA-256. The snapshot is the state at operation
`seq` exactly (the checkpoint was forced and pinned, see LocalShard.pin_checkpoint): no WAL
records follow it, and a restored shard starts its WAL at `seq + 1`. The SHA-256 of the whole
archive is kept beside it in `<name>.checksum` (hex, as Qdrant writes it).

Full storage snapshot
=====================

A tar of collection snapshots (members named as the collection snapshot files) plus
`config.json`, Qdrant's layout: `{"collections_mapping": {<collection>: <member>},
"collections_aliases": {<alias>: <collection>}, "checksums": {<member>: <sha256>}}`.

Reading
=======

`extract` never hands the archive to `tarfile`: it reads 512-byte headers itself, checks each
header's checksum, accepts only regular files (type `0`) and pax `x` headers of at most
MAX_HEADER_BYTES (only `path` and `size` are used; GNU sparse keys are refused), skips
directory entries (empty; a file's path says where it goes), and refuses everything else -
hard and symbolic links, devices, FIFOs, GNU long names, global headers, sparse files - by
name. A member's path must be relative, without `.`, `..`, empty
components or backslashes, and accepted by the caller's allowlist; no name may occur twice.
Files are created under a directory the caller just made, so nothing can lie in the way; they
are not fsynced one by one as they arrive (an archive of 100,000 empty members took a minute
of fsyncs before `snapshot.json`, which comes last, could refuse it): `make_durable` does it
for an extracted tree once it has been validated. The member count is bounded, and so is
the space used: extraction stops with ServiceUnavailable before the free space of the target
falls below the reserve. Compressed archives are not read at all, so no member can expand.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tessera.errors import BadRequest, ServiceUnavailable, StorageCorruption
from tessera.fsutil import fsync_dir, fsync_file

SNAPSHOT_KIND = "tessera/collection-snapshot"
SNAPSHOT_VERSION = 1
MANIFEST_MEMBER = "snapshot.json"
CONFIG_MEMBER = "config.json"
FULL_CONFIG_MEMBER = "config.json"

BLOCK = 512
CHUNK = 1 << 20
MAX_HEADER_BYTES = 64 << 10
MAX_MEMBERS = 100_000
# A member's size as a tar header may claim it; the space check bounds real use.
MAX_MEMBER_BYTES = 1 << 42
_SPACE_CHECK_EVERY = 64 << 20
_ZERO = bytes(BLOCK)
_REGULAR = (b"0", b"\x00")
_DIRECTORY = b"5"
_REFUSED_TYPES = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a character device",
    b"4": "a block device",
    b"6": "a FIFO",
    b"7": "a contiguous file",
    b"g": "a global pax header",
    b"L": "a GNU long name header",
    b"K": "a GNU long link header",
    b"S": "a GNU sparse file",
    b"M": "a GNU multi-volume member",
    b"V": "a GNU volume header",
}


def invalid(message: str) -> BadRequest:
    return BadRequest(f"Bad request: Invalid snapshot archive: {message}")


# ---- writing -----------------------------------------------------------------------------


class _HashingWriter:
    """The archive's file: everything written is hashed (the archive's SHA-256)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size


class _HashingReader:
    """A source file read into the archive: SHA-256 and crc32 of what was read."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.crc = 0
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha256.update(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        return data


@dataclass(frozen=True)
class Member:
    path: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


class ArchiveWriter:
    """Writes one snapshot tar to an open file; `close()` returns its SHA-256."""

    def __init__(self, raw: BinaryIO, mtime: int) -> None:
        self._out = _HashingWriter(raw)
        out: Any = self._out
        self._tar = tarfile.TarFile(fileobj=out, mode="w", format=tarfile.PAX_FORMAT)
        self._tar.copybufsize = CHUNK  # type: ignore[attr-defined]
        self._mtime = mtime
        self.members: list[Member] = []

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = self._mtime
        info.mode = 0o644
        info.type = tarfile.REGTYPE
        return info

    def add_file(self, name: str, path: Path, size: int, crc32: int | None = None) -> Member:
        """Add a file that must have `size` bytes (and, given, this crc32: a checkpoint file
        checked on its way into the archive, so a snapshot never carries damage)."""
        with open(path, "rb") as f:
            reader = _HashingReader(f)
            try:
                self._tar.addfile(self._info(name, size), reader)  # type: ignore[arg-type]
            except OSError as exc:
                if reader.size < size:
                    raise StorageCorruption(
                        f"Service internal error: {path} is shorter than its checkpoint says "
                        f"({reader.size} < {size} bytes)"
                    ) from exc
                raise
            if f.read(1):
                raise StorageCorruption(
                    f"Service internal error: {path} is longer than its checkpoint says"
                )
        if crc32 is not None and reader.crc != crc32:
            raise StorageCorruption(
                f"Service internal error: {path}: checksum mismatch (crc32 {reader.crc:#010x}, "
                f"the checkpoint says {crc32:#010x})"
            )
        member = Member(name, size, reader.sha256.hexdigest())
        self.members.append(member)
        return member

    def add_bytes(self, name: str, data: bytes) -> Member:
        self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))
        member = Member(name, len(data), hashlib.sha256(data).hexdigest())
        self.members.append(member)
        return member

    def close(self) -> tuple[int, str]:
        """Finish the archive: (size, SHA-256 hex). The caller fsyncs the file."""
        self._tar.close()
        return self._out.size, self._out.sha256.hexdigest()


# ---- reading -----------------------------------------------------------------------------


def _read_exact(src: BinaryIO, n: int) -> bytes:
    parts = []
    left = n
    while left:
        data = src.read(left)
        if not data:
            raise invalid("the archive ends in the middle of a member (truncated)")
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def _number(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:
        if field[0] != 0x80:
            raise invalid(f"a negative {what} in a header")
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\x00", b" ").strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise invalid(f"a header's {what} is not a number") from None


def _cstr(field: bytes) -> bytes:
    end = field.find(b"\x00")
    return field if end < 0 else field[:end]


def _check_header(block: bytes) -> None:
    stored = _number(block[148:156], "checksum")
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = sum(b - 256 if b > 127 else b for b in block[:148] + b" " * 8 + block[156:])
    if stored not in (unsigned, signed):
        raise invalid("not a tar archive, or a damaged header (header checksum mismatch)")
    if block[257:263] not in (b"ustar\x00", b"ustar "):
        raise invalid("not a POSIX (ustar) tar archive")


def _parse_pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise invalid("a malformed pax header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise invalid("a malformed pax header") from None
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise invalid("a malformed pax header")
        raw_key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise invalid("a malformed pax header")
        try:
            records[raw_key.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid("a pax header that is not UTF-8") from None
        pos = end
    for key in records:
        if key.startswith("GNU.sparse"):
            raise invalid("a GNU sparse file")
    return records


def check_member_path(name: str) -> str:
    """A member name that cannot leave the directory it is extracted into."""
    if not name or "\x00" in name:
        raise invalid("a member without a name")
    if name.startswith("/"):
        raise invalid(f"member {name!r} has an absolute path")
    if "\\" in name:
        raise invalid(f"member {name!r} contains a backslash")
    parts = name.split("/")
    if ".." in parts:
        raise invalid(f"member {name!r} contains `..`")
    if any(p in ("", ".") for p in parts):
        raise invalid(f"member {name!r} has an empty or `.` path component")
    return name


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def extract(
    src: BinaryIO,
    dest: Path,
    accept: Callable[[str], bool],
    reserve: int,
    max_members: int = MAX_MEMBERS,
) -> dict[str, Member]:
    """Extract the archive read from `src` into the empty directory `dest` (see the module
    docstring for what is refused, always with BadRequest). Nothing is fsynced: a caller that
    keeps the tree calls `make_durable` once it has checked it. Returns path -> Member."""
    members: dict[str, Member] = {}
    dirs: set[Path] = {dest}
    pax: dict[str, str] | None = None
    headers = 0
    since_check = _SPACE_CHECK_EVERY
    while True:
        block = src.read(BLOCK)
        if len(block) < BLOCK:
            if not block:
                break  # end of file at a member boundary: tolerated (no end marker)
            raise invalid("the archive ends in the middle of a header (truncated)")
        if block == _ZERO:
            break
        _check_header(block)
        headers += 1
        if headers > 2 * max_members + 2:
            raise invalid(f"more than {max_members} members")
        kind = block[156:157]
        size = _number(block[124:136], "size")
        if kind == b"x":
            if pax is not None:
                raise invalid("two pax headers in a row")
            if size > MAX_HEADER_BYTES:
                raise invalid(f"an oversized pax header ({size} bytes, at most {MAX_HEADER_BYTES})")
            data = _read_exact(src, size)
            _read_exact(src, -size % BLOCK)
            pax = _parse_pax(data)
            continue
        if kind == _DIRECTORY:
            # Nothing to unpack: the files say where they go. A directory standing where a
            # file belongs (`config.json/`) leaves that file missing, which is what is said.
            folder = (pax.get("path") if pax else None) or _header_name(block)
            if folder.rstrip("/") not in ("", "."):
                check_member_path(folder.rstrip("/"))
            if size:
                raise invalid(f"a directory entry with data (member {_header_name(block)!r})")
            pax = None
            continue
        if kind in _REFUSED_TYPES:
            raise invalid(f"{_REFUSED_TYPES[kind]} (member {_header_name(block)!r})")
        if kind not in _REGULAR:
            raise invalid(f"member {_header_name(block)!r} of unknown type {kind!r}")
        name = _header_name(block)
        if pax is not None:
            name = pax.get("path", name)
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise invalid("a pax size that is not a number") from None
            pax = None
        check_member_path(name)
        if not accept(name):
            raise invalid(f"unexpected member {name!r}")
        if name in members:
            raise invalid(f"member {name!r} occurs twice")
        if len(members) >= max_members:
            raise invalid(f"more than {max_members} members")
        if size < 0 or size > MAX_MEMBER_BYTES:
            raise invalid(f"member {name!r} is oversized ({size} bytes)")
        left = _bytes_left(src)
        if left is not None and size > left:
            # Said before the free space is weighed against a size the archive cannot hold.
            raise invalid(f"the archive ends inside member {name!r} (truncated)")
        parts = name.split("/")
        target = dest.joinpath(*parts)
        for depth in range(1, len(parts)):
            directory = dest.joinpath(*parts[:depth])
            if directory not in dirs:
                try:
                    directory.mkdir()  # a fresh name in a directory only this function fills
                except (FileExistsError, NotADirectoryError):
                    raise invalid(f"member {name!r} lies inside another member") from None
                dirs.add(directory)
        if since_check + size >= _SPACE_CHECK_EVERY or size >= _SPACE_CHECK_EVERY:
            _check_space(dest, size, reserve)
            since_check = 0
        since_check += size
        digest = hashlib.sha256()

        def write(f: BinaryIO, size: int = size, digest: Any = digest, name: str = name) -> None:
            left = size
            checked = 0
            while left:
                data = src.read(min(CHUNK, left))
                if not data:
                    raise invalid(f"the archive ends inside member {name!r} (truncated)")
                digest.update(data)
                f.write(data)
                left -= len(data)
                checked += len(data)
                if checked >= _SPACE_CHECK_EVERY:
                    _check_space(dest, left, reserve)
                    checked = 0

        try:
            write_member(target, write)
        except (IsADirectoryError, NotADirectoryError):
            raise invalid(f"member {name!r} collides with another member's directory") from None
        _read_exact(src, -size % BLOCK)
        members[name] = Member(name, size, digest.hexdigest())
    if pax is not None:
        raise invalid("a pax header without a member")
    return members


def write_member(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """One extracted file, written (not fsynced: see `make_durable`)."""
    with open(path, "wb") as f:
        write(f)


def make_durable(dest: Path, members: Iterable[str]) -> None:
    """fsync every extracted file of `members` under `dest`, then every directory holding
    them, deepest first: the tree is on disk before anything refers to it."""
    dirs = {dest}
    for name in members:
        path = dest / name
        fsync_file(path)
        dirs.update(p for p in path.parents if p.is_relative_to(dest))
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(d)


def _bytes_left(src: BinaryIO) -> int | None:
    """What a file being read has left; None for a stream of unknown length."""
    try:
        return os.fstat(src.fileno()).st_size - src.tell()
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return None


def _header_name(block: bytes) -> str:
    name = _cstr(block[0:100])
    prefix = _cstr(block[345:500])
    raw = prefix + b"/" + name if prefix else name
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("a member name that is not UTF-8") from None


def _check_space(dest: Path, need: int, reserve: int) -> None:
    free = _free_bytes(dest)
    if free < need + reserve:
        raise ServiceUnavailable(
            f"Service unavailable: No space left on device: {free} bytes free, "
            f"{need + reserve} needed to unpack the snapshot"
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def same_members(listed: Iterable[dict[str, Any]], found: dict[str, Member]) -> None:
    """The archive holds exactly the files its manifest lists, each with its size and SHA-256
    (BadRequest naming the first difference)."""
    expected: dict[str, tuple[int, str]] = {}
    for entry in listed:
        if not isinstance(entry, dict):
            raise invalid("a malformed file list in snapshot.json")
        try:
            path, size, digest = str(entry["path"]), int(entry["size"]), str(entry["sha256"])
        except (KeyError, TypeError, ValueError):
            raise invalid("a malformed file list in snapshot.json") from None
        expected[path] = (size, digest.lower())
    for path, member in found.items():
        if path == MANIFEST_MEMBER:
            continue
        want = expected.pop(path, None)
        if want is None:
            raise invalid(f"member {path!r} is not listed in snapshot.json")
        if want != (member.size, member.sha256):
            raise invalid(f"member {path!r} does not match its SHA-256 in snapshot.json")
    if expected:
        raise invalid(f"member {min(expected)!r} listed in snapshot.json is missing")
