"""The editor's parameters: template, backend, model, base URL, count and the rest.

A widget of its own: it composes the fields, keeps the backend's fields in step (the
model and base URL of the chosen backend), turns what was typed into a run's config and
backend, and fills itself from a past run.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from ..core.backends import KINDS, BackendSpec, GenerationParams, kind_of
from ..core.engine import RunConfig
from ..core.errors import UserInputError
from ..core.templates import is_builtin, template_names
from ..messages import context
from .fields import Field

BACKEND_CHOICES = [(kind.label, kind.name) for kind in KINDS.values()]
LABELS = {"count": "Count", "batch": "Per request", "concurrency": "Concurrency", "temperature": "Temperature",
          "seed": "Seed"}


def template_options() -> list[tuple[str, str]]:
    return [(name if is_builtin(name) else f"{name} (yours)", name) for name in template_names()]


def _input(value: str, ident: str, kind: str = "text", placeholder: str = "") -> Input:
    """A field whose value is selected on focus, so what is typed replaces it."""
    return Field(value, placeholder=placeholder, type=kind, compact=True, id=ident)  # type: ignore[arg-type]  # kind: one of Input's type names


def _row(label: str, widget: Any, ident: str | None = None) -> ComposeResult:
    with Horizontal(classes="form-row", id=ident):
        yield Label(label, classes="form-label")
        yield widget


class RunForm(VerticalScroll):
    def __init__(self, template: str) -> None:
        super().__init__(id="form")
        self.template = template
        self.key_env: str | None = None  # a re-run's key variable, while its backend is chosen

    def compose(self) -> ComposeResult:
        settings = context(self).settings
        yield Static("Parameters (ctrl+o). Back to the schema: ctrl+e.", classes="hint", id="form-hint")
        yield from _row("Template", Select(template_options(), value=self.template, prompt="(your schema)",
                                           compact=True, id="template"))
        yield from _row("Backend", Select(BACKEND_CHOICES, value=settings.backend, allow_blank=False,
                                          compact=True, id="backend"))
        yield from _row("Model", _input(settings.for_backend(settings.backend).model or "", "model"))
        yield from _row("Base URL", _input("", "base-url"), ident="base-url-row")
        yield from _row("Count", _input("20", "count", "integer"))
        yield from _row("Per request", _input("", "batch", "integer", "auto"))
        yield from _row("Concurrency", _input(str(settings.concurrency), "concurrency", "integer"))
        yield from _row("Temperature", _input("", "temperature", "number", "default"))
        yield from _row("Seed", _input("", "seed", "integer", "random"))
        yield from _row("Compare", _input("", "compare-models", placeholder="backend:model, ..."))
        yield Button("Generate  ctrl+g", id="generate", variant="primary", compact=True)

    def on_mount(self) -> None:
        self._show_endpoint(self.backend_kind)

    @property
    def backend_kind(self) -> str:
        return str(self.query_one("#backend", Select).value)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "backend" and not event.select.is_blank():
            kind = str(event.value)
            self.query_one("#model", Input).value = context(self).settings.for_backend(kind).model or ""
            self.query_one("#base-url", Input).value = ""
            self.key_env = None
            self._show_endpoint(kind)

    def _show_endpoint(self, kind: str) -> None:
        """The base URL row, for the backends that have one; blank means the settings' URL."""
        conf = context(self).settings.for_backend(kind)
        self.query_one("#base-url-row").display = kind_of(kind).takes_base_url
        self.query_one("#base-url", Input).placeholder = conf.base_url or "(default)"

    def _value(self, ident: str) -> str:
        return self.query_one(f"#{ident}", Input).value.strip()

    def _number(self, ident: str, kind: type, required: bool = False) -> Any:
        raw = self._value(ident)
        if not raw:
            if required:
                raise UserInputError(f"{LABELS[ident]} is required")
            return None
        try:
            return kind(raw)
        except ValueError:
            raise UserInputError(f"{LABELS[ident]} must be a number, not {raw!r}") from None

    def run_config(self) -> RunConfig:
        """The run's parameters as typed; UserInputError says which one is wrong."""
        config = RunConfig(
            count=self._number("count", int, True),
            batch_size=self._number("batch", int),
            concurrency=self._number("concurrency", int) or 4,
            params=GenerationParams(temperature=self._number("temperature", float), seed=self._number("seed", int)),
        )
        config.check()
        return config

    def backend(self) -> BackendSpec:
        return BackendSpec(kind=self.backend_kind, model=self._value("model") or None,
                           base_url=self._value("base-url") or None, api_key_env=self.key_env)

    def compare_with(self) -> str:
        return self.query_one("#compare-models", Input).value

    def fill(self, config: dict[str, Any], backend: dict[str, Any]) -> None:
        """A past run's parameters and backend, its base URL and key variable included."""
        params = config.get("params", {})
        values = {
            "count": config.get("count"), "batch": config.get("batch_size"),
            "concurrency": config.get("concurrency"), "temperature": params.get("temperature"),
            "seed": params.get("seed"), "model": backend.get("model"), "base-url": backend.get("base_url"),
        }
        kind = backend.get("backend")
        if kind in KINDS:
            with self.prevent(Select.Changed):
                self.query_one("#backend", Select).value = kind
            self._show_endpoint(kind)
        for ident, value in values.items():
            self.query_one(f"#{ident}", Input).value = "" if value is None else str(value)
        self.key_env = backend.get("api_key_env") if isinstance(backend.get("api_key_env"), str) else None
