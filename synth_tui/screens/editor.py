"""Schema editor: JSON with highlighting, live validation, templates, run parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    Select,
    Static,
    TextArea,
)

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
from ..core.textsafe import plain
from ..messages import CompareRequested, GenerateRequested, JobSpec
from .fields import SchemaArea
from .run_form import RunForm, template_options

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

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="editor-body"):
            with Vertical(id="editor-pane"):
                editor = SchemaArea.code_editor(template_text(DEFAULT_TEMPLATE), language="json", id="schema-editor")
                yield editor
                yield SchemaStatus(id="schema-status")
            yield RunForm(DEFAULT_TEMPLATE)
        yield Footer()

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
            self.notify(exc.remedy("tui"), severity="error")
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
                select.prompt = "(your schema)"  # the blank choice in the list, should it be picked
                select.value = name
            else:
                select.prompt = f"{name} (edited)" if name else "(your schema)"
                select.clear()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "generate":
            self.action_generate()

    # focus moves at once, not later (focus() would): keys typed right after ctrl+o go
    # to the field it moved to, not to the one it left
    def action_focus_form(self) -> None:
        self.app.set_focus(self.query_one("#template", Select))

    def action_focus_editor(self) -> None:
        self.app.set_focus(self.query_one("#schema-editor", TextArea))

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
        raw = self.query_one(RunForm).compare_with()
        try:
            others = [parse_model_spec(m.strip(), default_kind=job.backend.kind) for m in raw.split(",") if m.strip()]
        except UserInputError as exc:
            self.notify(exc.remedy("tui"), title="Compare", severity="error")
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
        form = self.query_one(RunForm)
        try:
            return JobSpec(schema=schema, config=form.run_config(), backend=form.backend())
        except UserInputError as exc:
            self.notify(exc.remedy("tui"), title="Check the parameters", severity="error")
            return None

    def action_save_template(self) -> None:
        from .dialogs import NameDialog

        if self.check_now() is None:
            self.notify("Fix the schema before saving it as a template.", severity="error")
            return
        text = self.query_one("#schema-editor", TextArea).text
        saved: list[Path] = []

        def save(name: str) -> None:  # a refusal is said in the dialog, which stays open
            saved.append(save_template(name, text, force=True))

        def done(name: str | None) -> None:
            if not name or not saved:
                return
            self.template_name = name
            self._loaded_text = text
            self._refresh_templates()
            self.notify(f"Saved to {saved[-1]}", title=f"Template {name}")

        self.app.push_screen(NameDialog("Save this schema as a template named:", save,
                                        hint=f"A name of {NAME_RULES}."), done)

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
                    self.notify(exc.remedy("tui"), severity="error")
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

    def load(self, schema: dict[str, Any], config: dict[str, Any], backend: dict[str, Any]) -> None:
        """Fill the editor from a past run (history's re-run): its schema, parameters and
        backend, the base URL and key variable included; the previous schema stays one
        ctrl+z away."""
        text = json.dumps(schema, indent=2, ensure_ascii=False)
        self._load_schema(text, next((n for n in template_names() if _same_schema(n, schema)), None))
        self.query_one(RunForm).fill(config, backend)


def _same_schema(name: str, schema: dict[str, Any]) -> bool:
    try:
        return json.loads(template_text(name)) == schema
    except (UserInputError, ValueError):
        return False


def _describe_where(where: str) -> str:
    """'schema:3:5' -> 'line 3, column 5'; 'schema $.properties.a' -> '$.properties.a'."""
    if where.startswith("schema:"):
        parts = where.split(":")
        if len(parts) == 3:
            return f"line {parts[1]}, column {parts[2]}"
    return where.removeprefix("schema").strip() or "schema"
