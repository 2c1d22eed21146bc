"""The REST application: Qdrant's routes on Starlette, each a thin parse -> engine -> render,
behind the layers of `api.middleware` (access log, CORS, keys and access, body limits)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from tessera import QDRANT_API_VERSION
from tessera.api import aliases as aliases
from tessera.api import cluster_info as cluster
from tessera.api import collections as coll
from tessera.api import dashboard as dashboard
from tessera.api import facet as facet
from tessera.api import issues as issues
from tessera.api import metrics as metrics
from tessera.api import middleware as mw
from tessera.api import openapi as openapi
from tessera.api import points_read as reads
from tessera.api import points_write as writes
from tessera.api import query_routes, shard_keys
from tessera.api import snapshots as snaps
from tessera.api import telemetry as telemetry
from tessera.api.access import missing_rest
from tessera.api.auth import Authenticator
from tessera.api.envelope import (
    QUICK_REQUESTS,
    Handler,
    endpoint,
    error,
    json_response,
    set_workers,
)
from tessera.api.read_workers import (
    ReadWorkers,
    grpc_socket,
    local_read,
    reads_back,
    start_worker,
    stateful_token,
    worker_poller,
)
from tessera.api.routing import memoize_routes
from tessera.api.tls import RestCertificates, cancel
from tessera.cluster.service import ClusterService
from tessera.collection.issues import set_slow_query_seconds
from tessera.settings import Settings
from tessera.storage.follower_toc import FollowerToc
from tessera.storage.toc import TableOfContents


async def root(request: Request) -> Response:
    return json_response(
        {
            "title": "tessera - vector search engine",
            "version": QDRANT_API_VERSION,
            # Qdrant's build commit; a Tessera build has none (its version is in /telemetry)
            "commit": None,
        }
    )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("healthz check passed")


async def livez(request: Request) -> Response:
    return PlainTextResponse("healthz check passed")  # Qdrant answers both alike


async def readyz(request: Request) -> Response:
    return PlainTextResponse("all shards are ready")


async def not_found(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/collections//"):  # an empty collection name (Qdrant: 422)
        text = "Validation error in path parameters: [name: length must be between 1 and 255]"
        return error(422, text, time.perf_counter())
    return error(404, f"Not found: {request.url.path}", time.perf_counter())


def _routes(static_content: bool = True) -> list[Route]:
    c = "/collections/{collection_name}"
    e = endpoint

    def w(work: Callable[[Request], Awaitable[Callable[[], Any]]]) -> Handler:
        # A point write: on the loop when quick, else on the write threads.
        return endpoint(work, writes=True, quick=True)

    def r(work: Callable[[Request], Awaitable[Callable[[], Any]]]) -> Handler:
        return endpoint(work, quick=True)  # a point read: on the loop when quick

    return [
        Route("/", root, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        *dashboard.routes(static_content),
        Route("/collections", e(coll.list_collections), methods=["GET"]),
        Route("/collections/aliases", e(aliases.update_aliases), methods=["POST"]),
        Route("/aliases", e(aliases.list_aliases), methods=["GET"]),
        Route(c + "/aliases", e(aliases.list_collection_aliases), methods=["GET"]),
        Route(c, e(coll.get_collection), methods=["GET"]),
        Route(c, e(coll.create_collection), methods=["PUT"]),
        Route(c, e(coll.update_collection), methods=["PATCH"]),
        Route(c, e(coll.delete_collection), methods=["DELETE"]),
        Route(c + "/exists", e(coll.collection_exists), methods=["GET"]),
        # Observability and the standalone answers to cluster routes (api.cluster_info).
        Route("/metrics", metrics.get_metrics, methods=["GET"]),
        Route("/telemetry", e(telemetry.get_telemetry), methods=["GET"]),
        Route("/issues", e(issues.get_issues), methods=["GET"]),
        Route("/issues", e(issues.clear_issues), methods=["DELETE"]),
        Route("/cluster", e(cluster.cluster_status), methods=["GET"]),
        Route("/cluster/telemetry", e(cluster.cluster_telemetry), methods=["GET"]),
        Route("/cluster/recover", e(cluster.recover_current_peer), methods=["POST"]),
        Route("/cluster/peer/{peer_id}", e(cluster.remove_peer), methods=["DELETE"]),
        Route("/quotas", e(cluster.get_quotas), methods=["GET"]),
        Route("/quotas", e(cluster.update_quotas), methods=["PUT"]),
        Route(c + "/cluster", e(cluster.collection_cluster), methods=["GET"]),
        Route(c + "/cluster", e(cluster.update_collection_cluster), methods=["POST"]),
        Route(c + "/shards", e(shard_keys.create_shard_key), methods=["PUT"]),
        Route(c + "/shards", e(shard_keys.list_shard_keys), methods=["GET"]),
        Route(c + "/shards/delete", e(shard_keys.delete_shard_key), methods=["POST"]),
        Route(c + "/optimizations", e(cluster.get_optimizations), methods=["GET"]),
        Route(c + "/index", e(coll.create_index), methods=["PUT"]),
        Route(c + "/index/{field_name:path}", e(coll.delete_index), methods=["DELETE"]),
        Route(c + "/vectors/{vector_name}", e(coll.create_vector_name), methods=["PUT"]),
        Route(c + "/vectors/{vector_name}", e(coll.delete_vector_name), methods=["DELETE"]),
        Route(c + "/points", w(writes.upsert_points), methods=["PUT"]),
        Route(c + "/points", r(reads.retrieve_points), methods=["POST"]),
        Route(c + "/points/delete", w(writes.delete_points), methods=["POST"]),
        Route(c + "/points/vectors", w(writes.update_vectors), methods=["PUT"]),
        Route(c + "/points/vectors/delete", w(writes.delete_vectors), methods=["POST"]),
        Route(c + "/points/payload", w(writes.set_payload), methods=["POST"]),
        Route(c + "/points/payload", w(writes.overwrite_payload), methods=["PUT"]),
        Route(c + "/points/payload/delete", w(writes.delete_payload), methods=["POST"]),
        Route(c + "/points/payload/clear", w(writes.clear_payload), methods=["POST"]),
        # Several writes: on the write threads, as a batch is rarely quick.
        Route(c + "/points/batch", e(writes.batch_update, writes=True), methods=["POST"]),
        Route(c + "/points/scroll", r(reads.scroll_points), methods=["POST"]),
        Route(c + "/points/count", r(reads.count_points), methods=["POST"]),
        Route(c + "/points/search", r(reads.search_points), methods=["POST"]),
        Route(c + "/facet", r(facet.facet), methods=["POST"]),
        *query_routes.routes(c),
        *snaps.routes(c),
        Route(c + "/points/{point_id}", r(reads.get_point), methods=["GET"]),
    ]


def route_methods(routes: Sequence[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path) of every route, as the access table names them."""
    return [
        (method, route.path)
        for route in routes
        if isinstance(route, Route)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]


def build_app(
    storage: Path,
    grpc_port: int = 0,
    grpc_host: str = "0.0.0.0",
    settings: Settings | None = None,
    certificates: RestCertificates | None = None,
    snapshots_path: Path | None = None,
    read_workers: ReadWorkers | None = None,
    handoff: str | None = None,
) -> Starlette:
    """The REST app; with a `grpc_port` its lifespan also serves Qdrant's gRPC API there,
    over the same table of contents (started after it opens, stopped before it closes).

    `settings`: the `service.*` part applies (keys, JWT, CORS, body limit, access log,
    workers, TLS for gRPC); None: Qdrant's defaults, no keys. `certificates`: the REST TLS
    context uvicorn serves with, reloaded here every `tls.cert_ttl`. `snapshots_path`: where
    snapshots live (default: the setting, else `<storage>/snapshots`). `read_workers`: the
    worker processes started once the collections are open (tessera.api.read_workers).
    `handoff`: this app is such a worker's, serving point reads from read-only copies of
    the collections and handing other requests to the owner through that socket."""
    conf = settings or Settings.default()
    routes = _routes(conf["service.enable_static_content"] is not False)
    unguarded = missing_rest(route_methods(routes))
    if unguarded:
        raise RuntimeError(
            "REST routes missing from the access table (tessera/api/access.py): "
            + ", ".join(unguarded)
        )
    state: dict[str, Any] = {}
    api_key, alt_api_key, read_only_key = conf.api_keys
    authenticator = (
        Authenticator(
            lambda: state["toc"],
            api_key,
            read_only_key=read_only_key,
            alt_api_key=alt_api_key,
            jwt_rbac=conf.jwt_rbac,
        )
        if conf.auth_enabled
        else None
    )
    workers: int = conf["service.max_workers"] or 0

    @asynccontextmanager
    async def worker_lifespan(app: Starlette) -> AsyncIterator[None]:
        assert handoff is not None
        set_slow_query_seconds(conf["service.slow_query_secs"])
        toc = FollowerToc(storage)
        await run_in_threadpool(toc.load_all)
        app.state.toc = state["toc"] = toc
        if workers:
            set_workers(workers)
        start_worker(local_read(toc), handoff)
        stop = threading.Event()
        poller = worker_poller(toc, stop)
        grpc_server = None
        if grpc_port:
            from tessera.api.grpc_forward import WorkerGrpcServer
            from tessera.api.grpc_server import WORKERS

            grpc_server = WorkerGrpcServer(
                toc,
                grpc_host,
                grpc_port,
                grpc_socket(handoff),
                stateful_token,
                workers or WORKERS,
                authenticator=authenticator,
                access_log=bool(conf["service.access_log"]),
                hardware_reporting=bool(conf["service.hardware_reporting"]),
            )
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if grpc_server is not None:
                await run_in_threadpool(grpc_server.stop)
            stop.set()
            await run_in_threadpool(poller.join)
            toc.close()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        set_slow_query_seconds(conf["service.slow_query_secs"])
        app.state.toc = state["toc"] = TableOfContents(
            storage,
            snaps.snapshots_path(storage, settings, snapshots_path),
            recovery_mode=conf["storage.recovery_mode"],
        )
        app.state.toc.max_collections = conf["storage.max_collections"]
        app.state.toc.service_flags = {
            "jwt_rbac": conf["service.jwt_rbac"],
            "hide_jwt_dashboard": conf["service.hide_jwt_dashboard"],
        }
        if workers:
            anyio.to_thread.current_default_thread_limiter().total_tokens = workers
            set_workers(workers)  # the pool REST routes run the engine in
        grpc_server = None
        reload_task = None
        cluster_service = None
        p2p_server = None
        metrics_server = None
        try:
            if conf["service.metrics_port"]:
                from tessera.api.metrics_port import MetricsServer

                metrics_server = MetricsServer(
                    app.state.toc,
                    grpc_host,
                    conf["service.metrics_port"],
                    conf["service.metrics_prefix"] or "",
                )
                metrics_server.start()
            if conf["cluster.enabled"]:
                from tessera.api.p2p import P2PServer

                # Other peers' shard calls: served before joining, as a peer catching up
                # or leading a shard may call this one as soon as it is registered.
                p2p_server = P2PServer(
                    app.state.toc, grpc_host, conf["cluster.p2p.port"], conf.p2p_tls
                )
                p2p_server.start()
                # Joins before serving: /readyz answers once the cluster's state is applied.
                cluster_service = ClusterService.from_settings(storage, conf)
                await run_in_threadpool(app.state.toc.join_cluster, cluster_service)
            if grpc_port:
                from tessera.api.grpc_server import WORKERS, GrpcServer

                grpc_server = GrpcServer(
                    app.state.toc,
                    grpc_host,
                    grpc_port,
                    workers or WORKERS,
                    authenticator=authenticator,
                    tls=conf.tls,
                    access_log=bool(conf["service.access_log"]),
                    hardware_reporting=bool(conf["service.hardware_reporting"]),
                    workers_socket=read_workers.grpc_path if read_workers is not None else None,
                )
            if certificates is not None:
                reload_task = asyncio.get_running_loop().create_task(certificates.run())
            # Python's full collections walk every object the collector tracks, and a
            # server's ~130k are nearly all its modules' (functions, types, dicts): 65-90 ms
            # a collection here, every few seconds under writes, a stall of every request.
            # Those live as long as the process: out of the collector's sight with them
            # (points are in numpy arrays, which it does not track).
            gc.collect()
            gc.freeze()
            if read_workers is not None:
                read_workers.start(reads_back(app.state.toc))
            yield
        finally:
            if read_workers is not None:
                await run_in_threadpool(read_workers.stop)
            await cancel(reload_task)
            if grpc_server is not None:
                await run_in_threadpool(grpc_server.stop)
            if cluster_service is not None:
                await run_in_threadpool(cluster_service.stop)  # leaves the cluster
            if p2p_server is not None:
                await run_in_threadpool(p2p_server.stop)
            if metrics_server is not None:
                await run_in_threadpool(metrics_server.stop)
            app.state.toc.close()

    layers: list[Middleware] = []
    # Always there: it counts responses for /metrics and /telemetry; it logs when configured.
    layers.append(Middleware(mw.AccessLog, routes=routes, log=bool(conf["service.access_log"])))
    if conf["service.enable_cors"]:
        layers.append(Middleware(mw.Cors))
    if authenticator is not None:
        layers.append(Middleware(mw.Auth, routes=routes, authenticator=authenticator))
    layers.append(Middleware(mw.BodyLimits, max_bytes=conf["service.max_request_size_mb"] << 20))
    app = Starlette(
        routes=routes,
        lifespan=lifespan if handoff is None else worker_lifespan,
        middleware=layers,
        exception_handlers={404: not_found},
    )
    memoize_routes(app.router)
    # In cluster mode a read may wait for another peer: never on the loop.
    setattr(app.state, QUICK_REQUESTS, not conf["cluster.enabled"])
    app.state.metrics_prefix = conf["service.metrics_prefix"] or ""
    app.state.hardware_reporting = bool(conf["service.hardware_reporting"])
    return app
