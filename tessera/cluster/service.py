"""The cluster service of one node: membership, the metadata store, and the watch that
applies the cluster's metadata to this node's storage.

The table of contents (tessera.storage.toc) hands every collection and alias change to this
service in cluster mode: it is written to etcd as one transaction (tessera.cluster.metadata),
and the request returns once *this* node has applied the committed revision through its
watch, as Qdrant answers once its consensus operation is committed and applied locally.
Every node applies the same changes in etcd's revision order through the same watch; a node
that starts (or restarts) first reads the whole state at one revision and reconciles its
storage with it (`LocalNode`), then watches from the next revision.

The service also keeps what the data plane (tessera.collection.distributed) reads on every
request without asking etcd: the placement, the replicas marked dead, moves in progress and
shard keys, all from the same watch; and it makes the changes to them (shard operations,
shard keys, replica states) as etcd transactions.
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import orjson

from tessera.cluster.etcd import (
    EtcdClient,
    EtcdUnavailable,
    Event,
    WatchCompacted,
    delete_op,
    put_op,
)
from tessera.cluster.local_state import AppliedCollections, load_peer_id
from tessera.cluster.membership import DEFAULT_LEASE_TTL_S, Membership
from tessera.cluster.metadata import (
    ClusterState,
    CollectionRecord,
    MetadataStore,
    dead_replica,
    record_of,
    transfer_method,
    transfer_source,
)
from tessera.cluster.p2p import PeerClient
from tessera.cluster.placement import Placement, place, shards_on
from tessera.collection_config import collection_defaults
from tessera.errors import (
    BadRequest,
    InternalError,
    NotFound,
    ServiceUnavailable,
    TesseraError,
)
from tessera.settings import Settings, TlsSettings

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
WAIT_TIMEOUT_S = 30.0
# `sync_peers`: how long it waits for the other peers (Qdrant's CONSENSUS_META_OP_WAIT), one
# peer's answer, and the pause between rounds of asking.
PEER_SYNC_S = 10.0
PEER_SYNC_CALL_S = 2.0
PEER_SYNC_POLL_S = 0.02


class LocalNode(Protocol):
    """What the service needs of this node's storage (the table of contents)."""

    def local_collections(self) -> list[str]: ...

    def local_config(self, name: str) -> dict[str, Any] | None: ...

    def local_indexes(self, name: str) -> dict[str, Any]:
        """The local collection's payload index schemas, `{field: field_schema}`."""

    def apply_collection(self, record: CollectionRecord) -> None:
        """Create the collection, or bring the local one's config to the record's."""

    def drop_local(self, name: str, keep_data: bool) -> None:
        """Remove the local collection; `keep_data`: move its files aside instead."""

    def files_lost(self, name: str) -> None:
        """This node had applied the collection, and its files were gone: the (empty) replicas
        just made catch up from the others before they serve."""

    def apply_aliases(self, table: dict[str, str]) -> None: ...


def given_uri(uri: str) -> str:
    """`--uri` as Qdrant keeps it (its `Uri`'s text): an address without a path ends in `/`
    (`https://node1:6335` is shown and registered as `https://node1:6335/`)."""
    _, sep, rest = uri.partition("://")
    if sep and "/" not in rest:
        return f"{uri}/"
    return uri


class ClusterService:
    def __init__(
        self,
        storage: Path,
        endpoints: list[str],
        prefix: str,
        uri: str,
        rest_url: str,
        lease_ttl: int = DEFAULT_LEASE_TTL_S,
        p2p_tls: TlsSettings | None = None,
    ) -> None:
        self.client = EtcdClient(endpoints)
        self.store = MetadataStore(self.client, prefix)
        self.peer_id = load_peer_id(storage)
        self.applied = AppliedCollections(storage)
        self.membership = Membership(
            self.store, self.peer_id, uri, rest_url, self._is_removed, lease_ttl
        )
        self.peers: dict[int, dict[str, Any]] = {}
        self.leader: int | None = None
        self.removed: set[int] = set()
        self.collections: dict[str, CollectionRecord] = {}
        # Replicas marked dead (collection, uuid, shard, peer); replaced, never changed in place.
        self.dead: frozenset[tuple[str, str, int, int]] = frozenset()
        # Of those, the replicas a transfer streams to (Qdrant's Partial); replaced alike.
        # Replicas a transfer streams to (Partial) -> the peer it names as its source.
        self.partial: dict[tuple[str, str, int, int], int] = {}
        # Transfers asked for with a `method` -> that method (reported as asked).
        self.methods: dict[tuple[str, str, int, int], str] = {}
        # Shards being moved: (collection, uuid, shard, to) -> from; replaced, never changed.
        self.moves: dict[tuple[str, str, int, int], int] = {}
        self.p2p = PeerClient(p2p_tls)
        self.applied_revision = 0
        self._own_revision = 0  # of this node's own replica state changes
        self._changed = threading.Condition()
        self._failures: dict[int, TesseraError] = {}  # revision -> why this node failed it
        self._stop = threading.Event()
        self._recover_asked = 0  # POST /cluster/recover requests, and how many were served
        self._recovered = 0
        self._watcher: threading.Thread | None = None
        self._node: LocalNode | None = None
        self.watch_error: str | None = None

    @classmethod
    def from_settings(cls, storage: Path, conf: Settings) -> ClusterService:
        """The service `cluster.*` asks for: etcd endpoints and key prefix, the advertised
        p2p URI (`--uri`; default `http://<host>:<cluster.p2p.port>/`, the host being
        `service.host` unless that is a wildcard address, then this machine's name)."""
        host = conf.host
        if host in ("0.0.0.0", "::", "[::]", ""):
            host = socket.gethostname()
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        p2p_scheme = "https" if conf.p2p_tls is not None else "http"
        given = conf["cluster.p2p.uri"]
        uri = given_uri(given) if given else f"{p2p_scheme}://{shown}:{conf['cluster.p2p.port']}/"
        scheme = "https" if conf.tls is not None else "http"
        return cls(
            storage,
            list(conf["cluster.etcd.endpoints"]),
            conf["cluster.etcd.prefix"],
            uri,
            f"{scheme}://{shown}:{conf.http_port}",
            conf["cluster.etcd.lease_ttl_sec"],
            conf.p2p_tls,
        )

    # ------------------------------------------------------------------ life cycle

    def start(self, node: LocalNode) -> None:
        """Join: register, reconcile the local storage with the cluster's state, then watch.
        Retries etcd for START_TIMEOUT_S; EtcdUnavailable after that."""
        self._node = node
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    state = self.store.read()
                    if self.peer_id in state.removed:
                        raise RuntimeError(
                            f"peer {self.peer_id} was removed from the cluster and cannot "
                            "join again; start this node with an empty storage directory"
                        )
                    self.membership.register()
                    self._sync()
                    break
                except EtcdUnavailable as exc:
                    if time.monotonic() > deadline:
                        raise
                    log.warning("waiting for etcd: %s", exc)
                    time.sleep(1.0)
        except BaseException:
            # Not joined: a lease granted meanwhile is revoked (the peer would otherwise be
            # listed until its TTL) and the HTTP connections are closed.
            self.membership.stop()
            self.client.close()
            raise
        self.membership.start()
        self._watcher = threading.Thread(target=self._watch, name="cluster-watch", daemon=True)
        self._watcher.start()
        log.info(
            "joined the cluster as peer %d (%s), %d peers",
            self.peer_id,
            self.membership.uri,
            len(self.peers),
        )

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        self.membership.stop()
        self.client.close()
        self.p2p.close()

    # ------------------------------------------------------------------ applying

    def _sync(self) -> None:
        """Reconcile the local storage with the whole state read at one revision."""
        node = self._require_node()
        state = self.store.read()
        for name in node.local_collections():
            record = state.collections.get(name)
            known = self.applied.get(name)
            if record is None and known is None:
                # Made before this node ran in cluster mode (or restored from a snapshot
                # locally): published to the cluster rather than lost.
                try:
                    self._publish(name)
                except TesseraError as exc:
                    log.error("local collection %s could not join the cluster: %s", name, exc)
                state = self.store.read()
            elif record is None:
                # Dropped while this node was away - or etcd lost its data, or this node
                # reads another cluster's prefix: a whole-state read cannot tell these
                # apart, so the files are moved aside (cluster-orphans/), never deleted.
                node.drop_local(name, keep_data=True)
                self.applied.set(name, None)
        # Another incarnation of a local one (dropped and made again while away, or one
        # that predates cluster mode here) is told apart and replaced by `_apply_record`.
        for record in state.collections.values():
            try:
                self._apply_record(record)
            except (TesseraError, OSError) as exc:
                # One collection that cannot be made here (a full disk) must not keep this
                # node from following the others; the next change of it retries.
                log.error("could not apply collection %s here: %s", record.name, exc)
        try:
            node.apply_aliases(state.aliases)
        except TesseraError as exc:
            log.error("could not apply the alias table here: %s", exc.message)
        with self._changed:
            self.peers = state.peers
            self.leader = state.leader
            self.removed = state.removed
            self.collections = state.collections
            self.dead = frozenset(state.dead)
            self.partial = dict(state.partial)
            self.methods = dict(state.methods)
            self.moves = dict(state.moves)
            self.applied_revision = max(self.applied_revision, state.revision)
            self._changed.notify_all()

    def _publish(self, name: str) -> int | None:
        """Create collection `name` in the cluster from this node's copy (its config), as
        the same incarnation (`applied`) so that applying the commit keeps these files.
        The commit's revision; None when the local copy is damaged."""
        node = self._require_node()
        config = node.local_config(name)
        if config is None:
            return None
        incarnation = uuid.uuid4().hex
        self.applied.set(name, incarnation)  # before the commit: the watch must see it ours
        try:
            with _etcd():
                revision = self.store.create_collection(
                    name,
                    config,
                    lambda s: self.placement_for(config, s),
                    incarnation,
                    node.local_indexes(name),
                )
        except TesseraError:
            # An answer lost after etcd committed (a timeout) is not a failure: forgetting
            # the incarnation would make this node move its own files aside when the
            # commit comes through the watch.
            if not self._holds_incarnation(name, incarnation):
                self.applied.set(name, None)
                raise
            revision = None
        log.info("local collection %s published to the cluster", name)
        return revision

    def _holds_incarnation(self, name: str, incarnation: str) -> bool:
        """Whether etcd's record of `name` is `incarnation` (False when unreachable)."""
        try:
            record = self.store.read().collections.get(name)
        except EtcdUnavailable:
            return False
        return record is not None and record.uuid == incarnation

    def adopt(self, name: str) -> None:
        """A collection installed on this node outside the cluster's metadata (a snapshot
        restored here): published when the cluster has no collection of that name, else
        these files serve as this node's copy of the cluster's (whose config stays the
        cluster's)."""
        with _etcd():
            record = self.store.read().collections.get(name)
        if record is not None:
            self.applied.set(name, record.uuid)
            return
        self.wait_applied(self._publish(name))

    def _apply_record(self, record: CollectionRecord) -> None:
        node = self._require_node()
        known = self.applied.get(record.name)
        local = record.name in node.local_collections()
        # Applied here before, and its directory gone (removed, or a disk replaced): the
        # replicas made again below are empty, not copies to serve as they are.
        lost = known == record.uuid and not local
        if known != record.uuid and local:
            # Not this incarnation: an older one whose deletion this node never applied
            # (dropped and made again while it was away - or etcd lost its data and the
            # name was used again), or a collection made only here (a snapshot restored on
            # this node). Its files are kept aside either way, never deleted.
            node.drop_local(record.name, keep_data=True)
            self.applied.set(record.name, None)
        node.apply_collection(record)
        self.applied.set(record.name, record.uuid)
        if lost:
            log.error(
                "collection %s: this node's files of it are gone; its replicas are made "
                "again empty and catch up from the other peers",
                record.name,
            )
            node.files_lost(record.name)

    def _watch(self) -> None:
        """Follow the cluster's changes until stopped. When the watch breaks (etcd restarted
        or unreachable, history compacted past this node), this node reads the whole state
        again and reconciles once etcd answers, then watches on."""
        resync = False
        while not self._stop.is_set():
            try:
                asked = self._recover_asked
                if resync or asked > self._recovered:
                    self._sync()
                    resync = False
                    with self._changed:
                        self._recovered = max(self._recovered, asked)
                        self._changed.notify_all()
                for revision, events in self.client.watch(
                    self.store.prefix, self.applied_revision + 1, self._interrupted
                ):
                    self._apply_events(revision, events)
                if self.watch_error is not None:
                    log.info("following the cluster metadata again")
                self.watch_error = None
            except WatchCompacted as exc:
                # etcd is answering: read the whole state again now, no outage reported.
                log.info("cluster metadata history compacted (%s); reading it whole", exc)
                resync = True
            except (EtcdUnavailable, TesseraError) as exc:
                if self.watch_error is None:
                    log.error("cluster metadata watch failed: %s", exc)
                self.watch_error = str(exc)
                resync = True
                self._stop.wait(1.0)
            except Exception:  # a bug must not stop this node from following the cluster
                log.exception("applying cluster metadata failed")
                resync = True
                self._stop.wait(1.0)

    def _interrupted(self) -> bool:
        return self._stop.is_set() or self._recover_asked > self._recovered

    def recover(self, timeout: float | None = None) -> None:
        """Qdrant's `POST /cluster/recover`: this peer reads the whole cluster state again
        and reconciles its storage with it (on the watch thread, the only one that applies);
        returns when done, 500 after `timeout`."""
        limit = WAIT_TIMEOUT_S if timeout is None else timeout
        with self._changed:
            self._recover_asked += 1
            ticket = self._recover_asked
            done = self._changed.wait_for(lambda: self._recovered >= ticket, limit)
        if not done:
            raise InternalError(
                "Service internal error: recovering this peer from the cluster state did not "
                f"finish within {seconds(limit)} seconds: {self.problem() or 'no answer'}"
            )

    def _apply_events(self, revision: int, events: list[Event]) -> None:
        failure: TesseraError | None = None
        for event in events:
            try:
                self._apply_event(event)
            except TesseraError as exc:
                log.error("could not apply %s %s: %s", event.kind, event.kv.key, exc.message)
                failure = exc
            except OSError as exc:
                log.exception("could not apply %s %s", event.kind, event.kv.key)
                failure = InternalError(f"Service internal error: {exc}")
        with self._changed:
            if failure is not None:
                self._failures[revision] = failure
                for old in sorted(self._failures)[:-64]:
                    del self._failures[old]
            self.applied_revision = max(self.applied_revision, revision)
            self._changed.notify_all()

    def _apply_event(self, event: Event) -> None:
        node = self._require_node()
        kind, name = self.store.parse(event.kv.key)
        deleted = event.kind == "DELETE"
        if kind == "collections":
            if deleted:
                self.collections = {n: r for n, r in self.collections.items() if n != name}
                if name in node.local_collections():
                    # Only a copy this node applied from the cluster goes with the cluster's
                    # deletion; one it never recorded as the cluster's is moved aside.
                    node.drop_local(name, keep_data=self.applied.get(name) is None)
                self.applied.set(name, None)
            else:
                record = record_of(name, event.kv)
                self.collections = {**self.collections, name: record}
                self._apply_record(record)
        elif kind == "aliases":
            value = event.kv.value if isinstance(event.kv.value, dict) else {}
            node.apply_aliases({} if deleted else dict(value.get("aliases") or {}))
        elif kind == "peers" and name.isdigit():
            if deleted:
                self.peers = {p: v for p, v in self.peers.items() if p != int(name)}
            elif isinstance(event.kv.value, dict):
                self.peers = {**self.peers, int(name): event.kv.value}
        elif kind == "leader":
            value = event.kv.value if isinstance(event.kv.value, dict) else {}
            self.leader = None if deleted else int(value.get("peer_id", 0)) or None
        elif kind == "removed" and name.isdigit() and not deleted:
            self.removed = self.removed | {int(name)}
        elif kind == "dead":
            replica = dead_replica(name)
            if replica is not None:
                self.dead = self.dead - {replica} if deleted else self.dead | {replica}
                source = None if deleted else transfer_source(event.kv.value)
                self.partial = _with_source(self.partial, replica, source)
                method = None if deleted else transfer_method(event.kv.value)
                self.methods = _with_method(self.methods, replica, method)
        elif kind == "moves":
            replica = dead_replica(name)
            if replica is not None:
                moves = dict(self.moves)
                if deleted:
                    moves.pop(replica, None)
                elif isinstance(event.kv.value, dict):
                    moves[replica] = int(event.kv.value.get("from", 0))
                self.moves = moves

    def _require_node(self) -> LocalNode:
        if self._node is None:
            raise RuntimeError("the cluster service is not started")
        return self._node

    def _is_removed(self) -> bool:
        return self.peer_id in self.removed

    def wait_applied(self, revision: int | None, timeout: float | None = None) -> None:
        """Return once this node has applied `revision` (None: nothing to wait for); the
        failure of applying it here, if it failed; after `timeout` seconds (default
        WAIT_TIMEOUT_S), Qdrant's consensus timeout: 500 "Waiting for consensus operation
        commit failed. Timeout set at: <timeout> seconds" (the change stays committed and
        is applied here later, as in Qdrant)."""
        if revision is None:
            return
        limit = WAIT_TIMEOUT_S if timeout is None else timeout
        with self._changed:
            done = self._changed.wait_for(lambda: self.applied_revision >= revision, limit)
            failure = self._failures.pop(revision, None)
        if not done:
            raise InternalError(
                "Service internal error: Waiting for consensus operation commit failed. "
                f"Timeout set at: {seconds(limit)} seconds"
            )
        if failure is not None:
            raise failure

    def sync_peers(self, revision: int | None, timeout: float | None = None) -> None:
        """Wait, at most PEER_SYNC_S (or a shorter `timeout`), until every other live peer has
        applied `revision` too, as Qdrant synchronises all nodes after a collection, shard
        key, named vector or alias is created: a client's next request may go to any peer,
        which must know it by then. Best effort, as in Qdrant: a peer that does not answer
        in time is logged, the change stands."""
        if revision is None:
            return
        deadline = time.monotonic() + min(PEER_SYNC_S, timeout or PEER_SYNC_S)
        waiting = {
            peer: str(info.get("uri", ""))
            for peer, info in self.peers.items()
            if peer != self.peer_id and peer not in self.removed
        }
        while waiting and time.monotonic() < deadline:
            for peer, uri in list(waiting.items()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    answer = orjson.loads(
                        self.p2p.call(uri, "peer", b"{}", min(PEER_SYNC_CALL_S, left))
                    )
                    if int(answer.get("commit", 0)) >= revision:
                        del waiting[peer]
                except (TesseraError, ValueError, TypeError, AttributeError):
                    continue  # unreachable or not ready: asked again until the deadline
            if waiting:
                time.sleep(PEER_SYNC_POLL_S)
        if waiting:
            log.warning(
                "peers %s had not applied cluster revision %d in time; they may not know the "
                "change yet",
                sorted(waiting),
                revision,
            )

    # ------------------------------------------------------------------ writes

    def placement_for(self, config: dict[str, Any], state: ClusterState) -> Placement:
        params = config.get("create", {}).get("params", {})
        if params.get("sharding_method") == "custom":
            return {}  # shards come with each shard key
        peers = set(state.peers) | {self.peer_id}
        return place(
            int(params.get("shard_number") or 1), int(params.get("replication_factor") or 1), peers
        )

    def create_collection(
        self,
        name: str,
        config: dict[str, Any],
        timeout: float | None = None,
        auto_shards: bool = False,
    ) -> None:
        """`auto_shards`: no `shard_number` was asked for; it is
        `storage.collection.shard_number`, else the number of peers times
        `storage.collection.shard_number_per_node`, as Qdrant's `get_shard_number` makes it."""
        if auto_shards:
            config = copy.deepcopy(config)
            peers = len(set(self.peers) | {self.peer_id})
            shards = collection_defaults().auto_shards(peers)
            config.setdefault("create", {}).setdefault("params", {})["shard_number"] = shards
        with _etcd():
            revision = self.store.create_collection(
                name, config, lambda state: self.placement_for(config, state)
            )
        self.wait_applied(revision, timeout)
        self.sync_peers(revision, timeout)

    def update_collection(
        self,
        name: str,
        change: Callable[[CollectionRecord], tuple[dict[str, Any], Any]],
        timeout: float | None = None,
        indexes: Callable[[CollectionRecord], dict[str, Any] | None] | None = None,
        sync: bool = False,
    ) -> None:
        """A PATCH (`change`), or a payload index change (`indexes`: record -> the new
        index schemas), committed, then applied here (`sync`: on every peer, see
        `sync_peers`)."""
        with _etcd():
            revision = self.store.update_collection(name, change, indexes=indexes)
        self.wait_applied(revision, timeout)
        if sync:
            self.sync_peers(revision, timeout)

    def delete_collection(self, name: str, timeout: float | None = None) -> bool:
        with _etcd():
            revision = self.store.delete_collection(name)
        self.wait_applied(revision, timeout)
        return revision is not None

    def update_aliases(
        self,
        change: Callable[[dict[str, str], Callable[[str], bool]], dict[str, str]],
        timeout: float | None = None,
    ) -> None:
        with _etcd():
            revision = self.store.update_aliases(change)
        self.wait_applied(revision, timeout)
        self.sync_peers(revision, timeout)

    def remove_peer(self, peer: int, force: bool, timeout: float | None) -> None:
        """Qdrant's `DELETE /cluster/peer/{id}`: refused while the peer holds replicas,
        unless `force`, which drops them from the placement first."""
        collections, peers = self.collections, self.peers  # replaced, never changed in place
        holding = [name for name, r in collections.items() if shards_on(r.shards, peer)]
        if peer not in peers and not holding:
            raise NotFound(f"Not found: Peer {peer} doesn't exist")
        if holding and not force:
            raise BadRequest(f"Bad request: Cannot remove peer {peer} as there are shards on it")
        for name in holding:
            with _etcd():
                revision = self.store.drop_replicas(name, peer)
            self.wait_applied(revision, timeout)
        with _etcd():
            revision = self.store.remove_peer(peer)
        self.wait_applied(revision, timeout)

    # ------------------------------------------------------------------ reading

    def placement(self, name: str) -> Placement:
        record = self.collections.get(name)
        return dict(record.shards) if record is not None else {}

    def incarnation(self, name: str) -> str | None:
        record = self.collections.get(name)
        return record.uuid if record is not None else None

    def is_alive(self, peer: int) -> bool:
        """Registered now (its lease lives); this peer always is."""
        return peer == self.peer_id or peer in self.peers

    def peer_uri(self, peer: int) -> str:
        info = self.peers.get(peer)
        if info is None:
            raise ServiceUnavailable(f"Service unavailable: peer {peer} is not in the cluster")
        return str(info.get("uri") or "")

    def is_active(self, name: str, shard: int, peer: int) -> bool:
        """Whether that replica has every acknowledged write (no dead mark)."""
        incarnation = self.incarnation(name)
        return incarnation is not None and (name, incarnation, shard, peer) not in self.dead

    def replica_state(self, name: str, shard: int, peer: int) -> str:
        """Qdrant's state name of a replica: `Active` while its peer is registered and it
        has every acknowledged write, `Partial` while a transfer streams the shard to it,
        else `Dead`."""
        if not self.is_alive(peer):
            return "Dead"
        if self.is_active(name, shard, peer):
            return "Partial" if self._of_partial_key(name, shard) else "Active"
        return "Partial" if self.transfer_source(name, shard, peer) is not None else "Dead"

    def transfer_method(self, name: str, shard: int, peer: int) -> str:
        """The method of the transfer to that replica: as asked, else `stream_records`
        (what every transfer here does)."""
        replica = (name, self.incarnation(name) or "", shard, peer)
        return self.methods.get(replica, "stream_records")

    def transfer_source(self, name: str, shard: int, peer: int) -> int | None:
        """The live peer a transfer to that replica streams from; None when none is
        recorded or its source is gone (Qdrant aborts a transfer whose source goes away:
        the replica is then Dead, and catches up from whichever replica leads)."""
        source = self.partial.get((name, self.incarnation(name) or "", shard, peer))
        return source if source is not None and self.is_alive(source) else None

    def _of_partial_key(self, name: str, shard: int) -> bool:
        record = self.collections.get(name)
        if record is None or not record.partial_keys:
            return False
        return any(shard in ids for k, ids in record.shard_keys if k in record.partial_keys)

    def set_replica_transfer(self, name: str, shard: int, peer: int, source: int) -> None:
        """Mark a dead replica as receiving a transfer from `source` (Partial)."""

        def write(incarnation: str) -> int:
            return self.store.mark_partial(name, incarnation, shard, peer, source)

        self._mark(name, shard, peer, write, dead=True, source=source)

    def set_replica_state(self, name: str, shard: int, peer: int, active: bool) -> None:
        """Mark a replica dead (it missed a write) or active again (it caught up)."""
        mark = self.store.mark_active if active else self.store.mark_dead
        self._mark(name, shard, peer, lambda i: mark(name, i, shard, peer), not active, None)

    def _mark(
        self,
        name: str,
        shard: int,
        peer: int,
        write: Callable[[str], int],
        dead: bool,
        source: int | None,
    ) -> None:
        """Write a replica's mark to etcd (`write`, given the collection's incarnation);
        this node's view follows at once, the others' through the watch."""
        incarnation = self.incarnation(name)
        if incarnation is None:
            return
        replica = (name, incarnation, shard, peer)
        with _etcd():
            revision = write(incarnation)
        with self._changed:
            self.dead = self.dead | {replica} if dead else self.dead - {replica}
            self.partial = _with_source(self.partial, replica, source)
            self.methods = _with_method(self.methods, replica, None)  # a new mark has none
            self._own_revision = max(self._own_revision, revision)

    def view(self) -> int:
        """The etcd revision this node's view of replica states includes: what the watch
        applied, and its own changes (applied here at once)."""
        return max(self.applied_revision, self._own_revision)

    def wait_view(self, revision: int, timeout: float) -> bool:
        """Until the watch has applied `revision` (another peer's view); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.applied_revision >= revision, timeout)

    # ------------------------------------------------------------------ shard operations

    def replicate_shard(
        self,
        name: str,
        shard: int,
        source: int,
        target: int,
        move: bool,
        timeout: float | None,
        method: str | None = None,
    ) -> None:
        """Qdrant's `replicate_shard` (`move`: `move_shard`): `target` gets a replica of
        `shard`, dead until it has caught up from the shard's leader; a move then drops the
        `source` replica. A replica `target` holds already is copied again (as Qdrant's
        transfer to a peer with the shard replaces its copy)."""

        def change(state: ClusterState, record: CollectionRecord) -> tuple[Placement, list[Any]]:
            replicas = _replicas(record, shard, name)
            _peer_exists(state, target)
            _peer_exists(state, source)
            if source not in replicas:
                raise BadRequest(f"Bad request: Shard {shard} is not present on peer {source}")
            _no_conflicting_transfer(state, record, shard, {source, target})
            if target in replicas and move:
                raise BadRequest(f"Bad request: Shard {shard} is already present on peer {target}")
            if (name, record.uuid, shard, source) in state.dead:
                raise BadRequest(
                    f"Bad request: Shard {shard} on peer {source} is not active and cannot be "
                    "the source of a transfer"
                )
            placed = replicas if target in replicas else [*replicas, target]
            placement = {**record.shards, shard: placed}
            # Partial from the start, naming the peer asked for as the source, as Qdrant's
            # transfer start does in the same consensus operation.
            mark: dict[str, Any] = {"at": 0, "transfer": source}
            if method is not None:
                mark["method"] = method
            more = [put_op(self.store.dead_key(name, record.uuid, shard, target), mark)]
            if move:
                key = self.store.move_key(name, record.uuid, shard, target)
                more.append(put_op(key, {"from": source}))
            return placement, more

        with _etcd():
            revision = self.store.change_replicas(name, change)
        self.wait_applied(revision, timeout)

    def drop_replica(
        self,
        name: str,
        shard: int,
        peer: int,
        timeout: float | None,
        min_other_active: int | None = None,
    ) -> None:
        """Qdrant's `drop_replica`: the peer's replica leaves the placement (its files go);
        with `min_other_active`, only while that many other replicas are active (checked
        against the same state the drop changes)."""

        def change(state: ClusterState, record: CollectionRecord) -> tuple[Placement, list[Any]]:
            replicas = _replicas(record, shard, name)
            _peer_exists(state, peer)
            if peer not in replicas:
                raise BadRequest(f"Bad request: Shard {shard} is not present on peer {peer}")
            rest = [p for p in replicas if p != peer]
            active = [p for p in rest if (name, record.uuid, shard, p) not in state.dead]
            if min_other_active is not None and len(active) < min_other_active:
                raise BadRequest(
                    f"Bad request: Cannot drop the replica of shard {shard} on peer {peer}: "
                    f"{len(active)} other replicas are active, at least {min_other_active} "
                    "are required"
                )
            if not active:
                raise BadRequest(
                    f"Bad request: Shard {shard} must keep at least one active replica"
                )
            return {**record.shards, shard: rest}, _forget(self.store, name, record, shard, peer)

        with _etcd():
            revision = self.store.change_replicas(name, change)
        self.wait_applied(revision, timeout)

    def abort_transfer(
        self, name: str, shard: int, source: int, target: int, timeout: float | None
    ) -> None:
        """Qdrant's `abort_transfer`: a replica still catching up (from `source`) is dropped."""

        def change(state: ClusterState, record: CollectionRecord) -> tuple[Placement, list[Any]]:
            replicas = record.shards.get(shard, [])
            if target not in replicas or (name, record.uuid, shard, target) not in state.dead:
                raise _no_transfer(name, shard, source, target)
            rest = [p for p in replicas if p != target]
            if not rest:
                raise BadRequest(f"Bad request: Shard {shard} must keep at least one replica")
            return {**record.shards, shard: rest}, _forget(self.store, name, record, shard, target)

        with _etcd():
            revision = self.store.change_replicas(name, change)
        self.wait_applied(revision, timeout)

    def finish_move(self, name: str, shard: int, target: int) -> None:
        """After the replica of a moved shard on `target` caught up: the source goes."""
        incarnation = self.incarnation(name)
        source = self.moves.get((name, incarnation or "", shard, target))
        if source is None:
            return

        def change(state: ClusterState, record: CollectionRecord) -> tuple[Placement, list[Any]]:
            replicas = _replicas(record, shard, name)
            rest = [p for p in replicas if p != source] or replicas
            more = _forget(self.store, name, record, shard, source)
            more.append(delete_op(self.store.move_key(name, record.uuid, shard, target)))
            return {**record.shards, shard: rest}, more

        with _etcd():
            self.store.change_replicas(name, change)

    def shard_keys(self, name: str) -> dict[str | int, tuple[int, ...]]:
        """Custom sharding: the shards of each shard key."""
        record = self.collections.get(name)
        return dict(record.shard_keys) if record is not None else {}

    def create_shard_key(
        self,
        name: str,
        key: str | int,
        shards_number: int | None,
        replication_factor: int | None,
        peers: list[int] | None,
        timeout: float | None,
        partial: bool = False,
    ) -> None:
        """Qdrant's `create_sharding_key`: `shards_number` new shards (default: the
        collection's `shard_number`) for `key`, each with `replication_factor` replicas
        (default: the collection's) on `peers` (default: every live peer); `partial`: the
        key starts Partial (initial_state), until `activate_shard_key`."""
        made: list[tuple[tuple[str | int, tuple[int, ...]], ...]] = []

        def change(state: ClusterState, record: CollectionRecord) -> tuple[Placement, list[Any]]:
            params = record.config.get("create", {}).get("params", {})
            if params.get("sharding_method") != "custom":
                raise BadRequest(AUTO_SHARDING)
            if any(existing == key for existing, _ in record.shard_keys):
                raise BadRequest(
                    f"Bad request: Sharding key {key} already exists for collection {name}"
                )
            candidates = set(state.peers) | {self.peer_id}
            if peers is not None:
                if not peers:
                    raise BadRequest(
                        f"Bad request: Sharding key {key} placement cannot be empty. If you "
                        "want to use random placement, do not specify placement"
                    )
                for peer in peers:
                    _peer_exists(state, peer)
                candidates = set(peers)
            number = shards_number or int(params.get("shard_number") or 1)
            factor = replication_factor or int(params.get("replication_factor") or 1)
            # Qdrant numbers a key's shards from its holder's highest id + 1, the highest of
            # none being 0: the first key's shards are 1, 2, ...
            first = max(record.next_shard, max(record.shards, default=0) + 1)
            placed = place(number, factor, candidates)
            new = {first + shard: replicas for shard, replicas in placed.items()}
            made[:] = [(*record.shard_keys, (key, tuple(sorted(new))))]
            return {**record.shards, **new}, []

        with _etcd():
            revision = self.store.change_replicas(
                name,
                change,
                lambda record: made[0],
                lambda record: (*record.partial_keys, key) if partial else record.partial_keys,
            )
        self.wait_applied(revision, timeout)
        self.sync_peers(revision, timeout)

    def activate_shard_key(self, name: str, key: str | int, timeout: float | None) -> None:
        """A Partial shard key becomes Active (Qdrant: once `replicate_points` filled it)."""
        if key not in self.partial_keys(name):
            return

        def change(state: ClusterState, record: CollectionRecord) -> tuple[Placement, list[Any]]:
            return dict(record.shards), []

        with _etcd():
            revision = self.store.change_replicas(
                name, change, None, lambda record: tuple(k for k in record.partial_keys if k != key)
            )
        self.wait_applied(revision, timeout)
        self.sync_peers(revision, timeout)

    def partial_keys(self, name: str) -> frozenset[str | int]:
        """Custom sharding: the shard keys created Partial and not yet activated."""
        record = self.collections.get(name)
        return frozenset(record.partial_keys) if record is not None else frozenset()

    def delete_shard_key(self, name: str, key: str | int, timeout: float | None) -> None:
        """Qdrant's `drop_sharding_key`: the key's shards and their points go."""
        kept: list[tuple[tuple[str | int, tuple[int, ...]], ...]] = []

        def change(state: ClusterState, record: CollectionRecord) -> tuple[Placement, list[Any]]:
            params = record.config.get("create", {}).get("params", {})
            if params.get("sharding_method") != "custom":
                raise BadRequest(AUTO_SHARDING)
            found = [ids for existing, ids in record.shard_keys if existing == key]
            if not found:
                raise BadRequest(
                    f"Bad request: Sharding key {key} does not exist for collection {name}"
                )
            gone = set(found[0])
            kept[:] = [tuple((k, ids) for k, ids in record.shard_keys if k != key)]
            placement = {s: p for s, p in record.shards.items() if s not in gone}
            more = [
                op
                for shard in sorted(gone)
                for peer in record.shards.get(shard, [])
                for op in _forget(self.store, name, record, shard, peer)
            ]
            return placement, more

        with _etcd():
            revision = self.store.change_replicas(name, change, lambda record: kept[0])
        self.wait_applied(revision, timeout)
        # As after creating one: a read through another peer right after the answer must
        # not still find the key (and its shards, whose replicas are going).
        self.sync_peers(revision, timeout)

    def transfers(self, name: str) -> list[tuple[int, int, int, bool]]:
        """Transfers running or asked for: (shard, from, to, whether a move). A replica that
        waits to catch up (dead, no source streaming to it yet) is none, as in Qdrant, whose
        transfers are listed from the moment they start."""
        incarnation = self.incarnation(name)
        out = []
        for shard, replicas in sorted(self.placement(name).items()):
            active = [p for p in replicas if self.is_alive(p) and self.is_active(name, shard, p)]
            for peer in replicas:
                if active and self.is_alive(peer) and not self.is_active(name, shard, peer):
                    source = self.transfer_source(name, shard, peer)
                    if source is None:
                        continue
                    replica = (name, incarnation or "", shard, peer)
                    out.append((shard, source, peer, replica in self.moves))
        return out

    def problem(self) -> str | None:
        """Why this peer is not following the cluster right now; None when it is."""
        return self.membership.error or self.watch_error


AUTO_SHARDING = "Bad request: Shard Key cannot be created with Auto sharding method"


def _with_source(
    partial: dict[tuple[str, str, int, int], int],
    replica: tuple[str, str, int, int],
    source: int | None,
) -> dict[tuple[str, str, int, int], int]:
    """A copy of `partial` where `replica` streams from `source` (None: from nothing)."""
    rest = {r: s for r, s in partial.items() if r != replica}
    return rest if source is None else {**rest, replica: source}


def _no_conflicting_transfer(
    state: ClusterState, record: CollectionRecord, shard: int, peers: set[int]
) -> None:
    """Qdrant's check_transfer_conflicts: a running transfer of the shard from or to one of
    `peers` refuses another."""
    for (name, incarnation, at, to), source in sorted(state.partial.items()):
        if (name, incarnation, at) != (record.name, record.uuid, shard):
            continue
        if to in record.shards.get(shard, []) and peers & {source, to}:
            raise BadRequest(
                f"Bad request: Shard {shard} is already involved in transfer {source} -> {to}"
            )


def _with_method(
    methods: dict[tuple[str, str, int, int], str],
    replica: tuple[str, str, int, int],
    method: str | None,
) -> dict[tuple[str, str, int, int], str]:
    """A copy of `methods` where `replica`'s transfer has `method` (None: none recorded)."""
    rest = {r: m for r, m in methods.items() if r != replica}
    return rest if method is None else {**rest, replica: method}


def _replicas(record: CollectionRecord, shard: int, name: str) -> list[int]:
    replicas = record.shards.get(shard)
    if replicas is None:
        raise BadRequest(f"Bad request: Shard {shard} of {name} does not exist")
    return list(replicas)


def _peer_exists(state: ClusterState, peer: int) -> None:
    """A member of the cluster: registered now, or holding replicas while it is away (not
    removed)."""
    placed = any(
        peer in replicas
        for record in state.collections.values()
        for replicas in record.shards.values()
    )
    if peer in state.removed or (peer not in state.peers and not placed):
        raise BadRequest(f"Bad request: Peer {peer} does not exist")


def _no_transfer(name: str, shard: int, source: int | None, target: int | None) -> NotFound:
    return NotFound(
        f"Not found: Shard transfer {source} -> {target} for collection {name}:{shard} does "
        "not exist"
    )


def _forget(
    store: MetadataStore, name: str, record: CollectionRecord, shard: int, peer: int
) -> list[Any]:
    """The etcd operations that drop a replica's dead mark and a move to it."""
    return [
        delete_op(store.dead_key(name, record.uuid, shard, peer)),
        delete_op(store.move_key(name, record.uuid, shard, peer)),
    ]


def seconds(value: float) -> str:
    """A number of seconds as Qdrant prints its `Duration::as_secs_f64()`: 30, 2.5."""
    return f"{value:g}"


@contextmanager
def _etcd() -> Iterator[None]:
    """etcd out of reach fails a metadata change with 503, nothing changed."""
    try:
        yield
    except EtcdUnavailable as exc:
        raise ServiceUnavailable(
            f"Service unavailable: cluster metadata (etcd) unreachable: {exc}"
        ) from None
