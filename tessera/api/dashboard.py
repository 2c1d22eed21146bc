"""The web dashboard at `/dashboard`: its static files (package data of `tessera.dashboard`,
nothing fetched from elsewhere) and the routes only it needs, under `/dashboard/api/`.

The static files are public, as Qdrant's dashboard is (the page itself asks for a key when
the API answers 401/403); the API routes need read access like any other read.
"""

from __future__ import annotations

import mimetypes
import re
import time
from collections.abc import Callable
from importlib import resources
from pathlib import PurePosixPath
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera.api.collections import collection_of
from tessera.api.envelope import endpoint, error, expect_object, read_json
from tessera.collection.projection import MAX_SAMPLE, Projection, project
from tessera.errors import BadRequest
from tessera.ids import parse_point_id, render_point_id
from tessera.query.filter_parse import parse_filter

PREFIX = "/dashboard"
API_PREFIX = PREFIX + "/api/"
DEFAULT_SAMPLE = 1000
PROJECTION_FIELDS = {"sample", "using", "filter", "color_by", "ids", "seed"}
# Module scripts are refused by browsers unless served with a JavaScript type.
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}


def is_static(path: str) -> bool:
    """A path of the dashboard's static files (public), not of its API (keyed)."""
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(API_PREFIX)


# One part of a static file's path: plain names only. No `/` (an absolute path would make
# `joinpath` start again at the root), no `..`, no hidden or private (`_`) files.
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def static_file(relative: str) -> bytes | None:
    """The bytes of a file of the `tessera.dashboard` package; None when there is none (or
    the path tries to leave the package)."""
    parts = relative.split("/")
    if not all(_PART.fullmatch(p) and ".." not in p for p in parts):
        return None
    node = resources.files("tessera.dashboard")
    for part in parts:
        node = node.joinpath(part)
    if not node.is_file():
        return None
    return node.read_bytes()


async def index(request: Request) -> Response:
    return serve_static("index.html")


async def asset(request: Request) -> Response:
    relative = request.path_params["path"] or "index.html"
    return serve_static(relative)


# Defense in depth for a page that holds a key and can delete collections: scripts only from
# this server (an injected `<script>` or inline handler never runs), no framing
# (clickjacking), requests to this server only. Inline style attributes stay allowed (the
# pages size inputs with them); the favicon is a `data:` URL.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def serve_static(relative: str) -> Response:
    body = static_file(relative)
    if body is None:
        return error(404, f"Not found: {PREFIX}/{relative}", time.perf_counter())
    suffix = PurePosixPath(relative).suffix
    media = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(relative)[0]
    # no-cache: revalidated on every load, so an upgraded server never runs stale scripts.
    return Response(
        body,
        media_type=media or "application/octet-stream",
        headers={"cache-control": "no-cache", **SECURITY_HEADERS},
    )


def _int(raw: Any, name: str, default: int | None) -> int | None:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise BadRequest(f"Format error in JSON body: `{name}` must be an integer")
    return raw


def _seed(raw: Any) -> int | None:
    """numpy's generators take a non-negative seed only (a negative one raised: a 500)."""
    seed = _int(raw, "seed", None)
    if seed is not None and seed < 0:
        raise BadRequest("Wrong input: `seed` must be a non-negative integer")
    return seed


def parse_projection(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - PROJECTION_FIELDS)
    if unknown:
        raise BadRequest(
            f"Format error in JSON body: unknown field `{unknown[0]}`, expected one of "
            + ", ".join(f"`{f}`" for f in sorted(PROJECTION_FIELDS))
        )
    using = body.get("using", "")
    color_by = body.get("color_by")
    if not isinstance(using, str):
        raise BadRequest("Format error in JSON body: `using` must be a vector name")
    if color_by is not None and not isinstance(color_by, str):
        raise BadRequest("Format error in JSON body: `color_by` must be a payload key")
    raw_ids = body.get("ids")
    if raw_ids is not None and not isinstance(raw_ids, list):
        raise BadRequest("Format error in JSON body: `ids` must be a list of point ids")
    ids = None if raw_ids is None else [parse_point_id(x) for x in raw_ids]
    sample = _int(body.get("sample"), "sample", DEFAULT_SAMPLE)
    if ids is not None:
        sample = MAX_SAMPLE
    return {
        "using": using,
        "sample": sample,
        "filt": parse_filter(body.get("filter")),
        "color_by": color_by or None,
        "ids": ids,
        "seed": _seed(body.get("seed")),
    }


def render_projection(found: Projection) -> dict[str, Any]:
    return {
        "points": [
            {"id": render_point_id(pid), "x": float(x), "y": float(y), "color": color}
            for pid, (x, y), color in zip(found.ids, found.xy.tolist(), found.colors, strict=True)
        ],
        "matched": found.matched,
        "sampled": len(found.ids),
        "dim": found.dim,
        "explained_variance": found.explained,
    }


async def projection(request: Request) -> Callable[[], Any]:
    """`POST /dashboard/api/collections/{c}/projection`: a sample of the collection's
    vectors on the sample's first two principal axes, colored by a payload field."""
    collection = collection_of(request)
    body = expect_object(await read_json(request, required=False) or {})
    args = parse_projection(body)
    return lambda: render_projection(project(collection, **args))


def routes(static_content: bool = True) -> list[Route]:
    """The dashboard's pages (unless `service.enable_static_content` is false) and the API
    route it adds."""
    c = API_PREFIX + "collections/{collection_name}"
    pages = [
        Route(PREFIX, index, methods=["GET"]),
        Route(PREFIX + "/{path:path}", asset, methods=["GET"]),
    ]
    return [
        *(pages if static_content else []),
        Route(c + "/projection", endpoint(projection), methods=["POST"]),
    ]
