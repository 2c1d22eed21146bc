"""A collection's configuration: parsed from a create request, persisted, rendered in info.

The engine reads the typed parts (vector params); the rest is kept as Qdrant's JSON with
defaults filled in, so that `GET /collections/{name}` echoes what Qdrant would.

What a create request leaves out comes from the process's `CollectionDefaults`: Qdrant's
own unless the server's configuration (`storage.hnsw_index`, `storage.optimizers`,
`storage.wal`, `storage.on_disk_payload`, `storage.collection.*`) set others at start-up
(`set_collection_defaults`). A stored config is always read with the built-in ones, so a
changed configuration never rewrites an existing collection.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tessera.errors import BadRequest, UnprocessableEntity

DISTANCES = ("Cosine", "Euclid", "Dot", "Manhattan")
DATATYPES = ("float32", "float16", "uint8", "turbo4")

# Each quantization kind's fields, in the order Qdrant echoes them, and the enum ones' values.
QUANTIZATION_FIELDS: dict[str, tuple[str, ...]] = {
    "scalar": ("type", "quantile", "always_ram", "memory"),
    "product": ("compression", "always_ram", "memory"),
    "binary": ("always_ram", "memory", "encoding", "query_encoding"),
    "turbo": ("always_ram", "memory", "bits"),
}
_QUANTIZATION_ENUMS: dict[str, tuple[str, ...]] = {
    "type": ("int8",),
    "compression": ("x4", "x8", "x16", "x32", "x64"),
    "encoding": ("one_bit", "two_bits", "one_and_half_bits"),
    "query_encoding": ("default", "binary", "scalar4bits", "scalar8bits"),
    "bits": ("bits1", "bits1_5", "bits2", "bits4"),
    "memory": ("cold", "cached", "pinned"),
}

DEFAULT_HNSW: dict[str, Any] = {
    "m": 16,
    "ef_construct": 100,
    "full_scan_threshold": 10000,
    "max_indexing_threads": 0,
    "on_disk": False,
}
DEFAULT_OPTIMIZERS: dict[str, Any] = {
    "deleted_threshold": 0.2,
    "vacuum_min_vector_number": 1000,
    "default_segment_number": 0,
    "max_segment_size": None,
    "memmap_threshold": None,
    "indexing_threshold": 10000,
    "flush_interval_sec": 5,
    "max_optimization_threads": None,
}
DEFAULT_WAL: dict[str, Any] = {
    "wal_capacity_mb": 32,
    "wal_segments_ahead": 0,
    "wal_retain_closed": 1,
}


@dataclass(frozen=True)
class CollectionDefaults:
    hnsw: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_HNSW))
    optimizers: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIMIZERS))
    wal: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_WAL))
    on_disk_payload: bool = True
    replication_factor: int = 1
    write_consistency_factor: int = 1
    vectors_on_disk: bool | None = None
    quantization: dict[str, Any] | None = None
    strict_mode: dict[str, Any] | None = None


BUILTIN_DEFAULTS = CollectionDefaults()
_defaults = BUILTIN_DEFAULTS


def collection_defaults() -> CollectionDefaults:
    return _defaults


def set_collection_defaults(body: dict[str, Any]) -> CollectionDefaults:
    """Make `body` (the parts of a create request: `hnsw_config`, `optimizers_config`,
    `wal_config`, `on_disk_payload`, `replication_factor`, `write_consistency_factor`,
    `quantization_config`, `strict_mode_config`, and `vectors_on_disk`) the defaults of every
    collection created from now on. Checked as a create request is: raises BadRequest."""
    global _defaults
    probe = parse_create_collection(
        {k: v for k, v in body.items() if k != "vectors_on_disk"}, BUILTIN_DEFAULTS
    )
    on_disk = body.get("vectors_on_disk")
    if on_disk is not None and not isinstance(on_disk, bool):
        raise BadRequest("vectors.on_disk must be a boolean")
    _defaults = CollectionDefaults(
        hnsw=probe.hnsw_config,
        optimizers=probe.optimizer_config,
        wal=probe.wal_config,
        on_disk_payload=bool(probe.params_extra["on_disk_payload"]),
        replication_factor=probe.params_extra["replication_factor"],
        write_consistency_factor=probe.params_extra["write_consistency_factor"],
        vectors_on_disk=on_disk,
        quantization=probe.quantization_config,
        strict_mode=probe.strict_mode_config,
    )
    return _defaults


def reset_collection_defaults() -> None:
    global _defaults
    _defaults = BUILTIN_DEFAULTS


@dataclass(frozen=True)
class DenseVectorParams:
    size: int
    distance: str
    datatype: str = "float32"
    multivector: bool = False
    on_disk: bool | None = None
    hnsw_config: dict[str, Any] | None = None
    quantization_config: dict[str, Any] | None = None
    memory: str | None = None  # placement of the original vectors (MEMORY_PLACEMENTS)

    def vectors_on_disk(self) -> bool:
        """Whether the original vectors are served from their files: `memory` (`cold`)
        overrides the deprecated `on_disk`, as in Qdrant."""
        if self.memory is not None:
            return self.memory == "cold"
        return bool(self.on_disk)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size, "distance": self.distance}
        if self.memory is not None:
            out["memory"] = self.memory
        if self.hnsw_config is not None:
            out["hnsw_config"] = self.hnsw_config
        if self.quantization_config is not None:
            out["quantization_config"] = self.quantization_config
        if self.on_disk is not None:
            out["on_disk"] = self.on_disk
        if self.datatype != "float32":
            out["datatype"] = self.datatype
        if self.multivector:
            out["multivector_config"] = {"comparator": "max_sim"}
        return out


@dataclass(frozen=True)
class SparseVectorParams:
    modifier: str | None = None
    index: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.index is not None:
            out["index"] = self.index
        if self.modifier is not None:
            out["modifier"] = self.modifier
        return out


@dataclass
class CollectionConfig:
    # '' is the unnamed (default) vector; `unnamed` says the create request used that form.
    vectors: dict[str, DenseVectorParams]
    sparse_vectors: dict[str, SparseVectorParams]
    unnamed: bool
    hnsw_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_HNSW))
    optimizer_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIMIZERS))
    wal_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_WAL))
    params_extra: dict[str, Any] = field(default_factory=dict)
    quantization_config: dict[str, Any] | None = None
    strict_mode_config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The `config` object of CollectionInfo."""
        if self.unnamed:
            vectors: Any = self.vectors[""].to_json()
        else:
            vectors = {name: p.to_json() for name, p in self.vectors.items()}
        params: dict[str, Any] = {"vectors": vectors, **self.params_extra}
        if self.sparse_vectors:
            params["sparse_vectors"] = {n: p.to_json() for n, p in self.sparse_vectors.items()}
        out: dict[str, Any] = {
            "params": params,
            "hnsw_config": self.hnsw_config,
            "optimizer_config": self.optimizer_config,
            "wal_config": self.wal_config,
            "quantization_config": self.quantization_config,
            "strict_mode_config": self.strict_mode_config or {"enabled": False},
        }
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out

    def to_storage(self) -> dict[str, Any]:
        return {
            "create": self.to_json(),
            "unnamed": self.unnamed,
        }

    @classmethod
    def from_storage(cls, raw: dict[str, Any]) -> CollectionConfig:
        cfg = raw["create"]
        params = cfg["params"]
        vectors = params.get("vectors")
        # A named vector added to a collection made with the unnamed form keeps that one as
        # the named vector "" (tessera.shard.vector_schema), which a create body may not
        # name: it is read apart.
        blank = None
        if isinstance(vectors, dict) and isinstance(vectors.get(""), dict):
            blank = vectors[""]
            vectors = {k: v for k, v in vectors.items() if k != ""}
        create: dict[str, Any] = {
            "vectors": vectors,
            "sparse_vectors": params.get("sparse_vectors"),
            "hnsw_config": cfg.get("hnsw_config"),
            "optimizers_config": cfg.get("optimizer_config"),
            "wal_config": cfg.get("wal_config"),
            "quantization_config": cfg.get("quantization_config"),
            "strict_mode_config": cfg.get("strict_mode_config"),
            "metadata": cfg.get("metadata"),
        }
        for key in (
            "shard_number",
            "replication_factor",
            "write_consistency_factor",
            "sharding_method",
        ):
            if key in params:
                create[key] = params[key]
        if "on_disk_payload" in params:
            create["on_disk_payload"] = params["on_disk_payload"]
        if "payload" in params:
            create["payload"] = params["payload"]
        parsed = parse_create_collection(create, BUILTIN_DEFAULTS)
        if blank is not None:
            dense = parse_dense_params(blank, "vectors", BUILTIN_DEFAULTS.vectors_on_disk)
            parsed.vectors = {"": dense, **parsed.vectors}
        parsed.unnamed = bool(raw.get("unnamed", parsed.unnamed))
        return parsed

    def vector_params(self, name: str) -> DenseVectorParams | None:
        return self.vectors.get(name)

    def hnsw_for(self, name: str) -> dict[str, Any]:
        merged = dict(self.hnsw_config)
        params = self.vectors.get(name)
        if params is not None and params.hnsw_config:
            merged.update({k: v for k, v in params.hnsw_config.items() if v is not None})
        return merged


def _expect_dict(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest(f"Format error in JSON body: {what} must be an object")
    return raw


def _positive_int(raw: Any, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise BadRequest(f"Format error in JSON body: {what} must be an integer")
    if raw < 1:
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{what}: value {raw} invalid, must be 1 or larger]"
        )
    return raw


def parse_quantization(raw: Any, where: str, diff: bool = False) -> dict[str, Any] | None:
    """A `QuantizationConfig` (`{"scalar" | "product" | "binary" | "turbo": {...}}`) checked
    as Qdrant's untagged enum is, echoed as Qdrant echoes it: the given fields, nulls left
    out. `diff` (PATCH): the string "Disabled" is allowed too and comes back as None."""
    enum = "QuantizationConfigDiff" if diff else "QuantizationConfig"
    if not diff and where.startswith("vectors"):
        enum = "VectorsConfig"  # serde reports the outer untagged enum that failed
    if raw is None or (diff and raw == "Disabled"):
        return None
    mismatch = BadRequest(
        f"Format error in JSON body: data did not match any variant of untagged enum {enum}"
    )
    if not isinstance(raw, dict) or len(raw) != 1:
        raise mismatch
    kind, body = next(iter(raw.items()))
    if kind not in QUANTIZATION_FIELDS or not isinstance(body, dict):
        raise mismatch
    required = {"scalar": "type", "product": "compression"}.get(kind)
    if required is not None and body.get(required) is None:
        raise mismatch
    out: dict[str, Any] = {}
    for key in QUANTIZATION_FIELDS[kind]:
        value = body.get(key)
        if value is None:
            continue
        allowed = _QUANTIZATION_ENUMS.get(key)
        if allowed is not None and value not in allowed:
            raise mismatch
        if key == "always_ram" and not isinstance(value, bool):
            raise mismatch
        if key == "quantile":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise mismatch
            if not 0.5 <= value <= 1.0:
                raise UnprocessableEntity(
                    f"Validation error in JSON body: [{where}.scalar.quantile: value {value} "
                    "invalid, must be from 0.5 to 1.0]"
                )
        out[key] = value
    return {kind: out}


MEMORY_PLACEMENTS = ("cold", "cached", "pinned")
# Keys Qdrant also reads under another name (serde aliases).
CREATE_ALIASES = {"quantization": "quantization_config", "optimizer_config": "optimizers_config"}


def parse_memory(raw: Any, where: str, unpinned: str | None = None) -> str | None:
    """A `Memory` placement; `unpinned` names a storage that cannot be pinned."""
    if raw is None:
        return None
    if raw not in MEMORY_PLACEMENTS:
        raise BadRequest(
            f"Format error in JSON body: {where}: unknown variant `{raw}`, "
            "expected one of `cold`, `cached`, `pinned`"
        )
    if raw == "pinned" and unpinned is not None:
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{where}: `pinned` memory placement is not "
            f"supported for {unpinned}]"
        )
    return str(raw)


def placed_on_disk(params: dict[str, Any] | None, on_disk: Any) -> bool:
    """An HNSW config or a payload storage: `memory` overrides the deprecated flag."""
    memory = (params or {}).get("memory")
    return memory == "cold" if memory is not None else bool(on_disk)


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


def parse_payload_storage(raw: Any, where: str) -> dict[str, Any] | None:
    """`PayloadStorageParams` ({"memory": ...}), kept as given."""
    if raw is None:
        return None
    body = _expect_dict(raw, where)
    memory = parse_memory(body.get("memory"), f"{where}.memory", "payload storage")
    return {} if memory is None else {"memory": memory}


def payload_on_disk(params_extra: dict[str, Any]) -> bool:
    return placed_on_disk(params_extra.get("payload"), params_extra.get("on_disk_payload", True))


# Qdrant's `validator` minimums (422); a wrong type or a negative number fails to
# deserialize first (400).
HNSW_MINIMUMS = {"ef_construct": 4, "full_scan_threshold": 10}
OPTIMIZER_MINIMUMS = {"vacuum_min_vector_number": 100, "max_segment_size": 1}
OPTIMIZER_USIZE = (
    "vacuum_min_vector_number",
    "default_segment_number",
    "max_segment_size",
    "memmap_threshold",
    "indexing_threshold",
    "flush_interval_sec",
)


def _usize(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise BadRequest(
            f"Format error in JSON body: {where}: invalid type: {json_type(raw)}, expected usize"
        )
    if raw < 0:
        raise BadRequest(
            f"Format error in JSON body: {where}: invalid value: integer `{raw}`, expected usize"
        )
    return raw


def _at_least(value: int, minimum: int, where: str) -> None:
    if value < minimum:
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{where}: value {value} invalid, "
            f"must be {minimum} or larger]"
        )


def check_optimizers_diff(diff: dict[str, Any], where: str) -> None:
    """`OptimizersConfigDiff` as Qdrant reads it: types, then its `validator` ranges."""
    threshold = diff.get("deleted_threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise BadRequest(
                f"Format error in JSON body: {where}.deleted_threshold: invalid type: "
                f"{json_type(threshold)}, expected f64"
            )
        if not 0.0 <= threshold <= 1.0:
            raise UnprocessableEntity(
                f"Validation error in JSON body: [{where}.deleted_threshold: value {threshold} "
                "invalid, must be from 0.0 to 1.0]"
            )
    for key in OPTIMIZER_USIZE:
        value = diff.get(key)
        if value is not None:
            name = f"{where}.{key}"
            _at_least(_usize(value, name), OPTIMIZER_MINIMUMS.get(key, 0), name)
    threads = diff.get("max_optimization_threads")
    if threads is not None and threads != "auto":
        _usize(threads, f"{where}.max_optimization_threads")


def check_wal_diff(diff: dict[str, Any], where: str) -> None:
    for key in ("wal_capacity_mb", "wal_segments_ahead", "wal_retain_closed"):
        value = diff.get(key)
        if value is not None:
            _usize(value, f"{where}.{key}")
    capacity = diff.get("wal_capacity_mb")
    if capacity is not None:
        _at_least(capacity, 1, f"{where}.wal_capacity_mb")


def check_prevent_unoptimized(diff: dict[str, Any], where: str) -> None:
    value = diff.get("prevent_unoptimized")
    if value is not None and not isinstance(value, bool):
        raise BadRequest(
            f"Format error in JSON body: {where}.prevent_unoptimized: invalid type: "
            f"{json_type(value)}, expected a boolean"
        )


def json_type(value: Any) -> str:
    """How serde names a JSON value of the wrong type in its errors."""
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, int | float):
        return f"{'integer' if isinstance(value, int) else 'floating point'} `{value}`"
    return "map" if isinstance(value, dict) else "sequence" if isinstance(value, list) else "value"


def custom_sharding(config: CollectionConfig) -> bool:
    """`sharding_method: custom`: points go to the shards of the shard key a write names."""
    return config.params_extra.get("sharding_method") == "custom"


def deferred_limit(config: CollectionConfig) -> int | None:
    """With `prevent_unoptimized`: how many points an unindexed segment shows; those at
    higher offsets are *deferred* (stored, logged, invisible to reads) until the optimizer
    has built the segment's index. None: nothing is deferred."""
    opt = config.optimizer_config
    if not opt.get("prevent_unoptimized"):
        return None
    threshold_kb = opt.get("indexing_threshold")
    if threshold_kb is None:
        threshold_kb = DEFAULT_OPTIMIZERS["indexing_threshold"]
    point_bytes = sum(p.size * 4 for p in config.vectors.values() if not p.multivector)
    if not threshold_kb or not point_bytes:
        return None
    return max(1, int(threshold_kb) * 1024 // point_bytes)


def config_warnings(config: CollectionConfig) -> list[str]:
    """CollectionInfo.warnings: what Qdrant warns of in a config it accepts."""
    out = []
    for name, params in config.vectors.items():
        if not config.hnsw_for(name).get("inline_storage"):
            continue
        option = f"The `hnsw_config.inline_storage` option for vector '{name}'"
        if params.multivector:
            out.append(
                f"{option} is not compatible with multivectors. This option will be ignored."
            )
        elif params.quantization_config is None and config.quantization_config is None:
            out.append(
                f"{option} requires quantization to be enabled. This option will be ignored."
            )
    return out


def parse_dense_params(
    raw: Any, where: str, default_on_disk: bool | None = None, validated: str | None = None
) -> DenseVectorParams:
    """`validated`: the path Qdrant's validator prints for its HNSW minimums (see
    `_merge_hnsw`), default `where`."""
    validated = validated or where
    body = _expect_dict(raw, where)
    if "size" not in body or "distance" not in body:
        missing = "size" if "size" not in body else "distance"
        raise BadRequest(f"Format error in JSON body: {where}: missing field `{missing}`")
    size = _positive_int(body["size"], f"{where}.size")
    if size > 65536:  # Qdrant's validator: range(min = 1, max = 65536)
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{validated}.size: value {size} invalid, "
            "must be from 1 to 65536]"
        )
    distance = body["distance"]
    if distance not in DISTANCES:
        raise BadRequest(
            f"Format error in JSON body: {where}.distance: unknown variant `{distance}`, "
            "expected one of `Cosine`, `Euclid`, `Dot`, `Manhattan`"
        )
    datatype = body.get("datatype") or "float32"
    if datatype not in DATATYPES:
        raise BadRequest(
            f"Format error in JSON body: {where}.datatype: unknown variant `{datatype}`, "
            "expected one of `float32`, `uint8`, `float16`, `turbo4`"
        )
    multi = body.get("multivector_config")
    if multi is not None:
        multi = _expect_dict(multi, f"{where}.multivector_config")
        if multi.get("comparator") != "max_sim":
            raise BadRequest(
                f"Format error in JSON body: {where}.multivector_config.comparator: "
                "expected `max_sim`"
            )
    on_disk = body.get("on_disk")
    if on_disk is not None and not isinstance(on_disk, bool):
        raise BadRequest(f"Format error in JSON body: {where}.on_disk must be a boolean")
    if on_disk is None:
        on_disk = default_on_disk
    hnsw = body.get("hnsw_config")
    body = with_aliases(body, {"quantization": "quantization_config"})
    return DenseVectorParams(
        size=size,
        distance=distance,
        datatype=datatype,
        multivector=multi is not None,
        on_disk=on_disk,
        hnsw_config=(
            _merge_hnsw(None, hnsw, f"{where}.hnsw_config", f"{validated}.hnsw_config")
            if hnsw
            else None
        ),
        quantization_config=parse_quantization(
            body.get("quantization_config"), f"{where}.quantization_config"
        ),
        memory=parse_memory(body.get("memory"), f"{where}.memory", "dense vector storage"),
    )


def _merge_hnsw(
    base: dict[str, Any] | None, diff: Any, where: str, validated: str | None = None
) -> dict[str, Any]:
    """`validated`: the path Qdrant's validator prints for a minimum, when it differs from
    the one serde prints (`vectors.?.hnsw_config` for a named vector: its map of vectors is
    validated item by item under `?`)."""
    diff = _expect_dict(diff, where)
    out = dict(base) if base is not None else {}
    for key, value in diff.items():
        if value is None:
            continue
        if key in ("m", "ef_construct", "full_scan_threshold", "max_indexing_threads", "payload_m"):
            _usize(value, f"{where}.{key}")
            _at_least(value, HNSW_MINIMUMS.get(key, 0), f"{validated or where}.{key}")
        if key == "memory":
            parse_memory(value, f"{where}.memory")
        out[key] = value
    return out


def _parse_sparse(raw: Any) -> dict[str, SparseVectorParams]:
    if raw is None:
        return {}
    body = _expect_dict(raw, "sparse_vectors")
    out: dict[str, SparseVectorParams] = {}
    for name, params in body.items():
        p = _expect_dict(params or {}, f"sparse_vectors.{name}")
        modifier = p.get("modifier")
        if modifier not in (None, "none", "idf"):
            raise BadRequest(
                f"Format error in JSON body: sparse_vectors.{name}.modifier: unknown variant "
                f"`{modifier}`, expected `none` or `idf`"
            )
        index = p.get("index")
        if index is not None:
            _check_sparse_index(index, f"sparse_vectors.{name}.index")
        out[name] = SparseVectorParams(modifier=modifier, index=index)
    return out


def _check_sparse_index(raw: Any, where: str) -> None:
    """`SparseIndexParams` as Qdrant deserializes it (unknown fields are ignored there)."""
    body = _expect_dict(raw, where)
    datatype = body.get("datatype")
    if datatype == "turbo4":  # a dense vectors' storage type, never a sparse index's
        raise BadRequest(
            f"Wrong input: {where}.datatype: datatype turbo4 is not supported for sparse "
            "vectors (expected float32, float16, or uint8)"
        )
    if datatype is not None and datatype not in ("float32", "float16", "uint8"):
        raise BadRequest(
            f"Format error in JSON body: {where}.datatype: unknown variant `{datatype}`, "
            "expected one of `float32`, `uint8`, `float16`, `turbo4`"
        )
    threshold = body.get("full_scan_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0
    ):
        raise BadRequest(
            f"Format error in JSON body: {where}.full_scan_threshold: "
            f"invalid value: {threshold!r}, expected usize"
        )
    on_disk = body.get("on_disk")
    if on_disk is not None and not isinstance(on_disk, bool):
        raise BadRequest(f"Format error in JSON body: {where}.on_disk: expected a boolean")
    parse_memory(body.get("memory"), f"{where}.memory")


def parse_create_collection(
    raw: Any, defaults: CollectionDefaults | None = None
) -> CollectionConfig:
    d = defaults if defaults is not None else _defaults
    body = with_aliases(_expect_dict(raw if raw is not None else {}, "body"), CREATE_ALIASES)
    vectors_raw = body.get("vectors")
    vectors: dict[str, DenseVectorParams] = {}
    unnamed = False
    if vectors_raw is None:
        pass
    elif isinstance(vectors_raw, dict) and "size" in vectors_raw and "distance" in vectors_raw:
        vectors[""] = parse_dense_params(vectors_raw, "vectors", d.vectors_on_disk)
        unnamed = True
    elif isinstance(vectors_raw, dict):
        for name, params in vectors_raw.items():
            if not name:
                raise UnprocessableEntity(
                    "Validation error in JSON body: vector name must not be empty"
                )
            vectors[name] = parse_dense_params(
                params, f"vectors.{name}", d.vectors_on_disk, validated="vectors.?"
            )
    else:
        raise BadRequest("Format error in JSON body: vectors must be an object")
    sparse = _parse_sparse(body.get("sparse_vectors"))
    clash = set(vectors) & set(sparse)
    if clash:
        raise BadRequest(
            f"Wrong input: Vector name {sorted(clash)[0]} is used for both dense and sparse vectors"
        )
    hnsw = dict(d.hnsw)
    if body.get("hnsw_config") is not None:
        hnsw = _merge_hnsw(hnsw, body["hnsw_config"], "hnsw_config")
    optimizers = dict(d.optimizers)
    if body.get("optimizers_config") is not None:
        diff = _expect_dict(body["optimizers_config"], "optimizers_config")
        check_prevent_unoptimized(diff, "optimizers_config")
        check_optimizers_diff(diff, "optimizers_config")
        optimizers.update(
            {k: v for k, v in diff.items() if k in DEFAULT_OPTIMIZERS or v is not None}
        )
    wal = dict(d.wal)
    if body.get("wal_config") is not None:
        diff = _expect_dict(body["wal_config"], "wal_config")
        check_wal_diff(diff, "wal_config")
        wal.update({k: v for k, v in diff.items() if v is not None})

    def given(key: str, default: Any) -> Any:  # 0 is refused below, not defaulted
        return body[key] if body.get(key) is not None else default

    extra: dict[str, Any] = {
        "shard_number": given("shard_number", 1),
        "replication_factor": given("replication_factor", d.replication_factor),
        "write_consistency_factor": given("write_consistency_factor", d.write_consistency_factor),
        "on_disk_payload": body["on_disk_payload"]
        if body.get("on_disk_payload") is not None
        else d.on_disk_payload,
    }
    for key in ("shard_number", "replication_factor", "write_consistency_factor"):
        _positive_int(extra[key], key)
    method = body.get("sharding_method")
    if method is not None:
        if method not in ("auto", "custom"):
            raise BadRequest(
                f"Format error in JSON body: sharding_method: unknown variant `{method}`, "
                "expected `auto` or `custom`"
            )
        extra["sharding_method"] = method
    payload_storage = parse_payload_storage(body.get("payload"), "payload")
    if payload_storage is not None:
        extra["payload"] = payload_storage
    return CollectionConfig(
        vectors=vectors,
        sparse_vectors=sparse,
        unnamed=unnamed,
        hnsw_config=hnsw,
        optimizer_config=optimizers,
        wal_config=wal,
        params_extra=extra,
        quantization_config=copy.deepcopy(
            parse_quantization(body["quantization_config"], "quantization_config")
            if body.get("quantization_config") is not None
            else d.quantization
        ),
        strict_mode_config=merge_strict_mode(d.strict_mode, body.get("strict_mode_config")),
        metadata=(
            None if body.get("metadata") is None else _expect_dict(body["metadata"], "metadata")
        ),
    )


def apply_config_diff(config: CollectionConfig, raw: Any) -> None:
    """PATCH /collections/{name}: merge the given parts into the live config, in place."""
    body = with_aliases(_expect_dict(raw if raw is not None else {}, "body"), CREATE_ALIASES)
    if isinstance(body.get("vectors"), dict):  # VectorParamsDiff reads `quantization` too
        alias = {"quantization": "quantization_config"}
        vectors_diff = {
            name: with_aliases(diff, alias) if isinstance(diff, dict) else diff
            for name, diff in body["vectors"].items()
        }
        body = {**body, "vectors": vectors_diff}
    quantization = _quantization_diffs(config, body)
    if body.get("optimizers_config") is not None:
        diff = _expect_dict(body["optimizers_config"], "optimizers_config")
        check_prevent_unoptimized(diff, "optimizers_config")
        check_optimizers_diff(diff, "optimizers_config")
        config.optimizer_config.update({k: v for k, v in diff.items() if v is not None})
    if body.get("hnsw_config") is not None:
        config.hnsw_config = _merge_hnsw(config.hnsw_config, body["hnsw_config"], "hnsw_config")
    if None in quantization:
        config.quantization_config = quantization[None]
    if body.get("strict_mode_config") is not None:
        config.strict_mode_config = merge_strict_mode(
            config.strict_mode_config, body["strict_mode_config"]
        )
    if body.get("metadata") is not None:
        merged = {**(config.metadata or {}), **_expect_dict(body["metadata"], "metadata")}
        # as Qdrant: a key set to null is removed
        config.metadata = {k: v for k, v in merged.items() if v is not None}
    params = body.get("params")
    if params is not None:
        for key, value in _expect_dict(params, "params").items():
            if value is not None and key in (
                "replication_factor",
                "write_consistency_factor",
                "on_disk_payload",
            ):
                if key != "on_disk_payload" and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 1
                ):  # NonZeroU32 in Qdrant's PATCH: a deserialize error, not a validation one
                    raise BadRequest(
                        f"Format error in JSON body: params.{key}: invalid value: "
                        f"{json_type(value)}, expected a nonzero u32"
                    )
                config.params_extra[key] = value
        payload_storage = parse_payload_storage(params.get("payload"), "params.payload")
        if payload_storage:
            config.params_extra["payload"] = {
                **config.params_extra.get("payload", {}),
                **payload_storage,
            }
    vectors = body.get("vectors")
    if vectors is not None:
        for name, diff in _expect_dict(vectors, "vectors").items():
            if name not in config.vectors:
                raise BadRequest(f"Wrong input: Not existing vector name error: {name}")
            d = _expect_dict(diff, f"vectors.{name}")
            current = config.vectors[name]
            hnsw = current.hnsw_config
            if d.get("hnsw_config") is not None:
                hnsw = _merge_hnsw(
                    hnsw, d["hnsw_config"], f"vectors.{name}.hnsw_config", "vectors.?.hnsw_config"
                )
            config.vectors[name] = dataclasses.replace(
                current,
                hnsw_config=hnsw,
                on_disk=d.get("on_disk", current.on_disk),
                quantization_config=quantization.get(name, current.quantization_config),
                memory=parse_memory(
                    d.get("memory"), f"vectors.{name}.memory", "dense vector storage"
                )
                or current.memory,
            )
    sparse = body.get("sparse_vectors")
    if sparse is not None:
        for name, diff in _expect_dict(sparse, "sparse_vectors").items():
            if name not in config.sparse_vectors:
                raise BadRequest(f"Wrong input: Not existing vector name error: {name}")
            parsed = _parse_sparse({name: diff})[name]
            current_sparse = config.sparse_vectors[name]
            config.sparse_vectors[name] = SparseVectorParams(
                modifier=parsed.modifier if "modifier" in (diff or {}) else current_sparse.modifier,
                index=parsed.index if parsed.index is not None else current_sparse.index,
            )


def _quantization_diffs(config: CollectionConfig, body: dict[str, Any]) -> dict[str | None, Any]:
    """The quantization changes of a PATCH body, all checked before anything changes: None
    for the collection's, a vector name for its own; a None value removes ("Disabled")."""
    out: dict[str | None, Any] = {}
    if body.get("quantization_config") is not None:
        out[None] = parse_quantization(body["quantization_config"], "quantization_config", True)
    vectors = body.get("vectors")
    if isinstance(vectors, dict):
        for name, diff in vectors.items():
            if isinstance(diff, dict) and diff.get("quantization_config") is not None:
                where = f"vectors.{name}.quantization_config"
                out[name] = parse_quantization(diff["quantization_config"], where, True)
    return out


# --------------------------------------------------------------------------- strict mode

# Each field of Qdrant's StrictModeConfig: a bool, or an integer with its minimum, or the
# oversampling float; `multivector_config` and `sparse_config` are maps of vector name to
# {max_vectors} / {max_length}. Enforcement is tessera.collection.strict_mode's.
STRICT_MODE_BOOLS = (
    "enabled",
    "unindexed_filtering_retrieve",
    "unindexed_filtering_update",
    "search_allow_exact",
)
STRICT_MODE_INTS: dict[str, int] = {
    "max_query_limit": 1,
    "max_timeout": 1,
    "search_max_hnsw_ef": 0,
    "upsert_max_batchsize": 0,
    "search_max_batchsize": 0,
    "max_collection_vector_size_bytes": 0,
    "read_rate_limit": 1,
    "write_rate_limit": 1,
    "max_collection_payload_size_bytes": 0,
    "max_points_count": 1,
    "filter_max_conditions": 0,
    "condition_max_size": 0,
    "max_payload_index_count": 0,
    "max_resident_memory_percent": 1,
}
STRICT_MODE_MAPS = {"multivector_config": "max_vectors", "sparse_config": "max_length"}


def _strict_int(raw: Any, where: str, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise BadRequest(
            f"Format error in JSON body: {where}: invalid type: {raw!r}, expected usize"
        )
    if raw < 0:
        raise BadRequest(
            f"Format error in JSON body: {where}: invalid value: integer `{raw}`, expected usize"
        )
    if raw < minimum:
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{where}: value {raw} invalid, "
            f"must be {minimum} or larger]"
        )
    if where.endswith("max_resident_memory_percent") and raw > 100:
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{where}: value {raw} invalid, must be 100 or smaller]"
        )
    return raw


def parse_strict_mode(raw: Any, where: str = "strict_mode_config") -> dict[str, Any]:
    """A StrictModeConfig (create) or its diff (update): the fields that are set, checked.
    Null fields are left out; so are fields Qdrant does not know."""
    body = _expect_dict(raw, where)
    out: dict[str, Any] = {}
    for key, value in body.items():
        if value is None:
            continue
        at = f"{where}.{key}"
        if key in STRICT_MODE_BOOLS:
            if not isinstance(value, bool):
                raise BadRequest(f"Format error in JSON body: {at}: expected a boolean")
            out[key] = value
        elif key in STRICT_MODE_INTS:
            out[key] = _strict_int(value, at, STRICT_MODE_INTS[key])
        elif key == "search_max_oversampling":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadRequest(f"Format error in JSON body: {at}: expected a number")
            out[key] = float(value)
        elif key in STRICT_MODE_MAPS:
            limit = STRICT_MODE_MAPS[key]
            per_vector: dict[str, Any] = {}
            for name, entry in _expect_dict(value, at).items():
                entry = _expect_dict(entry, f"{at}.{name}")
                got = entry.get(limit)
                per_vector[name] = (
                    {limit: _strict_int(got, f"{at}.{name}.{limit}", 1)} if got is not None else {}
                )
            out[key] = per_vector
    return out


def merge_strict_mode(base: dict[str, Any] | None, diff: Any) -> dict[str, Any] | None:
    """Qdrant's StrictModeConfig update: each field the diff sets replaces the old one (the
    per-vector maps as a whole), a null or absent one keeps it."""
    if diff is None:
        return copy.deepcopy(base)
    merged = copy.deepcopy(base) if base is not None else {}
    merged.update(parse_strict_mode(diff))
    return merged
