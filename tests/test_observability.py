"""Observability and the standalone cluster routes: `/metrics` (parsed as Prometheus text),
`/telemetry`, `/issues`, `/collections/{c}/optimizations`, `/cluster`,
`/collections/{c}/cluster` (REST and gRPC), `/quotas`, and the cluster routes a standalone
Qdrant refuses."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tessera.api.request_stats import RequestStats, anonymized
from tessera.collection import issues as board
from tests.conftest import free_port
from tests.openapi_check import assert_error, assert_ok

pytestmark = pytest.mark.server_only(reason="observability routes are the wire")

SEARCH = "/collections/{collection_name}/points/search"


def metrics(http: httpx.Client, **params: Any) -> dict[str, Any]:
    """name -> family, and (name, labels) -> value for every sample."""
    response = http.get("/metrics", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# HELP app_info " in text and "# TYPE app_info gauge" in text
    out: dict[Any, Any] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = family
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def sample(found: dict[Any, Any], name: str, **labels: str) -> float:
    return float(found.get((name, tuple(sorted(labels.items()))), 0.0))


def make_points(n: int, start: int = 0) -> list[models.PointStruct]:
    return [
        models.PointStruct(
            id=start + i,
            vector=[float(i % 7), 1.0],
            payload={"color": ["red", "blue"][i % 2], "n": i},
        )
        for i in range(n)
    ]


def test_metrics_count_requests_and_describe_the_process(
    client: QdrantClient, http: httpx.Client, collection: Any
) -> None:
    name = collection(vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, make_points(20), wait=True)
    client.query_points(name, query=[1.0, 0.0], limit=3)  # /points/query
    http.post(f"/collections/{name}/points/search", json={"vector": [1, 0], "limit": 2})
    before = metrics(http)
    labels = {"method": "POST", "endpoint": SEARCH, "status": "200"}
    for _ in range(2):
        http.post(f"/collections/{name}/points/search", json={"vector": [1, 0], "limit": 2})
    bad = http.post(f"/collections/{name}/points/search", json={"vector": [1, 0, 0]})
    assert bad.status_code == 400
    after = metrics(http)

    assert sample(after, "rest_responses_total", **labels) == (
        sample(before, "rest_responses_total", **labels) + 2
    )
    failed = {**labels, "status": "400"}
    assert sample(after, "rest_responses_fail_total", **failed) == (
        sample(before, "rest_responses_fail_total", **failed) + 1
    )
    assert sample(after, "rest_responses_max_duration_seconds", **labels) > 0
    assert sample(after, "rest_responses_duration_seconds_count", **labels) == (
        sample(after, "rest_responses_total", **labels)
    )
    # Only Qdrant's whitelisted endpoints are reported.
    assert not any(
        key[0] == "rest_responses_total" and ("endpoint", "/collections") in key[1]
        for key in after
        if isinstance(key, tuple)
    )

    info = after["app_info"].samples[0]
    assert info.labels["name"] == "tessera" and info.value == 1
    # The Qdrant API version, as `GET /` gives it (tools read it to know what the server speaks).
    assert info.labels["version"] == http.get("/").json()["version"]
    assert sample(after, "app_status_recovery_mode") == 0
    assert sample(after, "collections_total") >= 1
    assert sample(after, "collection_points", id=name) == 20
    assert sample(after, "collection_vectors", collection=name, vector="") == 20
    assert sample(after, "collections_vector_total") >= 20
    assert sample(after, "cluster_enabled") == 0
    assert sample(after, "tessera_wal_fsync_total", id=name) >= 1
    assert sample(after, "tessera_wal_fsync_seconds_total", id=name) > 0
    assert sample(after, "collection_active_replicas_max") == 1
    assert sample(after, "tessera_optimizer_queued_optimizations", id=name) == 0
    assert sample(after, "memory_resident_bytes") > 0
    assert sample(after, "memory_allocated_bytes") > 0
    assert sample(after, "process_open_fds") > 0
    assert sample(after, "process_threads") > 1

    per = metrics(http, per_collection="true")
    mine = {**labels, "collection": name}
    assert sample(per, "rest_responses_total", **mine) == 3
    assert sample(per, "rest_responses_total", **{**mine, "status": "400"}) == 1
    assert sample(per, "rest_responses_total", **labels) == 0  # per collection replaces global

    hidden = metrics(http, anonymize="true")
    assert sample(hidden, "collection_points", id=name) == 0  # the name is not shown
    assert any(
        key[0] == "collection_points" and sample(hidden, "collection_points", **dict(key[1])) == 20
        for key in hidden
        if isinstance(key, tuple)
    )

    for params in ({"anonymize": "maybe"}, {"timeout": "0"}):
        response = http.get("/metrics", params=params)
        assert response.status_code == 400, response.text
        assert response.json()["status"]["error"]


def test_telemetry_by_details_level(
    client: QdrantClient, http: httpx.Client, collection: Any
) -> None:
    name = collection(vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, make_points(5), wait=True)

    result = assert_ok(http.get("/telemetry"), "GET", "/telemetry")
    assert result["id"]
    assert result["app"]["name"] == "tessera"
    assert result["app"]["version"] == http.get("/").json()["version"]
    assert result["app"]["startup"].endswith("Z")
    assert "features" not in result["app"]
    assert result["collections"]["number_of_collections"] >= 1
    assert "collections" not in result["collections"]
    assert result["cluster"] == {"enabled": False, "resharding_enabled": False}
    rest = result["requests"]["rest"]["responses"]
    assert rest["PUT /collections/{collection_name}"]["200"]["count"] >= 1
    stats = rest["PUT /collections/{collection_name}/points"]["200"]
    assert stats["avg_duration_micros"] > 0 and stats["last_responded"].endswith("Z")
    # Keyed by the pattern of Qdrant's route, whose parameters are not all named as in its
    # OpenAPI document: a point is `{id}`, a shard `{shard}`, a shard's snapshot `{snapshot}`
    assert http.get(f"/collections/{name}/points/1").status_code == 200
    shard_snapshots = f"/collections/{name}/shards/0/snapshots"
    assert http.get(shard_snapshots).status_code == 200
    assert http.get(f"{shard_snapshots}/nope.snapshot").status_code == 404
    keys = set(http.get("/telemetry").json()["result"]["requests"]["rest"]["responses"])
    assert {
        "GET /collections/{collection_name}/points/{id}",
        "GET /collections/{collection_name}/shards/{shard}/snapshots",
        "GET /collections/{collection_name}/shards/{shard}/snapshots/{snapshot}",
    } <= keys
    assert not any("point_id" in key or "shard_id" in key for key in keys)
    # A request no endpoint takes is counted as Qdrant counts it: by the first route whose
    # path matches, whatever the method, else as `unknown`
    assert http.get("/no/such/route").status_code == 404
    assert http.delete(f"/collections/{name}/points/search").status_code == 404
    rest = http.get("/telemetry").json()["result"]["requests"]["rest"]["responses"]
    assert rest["GET unknown"]["404"]["count"] >= 1
    assert rest["DELETE /collections/{collection_name}/points/search"]["404"]["count"] >= 1

    level1 = assert_ok(http.get("/telemetry", params={"details_level": 1}), "GET", "/telemetry")
    assert level1["app"]["features"]["recovery_mode"] is False
    assert level1["app"]["system"]["cores"] >= 1
    assert level1["memory"]["resident_bytes"] > 0
    aggregated = level1["collections"]["collections"]
    assert {"vectors", "optimizers_status", "params"} <= set(aggregated[0])

    for level in (2, 4):
        response = http.get("/telemetry", params={"details_level": level})
        assert_ok(response, "GET", "/telemetry")
    level2 = assert_ok(http.get("/telemetry", params={"details_level": 2}), "GET", "/telemetry")
    (brief,) = [c for c in level2["collections"]["collections"] if c["id"] == name]
    assert set(brief) == {"id", "init_time_ms", "config"}  # shards from level 3 on
    level3 = assert_ok(http.get("/telemetry", params={"details_level": 3}), "GET", "/telemetry")
    mine = [c for c in level3["collections"]["collections"] if c["id"] == name]
    assert len(mine) == 1
    shard = mine[0]["shards"][0]
    peer = http.get(f"/collections/{name}/cluster").json()["result"]["peer_id"]
    assert shard["replicate_states"] == {str(peer): "Active"}  # by peer id, as Qdrant
    assert shard["local"]["num_points"] == 5
    assert shard["local"]["num_vectors_by_name"] == {"": 5}
    assert mine[0]["config"]["params"]["vectors"]["size"] == 2

    # Snapshot activity per collection, as Qdrant's `CollectionSnapshotTelemetry` and metrics
    assert name not in {s["id"] for s in level1["collections"]["snapshots"]}
    assert client.create_snapshot(name) is not None
    again = assert_ok(http.get("/telemetry", params={"details_level": 1}), "GET", "/telemetry")
    assert {
        "id": name,
        "running_snapshots": 0,
        "running_snapshot_recovery": 0,
        "total_snapshot_creations": 1,
    } in again["collections"]["snapshots"]
    found = metrics(http)
    assert sample(found, "snapshot_created_total", id=name) == 1
    assert (("snapshot_creation_running", (("id", name),))) in found

    per = http.get("/telemetry", params={"per_collection": "true"}).json()["result"]["requests"]
    upserts = per["rest"]["per_collection_responses"][name]
    assert upserts["PUT /collections/{collection_name}/points"]["200"]["count"] == 1

    anonymous = {"details_level": 2, "anonymize": "true", "per_collection": "true"}
    hidden = http.get("/telemetry", params=anonymous).json()
    assert "per_collection_responses" not in hidden["result"]["requests"]["rest"]
    ids = [c["id"] for c in hidden["result"]["collections"]["collections"]]
    assert name not in ids and len(ids) == level3["collections"]["number_of_collections"]

    for params in ({"details_level": "-1"}, {"details_level": "x"}, {"anonymize": "2"}):
        assert_error(http.get("/telemetry", params=params), 400)

    # qdrant-client's own telemetry model reads every level (1.20 requires
    # `app.system.container_runtime`)
    assert level1["app"]["system"]["container_runtime"] in ("none", "docker", "kubernetes", "other")
    for level in range(5):
        for anonymize in (False, True):
            telemetry = client.http.service_api.telemetry(
                details_level=level, anonymize=anonymize
            ).result
            assert telemetry is not None and telemetry.app.name == "tessera"


def test_issues_report_unindexed_fields_until_indexed(
    client: QdrantClient, http: httpx.Client, collection: Any
) -> None:
    small = collection(vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(small, make_points(10), wait=True)
    red = models.Filter(
        must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))]
    )
    client.count(small, count_filter=red)
    ids = [i["id"] for i in http.get("/issues").json()["result"]["issues"]]
    assert not any(small in i for i in ids)  # small collection, fast read: nothing to report

    large = collection(vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(large, make_points(10_000), wait=True)
    client.count(large, count_filter=red)
    client.scroll(
        large,
        scroll_filter=models.Filter(
            must=[models.FieldCondition(key="n", range=models.Range(gte=5))]
        ),
        limit=1,
    )
    report = http.get("/issues").json()
    assert report["status"] == "ok"
    issues = {i["id"]: i for i in report["result"]["issues"]}
    color = issues[f"UNINDEXED_FIELD/{large}/color"]
    assert color["description"] == (
        f"Unindexed field 'color' is slowing queries down in collection '{large}'"
    )
    assert color["timestamp"].endswith("Z")
    solution = color["solution"]["immediate"]
    assert solution["message"].startswith(
        f"Create an index on field 'color' of schema \"keyword\" in collection '{large}'."
    )
    action = solution["action"]
    assert action["method"] == "PUT" and action["uri"] == f"/collections/{large}/index"
    assert action["body"] == {"field_name": "color", "field_schema": "keyword"}
    choices = issues[f"UNINDEXED_FIELD/{large}/n"]["solution"]["immediate_choice"]
    assert [c["action"]["body"]["field_schema"] for c in choices] == ["float", "integer"]

    # Applying the suggested action solves the issue.
    applied = http.put(
        action["uri"], json=action["body"], params={"wait": "true"}, headers=action["headers"]
    )
    assert applied.status_code == 200, applied.text
    ids = [i["id"] for i in http.get("/issues").json()["result"]["issues"]]
    assert f"UNINDEXED_FIELD/{large}/color" not in ids
    assert f"UNINDEXED_FIELD/{large}/n" in ids

    assert assert_ok(http.delete("/issues"), "DELETE", "/issues") is True
    # Cleared; what is recomputed on each report (damage, too many collections) may return.
    left = [i["id"] for i in http.get("/issues").json()["result"]["issues"]]
    assert not any(i.startswith("UNINDEXED_FIELD/") for i in left), left

    # The same reads again (each filter was looked at once already): `n` is still unindexed
    # and comes back after the clear; `color` is indexed and stays away until its index is
    # dropped.
    n_filter = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=5))])
    for _ in range(2):
        client.count(large, count_filter=red)
        client.scroll(large, scroll_filter=n_filter, limit=1)
    ids = [i["id"] for i in http.get("/issues").json()["result"]["issues"]]
    assert f"UNINDEXED_FIELD/{large}/n" in ids
    assert f"UNINDEXED_FIELD/{large}/color" not in ids
    dropped = http.delete(f"/collections/{large}/index/color", params={"wait": "true"})
    assert dropped.status_code == 200, dropped.text
    client.count(large, count_filter=red)
    ids = [i["id"] for i in http.get("/issues").json()["result"]["issues"]]
    assert f"UNINDEXED_FIELD/{large}/color" in ids


def test_metrics_prefix_and_slow_query_threshold(server_factory: Any) -> None:
    """`service.metrics_prefix` prefixes every /metrics name (as Qdrant does); with
    `service.slow_query_secs: 0` every filtered read is slow, so even a small collection's
    unindexed field is reported (with Qdrant's 1.2 s it is not: see above)."""
    srv = server_factory(
        env={"QDRANT__SERVICE__METRICS_PREFIX": "tst_", "QDRANT__SERVICE__SLOW_QUERY_SECS": "0"}
    )
    http = httpx.Client(base_url=srv.url, timeout=30)
    vectors = {"vectors": {"size": 2, "distance": "Dot"}}
    assert_ok(http.put("/collections/small", json=vectors))
    points = [{"id": i, "vector": [1.0, 0.5], "payload": {"color": "red"}} for i in range(5)]
    assert_ok(
        http.put("/collections/small/points", json={"points": points}, params={"wait": "true"})
    )
    red = {"must": [{"key": "color", "match": {"value": "red"}}]}
    assert_ok(http.post("/collections/small/points/count", json={"filter": red}))
    ids = [i["id"] for i in http.get("/issues").json()["result"]["issues"]]
    assert "UNINDEXED_FIELD/small/color" in ids
    # Deleted, its issues go at once: made again under that name, it has none
    assert_ok(http.delete("/collections/small"))
    assert_ok(http.put("/collections/small", json=vectors))
    ids = [i["id"] for i in http.get("/issues").json()["result"]["issues"]]
    assert "UNINDEXED_FIELD/small/color" not in ids

    text = http.get("/metrics").text
    names = [f.name for f in text_string_to_metric_families(text)]
    assert "tst_app_info" in names and "tst_collections_total" in names
    assert all(name.startswith("tst_") for name in names), names
    assert "# TYPE tst_rest_responses_duration_seconds histogram" in text


def test_metrics_port_serves_metrics_without_the_api_key(server_factory: Any) -> None:
    """`service.metrics_port`: `/metrics` on a port of its own, without the API key the API
    asks for, as Qdrant serves it for internal monitoring."""
    port = free_port()
    srv = server_factory(
        env={
            "QDRANT__SERVICE__METRICS_PORT": str(port),
            "QDRANT__SERVICE__API_KEY": "secret-key",
            "QDRANT__SERVICE__METRICS_PREFIX": "mp_",
        }
    )
    assert httpx.get(f"{srv.url}/metrics", timeout=30).status_code == 401
    keyed = {"api-key": "secret-key"}
    vectors = {"vectors": {"size": 2, "distance": "Dot"}}
    assert_ok(httpx.put(f"{srv.url}/collections/watched", json=vectors, headers=keyed))
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    assert [s.value for s in families["mp_collections_total"].samples] == [1.0]
    assert httpx.get(f"http://127.0.0.1:{port}/collections", timeout=30).status_code == 404
    # Its parameters as the API's /metrics reads them (serde's `true` / `false` only).
    base = f"http://127.0.0.1:{port}/metrics"
    assert httpx.get(f"{base}?anonymize=true", timeout=30).status_code == 200
    refused = httpx.get(f"{base}?anonymize=1", timeout=30)
    api = httpx.get(f"{srv.url}/metrics?anonymize=1", headers=keyed, timeout=30)
    assert refused.status_code == api.status_code == 400
    assert api.json()["status"]["error"] == refused.text


def test_telemetry_reports_the_configured_jwt_and_collection_limits(server_factory: Any) -> None:
    """As Qdrant: `app.jwt_rbac` / `app.hide_jwt_dashboard` when configured (at every
    level) and `collections.max_collections` when set; left out when unset."""
    key = "k" * 32
    srv = server_factory(
        env={
            "QDRANT__SERVICE__API_KEY": key,
            "QDRANT__SERVICE__JWT_RBAC": "true",
            "QDRANT__SERVICE__HIDE_JWT_DASHBOARD": "true",
            "QDRANT__STORAGE__MAX_COLLECTIONS": "5",
        }
    )
    found = assert_ok(httpx.get(f"{srv.url}/telemetry", headers={"api-key": key}, timeout=30))
    assert found["app"]["jwt_rbac"] is True and found["app"]["hide_jwt_dashboard"] is True
    assert found["collections"]["max_collections"] == 5
    plain = server_factory()
    found = assert_ok(httpx.get(f"{plain.url}/telemetry", timeout=30))
    assert "jwt_rbac" not in found["app"] and "hide_jwt_dashboard" not in found["app"]
    assert "max_collections" not in found["collections"]


def test_hardware_reporting_in_answers(server_factory: Any) -> None:
    """`service.hardware_reporting: true`: point reads and writes answer their hardware
    usage (`usage.hardware`, REST and gRPC) as Qdrant does: the vector and payload bytes a
    write stores, the vector elements a search scores; other answers and a server that
    does not report carry none."""
    from qdrant_client import grpc as pb

    srv = server_factory(grpc_port=free_port(), env={"QDRANT__SERVICE__HARDWARE_REPORTING": "true"})
    http = httpx.Client(base_url=srv.url, timeout=30)
    assert_ok(http.put("/collections/hw", json={"vectors": {"size": 4, "distance": "Dot"}}))
    points = [{"id": i, "vector": [1.0, 0.5, i, 2.0], "payload": {"n": i}} for i in range(100)]
    answer = http.put("/collections/hw/points?wait=true", json={"points": points}).json()
    hardware = answer["usage"]["hardware"]
    assert hardware["vector_io_write"] == 100 * 4 * 4
    payload_bytes = len(json.dumps([p["payload"] for p in points], separators=(",", ":")))
    assert hardware["payload_io_write"] == payload_bytes
    assert answer["usage"]["inference"] is None
    body = {"query": [1, 0, 0, 0], "limit": 3, "params": {"exact": True}}
    answer = http.post("/collections/hw/points/query", json=body).json()
    assert answer["usage"]["hardware"]["cpu"] == 100 * 4  # every point scored, 4 elements
    assert answer["usage"]["hardware"]["vector_io_write"] == 0
    assert "usage" not in http.get("/collections/hw").json()

    channel = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    points_stub = pb.PointsStub(channel)
    found = points_stub.Query(
        pb.QueryPoints(
            collection_name="hw",
            query=pb.Query(nearest=pb.VectorInput(dense=pb.DenseVector(data=[1, 0, 0, 0]))),
            limit=3,
            params=pb.SearchParams(exact=True),
        )
    )
    assert found.usage.hardware.cpu == 400
    channel.close()

    # A collection of several shards (their writes and reads run on a pool's threads) is
    # measured whole too: it reported 0 once more than one shard took part.
    sharded = {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3}
    assert_ok(http.put("/collections/hw3", json=sharded))
    answer = http.put("/collections/hw3/points?wait=true", json={"points": points}).json()
    assert answer["usage"]["hardware"]["vector_io_write"] == 100 * 4 * 4
    answer = http.post("/collections/hw3/points/query", json=body).json()
    assert answer["usage"]["hardware"]["cpu"] == 100 * 4

    # Payloads read from their files (a sealed segment, on_disk_payload): their bytes,
    # those of the 10 points answered only (Qdrant's test of this: under 300 bytes here).
    sealed = {
        "vectors": {"size": 2, "distance": "Dot"},
        "optimizers_config": {"indexing_threshold": 1},
    }
    assert_ok(http.put("/collections/sealed", json=sealed))
    many = [{"id": i, "vector": [1, i], "payload": {"city": "Berlin", "n": i}} for i in range(1000)]
    assert_ok(http.put("/collections/sealed/points?wait=true", json={"points": many}))
    # The optimizer's sealed segment is in service before the checkpoint that writes its
    # files and maps its payloads: until then reads come from memory and count 0 bytes.
    deadline = time.monotonic() + 60
    while True:
        answer = http.post(
            "/collections/sealed/points/scroll", json={"limit": 10, "with_payload": True}
        )
        read = answer.json()["usage"]["hardware"]["payload_io_read"]
        if read or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert 10 * 20 < read < 300

    plain = server_factory()
    with httpx.Client(base_url=plain.url, timeout=30) as other:
        assert_ok(other.put("/collections/hw", json={"vectors": {"size": 4, "distance": "Dot"}}))
        answer = other.put("/collections/hw/points?wait=true", json={"points": points}).json()
        assert "usage" not in answer


def test_quotas_are_stored_and_refuse_updates(server_factory: Any) -> None:
    """PUT /quotas stores Qdrant's quota config (kept across a restart); while enabled, an
    update that adds data is refused once the disk is filled to the limit (here 1%), with
    Qdrant's text; deletes still pass; a limit out of 1..100 is a validation error."""
    srv = server_factory()
    http = httpx.Client(base_url=srv.url, timeout=30)
    assert_ok(http.put("/collections/q", json={"vectors": {"size": 2, "distance": "Dot"}}))
    point = {"points": [{"id": 1, "vector": [1.0, 0.5]}]}
    assert_ok(http.put("/collections/q/points", json=point, params={"wait": "true"}))

    limits = {"enabled": True, "max_disk_usage_percent": 1}
    assert assert_ok(http.put("/quotas", json=limits), "PUT", "/quotas") is True
    assert http.get("/quotas").json()["result"]["config"] == limits
    srv.stop()
    srv.start()
    status = http.get("/quotas").json()["result"]
    assert status["config"] == limits
    used = status["usage"]["disk_usage_percent"]
    refused = http.put("/collections/q/points", json=point, params={"wait": "true"})
    assert_error(refused, 400)
    assert refused.json()["status"]["error"] == (
        f"Bad request: Disk usage is at {used}% of total capacity, exceeding the configured "
        "limit of 1%. Help: Reduce disk usage (e.g. delete points or drop collections), or "
        "raise `max_disk_usage_percent` in the global quota config."
    )
    deleted = http.post("/collections/q/points/delete", json={"points": [1]})
    assert_ok(deleted)

    bad = http.put("/quotas", json={"enabled": True, "max_resident_memory_percent": 0})
    assert_error(bad, 422)
    assert bad.json()["status"]["error"] == (
        "Validation error in JSON body: [max_resident_memory_percent: value 0 invalid, "
        "must be from 1 to 100]"
    )
    assert_ok(http.put("/quotas", json={"enabled": False, "max_disk_usage_percent": 1}))
    assert_ok(http.put("/collections/q/points", json=point, params={"wait": "true"}))

    # quota.json is checked JSON: a damaged one is moved aside, the server starts, no quota.
    assert_ok(http.put("/quotas", json=limits))
    srv.stop()
    stored = srv.storage / "quota.json"
    header = json.loads(stored.read_bytes().partition(b"\n")[0])
    assert (header["format"], header["version"]) == ("quota", 1) and "crc32" in header
    damaged = bytearray(stored.read_bytes())
    damaged[-3] ^= 0xFF
    stored.write_bytes(bytes(damaged))
    srv.start()
    assert http.get("/quotas").json()["result"]["config"] == {"enabled": False}
    assert_ok(http.put("/collections/q/points", json=point, params={"wait": "true"}))
    assert [p.name.startswith("quota.json.damaged-") for p in srv.storage.iterdir()].count(
        True
    ) == 1


KEY = "observability-test-key-0123456789abcdef"


def test_damage_crowding_and_scoped_access(server_factory: Any) -> None:
    """On a private server with keys: a damaged collection is an issue, a dead shard in
    /metrics and telemetry; 31 collections are too many; a JWT scoped to one collection
    sees only that collection in /issues and /telemetry, and no /metrics."""
    srv = server_factory(env={"QDRANT__SERVICE__API_KEY": KEY, "QDRANT__SERVICE__JWT_RBAC": "true"})
    http = httpx.Client(base_url=srv.url, headers={"api-key": KEY}, timeout=30)
    vectors = {"vectors": {"size": 2, "distance": "Dot"}}
    assert_ok(http.put("/collections/hurt", json=vectors))
    srv.stop()
    (Path(srv.storage) / "collections" / "hurt" / "config.json").write_bytes(b"garbage")
    srv.start()
    issues = http.get("/issues").json()["result"]["issues"]
    damaged = [i for i in issues if i["id"] == "DAMAGED_COLLECTION/hurt"]
    assert len(damaged) == 1
    assert damaged[0]["description"].startswith("Collection 'hurt' is damaged: ")
    assert "refactor" in damaged[0]["solution"]
    info = http.get("/collections/hurt/cluster").json()["result"]
    assert info["local_shards"][0]["state"] == "Dead"
    families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
    assert families["collection_dead_replicas"].samples[0].value == 1
    assert families["collection_active_replicas_min"].samples[0].value == 0
    assert families["collection_active_replicas_max"].samples[0].value == 0
    telemetry = http.get("/telemetry", params={"details_level": 3}).json()["result"]
    hurt = telemetry["collections"]["collections"][0]
    assert hurt["id"] == "hurt"
    assert hurt["shards"][0]["replicate_states"] == {str(info["peer_id"]): "Dead"}
    refused = http.get("/collections/hurt/optimizations")
    assert refused.status_code == 500 and "damaged" in refused.json()["status"]["error"]

    # A token for one collection: its own issues (none) and telemetry, nothing global.
    assert_ok(http.put("/collections/fine", json=vectors))
    scoped = jwt.encode({"access": [{"collection": "fine", "access": "r"}]}, KEY, "HS256")
    reader = httpx.Client(
        base_url=srv.url, headers={"authorization": f"Bearer {scoped}"}, timeout=30
    )
    assert assert_ok(reader.get("/issues")) == {"issues": []}
    seen = assert_ok(reader.get("/telemetry", params={"details_level": 2}))
    assert seen["collections"]["number_of_collections"] == 1
    assert [c["id"] for c in seen["collections"]["collections"]] == ["fine"]
    assert "requests" not in seen and "memory" not in seen and "cluster" not in seen
    assert_error(reader.get("/metrics"), 403, "Global access is required")
    assert_error(reader.delete("/issues"), 403, "Global access is required")
    refusals = http.get("/telemetry").json()["result"]["requests"]["rest"]["responses"]
    assert refusals["GET /metrics"]["403"]["count"] == 1  # refused before routing, counted
    assert refusals["DELETE /issues"]["403"]["count"] == 1

    # Past 30 nearly empty collections: Qdrant's "too many collections" issue, until fewer.
    small = {**vectors, "wal_config": {"wal_capacity_mb": 1}}
    for i in range(29):
        assert_ok(http.put(f"/collections/many{i}", json=small))
    issues = http.get("/issues").json()["result"]["issues"]
    crowded = [i for i in issues if i["id"] == "TOO_MANY_COLLECTIONS/"]
    assert len(crowded) == 1
    assert crowded[0]["description"].startswith("It looks like you have too many collections.")
    assert crowded[0]["solution"] == {
        "refactor": "Restructure your usage of Qdrant into a fixed number of collections"
    }
    assert assert_ok(reader.get("/issues")) == {"issues": []}
    assert_ok(http.delete("/collections/many0"))
    issues = http.get("/issues").json()["result"]["issues"]
    assert [i["id"] for i in issues] == ["DAMAGED_COLLECTION/hurt"]
    http.close()
    reader.close()


def test_optimizations_report_the_optimizer(
    client: QdrantClient, http: httpx.Client, collection: Any
) -> None:
    name = collection(
        vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1),
    )
    client.upsert(name, make_points(1000), wait=True)
    deadline = time.monotonic() + 60
    while True:  # wait for the optimizer (not a timing assertion: it must finish at all)
        result = assert_ok(
            http.get(
                f"/collections/{name}/optimizations",
                params={"with": "queued,completed,idle_segments"},
            ),
            "GET",
            "/collections/{collection_name}/optimizations",
        )
        if result["completed"] and not result["running"] and not result["queued"]:
            break
        assert time.monotonic() < deadline, result
        time.sleep(0.2)
    done = result["completed"][0]
    assert done["optimizer"] == "indexing" and done["status"] == "done"
    assert sum(s["points_count"] for s in done["segments"]) == 1000
    assert done["progress"]["done"] == done["progress"]["total"] == 1000
    assert done["progress"]["duration_sec"] >= 0
    steps = done["progress"]["children"]
    assert [c["name"] for c in steps] == ["build segment", "swap", "flush"]
    assert all(c["finished_at"] >= c["started_at"] for c in steps)
    assert done["uuid"] in [s["uuid"] for s in result["idle_segments"]]
    found = metrics(http)
    assert sample(found, "tessera_optimizations_completed_total", id=name) == len(
        result["completed"]
    )
    summary = result["summary"]
    assert summary["queued_optimizations"] == 0 and summary["idle_segments"] >= 1

    plain = http.get(f"/collections/{name}/optimizations").json()["result"]
    assert set(plain) == {"summary", "running"}
    none = http.get(
        f"/collections/{name}/optimizations", params={"with": "completed", "completed_limit": 0}
    ).json()["result"]
    assert none["completed"] == []
    bad = http.get(f"/collections/{name}/optimizations", params={"with": "everything"})
    assert bad.status_code == 400 and "unknown variant `everything`" in bad.text
    missing = http.get("/collections/no_such_collection_xyz/optimizations")
    assert missing.status_code == 404


def test_standalone_cluster_routes(
    client: QdrantClient, http: httpx.Client, collection: Any
) -> None:
    name = collection(vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, make_points(7), wait=True)

    assert assert_ok(http.get("/cluster"), "GET", "/cluster") == {"status": "disabled"}
    info = client.collection_cluster_info(name)
    assert info.shard_count == 1 and info.remote_shards == [] and info.shard_transfers == []
    assert info.local_shards[0].shard_id == 0 and info.local_shards[0].points_count == 7
    assert info.local_shards[0].state == models.ReplicaState.ACTIVE
    again = assert_ok(
        http.get(f"/collections/{name}/cluster"), "GET", "/collections/{collection_name}/cluster"
    )
    assert again["peer_id"] == info.peer_id  # one node, one id
    snapshot = client.create_snapshot(name, wait=True)
    assert snapshot is not None and f"-{info.peer_id}-" in snapshot.name  # the same one
    assert http.get("/collections/no_such_collection_xyz/cluster").status_code == 404

    move = {"move_shard": {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 2}}
    for method, path, body, status, text in (
        ("POST", f"/collections/{name}/cluster", move, 400,
         "Bad request: Distributed mode disabled"),
        ("POST", "/collections/no_such_collection_xyz/cluster", move, 400,
         "Bad request: Distributed mode disabled"),
        # (405 on a standalone node, as Qdrant 1.19: its cluster routes do not apply)
        ("DELETE", "/cluster/peer/1", None, 405,
         "Method not allowed: Qdrant is running in standalone mode"),
        ("DELETE", f"/cluster/peer/{info.peer_id}", None, 400,
         f"Bad request: Cannot remove peer {info.peer_id} as there are shards on it"),
        ("DELETE", f"/cluster/peer/{info.peer_id}?force=true", None, 405,
         "Method not allowed: Qdrant is running in standalone mode"),
        ("POST", "/cluster/recover", None, 405,
         "Method not allowed: Qdrant is running in standalone mode"),
        ("GET", "/cluster/telemetry", None, 500,
         "Service internal error: Could not get telemetry from cluster"),
    ):  # fmt: skip
        message = assert_error(http.request(method, path, json=body), status)
        assert message == text, path
    assert http.delete("/cluster/peer/abc").status_code == 404
    with pytest.raises(UnexpectedResponse) as refused:
        client.cluster_collection_update(
            name,
            models.MoveShardOperation(
                move_shard=models.MoveShard(shard_id=0, from_peer_id=1, to_peer_id=2)
            ),
        )
    assert refused.value.status_code == 400
    assert client.cluster_status().status == "disabled"

    quotas = assert_ok(http.get("/quotas"), "GET", "/quotas")
    assert quotas["config"] == {"enabled": False}
    assert 0 < quotas["usage"]["disk_usage_percent"] <= 100
    assert 0 <= quotas["usage"]["resident_memory_percent"] <= 100
    assert "peers" not in quotas


def test_grpc_counts_and_cluster_info(server_factory: Any) -> None:
    srv = server_factory(grpc_port=free_port())
    qc = QdrantClient(url=srv.url, grpc_port=srv.grpc_port, prefer_grpc=True, timeout=30)
    try:
        qc.create_collection("g", models.VectorParams(size=2, distance=models.Distance.DOT))
        qc.upsert("g", make_points(3), wait=True)
        for _ in range(3):
            qc.query_points("g", query=[1.0, 0.0], limit=1)
        qc.create_payload_index("g", "k", models.PayloadSchemaType.KEYWORD, wait=True)
        qc.search_matrix_pairs("g", sample=2, limit=1)
        info = qc.collection_cluster_info("g")
        assert info.local_shards[0].points_count == 3
        assert info.local_shards[0].state == models.ReplicaState.ACTIVE
        with pytest.raises(Exception, match="NOT_FOUND"):
            qc.collection_cluster_info("nope")
        move = models.MoveShardOperation(
            move_shard=models.MoveShard(shard_id=0, from_peer_id=1, to_peer_id=2)
        )
        with pytest.raises(Exception, match="INVALID_ARGUMENT") as refused:
            qc.cluster_collection_update("g", move)
        assert "Bad request: Distributed mode disabled" in str(refused.value)
        qc.delete_collection("ghost")  # OK (false): a made-up name, counted globally only
    finally:
        qc.close()
    per = httpx.get(f"{srv.url}/telemetry", params={"per_collection": "true"}).json()
    by_collection = per["result"]["requests"]["grpc"]["per_collection_responses"]
    assert "g" in by_collection and "ghost" not in by_collection
    found = metrics(httpx.Client(base_url=srv.url))
    assert sample(found, "grpc_responses_total", endpoint="/qdrant.Points/Query", status="0") == 3
    assert sample(found, "grpc_responses_total", endpoint="/qdrant.Points/Upsert", status="0") == 1
    for method in ("CreateFieldIndex", "SearchMatrixPairs"):  # in Qdrant's whitelist too
        labels = {"endpoint": f"/qdrant.Points/{method}", "status": "0"}
        assert sample(found, "grpc_responses_total", **labels) == 1
    telemetry = httpx.get(f"{srv.url}/telemetry").json()["result"]["requests"]["grpc"]
    assert telemetry["responses"]["/qdrant.Collections/CollectionClusterInfo"]["5"]["count"] == 1


def test_per_collection_counts_stay_bounded(
    http: httpx.Client, client: QdrantClient, collection: Any
) -> None:
    """Made-up collection names that are not answered 404 (a delete answers false, `exists`
    answers false, a create with a bad body is a 400) are counted globally only; a deleted
    collection's rows go; and the table holds at most so many names whatever it is given."""
    ghost = f"ghost_{uuid.uuid4().hex[:12]}"
    assert http.delete(f"/collections/{ghost}").status_code == 200
    assert http.get(f"/collections/{ghost}/exists").status_code == 200
    assert http.put(f"/collections/{ghost}", json={"vectors": 3}).status_code == 400
    name = collection(vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, make_points(2), wait=True)

    def per_collection() -> dict[str, Any]:
        params = {"per_collection": "true"}
        requests = assert_ok(http.get("/telemetry", params=params), "GET", "/telemetry")
        rest: dict[str, Any] = requests["requests"]["rest"]
        return rest

    rest = per_collection()
    assert ghost not in rest["per_collection_responses"]
    assert rest["responses"]["DELETE /collections/{collection_name}"]["200"]["count"] >= 1
    assert name in rest["per_collection_responses"]
    assert_ok(http.delete(f"/collections/{name}"))
    assert name not in per_collection()["per_collection_responses"]

    stats = RequestStats(max_collections=2)
    for i in range(5):
        stats.record_rest("GET", "/x/{collection_name}", 200, 0.001, f"c{i}")
        stats.record_grpc("/qdrant.Points/Get", 0, 0.001, f"c{i}")
    assert {c for c, *_ in stats.rest_by_collection_snapshot()} == {"c0", "c1"}
    assert {c for c, *_ in stats.grpc_by_collection_snapshot()} == {"c0", "c1"}
    assert stats.rest_snapshot()[0][3].count == 5  # all counted globally
    stats.prune(lambda c: c != "c0")  # c0 deleted: its rows go, its slot frees
    stats.record_rest("GET", "/x/{collection_name}", 200, 0.001, "c4")
    assert {c for c, *_ in stats.rest_by_collection_snapshot()} == {"c1", "c4"}
    assert {c for c, *_ in stats.grpc_by_collection_snapshot()} == {"c1"}


def test_issue_board_is_bounded() -> None:
    """Filters on ever new field names of a large collection file one issue per field: the
    board takes no more of them past MAX_ISSUES, but still a damaged collection (this
    process's board, not a server's)."""
    board.clear()
    try:
        for i in range(board.MAX_ISSUES + 10):
            board.submit(board.unindexed_issue("big", f"field{i}", ("keyword",)))
        assert len(board._board) == board.MAX_ISSUES
        assert board.submit(board.damaged_issue("hurt", ["config.json: garbage"]))
        assert board.submit(board.too_many_issue())
        assert not board.submit(board.unindexed_issue("big", "one_more", ("keyword",)))
        assert len(board._board) == board.MAX_ISSUES + 2
    finally:
        board.clear()


def test_anonymized_counts_as_qdrant() -> None:
    """Qdrant rounds log10 of the count (as an f32) before it drops digits, so a count just
    under a power of ten already loses a digit, and one past 10^4.5 does too."""
    cases = {
        0: 0,
        5: 5,
        10_000: 10_000,
        31_622: 31_622,  # log10 4.49999: kept
        31_623: 31_620,  # log10 4.50000: one digit dropped
        99_999: 99_990,
        100_000: 100_000,
        123_456: 123_450,
        999_999: 999_900,
        316_227: 316_220,
        316_228: 316_200,
    }
    assert {n: anonymized(n) for n in cases} == cases
