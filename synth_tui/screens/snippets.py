"""Generator and rule snippets the editor's command palette inserts at the cursor.

Each snippet is one member of a JSON object (``"x-generator": {"fake": "city"}``), meant
for a field's object (x-rules: for the record's, or a nested object's). Inserted where
the cursor is, with the commas around it that keep the object valid JSON: at the end of
a line it goes on a new line, indented as the members there; before another member it
ends with a comma. The insertion is one edit: ctrl+z takes it back.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.widgets import TextArea


@dataclass(frozen=True)
class Snippet:
    name: str  # the palette action is insert_<name>
    title: str
    text: str
    help: str


def _generator(name: str, spec: str, help_text: str, title: str = "") -> Snippet:
    return Snippet(name, f"Insert generator: {title or name}", f'"x-generator": {spec}', help_text)


SNIPPETS = [
    _generator("uuid", '"uuid"', "A random UUID, in a string field"),
    _generator("sequence", '{"sequence": {"start": 1000, "step": 1}}',
               "1000, 1001, ... over the whole run, in a number field"),
    _generator("uniform", '{"uniform": {"min": 0, "max": 100}}', "Uniform between min and max"),
    _generator("normal", '{"normal": {"mean": 40, "stdev": 12}}', "Normal, clipped to the field's minimum and maximum"),
    _generator("lognormal", '{"lognormal": {"mean": 3.5, "sigma": 0.6}}', "Lognormal: prices, durations"),
    _generator("weights", '{"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}',
               "One of the values, by weight (each in the field's enum, if it has one)"),
    _generator("date", '{"date": {"from": "2020-01-01", "to": "2025-12-31"}}', "A day in the range"),
    _generator("datetime", '{"datetime": {"from": "2020-01-01T00:00:00Z", "to": "2025-12-31T23:59:59Z"}}',
               "A moment in the range"),
    _generator("bool", '{"bool": 0.3}', "true with this probability"),
    _generator("fake_name", '{"fake": "name"}', "A person's name, from Faker", "fake name"),
    _generator("fake_email", '{"fake": "email"}', "An email address, from Faker", "fake email"),
    _generator("fake_city", '{"fake": "city"}', "A city; add \"locale\": \"de_DE\" for Germany's", "fake city"),
    _generator("template", '{"template": "{first_name}.{last_name}@example.com"}',
               "Built from other fields of the record"),
    _generator("from_seed", '{"from_seed": "column"}', "A column of the examples or enrich file"),
    Snippet("rules", "Insert rules (x-rules)", '"x-rules": ["end_date >= start_date"]',
            "Rules between fields, checked on every record: put it in the record's object"),
]


def insert_member(area: TextArea, member: str) -> None:
    """Insert the object member ``member`` at ``area``'s cursor, with the commas it needs."""
    row, column = area.cursor_location
    line = area.document.get_line(row)
    before = area.get_text_range(area.document.start, (row, column)).rstrip()
    after = area.get_text_range((row, column), area.document.end).lstrip()
    lead = "" if not before or before[-1] in "{[," else ","
    trail = "" if not after or after[0] in "}]," else ", "
    if line[:column].strip() and not line[column:].strip():  # at the end of a line, on a line of its own
        indent = line[: len(line) - len(line.lstrip())] + ("  " if before.endswith("{") else "")
        text = f"{lead}\n{indent}{member}{trail.rstrip()}"
    else:
        text = f"{lead}{' ' if lead else ''}{member}{trail}"
    result = area.insert(text, (row, column))
    area.move_cursor(result.end_location)
