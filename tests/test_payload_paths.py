"""Payload edits at nested paths (set_payload with `key`, delete_payload) against
qdrant-client's local mode, whose setter mirrors Qdrant's server (and whose congruence suite
checks it against one): random payloads and paths, every result equal. Plus the merge rule
of set_payload itself: a null value removes its key."""

from __future__ import annotations

import copy
import random
from typing import Any

import httpx
import pytest
from qdrant_client.local.json_path_parser import parse_json_path
from qdrant_client.local.payload_value_setter import delete_value_by_key, set_value_by_key

from tessera.collection.values import PayloadSelector
from tessera.shard.payload_ops import delete_keys, set_payload

VALUES: list[Any] = [
    None,
    1,
    "s",
    [],
    [1],
    [{"b": 1}],
    {},
    {"b": [1, {"c": 2}]},
    {"b": {"c": [1]}},
    [{"b": 1, "c": 2}, {"b": [1]}],
    [[{"b": 1}], [2], 3],
]
KEYS = [
    "a",
    "a.b",
    "a[]",
    "a[0]",
    "a[1]",
    "a[].b",
    "a.b[]",
    "a[][]",
    "a[0].b",
    "a.b.c",
    "a[].b.c",
    "a.b[0]",
    "a[][].b",
    "a[0][0]",
]


def _cases(seed: int, n: int) -> list[tuple[dict[str, Any], str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        payload = {"a": copy.deepcopy(rng.choice(VALUES)), "z": 1} if rng.random() < 0.9 else {}
        out.append((payload, rng.choice(KEYS)))
    return out


def test_set_at_a_path_as_qdrant() -> None:
    rng = random.Random(11)
    for payload, key in _cases(1, 3000):
        values = {"x": rng.choice([1, None]), "k": [2]}
        expected = copy.deepcopy(payload)
        set_value_by_key(expected, parse_json_path(key), copy.deepcopy(values))
        assert set_payload(copy.deepcopy(payload), values, key) == expected, (payload, key)


def test_delete_at_a_path_as_qdrant() -> None:
    for payload, key in _cases(2, 3000):
        expected = copy.deepcopy(payload)
        delete_value_by_key(expected, parse_json_path(key))
        assert delete_keys(copy.deepcopy(payload), [key]) == expected, (payload, key)


def test_examples() -> None:
    assert set_payload({}, {"d": "404"}, "nest[]") == {"nest": []}
    assert set_payload({"a": [1, "s", None]}, {"x": 1}, "a[]") == {"a": [{"x": 1}] * 3}
    assert set_payload({"a": 1, "k": 2}, {"k": None, "b": 3}, None) == {"a": 1, "b": 3}
    assert delete_keys({"a": [1, 2]}, ["a[0]"]) == {"a": [1, 2]}  # by index: nothing
    assert delete_keys({"a": [1, 2]}, ["a[]"]) == {"a": []}


def test_set_payload_null_removes_over_rest(http: httpx.Client, collection: Any) -> None:
    name = collection()
    create = {"vectors": {"size": 2, "distance": "Dot"}}
    http.put(f"/collections/{name}", json=create).raise_for_status()
    point = {"id": 1, "vector": [1, 0], "payload": {"a": 1, "k": 2, "n": {"x": [{"y": 1}]}}}
    http.put(f"/collections/{name}/points?wait=true", json={"points": [point]}).raise_for_status()
    url = f"/collections/{name}/points/payload?wait=true"
    http.post(url, json={"points": [1], "payload": {"k": None, "b": 3}}).raise_for_status()
    nested = {"points": [1], "payload": {"y": None, "z": 2}, "key": "n.x[]"}
    http.post(url, json=nested).raise_for_status()
    got = http.get(f"/collections/{name}/points/1").json()["result"]["payload"]
    assert got == {"a": 1, "b": 3, "n": {"x": [{"z": 2}]}}


SELECTED = {"arr": [1, 2, {"a": 1, "b": 2}], "obj": {"x": [{"y": 1, "z": 2}, {"y": 3}], "w": 5}}


@pytest.mark.parametrize(
    ("include", "expected"),
    [
        (["obj.w"], {"obj": {"w": 5}}),
        (["obj.x[].y"], {"obj": {"x": [{"y": 1}, {"y": 3}]}}),
        (["arr[]"], {"arr": [1, 2, {"a": 1, "b": 2}]}),
        (["arr[].a"], {"arr": [1, 2, {"a": 1}]}),  # an element not an object: kept whole
        (["arr[0]"], {"arr": []}),  # by index: no element is selected
        (["arr[2].a"], {"arr": []}),
        (["obj.x[0]"], {"obj": {"x": []}}),
        (["obj", "obj.w"], {"obj": SELECTED["obj"]}),  # a shorter path takes all below
        (["missing.deep"], {}),
    ],
)
def test_include_paths_select_as_qdrant(include: list[str], expected: dict[str, Any]) -> None:
    assert PayloadSelector(True, include=include).apply(SELECTED) == expected


@pytest.mark.parametrize(
    ("exclude", "expected"),
    [
        (["obj.w"], {"arr": SELECTED["arr"], "obj": {"x": SELECTED["obj"]["x"]}}),
        (["arr[]"], {"arr": [], "obj": SELECTED["obj"]}),
        (["arr[].a"], {"arr": [1, 2, {"b": 2}], "obj": SELECTED["obj"]}),
        (["arr[0]"], SELECTED),  # by index: no element is dropped
        (["obj.x[].y"], {"arr": SELECTED["arr"], "obj": {"x": [{"z": 2}, {}], "w": 5}}),
    ],
)
def test_exclude_paths_drop_as_qdrant(exclude: list[str], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(SELECTED)
    assert PayloadSelector(True, exclude=exclude).apply(SELECTED) == expected
    assert before == SELECTED  # the stored payload is never changed
