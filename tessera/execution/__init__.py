"""Query planning and execution above the shard: prefetch trees, fusion, rescoring, groups,
MMR and batches, run over a shard's segment holder. May import shard/, segment/, query/ (the
primitives) and the core modules; never api/, storage/ or collection/."""
