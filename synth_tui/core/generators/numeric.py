"""Numeric generators: uniform, normal and lognormal.

Values are shaped to the field: whole numbers for integer fields, multiples of the field's
multipleOf when it has one (written with its decimals: multipleOf 0.01 gives cents), and
clipped to the field's minimum/maximum, exclusive bounds included. Number fields without
multipleOf keep every digit the distribution draws: give the field ``"multipleOf": 0.01``
to get prices in cents. Clipping piles the tail's probability onto the bound, and the
CDF each generator hands the report says so."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import (
    FieldGenerator,
    FieldShape,
    SpecProblem,
    bounds_text,
    needs_type,
    number_param,
    only_keys,
    round_to_step,
)

# exp() of more than this overflows: a lognormal's exponent is held below it
MAX_EXPONENT = 709.0


@dataclass(frozen=True)
class Shaper:
    """Rounds and clips a drawn number to what the field takes."""

    integer: bool
    low: float
    high: float
    step: float | None

    @classmethod
    def of(cls, shape: FieldShape, what: str) -> Shaper:
        needs_type(shape, "number", what, "numbers")
        low, high = shape.bounds()
        if low > high:
            raise SpecProblem(f"{what} has no value to draw: the field's minimum and maximum leave none")
        return cls(shape.integer, low, high, shape.multiple_of)

    def __call__(self, value: float) -> int | float:
        if self.step is not None:
            value = round_to_step(value, self.step)
        elif self.integer:
            value = round(value)
        if value < self.low:
            value = self.low
        elif value > self.high:
            value = self.high
        return int(value) if self.integer else value

    def cdf(self, base: Callable[[float], float]) -> Callable[[float], float]:
        """The CDF of shaped draws from a distribution whose CDF is ``base``: the same
        rounding (a value rounds down to x when it is below x + half a step) and clipping."""
        low, high, step, integer = self.low, self.high, self.step, self.integer

        def cdf(x: float) -> float:
            if x < low:
                return 0.0
            if x >= high:
                return 1.0
            if step is not None:
                x = (math.floor(x / step + 1e-9) + 0.5) * step
            elif integer:
                x = math.floor(x) + 0.5
            return base(x)

        return cdf

    def bounds(self) -> dict[str, float]:
        """The clipping bounds, for declared(): only the finite ones."""
        out = {}
        if math.isfinite(self.low):
            out["min"] = int(self.low) if self.integer else self.low
        if math.isfinite(self.high):
            out["max"] = int(self.high) if self.integer else self.high
        return out


def normal_cdf(mean: float, stdev: float) -> Callable[[float], float]:
    scale = stdev * math.sqrt(2.0)
    return lambda x: 0.5 * (1.0 + math.erf((x - mean) / scale))


class Uniform(FieldGenerator):
    """Every value in [min, max] equally likely: whole numbers for integer fields."""

    kind = "uniform"

    def __init__(self, spec: Any, shape: FieldShape) -> None:
        only_keys(spec, "uniform", ("min", "max"), ("min", "max"))
        self.low, self.high = number_param(spec, "min"), number_param(spec, "max")
        self.shaper = Shaper.of(shape, "uniform")
        if self.low > self.high:
            raise SpecProblem(f'uniform "min" {self.low} is above its "max" {self.high}')
        if self.shaper.integer and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise SpecProblem(f"uniform on an integer field needs whole numbers for min and max, not {self.low} "
                              f"and {self.high}")
        if self.low < self.shaper.low:
            raise SpecProblem(f'uniform "min" {self.low} is below what the field takes ({bounds_text(shape.schema)})')
        if self.high > self.shaper.high:
            raise SpecProblem(f'uniform "max" {self.high} is above what the field takes ({bounds_text(shape.schema)})')
        if self.shaper.integer:
            self.low, self.high = int(self.low), int(self.high)

    def draw(self, rng: random.Random) -> int | float:
        if self.shaper.integer:
            return self.shaper(rng.randint(int(self.low), int(self.high)))
        return self.shaper(rng.uniform(self.low, self.high))

    def declared(self) -> dict[str, Any]:
        return {"kind": "uniform", "min": self.low, "max": self.high}

    def sample_cdf(self) -> Callable[[float], float]:
        # an integer uniform is a continuous one over [min - 0.5, max + 0.5], rounded
        low, high = (self.low - 0.5, self.high + 0.5) if self.shaper.integer else (self.low, self.high)
        if low == high:
            return self.shaper.cdf(lambda x: 1.0 if x >= low else 0.0)
        width = high - low
        return self.shaper.cdf(lambda x: min(1.0, max(0.0, (x - low) / width)))

    def describe(self) -> str:
        return f"uniform({self.low}..{self.high})"


class Normal(FieldGenerator):
    """A normal distribution, clipped to the field's bounds."""

    kind = "normal"

    def __init__(self, spec: Any, shape: FieldShape) -> None:
        only_keys(spec, "normal", ("mean", "stdev"), ("mean", "stdev"))
        self.mean, self.stdev = number_param(spec, "mean"), number_param(spec, "stdev")
        if self.stdev <= 0:
            raise SpecProblem(f'normal "stdev" must be above 0, not {self.stdev}')
        self.shaper = Shaper.of(shape, "normal")

    def draw(self, rng: random.Random) -> int | float:
        return self.shaper(rng.gauss(self.mean, self.stdev))

    def declared(self) -> dict[str, Any]:
        return {"kind": "normal", "mean": self.mean, "stdev": self.stdev, **self.shaper.bounds()}

    def sample_cdf(self) -> Callable[[float], float]:
        return self.shaper.cdf(normal_cdf(self.mean, self.stdev))

    def describe(self) -> str:
        return f"normal(mean {self.mean}, stdev {self.stdev})"


class Lognormal(FieldGenerator):
    """exp() of a normal: ``mean`` and ``sigma`` are the underlying normal's, as in
    random.lognormvariate, so the median is e**mean. Clipped to the field's bounds."""

    kind = "lognormal"

    def __init__(self, spec: Any, shape: FieldShape) -> None:
        only_keys(spec, "lognormal", ("mean", "sigma"), ("mean", "sigma"))
        self.mean, self.sigma = number_param(spec, "mean"), number_param(spec, "sigma")
        if self.sigma <= 0:
            raise SpecProblem(f'lognormal "sigma" must be above 0, not {self.sigma}')
        if abs(self.mean) > MAX_EXPONENT:
            raise SpecProblem(f'lognormal "mean" is the logarithm of the median: {self.mean} is out of range '
                              f"(e**{self.mean} is not a number JSON can hold)")
        self.shaper = Shaper.of(shape, "lognormal")

    def draw(self, rng: random.Random) -> int | float:
        return self.shaper(math.exp(min(rng.gauss(self.mean, self.sigma), MAX_EXPONENT)))

    def declared(self) -> dict[str, Any]:
        return {"kind": "lognormal", "mean": self.mean, "sigma": self.sigma, **self.shaper.bounds()}

    def sample_cdf(self) -> Callable[[float], float]:
        underlying = normal_cdf(self.mean, self.sigma)
        return self.shaper.cdf(lambda x: underlying(math.log(x)) if x > 0 else 0.0)

    def describe(self) -> str:
        return f"lognormal(mean {self.mean}, sigma {self.sigma})"
