"""Exporting a dataset run: every table, as a folder with a file per table (CSV, JSON
Lines, JSON) or as one SQLite database whose tables keep the keys and references
(core/dataset/export.py writes them). A folder that holds files or a database that
exists is a question in the dialog; any other problem stays in it with the typed path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input, Select

from ..core.dataset.export import DATASET_FORMATS, check_dataset_output
from ..core.errors import UserInputError
from .export_dialog import ExportDialogBase

DatasetExporter = Callable[[Path, str, bool], str]  # (path, format, overwrite) -> what was written
FORMAT_LABELS = {"csv": "csv (a folder, a file per table)", "jsonl": "jsonl (a folder, a file per table)",
                 "json": "json (a folder, a file per table)", "sqlite": "sqlite (one .db file)"}


def default_target(directory: Path, run_id: str, fmt: str) -> Path:
    return directory / (f"{run_id}.db" if fmt == "sqlite" else run_id)


class DatasetExportDialog(ExportDialogBase):
    """Asks for a format and a folder (or a .db file) and exports there itself. Returns
    (path, format, what was written), or None when cancelled."""

    TARGET_LABEL = "To"

    def __init__(self, run_id: str, tables: int, export: DatasetExporter, directory: Path, fmt: str = "sqlite") -> None:
        super().__init__(run_id, export, directory, fmt if fmt in DATASET_FORMATS else "sqlite")
        self.tables = tables

    def title_text(self) -> str:
        return f"Export dataset run {self.run_id}: {self.tables} tables"

    def format_choices(self) -> list[tuple[str, str]]:
        return [(FORMAT_LABELS[f], f) for f in DATASET_FORMATS]

    def default_path(self) -> Path:
        return default_target(self.directory, self.run_id, self.fmt)

    def on_select_changed(self, event: Select.Changed) -> None:
        """A database is a file, the other formats a folder: the path follows the format."""
        path = self.query_one("#path", Input)
        current = Path(path.value.strip() or self.run_id)
        folder = current.with_suffix("") if current.suffix.lower() == ".db" else current
        path.value = str(folder.with_suffix(".db") if event.value == "sqlite" else folder)

    def on_input_changed(self) -> None:
        self._say("")

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
        self._start(path, fmt, agreed, make_folder=fmt == "sqlite")

    @staticmethod
    def _needs_consent(path: Path, fmt: str) -> bool:
        """Would the export go ahead with the user's consent to replace what is there?"""
        try:
            check_dataset_output(path, fmt, force=True)
        except UserInputError:
            return False
        return True
