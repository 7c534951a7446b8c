"""Where each field of the schema in the editor comes from, in a table under it.

A field is drawn by a generator ("fake city", "normal(mean 42, stdev 14)"), numbered by a
sequence, built by a template from other fields, taken from seed data (a ``from_seed``
column, or the enrich file's row), or written by the model. The editor fills the table
from the same check that writes the line under the schema. Field names and rules come
from the schema text: they are shown as plain text, never as markup.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from ..core.generators import FieldGenerator
from ..core.generators.choice import Weights
from ..core.generators.fake import DEFAULT_LOCALE, Fake
from ..core.recipe import Recipe
from ..core.schema import RecordSchema
from ..core.textsafe import plain
from .tables import Table, fill_table

Location = tuple[int, int]  # (row, column) in the schema text, as TextArea counts them
FIELD_WIDTH = 18  # a longer name is cut short: the source is what the table is for
SOURCE_WIDTH = 60
RULE_LABEL = Text("x-rules", style="italic")
_COLON = re.compile(r"\s*:")
_TOKEN = re.compile(r'["{}\[\]]')  # what changes where a key is: a string, an opening or a closing
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')  # a JSON string


@dataclass(frozen=True)
class FieldSource:
    name: str
    kind: str  # generated | seed | model
    text: str  # how the table says it: "fake city", "sequence 1000, 1001, ...", "model"


def field_sources(schema: RecordSchema, seed_columns: Collection[str] = ()) -> list[FieldSource]:
    """Each top-level field's source, in schema order. ``seed_columns``: the enrich file's
    columns, whose values every record keeps from its input row."""
    recipe = schema.recipe
    out = []
    for name in schema.field_names():
        if name in seed_columns:
            out.append(FieldSource(name, "seed", "enrich file's row"))
        elif recipe is None:
            out.append(FieldSource(name, "model", "model"))
        else:
            out.append(_from_recipe(recipe, name))
    return out


def _from_recipe(recipe: Recipe, name: str) -> FieldSource:
    generated = recipe.generated
    source = recipe.source(name)
    if source == "generator":
        return FieldSource(name, "generated", describe_generator(generated.generators[name]))
    if source == "sequence":
        sequence = generated.sequences[name]
        return FieldSource(name, "generated", f"sequence {sequence.at(0)}, {sequence.at(1)}, ...")
    if source == "template":
        return FieldSource(name, "generated", f"template {generated.templates[name].text}")
    if source == "seed":
        return FieldSource(name, "seed", f"seed column {generated.from_seed[name]}")
    return FieldSource(name, "model", "model")


def describe_generator(generator: FieldGenerator) -> str:
    """A generator in a few words: "fake city (de_DE)", "weights free 60%, pro 40%"."""
    if isinstance(generator, Fake):
        locale = f" ({generator.locale})" if generator.locale != DEFAULT_LOCALE else ""
        return f"fake {generator.provider}{locale}"
    if isinstance(generator, Weights):
        return "weights " + ", ".join(f"{key} {share:.0%}" for key, share in zip(generator.keys, generator.shares))
    return generator.describe()


def summary(sources: list[FieldSource], rules: int) -> str:
    """"12 fields: 11 generated, 1 by the model, 1 rule" for the line under the editor."""
    counts = {kind: sum(1 for s in sources if s.kind == kind) for kind in ("generated", "model", "seed")}
    parts = [f"{counts['generated']} generated", f"{counts['model']} by the model"]
    if counts["seed"]:
        parts.append(f"{counts['seed']} from seed data")
    if rules:
        parts.append(f"{rules} rule{'s' if rules != 1 else ''}")
    return f"{len(sources)} field{'s' if len(sources) != 1 else ''}: {', '.join(parts)}"


class FieldChosen(Message):
    """Enter on a field's row: show that field in the schema."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class FieldSources(Table):
    """The sources table: a row per field, then a row per rule. Its cursor follows the
    schema's: it marks the field being edited. Focused (ctrl+r), Enter on a field's row
    puts the schema's cursor on it; Escape goes back to the schema."""

    BINDINGS = [
        Binding("enter", "choose", "Show in the schema"),
        Binding("escape", "screen.focus_editor", "Back to the schema"),
    ]

    def __init__(self) -> None:
        super().__init__(id="field-sources", cursor_type="row", show_header=False, show_cursor=False)
        self.border_title = "Field sources (ctrl+r)"
        self.names: list[str] = []  # the field of each row; rules' rows follow
        self.written: list[tuple[Location, str]] = []  # where each field is written in the schema, in text order

    def show_schema(self, schema: RecordSchema, text: str, seed_columns: Collection[str] = ()) -> str:
        """Show the sources and rules of ``schema``, checked from ``text``; returns their
        summary for the line under the editor."""
        sources = field_sources(schema, seed_columns)
        rules = schema.recipe.rule_texts() if schema.recipe else []
        self.written = field_locations(text, schema.short_form)
        self.show(sources, rules)
        return summary(sources, len(rules))

    def show(self, sources: list[FieldSource], rules: list[str]) -> None:
        self.names = [s.name for s in sources]
        rows = [[_cut(plain(s.name, one_line=True), FIELD_WIDTH), _source_cell(s)] for s in sources]
        rows += [[RULE_LABEL, plain(rule, one_line=True)] for rule in rules]
        row = self.cursor_row
        fill_table(self, ["Field", "Source"], rows, max_width=SOURCE_WIDTH)
        if rows:
            self.move_cursor(row=min(row, len(rows) - 1), animate=False)

    def follow(self, location: Location) -> None:
        """Mark the field whose part of the schema holds ``location`` (the schema's cursor)."""
        if self.has_focus:
            return
        at = bisect.bisect_right(self.written, location, key=lambda item: item[0]) - 1  # the last key up to it
        name = self.written[at][1] if at >= 0 else None
        self.show_cursor = name in self.names
        if name in self.names:
            self.move_cursor(row=self.names.index(name), animate=False)

    def on_focus(self, event: events.Focus) -> None:
        self.show_cursor = True

    def action_choose(self) -> None:
        if 0 <= self.cursor_row < len(self.names):
            self.post_message(FieldChosen(self.names[self.cursor_row]))


def _cut(text: Text, width: int) -> Text:
    text.truncate(width, overflow="ellipsis")
    return text


def _source_cell(source: FieldSource) -> Text:
    style = {"model": "bold", "seed": "italic"}.get(source.kind, "")
    return plain(source.text, style=style, one_line=True)


def show_field(area: TextArea, name: str, short_form: bool) -> None:
    """Put ``area``'s cursor on the key of field ``name``, if the schema in it has one."""
    where = next((at for at, key in field_locations(area.text, short_form) if key == name), None)
    if where is not None:
        area.move_cursor(where, center=True)


def field_locations(text: str, short_form: bool) -> list[tuple[Location, str]]:
    """Where each field of the record is written in the schema ``text``: the (row, column)
    of its key (a top-level key in the short form, a key of the top-level "properties" in
    a JSON Schema), in text order."""
    return key_locations(text, [None] if short_form else [None, "properties"])


def key_locations(text: str, where: list[str | None]) -> list[tuple[Location, str]]:
    """Where each key of the object under the keys ``where`` is written in JSON ``text``
    (``[None, "tables"]``: a dataset's tables), in text order."""
    out = []
    row, counted = 0, 0
    for under, key, offset in _keys(text):
        if under == where:
            row += text.count("\n", counted, offset)
            counted = offset
            out.append(((row, offset - (text.rfind("\n", 0, offset) + 1)), key))
    return out


def _keys(text: str) -> Iterator[tuple[list[str | None], str, int]]:
    """Each object key of JSON ``text``: the keys its containers are under, it, its offset.
    Stops quietly where the text stops being JSON."""
    under: list[str | None] = []  # for each open container, the key it is the value of
    key: str | None = None
    token = _TOKEN.search(text)
    while token is not None:
        i = token.start()
        char = text[i]
        if char == '"':
            string = _STRING.match(text, i)
            if string is None:
                return
            if _COLON.match(text, string.end()):
                key = json.loads(string.group())
                yield under, key, i
            token = _TOKEN.search(text, string.end())
            continue
        if char in "{[":
            under = [*under, key]
            key = None
        else:
            under = under[:-1]
        token = _TOKEN.search(text, i + 1)
