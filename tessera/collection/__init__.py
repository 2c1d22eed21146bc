"""One collection: its persisted config and its shard(s); executes requests, owns operation
ids, and contains damage (a collection that cannot load is reported, not fatal). May import
execution/, shard/ and below."""
