"""Quality report of a run: validity, duplicates, and per-field figures by JSON path.

One pass over the records. Per field: where its values come from (the model, a
generator, a sequence, a template, seed data), how often it is missing or null, the
share of unique values; for enums, each value's share against a uniform expectation and
the evenness of the spread (normalised entropy: 1.0 is perfectly even); for numbers
min/max/mean/stdev and a histogram; for strings length figures and the most common
values. Nested objects are reported by path (``address.city``), array items as
``tags[]``.

Then what the schema declares (core/declared.py): each generated field against its
generator's distribution, the most common value's share of each free-text field the
model writes, and the records that broke each rule. The KS test of a numeric generator
reads a fixed-seed sample of at most 20,000 of the field's values, so that the pass
keeps a bounded amount per field beside the counts of distinct values.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from referencing.exceptions import Unresolvable

from .declared import (
    P_LIMIT,
    REPEAT_SHARE,
    DistributionCheck,
    RuleCount,
    RuleTally,
    describe_check,
    distribution_check,
    is_free_text,
    recipe_of,
    ruled_fields,
    samples_for,
    source_label,
    top_level_name,
)
from .errors import SchemaError
from .fit import Reservoir
from .generators.base import is_number
from .refs import LocalRefs
from .schema import check_schema
from .textsafe import clean_line

if TYPE_CHECKING:
    from .recipe import Recipe
    from .store import Store

HISTOGRAM_BINS = 10
TOP_VALUES = 5


@dataclass
class FieldReport:
    path: str
    kind: str  # integer | number | string | enum | boolean | array | object | mixed, as JSON Schema names them
    source: str = ""  # model | sequence | template | seed | a generator's kind ("normal", "fake city"); "" unknown
    present: int = 0
    missing: int = 0
    nulls: int = 0
    unique: int = 0
    unique_ratio: float = 0.0
    # numbers
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    stdev: float | None = None
    histogram: list[int] = field(default_factory=list)
    # strings
    length_min: int | None = None
    length_max: int | None = None
    length_mean: float | None = None
    top_values: list[tuple[Any, int]] = field(default_factory=list)
    # enums
    coverage: list[tuple[Any, int, float, float]] = field(default_factory=list)  # value, n, share, expected
    evenness: float | None = None
    # against the schema: a generated field's declared distribution; free text's repeats
    check: DistributionCheck | None = None
    top_share: float | None = None  # free text: the most common value's share of the field's values
    repeats: bool = False  # free text whose most common value is over REPEAT_SHARE of its values

    @property
    def missing_rate(self) -> float:
        total = self.present + self.missing
        return self.missing / total if total else 0.0

    @property
    def null_rate(self) -> float:
        return self.nulls / self.present if self.present else 0.0


@dataclass
class QualityReport:
    accepted: int
    rejected: int
    duplicates: int
    validity: float  # accepted / (accepted + rejected)
    duplicate_rate: float  # duplicates / (accepted + duplicates)
    top_rejections: list[tuple[str, int]]
    fields: list[FieldReport]
    rules: list[RuleCount] = field(default_factory=list)  # every rule, with the records that broke it
    rejections_read: int = 0  # the kept rejections the rule counts come from (a run keeps its first 1,000)
    cost_usd: float | None = None  # what the run spent, every session; None: no price
    cost: str = ""  # the same for people ("cost $0.0123 of $0.0500 budget"); "" for the embedded model

    @property
    def rules_counted_in_full(self) -> bool:
        """Every rejection was kept, so the rule counts are exact, not a lower bound."""
        return self.rejections_read >= self.rejected

    def off_fields(self) -> list[FieldReport]:
        """Generated fields whose values do not follow their declared distribution."""
        return [f for f in self.fields if f.check is not None and f.check.off]

    def repeating_fields(self) -> list[FieldReport]:
        return [f for f in self.fields if f.repeats]

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        for f, report in zip(doc["fields"], self.fields):
            f["missing_rate"] = report.missing_rate
            f["null_rate"] = report.null_rate
        doc["rules_counted_in_full"] = self.rules_counted_in_full
        return doc

    def enum_evenness(self) -> float | None:
        values = [f.evenness for f in self.fields if f.evenness is not None]
        return sum(values) / len(values) if values else None

    def mean_unique_ratio(self) -> float | None:
        values = [f.unique_ratio for f in self.fields if f.kind in ("string", *NUMERIC) and f.present]
        return sum(values) / len(values) if values else None


def reason_key(reason: str) -> str:
    """Group rejection reasons: the first error, array indexes and the value that broke
    it left out, so that "$.items[3].sku: 'x' does not match ..." counts as one kind."""
    first = reason.split("; ")[0]
    path, sep, message = first.partition(": ")
    path = re.sub(r"\[\d+\]", "[*]", path)
    if not message.endswith("is a required property"):  # there the quoted name is the point
        message = re.sub(r"^('[^']*'|\S+) (?=is |does |should |was |has )", "value ", message)
    return f"{path}{sep}{message}"[:120]


class _Acc:
    """What one pass keeps for one path: each distinct value's count (the numeric figures
    come from these), length figures as they go, and a sample for a KS test."""

    __slots__ = ("present", "nulls", "values", "lengths", "length_sum", "length_min", "length_max", "kinds",
                 "sample")

    def __init__(self, sample: Reservoir | None = None) -> None:
        self.present = 0
        self.nulls = 0
        self.values: Counter[Any] = Counter()
        self.lengths = 0  # texts and arrays measured
        self.length_sum = 0
        self.length_min = sys.maxsize
        self.length_max = 0
        self.kinds: set[str] = set()
        self.sample = sample


def field_specs(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Path -> schema of every leaf field (objects flattened, array items as ``[]``). A
    $ref is followed as the validators follow it (core/refs.py); one that leads back into
    an object being flattened ends the path there, so a recursive schema is reported
    to its first repeat."""
    refs = _local_refs(schema)
    out: dict[str, dict[str, Any]] = {}
    _flatten(schema, "", refs, refs.root_uri if refs else "", out, ())
    return out


def _local_refs(schema: dict[str, Any]) -> LocalRefs | None:
    """None for a schema that no longer passes the checks (a damaged history file): its
    $refs are not followed."""
    try:
        check_schema(schema)
    except SchemaError:
        return None
    return LocalRefs(schema)


def _flatten(schema: dict[str, Any], prefix: str, refs: LocalRefs | None, base: str,
             out: dict[str, dict[str, Any]], within: tuple[int, ...]) -> None:
    within = (*within, id(schema))
    for name, spec in (schema.get("properties") or {}).items():
        spec, inner = _deref(spec, refs, base)
        path = f"{prefix}{name}"
        if spec.get("type") == "object" and spec.get("properties") and id(spec) not in within:
            _flatten(spec, f"{path}.", refs, inner, out, within)
        elif spec.get("type") == "array" and isinstance(spec.get("items"), dict):
            items, items_base = _deref(spec["items"], refs, inner)
            out[path] = spec
            if items.get("type") == "object" and items.get("properties") and id(items) not in within:
                _flatten(items, f"{path}[].", refs, items_base, out, within)
            else:
                out[f"{path}[]"] = items
        else:
            out[path] = spec


def _deref(spec: Any, refs: LocalRefs | None, base: str) -> tuple[dict[str, Any], str]:
    """``spec``, or what its $ref points at ({} for nothing), and the base URI inside it."""
    if not isinstance(spec, dict):
        return {}, base
    if refs is None:
        return spec, base
    base = refs.base_inside(spec, base)
    ref = spec.get("$ref")
    if not isinstance(ref, str):
        return spec, base
    try:
        target, base = refs.lookup(ref, base)
    except Unresolvable:
        return {}, base
    if not isinstance(target, dict):
        return {}, base
    return target, refs.base_inside(target, base)


def build_report(
    records: Iterable[dict[str, Any]],
    schema: dict[str, Any],
    *,
    rejected: int = 0,
    duplicates: int = 0,
    rejection_reasons: Iterable[str] = (),
    enriched: bool = False,
) -> QualityReport:
    """The report of ``records`` made with ``schema``; ``rejection_reasons`` are the kept
    rejections' (duplicates apart). ``enriched``: the run completed rows of an input file,
    whose own fields the schema cannot tell from the model's."""
    specs = field_specs(schema)
    recipe = recipe_of(schema)
    samples = samples_for(recipe)
    accs: dict[str, _Acc] = {path: _Acc(samples.get(path)) for path in specs}
    n = 0
    for record in records:
        n += 1
        _visit(record, "", accs)
    reasons: Counter[str] = Counter()
    tally = RuleTally()
    for reason in rejection_reasons:
        reasons[reason_key(reason)] += 1
        tally.add(reason)
    fields = [_finish(path, accs[path], specs.get(path, {}), n) for path in accs]
    if recipe is not None:
        _against_recipe(fields, accs, specs, recipe, schema.get("properties") or {}, enriched)
    return QualityReport(
        accepted=n,
        rejected=rejected,
        duplicates=duplicates,
        validity=n / (n + rejected) if n + rejected else 1.0,
        duplicate_rate=duplicates / (n + duplicates) if n + duplicates else 0.0,
        top_rejections=reasons.most_common(5),
        fields=fields,
        rules=tally.result(recipe),
        rejections_read=tally.read,
    )


def _against_recipe(fields: list[FieldReport], accs: dict[str, _Acc], specs: dict[str, dict[str, Any]],
                    recipe: Recipe, properties: dict[str, Any], enriched: bool) -> None:
    """Each field's source; generated fields against their generator's declared
    distribution (``properties``: the fields' own schemas, as the generators read them);
    free text's most common value."""
    ruled = ruled_fields(recipe)
    for report in fields:
        name = top_level_name(report.path, recipe.properties)
        if name is None:
            continue  # a key the schema does not name
        report.source = source_label(recipe, name)
        if enriched and report.source == "model":
            report.source = "model or row"  # an input row's own field, or the model's
        generator = recipe.generated.generators.get(name)
        acc = accs[report.path]
        if generator is not None and report.path == name:
            report.check = distribution_check(generator, properties.get(name) or {}, acc.values,
                                              acc.present - acc.nulls, acc.sample, name in ruled)
        if is_free_text(report.source, report.kind, specs.get(report.path) or {}, report.path):
            _top_share(report, acc)


def _top_share(report: FieldReport, acc: _Acc) -> None:
    values = acc.present - acc.nulls
    if not values or not acc.values:
        return
    [(_, count)] = acc.values.most_common(1)
    report.top_share = count / values
    report.repeats = count > 1 and report.top_share > REPEAT_SHARE


def _visit(value: Any, prefix: str, accs: dict[str, _Acc]) -> None:
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        path = f"{prefix}{key}"
        acc = accs.get(path)
        if acc is None and not isinstance(item, dict):  # objects are reported by their fields
            acc = accs[path] = _Acc()  # a field the schema did not name
        if acc is not None:
            _observe(acc, item)
        if isinstance(item, dict):
            _visit(item, f"{path}.", accs)
        elif isinstance(item, list):
            items_path = f"{path}[]"
            for element in item:
                if isinstance(element, dict):
                    _visit(element, f"{items_path}.", accs)
                elif items_path in accs:
                    _observe(accs[items_path], element)


def _observe(acc: _Acc, value: Any) -> None:
    acc.present += 1
    if value is None:
        acc.nulls += 1
        return
    if isinstance(value, bool):
        acc.kinds.add("boolean")
        acc.values[value] += 1
    elif isinstance(value, (int, float)):
        acc.kinds.add("number")
        acc.values[value] += 1
        if acc.sample is not None and is_number(value):
            acc.sample.add(float(value))
    elif isinstance(value, (str, list)):
        if isinstance(value, str):
            acc.kinds.add("string")
            acc.values[value] += 1
        else:
            acc.kinds.add("array")
        length = len(value)  # inline: this runs for every text of every record
        acc.lengths += 1
        acc.length_sum += length
        if length < acc.length_min:
            acc.length_min = length
        if length > acc.length_max:
            acc.length_max = length
    else:
        acc.kinds.add("object")


def _finish(path: str, acc: _Acc, spec: dict[str, Any], records: int) -> FieldReport:
    enum = spec.get("enum")
    kind = "enum" if enum else (acc.kinds.pop() if len(acc.kinds) == 1 else ("mixed" if acc.kinds else "empty"))
    numbers = [(float(v), n) for v, n in acc.values.items() if is_number(v)]  # not NaN, nor 400 digits
    if kind == "number" and (spec.get("type") == "integer" or all(x.is_integer() for x, _ in numbers)):
        kind = "integer"  # the schema's word for it
    in_array = "[]" in path
    report = FieldReport(path=path, kind=kind, present=acc.present,
                         missing=0 if in_array else max(0, records - acc.present), nulls=acc.nulls)
    non_null = acc.present - acc.nulls
    if kind not in ("array", "object"):
        report.unique = len(acc.values)
        report.unique_ratio = report.unique / non_null if non_null else 0.0
    if numbers and kind in (*NUMERIC, "enum"):
        _number_figures(report, numbers)
    if acc.lengths and kind in ("string", "enum", "array"):
        report.length_min, report.length_max = acc.length_min, acc.length_max
        report.length_mean = acc.length_sum / acc.lengths
    if kind in ("string", "boolean", *NUMERIC):
        report.top_values = [(v, c) for v, c in acc.values.most_common(TOP_VALUES) if c > 1 or kind == "boolean"]
    if enum:
        total = sum(acc.values[v] for v in enum)
        expected = 1 / len(enum)
        report.coverage = [(v, acc.values[v], acc.values[v] / total if total else 0.0, expected) for v in enum]
        report.evenness = evenness([acc.values[v] for v in enum])
    return report


def _number_figures(report: FieldReport, numbers: list[tuple[float, int]]) -> None:
    """min/max/mean/stdev (of the population) and a histogram from each distinct value's count."""
    count = sum(n for _, n in numbers)
    report.min, report.max = min(x for x, _ in numbers), max(x for x, _ in numbers)
    report.mean = math.fsum(x * n for x, n in numbers) / count
    mean = report.mean
    report.stdev = math.sqrt(math.fsum(n * (x - mean) ** 2 for x, n in numbers) / count) if count > 1 else 0.0
    report.histogram = histogram(numbers, report.min, report.max)


def histogram(values: Iterable[float | tuple[float, int]], lo: float, hi: float,
              bins: int = HISTOGRAM_BINS) -> list[int]:
    """Counts in ``bins`` equal bins from lo to hi; a value may come with its count, (x, n)."""
    counts = [0] * bins
    width = (hi - lo) / bins
    for item in values:
        x, n = item if isinstance(item, tuple) else (item, 1)
        counts[min(bins - 1, int((x - lo) / width)) if width else 0] += n
    return counts


def evenness(counts: list[int]) -> float:
    """Normalised Shannon entropy: 1.0 when every value is equally frequent, 0.0 when
    only one value ever appears."""
    total = sum(counts)
    if total == 0 or len(counts) < 2:
        return 1.0 if len(counts) < 2 else 0.0
    h = -sum((c / total) * math.log(c / total) for c in counts if c)
    return h / math.log(len(counts))


def run_report(store: Store, run_id: str) -> QualityReport:
    """The report of a stored run: its records, counts and kept rejections."""
    from .pricing import run_cost
    from .spending import run_spent_line

    doc = store.get_run(run_id)
    reasons = (r.get("reason", "") for r in store.iter_rejections(doc.id) if r.get("kind") != "duplicate")
    report = build_report(store.iter_records(doc.id), doc.schema, rejected=doc.counts.rejected,
                          duplicates=doc.counts.duplicates, rejection_reasons=reasons,
                          enriched=bool(doc.config.get("enrich")))
    as_dict = doc.to_dict()
    report.cost_usd, report.cost = run_cost(as_dict), run_spent_line(as_dict)
    return report


SPARKS = " ▁▂▃▄▅▆▇█"
NUMERIC = ("integer", "number")


def sparkline(counts: list[int]) -> str:
    top = max(counts) if counts else 0
    return "".join(SPARKS[round(c / top * 8)] if top else " " for c in counts)


def pct(x: float) -> str:
    """A share as the report, the comparison and the TUI write it."""
    return f"{x * 100:.1f}%"


def describe_field(f: FieldReport) -> str:
    """One line of figures for a field, as the CLI and the TUI show it."""
    if f.kind == "enum" and f.coverage:
        shares = " ".join(f"{json_value(v)}={pct(share)}" for v, _, share, _ in f.coverage)
        return f"evenness {f.evenness:.2f} (1 = even); {shares}; uniform {pct(f.coverage[0][3])}"
    if f.kind in NUMERIC and f.mean is not None:
        return (f"min {f.min:g} max {f.max:g} mean {f.mean:.4g} sd {f.stdev:.3g}  "
                f"{sparkline(f.histogram)}")
    if f.kind == "string" and f.length_mean is not None:
        top = ", ".join(f"{_short(v)} x{n}" for v, n in f.top_values[:3])
        lengths = f"length {f.length_min}-{f.length_max} (mean {f.length_mean:.1f})"
        return lengths + (f"; most common {top}" if top else "")
    if f.kind == "array" and f.length_mean is not None:
        return f"items {f.length_min}-{f.length_max} (mean {f.length_mean:.1f})"
    if f.kind == "boolean":
        return ", ".join(f"{json_value(v)}: {n}" for v, n in f.top_values)
    return ""


def json_value(value: Any) -> str:
    """A value as JSON spells it where Python would not: true, false, null."""
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def _short(value: Any, width: int = 24) -> str:
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def format_report(report: QualityReport, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(
        f"{report.accepted} records · validity {pct(report.validity)} ({report.rejected} rejected) · "
        f"duplicate rate {pct(report.duplicate_rate)} ({report.duplicates} dropped)"
    )
    if report.cost:
        lines.append(report.cost)
    if report.top_rejections:
        lines.append("top rejection reasons:")
        lines += [f"  {n:>5}x  {reason}" for reason, n in report.top_rejections]
    summary = check_summary(report)
    if summary:
        lines.append(f"checks: {summary}")
    paths = [clean_line(f.path) for f in report.fields]  # a key of the model's cannot start a line
    width = max([len(p) for p in paths] + [5])
    sources = [clean_line(f.source) or "-" for f in report.fields]
    source_width = max([len(s) for s in sources] + [6])
    lines.append(f"{'field':<{width}}  {'source':<{source_width}}  {'kind':<7} {'missing':>7} {'null':>6} "
                 f"{'unique':>7}  figures")
    for path, source, f in zip(paths, sources, report.fields):
        unique = pct(f.unique_ratio) if f.kind not in ("array", "object", "empty") else "-"
        lines.append(f"{path:<{width}}  {source:<{source_width}}  {f.kind:<7} {pct(f.missing_rate):>7} "
                     f"{pct(f.null_rate):>6} {unique:>7}  {describe_field(f)}")
    return "\n".join(lines + check_lines(report))


def check_summary(report: QualityReport) -> str:
    """The checks against the schema in one line; "" when there is nothing to check."""
    parts = []
    checked = [f for f in report.fields if f.check is not None and f.check.test]
    if checked:
        off = report.off_fields()
        parts.append(f"{len(off)} of {len(checked)} generated fields off"
                     + (f" ({_names(off)})" if off else ""))
    free = [f for f in report.fields if f.top_share is not None]
    if free:
        repeating = report.repeating_fields()
        parts.append(f"{len(repeating)} of {len(free)} free-text fields repeat"
                     + (f" ({_names(repeating)})" if repeating else ""))
    if report.rules:
        broken = sum(r.broken for r in report.rules)
        parts.append(("" if report.rules_counted_in_full else "at least ") + f"{broken} rule breaks")
    return " · ".join(parts)


def _names(fields: list[FieldReport], limit: int = 4) -> str:
    names = [clean_line(f.path)[:40] for f in fields[:limit]]
    return ", ".join(names) + (", ..." if len(fields) > limit else "")


def check_lines(report: QualityReport) -> list[str]:
    """The checks against the schema, a section each: generated fields against their
    declared distributions, free text's most common value, the rules."""
    lines: list[str] = []
    generated = [f for f in report.fields if f.check is not None]
    if generated:
        width = max(len(clean_line(f.path)) for f in generated)
        lines.append(f"generated fields against their declared distributions (off: p < {P_LIMIT:g}):")
        lines += [f"  {clean_line(f.path):<{width}}  {clean_line(describe_generated(f))}" for f in generated]
    free = [f for f in report.fields if f.top_share is not None]
    if free:
        width = max(len(clean_line(f.path)) for f in free)
        lines.append(f"free text, the most common value's share (over {pct(REPEAT_SHARE)}: repeats):")
        lines += [f"  {clean_line(f.path):<{width}}  {describe_repeats(f)}" for f in free]
    if report.rules:
        lines.append("rules, the records that broke each:")
        lines += [f"  {r.broken:>5}x  {clean_line(r.text)}" + (f"  ({clean_line(r.where)})" if r.where else "")
                  for r in report.rules]
        if not report.rules_counted_in_full:
            lines.append(f"  (counted over the {report.rejections_read:,} rejections the run kept of "
                         f"{report.rejected:,}: at least as many broke each)")
    return lines


def describe_generated(f: FieldReport) -> str:
    """A generated field against its generator: the declared distribution, what was
    observed, the test and whether the values are off."""
    if f.check is None:
        return ""
    observed = f"mean {f.mean:.4g} sd {f.stdev:.3g}" if f.check.test == "KS" and f.mean is not None else ""
    return describe_check(f.check, observed)


def describe_repeats(f: FieldReport) -> str:
    """Free text's most common value and its share, flagged when it repeats."""
    if f.top_share is None:
        return ""
    if not f.top_values:
        return f"{pct(f.top_share)}: no value twice"
    value, n = f.top_values[0]
    line = f"{pct(f.top_share)}: {_short(value, 40)} x{n}"
    return line + (" · REPEATS" if f.repeats else "")
