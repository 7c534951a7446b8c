"""Live progress of the current run: bar, figures, event log, latest records."""

from __future__ import annotations

import json
import time
from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, RichLog, Static

from ..core.backends import BackendSpec
from ..core.dataset import DatasetResult
from ..core.engine import RunResult
from ..core.events import (
    Event,
    Notice,
    Progress,
    RateLimited,
    RecordRejected,
    RecordsAccepted,
    RetryScheduled,
    RunStarted,
)
from ..core.spending import cost_cell, header_line
from ..core.textsafe import clean_line, clean_text, plain
from ..table_events import DatasetStarted, TableStarted
from .cost_line import RunCostLine
from .table_progress import TablesProgress
from .tables import fill_table

SHOWN_ROWS = 40  # the latest records on screen; redrawing more cost a fast run half its speed
MAX_KEPT_REJECTIONS = 500
ROWS_EVERY = 5  # the App hands events over ten times a second; the records table is redrawn
                # every fifth time (2 Hz): it is the costly part


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def short(value: object, width: int = 40) -> Text:
    """A cell for untrusted model output: control sequences stripped, markup not parsed."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = clean_text(text).replace("\n", " ")
    return Text(text if len(text) <= width else text[: width - 1] + "…")


class ProgressScreen(Screen[None]):
    BINDINGS = [
        Binding("f7", "show_rejected", "Rejected output", id="progress.show-rejected"),
    ]
    PALETTE = [
        ("show_rejected", "Show rejected output", "The raw text of rejected records (F7)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="progress")
        self.rejections: deque[RecordRejected] = deque(maxlen=MAX_KEPT_REJECTIONS)
        self.rule_rejections = 0  # this session's rejections for a broken rule
        self._columns: list[str] = []
        self._total = 0
        self._schema_columns: list[str] = []
        self._progress: Progress | None = None
        self._shown_progress: Progress | None = None  # the figures on screen
        self._new_rows: deque[dict] = deque(maxlen=SHOWN_ROWS)
        self._shown: deque[list[Text]] = deque(maxlen=SHOWN_ROWS)
        self._new_lines: deque[Text] = deque(maxlen=100)
        self._ticks = 0
        self._title = "No run yet: write a schema in the editor (F2) and press ctrl+g."
        self.tables = TablesProgress()  # a dataset run's bar per table
        self._backend = ""
        self._clear_rows = False  # a dataset run's next table: its records replace the last one's
        self.cost_line = RunCostLine()  # spent, budget, endpoints, batch

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="progress-top"):
            yield Static(plain(self._title), id="run-title")
            yield self.tables
            with Horizontal(id="bar-row"):
                yield ProgressBar(total=1, show_eta=False, id="bar")  # a total: an empty bar does not pulse
                yield Static("", id="bar-count")
            yield Static("", id="run-stats")
            yield self.cost_line
        yield DataTable(id="latest", zebra_stripes=True, cursor_type="row")
        yield RichLog(id="event-log", max_lines=500, wrap=False, markup=False)
        yield Footer()

    # -- fed by the app --------------------------------------------------------------------
    def reset(self, total: int, spec: BackendSpec, columns: list[str]) -> None:
        self._total = total
        self._schema_columns = columns[:8]
        self._backend = spec.kind + (f" / {spec.model}" if spec.model else "")
        self._title = f"Generating {total} records with {self._backend}"
        self.rejections.clear()
        self.rule_rejections = 0
        self._columns = []
        self._progress = self._shown_progress = None
        self._new_rows.clear()
        self._shown.clear()
        self._new_lines.clear()
        self.tables.clear()
        self.remove_class("dataset")
        self.cost_line.reset(spec.kind)
        if not self.is_mounted:
            return
        self.query_one("#run-title", Static).update(plain(self._title))
        self.query_one("#run-title", Static).set_classes("")
        self.query_one(ProgressBar).update(total=max(1, total), progress=0)  # a dataset: its tables tell
        self.query_one("#bar-count", Static).update(f"0/{total}")
        self.query_one("#run-stats", Static).update("")
        table = self.query_one(DataTable)
        table.clear(columns=True)
        self.query_one(RichLog).clear()

    def on_mount(self) -> None:
        self.query_one("#run-title", Static).update(plain(self._title))
        if self._total:
            self.query_one(ProgressBar).update(total=self._total, progress=0)
            self.query_one("#bar-count", Static).update(f"0/{self._total}")
        self.flush(final=True)

    def on_screen_resume(self) -> None:
        """Hidden, the screen only kept what it would show: draw it now."""
        self.flush(final=True)

    def take(self, events: list[Event]) -> None:
        """Events from the App, ten times a second at most: kept, and drawn if shown."""
        for event in events:
            self.handle_event(event)
        if self.is_current:
            self.flush()

    def handle_event(self, event: Event) -> None:
        """Keep what an event changes on screen; flush() draws it. Only the latest rows
        and log lines are kept, so a hidden screen costs a fast run little."""
        self._progress = event.progress
        self.tables.observe(event)
        self.cost_line.take(event)
        line = None
        if isinstance(event, (DatasetStarted, TableStarted)):
            line = self._dataset_event(event)
        elif isinstance(event, RunStarted):
            line = plain(f"started {'(resumed) ' if event.resumed else ''}{event.backend} {event.model}", one_line=True)
        elif isinstance(event, RecordsAccepted):
            self._new_rows.extend(event.records)
        elif isinstance(event, RecordRejected):
            self.rejections.append(event)
            kind = "duplicate" if event.duplicate else "rejected"
            if event.kind == "rule":
                self.rule_rejections += 1
            line = Text(f"{kind}: {clean_text(event.reason)[:200]}", style="yellow")
        elif isinstance(event, RateLimited):
            line = Text(f"rate limited: waiting {event.delay:.1f}s, concurrency {event.concurrency}", style="magenta")
        elif isinstance(event, RetryScheduled):
            line = Text(f"retry {event.attempt} in {event.delay:.1f}s: {clean_text(event.reason)[:160]}",
                        style="magenta")
        elif isinstance(event, Notice):
            line = Text(f"note: {clean_text(event.message)}", style="cyan")
        if line is not None:
            self._new_lines.append(line)

    def _dataset_event(self, event: DatasetStarted | TableStarted) -> Text:
        """A dataset run's start, or its next table's: its bars, and the records table
        emptied for the table's columns."""
        if isinstance(event, DatasetStarted):
            self.add_class("dataset")
            self.cost_line.costed = False
            self._title = f"Generating dataset run {event.run_id}: {len(event.tables)} tables with {self._backend}"
            return Text(f"dataset run {event.run_id}{' (resumed)' if event.resumed else ''}: "
                        f"{', '.join(clean_line(t.name) for t in event.tables)}", style="bold")
        self._columns, self._schema_columns = [], []  # the next rows, the table's first, are drawn at once
        self._shown.clear()
        self._new_rows.clear()
        self._clear_rows = True
        return Text(f"table {clean_line(event.table)}: {event.progress.total} rows", style="bold")

    def flush(self, final: bool = False) -> None:
        if not self.is_mounted:
            return
        self._ticks += 1
        if self.tables.changed:
            self.tables.draw()
            where = self.tables.current_line
            self.query_one("#run-title", Static).update(plain(f"{self._title} · {where}" if where else self._title))
        if self._progress is not None:
            self._show_progress(self._progress)
            self._progress = None
            self.cost_line.draw()
        if self._clear_rows:
            self.query_one(DataTable).clear(columns=True)
            self._clear_rows = False
        if self._new_rows and (final or self._ticks % ROWS_EVERY == 0 or not self._columns):
            rows = tuple(self._new_rows)
            self._new_rows.clear()
            self._add_rows(rows)
        if self._new_lines:
            log = self.query_one(RichLog)
            for line in self._new_lines:
                log.write(line)
            self._new_lines.clear()

    def header_line(self, p: Progress) -> str:
        """The App's header while a run goes: its figures, spending early; a dataset's
        table first of all (and no spending: no price reaches its tables yet)."""
        where = self.tables.current_line
        if where:
            return f"{where}: running {p.done}/{p.total} · {p.rate:.1f} rec/s · rejected {p.rejected}"
        return header_line(p, self.cost_line.kind)

    def history_row(self, event: Event) -> tuple[str, int, int, float, str]:
        """What the history's row of the running run shows: its id, records done of its
        total, time and cost. A dataset run's row is the dataset's, summed over its tables."""
        p = event.progress
        tables = self.tables
        if tables.dataset_run is not None:
            done, total = tables.totals()
            return tables.dataset_run, done, total, time.monotonic() - tables.started, "-"
        return event.run_id, p.done, p.total, p.elapsed, cost_cell(p, self.cost_line.kind)

    def handle_result(self, result: RunResult | DatasetResult) -> None:
        if not self.is_mounted:
            return
        self.flush(final=True)
        if self._shown_progress is not None:  # its figures stay, without an ETA
            self._show_progress(self._shown_progress, ended=True)
        title = self.query_one("#run-title", Static)
        log = self.query_one(RichLog)
        if isinstance(result, DatasetResult):
            self.tables.finish(result.tables)
        what = f"rows in {len(result.tables)} tables" if isinstance(result, DatasetResult) else "records"
        if result.status == "failed":
            title.update(Text(f"Run {result.run_id} failed: {clean_text(result.error or '')}"))
            title.set_classes("failed")
            log.write(Text(f"failed: {clean_text(result.error or '')}", style="bold red"))
        else:
            title.update(Text(f"Run {result.run_id} {result.status}: {result.accepted}/{result.requested} {what}"
                              f" in {fmt_seconds(result.elapsed)}"))
            title.set_classes(result.status)
            log.write(Text(f"{result.status}: {result.accepted}/{result.requested} {what}", style="bold green"))
            if result.error:  # why it ended short: a budget reached says how to go on
                log.write(Text(clean_text(result.error), style="yellow"))

    def show_error(self, message: str) -> None:
        if not self.is_mounted:
            return
        title = self.query_one("#run-title", Static)
        title.update(Text(f"Could not start: {clean_text(message)}"))
        title.set_classes("failed")

    def _show_progress(self, p: Progress, ended: bool = False) -> None:
        self._shown_progress = p
        self.query_one(ProgressBar).update(total=max(1, p.total), progress=p.done)
        self.query_one("#bar-count", Static).update(f"{p.done}/{p.total}")
        eta = "ended" if ended else f"ETA {fmt_seconds(p.eta)}"  # a run that has ended has none
        stats = (
            f"{p.rate:.1f} rec/s · {eta} · elapsed {fmt_seconds(p.elapsed)} · "
            f"tokens {p.tokens:,} · requests {p.requests} · retries {p.retries} · "
            f"rejected {p.rejected}{self._rules_part()} · duplicates {p.duplicates} · concurrency {p.concurrency}"
        )
        self.query_one("#run-stats", Static).update(stats)

    def _rules_part(self) -> str:
        n = self.rule_rejections
        return f" ({n} broke rules)" if n > 1 else " (1 broke a rule)" if n else ""

    def _add_rows(self, records: tuple[dict, ...]) -> None:
        table = self.query_one(DataTable)
        if not self._columns and records:
            self._columns = self._schema_columns or list(records[0])[:8]
        self._shown.extend([short(r.get(c)) if isinstance(r, dict) else short(r) for c in self._columns]
                           for r in records)
        # widths fixed from the cells now: a table sizes its columns when next idle, and was
        # drawn meanwhile (and under a dialog opened then) at other widths
        fill_table(table, [plain(c, one_line=True) for c in self._columns], self._shown)
        table.move_cursor(row=table.row_count - 1, animate=False)

    # -- actions ---------------------------------------------------------------------------
    def action_show_rejected(self) -> None:
        from .dialogs import RejectedScreen

        if not self.rejections:
            self.notify("Nothing was rejected in this run.")
            return
        self.app.push_screen(RejectedScreen(list(self.rejections)))
