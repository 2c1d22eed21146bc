"""The field rules Qdrant checks on a gRPC request before its handler runs.

Qdrant derives `validator` rules onto its generated gRPC messages (`lib/api/build.rs`) and
every handler starts with `validate(request)`: a collection name of 1 to 255 characters
without `/` or NUL, a `timeout` of at least 1, a non-empty field name, group key, facet key,
snapshot name or operation list. A failure is INVALID_ARGUMENT "Validation error in body:
[field: text; ...]" in the words of Qdrant's `describe_error`, before any collection is
looked up (a 300-character name is invalid, not missing). REST checks the same fields in
its own layer (a path segment, serde); this table is gRPC's. The rules that need a
request's decoding (a limit, a vector's size) stay with the decoders, which share REST's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from tessera.errors import BadRequest, UnprocessableEntity

# Rule: (field path, check). A check answers None for a valid value, else the text after
# "field: " (a list: one per error, each reported at the field). Only a set field is
# checked (proto3 optional fields unset are not values).
Check = Callable[[Any], str | list[str] | None]
OneCheck = Callable[[Any], str | None]


def _length(low: int, high: int | None = None) -> OneCheck:
    def check(value: Any) -> str | None:
        size = len(value)
        if size >= low and (high is None or size <= high):
            return None
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else "[]"
        if high is None:
            return f"value {shown} invalid, must be at least {low} characters"
        return f"value {shown} invalid, must be from {low} to {high} characters"

    return check


def _within(low: int, high: int) -> OneCheck:
    def check(value: Any) -> str | None:
        if low <= value <= high:
            return None
        return f"value {value} invalid, must be from {low} to {high}"

    return check


def _at_least(low: int) -> OneCheck:
    def check(value: Any) -> str | None:
        return None if value >= low else f"value {value} invalid, must be {low} or larger"

    return check


_NAME_LENGTH = _length(1, 255)


def _collection_name(value: str) -> list[str] | None:
    """Qdrant's length rule and `validate_collection_name_legacy` (both errors, in order)."""
    found = [text for text in (_NAME_LENGTH(value), _name_chars(value)) if text is not None]
    return found or None


def _name_chars(value: str) -> str | None:
    for char in ("/", "\0"):
        if char in value:
            return f'collection name cannot contain "{char}" char'
    return None


_NAMED = [
    "GetCollectionInfoRequest",
    "CollectionExistsRequest",
    "CreateCollection",
    "UpdateCollection",
    "DeleteCollection",
    "ListCollectionAliasesRequest",
    "UpsertPoints",
    "DeletePoints",
    "UpdatePointVectors",
    "DeletePointVectors",
    "GetPoints",
    "SetPayloadPoints",
    "DeletePayloadPoints",
    "ClearPayloadPoints",
    "UpdateBatchPoints",
    "CreateFieldIndexCollection",
    "DeleteFieldIndexCollection",
    "SearchPoints",
    "SearchBatchPoints",
    "SearchPointGroups",
    "ScrollPoints",
    "RecommendPoints",
    "RecommendBatchPoints",
    "RecommendPointGroups",
    "DiscoverPoints",
    "DiscoverBatchPoints",
    "CountPoints",
    "QueryPoints",
    "QueryBatchPoints",
    "QueryPointGroups",
    "FacetCounts",
    "SearchMatrixPoints",
    "CreateSnapshotRequest",
    "ListSnapshotsRequest",
    "DeleteSnapshotRequest",
]
_TIMED = [
    "UpdateCollection",
    "DeleteCollection",
    "ChangeAliases",
    "UpdateCollectionClusterSetupRequest",
    "SearchPoints",
    "SearchBatchPoints",
    "SearchPointGroups",
    "RecommendPoints",
    "RecommendBatchPoints",
    "RecommendPointGroups",
    "DiscoverPoints",
    "DiscoverBatchPoints",
    "QueryPoints",
    "QueryBatchPoints",
    "QueryPointGroups",
    "FacetCounts",
    "SearchMatrixPoints",
]
_NON_EMPTY = {
    "UpdateBatchPoints": "operations",
    "CreateFieldIndexCollection": "field_name",
    "DeleteFieldIndexCollection": "field_name",
    "SearchPointGroups": "group_by",
    "RecommendPointGroups": "group_by",
    "QueryPointGroups": "group_by",
    "FacetCounts": "key",
    "DeleteSnapshotRequest": "snapshot_name",
    "DeleteFullSnapshotRequest": "snapshot_name",
}
_COUNTS = ("replication_factor", "write_consistency_factor")


def _rules() -> dict[str, list[tuple[str, Check]]]:
    rules: dict[str, list[tuple[str, Check]]] = {}
    for message in _NAMED:
        rules.setdefault(message, []).append(("collection_name", _collection_name))
    for message in _TIMED:
        rules.setdefault(message, []).append(("timeout", _at_least(1)))
    for message, field in _NON_EMPTY.items():
        rules.setdefault(message, []).append((field, _length(1)))
    for field in _COUNTS:  # CollectionParamsDiff, nested in UpdateCollection
        rules["UpdateCollection"].append((f"params.{field}", _at_least(1)))
    for field in ("shard_number", *_COUNTS):
        rules["CreateCollection"].append((field, _at_least(1)))
    # A single unnamed vector's size (`VectorParams`, range 1..=65536), reached through the
    # `config` oneof; a map's vectors are left to the decoder shared with REST.
    rules["CreateCollection"].append(("vectors_config.params.size", _within(1, 65536)))
    for checks in rules.values():
        checks.sort(key=lambda rule: rule[0])  # validator reports fields by name
    return rules


RULES = _rules()
# Where a rule's field is reported, when Qdrant names the path otherwise (a oneof's name).
_LABELS = {"vectors_config.params.size": "vectors_config.config.size"}


# A batch's requests, each checked by its own message's rules (Qdrant's nested
# validation): a search with an empty collection name inside a batch is refused too.
_BATCHES = {
    "SearchBatchPoints": "search_points",
    "RecommendBatchPoints": "recommend_points",
    "DiscoverBatchPoints": "discover_points",
    "QueryBatchPoints": "query_points",
}


def validate(request: Any) -> None:
    """Raise BadRequest with Qdrant's gRPC text when a field of `request` breaks its rule."""
    name = request.DESCRIPTOR.name
    failed = _failures(request)
    items = _BATCHES.get(name)
    if items is not None:
        for index, item in enumerate(getattr(request, items)):
            failed += [(f"{items}[{index}].{path}", text) for path, text in _failures(item)]
        failed.sort(key=lambda found: found[0].split(".")[0].split("[")[0])  # by field name
    if failed:
        shown = "; ".join(f"{path}: {text}" for path, text in failed)
        raise BadRequest(f"Validation error in body: [{shown}]")


def _failures(request: Any) -> list[tuple[str, str]]:
    """(field as Qdrant labels it, text) of each rule of `request`'s message it breaks."""
    failed = []
    for path, check in RULES.get(request.DESCRIPTOR.name, ()):
        value = _field(request, path)
        if value is not None:
            found = check(value)
            texts = [found] if isinstance(found, str) else found or []
            failed += [(_LABELS.get(path, path), text) for text in texts]
    return failed


def _field(message: Any, path: str) -> Any:
    """The value at a dotted field path, None where a field on it is an unset optional or
    submessage (a repeated field or a plain scalar always has a value)."""
    *parents, name = path.split(".")
    for part in parents:
        if not message.HasField(part):
            return None
        message = getattr(message, part)
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.has_presence and not message.HasField(name):
        return None
    return getattr(message, name)


_RULE = "Validation error in JSON body: ["

T = TypeVar("T")


def nested(field: str, index: int, decode: Callable[[], T]) -> T:
    """`decode()` of the item `index` of the repeated message `field` (a batch's searches,
    a query's prefetches): a rule it breaks is reported at its path inside the request, as
    Qdrant's nested validation words it (`query_points[0].limit`, `prefetch[1].limit`)."""
    try:
        return decode()
    except UnprocessableEntity as exc:
        if not exc.message.startswith(_RULE):
            raise
        inner = exc.message[len(_RULE) :]
        raise UnprocessableEntity(f"{_RULE}{field}[{index}].{inner}") from None
