"""Transports: REST (Starlette) and gRPC parse the wire into requests for the collection and
render its plain answers (tessera.collection.values) in Qdrant's shapes. Owns routes, wire
parsing and Qdrant's error wording. May import storage/, collection/, the query primitives
(query/: the filter parser, the query model), collection_config, config_json, config_model
and the core modules; never
shard/, segment/ or execution/ (a forbidden contract in pyproject.toml): every lock, shard
and segment is the collection's business. Nothing below imports it."""
