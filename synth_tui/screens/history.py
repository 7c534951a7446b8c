"""History: every run, newest first, a page at a time, with a preview pane and paged records.

The runs come from the store's index a page at a time (a filter or a search is a query,
not a scan of documents held here): the screen holds one page of runs whatever the size
of the history. The cursor moving past the last row of a page loads the next one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ..core.errors import SynthError
from ..core.export import export_to_path
from ..core.store import RESUMABLE, STATUSES, PruneResult, Store
from ..core.textsafe import plain
from ..messages import RerunRequested, ResumeRequested, context
from .progress import fmt_seconds, short
from .tables import Table, fill_table

PAGE_SIZE = 20
RUN_PAGE = 100  # runs in the table at once
RUN_COLUMNS = ("", "UTC", "Status", "Records", "Time", "Model")
NARROW = 110  # below this many columns the preview goes under the run table
RECORD_COLUMN_WIDTH = 20  # every records column as wide: they do not jump between pages
FILTERS = (None, *STATUSES)


def run_row(doc: dict[str, Any]) -> list[Any]:
    counts = doc.get("counts", {})
    backend = doc.get("backend", {})
    elapsed = doc.get("elapsed")
    cells = [
        str(doc.get("created") or "")[5:16].replace("T", " "),  # MM-DD HH:MM; the id holds the year
        doc.get("status", ""),
        f"{counts.get('accepted', 0)}/{counts.get('requested', 0)}",
        fmt_seconds(elapsed) if isinstance(elapsed, (int, float)) else "-",
        f"{backend.get('backend', '')}:{backend.get('model') or ''}",
    ]
    return [plain(cell, one_line=True) for cell in cells]  # all of it read from the history file


def size_text(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n //= 1024
    return f"{n} bytes"


class RunTable(Table):
    """The runs table: the cursor moving on from the last row of a page (or back from the
    first) asks the screen for the next (or previous) page."""

    class PageEdge(Message):
        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.post_message(self.PageEdge(1))
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0:
            self.post_message(self.PageEdge(-1))
            return
        super().action_cursor_up()

    def action_page_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.post_message(self.PageEdge(1))
            return
        super().action_page_down()

    def action_page_up(self) -> None:
        if self.cursor_row <= 0:
            self.post_message(self.PageEdge(-1))
            return
        super().action_page_up()


class HistoryScreen(Screen[None]):
    BINDINGS = [
        Binding("e", "export", "Export", id="history.export"),
        Binding("r", "rerun", "Re-run", id="history.rerun"),
        Binding("u", "resume", "Resume", id="history.resume"),
        Binding("d", "delete", "Delete", id="history.delete"),
        Binding("f", "cycle_filter", "Filter", id="history.cycle-filter"),
        Binding("enter", "report", "Report", id="history.report"),
        Binding("m", "mark", "Mark", id="history.mark"),
        Binding("c", "compare", "Compare", id="history.compare"),
        Binding("x", "prune_marked", "Remove marked", show=False, id="history.prune-marked"),
        Binding("slash", "search", "Search", show=False, id="history.search"),
        Binding("right_square_bracket", "next_page", "Next page", show=False, id="history.next-page"),
        Binding("left_square_bracket", "previous_page", "Prev page", show=False, id="history.previous-page"),
    ]
    PALETTE = [
        ("export", "Export run", "Write the selected run's records to a file (e)"),
        ("rerun", "Re-run", "Load the selected run's schema and parameters into the editor (r)"),
        ("resume", "Resume run", "Continue an interrupted, cancelled or failed run (u)"),
        ("delete", "Delete run", "Delete the selected run and its records (d)"),
        ("cycle_filter", "Filter by status", "Show all runs or one status (f)"),
        ("report", "Quality report", "Validity, duplicates and per-field figures of the selected run (enter)"),
        ("next_page", "Next page of records", "The next records of the selected run (])"),
        ("previous_page", "Previous page of records", "The previous records of the selected run ([)"),
        ("mark", "Mark run", "Mark or unmark the selected run for a comparison (m)"),
        ("compare", "Compare marked runs", "Marked runs side by side (c)"),
        ("prune_marked", "Remove marked runs", "Delete the runs marked with m and their records, after a question (x)"),
        ("search", "Search runs", "Runs whose schema title, field names, backend or model hold a text (/)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="history")
        self.status_filter: str | None = None
        self.search: str | None = None
        self.runs: list[dict[str, Any]] = []  # the page of runs on screen
        self.run_page = 0
        self.total = 0  # runs the filter selects, on every page
        self.page = 0
        self.marked: list[str] = []
        self.last_export: tuple[Path, str] = (Path.cwd(), "jsonl")

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="history-body"):
            with Vertical(id="runs-pane"):
                yield Static("", id="filter-line")
                yield RunTable(id="runs", cursor_type="row", zebra_stripes=True)
            with Vertical(id="preview-pane"):
                with VerticalScroll(id="preview-scroll"):
                    yield Static("", id="preview")
                yield Static("", id="page-line")
                yield DataTable(id="records", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_runs()

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    def on_resize(self) -> None:
        self.set_class(self.size.width < NARROW, "narrow")

    @property
    def store(self) -> Store | None:
        return context(self).store

    def refresh_runs(self, select: str | None = None, *, row: int | None = None, keep: bool = True) -> None:
        """Read the page of runs again; the cursor stays on the run it was on (or
        ``select``), on its page, or at the same place when that run is gone.
        ``keep=False``: the page and ``row`` as they are set, whatever run was there."""
        if not self.is_mounted:
            return
        table = self.query_one("#runs", DataTable)
        selected = select or (self.selected_id() if keep else None)
        row = table.cursor_row if row is None else row
        store = self.store
        if store is None:
            self.runs, self.total = [], 0
        else:
            self.total = store.count_runs(self.status_filter, search=self.search)
            position = store.run_position(selected, self.status_filter, search=self.search) if selected else None
            if position is not None:
                self.run_page, row = divmod(position, RUN_PAGE)
            self.run_page = max(0, min(self.run_page, (self.total - 1) // RUN_PAGE if self.total else 0))
            self.runs = store.list_runs(self.status_filter, RUN_PAGE, offset=self.run_page * RUN_PAGE,
                                        search=self.search)
        fill_table(table, RUN_COLUMNS, [["✓" if doc["id"] in self.marked else " ", *run_row(doc)]
                                        for doc in self.runs])
        self.query_one("#filter-line", Static).update(plain(self.filter_line(), one_line=True))
        table.move_cursor(row=max(0, min(row, len(self.runs) - 1)), animate=False)
        self.show_preview()

    def filter_line(self) -> str:
        label = self.status_filter or "all"
        first = self.run_page * RUN_PAGE + 1
        shown = (f"{self.total} run{'' if self.total == 1 else 's'}" if self.total <= RUN_PAGE
                 else f"runs {first:,}-{first + len(self.runs) - 1:,} of {self.total:,}")
        line = f"{shown} · filter: {label} (f)"
        if self.search:
            line += f" · search: {self.search} (/)"
        if self.marked:
            line += f" · {len(self.marked)} marked"
        return line

    def on_run_table_page_edge(self, event: RunTable.PageEdge) -> None:
        """The cursor went past the page: the next page from its first row, or the
        previous one from its last."""
        pages = max(1, -(-self.total // RUN_PAGE))
        target = self.run_page + event.step
        if not 0 <= target < pages:
            return
        self.run_page = target
        self.refresh_runs(row=0 if event.step > 0 else RUN_PAGE - 1, keep=False)

    def show_run_progress(self, run_id: str, done: int, total: int, elapsed: float) -> None:
        """A running run's row follows its progress (the App calls this while shown)."""
        ids = [d["id"] for d in self.runs]
        if not self.is_mounted or run_id not in ids:
            return
        table = self.query_one("#runs", DataTable)
        row = ids.index(run_id)
        table.update_cell_at(Coordinate(row, 3), plain(f"{done}/{total}"))
        table.update_cell_at(Coordinate(row, 4), plain(fmt_seconds(elapsed)))

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one("#runs", DataTable)
        if not self.runs or table.cursor_row < 0 or table.cursor_row >= len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def selected_id(self) -> str | None:
        doc = self.selected() if self.is_mounted else None
        return doc["id"] if doc else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "runs":
            self.page = 0
            self.show_preview()

    def show_preview(self) -> None:
        doc = self.selected()
        preview = self.query_one("#preview", Static)
        records = self.query_one("#records", DataTable)
        records.clear(columns=True)
        if doc is None:
            preview.update(plain("No runs yet." if not self.status_filter else f"No {self.status_filter} runs."))
            self.query_one("#page-line", Static).update("")
            return
        counts = doc.get("counts", {})
        config = doc.get("config", {})
        params = config.get("params", {})
        backend = doc.get("backend", {})
        lines = [
            f"Run {doc['id']} · {doc.get('status')}",
            f"{backend.get('backend')} {backend.get('model') or ''} {backend.get('base_url') or ''}".rstrip(),
            f"accepted {counts.get('accepted', 0)}/{counts.get('requested', 0)} · rejected {counts.get('rejected', 0)}"
            f" · duplicates {counts.get('duplicates', 0)} · retries {counts.get('retries', 0)}",
            f"tokens {counts.get('prompt_tokens', 0) + counts.get('completion_tokens', 0):,} · "
            f"per request {config.get('batch_size') or 'auto'} · concurrency {config.get('concurrency')} · "
            f"temperature {params.get('temperature', '-')} · seed {params.get('seed', '-')}",
        ]
        if doc.get("error"):
            lines.append(f"error: {doc['error']}")
        lines.append("Enter: quality report · m: mark for comparison")
        lines.append("schema: " + json.dumps(doc.get("schema"), ensure_ascii=False))
        preview.update(plain("\n".join(lines)))
        page = self.store.read_page(doc["id"], self.page * PAGE_SIZE, PAGE_SIZE) if self.store else []
        first = self.page * PAGE_SIZE + 1
        # a running run saves its count every few seconds: never show fewer than are on screen
        total = max(counts.get("accepted", 0), first + len(page) - 1)
        self.query_one("#page-line", Static).update(
            f"records {first}-{first + len(page) - 1} of {total} ([ ])" if page else "no records")
        if page:
            columns = list((doc.get("schema") or {}).get("properties") or page[0])[:6]
            fill_table(records, [plain(c, one_line=True) for c in columns],
                       [[short(r.get(c), RECORD_COLUMN_WIDTH) for c in columns] for r in page],
                       fixed_width=RECORD_COLUMN_WIDTH)

    # -- actions -----------------------------------------------------------------------------
    def action_next_page(self) -> None:
        self.action_page(1)

    def action_previous_page(self) -> None:
        self.action_page(-1)

    def action_page(self, step: int) -> None:
        doc = self.selected()
        if doc is None:
            return
        pages = max(1, -(-doc.get("counts", {}).get("accepted", 0) // PAGE_SIZE))
        self.page = max(0, min(pages - 1, self.page + step))
        self.show_preview()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "runs":
            self.action_report()

    def action_report(self) -> None:
        from .report import ReportScreen

        doc = self.selected()
        if doc is not None:
            self.app.push_screen(ReportScreen(doc["id"]))

    def action_mark(self) -> None:
        doc = self.selected()
        if doc is None:
            return
        if doc["id"] in self.marked:
            self.marked.remove(doc["id"])
        else:
            self.marked.append(doc["id"])
        table = self.query_one("#runs", DataTable)
        table.update_cell_at(Coordinate(table.cursor_row, 0), "✓" if doc["id"] in self.marked else " ")
        self.query_one("#filter-line", Static).update(plain(self.filter_line(), one_line=True))

    def action_compare(self) -> None:
        from .report import ComparisonScreen

        marked = self.existing(self.marked)
        if len(marked) < 2:
            self.notify("Mark two or more runs with m, then press c.")
            return
        self.app.push_screen(ComparisonScreen(marked, dict(context(self).settings.prices)))

    def existing(self, run_ids: list[str]) -> list[str]:
        """The runs of ``run_ids`` still in the history (one file read each)."""
        store = self.store
        found = []
        for run_id in run_ids:
            try:
                if store is not None and store.get_run(run_id)["id"] == run_id:
                    found.append(run_id)
            except SynthError:
                continue
        return found

    def action_prune_marked(self) -> None:
        """Remove the marked runs and their records, after a question that says how many
        records and how much space; a running run is left alone."""
        from .dialogs import ConfirmDialog

        store = self.store
        marked = self.existing(self.marked)
        self.marked = marked
        if store is None or not marked:
            self.notify("Mark runs with m, then press x to remove them.")
            return
        try:
            preview = store.prune(run_ids=marked, dry_run=True)
        except SynthError as exc:
            self.notify(str(exc), severity="error")
            return
        if not preview.ids:
            self.notify("The marked runs are still running: cancel them first.", severity="warning")
            return
        n = len(preview.ids)
        question = (f"Remove {n} marked run{'' if n == 1 else 's'} and {preview.records:,} records? "
                    f"That frees about {size_text(preview.freed)}.")
        if preview.skipped:
            question += f" {len(preview.skipped)} running run{'' if len(preview.skipped) == 1 else 's'} stay."

        def answered(yes: bool | None) -> None:
            if yes:
                self.prune_in_background(preview.ids)

        self.app.push_screen(ConfirmDialog(question), answered)

    @work(thread=True, exclusive=True, group="history-prune", exit_on_error=False)
    def prune_in_background(self, run_ids: list[str]) -> None:
        """Remove the runs off the UI thread: many runs take a while, and other processes'
        writes go first between batches."""
        store = self.store
        if store is None:
            return
        try:
            result = store.prune(run_ids=run_ids)
        except SynthError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.pruned, result)

    def pruned(self, result: PruneResult) -> None:
        n = len(result.ids)
        message = (f"Removed {n} run{'' if n == 1 else 's'} ({result.records:,} records), "
                   f"freed {size_text(result.freed)}.")
        if result.skipped:
            message += f" Left {len(result.skipped)} running run{'' if len(result.skipped) == 1 else 's'} alone."
        self.marked = [run_id for run_id in self.marked if run_id not in set(result.ids)]
        self.notify(message, title="Pruned")
        self.refresh_runs()

    def action_search(self) -> None:
        from .dialogs import NameDialog

        def answered(text: str | None) -> None:
            self.search = text.strip() if text and text.strip() else None
            self.run_page = 0
            self.refresh_runs(row=0, keep=False)  # the best match first: the newest

        self.app.push_screen(NameDialog("Search runs by schema title, field names, backend or model",
                                        lambda _text: None, self.search or "",
                                        hint="Escape shows every run again."), answered)

    def action_cycle_filter(self) -> None:
        self.status_filter = FILTERS[(FILTERS.index(self.status_filter) + 1) % len(FILTERS)]
        self.run_page = 0
        self.refresh_runs()

    def action_rerun(self) -> None:
        doc = self.selected()
        if doc:
            self.post_message(RerunRequested(doc.get("schema", {}), doc.get("config", {}), doc.get("backend", {})))

    def action_resume(self) -> None:
        doc = self.selected()
        if doc is None:
            return
        if doc.get("status") not in RESUMABLE:
            self.notify(f"Only {', '.join(RESUMABLE)} runs can be resumed; this one is {doc.get('status')}.")
            return
        self.post_message(ResumeRequested(doc["id"]))

    def action_delete(self) -> None:
        from .dialogs import ConfirmDialog

        doc = self.selected()
        if doc is None:
            return
        if context(self).running_run_id == doc["id"]:
            self.notify("This run is going: cancel it first.", severity="warning")
            return

        def done(yes: bool | None) -> None:
            store = self.store
            if yes and store is not None:
                try:
                    store.delete_run(doc["id"])
                except SynthError as exc:
                    self.notify(str(exc), severity="error")
                    return
                self.notify(f"Deleted run {doc['id']}.")
                if doc["id"] in self.marked:
                    self.marked.remove(doc["id"])
                self.refresh_runs()

        count = doc.get("counts", {}).get("accepted", 0)
        self.app.push_screen(ConfirmDialog(f"Delete run {doc['id']} and its {count} records?"), done)

    def action_export(self) -> None:
        from .dialogs import ExportDialog

        doc = self.selected()
        store = self.store
        if doc is None or store is None:
            return

        def export(path: Path, fmt: str, overwrite: bool) -> int:
            return export_to_path(lambda: store.iter_records(doc["id"]), path, fmt, schema=doc.get("schema"),
                                  force=overwrite)

        def done(answer: tuple[Path, str, int] | None) -> None:
            if answer is None:
                return
            path, fmt, n = answer
            self.last_export = (path.parent, fmt)  # the next export starts from here
            self.notify(f"Wrote {n} records to {path}", title="Exported")

        directory, fmt = self.last_export
        self.app.push_screen(ExportDialog(doc["id"], export, directory, fmt), done)
