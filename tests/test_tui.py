"""The real Textual app through App.run_test(), against the local test server."""

from __future__ import annotations

import json
from pathlib import Path

from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Select, Static, TextArea

from synth_tui.app import SynthApp
from synth_tui.core.config import Settings
from synth_tui.core.schema import check_schema
from synth_tui.core.store import Store
from synth_tui.core.templates import TEMPLATES

from .fake_llm import FakeLLM, Fault
from .waiting import laid_out, notifications, until


def make_settings(tmp_path: Path, server: FakeLLM | None = None, key: str | None = None) -> Settings:
    settings = Settings(backend="openai" if server else "local", path=tmp_path / "settings.json")
    if server:
        settings.backends["openai"].base_url = server.url + "/v1"
        settings.backends["openai"].model = "test-model"
    return settings


def make_app(tmp_path: Path, server: FakeLLM | None = None) -> SynthApp:
    return SynthApp(data_dir=tmp_path / "data", settings=make_settings(tmp_path, server), blink=False)


def saved_records(tmp_path: Path, run_id: str) -> list:
    from synth_tui.core.store import Store

    with Store(tmp_path / "data") as store:
        return list(store.iter_records(run_id))


async def set_input(pilot, app, ident: str, value: str) -> None:
    field = app.screen.query_one(f"#{ident}", Input)
    field.value = value
    await until(pilot, lambda: field.value == value, f"the {ident} field")


async def started(pilot, app) -> None:
    """The app is up on its first screen."""
    await until(pilot, lambda: app.screen.id == "editor" and app.screen.is_mounted, "the editor")


async def start_a_slow_run(pilot, app, count: int, concurrency: int = 1, until_done: int = 2) -> None:
    """A run of one record a request, started from the editor, waited for until it has
    made ``until_done`` records (the test server's delay keeps it going a while)."""
    await set_input(pilot, app, "count", str(count))
    await set_input(pilot, app, "batch", "1")
    await set_input(pilot, app, "concurrency", str(concurrency))
    await pilot.press("ctrl+g")
    await until(pilot, lambda: app.last_event is not None and app.last_event.progress.done >= until_done, "the run")


async def schema_checked(pilot, app, text: str) -> None:
    """Put ``text`` in the schema editor and wait for the check under it."""
    editor = app.get_screen("editor")
    editor.query_one("#schema-editor", TextArea).load_text(text)
    await until(pilot, lambda: editor.checked_text == text, "the schema check")


async def on_screen(pilot, app, name: str) -> None:
    await until(pilot, lambda: app.screen.id == name and app.screen.is_mounted, f"the {name} screen")
    await laid_out(pilot)


async def test_template_generate_history_export(tmp_path, llm):
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        editor = app.screen
        editor.query_one("#template", Select).value = "orders"
        await until(pilot, lambda: editor.checked_text == editor.query_one("#schema-editor", TextArea).text
                    and "order" in editor.checked_text, "the orders template")
        assert json.loads(editor.query_one("#schema-editor", TextArea).text) == TEMPLATES["orders"]
        await set_input(pilot, app, "count", "12")
        await set_input(pilot, app, "batch", "4")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None)
        result = app.last_result
        assert result.status == "done" and result.accepted == 12
        assert app.screen.id == "progress"
        assert "12/12" in str(app.screen.query_one("#bar-count", Static).render())
        assert app.screen.query_one("#latest", DataTable).row_count == 12
        schema = check_schema(TEMPLATES["orders"])
        records = saved_records(tmp_path, result.run_id)  # the app keeps them in the history, not in memory
        assert len(records) == 12 and all(schema.is_valid(r) for r in records)

        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        history = app.screen
        assert history.id == "history" and history.runs[0]["id"] == result.run_id
        assert str(history.query_one("#page-line", Static).render()) == "records 1-12 of 12 ([ ])"
        assert history.query_one("#records", DataTable).row_count == 12
        out = tmp_path / "orders.json"
        await pilot.press("e")
        await until(pilot, lambda: app.screen.query("#format"), "the export dialog")
        dialog = app.screen
        dialog.query_one("#format", Select).value = "json"
        await until(pilot, lambda: dialog.query_one("#path", Input).value.endswith(".json"), "the .json suffix")
        dialog.query_one("#path", Input).value = str(out)
        dialog.query_one("#path", Input).focus()
        await pilot.press("enter")  # a click could land on a toast covering the button
        await until(pilot, out.exists)
        assert json.loads(out.read_text()) == records


async def test_cancel_midway_then_resume_from_history(tmp_path, llm):
    llm.delay = 0.05
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await start_a_slow_run(pilot, app, count=300, concurrency=2, until_done=5)
        await pilot.press("f8")
        await until(pilot, lambda: app.last_result is not None)
        first = app.last_result
        assert first.status == "cancelled" and 5 <= first.accepted < 300
        llm.delay = 0.0
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        assert app.screen.runs[0]["status"] == "cancelled"
        app.last_result = None
        await pilot.press("u")
        await until(pilot, lambda: app.last_result is not None, timeout=60)
        resumed = app.last_result
        assert resumed.run_id == first.run_id and resumed.status == "done" and resumed.accepted == 300
    records = list(Store(tmp_path / "data", writable=False).iter_records(first.run_id))
    assert len(records) == 300 and len({json.dumps(r, sort_keys=True) for r in records}) == 300


async def test_refused_key_shows_the_error(tmp_path, llm):
    llm.api_key = "the-right-key"
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "5")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None)
        assert app.last_result.status == "failed"
        title = app.screen.query_one("#run-title", Static).render().plain
        assert "failed" in title and "refused the API key" in title
        await until(pilot, lambda: "refused the API key" in notifications(app), "the notification")


async def test_invalid_schema_shows_line_column_and_blocks_generate(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, '{\n  "a": {"type": "string"},\n  "b": \n}')
        status = app.screen.query_one("#schema-status", Static).render().plain
        assert "line 4, column 1" in status and "invalid JSON" in status
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "The schema has an error" in notifications(app), "the refusal")
        assert app.screen.id == "editor" and app.last_result is None and app.running_run_id is None
        await schema_checked(pilot, app, '{"a": {"type": "strng"}}')
        status = app.screen.query_one("#schema-status", Static).render().plain
        assert "$.properties.a.type" in status


async def test_short_form_converts_in_place(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        area = app.screen.query_one("#schema-editor", TextArea)
        await schema_checked(pilot, app, '{"name": {"type": "string"}}')
        await pilot.press("ctrl+t")
        await until(pilot, lambda: app.screen.checked_text == area.text and '"properties"' in area.text,
                    "the converted schema")
        assert json.loads(area.text) == {"type": "object", "properties": {"name": {"type": "string"}},
                                         "required": ["name"]}


async def test_model_output_is_shown_as_text(tmp_path, llm):
    hostile = {"name": "[bold red]x[/] \x1b[31mred\x1b[0m", "n": 1}
    llm.faults.append(Fault(content=json.dumps(hostile)))
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, '{"name": {"type": "string"}, "n": {"type": "integer"}}')
        await set_input(pilot, app, "count", "1")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None)
        table = app.screen.query_one("#latest", DataTable)
        cell = table.get_row_at(0)[0]
        assert "[bold red]x[/]" in cell.plain and "\x1b" not in cell.plain
        assert not cell.spans  # no markup applied


async def test_help_lists_the_screen_keys(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        await pilot.press("f1")
        await until(pilot, lambda: app.screen.query("#help-keys"), "the help")
        rows = [app.screen.query_one("#help-keys", DataTable).get_row_at(i)
                for i in range(app.screen.query_one("#help-keys", DataTable).row_count)]
        actions = [r[1] for r in rows]
        assert "Export" in actions and "Resume" in actions and "Quit" in actions
        await pilot.press("escape")
        assert app.screen.id == "history"


async def test_settings_save_with_mode_0600_and_test_connection(tmp_path, llm):
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await started(pilot, app)
        await pilot.press("f5")
        await on_screen(pilot, app, "settings")
        app.screen.query_one("#openai-api_key", Input).value = "sk-typed-in-0123456789"
        await pilot.press("ctrl+s")
        path = tmp_path / "settings.json"
        await until(pilot, lambda: "Saved to" in notifications(app), "the settings to be saved")
        assert path.stat().st_mode & 0o777 == 0o600
        assert json.loads(path.read_text())["backends"]["openai"]["api_key"] == "sk-typed-in-0123456789"
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "followed the schema" in notifications(app), "the connection test")
        assert llm.requests[-1]["response_format"]["type"] == "json_schema"


async def test_the_tui_runs_beside_another_open_writable_store(tmp_path, llm):
    """An open history elsewhere (another TUI, a CLI) no longer makes the TUI read-only:
    the write lock is held only while writing."""
    holder = Store(tmp_path / "data")
    try:
        app = make_app(tmp_path, llm)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await started(pilot, app)
            assert app.store is not None and app.store.writable
            await set_input(pilot, app, "count", "3")
            await pilot.press("ctrl+g")
            await until(pilot, lambda: app.last_result is not None)
            assert app.last_result.status == "done" and app.last_result.accepted == 3
        assert [d["id"] for d in holder.list_runs()] == [app.last_result.run_id]
    finally:
        holder.close()


async def test_compare_two_models_from_the_editor(tmp_path, llm):
    from .fake_llm import ModelBehaviour

    llm.models["flaky"] = ModelBehaviour(invalid_share=0.4)
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "15")
        await set_input(pilot, app, "compare-models", "flaky")
        await pilot.press("ctrl+k")
        await until(pilot, lambda: app.screen.id == "comparison" and app.screen.rows, timeout=30)
        steady, flaky = app.screen.rows
        assert (steady.label, flaky.label) == ("openai:test-model", "openai:flaky")
        assert steady.validity == 1.0 and flaky.validity < 0.9
        table = app.screen.query_one("#comparison-table", DataTable)
        validity_row = table.get_row_at(2)
        assert validity_row[0] == "validity" and validity_row[1] == "100.0%" and validity_row[2] != "100.0%"
        bars = app.screen.query_one("#comparison-bars", Static).render().plain
        assert "openai:flaky" in bars and "100.0%" in bars
    docs = Store(tmp_path / "data", writable=False).list_runs()
    assert len(docs) == 2 and len({d["config"]["params"]["seed"] for d in docs}) == 1


async def test_report_of_a_run_from_history(tmp_path, llm):
    llm.faults.append(Fault(invalid=2))
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "10")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        app.screen.query_one("#runs", DataTable).focus()
        await until(pilot, lambda: app.focused is app.screen.query_one("#runs"), "the run table's focus")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.id == "report" and app.screen.report is not None)
        report = app.screen.report
        assert report.accepted == 10 and report.rejected == 2
        summary = app.screen.query_one("#report-summary", Static).render().plain
        assert "validity 83.3% (2 rejected)" in summary and "is a required property" in summary
        plan_row = [f.path for f in report.fields].index("plan")
        app.screen.query_one("#report-fields", DataTable).move_cursor(row=plan_row)
        await until(pilot, lambda: app.screen.field_shown is report.fields[plan_row], "the plan field's figures")
        figures = app.screen.query_one("#field-figures", Static).render().plain
        assert "evenness" in figures and "free" in figures and "│" in figures
        await pilot.press("escape")
        assert app.screen.id == "history"


async def test_mark_two_runs_and_compare_them(tmp_path, llm):
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        for _ in range(2):
            app.last_result = None
            await pilot.press("f2")
            await on_screen(pilot, app, "editor")
            await set_input(pilot, app, "count", "4")
            await pilot.press("ctrl+g")
            await until(pilot, lambda: app.last_result is not None)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        app.screen.query_one("#runs", DataTable).focus()
        await until(pilot, lambda: app.focused is app.screen.query_one("#runs"), "the run table's focus")
        await pilot.press("m", "down", "m", "c")  # marking leaves the cursor where it is
        await until(pilot, lambda: app.screen.id == "comparison" and app.screen.rows)
        assert len(app.screen.rows) == 2 and all(r.accepted == 4 for r in app.screen.rows)


async def test_save_and_delete_a_template_from_the_editor(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await started(pilot, app)
        await schema_checked(pilot, app, '{"title": {"type": "string"}}')
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.query("#name"), "the name dialog")
        await pilot.press(*"books", "enter")
        await until(pilot, lambda: "Template books" in notifications(app), "the template to be saved")
        select = app.screen.query_one("#template", Select)
        assert select.value == "books"
        assert json.loads(app.screen.query_one("#schema-editor", TextArea).text) == {"title": {"type": "string"}}
        from synth_tui.core.templates import template_names

        assert "books" in template_names()
        app.screen.action_delete_template()
        await until(pilot, lambda: app.screen.query("#yes"), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: "Deleted template books" in notifications(app), "the template to be deleted")
        assert "books" not in template_names()


async def test_unusable_data_dir_refuses_to_run_unsaved(tmp_path, llm):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await started(pilot, app)
        await until(pilot, lambda: "cannot use data directory" in notifications(app), "the warning")
        assert app.store is None
        assert "cannot use data directory" in notifications(app)
        await set_input(pilot, app, "count", "3")
        await pilot.press("ctrl+g")
        title = lambda: app.screen.query_one("#run-title", Static).render().plain  # noqa: E731
        await until(pilot, lambda: "would not be saved" in title())
        assert app.last_result is None and llm.count_requests == 0


async def test_keymap_from_settings_rebinds_a_key(tmp_path, llm):
    settings = make_settings(tmp_path, llm)
    settings.keymap = {"editor.generate": "ctrl+r"}
    app = SynthApp(data_dir=tmp_path / "data", settings=settings, blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "2")
        await pilot.press("ctrl+g")
        assert app.last_result is None  # ctrl+g no longer generates
        await pilot.press("ctrl+r")
        await until(pilot, lambda: app.last_result is not None)
        assert app.last_result.accepted == 2
        assert len(app.store.list_runs()) == 1  # the one run ctrl+r started: ctrl+g started none
        await pilot.press("f2", "f1")
        await until(pilot, lambda: app.screen.query("#help-keys"), "the help")
        table = app.screen.query_one("#help-keys", DataTable)
        rows = {table.get_row_at(i)[1]: table.get_row_at(i)[0] for i in range(table.row_count)}
        assert rows["Generate"] == "^r"  # the help shows the key in force


async def test_a_burst_of_keys_is_applied_in_order(tmp_path):
    """Keys that arrive together, as from a paste or tmux send-keys: the editing keys used
    to run after the printable ones (backspace, 1, 0 on "20" left "20")."""
    from textual import events

    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        count = app.screen.query_one("#count", Input)
        count.focus()
        await until(pilot, lambda: app.focused is count, "the count field")
        count.cursor_position = len(count.value)
        for key, char in (("backspace", "\x7f"), ("backspace", "\x7f"), ("1", "1"), ("0", "0"), ("left", None),
                          ("backspace", "\x7f"), ("3", "3")):
            app.post_message(events.Key(key, char))  # as the terminal driver does, without waiting
        await until(pilot, lambda: count.value == "30", "the typed value")
        area = app.screen.query_one("#schema-editor", TextArea)
        area.load_text("ab")
        area.focus()
        area.move_cursor((0, 2))
        await until(pilot, lambda: app.focused is area, "the schema editor")
        for key, char in (("backspace", "\x7f"), ("x", "x"), ("left", None), ("backspace", "\x7f"), ("y", "y")):
            app.post_message(events.Key(key, char))
        await until(pilot, lambda: area.text == "yx", "the typed schema")


async def test_quit_during_a_run_asks_then_stops_it_resumable(tmp_path, llm, capsys):
    from synth_tui.screens.dialogs import ChoiceDialog

    llm.delay = 0.05
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await start_a_slow_run(pilot, app, count=200, concurrency=1, until_done=2)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog), "the question")
        await pilot.press("escape")  # keep running
        await until(pilot, lambda: not isinstance(app.screen, ChoiceDialog), "the question to close")
        assert app.running and app.is_running
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog), "the question")
        await pilot.press("s")
        await until(pilot, lambda: not app.is_running, "the app to quit")
    docs = Store(tmp_path / "data", writable=False).list_runs()
    assert len(docs) == 1 and docs[0]["status"] == "cancelled" and 2 <= docs[0]["counts"]["accepted"] < 200
    said = " ".join(capsys.readouterr().err.split())  # printed once the screen is given back
    assert f"continue it with: synth-tui resume {docs[0]['id']}" in said


async def test_choosing_a_template_over_edits_asks_and_keeps_them_one_undo_away(tmp_path):
    from synth_tui.screens.dialogs import ChoiceDialog

    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        editor = app.screen
        select = editor.query_one("#template", Select)
        mine = '{"title": {"type": "string"}}'
        await schema_checked(pilot, app, mine)
        assert select.is_blank() and "customers (edited)" in str(select.query_one("SelectCurrent #label").render())
        select.value = "products"
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog), "the question")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is editor, "the editor")
        assert editor.query_one("#schema-editor", TextArea).text == mine and select.is_blank()
        select.value = "products"
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog), "the question")
        await pilot.press("r")
        area = editor.query_one("#schema-editor", TextArea)
        await until(pilot, lambda: editor.checked_text == area.text and "price" in area.text, "the template")
        assert select.value == "products"
        area.focus()
        await pilot.press("ctrl+z")
        await until(pilot, lambda: area.text == mine, "the edits back")


async def test_rerun_from_history_keeps_the_runs_base_url(tmp_path, llm):
    settings = make_settings(tmp_path, llm)
    app = SynthApp(data_dir=tmp_path / "data", settings=settings, blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "3")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None)
        assert app.last_result.status == "done"
        settings.backends["openai"].base_url = "http://127.0.0.1:9/v1"  # the settings move on
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        app.screen.query_one("#runs", DataTable).focus()
        await pilot.press("r")
        await on_screen(pilot, app, "editor")
        assert app.screen.query_one("#base-url", Input).value == llm.url + "/v1"
        app.last_result = None
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None)
        assert app.last_result.status == "done" and app.last_result.accepted == 3


async def test_settings_show_an_environment_data_dir_and_never_save_it(tmp_path, monkeypatch):
    from synth_tui.core.config import load_settings

    monkeypatch.setenv("SYNTH_TUI_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("SYNTH_TUI_CONFIG", str(tmp_path / "settings.json"))
    app = SynthApp(settings=load_settings(), blink=False)
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await started(pilot, app)
        await pilot.press("f5")
        await on_screen(pilot, app, "settings")
        field = app.screen.query_one("#data-dir", Input)
        assert field.value == str(tmp_path / "from-env") and field.disabled
        assert "SYNTH_TUI_DATA_DIR" in str(app.screen.query_one("#data-dir-note", Static).render())
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Saved to" in notifications(app), "the settings to be saved")
    assert "data_dir" not in json.loads((tmp_path / "settings.json").read_text())


async def test_test_connection_tests_the_section_with_the_cursor(tmp_path, llm):
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await started(pilot, app)
        await pilot.press("f5")
        await on_screen(pilot, app, "settings")
        app.screen.query_one("#ollama-model", Input).value = "test-model"
        field = app.screen.query_one("#ollama-base_url", Input)
        field.value = llm.url
        field.focus()
        await until(pilot, lambda: app.focused is field, "the ollama section")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "ollama: OK" in notifications(app), "the ollama test")
        assert llm.requests[-1].get("format") is not None  # Ollama's protocol, not the default backend's


async def test_history_keeps_the_cursor_home_end_and_follows_a_new_run(tmp_path, llm):
    from .test_snapshots import seed_history

    seed_history(tmp_path / "data")
    llm.delay = 0.05
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        history = app.screen
        table = history.query_one("#runs", DataTable)
        table.focus()
        await pilot.press("end")
        await until(pilot, lambda: table.cursor_row == 3, "the last run")
        await pilot.press("home")
        await until(pilot, lambda: table.cursor_row == 0, "the first run")
        await pilot.press("down", "m")
        await until(pilot, lambda: history.marked, "the mark")
        assert table.cursor_row == 1  # marking leaves the cursor where it is
        await pilot.press("d")
        await until(pilot, lambda: app.screen.query("#yes"), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: app.screen is history and len(history.runs) == 3, "the run to be deleted")
        assert table.cursor_row == 1  # the next run takes the deleted one's place under the cursor

        await pilot.press("f2")
        await on_screen(pilot, app, "editor")
        await start_a_slow_run(pilot, app, count=600, concurrency=1, until_done=3)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        run_id = app.running_run_id
        assert history.selected_id() == run_id  # the new run, selected
        cell = lambda: str(table.get_cell_at(Coordinate(0, 3)))  # noqa: E731
        first = cell()
        await until(pilot, lambda: cell() != first, "the running row to move on")
        await pilot.press("f3", "f8")
        await until(pilot, lambda: app.last_result is not None, "the run to stop")


async def test_export_dialog_asks_to_overwrite_creates_a_folder_and_stays_open_on_error(tmp_path, llm):
    from synth_tui.screens.dialogs import ExportDialog

    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "3")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        app.screen.query_one("#runs", DataTable).focus()

        async def export_to(path: Path, fmt: str = "jsonl") -> ExportDialog:
            await pilot.press("e")
            await until(pilot, lambda: isinstance(app.screen, ExportDialog), "the export dialog")
            dialog = app.screen
            dialog.query_one("#format", Select).value = fmt
            dialog.query_one("#path", Input).value = str(path)
            await pilot.press("enter")
            return dialog

        def problem(dialog) -> str:
            return str(dialog.query_one("#export-problem", Static).render())

        target = tmp_path / "new" / "deeper" / "out.csv"
        dialog = await export_to(target, "csv")
        await until(pilot, lambda: "does not exist" in problem(dialog), "the missing folder question")
        await pilot.press("enter")  # create it
        await until(pilot, lambda: "Wrote 3 records" in notifications(app), "the export")
        assert target.read_text().count("\n") == 4  # header and three records

        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog), "the export dialog")
        dialog = app.screen
        # the last folder and format are remembered
        assert dialog.query_one("#format", Select).value == "csv"
        assert Path(dialog.query_one("#path", Input).value).parent == target.parent
        dialog.query_one("#path", Input).value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: "exists" in problem(dialog), "the overwrite question")
        await pilot.press("escape")

        blocked = tmp_path / "blocked"
        blocked.write_text("a file where a folder should be")
        dialog = await export_to(blocked / "x.jsonl")
        await until(pilot, lambda: "not a folder" in problem(dialog) or "exist" in problem(dialog), "the error")
        await pilot.press("enter")
        await until(pilot, lambda: "cannot" in problem(dialog) or "not a folder" in problem(dialog), "the error")
        assert app.screen is dialog and dialog.query_one("#path", Input).value == str(blocked / "x.jsonl")


async def test_a_terminal_below_80x24_gets_a_notice_until_it_grows(tmp_path):
    from synth_tui.screens.dialogs import TooSmallScreen

    app = make_app(tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, TooSmallScreen), "the notice")
        assert "at least 80x24" in str(app.screen.query_one("#too-small", Static).render())
        await pilot.resize_terminal(100, 30)
        await until(pilot, lambda: app.screen.id == "editor", "the editor again")


async def test_a_refused_template_name_keeps_the_dialog_open(tmp_path):
    from synth_tui.screens.dialogs import NameDialog

    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, NameDialog), "the name dialog")
        dialog = app.screen
        await pilot.press(*"my people", "enter")
        problem = lambda: str(dialog.query_one("#name-problem", Static).render())  # noqa: E731
        await until(pilot, lambda: "template name" in problem(), "the refusal in the dialog")
        assert app.screen is dialog and dialog.query_one("#name", Input).value == "my people"


async def test_quitting_with_unsaved_settings_asks(tmp_path):
    from synth_tui.screens.dialogs import ChoiceDialog

    app = make_app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("f5")
        await on_screen(pilot, app, "settings")
        app.screen.query_one("#openai-model", Input).value = "another-model"
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ChoiceDialog), "the question")
        await pilot.press("s")  # save and quit
        await until(pilot, lambda: not app.is_running, "the app to quit")
    assert json.loads((tmp_path / "settings.json").read_text())["backends"]["openai"]["model"] == "another-model"


async def test_f8_cancels_a_run_from_any_screen(tmp_path, llm):
    llm.delay = 0.05
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await start_a_slow_run(pilot, app, count=300, concurrency=1, until_done=2)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        await pilot.press("f8")
        await until(pilot, lambda: app.last_result is not None, "the run to stop")
        assert app.last_result.status == "cancelled"
