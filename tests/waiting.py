"""Waiting in TUI tests: always on a condition the user would see, never on the clock.

Work done in threads (reports, runs) and Textual's own deferred work (focus changes, a
DataTable measuring its new rows when it is idle) take their own time, longer on a busy
machine. A fixed pause passes on an idle machine and fails under load.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from textual.widgets import DataTable
from textual.widgets._toast import Toast, ToastRack

TIMEOUT = 20.0


async def until(pilot: Any, condition: Callable[[], object], what: str = "the screen",
                timeout: float = TIMEOUT) -> None:
    """Let the app run until ``condition()`` holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def tables_measured(screen: Any) -> bool:
    """Every DataTable on ``screen`` has measured its rows: it sizes its columns to their
    content when idle, and a screenshot taken before that shows other column widths."""
    for table in screen.query(DataTable):
        header = table.header_height if table.show_header else 0
        if table.row_count and table.virtual_size.height < header + table.row_count:
            return False
        widths = sum(column.get_render_width(table) for column in table.columns.values())
        if table.columns and table.virtual_size.width < widths:
            return False
    return True


async def settle(pilot: Any) -> None:
    """Wait for the current screen's deferred layout work, then for one more repaint."""
    await until(pilot, lambda: tables_measured(pilot.app.screen), "the tables to measure their rows")
    await pilot.pause()


def notifications(app: Any) -> str:
    """The text of the notifications on screen; ``run_test(notifications=True)`` shows them."""
    racks = app.screen.query_children(ToastRack)
    return "\n".join(str(toast.render()) for rack in racks for toast in rack.walk_children(Toast))
