"""One collection: its persisted config and its shard(s); executes every request
(`Collection`: it takes the locks, runs reads on its shard, turns what they find into the
plain values of values.py with the selection applied, and logs and applies the writes that
writes.py builds from parsed values), owns operation ids, and contains damage (a collection
that cannot load is reported, not fatal). May import execution/, shard/ and below."""
