"""The history's runs pane: one page of runs from the store's index (a filter or a search
is a query, not a scan of documents held here), the line that says which, and the runs
marked for a comparison or a removal. The screen holds one page of runs whatever the size
of the history; the cursor moving past the last row of a page loads the next one.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Static

from ..core.pricing import cost_text
from ..core.store import STATUSES, RunDoc, Store
from ..core.textsafe import plain
from ..table_events import is_dataset_doc
from .dataset_history import tables_label
from .progress import fmt_seconds
from .tables import Table, fill_table

RUN_PAGE = 100  # runs in the table at once
RUN_COLUMNS = ("", "UTC", "Status", "Records", "Time", "Cost", "Model")
FILTERS = (None, *STATUSES)


def run_row(doc: RunDoc) -> list[Any]:
    cells = [
        doc.created[5:16].replace("T", " "),  # MM-DD HH:MM; the id holds the year
        doc.status,
        f"{doc.counts.accepted}/{doc.counts.requested}",
        fmt_seconds(doc.elapsed) if doc.elapsed is not None else "-",
        "-" if is_dataset_doc(doc) else cost_text(doc.to_dict()),  # no price reaches a dataset's tables yet
        f"{tables_label(doc)} · {doc.backend.label}" if is_dataset_doc(doc) else doc.backend.label,
    ]
    return [plain(cell, one_line=True) for cell in cells]  # all of it read from the history file


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


class RunList(Vertical):
    """The runs pane: which runs (``status_filter``, ``search``), the page of them on
    screen (``runs``, page ``run_page`` of ``total``) and the ``marked`` ones."""

    def __init__(self) -> None:
        super().__init__(id="runs-pane")
        self.status_filter: str | None = None
        self.search: str | None = None
        self.runs: list[RunDoc] = []  # the page of runs on screen
        self.run_page = 0
        self.total = 0  # runs the filter selects, on every page
        self.marked: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="filter-line")
        yield RunTable(id="runs", cursor_type="row", zebra_stripes=True)

    @property
    def table(self) -> DataTable:
        return self.query_one("#runs", DataTable)

    def reload(self, store: Store | None, select: str | None, *, row: int | None, keep: bool) -> None:
        """Read the page of runs again; the cursor stays on the run it was on (or
        ``select``), on its page, or at the same place when that run is gone.
        ``keep=False``: the page and ``row`` as they are set, whatever run was there."""
        table = self.table
        selected = select or (self.selected_id() if keep else None)
        row = table.cursor_row if row is None else row
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
        fill_table(table, RUN_COLUMNS, [["✓" if doc.id in self.marked else " ", *run_row(doc)]
                                        for doc in self.runs])
        self.show_filter_line()
        table.move_cursor(row=max(0, min(row, len(self.runs) - 1)), animate=False)

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

    def show_filter_line(self) -> None:
        self.query_one("#filter-line", Static).update(plain(self.filter_line(), one_line=True))

    def turn_page(self, step: int) -> int | None:
        """Move to the next (``step`` 1) or previous (-1) page of runs; the row the cursor
        goes to there (its first, or its last), or None when there is no such page."""
        pages = max(1, -(-self.total // RUN_PAGE))
        target = self.run_page + step
        if not 0 <= target < pages:
            return None
        self.run_page = target
        return 0 if step > 0 else RUN_PAGE - 1

    def cycle_filter(self) -> None:
        self.status_filter = FILTERS[(FILTERS.index(self.status_filter) + 1) % len(FILTERS)]
        self.run_page = 0

    def show_progress(self, run_id: str, done: int, total: int, elapsed: float, cost: str | None = None) -> None:
        """A running run's row follows its progress."""
        ids = [d.id for d in self.runs]
        if run_id not in ids:
            return
        row = ids.index(run_id)
        self.table.update_cell_at(Coordinate(row, 3), plain(f"{done}/{total}"))
        self.table.update_cell_at(Coordinate(row, 4), plain(fmt_seconds(elapsed)))
        if cost is not None:
            self.table.update_cell_at(Coordinate(row, 5), plain(cost))

    def selected(self) -> RunDoc | None:
        table = self.table
        if not self.runs or table.cursor_row < 0 or table.cursor_row >= len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def selected_id(self) -> str | None:
        doc = self.selected()
        return doc.id if doc else None

    def toggle_mark(self) -> None:
        """Mark the selected run, or unmark it."""
        doc = self.selected()
        if doc is None:
            return
        if doc.id in self.marked:
            self.marked.remove(doc.id)
        else:
            self.marked.append(doc.id)
        table = self.table
        table.update_cell_at(Coordinate(table.cursor_row, 0), "✓" if doc.id in self.marked else " ")
        self.show_filter_line()

    def forget(self, run_ids: list[str]) -> None:
        """Unmark runs that are gone."""
        gone = set(run_ids)
        self.marked = [run_id for run_id in self.marked if run_id not in gone]
