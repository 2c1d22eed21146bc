"""Strict mode: a collection's limits on what one request may ask, checked before it runs.

`StrictMode` holds a collection's `strict_mode_config` (tessera.collection_config parses and
merges it) and its rate limiter; the collection calls one `check_*` per request, under its
lock, before it runs anything. With `enabled` not true nothing is checked. Each check is
Qdrant's (lib/collection/src/operations/verification), in Qdrant's order and words:

- a limit a request exceeds: 400 `Bad request: Limit exceeded 8 > 4 for "limit". Help: ...`;
- a filter on a key without a suitable payload index (`unindexed_filtering_retrieve` for
  reads, `_update` for filtered writes), more conditions than `filter_max_conditions`, a
  condition bigger than `condition_max_size`, a substring match;
- `search_allow_exact: false` against `exact`, and against a vector query on a vector with
  HNSW disabled (m = 0);
- writes: batch sizes, the collection's point count, vector and payload bytes (reached
  already: the write that would cross the limit still passes, the next one does not, as in
  Qdrant), multivector and sparse vector lengths, the payload index count;
- then the read or write rate limit (tessera.collection.rate_limit): 429.

The filter and formula walks are in tessera.collection.strict_filters.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from tessera.collection import strict_filters as sf
from tessera.collection.rate_limit import RateLimiter
from tessera.collection.values import SearchParams, VectorInput
from tessera.collection_config import CollectionConfig
from tessera.config_model import rust_f32
from tessera.errors import BadRequest
from tessera.query import query_model as qm
from tessera.query.filter_model import Filter
from tessera.segment.field_index import parse_field_schema
from tessera.shard import operations as ops
from tessera.shard import read
from tessera.shard.holder import SegmentHolder
from tessera.shard.operations import DenseColumn, ObjectColumn

STRICT_PREFIX = "Bad request: "

# The `timeout` (seconds) the request being served asked for, set by its transport (REST
# `?timeout=`, a gRPC request's `timeout` field) for `max_timeout`; None when it set none.
REQUEST_TIMEOUT: ContextVar[int | None] = ContextVar("request_timeout", default=None)


def _write_cost(holder: SegmentHolder, record: ops.Record | None, filt: Filter | None) -> int:
    """A write's tokens from the write rate limit: the points it names, or for points chosen
    by a filter the filter's estimated cardinality (Qdrant's `1.max(estimate.exp)`, an
    unindexed condition counting half the points), whatever it then matches."""
    if filt is not None and not isinstance(record, ops.UpsertPoints):
        return max(1, read.count(holder, filt, exact=False))
    ids = getattr(record, "ids", None)
    return max(1, len(ids)) if ids is not None else 1


def forbid(error: str, solution: str) -> BadRequest:
    """Qdrant's strict mode error: `CollectionError::strict_mode` shown as a bad request."""
    return BadRequest(f"{STRICT_PREFIX}{error}. Help: {solution}")


def check_limit(value: float | None, limit: float | None, name: str) -> None:
    if value is None or limit is None or value <= limit:
        return
    raise forbid(
        f'Limit exceeded {_num(value)} > {_num(limit)} for "{name}"',
        f'Reduce the "{name}" parameter to or below {_num(limit)}.',
    )


def check_exact(exact: bool | None, allowed: bool | None) -> None:
    if allowed is False and exact:
        raise forbid("Exact search disabled!", "Set exact=false.")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _mib(limit: int) -> str:
    """A byte limit in MB as Rust prints an f32."""
    return rust_f32(limit / (1024.0 * 1024.0))


class StrictMode:
    """One collection's strict mode; `configure` again after a config change."""

    def __init__(self, config: dict[str, Any] | None) -> None:
        self.settings: dict[str, Any] = {}
        self.limiter = RateLimiter(None, None)
        self.payload_bytes = sf.PayloadBytes()
        self.configure(config)

    def configure(self, config: dict[str, Any] | None) -> None:
        """Take a new config; the rate buckets start full again, as a new Qdrant shard's."""
        enabled = bool(config and config.get("enabled") is True)
        self.settings = dict(config or {}) if enabled else {}
        self.limiter = RateLimiter(
            self.settings.get("read_rate_limit"), self.settings.get("write_rate_limit")
        )

    @property
    def enabled(self) -> bool:
        return bool(self.settings)

    def get(self, key: str) -> Any:
        return self.settings.get(key)

    def check_timeout(self) -> None:
        check_limit(REQUEST_TIMEOUT.get(), self.get("max_timeout"), "timeout")

    # ------------------------------------------------------------------ reads

    def check_filter(self, holder: SegmentHolder, filt: Filter | None, write: bool) -> None:
        """The filter's own limits, then (when strict mode wants it) its index coverage."""
        if filt is None or not self.enabled:
            return
        key = sf.substring_key(filt)
        if key is not None:
            raise forbid(
                f'Substring matching is not allowed, used for "{key}": it scans every value '
                "of the field, with or without an index",
                "Use a prefix match or a full-text match instead.",
            )
        limit = self.get("filter_max_conditions")
        if limit is not None and (n := sf.conditions_count(filt)) > limit:
            raise forbid(
                f"Filter condition limit reached ({n} > {limit})",
                "Reduce the amount of conditions of your filter.",
            )
        limit = self.get("condition_max_size")
        if limit is not None and (n := sf.max_condition_size(filt)) > limit:
            raise forbid(
                f"Condition size limit reached ({n} > {limit})",
                "Reduce the size of your condition.",
            )
        setting = "unindexed_filtering_update" if write else "unindexed_filtering_retrieve"
        if self.get(setting) is False:
            found = sf.unindexed_key(filt, _schemas(holder))
            if found is not None:
                raise _index_required(
                    found, "Create an index for this key or use a different filter."
                )

    def check_search_params(
        self,
        holder: SegmentHolder,
        hnsw_ef: int | None,
        exact: bool,
        oversampling: float | None,
        idf_corpus: Filter | None = None,
    ) -> None:
        """`params` of a search: oversampling, hnsw_ef, the IDF corpus filter (a read
        filter), exact; in Qdrant's order."""
        check_limit(oversampling, self.get("search_max_oversampling"), "oversampling")
        check_limit(hnsw_ef, self.get("search_max_hnsw_ef"), "hnsw_ef")
        self.check_filter(holder, idf_corpus, write=False)
        check_exact(exact, self.get("search_allow_exact"))

    def check_node_params(self, holder: SegmentHolder, node: qm.QueryNode) -> None:
        idf_corpus = getattr(node, "idf_corpus", None)
        quant = node.quantization
        oversampling = (
            quant.oversampling if quant is not None and quant.oversampling != 1.0 else None
        )
        self.check_search_params(holder, node.hnsw_ef, node.exact, oversampling, idf_corpus)

    def check_search(
        self,
        holder: SegmentHolder,
        query: VectorInput,
        filt: Filter | None,
        limit: int,
        params: SearchParams,
    ) -> None:
        """`POST /points/search` (and each search of a batch)."""
        if not self.enabled:
            return
        self.check_timeout()
        check_limit(limit, self.get("max_query_limit"), "limit")
        self.check_filter(holder, filt, write=False)
        q = params.quantization
        oversampling = q.oversampling if q.oversampling != 1.0 else None
        self.check_search_params(holder, params.hnsw_ef, params.exact, oversampling)
        self.limiter.check_read(sf.similarity_cost(query.value, query.kind) + sf.filter_cost(filt))

    def check_plans(
        self, holder: SegmentHolder, config: CollectionConfig, plans: list[qm.Plan]
    ) -> None:
        """Query API plans (and the searches, recommendations and discoveries turned into
        them): each plan's tree, then one read charge for the lot."""
        if not self.enabled:
            return
        self.check_timeout()
        if len(plans) > 1:
            check_limit(len(plans), self.get("search_max_batchsize"), "search batch size")
        for plan in plans:
            root, groups = plan.root, plan.groups
            if groups is not None and groups.query_api:
                # Qdrant's `/query/groups`: the query and the grouping key first, its
                # prefetches not looked at, then `limit` x `group_size` as the limit
                self._check_node(holder, config, root, root_of_plan=True, prefetches=False)
                self._check_group_by(holder, groups.group_by)
                limit = groups.limit * groups.group_size
            else:
                # (the older `/search/groups` and `/recommend/groups`: their `limit` only)
                self._check_node(holder, config, root, root_of_plan=True)
                limit = root.limit if groups is None else groups.limit
            check_limit(limit, self.get("max_query_limit"), "limit")
            self.check_filter(holder, root.filter, write=False)
            self.check_node_params(holder, root)
        self.limiter.check_read(sum(sf.node_cost(plan.root) for plan in plans))

    def _check_node(
        self,
        holder: SegmentHolder,
        config: CollectionConfig,
        node: qm.QueryNode,
        root_of_plan: bool,
        prefetches: bool = True,
    ) -> None:
        for prefetch in node.prefetch if prefetches else ():
            self._check_node(holder, config, prefetch, root_of_plan=False)
            check_limit(prefetch.limit, self.get("max_query_limit"), "limit")
            self.check_filter(holder, prefetch.filter, write=False)
            self.check_node_params(holder, prefetch)
        if node.query is None:
            return
        if not (root_of_plan and node.prefetch):
            self._check_fullscan(holder, config, node)
        if (
            isinstance(node.query, qm.FormulaQuery)
            and self.get("unindexed_filtering_retrieve") is False
        ):
            found = sf.unindexed_formula_key(node.query, _schemas(holder))
            if found is not None:
                raise _index_required(
                    found, "Create an index for this key or use a different formula expression."
                )

    def _check_fullscan(
        self, holder: SegmentHolder, config: CollectionConfig, node: qm.QueryNode
    ) -> None:
        """A vector query on a vector whose HNSW graph is off scans everything."""
        if self.get("search_allow_exact") is not False:
            return
        if not isinstance(node.query, qm.VectorQuery) or node.using in config.sparse_vectors:
            return
        hnsw = config.hnsw_for(node.using)
        m = hnsw.get("m") or 0
        if m > 0:
            return
        payload_m = hnsw.get("payload_m")
        payload_m = m if payload_m is None else payload_m
        label = "" if node.using == "" else f" on '{node.using}'"
        schemas = holder.index_schemas
        tenant = node.filter is not None and any(
            parse_field_schema(schemas[key]).param("is_tenant", False)
            for key in sf.filter_keys(node.filter)
            if key in schemas
        )
        if not tenant:
            raise forbid(
                f"Request is forbidden{label} because global vector indexing is disabled "
                "(hnsw_config.m = 0)",
                "Use tenant-specific filter, enable global vector indexing or enable strict "
                "mode `search_allow_exact` option",
            )
        if payload_m == 0:
            raise forbid(
                f"Request is forbidden{label} because vector indexing is disabled "
                "(hnsw_config.m = 0 and hnsw_config.payload_m = 0)",
                "Enable vector indexing, use a prefetch query with indexed vectors or enable "
                "strict mode `search_allow_exact` option",
            )

    def _check_group_by(self, holder: SegmentHolder, key: str) -> None:
        if self.get("unindexed_filtering_retrieve") is not False:
            return
        raw = holder.index_schemas.get(key)
        if raw is None:
            raise forbid(
                f'Index required but not found for "{key}"',
                "Create an index supporting `match` for this key.",
            )
        schema = parse_field_schema(raw)
        if not sf.supports_match(schema):
            kind = schema.data_type.capitalize()
            raise forbid(
                f'Index of type "{kind}" found for "{key}"',
                "Create an index supporting `match` for this key.",
            )

    def check_scan(
        self,
        holder: SegmentHolder,
        filt: Filter | None,
        limit: int | None = None,
        exact: bool | None = None,
    ) -> None:
        """Scroll, count, facet and the distance matrix: a limit, a filter, `exact`."""
        if not self.enabled:
            return
        self.check_timeout()
        check_limit(limit, self.get("max_query_limit"), "limit")
        self.check_filter(holder, filt, write=False)
        check_exact(exact, self.get("search_allow_exact"))
        self.limiter.check_read(1 + sf.filter_cost(filt))

    def check_retrieve(self, count: int) -> None:
        if self.enabled:
            self.check_timeout()
            self.limiter.check_read(count)

    # ------------------------------------------------------------------ writes

    def check_write(
        self,
        holder: SegmentHolder,
        config: CollectionConfig,
        record: ops.Record | None,
        filt: Filter | None = None,
    ) -> None:
        """A write about to be logged: `record` as asked (before stored state narrowed it),
        `filt` the filter that selects its points. Nothing is logged when this raises."""
        if not self.enabled:
            return
        self.check_timeout()
        grows = (ops.UpsertPoints, ops.UpdateVectors, ops.SetPayload, ops.OverwritePayload)
        if isinstance(record, grows):
            self._check_resident_memory()
        if isinstance(record, ops.UpsertPoints | ops.UpdateVectors):
            name = "upsert limit" if isinstance(record, ops.UpsertPoints) else "update limit"
            check_limit(len(record.ids), self.get("upsert_max_batchsize"), name)
            self._check_sizes(holder, config, points=True, vectors=True, payload=True)
            self._check_vector_lengths(record.vectors)
        elif isinstance(record, ops.SetPayload | ops.OverwritePayload):
            self._check_sizes(holder, config, points=False, vectors=False, payload=True)
        elif isinstance(record, ops.CreateFieldIndex):
            limit = self.get("max_payload_index_count")
            if limit is not None and len(holder.index_schemas) >= limit:
                raise forbid(
                    f"Collection already has the maximum number of payload indices ({limit})",
                    "Please delete an existing index before creating a new one.",
                )
        self.check_filter(holder, filt, write=True)
        self.limiter.check_write(_write_cost(holder, record, filt))

    def _check_sizes(
        self,
        holder: SegmentHolder,
        config: CollectionConfig,
        points: bool,
        vectors: bool,
        payload: bool,
    ) -> None:
        limit = self.get("max_collection_vector_size_bytes")
        if vectors and limit is not None and sf.vector_bytes(holder, config) >= limit:
            raise BadRequest(
                f"{STRICT_PREFIX}Max vector storage size limit of {_mib(limit)}MB reached!"
            )
        limit = self.get("max_collection_payload_size_bytes")
        if payload and limit is not None and self.payload_bytes.total(holder) >= limit:
            raise BadRequest(
                f"{STRICT_PREFIX}Max payload storage size limit of {_mib(limit)}MB reached!"
            )
        limit = self.get("max_points_count")
        if points and limit is not None and holder.live_count() >= limit:
            raise BadRequest(f"{STRICT_PREFIX}Max points count limit of {limit} reached!")

    def _check_resident_memory(self) -> None:
        """The deprecated `max_resident_memory_percent`: writes that add data wait while the
        process holds that share of the machine's (or its cgroup's) memory."""
        limit = self.get("max_resident_memory_percent")
        used = sf.resident_memory_percent() if limit is not None else None
        if used is None or used < limit:
            return
        raise forbid(
            f"Resident memory usage is at {used}% of total memory, exceeding the configured "
            f"limit of {limit}%",
            "Reduce memory usage (e.g. delete points or drop collections), or raise "
            "`max_resident_memory_percent` in the strict mode config of this collection.",
        )

    def _check_vector_lengths(self, columns: dict[str, ops.VectorColumn]) -> None:
        multi = _per_vector(self.get("multivector_config"), "max_vectors")
        sparse = _per_vector(self.get("sparse_config"), "max_length")
        for name, column in columns.items():
            if isinstance(column, DenseColumn):
                continue
            if name in multi:
                _check_lengths(column, name, multi[name], "Multivector", "vectors")
            if name in sparse:
                _check_lengths(column, name, sparse[name], "Sparse vector", "indices")


def _per_vector(raw: dict[str, Any] | None, key: str) -> dict[str, int]:
    return {name: v[key] for name, v in (raw or {}).items() if v.get(key) is not None}


def _check_lengths(column: ObjectColumn, name: str, limit: int, what: str, unit: str) -> None:
    for value in column.values:
        if value is None:
            continue
        n = len(value[0]) if isinstance(value, tuple) else len(value)
        if n > limit:
            raise BadRequest(
                f"{STRICT_PREFIX}{what} '{name}' has a limit of {limit} {unit}, "
                f"but {n} were provided!"
            )


def _index_required(found: tuple[str, Iterable[str]], solution: str) -> BadRequest:
    key, schemas = found
    listed = ", ".join(sorted(set(schemas)))
    return forbid(
        f'Index required but not found for "{key}" of one of the following types: [{listed}]',
        solution,
    )


def _schemas(holder: SegmentHolder) -> dict[str, Any]:
    return {key: parse_field_schema(raw) for key, raw in holder.index_schemas.items()}
