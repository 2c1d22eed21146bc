"""The gRPC `Collections` service: list, info, exists, create, update, delete.

Requests decode straight into the typed values REST decodes its JSON into: collection
configs and alias actions in `grpc_config`, cluster operations here (`cluster_operation`).
Collection info is rendered from the collection's plain values by `grpc_info`.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import grpc as pb

from tessera.api import aliases, grpc_config, grpc_filter
from tessera.api import collections as coll
from tessera.api.cluster_info import DISABLED, cluster_info
from tessera.api.cluster_ops import (
    RESHARDING,
    TRANSFERS,
    UNTAGGED,
    ClusterOperation,
    key_creation,
    run_operation,
    transfer_operation,
)
from tessera.api.grpc_convert import opt, shard_key
from tessera.api.grpc_info import info_message
from tessera.api.grpc_render import build
from tessera.api.grpc_server import rpc
from tessera.api.render import info_parts
from tessera.api.shard_keys import shard_keys_of
from tessera.errors import BadRequest
from tessera.storage.toc import TableOfContents


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
        collection = self.toc.get(request.collection_name)
        collection.require_loaded()
        info, warnings, deferred = info_parts(collection)
        return pb.GetCollectionInfoResponse(result=info_message(info, warnings, deferred or None))

    @rpc
    def CollectionExists(self, request: pb.CollectionExistsRequest) -> pb.CollectionExistsResponse:
        exists = self.toc.exists(request.collection_name)
        return pb.CollectionExistsResponse(result=pb.CollectionExists(exists=exists))

    @rpc
    def Create(self, request: pb.CreateCollection) -> pb.CollectionOperationResponse:
        body = grpc_config.create(request)
        run = coll.prepare_create(self.toc, request.collection_name, body, self._timeout(request))
        return pb.CollectionOperationResponse(result=run())

    @rpc
    def Update(self, request: pb.UpdateCollection) -> pb.CollectionOperationResponse:
        collection = self.toc.get(request.collection_name)
        body = grpc_config.update(request)
        run = coll.prepare_update(self.toc, collection, body, self._timeout(request))
        return pb.CollectionOperationResponse(result=run())

    @rpc
    def Delete(self, request: pb.DeleteCollection) -> pb.CollectionOperationResponse:
        deleted = self.toc.delete(request.collection_name, self._timeout(request))
        return pb.CollectionOperationResponse(result=deleted)

    @rpc
    def UpdateAliases(self, request: pb.ChangeAliases) -> pb.CollectionOperationResponse:
        actions = [grpc_config.alias_action(a, i) for i, a in enumerate(request.actions)]
        run = aliases.prepare_update(self.toc, actions, self._timeout(request))
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
        if not request.HasField("request"):  # before the mode, as Qdrant's handler checks
            raise BadRequest("empty request")
        cluster = self.toc.cluster
        if cluster is None:
            raise BadRequest(DISABLED)
        collection = self.toc.get(request.collection_name)
        operation = cluster_operation(kind, request.request)
        timeout = float(request.timeout) if request.HasField("timeout") else None
        return run_operation(cluster, collection, operation, timeout)

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
        kind = request.WhichOneof("operation")
        if kind is None:  # before the mode, as Qdrant's handler checks
            raise BadRequest("empty operation")
        cluster = self.toc.cluster
        if cluster is None:
            raise BadRequest(DISABLED)  # before the collection is looked at, as in Qdrant
        collection = self.toc.get(request.collection_name)
        operation = cluster_operation(kind, getattr(request, kind))
        timeout = float(request.timeout) if request.HasField("timeout") else None
        return pb.UpdateCollectionClusterSetupResponse(
            result=run_operation(cluster, collection, operation, timeout)
        )


def grpc_shard_key(key: str | int) -> pb.ShardKey:
    return pb.ShardKey(keyword=key) if isinstance(key, str) else pb.ShardKey(number=key)


# gRPC's ShardTransferMethod values by REST's names (the index is the enum's number).
GRPC_TRANSFER_METHODS = ("stream_records", "snapshot", "wal_delta", "resharding_stream_records")


def transfer_method(message: Any) -> str | None:
    """A transfer message's `method` in REST's spelling; None when absent (or when the
    message has no such field, as AbortShardTransfer)."""
    field = message.DESCRIPTOR.fields_by_name.get("method")
    # RestartTransfer's `method` is a plain enum (always set); the others' are optional.
    if field is None or (field.has_presence and not message.HasField("method")):
        return None
    number = int(message.method)
    return GRPC_TRANSFER_METHODS[number] if 0 <= number < len(GRPC_TRANSFER_METHODS) else None


def cluster_operation(kind: str | None, message: Any) -> ClusterOperation:
    """One operation of `UpdateCollectionClusterSetupRequest` (its oneof `kind`, the
    message), or a shard key request's, as the typed operation REST's body decodes into."""
    if kind in RESHARDING:
        return ClusterOperation(kind, 0)
    if kind in TRANSFERS:
        return transfer_operation(
            kind,
            message.shard_id,
            message.from_peer_id,
            message.to_peer_id,
            transfer_method(message),
        )
    if kind == "drop_replica":
        return ClusterOperation(kind, message.shard_id, None, message.peer_id)
    if kind == "create_shard_key":
        state = message.initial_state if message.HasField("initial_state") else None
        return key_creation(
            shard_key(message.shard_key),
            opt(message, "shards_number"),
            opt(message, "replication_factor"),
            list(message.placement) or None,
            None if state is None else pb.ReplicaState.Name(state),
        )
    if kind == "replicate_points":
        return ClusterOperation(
            kind,
            0,
            key=shard_key(message.from_shard_key),
            to_key=shard_key(message.to_shard_key),
            filter=grpc_filter.opt_filter(message),
        )
    if kind == "delete_shard_key":
        return ClusterOperation("drop_sharding_key", 0, key=shard_key(message.shard_key))
    raise BadRequest(UNTAGGED)
