"""Filling a DataTable in one go, with column widths fixed from the data.

A DataTable left to size its columns measures new rows later, when it is idle, and then
keeps lines it drew before that in its cache: the header could stay at the old widths,
out of line with the rows under it. Widths computed here, from the cells themselves,
leave it nothing to measure later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

MAX_COLUMN_WIDTH = 40


def cell_width(cell: object) -> int:
    if isinstance(cell, Text):
        return max((line.cell_len for line in cell.split()), default=0)
    return Text(str(cell)).cell_len


def fill_table(table: DataTable, labels: Sequence[str | Text], rows: Iterable[Sequence[object]],
               max_width: int = MAX_COLUMN_WIDTH, fixed_width: int | None = None) -> None:
    """Replace ``table``'s columns and rows; each column as wide as its widest cell, or
    all ``fixed_width`` wide."""
    rows = [list(row) for row in rows]
    widths = [cell_width(label) for label in labels]
    for row in rows:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], cell_width(cell))
    if fixed_width is not None:
        widths = [fixed_width] * len(widths)
    table.clear(columns=True)
    for label, width in zip(labels, widths):
        table.add_column(label, width=min(width, max_width))
    table.add_rows(rows)


class Table(DataTable):
    """A DataTable whose Home and End go to the first and last row (DataTable's own
    scroll sideways, which a list of runs never needs)."""

    BINDINGS = [
        Binding("home", "first_row", "First", show=False),
        Binding("end", "last_row", "Last", show=False),
    ]

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=max(0, self.row_count - 1))
