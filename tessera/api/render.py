"""Rendering engine results into Qdrant's JSON shapes, and parsing the selectors that drive it
(`with_payload`, `with_vector`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from tessera.errors import BadRequest
from tessera.ids import render_point_id
from tessera.shard.read import PointRef


@dataclass(frozen=True)
class PayloadSelector:
    enabled: bool
    include: list[str] | None = None
    exclude: list[str] | None = None

    def apply(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        if self.include is not None:
            out: dict[str, Any] = {}
            for key in self.include:
                _copy_path(payload, out, key.split("."))
            return out
        if self.exclude is not None:
            out = copy.deepcopy(payload)
            for key in self.exclude:
                _drop_path(out, key.split("."))
            return out
        return payload


def _copy_path(src: dict[str, Any], dst: dict[str, Any], parts: list[str]) -> None:
    head = parts[0].removesuffix("[]")
    if head not in src:
        return
    if len(parts) == 1:
        dst[head] = src[head]
        return
    child = src[head]
    if isinstance(child, dict):
        sub = dst.setdefault(head, {})
        if isinstance(sub, dict):
            _copy_path(child, sub, parts[1:])
    elif isinstance(child, list):
        items = []
        for item in child:
            if isinstance(item, dict):
                sub_item: dict[str, Any] = {}
                _copy_path(item, sub_item, parts[1:])
                items.append(sub_item)
        dst[head] = items


def _drop_path(node: Any, parts: list[str]) -> None:
    head = parts[0].removesuffix("[]")
    if isinstance(node, list):
        for item in node:
            _drop_path(item, parts)
        return
    if not isinstance(node, dict) or head not in node:
        return
    if len(parts) == 1:
        del node[head]
    else:
        _drop_path(node[head], parts[1:])


def parse_payload_selector(raw: Any, default: bool) -> PayloadSelector:
    if raw is None:
        return PayloadSelector(default)
    if isinstance(raw, bool):
        return PayloadSelector(raw)
    if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
        return PayloadSelector(True, include=list(raw))
    if isinstance(raw, dict):
        if isinstance(raw.get("include"), list):
            return PayloadSelector(True, include=list(raw["include"]))
        if isinstance(raw.get("exclude"), list):
            return PayloadSelector(True, exclude=list(raw["exclude"]))
    raise BadRequest(
        "Format error in JSON body: with_payload must be a bool, a list of keys or "
        "{include|exclude: [...]}"
    )


@dataclass(frozen=True)
class VectorSelector:
    enabled: bool
    names: list[str] | None = None


def parse_vector_selector(raw: Any) -> VectorSelector:
    if raw is None:
        return VectorSelector(False)
    if isinstance(raw, bool):
        return VectorSelector(raw)
    if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
        return VectorSelector(True, list(raw))
    raise BadRequest("Format error in JSON body: with_vector must be a bool or a list of names")


def render_vectors(ref: PointRef, selector: VectorSelector, unnamed: bool) -> Any:
    """A bare list when the collection has only its unnamed dense vector; otherwise a map
    by name ('' for the unnamed one), holding the vectors the point has."""
    if not selector.enabled:
        return None
    segment = ref.segment
    only_unnamed = unnamed and len(segment.storages) == 1
    if only_unnamed and selector.names is None:
        return segment.vector_at(ref.offset, "")
    names = selector.names if selector.names is not None else list(segment.storages)
    out: dict[str, Any] = {}
    for name in names:
        value = segment.vector_at(ref.offset, name)
        if value is not None:
            out[name] = value
    if only_unnamed and "" in out and len(out) == 1:
        return out[""]
    return out


def render_record(
    ref: PointRef, payload: PayloadSelector, vectors: VectorSelector, unnamed: bool
) -> dict[str, Any]:
    return {
        "id": render_point_id(ref.id),
        "payload": payload.apply(ref.segment.payload_at(ref.offset)),
        "vector": render_vectors(ref, vectors, unnamed),
    }


def render_scored(
    ref: PointRef, score: float, payload: PayloadSelector, vectors: VectorSelector, unnamed: bool
) -> dict[str, Any]:
    return {
        "id": render_point_id(ref.id),
        "version": int(ref.segment.versions[ref.offset]),
        "score": score,
        "payload": payload.apply(ref.segment.payload_at(ref.offset)),
        "vector": render_vectors(ref, vectors, unnamed),
    }
