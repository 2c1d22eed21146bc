"""Collection routes: create, info, list, exists, delete, payload index create/delete, named
vector create/delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from tessera.api.envelope import expect_object, read_json, write_wait
from tessera.api.render import collection_info
from tessera.collection import vector_names, writes
from tessera.collection.collection import Collection
from tessera.collection_config import build_config, vector_name_problem
from tessera.config_json import decode_create, decode_update
from tessera.config_model import CreateCollection, UpdateCollection
from tessera.errors import BadRequest, UnprocessableEntity
from tessera.query.payload_path import parse_path
from tessera.storage.toc import TableOfContents, check_no_control_chars, validate_collection_name


def toc_of(request: Request) -> TableOfContents:
    toc: TableOfContents = request.app.state.toc
    return toc


def path_name(request: Request) -> str:
    """The collection named in the path, checked as Qdrant checks every collection path
    before a lookup: 1-255 characters (an empty one never routes here: `not_found`), no
    control character."""
    name: str = request.path_params["collection_name"]
    if len(name) > 255:
        raise UnprocessableEntity(
            "Validation error in path parameters: [name: length must be between 1 and 255]"
        )
    check_no_control_chars(name)
    return name


def collection_of(request: Request) -> Collection:
    return toc_of(request).get(path_name(request))


async def list_collections(request: Request) -> Callable[[], Any]:
    toc = toc_of(request)
    return lambda: {"collections": [{"name": n} for n in toc.names()]}


def operation_timeout(request: Request, toc: TableOfContents) -> float | None:
    """Qdrant's `timeout` (seconds; validated by envelope.check_timeout) of a collection
    operation: in cluster mode, how long to wait for this node to apply the committed
    change. Standalone applies it at once and does not read it."""
    raw = request.query_params.get("timeout")
    if raw is None or toc.cluster is None or not raw.isdigit():
        return None
    return float(raw)


async def create_collection(request: Request) -> Callable[[], Any]:
    name = request.path_params["collection_name"]
    validate_collection_name(name)
    body = decode_create(await read_json(request, required=False))
    toc = toc_of(request)
    return prepare_create(toc, name, body, operation_timeout(request, toc))


def prepare_create(
    toc: TableOfContents, name: str, body: CreateCollection, timeout: float | None = None
) -> Callable[[], bool]:
    """A create request (REST or gRPC) checked completely; the call creates the collection."""
    validate_collection_name(name)
    config = build_config(body)

    def run() -> bool:
        toc.create(name, config, timeout, body.auto_shards)
        return True

    return run


async def update_collection(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    body = decode_update(await read_json(request, required=False))
    toc = toc_of(request)
    return prepare_update(toc, collection, body, operation_timeout(request, toc))


def prepare_update(
    toc: TableOfContents,
    collection: Collection,
    body: UpdateCollection,
    timeout: float | None = None,
) -> Callable[[], bool]:
    def run() -> bool:
        # In cluster mode, through the cluster.
        toc.update_config(collection.name, body, timeout)
        return True

    return run


async def delete_collection(request: Request) -> Callable[[], Any]:
    name = path_name(request)
    toc = toc_of(request)
    timeout = operation_timeout(request, toc)
    return lambda: toc.delete(name, timeout)


async def collection_exists(request: Request) -> Callable[[], Any]:
    name = path_name(request)
    toc = toc_of(request)
    return lambda: {"exists": toc.exists(name)}


async def get_collection(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    collection.require_loaded()
    return lambda: collection_info(collection)


async def create_index(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    wait = write_wait(request)
    body = expect_object(await read_json(request))
    field = body.get("field_name")
    if not isinstance(field, str) or not field:
        raise BadRequest("Format error in JSON body: missing field `field_name`")
    raw = body.get("field_schema")
    schema = None if raw is None else writes.parse_field_schema(raw)
    return prepare_create_index(toc_of(request), collection, field, schema, wait)


def prepare_create_index(
    toc: TableOfContents,
    collection: Collection,
    field: str,
    schema: writes.FieldSchema | None,
    wait: bool,
) -> Callable[[], dict[str, Any]]:
    """In cluster mode (as in Qdrant) a consensus operation: every node applies it."""
    parse_path(field)  # Qdrant's `JsonPath`: refused before the schema is looked at
    if schema is None:
        raise BadRequest(
            "Bad request: Can't auto-detect field type, "
            "please specify `field_schema` in the request"
        )
    writes.check_nested(field, schema)
    wire = schema.wire()
    return lambda: toc.create_field_index(collection, field, wire, wait).to_json()


async def delete_index(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    wait = write_wait(request)
    field = request.path_params["field_name"]
    return prepare_delete_index(toc_of(request), collection, field, wait)


def prepare_delete_index(
    toc: TableOfContents, collection: Collection, field: str, wait: bool
) -> Callable[[], dict[str, Any]]:
    return lambda: toc.delete_field_index(collection, field, wait).to_json()


async def create_vector_name(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    wait = write_wait(request)
    name = request.path_params["vector_name"]
    problem = vector_name_problem(name)
    if problem is not None:  # Qdrant validates the path before it reads the body
        raise UnprocessableEntity(f"Validation error in path parameters: [vector_name: {problem}]")
    config = vector_names.parse_vector_name_config(await read_json(request))
    return prepare_create_vector_name(toc_of(request), collection, name, config, wait)


def prepare_create_vector_name(
    toc: TableOfContents,
    collection: Collection,
    name: str,
    config: dict[str, Any],
    wait: bool,
) -> Callable[[], dict[str, Any]]:
    """`config`: the new vector's params JSON (vector_names.vector_name_config). In cluster
    mode (as in Qdrant) a consensus operation: every node applies it."""
    write = vector_names.create_vector_name(name, config)
    return lambda: toc.update_vector_names(collection, write, wait).to_json()


async def delete_vector_name(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    wait = write_wait(request)
    name = request.path_params["vector_name"]
    return prepare_delete_vector_name(toc_of(request), collection, name, wait)


def prepare_delete_vector_name(
    toc: TableOfContents, collection: Collection, name: str, wait: bool
) -> Callable[[], dict[str, Any]]:
    write = vector_names.delete_vector_name(name)
    return lambda: toc.update_vector_names(collection, write, wait).to_json()
