"""Cost in the TUI, through the real App (App.run_test()) against the test servers on
127.0.0.1 and a real history in a temporary folder: a budget typed in the editor, the
estimate panel and its pilot, the confirmation threshold, several base URLs, a Batch API
run, and the cost in the history."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Checkbox, DataTable, Input, Static

from synth_tui.app import SynthApp
from synth_tui.core.config import Secret, Settings
from synth_tui.core.store import Store
from synth_tui.screens.estimate import EstimatePanel

from .fake_batch import FakeBatchAPI
from .fake_llm import FakeLLM
from .test_tui import on_screen, saved_records, set_input, started
from .waiting import notifications, shown, until

PRICE = (10.0, 10.0)  # USD per million tokens: the test server's answers cost $0.0012 a record asked alone


def cost_app(tmp_path: Path, server: FakeLLM, *, price: bool = True, **settings_fields: object) -> SynthApp:
    settings = Settings(backend="openai", path=tmp_path / "settings.json", **settings_fields)  # type: ignore[arg-type]
    settings.backends["openai"].base_url = server.url + "/v1"
    settings.backends["openai"].model = "test-model"
    settings.backends["openai"].api_key = Secret("sk-test-key-never-shown")
    if price:
        settings.prices["test-model"] = PRICE
    return SynthApp(data_dir=tmp_path / "data", settings=settings, blink=False)


def shown_text(app: SynthApp, ident: str) -> str:
    return str(app.screen.query_one(f"#{ident}", Static).render())


def history_runs(tmp_path: Path) -> list:
    with Store(tmp_path / "data") as store:
        return store.list_runs()


async def test_a_budget_typed_in_the_editor_stops_the_run_at_or_under_it(tmp_path, llm):
    llm.delay = 0.25  # the run goes on for seconds: the header shows it meanwhile
    app = cost_app(tmp_path, llm)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        for ident, value in (("count", "200"), ("batch", "1"), ("concurrency", "2"), ("budget", "0.05")):
            await set_input(pilot, app, ident, value)
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "of $0.0500 budget" in app.sub_title, "the budget in the header")
        await until(pilot, lambda: "of $0.0500 budget" in shown_text(app, "run-cost"), "spent on the progress screen")
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        runs_table = app.screen.query_one("#runs", DataTable)

        costs_seen: set[str] = set()

        def live_cost() -> bool:  # the running run's row: its Cost cell follows the spending
            row = [str(cell) for cell in runs_table.get_row_at(0)] if runs_table.row_count else []
            if "running" in row:
                costs_seen.update(cell for cell in row if cell.startswith("$0.0") and cell != "$0.000000")
            return len(costs_seen) >= 3

        await until(pilot, live_cost, "the running run's cost in the history")
        await until(pilot, lambda: app.last_result is not None, "the run's end", timeout=60)
        result = app.last_result
        assert result.status == "budget", result.error
        assert result.cost_usd is not None and 0.03 < result.cost_usd <= 0.05
        assert 0 < result.accepted < 200
        log = app.get_screen("progress").query_one("#event-log")
        assert any("budget reached: spent" in line.text for line in log.lines)
        stats = str(app.get_screen("progress").query_one("#run-stats", Static).render())
        assert " · ended · " in stats and "ETA" not in stats  # an ended run promises no time left
        spent = str(app.get_screen("progress").query_one("#run-cost", Static).render())
        assert f"spent ${result.cost_usd:.4f} of $0.0500 budget" == spent.splitlines()[0]
        await until(pilot, lambda: "budget" in [str(cell) for cell in runs_table.get_row_at(0)], "the run's row")
        row = [str(cell) for cell in runs_table.get_row_at(0)]
        assert f"${result.cost_usd:.4f}" in row
        assert f"cost ${result.cost_usd:.4f} of $0.0500 budget" in shown_text(app, "preview")

        # u asks for a larger budget (one spent already is refused), then goes on under it
        llm.delay = 0.0
        runs_table.focus()
        await pilot.press("u")
        await until(pilot, lambda: app.screen.query("#name"), "the question for a larger budget")
        await answer_dialog(pilot, app, "0.01")
        await until(pilot, lambda: "give a budget larger than that" in shown_text(app, "name-problem"),
                    "the refusal of a budget already spent")
        await answer_dialog(pilot, app, "0.08")
        await until(pilot, lambda: app.last_result is not result and app.last_result is not None
                    and not app.running, "the resumed run's end", timeout=60)
        again = app.last_result
        assert again.run_id == result.run_id and again.accepted > result.accepted
        assert again.cost_usd is not None and result.cost_usd < again.cost_usd <= 0.08
        assert again.status in ("done", "budget")
    files = [f for f in (tmp_path / "data").rglob("*") if f.is_file()]
    assert files and not any(b"sk-test-key" in f.read_bytes() for f in files)  # the key never reaches the history


async def answer_dialog(pilot, app, value: str) -> None:
    field = app.screen.query_one("#name", Input)
    field.value = value
    field.focus()
    await pilot.press("enter")


async def test_a_budget_without_a_price_is_refused_before_a_request(tmp_path, llm):
    app = cost_app(tmp_path, llm, price=False)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "budget", "1")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "price" in notifications(app), "the refusal")
        assert app.screen.id == "editor" and llm.count_requests == 0


async def test_a_model_without_a_price_shows_its_cost_as_unknown(tmp_path, llm):
    app = cost_app(tmp_path, llm, price=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "4")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None, "the run's end")
        assert app.last_result.cost_usd is None
        assert shown_text(app, "run-cost") == "cost unknown"
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        row = [str(cell) for cell in app.screen.query_one("#runs", DataTable).get_row_at(0)]
        assert "unknown" in row and "$0" not in " ".join(row)
        assert "cost unknown (no price)" in shown_text(app, "preview")


async def test_the_estimate_panel_runs_a_pilot_and_going_on_keeps_its_records(tmp_path, llm):
    app = cost_app(tmp_path, llm)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "30")
        await set_input(pilot, app, "batch", "2")
        await pilot.press("f6")
        panel = await shown(pilot, EstimatePanel)
        text = str(panel.query_one("#estimate-text", Static).render())
        assert "30 records" in text and "tokens" in text and "to finish" in text
        assert "cost    $" in text and "at $10 in / $10 out per million tokens" in text
        pilot_runs = history_runs(tmp_path)
        assert len(pilot_runs) == 1 and pilot_runs[0].counts.accepted == 5
        pilot_id = pilot_runs[0].id
        first = saved_records(tmp_path, pilot_id)
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None, "the run's end")
        result = app.last_result
        assert result.status == "done" and result.accepted == 30 and result.run_id == pilot_id
        assert "Budget:" not in text  # no budget: no line about it
    runs = history_runs(tmp_path)
    assert [r.id for r in runs] == [pilot_id]  # one run: the pilot, gone on to 30
    records = saved_records(tmp_path, pilot_id)
    assert len(records) == 30 and records[:5] == first


async def test_stopping_at_the_pilot_keeps_it_in_the_history(tmp_path, llm):
    app = cost_app(tmp_path, llm)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "30")
        await pilot.press("f6")
        await shown(pilot, EstimatePanel)
        await pilot.press("escape")
        await until(pilot, lambda: "stays in the history with its 5 records" in notifications(app), "the note")
        assert app.last_result is None
        pilot_run = history_runs(tmp_path)[0]
        assert pilot_run.counts.accepted == 5 and pilot_run.status == "done"

        # u in the history goes on from the pilot to the count asked for (not one it already has)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        app.screen.query_one("#runs", DataTable).focus()
        await pilot.press("u")
        await until(pilot, lambda: app.screen.query("#name"), "the question for a count")
        await answer_dialog(pilot, app, "5")
        await until(pilot, lambda: "give a larger count" in shown_text(app, "name-problem"), "the refusal of 5")
        await answer_dialog(pilot, app, "30")
        await until(pilot, lambda: app.last_result is not None and not app.running, "the run's end")
        assert app.last_result.run_id == pilot_run.id and app.last_result.accepted == 30
    runs = history_runs(tmp_path)
    assert len(runs) == 1 and runs[0].counts.accepted == 30 and runs[0].status == "done"


async def test_generate_over_the_confirmation_threshold_asks_first(tmp_path, llm):
    app = cost_app(tmp_path, llm, confirm_cost_over=0.001)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "40")
        await pilot.press("ctrl+g")
        panel = await shown(pilot, EstimatePanel)
        warning = str(panel.query_one("#estimate-warning", Static).render())
        assert "more than $0.001000 (confirm_cost_over)" in warning
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None, "the run's end")
        assert app.last_result.accepted == 40


async def test_generate_under_the_confirmation_threshold_goes_on_without_asking(tmp_path, llm):
    app = cost_app(tmp_path, llm, confirm_cost_over=100.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await set_input(pilot, app, "count", "25")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None, "the run's end")
        assert app.last_result.accepted == 25 and not isinstance(app.screen, EstimatePanel)
    assert len(history_runs(tmp_path)) == 1


async def test_two_base_urls_typed_in_the_form_spread_a_run_over_two_servers(tmp_path, llm):
    second = FakeLLM(seed=1).start()
    try:
        llm.delay = second.delay = 0.01
        app = cost_app(tmp_path, llm)
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, app)
            await set_input(pilot, app, "base-url", f"{llm.url}/v1, {second.url}/v1")
            for ident, value in (("count", "30"), ("batch", "1"), ("concurrency", "4")):
                await set_input(pilot, app, ident, value)
            await pilot.press("ctrl+g")
            await until(pilot, lambda: app.last_result is not None, "the run's end", timeout=60)
            assert app.last_result.accepted == 30
            assert llm.count_requests > 0 and second.count_requests > 0
            lines = shown_text(app, "run-cost").splitlines()
            assert any(line.startswith(f"{llm.url}/v1: ") for line in lines)
            assert any(line.startswith(f"{second.url}/v1: ") for line in lines)
            await pilot.press("f4")
            await on_screen(pilot, app, "history")
            preview = shown_text(app, "preview")
            assert f"{llm.url}/v1, {second.url}/v1" in preview
            assert f"{second.url}/v1: {second.count_requests} requests" in preview
    finally:
        second.stop()


async def test_a_batch_run_from_the_editor_completes(tmp_path):
    api = FakeBatchAPI().start()
    try:
        app = cost_app(tmp_path, api)
        app.jobs.batch_poll_interval = 0.05
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, app)
            await set_input(pilot, app, "count", "12")
            await set_input(pilot, app, "batch", "4")
            app.screen.query_one("#batch-api", Checkbox).value = True
            await pilot.press("ctrl+g")
            await until(pilot, lambda: app.last_result is not None, "the batch run's end", timeout=60)
            assert app.last_result.status == "done" and app.last_result.accepted == 12
            lines = shown_text(app, "run-cost").splitlines()
            assert any(line.startswith("batch ") and "completed, 3 of 3 requests done" in line for line in lines)
        runs = history_runs(tmp_path)
        assert len(runs) == 1 and runs[0].extra.get("batch")
    finally:
        api.stop()


async def test_the_batch_api_is_refused_for_another_backend_and_with_a_budget(tmp_path, llm):
    app = cost_app(tmp_path, llm)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        app.screen.query_one("#batch-api", Checkbox).value = True
        await set_input(pilot, app, "budget", "1")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "a budget does not hold back a batch" in notifications(app), "the refusal")
        await set_input(pilot, app, "budget", "")
        await pilot.press("f6")
        await until(pilot, lambda: "untick Batch API to estimate" in notifications(app), "the estimate's refusal")
        app.screen.query_one("#backend").value = "ollama"
        await until(pilot, lambda: app.screen.query_one("#model", Input).value != "test-model", "the backend change")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "needs the openai backend" in notifications(app), "the refusal")
        assert app.screen.id == "editor" and llm.count_requests == 0


async def test_a_failed_batch_run_resumed_from_the_history_goes_through_a_new_batch(tmp_path):
    api = FakeBatchAPI().start()
    try:
        api.fault.end = "failed"
        app = cost_app(tmp_path, api)
        app.jobs.batch_poll_interval = 0.05
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, app)
            await set_input(pilot, app, "count", "10")
            await set_input(pilot, app, "batch", "5")
            app.screen.query_one("#batch-api", Checkbox).value = True
            await pilot.press("ctrl+g")
            await until(pilot, lambda: app.last_result is not None, "the batch run's end", timeout=60)
            first = app.last_result
            assert first.status == "failed" and api.creates == 1
            api.fault.end = "completed"
            await pilot.press("f4")
            await on_screen(pilot, app, "history")
            app.last_result = None
            await pilot.press("u")
            await until(pilot, lambda: app.last_result is not None, "the resumed run's end", timeout=60)
            resumed = app.last_result
            assert (resumed.run_id, resumed.status, resumed.accepted) == (first.run_id, "done", 10)
            assert api.creates == 2 and api.count_requests == 0  # a new batch, no chat completions
    finally:
        api.stop()


def test_the_panels_text_for_the_embedded_model_is_time_only():
    from synth_tui.core.estimate import Answer, Pilot, project
    from synth_tui.core.estimate_text import projection_text

    projection = project([Answer(5, 100, 100, 1.0)], Pilot("p", 5, 100, 100, 1.0), count=50, batch_size=5,
                         concurrency=2, price=None)
    local = projection_text(projection, "local", surface="tui")
    assert "to finish" in local and "tokens  " not in local and "cost" not in local
    remote = projection_text(projection, "openai", surface="tui")
    assert "tokens  2,000" in remote and "cost    unknown: no price" in remote and "$0" not in remote


async def test_the_settings_screen_saves_several_base_urls_and_the_confirmation_threshold(tmp_path, llm):
    import json

    app = cost_app(tmp_path, llm)
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await started(pilot, app)
        await pilot.press("f5")
        await on_screen(pilot, app, "settings")
        await set_input(pilot, app, "openai-base_url", "http://127.0.0.1:1/v1, notaurl")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "OpenAI-compatible Base URLs: the base URL 'notaurl' is not" in notifications(app),
                    "the refusal naming the field")
        assert not (tmp_path / "settings.json").exists() or "notaurl" not in (tmp_path / "settings.json").read_text()
        await set_input(pilot, app, "openai-base_url", "http://127.0.0.1:1/v1, http://127.0.0.1:2/v1")
        await set_input(pilot, app, "confirm-cost-over", "0.25")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Saved to" in notifications(app), "the settings to be saved")
        saved = json.loads((tmp_path / "settings.json").read_text())
        assert saved["backends"]["openai"]["base_url"] == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]
        assert saved["confirm_cost_over"] == 0.25 and app.settings.confirm_cost_over == 0.25
        await pilot.press("f2")
        await on_screen(pilot, app, "editor")
        placeholder = app.screen.query_one("#base-url", Input).placeholder
        assert placeholder == "http://127.0.0.1:1/v1, http://127.0.0.1:2/v1"

        # a base URL that is no address is refused in the editor, naming the field; no run starts
        await set_input(pilot, app, "base-url", "notaurl")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "Base URL: the base URL 'notaurl' is not" in notifications(app), "the refusal")
        assert app.screen.id == "editor" and not app.running and app.last_result is None


async def test_the_estimate_panel_says_when_the_budget_would_stop_the_run_short(tmp_path, llm):
    app = cost_app(tmp_path, llm)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        for ident, value in (("count", "400"), ("batch", "2"), ("budget", "0.05")):
            await set_input(pilot, app, ident, value)
        await pilot.press("f6")
        panel = await shown(pilot, EstimatePanel)
        text = str(panel.query_one("#estimate-text", Static).render())
        assert "Budget: $0.0500 is less than this estimate: the run will stop at its budget, short of 400" in text
