"""The TUI side of generators, rules and seed data, through the real app (App.run_test)
against the local test server: the editor's sources table and its snippets, the examples
and enrich files in the parameters, rule rejections on the progress screen."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from textual.widgets import DataTable, Input, Static, TextArea

from synth_tui.core.store import Store
from synth_tui.screens.dialogs import RejectedScreen
from synth_tui.screens.sources import FieldSources

from .test_tui import make_app, on_screen, saved_records, schema_checked, set_input, started
from .waiting import notifications, until

CUSTOMERS_SOURCES = [
    ("id", "uuid"), ("first_name", "fake first_name"), ("last_name", "fake last_name"),
    ("email", "template {first_name}.{last_name}@example.com"), ("age", "normal(mean 42, stdev 14)"),
    ("plan", "weights free 55%, pro 30%, team 10%, enterprise 5%"), ("signup_date", "date(2019-01-01..2025-12-31)"),
    ("street", "fake street_address"), ("city", "fake city"), ("postcode", "fake postcode"),
    ("country", "fake country"), ("notes", "model"),
]
TOWN = '{\n  "name": {"type": "string"},\n  "town": {\n    "type": "string"\n  }\n}'


def table_rows(app) -> list[tuple[str, str]]:
    table = app.get_screen("editor").query_one(FieldSources)
    return [tuple(cell.plain for cell in table.get_row_at(i)) for i in range(table.row_count)]


def status_text(app) -> str:
    return app.get_screen("editor").query_one("#schema-status", Static).render().plain


def editor_area(app) -> TextArea:
    return app.get_screen("editor").query_one("#schema-editor", TextArea)


async def edited(pilot, app, old: str, new: str) -> None:
    """Replace ``old`` in the schema as typing would (an undoable edit), then wait for the check."""
    area = editor_area(app)
    start = area.document.get_location_from_index(area.text.index(old))
    end = area.document.get_location_from_index(area.text.index(old) + len(old))
    area.replace(new, start, end)
    text = area.text
    await until(pilot, lambda: app.screen.checked_text == text, "the schema check")


async def test_sources_of_the_customers_template_follow_edits_and_the_cursor(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await until(pilot, lambda: len(table_rows(app)) == 12, "the sources table")
        assert table_rows(app) == CUSTOMERS_SOURCES
        assert "✓ valid short form, 12 fields: 11 generated, 1 by the model" in status_text(app)

        # a generator taken away, a rule added: the same check redraws the table and the count
        await edited(pilot, app, '"x-generator": {\n      "fake": "city"\n    }', '"description": "a real city"')
        await edited(pilot, app, '"country": {', '"x-rules": ["age >= 18"],\n  "country": {')
        rows = table_rows(app)
        assert ("city", "model") in rows and rows[-1] == ("x-rules", "age >= 18")
        assert "12 fields: 10 generated, 2 by the model, 1 rule" in status_text(app)

        # the table marks the field the schema's cursor is in
        table = app.screen.query_one(FieldSources)
        area = editor_area(app)
        area.move_cursor(area.document.get_location_from_index(area.text.index('"mean": 42')))
        await until(pilot, lambda: table.show_cursor and table.cursor_row == 4, "the age row marked")

        # ctrl+r, down to plan, Enter: the schema's cursor goes to the plan field
        await pilot.press("ctrl+r")
        await until(pilot, lambda: table.has_focus, "the sources table focused")
        await pilot.press("down")
        await until(pilot, lambda: table.cursor_row == 5, "the plan row")
        await pilot.press("enter")
        await until(pilot, lambda: area.has_focus, "the schema focused")
        row, column = area.cursor_location
        assert area.document.get_line(row)[column:].startswith('"plan"')
        await pilot.press("ctrl+r", "escape")  # and back to the schema, where it was
        await until(pilot, lambda: area.has_focus and area.cursor_location == (row, column), "the schema again")

        # a schema error keeps the last table and says where, not a count
        await schema_checked(pilot, app, '{"a": {"type": "strng"}}')
        assert "✗" in status_text(app) and len(table_rows(app)) == 13


async def test_field_names_and_rules_are_shown_as_text_not_markup(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        schema = {"[bold red]x[/]": {"type": "string"}, "\x1b[2Jcol": {"type": "integer", "minimum": 0,
                  "x-generator": {"uniform": {"min": 0, "max": 9}}}, "seeded": {"type": "string",
                  "x-generator": {"from_seed": "[i]c[/i]"}}, "x-rules": ["seeded != '[bold red]q[/]'"]}
        await schema_checked(pilot, app, json.dumps(schema))
        assert table_rows(app) == [("[bold red]x[/]", "model"), ("␛[2Jcol", "uniform(0..9)"),
                                   ("seeded", "seed column [i]c[/i]"), ("x-rules", "seeded != '[bold red]q[/]'")]
        assert "3 fields: 1 generated, 1 by the model, 1 from seed data, 1 rule" in status_text(app)


async def test_palette_snippets_insert_valid_json_at_the_cursor_one_undo_away(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, TOWN)
        area = editor_area(app)
        area.move_cursor((3, len('    "type": "string"')))  # the end of town's last member
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.query("CommandInput"), "the command palette")
        await pilot.press(*"generator: fake city")
        await until(pilot, lambda: "fake city" in str(app.screen.query_one("CommandList").get_option_at_index(0)
                                                          .prompt), "the fake city command")
        await pilot.press("enter")
        await until(pilot, lambda: '"fake": "city"' in area.text, "the snippet")
        text = area.text
        assert json.loads(text)["town"] == {"type": "string", "x-generator": {"fake": "city"}}
        await until(pilot, lambda: app.screen.checked_text == text and app.screen.checked is not None, "the check")
        assert ("town", "fake city") in table_rows(app)

        await pilot.press("ctrl+z")  # one edit: one undo
        await until(pilot, lambda: area.text == TOWN, "the schema as it was")

        # before another member it ends with a comma; after an opening brace it goes inside
        editor = app.screen
        area.move_cursor((1, len('  "name": {')))
        editor.action_insert_uuid()
        assert json.loads(area.text)["name"] == {"x-generator": "uuid", "type": "string"}
        area.move_cursor((2, len('  "town": {')))
        editor.action_insert_fake_name()
        assert json.loads(area.text)["town"] == {"x-generator": {"fake": "name"}, "type": "string"}
        area.move_cursor((area.document.line_count - 2, len("  }")))  # after the last field
        editor.action_insert_rules()
        assert json.loads(area.text)["x-rules"] == ["end_date >= start_date"]
        text = area.text
        await until(pilot, lambda: editor.checked_text == text, "the check")
        assert "end_date" in status_text(app)  # valid JSON; the rule's fields are the user's to name


def write_rows(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


async def test_examples_and_enrich_files_reach_the_run_and_a_rerun(tmp_path, llm):
    people = {"name": {"type": "string"}, "city": {"type": "string"}, "bio": {"type": "string"}}
    examples = tmp_path / "examples.jsonl"
    examples.write_text("\n".join(json.dumps({"name": f"Zanzibar Quill {i}", "city": "Oslo", "bio": "b"})
                                  for i in range(3)) + "\n")
    enrich = write_rows(tmp_path / "people.csv", [{"name": f"Row {i}", "city": f"Town {i}"} for i in range(7)])
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, json.dumps(people))
        await set_input(pilot, app, "examples", str(examples))
        await set_input(pilot, app, "examples-per-request", "2")
        await set_input(pilot, app, "enrich", str(enrich))
        # the enrich file's columns are sources too, after the same check
        await until(pilot, lambda: ("name", "enrich file's row") in table_rows(app), "the enrich columns")
        assert "3 fields: 0 generated, 1 by the model, 2 from seed data" in status_text(app)
        await set_input(pilot, app, "count", "")  # blank with an enrich file: every row
        await set_input(pilot, app, "batch", "3")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None, "the run")
        result = app.last_result
        assert result.status == "done" and result.accepted == 7
        records = saved_records(tmp_path, result.run_id)
        assert [(r["name"], r["city"]) for r in records] == [(f"Row {i}", f"Town {i}") for i in range(7)]
        prompts = [body["messages"][-1]["content"] for body in llm.requests]
        assert all(sum(f"Zanzibar Quill {i}" in p for i in range(3)) == 2 for p in prompts)
        with Store(tmp_path / "data") as store:
            config = store.get_run(result.run_id)["config"]
        assert (config["enrich"], config["examples"], config["examples_per_request"]) == (str(enrich),
                                                                                          str(examples), 2)

        # a re-run from the history brings the files back
        await pilot.press("f2")
        await on_screen(pilot, app, "editor")
        await set_input(pilot, app, "examples", "")
        await set_input(pilot, app, "enrich", "")
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        app.screen.query_one("#runs", DataTable).focus()
        await pilot.press("r")
        await on_screen(pilot, app, "editor")
        values = {i: app.screen.query_one(f"#{i}", Input).value for i in ("examples", "enrich", "examples-per-request")}
        assert values == {"examples": str(examples), "enrich": str(enrich), "examples-per-request": "2"}


async def test_an_enrich_file_given_relative_is_made_absolute_and_caps_the_count(tmp_path, llm, monkeypatch):
    write_rows(tmp_path / "rows.csv", [{"name": f"Row {i}"} for i in range(4)])
    monkeypatch.chdir(tmp_path)
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, json.dumps({"name": {"type": "string"}, "bio": {"type": "string"}}))
        await set_input(pilot, app, "enrich", "rows.csv")
        await set_input(pilot, app, "count", "10")  # more than the file has: its rows
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None, "the run")
        assert app.last_result.accepted == 4
        with Store(tmp_path / "data") as store:
            assert store.get_run(app.last_result.run_id)["config"]["enrich"] == str(tmp_path / "rows.csv")


async def test_a_missing_or_bad_seed_file_is_a_notice_and_no_run(tmp_path, llm):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "ok"}\n{"name": \n')
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        missing = tmp_path / "missing.csv"
        await set_input(pilot, app, "enrich", str(missing))
        await pilot.press("ctrl+g")
        await until(pilot, lambda: f"Enrich file {missing}: no such file" in notifications(app), "the notice")
        await set_input(pilot, app, "enrich", str(bad))  # found, but row 2 is broken: said when counting
        await pilot.press("ctrl+g")
        await until(pilot, lambda: f"Enrich file {bad}:2" in notifications(app), "the bad row's notice")
        await set_input(pilot, app, "enrich", "")
        await set_input(pilot, app, "examples", str(tmp_path))  # a folder
        await pilot.press("ctrl+g")
        await until(pilot, lambda: f"Examples file {tmp_path}" in notifications(app), "the folder's notice")
        await set_input(pilot, app, "examples", "")
        await set_input(pilot, app, "count", "")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "Count is required" in notifications(app), "the missing count")
        assert app.screen.id == "editor" and app.last_result is None and app.running_run_id is None
        assert llm.count_requests == 0


async def test_rule_rejections_are_counted_on_the_progress_screen_and_shown_in_f7(tmp_path, llm):
    schema = {"low": {"type": "integer", "minimum": 0, "maximum": 9},
              "high": {"type": "integer", "minimum": 0, "maximum": 9}, "x-rules": ["low <= high"]}
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, json.dumps(schema))
        await set_input(pilot, app, "count", "12")
        await set_input(pilot, app, "batch", "4")
        await set_input(pilot, app, "concurrency", "1")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None, "the run")
        progress = app.screen
        assert app.last_result.status == "done" and progress.id == "progress"
        broken = [r for r in progress.rejections if r.reason == "broke rule 'low <= high'"]
        assert broken and progress.rule_rejections == len(broken)  # the test server draws them at random
        stats = progress.query_one("#run-stats", Static).render().plain
        word = "rules" if len(broken) > 1 else "a rule"
        assert f"rejected {app.last_result.rejected} ({len(broken)} broke {word})" in stats
        assert all(json.loads(r.raw)["low"] > json.loads(r.raw)["high"] for r in broken)

        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, RejectedScreen), "the rejected output")
        table = app.screen.query_one("#rejected", DataTable)
        assert "broke rule 'low <= high'" in table.get_row_at(0)[1].plain
