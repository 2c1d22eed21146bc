"""Payload edits as Qdrant applies them: set (merge, or at a nested `key`), delete keys.

Every function returns a new dict and never mutates its input: segments share payload dicts
with flush snapshots.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tessera.errors import BadRequest

_SEGMENT = re.compile(r"^([^\[\]]+)((?:\[\d*\])*)$")


def parse_key_path(path: str) -> list[tuple[str, list[int | None]]]:
    """`a.b[].c[0]` -> [("a", []), ("b", [None]), ("c", [0])]; None means every element."""
    if not path:
        raise BadRequest("Wrong input: empty payload key path")
    out: list[tuple[str, list[int | None]]] = []
    for part in _split_dots(path):
        m = _SEGMENT.match(part)
        if not m:
            raise BadRequest(f"Wrong input: invalid payload key path `{path}`")
        name = m.group(1)
        if name.startswith('"') and name.endswith('"') and len(name) >= 2:
            name = name[1:-1]
        brackets = re.findall(r"\[(\d*)\]", m.group(2))
        out.append((name, [int(b) if b else None for b in brackets]))
    return out


def _split_dots(path: str) -> list[str]:
    parts: list[str] = []
    buf = ""
    quoted = False
    for ch in path:
        if ch == '"':
            quoted = not quoted
            buf += ch
        elif ch == "." and not quoted:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    if any(not p for p in parts):
        raise BadRequest(f"Wrong input: invalid payload key path `{path}`")
    return parts


def set_payload(
    old: dict[str, Any] | None, values: dict[str, Any], key: str | None
) -> dict[str, Any]:
    out = copy.deepcopy(old) if old else {}
    if key is None:
        out.update(copy.deepcopy(values))
        return out
    _set_at(out, parse_key_path(key), values)
    return out


def _set_at(
    node: dict[str, Any], path: list[tuple[str, list[int | None]]], values: dict[str, Any]
) -> None:
    name, indexes = path[0]
    rest = path[1:]
    if not indexes:
        child = node.get(name)
        if not isinstance(child, dict):
            child = {}
            node[name] = child
        if rest:
            _set_at(child, rest, values)
        else:
            child.update(copy.deepcopy(values))
        return
    arr = node.get(name)
    if not isinstance(arr, list):
        return
    for target in _select(arr, indexes):
        if rest:
            _set_at(target, rest, values)
        else:
            target.update(copy.deepcopy(values))


def _select(arr: list[Any], indexes: list[int | None]) -> list[dict[str, Any]]:
    items: list[Any] = [arr]
    for idx in indexes:
        nxt: list[Any] = []
        for it in items:
            if not isinstance(it, list):
                continue
            if idx is None:
                nxt.extend(it)
            elif idx < len(it):
                nxt.append(it[idx])
        items = nxt
    return [it for it in items if isinstance(it, dict)]


def delete_keys(old: dict[str, Any] | None, keys: list[str]) -> dict[str, Any] | None:
    if not old:
        return old
    out = copy.deepcopy(old)
    for key in keys:
        _delete_at(out, parse_key_path(key))
    return out


def _delete_at(node: Any, path: list[tuple[str, list[int | None]]]) -> None:
    if not isinstance(node, dict):
        return
    name, indexes = path[0]
    rest = path[1:]
    if name not in node:
        return
    if not indexes and not rest:
        del node[name]
        return
    if not indexes:
        _delete_at(node[name], rest)
        return
    arr = node[name]
    if not isinstance(arr, list):
        return
    if not rest:
        # `a[0]` deletes that element; `a[]` empties the array.
        last = indexes[-1]
        parents: list[Any] = [arr]
        for idx in indexes[:-1]:
            parents = [
                x
                for p in parents
                if isinstance(p, list)
                for x in (p if idx is None else p[idx : idx + 1])
            ]
        for parent in parents:
            if isinstance(parent, list):
                if last is None:
                    parent.clear()
                elif last < len(parent):
                    del parent[last]
        return
    for target in _select(arr, indexes):
        _delete_at(target, rest)
