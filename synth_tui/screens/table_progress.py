"""The progress screen's bars of a dataset run: a line per table (its name, a bar, rows
done of its total, its status), the table being generated marked.

Fed with the run's events (see synth_tui/table_events.py): DatasetStarted lists the
tables, TableStarted names the table whose events follow, each event's progress moves
that table's bar, RunFinished and RunFailed end it; the DatasetResult says the last word.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from ..core.dataset import TableOutcome
from ..core.events import Event, RunFailed, RunFinished
from ..core.textsafe import clean_line
from ..table_events import DatasetStarted, TableStarted

BAR_WIDTH = 24
NAME_WIDTH = 16
STATUS_STYLES = {"done": "green", "running": "bold", "failed": "red", "cancelled": "yellow", "budget": "yellow"}


@dataclass
class TableLine:
    name: str
    status: str
    done: int = 0
    total: int = 0  # unknown (0) until the table starts: children per parent are drawn then


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = min(width, width * done // total) if total > 0 else 0
    return "█" * filled + "░" * (width - filled)


class TablesProgress(Static):
    """A line per table of the dataset run; ``current`` names the table being generated."""

    def __init__(self) -> None:
        super().__init__("", id="table-progress")
        self.lines: dict[str, TableLine] = {}
        self.current: str | None = None
        self.table_run: str | None = None  # the current table's own run id: its events move its bar
        self.dataset_run: str | None = None  # the dataset's run id, as the history lists it
        self.started = 0.0  # time.monotonic() when this session of the dataset run began
        self.changed = False

    def clear(self) -> None:
        self.lines.clear()
        self.current = self.table_run = self.dataset_run = None
        self.changed = True

    def observe(self, event: Event) -> None:
        """Keep what ``event`` changes; ``draw`` shows it."""
        if isinstance(event, DatasetStarted):
            self.clear()
            self.lines = {t.name: TableLine(t.name, t.status, t.accepted, t.requested) for t in event.tables}
            self.dataset_run, self.started = event.run_id, time.monotonic()
        elif isinstance(event, TableStarted):
            self.current, self.table_run = event.table, event.run_id
            self.lines.setdefault(event.table, TableLine(event.table, "running")).status = "running"
        line = self.lines.get(self.current or "")
        if line is None or event.run_id != self.table_run:
            return
        line.done, line.total = event.progress.done, event.progress.total
        if isinstance(event, RunFinished):
            line.status = event.status
        elif isinstance(event, RunFailed):
            line.status = "failed"
        self.changed = True

    def finish(self, outcomes: list[TableOutcome]) -> None:
        """The dataset run's result: each table's rows and status as the history keeps them."""
        for outcome in outcomes:
            line = self.lines.setdefault(outcome.name, TableLine(outcome.name, outcome.status))
            line.status, line.done = outcome.status, outcome.accepted
            line.total = max(line.total, outcome.requested)
        self.current = self.table_run = None
        self.changed = True
        self.draw()

    def draw(self) -> None:
        if not self.changed or not self.is_mounted:
            return
        self.changed = False
        text = Text()
        for i, line in enumerate(self.lines.values()):
            if i:
                text.append("\n")
            mark = "▶ " if line.name == self.current else "  "
            name = clean_line(line.name)
            name = name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"
            total = str(line.total) if line.total or line.status == "done" else "?"
            text.append(f"{mark}{name:<{NAME_WIDTH}} ")
            text.append(bar(line.done, line.total), style=STATUS_STYLES.get(line.status, "dim"))
            text.append(f" {line.done}/{total} ")
            # the status may come from a history file
            text.append(clean_line(line.status), style=STATUS_STYLES.get(line.status, "dim"))
        self.update(text)

    def totals(self) -> tuple[int, int]:
        """Rows done and rows known to make, over every table (a table not started yet
        counts its rows done only: its size is drawn when it starts)."""
        lines = self.lines.values()
        return sum(line.done for line in lines), sum(max(line.total, line.done) for line in lines)

    @property
    def current_line(self) -> str:
        """Which table is being generated, for the run's title ('table orders, 3 of 4')."""
        if self.current is None:
            return ""
        names = list(self.lines)
        where = f", {names.index(self.current) + 1} of {len(names)}" if self.current in names else ""
        return f"table {clean_line(self.current)}{where}"
