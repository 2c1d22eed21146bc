"""Text indexes persisted by an older Tessera, whose tokenizer made other tokens.

Before Qdrant's stopword lists and stemmers (tokenizer version 1, which recorded no version)
a text index with a stemmer, a non-English stopword language or case-sensitive custom
stopwords held tokens this build would not make, and its recorded tokenizer no longer
equalled the schema's: such a checkpoint was refused, and with it the collection. Here a
shard is written, its text index files are replaced by what the old build wrote (the old
tokens, the old tokenizer record, no version; files and manifest checksummed as ever), and
the shard must open, answer as a fresh build does, log the rebuild once, and write the
rebuilt index at its next checkpoint so that the one after loads it as is.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tessera.collection_config import parse_create_collection
from tessera.fileformat import read_array_file, write_array_file, write_checked_json
from tessera.query.text_tokenizer import TOKENIZER_VERSION
from tessera.segment.field_index import FieldIndex, make_field_index, parse_field_schema
from tessera.segment.field_index_state import (
    StaleIndexState,
    export_field_index,
    import_field_index,
)
from tessera.segment.persist import load_segment
from tessera.shard import operations as ops
from tessera.shard.shard import (
    MANIFEST_KIND,
    MANIFEST_VERSION,
    LocalShard,
    manifest_generations,
    manifest_name,
    read_manifest,
)

GERMAN_STEM = {"type": "snowball", "language": "german"}
# key -> (the schema, the params the old build in effect tokenized it with)
FIELDS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # the old build ignored stemmers and knew English stopwords only
    "stem": ({"type": "text", "stopwords": "german", "stemmer": GERMAN_STEM}, {}),
    "de": ({"type": "text", "stopwords": "german"}, {}),
    # it lowercased custom stopwords even without `lowercase`
    "cs": (
        {"type": "text", "lowercase": False, "stopwords": {"custom": ["The"]}},
        {"lowercase": False, "stopwords": {"custom": ["the"]}},
    ),
    # same configuration: only the missing version tells it apart
    "en": ({"type": "text", "stopwords": "english"}, {"stopwords": "english"}),
}
TEXTS = [
    "Die Hunde laufen über die Straße",
    "Der Hund läuft",
    "The Cat and the dog",
    "the cat sat",
    "Häuser und Gärten",
    "ein Haus im Garten",
    "The end",
]
# tokenizer_data_digest() of TOKENIZER_VERSION 3 and 4 (4 changed code, not data)
DIGEST_V3 = "c6b25dce3ab432613f445ad231da94a38cdb7441cacf9ece9f635e502f80acd0"
QUERIES = ["Hunde", "hund", "Haus", "Gärten", "die", "und", "The", "the", "cat", "dog the"]


def old_index(key: str, payloads: list[dict[str, Any] | None], live: Any) -> FieldIndex:
    """The index the old build made of these payloads (its tokens, its tokenizer record)."""
    index = make_field_index(key, parse_field_schema({"type": "text", **FIELDS[key][1]}))
    for off in np.flatnonzero(live).tolist():
        payload = payloads[off]
        if payload:
            index.add(off, payload)
    return index


def fresh_index(key: str, payloads: list[dict[str, Any] | None], live: Any) -> FieldIndex:
    index = make_field_index(key, parse_field_schema(FIELDS[key][0]))
    for off in np.flatnonzero(live).tolist():
        payload = payloads[off]
        if payload:
            index.add(off, payload)
    return index


def answers(index: FieldIndex, n: int) -> list[Any]:
    out = []
    for q in QUERIES:
        for any_token in (False, True):
            mask = index.match_text(q, any_token, n)
            assert mask is not None
            out.append(np.flatnonzero(mask).tolist())
    return out


def write_old_state(shard_dir: Path, config: Any) -> None:
    """Replace every text index file of the newest checkpoint with the old build's."""
    gen = manifest_generations(shard_dir)[0]
    manifest_path = shard_dir / manifest_name(gen)
    manifest = read_manifest(manifest_path)
    differs = False
    for entry in manifest["segments"]:
        seg_dir = shard_dir / "segments" / entry["id"]
        segment = load_segment(seg_dir, entry["id"], entry["files"], config)
        live = ~segment.deleted[: segment.size]
        for key in FIELDS:
            files = entry["files"][f"fidx:{key}"]
            path = seg_dir / files[0]["name"]
            meta, _ = read_array_file(path, "field-index")
            assert meta["state"]["tokenizer_version"] == TOKENIZER_VERSION
            old = old_index(key, segment.payloads, live)
            state, arrays = export_field_index(old)
            del state["tokenizer_version"]  # the old build wrote none
            arrays = {**arrays, "deleted_at_write": segment.deleted[: segment.size].copy()}
            size, crc = write_array_file(path, "field-index", {"key": key, "state": state}, arrays)
            files[0].update(size=size, crc32=crc)
            differs |= answers(old, segment.size) != answers(
                fresh_index(key, segment.payloads, live), segment.size
            )
            with pytest.raises(StaleIndexState):
                import_field_index(key, parse_field_schema(FIELDS[key][0]), state, arrays)
    assert differs, "the old tokens must answer differently, or the test proves nothing"
    write_checked_json(manifest_path, MANIFEST_KIND, MANIFEST_VERSION, manifest)


def stale_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "rebuilding payload index" in r.getMessage()
    ]


def test_old_text_index_is_rebuilt_not_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}})
    n = len(TEXTS)
    shard = LocalShard(tmp_path, config)
    try:
        column = ops.DenseColumn(np.ones(n, dtype=bool), np.ones((n, 2), dtype=np.float32))
        payloads: list[dict[str, Any] | None] = [{k: t for k in FIELDS} for t in TEXTS]
        shard.update(lambda h: ops.UpsertPoints(list(range(n)), {"": column}, payloads))
        shard.update(lambda h: ops.DeletePoints([5]))
        for key, (schema, _) in FIELDS.items():
            shard.update(lambda h, key=key, schema=schema: ops.CreateFieldIndex(key, schema))
    finally:
        shard.close()
    write_old_state(tmp_path, parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}}))

    caplog.set_level(logging.WARNING)
    shard = LocalShard(
        tmp_path, parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}})
    )
    try:
        assert not shard.damage
        with shard.read() as holder:
            for segment in holder.segments:
                live = ~segment.deleted[: segment.size]
                for key in FIELDS:
                    want = answers(fresh_index(key, segment.payloads, live), segment.size)
                    assert answers(segment.field_indexes[key], segment.size) == want, key
        warned = stale_warnings(caplog)
        assert sorted(k for k in FIELDS if any(repr(k) in w for w in warned)) == sorted(FIELDS)
        assert len(warned) == len(FIELDS)  # once per key
    finally:
        shard.close()  # its checkpoint writes the rebuilt indexes

    caplog.clear()
    gen = manifest_generations(tmp_path)[0]
    for entry in read_manifest(tmp_path / manifest_name(gen))["segments"]:
        for key in FIELDS:
            name = entry["files"][f"fidx:{key}"][0]["name"]
            meta, _ = read_array_file(tmp_path / "segments" / entry["id"] / name, "field-index")
            assert meta["state"]["tokenizer_version"] == TOKENIZER_VERSION
    shard = LocalShard(
        tmp_path, parse_create_collection({"vectors": {"size": 2, "distance": "Dot"}})
    )
    try:
        assert not shard.damage and not stale_warnings(caplog)
        with shard.read() as holder:
            for segment in holder.segments:
                live = ~segment.deleted[: segment.size]
                assert answers(segment.field_indexes["stem"], segment.size) == answers(
                    fresh_index("stem", segment.payloads, live), segment.size
                )
    finally:
        shard.close()


def tokenizer_data_digest() -> str:
    """sha256 over the data the tokens follow: stopword lists, folding table, word classes,
    segmentation models and dictionaries, and the versions of the Snowball library and the
    two segmenters (rjieba, vaporetto)."""
    from importlib import metadata, resources

    versions = [metadata.version(p) for p in ("snowballstemmer", "rjieba", "vaporetto")]
    digest = hashlib.sha256(" ".join(versions).encode())
    root = resources.files("tessera.query")
    names = ["ascii_folding.tsv", "word_chars.tsv"]
    names += sorted(f"stopwords/{p.name}" for p in root.joinpath("stopwords").iterdir())
    names += sorted(f"segmentation/{p.name}" for p in root.joinpath("segmentation").iterdir())
    for name in names:
        if name.endswith((".txt", ".tsv", ".xz")):
            digest.update(name.encode() + b"\0" + root.joinpath(name).read_bytes())
    return digest.hexdigest()


def test_tokenizer_data_is_that_of_its_version() -> None:
    """Changed tokenizer data changes tokens: bump TOKENIZER_VERSION (so saved indexes are
    rebuilt) and record the new digest here with it."""
    assert (TOKENIZER_VERSION, tokenizer_data_digest()) == (4, DIGEST_V3)
