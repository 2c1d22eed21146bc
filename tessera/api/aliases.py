"""Alias routes, as Qdrant's: `POST /collections/aliases` (an action list, all or none),
`GET /aliases`, `GET /collections/{collection_name}/aliases`. The gRPC twins
(tessera.api.grpc_collections) share `parse_actions` and `describe`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from tessera.api.collections import operation_timeout, toc_of
from tessera.api.envelope import expect_object, read_json
from tessera.errors import BadRequest, UnprocessableEntity
from tessera.storage.aliases import AliasAction, CreateAlias, DeleteAlias, RenameAlias
from tessera.storage.toc import TableOfContents

_FORBIDDEN = '<>:"/\\|?*\x00\x1f'
_FIELDS: dict[str, tuple[str, ...]] = {
    "create_alias": ("collection_name", "alias_name"),
    "rename_alias": ("old_alias_name", "new_alias_name"),
    "delete_alias": ("alias_name",),
}


def check_alias_name(where: str, name: str) -> None:
    """Qdrant's validator of a new alias name (REST and gRPC)."""
    if not 1 <= len(name) <= 255:
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{where}: length must be between 1 and 255]"
        )
    for ch in _FORBIDDEN:
        if ch in name:
            raise UnprocessableEntity(
                f'Validation error in JSON body: [{where}: name cannot contain "{ch}" char]'
            )


def parse_action(index: int, raw: Any) -> AliasAction:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise BadRequest(
            f"Format error in JSON body: actions[{index}]: expected one of "
            "`create_alias`, `rename_alias`, `delete_alias`"
        )
    ((kind, body),) = raw.items()
    fields = _FIELDS.get(kind)
    if fields is None:
        raise BadRequest(
            f"Format error in JSON body: actions[{index}]: unknown variant `{kind}`, expected "
            "one of `create_alias`, `rename_alias`, `delete_alias`"
        )
    if not isinstance(body, dict):
        raise BadRequest(f"Format error in JSON body: actions[{index}].{kind} must be an object")
    values: list[str] = []
    for field in fields:
        value = body.get(field)
        if not isinstance(value, str):
            raise BadRequest(
                f"Format error in JSON body: actions[{index}].{kind}: missing field `{field}`"
                if value is None
                else f"Format error in JSON body: actions[{index}].{kind}.{field}: "
                "invalid type, expected a string"
            )
        values.append(value)
    if kind == "create_alias":
        check_alias_name(f"actions[{index}].create_alias.alias_name", values[1])
        return CreateAlias(values[0], values[1])
    if kind == "rename_alias":
        check_alias_name(f"actions[{index}].rename_alias.new_alias_name", values[1])
        return RenameAlias(values[0], values[1])
    return DeleteAlias(values[0])


def parse_actions(body: Any) -> list[AliasAction]:
    actions = expect_object(body).get("actions")
    if not isinstance(actions, list):
        raise BadRequest("Format error in JSON body: missing field `actions`")
    return [parse_action(i, raw) for i, raw in enumerate(actions)]


def describe(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"aliases": [{"alias_name": a, "collection_name": c} for a, c in pairs]}


def prepare_update(
    toc: TableOfContents, actions: list[AliasAction], timeout: float | None = None
) -> Callable[[], bool]:
    def run() -> bool:
        toc.update_aliases(actions, timeout)
        return True

    return run


async def update_aliases(request: Request) -> Callable[[], Any]:
    toc = toc_of(request)
    timeout = operation_timeout(request, toc)
    return prepare_update(toc, parse_actions(await read_json(request)), timeout)


async def list_aliases(request: Request) -> Callable[[], Any]:
    toc = toc_of(request)
    return lambda: describe(toc.aliases.items())


async def list_collection_aliases(request: Request) -> Callable[[], Any]:
    toc = toc_of(request)
    name = request.path_params["collection_name"]
    return lambda: describe([(a, name) for a in toc.aliases.of(name)])
