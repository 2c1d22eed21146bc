"""Binary quantization codes: how vectors and queries become the bits a binary HNSW walks.

Version 2 (the current one) computes what Qdrant's binary quantization computes
(lib/quantization/src/encoded_vectors_binary.rs), bit for bit up to where the bits sit in a
code, which no score depends on:

    one_bit            bit i: x_i > 0.
    two_bits           per-dimension statistics of the segment's vectors (mean m_i and
                       sample standard deviation s_i; Qdrant's `VectorStats`) place every
                       value in one of three bands of z = (x_i - m_i) / s_i:
                       z <= -2/3: 00, -2/3 < z < 2/3: 10, z >= 2/3: 11. Bit i (0..d-1) is
                       the first bit, bit d + i the second. A dimension with s_i < f32
                       epsilon has bit i = x_i > 0 and no second bit.
    one_and_half_bits  the two_bits bands, but one second bit per pair of dimensions: bit
                       d + i // 2 is the OR of the second bits of 2j and 2j + 1.

    Symmetric score (the query encoded like the vectors): with h the Hamming distance of
    the two codes, Qdrant's similarity is d - 2h (Cosine and Dot; a distance ranks by h).
    query_encoding scalar4bits / scalar8bits (asymmetric): the query is extended to the
    code's layout (one_bit: q; two_bits: q twice; one_and_half_bits: q, then the max of
    each pair), quantized to R = 15 or 255 levels over [-a, a] (a: its largest |value|),
    and scored as x = sum over code bits of (bit ? R - level : level) / R; similarity
    d - 2x, in float32 as Qdrant does it.

Version 1 (segments written before version 2; their codec entry has no "version"): bits
from each vector's own standard deviation t = 0.6 sd (two_bits: x > -t, x > t;
one_and_half_bits: the signs, then per pair whether |x_2j| + |x_2j+1| > 2t) and an
asymmetric score from the codes' levels. Still read, and searched, as written.

Persisted (in the segment manifest's codec entry, JSON; see `BinaryCodec.meta`):
    {"kind": "binary", "dim": int, "encoding": str, "version": 2 (absent: 1),
     "mean": str, "stddev": str}: mean and stddev (version 2, two_bits and
    one_and_half_bits only) are base64 of `dim` little-endian float32 values each.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.fileformat import FormatError, float32_field

FloatArray = npt.NDArray[np.float32]
CodeArray = npt.NDArray[np.uint8]

VERSION = 2
ENCODINGS = ("one_bit", "two_bits", "one_and_half_bits")
QUERY_ENCODINGS = ("default", "scalar4bits", "scalar8bits")
# Qdrant's SIGMAS: the half-width, in standard deviations, of the two-bit "zero" band.
_SIGMAS = np.float32(2.0 / 3.0)
_EPSILON = np.finfo(np.float32).eps
# Version 1: the three-level thresholds at 0.6 of each vector's own standard deviation.
_V1_MIDDLE = 0.6


def _pack(parts: list[npt.NDArray[np.bool_]], width: int) -> CodeArray:
    """The rows' bit planes side by side, zero-padded to `width` bits, packed per row."""
    if len(parts) == 1 and parts[0].shape[1] == width:
        return np.packbits(parts[0], axis=1, bitorder="little")
    bits = np.zeros((len(parts[0]), width), dtype=bool)
    start = 0
    for part in parts:
        bits[:, start : start + part.shape[1]] = part
        start += part.shape[1]
    return np.packbits(bits, axis=1, bitorder="little")


def _f32_bytes(values: npt.ArrayLike) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def _from_f32_bytes(raw: bytes) -> FloatArray:
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def _round_half_away(x: FloatArray) -> FloatArray:
    """Rust's f32::round for values >= 0 (numpy rounds halves to even)."""
    floor = np.floor(x)
    return np.asarray(floor + (x - floor >= np.float32(0.5)), dtype=np.float32)


@dataclass(frozen=True)
class BinaryCodec:
    """Bit codes of vectors (Qdrant's binary quantization encodings; see the module).

    `mean` / `stddev`: the per-dimension statistics two_bits and one_and_half_bits encode
    with (version 2), as little-endian float32 bytes (comparable, hashable, persisted as
    they are); `fitted` computes them from the segment's vectors."""

    dim: int
    encoding: str = "one_bit"
    query_encoding: str = "default"
    version: int = VERSION
    mean: bytes | None = None
    stddev: bytes | None = None

    @property
    def bits(self) -> int:
        extra = {"one_bit": 0, "two_bits": self.dim, "one_and_half_bits": -(-self.dim // 2)}
        return -(-(self.dim + extra[self.encoding]) // 8) * 8

    @property
    def _extended(self) -> int:
        """The code's meaningful bits (the rest pads it to whole bytes)."""
        extra = {"one_bit": 0, "two_bits": self.dim, "one_and_half_bits": -(-self.dim // 2)}
        return self.dim + extra[self.encoding]

    @property
    def asymmetric(self) -> bool:
        return self.query_encoding in ("scalar4bits", "scalar8bits")

    @property
    def _needs_stats(self) -> bool:
        return self.version >= 2 and self.encoding != "one_bit"

    # ------------------------------------------------------------------ persistence

    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"kind": "binary", "dim": self.dim, "encoding": self.encoding}
        if self.version >= 2:
            meta["version"] = self.version
        if self.mean is not None and self.stddev is not None:
            meta["mean"] = base64.b64encode(self.mean).decode("ascii")
            meta["stddev"] = base64.b64encode(self.stddev).decode("ascii")
        return meta

    @classmethod
    def from_meta(cls, meta: Any) -> BinaryCodec:
        """The codec a segment manifest's `codec` entry names; FormatError for one that is
        missing or names no known encoding (the codes cannot be read without it)."""
        if not isinstance(meta, dict) or meta.get("kind") != "binary":
            raise FormatError(f"a binary graph without its codec entry: {meta!r}")
        dim, encoding = meta.get("dim"), meta.get("encoding", "one_bit")
        query = meta.get("query_encoding", "default")
        version = meta.get("version", 1)
        if (
            not isinstance(dim, int)
            or isinstance(dim, bool)
            or dim <= 0
            or encoding not in ENCODINGS
            or query not in QUERY_ENCODINGS
            or not isinstance(version, int)
            or isinstance(version, bool)
            or version not in (1, 2)
        ):
            raise FormatError(f"a binary graph's codec entry is not valid: {meta!r}")
        codec = cls(dim, encoding, query, version)
        if not codec._needs_stats:
            return codec
        what = "a binary graph's codec"
        mean, stddev = (float32_field(meta, key, dim, what) for key in ("mean", "stddev"))
        return replace(codec, mean=mean, stddev=stddev)

    @classmethod
    def from_config(cls, dim: int, quantization: dict[str, Any]) -> BinaryCodec:
        """The codec a config asks for, before `fitted` (two_bits and one_and_half_bits
        need the vectors' statistics)."""
        body = quantization["binary"]
        return cls(dim, body.get("encoding") or "one_bit", body.get("query_encoding") or "default")

    def fitted(self, data: FloatArray) -> BinaryCodec:
        """This codec with the per-dimension statistics of `data` (the segment's vectors,
        as stored: Cosine ones unit length), where its encoding uses them: the mean and
        the sample standard deviation (n - 1; 0 for fewer than two vectors), computed in
        float64 and kept as float32, as Qdrant's VectorStats."""
        if not self._needs_stats:
            return self
        x = np.asarray(data, dtype=np.float32).reshape(-1, self.dim)
        n = len(x)
        mean = np.zeros(self.dim) if n == 0 else x.mean(axis=0, dtype=np.float64)
        std = np.zeros(self.dim) if n < 2 else x.std(axis=0, ddof=1, dtype=np.float64)
        return replace(self, mean=_f32_bytes(mean), stddev=_f32_bytes(std))

    # ------------------------------------------------------------------ encoding

    def encode(self, x: FloatArray) -> CodeArray:
        """Codes of `x`'s rows (vectors, or queries for the Hamming walk)."""
        x = np.asarray(x, dtype=np.float32).reshape(-1, self.dim)
        if self.version < 2:
            return self._encode_v1(x)
        if self.encoding == "one_bit":
            return _pack([x > 0], self.bits)
        first, second = self._bands(x)
        if self.encoding == "one_and_half_bits":
            if self.dim % 2:
                second = np.hstack([second, np.zeros((len(x), 1), dtype=bool)])
            second = second[:, 0::2] | second[:, 1::2]
        return _pack([first, second], self.bits)

    @cached_property
    def _band_stats(self) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_] | None]:
        """(mean, divisor, flat): the statistics as arrays, once per codec (a query's code
        is made for every search); a flat dimension divides by 1, and `flat` is None when
        no dimension is flat."""
        assert self.mean is not None and self.stddev is not None
        mean, sd = _from_f32_bytes(self.mean), _from_f32_bytes(self.stddev)
        flat = sd < _EPSILON
        divisor = np.asarray(np.where(flat, np.float32(1.0), sd), dtype=np.float32)
        return mean, divisor, flat if flat.any() else None

    def _bands(self, x: FloatArray) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Qdrant's two-bit value encoding: (z > -2/3, z >= 2/3) per value."""
        if self.mean is None or self.stddev is None:
            # Qdrant without statistics: both bits are the sign.
            return x > 0, x > 0
        mean, divisor, flat = self._band_stats
        z = (x - mean) / divisor
        first, second = z > -_SIGMAS, z >= _SIGMAS
        if flat is not None:  # a flat dimension: the sign, and no second bit
            first = np.where(flat, x > 0, first)
            second &= ~flat
        return first, second

    def _encode_v1(self, x: FloatArray) -> CodeArray:
        parts = [x > 0]
        if self.encoding != "one_bit":
            t = np.asarray(_V1_MIDDLE * x.std(axis=1, keepdims=True), dtype=np.float32)
            if self.encoding == "two_bits":
                parts = [x > -t, x > t]
            else:
                mags = np.abs(x)
                if self.dim % 2:
                    mags = np.hstack([mags, np.zeros((len(x), 1), dtype=np.float32)])
                parts.append(mags[:, 0::2] + mags[:, 1::2] > 2 * t)
        return _pack(parts, self.bits)

    # ------------------------------------------------------------------ scoring

    def symmetric_scores(self, query: FloatArray, codes: CodeArray) -> FloatArray:
        """Qdrant's similarity of the query's code with each code: dim - 2 x Hamming."""
        q = self.encode(np.asarray(query, dtype=np.float32).reshape(1, -1))
        hamming = np.unpackbits(np.bitwise_xor(codes, q), axis=1).sum(axis=1, dtype=np.int64)
        return np.asarray(self.dim - 2 * hamming, dtype=np.float32)

    def query_scores(self, query: FloatArray, codes: CodeArray) -> FloatArray:
        """The similarity of the query with each code, higher first, as the query encoding
        asks: Qdrant's scalar (4 or 8 bit) score, or `symmetric_scores` (version 2); the
        query against the codes' levels (version 1)."""
        if self.version < 2:
            return self._query_scores_v1(query, codes)
        if not self.asymmetric:
            return self.symmetric_scores(query, codes)
        levels = self.scalar_query(query)
        top = np.float32(15 if self.query_encoding == "scalar4bits" else 255)
        bits = np.unpackbits(codes, axis=1, bitorder="little")[:, : self._extended]
        # Per position: level where the bit is 0, R - level where it is 1. Integers summed
        # in float64 (exact below 2^53) by BLAS: an int64 product is numpy's own loop, ~2x
        # slower for a walk's beam.
        steps = (int(top) - 2 * levels).astype(np.float64)
        xor = (bits.astype(np.float64) @ steps).astype(np.int64)
        xor += int(levels.sum())
        product = xor.astype(np.float32) / top
        dim = np.float32(self.dim)
        return np.asarray((dim - product) - product, dtype=np.float32)

    def scalar_query(self, query: FloatArray) -> npt.NDArray[np.int64]:
        """The query as Qdrant's scalar query encoding: its extension to the code's
        positions, each quantized to 0..R over [-max|q|, max|q|]."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if self.encoding == "two_bits":
            q = np.concatenate([q, q])
        elif self.encoding == "one_and_half_bits":
            odd = q if len(q) % 2 == 0 else np.append(q, q[-1])
            q = np.concatenate([q, np.maximum(odd[0::2], odd[1::2])])
        top = np.float32(15 if self.query_encoding == "scalar4bits" else 255)
        bound = np.float32(np.abs(q).max(initial=0.0))
        delta = np.float32(np.float32(bound + bound) / top)
        if delta <= _EPSILON:
            return np.zeros(len(q), dtype=np.int64)
        scaled = np.asarray((q + bound) / delta, dtype=np.float32)
        return _round_half_away(scaled).astype(np.int64) % (int(top) + 1)

    def levels(self, codes: CodeArray) -> FloatArray:
        """Version 1: each code's value per dimension (the inverse of `encode`, up to
        scale)."""
        bits: FloatArray = np.unpackbits(codes, axis=1, bitorder="little").astype(np.float32)
        d = self.dim
        if self.encoding == "two_bits":
            return bits[:, :d] + bits[:, d : 2 * d] - 1.0
        signs = 2.0 * bits[:, :d] - 1.0
        if self.encoding == "one_and_half_bits":
            large = np.repeat(bits[:, d : d + -(-d // 2)], 2, axis=1)[:, :d]
            return signs * (0.5 + large)
        return signs

    def _query_scores_v1(self, query: FloatArray, codes: CodeArray) -> FloatArray:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if self.asymmetric:
            top = 15 if self.query_encoding == "scalar4bits" else 255
            lo, hi = float(q.min()), float(q.max())
            step = (hi - lo) / top if hi > lo else 1.0
            q = (np.round((q - lo) / step) * step + lo).astype(np.float32)
        levels = self.levels(codes)
        norms = np.linalg.norm(levels, axis=1)
        scores = (levels @ q) / np.where(norms > 0, norms, 1.0)
        return np.asarray(scores, dtype=np.float32)
