"""The gRPC `Collections` service: list, info, exists, create, update, delete.

Collection configs have dozens of fields and enums whose gRPC and REST spellings differ
(`Float32` / `float32`, `OneBit` / `one_bit`, a `QuantizationConfig` oneof / an object with
one key). These conversions, cold paths both, go through qdrant-client's own converters
(`GrpcToRest`, `RestToGrpc`, which the client relies on for the same mapping) and the REST
models; the REST body that comes out is parsed by the REST route's own code.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from qdrant_client import grpc as pb
from qdrant_client.conversions.conversion import GrpcToRest, RestToGrpc
from qdrant_client.http.models import models as rest

from tessera.api import aliases
from tessera.api import collections as coll
from tessera.api.cluster_info import DISABLED, cluster_info
from tessera.api.cluster_ops import parse_operation, run_operation
from tessera.api.grpc_convert import drop_none, opt, payload, shard_key
from tessera.api.grpc_render import build
from tessera.api.grpc_server import rpc
from tessera.api.shard_keys import shard_keys_of
from tessera.errors import BadRequest
from tessera.storage.toc import TableOfContents

_CREATE_SCALARS = (
    "shard_number",
    "replication_factor",
    "write_consistency_factor",
    "on_disk_payload",
)


def jsonable(model: Any) -> Any:
    """A REST model (or a dict of them) as the JSON a REST client would send."""
    if isinstance(model, BaseModel):
        return model.model_dump(mode="json", exclude_none=True)
    if isinstance(model, dict):
        return {key: jsonable(v) for key, v in model.items()}
    return model


def _convert(convert: Any, message: Any) -> Any:
    try:
        return jsonable(convert(message))
    except (ValueError, ValidationError) as exc:  # an enum value or shape the REST API lacks
        raise BadRequest(f"Wrong input: {exc}") from None


def create_body(req: pb.CreateCollection) -> dict[str, Any]:
    """`CreateCollection` as the body of `PUT /collections/{name}`."""
    g = GrpcToRest
    parts = {
        "vectors": ("vectors_config", g.convert_vectors_config),
        "sparse_vectors": ("sparse_vectors_config", g.convert_sparse_vector_config),
        "hnsw_config": ("hnsw_config", g.convert_hnsw_config_diff),
        "wal_config": ("wal_config", g.convert_wal_config_diff),
        "optimizers_config": ("optimizers_config", g.convert_optimizers_config_diff),
        "quantization_config": ("quantization_config", g.convert_quantization_config),
        "strict_mode_config": ("strict_mode_config", g.convert_strict_mode_config),
        "payload": ("payload", g.convert_payload_storage_params),
    }
    body: dict[str, Any] = {}
    for key, (field, convert) in parts.items():
        if req.HasField(field):  # type: ignore[arg-type]
            if field == "vectors_config" and not req.vectors_config.HasField("config"):
                continue  # set but empty: no dense vectors, as Qdrant converts it (Default)
            body[key] = _convert(convert, getattr(req, field))
    for key in _CREATE_SCALARS:
        if opt(req, key) is not None:
            body[key] = getattr(req, key)
    if req.metadata:
        body["metadata"] = payload(req.metadata)
    return body


def update_body(req: pb.UpdateCollection) -> dict[str, Any]:
    """`UpdateCollection` as the body of `PATCH /collections/{name}`."""
    body: dict[str, Any] = _convert(GrpcToRest.convert_update_collection, req)
    return body


def info_message(info: dict[str, Any]) -> pb.CollectionInfo:
    """REST `CollectionInfo` JSON -> the gRPC message, through the REST model."""
    info_model = rest.CollectionInfo.model_validate(info)
    message: pb.CollectionInfo = RestToGrpc.convert_collection_info(info_model)
    return message


class CollectionsService(pb.CollectionsServicer):
    def __init__(self, toc: TableOfContents) -> None:
        self.toc = toc

    @rpc
    def List(self, request: pb.ListCollectionsRequest) -> pb.ListCollectionsResponse:
        return build(
            pb.ListCollectionsResponse, collections=[{"name": n} for n in self.toc.names()]
        )

    @rpc
    def Get(self, request: pb.GetCollectionInfoRequest) -> pb.GetCollectionInfoResponse:
        info = coll.collection_info(self.toc.get(request.collection_name))
        return pb.GetCollectionInfoResponse(result=info_message(info))

    @rpc
    def CollectionExists(self, request: pb.CollectionExistsRequest) -> pb.CollectionExistsResponse:
        exists = self.toc.exists(request.collection_name)
        return pb.CollectionExistsResponse(result=pb.CollectionExists(exists=exists))

    @rpc
    def Create(self, request: pb.CreateCollection) -> pb.CollectionOperationResponse:
        body = create_body(request)
        run = coll.prepare_create(self.toc, request.collection_name, body, self._timeout(request))
        return pb.CollectionOperationResponse(result=run())

    @rpc
    def Update(self, request: pb.UpdateCollection) -> pb.CollectionOperationResponse:
        collection = self.toc.get(request.collection_name)
        body = update_body(request)
        run = coll.prepare_update(self.toc, collection, body, self._timeout(request))
        return pb.CollectionOperationResponse(result=run())

    @rpc
    def Delete(self, request: pb.DeleteCollection) -> pb.CollectionOperationResponse:
        deleted = self.toc.delete(request.collection_name, self._timeout(request))
        return pb.CollectionOperationResponse(result=deleted)

    @rpc
    def UpdateAliases(self, request: pb.ChangeAliases) -> pb.CollectionOperationResponse:
        body = {
            "actions": [_convert(GrpcToRest.convert_alias_operations, a) for a in request.actions]
        }
        run = aliases.prepare_update(self.toc, body, self._timeout(request))
        return pb.CollectionOperationResponse(result=run())

    def _timeout(self, request: Any) -> float | None:
        """Qdrant's `timeout` (seconds) of a collection operation: cluster mode's wait for
        this node to apply the committed change."""
        if self.toc.cluster is None or not request.HasField("timeout") or not request.timeout:
            return None
        return float(request.timeout)

    @rpc
    def ListAliases(self, request: pb.ListAliasesRequest) -> pb.ListAliasesResponse:
        return build(pb.ListAliasesResponse, **aliases.describe(self.toc.aliases.items()))

    @rpc
    def ListCollectionAliases(
        self, request: pb.ListCollectionAliasesRequest
    ) -> pb.ListAliasesResponse:
        name = request.collection_name
        pairs = [(a, name) for a in self.toc.aliases.of(name)]
        return build(pb.ListAliasesResponse, **aliases.describe(pairs))

    @rpc
    def CollectionClusterInfo(
        self, request: pb.CollectionClusterInfoRequest
    ) -> pb.CollectionClusterInfoResponse:
        info = cluster_info(self.toc, self.toc.get(request.collection_name))
        shards = [
            pb.LocalShardInfo(
                shard_id=s["shard_id"],
                points_count=s["points_count"],
                state=pb.ReplicaState.Value(s["state"]),
                shard_key=grpc_shard_key(s["shard_key"]) if "shard_key" in s else None,
            )
            for s in info["local_shards"]
        ]
        remote = [  # cluster mode: the other peers' replicas
            pb.RemoteShardInfo(
                shard_id=s["shard_id"],
                peer_id=s["peer_id"],
                state=pb.ReplicaState.Value(s["state"]),
                shard_key=grpc_shard_key(s["shard_key"]) if "shard_key" in s else None,
            )
            for s in info["remote_shards"]
        ]
        transfers = [
            pb.ShardTransferInfo(
                shard_id=t["shard_id"], to=t["to"], sync=t["sync"], **{"from": t["from"]}
            )
            for t in info["shard_transfers"]
        ]
        return pb.CollectionClusterInfoResponse(
            peer_id=info["peer_id"],
            shard_count=info["shard_count"],
            local_shards=shards,
            remote_shards=remote,
            shard_transfers=transfers,
        )

    @rpc
    def CreateShardKey(self, request: pb.CreateShardKeyRequest) -> pb.CreateShardKeyResponse:
        return pb.CreateShardKeyResponse(result=self._key_operation(request, "create_shard_key"))

    @rpc
    def DeleteShardKey(self, request: pb.DeleteShardKeyRequest) -> pb.DeleteShardKeyResponse:
        return pb.DeleteShardKeyResponse(result=self._key_operation(request, "delete_shard_key"))

    def _key_operation(self, request: Any, kind: str) -> bool:
        """A shard key call is its cluster operation (as in UpdateCollectionClusterSetup)."""
        cluster = self.toc.cluster
        if cluster is None:
            raise BadRequest(DISABLED)
        name = self.toc.get(request.collection_name).name
        operation = parse_operation(operation_body(kind, request.request))
        timeout = float(request.timeout) if request.HasField("timeout") else None
        return run_operation(cluster, name, operation, timeout)

    @rpc
    def ListShardKeys(self, request: pb.ListShardKeysRequest) -> pb.ListShardKeysResponse:
        found = shard_keys_of(self.toc, self.toc.get(request.collection_name))["shard_keys"]
        return pb.ListShardKeysResponse(
            shard_keys=[pb.ShardKeyDescription(key=grpc_shard_key(k["key"])) for k in found or []]
        )

    @rpc
    def UpdateCollectionClusterSetup(
        self, request: pb.UpdateCollectionClusterSetupRequest
    ) -> pb.UpdateCollectionClusterSetupResponse:
        cluster = self.toc.cluster
        if cluster is None:
            raise BadRequest(DISABLED)  # before the collection is looked at, as in Qdrant
        name = self.toc.get(request.collection_name).name
        operation = parse_operation(cluster_operation_body(request))
        timeout = float(request.timeout) if request.HasField("timeout") else None
        return pb.UpdateCollectionClusterSetupResponse(
            result=run_operation(cluster, name, operation, timeout)
        )


_METHODS = {0: "stream_records", 1: "snapshot", 2: "wal_delta", 3: "resharding_stream_records"}


def grpc_shard_key(key: str | int) -> pb.ShardKey:
    return pb.ShardKey(keyword=key) if isinstance(key, str) else pb.ShardKey(number=key)


def cluster_operation_body(request: pb.UpdateCollectionClusterSetupRequest) -> dict[str, Any]:
    """The operation of `UpdateCollectionClusterSetupRequest` as its REST body."""
    kind = request.WhichOneof("operation")
    if kind is None:
        return {}
    return operation_body(kind, getattr(request, kind))


def operation_body(kind: str, message: Any) -> dict[str, Any]:
    """One cluster operation message (`move_shard`, `create_shard_key`, ...) as its REST
    body."""
    if kind == "drop_replica":
        return {kind: {"shard_id": message.shard_id, "peer_id": message.peer_id}}
    if kind in ("move_shard", "replicate_shard", "abort_transfer", "restart_transfer"):
        body: dict[str, Any] = {
            "shard_id": message.shard_id,
            "from_peer_id": message.from_peer_id,
            "to_peer_id": message.to_peer_id,
        }
        if kind != "abort_transfer" and (kind == "restart_transfer" or message.HasField("method")):
            body["method"] = _METHODS.get(message.method, "stream_records")
        return {kind: body}
    if kind == "create_shard_key":
        made: dict[str, Any] = {"shard_key": shard_key(message.shard_key)}
        for name in ("shards_number", "replication_factor"):
            if message.HasField(name):
                made[name] = getattr(message, name)
        if message.placement:
            made["placement"] = list(message.placement)
        return {"create_sharding_key": made}
    if kind == "delete_shard_key":
        return {"drop_sharding_key": {"shard_key": shard_key(message.shard_key)}}
    return {kind: {}}


def _enum_value(convert: Any, value: Any) -> Any:
    try:
        return convert(value).value
    except (ValueError, KeyError) as exc:
        raise BadRequest(f"Wrong input: {exc}") from None


def vector_name_body(req: pb.CreateVectorNameRequest) -> dict[str, Any]:
    """`CreateVectorNameRequest` as the body of `PUT /collections/{c}/vectors/{name}`."""
    g = GrpcToRest
    kind = req.WhichOneof("vector_config")
    if kind == "dense_config":
        dense = req.dense_config
        body: dict[str, Any] = {
            "size": dense.size,
            "distance": _enum_value(g.convert_distance, dense.distance),
        }
        if dense.HasField("datatype"):
            body["datatype"] = _enum_value(g.convert_datatype, dense.datatype)
        if dense.HasField("multivector_config"):
            body["multivector_config"] = _convert(
                g.convert_multivector_config, dense.multivector_config
            )
        return {"dense": body}
    if kind == "sparse_config":
        sparse = req.sparse_config
        out: dict[str, Any] = {}
        if sparse.HasField("modifier"):
            out["modifier"] = _enum_value(g.convert_modifier, sparse.modifier)
        if sparse.HasField("datatype"):
            out["datatype"] = _enum_value(g.convert_datatype, sparse.datatype)
        return {"sparse": out}
    raise BadRequest(
        "Wrong input: a CreateVectorNameRequest must set dense_config or sparse_config"
    )


def convert_index_params(params: pb.PayloadIndexParams) -> Any:
    """`PayloadIndexParams` as REST's `field_schema` params object."""
    return _convert(GrpcToRest.convert_payload_schema_params, params)


FIELD_TYPES = ("keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid")


def field_index(req: pb.CreateFieldIndexCollection) -> dict[str, Any]:
    """`CreateFieldIndexCollection` as the body of `PUT /collections/{name}/index`: the
    index params object when given, else the bare type name."""
    schema: Any = None
    if req.HasField("field_index_params"):
        schema = convert_index_params(req.field_index_params)
    elif req.HasField("field_type") and 0 <= req.field_type < len(FIELD_TYPES):
        schema = FIELD_TYPES[req.field_type]
    return drop_none({"field_name": req.field_name, "field_schema": schema})
