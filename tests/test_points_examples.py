"""Every HTTP example of the Points chapter (`tests/data/points.md`), run as written, in order.

The chapter's fenced `http` blocks are requests: a method and path line, then a JSON body.
They are sent in the order the chapter gives them, each to a collection with the vectors the
example implies (the chapter never creates one): a 3-dim unnamed vector for the plain
examples, `image` (4) and `text` (8) for the named ones, a sparse `text` for the sparse one,
a 4-dim unnamed vector for the batch. Each must answer 200 in Qdrant's envelope, its body
valid against the route's schema in Qdrant's OpenAPI document.

What the chapter writes that is not a request as such:
- `// ...` comments and trailing commas (JSONC, as the chapter illustrates): dropped before
  sending, as a reader would, since Qdrant's JSON parser (serde_json) accepts neither;
- a bare `"order_by": {...}` fragment with no method line: not a request, skipped;
- `{point_id}` in a path: the id of a point that exists at that moment;
- one example Qdrant itself refuses (`KNOWN_INVALID`): its sparse vector has six indices,
  one repeated, for five values, against the chapter's own rule ("The `indices` and `values`
  arrays must have the same length. And the `indices` must be unique."). It must answer
  Qdrant's 422 and write nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.openapi_check import assert_error, assert_ok

CHAPTER = Path(__file__).parent / "data" / "points.md"
FENCE = re.compile(r"```http\n(.*?)```", re.DOTALL)
REQUEST_LINE = re.compile(r"^(GET|PUT|POST|PATCH|DELETE) (/\S*)$")
SPEC_PATHS = {"{point_id}": "{id}"}  # the chapter's path parameter -> the OpenAPI document's

COLLECTIONS: dict[str, dict[str, Any]] = {
    "plain": {"vectors": {"size": 3, "distance": "Dot"}},
    "named": {
        "vectors": {
            "image": {"size": 4, "distance": "Dot"},
            "text": {"size": 8, "distance": "Cosine"},
        }
    },
    "sparse": {"sparse_vectors": {"text": {}}},
    "dim4": {"vectors": {"size": 4, "distance": "Dot"}},
}

# (line of the block in the chapter) -> Qdrant's status and a part of its answer
KNOWN_INVALID = {
    939: (422, "must be the same length as indices"),
}


@dataclass(frozen=True)
class Example:
    line: int
    method: str
    path: str
    body: Any

    @property
    def id(self) -> str:
        return (
            f"L{self.line} {self.method} {self.path.removeprefix('/collections/{collection_name}')}"
        )


def strip_jsonc(text: str) -> str:
    """JSON with the chapter's `//` line comments and trailing commas removed (no example
    has `//` inside a string)."""
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r",(\s*[}\]])", r"\1", text)


def examples() -> list[Example]:
    chapter = CHAPTER.read_text()
    out = []
    for match in FENCE.finditer(chapter):
        block = match.group(1)
        first, _, rest = block.partition("\n")
        request = REQUEST_LINE.match(first.strip())
        if request is None:
            continue  # a fragment of a body, not a request
        line = chapter.count("\n", 0, match.start()) + 1
        body = json.loads(strip_jsonc(rest)) if rest.strip() else None
        out.append(Example(line, request.group(1), request.group(2), body))
    return out


EXAMPLES = examples()


def target(example: Example) -> str:
    """The collection an example implies, from the vectors it sends or names."""
    text = json.dumps(example.body)
    if '"indices"' in text:
        return "sparse"
    if '"image"' in text or '"text"' in text:
        return "named"
    if re.search(r'"vector": \[(-?[\d.]+, ){3}-?[\d.]+\]', text):
        return "dim4"
    return "plain"


def _setup(http: httpx.Client, names: dict[str, str]) -> None:
    for kind, body in COLLECTIONS.items():
        assert_ok(http.put(f"/collections/{names[kind]}", json=body))
    plain = names["plain"]
    for field, schema in (("timestamp", "integer"), ("color", "keyword")):
        index = {"field_name": field, "field_schema": schema}
        assert_ok(http.put(f"/collections/{plain}/index?wait=true", json=index))
    # The chapter deletes vectors of points 0, 3 and 100 it never made: they exist here.
    points = [{"id": i, "vector": {"image": [0.1] * 4, "text": [0.2] * 8}} for i in (0, 3, 100)]
    assert_ok(http.put(f"/collections/{names['named']}/points?wait=true", json={"points": points}))


def _concrete(http: httpx.Client, path: str, collection: str) -> str:
    path = path.replace("{collection_name}", collection)
    if "{point_id}" in path:
        page = assert_ok(http.post(f"/collections/{collection}/points/scroll", json={"limit": 1}))
        assert page["points"], "no point left to read"
        path = path.replace("{point_id}", str(page["points"][0]["id"]))
    return path


@pytest.fixture(scope="module")
def answers(server: Any) -> Iterator[dict[int, tuple[httpx.Response, Any, Any]]]:
    """Each example's response, with the collection's points before and after it, from
    one run of the whole chapter in order."""
    suffix = uuid.uuid4().hex[:10]
    names = {kind: f"points_md_{kind}_{suffix}" for kind in COLLECTIONS}
    out: dict[int, tuple[httpx.Response, Any, Any]] = {}
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        _setup(http, names)
        try:
            for example in EXAMPLES:
                collection = names[target(example)]

                def snapshot(name: str = collection) -> Any:
                    page = http.post(
                        f"/collections/{name}/points/scroll",
                        json={"limit": 1000, "with_vector": True},
                    )
                    return page.json()["result"]["points"]

                before = snapshot()
                path = _concrete(http, example.path, collection)
                response = http.request(
                    example.method, path, json=example.body if example.body is not None else None
                )
                out[example.line] = (response, before, snapshot())
            yield out
        finally:
            for name in names.values():
                http.delete(f"/collections/{name}")


def test_chapter_has_its_examples() -> None:
    assert len(EXAMPLES) == 16  # 17 blocks, one a bare fragment
    assert {e.method for e in EXAMPLES} == {"PUT", "POST", "GET"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example(example: Example, answers: dict[int, tuple[httpx.Response, Any, Any]]) -> None:
    response, before, after = answers[example.line]
    if example.line in KNOWN_INVALID:
        status, text = KNOWN_INVALID[example.line]
        message = assert_error(response, status, text)
        assert message.startswith("Validation error in JSON body: ["), message
        assert after == before
        return
    spec_path = example.path
    for ours, theirs in SPEC_PATHS.items():
        spec_path = spec_path.replace(ours, theirs)
    assert_ok(response, example.method.lower(), spec_path)
