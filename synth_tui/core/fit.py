"""How well observed values fit a declared distribution: the Kolmogorov-Smirnov test for
numbers, the chi-square test for categories, and a fixed-size sample of a field's values.

Written here rather than taken from scipy: the report needs two p-values, and scipy is
a large dependency for them. The formulas are the textbook ones (the asymptotic
Kolmogorov series; the regularised incomplete gamma by series and continued fraction,
as in Numerical Recipes), and tests/test_report.py checks them against tabled values.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable

SAMPLE_SIZE = 20_000  # values per field a KS test reads: one pass over any run, memory bounded
SAMPLE_SEED = 13  # the sample of a run is the same every time its report is made
_EPSILON = 1e-15
_MAX_TERMS = 1000  # series and fractions converge in far fewer; the cap only rules out hanging


class Reservoir:
    """A uniform random sample of at most ``size`` of the values added (Algorithm R), so
    that a field of a million values costs ``size`` floats. A fixed seed: the same
    values in the same order give the same sample."""

    __slots__ = ("size", "values", "seen", "_rng")

    def __init__(self, size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED) -> None:
        self.size = size
        self.values: list[float] = []
        self.seen = 0
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
            return
        slot = int(self._rng.random() * self.seen)
        if slot < self.size:
            self.values[slot] = value


def ks_statistic(values: Iterable[float], cdf: Callable[[float], float],
                 left: Callable[[float], float] | None = None) -> tuple[float, int]:
    """D, the largest distance between the values' empirical CDF and ``cdf``, and n.

    ``left(x)`` is the CDF's limit from the left at x (where it jumps: a rounded or
    clipped distribution); leaving it out means the CDF is continuous. Comparing both
    sides of each jump keeps a discrete distribution from looking off by its jumps."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return 0.0, 0
    below = left or cdf
    distance = 0.0
    i = 0
    while i < n:
        x = ordered[i]
        before = i / n  # the empirical CDF just below x
        while i < n and ordered[i] == x:
            i += 1
        at = i / n
        distance = max(distance, abs(at - cdf(x)), abs(before - below(x)))
    return distance, n


def kolmogorov_p(d: float, n: int) -> float:
    """The p-value of a one-sample KS statistic ``d`` over ``n`` values: the asymptotic
    Kolmogorov distribution's tail at sqrt(n)·d, with Stephens' correction for small n."""
    if n <= 0:
        return 1.0
    root = math.sqrt(n)
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * d)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution K. Two series of the same function: the
    alternating one converges fast for large x, the theta-function form for small x."""
    if x <= 0:
        return 1.0
    if x < 1.18:
        t = -(math.pi**2) / (8 * x * x)
        total = 0.0
        for j in range(1, _MAX_TERMS):
            term = math.exp((2 * j - 1) ** 2 * t)
            total += term
            if term < _EPSILON * max(total, 1e-300):
                break
        return _clamp(1.0 - math.sqrt(2 * math.pi) / x * total)
    total, sign = 0.0, 1.0
    for j in range(1, _MAX_TERMS):
        term = math.exp(-2.0 * j * j * x * x)
        total += sign * term
        sign = -sign
        if term < _EPSILON * total:
            break
    return _clamp(2.0 * total)


def chi_square_p(observed: list[int], expected: list[float]) -> tuple[float, float, int]:
    """Pearson's chi-square test of counts against expected counts: the statistic, its
    p-value and the degrees of freedom. A count where none was expected makes the
    p-value 0 (the value should never occur); categories expected and absent count."""
    statistic = 0.0
    categories = 0
    for o, e in zip(observed, expected):
        if e <= 0:
            if o > 0:
                return math.inf, 0.0, 0
            continue
        categories += 1
        statistic += (o - e) ** 2 / e
    dof = categories - 1
    if dof < 1:
        return statistic, 1.0, 0
    return statistic, chi_square_sf(statistic, dof), dof


def chi_square_sf(x: float, dof: int) -> float:
    """P(X > x) for X chi-square with ``dof`` degrees of freedom: Q(dof/2, x/2)."""
    return gamma_q(dof / 2.0, x / 2.0)


def gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(a, x), a > 0."""
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    scale = math.exp(-x + a * math.log(x) - math.lgamma(a))
    if x < a + 1:  # the series of P converges here
        term = total = 1.0 / a
        ap = a
        for _ in range(_MAX_TERMS):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _EPSILON:
                break
        return _clamp(1.0 - total * scale)
    tiny = 1e-300  # the continued fraction of Q, by the modified Lentz method
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPSILON:
            break
    return _clamp(scale * h)


def _clamp(p: float) -> float:
    return min(1.0, max(0.0, p))
