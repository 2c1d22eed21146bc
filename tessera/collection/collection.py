"""One collection: its persisted config and its (single, local) shard.

Writes are logged and fsynced before they are acknowledged in either wait mode; Tessera
applies an operation before answering even with `wait=false`, which is a stronger promise
than Qdrant's and answers the same shape (`acknowledged`).

A collection whose files cannot be loaded without losing data silently is *damaged*: it is
listed, its info says why (status red), every other request on it answers 500 with the
reason, and its files stay untouched for an operator (or `tessera check`) to look at. The
other collections are not affected.

`config.json` is a checked JSON file (tessera.fileformat) of kind CONFIG_KIND.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from tessera.collection import issues, quota, reads
from tessera.collection.hw_usage import HardwareCounters
from tessera.collection.no_wait import NO_WAIT, WouldWait
from tessera.collection.strict_mode import StrictMode
from tessera.collection.values import (
    NOTHING,
    CollectionInfo,
    FacetHit,
    Group,
    Lookup,
    Matrix,
    PayloadIndexInfo,
    Points,
    ScrollPage,
    SearchParams,
    Selection,
    ShardSelector,
    VectorInput,
)
from tessera.collection.vector_names import SchemaWrite, apply_schema_change
from tessera.collection.writes import Planned, Write
from tessera.collection_config import (
    CollectionConfig,
    apply_update,
    custom_sharding,
    deferred_limit,
)
from tessera.config_model import UpdateCollection
from tessera.errors import (
    BadRequest,
    InternalError,
    NotFound,
    bad_input,
    collection_not_found,
    no_shard_key_nor_fallback,
    shard_key_not_found,
)
from tessera.execution.query_batch import execute_many
from tessera.execution.query_exec import Context, ExternalVectors, execute
from tessera.execution.query_groups import (
    distance_matrix,
    execute_groups,
    matrix_rows,
    sample_ids,
)
from tessera.execution.query_vectors import space_of, stored_vector
from tessera.fileformat import FormatError, read_checked_json, write_checked_json
from tessera.ids import PointId, parse_point_id
from tessera.query import query_model as qm
from tessera.query.filter_model import Filter
from tessera.segment.field_index import parse_field_schema
from tessera.shard import operations as ops
from tessera.shard import read
from tessera.shard.errors import ShardClosed
from tessera.shard.explain import Explain
from tessera.shard.facet import facet
from tessera.shard.follower import ShardFollower
from tessera.shard.holder import SegmentHolder
from tessera.shard.optimizer import optimizations_disabled
from tessera.shard.search import Run, VectorQuery, search_run
from tessera.shard.shard import LocalShard, ShardDamaged
from tessera.shard.vector_schema import schema_json

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
CONFIG_KIND = "tessera/collection-config"
CONFIG_VERSION = 1


def write_config(path: Path, config: CollectionConfig) -> None:
    write_checked_json(path / CONFIG_NAME, CONFIG_KIND, CONFIG_VERSION, config.to_storage())


def read_config(path: Path) -> CollectionConfig:
    """The config of the collection in `path`; FormatError when missing or damaged."""
    config_path = path / CONFIG_NAME
    try:
        body = read_checked_json(config_path, CONFIG_KIND, (CONFIG_VERSION,))
    except FormatError as damaged:
        try:
            orjson.loads(config_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            raise damaged from None
        raise FormatError(
            f"{config_path} is from an older Tessera, whose data files are no longer "
            "readable; re-create the collection"
        ) from None
    try:
        return CollectionConfig.from_storage(body)
    except Exception as exc:
        raise FormatError(f"{config_path}: not a collection config ({exc})") from None


@dataclass(frozen=True)
class UpdateResult:
    operation_id: int
    completed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "operation_id": reads.qdrant_operation(self.operation_id),
            "status": "completed" if self.completed else "acknowledged",
        }


# Another collection by name (the table of contents' `get`): for `lookup_from` and
# `with_lookup`, which read other collections, each under its own lock.
Collections = Callable[[str], "Collection"]


def _kept(write: Write, built: list[ops.Record]) -> Write:
    """`write`, keeping the record it builds in `built` (for the hardware counters)."""

    def keeping(holder: SegmentHolder) -> Any:
        record = write(holder)
        if record is not None:
            built.append(record)
        return record

    return keeping


class Collection:
    """Executes every request on the collection: writes through `update`, reads through the
    methods below, each of which takes the shard's read lock, runs the request and answers
    plain values (tessera.collection.values) with the selection applied."""

    def __init__(
        self,
        name: str,
        path: Path,
        config: CollectionConfig | None,
        recovery: str | None = None,
        shard_dir: str = "shard",
        follow: bool = False,
    ) -> None:
        """Loads the collection's shard (`path / shard_dir`); `config` None: read it from
        `path`. `follow`: a read-only copy of a collection another process owns (its shard a
        `ShardFollower`, see tessera.shard.follower): only its reads are ever called.
        Never raises for damaged files: the collection is then marked damaged
        (`failure`). `recovery` (Qdrant's recovery mode, its message): the config only,
        no shard; every operation but deleting fails with the message."""
        started = time.monotonic()
        self.name = name
        self.path = path
        # Accumulated by `update`, for /telemetry's `hardware` (tessera.collection.hw_usage).
        self.hardware = HardwareCounters()
        # Serializes what changes the config and rewrites config.json (PATCH, vector
        # names): each applies to the live config and writes it whole.
        self._config_lock = threading.Lock()
        self._closed = False  # set under _config_lock: no config write after close
        self.failure: str | None = None
        self.recovery = recovery
        self._shard: LocalShard | None = None
        try:
            self.config = config if config is not None else read_config(path)
            if recovery is not None:
                self.failure = recovery
                self._finish_init(started)
                return
            if follow:
                # Reads take the follower as they take a LocalShard (`read()`); nothing
                # else of a LocalShard is called on a followed collection.
                self._shard = cast(LocalShard, ShardFollower(path / shard_dir, self.config))
                self._finish_init(started)
                return
            stored_schema = schema_json(self.config)
            self._shard = LocalShard(path / shard_dir, self.config)
            if schema_json(self.config) != stored_schema:
                # Vector names changed by the checkpoint and the replayed WAL: config.json
                # follows once a checkpoint holds them (see collection.vector_names).
                self._write_config_after_checkpoint()
        except (FormatError, ShardDamaged) as exc:
            self.failure = str(exc)
            log.error("collection %s is damaged and will not serve: %s", name, exc)
        except Exception as exc:  # an unexpected failure must not take the server down
            self.failure = f"failed to load: {exc!r}"
            log.exception("collection %s failed to load", name)
        self._finish_init(started)

    def _finish_init(self, started: float) -> None:
        if self.failure is not None and not hasattr(self, "config"):
            self.config = CollectionConfig(vectors={}, sparse_vectors={}, unnamed=False)
        self.strict = StrictMode(self.config.strict_mode_config)
        # How long opening took (loading the shard and replaying its WAL, or creating it):
        # Qdrant's telemetry `init_time_ms`.
        self.init_time_ms = int((time.monotonic() - started) * 1000)

    def _recovery_error(self) -> InternalError:
        """What every operation on a collection loaded in recovery mode answers: Qdrant's
        dummy shard's service error, which names the recovery message."""
        return InternalError(
            f"Service internal error: collection `{self.name}` is not loaded in "
            f"recovery mode: {self.recovery}"
        )

    @property
    def shard(self) -> LocalShard:
        if self._shard is None and self.recovery is not None:
            raise self._recovery_error()
        if self._shard is None:
            raise InternalError(
                f"Service internal error: collection `{self.name}` is damaged and cannot "
                f"serve: {self.failure}"
            )
        return self._shard

    @property
    def damage(self) -> list[str]:
        """What is wrong with this collection, for its info; empty when healthy."""
        if self._shard is None:
            return [self.failure or "not loaded"]
        return self._shard.problems()

    def update(
        self, write: Write, wait: bool = True, logged: list[bytes] | None = None
    ) -> UpdateResult:
        """Log and apply one write (tessera.collection.writes); the operation id is the
        collection's. `logged`: gets the WAL record written, if any."""
        if NO_WAIT.get() and deferred_limit(self.config) is not None:
            raise WouldWait  # it may wait for the optimizer: not on the event loop
        if self.strict.enabled:
            write = self._strict_write(write)
        limits = self._quota()
        if limits.config.get("enabled"):
            write = self._quota_write(write, limits)
        built: list[ops.Record] = []
        try:
            seq = self.shard.update(_kept(write, built), logged)
        except ShardClosed:  # deleted while the write came in: as if it had come after
            raise collection_not_found(self.name) from None
        except NotFound as exc:
            if wait:
                raise
            # A point the write names is missing (the others are written): Qdrant answers a
            # write it does not wait for before it runs, and only logs this failure.
            log.warning("collection %s: update without wait failed: %s", self.name, exc.message)
            return UpdateResult(operation_id=self.shard.applied_seq, completed=False)
        if built:  # counted once the write is logged and applied, never failing it
            try:
                self.hardware.add_write(built[0])
            except Exception:
                log.exception("collection %s: hardware usage of a write not counted", self.name)
        self._await_deferred(wait)
        return UpdateResult(operation_id=seq, completed=wait)

    def apply_schema_write(self, write: Write) -> int:
        """A payload index change the cluster committed (no strict mode or quota: the node
        that took it checked them), on every local shard."""
        return self.shard.update(write)

    def _quota(self) -> quota.QuotaManager:
        found: quota.QuotaManager | None = getattr(self, "_quota_manager", None)
        if found is None:
            found = self._quota_manager = quota.manager(self.path.parent)
        return found

    def _quota_write(self, write: Write, limits: quota.QuotaManager) -> Write:
        """`write` refused, before it is logged, when it adds data while the global quota
        (`PUT /quotas`) is reached."""
        asked = write.asked if isinstance(write, Planned) else None

        def checked(holder: SegmentHolder) -> Any:
            if asked is not None:
                if isinstance(asked, quota.GROWS):
                    limits.check_update()
                return write(holder)
            record = write(holder)
            if isinstance(record, quota.GROWS):
                limits.check_update()
            return record

        return checked

    def _strict_write(self, write: Write) -> Write:
        """`write` with strict mode's checks, run under the write lock before it is logged:
        on what it asks when that is known up front, else on the points it resolved to."""
        asked = write.asked if isinstance(write, Planned) else None
        filt = write.filter if isinstance(write, Planned) else None

        def checked(holder: SegmentHolder) -> Any:
            if asked is not None:
                self.strict.check_write(holder, self.config, asked, filt)
                return write(holder)
            # The filter is checked before it selects the points: a refused one must not
            # scan the collection under the write lock first.
            self.strict.check_timeout()
            self.strict.check_filter(holder, filt, write=True)
            record = write(holder)
            self.strict.check_write(holder, self.config, record, filt)
            return record

        return checked

    def _verify(self, check: Callable[[SegmentHolder], None]) -> None:
        """Run a strict mode check of a read under the read lock; nothing when it is off."""
        if self.strict.enabled:
            with self.shard.read() as holder:
                check(holder)

    def _await_deferred(self, wait: bool, timeout: float = 600.0) -> None:
        """prevent_unoptimized: a write with wait=true returns once the points it deferred
        are visible, i.e. once the optimizer has indexed their segment, as in Qdrant."""
        if not wait or deferred_limit(self.config) is None or optimizations_disabled(self.config):
            return  # (with optimizations disabled nothing deferred would ever show)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.shard.read() as holder:
                if all(s.deferred_from() is None for s in holder.segments):
                    return
            self.shard.optimizer.poke()
            time.sleep(0.05)

    def deferred_points(self) -> int:
        """Points stored but not yet visible (prevent_unoptimized): Qdrant's
        `update_queue.deferred_points`."""
        if self.failure is not None or deferred_limit(self.config) is None:
            return 0
        with self.shard.read() as holder:
            return sum(s.live_count() - s.visible_count() for s in holder.segments)

    def _write_config_after_checkpoint(self) -> None:
        try:
            self.shard.flush(force=True)
        except ShardClosed:  # deleted meanwhile: its directory is gone
            return
        except Exception:  # the WAL and the manifests still hold the schema
            log.exception("checkpoint of collection %s failed", self.name)
            return
        write_config(self.path, self.config)

    def update_vector_names(self, write: SchemaWrite, wait: bool = True) -> UpdateResult:
        """Add or remove a named vector (collection.vector_names)."""
        with self._config_lock:
            if self._closed:
                raise collection_not_found(self.name)
            try:
                seq, changed = apply_schema_change(self.shard, write)
            except ShardClosed:  # deleted while the change came in
                raise collection_not_found(self.name) from None
            if changed:
                write_config(self.path, self.config)
        if changed:
            self.shard.optimizer.poke()
        return UpdateResult(operation_id=seq, completed=wait)

    def stored_config(self) -> dict[str, Any]:
        """The config as stored, read under the config lock: a PATCH or a vector name change
        rewrites it in place, and a copy taken meanwhile failed ("dictionary changed size")."""
        with self._config_lock:
            return self.config.to_storage()

    def update_config(self, update: UpdateCollection) -> None:
        """Validate the whole update on a copy first, so a bad PATCH changes nothing."""
        with self._config_lock:
            if self._closed:  # deleted while the PATCH came in
                raise collection_not_found(self.name)
            trial = copy.deepcopy(self.config)
            apply_update(trial, update)
            strict_before = self.config.strict_mode_config
            shard = self.shard
            apply_update(self.config, update)
            write_config(self.path, self.config)
            if self.config.strict_mode_config is not strict_before:
                self.strict.configure(self.config.strict_mode_config)
        with shard.lock.write():
            for segment in shard.holder.segments:
                segment.generation += 1  # cached masks: prevent_unoptimized may have changed
        shard.optimizer.poke()

    def wait_optimized(self, timeout: float = 3600.0) -> None:
        """Block until the optimizer has nothing left to do; TimeoutError after `timeout`."""
        optimizer = self.shard.optimizer
        deadline = time.monotonic() + timeout
        optimizer.poke()
        while optimizer.pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"collection {self.name} still optimizing")
            time.sleep(0.1)

    # ------------------------------------------------------------------- reads

    def require_loaded(self) -> None:
        """Raise the recovery-mode error for a collection loaded as metadata only: Qdrant's
        dummy shard has no info to give either (telemetry still lists it, as damaged)."""
        if self.recovery is not None:
            raise self._recovery_error()

    def info(self) -> CollectionInfo:
        damage = self.damage
        if self.failure is not None:
            # Damaged and not loaded: reported (status red, the reason), not failed.
            return CollectionInfo("red", damage, 0, 0, 0, self.config, {})
        with self.shard.read() as holder:
            # The points reads can see: prevent_unoptimized's deferred points are counted in
            # `update_queue.deferred_points` instead, as Qdrant counts them.
            points = sum(s.visible_count() for s in holder.segments)
            segments = len(holder.segments)
            indexed = sum(s.indexed_vector_count() for s in holder.segments)
            schema: dict[str, PayloadIndexInfo] = {}
            for key, raw in holder.index_schemas.items():
                count = sum(
                    idx.points_count()
                    for idx in (s.field_index(key) for s in holder.segments)
                    if idx is not None
                )
                schema[key] = PayloadIndexInfo(parse_field_schema(raw).to_json(), count)
        optimizing = self.shard.optimizer.pending()
        status = "red" if damage else "yellow" if optimizing else "green"
        return CollectionInfo(
            status, damage, points, indexed, max(segments, 1), self.config, schema
        )

    def summary(self) -> dict[str, Any]:
        """This shard's part of a sharded collection's info (plain values, for the wire)."""
        info = self.info()
        return {
            "status": info.status,
            "damage": info.damage,
            "points": info.points_count,
            "indexed_vectors": info.indexed_vectors_count,
            "segments": info.segments_count,
            "indexed_points": {k: v.points for k, v in info.payload_schema.items()},
        }

    def retrieve(self, ids: list[PointId], select: Selection) -> Points:
        """The points among `ids` that exist, each once, in the order first asked for."""
        self.strict.check_retrieve(len(ids))
        with self.shard.read() as holder:
            return reads.points(read.retrieve(holder, ids), select, self.config.unnamed)

    def scroll(
        self,
        filt: Filter | None,
        offset: PointId | None,
        limit: int,
        select: Selection,
        order_by: qm.OrderBy | None = None,
    ) -> ScrollPage:
        """One page in id order from `offset` and the next page's first id; or, with
        `order_by`, the first `limit` points by that payload value (no next page)."""
        self._verify(lambda h: self.strict.check_scan(h, filt, limit))
        unnamed = self.config.unnamed
        with issues.watch(self, [filt]), self.shard.read() as holder:
            if order_by is not None:
                rows = read.scroll_by_payload(
                    holder, filt, order_by.key, order_by.descending, order_by.start_from, limit
                )
                return ScrollPage(reads.ordered_points(rows, select, unnamed), None)
            refs, next_id = read.scroll_by_id(holder, filt, offset, limit)
            return ScrollPage(reads.points(refs, select, unnamed), next_id)

    def count(self, filt: Filter | None, exact: bool) -> int:
        self._verify(lambda h: self.strict.check_scan(h, filt, exact=exact))
        with issues.watch(self, [filt]), self.shard.read() as holder:
            return read.count(holder, filt, exact)

    def facet(
        self,
        key: str,
        filt: Filter | None,
        limit: int,
        exact: bool,
        checked_limit: int | None = None,
    ) -> list[FacetHit]:
        """`checked_limit`: the limit the request gave, for strict mode (None: the default
        applies, unchecked, as in Qdrant)."""
        self._verify(lambda h: self.strict.check_scan(h, filt, checked_limit, exact))
        with issues.watch(self, [filt]), self.shard.read() as holder:
            hits = facet(holder, key, filt, limit, exact)
        return [FacetHit(value, count) for value, count in hits]

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
        """Nearest neighbours of one vector (`POST /points/search`), best first."""
        return self._search(query, filt, limit, offset, score_threshold, params, select, None)

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
        """`search`, with what it did (`"explain": true`, see `explain_query`)."""
        explain = Explain()
        points = self._search(query, filt, limit, offset, score_threshold, params, select, explain)
        return points, explain.to_json()

    def _search(
        self,
        query: VectorInput,
        filt: Filter | None,
        limit: int,
        offset: int,
        score_threshold: float | None,
        params: SearchParams,
        select: Selection,
        explain: Explain | None,
    ) -> Points:
        if self.strict.enabled:  # (`_verify`'s test: no closure made per search when off)
            self._verify(lambda h: self.strict.check_search(h, query, filt, limit, params))
        vector = VectorQuery(query.using, query.kind, query.value)
        report = None
        if explain is not None:
            report = explain.query("", "nearest")
            report.using, report.limit, report.filtered = query.using, limit, filt is not None
            report.exact, report.hnsw_ef = params.exact, params.hnsw_ef
        # `issues.watch(self, [filt])` spelled out (every search passes here): the read timed
        # from before the lock to after it, then looked at, unless it failed.
        started = time.perf_counter() if filt is not None else 0.0
        with self.shard.read() as holder:
            hits = search_run(
                holder,
                vector,
                filt,
                limit,
                offset,
                score_threshold,
                params.exact,
                params.hnsw_ef,
                params.quantization,
                params.idf_corpus,
                params.indexed_only,
                report,
            )
            fetched = time.perf_counter() if explain is not None else 0.0
            if isinstance(hits, Run):
                points = reads.run_points(hits, select, self.config.unnamed)
            else:
                points = reads.scored_points(hits, select, self.config.unnamed)
            if explain is not None:
                explain.add("fetch", fetched)
        if started:
            issues.observe_read(self, (filt,), time.perf_counter() - started)
        return points

    def explain_query(
        self,
        plan: qm.Plan,
        select: Selection,
        others: Collections,
        resolved: ExternalVectors | None = None,
    ) -> tuple[Points, dict[str, Any]]:
        """One Query API plan, as `query` answers it, with what it did (`"explain": true`):
        a report per query of the tree (the root, then each prefetch), per segment the
        planner's choice and the time of each stage; the fetch of payloads and vectors."""
        explain = Explain()
        self._verify(lambda h: self.strict.check_plans(h, self.config, [plan]))
        external = self._external([plan], others, resolved)
        with issues.watch(self, issues.plan_filters([plan])), self.shard.read() as holder:
            ctx = Context(holder, self.config, self.name, external, explain)
            hits = execute(ctx, plan)
            started = time.perf_counter()
            points = reads.plan_points(hits, plan, select, self.config.unnamed)
            explain.add("fetch", started)
        return points, explain.to_json()

    def query(
        self,
        requests: Sequence[tuple[qm.Plan, Selection]],
        others: Collections,
        resolved: ExternalVectors | None = None,
    ) -> list[Points]:
        """Query API plans, answered together (plain exact ones in one product): per plan its
        scored records. Vectors that `lookup_from` takes from other collections are read
        first, each under that collection's lock, released before this one's is taken."""
        plans = [plan for plan, _ in requests]
        self._verify(lambda h: self.strict.check_plans(h, self.config, plans))
        external = self._external(plans, others, resolved)
        unnamed = self.config.unnamed
        with issues.watch(self, issues.plan_filters(plans)), self.shard.read() as holder:
            ctx = Context(holder, self.config, self.name, external)
            found = execute_many(ctx, plans)
            return [
                reads.plan_points(hits, plan, select, unnamed)
                for hits, (plan, select) in zip(found, requests, strict=True)
            ]

    def query_groups(
        self,
        plan: qm.Plan,
        select: Selection,
        lookup: Lookup | None,
        others: Collections,
        resolved: ExternalVectors | None = None,
    ) -> list[Group]:
        """A groups request; with `lookup`, each group whose id is a point id there gets that
        point's record (read after this collection's lock is released)."""
        self._verify(lambda h: self.strict.check_plans(h, self.config, [plan]))
        external = self._external([plan], others, resolved)
        unnamed = self.config.unnamed
        with issues.watch(self, issues.plan_filters([plan])), self.shard.read() as holder:
            ctx = Context(holder, self.config, self.name, external)
            groups = [
                Group(gid, reads.scored_points(hits, select, unnamed))
                for gid, hits in execute_groups(ctx, plan)
            ]
        return self._with_lookup(groups, lookup, others)

    def _with_lookup(
        self, groups: list[Group], lookup: Lookup | None, others: Collections
    ) -> list[Group]:
        """`with_lookup`: each group whose id is a point id there gets that point's record."""
        if lookup is None:
            return groups
        try:
            other = others(lookup.collection)
        except NotFound:  # Qdrant's words for a missing lookup collection (as lookup_from)
            raise NotFound(f"Not found: Collection {lookup.collection} not found") from None
        wanted: dict[int, PointId] = {}
        for i, group in enumerate(groups):
            try:
                wanted[i] = parse_point_id(group.id)
            except BadRequest:  # a group value that is no point id has no lookup
                continue
        found = {r.id: r for r in other.retrieve(list(wanted.values()), lookup.select)}
        return [
            group._replace(lookup=found.get(wanted[i])) if i in wanted else group
            for i, group in enumerate(groups)
        ]

    def distance_matrix(self, using: str, filt: Filter | None, sample: int, limit: int) -> Matrix:
        self._check_matrix(using, filt, sample, limit)
        with self.shard.read() as holder:
            ctx = Context(holder, self.config, self.name, {})
            ids, rows = distance_matrix(ctx, using, filt, sample, limit)
        return Matrix(ids, rows)

    def _check_matrix(self, using: str, filt: Filter | None, sample: int, limit: int) -> None:
        """A distance matrix's request: 400 for a vector name the collection lacks (as
        Qdrant), then strict mode's limit on the scan."""
        space_of(self.config, using)
        self._verify(lambda h: self.strict.check_scan(h, filt, sample * limit))

    def matrix_sample(
        self, using: str, filt: Filter | None, size: int
    ) -> tuple[int, list[PointId]]:
        """One shard's part of a distance matrix's sample: (matching points, up to `size`
        of their ids drawn uniformly)."""
        with self.shard.read() as holder:
            ctx = Context(holder, self.config, self.name, {})
            return sample_ids(ctx, using, filt, size)

    def matrix_rows(self, using: str, vectors: list[Any], limit: int) -> list[Any]:
        """A distance matrix's rows over `vectors` (IDF statistics from this shard)."""
        with self.shard.read() as holder:
            ctx = Context(holder, self.config, self.name, {})
            return matrix_rows(ctx, using, vectors, limit)

    def stored_vectors(
        self, name: str, ids: Iterable[PointId], missing_ok: bool = False
    ) -> dict[PointId, Any]:
        """Vector `name` of each point, as a query input; 404 when a point or its vector is
        absent (`missing_ok`: left out instead)."""
        with self.shard.read() as holder:
            if not missing_ok:
                return {pid: stored_vector(holder, name, pid) for pid in ids}
            found = {}
            for pid in ids:
                try:
                    found[pid] = stored_vector(holder, name, pid)
                except NotFound:
                    continue
            return found

    def local_replicas(self) -> list[Collection]:
        """The shards this node holds of the collection, each as a collection of one shard
        (this one, unless the collection is sharded over peers)."""
        return [self]

    def with_shards(self, selector: ShardSelector | None) -> Collection:
        """This collection as a request with `shard_key` sees it: the shards of those keys
        (custom sharding, tessera.collection.distributed). A collection of one local shard
        has no shard keys."""
        if selector is None:
            return self
        if selector.fallback is not None:
            raise no_shard_key_nor_fallback(selector.keys[0], selector.fallback)
        raise shard_key_not_found(selector.keys[0])

    def for_write(self, selector: ShardSelector | None) -> Collection:
        """Where a point write with `shard_key` goes: this collection as `selector` selects
        it. A custom-sharded collection has shards only under shard keys (Qdrant creates
        none with it), so a write naming no key finds no shard: Qdrant's `split_by_shard`
        over the empty keyless ring. Checked before the write runs, as Qdrant routes a
        write before it applies any of it."""
        if selector is None and custom_sharding(self.config):
            raise bad_input("No shards found for shard key")
        return self.with_shards(selector)

    def _external(
        self, plans: list[qm.Plan], others: Collections, resolved: ExternalVectors | None = None
    ) -> ExternalVectors:
        """The vectors of `lookup_from` points, read from their collections; `resolved`:
        read already (by the peer that fans a query out to this shard)."""
        if resolved is not None:
            return resolved
        found: ExternalVectors = {}
        for (name, vector), ids in reads.external_inputs(plans, self.name).items():
            try:
                source = others(name)
            except NotFound:  # Qdrant's words for a missing `lookup_from` collection
                raise NotFound(f"Not found: Collection {name} not found") from None
            for pid, value in source.stored_vectors(vector, ids).items():
                found[(name, vector, pid)] = value
        for plan in plans:  # after the reads, as Qdrant checks them
            qm.check_node(plan.root)
        return found

    @property
    def closed(self) -> bool:
        """Closed: deleted or replaced (its reads may still be finishing)."""
        return self._closed

    def close(self, flush: bool = True) -> None:
        # Under the config lock: a PATCH or a vector name change in flight writes its
        # config.json first, none after (the directory may be removed next).
        with self._config_lock:
            self._closed = True
            if self._shard is not None:
                self._shard.close(flush=flush)
