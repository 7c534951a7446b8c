"""The report of a dataset run (Enter in the history): its referential integrity and
each table's keys, references, children per parent and quality, as the CLI's
``report`` prints it (core/dataset/report.py), computed on a thread."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from ..core.dataset.report import dataset_report, format_dataset_report
from ..core.store import RunDoc
from ..core.textsafe import plain
from ..table_events import is_dataset_doc
from .dialogs import TextDialog
from .report import ReportScreen, open_store


class DatasetReportScreen(TextDialog):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"Report of dataset run {run_id}", f"Computing the report of dataset run {run_id}...")
        self.run_id = run_id

    def on_mount(self) -> None:
        self.compute()

    @work(thread=True, exclusive=True, exit_on_error=False, name="report")
    def compute(self) -> str:
        return format_dataset_report(dataset_report(open_store(self), self.run_id))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        body = self.query_one("#text-body Static", Static)
        if event.state == WorkerState.SUCCESS and isinstance(event.worker.result, str):
            body.update(plain(event.worker.result))
        elif event.state == WorkerState.ERROR:  # the App's handler tells what happened
            body.update(plain(f"No report for dataset run {self.run_id}."))


def report_screen(doc: RunDoc) -> Screen[Any]:
    """The quality report of a run, or the report of a dataset run's tables."""
    return DatasetReportScreen(doc.id) if is_dataset_doc(doc) else ReportScreen(doc.id)
