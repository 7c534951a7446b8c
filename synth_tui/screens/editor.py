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

from ..core.backends import KINDS, BackendSpec, GenerationParams, kind_of
from ..core.engine import RunConfig
from ..core.errors import SchemaError, UserInputError
from ..core.schema import RecordSchema, parse_schema
from ..core.templates import (
    NAME_RULES,
    delete_template,
    is_builtin,
    save_template,
    template_names,
    template_text,
)
from ..messages import CompareRequested, GenerateRequested, JobSpec, context
from ..core.textsafe import plain
from .fields import Field, SchemaArea

BACKEND_CHOICES = [(kind.label, kind.name) for kind in KINDS.values()]
DEFAULT_TEMPLATE = "customers"


class SchemaStatus(Static):
    """One or two lines under the editor: valid, warnings, or the error and where."""


class EditorScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+g,f9", "generate", "Generate", priority=True, id="editor.generate"),
        Binding("ctrl+o", "focus_form", "Parameters", priority=True, id="editor.focus-form"),
        Binding("ctrl+k", "compare", "Compare", priority=True, id="editor.compare"),
        Binding("ctrl+s", "save_template", "Save", priority=True, id="editor.save-template"),
        Binding("ctrl+t", "convert", "Expand to JSON Schema", show=False, priority=True, id="editor.convert"),
        Binding("ctrl+e", "focus_editor", "Back to the schema", show=False, priority=True, id="editor.focus-editor"),
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
        self._loaded_text: str | None = template_text(DEFAULT_TEMPLATE)
        self.template_name: str | None = DEFAULT_TEMPLATE  # the template the schema came from
        self._key_env: str | None = None  # a re-run's key variable, while its backend is chosen

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="editor-body"):
            with Vertical(id="editor-pane"):
                editor = SchemaArea.code_editor(template_text(DEFAULT_TEMPLATE), language="json", id="schema-editor")
                yield editor
                yield SchemaStatus(id="schema-status")
            with VerticalScroll(id="form"):
                yield Static("ctrl+o here · ctrl+e back to the schema · Tab next", classes="hint", id="form-hint")
                yield from self._row("Template", Select(template_options(), value=DEFAULT_TEMPLATE,
                                                        prompt="(your schema)", compact=True, id="template"))
                settings = context(self).settings
                yield from self._row("Backend", Select(BACKEND_CHOICES, value=settings.backend, allow_blank=False,
                                                       compact=True, id="backend"))
                model = settings.for_backend(settings.backend).model or ""
                yield from self._row("Model", self._input(model, "model"))
                yield from self._row("Base URL", self._input("", "base-url"), ident="base-url-row")
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
    def _row(label: str, widget: Any, ident: str | None = None) -> ComposeResult:
        with Horizontal(classes="form-row", id=ident):
            yield Label(label, classes="form-label")
            yield widget

    def on_mount(self) -> None:
        self.check_now()
        self._show_endpoint(str(self.query_one("#backend", Select).value))
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
        self._label_template(text)
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
        if event.select.id == "template" and not event.select.is_blank():
            self._choose_template(str(event.value))
        elif event.select.id == "backend" and not event.select.is_blank():
            kind = str(event.value)
            self.query_one("#model", Input).value = context(self).settings.for_backend(kind).model or ""
            self.query_one("#base-url", Input).value = ""
            self._key_env = None
            self._show_endpoint(kind)

    # -- templates -------------------------------------------------------------------------
    def _choose_template(self, name: str) -> None:
        """Load a template; when the schema holds edits of its own, ask first. Either way
        the replaced text stays one ctrl+z away."""
        area = self.query_one("#schema-editor", TextArea)
        if name == self.template_name and self._is_template_text(area.text):
            return
        try:
            text = template_text(name)
        except UserInputError as exc:
            self.notify(str(exc), severity="error")
            self._label_template(area.text)
            return
        if self._is_template_text(area.text):
            self._load_schema(text, name)
            return

        def answer(choice: str | None) -> None:
            if choice == "replace":
                self._load_schema(text, name)
            else:
                self._label_template(area.text)

        from .dialogs import ChoiceDialog

        self.app.push_screen(ChoiceDialog(
            f"The schema in the editor has changes of yours. Replace it with the template {name}? "
            "(ctrl+z in the editor brings it back.)",
            [("replace", "r", "Replace"), ("keep", "escape", "Keep my schema")]), answer)

    def _is_template_text(self, text: str) -> bool:
        """Is ``text`` what a template (or a past run) put in the editor, unchanged?"""
        return self._loaded_text is not None and text == self._loaded_text

    def _load_schema(self, text: str, template: str | None) -> None:
        area = self.query_one("#schema-editor", TextArea)
        area.replace(text, area.document.start, area.document.end)  # undoable, unlike load_text
        area.move_cursor(area.document.start)
        self.template_name = template
        self._loaded_text = text
        self.check_now()

    def _label_template(self, text: str) -> None:
        """The Template field names the template only while the editor holds it unchanged."""
        select = self.query_one("#template", Select)
        name = self.template_name
        with self.prevent(Select.Changed):
            if name is not None and text == self._loaded_text and name in dict(template_options()).values():
                select.value = name
            else:
                select.prompt = f"{name} (edited)" if name else "(your schema)"
                select.clear()

    # -- backend ----------------------------------------------------------------------------
    def _show_endpoint(self, kind: str) -> None:
        """The base URL row, for the backends that have one; blank means the settings' URL."""
        conf = context(self).settings.for_backend(kind)
        self.query_one("#base-url-row").display = kind_of(kind).takes_base_url
        self.query_one("#base-url", Input).placeholder = conf.base_url or "(default)"

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
            self.template_name = name
            self._loaded_text = self.query_one("#schema-editor", TextArea).text
            self._refresh_templates()
            self.notify(f"Saved to {path}", title=f"Template {name}")

        self.app.push_screen(NameDialog("Save this schema as a template named:", hint=f"A name of {NAME_RULES}."), done)

    def action_delete_template(self) -> None:
        from .dialogs import ConfirmDialog

        name = self.template_name
        if name is None:
            self.notify("Choose one of your templates first.")
            return
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
                if self.template_name == name:
                    self.template_name = None
                self._refresh_templates()
                self.notify(f"Deleted template {name}.")

        self.app.push_screen(ConfirmDialog(f"Delete your template {name}?"), done)

    def _refresh_templates(self) -> None:
        with self.prevent(Select.Changed):
            self.query_one("#template", Select).set_options(template_options())
        self._label_template(self.query_one("#schema-editor", TextArea).text)

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
                              model=self.query_one("#model", Input).value.strip() or None,
                              base_url=self.query_one("#base-url", Input).value.strip() or None,
                              api_key_env=self._key_env)
        return JobSpec(schema=schema, config=config, backend=backend)

    def load(self, schema: dict[str, Any], config: dict[str, Any], backend: dict[str, Any]) -> None:
        """Fill the editor from a past run (history's re-run): its schema, parameters and
        backend, the base URL and key variable included; the previous schema stays one
        ctrl+z away."""
        text = json.dumps(schema, indent=2, ensure_ascii=False)
        self._load_schema(text, next((n for n in template_names() if _same_schema(n, schema)), None))
        params = config.get("params", {})
        values = {
            "count": config.get("count"), "batch": config.get("batch_size"),
            "concurrency": config.get("concurrency"), "temperature": params.get("temperature"),
            "seed": params.get("seed"), "model": backend.get("model"), "base-url": backend.get("base_url"),
        }
        kind = backend.get("backend")
        if kind in dict((v, k) for k, v in BACKEND_CHOICES):
            with self.prevent(Select.Changed):
                self.query_one("#backend", Select).value = kind
            self._show_endpoint(kind)
        for ident, value in values.items():
            self.query_one(f"#{ident}", Input).value = "" if value is None else str(value)
        self._key_env = backend.get("api_key_env") if isinstance(backend.get("api_key_env"), str) else None


def _same_schema(name: str, schema: dict[str, Any]) -> bool:
    try:
        return json.loads(template_text(name)) == schema
    except (UserInputError, ValueError):
        return False


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
