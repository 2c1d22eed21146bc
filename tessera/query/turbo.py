"""The `turbo4` storage datatype: every dense vector kept at 4 bits per dimension (and
`turbo8` / `turbo16`, at 8 and 16 bits: see the end of this module).

TurboQuant's recipe, data-oblivious (nothing is trained, so a vector is encoded the moment
it is written): a fixed random rotation spreads the vector's energy evenly over the
coordinates, which then look Gaussian; each rotated coordinate is scaled and rounded to
the nearest of the 16 Lloyd-Max levels of a standard normal. What is stored, searched and
returned is the decoded (dequantized) vector, as Qdrant returns it.

A stored row (int8, the storage dtype no other datatype uses) is ceil(d / 2) bytes of
packed 4-bit codes (low nibble first) and 4 bytes of float32 scale: |scale| is the step
that maps levels back to rotated coordinates; its sign bit says that d is odd (the last
nibble is padding), so a row decodes without knowing d. The scale puts the largest rotated
coordinate on the outermost level, which makes encoding a decoded vector give back the
same codes (the scale up to float rounding): merges and copies do not drift. A row never
written (a point without this named vector) is all zero bytes, +0.0, and says nothing about
d: a batch takes it from any written row, or from the caller (`decode(dim=...)`).

The rotation is block-diagonal: one seeded random orthogonal 256 x 256 matrix (smaller for
the last block) applied to consecutive blocks of dimensions, O(256 d) per vector.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
RowArray = npt.NDArray[np.int8]

# The 16 reconstruction levels of the Lloyd-Max quantizer for N(0, 1) (Max, 1960).
LEVELS = np.array(
    [0.1284, 0.3881, 0.6568, 0.9424, 1.2562, 1.6181, 2.0690, 2.7326], dtype=np.float32
)
LEVELS = np.concatenate([-LEVELS[::-1], LEVELS])
_BOUNDS = (LEVELS[1:] + LEVELS[:-1]) / 2
_BLOCK = 256
_SEED = 0x7E5E4A


def row_bytes(dim: int) -> int:
    return (dim + 1) // 2 + 4


@cache
def _rotation(size: int) -> FloatArray:
    rng = np.random.default_rng(_SEED + size)
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return np.asarray(q * np.sign(np.diag(r)), dtype=np.float32)


def _blocks(dim: int) -> list[tuple[int, int]]:
    return [(s, min(dim, s + _BLOCK)) for s in range(0, dim, _BLOCK)]


def rotate(x: FloatArray, inverse: bool = False) -> FloatArray:
    """x (n, d) in (or, `inverse`, back from) the rotated coordinates."""
    out = np.empty_like(x, dtype=np.float32)
    for start, stop in _blocks(x.shape[1]):
        q = _rotation(stop - start)
        out[:, start:stop] = x[:, start:stop] @ (q if inverse else q.T)
    return out


def encode(vectors: npt.ArrayLike) -> RowArray:
    """Vectors (n, d) or (d,) as stored rows (n, row_bytes(d)) or (row_bytes(d),)."""
    x = np.asarray(vectors, dtype=np.float32)
    single = x.ndim == 1
    x = np.atleast_2d(x)
    n, dim = x.shape
    y = rotate(x)
    scale = np.abs(y).max(axis=1, initial=0.0) / LEVELS[-1]
    safe = np.where(scale > 0, scale, 1.0)
    codes = np.searchsorted(_BOUNDS, y / safe[:, None]).astype(np.uint8)
    if dim % 2:
        codes = np.hstack([codes, np.zeros((n, 1), dtype=np.uint8)])
    packed = codes[:, 0::2] | (codes[:, 1::2] << 4)
    signed = scale.astype(np.float32)
    if dim % 2:
        signed = np.copysign(signed, np.float32(-1.0))  # -0.0 marks an odd d too
    rows = np.hstack([packed, signed.reshape(n, 1).view(np.uint8)]).view(np.int8)
    return rows[0] if single else rows


def decode(rows: npt.ArrayLike, rotated: bool = False, dim: int | None = None) -> FloatArray:
    """Stored rows (n, w) (or one row) as float32 vectors; `rotated`: left in the rotated
    coordinates (dot products and L2 distances are the same there). `dim`: the vectors'
    dimension when the caller knows it; else any row's sign bit says whether it is odd (a
    row of a vector never written is all zero bytes, +0.0: it says nothing)."""
    raw = np.asarray(rows)
    single = raw.ndim == 1
    if raw.dtype in _WIDE_BITS:  # turbo8 / turbo16 rows (below)
        wide = _decode_wide(np.atleast_2d(raw), rotated, dim)
        return wide[0] if single else wide
    b = np.atleast_2d(raw).view(np.uint8)
    n = b.shape[0]
    signed = np.ascontiguousarray(b[:, -4:]).view(np.float32).reshape(n)
    packed = b[:, :-4]
    codes = np.empty((n, 2 * packed.shape[1]), dtype=np.uint8)
    codes[:, 0::2] = packed & 15
    codes[:, 1::2] = packed >> 4
    if dim is not None:
        codes = codes[:, :dim]
    elif n and np.signbit(signed).any():
        codes = codes[:, :-1]
    y = LEVELS[codes] * np.abs(signed)[:, None]
    out = y if rotated else rotate(y, inverse=True)
    return out[0] if single else out


# --------------------------------------------------------------------------- turbo8, turbo16
#
# `turbo8` and `turbo16` keep 8 and 16 bits per dimension: the same rotation, then each
# rotated coordinate rounded to the nearest of 2^bits evenly spaced levels spanning the row's
# largest |coordinate| (at these widths even steps are as good as Lloyd-Max's, and Qdrant
# Edge's round-trip error is the same: tests/test_quantization.py). Rows have a dtype of their
# own, which is how every reader tells the three datatypes apart without being told:
#
#   turbo4   int8    ceil(d / 2) bytes of 4-bit codes + float32 scale (above)
#   turbo8   int16   ceil(d / 2) elements holding two 8-bit codes each (low byte first)
#                    + float32 scale (2 elements); the scale's sign says that d is odd
#   turbo16  uint16  d 16-bit codes + float32 scale (2 elements)
#
# A code c decodes to (c - q / 2) * scale with q = 2^bits - 1, so the largest coordinate is
# an end level and re-encoding a decoded row gives the same scale (and, but for float
# rounding at a level's edge, the same codes).

ROW_DTYPES: dict[str, type[np.generic]] = {
    "turbo4": np.int8,
    "turbo8": np.int16,
    "turbo16": np.uint16,
}
_WIDE_BITS = {np.dtype(np.int16): 8, np.dtype(np.uint16): 16}


def is_rows(arr: npt.NDArray[Any]) -> bool:
    """Whether an array holds turbo rows (of any of the three datatypes)."""
    return arr.dtype == np.int8 or arr.dtype in _WIDE_BITS


def row_width(dim: int, datatype: str) -> int:
    """Elements (of the datatype's row dtype) a row of a `dim`-dimensional vector takes."""
    if datatype == "turbo4":
        return row_bytes(dim)
    if datatype == "turbo8":
        return (dim + 1) // 2 + 2
    return dim + 2


def encode_as(vectors: npt.ArrayLike, datatype: str) -> npt.NDArray[Any]:
    """Vectors (n, d) or (d,) as rows of `datatype` (turbo4, turbo8 or turbo16)."""
    if datatype == "turbo4":
        return encode(vectors)
    bits = 8 if datatype == "turbo8" else 16
    x = np.asarray(vectors, dtype=np.float32)
    single = x.ndim == 1
    x = np.atleast_2d(x)
    n, dim = x.shape
    y = rotate(x)
    top = float(2**bits - 1)
    scale = 2.0 * np.abs(y).max(axis=1, initial=0.0) / top
    safe = np.where(scale > 0, scale, 1.0)
    codes = np.clip(np.rint(y / safe[:, None] + top / 2), 0, top)
    scales = scale.astype(np.float32).reshape(n, 1)
    if bits == 16:
        rows = np.hstack([codes.astype(np.uint16), scales.view(np.uint16)])
    else:
        if dim % 2:
            codes = np.hstack([codes, np.zeros((n, 1))])
            scales = np.copysign(scales, np.float32(-1.0))  # -0.0 marks an odd d too
        packed = codes.astype(np.uint8).view(np.int16)
        rows = np.hstack([packed, scales.view(np.int16)])
    return rows[0] if single else rows


def _decode_wide(b: npt.NDArray[Any], rotated: bool, dim: int | None) -> FloatArray:
    bits = _WIDE_BITS[b.dtype]
    n = b.shape[0]
    signed = np.ascontiguousarray(b[:, -2:]).view(np.float32).reshape(n)
    body = np.ascontiguousarray(b[:, :-2])
    codes = body.view(np.uint8) if bits == 8 else body
    if dim is not None:
        codes = codes[:, :dim]
    elif bits == 8 and n and np.signbit(signed).any():
        codes = codes[:, :-1]
    top = float(2**bits - 1)
    y = ((codes.astype(np.float32) - np.float32(top / 2)) * np.abs(signed)[:, None]).astype(
        np.float32
    )
    return y if rotated else rotate(y, inverse=True)
