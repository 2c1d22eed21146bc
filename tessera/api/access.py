"""The one access table: every REST route and every gRPC method, and what it needs.

`OPEN` needs no key (Qdrant's `/`, `/healthz`, `/livez`, `/readyz` and gRPC health check).
`READ` is allowed to the read-only key and to JWTs with `r` access (globally, or to the
collection in the path / request); `GLOBAL_READ` reads what belongs to no collection (full
snapshots): the read-only key and global tokens, not collection-scoped ones; `WRITE`
changes points, vectors, payloads, payload indexes or snapshots of one collection (`rw`
access to it, or global `m`); `MANAGE` creates, changes, drops or replaces collections
(global `m` only). This is Qdrant's "Table of access" in its security guide.
`READ_EXTRAS` / `WRITE_EXTRAS` read or change a collection's "extras" (payload indexes,
snapshots, its cluster info): as `READ` / `WRITE`, but not with `prw` access (points read
and write only), which Qdrant refuses them (`AccessRequirements::extras`).

The REST app refuses to start with a route missing here, the gRPC server with a method of a
service it serves missing here, and a test checks both, so a new endpoint cannot slip
through unguarded: it must be classified here first.
"""

from __future__ import annotations

from enum import Enum


class Level(Enum):
    OPEN = "open"
    READ = "read"
    READ_EXTRAS = "read extras"
    GLOBAL_READ = "global read"
    WRITE = "write"
    WRITE_EXTRAS = "write extras"
    MANAGE = "manage"


OPEN, READ, WRITE, MANAGE = Level.OPEN, Level.READ, Level.WRITE, Level.MANAGE
GLOBAL_READ, READ_EXTRAS, WRITE_EXTRAS = Level.GLOBAL_READ, Level.READ_EXTRAS, Level.WRITE_EXTRAS
# The levels a global read access (the read-only key, an `r` token) is allowed.
READS = (READ, READ_EXTRAS, GLOBAL_READ)

# The path parameter that names the collection a REST route works on.
COLLECTION_PARAM = "collection_name"
# The routes whose answer lists collections: filtered to those a collection-scoped JWT may
# read, as Qdrant filters them.
# `GET /aliases` likewise keeps the aliases of those collections.
LISTS_COLLECTIONS_REST = {("GET", "/collections"), ("GET", "/aliases")}
LISTS_COLLECTIONS_GRPC = {"/qdrant.Collections/List", "/qdrant.Collections/ListAliases"}

_C = "/collections/{collection_name}"
_P = _C + "/points"
_S = _C + "/shards/{shard_id:int}"

REST: dict[tuple[str, str], Level] = {
    ("GET", "/"): OPEN,
    ("GET", "/healthz"): OPEN,
    ("GET", "/livez"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/collections"): READ,
    ("GET", _C): READ,
    ("PUT", _C): MANAGE,
    ("PATCH", _C): MANAGE,
    ("DELETE", _C): MANAGE,
    ("GET", _C + "/exists"): READ,
    # Aliases, as Qdrant's table of access has them: changing them manages collections,
    # listing them reads.
    ("POST", "/collections/aliases"): MANAGE,
    ("GET", "/aliases"): READ,
    ("GET", _C + "/aliases"): READ,
    ("PUT", _C + "/index"): WRITE_EXTRAS,
    ("DELETE", _C + "/index/{field_name:path}"): WRITE_EXTRAS,
    ("PUT", _C + "/vectors/{vector_name}"): MANAGE,
    ("DELETE", _C + "/vectors/{vector_name}"): MANAGE,
    ("PUT", _P): WRITE,
    ("POST", _P): READ,
    ("POST", _P + "/delete"): WRITE,
    ("PUT", _P + "/vectors"): WRITE,
    ("POST", _P + "/vectors/delete"): WRITE,
    ("POST", _P + "/payload"): WRITE,
    ("PUT", _P + "/payload"): WRITE,
    ("POST", _P + "/payload/delete"): WRITE,
    ("POST", _P + "/payload/clear"): WRITE,
    ("POST", _P + "/batch"): WRITE,
    ("POST", _P + "/scroll"): READ,
    ("POST", _P + "/count"): READ,
    ("POST", _P + "/search"): READ,
    ("POST", _C + "/facet"): READ,
    ("POST", _P + "/query"): READ,
    ("POST", _P + "/query/batch"): READ,
    ("POST", _P + "/query/groups"): READ,
    ("POST", _P + "/search/matrix/pairs"): READ,
    ("POST", _P + "/search/matrix/offsets"): READ,
    ("POST", _P + "/search/batch"): READ,
    ("POST", _P + "/search/groups"): READ,
    ("POST", _P + "/recommend"): READ,
    ("POST", _P + "/recommend/batch"): READ,
    ("POST", _P + "/recommend/groups"): READ,
    ("POST", _P + "/discover"): READ,
    ("POST", _P + "/discover/batch"): READ,
    ("GET", _P + "/{point_id}"): READ,
    # Snapshots (tessera.api.snapshots), as Qdrant's table of access has them: listing and
    # downloading read the collection, creating and deleting write it, uploading and
    # recovering replace it (manage); full snapshots belong to no collection.
    ("GET", _C + "/snapshots"): READ_EXTRAS,
    ("POST", _C + "/snapshots"): WRITE_EXTRAS,
    ("POST", _C + "/snapshots/upload"): MANAGE,
    ("PUT", _C + "/snapshots/recover"): MANAGE,
    ("GET", _C + "/snapshots/{snapshot_name}"): READ_EXTRAS,
    ("DELETE", _C + "/snapshots/{snapshot_name}"): WRITE_EXTRAS,
    ("GET", _S + "/snapshots"): READ_EXTRAS,
    ("POST", _S + "/snapshots"): WRITE_EXTRAS,
    ("POST", _S + "/snapshots/upload"): MANAGE,
    ("PUT", _S + "/snapshots/recover"): MANAGE,
    ("GET", _S + "/snapshots/{snapshot_name}"): READ_EXTRAS,
    ("DELETE", _S + "/snapshots/{snapshot_name}"): WRITE_EXTRAS,
    ("GET", _S + "/snapshot"): WRITE_EXTRAS,  # makes a snapshot and streams it
    # The dashboard (tessera.api.dashboard): its static files are public, as Qdrant's are
    # (the page asks for a key when the API wants one); its API reads a collection.
    ("GET", "/dashboard"): OPEN,
    ("GET", "/dashboard/{path:path}"): OPEN,
    ("POST", "/dashboard/api/collections/{collection_name}/projection"): READ,
    ("GET", "/openapi.json"): READ,
    # Observability and cluster routes (api.metrics, api.telemetry, api.issues,
    # api.cluster_info), as in Qdrant's RBAC: telemetry and issues are open to any access
    # and report only the collections it may read (and the process only to global access);
    # metrics and the cluster need global access, manage to change anything; a
    # collection's cluster info and optimizations read it, changing its cluster manages.
    ("GET", "/metrics"): GLOBAL_READ,
    ("GET", "/telemetry"): READ,
    ("GET", "/issues"): READ,
    ("DELETE", "/issues"): MANAGE,
    ("GET", "/cluster"): GLOBAL_READ,
    ("GET", "/cluster/telemetry"): READ,  # a scoped token's: its collections only
    ("POST", "/cluster/recover"): MANAGE,
    ("DELETE", "/cluster/peer/{peer_id}"): MANAGE,
    ("GET", "/quotas"): GLOBAL_READ,
    ("PUT", "/quotas"): MANAGE,
    ("GET", _C + "/cluster"): READ_EXTRAS,
    ("POST", _C + "/cluster"): MANAGE,
    ("PUT", _C + "/shards"): MANAGE,
    ("POST", _C + "/shards/delete"): MANAGE,
    ("GET", _C + "/shards"): READ,
    ("GET", _C + "/optimizations"): READ,
    ("GET", "/snapshots"): GLOBAL_READ,
    ("POST", "/snapshots"): MANAGE,
    ("GET", "/snapshots/{snapshot_name}"): GLOBAL_READ,
    ("DELETE", "/snapshots/{snapshot_name}"): MANAGE,
}

# Full gRPC method names, `/package.Service/Method`, of every method of the services served
# (implemented or not: an unimplemented one still needs its key before it says so). The
# collection is the request's `collection_name` field.
GRPC: dict[str, Level] = {
    "/qdrant.Qdrant/HealthCheck": OPEN,
    "/qdrant.Collections/Get": READ,
    "/qdrant.Collections/List": READ,
    "/qdrant.Collections/Create": MANAGE,
    "/qdrant.Collections/Update": MANAGE,
    "/qdrant.Collections/Delete": MANAGE,
    "/qdrant.Collections/UpdateAliases": MANAGE,
    "/qdrant.Collections/ListCollectionAliases": READ,
    "/qdrant.Collections/ListAliases": READ,
    "/qdrant.Collections/CollectionClusterInfo": READ_EXTRAS,
    "/qdrant.Collections/CollectionExists": READ,
    "/qdrant.Collections/UpdateCollectionClusterSetup": MANAGE,
    "/qdrant.Collections/CreateShardKey": MANAGE,
    "/qdrant.Collections/DeleteShardKey": MANAGE,
    "/qdrant.Collections/ListShardKeys": READ,
    "/qdrant.Points/Upsert": WRITE,
    "/qdrant.Points/Delete": WRITE,
    "/qdrant.Points/Get": READ,
    "/qdrant.Points/UpdateVectors": WRITE,
    "/qdrant.Points/DeleteVectors": WRITE,
    "/qdrant.Points/SetPayload": WRITE,
    "/qdrant.Points/OverwritePayload": WRITE,
    "/qdrant.Points/DeletePayload": WRITE,
    "/qdrant.Points/ClearPayload": WRITE,
    "/qdrant.Points/CreateFieldIndex": WRITE_EXTRAS,
    "/qdrant.Points/DeleteFieldIndex": WRITE_EXTRAS,
    "/qdrant.Points/CreateVectorName": MANAGE,
    "/qdrant.Points/DeleteVectorName": MANAGE,
    "/qdrant.Points/Search": READ,
    "/qdrant.Points/SearchBatch": READ,
    "/qdrant.Points/SearchGroups": READ,
    "/qdrant.Points/Scroll": READ,
    "/qdrant.Points/Recommend": READ,
    "/qdrant.Points/RecommendBatch": READ,
    "/qdrant.Points/RecommendGroups": READ,
    "/qdrant.Points/Discover": READ,
    "/qdrant.Points/DiscoverBatch": READ,
    "/qdrant.Points/Count": READ,
    "/qdrant.Points/UpdateBatch": WRITE,
    "/qdrant.Points/Query": READ,
    "/qdrant.Points/QueryBatch": READ,
    "/qdrant.Points/QueryGroups": READ,
    "/qdrant.Points/Facet": READ,
    "/qdrant.Points/SearchMatrixPairs": READ,
    "/qdrant.Points/SearchMatrixOffsets": READ,
    "/qdrant.Snapshots/Create": WRITE_EXTRAS,
    "/qdrant.Snapshots/List": READ_EXTRAS,
    "/qdrant.Snapshots/Delete": WRITE_EXTRAS,
    "/qdrant.Snapshots/CreateFull": MANAGE,
    "/qdrant.Snapshots/ListFull": GLOBAL_READ,
    "/qdrant.Snapshots/DeleteFull": MANAGE,
}


def rest_rule(method: str, path: str) -> Level | None:
    """The level of a REST route (`path` as declared, e.g. `/collections/{collection_name}`);
    HEAD is GET's."""
    return REST.get(("GET" if method == "HEAD" else method, path))


def missing_rest(routes: list[tuple[str, str]]) -> list[str]:
    """`METHOD path` of each route without an entry in the table."""
    return [f"{m} {p}" for m, p in routes if rest_rule(m, p) is None]


# The streaming methods, apart: server reflection needs any valid key (Qdrant's auth layer
# asks for one; its reflection service checks no access).
GRPC_STREAMING: dict[str, Level] = {
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": READ,
}


def missing_grpc(methods: list[str]) -> list[str]:
    return [m for m in methods if m not in GRPC]
