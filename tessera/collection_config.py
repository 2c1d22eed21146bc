"""A collection's configuration: built from a create request, changed by PATCH, persisted,
rendered in info.

Requests arrive typed (`tessera.config_model`: `CreateCollection`, `UpdateCollection`),
decoded from JSON by `tessera.config_json` or from protobuf by `tessera.api.grpc_config`;
`build_config` and `apply_update` check and apply them. The engine reads the typed parts
(vector params); the rest is kept as Qdrant's JSON with defaults filled in, so that
`GET /collections/{name}` echoes what Qdrant would, and that JSON is what `config.json`
stores (read back through `config_json`).

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
from dataclasses import fields as dataclass_fields
from typing import Any

from tessera.config_defaults import DEFAULT_HNSW, DEFAULT_OPTIMIZERS, DEFAULT_WAL
from tessera.config_json import decode_create, decode_dense, decode_optimizers
from tessera.config_model import (
    CreateCollection,
    OptimizersDiff,
    Quantization,
    SparseIndexSpec,
    SparseSpec,
    StrictModeDiff,
    UpdateCollection,
    VectorSpec,
)
from tessera.errors import BadRequest, TesseraError


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
    # `storage.collection.shard_number_per_node`: the shards of an auto-sharded collection
    # created without `shard_number`, per peer (Qdrant's `get_shard_number`).
    shard_number_per_node: int = 1
    # `storage.collection.shard_number`: those shards whatever the peers (wins over per node).
    shard_number: int | None = None

    def auto_shards(self, peers: int) -> int:
        """The shards of an auto-sharded collection created without `shard_number`."""
        return self.shard_number or peers * self.shard_number_per_node


BUILTIN_DEFAULTS = CollectionDefaults()
# `CollectionParams` fields only an update sets; reported once set.
FAN_OUT = ("read_fan_out_factor", "read_fan_out_delay_ms")
_defaults = BUILTIN_DEFAULTS


def collection_defaults() -> CollectionDefaults:
    return _defaults


def set_collection_defaults(body: dict[str, Any]) -> CollectionDefaults:
    """Make `body` (the parts of a create request: `hnsw_config`, `optimizers_config`,
    `wal_config`, `on_disk_payload`, `replication_factor`, `write_consistency_factor`,
    `quantization_config`, `strict_mode_config`, `vectors_on_disk` and
    `shard_number_per_node`) the defaults of every collection created from now on. Checked
    as a create request is: raises BadRequest."""
    global _defaults
    own = ("vectors_on_disk", "shard_number_per_node", "shard_number")
    probe = parse_create_collection(
        {k: v for k, v in body.items() if k not in own}, BUILTIN_DEFAULTS
    )
    on_disk = body.get("vectors_on_disk")
    if on_disk is not None and not isinstance(on_disk, bool):
        raise BadRequest("vectors.on_disk must be a boolean")
    per_node = body.get("shard_number_per_node", 1)
    if isinstance(per_node, bool) or not isinstance(per_node, int) or per_node < 1:
        raise BadRequest("shard_number_per_node must be a positive integer")
    shards = body.get("shard_number")
    if shards is not None and (
        isinstance(shards, bool) or not isinstance(shards, int) or shards < 1
    ):
        raise BadRequest("shard_number must be a positive integer")
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
        shard_number_per_node=per_node,
        shard_number=shards,
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
    # Whether `datatype` was given (Qdrant shows a given float32; a default one is absent)
    datatype_given: bool = False

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
        if self.datatype != "float32" or self.datatype_given:
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
    # `params.sparse_vectors` is a map, possibly empty, rather than absent: Qdrant keeps the
    # map a create request gave (`{}` too) and one its last sparse name was deleted from.
    sparse_map: bool = False
    hnsw_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_HNSW))
    optimizer_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIMIZERS))
    wal_config: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_WAL))
    params_extra: dict[str, Any] = field(default_factory=dict)
    quantization_config: dict[str, Any] | None = None
    strict_mode_config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    # When the collection was made (RFC 3339, UTC), as CollectionInfo's `created_at` shows
    # it; None for a collection made before Tessera recorded it.
    created_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `config` object of CollectionInfo."""
        if self.unnamed:
            vectors: Any = self.vectors[""].to_json()
        else:
            vectors = {name: p.to_json() for name, p in self.vectors.items()}
        params: dict[str, Any] = {"vectors": vectors, **self.params_extra}
        if self.sparse_vectors or self.sparse_map:
            params["sparse_vectors"] = {n: p.to_json() for n, p in self.sparse_vectors.items()}
        out: dict[str, Any] = {
            "params": params,
            "hnsw_config": self.hnsw_config,
            # Qdrant's OptimizersConfig always shows `prevent_unoptimized` (null by default)
            "optimizer_config": {"prevent_unoptimized": None, **self.optimizer_config},
            "wal_config": self.wal_config,
            "quantization_config": self.quantization_config,
            "strict_mode_config": self.strict_mode_config or {"enabled": False},
        }
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out

    def to_storage(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"create": self.to_json(), "unnamed": self.unnamed}
        if self.created_at is not None:
            stored["created_at"] = self.created_at
        return stored

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
        for key in ("payload", "id_tracker"):
            if key in params:
                create[key] = params[key]
        parsed = parse_create_collection(create, BUILTIN_DEFAULTS)
        for key in FAN_OUT:  # set by an update only (no create body takes them)
            if params.get(key) is not None:
                parsed.params_extra[key] = params[key]
        if blank is not None:
            dense = parse_dense_params(blank, "vectors", BUILTIN_DEFAULTS.vectors_on_disk)
            parsed.vectors = {"": dense, **parsed.vectors}
        parsed.unnamed = bool(raw.get("unnamed", parsed.unnamed))
        created = raw.get("created_at")
        parsed.created_at = created if isinstance(created, str) else None
        return parsed

    def vector_params(self, name: str) -> DenseVectorParams | None:
        return self.vectors.get(name)

    def hnsw_for(self, name: str) -> dict[str, Any]:
        merged = dict(self.hnsw_config)
        params = self.vectors.get(name)
        if params is not None and params.hnsw_config:
            merged.update({k: v for k, v in params.hnsw_config.items() if v is not None})
        return merged

    def hnsw_setting(self, name: str, key: str) -> Any:
        """`hnsw_for(name).get(key)` without merging the two dicts (searches ask per query):
        the vector's own value where it sets one, else the collection's."""
        params = self.vectors.get(name)
        own = params.hnsw_config.get(key) if params is not None and params.hnsw_config else None
        return own if own is not None else self.hnsw_config.get(key)


# `storage.optimizers_overwrite`: optimizer settings over every collection's own (its
# stored config, shown by its info, stays as it was given).
_optimizers_overwrite: dict[str, Any] = {}
_OPTIMIZER_FIELDS = frozenset(f.name for f in dataclass_fields(OptimizersDiff))


def set_optimizers_overwrite(values: dict[str, Any] | None) -> None:
    """Qdrant's `storage.optimizers_overwrite`: an optimizers diff, read and checked as a
    PATCH's `optimizers_config` is (sizes also with `_kb`, as its config file spells them);
    BadRequest for a field or value Qdrant would not take."""
    global _optimizers_overwrite
    given = {(k[: -len("_kb")] if k.endswith("_kb") else k): v for k, v in (values or {}).items()}
    unknown = sorted(set(given) - _OPTIMIZER_FIELDS)
    if unknown:
        raise BadRequest(f"optimizers_overwrite: unknown field `{unknown[0]}`")
    try:
        diff = decode_optimizers(given, "optimizers_overwrite")
        diff.check("optimizers_overwrite")
    except TesseraError as exc:  # a validation error (422) too: the config is bad input
        raise BadRequest(exc.message) from None
    _optimizers_overwrite = optimizer_values(diff)


def optimizer_settings(config: CollectionConfig) -> dict[str, Any]:
    """The optimizer settings a collection runs with: its own, `storage.optimizers_overwrite`
    over them."""
    if not _optimizers_overwrite:
        return config.optimizer_config
    return {**config.optimizer_config, **_optimizers_overwrite}


def custom_sharding(config: CollectionConfig) -> bool:
    """`sharding_method: custom`: points go to the shards of the shard key a write names."""
    return config.params_extra.get("sharding_method") == "custom"


def deferred_limit(config: CollectionConfig) -> int | None:
    """With `prevent_unoptimized`: how many points an unindexed segment shows; those at
    higher offsets are *deferred* (stored, logged, invisible to reads) until the optimizer
    has built the segment's index. None: nothing is deferred."""
    opt = optimizer_settings(config)
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


def placed_on_disk(params: dict[str, Any] | None, on_disk: Any) -> bool:
    """An HNSW config or a payload storage: `memory` overrides the deprecated flag."""
    memory = (params or {}).get("memory")
    return memory == "cold" if memory is not None else bool(on_disk)


def ids_mapped(params_extra: dict[str, Any]) -> bool:
    """Whether indexed segments map their point ids from disk (`id_tracker.memory` cold or
    cached) instead of reading them into RAM (pinned, Qdrant's default)."""
    return (params_extra.get("id_tracker") or {}).get("memory") in ("cold", "cached")


def payload_on_disk(params_extra: dict[str, Any]) -> bool:
    return placed_on_disk(params_extra.get("payload"), params_extra.get("on_disk_payload", True))


# --------------------------------------------------------------------------- building


def dense_params(spec: VectorSpec, default_on_disk: bool | None = None) -> DenseVectorParams:
    """A checked VectorSpec as the stored params; `on_disk` not given: the default."""
    return DenseVectorParams(
        size=spec.size,
        distance=spec.distance,
        datatype=spec.datatype,
        datatype_given=spec.datatype_given,
        multivector=spec.multivector,
        on_disk=spec.on_disk if spec.on_disk is not None else default_on_disk,
        hnsw_config=spec.hnsw.given() if spec.hnsw is not None else None,
        quantization_config=spec.quantization.to_json() if spec.quantization else None,
        memory=spec.memory,
    )


def sparse_params(spec: SparseSpec) -> SparseVectorParams:
    index = spec.index.given() if spec.index is not None else None
    return SparseVectorParams(modifier=spec.modifier, index=index)


def parse_dense_params(
    raw: Any, where: str, default_on_disk: bool | None = None, validated: str | None = None
) -> DenseVectorParams:
    """A dense vector's JSON `VectorParams`, checked. `validated`: the path Qdrant's
    validator prints for its ranges, default `where`."""
    spec = decode_dense(raw, where)
    spec.check(where, validated or where)
    return dense_params(spec, default_on_disk)


# Characters a collection or vector name may not hold (each names a directory), in the
# order of Qdrant's `INVALID_NAME_CHARS`.
NAME_FORBIDDEN = '<>:"/\\|?*\x00\x1f'


def vector_name_problem(name: str) -> str | None:
    """What Qdrant's `validate_vector_name` finds wrong with a vector name, if anything: at
    most 200 bytes, none of the characters a file name cannot hold."""
    if len(name.encode()) > 200:
        return "vector name must be at most 200 bytes long"
    for ch in NAME_FORBIDDEN:
        if ch in name:
            return f'vector name cannot contain "{ch}" char'
    return None


def _check_vector_name(name: str, kind: str) -> None:
    problem = vector_name_problem(name)
    if problem is not None:
        raise BadRequest(f"Wrong input: Invalid {kind} vector name `{name}`: {problem}")


def build_config(
    request: CreateCollection, defaults: CollectionDefaults | None = None
) -> CollectionConfig:
    """The config a create request asks for, over the defaults; raises for a bad one."""
    request.check()
    d = defaults if defaults is not None else _defaults
    if not request.unnamed:  # a map of names ("" included); a bare VectorParams has none
        for name in request.vectors:
            _check_vector_name(name, "dense")
    for name in request.sparse_vectors:
        _check_vector_name(name, "sparse")
    if "" in request.sparse_vectors:  # Qdrant's words and order (create collection)
        raise BadRequest("Wrong input: Sparse vector name cannot be empty")
    clash = set(request.vectors) & set(request.sparse_vectors)
    if clash:
        raise BadRequest(
            "Wrong input: Dense and sparse vector names must be unique - duplicate found with "
            f"'{sorted(clash)[0]}'"
        )
    hnsw = {**d.hnsw, **(request.hnsw.given() if request.hnsw else {})}
    optimizers = {**d.optimizers, **optimizer_values(request.optimizers)}
    wal = {**d.wal, **(request.wal.given() if request.wal else {})}

    def given(value: Any, default: Any) -> Any:
        return value if value is not None else default

    # Custom sharding makes no shards up front: its `shard_number` is per shard key.
    per_node = 1 if request.sharding_method == "custom" else d.auto_shards(1)
    extra: dict[str, Any] = {
        "shard_number": given(request.shard_number, per_node),
        "replication_factor": given(request.replication_factor, d.replication_factor),
        "write_consistency_factor": given(
            request.write_consistency_factor, d.write_consistency_factor
        ),
        "on_disk_payload": given(request.on_disk_payload, d.on_disk_payload),
    }
    if request.sharding_method is not None:
        extra["sharding_method"] = request.sharding_method
    if request.payload_storage:
        memory = request.payload_memory
        extra["payload"] = {} if memory is None else {"memory": memory}
    if request.id_tracker:
        memory = request.id_tracker_memory
        extra["id_tracker"] = {} if memory is None else {"memory": memory}
    quantization = (
        request.quantization.to_json()
        if request.quantization is not None
        else copy.deepcopy(d.quantization)
    )
    return CollectionConfig(
        vectors={n: dense_params(s, d.vectors_on_disk) for n, s in request.vectors.items()},
        sparse_vectors={n: sparse_params(s) for n, s in request.sparse_vectors.items()},
        sparse_map=request.sparse_map,
        unnamed=request.unnamed,
        hnsw_config=hnsw,
        optimizer_config=optimizers,
        wal_config=wal,
        params_extra=extra,
        quantization_config=quantization,
        strict_mode_config=merge_strict_mode(d.strict_mode, request.strict_mode),
        metadata=copy.deepcopy(request.metadata),
    )


def optimizer_values(diff: OptimizersDiff | None) -> dict[str, Any]:
    """What an optimizers diff sets in the config: `max_optimization_threads: "auto"` is
    stored as null (Qdrant's OptimizersConfig holds a count or null, "no limit")."""
    values = diff.given() if diff is not None else {}
    if values.get("max_optimization_threads") == "auto":
        values["max_optimization_threads"] = None
    return values


def parse_create_collection(
    raw: Any, defaults: CollectionDefaults | None = None
) -> CollectionConfig:
    """A JSON create body (REST, a stored config, the server's defaults) as its config."""
    return build_config(decode_create(raw), defaults)


def merge_strict_mode(
    base: dict[str, Any] | None, diff: StrictModeDiff | None
) -> dict[str, Any] | None:
    """Qdrant's StrictModeConfig update: each field the diff sets replaces the old one (the
    per-vector maps as a whole), an unset one keeps it."""
    if diff is None:
        return copy.deepcopy(base)
    merged = copy.deepcopy(base) if base is not None else {}
    merged.update(diff.given())
    return merged


def apply_update(config: CollectionConfig, request: UpdateCollection) -> None:
    """PATCH /collections/{name}: merge the given parts into the live config, in place.
    Everything is checked before the first change; the caller applies to a copy first
    when it needs all or nothing across collections of a cluster."""
    request.check()
    for name in request.vectors:
        if name not in config.vectors:
            raise BadRequest(f"Wrong input: Not existing vector name error: {name}")
    for name in request.sparse_vectors:
        if name not in config.sparse_vectors:
            raise BadRequest(f"Wrong input: Not existing vector name error: {name}")
    if request.optimizers is not None:
        config.optimizer_config.update(optimizer_values(request.optimizers))
    if request.hnsw is not None:
        config.hnsw_config = {**config.hnsw_config, **request.hnsw.given()}
    if request.quantization is not None:
        config.quantization_config = _quantization_state(request.quantization)
    if request.strict_mode is not None:
        config.strict_mode_config = merge_strict_mode(
            config.strict_mode_config, request.strict_mode
        )
    if request.metadata is not None:
        given = copy.deepcopy(request.metadata)
        if config.metadata is None:
            config.metadata = given  # as Qdrant: the first metadata is taken as it comes
        else:
            # merged as Qdrant merges it: a key the update sets to null is removed, the
            # others set; keys it does not name stay as they are (nulls from the create too)
            merged = dict(config.metadata)
            for key, value in given.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            config.metadata = merged
    params = request.params
    if params is not None:
        for key in ("replication_factor", "write_consistency_factor", "on_disk_payload", *FAN_OUT):
            value = getattr(params, key)
            if value is not None:
                config.params_extra[key] = value
        for key, memory in (
            ("payload", params.payload_memory),
            ("id_tracker", params.id_tracker_memory),
        ):
            if memory is not None:
                config.params_extra[key] = {**config.params_extra.get(key, {}), "memory": memory}
    for name, diff in request.vectors.items():
        current = config.vectors[name]
        hnsw = current.hnsw_config
        if diff.hnsw is not None:
            hnsw = {**(hnsw or {}), **diff.hnsw.given()}
        config.vectors[name] = dataclasses.replace(
            current,
            hnsw_config=hnsw,
            on_disk=diff.on_disk if diff.on_disk is not None else current.on_disk,
            quantization_config=(
                _quantization_state(diff.quantization)
                if diff.quantization is not None
                else current.quantization_config
            ),
            memory=diff.memory or current.memory,
        )
    for name, spec in request.sparse_vectors.items():
        current_sparse = config.sparse_vectors[name]
        config.sparse_vectors[name] = SparseVectorParams(
            modifier=spec.modifier if spec.modifier is not None else current_sparse.modifier,
            index=_merged_sparse_index(current_sparse.index, spec.index),
        )


def _merged_sparse_index(
    current: dict[str, Any] | None, diff: SparseIndexSpec | None
) -> dict[str, Any] | None:
    """A PATCH's sparse `index` over the stored one: the fields it gives replace, the others
    stay (Qdrant's SparseIndexParams::update_from_other), echoed in the struct's field order."""
    if diff is None:
        return current
    if current is None:
        return diff.given()
    return SparseIndexSpec(**{**current, **diff.given()}).given()


def _quantization_state(value: Quantization | str) -> dict[str, Any] | None:
    """A PATCH's quantization as the config holds it: DISABLED removes it."""
    return value.to_json() if isinstance(value, Quantization) else None
