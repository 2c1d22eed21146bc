"""Check REST responses against Qdrant's own OpenAPI document (``spec/qdrant-openapi.json``).

The document is OpenAPI 3.0: its schemas are JSON Schema plus ``nullable``. They are turned
into plain JSON Schema (draft 2020-12) once: ``nullable: true`` becomes "or null", and a bare
``{"nullable": true}`` (schemars' way to write "or null" inside ``anyOf``) becomes
``{"type": "null"}``. ``$ref``s point into ``#/components/schemas/...`` and resolve because
every validated schema carries the converted ``components`` beside it.

Where the document is: ``TESSERA_OPENAPI_SPEC``, else ``shared/spec/`` inside or beside the
repository, else ``spec/`` in the repository. Without it the schema checks are skipped, loudly.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_CANDIDATES = (
    REPO_ROOT / "shared" / "spec" / "qdrant-openapi.json",
    REPO_ROOT.parent / "shared" / "spec" / "qdrant-openapi.json",
    REPO_ROOT / "spec" / "qdrant-openapi.json",
    REPO_ROOT / "tests" / "data" / "qdrant-openapi.json",
)

# Keywords that only annotate; a schema made of these alone constrains nothing.
_ANNOTATIONS = frozenset({"description", "default", "example", "deprecated", "title"})


def spec_path() -> Path | None:
    env = os.environ.get("TESSERA_OPENAPI_SPEC")
    if env:
        return Path(env)
    for candidate in SPEC_CANDIDATES:
        if candidate.is_file():
            return candidate
    return None


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema 2020-12 (recursively)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if set(converted) <= _ANNOTATIONS:
            return {**converted, "type": "null"}
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def load_spec() -> dict[str, Any]:
    path = spec_path()
    if path is None or not path.is_file():
        pytest.skip(
            "Qdrant's OpenAPI document was not found (set TESSERA_OPENAPI_SPEC or put it at "
            f"{SPEC_CANDIDATES[0]}); response schemas are not checked"
        )
    raw: dict[str, Any] = json.loads(path.read_text())
    return {"paths": raw["paths"], "components": to_json_schema(raw["components"])}


@functools.cache
def _validator_for(kind: str, key: str) -> Draft202012Validator:
    spec = load_spec()
    if kind == "component":
        if key not in spec["components"]["schemas"]:
            raise KeyError(f"no component schema named {key!r} in the OpenAPI document")
        schema: dict[str, Any] = {"$ref": f"#/components/schemas/{key}"}
    else:
        schema = json.loads(key)
    root = {**schema, "components": spec["components"]}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root)


def response_schema(method: str, path: str, status: int | str = 200) -> dict[str, Any]:
    """The JSON schema Qdrant documents for ``method path`` answering ``status``.

    ``path`` is the template as written in the document, e.g.
    ``/collections/{collection_name}/points/scroll``. Error statuses fall back to the
    document's ``4XX`` and ``default`` responses.
    """
    spec = load_spec()
    try:
        operation = spec["paths"][path][method.lower()]
    except KeyError:
        raise KeyError(f"the OpenAPI document has no operation {method.upper()} {path}") from None
    responses = operation["responses"]
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            content = responses[key].get("content", {}).get("application/json")
            if content is None:
                raise KeyError(f"{method.upper()} {path} -> {key} documents no JSON body")
            schema: dict[str, Any] = to_json_schema(content["schema"])
            return schema
    raise KeyError(f"{method.upper()} {path} documents no response {status}")


def _raise_first_error(validator: Draft202012Validator, instance: Any, what: str) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        best = errors[0]
        location = "/".join(str(p) for p in best.absolute_path) or "(root)"
        raise AssertionError(
            f"{what} does not match Qdrant's schema at {location}: {best.message}\n"
            f"instance: {json.dumps(instance)[:2000]}"
        )


def validate_component(name: str, instance: Any) -> None:
    """Assert that ``instance`` matches ``#/components/schemas/{name}``."""
    _raise_first_error(_validator_for("component", name), instance, f"component {name}")


def validate_response(method: str, path: str, body: Any, status: int | str = 200) -> None:
    """Assert that a whole response body matches what the route documents for ``status``."""
    schema = response_schema(method, path, status)
    validator = _validator_for("inline", json.dumps(schema, sort_keys=True))
    _raise_first_error(validator, body, f"{method.upper()} {path} -> {status}")


# --------------------------------------------------------------------------------------------
# Envelopes


def assert_ok(response: httpx.Response, method: str | None = None, path: str | None = None) -> Any:
    """A 200 in Qdrant's envelope ``{"result": ..., "status": "ok", "time": s}``.

    With ``method`` and ``path`` (the document's template) the body is also validated against
    the route's schema. Returns ``result``.
    """
    assert response.status_code == 200, f"{response.status_code}: {response.text[:2000]}"
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("status") == "ok", body
    assert "result" in body, body
    assert isinstance(body.get("time"), int | float) and not isinstance(body["time"], bool), body
    assert body["time"] >= 0, body
    assert set(body) <= {"result", "status", "time", "usage"}, sorted(body)
    if method is not None and path is not None:
        validate_response(method, path, body, 200)
    return body["result"]


def assert_error(response: httpx.Response, status: int, contains: str | None = None) -> str:
    """Qdrant's error envelope ``{"status": {"error": "..."}, "time": s}`` with ``status``.

    Returns the error message (asserting it contains ``contains`` when given).
    """
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:2000]}"
    )
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) <= {"status", "time", "usage", "result"}, sorted(body)
    assert body.get("result") is None, body
    assert isinstance(body.get("status"), dict), body
    message = body["status"].get("error")
    assert isinstance(message, str) and message, body
    assert isinstance(body.get("time"), int | float) and not isinstance(body["time"], bool), body
    if spec_path() is not None:
        validate_component("ErrorResponse", body)
    if contains is not None:
        assert contains in message, message
    return message
