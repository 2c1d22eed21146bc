"""Collection aliases, as Qdrant 1.19 has them: the atomic action list (create, rename,
delete), `GET /aliases`, `GET /collections/{c}/aliases`, an alias wherever a collection name
goes, name clashes, persistence across restarts, and a dropped collection's aliases going with
it. Through qdrant-client (REST and gRPC) and plain HTTP."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from tests.conftest import ServerProcess, make_grpc_client, module_server

pytestmark = pytest.mark.server_only(reason="aliases are checked on the server")

DIM = 4
DOT = models.Distance.DOT


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from module_server(tmp_path_factory, "tessera-aliases", grpc=True)


@pytest.fixture
def rest(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = QdrantClient(url=server.url, prefer_grpc=False, timeout=30)
    yield qc
    qc.close()


@pytest.fixture
def grpc_client(server: ServerProcess) -> Iterator[QdrantClient]:
    qc = make_grpc_client(server)
    yield qc
    qc.close()


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as hc:
        yield hc


@pytest.fixture
def names(rest: QdrantClient) -> Iterator[Callable[[str], str]]:
    """Fresh names; collections by those names are dropped afterwards (with their aliases)."""
    made: list[str] = []

    def make(prefix: str = "c") -> str:
        made.append(f"{prefix}_{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    for n in made:
        rest.delete_collection(n)


def create(client: QdrantClient, name: str) -> None:
    assert client.create_collection(
        name, vectors_config=models.VectorParams(size=DIM, distance=DOT)
    )


def create_alias(collection: str, alias: str) -> models.CreateAliasOperation:
    return models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
    )


def rename_alias(old: str, new: str) -> models.RenameAliasOperation:
    return models.RenameAliasOperation(
        rename_alias=models.RenameAlias(old_alias_name=old, new_alias_name=new)
    )


def delete_alias(alias: str) -> models.DeleteAliasOperation:
    return models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))


def alias_pairs(described: models.CollectionsAliasesResponse) -> set[tuple[str, str]]:
    return {(a.alias_name, a.collection_name) for a in described.aliases}


def pick(wire: str, rest: QdrantClient, grpc_client: QdrantClient) -> QdrantClient:
    return grpc_client if wire == "grpc" else rest


@pytest.mark.parametrize("wire", ["rest", "grpc"])
def test_create_rename_delete(
    wire: str, rest: QdrantClient, grpc_client: QdrantClient, names: Callable[[str], str]
) -> None:
    client = pick(wire, rest, grpc_client)
    coll, a1, a2 = names("c"), names("a"), names("a")
    create(client, coll)
    assert client.update_collection_aliases([create_alias(coll, a1)]) is True
    assert (a1, coll) in alias_pairs(client.get_aliases())
    assert alias_pairs(client.get_collection_aliases(coll)) == {(a1, coll)}

    assert client.update_collection_aliases([rename_alias(a1, a2)]) is True
    assert alias_pairs(client.get_collection_aliases(coll)) == {(a2, coll)}
    assert a1 not in {a.alias_name for a in client.get_aliases().aliases}

    assert client.update_collection_aliases([delete_alias(a2)]) is True
    assert alias_pairs(client.get_collection_aliases(coll)) == set()


@pytest.mark.parametrize("wire", ["rest", "grpc"])
def test_alias_used_as_a_collection_name(
    wire: str, rest: QdrantClient, grpc_client: QdrantClient, names: Callable[[str], str]
) -> None:
    client = pick(wire, rest, grpc_client)
    coll, alias = names("c"), names("a")
    create(client, coll)
    client.update_collection_aliases([create_alias(coll, alias)])
    points = [
        models.PointStruct(id=i, vector=[float(i), 1.0, 0.0, 0.0], payload={"n": i})
        for i in range(1, 6)
    ]
    assert client.upsert(alias, points, wait=True).status == models.UpdateStatus.COMPLETED
    assert client.count(coll, exact=True).count == 5
    assert client.count(alias, exact=True).count == 5
    hits = client.query_points(alias, query=[1.0, 0.0, 0.0, 0.0], limit=2).points
    assert [h.id for h in hits] == [5, 4]
    records, _ = client.scroll(alias, limit=10)
    assert sorted(r.id for r in records) == [1, 2, 3, 4, 5]
    assert client.get_collection(alias).points_count == 5
    assert client.collection_exists(alias) is True
    # A snapshot taken through the alias is the collection's: named, listed and kept as its.
    made = client.create_snapshot(alias)
    assert made is not None and made.name.startswith(f"{coll}-")
    assert [s.name for s in client.list_snapshots(coll)] == [made.name]
    assert [s.name for s in client.list_snapshots(alias)] == [made.name]
    assert client.delete_snapshot(alias, made.name)
    assert client.list_snapshots(coll) == []


def test_blue_green_switch_is_one_request(
    rest: QdrantClient, http: httpx.Client, names: Callable[[str], str]
) -> None:
    blue, green, alias = names("c"), names("c"), names("a")
    create(rest, blue)
    create(rest, green)
    rest.upsert(green, [models.PointStruct(id=7, vector=[1.0] * DIM)], wait=True)
    rest.update_collection_aliases([create_alias(blue, alias)])
    assert rest.count(alias).count == 0
    r = http.post(
        "/collections/aliases",
        json={
            "actions": [
                {"delete_alias": {"alias_name": alias}},
                {"create_alias": {"collection_name": green, "alias_name": alias}},
            ]
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] is True and r.json()["status"] == "ok"
    assert rest.count(alias).count == 1
    listed = http.get("/aliases").json()["result"]["aliases"]
    assert {"alias_name": alias, "collection_name": green} in listed
    own = http.get(f"/collections/{green}/aliases").json()["result"]
    assert own == {"aliases": [{"alias_name": alias, "collection_name": green}]}
    assert http.get(f"/collections/{blue}/aliases").json()["result"] == {"aliases": []}


def test_failing_action_list_changes_nothing(
    rest: QdrantClient, http: httpx.Client, names: Callable[[str], str]
) -> None:
    coll, a1, a2, missing = names("c"), names("a"), names("a"), names("a")
    create(rest, coll)
    rest.update_collection_aliases([create_alias(coll, a1)])
    r = http.post(
        "/collections/aliases",
        json={
            "actions": [
                {"create_alias": {"collection_name": coll, "alias_name": a2}},
                {"delete_alias": {"alias_name": a1}},
                {"rename_alias": {"old_alias_name": missing, "new_alias_name": a1}},
            ]
        },
    )
    assert r.status_code == 404, r.text
    assert r.json()["status"]["error"] == f"Not found: Alias {missing} does not exists!"
    assert alias_pairs(rest.get_collection_aliases(coll)) == {(a1, coll)}

    # Deleting a missing alias is no error ("Delete alias if exists").
    r = http.post(
        "/collections/aliases", json={"actions": [{"delete_alias": {"alias_name": missing}}]}
    )
    assert r.status_code == 200, r.text
    r = http.post(
        "/collections/aliases",
        json={"actions": [{"create_alias": {"collection_name": missing, "alias_name": a2}}]},
    )
    assert r.status_code == 404, r.text
    assert r.json()["status"]["error"] == f"Not found: Collection `{missing}` doesn't exist!"
    r = http.post("/collections/aliases", json={"actions": [{"make_alias": {}}]})
    assert r.status_code == 400, r.text
    r = http.post("/collections/aliases", json={})
    assert r.status_code == 400, r.text
    assert alias_pairs(rest.get_collection_aliases(coll)) == {(a1, coll)}


def test_alias_and_collection_names_cannot_clash(
    rest: QdrantClient, grpc_client: QdrantClient, names: Callable[[str], str]
) -> None:
    coll, other, alias = names("c"), names("c"), names("a")
    create(rest, coll)
    create(rest, other)
    with pytest.raises(UnexpectedResponse) as info:
        rest.update_collection_aliases([create_alias(coll, other)])
    assert info.value.status_code == 409
    assert f"Collection `{other}` already exists!" in info.value.structured()["status"]["error"]

    rest.update_collection_aliases([create_alias(coll, alias)])
    with pytest.raises(UnexpectedResponse) as info:
        create(rest, alias)
    assert info.value.status_code == 400
    assert "Alias with the same name already exists" in info.value.structured()["status"]["error"]
    with pytest.raises(UnexpectedResponse) as info:
        rest.update_collection_aliases([rename_alias(alias, other)])
    assert info.value.status_code == 409
    assert alias_pairs(rest.get_collection_aliases(coll)) == {(alias, coll)}

    with pytest.raises(grpc.RpcError) as rpc_info:
        grpc_client.update_collection_aliases([create_alias(coll, other)])
    assert rpc_info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as rpc_info:
        grpc_client.update_collection_aliases([rename_alias(names("a"), names("a"))])
    assert rpc_info.value.code() == grpc.StatusCode.NOT_FOUND


def test_dropping_a_collection_drops_its_aliases(
    rest: QdrantClient, http: httpx.Client, names: Callable[[str], str]
) -> None:
    coll, keep, a1, a2, a3 = names("c"), names("c"), names("a"), names("a"), names("a")
    create(rest, coll)
    create(rest, keep)
    rest.update_collection_aliases(
        [create_alias(coll, a1), create_alias(coll, a2), create_alias(keep, a3)]
    )
    # Deleting by an alias's name deletes nothing, as in Qdrant.
    assert rest.delete_collection(a1) is False
    assert rest.collection_exists(coll)
    assert rest.delete_collection(coll) is True
    pairs = alias_pairs(rest.get_aliases())
    assert (a3, keep) in pairs
    assert not {a1, a2} & {a for a, _ in pairs}
    r = http.get(f"/collections/{a1}")
    assert r.status_code == 404
    assert r.json()["status"]["error"] == f"Not found: Collection `{a1}` doesn't exist!"
    assert http.get(f"/collections/{a1}/exists").json()["result"] == {"exists": False}
    # The name is free again, for a collection or an alias.
    create(rest, a1)
    assert rest.collection_exists(a1)


def test_aliases_survive_a_restart(
    server: ServerProcess, rest: QdrantClient, names: Callable[[str], str]
) -> None:
    coll, gone, a1, a2 = names("c"), names("c"), names("a"), names("a")
    create(rest, coll)
    create(rest, gone)
    rest.upsert(coll, [models.PointStruct(id=1, vector=[1.0] * DIM)], wait=True)
    rest.update_collection_aliases([create_alias(coll, a1), create_alias(gone, a2)])
    rest.delete_collection(gone)
    server.restart()  # kill -9, start again
    assert alias_pairs(rest.get_collection_aliases(coll)) == {(a1, coll)}
    assert a2 not in {a.alias_name for a in rest.get_aliases().aliases}
    assert rest.count(a1).count == 1
    rest.update_collection_aliases([rename_alias(a1, a2)])
    server.restart()
    assert alias_pairs(rest.get_collection_aliases(coll)) == {(a2, coll)}
    assert rest.count(a2).count == 1
    assert (server.storage / "aliases.json").read_bytes().startswith(b'{"')


def test_full_snapshot_lists_aliases(
    rest: QdrantClient, http: httpx.Client, names: Callable[[str], str]
) -> None:
    coll, alias = names("c"), names("a")
    create(rest, coll)
    rest.update_collection_aliases([create_alias(coll, alias)])
    made = rest.create_full_snapshot()
    assert made is not None
    try:
        data = http.get(f"/snapshots/{made.name}").content
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile("config.json")
            assert member is not None
            config = json.loads(member.read())
        assert config["collections_aliases"][alias] == coll
        assert coll in config["collections_mapping"]
    finally:
        rest.delete_full_snapshot(made.name)


def test_a_damaged_alias_table_loses_no_alias_and_does_not_stop_the_server(
    server_factory: Any,
) -> None:
    """The alias table spans every collection: a damaged file is moved aside (never
    deleted) and its mirror read, so every acknowledged alias survives; with both files
    damaged the server still starts, without aliases, every collection serving."""
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.put("/collections/kept", json={"vectors": {"size": 2, "distance": "Dot"}})
        assert r.status_code == 200
        r = http.post(
            "/collections/aliases",
            json={"actions": [{"create_alias": {"collection_name": "kept", "alias_name": "al"}}]},
        )
        assert r.status_code == 200
    server.stop()
    table, mirror = server.storage / "aliases.json", server.storage / "aliases.mirror.json"
    damaged = bytearray(table.read_bytes())
    damaged[-5] ^= 0x20  # one flipped bit
    table.write_bytes(bytes(damaged))
    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/aliases").json()["result"]["aliases"] == [
            {"alias_name": "al", "collection_name": "kept"}
        ]
        assert http.post("/collections/al/points/count", json={}).status_code == 200
    assert len(list(server.storage.glob("aliases.json.damaged-*"))) == 1
    assert table.read_bytes() == mirror.read_bytes()  # whole again
    server.stop()
    table.write_bytes(table.read_bytes()[:-3])
    mirror.write_bytes(mirror.read_bytes()[:-3])
    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/collections/kept").status_code == 200
        assert http.get("/aliases").json()["result"]["aliases"] == []
    assert len(list(server.storage.glob("aliases.json.damaged-*"))) >= 1
    assert list(server.storage.glob("aliases.mirror.json.damaged-*"))
