"""Settings: backends, base URLs, default models, keys (masked), test connection."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from ..core.backends import KINDS, BackendSpec, check_base_url
from ..core.config import Secret
from ..core.errors import UserInputError
from ..core.textsafe import plain
from ..messages import ConnectionTestRequested, context
from .fields import Field
from .run_form import BACKEND_CHOICES


class SettingsScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True, id="settings.save"),
        Binding("ctrl+t", "test_connection", "Test connection", priority=True, id="settings.test-connection"),
    ]
    PALETTE = [
        ("save", "Save settings", "Write the settings file, mode 0600 (ctrl+s)"),
        ("test_connection", "Test connection",
         "Send one tiny request to the backend whose fields have the cursor (ctrl+t)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="settings")
        self._saved: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        settings = context(self).settings
        yield Header()
        with VerticalScroll(id="settings-body"):
            yield Static("Keys come from the environment variable named here, or from the key field "
                         "(kept in the settings file, mode 0600). They are never written to the history.",
                         classes="hint")
            with Horizontal(classes="form-row"):
                yield Label("Default", classes="form-label")
                yield Select(BACKEND_CHOICES, value=settings.backend, allow_blank=False, compact=True,
                             id="default-backend")
            yield from self._data_dir_row()
            with Horizontal(classes="form-row"):
                yield Label("Confirm USD", classes="form-label")
                threshold = settings.confirm_cost_over
                yield Field("" if threshold is None else f"{threshold:g}", type="number", compact=True,
                            id="confirm-cost-over", placeholder="never: Generate asks no question")
            yield Static("Generate runs a pilot first and asks when the estimated cost is over this (F6 "
                         "in the editor estimates any run).", classes="hint")
            for kind, conf in settings.backends.items():
                yield Label(f"{kind}  (ctrl+t in these fields tests it)", classes="section-title")
                for field, value, password in (
                    ("base_url", ", ".join(conf.endpoint_urls()), False),
                    ("model", conf.model, False),
                    ("api_key_env", conf.api_key_env, False),
                    ("api_key", conf.api_key.get() if conf.api_key else "", True),
                ):
                    if field == "base_url" and not KINDS[kind].takes_base_url:
                        continue
                    if field.startswith("api_key") and not KINDS[kind].takes_key:
                        continue
                    with Horizontal(classes="form-row"):
                        yield Label(_LABELS[field], classes="form-label")
                        yield Field(value or "", password=password, compact=True, id=f"{kind}-{field}",
                                    placeholder="(not set)" if password else "")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save  ctrl+s", id="save", variant="primary", compact=True)
                yield Button("Test connection  ctrl+t", id="test", compact=True)
            yield Static(plain(f"Settings file: {settings.path}"), classes="hint", id="settings-path")
        yield Footer()

    def _data_dir_row(self) -> ComposeResult:
        """The data directory in use; read-only when the environment or a flag chose it."""
        settings = context(self).settings
        in_use = str(context(self).data_dir)
        overridden = settings.overridden_by("data_dir")
        with Horizontal(classes="form-row"):
            yield Label("Data dir", classes="form-label")
            yield Field(in_use if overridden else settings.data_dir or "", placeholder=in_use, compact=True,
                        id="data-dir", disabled=bool(overridden))
        note = (f"Set by {overridden} for this session; settings do not change it." if overridden
                else "Blank: the default. A change applies from the next start.")
        yield Static(plain(note), classes="hint", id="data-dir-note")

    def on_mount(self) -> None:
        self.query_one("#default-backend", Select).focus()
        self._saved = self._field_values()

    def _field_values(self) -> dict[str, object]:
        fields: list[Input | Select[str]] = [*self.query(Input), *self.query(Select)]
        return {str(w.id): w.value for w in fields if w.id}

    @property
    def unsaved(self) -> bool:
        """Fields changed on this screen since it opened or was saved."""
        return self.is_mounted and self._field_values() != self._saved

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "test":
            self.action_test_connection()

    def _apply(self) -> None:
        settings = context(self).settings
        settings.backend = str(self.query_one("#default-backend", Select).value)
        data_dir = self.query_one("#data-dir", Input)
        if not data_dir.disabled:
            settings.data_dir = data_dir.value.strip() or None
        settings.confirm_cost_over = self._threshold()
        for kind, conf in settings.backends.items():
            for field in ("base_url", "model", "api_key_env", "api_key"):
                matches = self.query(f"#{kind}-{field}")
                if not matches:
                    continue
                value = matches.first(Input).value.strip() or None
                if field == "base_url":  # several servers: comma-separated
                    conf.set_base_urls([url.strip() for url in (value or "").split(",") if url.strip()])
                elif field == "api_key":
                    conf.api_key = Secret(value) if value else None
                else:
                    setattr(conf, field, value)

    def _threshold(self) -> float | None:
        """The confirmation threshold typed: a positive USD amount, else none (said so)."""
        raw = self.query_one("#confirm-cost-over", Input).value.strip()
        try:
            value = float(raw) if raw else None
        except ValueError:
            value = None
        if value is not None and not 0 < value < float("inf"):
            self.notify(f"Confirm USD must be above 0, not {raw}: left unset.", severity="warning")
            return None
        return value

    def action_save(self) -> bool:
        problem = self._bad_base_url()
        if problem:
            self.notify(problem, title="Not saved", severity="error")
            return False
        self._apply()
        try:
            path = context(self).settings.save()
        except OSError as exc:
            self.notify(f"cannot write settings: {exc.strerror or exc}", severity="error")
            return False
        self._saved = self._field_values()
        self.notify(f"Saved to {path}", title="Settings")
        return True

    def action_test_connection(self) -> None:
        self._apply()
        kind = self._section_in_focus() or str(self.query_one("#default-backend", Select).value)
        self.notify(f"Sending one tiny request to {kind}...", title="Test connection")
        self.post_message(ConnectionTestRequested(BackendSpec(kind=kind)))

    def _bad_base_url(self) -> str:
        """What is wrong with a base URL typed, naming its backend; "" when none is."""
        for kind in context(self).settings.backends:
            for field in self.query(f"#{kind}-base_url").results(Input):
                for url in (u.strip() for u in field.value.split(",") if u.strip()):
                    try:
                        check_base_url(url)
                    except UserInputError as exc:
                        return f"{KINDS[kind].label} {_LABELS['base_url']}: {exc}" if kind in KINDS else str(exc)
        return ""
    def _section_in_focus(self) -> str | None:
        """The backend whose field has the cursor: its fields are named '<kind>-<field>'."""
        focused = self.app.focused
        ident = focused.id if focused is not None and focused.screen is self else None
        kind = (ident or "").split("-", 1)[0]
        return kind if kind in context(self).settings.backends else None


_LABELS = {"base_url": "Base URLs", "model": "Model", "api_key_env": "Key env var", "api_key": "API key"}
