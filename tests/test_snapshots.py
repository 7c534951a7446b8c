"""Snapshots of every screen and dialog at 80x24 and 120x40, under the App's own header.
Stable: fixed size and data, no cursor blink, no animation, no clock. Update deliberately
with --snapshot-update.

Each test runs in its temporary folder with the data directory "data" in it, so no
temporary path shows on screen. Runs are real (the test server, the engine, the App's
worker thread) with the engine's clock standing still and its run id fixed, so their
rate, times and name read the same on every machine and under any load. Every test waits
on what the user would see (tests/waiting.py), never on the clock."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from textual.widgets import DataTable, Input, Static, TextArea

from synth_tui.app import SynthApp
from synth_tui.core.config import Settings
from synth_tui.core.events import Progress
from synth_tui.core.store import Store
from synth_tui.screens.dialogs import (
    ChoiceDialog,
    ConfirmDialog,
    ExportDialog,
    HelpScreen,
    NameDialog,
    RejectedScreen,
    TextDialog,
)

from .fake_llm import FakeLLM, Fault, ModelBehaviour
from .waiting import focused, footer_actions, settle, shown, until

SIZES = [(80, 24), (120, 40)]
sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
SETTINGS_PATH = Path("/home/user/.config/synth-tui/settings.json")
MODEL = "gpt-4o-mini"  # the openai backend's default model, which the test server serves
RUN_ID = "20261105-110000-eeeeee"
PEOPLE = [
    {"name": "Ana Ribeiro", "email": "ana@example.com", "age": 34, "plan": "pro"},
    {"name": "Kenji Sato", "email": "kenji@example.org", "age": 51, "plan": "free"},
    {"name": "Lucía [bold]Gómez[/]", "email": "lucia@example.net", "age": 27, "plan": "team"},
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths on screen are named relative to the working folder: the test's own."""
    monkeypatch.chdir(tmp_path)


def app_for(server: FakeLLM | None = None) -> SynthApp:
    settings = Settings(backend="openai", path=SETTINGS_PATH)
    settings.backends["openai"].base_url = f"{server.url}/v1" if server else "http://127.0.0.1:8000/v1"
    return SynthApp(data_dir="data", settings=settings, blink=False)


class HeldLLM(FakeLLM):
    """The test server, holding every request after the first ``hold_after`` until it
    stops: a run that waits on its model for as long as a snapshot takes."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.hold_after: int | None = None
        self.held = 0
        self._release = asyncio.Event()

    async def _common(self, request: Any) -> Any:
        if self.hold_after is not None and self.count_requests >= self.hold_after:
            self.held += 1
            await self._release.wait()
            if request.transport is None or request.transport.is_closing():  # the run has gone
                return None, web.Response(status=503), Fault()
        return await super()._common(request)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._release.set)
        super().stop()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    """The test server, and an engine whose clock stands still and whose next run is RUN_ID."""
    run_module = importlib.import_module("synth_tui.core.engine.run")
    monkeypatch.setattr(run_module, "time", SimpleNamespace(monotonic=lambda: 1000.0))
    monkeypatch.setattr(run_module, "new_run_id", lambda: RUN_ID)
    srv = HeldLLM(models={MODEL: ModelBehaviour()}).start()
    yield srv
    srv.stop()


async def generate(pilot: Any, count: int, batch: int) -> None:
    """Start a run of the editor's schema, one request at a time and seeded (the prompts
    then ask for the same values every time), as a user does."""
    editor = await shown(pilot, "editor")
    for ident, value in (("count", count), ("batch", batch), ("concurrency", 1), ("seed", 7)):
        editor.query_one(f"#{ident}", Input).value = str(value)
    await pilot.press("ctrl+g")
    await shown(pilot, "progress")


async def run_to_the_end(pilot: Any, count: int, batch: int) -> None:
    app = pilot.app
    await generate(pilot, count, batch)
    await until(pilot, lambda: app.last_result is not None and "cancel_run" not in footer_actions(app),
                "the end of the run")
    # the last records reach the screen with the next drain of the run's events, after its end
    await until(pilot, lambda: not app.jobs.events and app.screen.query_one("#latest", DataTable).row_count
                == min(app.last_result.accepted, 40), "the last records on the progress screen")
    app.clear_notifications()  # toasts leave on a timer: a snapshot would depend on the clock


async def run_held(pilot: Any, server: HeldLLM) -> None:
    """A run whose first answer was all invalid, waiting on its second."""
    app = pilot.app
    server.hold_after = 1
    server.faults.append(Fault(invalid=3))
    await generate(pilot, count=100, batch=3)
    await until(pilot, lambda: server.held == 1 and not app.jobs.events and app.last_event is not None
                and app.last_event.progress.rejected == 3 and "cancel_run" in footer_actions(app),
                "the run to wait on its second answer")


def progress(done: int, total: int = 100) -> Progress:
    """Fixed figures for events made by hand (the hostile-input tests draw with them)."""
    return Progress(done=done, total=total, elapsed=12.5, rejected=3, duplicates=1, retries=2, requests=9,
                    prompt_tokens=4100, completion_tokens=2300, concurrency=4, done_this_session=done)


def seed_history(data_dir: Path) -> None:
    store = Store(data_dir)
    runs = [
        ("20261101-090000-aaaaaa", "2026-11-01T09:00:00+00:00", "done", 3, 3, 4.2, None, "openai", "gpt-4o-mini"),
        ("20261102-101500-bbbbbb", "2026-11-02T10:15:00+00:00", "failed", 0, 50, 0.8,
         "openai refused the API key (HTTP 401 from https://api.openai.com/v1/chat/completions). "
         "Check $OPENAI_API_KEY.", "openai", "gpt-4o-mini"),
        ("20261103-120000-cccccc", "2026-11-03T12:00:00+00:00", "cancelled", 2, 100, 61.0, None, "local", "smollm2"),
        ("20261104-080000-dddddd", "2026-11-04T08:00:00+00:00", "interrupted", 1, 1000, 3700.0, None, "ollama",
         "llama3.2"),
    ]
    schema = {"type": "object", "properties": {k: {"type": "string"} for k in ("name", "email", "age", "plan")}}
    for run_id, created, status, accepted, requested, elapsed, error, backend, model in runs:
        store.create_run({"id": run_id, "created": created, "schema": schema,
                          "config": {"count": requested, "batch_size": 10, "concurrency": 4,
                                     "params": {"temperature": 0.7, "seed": 1}},
                          "backend": {"backend": backend, "model": model, "base_url": None}})
        journal = store.open_journal(run_id)
        journal.append(PEOPLE[:accepted])
        journal.close()
        store.update_run(run_id, status=status, error=error, elapsed=elapsed,
                         counts={"requested": requested, "accepted": accepted, "rejected": 1, "duplicates": 0,
                                 "retries": 2, "prompt_tokens": 1200, "completion_tokens": 800})
    store.close()


@sizes
def test_editor(snap_compare, size):
    async def editor(pilot):
        await shown(pilot, "editor")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=editor)


@sizes
def test_editor_invalid_schema(snap_compare, size):
    async def broken(pilot):
        screen = await shown(pilot, "editor")
        screen.query_one("#schema-editor", TextArea).load_text(
            '{\n  "name": {"type": "string"},\n  "age": {"type": "integer", "minimum": }\n}')
        await until(pilot, lambda: screen.checked is None and screen.query_one("#schema-status").has_class("error"),
                    "the schema error under the editor")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=broken)


@sizes
def test_progress_running(snap_compare, server, size):
    async def running(pilot):
        await run_held(pilot, server)
        await settle(pilot)

    assert snap_compare(app_for(server), terminal_size=size, run_before=running)


@sizes
def test_progress_failed(snap_compare, server, size):
    async def failed(pilot):
        server.faults.append(Fault())  # three good records, then only invalid ones: it gives up
        server.always = Fault(invalid=99)
        await run_to_the_end(pilot, count=6, batch=3)
        # the log's last line, the long failure, may stay under the horizontal scrollbar it
        # brings (the log scrolls to its end before that scrollbar is laid out): a user scrolls
        await pilot.click("#event-log")
        await focused(pilot, "event-log")
        await pilot.press("end")
        await settle(pilot)

    assert snap_compare(app_for(server), terminal_size=size, run_before=failed)


async def rejected_output(pilot, server: HeldLLM) -> RejectedScreen:
    """F7 after a run whose first answer held two invalid records. The run's records are
    narrow: what shows beside the dialog is the screen under it, and a wide table there
    is drawn at its own pace."""
    editor = await shown(pilot, "editor")
    area = editor.query_one("#schema-editor", TextArea)
    area.load_text('{"name": {"type": "string"}, "n": {"type": "integer", "minimum": 1, "maximum": 9}}')
    await until(pilot, lambda: editor.checked is not None and editor.checked_text == area.text, "the small schema")
    server.faults.append(Fault(invalid=2))
    await run_to_the_end(pilot, count=5, batch=5)
    await settle(pilot)  # a dialog shows the screen under it as it was drawn then
    await pilot.press("f7")
    screen = await shown(pilot, RejectedScreen)
    await focused(pilot, "rejected")
    return screen


@sizes
def test_rejected_output(snap_compare, server, size):
    async def rejections(pilot):
        await rejected_output(pilot, server)
        await settle(pilot)

    assert snap_compare(app_for(server), terminal_size=size, run_before=rejections)


@sizes
def test_rejected_raw_text(snap_compare, server, size):
    async def raw_text(pilot):
        screen = await rejected_output(pilot, server)
        table = screen.query_one("#rejected", DataTable)
        await pilot.press("down")
        await until(pilot, lambda: table.cursor_row == 1, "the cursor on the second rejection")
        await settle(pilot)
        await pilot.press("enter")  # its raw output
        await shown(pilot, TextDialog)
        await settle(pilot)

    assert snap_compare(app_for(server), terminal_size=size, run_before=raw_text)


@sizes
def test_quit_while_a_run_goes(snap_compare, server, size):
    async def quitting(pilot):
        await run_held(pilot, server)
        await settle(pilot)
        await pilot.press("ctrl+q")
        await shown(pilot, ChoiceDialog)
        await focused(pilot, "choice-keep")
        await settle(pilot)

    assert snap_compare(app_for(server), terminal_size=size, run_before=quitting)


@sizes
def test_history(snap_compare, size):
    seed_history(Path("data"))

    async def second_run(pilot):
        await pilot.press("f4")
        await shown(pilot, "history")
        table = await focused(pilot, "runs")
        await pilot.press("down")
        await until(pilot, lambda: table.cursor_row == 1, "the cursor on the second run")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=second_run)


async def history_run(pilot, row: int) -> None:
    await pilot.press("f4")
    await shown(pilot, "history")
    table = await focused(pilot, "runs")
    await pilot.press(*["down"] * row)
    await until(pilot, lambda: table.cursor_row == row, f"the cursor on run {row + 1}")
    await settle(pilot)


@sizes
def test_delete_run_question(snap_compare, size):
    seed_history(Path("data"))

    async def delete(pilot):
        await history_run(pilot, 1)
        await pilot.press("d")
        await shown(pilot, ConfirmDialog)
        await focused(pilot, "no")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=delete)


@sizes
def test_export_asks_to_overwrite(snap_compare, size):
    seed_history(Path("data"))
    Path("people.jsonl").write_text("{}\n")

    async def overwrite(pilot):
        await history_run(pilot, 0)
        await pilot.press("e")
        dialog = await shown(pilot, ExportDialog)
        path = await focused(pilot, "path")
        path.value = "people.jsonl"  # a name in the working folder, as typed
        await pilot.press("enter")
        problem = dialog.query_one("#export-problem", Static)
        await until(pilot, lambda: "Overwrite" in str(problem.render()), "the overwrite question")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=overwrite)


@sizes
def test_template_name_refused(snap_compare, size):
    async def save_as(pilot):
        await shown(pilot, "editor")
        await settle(pilot)
        await pilot.press("ctrl+s")
        dialog = await shown(pilot, NameDialog)
        await focused(pilot, "name")
        await pilot.press(*"my people", "enter")
        problem = dialog.query_one("#name-problem", Static)
        await until(pilot, lambda: str(problem.render()), "the refusal under the name")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=save_as)


@sizes
def test_settings(snap_compare, size):
    async def settings(pilot):
        await pilot.press("f5")
        await shown(pilot, "settings")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=settings)


@sizes
def test_help(snap_compare, size):
    async def help_screen(pilot):
        await shown(pilot, "editor")
        await settle(pilot)
        await pilot.press("f1")
        await shown(pilot, HelpScreen)
        await focused(pilot, "help-keys")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=help_screen)


def seed_comparison(data_dir: Path) -> list[str]:
    store = Store(data_dir)
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "plan": {"type": "string", "enum": ["free", "pro", "team"]},
                                               "age": {"type": "integer"}}}
    ids = []
    for run_id, model, rejected, records in (
        ("20261106-090000-aaaaaa", "gpt-4o-mini", 0,
         [{"name": f"P{i}", "plan": ["free", "pro", "team"][i % 3], "age": 20 + 7 * i} for i in range(9)]),
        ("20261106-091000-bbbbbb", "llama3.2", 4,
         [{"name": f"P{i % 5}", "plan": ["free", "free", "pro"][i % 3], "age": 30 + i} for i in range(9)]),
    ):
        store.create_run({"id": run_id, "created": "2026-11-06T09:00:00+00:00", "schema": schema,
                          "config": {"count": 9, "params": {"seed": 7}},
                          "backend": {"backend": "openai" if model.startswith("gpt") else "ollama", "model": model}})
        journal = store.open_journal(run_id)
        journal.append(records)
        journal.close()
        store.append_rejections(run_id, [{"reason": "$: 'age' is a required property", "raw": "{}", "kind": "invalid"}
                                         for _ in range(rejected)])
        store.update_run(run_id, status="done", elapsed=3.0,
                         counts={"requested": 9, "accepted": 9, "rejected": rejected, "duplicates": 1,
                                 "prompt_tokens": 900, "completion_tokens": 450, "answers": 3, "latency_ms": 1500})
        ids.append(run_id)
    store.close()
    return ids


@sizes
def test_report_view(snap_compare, size):
    from synth_tui.screens.report import ReportScreen

    ids = seed_comparison(Path("data"))

    async def open_report(pilot):
        screen = ReportScreen(ids[1])
        await pilot.app.push_screen(screen)
        # computed in a worker thread; the table takes the focus once it is filled
        await until(pilot, lambda: screen.report is not None, "the report")
        table = await focused(pilot, "report-fields")
        await pilot.press("down")  # the enum field
        await until(pilot, lambda: table.cursor_row == 1 and screen.field_shown is screen.report.fields[1],
                    "the cursor and the figures on the second field")
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=open_report)


@sizes
def test_comparison_view(snap_compare, size):
    from synth_tui.screens.report import ComparisonScreen

    ids = seed_comparison(Path("data"))

    async def open_comparison(pilot):
        await pilot.app.push_screen(ComparisonScreen(ids, {"gpt-4o-mini": (0.15, 0.6)}))
        await until(pilot, lambda: bool(pilot.app.screen.rows), "the comparison")  # computed in a worker thread
        await settle(pilot)

    assert snap_compare(app_for(), terminal_size=size, run_before=open_comparison)


def priced_app(server: FakeLLM) -> SynthApp:
    app = app_for(server)
    app.settings.prices[MODEL] = (0.15, 0.6)
    return app


@sizes
def test_estimate_panel(snap_compare, server, size):
    from synth_tui.screens.estimate import EstimatePanel

    async def estimate(pilot):
        editor = await shown(pilot, "editor")
        for ident, value in (("count", 200), ("batch", 5), ("concurrency", 1), ("seed", 7)):
            editor.query_one(f"#{ident}", Input).value = str(value)
        await pilot.press("f6")
        await shown(pilot, EstimatePanel)
        progress_screen = pilot.app.get_screen("progress")
        await until(pilot, lambda: not pilot.app.jobs.events and progress_screen.query_one("#latest", DataTable)
                    .row_count == 5, "the pilot's records behind the panel")
        pilot.app.clear_notifications()
        await settle(pilot)

    assert snap_compare(priced_app(server), terminal_size=size, run_before=estimate)


@sizes
def test_progress_with_cost_and_budget(snap_compare, server, size):
    async def running(pilot):
        app = pilot.app
        server.hold_after = 2
        editor = await shown(pilot, "editor")
        editor.query_one("#budget", Input).value = "0.5"
        await generate(pilot, count=100, batch=3)
        await until(pilot, lambda: server.held == 1 and not app.jobs.events and app.last_event is not None
                    and app.last_event.progress.done == 6 and "cancel_run" in footer_actions(app),
                    "the run to wait on its third answer")
        await pilot.press("f2")  # the records table is redrawn now and then while shown, and whole on return
        await shown(pilot, "editor")
        await pilot.press("f3")
        progress_screen = await shown(pilot, "progress")
        await until(pilot, lambda: progress_screen.query_one("#latest", DataTable).row_count == 6, "its six records")
        await settle(pilot)

    assert snap_compare(priced_app(server), terminal_size=size, run_before=running)
