"""The estimate panel: what a pilot measured and what the whole run would take (tokens,
cost with its range, time), and the choice to go on (the pilot's records are the start of
the run) or to stop at the pilot."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from ..core.textsafe import plain


class EstimatePanel(ModalScreen[bool]):
    """Answers True to go on to ``count`` records, False to stop at the pilot."""

    BINDINGS = [
        Binding("ctrl+g,f9", "dismiss(True)", "Go on", priority=True),
        Binding("escape", "dismiss(False)", "Stop at the pilot"),
    ]

    def __init__(self, projection_text: str, count: int, warning: str = "") -> None:
        super().__init__(classes="dialog", id="estimate")
        self.projection_text = projection_text
        self.count = count
        self.warning = warning  # why it asks: the estimate is over the confirmation threshold

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box", classes="estimate"):
            yield Label("Estimate", classes="dialog-title")
            if self.warning:
                yield Static(plain(self.warning), id="estimate-warning")
            yield Static(plain(self.projection_text), id="estimate-text")  # the pilot's id, a model's name
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"Go on to {self.count} records (ctrl+g)", id="go-on", variant="primary", compact=True)
                yield Button("Stop at the pilot (esc)", id="stop", compact=True)

    def on_mount(self) -> None:
        self.query_one("#go-on", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "go-on")
