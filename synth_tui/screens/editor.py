"""Schema editor: JSON with highlighting, live validation, each field's source, templates,
snippets, run parameters."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from textual import events
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

from ..core.dataset import Dataset
from ..core.errors import SchemaError, UserInputError
from ..core.schema import RecordSchema
from ..core.textsafe import plain
from ..messages import CompareRequested, EstimateRequested, GenerateRequested, JobSpec
from .dataset_tables import (
    NOT_FOR_DATASETS,
    DatasetTablesView,
    TableChosen,
    dataset_request,
    dataset_summary,
    parse_editor_text,
    show_table,
)
from .editor_templates import EditorTemplates, template_text
from .fields import SchemaArea
from .run_form import RunForm, template_options
from .snippets import SNIPPETS, Snippet, insert_member
from .sources import FieldChosen, FieldSources, show_field

DEFAULT_TEMPLATE = "customers"
SHORT = 32  # rows: a terminal shorter than this leaves the schema little room beside the sources table


class SchemaStatus(Static):
    """One or two lines under the editor: valid, warnings, or the error and where."""

    def show_valid(self, schema: RecordSchema, fields: str) -> None:
        form = "short form" if schema.short_form else "JSON Schema"
        lines = [f"✓ valid {form}, {fields}"]
        lines += [f"! {w}" for w in schema.warnings[:2]]
        self.set_classes("warning" if schema.warnings else "ok")
        self.update(plain("\n".join(lines)))

    def show_dataset(self, dataset: Dataset) -> None:
        self.set_classes("ok")
        self.update(plain(f"✓ valid dataset: {dataset_summary(dataset)}\n! {NOT_FOR_DATASETS}"))

    def show_error(self, exc: SchemaError) -> None:
        self.set_classes("error")
        self.update(plain(f"✗ {_describe_where(exc.where)}: {exc.detail}"))


class EditorScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+g,f9", "generate", "Generate", priority=True, id="editor.generate"),
        Binding("ctrl+o", "focus_form", "Parameters", priority=True, id="editor.focus-form"),
        Binding("ctrl+k", "compare", "Compare", priority=True, id="editor.compare"),
        Binding("f6", "estimate", "Estimate", show=False, priority=True, id="editor.estimate"),
        Binding("ctrl+s", "save_template", "Save", priority=True, id="editor.save-template"),
        Binding("ctrl+t", "convert", "Expand to JSON Schema", show=False, priority=True, id="editor.convert"),
        Binding("ctrl+e", "focus_editor", "Back to the schema", show=False, priority=True, id="editor.focus-editor"),
        Binding("ctrl+r", "focus_sources", "Field sources", show=False, priority=True, id="editor.focus-sources"),
    ]
    PALETTE = [
        ("generate", "Generate", "Start a run with this schema and these parameters (ctrl+g)"),
        ("estimate", "Estimate cost and time",
         "Run a pilot of a few records, project tokens, cost and time, then go on or stop (F6)"),
        ("convert", "Convert to JSON Schema", "Expand the short form in place (ctrl+t)"),
        ("compare", "Compare models", "Run this schema on the chosen model and those under Compare (ctrl+k)"),
        ("save_template", "Save as template", "Keep this schema as one of your templates (ctrl+s)"),
        ("delete_template", "Delete template", "Delete the chosen template of yours"),
        ("focus_sources", "Field sources", "Where each field comes from; Enter shows the field in the schema (ctrl+r)"),
        *((f"insert_{s.name}", s.title, s.help) for s in SNIPPETS),
    ]

    def __init__(self) -> None:
        super().__init__(id="editor")
        self.checked: RecordSchema | None = None
        self.dataset: Dataset | None = None  # the editor holds a dataset file of tables, checked
        self.checked_text: str | None = None  # the text the line under the editor speaks of
        self._pending_check: Any = None
        self.templates = EditorTemplates(self, DEFAULT_TEMPLATE)  # the template the schema came from

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="editor-body"):
            with Vertical(id="editor-pane"):
                editor = SchemaArea.code_editor(template_text(DEFAULT_TEMPLATE), language="json", id="schema-editor")
                yield editor
                yield SchemaStatus(id="schema-status")
                yield FieldSources()
                yield DatasetTablesView()
            yield RunForm(DEFAULT_TEMPLATE)
        yield Footer()

    def on_mount(self) -> None:
        self.check_now()
        self.query_one("#schema-editor", TextArea).focus()

    def on_screen_resume(self) -> None:
        self.query_one(RunForm).show_settings()  # the Base URL field's placeholder: the settings' URLs

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.height < SHORT, "short")  # the sources table then takes less room

    # -- validation ------------------------------------------------------------------------
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self._check_soon()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "enrich":  # its columns are fields the records keep
            self._check_soon()

    def _check_soon(self) -> None:
        if self._pending_check is not None:
            self._pending_check.stop()
        self._pending_check = self.set_timer(0.25, self.check_now)

    def check_now(self) -> RecordSchema | None:
        """Check the schema; the line under it and the sources table say what was found."""
        self._pending_check = None
        status = self.query_one(SchemaStatus)
        text = self.checked_text = self.query_one("#schema-editor", TextArea).text
        self.templates.label(text)
        try:
            parsed = parse_editor_text(text, "schema")
        except SchemaError as exc:
            self.checked = self.dataset = None
            status.show_error(exc)
            return None  # the table keeps the last valid schema's sources, for reference
        self.dataset = parsed if isinstance(parsed, Dataset) else None
        self.set_class(self.dataset is not None, "dataset")  # the tables in place of the field sources
        if isinstance(parsed, Dataset):
            self.checked = None
            self.query_one(DatasetTablesView).show(parsed)
            status.show_dataset(parsed)
            return None
        self.checked = parsed
        fields = self.query_one(FieldSources).show_schema(self.checked, text, self.query_one(RunForm).seed_columns())
        status.show_valid(self.checked, fields)
        return self.checked

    # -- sources and snippets --------------------------------------------------------------
    def action_focus_sources(self) -> None:
        if self.has_class("dataset"):
            self.app.set_focus(self.query_one(DatasetTablesView).table_list)
        else:
            self.app.set_focus(self.query_one(FieldSources))

    def on_text_area_selection_changed(self, event: TextArea.SelectionChanged) -> None:
        self.query_one(FieldSources).follow(event.selection.end)

    def on_field_chosen(self, event: FieldChosen) -> None:
        area = self.query_one("#schema-editor", TextArea)
        show_field(area, event.name, self.checked.short_form if self.checked else True)
        self.app.set_focus(area)

    def on_table_chosen(self, event: TableChosen) -> None:
        area = self.query_one("#schema-editor", TextArea)
        show_table(area, event.name)
        self.app.set_focus(area)

    # -- form ------------------------------------------------------------------------------
    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "template" and not event.select.is_blank():
            self.templates.choose(str(event.value))

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
        if self.dataset is not None:
            self.notify("A dataset's tables keep the form they are written in.", title="Convert")
            return
        if schema is None:
            self.notify("Fix the schema first: see the line under the editor.", severity="error")
            return
        self.query_one("#schema-editor", TextArea).load_text(schema.pretty())
        self.check_now()

    def action_generate(self) -> None:
        self.check_now()
        if self.dataset is not None:
            try:
                self.post_message(dataset_request(self.query_one(RunForm), self.dataset))
            except UserInputError as exc:
                self.notify(exc.remedy("tui"), title="Check the parameters", severity="error")
            return
        self._checked_job(lambda job: self.post_message(GenerateRequested(job)))

    def action_estimate(self) -> None:
        if self.dataset is not None:
            self.notify("An estimate runs a pilot of one record schema: a dataset's tables have none yet.",
                        title="Estimate", severity="warning")
            return
        self._checked_job(lambda job: self.post_message(EstimateRequested(job)))

    def action_compare(self) -> None:
        from ..core.compare import parse_model_spec

        backend = self.query_one(RunForm).backend()
        raw = self.query_one(RunForm).compare_with()
        try:
            others = [parse_model_spec(m.strip(), default_kind=backend.kind) for m in raw.split(",") if m.strip()]
        except UserInputError as exc:
            self.notify(exc.remedy("tui"), title="Compare", severity="error")
            return
        if self.check_now() is None and self.dataset is not None:
            self.notify("Compare runs one record schema on several models, not a dataset of tables.",
                        title="Compare", severity="error")
            return
        if not others:
            self.notify("Name the models to compare with under Compare, e.g. ollama:llama3.2", title="Compare")
            self.query_one("#compare-models", Input).focus()
            return
        self._checked_job(lambda job: self.post_message(CompareRequested(_unpriced(job), [job.backend, *others])))

    def _checked_job(self, then: Callable[[JobSpec], object]) -> None:
        """The schema and the parameters checked, then ``then(job)``; a problem is a notice."""
        schema = self.check_now()
        if schema is None:
            self.notify("The schema has an error: see the line under the editor.", severity="error")
            return
        form = self.query_one(RunForm)
        backend = form.backend()
        batch_api = form.batch_api
        form.when_config_ready(lambda config: then(JobSpec(schema=schema, config=config, backend=backend,
                                                           batch_api=batch_api)))

    def action_save_template(self) -> None:
        self.templates.save()

    def action_delete_template(self) -> None:
        self.templates.delete()

    def load(self, schema: dict[str, Any], config: dict[str, Any], backend: dict[str, Any]) -> None:
        """Fill the editor from a past run (history's re-run): its schema, parameters and
        backend, the base URL and key variable included; the previous schema stays one
        ctrl+z away."""
        text = json.dumps(schema, indent=2, ensure_ascii=False)
        self.templates.load(text, next((n for _, n in template_options() if _same_schema(n, schema)), None))
        if self.dataset is not None:  # a dataset's run has no count of its own: Count stays as it is
            config = {**config, "count": self.query_one("#count", Input).value or None}
        self.query_one(RunForm).fill(config, backend)


def _unpriced(job: JobSpec) -> JobSpec:
    """A comparison runs several models: the form's price and budget are its first one's."""
    return JobSpec(schema=job.schema, config=job.config.copy(price=None, budget=None), backend=job.backend)


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


def _snippet_action(snippet: Snippet) -> Callable[[EditorScreen], None]:
    """The palette's action for ``snippet``: at the schema's cursor, one ctrl+z away."""

    def action(screen: EditorScreen) -> None:
        area = screen.query_one("#schema-editor", TextArea)
        insert_member(area, snippet.text)
        screen.app.set_focus(area)

    action.__doc__ = snippet.help
    return action


for _snippet in SNIPPETS:  # a palette action for each snippet: action_insert_uuid, ...
    setattr(EditorScreen, f"action_insert_{_snippet.name}", _snippet_action(_snippet))
