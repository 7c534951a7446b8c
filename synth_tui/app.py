"""The Textual app: screens, the generation worker, and the one place errors surface.

A run belongs to the App, not to a screen, so switching screens never stops it. The
worker thread runs the engine on its own event loop and talks to the UI only through
``post_message``; the header's subtitle shows the run's progress on every screen.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import random
from collections import deque
from pathlib import Path
from typing import Any, Iterable, cast

from rich.text import Text
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.events import DescendantFocus
from textual.geometry import Size
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState

from .core.backends import BackendSpec, ResumeNeedsConsent, backend_from_settings, resume_spec
from .core.config import Settings, load_settings
from .core.engine import Run, RunConfig, RunResult, probe_backend
from .core.errors import DataDirLocked, SynthError, UserInputError
from .core.events import Event, Notice, RunFailed, RunFinished, RunStarted
from .core.store import Store, default_data_dir
from .messages import (
    CompareRequested, ConnectionTestRequested, GenerateRequested, JobSpec, RerunRequested,
    ResumeRequested,
)
from .screens.dialogs import ChoiceDialog, ConfirmDialog, HelpScreen, TooSmallScreen
from .screens.editor import EditorScreen
from .screens.history import HistoryScreen
from .screens.progress import ProgressScreen
from .screens.report import ComparisonScreen
from .screens.settings import SettingsScreen
from .core.textsafe import clean_line, clean_text


def stylesheet_path() -> Path:
    """screens.tcss ships inside the wheel; in a source checkout it sits at the top."""
    packaged = importlib.resources.files("synth_tui") / "screens.tcss"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "screens.tcss"


class EventsReadyMessage(Message):
    """Engine events wait in the app's queue: drain it now (start, end, notices)."""


class RunDoneMessage(Message):
    def __init__(self, result: RunResult) -> None:
        super().__init__()
        self.result = result


class RunBeginMessage(Message):
    """A comparison moves on to its next model."""

    def __init__(self, total: int, spec: BackendSpec, columns: list[str]) -> None:
        super().__init__()
        self.total = total
        self.spec = spec
        self.columns = columns


class ComparisonDoneMessage(Message):
    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids


class ProbeDoneMessage(Message):
    def __init__(self, kind: str, ok: bool, message: str) -> None:
        super().__init__()
        self.kind = kind
        self.ok = ok
        self.message = message


STORE_LOCK_WAIT = 2.0  # seconds
MIN_SIZE = (80, 24)  # every screen's layout and keys fit from this size up
WORKER_FAILURES = {
    "generate": "Could not run the generation",
    "resume": "Could not resume the run",
    "compare": "The comparison stopped",
    "probe": "Connection test failed",
    "report": "Could not compute the report",
    "comparison": "Could not compare the runs",
}


class SynthApp(App[None]):
    TITLE = "synth-tui"
    CSS_PATH = stylesheet_path()
    BINDINGS = [
        Binding("f1", "help", "Help", id="app.help"),
        Binding("f2", "show('editor')", "Editor", id="app.editor"),
        Binding("f3", "show('progress')", "Progress", id="app.progress"),
        Binding("f4", "show('history')", "History", id="app.history"),
        Binding("f5", "show('settings')", "Settings", id="app.settings"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="app.quit"),
        Binding("f8", "cancel_run", "Cancel run", id="app.cancel-run"),
    ]

    def __init__(
        self,
        *,
        data_dir: str | Path | None = None,
        settings: Settings | None = None,
        blink: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        if data_dir is not None:  # --data-dir: this session only, never saved
            self.settings.override("data_dir", str(data_dir), by="--data-dir")
        self.data_dir = Path(self.settings.data_dir or default_data_dir()).expanduser()
        self.blink = blink  # tests turn the cursor blink off for stable snapshots
        if not blink:
            self.animation_level = "none"
        self.store: Store | None = None
        self.store_error: str | None = None
        self.current_run: Run | None = None
        self.last_result: RunResult | None = None
        self.last_event: Event | None = None  # the latest event the screens were given
        # Engine events from the worker thread wait here (deque appends are thread-safe)
        # and are drained ten times a second: a run of thousands of answers a second then
        # costs the UI ten wake-ups a second, not thousands (bench/tui_overhead.py).
        self._events: deque[Event] = deque()
        self._quit_when_done = False

    @property
    def running_run_id(self) -> str | None:
        run = self.current_run
        return run.run_id if run is not None else None

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification, from every screen, passes here. Messages carry text from
        outside (server errors, file names, model output): shown as text, never as markup,
        and never with a character that could drive the terminal."""
        super().notify(clean_text(message), title=clean_line(title), severity=severity,
                       timeout=timeout, markup=False)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        """The one place the cursor blink is set: on whatever text field takes the focus."""
        if isinstance(event.widget, (Input, TextArea)):
            event.widget.cursor_blink = self.blink

    # -- start-up ------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.open_store()
        if self.settings.keymap:
            self.set_keymap(self.settings.keymap)
        self.set_interval(0.1, self.drain_events)
        self.install_screen(EditorScreen(), "editor")
        self.install_screen(ProgressScreen(), "progress")
        self.install_screen(HistoryScreen(), "history")
        self.install_screen(SettingsScreen(), "settings")
        self.push_screen("editor")
        self.call_after_refresh(self._check_size)
        for warning in self.store.warnings if self.store else []:
            self.notify(warning, title="History", severity="warning", timeout=10)
        if self.store_error:
            self.notify(self.store_error, title="History is read-only", severity="error", timeout=15)

    def open_store(self) -> None:
        try:  # the store opens on the UI thread: wait for another process's write only briefly
            self.store = Store(self.data_dir, lock_wait=STORE_LOCK_WAIT)
        except DataDirLocked as exc:  # another process stuck in a write: read, don't write
            self.store_error = str(exc)
            self.store = Store(self.data_dir, writable=False)
        except SynthError as exc:
            self.store_error = str(exc)
            self.store = None

    def on_unmount(self) -> None:
        if self.current_run is not None:
            self.current_run.cancel()
        if self.store is not None:
            self.store.close()

    @property
    def progress_screen(self) -> ProgressScreen:
        return cast(ProgressScreen, self.get_screen("progress"))

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size)

    def _check_size(self, size: Size | None = None) -> None:
        """Below the smallest size the layouts are made for, a notice instead of a broken
        layout; it goes when the terminal grows again."""
        if not self.screen_stack or self.screen.id == "_default":  # still starting
            self.call_after_refresh(self._check_size)
            return
        size = size or self.size
        small = size.width < MIN_SIZE[0] or size.height < MIN_SIZE[1]
        showing = isinstance(self.screen, TooSmallScreen)
        if small and not showing:
            self.push_screen(TooSmallScreen(MIN_SIZE))
        elif not small and showing:
            self.pop_screen()

    # -- quitting ------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Quit at once when idle; with a run going or settings not saved, ask first."""
        if isinstance(self.screen, ChoiceDialog):
            return
        if not self.running:
            if self.settings_screen.unsaved:
                self._ask_about_settings()
            else:
                self.exit()
            return
        choices = [("keep", "escape", "Keep running"), ("stop", "s", "Stop the run and quit")]
        question = ("A run is going. Stop it and quit? The records it has made are kept, "
                    "and the run can be resumed later.")
        self.push_screen(ChoiceDialog(question, choices), self._quit_answer)

    def _ask_about_settings(self) -> None:
        def answer(choice: str | None) -> None:
            if choice == "save" and self.settings_screen.action_save():
                self.exit()
            elif choice == "quit":
                self.exit()

        self.push_screen(ChoiceDialog("The settings have changes that are not saved.",
                                      [("save", "s", "Save and quit"), ("quit", "q", "Quit without saving"),
                                       ("keep", "escape", "Keep editing")]), answer)

    def _quit_answer(self, answer: str | None) -> None:
        if answer != "stop" or not self.running:
            if answer == "stop":
                self.exit()
            return
        self._quit_when_done = True
        self.cancel_run()

    def _exit_after(self, result: RunResult) -> None:
        resumable = result.accepted < result.requested
        message = f"synth-tui: run {result.run_id} stopped with {result.accepted}/{result.requested} records"
        message += f"; continue it with: synth-tui resume {result.run_id}" if resumable else "."
        self.exit(message=Text(clean_line(message)))

    @property
    def settings_screen(self) -> SettingsScreen:
        return cast(SettingsScreen, self.get_screen("settings"))

    @property
    def history_screen(self) -> HistoryScreen:
        return cast(HistoryScreen, self.get_screen("history"))

    # -- navigation ----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer leaves out the key of the screen already shown."""
        if action == "show" and parameters and self.screen_stack and parameters[0] == self.screen.id:
            return False
        if action == "cancel_run":
            return self.running  # shown, and working, from every screen while a run goes
        return True

    def action_cancel_run(self) -> None:
        self.cancel_run()

    def action_show(self, name: str) -> None:
        if self.screen.id != name and not isinstance(self.screen, ModalScreen):
            self.switch_screen(name)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Editor", "Edit the schema and parameters (F2)", lambda: self.action_show("editor"))
        yield SystemCommand("Progress", "Watch the current run (F3)", lambda: self.action_show("progress"))
        yield SystemCommand("History", "Browse, export and resume runs (F4)", lambda: self.action_show("history"))
        yield SystemCommand("Settings", "Backends, models and keys (F5)", lambda: self.action_show("settings"))
        yield SystemCommand("Help", "Keys of this screen (F1)", self.action_help)
        if self.running:
            yield SystemCommand("Cancel run", "Stop the current run, keeping its records", self.cancel_run)
        for name, title, help_text in getattr(screen, "PALETTE", ()):
            yield SystemCommand(title, help_text, getattr(screen, f"action_{name}"))

    # -- requests from the screens -----------------------------------------------------------
    def on_generate_requested(self, message: GenerateRequested) -> None:
        if self._refuse_second_run():
            return
        job = message.job
        self._prepare_progress(job.config.count, job.backend, job.schema.field_names())
        self._generate(job)

    def on_compare_requested(self, message: CompareRequested) -> None:
        if self._refuse_second_run():
            return
        job = message.job
        if job.config.params.seed is None:
            job.config.params.seed = random.randrange(1, 2**31)
        self._prepare_progress(job.config.count, message.specs[0], job.schema.field_names())
        self._compare(job, message.specs)

    def on_resume_requested(self, message: ResumeRequested) -> None:
        if self._refuse_second_run():
            return
        if self.store is None or not self.store.writable:
            self.notify(self.store_error or "the history is read-only", severity="error")
            return
        try:
            doc = self.store.get_run(message.run_id)
        except SynthError as exc:
            self.notify(str(exc), title="Could not resume the run", severity="error")
            return
        described = doc.get("backend", {})
        try:
            spec = resume_spec(described, self.settings, run=f"run {doc['id']}")
        except ResumeNeedsConsent as exc:
            self._ask_consent_to_resume(doc, exc.differences)
            return
        except UserInputError as exc:
            self.notify(str(exc), title="Could not resume the run", severity="error")
            return
        self._start_resume(doc, spec)

    def _ask_consent_to_resume(self, doc: dict[str, Any], differences: list[tuple[str, Any, Any, str]]) -> None:
        """The history file alone never decides where a key is sent: the user does."""
        said = "\n".join(f"  its {what}: {recorded}\n  your settings: {mine or '(default)'}"
                         for what, recorded, mine, _flag in differences)
        question = (f"Run {doc['id']} was made with another endpoint than your settings name:\n{said}\n"
                    "Resume it with the run's own, sending your key there?")
        recorded = {what: value for what, value, _mine, _flag in differences}

        def answer(yes: bool | None) -> None:
            if not yes:
                self.notify("Not resumed. To resume with your settings' endpoint, change them to match "
                            "or re-run the run from the history (r).", title="Resume")
                return
            try:
                spec = resume_spec(doc.get("backend", {}), self.settings, run=f"run {doc['id']}",
                                   base_url=recorded.get("base URL"), api_key_env=recorded.get("key variable"))
            except UserInputError as exc:
                self.notify(str(exc), title="Could not resume the run", severity="error")
                return
            self._start_resume(doc, spec)

        self.push_screen(ConfirmDialog(question), answer)

    def _start_resume(self, doc: dict[str, Any], spec: BackendSpec) -> None:
        if self._refuse_second_run():
            return
        columns = list((doc.get("schema") or {}).get("properties") or {})
        self._prepare_progress(doc.get("config", {}).get("count", 0), spec, columns)
        self._resume(doc["id"], spec)

    def on_rerun_requested(self, message: RerunRequested) -> None:
        cast(EditorScreen, self.get_screen("editor")).load(message.schema, message.config, message.backend)
        self.switch_screen("editor")

    def on_connection_test_requested(self, message: ConnectionTestRequested) -> None:
        self._test_connection(message.spec)

    # -- runs ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.current_run is not None

    def _refuse_second_run(self) -> bool:
        if self.running:
            self.notify("A run is already going: cancel it first (F8 on the progress screen).", severity="warning")
        return self.running

    @work(thread=True, exclusive=True, exit_on_error=False, group="run", name="compare")
    def _compare(self, job: JobSpec, specs: list[BackendSpec]) -> None:
        store = self._writable_store()
        backends = [self._backend(spec) for spec in specs]  # a missing key stops before any run
        run_ids = []
        for spec, backend in zip(specs, backends):
            self.post_message(RunBeginMessage(job.config.count, spec, job.schema.field_names()))
            run = Run(job.schema, RunConfig.from_doc(job.config.to_doc()), backend, store=store,
                      on_event=self._post_event)
            run_ids.append(run.run_id)
            self._execute(run, backend)
            if run.cancelled:
                break
        self.post_message(ComparisonDoneMessage(run_ids))

    def on_run_begin_message(self, message: RunBeginMessage) -> None:
        self.drain_events()
        self.last_event = None
        self.progress_screen.reset(message.total, message.spec, message.columns)

    def on_comparison_done_message(self, message: ComparisonDoneMessage) -> None:
        if len(message.run_ids) >= 2:
            self.push_screen(ComparisonScreen(message.run_ids, dict(self.settings.prices)))

    def _prepare_progress(self, total: int, spec: BackendSpec, columns: list[str]) -> None:
        self.last_event = None
        self.progress_screen.reset(total, spec, columns)
        self.sub_title = "starting..."
        self.switch_screen("progress")

    @work(thread=True, exclusive=True, exit_on_error=False, group="run", name="generate")
    def _generate(self, job: JobSpec) -> None:
        store = self._writable_store()
        backend = self._backend(job.backend)
        run = Run(job.schema, job.config, backend, store=store, on_event=self._post_event)
        self._execute(run, backend)

    @work(thread=True, exclusive=True, exit_on_error=False, group="run", name="resume")
    def _resume(self, run_id: str, spec: BackendSpec) -> None:
        store = self._writable_store()
        backend = self._backend(spec)
        run = Run.resume(store, run_id, backend, on_event=self._post_event)
        self._execute(run, backend)

    def _writable_store(self) -> Store:
        if self.store is None or not self.store.writable:
            reason = (self.store_error or "the history cannot be written").rstrip(".")
            raise UserInputError(f"{reason}. This run would not be saved, so it was not started.")
        return self.store

    def _backend(self, spec: BackendSpec) -> Any:
        return backend_from_settings(spec, self.settings)

    def _execute(self, run: Run, backend: Any) -> None:
        self.current_run = run

        async def go() -> RunResult:
            try:
                return await run.execute()
            finally:
                await backend.aclose()

        try:
            result = asyncio.run(go())
        finally:
            self.current_run = None
        self.post_message(RunDoneMessage(result))

    def _post_event(self, event: Event) -> None:
        """Called on the run's thread: queue the event; start, end and notices wake the UI."""
        self._events.append(event)
        if isinstance(event, (RunStarted, RunFinished, RunFailed, Notice)):
            self.post_message(EventsReadyMessage())

    def cancel_run(self) -> None:
        if self.current_run is None:
            self.notify("No run is going.")
            return
        self.current_run.cancel()
        self.notify("Cancelling: the records accepted so far are kept.")

    def on_events_ready_message(self, message: EventsReadyMessage) -> None:
        self.drain_events()

    def drain_events(self) -> None:
        """The one path from a run to the screens: queued events go to the progress screen
        (which draws them if it is shown, or when it is shown next) and the header."""
        if not self._events:
            return
        events = [self._events.popleft() for _ in range(len(self._events))]
        self.progress_screen.take(events)
        last = self.last_event = events[-1]
        history = self.history_screen
        started = next((e for e in events if isinstance(e, RunStarted)), None)
        if started is not None:
            history.refresh_runs(select=started.run_id)  # the new run, selected
        # every screen's header shows the run's progress, and the history its row
        if self.current_run is not None and not isinstance(last, (RunFinished, RunFailed)):
            p = last.progress
            self.sub_title = f"running {p.done}/{p.total} · {p.rate:.1f} rec/s · rejected {p.rejected}"
            if history.is_current:
                history.show_run_progress(last.run_id, p.done, p.total, p.elapsed)

    def on_run_done_message(self, message: RunDoneMessage) -> None:
        self.drain_events()
        result = message.result
        self.last_result = result
        if self._quit_when_done:
            self._exit_after(result)
            return
        self.sub_title = f"last run {result.status}: {result.accepted}/{result.requested}"
        self.progress_screen.handle_result(result)
        self.history_screen.refresh_runs()
        if result.status == "failed":
            self.notify(result.error or "the run failed", title="Run failed", severity="error", timeout=15)
        else:
            self.notify(f"{result.accepted}/{result.requested} records, {result.rejected} rejected",
                        title=f"Run {result.status}")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors become something a user can read and act on."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, SynthError):
            message = str(error)
        else:
            message = f"unexpected error: {type(error).__name__}: {error}"
        title = WORKER_FAILURES.get(event.worker.name, "Something failed")
        self.notify(message, title=title, severity="error", timeout=15)
        if event.worker.group == "run":
            if self._quit_when_done:
                self.exit()
            self.current_run = None
            self.sub_title = ""
            self.progress_screen.show_error(message)

    # -- settings ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="probe", name="probe")
    def _test_connection(self, spec: BackendSpec) -> None:
        backend = self._backend(spec)

        async def go() -> tuple[bool, str]:
            try:
                return await probe_backend(backend)
            finally:
                await backend.aclose()

        ok, message = asyncio.run(go())
        self.post_message(ProbeDoneMessage(spec.kind, ok, message))

    def on_probe_done_message(self, message: ProbeDoneMessage) -> None:
        self.notify(message.message, title=f"{message.kind}: {'OK' if message.ok else 'problem'}",
                    severity="information" if message.ok else "warning", timeout=10)


def run_app(data_dir: str | None = None) -> int:
    try:
        app = SynthApp(data_dir=data_dir)
    except UserInputError as exc:
        print(f"synth-tui: error: {exc}")
        return 2
    app.run()
    return 0
