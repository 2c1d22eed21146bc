"""Collection-config requests decoded from JSON: a create or PATCH body (REST, the stored
config, a cluster record's patch, the server's configuration file) into the typed values
of `tessera.config_model`.

This is Qdrant's serde half: a missing field, a wrong type, an unknown enum variant, a
negative count is a 400 "Format error in JSON body" here; the validator's ranges (422) are
the typed values' `check`, shared with gRPC.

Imports: `tessera.config_model`, `tessera.errors`.
"""

from __future__ import annotations

from typing import Any

from tessera.config_model import (
    DISABLED,
    HNSW_COUNTS,
    OPTIMIZER_COUNTS,
    QUANTIZATION_ENUMS,
    QUANTIZATION_FIELDS,
    STRICT_MODE_MAPS,
    STRICT_MODE_MINIMUMS,
    WAL_COUNTS,
    CreateCollection,
    HnswDiff,
    OptimizersDiff,
    ParamsDiff,
    Quantization,
    SparseIndexSpec,
    SparseSpec,
    StrictModeDiff,
    UpdateCollection,
    VectorDiff,
    VectorSpec,
    WalDiff,
)
from tessera.errors import BadRequest

DISTANCES = ("Cosine", "Euclid", "Dot", "Manhattan")
# Dense storage only (never a sparse index's).
TURBO_DATATYPES = ("turbo4", "turbo8", "turbo16")
DATATYPES = ("float32", "float16", "uint8", *TURBO_DATATYPES)
# Qdrant's serde lists the variants of `Datatype` in this order.
_DATATYPE_VARIANTS = "`float32`, `uint8`, `float16`, `turbo4`, `turbo8`, `turbo16`"
SPARSE_DATATYPES = ("float32", "float16", "uint8")
MEMORY_PLACEMENTS = ("cold", "cached", "pinned")
# Keys Qdrant also reads under another name (serde aliases).
CREATE_ALIASES = {"quantization": "quantization_config", "optimizer_config": "optimizers_config"}


def format_error(message: str) -> BadRequest:
    return BadRequest(f"Format error in JSON body: {message}")


def expect_dict(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise format_error(f"{what} must be an object")
    return raw


def json_type(value: Any) -> str:
    """How serde names a JSON value of the wrong type in its errors."""
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'floating point'} `{value}`"
    return "map" if isinstance(value, dict) else "sequence" if isinstance(value, list) else "value"


def usize(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise format_error(f"{where}: invalid type: {json_type(raw)}, expected usize")
    if raw < 0:
        raise format_error(f"{where}: invalid value: integer `{raw}`, expected usize")
    return raw


def _opt_usize(body: dict[str, Any], key: str, where: str) -> int | None:
    value = body.get(key)
    return None if value is None else usize(value, f"{where}.{key}")


def _opt_bool(body: dict[str, Any], key: str, where: str) -> bool | None:
    return _bool_or_none(body.get(key), f"{where}.{key}" if where else key)


def _bool_or_none(value: Any, where: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise format_error(f"{where}: invalid type: {json_type(value)}, expected a boolean")
    return value


def integer(raw: Any, what: str) -> int:
    """An integer whose range the typed value checks (a count of shards, a vector size)."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise format_error(f"{what} must be an integer")
    return raw


def memory(raw: Any, where: str) -> str | None:
    """A `Memory` placement (where it cannot be pinned, the typed value's check says so)."""
    if raw is None:
        return None
    if raw not in MEMORY_PLACEMENTS:
        raise format_error(
            f"{where}: unknown variant `{raw}`, expected one of `cold`, `cached`, `pinned`"
        )
    return str(raw)


def with_aliases(body: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    """`body` with each alias renamed to its key, unless the key itself is given."""
    if not any(alias in body for alias in aliases):
        return body
    out = dict(body)
    for alias, key in aliases.items():
        if alias in out:
            value = out.pop(alias)
            if out.get(key) is None:
                out[key] = value
    return out


# --------------------------------------------------------------------------- parts


def decode_hnsw(raw: Any, where: str) -> HnswDiff:
    body = expect_dict(raw, where)
    counts = {key: _opt_usize(body, key, where) for key in HNSW_COUNTS}
    return HnswDiff(
        **counts,
        on_disk=_opt_bool(body, "on_disk", where),
        inline_storage=_opt_bool(body, "inline_storage", where),
        memory=memory(body.get("memory"), f"{where}.memory"),
    )


def decode_wal(raw: Any, where: str) -> WalDiff:
    body = expect_dict(raw, where)
    return WalDiff(**{key: _opt_usize(body, key, where) for key in WAL_COUNTS})


def decode_optimizers(raw: Any, where: str) -> OptimizersDiff:
    body = expect_dict(raw, where)
    prevent = _opt_bool(body, "prevent_unoptimized", where)
    threshold = body.get("deleted_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        raise format_error(
            f"{where}.deleted_threshold: invalid type: {json_type(threshold)}, expected f64"
        )
    threads = body.get("max_optimization_threads")
    if threads is not None and threads != "auto":
        threads = usize(threads, f"{where}.max_optimization_threads")
    return OptimizersDiff(
        # an f64 in Qdrant: shown as one (1.0), whatever form the number came in
        deleted_threshold=None if threshold is None else float(threshold),
        **{key: _opt_usize(body, key, where) for key in OPTIMIZER_COUNTS},
        max_optimization_threads=threads,
        prevent_unoptimized=prevent,
    )


def decode_quantization(raw: Any, where: str, diff: bool = False) -> Quantization | str | None:
    """A `QuantizationConfig` (`{"scalar" | "product" | "binary" | "turbo": {...}}`),
    checked as Qdrant's untagged enum is. `diff` (PATCH): the string "Disabled" is allowed
    too (and returned as DISABLED)."""
    enum = "QuantizationConfigDiff" if diff else "QuantizationConfig"
    if not diff and where.startswith("vectors"):
        enum = "VectorsConfig"  # serde reports the outer untagged enum that failed
    if raw is None:
        return None
    if diff and raw == DISABLED:
        return DISABLED
    mismatch = format_error(f"data did not match any variant of untagged enum {enum}")
    if not isinstance(raw, dict) or len(raw) != 1:
        raise mismatch
    kind, body = next(iter(raw.items()))
    if kind not in QUANTIZATION_FIELDS or not isinstance(body, dict):
        raise mismatch
    required = {"scalar": "type", "product": "compression"}.get(kind)
    if required is not None and body.get(required) is None:
        raise mismatch
    fields: dict[str, Any] = {}
    for key in QUANTIZATION_FIELDS[kind]:
        value = body.get(key)
        if value is None:
            continue
        allowed = QUANTIZATION_ENUMS.get(key)
        if allowed is not None and value not in allowed:
            raise mismatch
        if key == "always_ram" and not isinstance(value, bool):
            raise mismatch
        if key == "quantile":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise mismatch
            value = float(value)  # an f32 in Qdrant: shown as one (1.0)
        fields[key] = value
    return Quantization(kind, **fields)


def create_quantization(raw: Any, where: str) -> Quantization | None:
    value = decode_quantization(raw, where)
    assert not isinstance(value, str)  # DISABLED is a diff's only
    return value


def decode_strict_mode(raw: Any, where: str = "strict_mode_config") -> StrictModeDiff:
    """A StrictModeConfig (create) or its diff (update). Null fields are left out; so are
    fields Qdrant does not know."""
    body = expect_dict(raw, where)
    out: dict[str, Any] = {}
    names = StrictModeDiff.__dataclass_fields__
    for key, value in body.items():
        if value is None or key not in names:
            continue
        at = f"{where}.{key}"
        if key in STRICT_MODE_MINIMUMS:
            out[key] = _strict_count(value, at)
        elif key == "search_max_oversampling":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise format_error(f"{at}: expected a number")
            out[key] = float(value)
        elif key in STRICT_MODE_MAPS:
            limit = STRICT_MODE_MAPS[key]
            per_vector: dict[str, int | None] = {}
            for name, entry in expect_dict(value, at).items():
                got = expect_dict(entry, f"{at}.{name}").get(limit)
                per_vector[name] = (
                    None if got is None else _strict_count(got, f"{at}.{name}.{limit}")
                )
            out[key] = per_vector
        elif not isinstance(value, bool):
            raise format_error(f"{at}: expected a boolean")
        else:
            out[key] = value
    return StrictModeDiff(**out)


def _strict_count(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise format_error(f"{where}: invalid type: {raw!r}, expected usize")
    return usize(raw, where)


def decode_dense(raw: Any, where: str) -> VectorSpec:
    body = with_aliases(expect_dict(raw, where), {"quantization": "quantization_config"})
    if "size" not in body or "distance" not in body:
        missing = "size" if "size" not in body else "distance"
        raise format_error(f"{where}: missing field `{missing}`")
    size = integer(body["size"], f"{where}.size")
    distance = body["distance"]
    if distance not in DISTANCES:
        raise format_error(
            f"{where}.distance: unknown variant `{distance}`, "
            "expected one of `Cosine`, `Euclid`, `Dot`, `Manhattan`"
        )
    datatype = body.get("datatype") or "float32"
    if datatype not in DATATYPES:
        raise format_error(
            f"{where}.datatype: unknown variant `{datatype}`, expected one of {_DATATYPE_VARIANTS}"
        )
    multi = body.get("multivector_config")
    if multi is not None:
        multi = expect_dict(multi, f"{where}.multivector_config")
        if multi.get("comparator") != "max_sim":
            raise format_error(f"{where}.multivector_config.comparator: expected `max_sim`")
    on_disk = body.get("on_disk")
    if on_disk is not None and not isinstance(on_disk, bool):
        raise format_error(f"{where}.on_disk must be a boolean")
    hnsw = body.get("hnsw_config")
    return VectorSpec(
        size=size,
        distance=distance,
        datatype=datatype,
        datatype_given=body.get("datatype") is not None,
        multivector=multi is not None,
        on_disk=on_disk,
        hnsw=decode_hnsw(hnsw, f"{where}.hnsw_config") if hnsw else None,
        quantization=create_quantization(
            body.get("quantization_config"), f"{where}.quantization_config"
        ),
        memory=memory(body.get("memory"), f"{where}.memory"),
    )


def decode_sparse(raw: Any, where: str = "sparse_vectors") -> dict[str, SparseSpec]:
    if raw is None:
        return {}
    out: dict[str, SparseSpec] = {}
    for name, params in expect_dict(raw, where).items():
        p = expect_dict(params or {}, f"{where}.{name}")
        index = p.get("index")
        out[name] = SparseSpec(
            modifier=decode_modifier(p.get("modifier"), f"{where}.{name}.modifier"),
            index=None if index is None else decode_sparse_index(index, f"{where}.{name}.index"),
        )
    return out


def decode_modifier(raw: Any, where: str) -> str | None:
    """A sparse vector's `Modifier`."""
    if raw not in (None, "none", "idf"):
        raise format_error(f"{where}: unknown variant `{raw}`, expected `none` or `idf`")
    return raw  # type: ignore[no-any-return]


def decode_sparse_index(raw: Any, where: str) -> SparseIndexSpec:
    """`SparseIndexParams` as Qdrant deserializes it (unknown fields are ignored there)."""
    body = expect_dict(raw, where)
    datatype = body.get("datatype")
    if datatype in TURBO_DATATYPES:
        raise BadRequest(
            f"Wrong input: {where}.datatype: datatype {datatype} is not supported for sparse "
            "vectors (expected float32, float16, or uint8)"
        )
    if datatype is not None and datatype not in SPARSE_DATATYPES:
        raise format_error(
            f"{where}.datatype: unknown variant `{datatype}`, expected one of {_DATATYPE_VARIANTS}"
        )
    threshold = body.get("full_scan_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0
    ):
        raise format_error(
            f"{where}.full_scan_threshold: invalid value: {threshold!r}, expected usize"
        )
    on_disk = body.get("on_disk")
    if on_disk is not None and not isinstance(on_disk, bool):
        raise format_error(f"{where}.on_disk: expected a boolean")
    return SparseIndexSpec(
        full_scan_threshold=threshold,
        on_disk=on_disk,
        datatype=datatype,
        memory=memory(body.get("memory"), f"{where}.memory"),
    )


def decode_payload_memory(raw: Any, where: str) -> str | None:
    """`PayloadStorageParams` or `IdTrackerParams` ({"memory": ...}): its placement."""
    return memory(expect_dict(raw, where).get("memory"), f"{where}.memory")


# --------------------------------------------------------------------------- requests


def decode_create(raw: Any) -> CreateCollection:
    """A `CreateCollection` body (None: an empty one)."""
    body = with_aliases(expect_dict(raw if raw is not None else {}, "body"), CREATE_ALIASES)
    vectors_raw = body.get("vectors")
    vectors: dict[str, VectorSpec] = {}
    unnamed = False
    if vectors_raw is None:
        pass
    elif isinstance(vectors_raw, dict) and "size" in vectors_raw and "distance" in vectors_raw:
        vectors[""] = decode_dense(vectors_raw, "vectors")
        unnamed = True
    elif isinstance(vectors_raw, dict):
        if not all(isinstance(params, dict) for params in vectors_raw.values()):
            # neither one VectorParams (`{"size": 4}` lacks its distance) nor a map of them:
            # serde's words for Qdrant's untagged VectorsConfig
            raise format_error("data did not match any variant of untagged enum VectorsConfig")
        for name, params in vectors_raw.items():
            # "" is the default vector's name, allowed in a map beside named ones (Qdrant
            # checks only sparse names for emptiness).
            vectors[name] = decode_dense(params, f"vectors.{name}")
    else:
        raise format_error("vectors must be an object")

    def part(key: str, decode: Any) -> Any:
        return decode(body[key], key) if body.get(key) is not None else None

    counts = {
        key: integer(body[key], key) if body.get(key) is not None else None
        for key in ("shard_number", "replication_factor", "write_consistency_factor")
    }
    method = body.get("sharding_method")
    if method is not None and method not in ("auto", "custom"):
        raise format_error(
            f"sharding_method: unknown variant `{method}`, expected `auto` or `custom`"
        )
    payload = body.get("payload")
    metadata = body.get("metadata")
    return CreateCollection(
        vectors=vectors,
        unnamed=unnamed,
        sparse_vectors=decode_sparse(body.get("sparse_vectors")),
        sparse_map=body.get("sparse_vectors") is not None,
        hnsw=part("hnsw_config", decode_hnsw),
        wal=part("wal_config", decode_wal),
        optimizers=part("optimizers_config", decode_optimizers),
        quantization=create_quantization(body.get("quantization_config"), "quantization_config"),
        strict_mode=part("strict_mode_config", decode_strict_mode),
        **counts,
        on_disk_payload=_opt_bool(body, "on_disk_payload", ""),
        sharding_method=method,
        payload_memory=None if payload is None else decode_payload_memory(payload, "payload"),
        payload_storage=payload is not None,
        id_tracker_memory=None
        if body.get("id_tracker") is None
        else decode_payload_memory(body["id_tracker"], "id_tracker"),
        id_tracker=body.get("id_tracker") is not None,
        metadata=None if metadata is None else expect_dict(metadata, "metadata"),
    )


_PARAMS_COUNTS = ("replication_factor", "write_consistency_factor")
# Kept and reported (`CollectionParams`), by the integer type Qdrant reads them as.
_PARAMS_FAN_OUT = {"read_fan_out_factor": "u32", "read_fan_out_delay_ms": "u64"}


def decode_update(raw: Any) -> UpdateCollection:
    """An `UpdateCollection` (PATCH) body (None: an empty one)."""
    body = with_aliases(expect_dict(raw if raw is not None else {}, "body"), CREATE_ALIASES)
    vectors: dict[str, VectorDiff] = {}
    if body.get("vectors") is not None:
        for name, diff in expect_dict(body["vectors"], "vectors").items():
            vectors[name] = _decode_vector_diff(diff, f"vectors.{name}")
    params = None
    if body.get("params") is not None:
        given = expect_dict(body["params"], "params")
        counts: dict[str, Any] = {}
        for key in _PARAMS_COUNTS:
            value = given.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                # NonZeroU32 in Qdrant's PATCH: a deserialize error; zero: ParamsDiff.check
                raise format_error(
                    f"params.{key}: invalid value: {json_type(value)}, expected a nonzero u32"
                )
            counts[key] = value
        for key, kind in _PARAMS_FAN_OUT.items():
            value = given.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise format_error(
                    f"params.{key}: invalid value: {json_type(value)}, expected {kind}"
                )
            counts[key] = value
        payload = given.get("payload")
        params = ParamsDiff(
            **counts,
            on_disk_payload=_opt_bool(given, "on_disk_payload", "params"),
            payload_memory=None
            if payload is None
            else decode_payload_memory(payload, "params.payload"),
            id_tracker_memory=None
            if given.get("id_tracker") is None
            else decode_payload_memory(given["id_tracker"], "params.id_tracker"),
        )
    metadata = body.get("metadata")
    quantization = decode_quantization(
        body.get("quantization_config"), "quantization_config", diff=True
    )
    return UpdateCollection(
        vectors=vectors,
        sparse_vectors=decode_sparse(body.get("sparse_vectors")),
        optimizers=(
            decode_optimizers(body["optimizers_config"], "optimizers_config")
            if body.get("optimizers_config") is not None
            else None
        ),
        hnsw=(
            decode_hnsw(body["hnsw_config"], "hnsw_config")
            if body.get("hnsw_config") is not None
            else None
        ),
        quantization=quantization,
        strict_mode=(
            decode_strict_mode(body["strict_mode_config"])
            if body.get("strict_mode_config") is not None
            else None
        ),
        params=params,
        metadata=None if metadata is None else expect_dict(metadata, "metadata"),
    )


def _decode_vector_diff(raw: Any, where: str) -> VectorDiff:
    body = with_aliases(expect_dict(raw, where), {"quantization": "quantization_config"})
    hnsw = body.get("hnsw_config")
    return VectorDiff(
        hnsw=None if hnsw is None else decode_hnsw(hnsw, f"{where}.hnsw_config"),
        quantization=decode_quantization(
            body.get("quantization_config"), f"{where}.quantization_config", diff=True
        ),
        on_disk=body.get("on_disk"),
        memory=memory(body.get("memory"), f"{where}.memory"),
    )
