"""History: every run, newest first, a page at a time, with a preview pane and paged records.

The screen wires its two panes (:mod:`.run_list`: the runs, a page at a time, filtered
and searched in the store's index; :mod:`.run_preview`: the selected run and its records)
to the actions on the selected or marked runs.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header

from ..core.errors import SynthError
from ..core.store import RESUMABLE, PruneResult, RunDoc, Store
from ..messages import RerunRequested, ResumeRequested, context
from ..table_events import is_dataset_doc
from .prune_marked import ask_to_prune, pruned_message
from .run_list import RunList, RunTable
from .run_preview import RunPreview

NARROW = 110  # below this many columns the preview goes under the run table


class HistoryScreen(Screen[None]):
    BINDINGS = [
        Binding("e", "export", "Export", id="history.export"),
        Binding("r", "rerun", "Re-run", id="history.rerun"),
        Binding("u", "resume", "Resume", id="history.resume"),
        Binding("d", "delete", "Delete", id="history.delete"),
        # f, m and c are named where they act (the filter line, the preview), and in F1: the
        # footer keeps room for Quit and Help at 80 columns
        Binding("f", "cycle_filter", "Filter", show=False, id="history.cycle-filter"),
        Binding("enter", "report", "Report", id="history.report"),
        Binding("m", "mark", "Mark", show=False, id="history.mark"),
        Binding("c", "compare", "Compare", show=False, id="history.compare"),
        Binding("x", "prune_marked", "Remove marked", show=False, id="history.prune-marked"),
        Binding("slash", "search", "Search", show=False, id="history.search"),
        Binding("right_square_bracket", "next_page", "Next page", show=False, id="history.next-page"),
        Binding("left_square_bracket", "previous_page", "Prev page", show=False, id="history.previous-page"),
        Binding("t", "next_table", "Next table", show=False, id="history.next-table"),
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
        ("next_table", "Next table's records", "A dataset run's records: those of its next table (t)"),
        ("mark", "Mark run", "Mark or unmark the selected run for a comparison (m)"),
        ("compare", "Compare marked runs", "Marked runs side by side (c)"),
        ("prune_marked", "Remove marked runs", "Delete the runs marked with m and their records, after a question (x)"),
        ("search", "Search runs", "Runs whose schema title, field names, backend or model hold a text (/)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="history")
        self.last_export: tuple[Path, str] = (Path.cwd(), "jsonl")

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="history-body"):
            yield RunList()
            yield RunPreview()
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

    @property
    def run_list(self) -> RunList:
        return self.query_one(RunList)

    @property
    def runs(self) -> list[RunDoc]:
        """The page of runs on screen."""
        return self.run_list.runs if self.is_mounted else []

    @property
    def marked(self) -> list[str]:
        return self.run_list.marked if self.is_mounted else []

    def refresh_runs(self, select: str | None = None, *, row: int | None = None, keep: bool = True) -> None:
        """Read the page of runs again (see :meth:`RunList.reload`) and show the selected one."""
        if not self.is_mounted:
            return
        self.run_list.reload(self.store, select, row=row, keep=keep)
        self.show_preview()

    def on_run_table_page_edge(self, event: RunTable.PageEdge) -> None:
        """The cursor went past the page: the next page from its first row, or the
        previous one from its last."""
        row = self.run_list.turn_page(event.step)
        if row is not None:
            self.refresh_runs(row=row, keep=False)

    def show_run_progress(self, run_id: str, done: int, total: int, elapsed: float, cost: str | None = None) -> None:
        """A running run's row follows its progress (the App calls this while shown)."""
        if self.is_mounted:
            self.run_list.show_progress(run_id, done, total, elapsed, cost)

    def selected(self) -> RunDoc | None:
        return self.run_list.selected()

    def selected_id(self) -> str | None:
        return self.run_list.selected_id() if self.is_mounted else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "runs":
            self.query_one(RunPreview).page = 0
            self.show_preview()

    def show_preview(self) -> None:
        status = self.run_list.status_filter
        self.query_one(RunPreview).show(self.selected(), self.store,
                                        "No runs yet." if not status else f"No {status} runs.")

    # -- actions -----------------------------------------------------------------------------
    def action_next_page(self) -> None:
        self.action_page(1)

    def action_previous_page(self) -> None:
        self.action_page(-1)

    def action_page(self, step: int) -> None:
        doc = self.selected()
        if doc is not None:
            self.query_one(RunPreview).turn(doc, step)
            self.show_preview()

    def action_next_table(self) -> None:
        doc = self.selected()
        if doc is not None and not self.query_one(RunPreview).next_table(doc):
            self.notify("This run made one table of records; t moves through a dataset run's tables.")
        self.show_preview()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "runs":
            self.action_report()

    def action_report(self) -> None:
        from .dataset_report import report_screen

        doc = self.selected()
        if doc is not None:
            self.app.push_screen(report_screen(doc))

    def action_mark(self) -> None:
        self.run_list.toggle_mark()

    def action_compare(self) -> None:
        from .report import ComparisonScreen

        marked = self.existing(self.marked)
        datasets = self.existing(self.marked, datasets=True)
        if datasets:  # a comparison reads one schema's records per run: a dataset has tables
            self.notify(f"{len(datasets)} of the marked runs {'is a dataset' if len(datasets) == 1 else 'are datasets'}"
                        ": a comparison takes runs of one record schema, so they are left out.", title="Compare")
            marked = [run_id for run_id in marked if run_id not in datasets]
        if len(marked) < 2:
            self.notify("Mark two or more runs with m, then press c.")
            return
        self.app.push_screen(ComparisonScreen(marked, dict(context(self).settings.prices)))

    def existing(self, run_ids: list[str], datasets: bool = False) -> list[str]:
        """The runs of ``run_ids`` still in the history (one file read each); with
        ``datasets``, only those that are dataset runs."""
        store = self.store
        found = []
        for run_id in run_ids:
            try:
                doc = store.get_run(run_id) if store is not None else None
                if doc is not None and doc.id == run_id and (not datasets or is_dataset_doc(doc)):
                    found.append(run_id)
            except SynthError:
                continue
        return found

    def action_prune_marked(self) -> None:
        """Remove the marked runs and their records, after a question that says how many
        records and how much space; a running run is left alone."""
        store = self.store
        marked = self.run_list.marked = self.existing(self.marked)
        if store is None or not marked:
            self.notify("Mark runs with m, then press x to remove them.")
            return
        ask_to_prune(self, store, marked, self.pruned)

    def pruned(self, result: PruneResult) -> None:
        self.run_list.forget(result.ids)
        self.notify(pruned_message(result), title="Pruned")
        self.refresh_runs()

    def action_search(self) -> None:
        from .dialogs import NameDialog

        def answered(text: str | None) -> None:
            self.run_list.search = text.strip() if text and text.strip() else None
            self.run_list.run_page = 0
            self.refresh_runs(row=0, keep=False)  # the best match first: the newest

        self.app.push_screen(NameDialog("Search runs by schema title, field names, backend or model",
                                        lambda _text: None, self.run_list.search or "",
                                        hint="Escape shows every run again."), answered)

    def action_cycle_filter(self) -> None:
        self.run_list.cycle_filter()
        self.refresh_runs()

    def action_rerun(self) -> None:
        doc = self.selected()
        if doc:
            self.post_message(RerunRequested(doc.schema, doc.config, doc.backend.to_dict()))

    def action_resume(self) -> None:
        doc = self.selected()
        if doc is None:
            return
        more = doc.status == "done" and not is_dataset_doc(doc)  # goes on to more records: asked for
        if doc.status not in RESUMABLE and not more:
            self.notify(f"Only {', '.join(RESUMABLE)} runs can be resumed, and a done run to more records; "
                        f"this one is {doc.status}.")
            return
        self.post_message(ResumeRequested(doc.id))

    def action_delete(self) -> None:
        from .dialogs import ConfirmDialog

        doc = self.selected()
        if doc is None:
            return
        if context(self).running_run_id == doc.id:
            self.notify("This run is going: cancel it first.", severity="warning")
            return

        def done(yes: bool | None) -> None:
            store = self.store
            if yes and store is not None:
                try:
                    store.delete_run(doc.id)
                except SynthError as exc:
                    self.notify(str(exc), severity="error")
                    return
                self.notify(f"Deleted run {doc.id}.")
                self.run_list.forget([doc.id])
                self.refresh_runs()

        self.app.push_screen(ConfirmDialog(f"Delete run {doc.id} and its {doc.counts.accepted} records?"), done)

    def action_export(self) -> None:
        from .export_run import export_run

        doc = self.selected()
        store = self.store
        if doc is not None and store is not None:
            export_run(self, doc, store)
