"""The table of contents: which collections exist on disk, created and dropped atomically.

Layout: `<storage>/collections/<name>/config.json` plus the collection's shard directory.
A collection is created in a `:creating-*` directory and renamed into place, and dropped by
renaming it to `:deleting-*` before removal, so a crash never leaves half a collection that
refuses to start; leftovers of either kind are removed at start-up. A collection restored
from a snapshot replaces the old one through a journaled swap (tessera.storage.swap), which
start-up completes before it removes the leftovers.

Aliases (tessera.storage.aliases) are other names for collections, kept in
`<storage>/aliases.json`: `get` resolves them, so an alias works wherever a collection name
does; an alias and a collection never share a name, and dropping a collection drops its
aliases.

Snapshots (tessera.storage.snapshots) live under `snapshots_path`, `<storage>/snapshots` by
default.

Cluster mode (`join_cluster`, tessera.cluster): creating, changing and dropping collections,
payload indexes and named vectors, and alias actions go to the cluster's metadata in etcd;
this table applies them (as every node's does) when the cluster service's watch delivers
them, through the same local code as standalone (`_create_local`, `_delete_local`, the
alias table, the shard's index and vector name operations), and a request returns once this
node has applied its change.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import time
import unicodedata
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from tessera.cluster.metadata import CollectionRecord
from tessera.cluster.service import ClusterService
from tessera.collection import issues, vector_names, writes
from tessera.collection.collection import Collection, UpdateResult, read_config, write_config
from tessera.collection.distributed import ClusterCollection
from tessera.collection.shard_directory import LocalShards
from tessera.collection.strict_mode import forbid
from tessera.collection_config import NAME_FORBIDDEN, CollectionConfig, apply_update
from tessera.config_json import decode_update
from tessera.config_model import UpdateCollection
from tessera.errors import (
    BadRequest,
    Conflict,
    ServiceUnavailable,
    TesseraError,
    UnprocessableEntity,
    alias_name_taken,
    collection_exists,
    collection_not_found,
)
from tessera.fileformat import FormatError
from tessera.fsutil import mkdir_durable, rename_durable, rmtree_durable
from tessera.memory import release_free_memory
from tessera.shard import operations as ops
from tessera.shard.holder import SegmentHolder
from tessera.shard.vector_schema import params_from_json, params_json, same_schema, set_params
from tessera.storage import swap
from tessera.storage.aliases import (
    AliasAction,
    AliasTable,
    CreateAlias,
    DeleteAlias,
    planned_aliases,
)
from tessera.storage.snapshots import SnapshotStore, peer_id

log = logging.getLogger(__name__)

# Staging directories start with a character no collection name may contain.
_STAGING = ":"
# A new collection needs its config, directories and first WAL segment.
_MIN_FREE_TO_CREATE = 1 << 20


def validate_collection_name(name: str) -> None:
    """Qdrant's rule: 1-255 characters, none of `<>:"/\\|?*`, NUL or 0x1F."""
    if not 1 <= len(name) <= 255:
        raise UnprocessableEntity(
            "Validation error in path parameters: [name: length must be between 1 and 255]"
        )
    for ch in name:
        if ch in NAME_FORBIDDEN:
            raise UnprocessableEntity(
                f"Validation error in path parameters: [name: collection name cannot contain "
                f'"{ch}" char]'
            )
    check_no_control_chars(name)
    if len(name.encode()) > 255:  # the collection's directory name: a file system limit
        raise UnprocessableEntity(
            "Validation error in path parameters: [name: collection name must be at most "
            "255 bytes in UTF-8]"
        )
    if name in (".", ".."):
        raise UnprocessableEntity(
            "Validation error in path parameters: [name: collection name cannot be `.` or `..`]"
        )


def check_no_control_chars(name: str) -> None:
    """Qdrant refuses a collection name holding a control character (a tab, a newline) on
    every collection route, with a 422."""
    if not name.isprintable() and any(unicodedata.category(ch) == "Cc" for ch in name):
        raise UnprocessableEntity(
            "Validation error in path parameters: [name: collection name cannot contain "
            "control characters]"
        )


# How long a lookup waits for a collection being replaced (`TableOfContents.install`):
# closing the old one and opening the new one, seconds at most for a large collection.
_REPLACE_WAIT_S = 60.0


class TableOfContents:
    def __init__(
        self,
        storage: Path,
        snapshots_path: Path | None = None,
        recovery_mode: str | None = None,
    ) -> None:
        """`recovery_mode` (Qdrant's `storage.recovery_mode`, a message): the collections
        found are opened as metadata only, to be listed and deleted; every other operation
        on them fails with the message. Collections created later are whole."""
        self.root = storage / "collections"
        self.recovery_mode = recovery_mode
        self.storage = storage
        self.cluster: ClusterService | None = None
        # `storage.max_collections`: a create beyond it is refused (None: no limit).
        self.max_collections: int | None = None
        # `service.jwt_rbac` / `hide_jwt_dashboard` as configured, for `/telemetry`.
        self.service_flags: dict[str, bool | None] = {}
        # Set from the start of `join_cluster`: collections are opened sharded over peers.
        self._sharding: ClusterService | None = None
        self._peer_id: int | None = None
        mkdir_durable(self.root)
        self._lock = threading.Lock()
        self.collections: dict[str, Collection] = {}  # guarded by _lock for changes
        # Collections being replaced (`install`): a lookup that finds the name missing in
        # that window waits for the new one instead of answering 404.
        self._replacing: dict[str, threading.Event] = {}
        swap.roll_forward(self.root)
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(_STAGING):
                # Never acknowledged (creating) or already confirmed to the user (deleting).
                rmtree_durable(entry)
                continue
            if not entry.is_dir():
                continue
            # A damaged collection is loaded as such (listed, reporting why), never skipped
            # and never a reason for the others not to load.
            if recovery_mode is not None:
                self.collections[entry.name] = Collection(entry.name, entry, None, recovery_mode)
                continue
            self.collections[entry.name] = self._open(entry.name, entry, None)
        # Loading read and freed file-sized buffers (checksums, arrays, graphs) that glibc
        # would keep in its heap: the resident set of a large store after open, not its peak.
        release_free_memory()
        self.aliases = AliasTable(storage, self.collections)
        self.snapshots = SnapshotStore(self, storage, snapshots_path or storage / "snapshots")
        # Points a standalone sharded collection holds in its own shard (written before its
        # shards were local shards) move to them before anything is served.
        for collection in self.collections.values():
            if isinstance(collection, ClusterCollection):
                try:
                    collection.adopt_local_points()
                except Exception:  # its catch-up thread retries
                    log.exception("collection %s: moving points to its shards", collection.name)

    @property
    def following(self) -> ClusterService | None:
        """The cluster service this node follows from the start of `join_cluster` (`cluster`
        is set once it has joined): peers may call this node as soon as it is registered."""
        return self._sharding

    def join_cluster(self, service: ClusterService) -> None:
        """Cluster mode from now on: reconcile with the cluster's metadata and follow it.
        Every collection is opened again as a collection sharded over the cluster's peers
        (tessera.collection.distributed)."""
        self._sharding = service
        with self._lock:
            for name, collection in list(self.collections.items()):
                if collection.recovery is not None:
                    continue  # recovery mode: its data stays unloaded (the operator's reason)
                collection.close()
                self.collections[name] = self._open(name, collection.path, None)
        service.start(self)
        self.cluster = service
        self._step_aside_in_recovery(service)
        for collection in list(self.collections.values()):
            if isinstance(collection, ClusterCollection) and collection.failure is None:
                try:
                    collection.fence_after_crash()
                except TesseraError as exc:  # etcd away: its catch-up goes on later
                    log.error("collection %s: %s", collection.name, exc.message)
        self._adopt_local_points()

    def _step_aside_in_recovery(self, service: ClusterService) -> None:
        """In recovery mode this peer's replicas hold nothing loaded: they are marked dead,
        so that no peer sends them reads or writes, and they catch up from the others once
        the node runs without recovery mode."""
        for name, collection in list(self.collections.items()):
            if collection.recovery is None:
                continue
            for shard, replicas in service.placement(name).items():
                if service.peer_id not in replicas:
                    continue
                try:
                    service.set_replica_state(name, shard, service.peer_id, active=False)
                except TesseraError as exc:  # etcd away: its peers mark it at their next write
                    log.error("collection %s: shard %d not marked: %s", name, shard, exc.message)

    def _adopt_local_points(self, timeout: float = 30.0) -> None:
        """Before this node serves: points its collections hold outside the cluster's shards
        (made before cluster mode) are moved to the cluster's, once the watch has applied
        the published collection (its placement); the catch-up threads retry what is left."""
        deadline = time.monotonic() + timeout
        for collection in list(self.collections.values()):
            if not isinstance(collection, ClusterCollection) or collection.failure is not None:
                continue
            if not collection.shard.holder.live_count():
                continue
            while not self._adopted(collection) and time.monotonic() < deadline:
                if not collection.shard.holder.live_count():
                    break
                time.sleep(0.1)

    @staticmethod
    def _adopted(collection: ClusterCollection) -> int:
        """`adopt_local_points`, 0 when it failed: a peer not ready for the writes yet (a
        shard's leader not reached) is asked again, not left for after this node serves."""
        try:
            return collection.adopt_local_points()
        except Exception:
            log.exception("collection %s: moving local points to the cluster", collection.name)
            return 0

    def _open(self, name: str, path: Path, config: CollectionConfig | None) -> Collection:
        """The collection in `path`: sharded over the cluster's peers in cluster mode; on a
        standalone node, one local shard per `shard_number` (as Qdrant makes them)."""
        if self._sharding is not None:
            return ClusterCollection(name, path, config, self._sharding)
        shards = _shard_number(path, config)
        if shards > 1:
            if self._peer_id is None:
                self._peer_id = peer_id(self.storage)
            return ClusterCollection(name, path, config, LocalShards(self._peer_id, shards))
        return Collection(name, path, config)

    def get(self, name: str) -> Collection:
        collection = self._lookup(name)
        if collection is None:
            # Perhaps being replaced (a snapshot recovered into it): wait for the new one.
            # Looked up again whether or not a replacement was seen, since one may have
            # ended between the lookup and the look at `_replacing`.
            replacing = self._replacing.get(self.aliases.resolve(name) or name)
            if replacing is not None:
                replacing.wait(_REPLACE_WAIT_S)
            collection = self._lookup(name)
        if collection is None:
            raise collection_not_found(name)
        return collection

    def _lookup(self, name: str) -> Collection | None:
        collection = self.collections.get(name)
        if collection is None:
            target = self.aliases.resolve(name)
            if target is not None:
                collection = self.collections.get(target)
        return collection

    def exists(self, name: str) -> bool:
        """A collection or an alias of one by that name (Qdrant's `exists` answers true for an
        alias)."""
        return name in self.collections or self.aliases.resolve(name) in self.collections

    def update_aliases(self, actions: list[AliasAction], timeout: float | None = None) -> None:
        """Qdrant's alias action list, applied all or none and persisted before it returns.
        `timeout`: cluster mode's wait for this node to apply it (Qdrant's `timeout`)."""
        if self.cluster is not None:
            self.cluster.update_aliases(
                lambda table, known: planned_aliases(table, actions, known), timeout
            )
            return
        with self._lock:
            self.aliases.apply(actions, lambda name: name in self.collections)

    def restore_aliases(self, pairs: dict[str, str], force: bool) -> None:
        """A full snapshot's alias table, merged into this one (all or none)."""
        with self._lock:
            self.aliases.restore(pairs, force, lambda name: name in self.collections)

    def names(self) -> list[str]:
        return list(self.collections)

    def create(
        self,
        name: str,
        config: CollectionConfig,
        timeout: float | None = None,
        auto_shards: bool = False,
    ) -> None:
        """`timeout` and `auto_shards` (no `shard_number` asked: one shard per peer, as
        Qdrant) are for cluster mode."""
        validate_collection_name(name)
        if config.created_at is None:  # every member of a cluster keeps the same time
            config.created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.cluster is not None:
            if name not in self.collections:
                self._check_count(name)
            self._check_space()
            self.cluster.create_collection(name, config.to_storage(), timeout, auto_shards)
            return
        self._create_local(name, config)

    def _check_count(self, name: str) -> None:
        """Qdrant's `storage.max_collections` check (after the one for an existing name)."""
        limit = self.max_collections
        if limit is not None and len(self.collections) >= limit:
            raise BadRequest(
                f"Bad request: Can't create collection with name {name}. Max collections "
                f"limit reached: {limit}"
            )

    def update_config(
        self, name: str, update: UpdateCollection, timeout: float | None = None
    ) -> None:
        """Qdrant's PATCH of a collection (by name or alias), all or nothing. Cluster mode
        commits the config it makes and the PATCH as JSON (`record.patch`), which every
        node applies."""
        collection = self.get(name)
        if self.cluster is None:
            collection.update_config(update)
            return

        def change(record: CollectionRecord) -> tuple[dict[str, Any], Any]:
            config = CollectionConfig.from_storage(record.config)
            apply_update(config, update)  # raises for a bad PATCH
            return config.to_storage(), update.to_json()

        self.cluster.update_collection(collection.name, change, timeout)

    # Payload indexes and named vectors: in cluster mode, consensus operations (as in
    # Qdrant): committed to the collection's record in etcd, applied by every node (this
    # one before it answers) through `apply_collection`.

    def create_field_index(
        self, collection: Collection, field: str, schema: Any, wait: bool
    ) -> UpdateResult:
        cluster = self.cluster
        if cluster is None:
            return collection.update(writes.create_field_index(field, schema), wait)

        def indexes(record: CollectionRecord) -> dict[str, Any]:
            table = self._index_table(record, collection)
            limit = collection.strict.get("max_payload_index_count")
            full = limit is not None and field not in table and len(table) >= limit
            if collection.strict.enabled and full:
                raise forbid(
                    f"Collection already has the maximum number of payload indices ({limit})",
                    "Please delete an existing index before creating a new one.",
                )
            table[field] = schema
            return table

        cluster.update_collection(collection.name, _same_config, indexes=indexes)
        return self._applied_result(collection.name, wait)

    def delete_field_index(self, collection: Collection, field: str, wait: bool) -> UpdateResult:
        cluster = self.cluster
        if cluster is None:
            return collection.update(writes.delete_field_index(field), wait)

        def indexes(record: CollectionRecord) -> dict[str, Any]:
            table = self._index_table(record, collection)
            table.pop(field, None)
            return table

        cluster.update_collection(collection.name, _same_config, indexes=indexes)
        return self._applied_result(collection.name, wait)

    def update_vector_names(
        self, collection: Collection, write: vector_names.SchemaWrite, wait: bool
    ) -> UpdateResult:
        """Add or remove a named vector (`write`: collection.vector_names)."""
        cluster = self.cluster
        if cluster is None:
            return collection.update_vector_names(write, wait)

        def change(record: CollectionRecord) -> tuple[dict[str, Any], Any]:
            config = CollectionConfig.from_storage(record.config)
            # Checked against the cluster's config, with standalone's rules and errors.
            planned = write(cast(SegmentHolder, _ConfigOnly(config)))
            if isinstance(planned, ops.CreateVectorName):
                set_params(config, planned.name, params_from_json(planned.config))
            elif isinstance(planned, ops.DeleteVectorName):
                set_params(config, planned.name, None)
            return config.to_storage(), None

        cluster.update_collection(collection.name, change, sync=True)
        return self._applied_result(collection.name, wait)

    def _index_table(self, record: CollectionRecord, collection: Collection) -> dict[str, Any]:
        if record.indexes is not None:
            return dict(record.indexes)
        return self.local_indexes(collection.name)  # a record of an older version

    def _applied_result(self, name: str, wait: bool) -> UpdateResult:
        """The answer of a change this node has applied: its collection's last operation."""
        collection = self.collections.get(name)
        seq = collection.shard.applied_seq if collection and collection.failure is None else 0
        return UpdateResult(operation_id=seq, completed=wait)

    def _create_local(self, name: str, config: CollectionConfig) -> None:
        with self._lock:
            if name in self.collections:
                raise collection_exists(name)
            self._check_count(name)
            if name in self.aliases:
                raise alias_name_taken(name)
            if (self.root / name).exists():
                raise Conflict(
                    f"Wrong input: Can't create collection with name {name}. Collection data "
                    "already exists at the path"
                )
            staging = self.root / f"{_STAGING}creating-{uuid.uuid4().hex}"
            final = self.root / name
            try:
                self._check_space()
                mkdir_durable(staging)
                write_config(staging, config)
                rename_durable(staging, final)
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    log.error("collection %s not created: No space left on device: %s", name, exc)
                    raise ServiceUnavailable(
                        f"Service unavailable: No space left on device: {exc}"
                    ) from exc
                raise
            collection = self._open(name, final, config)
            if collection.failure is not None:
                # The files could not be made (e.g. the disk filled up meanwhile): undo.
                doomed = self.root / f"{_STAGING}deleting-{uuid.uuid4().hex}"
                rename_durable(final, doomed)
                rmtree_durable(doomed)
                raise ServiceUnavailable(
                    f"Service unavailable: could not create collection: {collection.failure}"
                )
            self.collections[name] = collection

    def delete(self, name: str, timeout: float | None = None) -> bool:
        if self.cluster is not None:
            return self.cluster.delete_collection(name, timeout)
        return self._delete_local(name)

    def _delete_local(self, name: str) -> bool:
        with self._lock:
            collection = self.collections.pop(name, None)
            if collection is None:
                return False
            collection.close(flush=False)
            # After the close: a read of it that ends later files no issue (`observe`)
            issues.forget(name)
            doomed = self.root / f"{_STAGING}deleting-{uuid.uuid4().hex}"
            rename_durable(collection.path, doomed)
            # After the collection is gone: a crash between leaves aliases that start-up drops.
            self.aliases.drop_collection(name)
        rmtree_durable(doomed)
        return True

    def install(self, name: str, staging: Path) -> Collection:
        """Replace collection `name`, or create it, with the collection in `staging`: a
        complete, durable directory made by `swap.staging_dir(self.root)` and verified to load.
        A crash at any point leaves the old collection or the new one (tessera.storage.swap).

        In cluster mode the restored points are written to the cluster's collection of that
        name, whose points are deleted first, on every shard: it then holds the snapshot's
        state, as a recovered snapshot replaces Qdrant's shards. (Kept instead, they would
        mix with the snapshot's, and this node's replicas, whose files the snapshot's
        replace, would lose theirs where no other replica has them.)"""
        validate_collection_name(name)
        if self.cluster is not None:
            current = self.collections.get(name)
            if isinstance(current, ClusterCollection) and current.failure is None:
                current.update(writes.delete(writes.Matching(None)))
        with self._lock:
            replaced = self._replacing[name] = threading.Event()
            try:
                journal, aside = swap.begin(self.root, name, staging)
                old = self.collections.pop(name, None)
                if old is not None:
                    old.close(flush=False)  # replaced: its last state need not be kept
                swap.complete(self.root, name, staging, aside)
                swap.finish(journal)
                collection = self._open(name, self.root / name, None)
                self.collections[name] = collection
            finally:
                del self._replacing[name]
                replaced.set()
        if aside.exists():
            rmtree_durable(aside)
        if self.cluster is None and isinstance(collection, ClusterCollection):
            try:
                collection.adopt_local_points()  # a standalone node's own shards
            except TesseraError as exc:  # its catch-up thread retries
                log.warning("collection %s: restored points wait: %s", name, exc.message)
        if self.cluster is not None:
            existed = self.cluster.incarnation(name) is not None
            self.cluster.adopt(name)  # a restored collection is the cluster's too
            if isinstance(collection, ClusterCollection):
                # The restored points go to the cluster's shards; this node's replicas
                # (files replaced by the snapshot's) catch up from the others.
                if existed:
                    collection.forget_local_replicas()
                try:
                    collection.adopt_local_points()
                except TesseraError as exc:  # its catch-up thread goes on with it
                    log.warning("collection %s: restored points wait: %s", name, exc.message)
        return collection

    # ------------------------------------------------------------------ cluster.LocalNode

    def local_collections(self) -> list[str]:
        return list(self.collections)

    def local_config(self, name: str) -> dict[str, Any] | None:
        collection = self.collections.get(name)
        if collection is None or collection.failure is not None:
            return None
        return collection.stored_config()

    def local_indexes(self, name: str) -> dict[str, Any]:
        collection = self.collections.get(name)
        if collection is None or collection.failure is not None:
            return {}
        with collection.shard.read() as holder:
            return dict(holder.index_schemas)

    def files_lost(self, name: str) -> None:
        collection = self.collections.get(name)
        if isinstance(collection, ClusterCollection):
            collection.files_lost()
            if self.cluster is not None:  # joined already (else join_cluster fences it)
                collection.fence_after_crash()

    def apply_collection(self, record: CollectionRecord) -> None:
        config = CollectionConfig.from_storage(record.config)
        existing = self.collections.get(record.name)
        if existing is None:
            self._create_local(record.name, config)
            existing = self.collections[record.name]
        if existing.failure is not None:
            return  # a damaged collection is left for an operator, as in standalone mode
        self._apply_vectors(existing, config)
        self._apply_config(record, config)
        self._apply_indexes(self.collections[record.name], record.indexes)
        applied = self.collections[record.name]
        if isinstance(applied, ClusterCollection):
            try:
                applied.adopt_local_points()
            except Exception:  # retried by the collection's catch-up thread
                log.exception("collection %s: moving local points to the cluster", record.name)

    def _apply_vectors(self, collection: Collection, config: CollectionConfig) -> None:
        """Create and drop named vectors to match the cluster's config (data and indexes
        included, as standalone's named vector operations do)."""
        local = collection.config
        wanted: dict[str, Any] = {**config.vectors, **config.sparse_vectors}
        present: dict[str, Any] = {**local.vectors, **local.sparse_vectors}
        for name in present.keys() - wanted.keys():
            collection.update_vector_names(vector_names.delete_vector_name(name))
        for name, params in wanted.items():
            current = present.get(name)
            if current is not None and same_schema(current, params):
                continue
            if current is not None:  # another space under that name: made again
                collection.update_vector_names(vector_names.delete_vector_name(name))
            collection.update_vector_names(
                vector_names.create_vector_name(name, params_json(params))
            )

    def _apply_indexes(self, collection: Collection, wanted: dict[str, Any] | None) -> None:
        """Create and drop payload indexes to match the cluster's (None: not tracked)."""
        if wanted is None or collection.failure is not None:
            return
        present = self.local_indexes(collection.name)
        for field in present.keys() - wanted.keys():
            collection.apply_schema_write(writes.delete_field_index(field))
        for field, schema in wanted.items():
            if present.get(field) != schema:
                # Not collection.update: strict mode was checked by the node that took it.
                collection.apply_schema_write(writes.create_field_index(field, schema))

    def _apply_config(self, record: CollectionRecord, config: CollectionConfig) -> None:
        existing = self.collections[record.name]
        wanted = config.to_storage()
        if existing.config.to_storage() == wanted:
            return
        if record.patch is not None:
            try:
                existing.update_config(decode_update(record.patch))
            except Exception:  # the full config below still brings it in line
                log.exception("patch of collection %s failed; replacing its config", record.name)
        if existing.config.to_storage() != wanted:
            # Changes missed while away: the committed config replaces the local one.
            with self._lock:
                existing.close()
                write_config(existing.path, config)
                self.collections[record.name] = self._open(record.name, existing.path, None)

    def drop_local(self, name: str, keep_data: bool) -> None:
        if not keep_data:
            self._delete_local(name)
            return
        with self._lock:
            collection = self.collections.pop(name)
            collection.close()
            issues.forget(name)
            stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            aside = self.storage / "cluster-orphans" / f"{name}-{stamp}"
            mkdir_durable(aside.parent)
            rename_durable(collection.path, aside)
            self.aliases.drop_collection(name)
        log.error(
            "local collection %s is not (or no longer) the cluster's collection of that name; "
            "its files were moved to %s, not deleted",
            name,
            aside,
        )

    def apply_aliases(self, table: dict[str, str]) -> None:
        current = dict(self.aliases.items())
        actions: list[AliasAction] = [
            DeleteAlias(alias) for alias, target in current.items() if table.get(alias) != target
        ]
        actions += [
            CreateAlias(target, alias)
            for alias, target in table.items()
            if current.get(alias) != target
        ]
        if actions:
            with self._lock:
                self.aliases.apply(actions, lambda name: name in self.collections)

    def _check_space(self) -> None:
        free = shutil.disk_usage(self.root).free
        if free < _MIN_FREE_TO_CREATE:
            log.error("collection not created: No space left on device: %d bytes free", free)
            raise ServiceUnavailable(
                f"Service unavailable: No space left on device: {free} bytes free"
            )

    def close(self) -> None:
        with self._lock:
            for collection in self.collections.values():
                collection.close()


def _shard_number(path: Path, config: CollectionConfig | None) -> int:
    """The collection's `shard_number` (1 when its config cannot be read: the collection
    then loads as a damaged one and says why)."""
    try:
        found = config if config is not None else read_config(path)
    except FormatError:
        return 1
    return int(found.params_extra.get("shard_number") or 1)


class _ConfigOnly:
    """What a named vector change's check reads of a shard: its config (here, the
    cluster's)."""

    def __init__(self, config: CollectionConfig) -> None:
        self.config = config


def _same_config(record: CollectionRecord) -> tuple[dict[str, Any], Any]:
    return record.config, None
