"""What each graph of an indexed segment was built with, for the config-mismatch optimizer.

Qdrant keeps, per segment, the index and quantization config it was built with; a PATCH of
the collection (`hnsw_config`, `quantization_config`, `vectors.{name}.hnsw_config`,
`.quantization_config`, `.on_disk`) makes segments whose record differs from the new
config candidates of its config-mismatch optimizer, which rebuilds them in the background
(`tessera.shard.optimizer`). Tessera does the same with this record.

Format: the `build` key of the segment's `ids` file meta (`tessera.segment.persist`), so it
is checksummed with that file by the shard manifest (size and crc32):

    {"version": 1,
     "vectors": {<vector name>: {"m": int, "ef_construct": int,
                                 "on_disk": bool | null,          # the graph's placement
                                 "vectors_on_disk": bool | null,  # the vectors' placement
                                 "quantization": {...} | null,    # as configured (Qdrant's
                                                                  # JSON), null: none
                                 "quantized": bool,               # the graph walks codes
                                 "inferred": bool}}}

one entry per vector name with a graph. `null` in `on_disk`/`vectors_on_disk` means unknown
and is never a mismatch.

Segments written before the record existed (no `build` key, or a graph whose name it lacks)
get an *inferred* entry at load: `m` and `ef_construct` read from the faiss graph itself
(faiss stores both), `quantized` from the graph's kind, placement unknown. Its
`quantization` is unknown too: an inferred entry mismatches a config only when the config
asks for a quantized graph and the graph is not one, or the reverse. An inferred entry is
written back as such by the segment's next `ids` write.
"""

from __future__ import annotations

import copy
from typing import Any

from tessera.collection_config import CollectionConfig, placed_on_disk
from tessera.fileformat import FormatError
from tessera.segment.quantization import applies, hnsw_of, is_binary, quantization_for

RECORD_VERSION = 1

Entry = dict[str, Any]

_BOOL_OR_NONE = ("on_disk", "vectors_on_disk")


def wanted_quantized(config: CollectionConfig, name: str) -> bool:
    """Whether a graph of `name` built now walks codes (as `HnswIndex.build` decides)."""
    params = config.vectors.get(name)
    if params is None or params.multivector:
        return False
    quantization = quantization_for(config, name)
    return quantization is not None and (
        is_binary(quantization) or applies(quantization, params.distance)
    )


def target_entry(config: CollectionConfig, name: str) -> Entry:
    """The entry a graph of `name` built now with `config` gets: the build reads its
    parameters from here, so the record is what was used even if a PATCH lands meanwhile."""
    params = config.vectors[name]
    hnsw = config.hnsw_for(name)
    quantization = None if params.multivector else quantization_for(config, name)
    return {
        "m": int(hnsw["m"]),
        "ef_construct": int(hnsw["ef_construct"]),
        "on_disk": placed_on_disk(hnsw, hnsw.get("on_disk")),
        "vectors_on_disk": params.vectors_on_disk(),
        "quantization": copy.deepcopy(quantization),
        "quantized": wanted_quantized(config, name),
        "inferred": False,
    }


def inferred_entry(index: Any) -> Entry:
    """The entry of a graph saved without one (see the module docstring)."""
    hnsw = hnsw_of(index.index).hnsw
    return {
        "m": int(hnsw.nb_neighbors(1)),
        "ef_construct": int(hnsw.efConstruction),
        "on_disk": None,
        "vectors_on_disk": None,
        "quantization": None,
        "quantized": bool(index.quantized),
        "inferred": True,
    }


def mismatch(entry: Entry, config: CollectionConfig, name: str) -> str | None:
    """Why a graph built as `entry` differs from what `config` asks now (None: it does not).
    As Qdrant's: HNSW `m`, `ef_construct`, `on_disk`; the vectors' `on_disk`; the
    quantization (any change, on or off). Parameters read at search time only
    (`full_scan_threshold`, `ef`) never need a rebuild."""
    if name not in config.vectors:
        return None  # a vector name removed: the storage goes at the next rebuild anyway
    target = target_entry(config, name)
    for key in ("m", "ef_construct"):
        if entry[key] != target[key]:
            return f"hnsw {key} {entry[key]} -> {target[key]}"
    for key in _BOOL_OR_NONE:
        if entry[key] is not None and entry[key] != target[key]:
            return f"{key} {entry[key]} -> {target[key]}"
    if entry["inferred"]:
        if entry["quantized"] != target["quantized"]:
            return f"quantized {entry['quantized']} -> {target['quantized']}"
        return None
    if config.vectors[name].multivector:
        return None  # multivector graphs are not quantized
    if entry["quantization"] != target["quantization"]:
        return "quantization changed"
    return None


def segment_mismatch(
    record: dict[str, Entry], indexes: dict[str, Any], config: CollectionConfig
) -> str | None:
    """The first mismatch of a segment's graphs (`vector name: why`), or None."""
    for name in indexes:
        entry = record.get(name)
        if entry is None:
            continue
        why = mismatch(entry, config, name)
        if why is not None:
            return f"vector {name!r}: {why}"
    return None


def to_json(record: dict[str, Entry]) -> dict[str, Any]:
    return {"version": RECORD_VERSION, "vectors": dict(record)}


def from_json(raw: Any, indexes: dict[str, Any], where: str) -> dict[str, Entry]:
    """The record of a loaded segment: checked (FormatError), with an inferred entry for
    each graph it does not cover (none for a segment written before the record)."""
    record: dict[str, Entry] = {}
    if raw is not None:
        if not isinstance(raw, dict) or raw.get("version") != RECORD_VERSION:
            raise FormatError(f"{where}: unknown build record {raw!r:.200}")
        vectors = raw.get("vectors")
        if not isinstance(vectors, dict):
            raise FormatError(f"{where}: build record without vectors")
        for name, entry in vectors.items():
            record[str(name)] = _checked(entry, f"{where}: build record of {name!r}")
    for name, index in indexes.items():
        if name not in record:
            record[name] = inferred_entry(index)
    return {name: entry for name, entry in record.items() if name in indexes}


def _checked(entry: Any, where: str) -> Entry:
    ok = (
        isinstance(entry, dict)
        and all(isinstance(entry.get(k), int) for k in ("m", "ef_construct"))
        and all(entry.get(k) is None or isinstance(entry.get(k), bool) for k in _BOOL_OR_NONE)
        and (entry.get("quantization") is None or isinstance(entry.get("quantization"), dict))
        and isinstance(entry.get("quantized"), bool)
        and isinstance(entry.get("inferred"), bool)
    )
    if not ok:
        raise FormatError(f"{where}: malformed {entry!r:.200}")
    return {
        "m": entry["m"],
        "ef_construct": entry["ef_construct"],
        "on_disk": entry.get("on_disk"),
        "vectors_on_disk": entry.get("vectors_on_disk"),
        "quantization": entry.get("quantization"),
        "quantized": entry["quantized"],
        "inferred": entry["inferred"],
    }
