"""The history's export of the selected run: a run's records to one file, or a dataset
run's tables to a folder of files or a SQLite database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core.export import export_to_path
from ..core.store import RunDoc, Store
from ..table_events import is_dataset_doc

if TYPE_CHECKING:
    from .history import HistoryScreen


def export_run(screen: HistoryScreen, doc: RunDoc, store: Store) -> None:
    """Ask where, export there, and say what was written; the next export starts from
    the same folder and format."""
    from .dialogs import ExportDialog

    if is_dataset_doc(doc):
        export_dataset_run(screen, doc, store)
        return

    def export(path: Path, fmt: str, overwrite: bool) -> int:
        return export_to_path(lambda: store.iter_records(doc.id), path, fmt, schema=doc.schema, force=overwrite)

    def done(answer: tuple[Path, str, int] | None) -> None:
        if answer is None:
            return
        path, fmt, n = answer
        screen.last_export = (path.parent, fmt)  # the next export starts from here
        screen.notify(f"Wrote {n} records to {path}", title="Exported")

    directory, fmt = screen.last_export
    screen.app.push_screen(ExportDialog(doc.id, export, directory, fmt), done)


def export_dataset_run(screen: HistoryScreen, doc: RunDoc, store: Store) -> None:
    from ..core.dataset.export import export_dataset
    from .dataset_export import DatasetExportDialog

    def export(path: Path, fmt: str, overwrite: bool) -> str:
        return export_dataset(store, doc.id, path, fmt, force=overwrite)

    def done(answer: tuple[Path, str, str] | None) -> None:
        if answer is not None:
            path, _fmt, written = answer
            screen.last_export = (path.parent, screen.last_export[1])
            screen.notify(f"Wrote {written}", title="Exported")

    tables = doc.extra.get("tables")
    count = len(tables) if isinstance(tables, dict) else 0
    screen.app.push_screen(DatasetExportDialog(doc.id, count, export, screen.last_export[0]), done)
