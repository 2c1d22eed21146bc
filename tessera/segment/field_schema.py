"""Payload index schemas: `PayloadFieldSchema` parsed, validated and rendered as Qdrant does.

A schema is either a bare type name (`"keyword"`) or a `*IndexParams` object (`{"type":
"text", "tokenizer": "prefix", ...}`). `FieldSchema.to_json(points)` renders the
`PayloadIndexInfo` that collection info lists under `payload_schema`: `data_type`, the params
object when one was given (only the fields that were set, plus a text index's `tokenizer`,
which Qdrant always renders), and `points`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tessera.errors import BadRequest
from tessera.query.payload_path import parse_path
from tessera.query.stemmers import canonical_stemmer
from tessera.query.text_tokenizer import TOKENIZERS, canonical_stopwords

SCHEMA_TYPES = ("keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid")
MEMORY = ("cold", "cached", "pinned")
LANGUAGES = (
    "arabic", "azerbaijani", "basque", "bengali", "catalan", "chinese", "danish", "dutch",
    "english", "finnish", "french", "german", "greek", "hebrew", "hinglish", "hungarian",
    "indonesian", "italian", "japanese", "kazakh", "nepali", "norwegian", "portuguese",
    "romanian", "russian", "slovene", "spanish", "swedish", "tajik", "turkish",
)  # fmt: skip
SNOWBALL = (
    "arabic", "armenian", "danish", "dutch", "english", "finnish", "french", "german",
    "greek", "hungarian", "italian", "norwegian", "portuguese", "romanian", "russian",
    "spanish", "swedish", "tamil", "turkish",
)  # fmt: skip

_COMMON = {
    "type": "str",
    "on_disk": "bool",
    "memory": "memory",
    "enable_hnsw": "bool",
    "nested": "nested",
}
_PARAMS: dict[str, dict[str, str]] = {
    "keyword": {**_COMMON, "is_tenant": "bool", "prefix": "bool"},
    "integer": {**_COMMON, "lookup": "bool", "range": "bool", "is_principal": "bool"},
    "float": {**_COMMON, "is_principal": "bool"},
    "geo": dict(_COMMON),
    "text": {
        **_COMMON,
        "tokenizer": "tokenizer",
        "min_token_len": "uint",
        "max_token_len": "uint",
        "lowercase": "bool",
        "ascii_folding": "bool",
        "phrase_matching": "bool",
        "stopwords": "stopwords",
        "stemmer": "stemmer",
        "scoring": "scoring",
    },
    "bool": dict(_COMMON),
    "datetime": {**_COMMON, "is_principal": "bool"},
    "uuid": {**_COMMON, "is_tenant": "bool"},
}


@dataclass(frozen=True)
class FieldSchema:
    data_type: str
    # The params object as given (null fields dropped), None for a bare type name.
    params: dict[str, Any] | None = field(default=None, hash=False)

    def to_json(self, points: int | None = None) -> dict[str, Any]:
        """`PayloadIndexInfo`; `points` is left out when not given (the caller sums it
        over segments)."""
        out: dict[str, Any] = {"data_type": self.data_type}
        if self.params is not None:
            out["params"] = dict(self.params)
        if points is not None:
            out["points"] = points
        return out

    def wire(self) -> Any:
        """The `PayloadFieldSchema` JSON that `parse_field_schema` reads back as this schema
        (what a WAL record and a cluster record carry)."""
        return self.data_type if self.params is None else {"type": self.data_type, **self.params}

    def param(self, name: str, default: Any = None) -> Any:
        if self.params is None:
            return default
        value = self.params.get(name)
        return default if value is None else value


def _fail(message: str) -> BadRequest:
    return BadRequest(f"Format error in JSON body: field_schema: {message}")


def _check(kind: str, name: str, value: Any) -> Any:
    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise _fail(f"`{name}` must be {what}, got {value!r}")

    if kind == "bool":
        expect(isinstance(value, bool), "a boolean")
    elif kind == "uint":
        expect(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
               "a non-negative integer")  # fmt: skip
    elif kind == "memory":
        expect(value in MEMORY, f"one of {list(MEMORY)}")
    elif kind == "tokenizer":
        expect(value in TOKENIZERS, f"one of {list(TOKENIZERS)}")
    elif kind == "stopwords":
        value = canonical_stopwords(value)
        _check_stopwords(name, value)
        value = _stopwords_as_sets(value)
    elif kind == "stemmer":
        value = canonical_stemmer(value)
        _check_stemmer(name, value)
        value = {k: value[k] for k in ("type", "language") if k in value}  # no extras kept
        if value["type"] == "none":
            value = {"type": "none"}
    elif kind == "nested":
        return _nested(value)
    elif kind == "scoring":
        return _scoring(value)  # `false`: None, no ranking, as when absent
    return value


def _nested(value: Any) -> str:
    """`nested`: the array whose object elements are indexed one by one, as Qdrant keeps it
    (`offers` and `offers[]` both become `offers[]`)."""
    if not isinstance(value, str):
        raise _fail(f"`nested` must be a string, got {value!r}")
    parse_path(value)  # 400 naming the path when it is malformed
    array = value.removesuffix("[]")
    if "[" in array:
        raise BadRequest(
            f"Wrong input: Validation failed: nested `{array}[]` must point to a single array "
            "level, like `offers` or `offers[]`"
        )
    return f"{array}[]"


def check_nested(field: str, schema: FieldSchema) -> None:
    """A `nested` index's field must lie inside the array's elements (Qdrant's wording)."""
    nested = schema.param("nested")
    if nested is not None and not field.startswith(f"{nested}."):
        raise BadRequest(
            f"Wrong input: Validation failed: field `{field}` must be inside the elements of "
            f"nested `{nested}`, like `{nested}.price`"
        )


def _scoring(value: Any) -> dict[str, str] | None:
    """A text index's `scoring` (`true`, `false` or `{"type": "bm25"}`), as it is kept and
    rendered: the params object, or None for no ranking."""
    if value is True or value == {"type": "bm25"}:
        return {"type": "bm25"}
    if value is False:
        return None
    if isinstance(value, dict) and set(value) == {"type"}:
        raise _fail(f"`scoring.type`: unknown variant {value['type']!r}, expected `bm25`")
    raise _fail(f"`scoring` must be a boolean or {{'type': 'bm25'}}, got {value!r}")


def _check_stopwords(name: str, value: Any) -> None:
    if isinstance(value, str):
        if value not in LANGUAGES:
            raise _fail(f"`{name}`: unknown language {value!r}")
        return
    if not isinstance(value, dict) or not set(value) <= {"languages", "custom"}:
        raise _fail(f"`{name}` must be a language or an object with `languages` and `custom`")
    for lang in value.get("languages") or []:
        if lang not in LANGUAGES:
            raise _fail(f"`{name}.languages`: unknown language {lang!r}")
    custom = value.get("custom") or []
    if not isinstance(custom, list) or not all(isinstance(w, str) for w in custom):
        raise _fail(f"`{name}.custom` must be an array of strings")


def _stopwords_as_sets(value: Any) -> Any:
    """A checked `stopwords` object as Qdrant keeps it: its `languages` and `custom` are
    BTreeSets, so each is deduplicated and sorted (languages in the enum's order, words by
    their bytes) and echoed that way; a single language stays a string."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if isinstance(out.get("languages"), list):
        out["languages"] = sorted(set(out["languages"]), key=LANGUAGES.index)
    if isinstance(out.get("custom"), list):
        out["custom"] = sorted(set(out["custom"]))
    return out


def _check_stemmer(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _fail(f"`{name}` must be an object")
    if value.get("type") == "none":  # other fields beside are ignored, as by Qdrant
        return
    if value.get("type") != "snowball" or "language" not in value:
        raise _fail(
            f"`{name}` must be {{'type': 'snowball', 'language': ...}} or {{'type': 'none'}}"
        )
    if value["language"] not in SNOWBALL:
        raise _fail(f"`{name}.language`: unknown snowball language {value['language']!r}")


def parse_field_schema(raw: Any) -> FieldSchema:
    """Parse a `PayloadFieldSchema`: a type name or a params object."""
    if isinstance(raw, str):
        if raw not in SCHEMA_TYPES:
            raise _fail(
                f"unknown payload schema type {raw!r}, expected one of {list(SCHEMA_TYPES)}"
            )
        return FieldSchema(raw)
    if not isinstance(raw, dict):
        raise _fail("expected a schema type name or an index params object")
    data_type = raw.get("type")
    if data_type not in _PARAMS:
        raise _fail(
            f"unknown index params type {data_type!r}, expected one of {list(SCHEMA_TYPES)}"
        )
    allowed = _PARAMS[data_type]
    # Fields the type's params do not have are ignored, as Qdrant's params structs (without
    # `deny_unknown_fields`) ignore them: `{"type": "keyword", "tokenizer": "word"}` is a
    # keyword index.
    params = {
        name: value
        for name, value in raw.items()
        if name in allowed and name != "type" and value is not None
    }
    return schema_of(data_type, params)


def schema_of(data_type: str, given: dict[str, Any]) -> FieldSchema:
    """A params-object schema from its set fields (decoded from JSON or from gRPC), each
    checked (its kind, a known language or tokenizer), then Qdrant's rules across fields,
    the text tokenizer's default and the field order."""
    allowed = _PARAMS[data_type]
    params: dict[str, Any] = {"type": data_type}
    for name, value in given.items():
        checked = _check(allowed[name], name, value)
        if checked is not None:  # None: a value that means the param is not set
            params[name] = checked
    if data_type == "text":
        params.setdefault("tokenizer", "word")
        lo, hi = params.get("min_token_len"), params.get("max_token_len")
        if lo is not None and hi is not None and lo > hi:
            raise _fail("`min_token_len` must not exceed `max_token_len`")
    if data_type == "integer" and params.get("lookup") is False and params.get("range") is False:
        raise BadRequest(
            "Wrong input: the 'lookup' and 'range' capabilities can't be both disabled"
        )
    return FieldSchema(data_type, _ordered(params, allowed))


def _ordered(params: dict[str, Any], allowed: dict[str, str]) -> dict[str, Any]:
    # Render in the schema's field order, as Qdrant's serializer does.
    return {name: params[name] for name in allowed if name in params}
