"""Modal screens: help, confirm, export, a text viewer, rejected output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Size
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from ..core.errors import SynthError, UserInputError
from ..core.events import RecordRejected
from ..core.export import FORMATS
from ..core.textsafe import clean_line, plain
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


Exporter = Callable[[Path, str, bool], int]  # (path, format, overwrite) -> records written


class ExportDialog(ModalScreen[tuple[Path, str, int] | None]):
    """Asks for a format and a file, and exports there itself: a file that exists or a
    missing folder is a question in the dialog, an error stays in it with the typed path.
    Returns (path, format, records written), or None when cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, run_id: str, export: Exporter, directory: Path | None = None, fmt: str = "jsonl") -> None:
        super().__init__(classes="dialog")
        self.run_id = run_id
        self.export = export
        self.directory = directory or Path.cwd()
        self.fmt = fmt if fmt in FORMATS else "jsonl"
        self._confirmed: tuple[str, Path] | None = None  # ("overwrite" | "create", path) the user agreed to

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Label(plain(f"Export run {self.run_id}", one_line=True), classes="dialog-title")
            with Horizontal(classes="form-row"):
                yield Label("Format", classes="form-label")
                yield Select([(f, f) for f in FORMATS], value=self.fmt, allow_blank=False, compact=True, id="format")
            with Horizontal(classes="form-row"):
                yield Label("File", classes="form-label")
                yield Field(str(self.directory / f"{self.run_id}.{self.fmt}"), compact=True, id="path")
            yield Static("", id="export-problem", classes="dialog-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", id="export", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

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
        self.query_one("#export", Button).disabled = True
        self._run_export(path, str(self.query_one("#format", Select).value), self._confirmed is not None)

    @work(thread=True, exclusive=True, exit_on_error=False, name="export")
    def _run_export(self, path: Path, fmt: str, agreed: bool) -> tuple[Path, str, int]:
        if agreed and not path.parent.exists():
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
