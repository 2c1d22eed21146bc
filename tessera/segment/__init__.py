"""One segment: id tracker, vector storages, payloads, field indexes, ANN indexes, the filter
evaluator over them, and their on-disk files. May import query/ (the primitives) and the core
modules."""
