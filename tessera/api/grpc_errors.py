"""A Tessera error as the gRPC status Qdrant answers with: its code and its text.

The gRPC decoders check requests with the rule functions the REST parsers use (and the
`Collections` service still hands REST bodies to them), so what fails comes back as a
`TesseraError` worded for REST. Qdrant words some failures differently over gRPC;
this module is the one place that turns the first into the second.

The code follows Qdrant's `impl From<StorageError> for tonic::Status`
(`lib/storage/src/content_manager/conversions.rs`): BadInput and BadRequest are
INVALID_ARGUMENT, NotFound NOT_FOUND, AlreadyExists ALREADY_EXISTS, Forbidden
PERMISSION_DENIED, RateLimitExceeded RESOURCE_EXHAUSTED (with a `retry-after` trailer),
ShardUnavailable UNAVAILABLE, ServiceError INTERNAL. Tessera's tree maps class by class.

The text is REST's `status.error` (Qdrant's `StorageError` displays the same over both
APIs) except where the REST text comes from the JSON layer, which gRPC does not have:

* `validator` failures: REST says "Validation error in JSON body: [...]" (or "in path
  parameters" for the collection name, a path segment in REST); Qdrant's
  `src/tonic/api/mod.rs` `validate` labels the same errors "Validation error in body" and
  the name is the message's `collection_name` field.
* a message shape REST cannot get wrong but a protobuf can (an unset oneof, a PointId with
  neither `num` nor `uuid`, the `UnknownDistance` enum value): Qdrant's `TryFrom` conversions
  in `lib/api/src/grpc/conversions.rs` and its `tonic/api` handlers answer with their own
  texts (`REWORDED`).
"""

from __future__ import annotations

import re
from typing import Any

import grpc

from tessera.api.points_parse import NO_FILTER_OR_POINTS, NO_IDS_OR_FILTER, NO_SELECTOR_UNTAGGED
from tessera.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    RequestTimeout,
    ServiceUnavailable,
    TesseraError,
)
from tessera.query.payload_path import BAD_PATH_PREFIX

# Most specific class first (UnprocessableEntity is a BadRequest).
CODES: tuple[tuple[type[TesseraError], Any], ...] = (
    (BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Conflict, grpc.StatusCode.ALREADY_EXISTS),
    (Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    (RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RequestTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (ServiceUnavailable, grpc.StatusCode.UNAVAILABLE),
)

# Tessera's text -> Qdrant's gRPC text, for failures whose gRPC wording differs.
REWORDED = {
    # lib/api/src/grpc/conversions.rs, TryFrom<PointId>
    "Unable to parse point id: the PointId sets neither `num` nor `uuid`": (
        "No ID options provided"
    ),
    # TryFrom<Condition>, TryFrom<Match>
    "Format error in request: a Condition must set one of its variants": (
        "Malformed Condition type"
    ),
    "Format error in request: a Match must set one of its variants": "Malformed Match condition",
    # TryFrom<grpc::Query>, TryFrom<grpc::VectorInput>
    "Format error in request: a Query must set one of its variants": "Query variant is missing",
    "Format error in request: a VectorInput must set one of its variants": (
        "VectorInput variant is missing"
    ),
    # src/tonic/api/update_common.rs (points_common.rs before): update_batch, delete
    "Format error in request: a PointsUpdateOperation must set one of its operations": (
        "Operation is missing"
    ),
    # try_points_selector_from_grpc: a PointsSelector set with neither `points` nor `filter`
    "Format error in request: a PointsSelector must set one of its variants": (
        "Malformed PointsSelector type"
    ),
    # src/tonic/api/update_common.rs, each operation's handler (UpdateBatch runs them too)
    "Format error in request: `points` is missing": "PointSelector is missing",
    "Format error in request: `points_selector` is missing": "points_selector is expected",
    "Format error in request: a PointVectors must set `id`": "id is expected",
    "Format error in request: `vectors` is missing": "vectors is expected",
    # TryFrom<Distance>, TryFrom<AliasOperations>
    "Wrong input: invalid Distance model: 0": "Malformed distance parameter: UnknownDistance",
    "Wrong input: invalid AliasOperations model: ": "Malformed AliasOperation type",
}

# REST's words for an operation without a points selector (points_parse); Qdrant's handlers
# in src/tonic/api/update_common.rs word it per RPC (grpc_writes checks each message, an item
# of UpdateBatch included, with the texts of REWORDED).
_NO_SELECTOR = {NO_SELECTOR_UNTAGGED, NO_IDS_OR_FILTER, NO_FILTER_OR_POINTS}
NO_SELECTOR_BY_RPC = {
    "Delete": "PointSelector is missing",
    "ClearPayload": "PointSelector is missing",
    "SetPayload": "points_selector is expected",
    "OverwritePayload": "points_selector is expected",
    "DeletePayload": "points_selector is expected",
    "DeleteVectors": "points_selector is expected",
}

# from_grpc_dist: a value outside the Distance enum (0 is UnknownDistance, in REWORDED)
_BAD_DISTANCE = re.compile(r"Wrong input: invalid Distance model: (?P<value>-?\d+)")
# REST's parse of a UUID string that is not one; Qdrant's TryFrom<PointId> says this.
_BAD_UUID = re.compile(
    r"Format error in JSON body: value (?P<uuid>.*) is not a valid point ID, valid values "
    r"are either an unsigned integer or a UUID",
    re.DOTALL,
)
_REST_VALIDATION = "Validation error in JSON body: "
_PATH_NAME = "Validation error in path parameters: [name: "


def status_code(exc: TesseraError) -> Any:
    for cls, code in CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def message(text: str, rpc: str = "") -> str:
    """REST's error text as Qdrant's gRPC API words the same failure of the method `rpc`
    (its name in the service, "SetPayload")."""
    if text in REWORDED:
        return REWORDED[text]
    if text in _NO_SELECTOR:
        return NO_SELECTOR_BY_RPC.get(rpc, text)
    bad_distance = _BAD_DISTANCE.fullmatch(text)
    if bad_distance is not None:
        return f"Malformed distance parameter, unexpected value: {bad_distance['value']}"
    if text.startswith(_REST_VALIDATION):
        return "Validation error in body: " + text[len(_REST_VALIDATION) :]
    if text.startswith(_PATH_NAME):
        return "Validation error in body: [collection_name: " + text[len(_PATH_NAME) :]
    if text.startswith(BAD_PATH_PREFIX):  # Qdrant's gRPC conversion: no body to name
        return "Invalid json path: " + text[len(BAD_PATH_PREFIX) :]
    bad_uuid = _BAD_UUID.fullmatch(text)
    if bad_uuid is not None:
        return f"Unable to parse UUID: {bad_uuid['uuid']}"
    return text


def grpc_status(exc: TesseraError, rpc: str = "") -> tuple[Any, str]:
    """The status code and details Qdrant's gRPC API answers `exc` with, raised by the
    method `rpc`."""
    return status_code(exc), message(exc.message, rpc)
