"""Exact, pickle-free export and import of payload field indexes.

`export_field_index(index)` returns `(meta, arrays)`: `meta` is plain JSON (str, int, float,
bool, None, list, dict), `arrays` are 1-d numpy arrays of numeric or bool dtypes, keyed by
short ASCII names. Strings travel as one UTF-8 `uint8` buffer plus `int64` offsets
(`<name>_buf`, `<name>_off`). `import_field_index(key, schema, meta, arrays)` rebuilds an
index that answers every query exactly as the exported one did, without reading payloads.

What is stored, for every index: the per-offset facts (`empty`, `null`, `count` with the
multi-count offsets as `multi_at` / `multi_len` / `multi_val`, `other`), trimmed after the
last offset that differs from "never added", and the typed part's live entries, merged and
sorted (`keys`, `owners`; a geo index has `lat` / `owners` / `lon`). Keyword and uuid
indexes add their interned strings (`str`); a text index its vocabulary (`vocab`), its
documents (`doc_at`, `word_ids`, `word_start`; with `nested` also `doc_unit`) and its
tokenizer configuration (in meta, checked against the schema on import). Interned strings
and text documents are compacted on export: strings and words no live entry uses and removed
documents are left out, and ids are renumbered in order, so the sorted order of the entries
is kept and exporting an imported index gives the same state back. Everything derivable is
rebuilt on import with numpy: which offsets hold values (`_has`, `points_count`), the
`other_kinds` histogram, the postings' generations and live counts, the string -> id
dictionaries, a text index's documents per offset. The uuid index's canonical-spelling cache
is rebuilt lazily, as after a fresh build. An integer index's `lookup` / `range` flags
change nothing stored.

Read-only input (np.memmap, np.frombuffer) is fine. Import *copies* the arrays the index
writes in place (the per-offset facts: 11 bytes a point, one memcpy each) and *keeps as
given* the big columns it never writes in place: the sorted entry columns (a merge builds
new ones) and a text index's flat word ids (only appended to, and the first append
reallocates). So a memory-mapped file is paged in on demand rather than copied at start;
import allocates about 19 bytes per offset (the copied facts, the postings' generations
and live counts) and 4 per entry (generations). Hence the caller must not modify or
truncate a file (or buffer) it handed to `import_field_index` while the index lives;
replace files by writing a new one and renaming it. Exported arrays are never aliased to
anything the index later writes in place, so they may be written out after the caller's
lock is released.

An index whose entries were made by rules this build no longer follows (a text index
tokenized by an older tokenizer, see `TextIndex`) raises `StaleIndexState` on import, a
ValueError the caller may answer by rebuilding that index from the payloads: the state is
consistent, only built the old way.

Import validates cheaply (vectorised): dtypes and lengths against the counts in `meta`,
ids and offsets in range, entries sorted and distinct, offsets arrays monotonic, UTF-8,
and a few cross-checks (an offset holding values is not empty; multi-count offsets agree
with `count`). Anything inconsistent raises ValueError, which the caller treats as a
damaged file. Export reads the index like a query does (it may merge pending postings
under the postings' own lock), so it must be serialised against writes like any read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.segment.field_index import FieldIndex, make_field_index
from tessera.segment.field_schema import FieldSchema

__all__ = [
    "STATE_VERSION",
    "StaleIndexState",
    "StateReader",
    "StateWriter",
    "export_field_index",
    "import_field_index",
]

STATE_VERSION = 1

# Strings may hold lone surrogates (a JSON "\ud800" escape); keep them exact.
_UTF8_ERRORS = "surrogatepass"


class StaleIndexState(ValueError):
    """A consistent state whose entries an older (or other) build made by rules this build
    does not follow: rebuild the index from the payloads rather than load it."""


class StateWriter:
    """Collects one index's state: `meta` (JSON) and `arrays` (numeric numpy arrays)."""

    def __init__(self, kind: str, key: str) -> None:
        self.meta: dict[str, Any] = {"kind": kind, "version": STATE_VERSION, "key": key}
        self.arrays: dict[str, npt.NDArray[Any]] = {}

    def put(self, name: str, array: npt.NDArray[Any]) -> None:
        assert name not in self.arrays and array.ndim == 1 and array.dtype.kind in "biuf"
        self.arrays[name] = array

    def put_strings(self, name: str, strings: Sequence[str]) -> None:
        """`<name>_buf` (uint8, the UTF-8 bytes back to back), `<name>_off` (int64, len + 1)."""
        joined = "".join(strings)
        if joined.isascii():  # the common case: one encode, lengths in characters
            data = joined.encode("ascii")
            sizes = map(len, strings)
        else:
            encoded = [s.encode("utf-8", _UTF8_ERRORS) for s in strings]
            data = b"".join(encoded)
            sizes = map(len, encoded)
        offsets = np.zeros(len(strings) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(sizes, np.int64, len(strings)), out=offsets[1:])
        self.put(f"{name}_buf", np.frombuffer(data, dtype=np.uint8).copy())
        self.put(f"{name}_off", offsets)


class StateReader:
    """Checked access to one index's state; every failure is a ValueError."""

    def __init__(
        self, kind: str, meta: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]
    ) -> None:
        self.kind = kind
        self.meta = meta
        self._arrays = arrays
        self._used: set[str] = set()

    def fail(self, message: str) -> ValueError:
        return ValueError(f"{self.kind} field index state: {message}")

    def count(self, name: str) -> int:
        """A non-negative integer from meta."""
        value = self.meta.get(name)
        if type(value) is not int or value < 0:
            raise self.fail(f"meta {name!r} must be a non-negative integer, got {value!r}")
        return value

    def array(self, name: str, dtype: type[np.generic], length: int) -> npt.NDArray[Any]:
        """The array as given (possibly read-only): only for arrays never written in place."""
        found = self._arrays.get(name)
        if found is None:
            raise self.fail(f"array {name!r} is missing")
        if not isinstance(found, np.ndarray):
            raise self.fail(f"array {name!r} is a {type(found).__name__}, not a numpy array")
        if found.dtype != np.dtype(dtype) or found.ndim != 1:
            raise self.fail(
                f"array {name!r} must be 1-d {np.dtype(dtype)}, got {found.ndim}-d {found.dtype}"
            )
        if len(found) != length:
            raise self.fail(f"array {name!r} has {len(found)} entries, expected {length}")
        self._used.add(name)
        return np.asarray(found)  # a memmap subclass becomes a plain view

    def owned(self, name: str, dtype: type[np.generic], length: int) -> npt.NDArray[Any]:
        """A private, writable copy: for arrays the index writes in place."""
        return np.array(self.array(name, dtype, length), copy=True)

    def offsets(self, name: str, length: int, end: int) -> npt.NDArray[np.int64]:
        """`length` int64 offsets rising from 0 to `end` (so every slice is in range)."""
        off = self.array(name, np.int64, length)
        if off[0] != 0 or off[-1] != end or (length > 1 and bool((off[1:] < off[:-1]).any())):
            raise self.fail(f"offsets {name!r} must rise from 0 to {end}")
        return off

    def strings(self, name: str, count: int) -> list[str]:
        buf_name = f"{name}_buf"
        raw = self._arrays.get(buf_name)
        size = len(raw) if isinstance(raw, np.ndarray) else -1
        data = self.array(buf_name, np.uint8, size).tobytes()
        bounds = self.offsets(f"{name}_off", count + 1, len(data)).tolist()
        try:
            return [data[a:b].decode("utf-8", _UTF8_ERRORS) for a, b in pairwise(bounds)]
        except UnicodeDecodeError as exc:
            raise self.fail(f"strings {name!r} are not valid UTF-8") from exc

    def in_range(self, name: str, values: npt.NDArray[Any], lo: int, hi: int) -> None:
        """Every value in [lo, hi)."""
        if len(values) and (int(values.min()) < lo or int(values.max()) >= hi):
            raise self.fail(f"{name} out of range [{lo}, {hi})")

    def finish(self) -> None:
        extra = sorted(set(self._arrays) - self._used)
        if extra:
            raise self.fail(f"unexpected arrays {extra}")


def export_field_index(
    index: FieldIndex,
) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """(meta, arrays) of the index; see the module docstring. Serialise against writes."""
    writer = StateWriter(index.data_type, index.key)
    index.export_state(writer)
    return writer.meta, writer.arrays


def import_field_index(
    key: str,
    schema: FieldSchema,
    meta: dict[str, Any],
    arrays: Mapping[str, npt.NDArray[Any]],
) -> FieldIndex:
    """The index `export_field_index` saw, rebuilt from its state for `key` and `schema`.
    ValueError when meta and arrays do not form a consistent state of such an index."""
    if not isinstance(meta, dict):
        raise ValueError(f"field index state: meta must be an object, got {type(meta).__name__}")
    kind = meta.get("kind")
    if kind != schema.data_type:
        raise ValueError(
            f"field index state: a {kind!r} index cannot load as a {schema.data_type!r} index"
        )
    reader = StateReader(schema.data_type, meta, arrays)
    version = meta.get("version")
    if version != STATE_VERSION or type(version) is not int:
        raise reader.fail(f"unknown state version {version!r} (this build reads {STATE_VERSION})")
    if meta.get("key") != key:
        raise reader.fail(f"state of key {meta.get('key')!r}, expected {key!r}")
    index = make_field_index(key, schema)
    try:
        index.import_state(reader)
    except (IndexError, KeyError, TypeError, OverflowError) as exc:
        # A check above should have caught it; still a damaged state, not a crash.
        raise reader.fail(f"inconsistent state ({type(exc).__name__}: {exc})") from exc
    reader.finish()
    return index
