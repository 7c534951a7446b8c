"""What the export dialogs share: a format, a path, the export run on a thread, and a
problem said in the dialog, the typed path kept, where it can be corrected. The run's
dialog (dialogs.ExportDialog) writes one file; a dataset's (dataset_export) a folder of
files or a SQLite database. Each says what its title, formats and path are, and how it
checks a path before exporting (``_submit``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from ..core.errors import SynthError, UserInputError
from ..core.textsafe import plain
from .fields import Field

Exporter = Callable[[Path, str, bool], Any]  # (path, format, overwrite) -> what was written


class ExportDialogBase(ModalScreen[tuple[Path, str, Any] | None]):
    """Returns (path, format, what the exporter returned), or None when cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    TARGET_LABEL = "File"

    def __init__(self, run_id: str, export: Exporter, directory: Path, fmt: str) -> None:
        super().__init__(classes="dialog")
        self.run_id = run_id
        self.export = export
        self.directory = directory
        self.fmt = fmt
        self._confirmed: Any = None  # what the user agreed to (replace, create a folder), until the path changes

    # -- what each dialog says ----------------------------------------------------------
    def title_text(self) -> str:
        raise NotImplementedError

    def format_choices(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def default_path(self) -> Path:
        raise NotImplementedError

    def _submit(self) -> None:
        """Check the typed path (asking where needed), then ``_start`` the export."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(plain(self.title_text(), one_line=True), classes="dialog-title")
            with Horizontal(classes="form-row"):
                yield Label("Format", classes="form-label")
                yield Select(self.format_choices(), value=self.fmt, allow_blank=False, compact=True, id="format")
            with Horizontal(classes="form-row"):
                yield Label(self.TARGET_LABEL, classes="form-label")
                yield Field(str(self.default_path()), compact=True, id="path")
            yield Static("", id="export-problem", classes="dialog-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", id="export", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

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

    def _start(self, path: Path, fmt: str, agreed: bool, make_folder: bool) -> None:
        self.query_one("#export", Button).disabled = True
        self._run_export(path, fmt, agreed, make_folder)

    @work(thread=True, exclusive=True, exit_on_error=False, name="export")
    def _run_export(self, path: Path, fmt: str, agreed: bool, make_folder: bool) -> tuple[Path, str, Any]:
        if make_folder and not path.parent.exists():
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
