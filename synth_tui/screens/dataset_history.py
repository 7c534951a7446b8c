"""A dataset run in the history: its row's label, its preview (each table's rows and
status) and its records, one table at a time (``t`` moves to the next), a page at a
time, read from the tables' journals through core/dataset/export.DatasetTables.

Everything here comes from the history file: shown as plain text, never as markup.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.dataset.export import DatasetTables
from ..core.errors import SynthError
from ..core.store import RunDoc, Store


def saved_tables(doc: RunDoc) -> dict[str, dict[str, Any]]:
    """Each table's entry in the dataset run's document (run_id, status, requested,
    accepted), in the file's order; entries of the wrong type read as empty."""
    tables = doc.extra.get("tables")
    if not isinstance(tables, dict):
        return {}
    return {str(name): entry if isinstance(entry, dict) else {} for name, entry in tables.items()}


def whole(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def tables_label(doc: RunDoc) -> str:
    """'4 tables' (the runs list's Model column starts with it for a dataset run)."""
    n = len(saved_tables(doc))
    return f"{n} table{'s' if n != 1 else ''}"


def dataset_preview_lines(doc: RunDoc, shown: str | None) -> list[str]:
    """What the preview says of a dataset run; ``shown`` is the table whose records are listed."""
    backend = doc.backend
    lines = [f"Dataset run {doc.id} · {doc.status} · {tables_label(doc)}"]
    for name, entry in saved_tables(doc).items():  # first: a short terminal shows them
        mark = "▶" if name == shown else " "
        lines.append(f"{mark} {name}: {whole(entry.get('accepted'))}/{whole(entry.get('requested'))} "
                     f"{entry.get('status') or 'pending'}")
    lines += [
        f"{backend.kind} {backend.model or ''} {backend.base_url or ''}".rstrip(),
        f"rows {doc.counts.accepted}/{doc.counts.requested} · per request {doc.batch_size or 'auto'} · "
        f"concurrency {doc.concurrency} · seed {doc.extra.get('dataset_seed', '-')}",
    ]
    if doc.error:
        lines.append(f"error: {doc.error}")
    lines.append("Enter: report · t: next table's records · [ ]: pages")
    return lines


class DatasetPages:
    """The records of a dataset run's tables, a page at a time: which table is shown,
    and the run's tables opened read-only (again when its document has moved on)."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.table = 0  # the index of the table shown
        self._tables: DatasetTables | None = None
        self._opened_for: str | None = None  # the document's tables when they were opened

    def names(self, doc: RunDoc) -> list[str]:
        return list(saved_tables(doc))

    def shown(self, doc: RunDoc) -> str | None:
        if doc.id != self.run_id:  # another run: its first table
            self.run_id, self.table = doc.id, 0
        names = self.names(doc)
        return names[self.table % len(names)] if names else None

    def next_table(self, doc: RunDoc) -> None:
        self.shown(doc)
        self.table = (self.table + 1) % max(1, len(self.names(doc)))

    def accepted(self, doc: RunDoc) -> int:
        name = self.shown(doc)
        return whole(saved_tables(doc).get(name or "", {}).get("accepted"))

    def page(self, doc: RunDoc, store: Store | None, offset: int, limit: int) -> tuple[list[dict[str, Any]], list[str]]:
        """The records offset..offset+limit of the table shown, and its columns."""
        name = self.shown(doc)
        tables = self._open(doc, store)
        if name is None or tables is None or name not in tables.dataset.tables:
            return [], []
        columns = tables.dataset.tables[name].schema.field_names()
        run_id = tables.table_run(name)
        if run_id is None or tables.store is None:
            return [], columns
        try:
            return [r for r in tables.store.read_page(run_id, offset, limit) if isinstance(r, dict)], columns
        except SynthError:
            return [], columns

    def _open(self, doc: RunDoc, store: Store | None) -> DatasetTables | None:
        state = json.dumps([doc.id, doc.extra.get("tables")], sort_keys=True, default=str)
        if self._tables is not None and self._opened_for == state:
            return self._tables
        self.close()
        if store is None:
            return None
        try:
            self._tables = DatasetTables(store, doc.id)
        except SynthError:  # a document edited by hand, a folder gone
            return None
        self._opened_for = state
        return self._tables

    def close(self) -> None:
        if self._tables is not None:
            self._tables.close()
        self._tables = self._opened_for = None
