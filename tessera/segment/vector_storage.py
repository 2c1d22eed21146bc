"""Vector storages of one segment, addressed by offset.

Dense vectors live in one growable numpy matrix per name (in the configured datatype) with a
`present` mask, so scoring a segment is one matrix product. Sparse vectors and multivectors
are kept per offset and packed into a CSR matrix / flat matrix on demand for scoring; the
packed form is cached until the next write.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.query import turbo

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# turbo rows are codes and a scale (tessera.query.turbo), each turbo datatype a dtype of its own.
_NP_DTYPE: dict[str, type[np.generic]] = {
    "float32": np.float32, "float16": np.float16, "uint8": np.uint8, **turbo.ROW_DTYPES
}  # fmt: skip


def _row_width(dim: int, datatype: str) -> int:
    return turbo.row_width(dim, datatype) if datatype in turbo.ROW_DTYPES else dim


def _to_float32(rows: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    if turbo.is_rows(rows):
        return turbo.decode(rows)
    return rows.astype(np.float32)


def _grow(arr: npt.NDArray[Any], needed: int) -> npt.NDArray[Any]:
    if needed <= arr.shape[0]:
        return arr
    cap = max(needed, arr.shape[0] * 2, 64)
    out = np.zeros((cap, *arr.shape[1:]), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


class DenseStorage:
    kind = "dense"

    def __init__(
        self,
        dim: int,
        datatype: str,
        matrix: npt.NDArray[Any] | None = None,
        present: BoolArray | None = None,
    ) -> None:
        self.dim = dim
        self.datatype = datatype
        self.matrix: npt.NDArray[Any] = (
            matrix
            if matrix is not None
            else np.zeros((0, _row_width(dim, datatype)), dtype=_NP_DTYPE[datatype])
        )
        self.present: BoolArray = present if present is not None else np.zeros(0, dtype=bool)

    def ensure(self, size: int) -> None:
        if size > self.matrix.shape[0] or not self.matrix.flags.writeable:
            self.matrix = _grow(np.array(self.matrix), size)
        if size > self.present.shape[0] or not self.present.flags.writeable:
            self.present = _grow(np.array(self.present), size)

    def write(self, offsets: IntArray, values: npt.NDArray[Any]) -> None:
        """`values` are already in the storage dtype (see query.scoring.prepare_stored)."""
        self.ensure(int(offsets.max()) + 1 if len(offsets) else 0)
        self.matrix[offsets] = values
        self.present[offsets] = True

    def clear(self, offsets: IntArray) -> None:
        if len(offsets):
            self.ensure(int(offsets.max()) + 1)
            self.present[offsets] = False

    def has(self, size: int) -> BoolArray:
        out = np.zeros(size, dtype=bool)
        n = min(size, self.present.shape[0])
        out[:n] = self.present[:n]
        return out

    def get(self, offset: int) -> Any:
        if offset < self.present.shape[0] and self.present[offset]:
            return _to_float32(self.matrix[offset]).tolist()
        return None

    def rows(self, size: int) -> npt.NDArray[Any]:
        """The first `size` rows for reading (never copies a mapped or shared matrix)."""
        if self.matrix.shape[0] >= size:
            return self.matrix[:size]
        return _grow(np.array(self.matrix), size)[:size]


class ObjectStorage:
    """Sparse vectors ((indices, values) per offset) or multivectors ((m, d) per offset)."""

    def __init__(
        self, kind: str, dim: int, datatype: str = "float32", items: list[Any] | None = None
    ) -> None:
        self.kind = kind
        self.dim = dim
        self.datatype = datatype
        self.items: list[Any] = items if items is not None else []
        self._packed: Any = None
        # Multivector rows held, kept up to date on write: the optimizer sizes segments by it.
        self.rows_total = sum(len(x) for x in self.items if x is not None) if kind == "multi" else 0
        # Sparse: the pairs each offset holds (0 without a vector), zero past the items;
        # derived on first use (`sparse_lengths`), then kept up to date on write.
        self._lengths: IntArray | None = None

    def set_items(self, items: list[Any]) -> None:
        self.items = items
        self._packed = None
        self._lengths = None
        self.rows_total = sum(len(x) for x in items if x is not None) if self.kind == "multi" else 0

    def ensure(self, size: int) -> None:
        if size > len(self.items):
            self.items.extend([None] * (size - len(self.items)))
        if self._lengths is not None:
            self._lengths = _grow(self._lengths, size)

    def write_items(self, offsets: IntArray, values: list[Any]) -> None:
        self.ensure(int(offsets.max()) + 1 if len(offsets) else 0)
        lengths = self._lengths
        for off, val in zip(offsets.tolist(), values, strict=True):
            if self.kind == "multi":
                old = self.items[off]
                self.rows_total += (0 if val is None else len(val)) - (
                    0 if old is None else len(old)
                )
            elif lengths is not None:
                lengths[off] = 0 if val is None else len(val[0])
            self.items[off] = val
        self._packed = None

    def clear(self, offsets: IntArray) -> None:
        self.ensure(int(offsets.max()) + 1 if len(offsets) else 0)
        for off in offsets.tolist():
            old = self.items[off]
            if self.kind == "multi" and old is not None:
                self.rows_total -= len(old)
            self.items[off] = None
        if self._lengths is not None and len(offsets):
            self._lengths[offsets] = 0
        self._packed = None

    def sparse_lengths(self, size: int) -> IntArray:
        """How many pairs the sparse vector at each of the first `size` offsets holds (0
        where there is none), without a walk over the items once derived: a view, to read
        before the next write."""
        assert self.kind == "sparse"
        if self._lengths is None:
            self._lengths = np.fromiter(
                (0 if x is None else len(x[0]) for x in self.items),
                dtype=np.int64,
                count=len(self.items),
            )
        self._lengths = _grow(self._lengths, size)
        return self._lengths[:size]

    def has(self, size: int) -> BoolArray:
        out = np.zeros(size, dtype=bool)
        n = min(size, len(self.items))
        if n:
            out[:n] = np.fromiter((x is not None for x in self.items[:n]), dtype=bool, count=n)
        return out

    def get(self, offset: int) -> Any:
        if offset >= len(self.items) or self.items[offset] is None:
            return None
        val = self.items[offset]
        if self.kind == "sparse":
            idx, vals = val
            return {"indices": idx.tolist(), "values": vals.tolist()}
        return _to_float32(np.asarray(val)).tolist()

    def packed(self, size: int) -> Any:
        """CSR matrix (sparse) or (flat rows, row starts) (multi), cached until a write."""
        if self._packed is not None and self._packed[0] == size:
            return self._packed[1]
        self.ensure(size)
        if self.kind == "sparse":
            from tessera.query.sparse import build_sparse

            # An inverted index (CSC over the used indices): a query touches only its columns.
            packed: Any = build_sparse(self.items[:size])
        else:
            packed = pack_multi(self.items[:size], self.dim)
        self._packed = (size, packed)
        return packed


def pack_multi(items: list[Any], dim: int) -> tuple[npt.NDArray[np.float32], IntArray]:
    counts = np.fromiter(
        (0 if x is None else len(x) for x in items), dtype=np.int64, count=len(items)
    )
    starts = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    present = [x for x in items if x is not None]
    if present:
        flat = _to_float32(np.concatenate(present))
    else:
        flat = np.zeros((0, dim), dtype=np.float32)
    return flat, starts
