"""Invalid gRPC requests get Qdrant's gRPC status code and text, and change nothing.

Qdrant's gRPC API words some failures unlike its REST API: `validator` failures are
"Validation error in body: [...]" (REST: "in JSON body", or "in path parameters" for the
collection name), and a message the protobuf conversion cannot read gets the text of
Qdrant's `TryFrom` ("No ID options provided", "Malformed Condition type", ...). Everything
else carries the text REST sends, with the status code Qdrant's
`impl From<StorageError> for tonic::Status` gives its kind. The table is sent through the raw
stubs and, where the client can express the request, through `QdrantClient(prefer_grpc=True)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb

from tessera.api import grpc_errors, points_parse
from tessera.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InternalError,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    StorageCorruption,
    TesseraError,
    UnprocessableEntity,
)
from tests.conftest import ServerProcess, make_grpc_client, module_server

DIM = 4
ARG = grpc.StatusCode.INVALID_ARGUMENT
MISSING = grpc.StatusCode.NOT_FOUND

server_only = pytest.mark.server_only(reason="the gRPC wire")


# --------------------------------------------------------------------------- the mapping


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (BadRequest("Bad request: x"), grpc.StatusCode.INVALID_ARGUMENT),
        (UnprocessableEntity("Validation error in JSON body: [x]"), ARG),
        (NotFound("Not found: x"), grpc.StatusCode.NOT_FOUND),
        (Conflict("Wrong input: Collection `x` already exists!"), grpc.StatusCode.ALREADY_EXISTS),
        (Forbidden("Forbidden: x"), grpc.StatusCode.PERMISSION_DENIED),
        (RateLimited("Rate limiting exceeded: x", 2.0), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (ServiceUnavailable("Service unavailable: x"), grpc.StatusCode.UNAVAILABLE),
        (InternalError("Service internal error: x"), grpc.StatusCode.INTERNAL),
        (StorageCorruption("Service internal error: x"), grpc.StatusCode.INTERNAL),
        (TesseraError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_status_code_by_error_class(exc: TesseraError, code: grpc.StatusCode) -> None:
    assert grpc_errors.status_code(exc) == code


@pytest.mark.parametrize(
    ("rest", "grpc_text"),
    [
        (
            "Validation error in JSON body: [limit: value 0 invalid, must be 1 or larger]",
            "Validation error in body: [limit: value 0 invalid, must be 1 or larger]",
        ),
        (
            'Validation error in path parameters: [name: collection name cannot contain "/" char]',
            'Validation error in body: [collection_name: collection name cannot contain "/" char]',
        ),
        (
            "Format error in JSON body: value not-a-uuid is not a valid point ID, valid values "
            "are either an unsigned integer or a UUID",
            "Unable to parse UUID: not-a-uuid",
        ),
        (
            "Wrong input: invalid Distance model: 99",
            "Malformed distance parameter, unexpected value: 99",
        ),
        # Qdrant's own wording over both APIs stays as it is
        ("Not found: Collection `x` doesn't exist!", "Not found: Collection `x` doesn't exist!"),
        (
            "Wrong input: Vector dimension error: expected dim: 4, got 2",
            "Wrong input: Vector dimension error: expected dim: 4, got 2",
        ),
    ],
)
def test_rest_wording_becomes_grpc_wording(rest: str, grpc_text: str) -> None:
    assert grpc_errors.message(rest) == grpc_text
    assert grpc_errors.grpc_status(BadRequest(rest))[1] == grpc_text


@pytest.mark.parametrize(
    "rest",
    [
        points_parse.NO_SELECTOR_UNTAGGED,
        points_parse.NO_IDS_OR_FILTER,
        points_parse.NO_FILTER_OR_POINTS,
    ],
)
@pytest.mark.parametrize(
    ("rpc", "grpc_text"),
    [
        ("Delete", "PointSelector is missing"),
        ("ClearPayload", "PointSelector is missing"),
        ("SetPayload", "points_selector is expected"),
        ("OverwritePayload", "points_selector is expected"),
        ("DeletePayload", "points_selector is expected"),
        ("DeleteVectors", "points_selector is expected"),
        # no RPC of its own (a batch checks each operation's selector before, grpc_updates)
        ("UpdateBatch", None),
    ],
)
def test_missing_selector_is_worded_per_rpc(rest: str, rpc: str, grpc_text: str | None) -> None:
    assert grpc_errors.grpc_status(BadRequest(rest), rpc) == (ARG, grpc_text or rest)


# --------------------------------------------------------------------------- over the wire


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-grpc-errors", grpc=True)


@pytest.fixture(scope="module")
def g(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = make_grpc_client(server)
    yield qc
    qc.close()


@pytest.fixture
def coll(g: QdrantClient) -> Iterator[str]:
    name = f"grpc_err_{uuid.uuid4().hex[:10]}"
    g.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        sparse_vectors_config={"sp": models.SparseVectorParams()},
    )
    yield name
    g.delete_collection(name)


def failure(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details() or ""


def dense(*xs: float) -> pb.Vectors:
    return pb.Vectors(vector=pb.Vector(dense=pb.DenseVector(data=list(xs))))


def pid(n: int) -> pb.PointId:
    return pb.PointId(num=n)


def vparams(**kw: Any) -> pb.VectorsConfig:
    return pb.VectorsConfig(params=pb.VectorParams(**kw))


COSINE4 = {"size": DIM, "distance": pb.Distance.Cosine}
LIMIT0 = "Validation error in body: [limit: value 0 invalid, must be 1 or larger]"


def _feedback(example: list[float], b: float) -> pb.RelevanceFeedbackInput:
    """A relevance feedback query: one feedback item of `example` (none when empty)."""
    vector = pb.VectorInput(dense=pb.DenseVector(data=[1, 2, 3, 4]))
    items = (
        [pb.FeedbackItem(example=pb.VectorInput(dense=pb.DenseVector(data=example)), score=0.5)]
        if example
        else []
    )
    strategy = pb.FeedbackStrategy(naive=pb.NaiveFeedbackStrategy(a=1.0, b=b, c=1.0))
    return pb.RelevanceFeedbackInput(target=vector, feedback=items, strategy=strategy)


def _count_where(condition: Any) -> Callable[[Any, Any, str], Any]:
    """A stub call counting the points of a collection under one condition."""
    return lambda p, c, name: p.Count(
        pb.CountPoints(collection_name=name, filter=pb.Filter(must=[condition]))
    )


# (what, call(points stub, collections stub, collection) -> Any, code, text)
STUB_CASES: list[tuple[str, Callable[[Any, Any, str], Any], grpc.StatusCode, str]] = [
    (
        "matrix sample 0 (its rule: at least 2)",
        lambda p, c, name: p.SearchMatrixPairs(
            pb.SearchMatrixPoints(collection_name=name, sample=0, limit=1)
        ),
        ARG,
        "Validation error in body: [sample: value 0 invalid, must be 2 or larger]",
    ),
    (
        "missing collection",
        lambda p, c, name: p.Count(pb.CountPoints(collection_name=f"{name}_missing")),
        MISSING,
        "Not found: Collection `{name}_missing` doesn't exist!",
    ),
    (
        "existing collection",
        lambda p, c, name: c.Create(
            pb.CreateCollection(collection_name=name, vectors_config=vparams(**COSINE4))
        ),
        grpc.StatusCode.ALREADY_EXISTS,
        "Wrong input: Collection `{name}` already exists!",
    ),
    (
        "collection name with a slash",
        lambda p, c, name: c.Create(
            pb.CreateCollection(collection_name=f"{name}/x", vectors_config=vparams(**COSINE4))
        ),
        ARG,
        'Validation error in body: [collection_name: collection name cannot contain "/" char]',
    ),
    (
        "empty collection name",
        lambda p, c, name: c.Create(
            pb.CreateCollection(collection_name="", vectors_config=vparams(**COSINE4))
        ),
        ARG,
        'Validation error in body: [collection_name: value "" invalid, must be from 1 to 255 '
        "characters]",
    ),
    # Qdrant's field rules on the messages (lib/api/build.rs), checked before any lookup
    (
        "wal_retain_closed of 0",
        lambda p, c, name: c.Create(
            pb.CreateCollection(
                collection_name=f"{name}_wal",
                vectors_config=vparams(**COSINE4),
                wal_config=pb.WalConfigDiff(wal_retain_closed=0),
            )
        ),
        ARG,
        "Validation error in body: [wal_config.wal_retain_closed: value 0 invalid, must be 1 "
        "or larger]",
    ),
    (
        "empty collection name, a read",
        lambda p, c, name: p.Count(pb.CountPoints(collection_name="")),
        ARG,
        'Validation error in body: [collection_name: value "" invalid, must be from 1 to 255 '
        "characters]",
    ),
    (
        "collection name over 255 characters",
        lambda p, c, name: c.CollectionExists(
            pb.CollectionExistsRequest(collection_name="n" * 256)
        ),
        ARG,
        f'Validation error in body: [collection_name: value "{"n" * 256}" invalid, must be from '
        "1 to 255 characters]",
    ),
    (
        "timeout 0",
        lambda p, c, name: p.Search(
            pb.SearchPoints(collection_name=name, vector=[1.0] * DIM, limit=1, timeout=0)
        ),
        ARG,
        "Validation error in body: [timeout: value 0 invalid, must be 1 or larger]",
    ),
    (
        "timeout 0 and a slash",
        lambda p, c, name: c.Delete(pb.DeleteCollection(collection_name=f"{name}/x", timeout=0)),
        ARG,
        'Validation error in body: [collection_name: collection name cannot contain "/" char; '
        "timeout: value 0 invalid, must be 1 or larger]",
    ),
    (
        "UpdateBatch without operations",
        lambda p, c, name: p.UpdateBatch(pb.UpdateBatchPoints(collection_name=name, wait=True)),
        ARG,
        "Validation error in body: [operations: value [] invalid, must be at least 1 characters]",
    ),
    (
        "DeleteFieldIndex of an empty field name",
        lambda p, c, name: p.DeleteFieldIndex(
            pb.DeleteFieldIndexCollection(collection_name=name, field_name="", wait=True)
        ),
        ARG,
        'Validation error in body: [field_name: value "" invalid, must be at least 1 characters]',
    ),
    (
        "SearchGroups with an empty group_by",
        lambda p, c, name: p.SearchGroups(
            pb.SearchPointGroups(
                collection_name=name, vector=[1.0] * DIM, group_by="", limit=2, group_size=1
            )
        ),
        ARG,
        'Validation error in body: [group_by: value "" invalid, must be at least 1 characters]',
    ),
    (
        "UpdateCollection with replication_factor 0",
        lambda p, c, name: c.Update(
            pb.UpdateCollection(
                collection_name=name, params=pb.CollectionParamsDiff(replication_factor=0)
            )
        ),
        ARG,
        "Validation error in body: [params.replication_factor: value 0 invalid, must be 1 or "
        "larger]",
    ),
    (
        "CreateShardKey without its request",
        lambda p, c, name: c.CreateShardKey(pb.CreateShardKeyRequest(collection_name=name)),
        ARG,
        "empty request",
    ),
    (
        "UpdateCollectionClusterSetup without an operation",
        lambda p, c, name: c.UpdateCollectionClusterSetup(
            pb.UpdateCollectionClusterSetupRequest(collection_name=name)
        ),
        ARG,
        "empty operation",
    ),
    (
        "UnknownDistance",
        lambda p, c, name: c.Create(
            pb.CreateCollection(collection_name=f"{name}_d", vectors_config=vparams(size=DIM))
        ),
        ARG,
        "Malformed distance parameter: UnknownDistance",
    ),
    (
        "distance outside the enum",
        lambda p, c, name: c.Create(
            pb.CreateCollection(
                collection_name=f"{name}_d", vectors_config=vparams(size=DIM, distance=99)
            )
        ),
        ARG,
        "Malformed distance parameter, unexpected value: 99",
    ),
    (
        "shard_number 0",
        lambda p, c, name: c.Create(
            pb.CreateCollection(
                collection_name=f"{name}_s", shard_number=0, vectors_config=vparams(**COSINE4)
            )
        ),
        ARG,
        "Validation error in body: [shard_number: value 0 invalid, must be 1 or larger]",
    ),
    (
        "empty alias action",
        lambda p, c, name: c.UpdateAliases(pb.ChangeAliases(actions=[pb.AliasOperations()])),
        ARG,
        "Malformed AliasOperation type",
    ),
    (
        "PointId without num or uuid",
        lambda p, c, name: p.Upsert(
            pb.UpsertPoints(
                collection_name=name,
                points=[pb.PointStruct(id=pb.PointId(), vectors=dense(1, 2, 3, 4))],
            )
        ),
        ARG,
        "No ID options provided",
    ),
    (
        "uuid that is not one",
        lambda p, c, name: p.Upsert(
            pb.UpsertPoints(
                collection_name=name,
                points=[pb.PointStruct(id=pb.PointId(uuid="zz"), vectors=dense(1, 2, 3, 4))],
            )
        ),
        ARG,
        "Unable to parse UUID: zz",
    ),
    (
        "wrong dimension",
        lambda p, c, name: p.Upsert(
            pb.UpsertPoints(
                collection_name=name, points=[pb.PointStruct(id=pid(1), vectors=dense(1, 2))]
            )
        ),
        ARG,
        "Wrong input: Vector dimension error: expected dim: 4, got 2",
    ),
    (
        "unknown vector name",
        lambda p, c, name: p.Upsert(
            pb.UpsertPoints(
                collection_name=name,
                points=[
                    pb.PointStruct(
                        id=pid(1),
                        vectors=pb.Vectors(
                            vectors=pb.NamedVectors(
                                vectors={"x": pb.Vector(dense=pb.DenseVector(data=[1, 2, 3, 4]))}
                            )
                        ),
                    )
                ],
            )
        ),
        ARG,
        "Wrong input: Not existing vector name error: x",
    ),
    (
        "Get with an empty PointId",
        lambda p, c, name: p.Get(pb.GetPoints(collection_name=name, ids=[pb.PointId()])),
        ARG,
        "No ID options provided",
    ),
    (
        "empty Condition",
        lambda p, c, name: p.Count(
            pb.CountPoints(collection_name=name, filter=pb.Filter(must=[pb.Condition()]))
        ),
        ARG,
        "Malformed Condition type",
    ),
    (
        "empty Match",
        lambda p, c, name: p.Count(
            pb.CountPoints(
                collection_name=name,
                filter=pb.Filter(
                    must=[pb.Condition(field=pb.FieldCondition(key="a", match=pb.Match()))]
                ),
            )
        ),
        ARG,
        "Malformed Match condition",
    ),
    (
        "Search limit 0",
        lambda p, c, name: p.Search(
            pb.SearchPoints(collection_name=name, vector=[1.0] * DIM, limit=0)
        ),
        ARG,
        LIMIT0,
    ),
    (
        "Scroll limit 0",
        lambda p, c, name: p.Scroll(pb.ScrollPoints(collection_name=name, limit=0)),
        ARG,
        LIMIT0,
    ),
    (
        "Query limit 0",
        lambda p, c, name: p.Query(pb.QueryPoints(collection_name=name, limit=0)),
        ARG,
        LIMIT0,
    ),
    # Nested items are validated at their path (Qdrant's `validate(nested)`)
    (
        "SearchBatch with an item of limit 0",
        lambda p, c, name: p.SearchBatch(
            pb.SearchBatchPoints(
                collection_name=name,
                search_points=[
                    pb.SearchPoints(collection_name=name, vector=[1.0] * DIM, limit=1),
                    pb.SearchPoints(collection_name=name, vector=[1.0] * DIM, limit=0),
                ],
            )
        ),
        ARG,
        "Validation error in body: [search_points[1].limit: value 0 invalid, must be 1 or larger]",
    ),
    (
        "QueryBatch with an item of limit 0",
        lambda p, c, name: p.QueryBatch(
            pb.QueryBatchPoints(
                collection_name=name, query_points=[pb.QueryPoints(collection_name=name, limit=0)]
            )
        ),
        ARG,
        "Validation error in body: [query_points[0].limit: value 0 invalid, must be 1 or larger]",
    ),
    (
        "a nested prefetch of limit 0",
        lambda p, c, name: p.Query(
            pb.QueryPoints(
                collection_name=name,
                prefetch=[
                    pb.PrefetchQuery(prefetch=[pb.PrefetchQuery(), pb.PrefetchQuery(limit=0)])
                ],
            )
        ),
        ARG,
        "Validation error in body: [prefetch[0].prefetch[1].limit: value 0 invalid, must be 1 "
        "or larger]",
    ),
    (
        "Query without a variant",
        lambda p, c, name: p.Query(pb.QueryPoints(collection_name=name, query=pb.Query())),
        ARG,
        "Query variant is missing",
    ),
    (
        "nearest without a VectorInput variant",
        lambda p, c, name: p.Query(
            pb.QueryPoints(collection_name=name, query=pb.Query(nearest=pb.VectorInput()))
        ),
        ARG,
        "VectorInput variant is missing",
    ),
    (
        "query vector of the wrong dimension",
        lambda p, c, name: p.Query(
            pb.QueryPoints(
                collection_name=name,
                query=pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=[1.0]))),
            )
        ),
        ARG,
        "Wrong input: Vector dimension error: expected dim: 4, got 1",
    ),
    (
        "Facet limit 0",
        lambda p, c, name: p.Facet(pb.FacetCounts(collection_name=name, key="a", limit=0)),
        ARG,
        LIMIT0,
    ),
    (
        "Delete without a selector",
        lambda p, c, name: p.Delete(pb.DeletePoints(collection_name=name)),
        ARG,
        "PointSelector is missing",
    ),
    (
        "SetPayload without a selector",
        lambda p, c, name: p.SetPayload(
            pb.SetPayloadPoints(collection_name=name, payload={"a": pb.Value(integer_value=1)})
        ),
        ARG,
        "points_selector is expected",
    ),
    (
        "DeletePayload without a selector",
        lambda p, c, name: p.DeletePayload(
            pb.DeletePayloadPoints(collection_name=name, keys=["a"])
        ),
        ARG,
        "points_selector is expected",
    ),
    (
        "ClearPayload without a selector",
        lambda p, c, name: p.ClearPayload(pb.ClearPayloadPoints(collection_name=name)),
        ARG,
        "PointSelector is missing",
    ),
    (
        "UpdateBatch with an empty operation",
        lambda p, c, name: p.UpdateBatch(
            pb.UpdateBatchPoints(collection_name=name, operations=[pb.PointsUpdateOperation()])
        ),
        ARG,
        "Operation is missing",
    ),
    # Qdrant's conversions (lib/api/src/grpc/conversions.rs) and handlers
    # (src/tonic/api/update_common.rs), which UpdateBatch runs per operation.
    (
        "Delete with a selector that sets nothing",
        lambda p, c, name: p.Delete(
            pb.DeletePoints(collection_name=name, points=pb.PointsSelector())
        ),
        ARG,
        "Malformed PointsSelector type",
    ),
    (
        "UpdateBatch delete without a selector",
        lambda p, c, name: p.UpdateBatch(
            pb.UpdateBatchPoints(
                collection_name=name,
                operations=[
                    pb.PointsUpdateOperation(delete_points=pb.PointsUpdateOperation.DeletePoints())
                ],
            )
        ),
        ARG,
        "PointSelector is missing",
    ),
    (
        "UpdateBatch clear_payload without a selector",
        lambda p, c, name: p.UpdateBatch(
            pb.UpdateBatchPoints(
                collection_name=name,
                operations=[
                    pb.PointsUpdateOperation(clear_payload=pb.PointsUpdateOperation.ClearPayload())
                ],
            )
        ),
        ARG,
        "PointSelector is missing",
    ),
    (
        "UpdateBatch set_payload without a selector",
        lambda p, c, name: p.UpdateBatch(
            pb.UpdateBatchPoints(
                collection_name=name,
                operations=[
                    pb.PointsUpdateOperation(
                        set_payload=pb.PointsUpdateOperation.SetPayload(
                            payload={"a": pb.Value(integer_value=1)}
                        )
                    )
                ],
            )
        ),
        ARG,
        "points_selector is expected",
    ),
    (
        "UpdateBatch delete_vectors without vectors",
        lambda p, c, name: p.UpdateBatch(
            pb.UpdateBatchPoints(
                collection_name=name,
                operations=[
                    pb.PointsUpdateOperation(
                        delete_vectors=pb.PointsUpdateOperation.DeleteVectors(
                            points_selector=pb.PointsSelector(points=pb.PointsIdsList(ids=[pid(1)]))
                        )
                    )
                ],
            )
        ),
        ARG,
        "vectors is expected",
    ),
    (
        "UpdateVectors without an id",
        lambda p, c, name: p.UpdateVectors(
            pb.UpdatePointVectors(
                collection_name=name, points=[pb.PointVectors(vectors=dense(1, 2, 3, 4))]
            )
        ),
        ARG,
        "id is expected",
    ),
    (
        "UpdateVectors without vectors",
        lambda p, c, name: p.UpdateVectors(
            pb.UpdatePointVectors(collection_name=name, points=[pb.PointVectors(id=pid(1))])
        ),
        ARG,
        "vectors is expected",
    ),
    (
        "QueryGroups with an empty group_by",
        lambda p, c, name: p.QueryGroups(pb.QueryPointGroups(collection_name=name)),
        ARG,
        'Validation error in body: [group_by: value "" invalid, must be at least 1 characters]',
    ),
    (
        "SetPayload on a missing point",
        lambda p, c, name: p.SetPayload(
            pb.SetPayloadPoints(
                collection_name=name,
                wait=True,  # without it: acknowledged, as Qdrant answers before running it
                payload={"a": pb.Value(integer_value=1)},
                points_selector=pb.PointsSelector(points=pb.PointsIdsList(ids=[pid(5)])),
            )
        ),
        MISSING,
        "Not found: No point with id 5 found",
    ),
    (
        "UpdateVectors on a missing point",
        lambda p, c, name: p.UpdateVectors(
            pb.UpdatePointVectors(
                collection_name=name,
                wait=True,
                points=[pb.PointVectors(id=pid(77), vectors=dense(1, 2, 3, 4))],
            )
        ),
        MISSING,
        "Not found: No point with id 77 found",
    ),
    # A payload key path is Qdrant's `JsonPath` wherever the wire carries one: a malformed
    # one refuses the request in its words (`json_path_from_proto`).
    (
        "DeleteFieldIndex of a malformed path",
        lambda p, c, name: p.DeleteFieldIndex(
            pb.DeleteFieldIndexCollection(collection_name=name, field_name="{field_name}")
        ),
        ARG,
        "Invalid json path: '{{field_name}}'",
    ),
    (
        "CreateFieldIndex of a malformed path",
        lambda p, c, name: p.CreateFieldIndex(
            pb.CreateFieldIndexCollection(
                collection_name=name, field_name="a b", field_type=pb.FieldType.FieldTypeKeyword
            )
        ),
        ARG,
        "Invalid json path: 'a b'",
    ),
    (
        "SetPayload at a malformed key",
        lambda p, c, name: p.SetPayload(
            pb.SetPayloadPoints(
                collection_name=name,
                payload={"a": pb.Value(integer_value=1)},
                points_selector=pb.PointsSelector(points=pb.PointsIdsList(ids=[pid(1)])),
                key="a b",
            )
        ),
        ARG,
        "Invalid json path: 'a b'",
    ),
    (
        "OverwritePayload at a malformed key (which it ignores)",
        lambda p, c, name: p.OverwritePayload(
            pb.SetPayloadPoints(
                collection_name=name,
                payload={"a": pb.Value(integer_value=1)},
                points_selector=pb.PointsSelector(points=pb.PointsIdsList(ids=[pid(1)])),
                key="a b",
            )
        ),
        ARG,
        "Invalid json path: 'a b'",
    ),
    (
        "DeletePayload of a malformed key",
        lambda p, c, name: p.DeletePayload(
            pb.DeletePayloadPoints(
                collection_name=name,
                keys=["a", "b c"],
                points_selector=pb.PointsSelector(points=pb.PointsIdsList(ids=[pid(1)])),
            )
        ),
        ARG,
        "Invalid json path: 'b c'",
    ),
    (
        "Scroll with a malformed payload include",
        lambda p, c, name: p.Scroll(
            pb.ScrollPoints(
                collection_name=name,
                with_payload=pb.WithPayloadSelector(
                    include=pb.PayloadIncludeSelector(fields=["a..b"])
                ),
            )
        ),
        ARG,
        "Invalid json path: 'a..b'",
    ),
    (
        "Scroll ordered by a malformed key",
        lambda p, c, name: p.Scroll(
            pb.ScrollPoints(collection_name=name, order_by=pb.OrderBy(key="a b"))
        ),
        ARG,
        "Invalid json path: 'a b'",
    ),
    # A model other than BM25 needs Qdrant's inference service; without one configured,
    # Qdrant answers this service error (applications test for it to send vectors instead).
    (
        "Query with a document for a model other than BM25",
        lambda p, c, name: p.Query(
            pb.QueryPoints(
                collection_name=name,
                query=pb.Query(
                    nearest=pb.VectorInput(document=pb.Document(text="hello", model="m"))
                ),
            )
        ),
        grpc.StatusCode.INTERNAL,
        "Service internal error: InferenceService is not initialized. Please check if it was "
        "properly configured and initialized during startup.",
    ),
    (
        "Query with an image",
        lambda p, c, name: p.Query(
            pb.QueryPoints(
                collection_name=name,
                query=pb.Query(
                    nearest=pb.VectorInput(
                        image=pb.Image(image=pb.Value(string_value="a.png"), model="clip")
                    )
                ),
            )
        ),
        grpc.StatusCode.INTERNAL,
        "Service internal error: InferenceService is not initialized. Please check if it was "
        "properly configured and initialized during startup.",
    ),
    # Vector names name directories in Qdrant's storage: `validate_vector_name`.
    (
        "vector name with a star",
        lambda p, c, name: c.Create(
            pb.CreateCollection(
                collection_name=f"{name}_v",
                vectors_config=pb.VectorsConfig(
                    params_map=pb.VectorParamsMap(map={"a*b": pb.VectorParams(**COSINE4)})
                ),
            )
        ),
        ARG,
        'Wrong input: Invalid dense vector name `a*b`: vector name cannot contain "*" char',
    ),
    (
        "new vector name with a colon",
        lambda p, c, name: p.CreateVectorName(
            pb.CreateVectorNameRequest(
                collection_name=name,
                vector_name="a:b",
                dense_config=pb.DenseVectorCreationConfig(size=4, distance=1),
            )
        ),
        ARG,
        'Validation error in body: [vector_name: vector name cannot contain ":" char]',
    ),
    # A single vector's size is checked on the message, as Qdrant validates it first, under
    # the `config` oneof's name and with every broken rule.
    (
        "vector size 0 and an empty name",
        lambda p, c, name: c.Create(
            pb.CreateCollection(
                collection_name="", vectors_config=vparams(size=0, distance=pb.Distance.Dot)
            )
        ),
        ARG,
        'Validation error in body: [collection_name: value "" invalid, must be from 1 to 255 '
        "characters; vectors_config.config.size: value 0 invalid, must be from 1 to 65536]",
    ),
    (
        "vector size 65537",
        lambda p, c, name: c.Create(
            pb.CreateCollection(
                collection_name=f"{name}_big",
                vectors_config=vparams(size=65537, distance=pb.Distance.Dot),
            )
        ),
        ARG,
        "Validation error in body: [vectors_config.config.size: value 65537 invalid, must be "
        "from 1 to 65536]",
    ),
    # The deprecated multivector form: an empty `data` with a huge count is refused before
    # anything is made (2^31 empty rows grew the server by gigabytes).
    (
        "multivector of no data and 2^31 rows",
        lambda p, c, name: p.Upsert(
            pb.UpsertPoints(
                collection_name=name,
                points=[
                    pb.PointStruct(
                        id=pid(1),
                        vectors=pb.Vectors(vector=pb.Vector(data=[], vectors_count=2**31)),
                    )
                ],
            )
        ),
        ARG,
        "Unable to convert to multi-dense vector: Empty multi-vector data with vectors count: "
        "2147483648",
    ),
    # Messages Qdrant's conversions refuse where Tessera took a default.
    (
        "Vectors of no kind",
        lambda p, c, name: p.Upsert(
            pb.UpsertPoints(
                collection_name=name, points=[pb.PointStruct(id=pid(1), vectors=pb.Vectors())]
            )
        ),
        ARG,
        "No Vector Provided",
    ),
    (
        "recommend strategy outside the enum",
        lambda p, c, name: p.Recommend(
            pb.RecommendPoints(collection_name=name, positive=[pid(1)], limit=3, strategy=9)
        ),
        ARG,
        "Unknown recommend strategy: 9",
    ),
    (
        "fusion outside the enum",
        lambda p, c, name: p.Query(pb.QueryPoints(collection_name=name, query=pb.Query(fusion=9))),
        ARG,
        "invalid fusion type value 9",
    ),
    (
        "sample outside the enum",
        lambda p, c, name: p.Query(pb.QueryPoints(collection_name=name, query=pb.Query(sample=5))),
        ARG,
        "invalid sample type value 5",
    ),
    (
        "discover without a context",
        lambda p, c, name: p.Query(
            pb.QueryPoints(
                collection_name=name,
                query=pb.Query(
                    discover=pb.DiscoverInput(
                        target=pb.VectorInput(dense=pb.DenseVector(data=[1, 2, 3, 4]))
                    )
                ),
            )
        ),
        ARG,
        "DiscoverInput context is missing",
    ),
    (
        "nested condition without a filter",
        lambda p, c, name: p.Scroll(
            pb.ScrollPoints(
                collection_name=name,
                filter=pb.Filter(must=[pb.Condition(nested=pb.NestedCondition(key="offers"))]),
            )
        ),
        ARG,
        "Nested condition must have a filter",
    ),
    (
        "payload selector of no option",
        lambda p, c, name: p.Scroll(
            pb.ScrollPoints(collection_name=name, with_payload=pb.WithPayloadSelector())
        ),
        ARG,
        "No PayloadSelector",
    ),
    (
        "Facet of a malformed key",
        lambda p, c, name: p.Facet(pb.FacetCounts(collection_name=name, key="a b")),
        ARG,
        "Invalid json path: 'a b'",
    ),
    (
        "mmr diversity out of range",
        lambda p, c, name: p.Query(
            pb.QueryPoints(
                collection_name=name,
                query=pb.Query(
                    nearest_with_mmr=pb.NearestInputWithMmr(
                        nearest=pb.VectorInput(dense=pb.DenseVector(data=[1, 2, 3, 4])),
                        mmr=pb.Mmr(diversity=2.0),
                    )
                ),
            )
        ),
        ARG,
        "Validation error in body: [query.variant.mmr.diversity: value 2.0 invalid, must be "
        "from 0.0 to 1.0]",
    ),
    (
        "rrf k of 0",
        lambda p, c, name: p.Query(
            pb.QueryPoints(
                collection_name=name,
                prefetch=[
                    pb.PrefetchQuery(
                        query=pb.Query(
                            nearest=pb.VectorInput(dense=pb.DenseVector(data=[1, 2, 3, 4]))
                        )
                    )
                ],
                query=pb.Query(rrf=pb.Rrf(k=0)),
            )
        ),
        ARG,
        "Validation error in body: [query.variant.k: value 0 invalid, must be 1 or larger]",
    ),
    (
        "relevance feedback without feedback",
        lambda p, c, name: p.Query(
            pb.QueryPoints(
                collection_name=name,
                query=pb.Query(relevance_feedback=_feedback([], b=1.0)),
            )
        ),
        ARG,
        "Validation error in body: [query.variant.feedback: feedback elements must be non-empty]",
    ),
    (
        "relevance feedback with a negative b, in a prefetch",
        lambda p, c, name: p.Query(
            pb.QueryPoints(
                collection_name=name,
                prefetch=[
                    pb.PrefetchQuery(
                        query=pb.Query(relevance_feedback=_feedback([1.0, 0, 0, 0], b=-1.0))
                    )
                ],
                query=pb.Query(fusion=pb.Fusion.RRF),
            )
        ),
        ARG,
        "Validation error in body: [prefetch[0].query.variant.strategy.variant.b: value -1.0 "
        "invalid, must be 0.0 or larger]",
    ),
    (
        "has_id with a uuid that is not one",
        _count_where(pb.Condition(has_id=pb.HasIdCondition(has_id=[pb.PointId(uuid="zz")]))),
        ARG,
        "Unable to parse UUID: zz",
    ),
    (
        "geo_radius without a center",
        _count_where(
            pb.Condition(field=pb.FieldCondition(key="a", geo_radius=pb.GeoRadius(radius=1.0)))
        ),
        ARG,
        "Malformed GeoRadius type",
    ),
    (
        "geo_bounding_box without corners",
        _count_where(
            pb.Condition(field=pb.FieldCondition(key="a", geo_bounding_box=pb.GeoBoundingBox()))
        ),
        ARG,
        "Malformed GeoBoundingBox type",
    ),
]


@server_only
@pytest.mark.parametrize(
    ("call", "code", "text"),
    [case[1:] for case in STUB_CASES],
    ids=[case[0] for case in STUB_CASES],
)
def test_invalid_requests_through_the_stubs(
    g: QdrantClient,
    server: ServerProcess,
    coll: str,
    call: Callable[[Any, Any, str], Any],
    code: grpc.StatusCode,
    text: str,
) -> None:
    with grpc.insecure_channel(f"{server.host}:{server.grpc_port}") as channel:
        points, collections = pb.PointsStub(channel), pb.CollectionsStub(channel)
        before = {c.name for c in g.get_collections().collections}
        assert failure(lambda: call(points, collections, coll)) == (code, text.format(name=coll))
        assert g.count(coll, exact=True).count == 0
        assert {c.name for c in g.get_collections().collections} == before


@server_only
def test_invalid_requests_through_the_client(g: QdrantClient, coll: str) -> None:
    missing = f"{coll}_missing"
    assert failure(lambda: g.get_collection(missing)) == (
        MISSING,
        f"Not found: Collection `{missing}` doesn't exist!",
    )
    assert failure(
        lambda: g.create_collection(
            coll, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
        )
    ) == (grpc.StatusCode.ALREADY_EXISTS, f"Wrong input: Collection `{coll}` already exists!")
    assert failure(
        lambda: g.create_collection(
            "bad/name", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
        )
    ) == (
        ARG,
        'Validation error in body: [collection_name: collection name cannot contain "/" char]',
    )
    assert failure(lambda: g.scroll(coll, limit=0)) == (ARG, LIMIT0)
    assert failure(lambda: g.retrieve(coll, ["zz"])) == (ARG, "Unable to parse UUID: zz")
    assert failure(lambda: g.upsert(coll, [models.PointStruct(id=1, vector=[1.0, 2.0])])) == (
        ARG,
        "Wrong input: Vector dimension error: expected dim: 4, got 2",
    )
    assert failure(lambda: g.query_points(coll, query=[1.0] * DIM, using="nope")) == (
        ARG,
        "Wrong input: Not existing vector name error: nope",
    )
    assert failure(
        lambda: g.update_vectors(coll, points=[models.PointVectors(id=77, vector=[1.0] * DIM)])
    ) == (MISSING, "Not found: No point with id 77 found")
    assert g.count(coll, exact=True).count == 0
    assert not g.collection_exists(missing)


@server_only
def test_recommend_with_limit_0_finds_nothing(server: ServerProcess, coll: str) -> None:
    """Qdrant's gRPC sets no rule on a recommendation's limit (REST's is at least 1): a limit
    of 0, an unset one too, answers no points; a batch answers each item by its own."""
    with grpc.insecure_channel(f"{server.host}:{server.grpc_port}") as channel:
        points = pb.PointsStub(channel)
        points.Upsert(
            pb.UpsertPoints(
                collection_name=coll,
                wait=True,
                points=[pb.PointStruct(id=pid(i), vectors=dense(1, i, 2, 3)) for i in (1, 2, 3)],
            )
        )
        one = pb.RecommendPoints(collection_name=coll, positive=[pid(1)], limit=0)
        assert list(points.Recommend(one).result) == []
        two = pb.RecommendPoints(collection_name=coll, positive=[pid(1)], limit=2)
        batch = points.RecommendBatch(
            pb.RecommendBatchPoints(collection_name=coll, recommend_points=[one, two, one])
        )
        assert [len(r.result) for r in batch.result] == [0, 2, 0]
        missing = pb.RecommendPoints(collection_name=f"{coll}_missing", positive=[pid(1)])
        assert failure(lambda: points.Recommend(missing))[0] == MISSING


@server_only
def test_standard_health_service_answers_serving(server: ServerProcess) -> None:
    with grpc.insecure_channel(f"{server.host}:{server.grpc_port}") as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        assert check(b"") == b"\x08\x01"  # HealthCheckResponse {status: SERVING}
        assert check(b"\x0a\x0dqdrant.Points") == b"\x08\x01"  # any service named


@server_only
def test_delete_vectors_of_no_names_is_accepted(server: ServerProcess, coll: str) -> None:
    """Over gRPC an empty list of vector names deletes nothing and answers OK, as in Qdrant
    (the REST body's validator refuses it; the gRPC message has no such rule)."""
    with grpc.insecure_channel(f"{server.host}:{server.grpc_port}") as channel:
        points = pb.PointsStub(channel)
        points.Upsert(
            pb.UpsertPoints(
                collection_name=coll,
                wait=True,
                points=[pb.PointStruct(id=pb.PointId(num=1), vectors=dense(1, 2, 3, 4))],
            )
        )
        answer = points.DeleteVectors(
            pb.DeletePointVectors(
                collection_name=coll,
                wait=True,
                points_selector=pb.PointsSelector(points=pb.PointsIdsList(ids=[pb.PointId(num=1)])),
                vectors=pb.VectorsSelector(names=[]),
            )
        )
        assert answer.result.status == pb.UpdateStatus.Completed
        got = points.Get(
            pb.GetPoints(
                collection_name=coll,
                ids=[pb.PointId(num=1)],
                with_vectors=pb.WithVectorsSelector(enable=True),
            )
        )
        assert len(got.result) == 1 and len(got.result[0].vectors.vector.data) == 4  # kept
