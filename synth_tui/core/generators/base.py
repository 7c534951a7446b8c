"""What every generator shares: the base class, and what a field's own schema says about
the values it takes (JSON types, bounds, multipleOf, format, enum), read once at compile
time so that drawing is plain arithmetic."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

# Parameters past this size are refused: a float holds integers exactly only up to 2**53,
# and a normal around 1e308 draws infinities, which JSON cannot hold.
MAX_MAGNITUDE = 1e15


class SpecProblem(Exception):
    """A generator spec that cannot be used, said in words; compile_generators adds where."""


class FieldGenerator:
    """A value source for one field, drawn without the model.

    ``draw`` takes all of its randomness from the ``rng`` it is given: the same rng state
    gives the same value, so a seeded run is reproducible."""

    kind = ""

    def draw(self, rng: random.Random) -> Any:
        raise NotImplementedError

    def declared(self) -> dict[str, Any] | None:
        """The distribution the spec declares, for the report to compare observed values with."""
        return None

    def sample_cdf(self) -> Callable[[float], float] | None:
        """The declared distribution's CDF as drawn (clipping and rounding included), for a
        KS test of observed values; None for generators that are not numeric."""
        return None

    def describe(self) -> str:
        """How messages name this generator: its kind and spec."""
        return self.kind


@dataclass(frozen=True)
class FieldShape:
    """What a field's schema allows, as far as a generator needs to know.

    ``types`` is None when the field names no type (its other keywords then decide, at
    the sample check)."""

    name: str
    schema: dict[str, Any]
    types: frozenset[str] | None

    @classmethod
    def of(cls, name: str, schema: dict[str, Any]) -> FieldShape:
        kind = schema.get("type")
        if isinstance(kind, str):
            types: frozenset[str] | None = frozenset({kind})
        elif isinstance(kind, list):
            types = frozenset(t for t in kind if isinstance(t, str))
        else:
            types = None
        return cls(name, schema, types)

    def allows(self, json_type: str) -> bool:
        if self.types is None:
            return True
        if json_type in ("integer", "number"):  # numbers are rounded for an integer field
            return bool(self.types & {"integer", "number"})
        return json_type in self.types

    @property
    def type_text(self) -> str:
        return " or ".join(sorted(self.types)) if self.types else "untyped"

    @property
    def integer(self) -> bool:
        """Numbers drawn for this field are whole: it takes integers and not other numbers."""
        return self.types is not None and "integer" in self.types and "number" not in self.types

    @property
    def format(self) -> str | None:
        value = self.schema.get("format")
        return value if isinstance(value, str) else None

    @property
    def multiple_of(self) -> float | None:
        value = self.schema.get("multipleOf")
        return value if is_number(value) and value > 0 else None

    def bounds(self) -> tuple[float, float]:
        """The lowest and highest value the field takes (inclusive), exclusive bounds and
        multipleOf applied: what a clipped generator clips to. -inf/inf where unbounded."""
        minimum, maximum = self.schema.get("minimum"), self.schema.get("maximum")
        ex_min, ex_max = self.schema.get("exclusiveMinimum"), self.schema.get("exclusiveMaximum")
        low = float(minimum) if is_number(minimum) else -math.inf
        high = float(maximum) if is_number(maximum) else math.inf
        unit = self.multiple_of or (1 if self.integer else None)
        if unit is None:  # continuous: the next float past an exclusive bound
            if is_number(ex_min):
                low = max(low, math.nextafter(float(ex_min), math.inf))
            if is_number(ex_max):
                high = min(high, math.nextafter(float(ex_max), -math.inf))
            return low, high
        # whole steps, with a tolerance for binary floats (0.3 / 0.1 is 2.9999999999999996)
        if math.isfinite(low):
            low = round_to_step(math.ceil(low / unit - 1e-9) * unit, unit)
        if is_number(ex_min):
            low = max(low, round_to_step((math.floor(ex_min / unit + 1e-9) + 1) * unit, unit))
        if math.isfinite(high):
            high = round_to_step(math.floor(high / unit + 1e-9) * unit, unit)
        if is_number(ex_max):
            high = min(high, round_to_step((math.ceil(ex_max / unit - 1e-9) - 1) * unit, unit))
        return low, high


def decimals_of(step: float) -> int:
    """How many decimal places a multiple of ``step`` needs (0.01 -> 2, 0.25 -> 2, 5 -> 0)."""
    try:
        exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    except InvalidOperation:
        return 0
    return max(0, -exponent) if isinstance(exponent, int) else 0


def round_to_step(value: float, step: float) -> float:
    """``value`` rounded to a multiple of ``step``, written with the step's decimals, so that
    12.34 is 12.34 and not 12.340000000000002 (which a multipleOf check refuses)."""
    return round(round(value / step) * step, decimals_of(step))


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number a float can hold: int or float, finite, not a bool (an int of 400
    digits, which JSON allows, is not one: float() of it overflows)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) < 1e308


def shown(value: Any, limit: int = 60) -> str:
    """A value as JSON for a message, cut short; never raises (deep or odd values too)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (ValueError, RecursionError):
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def hashable(value: Any) -> Any:
    """A key equal for equal JSON values (1 and 1.0), different for true and 1."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", value)
    return ("json", shown(value, 10**9))


def number_param(spec: dict[str, Any], key: str, *, default: float | None = None) -> float:
    """``spec[key]`` as a finite number within MAX_MAGNITUDE, or SpecProblem."""
    if key not in spec:
        if default is not None:
            return default
        raise SpecProblem(f'"{key}" is missing: give a number')
    value = spec[key]
    if not is_number(value):
        raise SpecProblem(f'"{key}" must be a number, not {shown(value)}')
    if abs(value) > MAX_MAGNITUDE:
        raise SpecProblem(f'"{key}" is {value}: numbers here stay within ±{MAX_MAGNITUDE:g}')
    return value


def only_keys(spec: Any, what: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``spec`` as an object with no key outside ``allowed`` and every key of ``required``."""
    if not isinstance(spec, dict):
        keys = ", ".join(f'"{k}"' for k in allowed)
        raise SpecProblem(f"{what} takes an object with {keys}, not {shown(spec)}")
    unknown = [k for k in spec if k not in allowed]
    if unknown:
        keys = ", ".join(f'"{k}"' for k in allowed)
        raise SpecProblem(f'{what} has no setting "{unknown[0][:60]}"; it takes {keys}')
    missing = [k for k in required if k not in spec]
    if missing:
        raise SpecProblem(f'{what} needs "{missing[0]}"')
    return spec


def needs_type(shape: FieldShape, json_type: str, what: str, gives: str) -> None:
    """Refuse a generator whose values are of a type the field does not take."""
    if not shape.allows(json_type):
        raise SpecProblem(f"{what} gives {gives}, but this field is {shape.type_text}")


def bounds_text(schema: dict[str, Any]) -> str:
    """The field's bound keywords, for a message: "minimum 1, exclusiveMaximum 10"."""
    keys = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf")
    return ", ".join(f"{key} {schema[key]}" for key in keys if key in schema) or "no bounds"
