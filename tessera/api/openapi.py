"""`GET /openapi.json`: the API this server serves, generated from its route table.

Each route Qdrant also has is described by Qdrant's own operation (its schema ships as
package data, `tessera/dashboard/qdrant-openapi.json`, Apache-2.0, see its `info.x-source`);
Tessera's own routes and the Qdrant routes its current schema no longer lists (the legacy
search, recommend and discover family) get an operation written here. So the document
lists exactly what answers, and nothing that would 404.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tessera import QDRANT_API_VERSION, __version__
from tessera.api.envelope import json_response

# Starlette's `{name:converter}` -> OpenAPI's `{name}`; Qdrant names the point id `id`.
_CONVERTER = re.compile(r"\{(\w+):\w+\}")
_RENAMED = {"{point_id}": "{id}"}

# Tessera's own routes (not in Qdrant's API): tag, summary, description.
OWN: dict[tuple[str, str], tuple[str, str, str]] = {
    ("GET", "/dashboard"): (
        "Dashboard",
        "Web dashboard",
        "The dashboard's single page (static, public; the page asks for a key when needed).",
    ),
    ("GET", "/dashboard/{path}"): (
        "Dashboard",
        "Dashboard files",
        "The dashboard's scripts and styles (static, public, shipped with the server).",
    ),
    ("POST", "/dashboard/api/collections/{collection_name}/projection"): (
        "Dashboard",
        "2-D projection of a sample",
        "A uniform random sample of the points that have vector `using` (default: the "
        "unnamed one) and match `filter`, projected on the sample's first two principal "
        "axes (PCA by SVD). Body: `sample` (1..10000, default 1000; at most 2,000,000 "
        "coordinates are projected, so vectors of over 200 dimensions get fewer), `using`, "
        "`filter`, "
        "`color_by` (a payload key: each point's first value there), `ids` (project exactly "
        "these points instead of a sample), `seed`. Answer: `points` [{id, x, y, color}], "
        "`matched` (points the sample was drawn from), `sampled`, `dim`, "
        "`explained_variance` (share of the sample's variance per axis).",
    ),
    ("GET", "/openapi.json"): (
        "Service",
        "OpenAPI description",
        "This document: every route the server serves.",
    ),
}


# Qdrant operations with Tessera's `"explain": true` extension (README, "Explaining a query").
EXPLAINED = {
    ("POST", "/collections/{collection_name}/points/query"),
    ("POST", "/collections/{collection_name}/points/search"),
}

EXPLAIN_NOTE = (
    'Tessera extension: `"explain": true` in the body adds `result.explain` beside '
    "`result.points` (on `/points/search` the result then becomes `{points, explain}`): "
    "one report per query of the tree (`path`: `query`, `prefetch[0]`, "
    "`prefetch[0].prefetch[1]`, ...), per segment the plan the planner chose and why "
    "(`graph`, `exact`, `flat`: an exact scan of the graph's storage in faiss, "
    "`graph+exact`, `skipped`; the candidates left by the filter against "
    "`full_scan_threshold`), the `hnsw_ef` walked, whether quantized codes were walked "
    "(`quantized`) and rescored (`rescored`, `oversampling`, `walked`: results asked of the "
    "walk), the points scored exactly, and the milliseconds of each stage (filter, search, "
    "rescore, merge, fusion, fetch of payloads and vectors). Without it the answer is "
    "Qdrant's. gRPC has no explain."
)

_MS = {"type": "object", "additionalProperties": {"type": "number"}}
EXPLAIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'Tessera extension: what the query did (`"explain": true`).',
    "properties": {
        "total_ms": {"type": "number"},
        "stages_ms": _MS,
        "queries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "query": {"type": "string"},
                    "using": {"type": "string"},
                    "limit": {"type": "integer"},
                    "filtered": {"type": "boolean"},
                    "exact": {"type": "boolean"},
                    "hnsw_ef": {"type": "integer"},
                    "note": {"type": "string"},
                    "results": {"type": "integer"},
                    "stages_ms": _MS,
                    "segments": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "segment": {"type": "integer"},
                                "points": {"type": "integer"},
                                "indexed": {"type": "integer"},
                                "candidates": {"type": "integer"},
                                "plan": {
                                    "type": "string",
                                    "enum": ["graph", "exact", "flat", "graph+exact", "skipped"],
                                },
                                "reason": {"type": "string"},
                                "full_scan_threshold_kb": {"type": "integer"},
                                "full_scan_threshold_points": {"type": "integer"},
                                "hnsw_ef": {"type": "integer"},
                                "quantized": {"type": "boolean"},
                                "rescored": {"type": "boolean"},
                                "oversampling": {"type": "number"},
                                "walked": {"type": "integer"},
                                "scored": {"type": "integer"},
                                "returned": {"type": "integer"},
                                "stages_ms": _MS,
                            },
                        },
                    },
                },
            },
        },
    },
}


def with_explain(operation: dict[str, Any]) -> dict[str, Any]:
    """A query operation with the `explain` extension documented: the body field, a note
    in the description, and the report's shape under `x-tessera-explain`."""
    operation["description"] = f"{operation.get('description', '')}\n\n{EXPLAIN_NOTE}".strip()
    content = operation.setdefault("requestBody", {}).setdefault("content", {})
    body = content.setdefault("application/json", {})
    flag = {
        "type": "object",
        "properties": {
            "explain": {
                "type": "boolean",
                "default": False,
                "description": "Tessera extension: add `explain` (the plan and timings).",
            }
        },
    }
    body["schema"] = {"allOf": [body.get("schema", {"type": "object"}), flag]}
    operation["x-tessera-explain"] = EXPLAIN_SCHEMA
    return operation


@functools.cache
def qdrant_schema() -> dict[str, Any]:
    raw = resources.files("tessera.dashboard").joinpath("qdrant-openapi.json").read_bytes()
    schema: dict[str, Any] = orjson.loads(raw)
    return schema


def openapi_path(path: str) -> str:
    out = _CONVERTER.sub(r"{\1}", path)
    for ours, theirs in _RENAMED.items():
        out = out.replace(ours, theirs)
    return out


def _tag(path: str) -> str:
    if "/snapshots" in path or path.endswith("/snapshot"):
        return "Snapshots"
    if "alias" in path:
        return "Aliases"
    if "/index" in path:
        return "Indexes"
    if any(w in path for w in ("/search", "/query", "/recommend", "/discover", "/facet")):
        return "Search"
    if "/points" in path:
        return "Points"
    if path.startswith("/collections"):
        return "Collections"
    return "Service"


def _own_operation(method: str, path: str) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", path)
    ]
    known = OWN.get((method, path))
    if known is not None:
        tag, summary, description = known
    else:
        tag = _tag(path)
        summary = f"{method} {path}"
        description = (
            "Served as Qdrant serves it; Qdrant's current schema no longer describes this "
            "route (see the Query API for its successor)."
        )
    operation: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "description": description,
        "operationId": re.sub(r"\W+", "_", f"{method}_{path}".lower()).strip("_"),
        "responses": {"200": {"description": "successful operation"}},
    }
    if params:
        operation["parameters"] = params
    if method in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return operation


def document(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The OpenAPI document of the routes `pairs` ((method, declared path) each)."""
    qdrant = qdrant_schema()
    paths: dict[str, dict[str, Any]] = {}
    for method, declared in pairs:
        path = openapi_path(declared)
        theirs = qdrant["paths"].get(path, {}).get(method.lower())
        if theirs is not None and (method, path) not in OWN:
            operation = copy.deepcopy(theirs)
        else:
            operation = _own_operation(method, path)
        if (method, path) in EXPLAINED:
            operation = with_explain(operation)
        paths.setdefault(path, {})[method.lower()] = operation
    tags = [t for t in qdrant.get("tags", []) if t["name"] != "Distributed"]
    tags.append({"name": "Dashboard", "description": "Tessera's web dashboard."})
    return {
        "openapi": qdrant.get("openapi", "3.0.1"),
        "info": {
            "title": "Tessera API",
            "description": (
                "The REST API of Tessera, a vector database that speaks Qdrant's API "
                f"(version {QDRANT_API_VERSION}). Operations Qdrant also has are described "
                "by Qdrant's own schema: " + qdrant["info"]["x-source"]
            ),
            "version": __version__,
            "license": qdrant["info"].get("license"),
        },
        "tags": tags,
        "security": qdrant.get("security", []),
        "paths": paths,
        "components": qdrant.get("components", {}),
    }


def routes_of(request: Request) -> list[tuple[str, str]]:
    return [
        (method, route.path)
        for route in request.app.routes
        if isinstance(route, Route)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]


async def openapi_json(request: Request) -> Response:
    return json_response(document(routes_of(request)))
