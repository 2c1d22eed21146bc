"""Qdrant's gRPC `Vector` message -> a typed vector: its kind and its value as arrays.

Kinds: "dense" (a 1-D array), "sparse" ((u32 indices, values)), "multi" (a list of 1-D
arrays), "document" (the `Document` message: server-side BM25 infers its sparse vector) and
"inference" (an image or object input, which Tessera does not infer). The deprecated form
(`data` with `indices` or `vectors_count`) is read as Qdrant reads it. Nothing is checked
against a collection here: `vectors_parse.checked_vector` does that for every transport.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qdrant_client import grpc as pb

from tessera.api.grpc_convert import packed_f32, payload
from tessera.api.vectors_parse import VectorRule
from tessera.errors import BadRequest, inference_unavailable
from tessera.query.bm25 import embed


def sparse(indices: Any, values: Any) -> tuple[Any, Any]:
    return np.asarray(indices, dtype=np.uint32), np.asarray(values, dtype=np.float64)


def _flat_multi(data: Any, count: int) -> list[Any]:
    values = np.asarray(data, dtype=np.float64)
    if not len(values) and count:
        # Checked before anything is made: 2^31 empty rows held the interpreter and grew
        # the process by gigabytes (Qdrant refuses it at once, in these words).
        raise BadRequest(
            "Unable to convert to multi-dense vector: Empty multi-vector data with vectors "
            f"count: {count}"
        )
    # Qdrant's `validate_multi_vector_len`, which its request validation runs first.
    if count == 0:
        raise VectorRule(_NO_ROWS, "data", _NO_ROWS)
    if len(values) % count:
        shown = (
            "Validation error: invalid dense vector length for vectors count "
            f'[{{"vector_len": Number({len(values)}), "vectors_count": Number({count})}}]'
        )
        raise VectorRule(shown, "data", shown)
    return list(values.reshape(count, -1))


_NO_ROWS = "vectors count must be greater than 0"
_BOTH_FORMS = "`indices` and `vectors_count` cannot be both specified"


def vector(v: pb.Vector) -> tuple[str, Any]:
    """One vector: the `vector` oneof, or the deprecated `data`/`indices`/`vectors_count`."""
    kind = v.WhichOneof("vector")
    if kind == "dense":
        return "dense", np.asarray(v.dense.data, dtype=np.float64)
    if kind == "sparse":
        return "sparse", sparse(v.sparse.indices, v.sparse.values)
    if kind == "multi_dense":
        return "multi", [np.asarray(row.data, dtype=np.float64) for row in v.multi_dense.vectors]
    if kind == "document":
        return "document", v.document
    if kind is not None:  # image, object
        return "inference", None
    if v.HasField("indices"):
        if v.HasField("vectors_count"):
            raise VectorRule(_BOTH_FORMS, "indices", _BOTH_FORMS)
        return "sparse", sparse(v.indices.data, v.data)
    if v.HasField("vectors_count"):
        return "multi", _flat_multi(v.data, v.vectors_count)
    return "dense", np.asarray(v.data, dtype=np.float64)


def vector_fast(v: pb.Vector) -> tuple[str, Any]:
    """`vector(v)`, but a dense vector's floats come straight from its wire bytes (no Python
    float per component): for upserts."""
    kind = v.WhichOneof("vector")
    plain = kind is None and not v.HasField("indices") and not v.HasField("vectors_count")
    if kind == "dense" or plain:
        packed = packed_f32(v.dense if kind == "dense" else v)
        if packed is not None:
            return "dense", packed
    return vector(v)


def vectors(vs: pb.Vectors, fast: bool = False) -> dict[str, tuple[str, Any]]:
    """A point's `Vectors`: {name: (kind, value)}, the unnamed vector under ""."""
    read = vector_fast if fast else vector
    kind = vs.WhichOneof("vectors_options")
    if kind == "vector":
        return {"": read(vs.vector)}
    if kind == "vectors":
        named = vs.vectors.vectors
        return {name: read(named[name]) for name in named}
    return {}


def inferred(kind: str, value: Any, query: bool) -> tuple[str, Any]:
    """A document as the sparse vector BM25 gives it (query or document weights); an
    inference input refused; any other vector as it is."""
    if kind == "document":
        indices, weights = embed(value.text, value.model, payload(value.options), query)
        return "sparse", sparse(indices, weights)
    if kind == "inference":
        raise inference_unavailable()
    return kind, value
