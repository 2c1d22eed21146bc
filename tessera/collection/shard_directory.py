"""Where a sharded collection learns its shards' placement and replica states.

`ShardDirectory` is what tessera.collection.distributed needs: in cluster mode the cluster
service (tessera.cluster.service, from etcd); on a standalone node `LocalShards`, a
collection with `shard_number` > 1 whose shards all live here, each active (Qdrant's
standalone mode makes one local shard per `shard_number` too). A standalone node has no
shard keys (creating one needs distributed mode, as in Qdrant) and no peers to call.
"""

from __future__ import annotations

from typing import Any, Protocol

from tessera.errors import ServiceUnavailable

Placement = dict[int, list[int]]


class ShardDirectory(Protocol):
    peer_id: int

    @property
    def p2p(self) -> Any: ...

    def placement(self, name: str) -> Placement: ...

    def shard_keys(self, name: str) -> dict[str | int, tuple[int, ...]]: ...

    def partial_keys(self, name: str) -> frozenset[str | int]: ...

    def incarnation(self, name: str) -> str | None: ...

    def is_alive(self, peer: int) -> bool: ...

    def is_active(self, name: str, shard: int, peer: int) -> bool: ...

    def set_replica_state(self, name: str, shard: int, peer: int, active: bool) -> None: ...

    def transfer_source(self, name: str, shard: int, peer: int) -> int | None: ...

    def set_replica_transfer(self, name: str, shard: int, peer: int, source: int) -> None: ...

    def view(self) -> int: ...

    def wait_view(self, revision: int, timeout: float) -> bool: ...

    def peer_uri(self, peer: int) -> str: ...

    def finish_move(self, name: str, shard: int, target: int) -> None: ...


class LocalShards:
    """`shard_number` shards, every one on this node and active."""

    def __init__(self, peer_id: int, shard_number: int) -> None:
        self.peer_id = peer_id
        self.shard_number = shard_number

    @property
    def p2p(self) -> Any:
        raise ServiceUnavailable("Service unavailable: a standalone node has no peers")

    def placement(self, name: str) -> Placement:
        return {shard: [self.peer_id] for shard in range(self.shard_number)}

    def shard_keys(self, name: str) -> dict[str | int, tuple[int, ...]]:
        return {}

    def partial_keys(self, name: str) -> frozenset[str | int]:
        return frozenset()

    def incarnation(self, name: str) -> str | None:
        return "local"

    def is_alive(self, peer: int) -> bool:
        return peer == self.peer_id

    def is_active(self, name: str, shard: int, peer: int) -> bool:
        return peer == self.peer_id

    def set_replica_state(self, name: str, shard: int, peer: int, active: bool) -> None:
        return None  # one replica per shard: nothing to mark

    def transfer_source(self, name: str, shard: int, peer: int) -> int | None:
        return None

    def set_replica_transfer(self, name: str, shard: int, peer: int, source: int) -> None:
        return None

    def view(self) -> int:
        return 0

    def wait_view(self, revision: int, timeout: float) -> bool:
        return True

    def peer_uri(self, peer: int) -> str:
        raise ServiceUnavailable("Service unavailable: a standalone node has no peers")

    def finish_move(self, name: str, shard: int, target: int) -> None:
        return None
