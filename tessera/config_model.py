"""Typed collection-config requests: what a create or a PATCH of a collection asks for.

Both transports decode into these values, REST from its JSON body
(`tessera.collection_config.decode_create` / `decode_update`, which also word JSON type
errors as Qdrant's serde does) and gRPC from its messages (`tessera.api.grpc_config`,
where protobuf has already fixed every type). What is left to check, the ranges of
Qdrant's `validator` (a 422), is checked here, once, by each value's `check`; applying a
request to a config is `tessera.collection_config`'s.

A diff's fields are None when not given; `given()` is the set ones, under Qdrant's names,
in its order: the form the config echoes in collection info and persists.

Imports: only `tessera.errors` (and numpy, for `rust_f32`). Also home of the number
formatting of Qdrant's messages (`rust_number`, `rust_f32`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tessera.errors import BadRequest, UnprocessableEntity


def invalid(where: str, value: Any, rule: str) -> UnprocessableEntity:
    """Qdrant's validator failure: `[where: value V invalid, RULE]` (REST wording; the gRPC
    edge rewords "in JSON body" as "in body")."""
    return UnprocessableEntity(
        f"Validation error in JSON body: [{where}: value {rust_number(value)} invalid, {rule}]"
    )


def rust_number(value: Any) -> str:
    """A number as Rust's Display writes it: a whole f64 has no `.0` (2.0 is "2")."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def rust_f32(value: float) -> str:
    """A float as Rust's `Display` writes an f32: shortest digits, no exponent, no `.0`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(np.format_float_positional(np.float32(value), trim="-"))


def rust_f64(value: float) -> str:
    """A float as Rust's `Display` writes an f64: shortest digits, no exponent, no `.0`,
    "inf", "-inf", "NaN"."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(np.format_float_positional(float(value), trim="-"))


def at_least(value: int | None, minimum: int, where: str) -> None:
    if value is not None and value < minimum:
        raise invalid(where, value, f"must be {minimum} or larger")


def check_placement(memory: str | None, where: str, storage: str) -> None:
    """A `Memory` placement of a storage that cannot be pinned."""
    if memory == "pinned":
        raise UnprocessableEntity(
            f"Validation error in JSON body: [{where}: `pinned` memory placement is not "
            f"supported for {storage}]"
        )


def _given(diff: Any) -> dict[str, Any]:
    return {
        f.name: getattr(diff, f.name)
        for f in dataclasses.fields(diff)
        if getattr(diff, f.name) is not None
    }


# The integer (usize) fields of the diffs, which every decoder reads alike.
HNSW_COUNTS = ("m", "ef_construct", "full_scan_threshold", "max_indexing_threads", "payload_m")
WAL_COUNTS = ("wal_capacity_mb", "wal_segments_ahead", "wal_retain_closed")
OPTIMIZER_COUNTS = (
    "vacuum_min_vector_number",
    "default_segment_number",
    "max_segment_size",
    "memmap_threshold",
    "indexing_threshold",
    "flush_interval_sec",
)


@dataclass(frozen=True)
class HnswDiff:
    m: int | None = None
    ef_construct: int | None = None
    full_scan_threshold: int | None = None
    max_indexing_threads: int | None = None
    on_disk: bool | None = None
    payload_m: int | None = None
    inline_storage: bool | None = None
    memory: str | None = None

    def check(self, validated: str) -> None:
        """`validated`: the path Qdrant's validator prints (`vectors.?.hnsw_config` for a
        named vector: its map is validated item by item under `?`)."""
        at_least(self.ef_construct, 4, f"{validated}.ef_construct")
        at_least(self.full_scan_threshold, 10, f"{validated}.full_scan_threshold")

    def given(self) -> dict[str, Any]:
        return _given(self)


@dataclass(frozen=True)
class WalDiff:
    wal_capacity_mb: int | None = None
    wal_segments_ahead: int | None = None
    wal_retain_closed: int | None = None

    def check(self, where: str) -> None:
        at_least(self.wal_capacity_mb, 1, f"{where}.wal_capacity_mb")

    def given(self) -> dict[str, Any]:
        return _given(self)


@dataclass(frozen=True)
class OptimizersDiff:
    deleted_threshold: float | None = None
    vacuum_min_vector_number: int | None = None
    default_segment_number: int | None = None
    max_segment_size: int | None = None
    memmap_threshold: int | None = None
    indexing_threshold: int | None = None
    flush_interval_sec: int | None = None
    max_optimization_threads: int | str | None = None  # a count or "auto"
    prevent_unoptimized: bool | None = None

    def check(self, where: str) -> None:
        threshold = self.deleted_threshold
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise invalid(f"{where}.deleted_threshold", threshold, "must be from 0.0 to 1.0")
        at_least(self.vacuum_min_vector_number, 100, f"{where}.vacuum_min_vector_number")
        at_least(self.max_segment_size, 1, f"{where}.max_segment_size")

    def given(self) -> dict[str, Any]:
        return _given(self)


# Each quantization kind's fields, in the order Qdrant echoes them, and the enum values.
QUANTIZATION_FIELDS: dict[str, tuple[str, ...]] = {
    "scalar": ("type", "quantile", "always_ram", "memory"),
    "product": ("compression", "always_ram", "memory"),
    "binary": ("always_ram", "memory", "encoding", "query_encoding"),
    "turbo": ("always_ram", "memory", "bits"),
}
QUANTIZATION_ENUMS: dict[str, tuple[str, ...]] = {
    "type": ("int8",),
    "compression": ("x4", "x8", "x16", "x32", "x64"),
    "encoding": ("one_bit", "two_bits", "one_and_half_bits"),
    "query_encoding": ("default", "binary", "scalar4bits", "scalar8bits"),
    "bits": ("bits1", "bits1_5", "bits2", "bits4", "bits8"),
    "memory": ("cold", "cached", "pinned"),
}


@dataclass(frozen=True)
class Quantization:
    """One `QuantizationConfig`: its kind and the fields given for it."""

    kind: str  # scalar | product | binary | turbo
    type: str | None = None
    quantile: float | None = None
    compression: str | None = None
    always_ram: bool | None = None
    memory: str | None = None
    encoding: str | None = None
    query_encoding: str | None = None
    bits: str | None = None

    def check(self, where: str) -> None:
        quantile = self.quantile
        if quantile is not None and not 0.5 <= quantile <= 1.0:
            raise invalid(f"{where}.scalar.quantile", quantile, "must be from 0.5 to 1.0")

    def to_json(self) -> dict[str, Any]:
        """As Qdrant echoes it: `{kind: {the given fields}}`."""
        body = {k: getattr(self, k) for k in QUANTIZATION_FIELDS[self.kind]}
        return {self.kind: {k: v for k, v in body.items() if v is not None}}


# PATCH's `"Disabled"`: remove the quantization.
DISABLED = "Disabled"

# StrictModeConfig: booleans, integers with their minimum (and one maximum), the
# oversampling float, and per-vector maps {name: limit}.
STRICT_MODE_MINIMUMS: dict[str, int] = {
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


@dataclass(frozen=True)
class StrictModeDiff:
    enabled: bool | None = None
    max_query_limit: int | None = None
    max_timeout: int | None = None
    unindexed_filtering_retrieve: bool | None = None
    unindexed_filtering_update: bool | None = None
    search_max_hnsw_ef: int | None = None
    search_allow_exact: bool | None = None
    search_max_oversampling: float | None = None
    upsert_max_batchsize: int | None = None
    search_max_batchsize: int | None = None
    max_collection_vector_size_bytes: int | None = None
    read_rate_limit: int | None = None
    write_rate_limit: int | None = None
    max_collection_payload_size_bytes: int | None = None
    max_points_count: int | None = None
    filter_max_conditions: int | None = None
    condition_max_size: int | None = None
    # {vector name: max_vectors / max_length, None when the entry sets no limit}
    multivector_config: dict[str, int | None] | None = None
    sparse_config: dict[str, int | None] | None = None
    max_payload_index_count: int | None = None
    max_resident_memory_percent: int | None = None

    def check(self, where: str) -> None:
        for key, minimum in STRICT_MODE_MINIMUMS.items():
            at_least(getattr(self, key), minimum, f"{where}.{key}")
        percent = self.max_resident_memory_percent
        if percent is not None and percent > 100:
            raise invalid(f"{where}.max_resident_memory_percent", percent, "must be 100 or smaller")
        for key, limit in STRICT_MODE_MAPS.items():
            for name, value in (getattr(self, key) or {}).items():
                at_least(value, 1, f"{where}.{key}.{name}.{limit}")

    def given(self) -> dict[str, Any]:
        """The set fields; a map as `{name: {limit: value}}` (`{}` for an entry without)."""
        out = _given(self)
        for key, limit in STRICT_MODE_MAPS.items():
            if key in out:
                out[key] = {
                    name: ({limit: value} if value is not None else {})
                    for name, value in out[key].items()
                }
        if "search_max_oversampling" in out:
            out["search_max_oversampling"] = float(out["search_max_oversampling"])
        return out


@dataclass(frozen=True)
class VectorSpec:
    """A dense vector's `VectorParams` as a create request gives them."""

    size: int
    distance: str
    datatype: str = "float32"
    multivector: bool = False
    on_disk: bool | None = None
    hnsw: HnswDiff | None = None
    quantization: Quantization | None = None
    memory: str | None = None
    datatype_given: bool = False  # set explicitly (Qdrant shows a given float32, not a default)

    def check(self, where: str, validated: str) -> None:
        if self.size < 1:
            raise invalid(f"{where}.size", self.size, "must be 1 or larger")
        if self.size > 65536:  # Qdrant's validator: range(min = 1, max = 65536)
            raise invalid(f"{validated}.size", self.size, "must be from 1 to 65536")
        if self.hnsw is not None:
            self.hnsw.check(f"{validated}.hnsw_config")
        if self.quantization is not None:
            self.quantization.check(f"{where}.quantization_config")
        check_placement(self.memory, f"{where}.memory", "dense vector storage")


@dataclass(frozen=True)
class SparseIndexSpec:
    full_scan_threshold: int | None = None
    on_disk: bool | None = None
    datatype: str | None = None
    memory: str | None = None

    def given(self) -> dict[str, Any]:
        return _given(self)


@dataclass(frozen=True)
class SparseSpec:
    modifier: str | None = None
    index: SparseIndexSpec | None = None


@dataclass(frozen=True)
class CreateCollection:
    """`PUT /collections/{name}` / gRPC `Create`: what the request gave (None: left to the
    defaults). `unnamed`: the single unnamed vector form (its spec is under "")."""

    vectors: dict[str, VectorSpec] = field(default_factory=dict)
    unnamed: bool = False
    sparse_vectors: dict[str, SparseSpec] = field(default_factory=dict)
    sparse_map: bool = False  # `sparse_vectors` was given (possibly empty)
    hnsw: HnswDiff | None = None
    wal: WalDiff | None = None
    optimizers: OptimizersDiff | None = None
    quantization: Quantization | None = None
    strict_mode: StrictModeDiff | None = None
    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    on_disk_payload: bool | None = None
    sharding_method: str | None = None
    payload_memory: str | None = None  # PayloadStorageParams.memory
    payload_storage: bool = False  # `payload` was given (possibly empty)
    id_tracker_memory: str | None = None  # IdTrackerParams.memory
    id_tracker: bool = False  # `id_tracker` was given (possibly empty)
    metadata: dict[str, Any] | None = None

    def check(self) -> None:
        for name, spec in self.vectors.items():
            where = "vectors" if self.unnamed else f"vectors.{name}"
            spec.check(where, "vectors" if self.unnamed else "vectors.?")
        if self.hnsw is not None:
            self.hnsw.check("hnsw_config")
        if self.wal is not None:
            self.wal.check("wal_config")
        if self.optimizers is not None:
            self.optimizers.check("optimizers_config")
        if self.quantization is not None:
            self.quantization.check("quantization_config")
        if self.strict_mode is not None:
            self.strict_mode.check("strict_mode_config")
        for key in ("shard_number", "replication_factor", "write_consistency_factor"):
            at_least(getattr(self, key), 1, key)
        check_placement(self.payload_memory, "payload.memory", "payload storage")

    @property
    def auto_shards(self) -> bool:
        """Cluster mode: without `shard_number` (and without custom sharding), one shard
        per peer (Qdrant's default there)."""
        return self.shard_number is None and self.sharding_method != "custom"


@dataclass(frozen=True)
class VectorDiff:
    """PATCH's `VectorParamsDiff` of one dense vector. `quantization` DISABLED removes it."""

    hnsw: HnswDiff | None = None
    quantization: Quantization | str | None = None
    on_disk: bool | None = None
    memory: str | None = None


@dataclass(frozen=True)
class ParamsDiff:
    """PATCH's `CollectionParamsDiff` (the fan-out fields are kept and reported, as Qdrant
    reports them; a read has no other replica to fan out to)."""

    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    on_disk_payload: bool | None = None
    read_fan_out_factor: int | None = None
    read_fan_out_delay_ms: int | None = None
    payload_memory: str | None = None
    id_tracker_memory: str | None = None

    def check(self) -> None:
        for key in ("replication_factor", "write_consistency_factor"):
            value = getattr(self, key)
            if value is not None and value < 1:  # NonZeroU32 in Qdrant: a deserialize error
                raise BadRequest(
                    f"Format error in JSON body: params.{key}: invalid value: integer "
                    f"`{value}`, expected a nonzero u32"
                )
        check_placement(self.payload_memory, "params.payload.memory", "payload storage")


@dataclass(frozen=True)
class UpdateCollection:
    """`PATCH /collections/{name}` / gRPC `Update`. `quantization` DISABLED removes the
    collection's; `metadata` keys set to None are removed."""

    vectors: dict[str, VectorDiff] = field(default_factory=dict)
    sparse_vectors: dict[str, SparseSpec] = field(default_factory=dict)
    optimizers: OptimizersDiff | None = None
    hnsw: HnswDiff | None = None
    quantization: Quantization | str | None = None
    strict_mode: StrictModeDiff | None = None
    params: ParamsDiff | None = None
    metadata: dict[str, Any] | None = None

    def check(self) -> None:
        for name, diff in self.vectors.items():
            if diff.hnsw is not None:
                diff.hnsw.check("vectors.?.hnsw_config")
            if isinstance(diff.quantization, Quantization):
                diff.quantization.check(f"vectors.{name}.quantization_config")
            check_placement(diff.memory, f"vectors.{name}.memory", "dense vector storage")
        if self.params is not None:
            self.params.check()
        if self.optimizers is not None:
            self.optimizers.check("optimizers_config")
        if self.hnsw is not None:
            self.hnsw.check("hnsw_config")
        if isinstance(self.quantization, Quantization):
            self.quantization.check("quantization_config")
        if self.strict_mode is not None:
            self.strict_mode.check("strict_mode_config")

    def to_json(self) -> dict[str, Any]:
        """The PATCH body that asks the same (cluster mode commits it for every node)."""
        out: dict[str, Any] = {}
        if self.vectors:
            out["vectors"] = {name: _vector_diff_json(d) for name, d in self.vectors.items()}
        if self.sparse_vectors:
            out["sparse_vectors"] = {n: sparse_json(s) for n, s in self.sparse_vectors.items()}
        if self.optimizers is not None:
            out["optimizers_config"] = self.optimizers.given()
        if self.hnsw is not None:
            out["hnsw_config"] = self.hnsw.given()
        if self.quantization is not None:
            out["quantization_config"] = _quantization_json(self.quantization)
        if self.strict_mode is not None:
            out["strict_mode_config"] = self.strict_mode.given()
        if self.params is not None:
            given = _given(self.params)
            params = {k: v for k, v in given.items() if not k.endswith("_memory")}
            if self.params.payload_memory is not None:
                params["payload"] = {"memory": self.params.payload_memory}
            if self.params.id_tracker_memory is not None:
                params["id_tracker"] = {"memory": self.params.id_tracker_memory}
            out["params"] = params
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out


def _quantization_json(value: Quantization | str) -> Any:
    return value.to_json() if isinstance(value, Quantization) else value


def _vector_diff_json(diff: VectorDiff) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if diff.hnsw is not None:
        out["hnsw_config"] = diff.hnsw.given()
    if diff.quantization is not None:
        out["quantization_config"] = _quantization_json(diff.quantization)
    if diff.on_disk is not None:
        out["on_disk"] = diff.on_disk
    if diff.memory is not None:
        out["memory"] = diff.memory
    return out


def sparse_json(spec: SparseSpec) -> dict[str, Any]:
    """`SparseVectorParams` as Qdrant echoes it."""
    out: dict[str, Any] = {}
    if spec.index is not None:
        out["index"] = spec.index.given()
    if spec.modifier is not None:
        out["modifier"] = spec.modifier
    return out
