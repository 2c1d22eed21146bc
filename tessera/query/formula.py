"""Score-boosting formulas (`FormulaQuery`): the expression JSON parsed into a tree.

`parse_formula(formula_json, defaults_json)` validates everything Qdrant validates before
scoring a single point (variable names, payload paths, datetime constants, decay
parameters, operand counts) and returns a `Formula`; `formula_eval.evaluate` then scores
candidates with it. A body that is not an expression at all is a 422
(`UnprocessableEntity`), a well-formed but invalid one a 400 (`BadRequest`).

The expression forms (Qdrant's `Expression`, plus `max`, `min` and `acosh`, which Qdrant
1.20 and qdrant-client local mode accept although the 1.19 schema does not list them):

    3.5                              constant
    "$score", "$score[2]"            score of the point in prefetch 0 / 2 (default 0)
    "price", "a.b[0]"                a number from the payload (or `defaults`)
    {"key": ..., "match": ...}, ...  a filter condition: 1.0 when it holds, else 0.0
    {"mult": [..]}, {"sum": [..]}, {"max": [..]}, {"min": [..]}
    {"neg": e}, {"abs": e}, {"sqrt": e}, {"exp": e}, {"log10": e}, {"ln": e}, {"acosh": e}
    {"div": {"left": e, "right": e, "by_zero_default": 0.0}}
    {"pow": {"base": e, "exponent": e}}
    {"geo_distance": {"origin": {"lon": .., "lat": ..}, "to": "path"}}   meters
    {"datetime": "2025-01-01T00:00:00Z"}, {"datetime_key": "path"}      epoch seconds
    {"lin_decay" | "exp_decay" | "gauss_decay": {"x": e, "target": e, "scale": s, "midpoint": m}}
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tessera.config_model import rust_f64
from tessera.errors import BadRequest, UnprocessableEntity, bad_input
from tessera.query.formula_inputs import is_valid_path, parse_timestamp

DecayKind = Literal["lin", "exp", "gauss"]

DEFAULT_DECAY_MIDPOINT = 0.5
DEFAULT_DECAY_SCALE = 1.0


@dataclass(frozen=True)
class Const:
    value: float


@dataclass(frozen=True)
class ScoreVar:
    index: int


@dataclass(frozen=True)
class PayloadVar:
    path: str


@dataclass(frozen=True)
class ConditionVar:
    """A filter condition; `index` points into `Formula.conditions`."""

    index: int


@dataclass(frozen=True)
class GeoDistance:
    lon: float
    lat: float
    path: str


@dataclass(frozen=True)
class DatetimeKey:
    path: str


@dataclass(frozen=True)
class Nary:
    """mult, sum, max or min over the operands, left to right."""

    op: Literal["mult", "sum", "max", "min"]
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Unary:
    op: Literal["neg", "abs", "sqrt", "exp", "log10", "ln", "acosh"]
    arg: Expr


@dataclass(frozen=True)
class Div:
    left: Expr
    right: Expr
    by_zero_default: float | None


@dataclass(frozen=True)
class Pow:
    base: Expr
    exponent: Expr


@dataclass(frozen=True)
class Decay:
    kind: DecayKind
    x: Expr
    target: Expr | None
    lam: float  # the decay's shape folded into one constant, as Qdrant does


Expr = (
    Const
    | ScoreVar
    | PayloadVar
    | ConditionVar
    | GeoDistance
    | DatetimeKey
    | Nary
    | Unary
    | Div
    | Pow
    | Decay
)


@dataclass(frozen=True)
class Formula:
    root: Expr
    conditions: tuple[Any, ...] = ()
    """The condition JSON of each `ConditionVar`, for the caller to validate or compile."""
    payload_paths: frozenset[str] = frozenset()
    score_defaults: dict[int, Any] = field(default_factory=dict)
    payload_defaults: dict[str, Any] = field(default_factory=dict)


_NARY = ("mult", "sum", "max", "min")
_UNARY = ("neg", "abs", "sqrt", "exp", "log10", "ln", "acosh")
_DECAY: dict[str, DecayKind] = {"lin_decay": "lin", "exp_decay": "exp", "gauss_decay": "gauss"}
_SCORE_VAR = re.compile(r"\$score(?:\[(\d+)\])?")


def parse_variable(text: str) -> int | str:
    """A score index for `$score` / `$score[i]`, else a validated payload path."""
    if text.startswith("$"):
        match = _SCORE_VAR.fullmatch(text)
        if match is None or (match.group(1) is not None and not match.group(1).isascii()):
            word = re.match(r"\$[\w-]*", text)
            if word is not None and word.group(0) != "$score":
                raise _unparsed_variable(text, f"Invalid reserved word: {text}")
            raise _unparsed_variable(text, f"Invalid reserved variable: {text}")
        return int(match.group(1)) if match.group(1) is not None else 0
    if not is_valid_path(text):
        raise _unparsed_variable(text, f"Invalid payload variable: {text}")
    return text


def _unparsed_variable(text: str, reason: str) -> BadRequest:
    # Qdrant's formula conversion (failed_to_parse in lib/shard's formula.rs) wraps the
    # variable's own error in a validation error, answered as bad input.
    return bad_input(f"Validation failed: failed to parse variable ID {text}: {reason}")


def _shape_error(what: str) -> UnprocessableEntity:
    return UnprocessableEntity(f"Format error in JSON body: {what}")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _shape_error(f"{what} must be a number")
    return float(value)


def _optional_number(value: Any, what: str) -> float | None:
    return None if value is None else _number(value, what)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _shape_error(f"{what} must be an object")
    return value


def decay_lambda(kind: DecayKind, midpoint: float | None, scale: float | None) -> float:
    """The decay's shape as one constant, after Qdrant's rules on midpoint and scale."""
    m = DEFAULT_DECAY_MIDPOINT if midpoint is None else midpoint
    s = DEFAULT_DECAY_SCALE if scale is None else scale
    # Qdrant's parsed formula (decay_params_to_lambda) refuses these with a validation error,
    # answered as bad input; the f32 parameters are shown widened to f64, as Rust prints them.
    if not 0.0 < m < 1.0:
        raise bad_input(
            "Validation failed: Decay midpoint should be between 0.0 and 1.0 (exclusive), "
            f"got {rust_f64(float(np.float32(m)))}."
        )
    if s <= 0.0:
        raise bad_input(
            "Validation failed: Decay scale should be non-zero positive, "
            f"got {rust_f64(float(np.float32(s)))}."
        )
    if kind == "lin":
        return (1.0 - m) / s
    if kind == "exp":
        return math.log(m) / s
    return math.log(m) / (s * s)


class _Parser:
    def __init__(self) -> None:
        self.conditions: list[Any] = []
        self.paths: set[str] = set()

    def expr(self, node: Any) -> Expr:
        if isinstance(node, bool) or node is None or isinstance(node, list):
            raise _shape_error("data did not match any variant of untagged enum Expression")
        if isinstance(node, int | float):
            return Const(float(node))
        if isinstance(node, str):
            var = parse_variable(node)
            if isinstance(var, int):
                return ScoreVar(var)
            self.paths.add(var)
            return PayloadVar(var)
        if not isinstance(node, dict):
            raise _shape_error("data did not match any variant of untagged enum Expression")
        for op in _NARY:
            if op in node:
                return self._nary(op, node[op])
        for op in _UNARY:
            if op in node:
                return Unary(op, self.expr(node[op]))  # type: ignore[arg-type]
        for key, kind in _DECAY.items():
            if key in node:
                return self._decay(kind, _object(node[key], key))
        if "div" in node:
            params = _object(node["div"], "div")
            if "left" not in params or "right" not in params:
                raise _shape_error("div needs `left` and `right`")
            default = _optional_number(params.get("by_zero_default"), "by_zero_default")
            return Div(self.expr(params["left"]), self.expr(params["right"]), default)
        if "pow" in node:
            params = _object(node["pow"], "pow")
            if "base" not in params or "exponent" not in params:
                raise _shape_error("pow needs `base` and `exponent`")
            return Pow(self.expr(params["base"]), self.expr(params["exponent"]))
        if "geo_distance" in node:
            return self._geo(_object(node["geo_distance"], "geo_distance"))
        if "datetime" in node:
            text = node["datetime"]
            if not isinstance(text, str):
                raise _shape_error("datetime must be a string")
            return datetime_constant(text)
        if "datetime_key" in node:
            return DatetimeKey(self._path(node["datetime_key"]))
        # Anything else is a filter condition (field condition, is_empty, has_id, a nested
        # Filter...); the caller's filter code validates and evaluates it.
        self.conditions.append(node)
        return ConditionVar(len(self.conditions) - 1)

    def _path(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _shape_error("a payload key must be a string")
        return payload_key(value, self.paths)

    def _nary(self, op: str, items: Any) -> Nary:
        if not isinstance(items, list):
            raise _shape_error(f"{op} takes a list of expressions")
        check_operands(op, len(items))
        return Nary(op, tuple(self.expr(item) for item in items))  # type: ignore[arg-type]

    def _decay(self, kind: DecayKind, params: dict[str, Any]) -> Decay:
        if "x" not in params:
            raise _shape_error("decay needs `x`")
        lam = decay_lambda(
            kind,
            _optional_number(params.get("midpoint"), "midpoint"),
            _optional_number(params.get("scale"), "scale"),
        )
        target = params.get("target")
        return Decay(
            kind, self.expr(params["x"]), None if target is None else self.expr(target), lam
        )

    def _geo(self, params: dict[str, Any]) -> GeoDistance:
        origin = _object(params.get("origin"), "origin")
        lon = _number(origin.get("lon"), "origin.lon")
        lat = _number(origin.get("lat"), "origin.lat")
        check_origin(lat, lon)
        return GeoDistance(lon, lat, self._path(params.get("to")))


# Rules on values already of the right type, shared with the gRPC decoder of a formula.


def payload_key(path: str, paths: set[str]) -> str:
    """A payload path the formula reads (added to `paths`)."""
    if not is_valid_path(path):
        raise BadRequest(f"Invalid payload variable: {path}")
    paths.add(path)
    return path


def check_operands(op: str, count: int) -> None:
    if op in ("max", "min") and not count:
        raise BadRequest(f"`{op}` needs at least one operand")


def check_origin(lat: float, lon: float) -> None:
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise BadRequest(
            f"Wrong format of GeoPoint payload: expected `lat` = {lat} within [-90;90] "
            f"and `lon` = {lon} within [-180;180]"
        )


def datetime_constant(text: str) -> Const:
    stamp = parse_timestamp(text)
    if stamp is None:
        raise BadRequest(f"Expected datetime in supported format for {text}")
    return Const(stamp)


def defaults_by_variable(defaults: dict[str, Any]) -> tuple[dict[int, Any], dict[str, Any]]:
    """`defaults` keyed as variables: score defaults by prefetch index, payload defaults by
    path (keys parse like variables, so `$score` and `$score[0]` name the same default)."""
    score_defaults: dict[int, Any] = {}
    payload_defaults: dict[str, Any] = {}
    for key, value in defaults.items():
        var = parse_variable(key)
        if isinstance(var, int):
            score_defaults[var] = value
        else:
            payload_defaults[var] = value
    return score_defaults, payload_defaults


def parse_formula(formula: Any, defaults: dict[str, Any] | None = None) -> Formula:
    """Parse and validate a FormulaQuery's `formula` and `defaults`."""
    parser = _Parser()
    root = parser.expr(formula)
    if defaults is not None and not isinstance(defaults, dict):
        raise _shape_error("defaults must be an object")
    score_defaults, payload_defaults = defaults_by_variable(defaults or {})
    return Formula(
        root=root,
        conditions=tuple(parser.conditions),
        payload_paths=frozenset(parser.paths),
        score_defaults=score_defaults,
        payload_defaults=payload_defaults,
    )
