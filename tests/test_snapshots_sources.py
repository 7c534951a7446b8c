"""Snapshots of the editor's field sources at 80x24 and 120x40: a schema with every kind
of source and a rule, the schema's cursor in one field (the table marks it). Stable: fixed
size and text, no cursor blink. Update deliberately with --snapshot-update."""

from __future__ import annotations

import json

import pytest
from textual.widgets import TextArea

from synth_tui.screens.sources import FieldSources

from .test_snapshots import SIZES, _in_tmp, app_for  # noqa: F401  (_in_tmp: a fixture used here too)
from .waiting import settle, until

SCHEMA = {
    "id": {"type": "string", "format": "uuid", "x-generator": "uuid"},
    "number": {"type": "integer", "minimum": 1000, "x-generator": {"sequence": {"start": 1000}}},
    "first_name": {"type": "string", "x-generator": {"fake": "first_name", "locale": "de_DE"}},
    "last_name": {"type": "string", "x-generator": {"fake": "last_name", "locale": "de_DE"}},
    "email": {"type": "string", "x-generator": {"template": "{first_name}.{last_name}@example.de"}},
    "age": {"type": "integer", "minimum": 18, "maximum": 95, "x-generator": {"normal": {"mean": 42, "stdev": 14}}},
    "plan": {"type": "string", "enum": ["free", "pro", "team"],
             "x-generator": {"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}},
    "company": {"type": "string", "x-generator": {"from_seed": "employer"}},
    "since": {"type": "string", "format": "date"},
    "until": {"type": "string", "format": "date"},
    "[bold]notes[/]": {"type": "string", "description": "a note in the account manager's words"},
    "x-rules": ["until == null or until >= since"],
}


async def cursor_in_plan(pilot) -> None:
    screen = pilot.app.screen
    area = screen.query_one("#schema-editor", TextArea)
    text = json.dumps(SCHEMA, indent=2)
    area.load_text(text)
    await until(pilot, lambda: screen.checked_text == text and screen.checked is not None, "the schema check")
    area.move_cursor(area.document.get_location_from_index(text.index('"free": 0.6')), center=True)
    table = screen.query_one(FieldSources)
    await until(pilot, lambda: table.show_cursor and table.cursor_row == 6, "the plan row marked")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_editor_sources(snap_compare, tmp_path, size):
    assert snap_compare(app_for(), terminal_size=size, run_before=cursor_in_plan)


def test_editor_sources_focused_in_a_short_terminal(snap_compare, tmp_path):
    async def focused(pilot):
        await cursor_in_plan(pilot)
        await pilot.press("ctrl+r")  # the table grows while it has the focus
        table = pilot.app.screen.query_one(FieldSources)
        await until(pilot, lambda: table.has_focus and table.size.height > 5, "the sources table focused")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=(80, 24), run_before=focused)
