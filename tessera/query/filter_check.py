"""Conditions checked against one payload: the path for fields without a usable index.

`compile_predicate` turns a condition into a closure over its precomputed operands (sets,
tokens, parsed bounds), so checking a candidate costs one extraction and a few comparisons.
The semantics are Qdrant's as its local mode states them; in particular:

- exact matches keep bool, integer, float and string apart (`1` never matches `true` or
  `1.0`), and `except` needs a non-null value outside the list (a missing or null field
  does not qualify, an object or nested array does);
- `range` sees numbers only (not booleans), a datetime range strings that parse as datetimes;
- full text without an index compares lowercased alphanumeric runs within one string value.

Inside a `nested` filter the "payload" is one array element; `has_id`, `has_vector` and
`slice` never match there. A full-text condition there is read as the text index on its full
path (`arr[].t` for `t` inside `nested` on `arr`) would read the element's strings, when there
is one (`TextRules`): Qdrant checks nested conditions with the indexes of their full paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, assert_never

from tessera.query import filter_model as m
from tessera.query.datetime_parse import parse_datetime_micros
from tessera.query.geo_math import geo_point_of, haversine_m, in_bbox, in_polygon
from tessera.query.payload_path import (
    extract_values,
    is_empty_values,
    is_null_values,
    nested_elements,
    raw_values,
    value_counts,
)
from tessera.query.text_tokenizer import Tokenizer, default_tokens

Payload = dict[str, Any]
Predicate = Callable[[Payload], bool]
TypedKey = tuple[str, Any]
# A text index by the full key path it is on: its tokenizer and whether it matches phrases;
# None where the path has no text index.
TextRules = Callable[[str], "tuple[Tokenizer, bool] | None"]


def typed_key(value: Any) -> TypedKey | None:
    """A hashable key under which equal JSON scalars of the same JSON type coincide."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, float):
        return ("f", value)
    return None


def bounds_test(b: m.Bounds) -> Callable[[Any], bool]:
    gt, gte, lt, lte = b.gt, b.gte, b.lt, b.lte

    def test(v: Any) -> bool:
        return (
            (gt is None or v > gt)
            and (gte is None or v >= gte)
            and (lt is None or v < lt)
            and (lte is None or v <= lte)
        )

    return test


def _any_value(cond_key: Any, test: Callable[[Any], bool]) -> Predicate:
    def pred(payload: Payload) -> bool:
        return any(test(v) for v in extract_values(payload, cond_key))

    return pred


def _text_test(cond: m.MatchText) -> Callable[[Any], bool]:
    query = default_tokens(cond.text)
    wanted = set(query)
    if cond.any_token:
        return lambda v: isinstance(v, str) and not wanted.isdisjoint(default_tokens(v))
    if not query:
        return lambda v: False
    return lambda v: isinstance(v, str) and wanted.issubset(default_tokens(v))


def _phrase_test(cond: m.MatchPhrase) -> Callable[[Any], bool]:
    phrase = default_tokens(cond.phrase)
    k = len(phrase)

    def test(v: Any) -> bool:
        if not isinstance(v, str) or k == 0:
            return False
        words = default_tokens(v)
        return any(words[i : i + k] == phrase for i in range(len(words) - k + 1))

    return test


def value_test(cond: m.FieldTest) -> Callable[[Any], bool] | None:
    """The per-value test of a field condition, or None for whole-field ones."""
    match cond:
        case m.MatchValue():
            want = typed_key(cond.value)
            return lambda v: typed_key(v) == want
        case m.MatchAny():
            keys = {typed_key(x) for x in cond.values}
            return lambda v: typed_key(v) in keys
        case m.MatchExcept():
            keys = {typed_key(x) for x in cond.values}
            return lambda v: v is not None and typed_key(v) not in keys
        case m.MatchText():
            return _text_test(cond)
        case m.MatchPhrase():
            return _phrase_test(cond)
        case m.MatchPrefix():
            prefix = cond.prefix
            return lambda v: isinstance(v, str) and v.startswith(prefix)
        case m.MatchSubstring():
            sub = cond.substring
            return lambda v: isinstance(v, str) and sub in v
        case m.NumericRange():
            # Qdrant compares numbers as f64, bounds and values alike: 2**60 + 1 is 2**60
            b = cond.bounds
            ok = bounds_test(
                m.Bounds(*(None if x is None else float(x) for x in (b.gt, b.gte, b.lt, b.lte)))
            )
            return lambda v: not isinstance(v, bool) and isinstance(v, int | float) and ok(float(v))
        case m.DatetimeRange():
            ok = bounds_test(cond.bounds)

            def dt_test(v: Any) -> bool:
                if not isinstance(v, str):
                    return False
                us = parse_datetime_micros(v)
                return us is not None and ok(us)

            return dt_test
        case m.GeoRadius():
            (c_lat, c_lon), radius = cond.center, cond.radius

            def radius_test(v: Any) -> bool:
                p = geo_point_of(v)
                return p is not None and haversine_m(p[0], p[1], c_lat, c_lon) < radius

            return radius_test
        case m.GeoBoundingBox():
            tl, br = cond.top_left, cond.bottom_right

            def bbox_test(v: Any) -> bool:
                p = geo_point_of(v)
                return p is not None and in_bbox(p[0], p[1], tl, br)

            return bbox_test
        case m.GeoPolygon():
            ext, holes = cond.exterior, cond.interiors

            def polygon_test(v: Any) -> bool:
                p = geo_point_of(v)
                return p is not None and in_polygon(p[0], p[1], ext, holes)

            return polygon_test
        case m.ValuesCount() | m.IsEmpty() | m.IsNull():
            return None
        case _:
            assert_never(cond)


def _field_predicate(cond: m.FieldTest) -> Predicate:
    key = cond.key
    if isinstance(cond, m.ValuesCount):
        ok = bounds_test(cond.bounds)
        return lambda p: any(ok(c) for c in value_counts(raw_values(p, key)))
    if isinstance(cond, m.IsEmpty | m.IsNull) and cond.per_value:
        return _per_value_test(cond)
    if isinstance(cond, m.IsEmpty):
        expected = cond.expected
        return lambda p: is_empty_values(raw_values(p, key)) == expected
    if isinstance(cond, m.IsNull):
        expected_null = cond.expected
        return lambda p: is_null_values(raw_values(p, key)) == expected_null
    test = value_test(cond)
    assert test is not None
    return _any_value(key, test)


def _per_value_test(cond: m.IsEmpty | m.IsNull) -> Predicate:
    """The FieldCondition form of `is_empty` / `is_null`, as Qdrant checks it: a point with
    no value at the key passes `is_empty: true` and `is_null: false`; otherwise any one value
    passing does. A null is empty and null; an array is empty when it has no element and
    null when one is null; any other value is neither."""
    key, expected = cond.key, cond.expected
    # the whole-field tests, asked of one value at a time
    holds = is_empty_values if isinstance(cond, m.IsEmpty) else is_null_values
    absent = expected if isinstance(cond, m.IsEmpty) else not expected

    def test(p: Payload) -> bool:
        values = raw_values(p, key)
        if not values:
            return absent
        return any(holds([v]) == expected for v in values)

    return test


def _all(preds: Iterable[Predicate]) -> Predicate:
    ps = tuple(preds)
    return lambda p: all(f(p) for f in ps)


def compile_predicate(
    cond: m.Condition,
    nested: bool = False,
    text_rules: TextRules | None = None,
    prefix: str = "",
) -> Predicate:
    """A payload-only check of the condition (id/vector conditions never match). `nested`:
    the condition is checked on one element of a `nested` array (see compile_filter_predicate)
    whose full path starts with `prefix` (`arr[].`); `text_rules`: the text indexes a
    full-text condition inside `nested` is read by."""
    match cond:
        case m.HasId() | m.HasVector() | m.Slice():
            return lambda p: False
        case m.Nested():
            inner = compile_filter_predicate(
                cond.filter, True, text_rules, f"{prefix}{cond.key.text}[]."
            )
            key = cond.key
            return lambda p: any(inner(e) for e in nested_elements(p, key))
        case m.Filter():
            return compile_filter_predicate(cond, nested, text_rules, prefix)
        case m.MatchText() | m.MatchPhrase() if nested and text_rules is not None:
            rule = text_rules(prefix + cond.key.text)
            if rule is not None:
                return _any_value(cond.key, _indexed_text_test(cond, *rule))
            return _field_predicate(cond)
        case _:
            return _field_predicate(cond)


def _indexed_text_test(
    cond: m.MatchText | m.MatchPhrase, tokenizer: Tokenizer, phrases: bool
) -> Callable[[Any], bool]:
    """A full-text test of one string as a text index with `tokenizer` answers it."""
    if isinstance(cond, m.MatchPhrase):
        if not phrases:  # an index without phrase_matching matches no phrase
            return lambda v: False
        phrase = tokenizer.phrase_terms(cond.phrase)
        return lambda v: isinstance(v, str) and tokenizer.phrase_in(tokenizer.doc_words(v), phrase)
    terms = set(tokenizer.query_terms(cond.text))
    if cond.any_token:
        return lambda v: isinstance(v, str) and not terms.isdisjoint(tokenizer.doc_terms(v))
    if not terms:
        return lambda v: False
    return lambda v: isinstance(v, str) and terms.issubset(tokenizer.doc_terms(v))


def compile_filter_predicate(
    f: m.Filter, nested: bool = False, text_rules: TextRules | None = None, prefix: str = ""
) -> Predicate:
    def each(c: m.Condition) -> Predicate:
        return compile_predicate(c, nested, text_rules, prefix)

    parts: list[Predicate] = []
    if f.must is not None:
        parts.append(_all(each(c) for c in f.must))
    if f.must_not is not None:
        negs = tuple(each(c) for c in f.must_not)
        parts.append(lambda p: not any(g(p) for g in negs))
    if f.should:
        alts = tuple(each(c) for c in f.should)
        parts.append(lambda p: any(g(p) for g in alts))
    elif nested and f.should is not None:
        # Qdrant's nested check reads an empty `should` as "none of them matched", where
        # its filter at the top level reads it as no constraint (Qdrant Edge answers both)
        parts.append(lambda p: False)
    if f.min_should is not None:
        opts = tuple(each(c) for c in f.min_should.conditions)
        need = f.min_should.min_count
        parts.append(lambda p: sum(1 for g in opts if g(p)) >= need)
    return _all(parts)
