"""Vectorised evaluation of a parsed formula over a batch of candidate points.

Each node is computed for all candidates at once in float64 (Qdrant's `PreciseScore`),
and the final score is cast to float32. The per-point semantics of Qdrant and local mode
are kept exactly, including their short-circuits, which decide *which* points can fail:

- `mult` stops at the first factor equal to 0 (later factors are not evaluated, so a
  missing variable there is no error), `div` stops when the numerator is 0;
- a point's first error, in evaluation order, is its error; the request fails with the
  error of the first failing candidate (candidates in prefetch order, as local mode walks
  them). `active` masks carry the short-circuits down the tree, `_Errors` the first error
  of each candidate.

Inputs come from the caller:
- `scores[i]`: prefetch i's score for each candidate, NaN where the candidate is not in
  that prefetch's results (then `$score[i]` is its default, else 0);
- `payload_values(path)`: per candidate, the list of values the path selects in its
  payload (arrays flattened one level, as filters see them), None or [] when absent; or a
  float array with NaN for absent, where the caller has a numeric column;
- `condition_mask(condition_json)`: a bool array over the candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.config_model import rust_f64
from tessera.errors import BadRequest
from tessera.query.formula import (
    ConditionVar,
    Const,
    DatetimeKey,
    Decay,
    Div,
    Expr,
    Formula,
    GeoDistance,
    Nary,
    PayloadVar,
    Pow,
    ScoreVar,
    Unary,
)
from tessera.query.formula_inputs import haversine_m, parse_timestamp

F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
PayloadColumn = npt.NDArray[np.floating[Any]] | Sequence[Any]
PayloadValues = Callable[[str], PayloadColumn]
ConditionMask = Callable[[Any], npt.ArrayLike]

_MISSING = object()


def _fmt(value: float) -> str:
    """Numbers in messages as Qdrant's server prints its f64s (Rust's Display)."""
    return rust_f64(float(value))


# A unary function and how Qdrant's message names it.
_UNARY: dict[str, tuple[Callable[[F64], F64], str]] = {
    "sqrt": (np.sqrt, "√{}"),
    "exp": (np.exp, "exp({})"),
    "log10": (np.log10, "log10({})"),
    "ln": (np.log, "ln({})"),
    "acosh": (np.arccosh, "acosh({})"),
}


class _Errors:
    """The first error of each candidate, in evaluation order."""

    def __init__(self, n: int) -> None:
        self.failed = np.zeros(n, dtype=np.bool_)
        self._entries: list[tuple[Mask, Callable[[int], str]]] = []

    def record(self, where: Mask, message: Callable[[int], str]) -> None:
        fresh = where & ~self.failed
        if fresh.any():
            self.failed |= fresh
            self._entries.append((fresh, message))

    def raise_first(self) -> None:
        if not self.failed.any():
            return
        first = int(np.argmax(self.failed))
        for mask, message in self._entries:
            if mask[first]:
                # Qdrant: VariableTypeError and NonFiniteNumber are both bad input
                raise BadRequest(f"Wrong input: {message(first)}")


def _type_error(path: str, expected: str, description: str) -> str:
    return (
        f"Expected {expected} value for {path} in the payload and/or in the formula defaults. "
        f"Error: {description}"
    )


class _Evaluator:
    def __init__(
        self,
        formula: Formula,
        scores: Sequence[npt.ArrayLike],
        payload_values: PayloadValues,
        condition_mask: ConditionMask,
        n: int,
    ) -> None:
        self.formula = formula
        self.scores = [np.asarray(s, dtype=np.float64).reshape(-1) for s in scores]
        self.payload_values = payload_values
        self.condition_mask = condition_mask
        self.n = n
        self.errors = _Errors(n)
        self._columns: dict[str, PayloadColumn] = {}
        self._conditions: dict[int, F64] = {}

    # ---------------------------------------------------------------- inputs

    def column(self, path: str) -> PayloadColumn:
        if path not in self._columns:
            self._columns[path] = self.payload_values(path)
        return self._columns[path]

    def resolved(self, path: str, active: Mask) -> list[Any]:
        """Per active candidate, its single value (payload, else default), or a list when
        there are several, or _MISSING; inactive candidates get _MISSING unexamined."""
        column = self.column(path)
        default = self.formula.payload_defaults.get(path, _MISSING)
        if isinstance(default, list):
            default = _MISSING if not default else default[0] if len(default) == 1 else default
        out: list[Any] = [_MISSING] * self.n
        if isinstance(column, np.ndarray):
            for i in np.flatnonzero(active).tolist():
                v = column[i]
                out[i] = float(v) if not np.isnan(v) else default
            return out
        for i in np.flatnonzero(active).tolist():
            v = column[i]
            if v is None or (isinstance(v, list) and not v):
                out[i] = default
            elif isinstance(v, list):
                out[i] = v[0] if len(v) == 1 else v
            else:
                out[i] = v
        return out

    def number(self, path: str, active: Mask) -> F64:
        column = self.column(path)
        out = np.zeros(self.n, dtype=np.float64)
        missing = np.zeros(self.n, dtype=np.bool_)
        wrong = np.zeros(self.n, dtype=np.bool_)
        if isinstance(column, np.ndarray):
            # A numeric column: no per-point work, only its holes need the default.
            col = np.asarray(column, dtype=np.float64).reshape(-1)
            holes = np.isnan(col)
            default = self.formula.payload_defaults.get(path, _MISSING)
            if isinstance(default, list) and len(default) == 1:
                default = default[0]
            if isinstance(default, int | float) and not isinstance(default, bool):
                return np.where(holes, float(default), col)
            if default is _MISSING or (isinstance(default, list) and not default):
                missing = holes & active
            else:
                wrong = holes & active
            self._record_value_errors(path, "number", missing, wrong, "Value is not a number")
            return np.where(holes, 0.0, col)
        values = self.resolved(path, active)
        for i in np.flatnonzero(active).tolist():
            v = values[i]
            if v is _MISSING:
                missing[i] = True
            elif isinstance(v, bool) or not isinstance(v, int | float):
                wrong[i] = True
            else:
                out[i] = float(v)
        self._record_value_errors(path, "number", missing, wrong, "Value is not a number")
        return out

    def _record_value_errors(
        self, path: str, expected: str, missing: Mask, wrong: Mask, description: str
    ) -> None:
        # Missing and mistyped values are one error each point, in candidate order.
        self.errors.record(
            missing | wrong,
            lambda i: _type_error(
                path,
                expected,
                "No value found in a payload nor defaults" if missing[i] else description,
            ),
        )

    def geo(self, node: GeoDistance, active: Mask) -> F64:
        values = self.resolved(node.path, active)
        lon = np.zeros(self.n, dtype=np.float64)
        lat = np.zeros(self.n, dtype=np.float64)
        missing = np.zeros(self.n, dtype=np.bool_)
        wrong = np.zeros(self.n, dtype=np.bool_)
        for i in np.flatnonzero(active).tolist():
            v = values[i]
            if v is _MISSING:
                missing[i] = True
            elif (
                isinstance(v, dict)
                and all(isinstance(v.get(k), int | float) for k in ("lon", "lat"))
                and not any(isinstance(v.get(k), bool) for k in ("lon", "lat"))
            ):
                lon[i], lat[i] = float(v["lon"]), float(v["lat"])
            else:
                wrong[i] = True
        self._record_value_errors(
            node.path, "geo point", missing, wrong, "Value is not a geo point"
        )
        return haversine_m(node.lon, node.lat, lon, lat)

    def datetime(self, path: str, active: Mask) -> F64:
        values = self.resolved(path, active)
        out = np.zeros(self.n, dtype=np.float64)
        missing = np.zeros(self.n, dtype=np.bool_)
        wrong = np.zeros(self.n, dtype=np.bool_)
        for i in np.flatnonzero(active).tolist():
            v = values[i]
            if v is _MISSING:
                missing[i] = True
                continue
            stamp = parse_timestamp(v) if isinstance(v, str) else None
            if stamp is None:
                wrong[i] = True
            else:
                out[i] = stamp
        self._record_value_errors(path, "datetime", missing, wrong, "Value is not a datetime")
        return out

    def score(self, index: int) -> F64:
        default = self.formula.score_defaults.get(index)
        fallback = (
            float(default)
            if isinstance(default, int | float) and not isinstance(default, bool)
            else 0.0
        )
        if index >= len(self.scores):
            return np.full(self.n, fallback, dtype=np.float64)
        s = self.scores[index]
        return np.where(np.isnan(s), fallback, s)

    def condition(self, index: int) -> F64:
        if index not in self._conditions:
            mask = np.asarray(self.condition_mask(self.formula.conditions[index]), dtype=np.bool_)
            self._conditions[index] = mask.reshape(-1).astype(np.float64)
        return self._conditions[index]

    # ---------------------------------------------------------------- nodes

    def live(self, active: Mask) -> Mask:
        return active & ~self.errors.failed

    def fail_where(self, bad: Mask, active: Mask, message: Callable[[int], str]) -> None:
        self.errors.record(bad & self.live(active), message)

    def eval(self, node: Expr, active: Mask) -> F64:
        match node:
            case Const(value):
                return np.full(self.n, value, dtype=np.float64)
            case ScoreVar(index):
                return self.score(index)
            case PayloadVar(path):
                return self.number(path, self.live(active))
            case ConditionVar(index):
                return self.condition(index)
            case GeoDistance():
                return self.geo(node, self.live(active))
            case DatetimeKey(path):
                return self.datetime(path, self.live(active))
            case Nary():
                return self.nary(node, active)
            case Unary():
                return self.unary(node, active)
            case Div():
                return self.div(node, active)
            case Pow(base, exponent):
                b = self.eval(base, active)
                e = self.eval(exponent, active)
                with np.errstate(all="ignore"):
                    result = np.power(b, e)
                # math.pow raises (overflow, negative base with a fractional exponent, 0 to a
                # negative power) exactly where numpy gives inf or NaN.
                self.fail_where(
                    ~np.isfinite(result),
                    active,
                    lambda i: (
                        f"The expression {_fmt(b[i])}^{_fmt(e[i])} = {_fmt(result[i])} "
                        "produced a non-finite number"
                    ),
                )
                return result
            case Decay():
                return self.decay(node, active)
        raise AssertionError(f"unhandled expression {node!r}")

    def nary(self, node: Nary, active: Mask) -> F64:
        if node.op == "mult":
            result = np.ones(self.n, dtype=np.float64)
            alive = active.copy()
            for item in node.items:
                value = self.eval(item, alive)
                alive &= ~self.errors.failed
                zero = alive & (value == 0.0)
                result = np.where(alive, result * value, result)
                # A zero factor ends the product (and the evaluation of the later factors).
                result[zero] = value[zero]
                alive &= ~zero
            return result
        if node.op == "sum":
            total = np.zeros(self.n, dtype=np.float64)
            for item in node.items:
                total = total + self.eval(item, active)
            return total
        pick = np.fmax if node.op == "max" else np.fmin
        acc = np.full(self.n, -np.inf if node.op == "max" else np.inf, dtype=np.float64)
        for item in node.items:
            # fmax / fmin skip NaN operands, like Qdrant's and Python's fold.
            acc = pick(acc, self.eval(item, active))
        return acc

    def unary(self, node: Unary, active: Mask) -> F64:
        x = self.eval(node.arg, active)
        op = node.op
        if op == "neg":
            return -x
        if op == "abs":
            return np.abs(x)
        function, label = _UNARY[op]
        with np.errstate(all="ignore"):
            raw = function(x)
        # As Qdrant: whatever is not finite fails (NaN from a negative root or logarithm,
        # -inf from log(0), inf from an overflow), and the message shows the result.
        bad = ~np.isfinite(raw)
        self.fail_where(
            bad,
            active,
            lambda i: (
                f"The expression {label.format(_fmt(x[i]))} = {_fmt(raw[i])} "
                "produced a non-finite number"
            ),
        )
        result = np.where(bad, 0.0, raw)
        return np.asarray(result, dtype=np.float64)

    def div(self, node: Div, active: Mask) -> F64:
        left = self.eval(node.left, active)
        nonzero = active & (left != 0.0)
        right = self.eval(node.right, nonzero)
        with np.errstate(all="ignore"):
            result = left / right
        by_zero = right == 0.0
        if node.by_zero_default is not None:
            result = np.where(by_zero, node.by_zero_default, result)
            bad = ~by_zero & ~np.isfinite(result)
        else:
            bad = ~np.isfinite(result)
        self.fail_where(
            bad,
            nonzero,
            lambda i: (
                f"The expression {_fmt(left[i])}/{_fmt(right[i])} = {_fmt(result[i])} "
                "produced a non-finite number"
            ),
        )
        # A zero numerator is the answer as it is (0.0 or -0.0), right side unevaluated.
        return np.where(left == 0.0, left, result)

    def decay(self, node: Decay, active: Mask) -> F64:
        x = self.eval(node.x, active)
        target = (
            np.zeros(self.n, dtype=np.float64)
            if node.target is None
            else self.eval(node.target, active)
        )
        with np.errstate(all="ignore"):
            if node.kind == "lin":
                return np.fmax(0.0, -node.lam * np.abs(x - target) + 1.0)
            if node.kind == "exp":
                return np.exp(node.lam * np.abs(x - target))
            diff = x - target
            return np.exp(node.lam * diff * diff)


def evaluate(
    formula: Formula,
    scores: Sequence[npt.ArrayLike],
    payload_values: PayloadValues,
    condition_mask: ConditionMask,
    num_candidates: int | None = None,
) -> npt.NDArray[np.float32]:
    """Formula scores (float32) for the candidates; BadRequest with the first candidate's
    error when any candidate cannot be scored.

    The candidate count comes from `scores[0]`, or `num_candidates` without prefetches.
    """
    if num_candidates is None:
        if not scores:
            raise BadRequest("A formula query needs at least one prefetch")
        num_candidates = int(np.asarray(scores[0]).reshape(-1).shape[0])
    n = num_candidates
    ev = _Evaluator(formula, scores, payload_values, condition_mask, n)
    everyone = np.ones(n, dtype=np.bool_)
    value = ev.eval(formula.root, everyone)
    with np.errstate(all="ignore"):
        result = value.astype(np.float32)
    # The score must survive the cast to f32 (1e39 does not); checked last, per point.
    ev.fail_where(
        ~np.isfinite(result),
        everyone,
        lambda i: (
            f"The expression {_fmt(value[i])} as f32 = {_fmt(result[i])} "
            "produced a non-finite number"
        ),
    )
    ev.errors.raise_first()
    return result
