"""The gRPC `Snapshots` service: create, list and delete collection and full snapshots.

Qdrant's gRPC API has no recovery (recover and upload are REST only), nor shard snapshots;
the work is tessera.storage.snapshots', as for REST.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qdrant_client import grpc as pb

from tessera.api.grpc_server import rpc
from tessera.storage.toc import TableOfContents


def description(d: dict[str, Any]) -> pb.SnapshotDescription:
    out = pb.SnapshotDescription(name=d["name"], size=int(d["size"]))
    if d.get("creation_time"):
        out.creation_time.FromDatetime(datetime.fromisoformat(d["creation_time"]))
    if d.get("checksum") is not None:
        out.checksum = d["checksum"]
    return out


class SnapshotsService(pb.SnapshotsServicer):
    def __init__(self, toc: TableOfContents) -> None:
        self.toc = toc

    def _collection(self, name: str) -> str:
        """The collection `name` names, itself or through an alias: as in Qdrant, a snapshot
        asked for through an alias is the collection's, named and kept as the collection's
        (NotFound when neither exists)."""
        return self.toc.get(name).name

    @rpc
    def Create(self, request: pb.CreateSnapshotRequest) -> pb.CreateSnapshotResponse:
        made = self.toc.snapshots.create(self._collection(request.collection_name))
        return pb.CreateSnapshotResponse(snapshot_description=description(made))

    @rpc
    def List(self, request: pb.ListSnapshotsRequest) -> pb.ListSnapshotsResponse:
        found = self.toc.snapshots.list_snapshots(self._collection(request.collection_name))
        return pb.ListSnapshotsResponse(snapshot_descriptions=[description(d) for d in found])

    @rpc
    def Delete(self, request: pb.DeleteSnapshotRequest) -> pb.DeleteSnapshotResponse:
        name = self._collection(request.collection_name)
        self.toc.snapshots.delete(name, request.snapshot_name)
        return pb.DeleteSnapshotResponse()

    @rpc
    def CreateFull(self, request: pb.CreateFullSnapshotRequest) -> pb.CreateSnapshotResponse:
        made = self.toc.snapshots.create_full()
        return pb.CreateSnapshotResponse(snapshot_description=description(made))

    @rpc
    def ListFull(self, request: pb.ListFullSnapshotsRequest) -> pb.ListSnapshotsResponse:
        found = self.toc.snapshots.list_full()
        return pb.ListSnapshotsResponse(snapshot_descriptions=[description(d) for d in found])

    @rpc
    def DeleteFull(self, request: pb.DeleteFullSnapshotRequest) -> pb.DeleteSnapshotResponse:
        self.toc.snapshots.delete_full(request.snapshot_name)
        return pb.DeleteSnapshotResponse()
