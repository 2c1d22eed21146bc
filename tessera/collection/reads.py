"""Points found under a shard's read lock, turned into plain `Points` before it is released.

The shard and the query executor answer points by where they live (`PointRef`: segment,
offset); these functions read what the request selected of each (id, payload, vectors,
version) while the caller still holds the read lock, so that nothing handed to a transport
refers to a segment. Column by column: one pass per selected field, no object per point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import orjson

from tessera import hw_meter
from tessera.collection.values import PayloadSelector, Points, Selection, VectorSelector
from tessera.execution.query_exec import Hit
from tessera.query import query_model as qm
from tessera.segment.segment import Segment
from tessera.shard.read import PointRef, refs_in
from tessera.shard.search import Run, ScoredRef

VectorReader = Callable[[Segment, int], Any]

# A hit's fields by position, in C (Hit and ScoredRef both start with score, ref); a
# PointRef's.
_SCORE, _REF = itemgetter(0), itemgetter(1)
_SEGMENT, _OFFSET = itemgetter(0), itemgetter(1)


def vector_reader(selector: VectorSelector, unnamed: bool) -> VectorReader | None:
    """How to read a point's selected vectors: as Qdrant renders a point's vectors, a bare
    value when all the point answers is the unnamed vector (even where the collection also
    has sparse vectors the point lacks), otherwise a map by name of the vectors it has.
    None when no vector is selected."""
    if not selector.enabled:
        return None
    wanted = selector.names

    def read(segment: Segment, offset: int) -> Any:
        if unnamed and wanted is None and len(segment.storages) == 1:
            value = segment.vector_at(offset, "")
            return {} if value is None else value
        names = wanted if wanted is not None else list(segment.storages)
        out: dict[str, Any] = {}
        for name in names:
            value = segment.vector_at(offset, name)
            if value is not None:
                out[name] = value
        if len(out) == 1 and "" in out:
            return out[""]
        return out

    return read


def _payloads(refs: Sequence[PointRef], selector: PayloadSelector) -> list[Any] | None:
    if not selector.enabled:
        return None
    found = _read_payloads(refs)
    if selector.include is None and selector.exclude is None:  # the whole payload
        return found
    apply = selector.apply
    return [apply(p) for p in found]


def _read_payloads(refs: Sequence[PointRef]) -> list[dict[str, Any]]:
    """The payload of each ref, read segment by segment in one batch each (a segment's
    mapped payloads decode without a Python lookup per point)."""
    found = _per_segment(refs, Segment.payloads_at, Segment.payload_at, small_batch=False)
    meter = hw_meter.current()
    if meter is not None:
        # Qdrant counts the payload bytes read from its on-disk payload storage.
        on_disk = [p for ref, p in zip(refs, found, strict=True) if _mapped(ref.segment)]
        meter.payload_io_read += len(orjson.dumps(on_disk)) - 2 if on_disk else 0
    return found


def _mapped(segment: Segment) -> bool:
    """Whether the segment's payloads are read from their file (`on_disk_payload`)."""
    return getattr(segment.payloads, "many", None) is not None


def _ids(refs: Sequence[PointRef]) -> list[Any]:
    return _per_segment(refs, Segment.external_ids_at, Segment.external_id_at)


_BATCH_FROM = 16


def _per_segment(
    refs: Sequence[PointRef],
    batch: Callable[[Segment, list[int]], list[Any]],
    one: Callable[[Segment, int], Any],
    small_batch: bool = True,
) -> list[Any]:
    """`batch` over the offsets of each segment, answers in the order of `refs`. The usual
    case, every ref in one segment, takes one call. A few refs (a top-10) in several
    segments, or with `small_batch` false, go one by one: a batch's numpy calls cost more
    than they save there (`Segment.external_ids_at` reads a few one by one itself)."""
    if small_batch or len(refs) >= _BATCH_FROM:
        sole = _sole_segment(refs)
        if sole is not None:
            return batch(sole, list(map(_OFFSET, refs)))
    if len(refs) < _BATCH_FROM:
        return [one(seg, off) for seg, off in refs]
    groups: dict[int, tuple[Segment, list[int], list[int]]] = {}
    for i, (seg, off) in enumerate(refs):
        group = groups.get(id(seg))
        if group is None:
            group = groups[id(seg)] = (seg, [], [])
        group[1].append(i)
        group[2].append(off)
    out: list[Any] = [None] * len(refs)
    for seg, positions, offsets in groups.values():
        for i, value in zip(positions, batch(seg, offsets), strict=True):
            out[i] = value
    return out


def _sole_segment(refs: Sequence[PointRef]) -> Segment | None:
    """The segment of every ref when they all live in one (the usual case), else None. In C
    calls: a top-10 asks per query, and a Python step per ref cost more than the reads."""
    if not refs:
        return None
    segments = list(map(_SEGMENT, refs))
    first = segments[0]
    # list.count compares by identity first, and a Segment has no other equality
    return first if segments.count(first) == len(segments) else None


def qdrant_operation(seq: int) -> int:
    """An operation's number as Qdrant shows it (`operation_id`, a point's `version`): Qdrant
    counts from 0 (its first upsert answers `operation_id: 0`, and its points carry version
    0), where the WAL counts from 1 (0 stands for "before any operation")."""
    return seq - 1 if seq > 0 else 0


def _versions(refs: Sequence[PointRef]) -> list[int]:
    sole = _sole_segment(refs)
    if sole is not None:
        seqs = list(map(sole.versions.item, map(_OFFSET, refs)))
    else:
        seqs = [seg.versions.item(off) for seg, off in refs]
    return list(map(qdrant_operation, seqs))


def points(refs: Sequence[PointRef], select: Selection, unnamed: bool) -> Points:
    """Points as they are (no version, no score), in the order given."""
    read = vector_reader(select.vectors, unnamed)
    return Points(
        _ids(refs),
        _payloads(refs, select.payload),
        None if read is None else [read(seg, off) for seg, off in refs],
    )


def ordered_points(rows: list[tuple[PointRef, Any]], select: Selection, unnamed: bool) -> Points:
    """Points of a scroll by payload value, each with the value it was ordered by."""
    found = points([ref for ref, _ in rows], select, unnamed)
    found.order_values = [value for _, value in rows]
    return found


def scored_points(
    hits: Sequence[Hit] | Sequence[ScoredRef], select: Selection, unnamed: bool
) -> Points:
    """Scored points with their version and score (and the order values of an `order_by`
    query's hits)."""
    refs: list[PointRef] = list(map(_REF, hits))
    found = points(refs, select, unnamed)
    found.versions = _versions(refs)
    found.scores = list(map(_SCORE, hits))
    if hits and isinstance(hits[0], Hit):
        values = [hit.order_value for hit in hits]  # type: ignore[union-attr]
        if values.count(None) != len(values):
            found.order_values = values
    return found


def run_points(run: Run, select: Selection, unnamed: bool) -> Points:
    """`scored_points` of a search's hits that all come from one segment (`Run`): ids and
    versions read by offset in C maps, refs made only for what reads them (a selected
    payload or vector)."""
    segment, offsets = run.segment, run.offsets
    if select.payload.enabled or select.vectors.enabled:
        found = points(refs_in(segment, offsets), select, unnamed)
    else:
        found = Points(segment.external_ids_at(offsets))
    found.versions = list(map(qdrant_operation, map(segment.versions.item, offsets)))
    found.scores = run.scores
    return found


def plan_points(hits: Sequence[Hit], plan: qm.Plan, select: Selection, unnamed: bool) -> Points:
    """A Query API plan's scored points. A root that reads without scoring (no query and
    no prefetch, an `order_by` or a sample, over prefetches too: their rescoring is a
    scroll of the prefetched ids) is Qdrant's `query_scroll`, whose points carry version 0."""
    found = scored_points(hits, select, unnamed)
    root = plan.root
    if isinstance(root.query, qm.OrderBy | qm.Sample) or (root.query is None and not root.prefetch):
        found.versions = [0] * len(found)
    return found


def external_inputs(plans: list[qm.Plan], own: str) -> dict[tuple[str, str], set[Any]]:
    """The point ids whose vectors the plans take from other collections (`lookup_from`),
    by (collection, vector name)."""
    wanted: dict[tuple[str, str], set[Any]] = {}
    for plan in plans:
        _lookups(plan.root, own, wanted)
    return wanted


def _lookups(node: qm.QueryNode, own: str, out: dict[tuple[str, str], set[Any]]) -> None:
    lookup = node.lookup_from
    if lookup is not None and lookup.collection != own:
        # named even when the query takes no point from it: as in Qdrant, a missing
        # `lookup_from` collection is a 404 whatever the query
        name = lookup.vector if lookup.vector is not None else node.using
        out.setdefault((lookup.collection, name), set()).update(qm.referenced_ids(node.query))
    for child in node.prefetch:
        _lookups(child, own, out)
