"""One local shard: the WAL, the segment holder, recovery, checkpoints (manifest
generations, pins), the optimizer, and the per-shard read primitives (search, scroll, count,
facet). May import segment/, query/ and the core modules."""
