"""The segment holder: every segment of a shard, exactly one of them appendable."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np

from tessera.collection_config import CollectionConfig
from tessera.ids import PointId
from tessera.segment.segment import Segment


class SegmentHolder:
    def __init__(self, config: CollectionConfig) -> None:
        self.config = config
        self.segments: list[Segment] = []
        # Payload indexes of the collection: key -> schema JSON as the user gave it.
        self.index_schemas: dict[str, Any] = {}

    @property
    def appendable(self) -> Segment:
        for segment in reversed(self.segments):
            if segment.appendable:
                return segment
        segment = Segment(uuid.uuid4().hex, self.config, appendable=True)
        for key, schema in self.index_schemas.items():
            segment.create_field_index(key, schema)
        self.segments.append(segment)
        return segment

    def locate(self, pid: PointId) -> tuple[Segment, int] | None:
        for segment in self.segments:
            off = segment.offset_of(pid)
            if off is not None:
                return segment, off
        return None

    def missing(self, ids: Iterable[PointId]) -> list[PointId]:
        return [pid for pid in ids if self.locate(pid) is None]

    def contains(self, pid: PointId) -> bool:
        return self.locate(pid) is not None

    def live_count(self) -> int:
        # (a C map, no generator: the unindexed-field watch asks after every filtered read)
        return sum(map(Segment.live_count, self.segments))

    def writable_offsets(self, ids: list[PointId], seq: int) -> np.ndarray[Any, Any]:
        """Offsets in the appendable segment of the existing points among `ids`.

        Points living in an immutable segment are copied into the appendable one first
        (copy-on-write), so that immutable segments only ever lose points.
        """
        target = self.appendable
        offsets: list[int] = []
        seen: set[PointId] = set()
        for pid in ids:
            if pid in seen:
                continue
            seen.add(pid)
            found = self.locate(pid)
            if found is None:
                continue
            segment, off = found
            if segment is not target:
                new_off = target.copy_point_from(segment, off, seq)
                segment.delete(np.asarray([off], dtype=np.int64), seq)
                off = new_off
            offsets.append(off)
        return np.asarray(offsets, dtype=np.int64)
