"""Turning the JSON vectors of a request into columnar, validated operation columns.

Everything a point carries is checked against the collection config here, before anything
reaches the WAL: names, dimensions, sparse index rules, multivector shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tessera.collection.writes import DenseColumn, ObjectColumn, VectorColumn
from tessera.collection_config import CollectionConfig
from tessera.errors import BadRequest, UnprocessableEntity, inference_unavailable
from tessera.query.bm25 import infer as bm25_infer
from tessera.query.bm25 import is_document, names_a_model

UNNAMED = ""


def unknown_name(name: str) -> BadRequest:
    return BadRequest(f"Wrong input: Not existing vector name error: {name}")


class VectorRule(UnprocessableEntity):
    """A vector breaking a rule of Qdrant's validator. Its message names the place as a
    query names it; at a point of an upsert or update (`at_point`) Qdrant names the point
    and, for a named vector, `?` for the name: `points[0].vector.?.indices: ...`."""

    def __init__(self, message: str, field: str, shown: str) -> None:
        super().__init__(message)
        self.field = field
        self.shown = shown

    def place(self, index: int, named: bool) -> str:
        return f"points[{index}].vector.{'?.' if named else ''}{self.field}: {self.shown}"

    def at_point(self, index: int, named: bool) -> UnprocessableEntity:
        return UnprocessableEntity(f"Validation error in JSON body: [{self.place(index, named)}]")

    def at_grpc_point(self, index: int, named: bool) -> BadRequest:
        """The same failure in a gRPC request's point `index`: Qdrant's validation of the
        request's `Vector` messages (`Vectors.vectors_options`, a named map's values under
        `[]`), before anything else is read, in the field path `validator` flattens."""
        where = "vectors.[]." if named else ""
        return BadRequest(
            f"Validation error in body: [points[{index}].vectors.vectors_options.{where}"
            f"{self.field}: {self.shown}]"
        )


class EmptyDense(BadRequest):
    """A dense vector without components: a dimension error, except for the unnamed vector
    of a point, which Qdrant's validator refuses first (`EMPTY_DENSE`)."""


EMPTY_DENSE = "dense vector must not be empty"


def _repeated() -> VectorRule:
    return VectorRule(
        "Validation error in JSON body: [vector.indices: must be unique]",
        "indices",
        "Validation error: must be unique [{}]",
    )


def _uneven() -> VectorRule:
    return VectorRule(
        "Validation error in JSON body: [vector.values: must be the same length as indices]",
        "values",
        "Validation error: must be the same length as indices [{}]",
    )


MODEL_RULE = "length must be at least 1"


def check_model(raw: Any) -> None:
    """A Document, Image or InferenceObject with an empty `model` breaks Qdrant's validator
    (`length(min = 1)`), which runs before any inference or embedding."""
    if isinstance(raw, dict) and raw.get("model") == "" and names_a_model(raw):
        raise VectorRule(
            f"Validation error in JSON body: [vector.model: {MODEL_RULE}]", "model", MODEL_RULE
        )


def unnamed_sparse() -> BadRequest:
    return BadRequest("Wrong input: a sparse vector must be given under its name")


def dim_error(expected: int, got: int) -> BadRequest:
    return BadRequest(f"Wrong input: Vector dimension error: expected dim: {expected}, got {got}")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _dense_array(raw: Any, size: int) -> np.ndarray[Any, Any]:
    if not isinstance(raw, list):
        raise BadRequest("Format error in JSON body: vector must be a list of numbers")
    try:
        # One C pass; JSON numbers give an integer or float array, anything else does not.
        arr = np.asarray(raw)
    except (ValueError, TypeError):
        arr = np.asarray([None])
    if arr.ndim != 1 or (arr.dtype.kind not in "fiu" and len(raw)):
        raise BadRequest("Format error in JSON body: vector must be a list of numbers")
    return checked_dense(arr, size)


def checked_dense(values: np.ndarray[Any, Any], size: int) -> np.ndarray[Any, Any]:
    """A decoded dense vector (any numeric 1-D array): its size, finite float32 values."""
    if len(values) != size:
        if not len(values):
            raise EmptyDense(dim_error(size, 0).message)
        raise dim_error(size, len(values))
    return finite_f32(values)


def finite_f32(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Vector components as stored (float32), refused when one is beyond float32's range:
    stored as infinity it would read back as null and turn every score with it into null."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = values.astype(np.float32)
    if out.size and not np.isfinite(out).all():
        raise BadRequest(
            "Wrong input: vector values must be finite float32 numbers "
            f"(between {-F32_MAX:g} and {F32_MAX:g})"
        )
    return out


F32_MAX = float(np.finfo(np.float32).max)


def parse_sparse(raw: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    if not isinstance(raw, dict) or "indices" not in raw or "values" not in raw:
        raise BadRequest(
            "Format error in JSON body: sparse vector must have `indices` and `values`"
        )
    indices, values = raw["indices"], raw["values"]
    if not isinstance(indices, list) or not isinstance(values, list):
        raise BadRequest("Format error in JSON body: sparse vector fields must be lists")
    if len(indices) != len(values):
        raise _uneven()
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 2**32 for i in indices):
        raise BadRequest(
            "Format error in JSON body: sparse vector indices must be unsigned 32-bit integers"
        )
    if not all(_is_number(v) for v in values):
        raise BadRequest("Format error in JSON body: sparse vector values must be numbers")
    try:
        weights = np.asarray(values, dtype=np.float64)
    except OverflowError:  # an integer beyond any float
        weights = np.full(len(values), np.inf)
    return checked_sparse(np.asarray(indices, dtype=np.uint32), weights)


def checked_sparse(
    indices: np.ndarray[Any, Any], values: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A decoded sparse vector (u32 indices, numeric values): equal lengths, unique
    indices, finite float32 values; answered sorted by index."""
    if len(indices) != len(values):
        raise _uneven()
    if len(np.unique(indices)) != len(indices):
        raise _repeated()
    order = np.argsort(indices, kind="stable")
    return indices[order].astype(np.int32), finite_f32(values)[order]


def parse_multi(raw: Any, size: int) -> np.ndarray[Any, Any]:
    if not isinstance(raw, list) or not raw:
        raise UnprocessableEntity(
            "Validation error in JSON body: [vector: multivector must not be empty]"
        )
    _check_rows(raw)
    rows = [_dense_array(r, size) if isinstance(r, list) else _bad_multi() for r in raw]
    return np.stack(rows)


def _check_rows(raw: list[Any]) -> None:
    """Qdrant's rules on a multivector's rows: none empty, all of one dimension."""
    if any(isinstance(r, list) and not r for r in raw):
        raise VectorRule(
            "Validation error in JSON body: [vector.data: all vectors must be non-empty]",
            "data",
            "all vectors must be non-empty",
        )
    lengths = [len(r) for r in raw if isinstance(r, list)]
    odd = next((n for n in lengths if n != lengths[0]), None)
    if odd is not None:
        rule = f"all vectors must have the same dimension, found vector with dimension {odd}"
        raise VectorRule(f"Validation error in JSON body: [vector.data: {rule}]", "data", rule)


def check_rules(raw: Any) -> None:
    """The rules Qdrant's validator checks on a well-shaped vector before it looks at the
    collection (names, sizes): a sparse vector's lengths and unique indices, a
    multivector's rows."""
    if isinstance(raw, dict) and isinstance(raw.get("indices"), list):
        values = raw.get("values")
        if not isinstance(values, list):
            return
        indices = raw["indices"]
        if len(indices) != len(values):
            raise _uneven()
        ints = all(isinstance(i, int) and not isinstance(i, bool) for i in indices)
        if ints and len(set(indices)) != len(indices):
            raise _repeated()
    elif isinstance(raw, list) and raw and all(isinstance(r, list) for r in raw):
        _check_rows(raw)


def _bad_multi() -> np.ndarray[Any, Any]:
    raise BadRequest("Format error in JSON body: multivector must be a list of lists")


def checked_vector(config: CollectionConfig, name: str, kind: str, value: Any) -> Any:
    """A vector decoded from a typed wire form (protobuf), checked against vector `name`
    as `parse_one_vector` checks a JSON one, with the same errors. `kind`: "dense" (a 1-D
    array), "multi" (a list of 1-D arrays) or "sparse" ((u32 indices, values))."""
    dense = config.vectors.get(name)
    if dense is not None:
        if kind == "sparse":
            raise BadRequest(
                f"Wrong input: Conversion between sparse and regular vectors "
                f"failed for vector `{name or 'default'}`"
            )
        if dense.multivector:
            rows = ([value] if len(value) else []) if kind == "dense" else value
            if not rows:
                raise UnprocessableEntity(
                    "Validation error in JSON body: [vector: multivector must not be empty]"
                )
            return np.stack([checked_dense(row, dense.size) for row in rows])
        if kind == "multi":
            if not value:
                raise dim_error(dense.size, 0)
            raise BadRequest(f"Wrong input: vector `{name}` is not a multivector")
        return checked_dense(value, dense.size)
    if name in config.sparse_vectors:
        if kind != "sparse":
            raise BadRequest(
                f"Wrong input: Conversion between sparse and regular vectors "
                f"failed for vector `{name}`"
            )
        return checked_sparse(*value)
    raise unknown_name(name)


def parse_one_vector(config: CollectionConfig, name: str, raw: Any) -> Any:
    """One named vector value, validated: np array (dense), (idx, vals) sparse, (m,d) multi."""
    check_model(raw)
    if is_document(raw):  # server-side BM25: a document (upsert) becomes its sparse vector
        raw = bm25_infer(raw, query=False)
    dense = config.vectors.get(name)
    if dense is not None:
        if isinstance(raw, dict):
            if "indices" in raw:
                raise BadRequest(
                    f"Wrong input: Conversion between sparse and regular vectors "
                    f"failed for vector `{name or 'default'}`"
                )
            if names_a_model(raw):
                raise inference_unavailable()
            raise BadRequest("Wrong input: Inference is not supported by Tessera: send vectors")
        if dense.multivector:
            if isinstance(raw, list) and not raw:
                # serde reads `[]` as an empty dense vector (the first form it tries), which
                # then has the wrong dimension for the multivector's rows.
                raise EmptyDense(dim_error(dense.size, 0).message)
            if isinstance(raw, list) and not isinstance(raw[0], list):
                raw = [raw]  # Qdrant takes a plain dense vector as a one-row multivector
            return parse_multi(raw, dense.size)
        if isinstance(raw, list) and raw and isinstance(raw[0], list):
            raise BadRequest(f"Wrong input: vector `{name}` is not a multivector")
        return _dense_array(raw, dense.size)
    if name in config.sparse_vectors:
        if isinstance(raw, list):
            raise BadRequest(
                f"Wrong input: Conversion between sparse and regular vectors "
                f"failed for vector `{name}`"
            )
        return parse_sparse(raw)
    raise unknown_name(name)


def _as_json(raw: Any) -> Any:
    """A vector as JSON gives it: the in-process engine's bodies may hold numpy arrays,
    which only the dense column's fast path takes as is."""
    return raw.tolist() if isinstance(raw, np.ndarray) else raw


def normalize_vector_struct(raw: Any) -> dict[str, Any]:
    """VectorStruct -> {name: raw value}; a bare list is the unnamed vector."""
    if isinstance(raw, list | np.ndarray):
        return {UNNAMED: raw}
    if isinstance(raw, dict):
        if "indices" in raw and "values" in raw:
            raise unnamed_sparse()
        if isinstance(raw.get("model"), str) and names_a_model(raw):
            # A Document / Image / InferenceObject for the unnamed vector: serde tries the
            # map of named vectors first, and a model's name is no vector.
            return {UNNAMED: raw}
        # A named vector is a vector: null is none of its forms.
        if any(v is None for v in raw.values()):
            raise BadRequest(
                "Format error in JSON body: data did not match any variant of untagged enum "
                "VectorStruct"
            )
        return raw
    if raw is None:
        return {}
    raise BadRequest("Format error in JSON body: invalid vector")


def build_columns(
    config: CollectionConfig, per_point: list[dict[str, Any]], points: bool = False
) -> dict[str, VectorColumn]:
    """Columns for a batch of points, one per vector name present anywhere in the batch.
    `points`: the vectors are those of a `points` list, whose errors name the point."""
    names: set[str] = set()
    for vectors in per_point:
        names.update(vectors)
    # A dense vector's values as one block when every point has a well-formed one (the
    # common case, one C pass); such a block can break none of `check_rules`.
    blocks: dict[str, np.ndarray[Any, Any] | None] = {}
    for name in names:
        params = config.vectors.get(name)
        if params is not None and not params.multivector:
            blocks[name] = _dense_block([v.get(name) for v in per_point], params.size)
    # Qdrant validates the whole body before it looks at the collection
    unchecked = [name for name in names if blocks.get(name) is None]
    if unchecked:
        for i, vectors in enumerate(per_point):
            for name in unchecked:
                if vectors.get(name) is not None:
                    _at(i, name, points, config, vectors[name], check_rules)
    columns: dict[str, VectorColumn] = {}
    for name in names:
        params = config.vectors.get(name)
        if params is not None and not params.multivector:
            raws = [v.get(name) for v in per_point]
            columns[name] = _dense_column(config, name, raws, params.size, points, blocks[name])
            continue
        values = []
        for i, v in enumerate(per_point):
            raw = v.get(name)
            values.append(None if raw is None else _at(i, name, points, config, _as_json(raw)))
        if params is None and name not in config.sparse_vectors:
            raise unknown_name(name)
        columns[name] = ObjectColumn(values)
    return columns


def _at(
    index: int,
    name: str,
    points: bool,
    config: CollectionConfig,
    raw: Any,
    parse: Callable[..., Any] | None = None,
) -> Any:
    """`parse_one_vector` (or `parse(raw)`), its rule errors named at point `index` of a
    points list."""
    try:
        return parse_one_vector(config, name, raw) if parse is None else parse(raw)
    except VectorRule as exc:
        if not points:
            raise
        raise exc.at_point(index, named=name != UNNAMED) from None
    except EmptyDense:
        if not points or name != UNNAMED:
            raise
        raise UnprocessableEntity(
            f"Validation error in JSON body: [points[{index}].vector.vector: {EMPTY_DENSE}]"
        ) from None


def _dense_block(raws: list[Any], size: int) -> np.ndarray[Any, Any] | None:
    """Every point's dense vector, when all are present as numbers of `size`: (n, size)."""
    if any(r is None for r in raws):
        return None
    try:
        block = np.asarray(raws)
    except (ValueError, TypeError):
        return None
    if block.ndim == 2 and block.shape[1] == size and block.dtype.kind in "fiu":
        return block
    return None


def _dense_column(
    config: CollectionConfig,
    name: str,
    raws: list[Any],
    size: int,
    points: bool,
    block: np.ndarray[Any, Any] | None,
) -> DenseColumn:
    """A dense column: `block` (`_dense_block`) checked in one pass, else point by point."""
    present = np.fromiter((r is not None for r in raws), dtype=bool, count=len(raws))
    if block is not None:
        return DenseColumn(present, finite_f32(block))
    values = np.zeros((len(raws), size), dtype=np.float32)
    for i, raw in enumerate(raws):
        if raw is not None:
            values[i] = _at(i, name, points, config, _as_json(raw))
    return DenseColumn(present, values)


def typed_columns(
    config: CollectionConfig, per_point: list[dict[str, tuple[str, Any]]]
) -> dict[str, VectorColumn]:
    """`build_columns` for vectors decoded from a typed wire form: {name: (kind, value)} per
    point (kinds of `checked_vector`), each checked by `checked_vector`. A dense vector's
    column is one (n, size) float32 block; its values are checked in one pass when every
    point has a dense value of the right size (the gRPC upsert's common case)."""
    names: set[str] = set()
    for vectors in per_point:
        names.update(vectors)
    columns: dict[str, VectorColumn] = {}
    for name in names:
        params = config.vectors.get(name)
        given = [v.get(name) for v in per_point]
        if params is not None and not params.multivector:
            present = np.fromiter((g is not None for g in given), dtype=bool, count=len(given))
            block = _typed_block(given, params.size)
            if block is None:
                block = np.zeros((len(given), params.size), dtype=np.float32)
                for i, g in enumerate(given):
                    if g is not None:
                        block[i] = _typed_at(i, name, config, g)
            columns[name] = DenseColumn(present, block)
            continue
        columns[name] = ObjectColumn(
            [None if g is None else _typed_at(i, name, config, g) for i, g in enumerate(given)]
        )
    return columns


def _typed_at(index: int, name: str, config: CollectionConfig, given: tuple[str, Any]) -> Any:
    try:
        return checked_vector(config, name, *given)
    except VectorRule as exc:
        raise exc.at_grpc_point(index, named=name != UNNAMED) from None


def _typed_block(given: list[tuple[str, Any] | None], size: int) -> np.ndarray[Any, Any] | None:
    """Every value dense and of `size`: one finite float32 block; else None."""
    if not all(g is not None and g[0] == "dense" and len(g[1]) == size for g in given):
        return None
    if not given:
        return np.zeros((0, size), dtype=np.float32)
    return finite_f32(np.stack([g[1] for g in given if g is not None]))
