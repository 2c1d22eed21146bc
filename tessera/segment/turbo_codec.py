"""TurboQuant codes at 1 and 1.5 bits (Cosine): what Qdrant's `turbo` quantization stores
and scores (lib/quantization/src/turboquant, TQ+ mode, which Qdrant always uses).

Version 2 (the current one, bits1 and bits1_5 on Cosine vectors):

    padding    D = dim rounded up to a multiple of 8 (bits1), or dim * 3 // 2 rounded up to
               a multiple of 8 (bits1_5: one bit per coordinate of a 1.5x wider space); a
               vector is zero-padded to D.
    rotation   a fixed orthogonal map of R^D: split D into decreasing powers of two
               (256 + 128 for 384), apply a normalised Walsh-Hadamard transform to each
               chunk, then three times: permute the coordinates (a seeded Fisher-Yates
               shuffle driven by a 64-bit LCG, Knuth's MMIX constants, j = (state >> 32)
               mod (i + 1); out[i] = in[perm[i]]) and transform the chunks again. The
               rotated vector is scaled by sqrt(D) (unit vectors: coordinates ~ N(0, 1)).
    statistics per rotated coordinate i, over the segment's vectors: the quantiles lo_i,
               hi_i at Phi(-c) and Phi(c), c = sqrt(2 / pi) (the 1-bit Lloyd-Max level of
               N(0, 1)); shift_i = -(lo_i + hi_i) / 2, scale_i = 2c / (hi_i - lo_i) (1 where
               hi_i - lo_i <= 1e-3). Qdrant estimates the quantiles with P-square on a
               sample; here they are exact on up to 20,000 vectors.
    code       bit i = (y_i + shift_i) * scale_i > 0, bit i of the code is bit i % 8 of byte
               i // 8 (Qdrant's packing): D / 8 bytes per vector.
    score      the dequantized vector v_i = (bit_i ? c : -c) / scale_i - shift_i; a query
               q (unit) scores R(q) . v / |v| (R: the rotation, unscaled): Qdrant's cosine
               estimate, which it computes as (R(q) / scale) . code + R(q) . (-shift), times
               the 1 / |v| it stores beside each code. Symmetric (graph) links use the
               same normalised v: two codes score v_a . v_b / (|v_a| |v_b|).

The graph a version 2 segment walks is an HNSW linked by the codes' scores (as Qdrant links
it with its quantized scorer, never the float vectors): faiss links the normalised
dequantized vectors, then the index keeps only the codes: an IndexHNSWPQ over R^D with one
8-bit sub-quantizer per 8 coordinates whose 256 centroids are every sign pattern of those
coordinates' two levels, so a faiss code is the Qdrant code byte for byte. faiss walks it in
L2 with the query R(q) scaled to the mean |v| (to first order the same ranking as the
normalised score); the walk's beam (hnsw_ef wide) is then ranked by the exact score above,
which is what a search returns without rescoring.

Version 1 (segments written before version 2, and still bits2 / bits4 and the other
distances): a faiss random rotation and a product quantizer with one codebook fitted per
rotated coordinate (bits1_5: 3 bits per pair of coordinates), in the faiss file alone; no
codec entry. Still read, and searched, as written.

Persisted (in the segment manifest's codec entry, JSON; see `TurboCodec.meta`):
    {"kind": "turbo", "version": 2, "dim": int, "bits": "bits1" | "bits1_5",
     "shift": str, "scale": str, "norm": float}: shift and scale are base64 of D
    little-endian float32 values each; norm is the mean |v| the walk scales queries by.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from tessera.fileformat import FormatError, float32_field

FloatArray = npt.NDArray[np.float32]
CodeArray = npt.NDArray[np.uint8]

VERSION = 2
BITS = ("bits1", "bits1_5")
# The 1-bit Lloyd-Max level of N(0, 1): sqrt(2 / pi).
LEVEL = np.float32(0.7978846)
# Qdrant's TQ+ floor on a coordinate's quantile width (narrower: scale 1).
_MIN_WIDTH = 1e-3
_FIT_SAMPLE = 20_000
_CHUNK = 8192
# The LCG (Knuth's MMIX constants) and seeds of the three permutations.
_LCG_A = 6364136223846793005
_LCG_C = 1442695040888963407
_MASK = (1 << 64) - 1
_SEEDS = (654605292835415893, 8636605637963351413, 1775280196666917949)


def padded_dim(dim: int, bits: str) -> int:
    width = dim * 3 // 2 if bits == "bits1_5" else dim
    return -(-width // 8) * 8


def applies(quantization: dict[str, Any] | None, distance: str) -> bool:
    """Whether a config builds a version 2 turbo graph (else: version 1, or not turbo)."""
    if not quantization or "turbo" not in quantization:
        return False
    return distance == "Cosine" and (quantization["turbo"].get("bits") or "bits4") in BITS


@cache
def _permutation(seed: int, size: int) -> npt.NDArray[np.int64]:
    order = list(range(size))
    state = seed
    for i in range(size - 1, 0, -1):
        state = (state * _LCG_A + _LCG_C) & _MASK
        j = (state >> 32) % (i + 1)
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)


def _chunks(size: int) -> list[tuple[int, int]]:
    out, start = [], 0
    while size:
        top = 1 << (size.bit_length() - 1)
        out.append((start, start + top))
        start, size = start + top, size - top
    return out


def _hadamard(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The normalised Walsh-Hadamard transform of every power-of-two chunk of x's rows."""
    out = np.empty_like(x)
    n = len(x)
    for start, stop in _chunks(x.shape[1]):
        size = stop - start
        part = x[:, start:stop].copy()
        half = 1
        while half < size:
            view = part.reshape(n, size // (2 * half), 2, half)
            a, b = view[:, :, 0, :].copy(), view[:, :, 1, :]
            view[:, :, 0, :] += b
            view[:, :, 1, :] = a - b
            half *= 2
        out[:, start:stop] = part / math.sqrt(size)
    return out


def rotate(x: npt.ArrayLike, size: int) -> npt.NDArray[np.float64]:
    """Rows of x zero-padded to `size` and rotated (float64, not rescaled)."""
    rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if rows.shape[1] < size:
        rows = np.hstack([rows, np.zeros((len(rows), size - rows.shape[1]))])
    y = _hadamard(rows)
    for seed in _SEEDS:
        y = _hadamard(y[:, _permutation(seed, size)])
    return y


# Up to this padded size a query is rotated by one matrix product (the rotation as a
# size x size float64 matrix: 8 MiB at 1024).
_MATRIX_MAX = 1024


@cache
def _rotation_matrix(size: int) -> npt.NDArray[np.float64]:
    """`rotate` as a matrix: row i is the rotation of the i-th unit vector, so that
    `x @ M == rotate(x)` up to the order of the float64 sums."""
    matrix = rotate(np.eye(size), size)
    matrix.flags.writeable = False
    return matrix


@dataclass(frozen=True)
class TurboCodec:
    """Qdrant's TQ+ 1-bit codes of a segment's vectors (see the module)."""

    dim: int
    bits: str
    shift: bytes  # D little-endian float32
    scale: bytes
    norm: float = 1.0
    version: int = VERSION

    @property
    def size(self) -> int:
        return padded_dim(self.dim, self.bits)

    @property
    def code_size(self) -> int:
        return self.size // 8

    def _stats(self) -> tuple[FloatArray, FloatArray]:
        shift = np.frombuffer(self.shift, dtype="<f4").astype(np.float32)
        scale = np.frombuffer(self.scale, dtype="<f4").astype(np.float32)
        return shift, scale

    def levels(self) -> tuple[FloatArray, FloatArray]:
        """Each rotated coordinate's two dequantized values (bit 0, bit 1)."""
        shift, scale = self._stats()
        return (-LEVEL / scale - shift).astype(np.float32), (LEVEL / scale - shift).astype(
            np.float32
        )

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fitted(cls, data: FloatArray, bits: str) -> TurboCodec:
        """The codec of a segment's vectors (unit rows; all-zero rows, points without this
        vector, take no part in the statistics)."""
        x = np.asarray(data, dtype=np.float32)
        dim = x.shape[1]
        size = padded_dim(dim, bits)
        rows = x[np.einsum("ij,ij->i", x, x) > 0]
        if len(rows) > _FIT_SAMPLE:
            pick = np.random.default_rng(0).choice(len(rows), _FIT_SAMPLE, replace=False)
            rows = rows[np.sort(pick)]
        shift = np.zeros(size, dtype=np.float32)
        scale = np.ones(size, dtype=np.float32)
        if len(rows):
            y = (rotate(rows, size) * math.sqrt(size)).astype(np.float32)
            p = 0.5 * (1.0 + math.erf(float(LEVEL) / math.sqrt(2.0)))
            inner = float(np.float32(2.0 * p - 1.0))
            lo, hi = np.quantile(y, [(1.0 - inner) / 2, 1.0 - (1.0 - inner) / 2], axis=0)
            lo, hi = lo.astype(np.float32), hi.astype(np.float32)
            shift = (-(lo + hi) / 2).astype(np.float32)
            width = hi - lo
            wide = width > _MIN_WIDTH
            scale[wide] = 2 * LEVEL / width[wide]
        codec = cls(dim, bits, shift.astype("<f4").tobytes(), scale.astype("<f4").tobytes())
        if len(rows):
            norms = np.linalg.norm(codec.dequantize(codec.encode(rows)), axis=1)
            codec = cls(dim, bits, codec.shift, codec.scale, float(norms.mean()))
        return codec

    # ------------------------------------------------------------------ codes

    def encode(self, x: FloatArray) -> CodeArray:
        """The codes of x's rows (unit vectors), (n, D / 8) bytes."""
        shift, scale = self._stats()
        out = np.empty((len(x), self.code_size), dtype=np.uint8)
        for start in range(0, len(x), _CHUNK):
            y = rotate(x[start : start + _CHUNK], self.size) * math.sqrt(self.size)
            bits = (y + shift.astype(np.float64)) * scale.astype(np.float64) > 0
            out[start : start + _CHUNK] = np.packbits(bits, axis=1, bitorder="little")
        return out

    def dequantize(self, codes: CodeArray) -> FloatArray:
        low, high = self._levels
        bits = np.unpackbits(codes, axis=1, bitorder="little", count=self.size).astype(bool)
        return np.where(bits, high, low).astype(np.float32)

    def query(self, q: FloatArray) -> FloatArray:
        """The rotated query (what the walk and the score take)."""
        row = np.asarray(q, dtype=np.float64).reshape(-1)
        if self.size > _MATRIX_MAX:
            rotated = rotate(row.reshape(1, -1), self.size)[0]
        else:  # one product instead of four transforms of log2(size) numpy steps each
            rotated = row @ _rotation_matrix(self.size)[: len(row)]
        return np.asarray(rotated, dtype=np.float32)

    def scores(self, rotated_query: FloatArray, codes: CodeArray) -> FloatArray:
        """Qdrant's quantized cosine of the (rotated) query with each code: the dot product
        with the dequantized vector over that vector's length. A coordinate dequantizes to
        its low level plus, where its bit is set, high - low: so both sums are a constant
        plus the bits times one weight each, one matrix product for the two (a walk's beam
        of 64 codes of 256 bits: 55 -> 24 us against dequantizing every vector first)."""
        low, high = self._levels
        q = np.asarray(rotated_query, dtype=np.float32)
        weights = np.empty((self.size, 2), dtype=np.float32)
        weights[:, 0] = (high - low) * q
        base, steps = self._square_terms
        weights[:, 1] = steps
        bits = np.unpackbits(codes, axis=1, count=self.size, bitorder="little")
        both = bits.astype(np.float32) @ weights
        dots = np.float32(low @ q) + both[:, 0]
        norms = np.sqrt(np.maximum(base + both[:, 1], 0))
        return np.asarray(dots / np.where(norms > 0, norms, 1.0), dtype=np.float32)

    @cached_property
    def _levels(self) -> tuple[FloatArray, FloatArray]:
        return self.levels()

    @cached_property
    def _square_terms(self) -> tuple[np.float32, FloatArray]:
        """A dequantized vector's squared length with no bit set, and what a set bit adds to
        it, per coordinate."""
        low, high = self._levels
        steps: FloatArray = high * high - low * low
        return np.float32(low @ low), steps

    def query_scores(self, q: FloatArray, codes: CodeArray) -> FloatArray:
        return self.scores(self.query(q), codes)

    # ------------------------------------------------------------------ faiss

    def empty_index(self, m: int) -> Any:
        """An IndexHNSWPQ whose codes are these codes: one 8-bit sub-quantizer per 8
        coordinates, centroid k = the levels of the bits of k."""
        subs = self.code_size
        index: Any = faiss.IndexHNSWPQ(self.size, subs, m, 8, faiss.METRIC_L2)  # type: ignore[call-arg, arg-type]
        storage: Any = faiss.downcast_index(index.storage)
        low, high = self.levels()
        patterns = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(bool)
        books = np.where(
            patterns[None, :, :],
            high.reshape(subs, 1, 8),
            low.reshape(subs, 1, 8),
        ).astype(np.float32)
        faiss.copy_array_to_vector(books.ravel(), storage.pq.centroids)
        storage.is_trained = True
        index.is_trained = True
        return index

    def unit_dequantized(self, codes: CodeArray) -> FloatArray:
        v = self.dequantize(codes)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.ascontiguousarray(v / np.where(norms > 0, norms, 1.0), dtype=np.float32)

    # ------------------------------------------------------------------ persistence

    def meta(self) -> dict[str, Any]:
        return {
            "kind": "turbo",
            "version": self.version,
            "dim": self.dim,
            "bits": self.bits,
            "shift": base64.b64encode(self.shift).decode("ascii"),
            "scale": base64.b64encode(self.scale).decode("ascii"),
            "norm": self.norm,
        }

    @classmethod
    def from_meta(cls, meta: Any) -> TurboCodec:
        """The codec a manifest's codec entry names; FormatError for one that is not
        valid (the codes cannot be read without it)."""
        if not isinstance(meta, dict) or meta.get("kind") != "turbo":
            raise FormatError(f"a turbo graph without its codec entry: {meta!r}")
        dim, bits, version, norm = (meta.get(k) for k in ("dim", "bits", "version", "norm"))
        if (
            not isinstance(dim, int)
            or isinstance(dim, bool)
            or dim <= 0
            or bits not in BITS
            or version != VERSION
            or not isinstance(norm, (int, float))
            or isinstance(norm, bool)
            or not math.isfinite(norm)
        ):
            raise FormatError(f"a turbo graph's codec entry is not valid: {meta!r}")
        count, what = padded_dim(dim, bits), "a turbo graph's codec"
        shift, scale = (float32_field(meta, key, count, what) for key in ("shift", "scale"))
        return cls(dim, bits, shift, scale, float(norm))
