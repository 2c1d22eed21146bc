"""Where a collection's shards live: `shard_number` shards, each with `replication_factor`
replicas on distinct peers, spread evenly as Qdrant's `ShardDistributionProposal` does: each
shard's replicas go to the peers holding the fewest replicas so far (ties: lower peer id
first, then by how recently a peer was chosen, so shards start on different peers).

A replication factor above the number of peers gives every peer one replica of each shard
(Qdrant creates as many replicas as there are peers, and no more).
"""

from __future__ import annotations

from collections.abc import Iterable

# shard id -> the peer ids holding a replica of it, first one first.
Placement = dict[int, list[int]]


def place(shard_number: int, replication_factor: int, peers: Iterable[int]) -> Placement:
    candidates = sorted(set(peers))
    if not candidates:
        raise ValueError("no peer to place shards on")
    load = dict.fromkeys(candidates, 0)
    order = {peer: i for i, peer in enumerate(candidates)}
    placement: Placement = {}
    replicas = min(replication_factor, len(candidates))
    for shard in range(shard_number):
        chosen = sorted(candidates, key=lambda p: (load[p], order[p]))[:replicas]
        for peer in chosen:
            load[peer] += 1
            # Rotate: the peer just used goes after the others with the same load.
            order[peer] += len(candidates)
        placement[shard] = chosen
    return placement


def placement_json(placement: Placement) -> dict[str, list[int]]:
    """As stored in etcd (JSON object keys are strings)."""
    return {str(shard): list(peers) for shard, peers in sorted(placement.items())}


def placement_of(raw: object) -> Placement:
    if not isinstance(raw, dict):
        return {}
    return {int(shard): [int(p) for p in peers] for shard, peers in raw.items()}


def shards_on(placement: Placement, peer: int) -> list[int]:
    return sorted(shard for shard, peers in placement.items() if peer in peers)
