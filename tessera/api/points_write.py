"""Write routes over points; each parses fully, then hands a `prepare` to the collection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from tessera.api import points_parse as parse
from tessera.api.collections import collection_of
from tessera.api.envelope import expect_object, read_json, write_wait
from tessera.api.shard_selector import selected_for_write
from tessera.collection.collection import Collection
from tessera.collection.no_wait import NO_WAIT
from tessera.errors import UnprocessableEntity


def _writer(
    build: Callable[[Any, dict[str, Any]], parse.Prepare | list[parse.Prepare]],
) -> Callable[[Request], Any]:
    """A write route: `build` parses the body into its write, or the writes it runs in
    order (a delete_vectors with both a filter and points)."""

    async def work(request: Request) -> Callable[[], Any]:
        collection = collection_of(request)
        wait = write_wait(request)
        body = expect_object(await read_json(request))
        built = build(collection.config, body)
        steps = built if isinstance(built, list) else [built]
        target = selected_for_write(collection, body)
        return lambda: run_steps(target, steps, wait)

    return work


upsert_points = _writer(parse.parse_upsert)
delete_points = _writer(lambda config, body: parse.parse_delete(body))
set_payload = _writer(lambda config, body: parse.parse_set_payload(body, overwrite=False))
overwrite_payload = _writer(lambda config, body: parse.parse_set_payload(body, overwrite=True))
delete_payload = _writer(lambda config, body: parse.parse_delete_payload(body))
clear_payload = _writer(lambda config, body: parse.parse_clear_payload(body))
update_vectors = _writer(parse.parse_update_vectors)
delete_vectors = _writer(parse.parse_delete_vectors)


def run_steps(target: Collection, steps: list[parse.Prepare], wait: bool) -> dict[str, Any]:
    """The operations of one request (or batch item) in order; the last one's result."""
    result = target.update(steps[0], wait)
    if len(steps) > 1:
        # The first has changed the collection: a quick write on the event loop may not
        # stop after it to be run again from the start (`WouldWait`), so the rest wait.
        no_wait = NO_WAIT.set(False)
        try:
            for step in steps[1:]:
                result = target.update(step, wait)
        finally:
            NO_WAIT.reset(no_wait)
    out: dict[str, Any] = result.to_json()
    return out


async def batch_update(request: Request) -> Callable[[], Any]:
    collection = collection_of(request)
    wait = write_wait(request)
    return prepare_batch(collection, expect_object(await read_json(request)), wait)


def prepare_batch(
    collection: Collection, body: dict[str, Any], wait: bool
) -> Callable[[], list[dict[str, Any]]]:
    operations = body.get("operations")
    if not isinstance(operations, list):
        raise UnprocessableEntity("Format error in JSON body: missing field `operations`")
    prepares = [parse.parse_batch_operation(collection.config, op) for op in operations]
    targets = [selected_for_write(collection, _operation_body(op)) for op in operations]
    return run_batch(list(zip(targets, prepares, strict=True)), wait)


def run_batch(
    operations: list[tuple[Collection, list[parse.Prepare]]], wait: bool
) -> Callable[[], list[dict[str, Any]]]:
    """A batch of writes, each on the collection (view) its shard keys select."""

    def run() -> list[dict[str, Any]]:
        # One WAL record per operation, applied in order, as Qdrant answers one result per
        # item (an item of two operations: the last one's).
        return [run_steps(target, steps, wait) for target, steps in operations]

    return run


def _operation_body(operation: Any) -> dict[str, Any]:
    """The body of one batch operation (`{"upsert": {...}}`), where its `shard_key` is."""
    if isinstance(operation, dict) and len(operation) == 1:
        (inner,) = operation.values()
        if isinstance(inner, dict):
            return inner
    return {}
