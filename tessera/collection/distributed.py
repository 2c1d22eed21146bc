"""A collection whose points are spread over the cluster's peers (cluster mode).

Shards: a point id maps to shard `shard_of(id) % shard_number` (a stable hash of the id, the
same on every peer); the placement in etcd (tessera.cluster.placement) says which peers hold
a replica of each shard. This peer keeps its replicas as local shards in
`<collection>/shard-<k>/`, each run by a `Collection` over that directory ("part"), with the
same config; `<collection>/shard` (the base class's own shard) holds no points here and
carries the schema (vector names, payload index schemas) like every part does.

Reads: any peer takes a read, runs it on one active replica of each shard (its own when it
holds one, else a live peer's, over the p2p port) and merges the answers
(tessera.collection.merge): scores, order_by values, scroll pages, counts and facet counts.
A fusion at the root of a query fuses the merged prefetch results of the whole collection, so
ranks are the collection's, not a shard's. Vector inputs given as point ids are read first
(from whichever shard holds the point) and sent with the query.

Writes (primary-backup, one order per shard): the peer that takes a write splits it by shard
(tessera.collection.writes.WriteSpec.split; a write by filter goes to every shard) and sends
each part to the shard's leader, the first replica in placement order that is alive and
active. The leader, one write at a time per shard, resolves and logs the write in its WAL
(fsynced), then sends the very record it logged to every other active replica, which logs and
applies it as is; so all replicas apply the same records in the same order. The write is
acknowledged once `write_consistency_factor` replicas (the leader included) have it durable.
A replica that cannot take a record (its peer gone or failing) is marked dead in etcd and
skipped from then on, for reads and writes.

Catch-up: a peer holding a dead replica asks the shard's leader for a transfer (Qdrant's
`stream_records`): the leader, holding the shard's write order (no write interleaves), clears
the replica and streams every point to it in batches, then marks it active again. A shard
whose replicas are all dead (every copy missed something, or the only one was away) takes
the first live one back as active: it holds the most that can be had.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tessera import hw_meter
from tessera.cluster.p2p import PeerUnreachable
from tessera.cluster.placement import Placement
from tessera.collection import merge, wire, writes
from tessera.collection.collection import Collection, Collections, UpdateResult, write_config
from tessera.collection.shard_directory import ShardDirectory
from tessera.collection.values import (
    NOTHING,
    CollectionInfo,
    FacetHit,
    Group,
    Lookup,
    Matrix,
    PayloadIndexInfo,
    PayloadSelector,
    Points,
    ScrollPage,
    SearchParams,
    Selection,
    ShardKey,
    ShardSelector,
    VectorInput,
)
from tessera.collection.vector_names import SchemaWrite
from tessera.collection.writes import DenseColumn, ObjectColumn, Planned, VectorColumn, Write
from tessera.collection_config import CollectionConfig, custom_sharding
from tessera.config_model import UpdateCollection
from tessera.errors import (
    BadRequest,
    Conflict,
    LeaderMoved,
    NotFound,
    ServiceUnavailable,
    TesseraError,
    bad_input,
    no_shard_key_nor_fallback,
    point_not_found,
    shard_key_not_found,
)
from tessera.execution.query_exec import ExternalVectors
from tessera.execution.query_groups import group_rows
from tessera.execution.query_mmr import mmr_of_vectors
from tessera.execution.query_vectors import check_value, space_of, vector_at
from tessera.fileformat import write_checked_json
from tessera.fsutil import fsync_dir
from tessera.ids import PointId, id_sort_key, render_point_id
from tessera.query import fusion
from tessera.query import query_model as qm
from tessera.query.filter_model import Filter, HasId, merged
from tessera.shard import operations as ops
from tessera.shard import read

log = logging.getLogger(__name__)

TRANSFER_BATCH = 256
TRANSFER_TIMEOUT_S = 600.0
RECOVERY_PERIOD_S = 1.0
# A facet asks each shard for every value's count (the collection's top ones need them all).
ALL_VALUES = 1 << 31
# Left by a clean close (checked JSON, kind CLEAN_STOP_KIND, version 1: {"peer", "at"}).
CLEAN_STOP = "clean-stop.json"
CLEAN_STOP_KIND = "tessera/clean-stop"
# How long a replica waits for its view of replica states to include the leader's.
VIEW_WAIT_S = 5.0
# How long a write keeps following its shard's lead while a transfer or a dropped replica
# moves it, and the pause before asking again (the move reaches this peer's view by then).
LEADER_MOVE_WAIT_S = 10.0
LEADER_MOVE_PAUSE_S = 0.02
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

# The calls a peer may make on this peer's replica of a shard (tessera.api.p2p).
READS = frozenset(
    {
        "retrieve",
        "scroll",
        "count",
        "facet",
        "search",
        "query",
        "query_groups",
        "stored_vectors",
        "export",
        "matrix_sample",
        "summary",
    }
)


def shard_of(ids: Sequence[PointId], shard_number: int) -> np.ndarray[Any, Any]:
    """The shard of each id: a stable hash (the same on every peer and every run)."""
    out = np.empty(len(ids), dtype=np.int64)
    ints = [i for i, pid in enumerate(ids) if isinstance(pid, int)]
    if ints:
        values = np.fromiter((ids[i] for i in ints), dtype=np.uint64, count=len(ints))
        with np.errstate(over="ignore"):
            mixed = (values * _GOLDEN) >> np.uint64(32)
        out[ints] = (mixed % np.uint64(shard_number)).astype(np.int64)
    for i, pid in enumerate(ids):
        if not isinstance(pid, int):
            out[i] = zlib.crc32(pid.bytes) % shard_number
    return out


def _ring_of(ring: list[int]) -> Callable[[list[PointId]], np.ndarray[Any, Any]]:
    """Point ids -> their shard among `ring` (the shards of one shard key, or all)."""
    shards = np.asarray(ring, dtype=np.int64)
    return lambda ids: shards[shard_of(ids, len(shards))]


def _no_others(name: str) -> Collection:
    raise BadRequest(f"Bad request: collection {name} was to be read by the peer that asked")


class ClusterCollection(Collection):
    # A view's shard keys (`with_shards`): None reads every shard.
    _selector: ShardSelector | None = None
    _custom_warned = False

    def __init__(
        self, name: str, path: Path, config: CollectionConfig | None, cluster: ShardDirectory
    ) -> None:
        super().__init__(name, path, config)
        self.cluster = cluster
        self.me = cluster.peer_id
        self._parts: dict[int, Collection] = {}
        self._parts_lock = threading.Lock()
        self._order_locks: dict[int, threading.Lock] = {}
        # Per shard, the peer this one last saw leading it (`_claim_lead`).
        self._seen_leaders: dict[int, int] = {}
        # Per shard, how many records other peers' leads gave this replica: a transfer out of
        # it counts them before and after, so that it knows whether this peer led throughout
        self._foreign_records: dict[int, int] = {}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix=f"shards-{name}")
        if self.failure is None:
            for entry in sorted(path.glob("shard-*")):
                number = entry.name.removeprefix("shard-")
                if number.isdigit():
                    self._parts[int(number)] = Collection(name, path, None, shard_dir=entry.name)
        # A replica this peer held when it stopped without closing (a crash, kill -9) may hold
        # a record its leader logged but never gave the others: it is not trusted until it
        # caught up (`fence_after_crash`). A clean close leaves `clean-stop.json`.
        marker = path / CLEAN_STOP
        self._suspect = bool(self._parts) and not marker.exists()
        self._lost = False  # made again after this node's files of it were gone
        if marker.exists():
            marker.unlink()
            fsync_dir(path)
        self._stop = threading.Event()
        self._recovery = threading.Thread(
            target=self._recover_loop, name=f"catch-up-{name}", daemon=True
        )
        self._recovery.start()

    # ------------------------------------------------------------------ placement

    def placement(self) -> Placement:
        placement = self.cluster.placement(self.name)
        if not placement and not custom_sharding(self.config):
            raise ServiceUnavailable(
                f"Service unavailable: collection {self.name} has no shard placement yet"
            )
        return placement

    # ------------------------------------------------------------------ shard keys

    def with_shards(self, selector: ShardSelector | None) -> Collection:
        if selector is None:
            return self
        view = copy.copy(self)
        view._selector = selector
        return view

    def _keys(self, write: bool = False) -> list[ShardKey]:
        """The shard keys the request names (a fallback stands in for a missing target, and
        for a Partial one: reads go to the fallback only, writes to both, as Qdrant routes
        them while a tenant is promoted); Qdrant's errors for keys the collection does not
        have."""
        selector = self._selector
        assert selector is not None
        known = self.cluster.shard_keys(self.name)
        if selector.fallback is not None:
            target, fallback = selector.keys[0], selector.fallback
            partial = target in self.cluster.partial_keys(self.name)
            if target in known and not partial:
                return [target]
            if fallback in known:
                return [target, fallback] if partial and write else [fallback]
            if partial:
                raise ServiceUnavailable(
                    f"Service unavailable: Neither target shard key {target} nor fallback "
                    f"shard key {fallback} have active replicas"
                )
            raise no_shard_key_nor_fallback(target, fallback)
        for key in selector.keys:
            if key not in known:
                raise shard_key_not_found(key)
        return list(selector.keys)

    def _read_shards(self) -> list[int]:
        """The shards a read runs on: every shard, or those of the request's shard keys."""
        placement = self.placement()
        if self._selector is None:
            return sorted(placement)
        mapping = self.cluster.shard_keys(self.name)
        wanted = {shard for key in self._keys() for shard in mapping.get(key, ())}
        return sorted(wanted & set(placement))

    def _write_rings(self) -> list[list[int]]:
        """The shards a write spreads its points over: one ring per shard key named (each
        point goes to one shard of each); without a key, every shard (auto sharding)."""
        placement = self.placement()
        if self._selector is None:
            if custom_sharding(self.config) or not placement:
                # Qdrant's keyless hash ring always exists; with custom sharding it is empty.
                # `for_write` refuses such a write before it runs; this covers a write that
                # reaches `update` unrouted, and a collection with no shard placed.
                raise bad_input("No shards found for shard key")
            return [sorted(placement)]
        mapping = self.cluster.shard_keys(self.name)
        return [sorted(mapping[key]) for key in self._keys(write=True)]

    def _by_point(self, ids: list[PointId]) -> dict[int, list[PointId]]:
        """Which shards to ask for these points: each point's own (auto sharding), or, with
        shard keys, every shard read (a point's shard depends on the key it was written
        with)."""
        if self._selector is not None or custom_sharding(self.config):
            return dict.fromkeys(self._read_shards(), ids)
        placement = self.placement()
        asked: dict[int, list[PointId]] = {}
        for pid, shard in zip(ids, shard_of(ids, len(placement)).tolist(), strict=True):
            asked.setdefault(shard, []).append(pid)
        return asked

    def _part(self, shard: int) -> Collection:
        """This peer's replica of `shard`, made (empty) when the placement put one here."""
        if self.failure is not None:
            self.shard  # noqa: B018 - raises the collection's damage, nothing is opened
        with self._parts_lock:
            part = self._parts.get(shard)
            if part is None:
                if self.me not in self.placement().get(shard, []):
                    raise NotFound(
                        f"Not found: shard {shard} of collection {self.name} has no replica "
                        f"on peer {self.me}"
                    )
                part = Collection(
                    self.name, self.path, copy.deepcopy(self.config), shard_dir=f"shard-{shard}"
                )
                if part.failure is not None:
                    part.close(flush=False)
                    raise ServiceUnavailable(
                        f"Service unavailable: replica of shard {shard} could not be made: "
                        f"{part.failure}"
                    )
                # The payload indexes the collection has (its own shard keeps them).
                with self.shard.read() as holder:
                    schemas = dict(holder.index_schemas)
                for field, schema in schemas.items():
                    part.apply_schema_write(writes.create_field_index(field, schema))
                self._parts[shard] = part
            return part

    def local_replicas(self) -> list[Collection]:
        return [part for _, part in sorted(self.local_parts().items())]

    def local_parts(self) -> dict[int, Collection]:
        """This peer's replicas that the placement still names."""
        placement = self.cluster.placement(self.name)
        with self._parts_lock:
            return {k: p for k, p in self._parts.items() if self.me in placement.get(k, [])}

    def _active(self, shard: int, peer: int) -> bool:
        return self.cluster.is_active(self.name, shard, peer)

    def _serving(self, shard: int, replicas: list[int] | None = None) -> list[int]:
        """The peers whose replica of `shard` serves (alive, active), in placement order;
        `replicas`: the shard's replicas as already read from the placement."""
        if replicas is None:
            replicas = self.placement().get(shard, [])
        return [p for p in replicas if self.cluster.is_alive(p) and self._active(shard, p)]

    def _readers(self, shard: int) -> list[int]:
        """Peers that may answer a read of `shard`, this one first."""
        usable = self._serving(shard)
        if self.me in usable:
            usable.remove(self.me)
            usable.insert(0, self.me)
        return usable

    def _leader(self, shard: int) -> int | None:
        serving = self._serving(shard)
        return serving[0] if serving else None

    def _order_lock(self, shard: int) -> threading.Lock:
        with self._parts_lock:
            return self._order_locks.setdefault(shard, threading.Lock())

    # ------------------------------------------------------------------ peers

    def _call(
        self, peer: int, shard: int, method: str, args: tuple[Any, ...], **kwargs: Any
    ) -> Any:
        timeout = kwargs.pop("_timeout", None)
        body = wire.encode(
            {
                "collection": self.name,
                "uuid": self.cluster.incarnation(self.name),
                # What this peer knows of the cluster: the callee first catches up to it.
                "view": self.cluster.view(),
                "shard": shard,
                "method": method,
                "args": list(args),
                "kwargs": kwargs,
            }
        )
        answer = self.cluster.p2p.call(self.cluster.peer_uri(peer), "shard", body, timeout)
        return wire.decode(answer)

    def _on_shard(self, shard: int, method: str, args: tuple[Any, ...], **kwargs: Any) -> Any:
        """Run read `method` on one active replica of `shard`: this peer's, else a live
        peer's (the next one when a peer cannot be reached)."""
        readers = self._readers(shard)
        if not readers:
            raise ServiceUnavailable(
                f"Service unavailable: no active replica of shard {shard} of collection {self.name}"
            )
        failure: ServiceUnavailable | None = None
        for peer in readers:
            if peer == self.me:
                return self._keyed(shard, self._local_read(shard, method, args, kwargs, _no_others))
            try:
                return self._keyed(shard, self._call(peer, shard, method, args, **kwargs))
            except ServiceUnavailable as exc:  # gone, busy, or still catching up: the next
                failure = exc
        assert failure is not None
        raise failure

    def _keyed(self, shard: int, found: Any) -> Any:
        """Custom sharding: the points of a shard's answer carry its shard key."""
        if not custom_sharding(self.config):
            return found
        key = next(
            (k for k, ids in self.cluster.shard_keys(self.name).items() if shard in ids), None
        )
        for points in _points_in(found):
            points.shard_keys = [key] * len(points)
        return found

    def _local_read(
        self,
        shard: int,
        method: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        others: Collections,
    ) -> Any:
        part = self._part(shard)
        if method == "export":
            return export_points(part, args[0], TRANSFER_BATCH)
        if method in ("query", "query_groups"):
            kwargs = {**kwargs, "others": others}
        return getattr(part, method)(*args, **kwargs)

    def _fan(self, calls: dict[int, Callable[[], Any]]) -> dict[int, Any]:
        """Run one call per shard, in parallel; once every call is over, the first failure
        (in shard order) is raised. Waiting for all of them matters for writes: a part that
        failed (a missing point is a 404) must not answer while another shard's part is still
        being applied, or a read right after the answer misses that part."""
        if len(calls) == 1:
            ((shard, call),) = calls.items()
            return {shard: call()}
        futures = {
            shard: self._pool.submit(hw_meter.carried(call)) for shard, call in calls.items()
        }
        wait_all(futures.values())
        return {shard: future.result() for shard, future in futures.items()}

    def _each_shard(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        shards = self._read_shards()
        if not shards:
            return []
        found = self._fan(
            {
                k: (lambda k=k: self._on_shard(k, method, args, **kwargs))  # type: ignore[misc]
                for k in shards
            }
        )
        return [found[k] for k in shards]

    def serve_shard(self, shard: int, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """A peer's call on this peer's replica of `shard` (tessera.api.p2p)."""
        if method in READS:
            if not self._active(shard, self.me):
                raise ServiceUnavailable(
                    f"Service unavailable: the replica of shard {shard} on peer {self.me} is "
                    "catching up"
                )
            return self._local_read(shard, method, args, kwargs, _no_others)
        if method == "lead_write":
            return self._lead_write(shard, *args)
        if method == "replica_apply":
            return self._replica_apply(shard, *args)
        if method == "transfer_out":
            return self._transfer_out(shard, *args)
        if method == "transfer_reset":
            part = self._part(shard)
            return part.shard.update(writes.delete(writes.Matching(None)))
        if method == "transfer_batch":
            return self._part(shard).shard.update(writes.build(args[0]))
        raise BadRequest(f"Bad request: unknown shard call {method!r}")

    # ------------------------------------------------------------------ writes

    def update(
        self, write: Write, wait: bool = True, logged: list[bytes] | None = None
    ) -> UpdateResult:
        spec = write.spec if isinstance(write, Planned) else None
        if spec is None:
            return UpdateResult(self.apply_schema_write(write), wait)
        parts: dict[int, writes.WriteSpec] = {}
        for ring in self._write_rings():
            parts.update(spec.split(ring, _ring_of(ring)))
        done = self._fan(
            {
                k: (lambda k=k, s=s: self._write_shard(k, s, wait))  # type: ignore[misc]
                for k, s in parts.items()
            }
        )
        return UpdateResult(max(done.values(), default=0), wait)

    def _write_shard(self, shard: int, spec: writes.WriteSpec, wait: bool) -> int:
        """Send one shard's part of a write to its leader; a leader that cannot be reached
        is marked dead when another replica can lead, and the next one is asked. A leader
        that no longer leads (a transfer or a dropped replica moved the lead meanwhile) is
        not an error for the client: the write goes to the new leader, as Qdrant's
        transfers do not interrupt writes (writes are idempotent: a replica that took it
        from the old leader takes the same again)."""
        unreachable = 0
        deadline = time.monotonic() + LEADER_MOVE_WAIT_S
        while True:
            leader = self._leader(shard)
            if leader is None:
                raise ServiceUnavailable(
                    f"Service unavailable: no active replica of shard {shard} of collection "
                    f"{self.name} can take writes"
                )
            try:
                if leader == self.me:
                    return self._lead_write(shard, spec, wait)
                return int(self._call(leader, shard, "lead_write", (spec, wait)))
            except LeaderMoved:
                if time.monotonic() > deadline:
                    raise
                time.sleep(LEADER_MOVE_PAUSE_S)  # for the move to reach this peer's view
            except PeerUnreachable:
                unreachable += 1
                if not [p for p in self._serving(shard) if p != leader]:
                    raise
                if unreachable > len(self.placement().get(shard, [])):
                    raise ServiceUnavailable(
                        f"Service unavailable: shard {shard} has no reachable leader"
                    ) from None
                log.warning("shard %d of %s: leader %d unreachable", shard, self.name, leader)
                self.cluster.set_replica_state(self.name, shard, leader, active=False)

    def _lead_write(self, shard: int, spec: writes.WriteSpec, wait: bool) -> int:
        try:
            part = self._part(shard)
        except NotFound:
            raise LeaderMoved(
                f"Service unavailable: shard {shard} has no replica on peer {self.me} any more"
            ) from None
        with self._order_lock(shard):
            with self._parts_lock:
                # Dropped (`_drop_unplaced`) while this write waited for the shard's order:
                # the write goes to the shard's leader now, not into a closed replica.
                dropped = self._parts.get(shard) is not part
            if dropped or not self._active(shard, self.me):
                raise LeaderMoved(
                    f"Service unavailable: the replica of shard {shard} on peer {self.me} is "
                    "not active; retry"
                )
            self._claim_lead(shard)
            logged: list[bytes] = []
            failure: NotFound | None = None
            try:
                operation = part.update(writes.build(spec), wait, logged).operation_id
            except NotFound as exc:
                if not logged:
                    raise
                # Applied here to the points found (a write naming a missing one): the
                # replicas take the same record before the 404 goes back.
                failure, operation = exc, part.shard.applied_seq
            replicas = self.placement().get(shard, [])
            acks = 1
            for peer in replicas:
                if peer == self.me or not self._active(shard, peer):
                    continue
                # Nothing logged (the write changed nothing): every replica has it.
                if not logged or self._replicate(shard, peer, logged[0]):
                    acks += 1
            needed = min(
                int(self.config.params_extra.get("write_consistency_factor") or 1), len(replicas)
            )
            if acks < needed:
                raise ServiceUnavailable(
                    f"Service unavailable: write applied on {acks} replica(s) of shard {shard}, "
                    f"fewer than the write_consistency_factor {needed}"
                )
            if failure is not None:
                raise failure
            return operation

    def _replicate(self, shard: int, peer: int, record: bytes) -> bool:
        """Give `record` to `peer`'s replica; one that cannot take it is marked dead. A
        replica that sees another leader refuses it (Conflict): this peer then no longer
        leads and the write fails, this replica marked dead (it has a record the others may
        not have; it catches up from the leader)."""
        if self.cluster.is_alive(peer):
            try:
                array = np.frombuffer(record, dtype=np.uint8)
                view = self.cluster.view()
                self._call(peer, shard, "replica_apply", (array, self.me, view))
                return True
            except Conflict as exc:
                self.cluster.set_replica_state(self.name, shard, self.me, active=False)
                raise LeaderMoved(
                    f"Service unavailable: peer {self.me} no longer leads shard {shard}: "
                    f"{exc.message}; retry"
                ) from None
            except TesseraError as exc:
                log.warning(
                    "shard %d of %s: replica on peer %d missed a write: %s",
                    shard,
                    self.name,
                    peer,
                    exc.message,
                )
        self.cluster.set_replica_state(self.name, shard, peer, active=False)
        return False

    def _replica_apply(
        self, shard: int, record: np.ndarray[Any, Any], sender: int, view: int
    ) -> int:
        """Log and apply a record from the shard's leader - only if `sender` leads the shard
        as this peer sees it once its view includes the sender's (`view`): a peer that others
        marked dead (cut off, or slow to learn it) can no longer write through replicas that
        know it, so two replicas never take diverging records as leaders."""
        if not self.cluster.wait_view(view, VIEW_WAIT_S):
            raise ServiceUnavailable(
                f"Service unavailable: peer {self.me} has not caught up with the cluster's "
                f"replica states (revision {view})"
            )
        leader = self._leader(shard)
        if leader != sender:
            raise Conflict(
                f"Conflict: peer {sender} does not lead shard {shard} of {self.name} "
                f"(peer {leader} does)"
            )
        data = bytes(record)
        self._foreign_records[shard] = self._foreign_records.get(shard, 0) + 1
        return self._part(shard).shard.update(lambda holder: ops.decode(data))

    def apply_schema_write(self, write: Write) -> int:
        seq = super().apply_schema_write(write)
        for part in list(self._parts.values()):
            if part.failure is None:
                seq = part.apply_schema_write(write)
        return seq

    def update_vector_names(self, write: SchemaWrite, wait: bool = True) -> UpdateResult:
        result = super().update_vector_names(write, wait)
        for part in list(self._parts.values()):
            if part.failure is None:
                part.update_vector_names(write, wait)
        return result

    def update_config(self, update: UpdateCollection) -> None:
        super().update_config(update)
        for part in list(self._parts.values()):
            if part.failure is None:
                part.update_config(update)

    def wait_optimized(self, timeout: float = 3600.0) -> None:
        super().wait_optimized(timeout)
        for part in list(self._parts.values()):
            if part.failure is None:
                part.wait_optimized(timeout)

    # ------------------------------------------------------------------ catch-up

    def _recover_loop(self) -> None:
        while not self._stop.wait(RECOVERY_PERIOD_S):
            try:
                self._catch_up()
            except Exception:  # retried on the next round
                log.exception("catching up replicas of %s failed", self.name)

    def forget_local_replicas(self) -> None:
        """This peer's replicas lost their files (a snapshot restored over the collection):
        each is marked dead, to catch up from an active replica elsewhere; one that has no
        other live, active replica serves again, from empty."""
        for shard, replicas in sorted(self.cluster.placement(self.name).items()):
            if self.me not in replicas:
                continue
            if [p for p in self._serving(shard, replicas) if p != self.me]:
                self.cluster.set_replica_state(self.name, shard, self.me, active=False)

    def adopt_local_points(self) -> int:
        """Points in this peer's own shard (`<collection>/shard`: a collection made before
        cluster mode, or restored from a snapshot here) are written to the cluster's shards,
        batch by batch, each deleted here once the cluster has it (a crash in between writes
        a batch twice, which changes nothing). The number of points moved."""
        if self.failure is not None or not self.cluster.placement(self.name):
            return 0
        if custom_sharding(self.config):
            # Which key each point had is not known here (snapshots do not carry it yet):
            # the points stay where they are, reported once.
            if not self._custom_warned and self.shard.holder.live_count():
                self._custom_warned = True
                log.warning(
                    "collection %s: %d points outside its shard keys' shards are not served "
                    "(custom sharding: write them again with their shard key)",
                    self.name,
                    self.shard.holder.live_count(),
                )
            return 0
        moved = 0
        while True:
            spec, _ = export_points(self, None, TRANSFER_BATCH)
            if spec is None or not isinstance(spec.points, list):
                return moved
            self.update(writes.build(spec))
            self.shard.update(writes.delete(list(spec.points)))
            moved += len(spec.points)
            log.info("collection %s: %d local points moved to the cluster", self.name, moved)

    def _claim_lead(self, shard: int) -> None:
        """This peer leads `shard` now. Where another peer led it when this one last looked
        and no longer serves it (killed, cut off, or its replica moved or dropped), that
        peer may have given its last records to some replicas only, and a write this peer takes
        again can change nothing here and so send nothing to the replicas that lack it:
        the other replicas catch up from this one (a full transfer each), so that every
        replica that serves holds what this one does."""
        before = self._seen_leaders.get(shard)
        serving = self._serving(shard)
        if before is None or before == self.me or before in serving:
            # (the lead came back to this peer by placement order from one still serving:
            # it caught up from that one, which refused it nothing meanwhile)
            self._seen_leaders[shard] = self.me
            return
        others = [p for p in serving if p != self.me]
        if others:
            log.warning(
                "shard %d of %s: peer %d leads it after peer %d; replicas %s catch up from it",
                shard,
                self.name,
                self.me,
                before,
                others,
            )
        for peer in others:
            self.cluster.set_replica_state(self.name, shard, peer, active=False)
        # Noted once every mark is written: a mark that failed (etcd away) is tried again
        # at the next claim, not left undone for good.
        self._seen_leaders[shard] = self.me

    def _watch_leads(self) -> None:
        """Note who leads each shard this peer holds a replica of (`_claim_lead`)."""
        for shard, replicas in sorted(self.cluster.placement(self.name).items()):
            if self.me not in replicas:
                continue
            leader = self._leader(shard)
            if leader == self.me:
                with self._order_lock(shard):  # not beside a write this peer leads
                    self._claim_lead(shard)
            elif leader is not None:
                # Under the shard's order too, or this could overwrite a claim a transfer
                # made meanwhile; a transfer holding it for long: noted at a later round.
                order = self._order_lock(shard)
                if order.acquire(blocking=False):
                    try:
                        leader = self._leader(shard)
                        if leader is not None and leader != self.me:
                            self._seen_leaders[shard] = leader
                    finally:
                        order.release()

    def _catch_up(self) -> None:
        for step in (
            self._watch_leads,
            self._catch_up_replicas,
            self.adopt_local_points,
            self._drop_unplaced,
        ):
            try:
                step()
            except Exception:  # the other steps go on; this one is retried next round
                log.exception("collection %s: %s failed", self.name, step.__name__)

    def _drop_unplaced(self) -> None:
        """Replicas the placement no longer names here (dropped, or moved away) are
        closed and their files removed: every shard they held is active elsewhere."""
        with self._parts_lock:
            # Read under the lock `_part` makes replicas under: a placement read before
            # would not name a replica made meanwhile for a shard placed since (a shard key
            # created and written to at once), which was then removed with its points.
            placement = self.cluster.placement(self.name)
            if not placement:
                return
            gone = [k for k in self._parts if self.me not in placement.get(k, [])]
            parts = [(k, self._parts.pop(k)) for k in gone]
        for shard, part in parts:
            with self._order_lock(shard):  # a write this replica leads finishes first
                part.close(flush=False)
            shutil.rmtree(self.path / f"shard-{shard}", ignore_errors=True)
            log.info("shard %d of %s: replica dropped from this peer", shard, self.name)

    def _catch_up_replicas(self) -> None:
        placement = self.cluster.placement(self.name)
        for shard, replicas in sorted(placement.items()):
            if self.me not in replicas or self._active(shard, self.me):
                continue
            live = [p for p in replicas if self.cluster.is_alive(p)]
            active = self._serving(shard, replicas)
            if not active:
                if any(self._active(shard, p) for p in replicas):
                    continue  # the replica that has every write is away: wait for it
                if live and live[0] == self.me:
                    log.warning(
                        "shard %d of %s: every replica is dead; this one serves again",
                        shard,
                        self.name,
                    )
                    self.cluster.set_replica_state(self.name, shard, self.me, active=True)
                continue
            leader = active[0]
            log.info("shard %d of %s: catching up from peer %d", shard, self.name, leader)
            self._part(shard)
            self._call(leader, shard, "transfer_out", (self.me,), _timeout=TRANSFER_TIMEOUT_S)
            log.info("shard %d of %s: caught up", shard, self.name)

    def _transfer_out(self, shard: int, target: int) -> int:
        """Stream this replica of `shard` to `target`'s, which is dead, holding the shard's
        write order; then mark it active. The number of points sent."""
        part = self._part(shard)
        sent = 0
        with self._order_lock(shard):
            if not self._active(shard, self.me):
                raise ServiceUnavailable(
                    f"Service unavailable: peer {self.me} holds no active replica of shard {shard}"
                )
            if self._active(shard, target):
                return 0  # caught up already (an earlier transfer that timed out for the asker)
            if self._leader(shard) == self.me:
                # Taken up now, before the target has this replica's points: were the lead
                # noted only at the next write or round, a target made active meanwhile
                # would count among the replicas an earlier leader may have left behind,
                # and be marked dead for a second transfer right after this one.
                self._claim_lead(shard)
            foreign = self._foreign_records.get(shard, 0)
            self._call(target, shard, "transfer_reset", ())
            # the target takes the stream: Partial until it is whole (Dead again if it fails);
            # a transfer asked for (replicate_shard, move_shard) is Partial already and keeps
            # the source it was asked from, as Qdrant reports it
            if self.cluster.transfer_source(self.name, shard, target) is None:
                self.cluster.set_replica_transfer(self.name, shard, target, self.me)
            try:
                offset: PointId | None = None
                while True:
                    spec, offset = export_points(part, offset, TRANSFER_BATCH)
                    if spec is not None:
                        self._call(target, shard, "transfer_batch", (spec,))
                        sent += len(spec.points) if isinstance(spec.points, list) else 0
                    if offset is None:
                        break
                # Only a peer that led throughout may say the copy is whole: another that
                # took over meanwhile may have taken writes this copy lacks - ones given to
                # this replica behind the export's cursor (counted), or ones it never got
                # (it was marked dead then) - even when the lead came back since.
                if (
                    self._leader(shard) != self.me
                    or not self._active(shard, self.me)
                    or self._foreign_records.get(shard, 0) != foreign
                ):
                    raise ServiceUnavailable(
                        f"Service unavailable: peer {self.me} did not lead shard {shard} "
                        "throughout the transfer; the replica catches up again"
                    )
            except BaseException:
                with contextlib.suppress(Exception):  # etcd away: the mark stays Partial
                    self.cluster.set_replica_state(self.name, shard, target, active=False)
                raise
            self.cluster.set_replica_state(self.name, shard, target, active=True)
            self.cluster.finish_move(self.name, shard, target)
        return sent

    # ------------------------------------------------------------------ reads

    def info(self) -> CollectionInfo:
        """The collection's info over every shard (one active replica each): points,
        indexed vectors, segments and payload index counts added up, the worst status."""
        own = super().info()
        if self.failure is not None:
            return own
        status, damage = own.status, list(own.damage)
        try:
            found = self._each_shard("summary")
        except TesseraError as exc:
            found = [part.summary() for part in self.local_replicas()]
            damage.append(exc.message)
            status = "red" if status == "red" else "yellow"
        for summary in found:
            if summary["status"] == "red" or (summary["status"] == "yellow" and status == "green"):
                status = summary["status"]
            damage.extend(summary["damage"])
        schema = {
            key: PayloadIndexInfo(
                info.schema, sum(int(s["indexed_points"].get(key, 0)) for s in found)
            )
            for key, info in own.payload_schema.items()
        }
        return CollectionInfo(
            status,
            damage,
            sum(int(s["points"]) for s in found),
            sum(int(s["indexed_vectors"]) for s in found),
            max(sum(int(s["segments"]) for s in found), 1),
            self.config,
            schema,
        )

    def local_counts(self) -> dict[int, int]:
        """Points per local replica, for cluster info."""
        return {
            k: part.info().points_count
            for k, part in self.local_parts().items()
            if part.failure is None
        }

    def retrieve(self, ids: list[PointId], select: Selection) -> Points:
        self.strict.check_retrieve(len(ids))
        asked = self._by_point(ids)
        found = self._fan(
            {
                k: (lambda k=k, part=part: self._on_shard(k, "retrieve", (part, select)))  # type: ignore[misc]
                for k, part in asked.items()
            }
        )
        if not found:
            return Points([])
        merged = merge.concat(list(found.values()))
        row = {pid: i for i, pid in reversed(list(enumerate(merged.ids)))}
        rows: list[int] = []
        seen: set[PointId] = set()
        for pid in ids:
            if pid in row and pid not in seen:
                seen.add(pid)
                rows.append(row[pid])
        return merge.take(merged, rows)

    def scroll(
        self,
        filt: Filter | None,
        offset: PointId | None,
        limit: int,
        select: Selection,
        order_by: qm.OrderBy | None = None,
    ) -> ScrollPage:
        pages = self._each_shard("scroll", filt, offset, limit, select, order_by)
        by_value = None
        if order_by is not None:
            by_value = "value_desc" if order_by.descending else "value_asc"
        return merge.scroll_pages(pages, limit, by_value)

    def count(self, filt: Filter | None, exact: bool) -> int:
        return sum(self._each_shard("count", filt, exact))

    def facet(
        self,
        key: str,
        filt: Filter | None,
        limit: int,
        exact: bool,
        checked_limit: int | None = None,
    ) -> list[FacetHit]:
        self._verify(lambda h: self.strict.check_scan(h, filt, checked_limit, exact))
        found = self._each_shard("facet", key, filt, ALL_VALUES, exact, None)
        return merge.facet_hits(found, limit)

    def search(
        self,
        query: VectorInput,
        filt: Filter | None,
        limit: int,
        offset: int = 0,
        score_threshold: float | None = None,
        params: SearchParams = SearchParams(),  # noqa: B008 - frozen
        select: Selection = NOTHING,
    ) -> Points:
        found = self._each_shard(
            "search", query, filt, limit + offset, 0, score_threshold, params, select
        )
        order = "desc" if query.kind == "sparse" else merge.nearest_order(self.config, query.using)
        return merge.sorted_points(found, order, offset, limit)

    def explain_search(
        self,
        query: VectorInput,
        filt: Filter | None,
        limit: int,
        offset: int,
        score_threshold: float | None,
        params: SearchParams,
        select: Selection,
    ) -> tuple[Points, dict[str, Any]]:
        points = self.search(query, filt, limit, offset, score_threshold, params, select)
        return points, _not_explained(len(self.placement()))

    def explain_query(
        self,
        plan: qm.Plan,
        select: Selection,
        others: Collections,
        resolved: ExternalVectors | None = None,
    ) -> tuple[Points, dict[str, Any]]:
        points = self.query([(plan, select)], others, resolved)[0]
        return points, _not_explained(len(self.placement()))

    def query(
        self,
        requests: Sequence[tuple[qm.Plan, Selection]],
        others: Collections,
        resolved: ExternalVectors | None = None,
    ) -> list[Points]:
        plans = [plan for plan, _ in requests]
        self.strict.check_timeout()
        external = {**self._external(plans, others, resolved), **self._own_inputs(plans)}
        answers: list[Points | None] = [None] * len(requests)
        simple: list[int] = []
        for i, (plan, select) in enumerate(requests):
            root = plan.root
            if isinstance(root.query, qm.Fusion) and root.prefetch:
                answers[i] = self._fused(plan, select, external)
            elif isinstance(root.query, qm.Nearest) and root.query.mmr and not root.prefetch:
                answers[i] = self._mmr(plan, select, external)
            elif root.prefetch and not isinstance(root.query, qm.FormulaQuery):
                answers[i] = self._rescored(plan, select, external)
            elif isinstance(root.query, qm.Sample):
                answers[i] = self._sampled(plan, select, external)
            else:
                simple.append(i)
        if simple:
            widened = [(_widened(requests[i][0]), requests[i][1]) for i in simple]
            per_shard = self._each_shard("query", widened, resolved=external)
            for j, i in enumerate(simple):
                plan = requests[i][0]
                answers[i] = merge.sorted_points(
                    [found[j] for found in per_shard],
                    merge.plan_order(plan, self.config),
                    plan.offset,
                    plan.root.limit,
                )
        return [a if a is not None else Points([]) for a in answers]

    def _fused(self, plan: qm.Plan, select: Selection, external: ExternalVectors) -> Points:
        """A fusion root: each prefetch over the whole collection, then fused here."""
        root = plan.root
        assert isinstance(root.query, qm.Fusion)
        sources = [
            self.query([(qm.Plan(_inherit(root, p)), select)], _no_others, external)[0]
            for p in root.prefetch
        ]
        ranked = [(list(s.ids), list(s.scores or [])) for s in sources]
        want = root.limit + plan.offset
        query = root.query
        if query.method == "rrf":
            ids, scores = fusion.rrf(ranked, limit=want, k=query.k, weights=query.weights)
        else:
            ids, scores = fusion.dbsf(ranked, limit=want)
        merged = merge.concat(sources)
        row: dict[PointId, int] = {}
        for i, pid in enumerate(merged.ids):
            row.setdefault(pid, i)
        chosen: list[int] = []
        fused: list[float] = []
        for pid, score in zip(ids.tolist(), scores.tolist(), strict=True):
            native = int(pid) if isinstance(pid, int | np.integer) else pid
            if root.score_threshold is not None and score < root.score_threshold:
                continue
            chosen.append(row[native])
            fused.append(float(score))
        out = merge.take(merged, chosen[plan.offset :])
        out.scores = fused[plan.offset :]
        return out

    def _rescored(self, plan: qm.Plan, select: Selection, external: ExternalVectors) -> Points:
        """A root query over its prefetches' results (rescoring, order_by, sample, or none):
        each prefetch over the whole collection, then the root over the union of their
        points, as one shard runs it. (A formula root needs each prefetch's scores per
        point: it runs per shard.)"""
        root = plan.root
        chosen: set[PointId] = set()
        for prefetch in root.prefetch:
            node = _inherit(root, prefetch)
            chosen.update(self.query([(qm.Plan(node), NOTHING)], _no_others, external)[0].ids)
        if not chosen:
            return Points([])
        scope = Filter(must=(HasId(frozenset(chosen)),))
        if root.filter is not None:
            scope = Filter(must=(root.filter, scope))
        alone = replace(root, prefetch=(), filter=scope)
        return self.query([(qm.Plan(alone, plan.offset), select)], _no_others, external)[0]

    def _sampled(self, plan: qm.Plan, select: Selection, external: ExternalVectors) -> Points:
        """A random sample uniform over the collection: how many points each shard gives is
        drawn from the shards' matching counts (each shard's own sample is uniform)."""
        root = plan.root
        want = root.limit + plan.offset
        shards = self._read_shards()
        if not shards:
            return Points([])
        counts = self._each_shard("count", root.filter, True)
        if not sum(counts):
            return Points([])
        widened = (_widened(plan), select)
        found = self._each_shard("query", [widened], resolved=external)
        rng = np.random.default_rng()
        taken = rng.multivariate_hypergeometric(counts, min(want, sum(counts))).tolist()
        parts = []
        for (points,), n in zip(found, taken, strict=True):
            rows = rng.choice(len(points), size=min(n, len(points)), replace=False).tolist()
            parts.append(merge.take(points, rows))
        merged = merge.concat(parts)
        order = rng.permutation(len(merged)).tolist()
        return merge.take(merged, order[plan.offset : plan.offset + root.limit])

    def _mmr(self, plan: qm.Plan, select: Selection, external: ExternalVectors) -> Points:
        """MMR at the root: the collection's nearest candidates, then the picks made here
        among all of them (a shard's picks among its own would differ)."""
        root = plan.root
        query = root.query
        assert isinstance(query, qm.Nearest)
        pool = query.mmr_candidates if query.mmr_candidates is not None else root.limit
        plain = replace(root, query=qm.Nearest(query.vector), limit=pool)
        candidates = self.query([(qm.Plan(plain), select)], _no_others, external)[0]
        if not len(candidates):
            return candidates
        space = space_of(self.config, root.using)
        if root.idf_corpus is not None:
            space = replace(space, idf_corpus=root.idf_corpus)
        stored = self.stored_vectors(root.using, candidates.ids)
        vectors = [check_value(space, stored[pid]) for pid in candidates.ids]
        target = query.vector
        if isinstance(target, qm.PointInput):
            target = external[(self.name, root.using, target.id)]
        picks = mmr_of_vectors(
            space,
            check_value(space, target),
            vectors,
            query.mmr_diversity,
            root.limit + plan.offset,
        )
        return merge.take(candidates, picks[plan.offset :])

    def _own_inputs(self, plans: list[qm.Plan]) -> ExternalVectors:
        """The stored vectors of this collection's points used as query inputs."""
        wanted: dict[str, set[PointId]] = {}
        for plan in plans:
            for node in _nodes(plan.root):
                lookup = node.lookup_from
                if lookup is not None and lookup.collection != self.name:
                    continue
                name = node.using if lookup is None or lookup.vector is None else lookup.vector
                ids = qm.referenced_ids(node.query)
                if ids:
                    wanted.setdefault(name, set()).update(ids)
        found: ExternalVectors = {}
        for name, asked in wanted.items():
            for pid, value in self.stored_vectors(name, asked).items():
                found[(self.name, name, pid)] = value
        return found

    def query_groups(
        self,
        plan: qm.Plan,
        select: Selection,
        lookup: Lookup | None,
        others: Collections,
        resolved: ExternalVectors | None = None,
    ) -> list[Group]:
        """Groups built here from the collection's merged results, best first, as one shard
        builds them (tessera.execution.query_groups): a group's hits may come from every
        shard. As there, prefetches keep every candidate and the root's results grow until
        the groups are complete or the results run out."""
        spec = plan.groups
        assert spec is not None
        external = {**self._external([plan], others, resolved), **self._own_inputs([plan])}
        total = max(self.count(None, True), 1)
        root = replace(plan.root, prefetch=tuple(_unlimited(p, total) for p in plan.root.prefetch))
        fetch = Selection(PayloadSelector(True), select.vectors)
        limit = min(total, max(64, spec.limit * spec.group_size * 4))
        while True:
            probe = qm.Plan(replace(root, limit=limit), 0, None)
            hits = self.query([(probe, fetch)], others, external)[0]
            groups, complete = group_rows(hits.payloads or [], spec)
            if complete or len(hits) < limit or limit >= total:
                break
            limit = min(total, limit * 4)
        found = []
        for gid, rows in groups:
            members = merge.take(hits, rows)
            if not select.payload.enabled:
                members.payloads = None
            elif members.payloads is not None:
                members.payloads = [select.payload.apply(p) or {} for p in members.payloads]
            found.append(Group(gid, members))
        return self._with_lookup(found, lookup, others)

    def distance_matrix(self, using: str, filt: Filter | None, sample: int, limit: int) -> Matrix:
        """A uniform sample over every shard (how many each shard gives is drawn from the
        shards' matching counts), the sampled points' vectors, then the matrix here."""
        self._check_matrix(using, filt, sample, limit)
        parts = self._each_shard("matrix_sample", using, filt, sample)
        totals = [total for total, _ in parts]
        if sum(totals) < 2:
            return Matrix([], [])
        rng = np.random.default_rng()
        wanted = min(sample, sum(totals))
        taken = rng.multivariate_hypergeometric(totals, wanted).tolist()
        ids: list[PointId] = []
        for (_, found), n in zip(parts, taken, strict=True):
            picks = rng.choice(len(found), size=n, replace=False).tolist()
            ids.extend(found[i] for i in picks)
        ids.sort(key=id_sort_key)
        vectors = self.stored_vectors(using, ids)
        rows = self._matrix_context().matrix_rows(using, [vectors[pid] for pid in ids], limit)
        return Matrix(ids, rows)

    def _matrix_context(self) -> Collection:
        """Whose statistics score a matrix: a local replica's (IDF), else this collection's
        own shard."""
        replicas = self.local_replicas()
        return replicas[0] if replicas else self

    def stored_vectors(
        self, name: str, ids: Iterable[PointId], missing_ok: bool = False
    ) -> dict[PointId, Any]:
        ids = list(ids)
        asked = self._by_point(ids)
        found = self._fan(
            {
                k: (lambda k=k, part=part: self._on_shard(k, "stored_vectors", (name, part, True)))  # type: ignore[misc]
                for k, part in asked.items()
            }
        )
        vectors = {pid: value for part in found.values() for pid, value in part.items()}
        if not missing_ok:
            for pid in ids:
                if pid not in vectors:
                    raise point_not_found(render_point_id(pid))
        return vectors

    def gathered(self, directory: Path) -> Collection:
        """A standalone copy of the whole collection in `directory` (new): every shard's
        points, read from one active replica each, with this collection's config and payload
        indexes. What a snapshot of a sharded collection holds."""
        directory.mkdir(parents=True)
        write_config(directory, self.config)
        copy_of = Collection(self.name, directory, copy.deepcopy(self.config))
        if copy_of.failure is not None:
            raise ServiceUnavailable(f"Service unavailable: {copy_of.failure}")
        with self.shard.read() as holder:
            schemas = dict(holder.index_schemas)
        for field, schema in schemas.items():
            copy_of.apply_schema_write(writes.create_field_index(field, schema))
        for shard in sorted(self.placement()):
            offset: PointId | None = None
            while True:
                spec, offset = self._on_shard(shard, "export", (offset,))
                if spec is not None:
                    copy_of.shard.update(writes.build(spec))
                if offset is None:
                    break
        return copy_of

    def files_lost(self) -> None:
        """This peer had this collection and its files were gone (`ClusterService`): every
        replica placed here is empty, however the cluster marks it, until it caught up."""
        self._lost = self._suspect = True

    def fence_after_crash(self) -> None:
        """After a stop without close, or once the files were found gone: this peer's
        replicas that have another live, active replica are marked dead, to catch up from
        their leader before they serve (the only replica of a shard serves on: it holds the
        most there is)."""
        if not self._suspect:
            return
        self._suspect = False
        for shard, replicas in sorted(self.cluster.placement(self.name).items()):
            if self.me not in replicas or (shard not in self._parts and not self._lost):
                continue
            others = [p for p in self._serving(shard, replicas) if p != self.me]
            if others and self._active(shard, self.me):
                log.warning(
                    "shard %d of %s: this peer %s; catching up first",
                    shard,
                    self.name,
                    "lost its files" if self._lost else "stopped without closing",
                )
                self.cluster.set_replica_state(self.name, shard, self.me, active=False)

    def close(self, flush: bool = True) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if threading.current_thread() is not self._recovery:
            self._recovery.join(timeout=10)
        # No write in flight: a record logged here but not yet given to the other replicas
        # must not sit under a clean-stop mark. A lock not had in time: no mark (the next
        # start catches up first).
        with self._parts_lock:
            locks = list(self._order_locks.values())
        held = [lock for lock in locks if lock.acquire(timeout=10)]
        quiet = len(held) == len(locks)
        for part in list(self._parts.values()):
            part.close(flush)
        super().close(flush)
        for lock in held:
            lock.release()
        if flush and quiet and self.failure is None and self.path.exists():
            write_checked_json(
                self.path / CLEAN_STOP, CLEAN_STOP_KIND, 1, {"peer": self.me, "at": time.time()}
            )


def _points_in(found: Any) -> list[Points]:
    """The `Points` of a read's answer (points, a scroll page, a batch of answers)."""
    if isinstance(found, Points):
        return [found]
    if isinstance(found, ScrollPage):
        return [found.points]
    if isinstance(found, list):
        return [p for p in found if isinstance(p, Points)]
    return []


def _inherit(root: qm.QueryNode, prefetch: qm.QueryNode) -> qm.QueryNode:
    """A prefetch run on its own: with the root's filter, which it inherits."""
    if root.filter is None:
        return prefetch
    return replace(prefetch, filter=merged(root.filter, prefetch.filter))


def _unlimited(node: qm.QueryNode, limit: int) -> qm.QueryNode:
    """A prefetch tree with every limit raised to `limit` (groups keep every candidate)."""
    return replace(node, limit=limit, prefetch=tuple(_unlimited(p, limit) for p in node.prefetch))


def _widened(plan: qm.Plan) -> qm.Plan:
    """`plan` for one shard: its offset added to its limit (the merge applies the offset)."""
    if not plan.offset:
        return plan
    return qm.Plan(replace(plan.root, limit=plan.root.limit + plan.offset), 0, plan.groups)


def _nodes(node: qm.QueryNode) -> list[qm.QueryNode]:
    out = [node]
    for prefetch in node.prefetch:
        out.extend(_nodes(prefetch))
    return out


def _not_explained(shards: int) -> dict[str, Any]:
    return {
        "note": f"the collection is sharded over {shards} shard(s) on several peers; "
        "per-stage timings are not collected across peers",
        "queries": [],
    }


def export_points(
    part: Collection, offset: PointId | None, limit: int
) -> tuple[writes.WriteSpec | None, PointId | None]:
    """Up to `limit` points of a replica from `offset` in id order, as an upsert of their
    stored vectors and payloads; and the next offset (None at the end)."""
    config = part.config
    with part.shard.read() as holder:
        refs, next_id = read.scroll_by_id(holder, None, offset, limit)
        if not refs:
            return None, next_id
        ids = [ref.id for ref in refs]
        payloads: list[dict[str, Any] | None] = [seg.payload_at(off) for seg, off in refs]
        columns: dict[str, VectorColumn] = {}
        for name, params in config.vectors.items():
            stored = [vector_at(seg, name, off) for seg, off in refs]
            if params.multivector:
                columns[name] = ObjectColumn(stored)
                continue
            present = np.fromiter((v is not None for v in stored), dtype=bool, count=len(stored))
            values = np.zeros((len(stored), params.size), dtype=np.float32)
            for i, value in enumerate(stored):
                if value is not None:
                    values[i] = value
            columns[name] = DenseColumn(present, values)
        for name in config.sparse_vectors:
            sparse = [vector_at(seg, name, off) for seg, off in refs]
            columns[name] = ObjectColumn(
                [None if v is None else (v[0].astype(np.int32), v[1]) for v in sparse]
            )
    spec = writes.WriteSpec("upsert", ids, (columns, payloads, None, "upsert"))
    return spec, next_id
