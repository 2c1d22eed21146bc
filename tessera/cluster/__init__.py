"""Cluster mode (`cluster.enabled: true`): the cluster's metadata in etcd.

Layer: between the collection and what lies under it (DESIGN.md, "Layers"); the table of
contents (tessera.storage.toc) consults it for every collection and alias change, and a
collection sharded over peers (tessera.collection.distributed) reads the placement, replica
states and shard keys from it and reaches other peers' shards through its p2p client.

Modules:
- `etcd`: a small client of etcd's v3 JSON gateway (kv, txn, leases, watch) over httpx;
- `local_state`: the persistent peer id and the collections this node applied;
- `placement`: shard replicas spread evenly over peers, as Qdrant distributes them;
- `metadata`: the key layout and the compare-and-swap transactions (Qdrant's errors);
- `membership`: this peer's registration under a lease, and the leader election;
- `service`: start-up reconciliation, the watch that applies changes in revision order, the
  wait for "applied here" that makes a metadata request return after its commit, replica
  states, shard operations and shard keys;
- `p2p`: the client of other peers' p2p port (bytes in, bytes out; the collection encodes).

Why etcd: a proven consensus engine holds what must be agreed (peers, collections, aliases,
placement); nothing home-made decides anything. A change is one transaction that compares
the revisions it read, so two peers changing the same thing serialise (one retries or gets
Qdrant's conflict error). Every node applies the same changes in the same order (etcd's
revisions) through the same local code as standalone mode.

Failure cases handled in this slice: a node that is down while collections are created,
changed or dropped reconciles at start-up (before it reports ready) from one consistent read;
a collection dropped and created again under the same name is told apart by its `uuid`; a
local collection that predates cluster mode is published to the cluster, or moved aside to
`<storage>/cluster-orphans/` when the cluster already has one by that name; a node that dies
leaves `/cluster` when its lease expires (10 s); a watch that breaks (etcd restarted,
compacted history) falls back to a full read and reconciliation; etcd unreachable fails
metadata changes with 503 and changes nothing.

Data routing, replication, catch-up and their failure cases: tessera.collection.distributed
and docs/cluster.md ("Data: shards, replicas and their protocol"). Payload indexes and named
vectors are part of the collection's record, so every node applies their changes
(tessera.cluster.metadata).
"""
