"""Quality report of one run, and several runs compared side by side.

The report of a run shows, beside each field's figures, where its values come from and
the checks against the schema: a generated field against its declared distribution, the
most common value of free text the model writes, and the records that broke each rule."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Sparkline, Static
from textual.worker import Worker, WorkerState

from ..core.compare import METRICS, ComparisonRow, comparison_row, metric_text
from ..core.declared import P_LIMIT, REPEAT_SHARE
from ..core.errors import StoreError
from ..core.report import (
    FieldReport,
    QualityReport,
    check_summary,
    describe_field,
    describe_generated,
    describe_repeats,
    json_value,
    pct,
    run_report,
)
from ..core.store import Store
from ..core.textsafe import clean_line, clean_text, plain
from ..messages import context
from .tables import fill_table

BAR_WIDTH = 12
FIELD_COLUMNS = ("Field", "Source", "Check", "Kind", "Missing", "Null", "Unique")
SHOWN_RULES = 50  # rules listed on the screen; the CLI's text lists every one


def bar(share: float, width: int = BAR_WIDTH, expected: float | None = None) -> Text:
    """A horizontal bar for a share in [0, 1]; a '│' marks the uniform expectation."""
    filled = round(share * width)
    cells = ["█"] * filled + ["·"] * (width - filled)
    if expected is not None:
        mark = min(width - 1, round(expected * width))
        cells[mark] = "│"
    return Text("".join(cells), style="green")


def check_cell(f: FieldReport) -> Text:
    """The Check column: a generated field's test verdict, free text's top share."""
    if f.check is not None and f.check.p_value is not None:
        return Text("OFF", style="bold red") if f.check.off else Text("ok", style="green")
    if f.top_share is not None:
        return Text(f"{pct(f.top_share)} top", style="bold red" if f.repeats else "")
    return Text("")


class ReportScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    ReportScreen #report-rules {
        height: auto;
        max-height: 5;
        padding: 0 1;
    }
    """

    def __init__(self, run_id: str) -> None:
        super().__init__(id="report")
        self.run_id = run_id
        self.report: QualityReport | None = None
        self.field_shown: FieldReport | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(plain(f"Computing the report of run {self.run_id}..."), id="report-summary")
        with VerticalScroll(id="report-rules") as rules:
            rules.display = False
            yield Static("", id="rules-text")
        with Horizontal(id="report-body"):
            yield DataTable(id="report-fields", cursor_type="row", zebra_stripes=True)
            with Vertical(id="report-detail"):
                yield Static("", id="field-title")
                yield Sparkline([], id="field-histogram")
                with VerticalScroll(id="field-scroll"):
                    yield Static("", id="field-figures")
        yield Footer()

    def on_mount(self) -> None:
        fill_table(self.query_one("#report-fields", DataTable), FIELD_COLUMNS, [])
        self.compute()

    @work(thread=True, exclusive=True, exit_on_error=False, name="report")
    def compute(self) -> QualityReport:
        return run_report(open_store(self), self.run_id)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.SUCCESS and isinstance(event.worker.result, QualityReport):
            self.show(event.worker.result)
        elif event.state == WorkerState.ERROR:  # the App's handler tells what happened
            self.query_one("#report-summary", Static).update(plain(f"No report for run {self.run_id}."))

    def show(self, report: QualityReport) -> None:
        self.report = report
        lines = [
            f"Run {self.run_id}: {report.accepted} records · validity {pct(report.validity)} "
            f"({report.rejected} rejected) · duplicate rate {pct(report.duplicate_rate)}"
        ]
        lines += [report.cost] if report.cost else []
        lines += [f"  {n}x {reason}" for reason, n in report.top_rejections[:3]]
        summary = check_summary(report)
        if summary:
            lines.append(f"Checks: {summary}")
        self.query_one("#report-summary", Static).update(Text(clean_text("\n".join(lines))))
        self.show_rules(report)
        table = self.query_one("#report-fields", DataTable)
        rows = []
        for f in report.fields:
            unique = pct(f.unique_ratio) if f.kind not in ("array", "object", "empty") else "-"
            rows.append([plain(f.path, one_line=True), plain(f.source or "-", one_line=True), check_cell(f),
                         f.kind, pct(f.missing_rate), pct(f.null_rate), unique])
        fill_table(table, FIELD_COLUMNS, rows)
        if report.fields:
            self.show_field(report.fields[0])
        table.focus()

    def show_rules(self, report: QualityReport) -> None:
        """The Rules section: how many records broke each rule of the schema."""
        box = self.query_one("#report-rules", VerticalScroll)
        box.display = bool(report.rules)
        if not report.rules:
            return
        text = Text("Rules", style="bold")
        text.append(" (records that broke each" + ("" if report.rules_counted_in_full else
                    f"; counted over the {report.rejections_read:,} rejections kept of {report.rejected:,}") + ")\n")
        for rule in report.rules[:SHOWN_RULES]:
            text.append(f"{rule.broken:>6}x ", style="bold red" if rule.broken else "")
            text.append(clean_line(rule.text)[:200])
            text.append(f"  {clean_line(rule.where)}\n" if rule.where else "\n", style="dim")
        if len(report.rules) > SHOWN_RULES:
            text.append(f"... and {len(report.rules) - SHOWN_RULES} more (the CLI's report lists every rule)\n")
        text.rstrip()
        self.query_one("#rules-text", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.report and 0 <= event.cursor_row < len(self.report.fields):
            self.show_field(self.report.fields[event.cursor_row])

    def show_field(self, f: FieldReport) -> None:
        self.field_shown = f
        source = f", {f.source}" if f.source else ""
        self.query_one("#field-title", Static).update(plain(f"{f.path} ({f.kind}{source})", style="bold",
                                                            one_line=True))
        spark = self.query_one("#field-histogram", Sparkline)
        spark.data = f.histogram or []
        spark.display = bool(f.histogram)
        figures = Text(clean_text(describe_field(f)) + "\n\n")
        if f.histogram:
            figures.append(f"histogram of {len(f.histogram)} bins from {f.min:g} to {f.max:g}\n")
        figures.append_text(against_schema(f))
        if f.check is not None and f.check.shares:
            figures.append("share of each value (│ marks its declared weight):\n")
            for label, declared, n, share in f.check.shares:
                figures.append(f"{clean_line(label)[:10]:<10} ")
                figures.append_text(bar(share, expected=declared))
                figures.append(f" {pct(share):>6} ({n})\n")
        elif f.coverage:
            figures.append("share of each value (│ marks an even spread):\n")
            for value, n, share, expected in f.coverage:
                figures.append(f"{clean_line(json_value(value))[:10]:<10} ")
                figures.append_text(bar(share, expected=expected))
                figures.append(f" {pct(share):>6} ({n})\n")
        elif f.top_values:
            figures.append("most common values:\n")
            total = max(1, f.present - f.nulls)
            for value, n in f.top_values:
                figures.append(f"{clean_line(json_value(value))[:10]:<10} ")
                figures.append_text(bar(n / total))
                figures.append(f" {n}\n")
        self.query_one("#field-figures", Static).update(figures)


def against_schema(f: FieldReport) -> Text:
    """A field against what the schema declares: its generator's distribution, or the
    repeats of free text; empty for other fields."""
    out = Text()
    if f.check is not None:
        out.append("declared against observed:\n", style="bold")
        out.append(clean_text(describe_generated(f)) + "\n")
        if f.check.p_value is not None:
            verdict = (f"OFF: p < {P_LIMIT:g}, the values do not follow the declared distribution" if f.check.off
                       else f"ok: p ≥ {P_LIMIT:g}, consistent with the declared distribution")
            out.append(verdict + "\n", style="bold red" if f.check.off else "green")
        out.append("\n")
    if f.top_share is not None:
        out.append("free text:\n", style="bold")
        out.append(f"most common value {clean_text(describe_repeats(f))}\n")
        if f.repeats:
            out.append(f"REPEATS: over {pct(REPEAT_SHARE)} of the values are one text\n", style="bold red")
        out.append("\n")
    return out


class ComparisonScreen(Screen[None]):
    """Runs side by side: one column per model, one row per figure, bars for validity."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, run_ids: list[str], prices: dict[str, tuple[float, float]] | None = None) -> None:
        super().__init__(id="comparison")
        self.run_ids = run_ids
        self.prices = prices or {}
        self.rows: list[ComparisonRow] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(plain(f"Comparing {len(self.run_ids)} runs..."), id="comparison-title")
        yield DataTable(id="comparison-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="comparison-bars")
        yield Footer()

    def on_mount(self) -> None:
        self.compute()

    @work(thread=True, exclusive=True, exit_on_error=False, name="comparison")
    def compute(self) -> list[ComparisonRow]:
        store = open_store(self)
        return [comparison_row(store, run_id, self.prices) for run_id in self.run_ids]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.SUCCESS and isinstance(event.worker.result, list):
            self.show(event.worker.result)
        elif event.state == WorkerState.ERROR:  # the App's handler tells what happened
            self.query_one("#comparison-title", Static).update(plain("No comparison."))

    def show(self, rows: list[ComparisonRow]) -> None:
        self.rows = rows
        self.query_one("#comparison-title", Static).update(
            Text(f"{len(rows)} runs side by side (the same schema, count and seed when started from the editor)"))
        labels: list[str | Text] = ["", *(plain(label, one_line=True) for label in column_labels(rows))]
        lines: list[list[object]] = [[title, *(metric_text(r, key) for r in rows)] for key, title in METRICS]
        lines.append(["run", *(plain(r.run_id, one_line=True) for r in rows)])
        fill_table(self.query_one("#comparison-table", DataTable), labels, lines)
        bars = Text("validity\n", style="bold")
        width = max((len(label) for label in column_labels(rows)), default=8)
        for r, label in zip(rows, column_labels(rows)):
            bars.append(f"{clean_line(label)[:width]:<{width}} ")
            bars.append_text(bar(r.validity or 0.0))
            bars.append(f" {pct(r.validity) if r.validity is not None else '-'}\n")
        self.query_one("#comparison-bars", Static).update(bars)
        self.query_one("#comparison-table", DataTable).focus()


def column_labels(rows: list[ComparisonRow]) -> list[str]:
    """Each run's model, and its run's time where two runs share a model."""
    seen = [r.label for r in rows]
    return [f"{r.label} {r.run_id[9:15]}" if seen.count(r.label) > 1 else r.label for r in rows]


def open_store(node: Any) -> Store:
    store = context(node).store
    if store is None:
        raise StoreError("the history could not be opened")
    return store
