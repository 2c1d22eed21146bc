"""The form typed requests and plain answers take between peers (cluster mode).

A shard read or write that runs on another peer travels as JSON (orjson): the collection's
own typed values (filters, query plans, selections, write specs, vector columns, points)
with every value tagged by kind, so the receiving peer rebuilds exactly the objects the
sender had. Only the classes registered here are ever built from the wire, never an
arbitrary name, and nothing is pickled: a peer's message is data, not code.

Encoding of a value `v`:
- None, bool, int, str and finite floats: themselves; inf, -inf and nan (which JSON lacks):
  `{"$t": "f", "v": "inf"}`;
- a list: a JSON array of encoded items;
- a dict whose keys are all strings and do not include "$t": an object of encoded values;
  any other dict: `{"$t": "dict", "v": [[key, value], ...]}` (encoded keys and values);
- tuple, frozenset, set, UUID, numpy array and numpy scalar: `{"$t": <kind>, ...}`;
- a registered dataclass or NamedTuple: `{"$t": <class name>, "v": [field values]}`.
The format is versioned by the p2p route that carries it (tessera.cluster.p2p).
"""

from __future__ import annotations

import base64
import dataclasses
import math
import uuid
from typing import Any, cast

import numpy as np
import orjson

from tessera.collection import requests, writes
from tessera.collection import values as v
from tessera.errors import BadRequest
from tessera.query import filter_model, formula, query_model
from tessera.query.payload_path import PayloadPath
from tessera.shard import operations as ops

_CLASSES: dict[str, type] = {}


def _register(*modules: Any) -> None:
    for module in modules:
        for name in dir(module):
            obj = getattr(module, name)
            if not isinstance(obj, type) or obj.__module__ != module.__name__:
                continue
            if dataclasses.is_dataclass(obj) or (
                issubclass(obj, tuple) and hasattr(obj, "_fields")
            ):
                _CLASSES[obj.__name__] = obj


_register(filter_model, query_model, formula, v, requests)
for _cls in (
    PayloadPath,
    writes.Matching,
    writes.WriteSpec,
    ops.DenseColumn,
    ops.ObjectColumn,
):
    _CLASSES[_cls.__name__] = _cls

_PLAIN = (type(None), bool, int, float, str)


def encode(value: Any) -> bytes:
    return orjson.dumps(_enc(value))


def decode(data: bytes) -> Any:
    try:
        return _dec(orjson.loads(data))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BadRequest(f"Bad request: malformed peer message: {exc!r}") from None


def _enc(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"$t": "f", "v": repr(value)}  # JSON has no inf / nan (orjson writes null)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, list):
        return [_enc(item) for item in value]
    if isinstance(value, dict):
        if "$t" not in value and all(isinstance(k, str) for k in value):
            return {k: _enc(item) for k, item in value.items()}
        return {"$t": "dict", "v": [[_enc(k), _enc(item)] for k, item in value.items()]}
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {
            "$t": "nd",
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "b": base64.b64encode(array.tobytes()).decode(),
        }
    if isinstance(value, np.generic):
        return _enc(value.item())
    if isinstance(value, uuid.UUID):
        return {"$t": "uuid", "v": str(value)}
    name = type(value).__name__
    if _CLASSES.get(name) is type(value):
        if dataclasses.is_dataclass(value):
            fields = [getattr(value, f.name) for f in dataclasses.fields(value) if f.init]
        else:
            fields = list(cast(tuple[Any, ...], value))
        return {"$t": name, "v": [_enc(item) for item in fields]}
    if isinstance(value, tuple):
        return {"$t": "tuple", "v": [_enc(item) for item in value]}
    if isinstance(value, frozenset | set):
        return {"$t": type(value).__name__, "v": [_enc(item) for item in value]}
    raise TypeError(f"cannot send a {type(value).__name__} to a peer")


def _dec(value: Any) -> Any:
    if isinstance(value, list):
        return [_dec(item) for item in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("$t")
    if tag is None:
        return {k: _dec(item) for k, item in value.items()}
    if tag == "dict":
        return {_hashable(_dec(k)): _dec(item) for k, item in value["v"]}
    if tag == "nd":
        raw = base64.b64decode(value["b"])
        dtype = np.dtype(value["dtype"])
        if dtype.hasobject:
            raise ValueError("object arrays are not sent between peers")
        return np.frombuffer(raw, dtype=dtype).reshape(value["shape"]).copy()
    if tag == "uuid":
        return uuid.UUID(value["v"])
    if tag == "f":
        if value["v"] not in ("inf", "-inf", "nan"):
            raise ValueError(f"not a non-finite float: {value['v']!r}")
        return float(value["v"])
    if tag == "tuple":
        return tuple(_dec(item) for item in value["v"])
    if tag == "frozenset":
        return frozenset(_hashable(_dec(item)) for item in value["v"])
    if tag == "set":
        return {_hashable(_dec(item)) for item in value["v"]}
    cls = _CLASSES[tag]
    return cls(*(_dec(item) for item in value["v"]))


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value
