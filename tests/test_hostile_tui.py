"""Hostile text from a model, a server or a tampered history file, through the real TUI.

Every screen that shows outside text is drawn, then its screenshot is searched for the
characters that drive a terminal (ESC for CSI/OSC, BEL, C1, bidi overrides). Outside text
is also never markup: `[/nope]` used to crash the app from a notification.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from textual.widgets import DataTable, Static
from textual.widgets._toast import Toast, ToastRack

from synth_tui.app import SynthApp
from synth_tui.core.backends import BackendSpec
from synth_tui.core.config import Settings
from synth_tui.core.events import Notice, RecordRejected, RecordsAccepted, RunStarted
from synth_tui.core.store import Store
from synth_tui.screens.dialogs import RejectedScreen, TextDialog
from synth_tui.screens.report import ComparisonScreen, ReportScreen

from .test_snapshots import progress
from .waiting import settle, until

OSC52 = "\x1b]52;c;c2VjcmV0\x07"
TITLE = "\x1b]0;owned\x07"
CLEAR = "\x1b[2J"
C1 = "\x9b31m"
BIDI = "\u202egnp.exe"
MARKUP = "[/nope][bold red]loud[/bold red]"
HOSTILE = OSC52 + TITLE + CLEAR + C1 + BIDI + MARKUP
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\u202e")

RECORDS = [
    {"name": "Ana" + OSC52, HOSTILE: "x" + CLEAR, "plan": "pro"},
    {"name": "Bo" + BIDI, HOSTILE: MARKUP, "plan": "free" + C1},
]


def assert_clean(app: SynthApp, where: str) -> str:
    shot = app.export_screenshot()
    for char in FORBIDDEN:
        assert char not in shot, f"{where}: {char!r} reached the screen"
    return shot


def seed_hostile_history(data_dir: Path) -> list[str]:
    store = Store(data_dir)
    ids = []
    for n, model in enumerate(("model" + TITLE, "other" + MARKUP)):
        run_id = f"20261120-10000{n}-aaaaa{n}"
        store.create_run({"id": run_id, "created": "2026-11-20T10:00:00+00:00",
                          "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                          "config": {"count": 2, "params": {"seed": 1}},
                          "backend": {"backend": "openai", "model": model, "base_url": "http://h/" + CLEAR}})
        journal = store.open_journal(run_id)
        journal.append(RECORDS)
        journal.close()
        store.append_rejections(run_id, [{"reason": "bad " + HOSTILE, "raw": HOSTILE, "kind": "invalid"}])
        store.update_run(run_id, status="failed", error="server said " + HOSTILE, elapsed=1.0,
                         counts={"requested": 2, "accepted": 2, "rejected": 1})
        ids.append(run_id)
    store.close()
    return ids


def make_app(tmp_path: Path, base_url: str = "http://127.0.0.1:9/v1") -> SynthApp:
    settings = Settings(backend="openai", path=tmp_path / "settings.json")
    settings.backends["openai"].base_url = base_url
    settings.backends["openai"].model = "m"
    return SynthApp(data_dir=tmp_path / "data", settings=settings, blink=False)


async def test_history_preview_records_report_and_comparison_show_no_control_characters(tmp_path):
    ids = seed_hostile_history(tmp_path / "data")
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.id == "history" and app.screen.runs, "the history")
        await settle(pilot)
        shot = assert_clean(app, "history")
        assert "␛]52;c;" in shot  # shown, made visible: the reader sees what the model sent
        records = app.screen.query_one("#records", DataTable)
        assert records.row_count == 2

        report = ReportScreen(ids[0])
        await app.push_screen(report)
        await until(pilot, lambda: report.report is not None, "the report")
        for _ in report.report.fields:
            await settle(pilot)
            assert_clean(app, f"report field {report.field_shown.path!r}")
            await pilot.press("down")
        app.pop_screen()

        comparison = ComparisonScreen(ids)
        await app.push_screen(comparison)
        await until(pilot, lambda: bool(comparison.rows), "the comparison")
        await settle(pilot)
        assert_clean(app, "comparison")


async def test_progress_rejected_output_and_raw_text_show_no_control_characters(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.get_screen("progress")
        screen.reset(2, BackendSpec(kind="openai", model="m" + TITLE), ["name", HOSTILE])
        app.switch_screen("progress")
        await until(pilot, lambda: app.screen is screen and screen.is_mounted, "the progress screen")
        screen.handle_event(RunStarted(run_id="r", progress=progress(0), backend="openai", model="m" + OSC52))
        screen.handle_event(RecordsAccepted(run_id="r", progress=progress(2), records=tuple(RECORDS)))
        screen.handle_event(RecordRejected(run_id="r", progress=progress(2), reason="bad " + HOSTILE, raw=HOSTILE))
        screen.handle_event(Notice(run_id="r", progress=progress(2), message="note " + HOSTILE))
        screen.flush(final=True)
        await settle(pilot)
        assert_clean(app, "progress")

        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, RejectedScreen), "the rejected answers")
        await settle(pilot)
        assert_clean(app, "rejected answers")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TextDialog), "the raw output")
        await settle(pilot)
        shot = assert_clean(app, "raw output")
        assert "[/nope]" in shot  # markup shown as typed


class HostileServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that refuses every request with a hostile message."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({"error": {"message": "denied " + HOSTILE}}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:  # the client gave up first: nothing to tell it
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def toasts(app: SynthApp) -> str:
    """The text of the notifications on screen (run_test shows them when asked to)."""
    rack = app.screen.get_child_by_type(ToastRack)
    return "\n".join(str(t.render()) for t in rack.walk_children() if isinstance(t, Toast))


async def test_server_error_text_is_neither_markup_nor_control_characters(tmp_path, hostile_server):
    app = make_app(tmp_path, hostile_server)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("ctrl+g")
        await until(pilot, lambda: app.last_result is not None, "the refused run")
        assert app.last_result.status == "failed"
        await until(pilot, lambda: "denied" in toasts(app), "the error notification")
        await settle(pilot)
        assert "[/nope][bold red]loud" in toasts(app)  # as typed: not styled, no MarkupError
        assert_clean(app, "failed run")

        await pilot.press("f5")
        await until(pilot, lambda: app.screen.id == "settings", "the settings")
        app.screen.query_one("#test").press()
        await until(pilot, lambda: toasts(app).count("denied") >= 2 or "problem" in toasts(app),
                    "the connection test's answer")
        await settle(pilot)
        assert_clean(app, "connection test")
        status = app.get_screen("progress").query_one("#run-title", Static)
        assert "␛]52;c;" in str(status.render())


async def test_resume_asks_before_sending_the_key_where_an_edited_history_points(tmp_path, llm):
    """A history file that names another host (or key variable) than the settings does not
    decide alone where the key goes: the user is asked, and nothing is sent until yes."""
    from synth_tui.screens.dialogs import ConfirmDialog

    from .fake_llm import FakeLLM

    elsewhere = FakeLLM().start()
    try:
        store = Store(tmp_path / "data")
        store.create_run({"id": "20261120-110000-cccccc", "created": "2026-11-20T11:00:00+00:00",
                          "schema": {"type": "object", "properties": {"name": {"type": "string"}},
                                     "required": ["name"]},
                          "config": {"count": 3, "batch_size": 1, "concurrency": 1, "params": {}},
                          "backend": {"backend": "openai", "model": "test-model",
                                      "base_url": elsewhere.url + "/v1"}})
        store.update_run("20261120-110000-cccccc", status="cancelled", counts={"requested": 3, "accepted": 0})
        store.close()
        app = make_app(tmp_path, llm.url + "/v1")
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await pilot.press("f4")
            await until(pilot, lambda: app.screen.id == "history" and app.screen.runs, "the history")
            app.screen.query_one("#runs", DataTable).focus()
            await pilot.press("u")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
            assert elsewhere.url in str(app.screen.query_one(".dialog-title", Static).render())
            await pilot.press("escape")
            await until(pilot, lambda: "Not resumed" in toasts(app), "the refusal")
            assert elsewhere.count_requests == 0 and llm.count_requests == 0 and app.last_result is None

            await pilot.press("u")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
            await pilot.press("y")
            await until(pilot, lambda: app.last_result is not None, "the resumed run")
            assert app.last_result.status == "done" and app.last_result.accepted == 3
            assert elsewhere.count_requests > 0 and llm.count_requests == 0
    finally:
        elsewhere.stop()
