"""A small synchronous client of etcd's v3 JSON gateway (`/v3/kv/range`, `/v3/kv/txn`,
`/v3/lease/*`, `/v3/watch`), over httpx.

Why not a client library: `etcd3gw` speaks the same gateway but through `requests`, with a
gateway path that differs between its versions (`/v3alpha`, `/v3beta`, `/v3`); this module is
the few calls Tessera needs, typed, with endpoint failover. Keys and values travel
base64-encoded (the gateway's protobuf JSON mapping); values are JSON documents.

Every call tries the configured endpoints in turn until one answers; `EtcdUnavailable` when
none does. A compare-and-swap transaction answers whether it succeeded and the revision it
was committed at, which callers wait for (their own node applies that revision through the
watch before the request returns).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

# httpx (~0.15 s to import, with the CLI it pulls in) is imported by the methods that use
# it: a standalone server never creates a client.

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 5.0
WATCH_IDLE_S = 1.0


class EtcdUnavailable(Exception):
    """No etcd endpoint answered (or one answered with an error)."""


class WatchCompacted(EtcdUnavailable):
    """etcd compacted its history past the watch's start revision: not an outage, the
    watcher reads the whole state again (a node whose prefix is quiet while other keys
    change meets this after every compaction)."""


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(prefix: str) -> str:
    """The `range_end` that selects every key starting with `prefix` (etcd's convention:
    the prefix with its last byte incremented)."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return _b64(bytes(raw))
        raw.pop()
    return _b64(b"\x00")  # every key


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: Any  # the decoded JSON document; None for a deleted key
    create_revision: int
    mod_revision: int


@dataclass(frozen=True)
class Event:
    kind: str  # "PUT" or "DELETE"
    kv: KeyValue


def _kv(raw: dict[str, Any]) -> KeyValue:
    value = raw.get("value")
    return KeyValue(
        key=_unb64(raw["key"]).decode(),
        value=orjson.loads(_unb64(value)) if value else None,
        create_revision=int(raw.get("create_revision", 0)),
        mod_revision=int(raw.get("mod_revision", 0)),
    )


# Transaction building blocks, in the gateway's JSON shape.
def compare_created(key: str, revision: int) -> dict[str, Any]:
    """True when `key`'s create revision is `revision` (0: the key does not exist)."""
    return {
        "key": _b64(key),
        "target": "CREATE",
        "result": "EQUAL",
        "create_revision": str(revision),
    }


def compare_modified(key: str, revision: int) -> dict[str, Any]:
    """True when `key` was last changed at `revision` (0: the key does not exist)."""
    return {"key": _b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": str(revision)}


def put_op(key: str, value: Any, lease: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"key": _b64(key), "value": _b64(orjson.dumps(value))}
    if lease:
        body["lease"] = str(lease)
    return {"request_put": body}


def delete_op(key: str) -> dict[str, Any]:
    return {"request_delete_range": {"key": _b64(key)}}


class EtcdClient:
    def __init__(self, endpoints: list[str]) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint configured")
        import httpx

        # httpx logs every request at INFO: the keepalive and watch rounds would flood the
        # log. Set when a client is made, so that importing this module (every standalone
        # server does, through the table of contents) changes no logging.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self._http = httpx.Client(timeout=CALL_TIMEOUT_S)
        self.raft_term = 0  # etcd's Raft term, as of the last answer
        # The watch stream has its own connection; a quiet stream ends after WATCH_IDLE_S.
        self._watch_http = httpx.Client(timeout=httpx.Timeout(CALL_TIMEOUT_S, read=WATCH_IDLE_S))

    def close(self) -> None:
        self._http.close()
        self._watch_http.close()

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        errors: list[str] = []
        for endpoint in self.endpoints:
            try:
                response = self._http.post(f"{endpoint}/v3/{path}", content=orjson.dumps(body))
            except httpx.HTTPError as exc:
                errors.append(f"{endpoint}: {exc!r}")
                continue
            if response.status_code != 200:
                errors.append(f"{endpoint}: {response.status_code} {response.text[:200]}")
                continue
            answer: dict[str, Any] = orjson.loads(response.content)
            header = answer.get("header") or answer.get("result", {}).get("header") or {}
            if "raft_term" in header:
                self.raft_term = int(header["raft_term"])
            return answer
        raise EtcdUnavailable("etcd did not answer: " + "; ".join(errors))

    # ------------------------------------------------------------------ key-value

    def get_prefix(self, prefix: str) -> tuple[int, list[KeyValue]]:
        """(revision, every key under `prefix`) read at one revision."""
        answer = self._call("kv/range", {"key": _b64(prefix), "range_end": prefix_end(prefix)})
        revision = int(answer["header"]["revision"])
        return revision, [_kv(raw) for raw in answer.get("kvs", [])]

    def get(self, key: str) -> KeyValue | None:
        answer = self._call("kv/range", {"key": _b64(key)})
        kvs = answer.get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    def put(self, key: str, value: Any, lease: int = 0) -> int:
        answer = self._call("kv/put", put_op(key, value, lease)["request_put"])
        return int(answer["header"]["revision"])

    def delete(self, key: str) -> int:
        answer = self._call("kv/deleterange", {"key": _b64(key)})
        return int(answer["header"]["revision"])

    def txn(
        self,
        compare: list[dict[str, Any]],
        success: list[dict[str, Any]],
        failure: list[dict[str, Any]] | None = None,
    ) -> tuple[bool, int]:
        """(succeeded, revision after the transaction)."""
        body = {"compare": compare, "success": success, "failure": failure or []}
        answer = self._call("kv/txn", body)
        return bool(answer.get("succeeded", False)), int(answer["header"]["revision"])

    # ------------------------------------------------------------------ leases

    def grant(self, ttl: int) -> int:
        answer = self._call("lease/grant", {"TTL": str(ttl)})
        if answer.get("error"):
            raise EtcdUnavailable(f"lease grant refused: {answer['error']}")
        return int(answer["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew `lease`; its remaining TTL in seconds, 0 (or less) when it has expired."""
        answer = self._call("lease/keepalive", {"ID": str(lease)})
        result = answer.get("result", answer)
        return int(result.get("TTL", 0))

    def revoke(self, lease: int) -> None:
        self._call("lease/revoke", {"ID": str(lease)})

    # ------------------------------------------------------------------ watch

    def watch(
        self, prefix: str, start_revision: int, stopped: Callable[[], bool]
    ) -> Iterator[tuple[int, list[Event]]]:
        """(revision, events) for every change under `prefix` from `start_revision` on, in
        revision order: `revision` is the highest the caller has now seen every change of
        (the events' own revision; etcd never splits one revision over two responses).
        Ends after WATCH_IDLE_S without news (or when `stopped()`), so a caller can stop;
        the caller resumes from the last revision it saw. EtcdUnavailable when no endpoint
        answers or etcd cancels the watch (compacted past `start_revision`)."""
        import httpx

        body = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": prefix_end(prefix),
                "start_revision": str(start_revision),
            }
        }
        errors: list[str] = []
        for endpoint in self.endpoints:
            # etcd answers a new watch at once ("created"): silence before any answer is a
            # hung endpoint (the next one is tried), not a quiet watch.
            answered = False
            try:
                with self._watch_http.stream(
                    "POST", f"{endpoint}/v3/watch", content=orjson.dumps(body)
                ) as response:
                    if response.status_code != 200:
                        errors.append(f"{endpoint}: {response.status_code}")
                        continue
                    for line in response.iter_lines():
                        answered = True
                        if stopped():
                            return
                        if line.strip():
                            found = _watch_result(orjson.loads(line).get("result", {}))
                            if found is not None:
                                yield found
                return
            except httpx.ReadTimeout as exc:
                if answered:
                    return  # quiet for WATCH_IDLE_S: the caller checks whether to go on
                errors.append(f"{endpoint}: no answer to the watch ({exc!r})")
            except httpx.HTTPError as exc:
                errors.append(f"{endpoint}: {exc!r}")
        raise EtcdUnavailable("etcd watch failed: " + "; ".join(errors))


def _watch_result(result: dict[str, Any]) -> tuple[int, list[Event]] | None:
    if result.get("compact_revision"):
        raise WatchCompacted(f"watch cancelled: compacted at {result['compact_revision']}")
    if result.get("canceled"):
        raise EtcdUnavailable(f"watch cancelled: {result.get('cancel_reason') or result}")
    if result.get("created"):
        # Its header revision is etcd's current one, not what was delivered so far.
        return None
    events = [Event(raw.get("type", "PUT"), _kv(raw["kv"])) for raw in result.get("events", [])]
    if events:
        return max(e.kv.mod_revision for e in events), events
    header = result.get("header")
    if not isinstance(header, dict):
        # What the gateway streams when etcd goes away under a watch (an `error` object):
        # the watch is lost, as when its connection drops, not a bug to log with a traceback.
        raise EtcdUnavailable(f"watch ended: {result.get('error') or result}")
    return int(header["revision"]), []  # a progress notification
