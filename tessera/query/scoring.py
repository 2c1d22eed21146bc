"""Dense vector scoring, as Qdrant computes and reports it.

Two score scales exist, as in Qdrant's core:

- the *similarity* (`similarity`): what the engine ranks by, bigger is always better.
  Cosine and Dot: the dot product; Euclid: minus the squared distance; Manhattan: minus
  the L1 distance. Recommend (best_score / sum_scores), discover, context and max_sim
  work on this scale, and its values are what those queries report.
- the *reported* score (`score_dense`): what a nearest query returns. Euclid turns the
  similarity back into a distance (sqrt of its absolute value), Manhattan into the L1
  distance; for those two, smaller is better.

Storage datatypes follow Qdrant: `float32`; `float16` (vectors rounded to half precision
after Cosine normalisation, and the query rounded the same way); `uint8` (every value
truncated and saturated into 0..255 like Rust's `as u8`, never normalised: Cosine on bytes
is the true cosine of the two byte vectors, and the query is converted the same way);
`turbo4` (4 bits per dimension, `tessera.query.turbo`: stored rows are int8, decoded to
float32 for scoring and reading; the query stays float32).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from tessera.errors import BadRequest
from tessera.query import turbo

Distance = Literal["Cosine", "Euclid", "Dot", "Manhattan"]
Datatype = Literal["float32", "float16", "uint8", "turbo4", "turbo8", "turbo16"]

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DISTANCES: tuple[Distance, ...] = get_args(Distance)
DATATYPES: tuple[Datatype, ...] = get_args(Datatype)

# Rust's f32::EPSILON: Qdrant leaves a vector whose norm is below it unnormalised.
EPSILON = np.float32(1.1920929e-7)

# Bound on the temporaries of the element-wise distances (Euclid, Manhattan, converted
# datatypes): about 16 MiB of float32 per chunk, whatever the segment size.
_CHUNK_ELEMENTS = 1 << 22

# Below this many dimensions Qdrant's kernels are scalar loops (its SIMD ones start at 16):
# each sum (a norm's, a dot product's, a distance's) adds its float32 terms one after the
# other from 0, which BLAS, numpy's pairwise sums and faiss do in other orders. A score of
# such small vectors then differs from Qdrant's in the last bit (1.4063 against 1.4063001),
# which a client comparing scores exactly sees; so these sums run in Qdrant's order (checked
# bit for bit against Qdrant Edge at 2-15 dimensions, every distance:
# tests/test_small_dims_exact.py).
SEQUENTIAL_DIMS = 16
# From this many dimensions Qdrant's x86 kernels are AVX ones (SSE from SEQUENTIAL_DIMS).
_AVX_DIMS = 32


def _sequential_sum(terms: FloatArray) -> FloatArray:
    """The float32 sum over the last axis of `terms`, term after term from 0 (as a Rust
    `iter().sum::<f32>()`)."""
    total = np.zeros(terms.shape[:-1], dtype=np.float32)
    for j in range(terms.shape[-1]):
        total += terms[..., j]
    return total


def higher_is_better(distance: Distance) -> bool:
    """Whether a bigger *reported* nearest score is a better match."""
    return distance in ("Cosine", "Dot")


def check_distance(distance: str) -> Distance:
    if distance not in DISTANCES:
        raise BadRequest(f"Unknown distance: {distance!r}, expected one of {list(DISTANCES)}")
    return distance  # type: ignore[return-value]


def check_datatype(datatype: str) -> Datatype:
    if datatype not in DATATYPES:
        raise BadRequest(f"Unsupported datatype: {datatype!r}, expected one of {list(DATATYPES)}")
    return datatype  # type: ignore[return-value]


# --------------------------------------------------------------------------- preparation


def normalize_rows(vectors: npt.ArrayLike) -> FloatArray:
    """Unit-normalise each row (or a single vector) as Qdrant's cosine preprocessing does:
    the squared length summed in its kernels' order (`_norm2`, `_kernel_norm2` for rows), a
    vector left as it is when that is below f32::EPSILON or within 1e-6 of 1 (already unit:
    embedding models send them so, and Qdrant stores them bit for bit), else each component
    divided by the float32 square root."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:  # a query (a per-query cost): the same float32 arithmetic, fewer calls
        return _unit_or_kept(arr, _norm2(arr))
    rows = arr.reshape(-1, arr.shape[-1]) if arr.ndim != 2 else arr
    length2 = _kernel_norm2(rows) if rows.shape[-1] >= SEQUENTIAL_DIMS else _norm2(rows)
    safe = np.where(_kept(length2), np.float32(1.0), np.sqrt(length2))[:, np.newaxis]
    if rows.shape[-1] >= _AVX_DIMS:
        # Qdrant's AVX preprocessing multiplies by the reciprocal; the others divide
        unit = rows * (np.float32(1.0) / safe)
    else:
        unit = rows / safe
    return unit.astype(np.float32, copy=False).reshape(arr.shape)


def _kept(length2: Any) -> Any:
    """Qdrant's `is_length_zero_or_normalized` on squared lengths (one or an array): zero, or
    already unit within 1e-6, is left as it is."""
    return (length2 < EPSILON) | (np.abs(length2 - np.float32(1.0)) <= np.float32(1e-6))


def _unit_or_kept(vector: FloatArray, length2: Any) -> FloatArray:
    """One vector through `_kept`, else divided by its length."""
    if _kept(length2):
        return vector.copy()
    unit: FloatArray = vector / np.sqrt(np.float32(length2))
    return unit


def _norm2(vectors: FloatArray) -> Any:
    """Squared lengths of float32 vectors (over the last axis), summed in Qdrant's order
    below `SEQUENTIAL_DIMS` (np.linalg.norm's own sum above it)."""
    squares = vectors * vectors
    if squares.shape[-1] < SEQUENTIAL_DIMS:
        return _sequential_sum(squares)
    return np.add.reduce(squares, axis=-1)


def _kernel_norm2(rows: FloatArray) -> FloatArray:
    """Squared lengths of rows (n, d >= 16) summed as Qdrant's x86 kernels sum them, so a
    stored Cosine vector is Qdrant's to the bit (checked against Qdrant Edge, which picks
    the same kernels on this CPU: tests/test_small_dims_exact.py). 16-31 dimensions: SSE,
    four 4-lane sums of rounded squares over blocks of 16, each folded (0 + 2) + (1 + 3),
    then added in turn; 32 and more: AVX with FMA, four 8-lane sums over blocks of 32, each
    square added without rounding it first (float64 holds it exactly), the four summed
    pairwise, then folded high half + low half, (0 + 1) + (2 + 3). The rest of the components
    are then added one by one (the AVX path then multiplies by the reciprocal of the
    length: normalize_rows). A loop over the blocks (d / 16 or d / 32 steps), each
    vectorised over every row: the recurrence rounds at each step. ARM machines (NEON) sum
    in another order; x86 with AVX is what Qdrant runs on most."""
    n, d = rows.shape
    if d < _AVX_DIMS:
        m = d - d % 16
        blocks = rows[:, :m].reshape(n, m // 16, 4, 4)
        acc = np.zeros((n, 4, 4), dtype=np.float32)
        for b in range(m // 16):
            acc += blocks[:, b] * blocks[:, b]
        pairs = acc[:, :, 0:2] + acc[:, :, 2:4]
        lanes = pairs[:, :, 0] + pairs[:, :, 1]
        total = ((lanes[:, 0] + lanes[:, 1]) + lanes[:, 2]) + lanes[:, 3]
    else:
        m = d - d % _AVX_DIMS
        # block-major squares in float64 (exact), added to the float32 lanes and rounded
        # once per step, as an FMA rounds: into `acc32` by the assignment's cast
        squares = rows[:, :m].reshape(n, m // _AVX_DIMS, _AVX_DIMS).transpose(1, 0, 2)
        squares = squares.astype(np.float64)
        np.square(squares, out=squares)
        acc32 = np.zeros((n, _AVX_DIMS), dtype=np.float32)
        step = np.empty((n, _AVX_DIMS), dtype=np.float64)
        for block in squares:
            np.add(block, acc32, out=step)
            acc32[...] = step
        lanes8 = acc32.reshape(n, 4, 8)
        half = (lanes8[:, 0] + lanes8[:, 1]) + (lanes8[:, 2] + lanes8[:, 3])
        quarter = half[:, 4:8] + half[:, 0:4]
        total = (quarter[:, 0] + quarter[:, 1]) + (quarter[:, 2] + quarter[:, 3])
    for j in range(m, d):
        total += rows[:, j] * rows[:, j]
    return np.asarray(total, dtype=np.float32)


def to_uint8(vectors: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Rust's `f32 as u8`: truncate toward zero, saturate at 0 and 255, NaN becomes 0."""
    arr = np.asarray(vectors, dtype=np.float32)
    clean = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.trunc(clean), 0.0, 255.0).astype(np.uint8)


def prepare_stored(
    distance: Distance, vectors: npt.ArrayLike, datatype: Datatype = "float32"
) -> npt.NDArray[Any]:
    """Vectors (n, d) or (d,) as Qdrant stores them on insert, in the storage dtype."""
    if datatype == "uint8":
        return to_uint8(vectors)
    arr = np.asarray(vectors, dtype=np.float32)
    if distance == "Cosine":
        arr = normalize_rows(arr)
    if datatype == "float16":
        return arr.astype(np.float16)
    if datatype in turbo.ROW_DTYPES:
        return turbo.encode_as(arr, datatype)
    return np.ascontiguousarray(arr)


def prepare_query(
    distance: Distance, query: npt.ArrayLike, datatype: Datatype = "float32"
) -> FloatArray:
    """A query vector (d,) or batch (q, d) as the engine compares it, returned as float32.

    Qdrant converts the query into the storage's element type before comparing, so a
    float16 collection sees a half-precision query and a uint8 one a byte query; a turbo4
    one compares the float query with the decoded vectors.
    """
    if datatype == "float32" and distance == "Cosine":
        # prepare_stored's answer here without its datatype layers: every search asks
        arr = np.asarray(query, dtype=np.float32)
        if arr.ndim == 1:  # normalize_rows' steps; both answers are fresh, contiguous arrays
            return _unit_or_kept(arr, _norm2(arr))
        return np.ascontiguousarray(normalize_rows(arr))
    if datatype in turbo.ROW_DTYPES:
        datatype = "float32"
    stored = prepare_stored(distance, query, datatype)
    # A float32 query is float32 already: as_float32's checks are a per-query cost.
    return stored if datatype == "float32" else as_float32(stored)


def as_float32(vectors: npt.ArrayLike, dim: int | None = None) -> FloatArray:
    """Stored vectors (any datatype) as float32, which is how Qdrant returns them. `dim`:
    the vectors' dimension, where known (turbo4 rows of vectors never written do not say
    it: see turbo.decode)."""
    arr = np.asarray(vectors)
    if turbo.is_rows(arr):  # turbo4 / turbo8 / turbo16 rows
        return turbo.decode(arr, dim=dim)
    return np.asarray(arr, dtype=np.float32)


# --------------------------------------------------------------------------- similarity


def _chunks(stored: npt.NDArray[Any]) -> Iterator[tuple[int, npt.NDArray[Any]]]:
    """(start, rows) blocks of a stored matrix, each of about _CHUNK_ELEMENTS values."""
    step = max(1, _CHUNK_ELEMENTS // max(1, stored.shape[1]))
    for start in range(0, stored.shape[0], step):
        yield start, stored[start : start + step]


def _dot_like(queries: FloatArray, stored: npt.NDArray[Any], exact: bool) -> FloatArray:
    """queries (q, d) @ stored.T -> (q, n); bytes go through float64, where their sums are exact."""
    if stored.dtype == np.float32:
        # stored @ q.T walks the row-major matrix in order: ~4x faster than q @ stored.T.
        return np.ascontiguousarray((stored @ queries.T).T, dtype=np.float32)
    work = np.float64 if exact else np.float32
    q = queries.astype(work)
    out = np.empty((queries.shape[0], stored.shape[0]), dtype=np.float32)
    for start, chunk in _chunks(stored):
        out[:, start : start + chunk.shape[0]] = np.matmul(q, chunk.astype(work).T)
    return out


def _elementwise(
    queries: FloatArray, stored: npt.NDArray[Any], squared: bool, exact: bool
) -> FloatArray:
    """Minus the squared L2 (or the L1) distance, from explicit differences.

    The expansion |a|^2 - 2ab + |b|^2 would be one matrix product, but it cancels
    catastrophically near zero, and a query equal to a stored vector must score exactly 0.
    """
    work = np.float64 if exact else np.float32
    out = np.empty((queries.shape[0], stored.shape[0]), dtype=np.float32)
    q_work = queries.astype(work)
    for start, raw in _chunks(stored):
        chunk = raw.astype(work, copy=False)
        stop = start + chunk.shape[0]
        for row, q in enumerate(q_work):
            diff = chunk - q
            if squared:
                dist = np.einsum("ij,ij->i", diff, diff)
            else:
                dist = np.abs(diff).sum(axis=1)
            out[row, start:stop] = -dist
    return out


def _sequential_similarity(
    distance: Distance, queries: FloatArray, stored: FloatArray
) -> FloatArray:
    """`similarity` of float32 vectors under `SEQUENTIAL_DIMS`, each sum in Qdrant's order:
    (q, n), one column of products (or differences) added at a time."""
    out = np.empty((queries.shape[0], stored.shape[0]), dtype=np.float32)
    for start, chunk in _chunks(stored):
        total = np.zeros((queries.shape[0], chunk.shape[0]), dtype=np.float32)
        for j in range(chunk.shape[1]):
            column, values = chunk[:, j], queries[:, j, np.newaxis]
            if distance in ("Dot", "Cosine"):
                total += values * column
            else:
                diff = column - values
                total += diff * diff if distance == "Euclid" else np.abs(diff)
        out[:, start : start + chunk.shape[0]] = total if distance in ("Dot", "Cosine") else -total
    return out


def _cosine_bytes(queries: FloatArray, stored: npt.NDArray[Any], exact: bool) -> FloatArray:
    """True cosine of byte vectors; 0 when either side is all zeros (as Qdrant answers)."""
    dots = _dot_like(queries, stored, exact).astype(np.float64)
    q64 = queries.astype(np.float64)
    q_norm2 = np.einsum("ij,ij->i", q64, q64)
    s_norm2 = np.empty(stored.shape[0], dtype=np.float64)
    for start, chunk in _chunks(stored):
        c: npt.NDArray[np.floating[Any]] = chunk.astype(np.float64 if exact else np.float32)
        s_norm2[start : start + chunk.shape[0]] = np.einsum("ij,ij->i", c, c)
    denom = np.sqrt(np.outer(q_norm2, s_norm2))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(denom > 0.0, dots / np.where(denom > 0.0, denom, 1.0), 0.0)
    return cos.astype(np.float32)


def similarity(
    distance: Distance,
    query: npt.ArrayLike,
    stored: npt.NDArray[Any],
    datatype: Datatype = "float32",
    *,
    query_prepared: bool = False,
) -> FloatArray:
    """Core similarity (bigger is better) of a query (d,) or queries (q, d) to stored (n, d).

    `stored` is what `prepare_stored` returned (any storage dtype). The query is raw user
    input unless `query_prepared`: it is converted like a stored vector first.
    Returns (n,) for one query, (q, n) for a batch.
    """
    q = (
        np.asarray(query, dtype=np.float32)
        if query_prepared
        else prepare_query(distance, query, datatype)
    )
    single = q.ndim == 1
    queries = q[np.newaxis, :] if single else q
    if turbo.is_rows(stored):  # turbo rows: dot products and L2 hold in rotated space
        if not len(stored):
            stored = np.zeros((0, queries.shape[1]), dtype=np.float32)
        elif distance == "Manhattan":
            stored = turbo.decode(stored)
        else:
            stored = turbo.decode(stored, rotated=True)
            if stored.shape[1] == queries.shape[1]:
                queries = turbo.rotate(np.ascontiguousarray(queries, dtype=np.float32))
    if stored.ndim != 2 or queries.shape[1] != stored.shape[1]:
        raise BadRequest(
            f"Vector dimension error: expected dim: {stored.shape[-1]}, got {queries.shape[-1]}"
        )
    # Byte arithmetic is integer arithmetic in Qdrant; float32 sums stay exact while every
    # partial sum is below 2^24 (d * 255^2), beyond that float64 takes over.
    exact = datatype == "uint8" and stored.shape[1] * 255 * 255 >= 2**24
    # (uint8 rows may come as float32, a multivector's flat rows do: their Cosine is no dot)
    bytes_cosine = distance == "Cosine" and datatype == "uint8"
    if stored.dtype == np.float32 and stored.shape[1] < SEQUENTIAL_DIMS and not bytes_cosine:
        out = _sequential_similarity(distance, queries.astype(np.float32, copy=False), stored)
    elif distance in ("Dot", "Cosine"):
        if bytes_cosine:
            out = _cosine_bytes(queries, stored, exact)
        else:
            out = _dot_like(queries, stored, exact)
    elif distance == "Euclid":
        out = _elementwise(queries, stored, squared=True, exact=exact)
    else:
        out = _elementwise(queries, stored, squared=False, exact=exact)
    return out[0] if single else out


def to_reported(distance: Distance, sim: npt.ArrayLike) -> FloatArray:
    """Core similarity -> the score a nearest query reports (Qdrant's postprocess)."""
    arr = np.asarray(sim, dtype=np.float32)
    if distance == "Euclid":
        return np.sqrt(np.abs(arr))
    if distance == "Manhattan":
        return np.abs(arr)
    return arr


def score_dense(
    distance: Distance,
    query: npt.ArrayLike,
    stored: npt.NDArray[Any],
    datatype: Datatype = "float32",
) -> FloatArray:
    """Nearest-query scores as Qdrant reports them: (n,) for a query (d,), (q, n) for (q, d)."""
    return to_reported(distance, similarity(distance, query, stored, datatype))


# --------------------------------------------------------------------------- selection


def _sort_key(scores: npt.ArrayLike, higher_is_better: bool) -> npt.NDArray[np.floating[Any]]:
    """Ascending-is-better keys, in the scores' own float width (no float64 copy)."""
    key = np.asarray(scores)
    if not np.issubdtype(key.dtype, np.floating):
        key = key.astype(np.float64)
    key = -key if higher_is_better else key
    nan = np.isnan(key)
    if nan.any():
        # NaN never wins: it sorts after every real score.
        key = np.where(nan, np.inf, key)
    return key


def top_k(scores: npt.ArrayLike, k: int, higher_is_better: bool, offset: int = 0) -> IndexArray:
    """Indices of the best scores at ranks [offset, offset + k), best first.

    Equal scores keep index order (smaller index first), deterministically; Qdrant leaves
    ties unspecified, and local mode's reversed argsort usually puts the later one first.
    Costs one argpartition plus a sort of the k + offset winners (and their ties).
    """
    arr = np.asarray(scores)
    n = arr.shape[0]
    m = min(n, max(0, k) + max(0, offset))
    if m == 0:
        return np.empty(0, dtype=np.int64)
    if m >= n:
        order = np.argsort(_sort_key(arr, higher_is_better), kind="stable")
        return order[offset:m].astype(np.int64, copy=False)
    key, kth = None, np.inf
    if arr.dtype.kind == "f":
        # The usual case (a top-k of many floats) without _sort_key's NaN rewrite: numpy
        # orders NaN last, so while the k-th best key is a real, finite one no NaN is among
        # the winners or their ties.
        key = -arr if higher_is_better else arr
        kth = key[np.argpartition(key, m - 1)[m - 1]]
    if key is None or not kth < np.inf:
        key = _sort_key(arr, higher_is_better)
        kth = key[np.argpartition(key, m - 1)[m - 1]]
    # Every candidate tied with the k-th best, in index order, so the cut is stable.
    candidates = np.flatnonzero(key <= kth)
    order = candidates[np.argsort(key[candidates], kind="stable")]
    return order[offset:m].astype(np.int64, copy=False)


def passes_threshold(
    scores: npt.ArrayLike, threshold: float | None, distance: Distance
) -> BoolArray:
    """Which reported nearest scores pass `score_threshold`.

    Strict, as in Qdrant and local mode: bigger-is-better scores must exceed the threshold,
    Euclid / Manhattan distances must stay below it (the threshold is an upper bound).
    """
    arr = np.asarray(scores)
    if threshold is None:
        return np.ones(arr.shape, dtype=np.bool_)
    if higher_is_better(distance):
        return np.asarray(arr > threshold)
    return np.asarray(arr < threshold)


def threshold_prefix(
    ordered_scores: npt.ArrayLike, threshold: float | None, distance: Distance
) -> int:
    """How many leading results (already in result order) survive `score_threshold`.

    Qdrant and local mode both walk the ordered results and stop at the first one that
    fails the distance's comparison. For a nearest query that equals `passes_threshold`;
    for recommend / discover / context, which always rank bigger-first, a Euclid or
    Manhattan collection then keeps everything if the best score is below the threshold
    and nothing otherwise. That is what both answer, so it is what we answer.
    """
    arr = np.asarray(ordered_scores)
    if threshold is None:
        return int(arr.shape[0])
    failing = np.flatnonzero(~passes_threshold(arr, threshold, distance))
    return int(failing[0]) if failing.size else int(arr.shape[0])
