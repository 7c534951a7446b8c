"""Quality report of a run: validity, duplicates, and per-field figures by JSON path.

One pass over the records. Per field: how often it is missing or null, the share of
unique values; for enums, each value's share against a uniform expectation and the
evenness of the spread (normalised entropy: 1.0 is perfectly even); for numbers
min/max/mean/stdev and a histogram; for strings length figures and the most common
values. Nested objects are reported by path (``address.city``), array items as
``tags[]``.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from referencing.exceptions import Unresolvable

from .errors import SchemaError
from .refs import LocalRefs
from .schema import check_schema
from .textsafe import clean_line

HISTOGRAM_BINS = 10
TOP_VALUES = 5


@dataclass
class FieldReport:
    path: str
    kind: str  # integer | number | string | enum | boolean | array | object | mixed, as JSON Schema names them
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

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        for f, report in zip(doc["fields"], self.fields):
            f["missing_rate"] = report.missing_rate
            f["null_rate"] = report.null_rate
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
    """What one pass keeps for one path."""

    __slots__ = ("present", "nulls", "values", "numbers", "lengths", "kinds")

    def __init__(self) -> None:
        self.present = 0
        self.nulls = 0
        self.values: Counter[Any] = Counter()
        self.numbers = array("d")
        self.lengths = array("l")
        self.kinds: set[str] = set()


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
) -> QualityReport:
    specs = field_specs(schema)
    accs: dict[str, _Acc] = {path: _Acc() for path in specs}
    n = 0
    for record in records:
        n += 1
        _visit(record, "", accs)
    reasons: Counter[str] = Counter(reason_key(r) for r in rejection_reasons)
    fields = [_finish(path, accs[path], specs.get(path, {}), n) for path in accs]
    return QualityReport(
        accepted=n,
        rejected=rejected,
        duplicates=duplicates,
        validity=n / (n + rejected) if n + rejected else 1.0,
        duplicate_rate=duplicates / (n + duplicates) if n + duplicates else 0.0,
        top_rejections=reasons.most_common(5),
        fields=fields,
    )


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
        acc.numbers.append(float(value))
        acc.values[value] += 1
    elif isinstance(value, str):
        acc.kinds.add("string")
        acc.lengths.append(len(value))
        acc.values[value] += 1
    elif isinstance(value, list):
        acc.kinds.add("array")
        acc.lengths.append(len(value))
    else:
        acc.kinds.add("object")


def _finish(path: str, acc: _Acc, spec: dict[str, Any], records: int) -> FieldReport:
    enum = spec.get("enum")
    kind = "enum" if enum else (acc.kinds.pop() if len(acc.kinds) == 1 else ("mixed" if acc.kinds else "empty"))
    if kind == "number" and (spec.get("type") == "integer" or all(x.is_integer() for x in acc.numbers)):
        kind = "integer"  # the schema's word for it
    in_array = "[]" in path
    report = FieldReport(path=path, kind=kind, present=acc.present,
                         missing=0 if in_array else max(0, records - acc.present), nulls=acc.nulls)
    non_null = acc.present - acc.nulls
    if kind not in ("array", "object"):
        report.unique = len(acc.values)
        report.unique_ratio = report.unique / non_null if non_null else 0.0
    if acc.numbers and kind in (*NUMERIC, "enum"):
        nums = acc.numbers
        report.min, report.max = min(nums), max(nums)
        report.mean = math.fsum(nums) / len(nums)
        report.stdev = math.sqrt(math.fsum((x - report.mean) ** 2 for x in nums) / len(nums)) if len(nums) > 1 else 0.0
        report.histogram = histogram(nums, report.min, report.max)
    if acc.lengths and kind in ("string", "enum", "array"):
        report.length_min, report.length_max = min(acc.lengths), max(acc.lengths)
        report.length_mean = sum(acc.lengths) / len(acc.lengths)
    if kind in ("string", "boolean", *NUMERIC):
        report.top_values = [(v, c) for v, c in acc.values.most_common(TOP_VALUES) if c > 1 or kind == "boolean"]
    if enum:
        total = sum(acc.values[v] for v in enum)
        expected = 1 / len(enum)
        report.coverage = [(v, acc.values[v], acc.values[v] / total if total else 0.0, expected) for v in enum]
        report.evenness = evenness([acc.values[v] for v in enum])
    return report


def histogram(values: array, lo: float, hi: float, bins: int = HISTOGRAM_BINS) -> list[int]:
    counts = [0] * bins
    if hi == lo:
        counts[0] = len(values)
        return counts
    width = (hi - lo) / bins
    for x in values:
        counts[min(bins - 1, int((x - lo) / width))] += 1
    return counts


def evenness(counts: list[int]) -> float:
    """Normalised Shannon entropy: 1.0 when every value is equally frequent, 0.0 when
    only one value ever appears."""
    total = sum(counts)
    if total == 0 or len(counts) < 2:
        return 1.0 if len(counts) < 2 else 0.0
    h = -sum((c / total) * math.log(c / total) for c in counts if c)
    return h / math.log(len(counts))


def run_report(store: Any, run_id: str) -> QualityReport:
    """The report of a stored run: its records, counts and kept rejections."""
    doc = store.get_run(run_id)
    counts = doc.get("counts", {})
    reasons = (r.get("reason", "") for r in store.iter_rejections(doc["id"]) if r.get("kind") != "duplicate")
    return build_report(store.iter_records(doc["id"]), doc.get("schema") or {}, rejected=counts.get("rejected", 0),
                        duplicates=counts.get("duplicates", 0), rejection_reasons=reasons)


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
    if report.top_rejections:
        lines.append("top rejection reasons:")
        lines += [f"  {n:>5}x  {reason}" for reason, n in report.top_rejections]
    paths = [clean_line(f.path) for f in report.fields]  # a key of the model's cannot start a line
    width = max([len(p) for p in paths] + [5])
    lines.append(f"{'field':<{width}}  {'kind':<7} {'missing':>7} {'null':>6} {'unique':>7}  figures")
    for path, f in zip(paths, report.fields):
        unique = pct(f.unique_ratio) if f.kind not in ("array", "object", "empty") else "-"
        lines.append(f"{path:<{width}}  {f.kind:<7} {pct(f.missing_rate):>7} {pct(f.null_rate):>6} "
                     f"{unique:>7}  {describe_field(f)}")
    return "\n".join(lines)
