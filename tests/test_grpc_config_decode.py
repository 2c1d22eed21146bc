"""The gRPC `Collections` decoders build the same typed requests as the REST parsers, with
no REST body in between: each create and update body below goes both ways (the official
client's own REST -> gRPC converters make the protobuf, part by part as its
`create_collection` does) and must give equal values and the same config, or the same
error. The same for payload index schemas, new named vectors, alias actions and cluster
operations."""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import grpc as pb
from qdrant_client import models
from qdrant_client.conversions.conversion import RestToGrpc

from tessera.api import aliases, cluster_ops, grpc_collections, grpc_config, grpc_info
from tessera.api.grpc_errors import message
from tessera.api.render import render_info
from tessera.collection import vector_names
from tessera.collection.values import CollectionInfo, PayloadIndexInfo
from tessera.collection.writes import parse_field_schema
from tessera.collection_config import build_config, config_warnings, parse_create_collection
from tessera.config_json import decode_create, decode_update
from tessera.errors import BadRequest, UnprocessableEntity

R = RestToGrpc

CREATES: list[dict[str, Any]] = [
    {"vectors": {"size": 4, "distance": "Cosine"}},
    {"vectors": {"size": 4, "distance": "Dot", "on_disk": True, "datatype": "float16"}},
    {
        "vectors": {
            "a": {"size": 8, "distance": "Euclid", "hnsw_config": {"m": 8, "ef_construct": 50}},
            "b": {
                "size": 3,
                "distance": "Manhattan",
                "multivector_config": {"comparator": "max_sim"},
                "datatype": "uint8",
                "memory": "cold",
            },
            "c": {
                "size": 16,
                "distance": "Cosine",
                "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99}},
            },
        },
        "sparse_vectors": {
            "s": {"modifier": "idf", "index": {"full_scan_threshold": 100, "datatype": "float16"}},
            "t": {},
        },
    },
    {
        "vectors": {"size": 4, "distance": "Cosine"},
        "shard_number": 3,
        "replication_factor": 2,
        "write_consistency_factor": 1,
        "on_disk_payload": False,
        "sharding_method": "custom",
        "hnsw_config": {"m": 32, "payload_m": 16, "on_disk": True, "inline_storage": True},
        "wal_config": {"wal_capacity_mb": 64, "wal_segments_ahead": 1, "wal_retain_closed": 2},
        "optimizers_config": {
            "deleted_threshold": 0.5,
            "vacuum_min_vector_number": 500,
            "default_segment_number": 2,
            "indexing_threshold": 0,
            "max_optimization_threads": 2,
            "prevent_unoptimized": True,
        },
        "metadata": {"team": "search", "n": 3, "nested": {"a": [1, 2.5, None]}},
    },
    {
        "vectors": {"size": 4, "distance": "Cosine"},
        "optimizers_config": {"max_optimization_threads": "auto", "flush_interval_sec": 3},
        "quantization_config": {"product": {"compression": "x16", "always_ram": True}},
        "payload": {"memory": "cached"},
        "id_tracker": {"memory": "cold"},
    },
    {
        "vectors": {"size": 4, "distance": "Cosine"},
        "quantization_config": {
            "binary": {
                "always_ram": False,
                "encoding": "one_and_half_bits",
                "query_encoding": "scalar8bits",
            }
        },
    },
    {
        "vectors": {"size": 4, "distance": "Cosine"},
        "quantization_config": {"turbo": {"bits": "bits1_5", "memory": "pinned"}},
    },
    {
        "vectors": {"size": 4, "distance": "Cosine"},
        "strict_mode_config": {
            "enabled": True,
            "max_query_limit": 100,
            "search_allow_exact": False,
            "search_max_oversampling": 1.5,
            "upsert_max_batchsize": 10,
            "read_rate_limit": 7,
            "max_resident_memory_percent": 90,
            "multivector_config": {"m": {"max_vectors": 4}},
            "sparse_config": {"s": {"max_length": 9}},
        },
    },
    {"sparse_vectors": {"only": {"modifier": "none"}}},
    # The default vector ("") in a map beside named ones, as Qdrant allows it.
    {"vectors": {"": {"size": 3, "distance": "Dot"}, "b": {"size": 2, "distance": "Cosine"}}},
]

BAD_CREATES: list[dict[str, Any]] = [
    {"vectors": {"size": 0, "distance": "Cosine"}},
    {"vectors": {"size": 70000, "distance": "Cosine"}},
    {"vectors": {"a": {"size": 4, "distance": "Cosine", "hnsw_config": {"ef_construct": 2}}}},
    {"vectors": {"size": 4, "distance": "Cosine", "memory": "pinned"}},
    {"vectors": {"size": 4, "distance": "Cosine"}, "hnsw_config": {"full_scan_threshold": 3}},
    {"vectors": {"size": 4, "distance": "Cosine"}, "wal_config": {"wal_capacity_mb": 0}},
    {"vectors": {"size": 4, "distance": "Cosine"}, "optimizers_config": {"deleted_threshold": 2}},
    {
        "vectors": {"size": 4, "distance": "Cosine"},
        "optimizers_config": {"vacuum_min_vector_number": 5},
    },
    {
        "vectors": {"size": 4, "distance": "Cosine"},
        "quantization_config": {"scalar": {"type": "int8", "quantile": 0.25}},
    },
    {"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 0},
    {"vectors": {"size": 4, "distance": "Cosine"}, "replication_factor": 0},
    {"vectors": {"size": 4, "distance": "Cosine"}, "payload": {"memory": "pinned"}},
    {"vectors": {"size": 4, "distance": "Cosine"}, "strict_mode_config": {"max_query_limit": 0}},
    {
        "vectors": {"size": 4, "distance": "Cosine"},
        "strict_mode_config": {"max_resident_memory_percent": 101},
    },
    {"vectors": {"x": {"size": 4, "distance": "Cosine"}}, "sparse_vectors": {"x": {}}},
]


def create_message(body: dict[str, Any]) -> pb.CreateCollection:
    """The gRPC message qdrant-client sends for `create_collection(**body)`."""
    m = models.CreateCollection.model_validate(body)
    fields: dict[str, Any] = {"collection_name": "c"}
    if m.vectors is not None:
        fields["vectors_config"] = R.convert_vectors_config(m.vectors)
    if m.sparse_vectors is not None:
        fields["sparse_vectors_config"] = R.convert_sparse_vector_config(m.sparse_vectors)
    parts = {
        "hnsw_config": R.convert_hnsw_config_diff,
        "wal_config": R.convert_wal_config_diff,
        "optimizers_config": R.convert_optimizers_config_diff,
        "quantization_config": R.convert_quantization_config,
        "strict_mode_config": R.convert_strict_mode_config,
        "payload": R.convert_payload_storage_params,
        "id_tracker": R.convert_id_tracker_params,
    }
    for key, convert in parts.items():
        value = getattr(m, key)
        if value is not None:
            fields[key] = convert(value)
    if m.sharding_method is not None:
        fields["sharding_method"] = R.convert_sharding_method(m.sharding_method)
    if m.metadata is not None:
        fields["metadata"] = R.convert_payload(m.metadata)
    for key in ("shard_number", "replication_factor", "write_consistency_factor"):
        if getattr(m, key) is not None:
            fields[key] = getattr(m, key)
    if m.on_disk_payload is not None:
        fields["on_disk_payload"] = m.on_disk_payload
    return pb.CreateCollection(**fields)


def outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except BadRequest as exc:
        return (type(exc).__name__, message(exc.message))


@pytest.mark.parametrize("body", CREATES, ids=range(len(CREATES)))
def test_create_decodes_equal(body: dict[str, Any]) -> None:
    rest_request = decode_create(body)
    grpc_request = grpc_config.create(create_message(body))
    assert grpc_request == rest_request
    assert build_config(grpc_request).to_json() == parse_create_collection(body).to_json()


@pytest.mark.parametrize("body", BAD_CREATES, ids=range(len(BAD_CREATES)))
def test_bad_create_fails_the_same(body: dict[str, Any]) -> None:
    rest = outcome(lambda: parse_create_collection(body))
    grpc = outcome(lambda: build_config(grpc_config.create(create_message(body))))
    assert rest[0] != "ok"
    assert grpc == rest


def test_grpc_enum_values_outside_qdrants_are_refused() -> None:
    unknown = pb.CreateCollection(
        collection_name="c",
        vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=4, distance=0)),
    )
    with pytest.raises(BadRequest, match="Malformed distance parameter: UnknownDistance"):
        grpc_config.create(unknown)
    beyond = pb.CreateCollection(
        collection_name="c",
        vectors_config=pb.VectorsConfig(params=pb.VectorParams(size=4, distance=1, datatype=7)),
    )
    with pytest.raises(BadRequest, match="invalid Datatype model: 7"):
        grpc_config.create(beyond)


UPDATES: list[dict[str, Any]] = [
    {"optimizers_config": {"indexing_threshold": 100, "deleted_threshold": 0.1}},
    {"hnsw_config": {"ef_construct": 64, "m": 0}},
    {"quantization_config": {"scalar": {"type": "int8", "always_ram": True}}},
    {"quantization_config": "Disabled"},
    {"vectors": {"": {"on_disk": True, "hnsw_config": {"m": 4}}}},
    {
        "params": {
            "replication_factor": 2,
            "write_consistency_factor": 1,
            "on_disk_payload": True,
            "payload": {"memory": "cold"},
            "id_tracker": {"memory": "cached"},
        }
    },
    {"strict_mode_config": {"enabled": True, "max_timeout": 5}},
    {"metadata": {"a": 1, "gone": None}},
    {"sparse_vectors": {"s": {"modifier": "idf"}}},
]


def update_message(body: dict[str, Any]) -> pb.UpdateCollection:
    return R.convert_update_collection(models.UpdateCollection.model_validate(body), "c")


@pytest.mark.parametrize("body", UPDATES, ids=range(len(UPDATES)))
def test_update_decodes_equal(body: dict[str, Any]) -> None:
    assert grpc_config.update(update_message(body)) == decode_update(body)
    # the JSON a cluster record carries reads back as the same request
    assert decode_update(decode_update(body).to_json()) == decode_update(body)


def test_bad_update_fails_the_same() -> None:
    for body in (
        {"hnsw_config": {"ef_construct": 1}},
        {"optimizers_config": {"deleted_threshold": 1.5}},
        {"params": {"replication_factor": 0}},
    ):
        rest = outcome(lambda b=body: decode_update(b).check())
        grpc = outcome(lambda b=body: grpc_config.update(update_message(b)).check())
        assert rest[0] != "ok" and grpc == rest, body


SCHEMAS: list[Any] = [
    models.KeywordIndexParams(type="keyword", is_tenant=True, on_disk=True),
    models.KeywordIndexParams(type="keyword", prefix=True),
    models.IntegerIndexParams(type="integer", lookup=True, range=False, is_principal=True),
    models.FloatIndexParams(type="float", on_disk=True),
    models.GeoIndexParams(type="geo"),
    models.TextIndexParams(
        type="text",
        tokenizer=models.TokenizerType.PREFIX,
        min_token_len=2,
        max_token_len=10,
        lowercase=False,
        phrase_matching=True,
        stopwords=models.Language.ENGLISH,
        stemmer=models.SnowballParams(type="snowball", language=models.SnowballLanguage.GERMAN),
        ascii_folding=True,
    ),
    models.TextIndexParams(
        type="text",
        stopwords=models.StopwordsSet(languages=[models.Language.FRENCH], custom=["le"]),
    ),
    models.BoolIndexParams(type="bool"),
    models.DatetimeIndexParams(type="datetime", is_principal=True),
    models.UuidIndexParams(type="uuid", is_tenant=True),
]


@pytest.mark.parametrize("params", SCHEMAS, ids=lambda p: p.type)
def test_field_index_schema_decodes_equal(params: Any) -> None:
    converted = R.convert_payload_schema_params(params)
    if converted.HasField("text_index_params") and not converted.text_index_params.tokenizer:
        # as qdrant-client's create_payload_index: gRPC refuses an unset tokenizer
        converted.text_index_params.tokenizer = pb.TokenizerType.Word
    request = pb.CreateFieldIndexCollection(
        collection_name="c",
        field_name="f",
        field_type=grpc_config.FIELD_TYPES.index(params.type),
        field_index_params=converted,
    )
    rest = parse_field_schema(params.model_dump(mode="json", exclude_none=True))
    assert grpc_config.field_schema(request) == rest
    assert parse_field_schema(rest.wire()) == rest


def test_field_index_bare_type_and_nothing() -> None:
    """Qdrant's convert_field_type: a type outside the enum is no type (the collection then
    cannot auto-detect one); no `field_type` at all is refused."""
    typed = pb.CreateFieldIndexCollection(collection_name="c", field_name="f", field_type=4)
    assert grpc_config.field_schema(typed) == parse_field_schema("text")
    unknown = pb.CreateFieldIndexCollection(field_name="f", field_type=99)
    assert grpc_config.field_schema(unknown) is None
    with pytest.raises(BadRequest, match=r"^cannot convert field_type$"):
        grpc_config.field_schema(pb.CreateFieldIndexCollection(field_name="f"))
    text = pb.PayloadIndexParams(text_index_params=pb.TextIndexParams(lowercase=True))
    no_tokenizer = pb.CreateFieldIndexCollection(
        field_name="f", field_type=4, field_index_params=text
    )
    with pytest.raises(BadRequest, match=r"^unknown tokenizer type$"):
        grpc_config.field_schema(no_tokenizer)


def test_vector_name_decodes_equal() -> None:
    dense = pb.CreateVectorNameRequest(
        vector_name="v",
        dense_config=pb.DenseVectorCreationConfig(
            size=5, distance=3, datatype=3, multivector_config=pb.MultiVectorConfig(comparator=0)
        ),
    )
    rest_dense = {
        "dense": {
            "size": 5,
            "distance": "Dot",
            "datatype": "float16",
            "multivector_config": {"comparator": "max_sim"},
        }
    }
    assert vector_names.vector_name_config(
        grpc_config.vector_name(dense)
    ) == vector_names.parse_vector_name_config(rest_dense)
    sparse = pb.CreateVectorNameRequest(
        vector_name="s", sparse_config=pb.SparseVectorCreationConfig(modifier=1, datatype=2)
    )
    rest_sparse = {"sparse": {"modifier": "idf", "datatype": "uint8"}}
    assert vector_names.vector_name_config(
        grpc_config.vector_name(sparse)
    ) == vector_names.parse_vector_name_config(rest_sparse)
    zero = pb.CreateVectorNameRequest(
        vector_name="z", dense_config=pb.DenseVectorCreationConfig(size=0, distance=1)
    )
    rest_zero = {"dense": {"size": 0, "distance": "Cosine"}}
    assert outcome(lambda: vector_names.vector_name_config(grpc_config.vector_name(zero))) == (
        outcome(lambda: vector_names.parse_vector_name_config(rest_zero))
    )


def test_alias_actions_decode_equal() -> None:
    actions = [
        models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name="c", alias_name="a")
        ),
        models.RenameAliasOperation(
            rename_alias=models.RenameAlias(old_alias_name="a", new_alias_name="b")
        ),
        models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="b")),
    ]
    body = {"actions": [a.model_dump(mode="json") for a in actions]}
    grpc = [
        grpc_config.alias_action(R.convert_alias_operations(a), i) for i, a in enumerate(actions)
    ]
    assert grpc == aliases.parse_actions(body)
    long_name = pb.AliasOperations(
        create_alias=pb.CreateAlias(collection_name="c", alias_name="x" * 300)
    )
    with pytest.raises(BadRequest, match="length must be between 1 and 255"):
        grpc_config.alias_action(long_name, 0)


def test_cluster_operations_decode_equal() -> None:
    pairs = [
        (
            "move_shard",
            pb.MoveShard(shard_id=1, from_peer_id=2, to_peer_id=3),
            {"move_shard": {"shard_id": 1, "from_peer_id": 2, "to_peer_id": 3}},
        ),
        (
            "drop_replica",
            pb.Replica(shard_id=0, peer_id=9),
            {"drop_replica": {"shard_id": 0, "peer_id": 9}},
        ),
        (
            "create_shard_key",
            pb.CreateShardKey(
                shard_key=pb.ShardKey(keyword="k"), shards_number=2, placement=[4, 5]
            ),
            {"create_sharding_key": {"shard_key": "k", "shards_number": 2, "placement": [4, 5]}},
        ),
        (
            "delete_shard_key",
            pb.DeleteShardKey(shard_key=pb.ShardKey(number=7)),
            {"drop_sharding_key": {"shard_key": 7}},
        ),
        (
            "create_shard_key",
            pb.CreateShardKey(shard_key=pb.ShardKey(keyword="p"), initial_state=pb.Partial),
            {"create_sharding_key": {"shard_key": "p", "initial_state": "Partial"}},
        ),
        (
            "replicate_points",
            pb.ReplicatePoints(
                from_shard_key=pb.ShardKey(keyword="a"),
                to_shard_key=pb.ShardKey(number=3),
                filter=R.convert_filter(
                    models.Filter(
                        must=[models.FieldCondition(key="t", match=models.MatchValue(value="x"))]
                    )
                ),
            ),
            {
                "replicate_points": {
                    "from_shard_key": "a",
                    "to_shard_key": 3,
                    "filter": {"must": [{"key": "t", "match": {"value": "x"}}]},
                }
            },
        ),
    ]
    for kind, grpc_message, rest_body in pairs:
        assert grpc_collections.cluster_operation(
            kind, grpc_message
        ) == cluster_ops.parse_operation(rest_body)
    same_peer = pb.ReplicateShard(shard_id=1, from_peer_id=2, to_peer_id=2)
    # Qdrant's validate_shard_different_peers: 422, named by the target field.
    with pytest.raises(UnprocessableEntity, match=r"replicate_shard\.to_peer_id: cannot transfer"):
        grpc_collections.cluster_operation("replicate_shard", same_peer)
    with pytest.raises(UnprocessableEntity, match="must be different than 3 in"):
        cluster_ops.parse_operation(
            {"move_shard": {"shard_id": 0, "from_peer_id": 3, "to_peer_id": 3}}
        )


def rest_info_message(info: CollectionInfo, warnings: list[str]) -> pb.CollectionInfo:
    """What the gRPC info was before: REST's JSON through the client's REST -> gRPC
    converter (the same mapping the client relies on)."""
    body = render_info(info)
    if warnings:
        body["warnings"] = [{"message": w} for w in warnings]
    converted = R.convert_collection_info(models.CollectionInfo.model_validate(body))
    # Where the client's converter leaves "no limit" unset, Qdrant's server sends `Auto`.
    threads = converted.config.optimizer_config.max_optimization_threads
    if not converted.config.optimizer_config.HasField("max_optimization_threads"):
        threads.setting = pb.MaxOptimizationThreads.Setting.Auto
    return converted


@pytest.mark.parametrize("body", CREATES, ids=range(len(CREATES)))
def test_info_renders_as_the_rest_info_converts(body: dict[str, Any]) -> None:
    config = parse_create_collection({**body, "metadata": {"k": [1, "x", None]}})
    schema = {
        f"f{i}": PayloadIndexInfo(parse_field_schema(p.model_dump(mode="json")).to_json(), 3)
        for i, p in enumerate(SCHEMAS)
    }
    schema["plain"] = PayloadIndexInfo(parse_field_schema("keyword").to_json(), 0)
    info = CollectionInfo("green", [], 10, 8, 2, config, schema)
    warnings = config_warnings(config)
    assert grpc_info.info_message(info, warnings) == rest_info_message(info, warnings)
    damaged = CollectionInfo("red", ["crc mismatch"], 0, 0, 0, config, {})
    assert grpc_info.info_message(damaged, []) == rest_info_message(damaged, [])


def test_field_index_values_are_checked_as_over_rest() -> None:
    stemmer = pb.StemmingAlgorithm(snowball=pb.SnowballParams(language="klingon"))
    bad = pb.CreateFieldIndexCollection(
        collection_name="c",
        field_name="f",
        field_type=4,
        field_index_params=pb.PayloadIndexParams(
            text_index_params=pb.TextIndexParams(tokenizer=3, stemmer=stemmer)
        ),
    )
    rest = {"type": "text", "stemmer": {"type": "snowball", "language": "klingon"}}
    assert outcome(lambda: grpc_config.field_schema(bad)) == outcome(
        lambda: parse_field_schema(rest)
    )
    with pytest.raises(BadRequest, match="unknown snowball language 'klingon'"):
        grpc_config.field_schema(bad)


def test_short_language_names_are_read_as_qdrant_reads_them() -> None:
    """Qdrant's `Language` and `SnowballLanguage` take short names too (`en`, `jp`,
    `hi-en`: serde aliases) and keep the long ones; Tessera refused them."""
    short = {
        "type": "text",
        "stopwords": {"languages": ["en", "jp", "hi-en"], "custom": ["x"]},
        "stemmer": {"type": "snowball", "language": "de"},
    }
    long = {
        "type": "text",
        "stopwords": {"languages": ["english", "japanese", "hinglish"], "custom": ["x"]},
        "stemmer": {"type": "snowball", "language": "german"},
    }
    assert parse_field_schema(short) == parse_field_schema(long)
    assert parse_field_schema({"type": "text", "stopwords": "es"}) == parse_field_schema(
        {"type": "text", "stopwords": "spanish"}
    )
    request = pb.CreateFieldIndexCollection(
        collection_name="c",
        field_name="f",
        field_type=4,
        field_index_params=pb.PayloadIndexParams(
            text_index_params=pb.TextIndexParams(
                tokenizer=pb.TokenizerType.Word,
                stopwords=pb.StopwordsSet(languages=["en", "jp", "hi-en"], custom=["x"]),
                stemmer=pb.StemmingAlgorithm(snowball=pb.SnowballParams(language="de")),
            )
        ),
    )
    assert grpc_config.field_schema(request) == parse_field_schema(long)
    with pytest.raises(BadRequest, match="unknown snowball language 'xx'"):
        parse_field_schema({"type": "text", "stemmer": {"type": "snowball", "language": "xx"}})
