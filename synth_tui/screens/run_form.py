"""The editor's parameters: template, backend, model, base URL, count, seed files and the rest.

A widget of its own: it composes the fields, keeps the backend's fields in step (the
model and base URL of the chosen backend), turns what was typed into a run's config and
backend, and fills itself from a past run.

Turning the fields into a config is two steps: ``read`` takes what was typed (on the UI
thread), ``FormValues.config`` checks the seed files and counts an enrich file's rows,
which for a file of a million rows takes seconds: the editor does that on a thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ..core.backends import KINDS, BackendSpec, GenerationParams, check_base_url, kind_of
from ..core.engine import RunConfig
from ..core.errors import SynthError, UserInputError
from ..core.pricing import price_for
from ..core.seeds import SeedFile
from ..core.templates import is_builtin, template_names
from ..messages import context
from .fields import Field

BACKEND_CHOICES = [(kind.label, kind.name) for kind in KINDS.values()]
LABELS = {"count": "Count", "batch": "Per request", "concurrency": "Concurrency", "temperature": "Temperature",
          "seed": "Seed", "examples-per-request": "Examples per request", "budget": "Budget"}
ENRICH_COUNT_HINT = "all rows of the file"
BIG_FILE = 5_000_000  # bytes: counting the rows of a larger file takes a while; say so
T = TypeVar("T")


def template_options() -> list[tuple[str, str]]:
    """Record schemas (built-in, then the user's), then the built-in datasets of tables."""
    from ..core.dataset.templates import dataset_names

    return [(name if is_builtin(name) else f"{name} (yours)", name) for name in template_names()] + \
        [(f"{name} (dataset)", name) for name in dataset_names() if name not in template_names()]


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
        yield from _row("Base URL", _input("", "base-url"), ident="base-url-row")  # several: comma-separated
        yield from _row("Count", _input("20", "count", "integer"))
        yield from _row("Per request", _input("", "batch", "integer", "auto"))
        yield from _row("Concurrency", _input(str(settings.concurrency), "concurrency", "integer"))
        yield from _row("Temperature", _input("", "temperature", "number", "default"))
        yield from _row("Seed", _input("", "seed", "integer", "random"))
        yield from _row("Budget USD", _input("", "budget", "number", "none: no cap"))
        yield from _row("Batch API", Checkbox("half price, 24 h", compact=True, id="batch-api"))
        yield from _row("Examples", _input("", "examples", placeholder="CSV, JSONL or JSON file"))
        yield from _row("Ex./request", _input("", "examples-per-request", "integer", "3"))
        yield from _row("Enrich", _input("", "enrich", placeholder="file: a record per row"))
        yield from _row("Compare", _input("", "compare-models", placeholder="backend:model, ..."))
        yield Button("Generate  ctrl+g", id="generate", variant="primary", compact=True)

    def on_mount(self) -> None:
        self._show_endpoint(self.backend_kind)

    @property
    def backend_kind(self) -> str:
        return str(self.query_one("#backend", Select).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "enrich":  # with an enrich file, a blank count means every row
            self.query_one("#count", Input).placeholder = ENRICH_COUNT_HINT if event.value.strip() else ""

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "backend" and not event.select.is_blank():
            kind = str(event.value)
            self.query_one("#model", Input).value = context(self).settings.for_backend(kind).model or ""
            self.query_one("#base-url", Input).value = ""
            self.key_env = None
            self._show_endpoint(kind)

    def show_settings(self) -> None:
        """The settings may have changed (the settings screen): the base URLs they hold."""
        self._show_endpoint(self.backend_kind)

    def _show_endpoint(self, kind: str) -> None:
        """The base URL row, for the backends that have one; blank means the settings' URL."""
        conf = context(self).settings.for_backend(kind)
        self.query_one("#base-url-row").display = kind_of(kind).takes_base_url
        self.query_one("#base-url", Input).placeholder = ", ".join(conf.endpoint_urls()) or "(default)"

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

    def read(self) -> FormValues:
        """What was typed, the numbers and addresses checked; UserInputError says which
        one is wrong."""
        settings = context(self).settings
        for url in self.base_urls():
            try:
                check_base_url(url)
            except UserInputError as exc:
                raise UserInputError(f"Base URL: {exc}") from None
        kind = self.backend_kind
        model = self._value("model") or settings.for_backend(kind).model
        price = price_for(settings.prices, kind, model)  # None: the run's cost is unknown
        return FormValues(
            count=self._number("count", int),
            batch_size=self._number("batch", int),
            concurrency=self._number("concurrency", int) or 4,
            params=GenerationParams(temperature=self._number("temperature", float), seed=self._number("seed", int)),
            examples=self._value("examples"),
            examples_per_request=self._number("examples-per-request", int) or 3,
            enrich=self._value("enrich"),
            price=(price.input, price.output) if price else None,
            budget=self._number("budget", float),
            batch_api=self.batch_api, kind=kind, endpoints=len(self.base_urls()),
        )

    def run_config(self) -> RunConfig:
        """The run's parameters as typed, the seed files checked; UserInputError says
        which one is wrong."""
        return self.read().config()

    def when_config_ready(self, done: Callable[[RunConfig], object]) -> None:
        """``done(config)`` on the UI thread, or a notice of the field that is wrong. With
        an enrich file, its rows are counted on a thread first."""
        try:
            values = self.read()
            if not values.enrich:
                done(values.config())
                return
        except UserInputError as exc:
            self._refuse(exc)
            return
        if _size(values.enrich) > BIG_FILE:
            self.notify(f"Counting the rows of {values.enrich}...", title="Enrich")
        self.run_worker(partial(self._config_with_rows, values, done), thread=True, exclusive=True,
                        group="count-rows", exit_on_error=False)

    def _config_with_rows(self, values: FormValues, done: Callable[[RunConfig], object]) -> None:
        """On a worker thread: the config, the enrich file's rows counted; then the UI's.
        A second Generate while counting replaces this one: it then does nothing."""
        try:
            config = values.config()
        except SynthError as exc:
            self.app.call_from_thread(self._refuse, exc)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(done, config)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "count-rows" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"Could not read the enrich file: {type(error).__name__}: {error}", severity="error")

    def _refuse(self, exc: SynthError) -> None:
        self.notify(exc.remedy("tui"), title="Check the parameters", severity="error")

    def seed_columns(self) -> list[str]:
        """The enrich file's columns (the fields every record keeps from its row); none
        while the field is blank or names no readable file: the run says why."""
        path = self._value("enrich")
        if not path:
            return []
        try:
            return SeedFile(_absolute(path)).columns()
        except UserInputError:
            return []

    @property
    def batch_api(self) -> bool:
        return self.query_one("#batch-api", Checkbox).value

    def base_urls(self) -> tuple[str, ...]:
        """The Base URL field's addresses: one, several (comma-separated), or none."""
        return tuple(url.strip() for url in self._value("base-url").split(",") if url.strip())

    def backend(self) -> BackendSpec:
        return BackendSpec(kind=self.backend_kind, model=self._value("model") or None,
                           base_urls=self.base_urls(), api_key_env=self.key_env)

    def compare_with(self) -> str:
        return self.query_one("#compare-models", Input).value

    def fill(self, config: dict[str, Any], backend: dict[str, Any]) -> None:
        """A past run's parameters and backend, its base URL and key variable included."""
        params = config.get("params", {})
        values = {
            "count": config.get("count"), "batch": config.get("batch_size"),
            "concurrency": config.get("concurrency"), "temperature": params.get("temperature"),
            "seed": params.get("seed"), "model": backend.get("model"), "base-url": _urls_text(backend),
            "examples": config.get("examples"), "examples-per-request": config.get("examples_per_request"),
            "enrich": config.get("enrich"), "budget": config.get("budget"),
        }
        kind = backend.get("backend")
        if kind in KINDS:
            with self.prevent(Select.Changed):
                self.query_one("#backend", Select).value = kind
            self._show_endpoint(kind)
        for ident, value in values.items():
            self.query_one(f"#{ident}", Input).value = "" if value is None else str(value)
        self.query_one("#batch-api", Checkbox).value = False
        self.key_env = backend.get("api_key_env") if isinstance(backend.get("api_key_env"), str) else None


@dataclass
class FormValues:
    """The form's fields, read; ``config()`` makes them a run's config."""

    count: int | None  # None: an enrich file's rows, or an error
    batch_size: int | None
    concurrency: int
    params: GenerationParams
    examples: str  # as typed; blank: none
    examples_per_request: int
    enrich: str
    price: tuple[float, float] | None = None  # the settings' price of the model; None: unknown
    budget: float | None = None  # USD
    batch_api: bool = False
    kind: str = ""  # the backend's
    endpoints: int = 0  # base URLs typed

    def config(self) -> RunConfig:
        """The run's config: the seed files checked and made absolute (a resume finds them
        from anywhere); with an enrich file, a record per row, up to Count. Reads the whole
        enrich file: slow for a big one. UserInputError says which field is wrong."""
        examples = _seed_file(self.examples, "Examples")
        enrich = _seed_file(self.enrich, "Enrich")
        count = self.count
        if enrich is not None:
            rows = _seed_call(lambda: SeedFile(enrich).count(), "Enrich")
            count = rows if count is None else min(count, rows)
        elif count is None:
            raise UserInputError("Count is required (or an Enrich file: a record per row)")
        config = RunConfig(count=count, batch_size=self.batch_size, concurrency=self.concurrency, params=self.params,
                           examples=examples, examples_per_request=self.examples_per_request, enrich=enrich,
                           price=self.price, budget=self.budget)
        config.check()
        self.check_batch_api()
        return config

    def check_batch_api(self) -> None:
        """The Batch API takes the openai backend at one server, no budget, no enrich file
        (as ``generate --batch-api`` does)."""
        if not self.batch_api:
            return
        if self.kind != "openai":
            raise UserInputError(f"the Batch API needs the openai backend, not {self.kind}: choose "
                                 "OpenAI-compatible as Backend, or untick Batch API")
        if self.endpoints > 1:
            raise UserInputError("the Batch API sends a run to one server: give one Base URL")
        if self.budget is not None:
            raise UserInputError("a budget does not hold back a batch yet (a batch is sent whole): clear Budget "
                                 "or untick Batch API")
        if self.enrich:
            raise UserInputError("the Batch API does not enrich input rows yet: clear Enrich or untick Batch API")


def _urls_text(backend: dict[str, Any]) -> str | None:
    """A past run's base URLs for the field: several comma-separated, or its one."""
    several = backend.get("base_urls")
    if isinstance(several, list) and all(isinstance(url, str) for url in several) and several:
        return ", ".join(several)
    one = backend.get("base_url")
    return one if isinstance(one, str) else None


def _size(path: str) -> int:
    try:
        return os.path.getsize(_absolute(path))
    except OSError:
        return 0


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _seed_file(path: str, label: str) -> str | None:
    """The seed file's absolute path, checked readable now; None for a blank field."""
    if not path:
        return None
    return _seed_call(lambda: str(SeedFile(_absolute(path)).path), label)


def _seed_call(read: Callable[[], T], label: str) -> T:
    """``read()``, its UserInputError naming the field whose file it reads."""
    try:
        return read()
    except UserInputError as exc:
        raise UserInputError(f"{label} file {exc.remedy('tui')}") from None
