"""What a node keeps about the cluster in its own storage directory, under `<storage>/cluster/`:

- `peer.json` (checked JSON, kind `tessera/cluster-peer`, version 1): `{"peer_id": <u64>}`,
  drawn at random on the first start in cluster mode and kept for good, as Qdrant keeps its
  `raft_state.json`: a restarted node is the same peer.
- `applied.json` (kind `tessera/cluster-applied`, version 1): `{"collections": {name: uuid}}`,
  the collections this node created from the cluster's metadata, each with the identity
  (`uuid`) of the etcd record it came from. At start-up it tells a collection that was
  dropped (or dropped and created again) while this node was down from one that predates
  cluster mode here, which is published rather than deleted.

Both are written durably (tessera.fsutil) before anything depends on them.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

from tessera.fileformat import FormatError, read_checked_json, write_checked_json
from tessera.fsutil import mkdir_durable

PEER_KIND = "tessera/cluster-peer"
APPLIED_KIND = "tessera/cluster-applied"
VERSION = 1
# Qdrant's peer ids are u64; kept below 2**63 so every JSON reader holds them exactly.
PEER_ID_BITS = 63


def load_peer_id(storage: Path) -> int:
    """This node's peer id, made and stored on first use. A damaged file stops start-up
    (FormatError): a node that quietly became another peer would orphan its shards."""
    directory = storage / "cluster"
    path = directory / "peer.json"
    if path.exists():
        body = read_checked_json(path, PEER_KIND, (VERSION,))
        peer = body.get("peer_id") if isinstance(body, dict) else None
        if not isinstance(peer, int) or isinstance(peer, bool) or not 0 < peer < 1 << 64:
            raise FormatError(f"{path}: no valid `peer_id`")
        return peer
    mkdir_durable(directory)
    peer = secrets.randbits(PEER_ID_BITS) or 1
    write_checked_json(path, PEER_KIND, VERSION, {"peer_id": peer})
    return peer


class AppliedCollections:
    """The `applied.json` table, rewritten whole on each change (callers serialise)."""

    def __init__(self, storage: Path) -> None:
        self.path = storage / "cluster" / "applied.json"
        self._lock = threading.Lock()
        self._table: dict[str, str] = {}
        if self.path.exists():
            body = read_checked_json(self.path, APPLIED_KIND, (VERSION,))
            table = body.get("collections") if isinstance(body, dict) else None
            if not isinstance(table, dict):
                raise FormatError(f"{self.path}: no `collections` object")
            self._table = {str(k): str(v) for k, v in table.items()}

    def get(self, name: str) -> str | None:
        return self._table.get(name)

    def set(self, name: str, uuid: str | None) -> None:
        with self._lock:
            table = dict(self._table)
            if uuid is None:
                table.pop(name, None)
            else:
                table[name] = uuid
            if table == self._table:
                return
            mkdir_durable(self.path.parent)
            write_checked_json(self.path, APPLIED_KIND, VERSION, {"collections": table})
            self._table = table
