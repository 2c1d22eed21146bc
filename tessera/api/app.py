"""The REST application: Qdrant's routes on Starlette, each a thin parse -> engine -> render."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tessera import QDRANT_API_VERSION, __version__
from tessera.api import collections as coll
from tessera.api import facet as facet
from tessera.api import points_read as reads
from tessera.api import points_write as writes
from tessera.api import query_routes
from tessera.api import snapshots as snaps
from tessera.api.envelope import endpoint, error, json_response
from tessera.storage.toc import TableOfContents


async def root(request: Request) -> Response:
    return json_response(
        {
            "title": "tessera - vector search engine",
            "version": QDRANT_API_VERSION,
            "tessera_version": __version__,
        }
    )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("healthz check passed")


async def livez(request: Request) -> Response:
    return PlainTextResponse("livez check passed")


async def readyz(request: Request) -> Response:
    return PlainTextResponse("all shards are ready")


async def not_found(request: Request, exc: Exception) -> Response:
    return error(404, f"Not found: {request.url.path}", time.perf_counter())


def _routes() -> list[Route]:
    c = "/collections/{collection_name}"
    e = endpoint
    return [
        Route("/", root, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/collections", e(coll.list_collections), methods=["GET"]),
        Route(c, e(coll.get_collection), methods=["GET"]),
        Route(c, e(coll.create_collection), methods=["PUT"]),
        Route(c, e(coll.update_collection), methods=["PATCH"]),
        Route(c, e(coll.delete_collection), methods=["DELETE"]),
        Route(c + "/exists", e(coll.collection_exists), methods=["GET"]),
        Route(c + "/index", e(coll.create_index), methods=["PUT"]),
        Route(c + "/index/{field_name:path}", e(coll.delete_index), methods=["DELETE"]),
        Route(c + "/points", e(writes.upsert_points), methods=["PUT"]),
        Route(c + "/points", e(reads.retrieve_points), methods=["POST"]),
        Route(c + "/points/delete", e(writes.delete_points), methods=["POST"]),
        Route(c + "/points/vectors", e(writes.update_vectors), methods=["PUT"]),
        Route(c + "/points/vectors/delete", e(writes.delete_vectors), methods=["POST"]),
        Route(c + "/points/payload", e(writes.set_payload), methods=["POST"]),
        Route(c + "/points/payload", e(writes.overwrite_payload), methods=["PUT"]),
        Route(c + "/points/payload/delete", e(writes.delete_payload), methods=["POST"]),
        Route(c + "/points/payload/clear", e(writes.clear_payload), methods=["POST"]),
        Route(c + "/points/batch", e(writes.batch_update), methods=["POST"]),
        Route(c + "/points/scroll", e(reads.scroll_points), methods=["POST"]),
        Route(c + "/points/count", e(reads.count_points), methods=["POST"]),
        Route(c + "/points/search", e(reads.search_points), methods=["POST"]),
        Route(c + "/facet", e(facet.facet), methods=["POST"]),
        *query_routes.routes(c),
        *snaps.routes(c),
        Route(c + "/points/{point_id}", e(reads.get_point), methods=["GET"]),
    ]


def build_app(
    storage: Path,
    grpc_port: int = 0,
    grpc_host: str = "0.0.0.0",
    snapshots_path: Path | None = None,
) -> Starlette:
    """The REST app; with a `grpc_port` its lifespan also serves Qdrant's gRPC API there,
    over the same table of contents (started after it opens, stopped before it closes)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.toc = TableOfContents(
            storage, snaps.snapshots_path(storage, None, snapshots_path)
        )
        grpc_server = None
        try:
            if grpc_port:
                from tessera.api.grpc_server import GrpcServer

                grpc_server = GrpcServer(app.state.toc, grpc_host, grpc_port)
            yield
        finally:
            if grpc_server is not None:
                await run_in_threadpool(grpc_server.stop)
            app.state.toc.close()

    return Starlette(
        routes=_routes(),
        lifespan=lifespan,
        exception_handlers={404: not_found},
    )
