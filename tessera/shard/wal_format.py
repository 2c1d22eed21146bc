"""Byte format of the write-ahead log, and the code that reads and writes it.

The WAL of a shard is a directory of segment files plus two small files::

    <first_seq:020d>.log     a segment: records with seq >= first_seq, in order
    first_seq                the truncation floor (see below); absent until the first truncation
                             or until the shard is unpacked from a snapshot
    lock                     held with flock(LOCK_EX) while a Wal has the directory open
    *.tmp                    unfinished creations, deleted on open

All integers are little-endian.

Segment file
============

A segment starts with a 32-byte header::

    offset  size  field
    0       8     magic          b"TSRWAL\\x00\\x01"
    8       4     version        u32, FORMAT_VERSION (1)
    12      4     seed           u32, random per file: the CRC chain's starting value
    16      8     first_seq      u64, equal to the number in the file name
    24      4     reserved       u32, zero
    28      4     header_crc     u32, zlib.crc32 of bytes 0..28

followed by records, back to back::

    offset  size    field
    0       4       length     u32, len(payload) + 8: the bytes covered by crc (seq + payload)
    4       4       crc        u32, zlib.crc32(seq_bytes + payload, previous crc)
    8       8       seq        u64, the previous record's seq + 1 (first_seq for the first)
    16      n       payload    length - 8 bytes

A length of zero ends the written data: the file is preallocated (posix_fallocate) to its
capacity and the unused space reads as zeros, so a reader stops at the first zero length, or
where fewer than 16 bytes remain.  Counting seq inside the length means an empty payload still
has a non-zero length.

The CRC is chained: the first record's crc is seeded with the header's seed, every later one
with the crc of the record before it.  A stale record (left behind in space that a recovery
declared free, or written before a crash into a page that reached the disk while an earlier
one did not) therefore cannot validate even if its own bytes are intact and its seq fits, and a
record that validates vouches for the chain before it.  zlib's CRC-32 is used rather than
CRC-32C because it is in the standard library and runs at about 4 GB/s here (16 us for 64 KiB);
either catches the torn writes this format has to detect.

A record never spans files.  A segment is created with size ``segment_capacity``; a record
that does not fit in the remaining space goes to a new segment, and a record larger than the
capacity gets a segment of exactly its own size.

Recovery
========

A record is good when its length is >= 8 and the record lies inside the file, its seq is the
expected one and its crc matches the chain.  Reading a file stops at the first record that is
not good: a zero length or no room for a header is a clean end, anything else is a tear or
corruption.  In the last file everything after the last good record is free space; any
non-zero bytes there are zeroed (and fdatasynced) so that a later, shorter record cannot be
followed by a stale one.  A non-last file must end exactly one seq before the next file's
first_seq; if it does not because of a bad record, the log ends there and later files are
deleted.

Truncation floor
================

``first_seq`` holds 16 bytes: u64 floor, u32 zlib.crc32 of those 8 bytes, u32 flags (1: the
log keeps a file from the floor on, as every floor this version writes says; 0, written by
earlier versions: nothing is known of the files).  Every
segment whose records all lie below the floor (that is, whose successor starts at or below the
floor) has been or is being deleted, and is deleted again by recovery if an unlink did not
survive a crash.  It is written in place (no new blocks, so truncation still works on a full
disk) and a bad crc is read as floor 0, which can only resurrect already-applied records.
A shard unpacked from a snapshot gets the floor of its checkpoint's operation + 1, and an
empty segment for that operation on, before its log is first opened: its log never held
what the checkpoint holds. A log keeps a file from its first record on (the current file is
never deleted; `restart_at` makes the next one before it deletes the old), so a log with no
file, or one that ends before its shard's checkpoint, has lost files.
"""

from __future__ import annotations

import enum
import re
import struct
import zlib
from typing import BinaryIO

MAGIC = b"TSRWAL\x00\x01"
FORMAT_VERSION = 1

_FILE_HEADER = struct.Struct("<8sIIQI")
FILE_HEADER_SIZE = _FILE_HEADER.size + 4
_RECORD_HEADER = struct.Struct("<IIQ")
RECORD_HEADER_SIZE = _RECORD_HEADER.size
_SEQ = struct.Struct("<Q")
_FLOOR = struct.Struct("<QII")
FLOOR_SIZE = _FLOOR.size

# length is a u32 that also counts the 8 bytes of seq.
MAX_PAYLOAD = 0xFFFFFFFF - 8

SEGMENT_SUFFIX = ".log"
FLOOR_NAME = "first_seq"
LOCK_NAME = "lock"
TMP_SUFFIX = ".tmp"
_SEGMENT_RE = re.compile(r"^(\d{20})\.log$")

assert FILE_HEADER_SIZE == 32 and RECORD_HEADER_SIZE == 16 and FLOOR_SIZE == 16


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    m = _SEGMENT_RE.match(name)
    return int(m.group(1)) if m else None


def encode_file_header(first_seq: int, seed: int) -> bytes:
    head = _FILE_HEADER.pack(MAGIC, FORMAT_VERSION, seed, first_seq, 0)
    return head + struct.pack("<I", zlib.crc32(head))


def decode_file_header(buf: bytes) -> tuple[int, int] | None:
    """(first_seq, seed), or None when the header is not one this version wrote intact."""
    if len(buf) < FILE_HEADER_SIZE:
        return None
    head = buf[: _FILE_HEADER.size]
    (crc,) = struct.unpack_from("<I", buf, _FILE_HEADER.size)
    if zlib.crc32(head) != crc:
        return None
    magic, version, seed, first_seq, _reserved = _FILE_HEADER.unpack(head)
    if magic != MAGIC or version != FORMAT_VERSION:
        return None
    return first_seq, seed


def encode_record_header(seq: int, payload: bytes, prev_crc: int) -> tuple[bytes, int]:
    """The 16 bytes that precede payload, and the crc that the next record chains from."""
    seq_bytes = _SEQ.pack(seq)
    crc = zlib.crc32(payload, zlib.crc32(seq_bytes, prev_crc))
    return struct.pack("<II", len(payload) + 8, crc) + seq_bytes, crc


def record_size(payload_len: int) -> int:
    return RECORD_HEADER_SIZE + payload_len


# The floor file's last u32: 1 where the log keeps a file from the floor on (every floor this
# version writes); 0 in a floor an earlier version wrote, which says nothing of the files.
FLOOR_KEEPS_FILE = 1


def encode_floor(floor: int) -> bytes:
    return _FLOOR.pack(floor, zlib.crc32(_SEQ.pack(floor)), FLOOR_KEEPS_FILE)


def decode_floor(buf: bytes) -> int | None:
    if len(buf) < FLOOR_SIZE:
        return None
    floor, crc, _flags = _FLOOR.unpack_from(buf)
    return floor if zlib.crc32(_SEQ.pack(floor)) == crc else None


def floor_keeps_file(buf: bytes) -> bool:
    """Whether a floor file was written by a version whose logs keep a file from it on."""
    return len(buf) >= FLOOR_SIZE and _FLOOR.unpack_from(buf)[2] == FLOOR_KEEPS_FILE


class Stop(enum.Enum):
    END = "end"  # zero length, or too little room left for a record header: written data ends
    CORRUPT = "corrupt"  # bad length, seq or crc, or the file ends inside the record: a tear


class RecordReader:
    """Walks the records of one segment, from just past its header, stopping at the first
    record that is not good.  ``offset``, ``next_seq`` and ``crc`` always describe the end of
    the good records, which is where a writer continues."""

    def __init__(self, f: BinaryIO, *, first_seq: int, seed: int, limit: int) -> None:
        """``f`` must be positioned at FILE_HEADER_SIZE; nothing at or past ``limit`` (the
        file size, or a snapshot of the writer's offset) is read."""
        self._f = f
        self._limit = limit
        self.offset = FILE_HEADER_SIZE
        self.next_seq = first_seq
        self.crc = seed
        self.stop: Stop | None = None

    def _header(self) -> tuple[int, int] | None:
        """(length, crc) of the next record if its framing is good, else sets stop."""
        if self.stop is not None:
            return None
        if self.offset + RECORD_HEADER_SIZE > self._limit:
            self.stop = Stop.END
            return None
        hdr = self._f.read(RECORD_HEADER_SIZE)
        if len(hdr) < RECORD_HEADER_SIZE:
            self.stop = Stop.CORRUPT
            return None
        length, crc, seq = _RECORD_HEADER.unpack(hdr)
        if length == 0:
            self.stop = Stop.END
            return None
        if length < 8 or self.offset + 8 + length > self._limit or seq != self.next_seq:
            self.stop = Stop.CORRUPT
            return None
        return length, crc

    def _advance(self, length: int, crc: int) -> int:
        seq = self.next_seq
        self.crc = crc
        self.next_seq += 1
        self.offset += 8 + length
        return seq

    def read(self) -> tuple[int, bytes] | None:
        """The next good record as (seq, payload), checked against the chain; None at the end."""
        framing = self._header()
        if framing is None:
            return None
        length, crc = framing
        payload = self._f.read(length - 8)
        if len(payload) != length - 8:
            self.stop = Stop.CORRUPT
            return None
        if zlib.crc32(payload, zlib.crc32(_SEQ.pack(self.next_seq), self.crc)) != crc:
            self.stop = Stop.CORRUPT
            return None
        return self._advance(length, crc), payload

    def skip(self) -> int | None:
        """Passes over the next record without reading or checking its payload (for records
        that recovery has already checked); returns its seq, None at the end."""
        framing = self._header()
        if framing is None:
            return None
        length, crc = framing
        self._f.seek(length - 8, 1)
        return self._advance(length, crc)
