"""gRPC collection-config messages decoded straight into the typed requests REST decodes
its JSON into (`tessera.config_model`): `CreateCollection`, `UpdateCollection`, a
`CreateVectorNameRequest`'s vector, a `CreateFieldIndexCollection`'s schema and the alias
actions of `ChangeAliases`.

Protobuf fixes every type, so what can fail here is an enum value outside what Qdrant
accepts (worded as Qdrant's `TryFrom` conversions word it); the ranges are the typed
values' own `check`, the same call REST's decoding ends in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qdrant_client import grpc as pb

from tessera.api.aliases import check_alias_name
from tessera.api.grpc_convert import opt, payload
from tessera.collection import vector_names
from tessera.collection.writes import FieldSchema, schema_of
from tessera.config_json import TURBO_DATATYPES
from tessera.config_model import (
    DISABLED,
    HNSW_COUNTS,
    OPTIMIZER_COUNTS,
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
    at_least,
)
from tessera.errors import BadRequest
from tessera.storage.aliases import AliasAction, CreateAlias, DeleteAlias, RenameAlias

# Enum numbers -> Qdrant's JSON names (what the config echoes); a number missing from a
# table is refused as Qdrant's conversion refuses it.
DISTANCE = {1: "Cosine", 2: "Euclid", 3: "Dot", 4: "Manhattan"}
DATATYPE = {
    0: "float32", 1: "float32", 2: "uint8", 3: "float16", 4: "turbo4", 5: "turbo8", 6: "turbo16"
}  # fmt: skip
SPARSE_DATATYPE = {1: "float32", 2: "uint8", 3: "float16"}
MODIFIER = {0: "none", 1: "idf"}
MEMORY = {1: "cold", 2: "cached", 3: "pinned"}
SHARDING = {0: "auto", 1: "custom"}
SCALAR_TYPE = {1: "int8"}
COMPRESSION = {0: "x4", 1: "x8", 2: "x16", 3: "x32", 4: "x64"}
ENCODING = {0: "one_bit", 1: "two_bits", 2: "one_and_half_bits"}
QUERY_ENCODING = {0: "default", 1: "binary", 2: "scalar4bits", 3: "scalar8bits"}
TURBO_BITS = {0: "bits1", 1: "bits1_5", 2: "bits2", 3: "bits4", 4: "bits8"}
TOKENIZER = {1: "prefix", 2: "whitespace", 3: "word", 4: "multilingual", 5: "code"}
FIELD_TYPES = ("keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid")


def enum(table: dict[int, str], value: int, what: str) -> str:
    name = table.get(value)
    if name is None:
        raise BadRequest(f"Wrong input: invalid {what} model: {value}")
    return name


def f32(value: float) -> float:
    """A protobuf `float` as the float32 it is, read back as its shortest decimal (0.99,
    not 0.9900000095367432), which is what Qdrant echoes."""
    return float(str(np.float32(value)))


def _opt_enum(message: Any, name: str, table: dict[int, str], what: str) -> str | None:
    return enum(table, getattr(message, name), what) if message.HasField(name) else None


def _memory(message: Any) -> str | None:
    return _opt_enum(message, "memory", MEMORY, "Memory")


def _fields(message: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: opt(message, name) for name in names}


# --------------------------------------------------------------------------- parts


def hnsw(message: pb.HnswConfigDiff) -> HnswDiff:
    return HnswDiff(
        **_fields(message, HNSW_COUNTS),
        on_disk=opt(message, "on_disk"),
        inline_storage=opt(message, "inline_storage"),
        memory=_memory(message),
    )


def wal(message: pb.WalConfigDiff) -> WalDiff:
    diff = WalDiff(**_fields(message, WAL_COUNTS))
    # A rule of the gRPC message's that REST's body lacks (Qdrant's build.rs: min 1)
    at_least(diff.wal_retain_closed, 1, "wal_config.wal_retain_closed")
    return diff


def optimizers(message: pb.OptimizersConfigDiff) -> OptimizersDiff:
    threads: int | str | None = None
    if message.HasField("max_optimization_threads"):
        setting = message.max_optimization_threads
        kind = setting.WhichOneof("variant")
        if kind == "value":
            threads = setting.value
        elif kind == "setting" and setting.setting == 0:  # Auto
            threads = "auto"
        else:
            raise BadRequest(f"Wrong input: invalid MaxOptimizationThreads model: {setting}")
    elif message.HasField("deprecated_max_optimization_threads"):
        threads = message.deprecated_max_optimization_threads
    return OptimizersDiff(
        deleted_threshold=opt(message, "deleted_threshold"),
        **_fields(message, OPTIMIZER_COUNTS),
        max_optimization_threads=threads,
        prevent_unoptimized=opt(message, "prevent_unoptimized"),
    )


def quantization(message: Any) -> Quantization | str:
    """A `QuantizationConfig` or `QuantizationConfigDiff` (whose `disabled` is DISABLED)."""
    kind = message.WhichOneof("quantization")
    if kind == "disabled":
        return DISABLED
    if kind == "scalar":
        q = message.scalar
        quantile = opt(q, "quantile")
        return Quantization(
            "scalar",
            type=enum(SCALAR_TYPE, q.type, "QuantizationType"),
            quantile=None if quantile is None else f32(quantile),
            always_ram=opt(q, "always_ram"),
            memory=_memory(q),
        )
    if kind == "product":
        q = message.product
        return Quantization(
            "product",
            compression=enum(COMPRESSION, q.compression, "CompressionRatio"),
            always_ram=opt(q, "always_ram"),
            memory=_memory(q),
        )
    if kind == "binary":
        q = message.binary
        query = None
        if q.HasField("query_encoding"):
            if q.query_encoding.WhichOneof("variant") != "setting":
                raise BadRequest("Wrong input: invalid BinaryQuantizationQueryEncoding model")
            query = enum(
                QUERY_ENCODING, q.query_encoding.setting, "BinaryQuantizationQueryEncoding"
            )
        return Quantization(
            "binary",
            always_ram=opt(q, "always_ram"),
            memory=_memory(q),
            encoding=_opt_enum(q, "encoding", ENCODING, "BinaryQuantizationEncoding"),
            query_encoding=query,
        )
    if kind == "turboquant":
        q = message.turboquant
        return Quantization(
            "turbo",
            always_ram=opt(q, "always_ram"),
            memory=_memory(q),
            bits=_opt_enum(q, "bits", TURBO_BITS, "TurboQuantBitSize"),
        )
    raise BadRequest(f"Wrong input: invalid {type(message).__name__} model: {message}")


def _create_quantization(message: pb.QuantizationConfig) -> Quantization:
    value = quantization(message)
    assert isinstance(value, Quantization)  # QuantizationConfig has no `disabled`
    return value


_STRICT_PLAIN = tuple(
    name
    for name in StrictModeDiff.__dataclass_fields__
    if name not in ("multivector_config", "sparse_config", "search_max_oversampling")
)


def strict_mode(message: pb.StrictModeConfig) -> StrictModeDiff:
    oversampling = opt(message, "search_max_oversampling")
    multivector = sparse = None
    if message.HasField("multivector_config"):
        entries = message.multivector_config.multivector_config
        multivector = {n: opt(entries[n], "max_vectors") for n in entries}
    if message.HasField("sparse_config"):
        sparse_entries = message.sparse_config.sparse_config
        sparse = {n: opt(sparse_entries[n], "max_length") for n in sparse_entries}
    return StrictModeDiff(
        **_fields(message, _STRICT_PLAIN),
        search_max_oversampling=None if oversampling is None else f32(oversampling),
        multivector_config=multivector,
        sparse_config=sparse,
    )


def distance(value: int) -> str:
    """Qdrant's `TryFrom<Distance>` texts."""
    if value == 0:
        raise BadRequest("Malformed distance parameter: UnknownDistance")
    name = DISTANCE.get(value)
    if name is None:
        raise BadRequest(f"Malformed distance parameter, unexpected value: {value}")
    return name


def vector_spec(message: Any) -> VectorSpec:
    """`VectorParams` (or a `DenseVectorCreationConfig`, which has its first fields)."""
    has = message.DESCRIPTOR.fields_by_name
    hnsw_diff = (
        hnsw(message.hnsw_config)
        if "hnsw_config" in has and message.HasField("hnsw_config")
        else None
    )
    q = None
    if "quantization_config" in has and message.HasField("quantization_config"):
        q = _create_quantization(message.quantization_config)
    return VectorSpec(
        size=message.size,
        distance=distance(message.distance),
        datatype=_opt_enum(message, "datatype", DATATYPE, "Datatype") or "float32",
        # Qdrant keeps a datatype given as anything but Default (0), float32 included
        datatype_given=message.HasField("datatype") and message.datatype != 0,
        multivector=message.HasField("multivector_config"),
        on_disk=opt(message, "on_disk") if "on_disk" in has else None,
        hnsw=hnsw_diff if hnsw_diff is not None and hnsw_diff.given() else None,
        quantization=q,
        memory=_memory(message) if "memory" in has else None,
    )


def sparse_spec(message: pb.SparseVectorParams, where: str) -> SparseSpec:
    index = None
    if message.HasField("index"):
        i = message.index
        datatype = None
        if i.HasField("datatype"):
            if DATATYPE.get(i.datatype) in TURBO_DATATYPES:
                raise BadRequest(
                    f"Wrong input: {where}.index.datatype: datatype {DATATYPE[i.datatype]} is "
                    "not supported for sparse vectors (expected float32, float16, or uint8)"
                )
            datatype = enum(SPARSE_DATATYPE, i.datatype, "Datatype")
        index = SparseIndexSpec(
            full_scan_threshold=opt(i, "full_scan_threshold"),
            on_disk=opt(i, "on_disk"),
            datatype=datatype,
            memory=_memory(i),
        )
    return SparseSpec(modifier=_opt_enum(message, "modifier", MODIFIER, "Modifier"), index=index)


def _sparse_map(message: pb.SparseVectorConfig) -> dict[str, SparseSpec]:
    return {n: sparse_spec(message.map[n], f"sparse_vectors.{n}") for n in message.map}


# --------------------------------------------------------------------------- requests


def create(req: pb.CreateCollection) -> CreateCollection:
    vectors: dict[str, VectorSpec] = {}
    unnamed = False
    if req.HasField("vectors_config"):
        kind = req.vectors_config.WhichOneof("config")
        if kind == "params":
            vectors[""] = vector_spec(req.vectors_config.params)
            unnamed = True
        elif kind == "params_map":
            entries = req.vectors_config.params_map.map
            for name in entries:
                vectors[name] = vector_spec(entries[name])  # "" too, as over REST
        # set but empty: no dense vectors, as Qdrant converts it
    storage = req.payload if req.HasField("payload") else None
    return CreateCollection(
        vectors=vectors,
        unnamed=unnamed,
        sparse_vectors=(
            _sparse_map(req.sparse_vectors_config) if req.HasField("sparse_vectors_config") else {}
        ),
        sparse_map=req.HasField("sparse_vectors_config"),
        hnsw=hnsw(req.hnsw_config) if req.HasField("hnsw_config") else None,
        wal=wal(req.wal_config) if req.HasField("wal_config") else None,
        optimizers=optimizers(req.optimizers_config) if req.HasField("optimizers_config") else None,
        quantization=(
            _create_quantization(req.quantization_config)
            if req.HasField("quantization_config")
            else None
        ),
        strict_mode=strict_mode(req.strict_mode_config)
        if req.HasField("strict_mode_config")
        else None,
        **_fields(req, ("shard_number", "replication_factor", "write_consistency_factor")),
        on_disk_payload=opt(req, "on_disk_payload"),
        sharding_method=_opt_enum(req, "sharding_method", SHARDING, "ShardingMethod"),
        payload_memory=None if storage is None else _memory(storage),
        payload_storage=storage is not None,
        id_tracker_memory=_memory(req.id_tracker) if req.HasField("id_tracker") else None,
        id_tracker=req.HasField("id_tracker"),
        metadata=payload(req.metadata) if req.metadata else None,
    )


def _vector_diff(message: pb.VectorParamsDiff) -> VectorDiff:
    return VectorDiff(
        hnsw=hnsw(message.hnsw_config) if message.HasField("hnsw_config") else None,
        quantization=(
            quantization(message.quantization_config)
            if message.HasField("quantization_config")
            else None
        ),
        on_disk=opt(message, "on_disk"),
        memory=_memory(message),
    )


def update(req: pb.UpdateCollection) -> UpdateCollection:
    vectors: dict[str, VectorDiff] = {}
    if req.HasField("vectors_config"):
        kind = req.vectors_config.WhichOneof("config")
        if kind == "params":
            vectors[""] = _vector_diff(req.vectors_config.params)
        elif kind == "params_map":
            entries = req.vectors_config.params_map.map
            vectors = {name: _vector_diff(entries[name]) for name in entries}
    params = None
    if req.HasField("params"):
        p = req.params
        params = ParamsDiff(
            **_fields(
                p,
                (
                    "replication_factor",
                    "write_consistency_factor",
                    "on_disk_payload",
                    "read_fan_out_factor",
                    "read_fan_out_delay_ms",
                ),
            ),
            payload_memory=_memory(p.payload) if p.HasField("payload") else None,
            id_tracker_memory=_memory(p.id_tracker) if p.HasField("id_tracker") else None,
        )
    return UpdateCollection(
        vectors=vectors,
        sparse_vectors=(
            _sparse_map(req.sparse_vectors_config) if req.HasField("sparse_vectors_config") else {}
        ),
        optimizers=optimizers(req.optimizers_config) if req.HasField("optimizers_config") else None,
        hnsw=hnsw(req.hnsw_config) if req.HasField("hnsw_config") else None,
        quantization=(
            quantization(req.quantization_config) if req.HasField("quantization_config") else None
        ),
        strict_mode=strict_mode(req.strict_mode_config)
        if req.HasField("strict_mode_config")
        else None,
        params=params,
        metadata=payload(req.metadata) if req.metadata else None,
    )


def vector_name(req: pb.CreateVectorNameRequest) -> VectorSpec | SparseSpec:
    """The new vector of `CreateVectorNameRequest`: only what defines its space (tuning is
    set later with an update, as in Qdrant)."""
    kind = req.WhichOneof("vector_config")
    if kind == "dense_config":
        return vector_spec(req.dense_config)
    if kind == "sparse_config":
        config = req.sparse_config
        datatype = None
        if config.HasField("datatype") and config.datatype:  # Default (0): float32
            datatype = enum(DATATYPE, config.datatype, "Datatype")  # turbo4: refused there
        modifier = _opt_enum(config, "modifier", MODIFIER, "Modifier")
        return vector_names.sparse_creation(modifier, datatype)
    raise BadRequest(
        "Wrong input: a CreateVectorNameRequest must set dense_config or sparse_config"
    )


# --------------------------------------------------------------------------- indexes, aliases


def _index_param(message: Any, name: str) -> Any:
    if name == "memory":
        return _memory(message)
    if name == "tokenizer":
        return _tokenizer(message.tokenizer)
    if name == "prefix":
        return True  # an empty message: its presence enables prefix matching
    if name == "stopwords":
        languages, custom = list(message.stopwords.languages), list(message.stopwords.custom)
        if len(languages) == 1 and not custom:
            return languages[0]
        return {"languages": languages, "custom": custom}
    if name == "stemmer":
        kind = message.stemmer.WhichOneof("stemming_params")
        if kind == "snowball":
            return {"type": "snowball", "language": message.stemmer.snowball.language}
        if kind == "disabled":
            return {"type": "none"}
        raise BadRequest("Wrong input: invalid StemmingAlgorithm model")
    if name == "scoring":
        return {"type": "bm25"}
    return getattr(message, name)


def _tokenizer(value: int) -> str:
    """A text index's tokenizer; Unknown (0) and values outside the enum are refused, as
    Qdrant's TryFrom<TokenizerType> refuses them (REST's default, word, is no gRPC default)."""
    name = TOKENIZER.get(value)
    if name is None:
        raise BadRequest("unknown tokenizer type")
    return name


def field_schema(req: pb.CreateFieldIndexCollection) -> FieldSchema | None:
    """The index a `CreateFieldIndexCollection` asks for, read as Qdrant's `convert_field_type`
    (src/tonic/api/update_common.rs): `field_type` must be set; params of another type than
    it are refused; an unknown type is no type (None: Qdrant cannot auto-detect one); params
    whose oneof is empty are the bare type."""
    if not req.HasField("field_type"):
        raise BadRequest("cannot convert field_type")
    known = 0 <= req.field_type < len(FIELD_TYPES)
    field_type = FIELD_TYPES[req.field_type] if known else None
    kind = req.field_index_params.WhichOneof("index_params")
    if not req.HasField("field_index_params") or kind is None:
        return None if field_type is None else FieldSchema(field_type)
    if field_type is None:
        raise BadRequest("field type is missing")
    if kind.removesuffix("_index_params") != field_type:
        raise BadRequest(
            f"field_type ({field_type.capitalize()}) and field_index_params do not match"
        )
    message = getattr(req.field_index_params, kind)
    values: dict[str, Any] = {}
    for descriptor, _ in message.ListFields():
        values[descriptor.name] = _index_param(message, descriptor.name)
    if kind == "text_index_params":
        _tokenizer(message.tokenizer)  # Unknown (0) is not among the listed fields
    given = {k: v for k, v in values.items() if v is not None}
    return schema_of(field_type, given)


def alias_action(message: pb.AliasOperations, index: int) -> AliasAction:
    kind = message.WhichOneof("action")
    if kind == "create_alias":
        a = message.create_alias
        check_alias_name(f"actions[{index}].create_alias.alias_name", a.alias_name)
        return CreateAlias(a.collection_name, a.alias_name)
    if kind == "rename_alias":
        r = message.rename_alias
        check_alias_name(f"actions[{index}].rename_alias.new_alias_name", r.new_alias_name)
        return RenameAlias(r.old_alias_name, r.new_alias_name)
    if kind == "delete_alias":
        return DeleteAlias(message.delete_alias.alias_name)
    raise BadRequest("Malformed AliasOperation type")
