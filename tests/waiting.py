"""Waiting in TUI tests: always on a condition the user would see, never on the clock.

Work done in threads (reports, runs) and Textual's own deferred work (focus changes, a
DataTable measuring its new rows when it is idle) take their own time, longer on a busy
machine. A fixed pause passes on an idle machine and fails under load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.widgets import DataTable, RichLog
from textual.widgets._footer import FooterKey
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


async def shown(pilot: Any, screen: str | type, timeout: float = TIMEOUT) -> Any:
    """Wait until the screen on top is ``screen`` (an id or a class), mounted; return it."""
    app = pilot.app

    def on_top() -> bool:
        top = app.screen
        same = top.id == screen if isinstance(screen, str) else isinstance(top, screen)
        return same and top.is_mounted

    name = screen if isinstance(screen, str) else screen.__name__
    await until(pilot, on_top, f"the {name} screen", timeout)
    return app.screen


async def focused(pilot: Any, ident: str, timeout: float = TIMEOUT) -> Any:
    """Wait until the widget with the id ``ident`` has the focus and is drawn as focused;
    return it. The screen names its focused widget at once, but the widget takes the
    ``:focus`` styles (a table's cursor colour, its tint) only when it has handled its Focus
    event: a screenshot between the two shows it unfocused."""
    app = pilot.app

    def drawn_focused() -> bool:
        widget = app.focused
        return widget is not None and widget.id == ident and widget.has_focus

    await until(pilot, drawn_focused, f"the focus on #{ident}", timeout)
    return app.focused


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


def logs_at_end(screen: Any) -> bool:
    """Every following RichLog on ``screen`` shows its last line: it scrolls there after
    the lines' layout, and a screenshot taken before that shows another part."""
    for log in screen.query(RichLog):
        if log.auto_scroll and (log._deferred_renders or log.scroll_y < log.max_scroll_y):
            return False
    return True


def shown_screens(app: Any) -> list[Any]:
    """The screen on top and, while it is a modal one, those that show through it."""
    screens = []
    for screen in reversed(app.screen_stack):
        screens.append(screen)
        if not screen.is_modal:
            break
    return screens


def drawing(app: Any) -> str:
    """The screen as it would be drawn now: its text and its styles."""
    return str(app.export_screenshot(simplify=True))


async def laid_out(pilot: Any, timeout: float = TIMEOUT) -> None:
    """Wait for the deferred layout work of every screen on view (tables measured, logs
    scrolled to their end), then for one more repaint. Enough to read a screen's widgets,
    and cheap while a run keeps changing what is drawn."""
    await until(pilot, lambda: all(tables_measured(s) and logs_at_end(s) for s in shown_screens(pilot.app)),
                "the tables and logs on screen to take their layout", timeout)
    await pilot.pause()


async def settle(pilot: Any, timeout: float = TIMEOUT) -> None:
    """Before a screenshot: the screen laid out, then drawn the same before and after the
    app has handled all it had pending. A cursor moved, a focus taken, a table measured
    when idle all change the styles of what is drawn, not always its text, and a
    screenshot taken halfway shows a mix. Not for a screen a live run keeps changing."""
    await laid_out(pilot, timeout)
    deadline = time.monotonic() + timeout
    before = drawing(pilot.app)
    while True:
        await pilot.pause()
        now = drawing(pilot.app)
        if now == before:
            return
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the screen to stop changing")
        before = now


def footer_actions(app: Any) -> set[str]:
    """The actions of the keys in the current screen's footer (the footer redraws itself
    after the App says its keys changed)."""
    return {key.action for key in app.screen.query(FooterKey)}


def notifications(app: Any) -> str:
    """The text of the notifications on screen; ``run_test(notifications=True)`` shows them."""
    racks = app.screen.query_children(ToastRack)
    return "\n".join(str(toast.render()) for rack in racks for toast in rack.walk_children(Toast))
