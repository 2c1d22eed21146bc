"""The web dashboard (`/dashboard`), its projection route and `/openapi.json`.

REST: the projection's shape, its PCA (points on a plane in 8-D come back on that plane),
its sampling (uniform, seeded, filtered, by ids) and its errors in Qdrant's shape; the
static files (public, offline: no URL outside the server, traversal refused); the OpenAPI
document (every served route, Qdrant's own operations where Qdrant has the route).

Browser: a real headless Chromium (Debian's `chromium`, driven by Playwright's Python
package with `executable_path`, since Playwright's own browser download is not available
offline) walks through the pages as a user would, in one browser session: the collection
list, creating a collection, an upsert through the console, browsing, filtering and "find
similar", the map (the canvas has dots), a snapshot, the recall plot, a query's explain
(plan table and stage bar), the API reference;
then a server with an API key, where the page asks for the key.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tessera.api.app import _routes, route_methods
from tessera.api.dashboard import static_file
from tessera.api.openapi import openapi_path
from tessera.collection.projection import sample_limit
from tests.conftest import CollectionFactory, ServerProcess

pytestmark = pytest.mark.server_only(reason="the dashboard is served by the server")

API_KEY = "dashboard-test-key-0123456789"
PROJECTION = "/dashboard/api/collections/{}/projection"


def projection(http: httpx.Client, name: str, **body: Any) -> httpx.Response:
    return http.post(PROJECTION.format(name), json=body)


def create(http: httpx.Client, name: str, body: dict[str, Any]) -> None:
    response = http.put(f"/collections/{name}", json=body)
    assert response.status_code == 200, response.text


def upsert(http: httpx.Client, name: str, points: list[dict[str, Any]]) -> None:
    response = http.put(f"/collections/{name}/points?wait=true", json={"points": points})
    assert response.status_code == 200, response.text


def error_of(response: httpx.Response) -> str:
    message: str = response.json()["status"]["error"]
    return message


# --------------------------------------------------------------------------------------------
# The projection route


@pytest.fixture
def plane(http: httpx.Client, collection: CollectionFactory) -> tuple[str, np.ndarray]:
    """200 points of 8-D on a plane: 10*a along one direction, b along another, a tiny
    noise elsewhere; payload `group` (a, b, c by id % 3) and `a` (the first coordinate)."""
    name = collection()
    create(http, name, {"vectors": {"size": 8, "distance": "Euclid"}})
    rng = np.random.default_rng(7)
    coords = rng.normal(size=(200, 2))
    basis = np.linalg.qr(rng.normal(size=(8, 2)))[0].T  # two orthonormal directions
    vectors = (coords * [10.0, 1.0]) @ basis + rng.normal(scale=1e-3, size=(200, 8))
    upsert(
        http,
        name,
        [
            {"id": i, "vector": vectors[i].tolist(), "payload": {"group": "abc"[i % 3], "a": i}}
            for i in range(200)
        ],
    )
    return name, coords


def test_projection_shape_and_pca(http: httpx.Client, plane: tuple[str, np.ndarray]) -> None:
    name, coords = plane
    response = projection(http, name, sample=200, color_by="group")
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["matched"] == 200 and result["sampled"] == 200 and result["dim"] == 8
    points = result["points"]
    assert sorted(p["id"] for p in points) == list(range(200))
    assert all(set(p) == {"id", "x", "y", "color"} for p in points)
    assert all(p["color"] == "abc"[p["id"] % 3] for p in points)
    first, second = result["explained_variance"]
    assert first > 0.95 and 0 < second < 0.05 and first + second > 0.9999
    # The map is the plane itself: distances between points are kept (up to the noise), the
    # first axis is the direction of 10*a (up to its sign).
    by_id = sorted(points, key=lambda p: p["id"])
    xy = np.array([[p["x"], p["y"]] for p in by_id])
    plane_xy = coords * [10.0, 1.0]
    mapped = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    original = np.linalg.norm(plane_xy[:, None] - plane_xy[None], axis=2)
    assert np.abs(mapped - original).max() < 0.01
    assert abs(np.corrcoef(xy[:, 0], coords[:, 0])[0, 1]) > 0.99


def test_projection_sample_filter_ids(http: httpx.Client, plane: tuple[str, np.ndarray]) -> None:
    name, _ = plane
    first = projection(http, name, sample=30, seed=5).json()["result"]
    again = projection(http, name, sample=30, seed=5).json()["result"]
    other = projection(http, name, sample=30, seed=6).json()["result"]
    ids = [p["id"] for p in first["points"]]
    assert len(ids) == len(set(ids)) == 30 and set(ids) <= set(range(200))
    assert ids == [p["id"] for p in again["points"]]
    assert ids != [p["id"] for p in other["points"]]
    assert first["matched"] == 200
    assert all(p["color"] is None for p in first["points"])  # no color_by

    group_a = {"must": [{"key": "group", "match": {"value": "a"}}]}
    filtered = projection(http, name, sample=1000, filter=group_a, color_by="a").json()["result"]
    assert filtered["matched"] == filtered["sampled"] == 67  # ids 0, 3, ..., 198
    assert sorted(p["id"] for p in filtered["points"]) == list(range(0, 200, 3))
    assert all(p["color"] == p["id"] for p in filtered["points"])

    chosen = projection(http, name, ids=[5, 1, 7, 123456]).json()["result"]
    assert sorted(p["id"] for p in chosen["points"]) == [1, 5, 7]
    assert chosen["matched"] == 3


def test_projection_vectors_of_other_kinds(
    http: httpx.Client, collection: CollectionFactory
) -> None:
    name = collection()
    create(
        http,
        name,
        {
            "vectors": {
                "dense": {"size": 3, "distance": "Dot"},
                "multi": {
                    "size": 2,
                    "distance": "Dot",
                    "multivector_config": {"comparator": "max_sim"},
                },
            },
            "sparse_vectors": {"words": {}},
        },
    )
    upsert(
        http,
        name,
        [
            {
                "id": i,
                "vector": {
                    "dense": [i, 1.0, 0.0],
                    "multi": [[i, 0.0], [i, 2.0 * i]],
                    "words": {"indices": [i], "values": [1.0]},
                },
            }
            for i in range(1, 6)
        ]
        + [{"id": 9, "vector": {"dense": [0.0, 0.0, 1.0]}}],
    )
    dense = projection(http, name, using="dense").json()["result"]
    assert dense["sampled"] == 6 and dense["dim"] == 3
    multi = projection(http, name, using="multi").json()["result"]
    # Point 9 has no multivector; the others are projected by the mean of their rows.
    assert multi["matched"] == 5 and multi["dim"] == 2
    assert sorted(p["id"] for p in multi["points"]) == [1, 2, 3, 4, 5]
    sparse = projection(http, name, using="words")
    assert sparse.status_code == 400 and "sparse vector `words`" in error_of(sparse)
    unnamed = projection(http, name)
    assert unnamed.status_code == 400
    assert "Not existing vector name" in error_of(unnamed)


def test_projection_errors(http: httpx.Client, collection: CollectionFactory) -> None:
    name = collection()
    create(http, name, {"vectors": {"size": 2, "distance": "Cosine"}})
    empty = projection(http, name).json()["result"]
    assert empty == {
        "points": [],
        "matched": 0,
        "sampled": 0,
        "dim": 2,
        "explained_variance": [0.0, 0.0],
    }
    upsert(http, name, [{"id": 1, "vector": [1.0, 0.0], "payload": {"tag": {"k": [1, "x"]}}}])
    one = projection(http, name, color_by="tag").json()["result"]
    assert [(p["id"], p["x"], p["y"]) for p in one["points"]] == [(1, 0.0, 0.0)]
    assert one["points"][0]["color"] == '{"k":[1,"x"]}'  # an object's JSON, not Python's repr

    cases: list[tuple[dict[str, Any], str]] = [
        ({"sample": 0}, "`sample` must be between 1 and 10000"),
        ({"sample": 10001}, "`sample` must be between 1 and 10000"),
        ({"sample": "many"}, "`sample` must be an integer"),
        ({"sample": True}, "`sample` must be an integer"),
        ({"seed": -1}, "`seed` must be a non-negative integer"),
        ({"seed": 1.5}, "`seed` must be an integer"),
        ({"using": 3}, "`using` must be a vector name"),
        ({"color_by": ["a"]}, "`color_by` must be a payload key"),
        ({"ids": 5}, "`ids` must be a list of point ids"),
        ({"ids": [-1]}, ""),
        ({"ids": list(range(10_001))}, "at most 10000 `ids` can be projected"),
        ({"filter": {"must": 3}}, ""),
        ({"limit": 3}, "unknown field `limit`"),
        ({"using": "nope"}, "Not existing vector name error: vector `nope`"),
    ]
    for body, words in cases:
        response = projection(http, name, **body)
        assert response.status_code == 400, (body, response.text)
        assert words in error_of(response), (body, response.text)
    not_json = http.post(
        PROJECTION.format(name), content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and "Format error in JSON body" in error_of(not_json)
    # Large vectors: fewer points at once (the SVD's cost), refused beyond that for `ids`.
    assert (sample_limit(2), sample_limit(4096), sample_limit(65536)) == (10_000, 488, 30)
    wide = collection()
    create(http, wide, {"vectors": {"size": 65536, "distance": "Dot"}})
    upsert(http, wide, [{"id": i, "vector": [float(i)] * 65536} for i in range(2)])
    assert projection(http, wide, sample=10_000).json()["result"]["sampled"] == 2
    refused = projection(http, wide, ids=list(range(31)))
    assert refused.status_code == 400
    assert "at most 30 `ids` can be projected (vectors of 65536 dimensions)" in error_of(refused)
    missing = projection(http, name + "_missing")
    assert missing.status_code == 404
    assert error_of(missing) == f"Not found: Collection `{name}_missing` doesn't exist!"


# --------------------------------------------------------------------------------------------
# Static files and /openapi.json


def shipped_files() -> list[str]:
    root = resources.files("tessera.dashboard")
    out: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.name.startswith(("_", ".")):
                continue
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            else:
                out.append(prefix + child.name)

    walk(root, "")
    return sorted(out)


def test_static_files(http: httpx.Client) -> None:
    files = shipped_files()
    assert {"index.html", "style.css", "js/app.js", "qdrant-openapi.json"} <= set(files)
    page = http.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert http.get("/dashboard/").text == page.text
    for name in files:
        response = http.get(f"/dashboard/{name}")
        assert response.status_code == 200, name
        if name.endswith(".js"):
            assert response.headers["content-type"].startswith("text/javascript"), name
        if name != "qdrant-openapi.json":  # its license names the license's URL
            # Offline: nothing is fetched from anywhere but this server.
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", response.text), name
        # Every module a script imports ships too.
        for imported in re.findall(r'from "\./([\w/]+\.js)"', response.text):
            assert f"js/{imported}" in files, (name, imported)
    outside = [
        "/dashboard/..%2Fapi%2Fapp.py",
        "/dashboard//etc/passwd",  # an absolute path: joinpath would restart at the root
        "/dashboard/js//etc/passwd",
        "/dashboard/%2Fetc%2Fpasswd",
        "/dashboard/js/..%2F..%2F__init__.py",
        "/dashboard/a%00b",
    ]
    for bad in ("/dashboard/__init__.py", "/dashboard/nope.js", "/dashboard/.hidden", *outside):
        refused = http.get(bad)
        assert refused.status_code == 404, (bad, refused.text)
        assert "root:" not in refused.text
        assert 0 <= refused.json()["time"] < 60, bad  # the envelope's time, not a clock reading
    for relative in ("/etc/passwd", "js//etc/passwd", "../__init__.py", "js/", ""):
        assert static_file(relative) is None, relative


def test_openapi_lists_what_is_served(http: httpx.Client) -> None:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["info"]["title"] == "Tessera API" and doc["openapi"].startswith("3.")
    served = {(m.lower(), openapi_path(p)) for m, p in route_methods(_routes())}
    listed = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert listed == served
    # Qdrant's own operation where Qdrant has the route; Tessera's where it does not.
    points = "/collections/{collection_name}/points/{id}"
    assert doc["paths"][points]["get"]["operationId"] == "get_point"
    assert doc["paths"]["/collections/{collection_name}/points/query"]["post"]["requestBody"]
    for route in ("query", "search"):  # Tessera's `explain` extension, documented
        extended = doc["paths"][f"/collections/{{collection_name}}/points/{route}"]["post"]
        assert "Tessera extension" in extended["description"]
        assert "segments" in json.dumps(extended["x-tessera-explain"])
    own = doc["paths"]["/dashboard/api/collections/{collection_name}/projection"]["post"]
    assert own["tags"] == ["Dashboard"] and "PCA" in own["description"]
    schemas = doc["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', response.text))
    assert refs and refs <= set(schemas)
    assert "Apache" in doc["info"]["description"]


# --------------------------------------------------------------------------------------------
# The browser


def chromium_path() -> str:
    """Debian's chromium; without it the browser tests fail (`make install` installs it),
    unless this machine has no apt-get to install it with."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("no chromium, and no apt-get to install Debian's chromium package with")
    pytest.fail("chromium is not installed: `make install` installs it (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for every browser test of this module."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `make install` (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield instance
        finally:
            instance.close()


def answer_key_dialog(page: Any, key: str) -> None:
    """Once the page asks for a key, give it `key` ("" forgets the key kept)."""
    page.wait_for_selector("#key-dialog[open]")
    page.fill("#key-input", key)
    page.click("#key-ok")


@pytest.fixture
def page_at(browser: Any) -> Iterator[Callable[[str], Any]]:
    """`page_at(base_url)`: a fresh page (own storage) whose script errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(base: str) -> Any:
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        # A wait ends as soon as the page is there; the bound is for a loaded 2-core machine
        # (a snapshot, the recall plot's exact searches), where 10 s was within reach.
        context.set_default_timeout(30_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Whatever the page's Content-Security-Policy blocks is reported on the console.
        page.on(
            "console",
            lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, errors


def test_browser_walkthrough(
    server: ServerProcess, page_at: Callable[[str], Any], collection: CollectionFactory
) -> None:
    name = collection()
    page = page_at(server.url)
    page.goto("/dashboard")
    page.wait_for_selector("#collections-table")

    # Create a collection with the form.
    page.click("text=Create collection")
    page.fill("#new-name", name)
    page.fill("#new-size", "4")
    page.select_option("#new-distance", "Euclid")
    page.click("#create-collection")
    row = page.locator(f'tr[data-collection="{name}"]')
    row.wait_for()
    assert row.locator(".points-count").inner_text() == "0"

    # Upsert through the console.
    points = [
        {"id": i, "vector": [i, i % 5, 1.0, -i], "payload": {"color": ["red", "blue"][i % 2]}}
        for i in range(1, 31)
    ]
    page.goto("/dashboard#/console")
    page.select_option("#console-method", "PUT")
    page.fill("#console-path", f"/collections/{name}/points?wait=true")
    page.fill("#console-body", json.dumps({"points": points}))
    page.click("#console-send")
    page.wait_for_selector('#console-status[data-status="200"]')
    assert '"status": "completed"' in page.inner_text("#console-output")
    assert f"/collections/{name}/points?wait=true" in page.inner_text("#console-history")

    # Browse: a page of 20, the next page, a filter row, then "find similar".
    page.goto(f"/dashboard#/points/{name}")
    page.wait_for_selector(".card.point")
    assert page.locator(".card.point").count() == 20
    assert page.locator(".card.point").first.get_attribute("data-id") == "1"
    page.click("#next-page")
    page.wait_for_selector('.card.point[data-id="21"]')
    assert page.locator(".card.point").count() == 10
    page.fill(".filter-key", "color")
    page.fill(".filter-value", "red")
    page.click("#scroll-button")
    page.wait_for_selector('.card.point[data-id="2"]')
    ids = page.eval_on_selector_all(".card.point", "cards => cards.map(c => c.dataset.id)")
    assert ids == [str(i) for i in range(2, 31, 2)]
    page.locator('.card.point[data-id="10"] button.similar').click()
    page.wait_for_selector("text=Similar to 10")
    similar = page.eval_on_selector_all(".card.point", "cards => cards.map(c => c.dataset.id)")
    assert similar[:4] == ["12", "8", "6", "14"]  # red only (the filter holds), nearest first

    # The map: the server's projection, drawn.
    page.goto(f"/dashboard#/visualize/{name}")
    page.wait_for_selector('#map-canvas[data-points="30"]')
    assert "Sample: 30 of 30 points" in page.inner_text("#map-status")
    colored = page.evaluate(
        """() => {
            const c = document.getElementById('map-canvas');
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i] !== 255 || data[i + 1] !== 255 || data[i + 2] !== 255) n++;
            }
            return n;
        }"""
    )
    assert colored > 30 * 10  # 30 dots of a few pixels each
    assert "red (15)" in page.inner_text("#map-legend")
    # A click on a dot opens its point.
    dot = page.evaluate(
        """() => {
            const c = document.getElementById('map-canvas');
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i] !== 255 || data[i + 1] !== 255 || data[i + 2] !== 255) {
                    const r = window.devicePixelRatio || 1;
                    return [((i / 4) % c.width) / r, Math.floor(i / 4 / c.width) / r];
                }
            }
            return null;
        }"""
    )
    page.locator("#map-canvas").click(position={"x": dot[0] + 1, "y": dot[1] + 2})
    page.wait_for_url(re.compile(r"#/points/.*\?id=\d+$"))
    opened = page.url.rsplit("=", 1)[1]
    page.wait_for_selector(f'.card.point[data-id="{opened}"]')
    assert page.locator(".card.point").count() == 1

    page.goto(f"/dashboard#/visualize/{name}")
    page.wait_for_selector('#map-canvas[data-points="30"]')
    page.fill("#map-query", "10")
    page.fill("#map-query-limit", "5")
    page.click("#map-query-draw")
    page.wait_for_selector('#map-canvas[data-points="6"]')  # the query point and its 5

    # A snapshot, listed by the page as by the API.
    page.goto(f"/dashboard#/snapshots/{name}")
    page.click("#create-snapshot")
    page.wait_for_selector("#snapshots-table tr[data-snapshot]")
    shown = page.eval_on_selector_all(
        "#snapshots-table tr[data-snapshot]", "rows => rows.map(r => r.dataset.snapshot)"
    )
    listed = httpx.get(f"{server.url}/collections/{name}/snapshots").json()["result"]
    assert shown == [s["name"] for s in listed] and len(shown) == 1
    # Restore: the page downloads the snapshot and uploads it back.
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#snapshots-table tr[data-snapshot] >> text=Restore")
    page.wait_for_selector(f"text={name} restored from {shown[0]}")
    count = httpx.post(f"{server.url}/collections/{name}/points/count", json={"exact": True})
    assert count.json()["result"]["count"] == 30
    # An alias, made on the same page.
    page.fill("#alias-name", f"{name}_alias")
    page.select_option("#alias-collection", name)
    page.click("text=Create or move alias")
    page.wait_for_selector(f"#aliases-table >> text={name}_alias")
    aliases = httpx.get(f"{server.url}/collections/{name}/aliases").json()["result"]["aliases"]
    assert aliases == [{"alias_name": f"{name}_alias", "collection_name": name}]

    # Recall (this small collection is searched exactly at every ef: recall 1).
    page.goto(f"/dashboard#/quality/{name}")
    page.fill("#quality-queries", "5")
    page.fill("#quality-efs", "4, 16")
    page.click("#quality-run")
    page.wait_for_selector("#quality-table .recall")
    recalls = page.eval_on_selector_all(".recall", "cells => cells.map(c => c.textContent)")
    assert recalls == ["1.0000", "1.0000"]

    # Explain: a query by id under a filter; this small unindexed collection is scanned
    # exactly, the plan of each segment and the bar of stage times shown as text.
    page.goto(f"/dashboard#/explain/{name}")
    page.fill("#explain-query", "10")
    page.fill(
        "#explain-filter", json.dumps({"must": [{"key": "color", "match": {"value": "red"}}]})
    )
    page.click("#explain-run")
    page.wait_for_selector(".explain-table tr[data-plan]")
    plans = page.eval_on_selector_all(
        ".explain-table tr[data-plan]", "r => r.map(x => x.dataset.plan)"
    )
    assert "exact" in plans and set(plans) <= {"exact", "skipped"}
    assert page.locator("#explain-results li").count() == 10  # red points but 10 itself: 14
    assert "no HNSW graph" in page.inner_text(".explain-table")
    assert page.locator(".stage-bar .stage").count() >= 3  # filter, search, merge
    assert "filter" in page.inner_text(".stage-legend")

    # The API reference, from /openapi.json.
    page.goto("/dashboard#/api")
    page.wait_for_selector('details.op[data-path="/collections/{collection_name}/points/query"]')
    assert page.locator("details.op").count() == len(route_methods(_routes()))


def test_browser_asks_for_the_key(
    server_factory: Callable[..., ServerProcess], page_at: Callable[[str], Any], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"service:\n  api_key: {API_KEY}\n")
    secured = server_factory(config=config)
    with httpx.Client(base_url=secured.url, timeout=30) as http:
        # The page is public; the API, the projection included, wants the key.
        assert http.get("/dashboard").status_code == 200
        assert http.get("/dashboard/js/app.js").status_code == 200
        assert http.get("/collections").status_code == 401
        assert projection(http, "c").status_code == 401
        assert http.get("/openapi.json").status_code == 401
        keyed = {"api-key": API_KEY}
        create_body = {"vectors": {"size": 2, "distance": "Dot"}}
        assert http.put("/collections/keyed", json=create_body, headers=keyed).status_code == 200
        assert http.post(PROJECTION.format("keyed"), json={}, headers=keyed).status_code == 200

    page = page_at(secured.url)
    page.goto("/dashboard")
    page.wait_for_selector("#key-dialog[open]")
    assert "401" in page.inner_text("#key-reason")
    page.fill("#key-input", "not-the-key")
    page.click("#key-ok")
    answer_key_dialog(page, API_KEY)  # asked again
    page.wait_for_selector('tr[data-collection="keyed"]')
    assert page.evaluate("sessionStorage.getItem('tessera-api-key')") == API_KEY
    # The key stays for the tab: another page of the app needs no new prompt.
    page.goto("/dashboard#/visualize/keyed")
    page.wait_for_selector("#map-status")
    assert not page.locator("#key-dialog[open]").count()
    # Forgotten, then the prompt cancelled on "Refresh": the 401 is shown, nothing thrown.
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/dashboard")
    page.wait_for_selector('tr[data-collection="keyed"]')
    page.evaluate("sessionStorage.removeItem('tessera-api-key')")
    page.click('button:text-is("Refresh")')
    page.wait_for_selector("#key-dialog[open]")
    page.click("#key-cancel")
    page.wait_for_selector("#collections-table pre.error")
    assert "401" in page.inner_text("#collections-table pre.error")
    assert errors == []


def test_static_content_off_serves_no_dashboard(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """`service.enable_static_content: false` turns the web UI off, as in Qdrant (404); the
    API is served as before."""
    server = server_factory(env={"QDRANT__SERVICE__ENABLE_STATIC_CONTENT": "false"})
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/dashboard").status_code == 404
        assert http.get("/dashboard/js/app.js").status_code == 404
        assert http.get("/collections").status_code == 200


def test_browser_console_takes_qdrant_console_requests(
    server_factory: Callable[..., ServerProcess], page_at: Callable[[str], Any]
) -> None:
    """Requests written as Qdrant's console and its docs write them (`PUT collections/x`
    then the JSON body) are sent as they say, whatever the method picker shows; of several,
    the one at the cursor."""
    server = server_factory()
    page = page_at(server.url)
    page.goto("/dashboard#/console")
    create = 'PUT collections/syntax\n{"vectors": {"size": 2, "distance": "Dot"}}'
    page.fill("#console-body", create)
    page.click("#console-send")
    page.wait_for_selector('#console-status[data-status="200"]')
    assert page.input_value("#console-method") == "PUT"
    assert page.input_value("#console-path") == "/collections/syntax"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        info = http.get("/collections/syntax").json()["result"]
        assert info["config"]["params"]["vectors"] == {"size": 2, "distance": "Dot"}
    page.fill("#console-body", "GET collections\n\nGET /collections/syntax/exists\n")
    page.evaluate(
        "() => { const t = document.getElementById('console-body');"
        " t.selectionStart = t.selectionEnd = t.value.length; }"
    )
    page.click("#console-send")
    deadline = time.monotonic() + 15
    while '"exists"' not in page.inner_text("#console-output") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert '"exists": true' in page.inner_text("#console-output")
    assert page.input_value("#console-path") == "/collections/syntax/exists"


def test_browser_key_dialog_escape_and_the_header_key_button(
    server_factory: Callable[..., ServerProcess], page_at: Callable[[str], Any], tmp_path: Path
) -> None:
    """Escape closes the key dialog as Cancel does: the waiting request answers its 401
    (it waited forever, and every later one behind it); the header's "API key" button gives
    another key for the tab, or forgets it."""
    config = tmp_path / "config.yaml"
    config.write_text(f"service:\n  api_key: {API_KEY}\n")
    secured = server_factory(config=config)
    made = httpx.put(
        f"{secured.url}/collections/keyed",
        json={"vectors": {"size": 2, "distance": "Dot"}},
        headers={"api-key": API_KEY},
        timeout=30,
    )
    assert made.status_code == 200
    page = page_at(secured.url)
    page.goto("/dashboard")
    page.wait_for_selector("#key-dialog[open]")
    page.keyboard.press("Escape")
    page.wait_for_selector("pre.error")
    assert "401" in page.inner_text("pre.error")
    page.click("#change-key")
    answer_key_dialog(page, API_KEY)
    page.wait_for_selector('tr[data-collection="keyed"]')
    assert page.evaluate("() => sessionStorage.getItem('tessera-api-key')") == API_KEY
    page.click("#change-key")
    answer_key_dialog(page, "")
    page.wait_for_selector("#key-dialog[open]")  # the page again, without a key: asked
    assert page.evaluate("() => sessionStorage.getItem('tessera-api-key')") is None


def test_browser_big_ids_sparse_collections_keyword_filters_and_console_comments(
    server_factory: Callable[..., ServerProcess], page_at: Callable[[str], Any]
) -> None:
    """Ids above 2^53 typed or linked are asked for by their own digits; a sparse-only
    collection's vectors are offered by Explain (Visualize says it has none to map); a value
    typed for a keyword-indexed key is text; the console drops `//` comments and sends
    nothing off this server."""
    server = server_factory()
    big = 2**64 - 1
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert (
            http.put(
                "/collections/big", json={"vectors": {"size": 2, "distance": "Dot"}}
            ).status_code
            == 200
        )
        body = {"points": [{"id": big, "vector": [1, 0], "payload": {"zip": "10115"}}]}
        assert http.put("/collections/big/points?wait=true", json=body).status_code == 200
        index = {"field_name": "zip", "field_schema": "keyword"}
        assert http.put("/collections/big/index?wait=true", json=index).status_code == 200
        sparse = {"sparse_vectors": {"words": {}}}
        assert http.put("/collections/words", json=sparse).status_code == 200
        point = {"id": 1, "vector": {"words": {"indices": [1, 5], "values": [0.5, 0.2]}}}
        assert (
            http.put("/collections/words/points?wait=true", json={"points": [point]}).status_code
            == 200
        )
    page = page_at(server.url)
    page.goto(f"/dashboard#/points/big?id={big}")
    page.wait_for_selector(f'.card.point[data-id="{big}"]')
    page.goto("/dashboard#/points/big")
    page.wait_for_selector(".card.point")
    page.fill(".filter-key", "zip")
    page.fill(".filter-value", "10115")
    page.click("#scroll-button")
    page.wait_for_function(
        "() => document.getElementById('points-status').textContent.startsWith('1 points')"
    )
    page.goto("/dashboard#/explain/words")
    page.wait_for_selector("#explain-using")
    assert page.input_value("#explain-using") == "words"
    page.goto("/dashboard#/visualize/words")
    page.wait_for_selector("#map-status")
    assert "no dense vectors" in page.inner_text("#map-status")
    # A phone's width: the collections table scrolls inside itself, not the page sideways.
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/dashboard#/collections")
    page.wait_for_selector('tr[data-collection="big"]')
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/dashboard#/console")
    page.fill("#console-body", "// list them\nGET collections // every one\n")
    page.click("#console-send")
    page.wait_for_selector('#console-status[data-status="200"]')
    page.fill("#console-path", "//example.com/collections")
    page.fill("#console-body", "")
    page.select_option("#console-method", "GET")
    page.click("#console-send")
    assert "this server only" in page.inner_text("#console-status")


def test_browser_access_page_makes_jwts_the_server_takes(
    server_factory: Callable[..., ServerProcess], page_at: Callable[[str], Any], tmp_path: Path
) -> None:
    """The Access page signs JWTs in the browser with the API key, as Qdrant's web UI makes
    them: a token for one collection, read only, lists that collection and may not write
    it; a global read token reads everything."""
    config = tmp_path / "config.yaml"
    config.write_text(f"service:\n  api_key: {API_KEY}\n  jwt_rbac: true\n")
    secured = server_factory(config=config)
    keyed = {"api-key": API_KEY}
    for name in ("open", "closed"):
        made = httpx.put(
            f"{secured.url}/collections/{name}",
            json={"vectors": {"size": 2, "distance": "Dot"}},
            headers=keyed,
            timeout=30,
        )
        assert made.status_code == 200
    page = page_at(secured.url)
    page.goto("/dashboard#/jwt")
    answer_key_dialog(page, API_KEY)  # the collections list wants the key
    page.wait_for_selector(".jwt-row")
    assert page.input_value("#jwt-secret") == API_KEY

    def generated(ready: str) -> dict[str, str]:
        """Generate, wait until `ready` (a page expression) holds: the token's header."""
        page.click("#jwt-generate")
        page.wait_for_function(ready)
        return {"authorization": f"Bearer {page.inner_text('#jwt-token').strip()}"}

    page.select_option(".jwt-collection", "open")
    page.select_option(".jwt-access", "r")
    bearer = generated(
        "() => document.getElementById('jwt-token').textContent.split('.').length === 3"
    )
    listed = httpx.get(f"{secured.url}/collections", headers=bearer, timeout=30).json()
    assert [c["name"] for c in listed["result"]["collections"]] == ["open"]
    write = {"points": [{"id": 1, "vector": [1, 0]}]}
    refused = httpx.put(f"{secured.url}/collections/open/points", json=write, headers=bearer)
    assert refused.status_code == 403
    assert httpx.get(f"{secured.url}/collections/closed", headers=bearer).status_code == 403
    page.click("#jwt-check")
    page.wait_for_function("() => document.getElementById('jwt-token').dataset.check === '200'")
    page.select_option("#jwt-global", "r")
    bearer = generated(
        "() => JSON.parse(document.getElementById('jwt-token').dataset.claims).access === 'r'"
    )
    assert httpx.get(f"{secured.url}/collections/closed", headers=bearer).status_code == 200


def test_browser_graph_draws_a_point_and_its_neighbours(
    server_factory: Callable[..., ServerProcess], page_at: Callable[[str], Any]
) -> None:
    """The Graph page, as Qdrant's web UI explores a neighbourhood: a point and its nearest
    neighbours (`limit` of them) as nodes and edges; another start point redraws it."""
    server = server_factory()
    points = [{"id": i, "vector": [1.0, i / 30], "payload": {"n": i}} for i in range(30)]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        made = http.put("/collections/near", json={"vectors": {"size": 2, "distance": "Cosine"}})
        assert made.status_code == 200
        written = http.put("/collections/near/points?wait=true", json={"points": points})
        assert written.status_code == 200
    page = page_at(server.url)
    page.goto("/dashboard#/graph/near")
    page.wait_for_selector('#graph-canvas[data-nodes="6"]')
    assert page.get_attribute("#graph-canvas", "data-edges") == "5"
    page.fill("#graph-start", "17")
    page.fill("#graph-limit", "3")
    page.click("#graph-draw")
    page.wait_for_selector('#graph-canvas[data-nodes="4"]')
    assert "4 points, 3 edges" in page.inner_text("#graph-status")


def test_browser_find_similar_by_the_vector_chosen(
    server_factory: Callable[..., ServerProcess], page_at: Callable[[str], Any]
) -> None:
    """With several named vectors, "Find similar" compares by the one picked (it always
    took the point's first)."""
    server = server_factory()
    vectors = {"a": {"size": 2, "distance": "Dot"}, "b": {"size": 2, "distance": "Dot"}}
    points = [
        {"id": 1, "vector": {"a": [1, 0], "b": [0, 1]}},
        {"id": 2, "vector": {"a": [1, 0.1], "b": [1, 0]}},
        {"id": 3, "vector": {"a": [0, 1], "b": [0, 2]}},
    ]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put("/collections/two", json={"vectors": vectors}).status_code == 200
        written = http.put("/collections/two/points?wait=true", json={"points": points})
        assert written.status_code == 200
    page = page_at(server.url)
    page.goto("/dashboard#/points/two")
    for using, nearest in (("b", "3"), ("a", "2")):
        page.wait_for_selector('.card.point[data-id="1"]')
        page.select_option("#similar-using", using)
        page.click('.card.point[data-id="1"] button.similar')
        page.wait_for_selector("text=Similar to 1")
        assert page.locator(".card.point").first.get_attribute("data-id") == nearest
        page.click("text=Back to scroll")


def test_browser_asks_once_for_requests_refused_together(
    server_factory: Callable[..., ServerProcess], page_at: Callable[[str], Any], tmp_path: Path
) -> None:
    """Requests refused for the key while its prompt is open, or answered only after it was
    given, use the key given: no second prompt for a 401 about the key it replaced."""
    config = tmp_path / "config.yaml"
    config.write_text(f"service:\n  api_key: {API_KEY}\n")
    secured = server_factory(config=config)
    page = page_at(secured.url)
    page.goto("/dashboard")
    page.wait_for_selector("#key-dialog[open]")
    page.click("#key-cancel")
    # The answer to one request comes late (after the key is given): fetch delayed by 1.5 s.
    page.evaluate(
        """() => {
          const plain = window.fetch;
          window.fetch = async (path, init) => {
            const answer = await plain(path, init);
            if (String(path).includes("late")) await new Promise((r) => setTimeout(r, 1500));
            return answer;
          };
          import("/dashboard/js/api.js").then((api) => Promise.all([
            api.send("GET", "/collections").then((r) => r.status),
            api.send("GET", "/collections?late=1").then((r) => r.status),
            api.send("GET", "/aliases").then((r) => r.status),
          ])).then((statuses) => { window.statuses = statuses; });
        }"""
    )
    answer_key_dialog(page, API_KEY)
    # Old code: the late 401 asked again (the dialog reopened, the request never answered).
    deadline = time.monotonic() + 15
    while page.evaluate("() => window.statuses") is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert page.evaluate("() => window.statuses") == [200, 200, 200]
    assert not page.locator("#key-dialog[open]").count()


def test_browser_named_vectors_and_refusals_that_are_not_about_the_key(
    http: httpx.Client,
    server: ServerProcess,
    page_at: Callable[[str], Any],
    collection: CollectionFactory,
) -> None:
    """On a collection of named vectors, vectors not shown, "find similar" compares by the
    first named vector (it sent no `using`: 400); a 403 that is not about a key's access (a
    recovery from outside the snapshots directory) is shown as an error, no key dialog."""
    name = collection()
    create(
        http,
        name,
        {
            "vectors": {
                "image": {"size": 2, "distance": "Dot"},
                "text": {"size": 3, "distance": "Dot"},
            }
        },
    )
    upsert(
        http,
        name,
        [
            {"id": i, "vector": {"image": [1.0, i / 10], "text": [0.0, 1.0, -i / 10]}}
            for i in range(1, 6)
        ],
    )
    page = page_at(server.url)
    page.goto(f"/dashboard#/points/{name}")
    page.wait_for_selector('.card.point[data-id="3"]')
    assert not page.is_checked("#with-vectors")
    page.locator('.card.point[data-id="3"] button.similar').click()
    page.wait_for_selector("text=Similar to 3")
    ids = page.eval_on_selector_all(".card.point", "cards => cards.map(c => c.dataset.id)")
    assert ids[:2] == ["5", "4"]  # by `image` (Dot [1, i/10] · [1, 0.3])

    recovered = page.evaluate(
        """async (name) => {
            const api = await import('/dashboard/js/api.js');
            const r = await api.send('PUT', `/collections/${name}/snapshots/recover`,
                                     {location: 'file:///etc/passwd'});
            return r.status;
        }""",
        name,
    )
    assert recovered == 403
    assert not page.locator("#key-dialog[open]").count()


def test_browser_snapshot_upload_asks_before_replacing(
    http: httpx.Client,
    server: ServerProcess,
    page_at: Callable[[str], Any],
    collection: CollectionFactory,
    tmp_path: Path,
) -> None:
    """The "Upload" button replaces the collection with the chosen file: asked first, as
    "Restore" is; dismissed, nothing is sent."""
    name = collection()
    create(http, name, {"vectors": {"size": 2, "distance": "Dot"}})
    upsert(http, name, [{"id": 1, "vector": [1.0, 0.0]}])
    made = http.post(f"/collections/{name}/snapshots?wait=true").json()["result"]["name"]
    snapshot = tmp_path / made
    snapshot.write_bytes(http.get(f"/collections/{name}/snapshots/{made}").content)
    upsert(http, name, [{"id": 2, "vector": [0.0, 1.0]}])  # not in the snapshot

    page = page_at(server.url)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/snapshots/upload" in r.url else None)
    asked: list[str] = []
    accept = [False]

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        if accept[0]:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    page.goto(f"/dashboard#/snapshots/{name}")
    page.wait_for_selector("#snapshot-file")
    page.set_input_files("#snapshot-file", str(snapshot))
    page.click('button:text-is("Upload")')
    page.wait_for_timeout(500)
    assert asked and "Replace collection" in asked[0]
    assert uploads == []
    count = http.post(f"/collections/{name}/points/count", json={"exact": True}).json()
    assert count["result"]["count"] == 2

    accept[0] = True
    page.click('button:text-is("Upload")')
    page.wait_for_selector(f"text={name} restored from")
    assert len(uploads) == 1
    count = http.post(f"/collections/{name}/points/count", json={"exact": True}).json()
    assert count["result"]["count"] == 1


def test_browser_keeps_point_ids_above_2_53_exact(
    http: httpx.Client,
    server: ServerProcess,
    page_at: Callable[[str], Any],
    collection: CollectionFactory,
) -> None:
    """Point ids go to 2^64 - 1, past what a JS number holds exactly (2^53): the points page
    shows them, finds similar points to them and deletes them by their exact digits."""
    name = collection()
    create(http, name, {"vectors": {"size": 2, "distance": "Dot"}})
    big, near = 2**64 - 1, 2**53 + 1
    upsert(
        http,
        name,
        [
            {"id": big, "vector": [1.0, 0.0], "payload": {"n": 2**60 + 3}},
            {"id": near, "vector": [0.9, 0.1]},
            {"id": 7, "vector": [0.0, 1.0]},
        ],
    )
    page = page_at(server.url)
    page.goto(f"/dashboard#/points/{name}")
    page.wait_for_selector(f'.card.point[data-id="{big}"]')
    ids = page.eval_on_selector_all(".card.point", "cards => cards.map(c => c.dataset.id)")
    assert sorted(ids) == sorted([str(big), str(near), "7"])
    assert str(2**60 + 3) in page.locator(f'.card.point[data-id="{big}"]').inner_text()
    page.locator(f'.card.point[data-id="{big}"] button.similar').click()
    page.wait_for_selector(f"text=Similar to {big}")
    similar = page.eval_on_selector_all(".card.point", "cards => cards.map(c => c.dataset.id)")
    # by the exact id (a rounded one names no point): the point itself is left out
    assert similar[0] == str(near) and str(big) not in similar
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(f'.card.point[data-id="{near}"] button.danger').click()
    page.wait_for_selector(f"text=Point {near} deleted")
    left = http.post(f"/collections/{name}/points/scroll", json={"limit": 10}).json()["result"]
    assert sorted(p["id"] for p in left["points"]) == [7, big]


def test_browser_tutorial_lessons_run_from_start_to_end(
    server_factory: Callable[..., ServerProcess], page_at: Callable[[str], Any]
) -> None:
    """Every lesson of the Tutorial page runs whole ("Run all") against a fresh server and
    again after itself: each request written there is one the server takes."""
    server = server_factory()
    page = page_at(server.url)
    lessons = ["quickstart", "filtering", "recommend", "hybrid", "multivector", "operations"]
    page.goto("/dashboard#/tutorial")
    page.wait_for_selector(".tutorial-lessons a")
    shown = page.eval_on_selector_all(
        ".tutorial-lessons a", "links => links.map(a => a.getAttribute('href'))"
    )
    assert shown == [f"#/tutorial/{lesson}" for lesson in lessons]
    for lesson in lessons * 2:
        page.goto(f"/dashboard#/tutorial/{lesson}")
        page.wait_for_selector(f'.tutorial-lessons a.active[href="#/tutorial/{lesson}"]')
        page.click("#tutorial-run-all")
        page.wait_for_function(
            "() => { const s = [...document.querySelectorAll('.tutorial-status')];"
            " return s.length && s.every(e => e.dataset.status) || s.some(e => e.dataset.status"
            " && !e.dataset.status.startsWith('2')); }"
        )
        codes = page.eval_on_selector_all(".tutorial-status", "s => s.map(e => e.dataset.status)")
        assert codes and all(code.startswith("2") for code in codes), (lesson, codes)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        found = http.post("/collections/tutorial/points/count", json={"exact": True}).json()
        assert found["result"]["count"] == 6
        assert http.get("/collections/tutorial/snapshots").json()["result"]
    # A step opens in the Console with its request, ready to change and send.
    page.goto("/dashboard#/tutorial/quickstart")
    page.click(".tutorial-step >> nth=3 >> text=Open in console")
    page.wait_for_selector("#console-body")
    assert page.input_value("#console-body").startswith("POST collections/tutorial/points/query")
