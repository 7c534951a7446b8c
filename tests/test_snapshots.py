"""Snapshots of every screen at 80x24 and 120x40. Stable: fixed size, data and figures,
no cursor blink, no animation, no clock. Update deliberately with --snapshot-update."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import TextArea

from synth_tui.app import SynthApp
from synth_tui.core.backends import BackendSpec
from synth_tui.core.config import Settings
from synth_tui.core.engine import RunResult
from synth_tui.core.events import (
    Progress, RateLimited, RecordRejected, RecordsAccepted, RetryScheduled, RunFailed, RunStarted,
)
from synth_tui.core.store import Store

from .waiting import settle, until

SIZES = [(80, 24), (120, 40)]
SETTINGS_PATH = Path("/home/user/.config/synth-tui/settings.json")
PEOPLE = [
    {"name": "Ana Ribeiro", "email": "ana@example.com", "age": 34, "plan": "pro"},
    {"name": "Kenji Sato", "email": "kenji@example.org", "age": 51, "plan": "free"},
    {"name": "Lucía [bold]Gómez[/]", "email": "lucia@example.net", "age": 27, "plan": "team"},
]


def app_for(tmp_path: Path) -> SynthApp:
    settings = Settings(backend="openai", path=SETTINGS_PATH)
    settings.backends["openai"].base_url = "http://127.0.0.1:8000/v1"
    return SynthApp(data_dir=tmp_path / "data", settings=settings, blink=False)


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


def progress(done: int, total: int = 100) -> Progress:
    return Progress(done=done, total=total, elapsed=12.5, rejected=3, duplicates=1, retries=2, requests=9,
                    prompt_tokens=4100, completion_tokens=2300, concurrency=4, done_this_session=done)


async def show_progress(pilot, failed: bool = False) -> None:
    app = pilot.app
    screen = app.get_screen("progress")
    screen.reset(100, BackendSpec(kind="openai", model="gpt-4o-mini"), ["name", "email", "age", "plan"])
    app.switch_screen("progress")
    await until(pilot, lambda: app.screen is screen and screen.is_mounted, "the progress screen")
    screen.handle_event(RunStarted(run_id="r1", progress=progress(0), backend="openai", model="gpt-4o-mini"))
    screen.handle_event(RecordsAccepted(run_id="r1", progress=progress(3), records=tuple(PEOPLE)))
    screen.handle_event(RecordRejected(run_id="r1", progress=progress(3),
                                       reason="$.age: 'thirty' is not of type 'integer'", raw='{"age": "thirty"}'))
    screen.handle_event(RateLimited(run_id="r1", progress=progress(3), delay=2.0, concurrency=2))
    screen.handle_event(RetryScheduled(run_id="r1", progress=progress(3), reason="HTTP 503 from server",
                                       attempt=1, delay=0.5))
    if failed:
        error = "most requests are failing (17 of the last 20): HTTP 503 from http://127.0.0.1:8000/v1"
        screen.handle_event(RunFailed(run_id="r1", progress=progress(3), message=error))
        screen.handle_result(RunResult(
            run_id="20261105-110000-eeeeee", status="failed", records=[], requested=100, accepted=3, rejected=3,
            duplicates=1, retries=2, requests=9, prompt_tokens=0, completion_tokens=0, elapsed=12.5,
            started="", finished="", error=error))
        app.sub_title = "last run failed: 3/100"
    else:
        app.sub_title = "running 3/100 · 0.2 rec/s · rejected 3"
    screen.flush(final=True)  # draw now rather than at the next refresh tick
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_editor(snap_compare, tmp_path, size):
    assert snap_compare(app_for(tmp_path), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_editor_invalid_schema(snap_compare, tmp_path, size):
    async def broken(pilot):
        screen = pilot.app.screen
        screen.query_one("#schema-editor", TextArea).load_text(
            '{\n  "name": {"type": "string"},\n  "age": {"type": "integer", "minimum": }\n}')
        await until(pilot, lambda: screen.checked is None and screen.query_one("#schema-status").has_class("error"),
                    "the schema error under the editor")
        await settle(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=size, run_before=broken)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_progress_running(snap_compare, tmp_path, size):
    assert snap_compare(app_for(tmp_path), terminal_size=size, run_before=show_progress)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_progress_failed(snap_compare, tmp_path, size):
    async def failed(pilot):
        await show_progress(pilot, failed=True)

    assert snap_compare(app_for(tmp_path), terminal_size=size, run_before=failed)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_history(snap_compare, tmp_path, size):
    seed_history(tmp_path / "data")

    async def second_run(pilot):
        await pilot.press("f4")
        await until(pilot, lambda: pilot.app.screen.id == "history" and pilot.app.focused is not None
                    and pilot.app.focused.id == "runs", "the history's run table")
        await pilot.press("down")
        await until(pilot, lambda: pilot.app.focused.cursor_row == 1, "the cursor on the second run")
        await settle(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=size, run_before=second_run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_settings(snap_compare, tmp_path, size):
    async def settings(pilot):
        await pilot.press("f5")
        await until(pilot, lambda: pilot.app.screen.id == "settings", "the settings screen")
        pilot.app.screen.query_one("#data-dir").value = "/home/user/synth-data"  # not the test's temp path
        await settle(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=size, run_before=settings)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, tmp_path, size):
    from synth_tui.screens.dialogs import HelpScreen

    async def help_screen(pilot):
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "the help screen")
        await settle(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=size, run_before=help_screen)


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


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_report_view(snap_compare, tmp_path, size):
    from synth_tui.screens.report import ReportScreen

    ids = seed_comparison(tmp_path / "data")

    async def open_report(pilot):
        screen = ReportScreen(ids[1])
        await pilot.app.push_screen(screen)
        table = screen.query_one("#report-fields")
        # computed in a worker thread; the table takes the focus once it is filled
        await until(pilot, lambda: screen.report is not None and table.has_focus, "the report")
        await pilot.press("down")  # the enum field
        await until(pilot, lambda: screen.field_shown is screen.report.fields[1], "the second field's figures")
        await settle(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=size, run_before=open_report)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_comparison_view(snap_compare, tmp_path, size):
    from synth_tui.screens.report import ComparisonScreen

    ids = seed_comparison(tmp_path / "data")

    async def open_comparison(pilot):
        await pilot.app.push_screen(ComparisonScreen(ids, {"gpt-4o-mini": (0.15, 0.6)}))
        await until(pilot, lambda: bool(pilot.app.screen.rows), "the comparison")  # computed in a worker thread
        await settle(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=size, run_before=open_comparison)
