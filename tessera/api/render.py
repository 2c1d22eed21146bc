"""The selectors that say what a read answers (`with_payload`, `with_vector`), parsed from
JSON, and the collection's plain answers rendered into Qdrant's JSON shapes."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from typing import TYPE_CHECKING, Any

from tessera.api.float_render import f32_scores, f32_vector
from tessera.collection.values import (
    CollectionInfo,
    PayloadSelector,
    Points,
    Record,
    Selection,
    VectorSelector,
)
from tessera.collection_config import CollectionConfig, config_warnings
from tessera.errors import BadRequest
from tessera.ids import render_point_id
from tessera.query.payload_path import check_paths

if TYPE_CHECKING:
    from tessera.collection.collection import Collection


def parse_payload_selector(raw: Any, default: bool) -> PayloadSelector:
    if raw is None:
        return PayloadSelector(default)
    if isinstance(raw, bool):
        return PayloadSelector(raw)
    if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
        return PayloadSelector(True, include=check_paths(list(raw)))
    # {"include": [...]} or {"exclude": [...]}, nothing else beside (Qdrant's selectors
    # refuse unknown fields)
    if isinstance(raw, dict) and len(raw) == 1:
        if isinstance(raw.get("include"), list):
            return PayloadSelector(True, include=check_paths(list(raw["include"])))
        if isinstance(raw.get("exclude"), list):
            return PayloadSelector(True, exclude=check_paths(list(raw["exclude"])))
    raise BadRequest(
        "Format error in JSON body: data did not match any variant of untagged enum "
        "WithPayloadInterface"
    )


def parse_vector_selector(raw: Any) -> VectorSelector:
    if raw is None:
        return VectorSelector(False)
    if isinstance(raw, bool):
        return VectorSelector(raw)
    if isinstance(raw, list) and all(isinstance(k, str) for k in raw):
        return VectorSelector(True, list(raw))
    raise BadRequest("Format error in JSON body: with_vector must be a bool or a list of names")


def parse_selection(body: dict[str, Any], payload_default: bool = False) -> Selection:
    """`with_payload` and `with_vector` (or its alias `with_vectors`) of a read body."""
    return Selection(
        parse_payload_selector(body.get("with_payload"), default=payload_default),
        parse_vector_selector(body.get("with_vector", body.get("with_vectors"))),
    )


def check_vector_names(select: Selection, config: CollectionConfig) -> None:
    """`with_vector` naming a vector the collection does not have is a 400 in Qdrant."""
    for name in select.vectors.names or ():
        if name not in config.vectors and name not in config.sparse_vectors:
            raise BadRequest(f"Wrong input: Not existing vector name error: {name}")


def _column(values: list[Any] | None, n: int) -> Iterable[Any]:
    return values if values is not None else repeat(None, n)


def _rendered_ids(ids: list[Any]) -> list[Any]:
    rid = render_point_id
    return [pid if type(pid) is int else rid(pid) for pid in ids]


def render_records(points: Points) -> list[dict[str, Any]]:
    """Qdrant's `Record`s (retrieve, scroll); scroll by `order_by` adds `order_value`."""
    out = [{"id": pid} for pid in _rendered_ids(points.ids)]
    _add_selected(out, points)
    if points.order_values is not None:
        _add_order_values(out, points.order_values)
    if points.shard_keys is not None:
        _add_shard_keys(out, points.shard_keys)
    return out


def render_record(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"id": render_point_id(record.id)}
    if record.payload is not None:
        out["payload"] = record.payload
    if record.vector is not None:
        out["vector"] = f32_vector(record.vector)
    return out


def render_scored(points: Points) -> list[dict[str, Any]]:
    """Qdrant's `ScoredPoint`s; hits of an `order_by` query add `order_value`."""
    n = len(points.ids)
    out = [
        {"id": pid, "version": version, "score": score}
        for pid, version, score in zip(
            _rendered_ids(points.ids),
            _column(points.versions, n),
            _column(f32_scores(points.scores), n),
        )
    ]
    _add_selected(out, points)
    if points.order_values is not None:
        _add_order_values(out, points.order_values)
    if points.shard_keys is not None:
        _add_shard_keys(out, points.shard_keys)
    return out


def _add_selected(out: list[dict[str, Any]], points: Points) -> None:
    """The payload and vector of each point, where the request selected them: as Qdrant,
    a field a point does not answer is left out, not null."""
    if points.payloads is not None:
        for point, payload in zip(out, points.payloads, strict=True):
            if payload is not None:
                point["payload"] = payload
    if points.vectors is not None:
        for point, vector in zip(out, map(f32_vector, points.vectors), strict=True):
            if vector is not None:
                point["vector"] = vector


def _add_shard_keys(out: list[dict[str, Any]], keys: list[Any]) -> None:
    """Custom sharding: the key each point was found under, as Qdrant answers it."""
    for point, key in zip(out, keys, strict=True):
        if key is not None:
            point["shard_key"] = key


def _add_order_values(out: list[dict[str, Any]], values: list[Any]) -> None:
    for point, value in zip(out, values, strict=True):
        if value is not None:
            point["order_value"] = value


def render_info(info: CollectionInfo) -> dict[str, Any]:
    """Qdrant's `CollectionInfo`: a damaged collection is status red with the reason in the
    optimizer's error slot."""
    schema = {key: {**idx.schema, "points": idx.points} for key, idx in info.payload_schema.items()}
    out = {
        "status": info.status,
        "optimizer_status": {"error": "; ".join(info.damage)} if info.damage else "ok",
        "indexed_vectors_count": info.indexed_vectors_count,
        "points_count": info.points_count,
        "segments_count": info.segments_count,
        "config": info.config.to_json(),
        "payload_schema": schema,
        "update_queue": {"length": 0},
    }
    if info.config.created_at is not None:
        out["created_at"] = info.config.created_at
    return out


def info_parts(collection: Collection) -> tuple[CollectionInfo, list[str], int]:
    """A collection's info and what Qdrant adds to it, for either transport to render: the
    warnings of its config and the points `prevent_unoptimized` holds back."""
    return collection.info(), config_warnings(collection.config), collection.deferred_points()


def collection_info(collection: Collection) -> dict[str, Any]:
    state, warnings, deferred = info_parts(collection)
    info = render_info(state)
    if warnings:  # as Qdrant: the key only when there is something to say
        info["warnings"] = [{"message": message} for message in warnings]
    if deferred and isinstance(info.get("update_queue"), dict):
        info["update_queue"]["deferred_points"] = deferred
    return info
