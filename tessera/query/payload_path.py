"""Payload key paths (`a.b`, `a[].b`, `a[0].b`, `"dotted.key".c`) and value extraction.

The grammar and the flattening rules follow Qdrant's `JsonPath`, as qdrant-client's local
mode reproduces them:

- a key is a run of alphanumerics, `_` and `-`, or any text between double quotes;
- `[]` walks every element of an array, `[N]` one element; brackets may be chained;
- segments are joined by `.`.

Extraction has two shapes. *Flat* values (what `match`, `range` and `geo` see) unwrap an
array found at the end of the path by one level, so `{"a": [1, [2]]}` yields `1` and `[2]`.
*Raw* values (what `is_empty`, `is_null` and `values_count` see) keep arrays whole.
A path that resolves nowhere gives an empty list in both shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tessera.errors import BadRequest

# One parsed segment: a str is an object key, an int an array index, None is `[]`.
PathItem = str | int | None

_MAX_INDEX = 2**64 - 1


@dataclass(frozen=True)
class PayloadPath:
    text: str
    items: tuple[PathItem, ...]


def _is_key_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_-"


def _parse(text: str) -> tuple[PathItem, ...]:
    items: list[PathItem] = []
    pos = 0
    n = len(text)
    if n == 0:
        raise ValueError("empty path")
    while True:
        if text[pos] == '"':
            end = text.find('"', pos + 1)
            if end == -1:
                raise ValueError("unterminated quote")
            items.append(text[pos + 1 : end])
            pos = end + 1
        else:
            start = pos
            while pos < n and _is_key_char(text[pos]):
                pos += 1
            if pos == start:
                raise ValueError(f"unexpected character {text[pos]!r} at {pos}")
            items.append(text[start:pos])
        while pos < n and text[pos] == "[":
            end = text.find("]", pos + 1)
            if end == -1:
                raise ValueError("unterminated bracket")
            inner = text[pos + 1 : end]
            if inner == "":
                items.append(None)
            elif inner.isascii() and inner.isdigit() and int(inner) <= _MAX_INDEX:
                items.append(int(inner))
            else:
                raise ValueError(f"bad array index {inner!r}")
            pos = end + 1
        if pos == n:
            return tuple(items)
        if text[pos] != "." or pos + 1 == n:
            raise ValueError(f"unexpected character {text[pos]!r} at {pos}")
        pos += 1


@lru_cache(maxsize=4096)
def parse_path(text: str) -> PayloadPath:
    """Parse a key path; raises BadRequest naming the path when it is malformed, in the
    words of Qdrant's `JsonPath` as its JSON body reader reports them (gRPC's conversion
    says the same without the body's prefix: `api.grpc_errors`)."""
    try:
        return PayloadPath(text, _parse(text))
    except ValueError:
        raise BadRequest(f"{BAD_PATH_PREFIX}'{text}'") from None


BAD_PATH_PREFIX = "Format error in JSON body: Invalid json path: "


def check_paths(texts: list[str]) -> list[str]:
    """`texts` unchanged when every one is a key path (payload selectors, keys to delete):
    Qdrant parses them as `JsonPath` on the wire, so a malformed one refuses the request."""
    for text in texts:
        parse_path(text)
    return texts


def _walk(data: Any, items: tuple[PathItem, ...], pos: int, out: list[Any]) -> None:
    # Recursion depth is bounded by the path length, not by the payload.
    if pos == len(items):
        out.append(data)
        return
    item = items[pos]
    if isinstance(item, str):
        if isinstance(data, dict) and item in data:
            _walk(data[item], items, pos + 1, out)
    elif item is None:
        if isinstance(data, list):
            for element in data:
                _walk(element, items, pos + 1, out)
    elif isinstance(data, list) and item < len(data):
        _walk(data[item], items, pos + 1, out)


def raw_values(payload: dict[str, Any], path: PayloadPath | str) -> list[Any]:
    """Every value the path selects, arrays kept whole ([] when it selects nothing)."""
    p = parse_path(path) if isinstance(path, str) else path
    items = p.items
    if len(items) == 1:
        # The overwhelmingly common case: a top-level key.
        key = items[0]
        if isinstance(key, str) and key in payload:
            return [payload[key]]
        return []
    out: list[Any] = []
    _walk(payload, items, 0, out)
    return out


def extract_values(payload: dict[str, Any], path: PayloadPath | str) -> list[Any]:
    """The values the path selects, an array at the end of the path unwrapped one level."""
    out: list[Any] = []
    for value in raw_values(payload, path):
        if isinstance(value, list):
            out.extend(value)
        else:
            out.append(value)
    return out


def is_empty_values(raw: list[Any]) -> bool:
    """`is_empty`: nothing selected, or every selected value is null or an empty array."""
    return all(v is None or (isinstance(v, list) and not v) for v in raw)


def is_null_values(raw: list[Any]) -> bool:
    """`is_null`: a selected value is null, or is an array holding a null one level down."""
    for v in raw:
        if v is None:
            return True
        if isinstance(v, list) and any(e is None for e in v):
            return True
    return False


def value_counts(raw: list[Any]) -> list[int]:
    """The counts `values_count` tests: one per selected value (an array counts its length,
    null counts 0), and a single 0 when nothing or only nulls are selected. A point matches
    when any one count satisfies every bound."""
    if all(v is None for v in raw):
        return [0]
    return [0 if v is None else len(v) if isinstance(v, list) else 1 for v in raw]


def nested_elements(payload: dict[str, Any], path: PayloadPath | str) -> list[dict[str, Any]]:
    """The objects a nested filter is tried against: the object elements of the arrays the
    key selects. `key` and `key[]` are the same; a non-array value offers no elements."""
    text = path if isinstance(path, str) else path.text
    if len(text) > 2 and text.endswith("[]"):
        text = text[:-2]
    out: list[dict[str, Any]] = []
    for value in raw_values(payload, text):
        if isinstance(value, list):
            out.extend(e for e in value if isinstance(e, dict))
    return out
