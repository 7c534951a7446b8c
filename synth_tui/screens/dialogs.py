"""Modal screens: help, confirm, export, a text viewer, rejected output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Size
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from ..core.errors import SynthError
from ..core.events import RecordRejected
from ..core.export import FORMATS
from ..core.textsafe import clean_line, plain
from .export_dialog import ExportDialogBase, Exporter
from .fields import Field
from .tables import Table


class HelpScreen(ModalScreen[None]):
    """The keys of the screen underneath, and the global ones."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, under: Screen) -> None:
        super().__init__(classes="dialog")
        self.under = under

    def compose(self) -> ComposeResult:
        rows = [(", ".join(keys), description) for description, keys in self._keys().items()]
        title = (self.under.id or "screen").capitalize()
        with Vertical(id="dialog-box", classes="help"):
            yield Label(plain(f"{title}: keys"), classes="dialog-title")
            table: DataTable = Table(cursor_type="row", id="help-keys")
            table.add_columns("Key", "Action")
            # key names can come from the settings file's keymap: never markup
            table.add_rows([[escape(clean_line(key)), action] for key, action in rows])
            yield table
            yield Label("Arrows or PgUp/PgDn scroll; escape closes.", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#help-keys", DataTable).focus()  # so the arrows scroll a long list

    def _keys(self) -> dict[str, list[str]]:
        """Description -> keys, as they are now (keymap changes included): the screen's and
        the app's bindings, even where a focused widget's binding shadows one (Enter on the
        history's table opens the report), and the editing keys of the focused widget."""
        keys: dict[str, list[str]] = {}
        for node, bindings in self.under._binding_chain:
            own = node in (self.under, self.app)
            for key, key_bindings in bindings.key_to_bindings.items():
                for binding in key_bindings:
                    if binding.description and (own or binding.action in EDITING_ACTIONS):
                        shown = keys.setdefault(binding.description, [])
                        display = self.app.get_key_display(Binding(key, ""))
                        if display not in shown:
                            shown.append(display)
        return keys


# the focused widget's keys worth listing in the help (a text field has dozens)
EDITING_ACTIONS = frozenset({"select_all", "undo", "redo", "copy", "cut", "paste", "delete_line"})


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
    """Asks for a name and hands it to ``accept``; what ``accept`` refuses (a SynthError)
    is said in the dialog, which stays open with the typed name. Returns the name."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, question: str, accept: Callable[[str], object], value: str = "", hint: str = "") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.accept = accept
        self.value = value
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Static(plain(self.question), classes="dialog-title")
            yield Field(self.value, compact=True, id="name")
            yield Static(plain(self.hint), classes="dialog-hint", id="name-hint")
            yield Static("", classes="dialog-hint", id="name-problem")
            yield Label("Enter saves, escape cancels.", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def on_input_changed(self) -> None:
        self.query_one("#name-problem", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if not name:
            return
        try:
            self.accept(name)
        except SynthError as exc:
            self.query_one("#name-problem", Static).update(plain(exc.remedy("tui")))
            return
        self.dismiss(name)


class ExportDialog(ExportDialogBase):
    """Asks for a format and a file, and exports there itself: a file that exists or a
    missing folder is a question in the dialog, an error stays in it with the typed path.
    Returns (path, format, records written), or None when cancelled."""

    def __init__(self, run_id: str, export: Exporter, directory: Path | None = None, fmt: str = "jsonl") -> None:
        super().__init__(run_id, export, directory or Path.cwd(), fmt if fmt in FORMATS else "jsonl")

    def title_text(self) -> str:
        return f"Export run {self.run_id}"

    def format_choices(self) -> list[tuple[str, str]]:
        return [(f, f) for f in FORMATS]

    def default_path(self) -> Path:
        return self.directory / f"{self.run_id}.{self.fmt}"

    def on_select_changed(self, event: Select.Changed) -> None:
        path = self.query_one("#path", Input)
        current = Path(path.value)
        if current.suffix.lstrip(".") in FORMATS:
            path.value = str(current.with_suffix(f".{event.value}"))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._say("")
        suffix = Path(event.value.strip()).suffix.lower().lstrip(".")
        select = self.query_one("#format", Select)
        if suffix in FORMATS and suffix != select.value:  # the file name typed decides the format
            with self.prevent(Select.Changed):
                select.value = suffix

    def _submit(self) -> None:
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            self._say("Give a file name.")
            return
        path = Path(raw).expanduser()
        if path.is_dir():
            self._say(f"{path} is a folder: give a file name in it.")
            return
        if not path.parent.exists() and self._confirmed != ("create", path):
            self._say(f"The folder {path.parent} does not exist. Create it?", "Create and export")
            self._confirmed = ("create", path)
            return
        if path.is_file() and self._confirmed not in (("overwrite", path), ("create", path)):
            self._say(f"{path} exists. Overwrite it?", "Overwrite")
            self._confirmed = ("overwrite", path)
            return
        agreed = self._confirmed is not None
        self._start(path, str(self.query_one("#format", Select).value), agreed, make_folder=agreed)


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
                table.add_row(plain(r.kind, one_line=True), plain(r.reason[:120], one_line=True))
            yield table

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        rejection = self.rejections[event.cursor_row]
        self.app.push_screen(TextDialog(f"Rejected: {rejection.reason[:100]}", rejection.raw))


class TooSmallScreen(ModalScreen[None]):
    """Shown over everything while the terminal is smaller than the layouts need."""

    @staticmethod
    def follow(app: App[Any], size: Size | None, minimum: tuple[int, int]) -> None:
        """Show the notice while ``size`` (None: the app's) is below ``minimum``; take it
        away after. While the app is still starting, look again once it has drawn."""
        if not app.screen_stack or app.screen.id == "_default":
            app.call_after_refresh(TooSmallScreen.follow, app, size, minimum)
            return
        size = size or app.size
        small = size.width < minimum[0] or size.height < minimum[1]
        showing = isinstance(app.screen, TooSmallScreen)
        if small and not showing:
            app.push_screen(TooSmallScreen(minimum))
        elif not small and showing:
            app.pop_screen()

    def __init__(self, minimum: tuple[int, int]) -> None:
        super().__init__()
        self.minimum = minimum

    def compose(self) -> ComposeResult:
        yield Static("", id="too-small")

    def on_mount(self) -> None:
        self.on_resize()

    def on_resize(self) -> None:
        width, height = self.app.size
        self.query_one("#too-small", Static).update(plain(
            f"Make the terminal at least {self.minimum[0]}x{self.minimum[1]} (it is {width}x{height})."))
