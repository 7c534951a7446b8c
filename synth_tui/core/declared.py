"""A run's records against what its schema declares: where each field comes from, each
generated field's values against its generator's distribution, the repeats of free text
the model writes, and how many records broke each rule.

The schema is compiled again (core/recipe.py) from the run's stored copy; a schema that
no longer passes the checks (a damaged history file) gives a report without them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import SchemaError
from .fit import Reservoir, chi_square_p, kolmogorov_p, ks_statistic
from .generators.base import FieldGenerator, FieldShape
from .generators.choice import Bool, Weights
from .generators.fake import Fake

if TYPE_CHECKING:
    from .recipe import Recipe

P_LIMIT = 0.01  # a p-value below this: the values do not follow the declared distribution
REPEAT_SHARE = 0.05  # free text whose most common value is more of its values than this repeats
TEXT_RULES = ("enum", "const", "format", "pattern")  # a string field with one of these is no free text
RULE_REASON = "broke rule "


@dataclass
class DistributionCheck:
    """A generated field's values against the distribution its generator declares."""

    generator: str  # as the schema check names it: "normal(mean 42, stdev 14)"
    declared: dict[str, Any]  # the generator's declared(): {"kind": "normal", "mean": 42, ...}
    values: int = 0  # the field's values (nulls apart)
    test: str = ""  # "KS", "chi-square", or "" where there is none (dates: the range is shown)
    statistic: float | None = None  # KS D, or chi-square
    p_value: float | None = None
    tested: int = 0  # values the test read: KS reads a sample of at most fit.SAMPLE_SIZE
    shares: list[tuple[str, float, int, float]] = field(default_factory=list)  # value, declared, count, observed
    observed_range: tuple[str, str] | None = None  # dates: the earliest and latest drawn
    read_by_rule: bool = False  # a rule reads the field: the records kept are those that keep it
    off: bool = False  # p_value < P_LIMIT


@dataclass
class RuleCount:
    text: str
    where: str  # the rule's place in the schema, "$.x-rules[0]"; "" for a rule the schema no longer has
    broken: int


def recipe_of(schema: dict[str, Any]) -> Recipe | None:
    """The run's recipe (generators, rules), or None when its schema no longer checks."""
    from .schema import check_schema

    try:
        return check_schema(schema).recipe
    except SchemaError:
        return None


def source_label(recipe: Recipe, name: str) -> str:
    """Where a top-level field's values come from: model, sequence, template, seed, or
    the generator's kind ("normal", "fake city")."""
    source = recipe.source(name)
    if source != "generator":
        return source
    generator = recipe.generated.generators[name]
    return f"fake {generator.provider}" if isinstance(generator, Fake) else generator.kind


def top_level_name(path: str, names: Iterable[str]) -> str | None:
    """The top-level field a report path lies under ("address.city" -> "address"): the
    longest name that the path starts with, then ends or goes on with "." or "[]"."""
    found = None
    for name in names:
        if path == name or path.startswith((f"{name}.", f"{name}[]")):
            if found is None or len(name) > len(found):
                found = name
    return found


def is_free_text(source: str, kind: str, spec: dict[str, Any], path: str) -> bool:
    """Text the model writes in its own words: a string field without enum, const,
    format or pattern, not the items of a list (tags repeat by nature)."""
    return source == "model" and kind == "string" and not path.endswith("[]") and not any(
        key in spec for key in TEXT_RULES)


def samples_for(recipe: Recipe | None) -> dict[str, Reservoir]:
    """A sample to fill in the pass over the records for each field a KS test will read."""
    if recipe is None:
        return {}
    return {name: Reservoir() for name, g in recipe.generated.generators.items() if g.sample_cdf() is not None}


def ruled_fields(recipe: Recipe) -> set[str]:
    """Top-level fields a rule reads."""
    return {name for rule in recipe.rules.top_level() for name in rule.fields}


def distribution_check(generator: FieldGenerator, spec: dict[str, Any], values: Counter[Any], present: int,
                       sample: Reservoir | None, read_by_rule: bool) -> DistributionCheck | None:
    """``values`` (counted) and ``sample`` of a field against ``generator``'s declared
    distribution; ``spec`` is the field's own schema (integer? multipleOf?)."""
    declared = generator.declared()
    if declared is None:
        return None
    check = DistributionCheck(generator=generator.describe(), declared=declared, values=present,
                              read_by_rule=read_by_rule)
    cdf = generator.sample_cdf()
    if cdf is not None and sample is not None and sample.values:
        d, n = ks_statistic(sample.values, cdf, _left_limit(cdf, FieldShape.of("", spec)))
        check.test, check.statistic, check.p_value, check.tested = "KS", d, kolmogorov_p(d, n), n
    elif isinstance(generator, (Weights, Bool)):
        _shares(check, generator, values, present)
    elif declared.get("kind") in ("date", "datetime"):
        drawn = [v for v in values if isinstance(v, str)]
        check.observed_range = (min(drawn), max(drawn)) if drawn else None
    check.off = check.p_value is not None and check.p_value < P_LIMIT
    return check


def _left_limit(cdf: Callable[[float], float], shape: FieldShape) -> Callable[[float], float]:
    """The CDF's limit from the left: half a step below on a field of whole steps
    (integers, multipleOf), the next float below elsewhere (a clipped bound's jump)."""
    unit = shape.multiple_of or (1.0 if shape.integer else None)
    if unit is not None:
        half = unit / 2
        return lambda x: cdf(x - half)
    return lambda x: cdf(math.nextafter(x, -math.inf))


def _shares(check: DistributionCheck, generator: Weights | Bool, values: Counter[Any], present: int) -> None:
    """Declared share against observed share per value, and a chi-square test; a value
    the generator never draws (in hand-made or edited records) is a category of its own,
    expected 0 times."""
    if isinstance(generator, Weights):
        labels, members, declared = generator.keys, generator.values, generator.shares
    else:
        labels, members, declared = ["true", "false"], [True, False], [generator.p, 1.0 - generator.p]
    counts = [values.get(member, 0) for member in members]
    other = present - sum(counts)
    check.shares = [(label, share, n, n / present if present else 0.0)
                    for label, share, n in zip(labels, declared, counts)]
    if other > 0:
        check.shares.append(("(other values)", 0.0, other, other / present))
    if present:
        expected = [share * present for share in declared] + ([0.0] if other > 0 else [])
        statistic, p, _ = chi_square_p(counts + ([other] if other > 0 else []), expected)
        check.test, check.p_value, check.tested = "chi-square", p, present
        check.statistic = statistic if math.isfinite(statistic) else None  # a value never drawn: p is 0


class RuleTally:
    """How many kept rejections broke each rule, read from their reasons: a record that
    breaks rules is rejected with "broke rule 'a > b'; broke rule 'c != d'"."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.read = 0

    def add(self, reason: Any) -> None:
        self.read += 1
        if not isinstance(reason, str) or not reason.startswith(RULE_REASON):
            return
        for part in re.split(f"; (?={RULE_REASON})", reason):
            self.counts[part] += 1

    def result(self, recipe: Recipe | None) -> list[RuleCount]:
        """Every rule of the schema in its order, with its count (0 too), then reasons of
        rules the schema no longer has."""
        out = []
        left = Counter(self.counts)
        for rule in recipe.rules.rules if recipe is not None else []:
            out.append(RuleCount(rule.text, rule.where, left.pop(rule.reason, 0)))
        for reason, n in left.most_common():
            out.append(RuleCount(reason.removeprefix(RULE_REASON), "", n))
        return out


def describe_check(check: DistributionCheck, observed: str = "") -> str:
    """One line: the generator, what was observed, the test and its verdict."""
    parts = [check.generator]
    if observed:
        parts.append(f"observed {observed}")
    if check.shares:
        parts.append(", ".join(f"{label} {declared * 100:.1f}%→{share * 100:.1f}%"
                               for label, declared, _, share in check.shares[:8])
                     + (", ..." if len(check.shares) > 8 else ""))
    if check.observed_range:
        parts.append(f"drawn {check.observed_range[0]} to {check.observed_range[1]}")
    if check.test and check.p_value is not None:
        sample = f" of a sample of {check.tested:,}" if check.tested < check.values else ""
        name = "D" if check.test == "KS" else "chi²"
        statistic = f"{name} {check.statistic:.3g}, " if check.statistic is not None else ""
        parts.append(f"{check.test} {statistic}p {check.p_value:.3g}{sample}")
    line = "; ".join(parts)
    if check.off:
        line += f" · OFF: not the declared distribution (p < {P_LIMIT:g})"
        if check.read_by_rule:
            line += ": a rule reads this field, and the records kept are those that keep it"
    return line
