"""The report of a dataset run: each table's quality, and whether the tables hold
together: primary keys present and unique, every reference resolving to a row of the
table it names, and as many children per parent row as the dataset asks for.

One pass over each table's journal, parents first, feeding the table's quality report
(core/report.py) and these checks at once. Memory holds keys, never rows: the primary
keys of a table (a set, for uniqueness, kept while a later table references them) and,
for a ``per`` table, a count of children per parent key.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from ..report import QualityReport, build_report, format_report, pct, sparkline
from ..store import Store
from ..textsafe import clean_line
from .export import DatasetTables
from .spec import Table

EXAMPLES = 3  # dangling values kept to show
SPREAD_SHOWN = 12  # children counts listed one by one; more are summed up by the sparkline


@dataclass
class ReferenceCheck:
    """How the values of one reference field resolve."""

    field: str
    target: str  # "table.column"
    references: int = 0  # values that are not null
    nulls: int = 0
    dangling: int = 0  # values no row of the target holds
    examples: list[Any] = dataclasses.field(default_factory=list)  # the first dangling values

    @property
    def resolved(self) -> float:
        return (self.references - self.dangling) / self.references if self.references else 1.0


@dataclass
class ChildrenPerParent:
    """How many rows of a ``per`` table each parent row got, against what the dataset allows."""

    parent: str
    field: str
    low: int
    high: int
    allowed: list[int] | None = None  # the counts a weights map names; None: every count low..high
    parents: int = 0
    min: int | None = None
    max: int | None = None
    mean: float | None = None
    spread: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # (children, parents with so many)
    outside: int = 0  # parents with a number of children the dataset does not allow

    def allows(self, children: int) -> bool:
        return children in self.allowed if self.allowed is not None else self.low <= children <= self.high


@dataclass
class TableReport:
    name: str
    status: str
    requested: int
    rows: int
    primary_key: str | None
    quality: QualityReport
    key_duplicates: int = 0  # rows whose primary key an earlier row holds
    key_nulls: int = 0  # rows without a primary key
    references: list[ReferenceCheck] = dataclasses.field(default_factory=list)
    children: ChildrenPerParent | None = None


@dataclass
class DatasetReport:
    run_id: str
    status: str
    tables: list[TableReport]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def references(self) -> int:
        return sum(r.references for t in self.tables for r in t.references)

    @property
    def dangling(self) -> int:
        return sum(r.dangling for t in self.tables for r in t.references)

    @property
    def integrity(self) -> float:
        """The share of all references (nulls aside) that resolve: 1.0 is a consistent dataset."""
        return (self.references - self.dangling) / self.references if self.references else 1.0

    @property
    def keys_unique(self) -> bool:
        return not any(t.key_duplicates or t.key_nulls for t in self.tables)

    @property
    def consistent(self) -> bool:
        """References resolve, keys are unique, and each complete table's parents have the
        children the dataset allows (a table stopped part way has parents still short of them)."""
        within = all(t.children is None or t.status != "done" or not t.children.outside for t in self.tables)
        return self.dangling == 0 and self.keys_unique and within

    def to_json(self) -> dict[str, Any]:
        tables = []
        for table in self.tables:
            doc = asdict(table)
            doc["quality"] = table.quality.to_json()
            for ref, check in zip(doc["references"], table.references):
                ref["resolved"] = check.resolved
            tables.append(doc)
        return {"run_id": self.run_id, "status": self.status, "rows": self.rows, "references": self.references,
                "dangling": self.dangling, "integrity": self.integrity, "keys_unique": self.keys_unique,
                "consistent": self.consistent, "tables": tables}


# -- the pass over a table ------------------------------------------------------------------
def key_of(value: Any) -> Any:
    """A value as a key set holds it: True is not 1, and an object or array (found only
    in a journal edited by hand) is compared by its JSON text."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (str, int, float)):
        return value
    return ("json", json.dumps(value, sort_keys=True, default=str))


class TableCheck:
    """The checks of one table, fed its records as its quality report reads them."""

    def __init__(self, table: Table, keys: dict[str, set[Any]]) -> None:
        self.table = table
        self.keys = keys  # primary keys of the tables checked so far, by table
        self.own: set[Any] = set()
        self.duplicates = 0
        self.nulls = 0
        self.checks = {name: ReferenceCheck(name, f"{ref.table}.{ref.column}") for name, ref in table.refs.items()}
        self.later: dict[str, Counter[Any]] = {}  # self-references not (yet) resolved: looked up at the end
        self.children: Counter[Any] = Counter()  # parent key -> rows of this table

    def observe(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        key, per = self.table.primary_key, self.table.per
        for record in records:
            if key is not None:
                self._key(record.get(key))
            for name, check in self.checks.items():
                self._reference(name, check, record.get(name))
            if per is not None and record.get(per.field) is not None:
                self.children[key_of(record[per.field])] += 1
            yield record

    def _key(self, value: Any) -> None:
        if value is None:
            self.nulls += 1
            return
        size = len(self.own)
        self.own.add(key_of(value))
        if len(self.own) == size:
            self.duplicates += 1

    def _reference(self, name: str, check: ReferenceCheck, value: Any) -> None:
        if value is None:
            check.nulls += 1
            return
        check.references += 1
        ref = self.table.refs[name]
        key = key_of(value)
        if ref.table == self.table.name:
            if key not in self.own:  # a row may point at one further down: decided at the end
                self.later.setdefault(name, Counter())[key] += 1
            return
        if key not in self.keys.get(ref.table, ()):
            self._dangle(check, value)

    @staticmethod
    def _dangle(check: ReferenceCheck, value: Any, times: int = 1) -> None:
        check.dangling += times
        if len(check.examples) < EXAMPLES:
            check.examples.append(value)

    def finish(self) -> None:
        """Settle the self-references, now that every key of the table is known."""
        for name, values in self.later.items():
            for key, times in values.items():
                if key not in self.own:
                    self._dangle(self.checks[name], key[1] if isinstance(key, tuple) else key, times)
        self.later.clear()

    def spread(self, parent_keys: set[Any]) -> ChildrenPerParent:
        per = self.table.per
        assert per is not None
        allowed = sorted(n for n, _ in per.weights) if per.weights else None
        report = ChildrenPerParent(per.parent, per.field, per.low, per.high, allowed, parents=len(parent_keys))
        counts = Counter(self.children.get(key, 0) for key in parent_keys)
        if counts:
            report.min, report.max = min(counts), max(counts)
            report.mean = sum(n * times for n, times in counts.items()) / len(parent_keys)
            report.spread = sorted(counts.items())
            report.outside = sum(times for n, times in counts.items() if not report.allows(n))
        return report


def dataset_report(store: Store, run_id: str) -> DatasetReport:
    """The report of dataset run ``run_id`` (UserInputError if it is not one)."""
    with DatasetTables(store, run_id) as tables:
        dataset = tables.dataset
        needed = {ref.table for t in dataset.tables.values() for ref in t.refs.values()}
        keys: dict[str, set[Any]] = {}
        reports = []
        for table in dataset.tables.values():
            check = TableCheck(table, keys)
            quality = _quality(tables, table, check.observe(tables.records(table.name)))
            check.finish()
            if table.name in needed:
                keys[table.name] = check.own
            saved = tables.saved(table.name)
            report = TableReport(table.name, str(saved.get("status") or "pending"), _whole(saved.get("requested")),
                                 quality.accepted, table.primary_key, quality, check.duplicates, check.nulls,
                                 list(check.checks.values()))
            if table.per is not None:
                report.children = check.spread(keys.get(table.per.parent, set()))
            reports.append(report)
        return DatasetReport(tables.run_id, str(tables.doc.get("status") or ""), reports)


def _quality(tables: DatasetTables, table: Table, records: Iterator[dict[str, Any]]) -> QualityReport:
    """The table's quality report, as run_report makes one, over ``records``."""
    doc = tables.run_doc(table.name)
    counts: dict[str, Any] = doc.counts.to_dict() if doc is not None else {}
    reasons: Iterable[str] = ()
    if doc and tables.store is not None:
        reasons = (str(r.get("reason", "")) for r in tables.store.iter_rejections(doc["id"])
                   if isinstance(r, dict) and r.get("kind") != "duplicate")
    return build_report(records, table.schema.schema, rejected=_whole(counts.get("rejected")),
                        duplicates=_whole(counts.get("duplicates")), rejection_reasons=reasons)


def _whole(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- as text --------------------------------------------------------------------------------
def format_dataset_report(report: DatasetReport) -> str:
    """The report as plain text: the dataset's integrity, then each table."""
    keys = "primary keys unique" if report.keys_unique else "PRIMARY KEYS NOT UNIQUE"
    lines = [
        f"dataset run {clean_line(report.run_id)} ({clean_line(report.status)}): {len(report.tables)} tables, "
        f"{report.rows} rows",
        f"referential integrity {pct(report.integrity)}: {report.references - report.dangling} of "
        f"{report.references} references resolve, {report.dangling} dangling; {keys}",
    ]
    for table in report.tables:
        lines.append("")
        lines += _table_lines(table)
    return "\n".join(lines)


def _table_lines(table: TableReport) -> list[str]:
    lines = [f"table {clean_line(table.name)} ({clean_line(table.status)}): {table.rows} of {table.requested} rows"]
    if table.primary_key is not None:
        broken = [f"{n} {what}" for n, what in ((table.key_duplicates, "repeated"), (table.key_nulls, "missing")) if n]
        lines.append(f"  primary key {clean_line(table.primary_key)}: "
                     + (", ".join(broken) if broken else "unique"))
    for ref in table.references:
        line = (f"  {clean_line(ref.field)} -> {clean_line(ref.target)}: {pct(ref.resolved)} of {ref.references} "
                f"resolve, {ref.dangling} dangling, {ref.nulls} null")
        if ref.examples:
            line += " (e.g. " + ", ".join(clean_line(_short(v)) for v in ref.examples) + ")"
        lines.append(line)
    if table.children is not None:
        lines += _children_lines(table.children)
    lines += ["  " + line for line in format_report(table.quality).splitlines()]
    return lines


def _children_lines(per: ChildrenPerParent) -> list[str]:
    allowed = ", ".join(map(str, per.allowed)) if per.allowed is not None else f"{per.low}-{per.high}"
    head = f"  children per {clean_line(per.parent)} row (allowed {allowed}): "
    if per.mean is None:
        return [head + f"no {clean_line(per.parent)} rows"]
    outside = f"{per.outside} parents outside" if per.outside else "all within"
    line = head + f"min {per.min} · mean {per.mean:.2f} · max {per.max} · {outside}"
    counts = dict(per.spread)
    top = max(per.high, per.max or 0)
    bars = sparkline([counts.get(n, 0) for n in range(min(per.low, per.min or 0), top + 1)][:60])
    shown = " ".join(f"{n}:{times}" for n, times in per.spread[:SPREAD_SHOWN])
    more = " ..." if len(per.spread) > SPREAD_SHOWN else ""
    return [line, f"    {bars}  (children:parents) {shown}{more}"]


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"
