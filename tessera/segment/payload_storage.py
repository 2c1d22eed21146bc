"""Payloads kept on disk (`on_disk_payload: true`, Qdrant's default): read from a map of the
segment's payload file and decoded on each access, so only the field indexes stay in memory.

Immutable segments only: their payloads never change in place (an edit copies the point into
the appendable segment), so the file they map is final. The layout is the payload array file
of tessera.segment.persist (`starts` u64, `data` u8).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import orjson

Payload = dict[str, Any] | None


class MappedPayloads:
    """A read-only sequence of payloads by offset, decoded from mapped JSON on access."""

    def __init__(self, starts: npt.NDArray[np.uint64], data: npt.NDArray[np.uint8]) -> None:
        # A plain ndarray over the mapped bytes: `np.memmap.__getitem__` is Python code, run
        # twice per payload read (~0.6 us each).
        self._starts = np.asarray(starts)
        self._data = data.data if len(data) else memoryview(b"")

    def __len__(self) -> int:
        return len(self._starts) - 1

    @overload
    def __getitem__(self, offset: int) -> Payload: ...

    @overload
    def __getitem__(self, offset: slice) -> list[Payload]: ...

    def __getitem__(self, offset: int | slice) -> Payload | list[Payload]:
        if isinstance(offset, slice):
            return [self[i] for i in range(*offset.indices(len(self)))]
        if offset < 0:
            offset += len(self)
        if not 0 <= offset < len(self):
            raise IndexError(offset)
        a, b = int(self._starts[offset]), int(self._starts[offset + 1])
        if a == b:
            return None
        decoded: dict[str, Any] = orjson.loads(self._data[a:b])
        return decoded

    def __iter__(self) -> Iterator[Payload]:
        for i in range(len(self)):
            yield self[i]

    def many(self, offsets: list[int]) -> list[Payload]:
        """The payloads at `offsets` (valid offsets), read with one lookup of their bounds."""
        rows = np.asarray(offsets, dtype=np.int64)
        firsts = self._starts[rows].tolist()
        ends = self._starts[rows + 1].tolist()
        data = self._data
        loads = orjson.loads
        return [None if a == b else loads(data[a:b]) for a, b in zip(firsts, ends, strict=True)]
