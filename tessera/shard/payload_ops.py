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
    """`values` merged into the payload (at the nested path `key` when given), as Qdrant
    merges: a null value removes its key."""
    out = copy.deepcopy(old) if old else {}
    if key is None:
        return _merged(out, values)
    holder: dict[str, Any] = {"": out}
    _set_at(holder, "", _steps(parse_key_path(key)), values)
    result: dict[str, Any] = holder[""]
    return result


# A path step: a key (str), an array index (int) or every element (None).
Step = str | int | None


def _steps(path: list[tuple[str, list[int | None]]]) -> list[Step]:
    steps: list[Step] = []
    for name, indexes in path:
        steps.append(name)
        steps.extend(indexes)
    return steps


def _merged(dest: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    for k, v in values.items():
        if v is None:
            dest.pop(k, None)
        else:
            dest[k] = copy.deepcopy(v)
    return dest


def _set_at(container: Any, slot: Any, steps: list[Step], values: dict[str, Any]) -> None:
    """Set along `steps` from `container[slot]`, as Qdrant does: a key step makes what it
    meets an object (a missing key an empty one, any other value is replaced), an array step
    makes it an array (anything else becomes `[]`, with nothing under it to set) and walks
    the element it names (none past the end) or every element; where the path ends, the
    value there is merged with `values` (anything but an object is replaced first)."""
    data = container[slot]
    step, rest = steps[0], steps[1:]
    if isinstance(step, str):
        if not isinstance(data, dict):
            data = container[slot] = {}
        child = data.setdefault(step, {})
        if rest:
            _set_at(data, step, rest, values)
        else:
            data[step] = _merged(child if isinstance(child, dict) else {}, values)
        return
    if not isinstance(data, list):
        container[slot] = []
        return
    targets = range(len(data)) if step is None else [step] if step < len(data) else []
    for i in targets:
        if rest:
            _set_at(data, i, rest, values)
        else:
            item = data[i]
            data[i] = _merged(item if isinstance(item, dict) else {}, values)


def delete_keys(old: dict[str, Any] | None, keys: list[str]) -> dict[str, Any] | None:
    if not old:
        return old
    out = copy.deepcopy(old)
    for key in keys:
        _delete_at(out, _steps(parse_key_path(key)))
    return out


def _delete_at(data: Any, steps: list[Step]) -> None:
    """Delete along `steps`, as Qdrant does: a missing or mistyped step deletes nothing; a
    path ending in a key removes it, one ending in `[]` empties the array, one ending in an
    index deletes nothing (deleting one element by index would not be idempotent)."""
    step, rest = steps[0], steps[1:]
    if not rest:
        if isinstance(step, str) and isinstance(data, dict):
            data.pop(step, None)
        elif step is None and isinstance(data, list):
            data.clear()
        return
    if isinstance(step, str):
        if isinstance(data, dict) and step in data:
            _delete_at(data[step], rest)
    elif isinstance(data, list):
        for item in data if step is None else data[step : step + 1]:
            _delete_at(item, rest)
