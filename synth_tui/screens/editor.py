"""Schema editor: JSON with highlighting, live validation, templates, run parameters."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    Label,
    Select,
    Static,
    TextArea,
)

from ..core.backends import BackendSpec, GenerationParams
from ..core.engine import RunConfig
from ..core.errors import SchemaError, UserInputError
from ..core.schema import RecordSchema, parse_schema
from ..core.templates import (
    delete_template,
    is_builtin,
    save_template,
    template_names,
    template_text,
)
from ..messages import CompareRequested, GenerateRequested, JobSpec, context
from ..textsafe import plain
from .fields import Field, SchemaArea

BACKEND_CHOICES = [("local (offline)", "local"), ("OpenAI-compatible", "openai"), ("Hugging Face", "hf"),
                   ("Ollama", "ollama")]
DEFAULT_TEMPLATE = "customers"


class SchemaStatus(Static):
    """One or two lines under the editor: valid, warnings, or the error and where."""


class EditorScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+g,f9", "generate", "Generate", priority=True, id="editor.generate"),
        Binding("ctrl+t", "convert", "To JSON Schema", priority=True, id="editor.convert"),
        Binding("ctrl+o", "focus_form", "Parameters", priority=True, id="editor.focus-form"),
        Binding("ctrl+k", "compare", "Compare", priority=True, id="editor.compare"),
        Binding("ctrl+s", "save_template", "Save template", priority=True, id="editor.save-template"),
        Binding("ctrl+e", "focus_editor", "Edit schema", show=False, priority=True, id="editor.focus-editor"),
    ]
    PALETTE = [
        ("generate", "Generate", "Start a run with this schema and these parameters (ctrl+g)"),
        ("convert", "Convert to JSON Schema", "Expand the short form in place (ctrl+t)"),
        ("compare", "Compare models", "Run this schema on the chosen model and those under Compare (ctrl+k)"),
        ("save_template", "Save as template", "Keep this schema as one of your templates (ctrl+s)"),
        ("delete_template", "Delete template", "Delete the chosen template of yours"),
    ]

    def __init__(self) -> None:
        super().__init__(id="editor")
        self.checked: RecordSchema | None = None
        self.checked_text: str | None = None  # the text the line under the editor speaks of
        self._pending_check: Any = None
        self._model_override: str | None = None
        self._keep_text = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="editor-body"):
            with Vertical(id="editor-pane"):
                editor = SchemaArea.code_editor(template_text(DEFAULT_TEMPLATE), language="json", id="schema-editor")
                yield editor
                yield SchemaStatus(id="schema-status")
            with VerticalScroll(id="form"):
                yield from self._row("Template", Select(template_options(), value=DEFAULT_TEMPLATE,
                                                        allow_blank=False, compact=True, id="template"))
                settings = context(self).settings
                yield from self._row("Backend", Select(BACKEND_CHOICES, value=settings.backend, allow_blank=False,
                                                       compact=True, id="backend"))
                model = settings.for_backend(settings.backend).model or ""
                yield from self._row("Model", self._input(model, "model"))
                yield from self._row("Count", self._input("20", "count", "integer"))
                yield from self._row("Per request", self._input("", "batch", "integer", "auto"))
                yield from self._row("Concurrency", self._input(str(settings.concurrency), "concurrency", "integer"))
                yield from self._row("Temperature", self._input("", "temperature", "number", "default"))
                yield from self._row("Seed", self._input("", "seed", "integer", "random"))
                yield from self._row("Compare", self._input("", "compare-models", placeholder="ollama:llama3.2, ..."))
                yield Button("Generate  ctrl+g", id="generate", variant="primary", compact=True)
        yield Footer()

    def _input(self, value: str, ident: str, kind: str = "text", placeholder: str = "") -> Input:
        return Field(value, placeholder=placeholder, type=kind, compact=True, id=ident,  # type: ignore[arg-type]
                     select_on_focus=False)

    @staticmethod
    def _row(label: str, widget: Any) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label, classes="form-label")
            yield widget

    def on_mount(self) -> None:
        self.check_now()
        self.query_one("#schema-editor", TextArea).focus()

    # -- validation ------------------------------------------------------------------------
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._pending_check is not None:
            self._pending_check.stop()
        self._pending_check = self.set_timer(0.25, self.check_now)

    def check_now(self) -> RecordSchema | None:
        self._pending_check = None
        status = self.query_one(SchemaStatus)
        text = self.checked_text = self.query_one("#schema-editor", TextArea).text
        try:
            self.checked = parse_schema(text, "schema")
        except SchemaError as exc:
            self.checked = None
            status.set_classes("error")
            status.update(plain(f"✗ {_describe_where(exc.where)}: {exc.detail}"))
            return None
        fields = len(self.checked.field_names())
        form = "short form" if self.checked.short_form else "JSON Schema"
        lines = [f"✓ valid {form}, {fields} fields"]
        lines += [f"! {w}" for w in self.checked.warnings[:2]]
        status.set_classes("warning" if self.checked.warnings else "ok")
        status.update(plain("\n".join(lines)))
        return self.checked

    # -- form ------------------------------------------------------------------------------
    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "template" and event.value is not Select.BLANK:
            if self._keep_text:
                self._keep_text = False
                return
            try:
                text = template_text(str(event.value))
            except UserInputError as exc:
                self.notify(str(exc), severity="error")
                return
            self.query_one("#schema-editor", TextArea).load_text(text)
            self.check_now()
        elif event.select.id == "backend" and event.value is not Select.BLANK:
            conf = context(self).settings.for_backend(str(event.value))
            model, self._model_override = self._model_override, None
            self.query_one("#model", Input).value = model if model is not None else conf.model or ""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "generate":
            self.action_generate()

    def action_focus_form(self) -> None:
        self.query_one("#template", Select).focus()

    def action_focus_editor(self) -> None:
        self.query_one("#schema-editor", TextArea).focus()

    def action_convert(self) -> None:
        schema = self.check_now()
        if schema is None:
            self.notify("Fix the schema first: see the line under the editor.", severity="error")
            return
        self.query_one("#schema-editor", TextArea).load_text(schema.pretty())
        self.check_now()

    def action_generate(self) -> None:
        job = self._checked_job()
        if job is not None:
            self.post_message(GenerateRequested(job))

    def action_compare(self) -> None:
        from ..core.compare import parse_model_spec

        job = self._checked_job()
        if job is None:
            return
        raw = self.query_one("#compare-models", Input).value
        try:
            others = [parse_model_spec(m.strip(), default_kind=job.backend.kind) for m in raw.split(",") if m.strip()]
        except UserInputError as exc:
            self.notify(str(exc), title="Compare", severity="error")
            return
        if not others:
            self.notify("Name the models to compare with under Compare, e.g. ollama:llama3.2", title="Compare")
            self.query_one("#compare-models", Input).focus()
            return
        self.post_message(CompareRequested(job, [job.backend, *others]))

    def _checked_job(self) -> JobSpec | None:
        schema = self.check_now()
        if schema is None:
            self.notify("The schema has an error: see the line under the editor.", severity="error")
            return None
        try:
            return self._job(schema)
        except UserInputError as exc:
            self.notify(str(exc), title="Check the parameters", severity="error")
            return None

    def action_save_template(self) -> None:
        from .dialogs import NameDialog

        if self.check_now() is None:
            self.notify("Fix the schema before saving it as a template.", severity="error")
            return

        def done(name: str | None) -> None:
            if not name:
                return
            try:
                path = save_template(name, self.query_one("#schema-editor", TextArea).text, force=True)
            except UserInputError as exc:
                self.notify(str(exc), title="Template not saved", severity="error")
                return
            self._refresh_templates(name)
            self.notify(f"Saved to {path}", title=f"Template {name}")

        self.app.push_screen(NameDialog("Save this schema as a template named:"), done)

    def action_delete_template(self) -> None:
        from .dialogs import ConfirmDialog

        name = str(self.query_one("#template", Select).value)
        if is_builtin(name):
            self.notify(f"{name} is a built-in template; only your own can be deleted.")
            return

        def done(yes: bool | None) -> None:
            if yes:
                try:
                    delete_template(name)
                except UserInputError as exc:
                    self.notify(str(exc), severity="error")
                    return
                self._refresh_templates(DEFAULT_TEMPLATE, load=False)
                self.notify(f"Deleted template {name}.")

        self.app.push_screen(ConfirmDialog(f"Delete your template {name}?"), done)

    def _refresh_templates(self, selected: str, load: bool = False) -> None:
        select = self.query_one("#template", Select)
        self._keep_text = not load  # choosing the saved template must not reload the editor
        select.set_options(template_options())
        select.value = selected

    def _job(self, schema: RecordSchema) -> JobSpec:
        def number(ident: str, kind: type, required: bool = False) -> Any:
            raw = self.query_one(f"#{ident}", Input).value.strip()
            if not raw:
                if required:
                    raise UserInputError(f"{_LABELS[ident]} is required")
                return None
            try:
                return kind(raw)
            except ValueError:
                raise UserInputError(f"{_LABELS[ident]} must be a number, not {raw!r}") from None

        config = RunConfig(
            count=number("count", int, True),
            batch_size=number("batch", int),
            concurrency=number("concurrency", int) or 4,
            params=GenerationParams(temperature=number("temperature", float), seed=number("seed", int)),
        )
        config.check()
        backend = BackendSpec(kind=str(self.query_one("#backend", Select).value),
                              model=self.query_one("#model", Input).value.strip() or None)
        return JobSpec(schema=schema, config=config, backend=backend)

    def load(self, schema: dict[str, Any], config: dict[str, Any], backend: dict[str, Any]) -> None:
        """Fill the editor from a past run (history's re-run)."""
        self.query_one("#schema-editor", TextArea).load_text(json.dumps(schema, indent=2, ensure_ascii=False))
        params = config.get("params", {})
        values = {
            "count": config.get("count"), "batch": config.get("batch_size"),
            "concurrency": config.get("concurrency"), "temperature": params.get("temperature"),
            "seed": params.get("seed"), "model": backend.get("model"),
        }
        for ident, value in values.items():
            self.query_one(f"#{ident}", Input).value = "" if value is None else str(value)
        select = self.query_one("#backend", Select)
        if backend.get("backend") and backend["backend"] != select.value:
            self._model_override = backend.get("model") or ""  # applied when the change lands
            select.value = backend["backend"]
        self.check_now()


def template_options() -> list[tuple[str, str]]:
    return [(name if is_builtin(name) else f"{name} (yours)", name) for name in template_names()]


_LABELS = {"count": "Count", "batch": "Per request", "concurrency": "Concurrency", "temperature": "Temperature",
           "seed": "Seed"}


def _describe_where(where: str) -> str:
    """'schema:3:5' -> 'line 3, column 5'; 'schema $.properties.a' -> '$.properties.a'."""
    if where.startswith("schema:"):
        parts = where.split(":")
        if len(parts) == 3:
            return f"line {parts[1]}, column {parts[2]}"
    return where.removeprefix("schema").strip() or "schema"
