"""The cluster's collection metadata in etcd, changed by compare-and-swap transactions.

Keys, under the configured prefix (`cluster.etcd.prefix`, default `/tessera/`), values JSON:

    peers/<peer id>        {"uri": <p2p URI>, "rest": <REST URL>, "version": <Qdrant API>}
                           under the peer's lease
    leader                 {"peer_id": <id>}                        under the leader's lease
    removed/<peer id>      {"removed_at": <unix time>}              a peer taken out for good
    collections/<name>     {"uuid", "config", "patch", "indexes", "shards", "shard_keys",
                            "next_shard", "partial_keys"}
    aliases                {"aliases": {<alias>: <collection>}}     the whole alias table
    dead/<name>/<uuid>/<shard>/<peer>  {"at": <unix time>}          a replica that missed writes
                                       (+ "transfer": <peer id> while that peer streams to it)
    moves/<name>/<uuid>/<shard>/<to>   {"from": <peer id>}          a shard being moved

A collection record: `uuid` names this incarnation of the collection (a collection dropped
and created again is another one); `config` is the collection config in its storage form
(`CollectionConfig.to_storage`); `patch` the last PATCH body applied to it (each node applies
the same diff through the same code as standalone) or None; `indexes` the payload index
schemas, `{field: field_schema}` as the user gave them (every node creates and drops its
local indexes to match; absent in records of older versions: not tracked); `shards` the
placement (tessera.cluster.placement); `shard_keys` (custom sharding) the shards of each user
defined shard key, `[[key, [shard ids]], ...]` (a key is a string or an integer);
`partial_keys` those created Partial and not yet filled by `replicate_points`. Named
vectors are part of `config`.

A replica is active unless a `dead` key names it: the peer leading a shard marks a replica
dead when it could not give it a write (its peer gone or failing), and the replica's peer
clears the mark once it has caught up (a shard transfer from an active replica). The key
names the collection's incarnation, so marks of a dropped collection never touch a new one
of the same name. A replica added by `replicate_shard` or `move_shard` starts dead (it
catches up like any other); a `moves` key says which replica goes once the new one is active.
While an active replica streams the shard to a dead one, the mark says from which peer
(`transfer`): Qdrant calls that replica Partial; a transfer that fails marks it plain dead.

Each change is one transaction that compares what it read (a key's create or mod revision)
and fails when something changed in between; it is then read and tried again, so concurrent
requests through different peers serialise as they would through Raft. Errors are Qdrant's.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tessera.cluster.etcd import (
    EtcdClient,
    KeyValue,
    compare_created,
    compare_modified,
    delete_op,
    put_op,
)
from tessera.cluster.placement import Placement, placement_of
from tessera.errors import (
    ServiceUnavailable,
    alias_name_taken,
    collection_exists,
    collection_not_found,
)

CAS_ATTEMPTS = 50


@dataclass(frozen=True)
class CollectionRecord:
    name: str
    uuid: str
    config: dict[str, Any]
    patch: Any
    indexes: dict[str, Any] | None
    shards: Placement
    create_revision: int
    mod_revision: int
    # Custom sharding: each shard key and its shards, in creation order.
    shard_keys: tuple[tuple[str | int, tuple[int, ...]], ...] = ()
    # The id the next new shard gets: ids of dropped shards are never given again (a peer
    # may not have removed a dropped replica's files yet).
    next_shard: int = 0
    # Shard keys created `Partial` (Qdrant's `initial_state`) and not yet filled by
    # `replicate_points`: reported Partial, skipped by reads that name a fallback.
    partial_keys: tuple[str | int, ...] = ()


@dataclass
class ClusterState:
    """Everything under the prefix, read at one revision."""

    revision: int
    peers: dict[int, dict[str, Any]]
    leader: int | None
    removed: set[int]
    collections: dict[str, CollectionRecord]
    aliases: dict[str, str]
    aliases_revision: int  # mod revision of the aliases key (0: none yet)
    # Replicas marked dead: (collection, its uuid, shard, peer).
    dead: set[tuple[str, str, int, int]] = field(default_factory=set)
    # Of those, the replicas a transfer is streaming to (Qdrant's Partial) -> its source.
    partial: dict[tuple[str, str, int, int], int] = field(default_factory=dict)
    # Of those, the transfers asked for with a `method` -> that method (as asked).
    methods: dict[tuple[str, str, int, int], str] = field(default_factory=dict)
    # Shards being moved: (collection, its uuid, shard, to peer) -> from peer.
    moves: dict[tuple[str, str, int, int], int] = field(default_factory=dict)


def record_of(name: str, kv: KeyValue) -> CollectionRecord:
    body = kv.value if isinstance(kv.value, dict) else {}
    return CollectionRecord(
        name=name,
        uuid=str(body.get("uuid", "")),
        config=body.get("config") or {},
        patch=body.get("patch"),
        indexes=dict(body["indexes"]) if isinstance(body.get("indexes"), dict) else None,
        shards=placement_of(body.get("shards")),
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        shard_keys=shard_keys_of(body.get("shard_keys")),
        next_shard=int(body.get("next_shard") or 0),
        partial_keys=partial_keys_of(body.get("partial_keys")),
    )


def partial_keys_of(raw: object) -> tuple[str | int, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(k for k in raw if isinstance(k, str | int) and not isinstance(k, bool))


def shard_keys_of(raw: object) -> tuple[tuple[str | int, tuple[int, ...]], ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str | int):
            out.append((item[0], tuple(int(s) for s in item[1])))
    return tuple(out)


def record_body(
    record: CollectionRecord,
    config: dict[str, Any] | None = None,
    patch: Any = None,
    indexes: dict[str, Any] | None = None,
    placement: Placement | None = None,
    shard_keys: tuple[tuple[str | int, tuple[int, ...]], ...] | None = None,
    partial_keys: tuple[str | int, ...] | None = None,
) -> dict[str, Any]:
    """A collection record's body with some parts replaced."""
    shards = record.shards if placement is None else placement
    keys = record.shard_keys if shard_keys is None else shard_keys
    partial = record.partial_keys if partial_keys is None else partial_keys
    named = {key for key, _ in keys}  # a dropped key is no longer partial
    next_shard = max(record.next_shard, max(shards, default=-1) + 1)
    return {
        "uuid": record.uuid,
        "config": record.config if config is None else config,
        "patch": patch,
        "indexes": record.indexes if indexes is None else indexes,
        "shards": {str(s): p for s, p in sorted(shards.items())},
        "shard_keys": [[key, list(ids)] for key, ids in keys],
        "next_shard": next_shard,
        "partial_keys": [key for key in partial if key in named],
    }


class MetadataStore:
    def __init__(self, client: EtcdClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"

    # ------------------------------------------------------------------ keys

    def peer_key(self, peer: int) -> str:
        return f"{self.prefix}peers/{peer}"

    def removed_key(self, peer: int) -> str:
        return f"{self.prefix}removed/{peer}"

    @property
    def leader_key(self) -> str:
        return f"{self.prefix}leader"

    @property
    def aliases_key(self) -> str:
        return f"{self.prefix}aliases"

    def collection_key(self, name: str) -> str:
        return f"{self.prefix}collections/{name}"

    def dead_key(self, name: str, incarnation: str, shard: int, peer: int) -> str:
        return f"{self.prefix}dead/{name}/{incarnation}/{shard}/{peer}"

    def move_key(self, name: str, incarnation: str, shard: int, to: int) -> str:
        return f"{self.prefix}moves/{name}/{incarnation}/{shard}/{to}"

    def parse(self, key: str) -> tuple[str, str]:
        """(kind, rest) of a key under the prefix: ("peers", "<id>"), ("collections",
        "<name>"), ("aliases", ""), ("leader", ""), ("removed", "<id>")."""
        rest = key[len(self.prefix) :]
        kind, _, name = rest.partition("/")
        return kind, name

    # ------------------------------------------------------------------ reading

    def read(self) -> ClusterState:
        revision, kvs = self.client.get_prefix(self.prefix)
        state = ClusterState(revision, {}, None, set(), {}, {}, 0)
        for kv in kvs:
            kind, name = self.parse(kv.key)
            if kind == "peers" and name.isdigit() and isinstance(kv.value, dict):
                state.peers[int(name)] = kv.value
            elif kind == "removed" and name.isdigit():
                state.removed.add(int(name))
            elif kind == "leader" and isinstance(kv.value, dict):
                state.leader = int(kv.value.get("peer_id", 0)) or None
            elif kind == "collections" and name:
                state.collections[name] = record_of(name, kv)
            elif kind == "aliases" and isinstance(kv.value, dict):
                state.aliases = dict(kv.value.get("aliases") or {})
                state.aliases_revision = kv.mod_revision
            elif kind == "dead":
                replica = dead_replica(name)
                if replica is not None:
                    state.dead.add(replica)
                    source = transfer_source(kv.value)
                    if source is not None:
                        state.partial[replica] = source
                    method = transfer_method(kv.value)
                    if method is not None:
                        state.methods[replica] = method
            elif kind == "moves" and isinstance(kv.value, dict):
                replica = dead_replica(name)
                if replica is not None:
                    state.moves[replica] = int(kv.value.get("from", 0))
        return state

    # ------------------------------------------------------------------ replicas

    def mark_dead(self, name: str, incarnation: str, shard: int, peer: int) -> int:
        return self.client.put(self.dead_key(name, incarnation, shard, peer), {"at": time.time()})

    def mark_partial(self, name: str, incarnation: str, shard: int, peer: int, source: int) -> int:
        key = self.dead_key(name, incarnation, shard, peer)
        return self.client.put(key, {"at": time.time(), "transfer": source})

    def mark_active(self, name: str, incarnation: str, shard: int, peer: int) -> int:
        return self.client.delete(self.dead_key(name, incarnation, shard, peer))

    def change_replicas(
        self,
        name: str,
        change: Callable[[ClusterState, CollectionRecord], tuple[Placement, list[Any]]],
        keys: Callable[[CollectionRecord], tuple[tuple[str | int, tuple[int, ...]], ...]]
        | None = None,
        partial: Callable[[CollectionRecord], tuple[str | int, ...]] | None = None,
    ) -> int:
        """Apply `change` ((state, record) -> (the new placement, more etcd operations); it
        raises to refuse) to collection `name`'s placement in one transaction; `keys`: the
        record's new shard keys; `partial`: its new partial keys."""
        key = self.collection_key(name)
        for _ in range(CAS_ATTEMPTS):
            state = self.read()
            record = state.collections.get(name)
            if record is None:
                raise collection_not_found(name)
            placement, more = change(state, record)
            shard_keys = keys(record) if keys is not None else None
            partial_keys = partial(record) if partial is not None else None
            body = record_body(
                record, placement=placement, shard_keys=shard_keys, partial_keys=partial_keys
            )
            ok, revision = self.client.txn(
                [compare_modified(key, record.mod_revision)], [put_op(key, body), *more]
            )
            if ok:
                return revision
        raise _contended()

    # ------------------------------------------------------------------ collections

    def create_collection(
        self,
        name: str,
        config: dict[str, Any],
        placement: Callable[[ClusterState], Placement],
        incarnation: str | None = None,
        indexes: dict[str, Any] | None = None,
    ) -> int:
        """The revision the collection was created at; Conflict when it exists.
        `incarnation`: its uuid (default: a new one); `indexes`: its payload indexes."""
        for _ in range(CAS_ATTEMPTS):
            state = self.read()
            if name in state.collections:
                raise collection_exists(name)
            if name in state.aliases:
                raise alias_name_taken(name)
            body = {
                "uuid": incarnation or uuid.uuid4().hex,
                "config": config,
                "patch": None,
                "indexes": dict(indexes or {}),
                "shards": {str(s): p for s, p in sorted(placement(state).items())},
            }
            key = self.collection_key(name)
            ok, revision = self.client.txn(
                [
                    compare_created(key, 0),
                    compare_modified(self.aliases_key, state.aliases_revision),
                ],
                [put_op(key, body)],
            )
            if ok:
                return revision
        raise _contended()

    def update_collection(
        self,
        name: str,
        change: Callable[[CollectionRecord], tuple[dict[str, Any], Any]],
        shards: Callable[[Placement], Placement] | None = None,
        indexes: Callable[[CollectionRecord], dict[str, Any] | None] | None = None,
    ) -> int:
        """Apply `change` (record -> (new config, the patch)) to the current record,
        `shards` to its placement and `indexes` (record -> its new payload indexes); any
        raises to refuse. NotFound when the collection does not exist."""
        key = self.collection_key(name)
        for _ in range(CAS_ATTEMPTS):
            state = self.read()
            record = state.collections.get(name)
            if record is None:
                raise collection_not_found(name)
            config, patch = change(record)
            placement = shards(record.shards) if shards is not None else record.shards
            schemas = indexes(record) if indexes is not None else record.indexes
            body = record_body(record, config, patch, schemas, placement)
            ok, revision = self.client.txn(
                [compare_modified(key, record.mod_revision)], [put_op(key, body)]
            )
            if ok:
                return revision
        raise _contended()

    def delete_collection(self, name: str) -> int | None:
        """The revision of the deletion (with the collection's aliases); None when there
        was no such collection."""
        key = self.collection_key(name)
        for _ in range(CAS_ATTEMPTS):
            state = self.read()
            record = state.collections.get(name)
            if record is None:
                return None
            aliases = {a: c for a, c in state.aliases.items() if c != name}
            ops = [delete_op(key)]
            if aliases != state.aliases:
                ops.append(put_op(self.aliases_key, {"aliases": aliases}))
            ok, revision = self.client.txn(
                [
                    compare_created(key, record.create_revision),
                    compare_modified(self.aliases_key, state.aliases_revision),
                ],
                ops,
            )
            if ok:
                return revision
        raise _contended()

    # ------------------------------------------------------------------ aliases

    def update_aliases(
        self, change: Callable[[dict[str, str], Callable[[str], bool]], dict[str, str]]
    ) -> int | None:
        """Apply `change` (table, is_collection -> new table; raises to refuse) to the alias
        table; the revision of the change, None when it changed nothing."""
        for _ in range(CAS_ATTEMPTS):
            state = self.read()
            names = set(state.collections)
            table = change(dict(state.aliases), names.__contains__)
            if table == state.aliases:
                return None
            compare = [compare_modified(self.aliases_key, state.aliases_revision)]
            # The collections named, as they were read: still there, and no new one takes
            # an alias's name.
            for alias, target in table.items():
                compare.append(
                    compare_created(
                        self.collection_key(target), state.collections[target].create_revision
                    )
                )
                compare.append(compare_created(self.collection_key(alias), 0))
            ok, revision = self.client.txn(compare, [put_op(self.aliases_key, {"aliases": table})])
            if ok:
                return revision
        raise _contended()

    # ------------------------------------------------------------------ peers

    def drop_replicas(self, name: str, peer: int) -> int:
        """Remove `peer`'s replicas from collection `name`'s placement (a forced removal)."""
        return self.update_collection(
            name,
            lambda record: (record.config, None),
            lambda shards: {s: [p for p in peers if p != peer] for s, peers in shards.items()},
        )

    def remove_peer(self, peer: int) -> int:
        """Take `peer` out of the cluster: its registration goes, and a `removed` mark keeps
        it from registering again."""
        _, revision = self.client.txn(
            [],
            [delete_op(self.peer_key(peer)), put_op(self.removed_key(peer), {"at": time.time()})],
        )
        return revision


def dead_replica(rest: str) -> tuple[str, str, int, int] | None:
    """(collection, uuid, shard, peer) of a `dead/...` key's part after `dead/`."""
    parts = rest.rsplit("/", 3)
    if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit():
        return None
    return parts[0], parts[1], int(parts[2]), int(parts[3])


def transfer_source(value: Any) -> int | None:
    """The peer a dead mark's value names as streaming to the replica (its `transfer`)."""
    if not isinstance(value, dict):
        return None
    source = value.get("transfer")
    return source if isinstance(source, int) and not isinstance(source, bool) else None


def transfer_method(value: Any) -> str | None:
    """The transfer `method` a dead mark's value records (replicate_shard / move_shard)."""
    method = value.get("method") if isinstance(value, dict) else None
    return method if isinstance(method, str) else None


def _contended() -> ServiceUnavailable:
    return ServiceUnavailable(
        "Service unavailable: the cluster metadata kept changing under this request; retry"
    )
