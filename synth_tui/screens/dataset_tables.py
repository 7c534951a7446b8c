"""The editor's view of a dataset file (top-level "tables"): each table's size, key and
references in a list, and the fields of the table under its cursor, in place of the field
sources. Also what a dataset run takes from the parameters, and what it refuses.

Table and field names come from the file in the editor: they are shown as plain text.
"""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static, TextArea

from ..core.dataset import Dataset, Table, check_dataset, is_dataset
from ..core.engine import RunConfig
from ..core.errors import UserInputError
from ..core.schema import RecordSchema, parse_schema
from ..core.textsafe import plain
from ..messages import DatasetRequested
from .run_form import RunForm
from .sources import field_sources, key_locations
from .tables import Table as DataList
from .tables import fill_table

NOT_FOR_DATASETS = "not used: Count, Examples, Enrich, Compare, Budget, Batch API, F6 (each table has its own size)"


def parse_editor_text(text: str, source: str = "schema") -> RecordSchema | Dataset:
    """The editor's text as a record schema, or as a dataset when its top level is
    {"tables": {...}}; SchemaError (with its JSON path) as the CLI says it."""
    if '"tables"' in text and text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # parse_schema says what is wrong, and where
            data = None
        if is_dataset(data):
            return check_dataset(data, source)
    return parse_schema(text, source)


def table_size(table: Table) -> str:
    """'200' for a fixed size; '0-5 per customers' for children per parent row."""
    if table.per is None:
        return f"{table.count or 0:,}"
    weighted = " (weighted)" if table.per.weights else ""
    return f"{table.per.low}-{table.per.high} per {table.per.parent}{weighted}"


def table_references(table: Table) -> str:
    return ", ".join(f"{name} → {ref.table}.{ref.column}" for name, ref in table.refs.items()) or "-"


def table_fields(table: Table) -> str:
    """Each field of ``table`` and where its values come from, on one line."""
    parts = []
    for source in field_sources(table.schema):
        ref = table.refs.get(source.name)
        if ref is not None:
            parts.append(f"{source.name} → {ref.table}.{ref.column}")
        elif source.name == table.primary_key:
            parts.append(f"{source.name} (key, {source.text})")
        else:
            parts.append(f"{source.name} ({source.text})")
    return f"{table.name}: " + " · ".join(parts)


def dataset_summary(dataset: Dataset) -> str:
    fields = sum(len(t.schema.field_names()) for t in dataset.tables.values())
    return f"{len(dataset.tables)} tables, {fields} fields"


class TableChosen(Message):
    """Enter on a table's row: show that table in the file."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class TableList(DataList):
    BINDINGS = [
        Binding("enter", "choose", "Show in the file"),
        Binding("escape", "screen.focus_editor", "Back to the schema"),
    ]

    def action_choose(self) -> None:
        if 0 <= self.cursor_row < self.row_count:
            self.post_message(TableChosen(str(self.get_row_at(self.cursor_row)[0])))


def show_table(area: TextArea, name: str) -> None:
    """Put ``area``'s cursor on the key of table ``name`` in the dataset file in it."""
    where = next((at for at, key in key_locations(area.text, [None, "tables"]) if key == name), None)
    if where is not None:
        area.move_cursor(where, center=True)


class DatasetTablesView(Vertical):
    """The tables of the dataset in the editor; the highlighted one's fields under them."""

    def __init__(self) -> None:
        super().__init__(id="dataset-tables")
        self.border_title = "Tables (ctrl+r)"
        self.names: list[str] = []
        self.dataset: Dataset | None = None

    def compose(self) -> ComposeResult:
        yield TableList(id="table-list", cursor_type="row")
        yield Static("", id="table-fields")

    @property
    def table_list(self) -> DataTable:
        return self.query_one("#table-list", DataTable)

    def show(self, dataset: Dataset) -> None:
        """The tables of ``dataset``, parents first; the cursor stays on the same table."""
        listing = self.table_list
        chosen = self.names[listing.cursor_row] if 0 <= listing.cursor_row < len(self.names) else None
        self.dataset = dataset
        self.names = list(dataset.tables)
        rows = [[plain(t.name, one_line=True), plain(table_size(t), one_line=True),
                 plain(t.primary_key or "-", one_line=True), plain(table_references(t), one_line=True)]
                for t in dataset.tables.values()]
        fill_table(listing, ["Table", "Size", "Key", "References"], rows)
        row = self.names.index(chosen) if chosen in self.names else 0
        listing.move_cursor(row=row, animate=False)
        self.show_fields(row)

    def show_fields(self, row: int) -> None:
        if self.dataset is None or not 0 <= row < len(self.names):
            return
        self.query_one("#table-fields", Static).update(plain(table_fields(self.dataset.tables[self.names[row]])))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_fields(event.cursor_row)


def dataset_request(form: RunForm, dataset: Dataset) -> DatasetRequested:
    """The dataset run the form asks for; UserInputError names a parameter that does not
    apply (a seed file: it holds one table's rows)."""
    values = form.read()
    if values.examples or values.enrich:
        raise UserInputError("Examples and Enrich take one table's rows: leave them blank for a dataset "
                             "(give seed data per table in the file, with from_seed)")
    if form.compare_with().strip():
        raise UserInputError("Compare runs one record schema on several models: leave it blank for a dataset")
    if values.budget is not None or values.batch_api:  # as the CLI: one budget over every table is not there yet
        raise UserInputError("Budget and the Batch API work on one schema's runs, not on a dataset's tables yet: "
                             "clear them for a dataset")
    config = RunConfig(count=1, batch_size=values.batch_size, concurrency=values.concurrency, params=values.params)
    config.check()  # count: each table's own, set when the table starts
    return DatasetRequested(dataset, config, form.backend())
