"""Exporting a dataset run: every table, as a folder with a file per table (CSV, JSON
Lines, JSON) or as one SQLite database whose tables keep the keys and references
(core/dataset/export.py writes them). A folder that holds files or a database that
exists is a question in the dialog; any other problem stays in it with the typed path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from ..core.dataset.export import DATASET_FORMATS, check_dataset_output
from ..core.errors import SynthError, UserInputError
from ..core.textsafe import plain
from .fields import Field

DatasetExporter = Callable[[Path, str, bool], str]  # (path, format, overwrite) -> what was written
FORMAT_LABELS = {"csv": "csv (a folder, a file per table)", "jsonl": "jsonl (a folder, a file per table)",
                 "json": "json (a folder, a file per table)", "sqlite": "sqlite (one .db file)"}


def default_target(directory: Path, run_id: str, fmt: str) -> Path:
    return directory / (f"{run_id}.db" if fmt == "sqlite" else run_id)


class DatasetExportDialog(ModalScreen[tuple[Path, str, str] | None]):
    """Asks for a format and a folder (or a .db file) and exports there itself. Returns
    (path, format, what was written), or None when cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, run_id: str, tables: int, export: DatasetExporter, directory: Path, fmt: str = "sqlite") -> None:
        super().__init__(classes="dialog")
        self.run_id = run_id
        self.tables = tables
        self.export = export
        self.directory = directory
        self.fmt = fmt if fmt in DATASET_FORMATS else "sqlite"
        self._confirmed: Path | None = None  # the path the user agreed to replace

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(plain(f"Export dataset run {self.run_id}: {self.tables} tables", one_line=True),
                        classes="dialog-title")
            with Horizontal(classes="form-row"):
                yield Label("Format", classes="form-label")
                yield Select([(FORMAT_LABELS[f], f) for f in DATASET_FORMATS], value=self.fmt, allow_blank=False,
                             compact=True, id="format")
            with Horizontal(classes="form-row"):
                yield Label("To", classes="form-label")
                yield Field(str(default_target(self.directory, self.run_id, self.fmt)), compact=True, id="path")
            yield Static("", id="export-problem", classes="dialog-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", id="export", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        """A database is a file, the other formats a folder: the path follows the format."""
        path = self.query_one("#path", Input)
        current = Path(path.value.strip() or self.run_id)
        folder = current.with_suffix("") if current.suffix.lower() == ".db" else current
        path.value = str(folder.with_suffix(".db") if event.value == "sqlite" else folder)

    def on_input_changed(self) -> None:
        self._say("")

    def on_input_submitted(self) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self._submit()

    def _say(self, problem: str, button: str = "Export") -> None:
        self.query_one("#export-problem", Static).update(plain(problem))
        self.query_one("#export", Button).label = button
        if not problem:
            self._confirmed = None

    def _submit(self) -> None:
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            self._say("Give a folder, or a file ending in .db for SQLite.")
            return
        path = Path(raw).expanduser()
        fmt = str(self.query_one("#format", Select).value)
        agreed = self._confirmed == path
        if fmt == "sqlite" and not path.parent.exists() and not agreed:
            self._say(f"The folder {path.parent} does not exist. Create it?", "Create and export")
            self._confirmed = path
            return
        try:
            if path.parent.exists():  # else the user agreed to create it: the export checks then
                check_dataset_output(path, fmt, force=agreed)
        except UserInputError as exc:
            if self._needs_consent(path, fmt):
                self._say(f"The database {path} exists. Replace it?" if fmt == "sqlite" else
                          f"The folder {path} holds files. Replace the tables' files in it?", "Replace")
                self._confirmed = path
            else:
                self._say(exc.remedy("tui"))
            return
        self.query_one("#export", Button).disabled = True
        self._run_export(path, fmt, agreed)

    @staticmethod
    def _needs_consent(path: Path, fmt: str) -> bool:
        """Would the export go ahead with the user's consent to replace what is there?"""
        try:
            check_dataset_output(path, fmt, force=True)
        except UserInputError:
            return False
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, name="export")
    def _run_export(self, path: Path, fmt: str, agreed: bool) -> tuple[Path, str, str]:
        if fmt == "sqlite" and not path.parent.exists():
            try:
                path.parent.mkdir(parents=True)
            except OSError as exc:
                raise UserInputError(f"cannot create the folder {path.parent}: {exc.strerror or exc}") from None
        return path, fmt, self.export(path, fmt, agreed)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.SUCCESS:
            self.dismiss(event.worker.result)
        elif event.state == WorkerState.ERROR:
            event.stop()  # said here, where the path can be corrected, not in a notification
            self.query_one("#export", Button).disabled = False
            error = event.worker.error
            self._say(error.remedy("tui") if isinstance(error, SynthError) else f"unexpected error: {error!r}")
