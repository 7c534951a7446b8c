"""Modal screens: help, confirm, export, a text viewer, rejected output."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from ..core.events import RecordRejected
from ..core.export import FORMATS
from ..textsafe import clean_line, plain
from .fields import Field


class HelpScreen(ModalScreen[None]):
    """The keys of the screen underneath, and the global ones."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, under: Screen) -> None:
        super().__init__(classes="dialog")
        self.under = under

    def compose(self) -> ComposeResult:
        # the screen's and the app's bindings as they are now, keymap changes included
        keys: dict[str, list[str]] = {}
        for key, active in self.under.active_bindings.items():
            binding = active.binding
            if active.node in (self.under, self.app) and binding.description:
                keys.setdefault(binding.description, []).append(self.app.get_key_display(Binding(key, "")))
        rows = [(", ".join(k), description) for description, k in keys.items()]
        title = (self.under.id or "screen").capitalize()
        with Vertical(id="dialog-box"):
            yield Label(plain(f"{title}: keys"), classes="dialog-title")
            table: DataTable = DataTable(show_cursor=False, id="help-keys")
            table.add_columns("Key", "Action")
            # key names can come from the settings file's keymap: never markup
            table.add_rows([[escape(clean_line(key)), action] for key, action in rows])
            yield table
            yield Label("Escape closes this help.", classes="dialog-hint")


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__(classes="dialog")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Static(plain(self.question), classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error", compact=True)
                yield Button("No (esc)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ChoiceDialog(ModalScreen[str | None]):
    """A question with a few answers, each a button and a key; escape answers None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str, str]]) -> None:
        """``choices``: (answer, key, label) for each button, the first focused."""
        super().__init__(classes="dialog")
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Static(plain(self.question), classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                for answer, key, label in self.choices:
                    yield Button(f"{label} ({key})", id=f"choice-{answer}", compact=True)

    def on_mount(self) -> None:
        self.query_one(Button).focus()

    def on_key(self, event: events.Key) -> None:
        for answer, key, _label in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss((event.button.id or "").removeprefix("choice-"))


class NameDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, value: str = "", hint: str = "") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.value = value
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(self.question, classes="dialog-title")
            yield Field(self.value, compact=True, id="name")
            yield Label(plain(f"{self.hint} Enter saves, escape cancels.".strip()), classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class ExportDialog(ModalScreen[tuple[str, str] | None]):
    """Asks for a format and a path; returns (path, format) or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, run_id: str, directory: Path | None = None) -> None:
        super().__init__(classes="dialog")
        self.run_id = run_id
        self.directory = directory or Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(plain(f"Export run {self.run_id}", one_line=True), classes="dialog-title")
            with Horizontal(classes="form-row"):
                yield Label("Format", classes="form-label")
                yield Select([(f, f) for f in FORMATS], value="jsonl", allow_blank=False, compact=True, id="format")
            with Horizontal(classes="form-row"):
                yield Label("File", classes="form-label")
                yield Field(str(self.directory / f"{self.run_id}.jsonl"), compact=True, id="path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", id="export", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_select_changed(self, event: Select.Changed) -> None:
        path = self.query_one("#path", Input)
        current = Path(path.value)
        if current.suffix.lstrip(".") in FORMATS:
            path.value = str(current.with_suffix(f".{event.value}"))

    def on_input_submitted(self) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if not path:
            self.notify("Give a file name.", severity="error")
            return
        self.dismiss((path, str(self.query_one("#format", Select).value)))


class TextDialog(ModalScreen[None]):
    """Shows untrusted text as text: no markup, no terminal control sequences."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, title: str, body: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="wide"):
            yield Static(plain(self.title_text, one_line=True), classes="dialog-title")
            with VerticalScroll(id="text-body"):
                yield Static(plain(self.body))
            yield Label("Escape closes.", classes="dialog-hint")


class RejectedScreen(ModalScreen[None]):
    """Rejected records of the current run; Enter opens one's raw output."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, rejections: list[RecordRejected]) -> None:
        super().__init__(classes="dialog")
        self.rejections = rejections

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="wide"):
            yield Label(f"{len(self.rejections)} rejected answers (Enter shows the raw output)", classes="dialog-title")
            table: DataTable = DataTable(cursor_type="row", id="rejected")
            table.add_columns("Kind", "Reason")
            for r in self.rejections:
                table.add_row("duplicate" if r.duplicate else "invalid", plain(r.reason[:120], one_line=True))
            yield table

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        rejection = self.rejections[event.cursor_row]
        self.app.push_screen(TextDialog(f"Rejected: {rejection.reason[:100]}", rejection.raw))
