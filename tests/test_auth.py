"""API key, read-only key and JWT RBAC on REST and gRPC, as Qdrant answers them.

One server runs with an API key, a read-only key and `jwt_rbac`. The matrix tests call every
REST route of the app and every gRPC method of the services served with each credential and
expect Qdrant's answer: 401 / UNAUTHENTICATED "Must provide an API key or an Authorization
bearer token" (no key), "Invalid API key or JWT" (a wrong key), 403 / PERMISSION_DENIED
"ExpiredSignature" / "InvalidSignature" (a JWT expired or signed with another key),
"Invalid JWT, stateful validation failed" (`value_exists`), and "Forbidden: ..." when the
access does not cover the operation (Qdrant's table of access). Allowed calls may still fail
for their own reasons (an empty body, a missing collection) but never with 401/403.

The official client is then used as a user would: `QdrantClient(api_key=...)` over REST and
gRPC.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
from google.protobuf import descriptor_pool, message_factory
from qdrant_client import QdrantClient, models
from qdrant_client import grpc as pb
from qdrant_client.http.exceptions import UnexpectedResponse

from tessera.api import access
from tessera.api.app import _routes, route_methods
from tessera.api.grpc_server import served_methods
from tests.conftest import (
    ServerProcess,
    make_grpc_client,
    private_server,
    require_server_target,
    running,
)

pytestmark = [
    pytest.mark.server_only(reason="authentication"),
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
]

FULL = "tessera-test-full-access-key-0123456789abcdef"
READ_ONLY = "tessera-test-read-only-key"
OTHER_SECRET = "another-secret-that-signs-nothing-here-0123"
NO_KEY = (401, "Must provide an API key or an Authorization bearer token")
BAD_KEY = (401, "Invalid API key or JWT")
MANAGE_NEEDED = (403, "Forbidden: Global manage access is required")
GLOBAL_NEEDED = (403, "Forbidden: Global access is required")


def token(claims: dict[str, Any], secret: str = FULL) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def in_minutes(n: float) -> int:
    return int(time.time() + 60 * n)


# name -> (key or None, expected(level, collection) -> None when allowed, else (status, text))
Expected = Callable[[access.Level, str | None], tuple[int, str] | None]


def _allowed(level: access.Level, collection: str | None) -> None:
    return None


def _global_read(level: access.Level, collection: str | None) -> tuple[int, str] | None:
    return None if level is access.OPEN or level in access.READS else MANAGE_NEEDED


def _collections(rights: dict[str, str]) -> Expected:
    """A collection-scoped token's answers (Qdrant's rbac: the extras check, then write)."""

    def expected(level: access.Level, collection: str | None) -> tuple[int, str] | None:
        if level is access.OPEN:
            return None
        if level in (access.MANAGE, access.GLOBAL_READ):
            return GLOBAL_NEEDED
        if collection is None:
            return None
        if collection not in rights:
            return (403, f"Forbidden: Access to collection {collection} is required")
        extras = level in (access.READ_EXTRAS, access.WRITE_EXTRAS)
        if extras and rights[collection] == "prw":
            return (403, f"Forbidden: Only points access is allowed for collection {collection}")
        if level in (access.WRITE, access.WRITE_EXTRAS) and rights[collection] == "r":
            return (403, f"Forbidden: Write access to collection {collection} is required")
        return None

    return expected


def _refused(answer: tuple[int, str]) -> Expected:
    return lambda level, collection: None if level is access.OPEN else answer


CREDENTIALS: dict[str, tuple[str | None, Expected]] = {
    "no key": (None, _refused(NO_KEY)),
    "wrong key": ("not-the-key", _refused(BAD_KEY)),
    "read-only key": (READ_ONLY, _global_read),
    "full key": (FULL, _allowed),
    "JWT r": (token({"access": "r", "exp": in_minutes(10)}), _global_read),
    "JWT m": (token({"access": "m", "exp": in_minutes(10)}), _allowed),
    "JWT no access claim": (token({"exp": in_minutes(10)}), _allowed),
    "JWT alpha rw": (
        token({"access": [{"collection": "alpha", "access": "rw"}]}),
        _collections({"alpha": "rw"}),
    ),
    "JWT alpha r": (
        token({"access": [{"collection": "alpha", "access": "r"}]}),
        _collections({"alpha": "r"}),
    ),
    "JWT alpha prw": (
        token({"access": [{"collection": "alpha", "access": "prw"}]}),
        _collections({"alpha": "prw"}),
    ),
    "JWT expired": (
        token({"access": "m", "exp": in_minutes(-5)}),
        _refused((403, "ExpiredSignature")),
    ),
    "JWT other secret": (token({"access": "m"}, OTHER_SECRET), _refused((403, "InvalidSignature"))),
    "JWT value_exists": (
        token(
            {
                "access": "r",
                "value_exists": {
                    "collection": "users",
                    "matches": [{"key": "user", "value": "ann"}, {"key": "role", "value": "admin"}],
                },
            }
        ),
        _global_read,
    ),
    "JWT value_exists revoked": (
        token(
            {
                "access": "m",
                "value_exists": {
                    "collection": "users",
                    "matches": [{"key": "user", "value": "bob"}],
                },
            }
        ),
        _refused((401, "Invalid JWT, stateful validation failed")),
    ),
    "JWT value_exists no collection": (
        token(
            {
                "access": "m",
                "value_exists": {"collection": "nowhere", "matches": [{"key": "a", "value": 1}]},
            }
        ),
        _refused((403, "Invalid JWT, stateful validation failed")),
    ),
}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require_server_target()
    proc = private_server(
        tmp_path_factory,
        "tessera-auth",
        grpc=True,
        env={
            "QDRANT__SERVICE__API_KEY": FULL,
            "QDRANT__SERVICE__READ_ONLY_API_KEY": READ_ONLY,
            "QDRANT__SERVICE__JWT_RBAC": "true",
        },
    )
    with running(proc):
        admin = QdrantClient(url=proc.url, api_key=FULL, timeout=30)
        params = models.VectorParams(size=4, distance=models.Distance.DOT)
        for name in ("alpha", "beta", "users"):
            admin.create_collection(name, vectors_config=params)
        admin.upsert(
            "users",
            points=[
                models.PointStruct(
                    id=1, vector=[1, 0, 0, 0], payload={"user": "ann", "role": "admin"}
                )
            ],
        )
        admin.upsert("alpha", points=[models.PointStruct(id=1, vector=[1, 2, 3, 4])])
        admin.close()
        yield proc


def headers_for(key: str | None) -> dict[str, str]:
    return {} if key is None else {"api-key": key}


# --------------------------------------------------------------------------------------------
# The table


def test_every_route_and_rpc_is_in_the_access_table() -> None:
    routes = route_methods(_routes())
    assert access.missing_rest(routes) == []
    assert sorted(set(access.REST) - set(routes)) == [], "stale REST entries"
    methods = served_methods()
    assert access.missing_grpc(methods) == []
    assert sorted(set(access.GRPC) - set(methods)) == [], "stale gRPC entries"


# --------------------------------------------------------------------------------------------
# The matrix


def _rest_calls() -> list[tuple[str, str, access.Level, str | None]]:
    """(method, url path, level, collection) for every route, on collections that exercise
    each access: `alpha` (in the JWTs), `beta` (not); MANAGE routes on an invalid name, so
    that an allowed call cannot create or drop anything."""
    calls = []
    for method, path in route_methods(_routes()):
        level = access.rest_rule(method, path)
        assert level is not None
        if "{collection_name}" not in path:
            calls.append((method, path, level, None))
            continue
        names = ["zz:never"] if level is access.MANAGE else ["alpha", "beta"]
        for name in names:
            url = path.replace("{collection_name}", name).replace("{field_name:path}", "f")
            url = re.sub(r"\{[a-z_]+(:int)?\}", "1", url)  # point ids, shard ids
            url = re.sub(r"\{[a-z_]+(:[a-z]+)?\}", "x", url)  # other names
            calls.append((method, url, level, name))
    return calls


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_rest_matrix(secured: ServerProcess, credential: str) -> None:
    key, expected = CREDENTIALS[credential]
    failures = []
    with httpx.Client(base_url=secured.url, timeout=30, headers=headers_for(key)) as http:
        for method, url, level, collection in _rest_calls():
            body = b"[]" if method in ("POST", "PUT", "PATCH") else None
            response = http.request(
                method, url, content=body, headers={"content-type": "application/json"}
            )
            want = expected(level, collection)
            if want is None:
                if response.status_code in (401, 403):
                    failures.append(f"{method} {url}: {response.status_code} {response.text}")
                continue
            status, text = want
            if response.headers.get("content-type", "").startswith("application/json"):
                got = response.json()["status"]["error"]
            else:
                got = response.text
            if (response.status_code, got) != (status, text):
                failures.append(f"{method} {url}: {response.status_code} {got!r} != {want}")
    assert not failures, "\n".join(failures)


def _grpc_request(method: str) -> Any:
    service, name = method.strip("/").split("/")
    descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    request = message_factory.GetMessageClass(descriptor.input_type)()
    return request


GRPC_CODES = {401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED}


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_grpc_matrix(secured: ServerProcess, credential: str) -> None:
    key, expected = CREDENTIALS[credential]
    metadata = [] if key is None else [("api-key", key)]
    failures = []
    with grpc.insecure_channel(f"127.0.0.1:{secured.grpc_port}") as channel:
        for method in served_methods():
            level = access.GRPC[method]
            request = _grpc_request(method)
            has_collection = "collection_name" in request.DESCRIPTOR.fields_by_name
            names: list[str | None] = [None]
            if has_collection:
                names = ["zz:never"] if level is access.MANAGE else ["alpha", "beta"]
            for name in names:
                if name is not None:
                    request.collection_name = name
                call = channel.unary_unary(
                    method,
                    request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=lambda b: b,
                )
                want = expected(level, name)
                try:
                    call(request, metadata=metadata, timeout=10)
                    code, details = grpc.StatusCode.OK, ""
                except grpc.RpcError as exc:
                    code, details = exc.code(), exc.details()
                if want is None:
                    if code in GRPC_CODES.values():
                        failures.append(f"{method} {name}: {code} {details}")
                elif (code, details) != (GRPC_CODES[want[0]], want[1]):
                    failures.append(f"{method} {name}: {code} {details!r} != {want}")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------------------------
# As a user of the official client


def clients(server: ServerProcess, key: str | None) -> list[QdrantClient]:
    return [
        QdrantClient(url=server.url, api_key=key, timeout=30),
        make_grpc_client(server, https=False, api_key=key, timeout=30),
    ]


def test_full_key_works_on_both_apis(secured: ServerProcess) -> None:
    for n, client in enumerate(clients(secured, FULL)):
        name = f"full_{n}"
        client.create_collection(
            name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
        )
        client.upsert(name, points=[models.PointStruct(id=7, vector=[1, 1, 1, 1])])
        hits = client.query_points(name, query=[1, 1, 1, 1], limit=1).points
        assert [h.id for h in hits] == [7]
        assert client.delete_collection(name)
        client.close()


def test_read_only_key_reads_but_does_not_write(secured: ServerProcess) -> None:
    rest, grpc_client = clients(secured, READ_ONLY)
    for client in (rest, grpc_client):
        assert client.count("alpha").count == 1
        assert {c.name for c in client.get_collections().collections} >= {"alpha", "beta"}
    with pytest.raises(UnexpectedResponse) as raised:
        rest.upsert("alpha", points=[models.PointStruct(id=2, vector=[1, 1, 1, 1])])
    assert raised.value.status_code == 403
    assert raised.value.structured()["status"]["error"] == MANAGE_NEEDED[1]
    with pytest.raises(grpc.RpcError) as grpc_raised:
        grpc_client.delete_collection("alpha")
    assert grpc_raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert grpc_raised.value.details() == MANAGE_NEEDED[1]
    rest.close()
    grpc_client.close()


def test_no_key_and_wrong_key(secured: ServerProcess) -> None:
    for key, (status, text) in ((None, NO_KEY), ("wrong", BAD_KEY)):
        rest, grpc_client = clients(secured, key)
        with pytest.raises(UnexpectedResponse) as raised:
            rest.get_collections()
        assert raised.value.status_code == status
        assert raised.value.content.decode() == text
        with pytest.raises(grpc.RpcError) as grpc_raised:
            grpc_client.get_collections()
        assert grpc_raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert grpc_raised.value.details() == text
        rest.close()
        grpc_client.close()


def test_bearer_token_and_open_health_routes(secured: ServerProcess) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        for path in ("/", "/healthz", "/livez", "/readyz"):
            assert http.get(path).status_code == 200, path
        assert http.get("/collections").status_code == 401
        bearer = {"authorization": f"Bearer {READ_ONLY}"}
        assert http.get("/collections", headers=bearer).status_code == 200
        jwt_r = CREDENTIALS["JWT r"][0]
        assert http.get("/collections", headers={"authorization": f"Bearer {jwt_r}"}).is_success
        # A path no route takes still needs the key first (Qdrant checks before routing).
        assert http.get("/nowhere").status_code == 401
        assert http.get("/nowhere", headers={"api-key": FULL}).status_code == 404
    with grpc.insecure_channel(f"127.0.0.1:{secured.grpc_port}") as channel:
        reply = pb.QdrantStub(channel).HealthCheck(pb.HealthCheckRequest(), timeout=10)
        assert reply.version


def test_open_routes_are_decided_by_the_route_reached(secured: ServerProcess) -> None:
    # Qdrant whitelists `/`, `/healthz`, `/readyz`, `/livez` and the dashboard by the route
    # pattern a request matches, not by the raw path's prefix (its dashboard whitelist
    # bypass fix): a path that only starts like an open route needs the key first.
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        for path in ("/dashboard", "/dashboard/", "/dashboard/style.css"):
            assert http.get(path).status_code == 200, path
        assert http.get("/dashboard/nothing-here.js").status_code == 404
        for path in ("/dashboard%2f..%2fcollections", "/readyz/more", "/livezz", "/healthz/"):
            refused = http.get(path)
            assert (refused.status_code, refused.text) == NO_KEY, path
            assert http.get(path, headers={"api-key": FULL}).status_code == 404, path
        # The route, whatever the method: the router answers, not the key check.
        assert http.post("/healthz").status_code not in (401, 403)


def test_invalid_access_claims_answer_qdrants_validation_text(secured: ServerProcess) -> None:
    # Qdrant validates the claims (validator crate) and answers 401 with the error's path
    # as its Display writes it: the `access` claim, then each item's field.
    payload = token({"access": [{"collection": "alpha", "access": "r", "payload": {"a": 1}}]})
    twice = token(
        {
            "access": [
                {"collection": "alpha", "access": "r"},
                {"collection": "alpha", "access": "rw"},
            ]
        }
    )
    expected = {
        payload: "access.access.payload: The 'payload' constraint is deprecated and should not "
        "be used",
        twice: "access.access.collection: Collection name should be unique",
    }
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        for key, text in expected.items():
            answer = http.get("/collections", headers={"api-key": key})
            assert (answer.status_code, answer.text) == (401, text)


def test_claims_of_another_type_are_no_key(secured: ServerProcess) -> None:
    # Qdrant's Claims: `sub` a string, `exp` a u64; a token whose claims do not deserialize
    # is no JWT to it (401, the wrong key's text), even an expired one. PyJWT took a float
    # or numeric-string `exp` and any `sub`.
    refused = [
        {"access": "m", "sub": 5},
        {"access": "m", "sub": {"id": "ann"}},
        {"access": "m", "exp": float(in_minutes(10))},
        {"access": "m", "exp": str(in_minutes(10))},
        {"access": "m", "exp": float(in_minutes(-10))},
        {"access": "m", "exp": -1},
        {"access": "m", "exp": True},
    ]
    accepted = [{"access": "m", "sub": "ann", "exp": in_minutes(10)}, {"sub": None, "exp": None}]
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        for claims in refused:
            answer = http.get("/collections", headers={"api-key": token(claims)})
            assert (answer.status_code, answer.text) == BAD_KEY, claims
        for claims in accepted:
            assert http.get("/collections", headers={"api-key": token(claims)}).is_success
        # within the 30 s leeway a token is still good; past it, expired (403)
        grace = token({"exp": int(time.time()) - 10})
        assert http.get("/collections", headers={"api-key": grace}).is_success
        expired = http.get("/collections", headers={"api-key": token({"exp": in_minutes(-2)})})
        assert (expired.status_code, expired.text) == (403, "ExpiredSignature")


def test_collection_scoped_jwt_sees_only_its_collections(secured: ServerProcess) -> None:
    admin = QdrantClient(url=secured.url, api_key=FULL, timeout=30)
    admin.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=c, alias_name=f"{c}_scoped")
            )
            for c in ("alpha", "beta")
        ]
    )
    key = CREDENTIALS["JWT alpha r"][0]
    rest, grpc_client = clients(secured, key)
    for client in (rest, grpc_client):
        assert [c.name for c in client.get_collections().collections] == ["alpha"]
        # Aliases of the collections it may not read are not listed either.
        listed = {(a.alias_name, a.collection_name) for a in client.get_aliases().aliases}
        assert ("alpha_scoped", "alpha") in listed
        assert all(c == "alpha" for _, c in listed)
        full = {(a.alias_name, a.collection_name) for a in admin.get_aliases().aliases}
        assert ("beta_scoped", "beta") in full
        assert client.collection_exists("alpha")
        assert client.count("alpha").count == 1
    with pytest.raises(UnexpectedResponse) as raised:
        rest.count("beta")
    assert raised.value.status_code == 403
    with pytest.raises(grpc.RpcError) as grpc_raised:
        grpc_client.upsert("alpha", points=[models.PointStruct(id=3, vector=[1, 1, 1, 1])])
    assert grpc_raised.value.details() == "Forbidden: Write access to collection alpha is required"
    admin.update_collection_aliases(
        change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=f"{c}_scoped"))
            for c in ("alpha", "beta")
        ]
    )
    admin.close()
    rest.close()
    grpc_client.close()


def test_value_exists_token_is_revoked_with_its_point(secured: ServerProcess) -> None:
    admin = QdrantClient(url=secured.url, api_key=FULL, timeout=30)
    claims = {
        "access": "r",
        "value_exists": {"collection": "users", "matches": [{"key": "user", "value": "cy"}]},
    }
    user = QdrantClient(url=secured.url, api_key=token(claims), timeout=30)
    with pytest.raises(UnexpectedResponse) as raised:
        user.get_collections()
    assert raised.value.status_code == 401
    admin.upsert(
        "users", points=[models.PointStruct(id=9, vector=[0, 1, 0, 0], payload={"user": "cy"})]
    )
    assert user.get_collections().collections  # valid while the point exists
    admin.set_payload("users", payload={"user": "gone"}, points=[9])
    with pytest.raises(UnexpectedResponse):
        user.get_collections()
    # The claim may name an alias of the collection.
    admin.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="users", alias_name="people")
            )
        ]
    )
    claims["value_exists"] = {"collection": "people", "matches": [{"key": "user", "value": "gone"}]}
    via_alias = QdrantClient(
        url=secured.url, api_key=token(claims), timeout=30, check_compatibility=False
    )
    assert via_alias.get_collections().collections
    admin.update_collection_aliases(
        change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="people"))
        ]
    )
    with pytest.raises(UnexpectedResponse) as raised:
        via_alias.get_collections()
    assert raised.value.status_code == 403
    via_alias.close()
    admin.close()
    user.close()


def test_cors_preflight_needs_no_key(secured: ServerProcess) -> None:
    origin = "http://dashboard.example"
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        pre = http.options(
            "/collections/alpha/points/query",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "api-key, content-type",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == origin
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert pre.headers["access-control-allow-headers"] == "api-key, content-type"
        # The refusal of a request without a key is readable by the page too.
        refused = http.get("/collections", headers={"origin": origin})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == origin
        ok = http.get("/collections", headers={"origin": origin, "api-key": FULL})
        assert ok.headers["access-control-allow-origin"] == origin


def test_lookups_need_read_access_to_the_collection_they_name(secured: ServerProcess) -> None:
    """A token scoped to `alpha` may not read `users` through `lookup_from` or `with_lookup`
    (Qdrant checks the collections a query names before it runs: 403, over REST and gRPC);
    looking up in `alpha` itself is allowed."""
    key = CREDENTIALS["JWT alpha r"][0]
    denied_text = "Forbidden: Access to collection users is required"
    headers = headers_for(key)
    url = f"{secured.url}/collections/alpha/points"
    lookup = {"collection": "users"}
    bodies = {
        "/query": {"query": 1, "lookup_from": lookup},
        "/query/batch": {"searches": [{"query": 1, "lookup_from": lookup}]},
        "/query/groups": {"query": [1, 0, 0, 0], "group_by": "g", "with_lookup": "users"},
        "/recommend": {"positive": [1], "limit": 3, "lookup_from": lookup},
        "/discover": {"target": 1, "limit": 3, "lookup_from": lookup},
        "/search/groups": {
            "vector": [1, 0, 0, 0],
            "group_by": "g",
            "limit": 3,
            "group_size": 1,
            "with_lookup": "users",
        },
    }
    for path, body in bodies.items():
        answer = httpx.post(url + path, json=body, headers=headers, timeout=30)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["status"]["error"] == denied_text, path
    nested = {"prefetch": [{"query": 1, "lookup_from": lookup}], "query": {"fusion": "rrf"}}
    answer = httpx.post(url + "/query", json=nested, headers=headers, timeout=30)
    assert answer.status_code == 403, answer.text
    own = httpx.post(
        url + "/query", json={"query": 1, "lookup_from": {"collection": "alpha"}}, headers=headers
    )
    assert own.status_code == 200, own.text
    _, grpc_client = clients(secured, key)
    with pytest.raises(grpc.RpcError) as raised:
        grpc_client.query_points(
            "alpha", query=1, lookup_from=models.LookupLocation(collection="users")
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.details() == denied_text
    grpc_client.close()


def test_cluster_telemetry_shows_a_scoped_token_its_collections(tmp_path: Any) -> None:
    """As Qdrant's `GET /cluster/telemetry`: any access may ask; a collection-scoped token
    gets the collections it may read (Tessera answered 403 "Global access is required")."""
    require_server_target()
    from tests.cluster_harness import Cluster, running_etcd

    env = {"QDRANT__SERVICE__API_KEY": FULL, "QDRANT__SERVICE__JWT_RBAC": "true"}
    (tmp_path / "etcd").mkdir()
    with running_etcd(tmp_path / "etcd") as etcd:
        group = Cluster(tmp_path / "cluster", etcd, "/tessera-auth/", env=env)
        try:
            (node,) = group.start_nodes(1)
            admin = QdrantClient(url=node.url, api_key=FULL, timeout=30)
            for name in ("alpha", "beta"):
                admin.create_collection(
                    name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
                )
            admin.close()
            scoped = token({"access": [{"collection": "alpha", "access": "r"}]})
            answer = httpx.get(
                f"{node.url}/cluster/telemetry", headers={"api-key": scoped}, timeout=30
            )
            assert answer.status_code == 200, answer.text
            assert set(answer.json()["result"]["collections"]) == {"alpha"}
            full = httpx.get(f"{node.url}/cluster/telemetry", headers={"api-key": FULL}, timeout=30)
            assert set(full.json()["result"]["collections"]) == {"alpha", "beta"}
        finally:
            group.stop()
