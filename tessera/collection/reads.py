"""Points found under a shard's read lock, turned into plain `Record`s before it is released.

The shard and the query executor answer points by where they live (`PointRef`: segment,
offset); these functions read what the request selected of each (id, payload, vectors,
version) while the caller still holds the read lock, so that nothing handed to a transport
refers to a segment. One pass per point, no copies beyond what the selection asks for.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from tessera.collection.values import Record, Selection, VectorSelector
from tessera.execution.query_exec import Hit
from tessera.query import query_model as qm
from tessera.segment.segment import Segment
from tessera.shard.read import PointRef
from tessera.shard.search import ScoredRef

# Record((id, payload, vector, version, score, order_value)) without NamedTuple's
# Python-level __new__: a page of results builds many of these.
new_record: Callable[[tuple[Any, ...]], Record] = functools.partial(tuple.__new__, Record)  # type: ignore[assignment]

VectorReader = Callable[[Segment, int], Any]


def vector_reader(selector: VectorSelector, unnamed: bool) -> VectorReader | None:
    """How to read a point's selected vectors: a bare list when the collection has only its
    unnamed dense vector, otherwise a map by name ('' for the unnamed one) of the vectors
    the point has. None when no vector is selected."""
    if not selector.enabled:
        return None
    wanted = selector.names

    def read(segment: Segment, offset: int) -> Any:
        only_unnamed = unnamed and len(segment.storages) == 1
        if only_unnamed and wanted is None:
            return segment.vector_at(offset, "")
        names = wanted if wanted is not None else list(segment.storages)
        out: dict[str, Any] = {}
        for name in names:
            value = segment.vector_at(offset, name)
            if value is not None:
                out[name] = value
        if only_unnamed and "" in out and len(out) == 1:
            return out[""]
        return out

    return read


def records(refs: Iterable[PointRef], select: Selection, unnamed: bool) -> list[Record]:
    """Points as records (no version, no score), in the order given."""
    apply = select.payload.apply
    vectors = vector_reader(select.vectors, unnamed)
    if vectors is None:
        return [
            new_record((seg.ext_ids[off], apply(seg.payload_at(off)), None, None, None, None))
            for seg, off in refs
        ]
    return [
        new_record(
            (seg.ext_ids[off], apply(seg.payload_at(off)), vectors(seg, off), None, None, None)
        )
        for seg, off in refs
    ]


def ordered_records(
    rows: list[tuple[PointRef, Any]], select: Selection, unnamed: bool
) -> list[Record]:
    """Points of a scroll by payload value, each with the value it was ordered by."""
    apply = select.payload.apply
    vectors = vector_reader(select.vectors, unnamed)
    return [
        new_record(
            (
                seg.ext_ids[off],
                apply(seg.payload_at(off)),
                None if vectors is None else vectors(seg, off),
                None,
                None,
                value,
            )
        )
        for (seg, off), value in rows
    ]


def scored_records(
    hits: Iterable[Hit | ScoredRef], select: Selection, unnamed: bool
) -> list[Record]:
    """Scored points as records with their version and score (and order value for hits of
    an `order_by` query)."""
    apply = select.payload.apply
    vectors = vector_reader(select.vectors, unnamed)
    out: list[Record] = []
    append = out.append
    for hit in hits:
        seg, off = hit.ref
        append(
            new_record(
                (
                    seg.ext_ids[off],
                    apply(seg.payload_at(off)),
                    None if vectors is None else vectors(seg, off),
                    int(seg.versions[off]),
                    hit.score,
                    hit.order_value if isinstance(hit, Hit) else None,
                )
            )
        )
    return out


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
        ids = qm.referenced_ids(node.query)
        if ids:
            name = lookup.vector if lookup.vector is not None else node.using
            out.setdefault((lookup.collection, name), set()).update(ids)
    for child in node.prefetch:
        _lookups(child, own, out)
