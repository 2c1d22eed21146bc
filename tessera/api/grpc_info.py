"""Collection info as the gRPC `CollectionInfo` message, rendered from the collection's
plain values (`collection.values.CollectionInfo`, its `CollectionConfig`, the payload
index schemas), as `render.render_info` renders the same values as REST's JSON.

The config's parts are held in Qdrant's JSON form (what `GET /collections/{name}` echoes
and `config.json` stores); each is written into its message field by field, enums through
the inverse of `grpc_config`'s tables.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as pb

from tessera.api import grpc_config as names
from tessera.api.grpc_convert import drop_none
from tessera.api.grpc_render import payload
from tessera.collection.values import CollectionInfo
from tessera.collection_config import DenseVectorParams, SparseVectorParams
from tessera.config_model import OPTIMIZER_COUNTS

# Enum numbers typed Any: the stubs type each enum field with its own ValueType.
ZERO: Any = 0  # MultiVectorComparator.MaxSim, TextScoringType.Bm25


def _inverse(table: dict[int, str]) -> dict[str, Any]:
    return {name: number for number, name in sorted(table.items(), reverse=True)}


DISTANCE = _inverse(names.DISTANCE)
DATATYPE = _inverse(names.DATATYPE) | {"float32": 1}
MODIFIER = _inverse(names.MODIFIER)
MEMORY = _inverse(names.MEMORY)
SHARDING = _inverse(names.SHARDING)
SCALAR_TYPE = _inverse(names.SCALAR_TYPE)
COMPRESSION = _inverse(names.COMPRESSION)
ENCODING = _inverse(names.ENCODING)
QUERY_ENCODING = _inverse(names.QUERY_ENCODING)
TURBO_BITS = _inverse(names.TURBO_BITS)
TOKENIZER = _inverse(names.TOKENIZER)
STATUS: dict[str, Any] = {"green": 1, "yellow": 2, "red": 3, "grey": 4}
SCHEMA_TYPE: dict[str, Any] = {name: n + 1 for n, name in enumerate(names.FIELD_TYPES)}

HNSW_FIELDS = tuple(pb.HnswConfigDiff.DESCRIPTOR.fields_by_name)
WAL_FIELDS = tuple(pb.WalConfigDiff.DESCRIPTOR.fields_by_name)
OPTIMIZER_FIELDS = ("deleted_threshold", *OPTIMIZER_COUNTS, "prevent_unoptimized")


def _placed(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with a `memory` placement as its enum number."""
    if fields.get("memory") is not None:
        fields["memory"] = MEMORY[fields["memory"]]
    return drop_none(fields)


def hnsw(config: dict[str, Any]) -> pb.HnswConfigDiff:
    return pb.HnswConfigDiff(**_placed({k: config.get(k) for k in HNSW_FIELDS}))


def optimizers(config: dict[str, Any]) -> pb.OptimizersConfigDiff:
    fields = {k: config.get(k) for k in OPTIMIZER_FIELDS}
    threads = config.get("max_optimization_threads")  # a count, or None: no limit ("auto")
    if threads is not None:
        fields["max_optimization_threads"] = pb.MaxOptimizationThreads(value=threads)
        fields["deprecated_max_optimization_threads"] = threads
    else:  # always set, as Qdrant's conversion sets it: None is the `Auto` setting
        fields["max_optimization_threads"] = pb.MaxOptimizationThreads(
            setting=pb.MaxOptimizationThreads.Setting.Auto
        )
    return pb.OptimizersConfigDiff(**drop_none(fields))


def quantization(config: dict[str, Any]) -> pb.QuantizationConfig:
    ((kind, body),) = config.items()
    memory = MEMORY.get(body.get("memory"))  # type: ignore[arg-type]
    common = drop_none({"always_ram": body.get("always_ram"), "memory": memory})
    if kind == "scalar":
        return pb.QuantizationConfig(
            scalar=pb.ScalarQuantization(
                type=SCALAR_TYPE[body["type"]],
                **drop_none({"quantile": body.get("quantile")}),
                **common,
            )
        )
    if kind == "product":
        return pb.QuantizationConfig(
            product=pb.ProductQuantization(compression=COMPRESSION[body["compression"]], **common)
        )
    if kind == "binary":
        query = body.get("query_encoding")
        binary = pb.BinaryQuantization(
            **common,
            **drop_none({"encoding": ENCODING.get(body.get("encoding"))}),  # type: ignore[arg-type]
        )
        if query is not None:
            binary.query_encoding.setting = QUERY_ENCODING[query]
        return pb.QuantizationConfig(binary=binary)
    bits = TURBO_BITS.get(body.get("bits"))  # type: ignore[arg-type]
    return pb.QuantizationConfig(
        turboquant=pb.TurboQuantization(**common, **drop_none({"bits": bits}))
    )


def vector_params(params: DenseVectorParams) -> pb.VectorParams:
    message = pb.VectorParams(size=params.size, distance=DISTANCE[params.distance])
    if params.hnsw_config is not None:
        message.hnsw_config.CopyFrom(hnsw(params.hnsw_config))
    if params.quantization_config is not None:
        message.quantization_config.CopyFrom(quantization(params.quantization_config))
    if params.on_disk is not None:
        message.on_disk = params.on_disk
    if params.memory is not None:
        message.memory = MEMORY[params.memory]
    if params.datatype != "float32" or params.datatype_given:
        message.datatype = DATATYPE[params.datatype]
    if params.multivector:
        message.multivector_config.comparator = ZERO
    return message


def sparse_params(params: SparseVectorParams) -> pb.SparseVectorParams:
    message = pb.SparseVectorParams()
    if params.index is not None:
        index = _placed(
            {k: params.index.get(k) for k in ("full_scan_threshold", "on_disk", "memory")}
        )
        if params.index.get("datatype") is not None:
            index["datatype"] = DATATYPE[params.index["datatype"]]
        message.index.CopyFrom(pb.SparseIndexConfig(**index))
    if params.modifier is not None:
        message.modifier = MODIFIER[params.modifier]
    return message


def strict_mode(config: dict[str, Any]) -> pb.StrictModeConfig:
    fields = {k: v for k, v in config.items() if k not in ("multivector_config", "sparse_config")}
    message = pb.StrictModeConfig(**drop_none(fields))
    for name, entry in (config.get("multivector_config") or {}).items():
        item = message.multivector_config.multivector_config[name]
        if entry.get("max_vectors") is not None:
            item.max_vectors = entry["max_vectors"]
    for name, entry in (config.get("sparse_config") or {}).items():
        sparse = message.sparse_config.sparse_config[name]
        if entry.get("max_length") is not None:
            sparse.max_length = entry["max_length"]
    return message


def collection_params(info: CollectionInfo) -> pb.CollectionParams:
    config = info.config
    extra = config.params_extra
    message = pb.CollectionParams(
        shard_number=extra.get("shard_number", 1),
        on_disk_payload=bool(extra.get("on_disk_payload")),
        replication_factor=extra.get("replication_factor"),
        write_consistency_factor=extra.get("write_consistency_factor"),
        read_fan_out_factor=extra.get("read_fan_out_factor"),
        read_fan_out_delay_ms=extra.get("read_fan_out_delay_ms"),
    )
    if config.unnamed:
        message.vectors_config.params.CopyFrom(vector_params(config.vectors[""]))
    else:
        message.vectors_config.params_map.SetInParent()  # no dense vectors: an empty map
        entries = message.vectors_config.params_map.map
        for name, params in config.vectors.items():
            entries[name].CopyFrom(vector_params(params))
    if config.sparse_map:  # a map, possibly empty (see CollectionConfig.sparse_map)
        message.sparse_vectors_config.SetInParent()
    for name, sparse in config.sparse_vectors.items():
        message.sparse_vectors_config.map[name].CopyFrom(sparse_params(sparse))
    if extra.get("sharding_method") is not None:
        message.sharding_method = SHARDING[extra["sharding_method"]]
    if extra.get("payload") is not None:
        memory = extra["payload"].get("memory")
        message.payload.CopyFrom(pb.PayloadStorageParams(**_placed({"memory": memory})))
    if extra.get("id_tracker") is not None:
        memory = extra["id_tracker"].get("memory")
        message.id_tracker.CopyFrom(pb.IdTrackerParams(**_placed({"memory": memory})))
    return message


def index_params(params: dict[str, Any]) -> pb.PayloadIndexParams:
    """A payload index's params object (`FieldSchema.params`) as its message."""
    kind = params["type"]
    fields: dict[str, Any] = {}
    for key, value in params.items():
        if key == "type" or value is None:
            continue
        if key == "memory":
            value = MEMORY[value]
        elif key == "tokenizer":
            value = TOKENIZER[value]
        elif key == "prefix":
            if not value:
                continue
            value = pb.KeywordPrefixParams()
        elif key == "stopwords":
            languages = [value] if isinstance(value, str) else value.get("languages") or []
            custom = [] if isinstance(value, str) else value.get("custom") or []
            value = pb.StopwordsSet(languages=languages, custom=custom)
        elif key == "stemmer":
            value = (
                pb.StemmingAlgorithm(snowball=pb.SnowballParams(language=value["language"]))
                if value.get("type") == "snowball"
                else pb.StemmingAlgorithm(disabled=pb.DisabledStemmer())
            )
        elif key == "scoring":
            value = pb.TextScoringParams(type=ZERO)
        fields[key] = value
    message_type = getattr(pb, f"{kind.capitalize()}IndexParams")
    return pb.PayloadIndexParams(**{f"{kind}_index_params": message_type(**fields)})


def info_message(
    info: CollectionInfo, warnings: list[str], deferred: int | None = None
) -> pb.CollectionInfo:
    """`GetCollectionInfoResponse.result`; `warnings` as `render.collection_info`
    finds them, `deferred` the points prevent_unoptimized holds back."""
    config = info.config
    status = (
        pb.OptimizerStatus(ok=False, error="; ".join(info.damage))
        if info.damage
        else pb.OptimizerStatus(ok=True)
    )
    message = pb.CollectionInfo(
        status=STATUS[info.status],
        optimizer_status=status,
        segments_count=info.segments_count,
        points_count=info.points_count,
        indexed_vectors_count=info.indexed_vectors_count,
        warnings=[pb.CollectionWarning(message=w) for w in warnings],
        update_queue=pb.UpdateQueueInfo(length=0, **drop_none({"deferred_points": deferred})),
    )
    if config.created_at is not None:
        message.created_at.FromJsonString(config.created_at)
    out = message.config
    out.params.CopyFrom(collection_params(info))
    out.hnsw_config.CopyFrom(hnsw(config.hnsw_config))
    out.optimizer_config.CopyFrom(optimizers(config.optimizer_config))
    out.wal_config.CopyFrom(
        pb.WalConfigDiff(**drop_none({k: config.wal_config.get(k) for k in WAL_FIELDS}))
    )
    if config.quantization_config is not None:
        out.quantization_config.CopyFrom(quantization(config.quantization_config))
    out.strict_mode_config.CopyFrom(strict_mode(config.strict_mode_config or {"enabled": False}))
    if config.metadata:
        out.MergeFrom(pb.CollectionConfig(metadata=payload(config.metadata)))
    for key, index in info.payload_schema.items():
        entry = message.payload_schema[key]
        entry.data_type = SCHEMA_TYPE[index.schema["data_type"]]
        if index.schema.get("params") is not None:
            entry.params.CopyFrom(index_params(index.schema["params"]))
        entry.points = index.points
    return message
