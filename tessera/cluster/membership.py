"""This node as a peer of the cluster: registered in etcd under a lease kept alive, and a
candidate in the leader election.

- Registration: `peers/<peer id>` = `{"uri": <p2p URI>, "rest": <REST URL>, "version": <the
  Qdrant API version>}`, attached to a
  lease of `cluster.etcd.lease_ttl_sec` seconds (10) renewed four times per TTL. A node that
  dies (kill -9, a lost network) drops out of `/cluster` when its lease runs out; a node that
  stops cleanly revokes its lease and leaves at once. When the lease is found expired (etcd
  unreachable for longer than the TTL), a new one is granted and the node registers again.
- Election: the `leader` key, created only when absent (a transaction comparing its create
  revision with 0), under the candidate's lease: the first peer to create it leads until
  its lease ends, then the next keepalive round of any peer takes over. This is what etcd's
  own election recipe does; the leader is what Qdrant's `raft_info.role` reports.
- A peer removed with `DELETE /cluster/peer/{id}` is marked `removed/<id>`: it does not
  register again (Qdrant's removed peer cannot rejoin either).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tessera import QDRANT_API_VERSION
from tessera.cluster.etcd import EtcdClient, EtcdUnavailable, compare_created, put_op
from tessera.cluster.metadata import MetadataStore

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL_S = 10


class Membership:
    def __init__(
        self,
        store: MetadataStore,
        peer_id: int,
        uri: str,
        rest_url: str,
        removed: Callable[[], bool],
        lease_ttl: int = DEFAULT_LEASE_TTL_S,
    ) -> None:
        self.store = store
        self.client: EtcdClient = store.client
        self.peer_id = peer_id
        self.uri = uri
        self.rest_url = rest_url
        self._removed = removed
        self.lease_ttl = lease_ttl
        self.keepalive_s = lease_ttl / 4
        self.lease = 0
        self.last_contact = 0.0  # unix time of the last etcd answer
        self.error: str | None = None  # the last failure to reach etcd, until it answers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self) -> None:
        """Grant a lease and put this peer's key under it (EtcdUnavailable when etcd does not
        answer), then try to lead."""
        self.lease = self.client.grant(self.lease_ttl)
        # `version`: the Qdrant version it speaks, Qdrant's peer metadata (`/telemetry`).
        record = {"uri": self.uri, "rest": self.rest_url, "version": QDRANT_API_VERSION}
        self.client.put(self.store.peer_key(self.peer_id), record, self.lease)
        self.campaign()
        self.last_contact = time.time()

    def campaign(self) -> None:
        key = self.store.leader_key
        self.client.txn(
            [compare_created(key, 0)], [put_op(key, {"peer_id": self.peer_id}, self.lease)]
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cluster-keepalive", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.keepalive_s):
            if self._removed():
                continue
            try:
                if self.lease == 0 or self.client.keepalive(self.lease) <= 0:
                    log.warning("cluster lease of peer %d expired; registering again", self.peer_id)
                    self.register()
                else:
                    self.campaign()
                self.last_contact = time.time()
                if self.error is not None:
                    log.info("etcd reachable again")
                self.error = None
            except EtcdUnavailable as exc:
                if self.error is None:
                    log.error("cannot keep peer %d registered: %s", self.peer_id, exc)
                self.error = str(exc)
            except Exception as exc:  # an odd answer must not end the keepalive for good
                log.exception("keeping peer %d registered failed", self.peer_id)
                self.error = f"keepalive failed: {exc!r}"

    def stop(self) -> None:
        """Leave the cluster: the lease is revoked, so this peer's key (and the leadership,
        when held) goes at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.keepalive_s + 6)
        if self.lease:
            try:
                self.client.revoke(self.lease)
            except EtcdUnavailable as exc:
                log.warning("could not leave the cluster cleanly (%s); the lease will expire", exc)
            self.lease = 0
