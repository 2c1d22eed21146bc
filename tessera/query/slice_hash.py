"""SipHash-2-4 (zero key) of point ids, vectorised, for the `slice` condition.

Qdrant assigns a point to slice `hash(id) % total`, hashing the 8 little-endian bytes of a
numeric id or the 16 RFC 4122 bytes of a UUID. Ids of either kind hash here as whole numpy
columns of 64-bit message words; uint64 arithmetic wraps exactly like SipHash's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tessera.ids import PointId

U64 = npt.NDArray[np.uint64]

_INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def _rotl(x: U64, b: int) -> U64:
    return (x << np.uint64(b)) | (x >> np.uint64(64 - b))


def _rounds(v: list[U64], count: int) -> None:
    for _ in range(count):
        v[0] = v[0] + v[1]
        v[1] = _rotl(v[1], 13) ^ v[0]
        v[0] = _rotl(v[0], 32)
        v[2] = v[2] + v[3]
        v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = v[0] + v[3]
        v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = v[2] + v[1]
        v[1] = _rotl(v[1], 17) ^ v[2]
        v[2] = _rotl(v[2], 32)


def siphash_words(words: Sequence[U64]) -> U64:
    """SipHash-2-4 of messages made of len(words) full 8-byte blocks, one per row."""
    rows = len(words[0])
    v = [np.full(rows, c, dtype=np.uint64) for c in _INIT]
    for m in [*words, np.full(rows, (8 * len(words)) << 56, dtype=np.uint64)]:
        v[3] = v[3] ^ m
        _rounds(v, 2)
        v[0] = v[0] ^ m
    v[2] = v[2] ^ np.uint64(0xFF)
    _rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def slice_of(ids: Sequence[PointId], total: int) -> npt.NDArray[np.int64]:
    """The slice index (0..total-1) of each id."""
    out = np.zeros(len(ids), dtype=np.int64)
    nums = [i for i, pid in enumerate(ids) if not isinstance(pid, uuid.UUID)]
    uuids = [i for i, pid in enumerate(ids) if isinstance(pid, uuid.UUID)]
    if nums:
        words = np.array([ids[i] for i in nums], dtype=np.uint64)
        out[nums] = (siphash_words([words]) % np.uint64(total)).astype(np.int64)
    if uuids:
        blob = b"".join(pid.bytes for pid in ids if isinstance(pid, uuid.UUID))
        raw = np.frombuffer(blob, dtype="<u8").reshape(-1, 2)
        hashed = siphash_words([raw[:, 0].astype(np.uint64), raw[:, 1].astype(np.uint64)])
        out[uuids] = (hashed % np.uint64(total)).astype(np.int64)
    return out
