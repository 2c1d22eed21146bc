"""Point update requests -> the collection's writes (tessera.collection.writes).

Parsing checks everything that does not depend on stored state; the `Write` the collection
builds from the parsed values runs under the shard's write lock and checks what does
(points that must exist), resolving filters to ids so that the WAL record is explicit.
"""

from __future__ import annotations

from typing import Any

from tessera.api.vectors_parse import build_columns, normalize_vector_struct
from tessera.collection import writes
from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest, UnprocessableEntity
from tessera.ids import PointId, not_a_point_id, parse_point_id
from tessera.query.filter_parse import parse_filter

Prepare = writes.Write

UPDATE_MODES = writes.UPDATE_MODES


def _obj(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest(f"Format error in JSON body: {what} must be an object")
    return raw


def _payload(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadRequest("Format error in JSON body: payload must be a JSON object")
    return raw


def body_point_id(raw: Any) -> PointId:
    """A point id of a JSON body: what is neither an u64 nor a UUID fails to deserialize,
    in the words of Qdrant's `ExtendedPointId` deserializer (400)."""
    try:
        return parse_point_id(raw)
    except BadRequest:
        raise BadRequest(f"Format error in JSON body: {not_a_point_id(raw)}") from None


def parse_ids(raw: Any) -> list[PointId]:
    if not isinstance(raw, list):
        raise BadRequest("Format error in JSON body: `points` must be a list of ids")
    return [body_point_id(x) for x in raw]


def parse_upsert(config: CollectionConfig, body: dict[str, Any]) -> Prepare:
    if "points" in body and "batch" not in body:
        points = body["points"]
        if not isinstance(points, list):
            raise BadRequest("Format error in JSON body: `points` must be a list")
        ids: list[PointId] = []
        vectors: list[dict[str, Any]] = []
        payloads: list[dict[str, Any] | None] = []
        for p in points:
            p = _obj(p, "point")
            if "id" not in p:
                raise BadRequest("Format error in JSON body: missing field `id`")
            ids.append(body_point_id(p["id"]))
            vectors.append(normalize_vector_struct(_vector_field(p)))
            payloads.append(_payload(p.get("payload")))
    elif "batch" in body:
        ids, vectors, payloads = _parse_batch(_obj(body["batch"], "batch"))
    else:
        raise BadRequest("Format error in JSON body: expected `points` or `batch`")
    columns = build_columns(config, vectors, points="batch" not in body)
    update_filter = parse_filter(body.get("update_filter"))
    mode = body.get("update_mode") or "upsert"
    if mode not in UPDATE_MODES:
        raise BadRequest(
            f"Format error in JSON body: unknown variant `{mode}`, expected one of "
            "`upsert`, `insert_only`, `update_only`"
        )
    return writes.upsert(ids, columns, payloads, update_filter, mode)


def _vector_field(point: dict[str, Any]) -> Any:
    """A point's `vector` (alias `vectors`): required, as in Qdrant's PointStruct (`{}` is a
    point without vectors)."""
    raw = point.get("vector", point.get("vectors"))
    if raw is None:
        if "vector" in point or "vectors" in point:
            raise BadRequest(
                "Format error in JSON body: data did not match any variant of untagged enum "
                "VectorStruct"
            )
        raise BadRequest("Format error in JSON body: missing field `vector`")
    return raw


def _bad_batch_vectors() -> BadRequest:
    return BadRequest(
        "Format error in JSON body: data did not match any variant of untagged enum "
        "BatchVectorStruct"
    )


def _parse_batch(
    batch: dict[str, Any],
) -> tuple[list[PointId], list[dict[str, Any]], list[dict[str, Any] | None]]:
    ids = parse_ids(batch.get("ids"))
    n = len(ids)
    raw_vectors = batch.get("vectors")
    vectors: list[dict[str, Any]]
    if isinstance(raw_vectors, list):
        if len(raw_vectors) != n:
            raise _batch_mismatch("vectors", n, len(raw_vectors))
        vectors = [{"": v} for v in raw_vectors]
    elif isinstance(raw_vectors, dict):
        vectors = [{} for _ in range(n)]
        for name, column in raw_vectors.items():
            if not isinstance(column, list):
                raise _bad_batch_vectors()
            if len(column) != n:
                raise _batch_mismatch("vectors", n, len(column))
            if any(v is None for v in column):  # null is none of a vector's forms
                raise _bad_batch_vectors()
            for i, v in enumerate(column):
                vectors[i][name] = v
    elif "vectors" not in batch:  # required in Qdrant's `Batch` (`{}`: no vectors)
        raise BadRequest("Format error in JSON body: missing field `vectors`")
    else:
        raise _bad_batch_vectors()
    raw_payloads = batch.get("payloads")
    if raw_payloads is None:
        payloads: list[dict[str, Any] | None] = [None] * n
    elif not isinstance(raw_payloads, list):
        raise BadRequest("Format error in JSON body: `payloads` must be a list")
    elif len(raw_payloads) == n:
        payloads = [_payload(p) for p in raw_payloads]
    else:
        raise _batch_mismatch("payloads", n, len(raw_payloads))
    return ids, vectors, payloads


def _batch_mismatch(what: str, ids: int, got: int) -> UnprocessableEntity:
    """Qdrant's `Batch` validation (422), with both counts."""
    return UnprocessableEntity(
        f"Validation error in JSON body: [batch: number of ids and {what} must be equal "
        f"({ids} != {got})]"
    )


# A body that selects no points, in Qdrant's words for each operation: delete and
# clear_payload take a PointsSelector (serde's untagged enum of {points} and {filter});
# set, overwrite and delete payload check theirs in a TryFrom of the body; delete_vectors
# finds out when it runs (a StorageError). `null` selects nothing in all of them: a
# `"filter": null` must never become a write to every point.
NO_SELECTOR_UNTAGGED = (
    "Format error in JSON body: data did not match any variant of untagged enum PointsSelector"
)
NO_IDS_OR_FILTER = "Format error in JSON body: Either list of point ids or filter must be provided"
NO_FILTER_OR_POINTS = "Bad request: No filter or points provided"


def _selection(body: dict[str, Any], missing: str) -> writes.PointSelector:
    """Explicit ids, or a filter resolved to ids when the write is applied."""
    if body.get("points") is not None:
        parse_filter(body.get("filter"))  # still read (and refused if malformed), as Qdrant does
        return parse_ids(body["points"])
    if body.get("filter") is not None:
        return writes.Matching(parse_filter(body["filter"]))
    raise BadRequest(missing)


def parse_delete(body: dict[str, Any]) -> Prepare:
    return writes.delete(_selection(body, NO_SELECTOR_UNTAGGED))


def parse_set_payload(body: dict[str, Any], overwrite: bool) -> Prepare:
    payload = _payload(body.get("payload"))
    if payload is None:
        raise BadRequest("Format error in JSON body: missing field `payload`")
    key = body.get("key")
    if key is not None and not isinstance(key, str):
        raise BadRequest("Format error in JSON body: `key` must be a string")
    if key is not None:
        # A path, also for an overwrite, which ignores it: Qdrant reads both bodies alike.
        writes.check_payload_key(key)
    if overwrite:
        return writes.overwrite_payload(_selection(body, NO_IDS_OR_FILTER), payload)
    return writes.set_payload(_selection(body, NO_IDS_OR_FILTER), payload, key)


def parse_delete_payload(body: dict[str, Any]) -> Prepare:
    keys = body.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BadRequest("Format error in JSON body: `keys` must be a list of strings")
    return writes.delete_payload(_selection(body, NO_IDS_OR_FILTER), list(keys))


def parse_clear_payload(body: dict[str, Any]) -> Prepare:
    return writes.clear_payload(_selection(body, NO_SELECTOR_UNTAGGED))


def parse_update_vectors(config: CollectionConfig, body: dict[str, Any]) -> Prepare:
    points = body.get("points")
    if not isinstance(points, list):
        raise BadRequest("Format error in JSON body: `points` must be a list")
    if not points:
        # Qdrant's REST UpdateVectors validates `length(min = 1)` on `points` (gRPC does not).
        raise UnprocessableEntity(
            "Validation error in JSON body: [points: must specify points to update]"
        )
    ids: list[PointId] = []
    vectors: list[dict[str, Any]] = []
    for i, p in enumerate(points):
        p = _obj(p, "point")
        if "id" not in p:
            raise BadRequest("Format error in JSON body: missing field `id`")
        ids.append(body_point_id(p["id"]))
        struct = normalize_vector_struct(p.get("vector", p.get("vectors")))
        if not struct:
            raise no_vectors_to_update(i)
        vectors.append(struct)
    columns = build_columns(config, vectors, points=True)
    update_filter = parse_filter(body.get("update_filter"))
    return writes.update_vectors(ids, columns, update_filter)


def parse_delete_vectors(config: CollectionConfig, body: dict[str, Any]) -> list[Prepare]:
    """The operations of a REST delete_vectors, in order (one, or two: see below)."""
    names = body.get("vector", body.get("vectors"))  # Qdrant's alias
    if names is None:
        raise BadRequest("Format error in JSON body: missing field `vector`")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequest("Format error in JSON body: `vector` must be a list of names")
    if not names:  # REST's validator (the gRPC message has no such rule)
        raise UnprocessableEntity(
            "Validation error in JSON body: [vector: must specify vector names to delete]"
        )
    check_names_to_delete(config, names)
    # Qdrant runs a filter and a list of points given together as two operations, the
    # filter's first, and answers the last one's result (`do_delete_vectors`); either alone
    # is one. Both are parsed before either runs.
    steps: list[Prepare] = []
    if body.get("filter") is not None:
        steps.append(writes.delete_vectors(writes.Matching(parse_filter(body["filter"])), names))
    if body.get("points") is not None:
        steps.append(writes.delete_vectors(parse_ids(body["points"]), names))
    if not steps:
        raise BadRequest(NO_FILTER_OR_POINTS)
    return steps


def check_names_to_delete(config: CollectionConfig, names: list[str]) -> None:
    """The rule on the vector names of a delete_vectors that both transports check: each
    must exist (an empty list deletes nothing over gRPC, as in Qdrant)."""
    for name in names:
        if name not in config.vectors and name not in config.sparse_vectors:
            raise BadRequest(f"Wrong input: Not existing vector name error: {name}")


def no_vectors_to_update(index: int) -> UnprocessableEntity:
    return UnprocessableEntity(
        f"Validation error in JSON body: [points[{index}].vector: "
        "must specify vectors to update for point]"
    )


BATCH_KINDS = (
    "upsert",
    "delete",
    "set_payload",
    "overwrite_payload",
    "delete_payload",
    "clear_payload",
    "update_vectors",
    "delete_vectors",
)


def parse_batch_operation(config: CollectionConfig, raw: Any) -> list[Prepare]:
    """One item of `POST /points/batch` as the operations it runs, in order (one, or two
    for a delete_vectors with both a filter and points); its result is the last one's."""
    kind, inner = _batch_item(raw)
    if kind == "delete_vectors":
        return parse_delete_vectors(config, inner)
    return [_batch_operation(config, kind, inner)]


def _batch_item(raw: Any) -> tuple[str, dict[str, Any]]:
    item = _obj(raw, "operation")
    if len(item) != 1 or next(iter(item)) not in BATCH_KINDS:
        raise BadRequest(
            "Format error in JSON body: each operation must be one of " + ", ".join(BATCH_KINDS)
        )
    kind, inner = next(iter(item.items()))
    return kind, _obj(inner, kind)


def _batch_operation(config: CollectionConfig, kind: str, inner: dict[str, Any]) -> Prepare:
    if kind == "upsert":
        return parse_upsert(config, inner)
    if kind == "delete":
        return parse_delete(inner)
    if kind == "set_payload":
        return parse_set_payload(inner, overwrite=False)
    if kind == "overwrite_payload":
        return parse_set_payload(inner, overwrite=True)
    if kind == "delete_payload":
        return parse_delete_payload(inner)
    if kind == "clear_payload":
        return parse_clear_payload(inner)
    return parse_update_vectors(config, inner)
