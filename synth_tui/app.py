"""The Textual app: screens, the generation worker, and the one place errors surface.

A run belongs to the App, not to a screen, so switching screens never stops it. The
worker thread runs the engine on its own event loop and talks to the UI only through
``post_message``; the header's subtitle shows the run's progress on every screen.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any, cast

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.events import DescendantFocus
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState

from .core.backends import BackendSpec
from .core.config import Settings, load_settings
from .core.dataset import DatasetResult
from .core.engine import RunResult
from .core.errors import UserInputError
from .core.events import Event, RunFailed, RunFinished, RunStarted
from .core.store import RunDoc, Store, default_data_dir
from .core.textsafe import clean_line, clean_text
from .estimating import Estimating
from .jobs import ComparisonDone, EventsReady, Jobs, ProbeDone, RunBegins, RunDone, describe_failure
from .messages import (
    CompareRequested,
    ConnectionTestRequested,
    DatasetRequested,
    GenerateRequested,
    RerunRequested,
    ResumeRequested,
)
from .questions import ask_for_budget, ask_for_count, ask_to_quit, exit_after, resume_or_ask
from .screens.dialogs import HelpScreen, TooSmallScreen
from .screens.editor import EditorScreen
from .screens.history import HistoryScreen
from .screens.progress import ProgressScreen
from .screens.report import ComparisonScreen
from .screens.settings import SettingsScreen
from .table_events import is_dataset_doc, result_summary


def stylesheet_path() -> Path:
    """screens.tcss ships inside the wheel; in a source checkout it sits at the top."""
    packaged = importlib.resources.files("synth_tui") / "screens.tcss"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "screens.tcss"


STORE_LOCK_WAIT = 2.0  # seconds
SCREENS = [("editor", "Editor", "Edit the schema and parameters (F2)"),
           ("progress", "Progress", "Watch the current run (F3)"),
           ("history", "History", "Browse, export and resume runs (F4)"),
           ("settings", "Settings", "Backends, models and keys (F5)")]
MIN_SIZE = (80, 24)  # every screen's layout and keys fit from this size up
WORKER_FAILURES = {
    "generate": "Could not run the generation",
    "estimate": "Could not run the estimate's pilot",
    "resume": "Could not resume the run",
    "dataset": "Could not run the dataset",
    "resume_dataset": "Could not resume the dataset run",
    "compare": "The comparison stopped",
    "probe": "Connection test failed",
    "report": "Could not compute the report",
    "comparison": "Could not compare the runs",
}


class SynthApp(App[None], Estimating):
    TITLE = "synth-tui"
    CSS_PATH = stylesheet_path()
    BINDINGS = [
        Binding("f1", "help", "Help", id="app.help"),
        Binding("f8", "cancel_run", "Cancel run", id="app.cancel-run"),  # early: a narrow footer cuts its end
        Binding("f2", "show('editor')", "Editor", id="app.editor"),
        Binding("f3", "show('progress')", "Progress", id="app.progress"),
        Binding("f4", "show('history')", "History", id="app.history"),
        Binding("f5", "show('settings')", "Settings", id="app.settings"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="app.quit"),
    ]

    def __init__(
        self, *, data_dir: str | Path | None = None, settings: Settings | None = None, blink: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        if data_dir is not None:  # --data-dir: this session only, never saved
            self.settings.override("data_dir", str(data_dir), by="--data-dir")
        self.data_dir = Path(self.settings.data_dir or default_data_dir()).expanduser()
        self.blink = blink  # tests turn the cursor blink off for stable snapshots
        if not blink:
            self.animation_level = "none"
        self.jobs = Jobs(self.settings, self.post_message)
        self.last_result: RunResult | DatasetResult | None = None
        self.last_event: Event | None = None  # the latest event the screens were given
        self.quit_when_done = False  # set when the user chose to stop the run and quit

    @property
    def store(self) -> Store | None:
        return self.jobs.store

    @property
    def running(self) -> bool:
        return self.jobs.current is not None

    @property
    def running_run_id(self) -> str | None:
        run = self.jobs.running
        return run.run_id if run is not None else None

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification passes here: outside text (server errors, file names, model
        output) is shown as text, never as markup or as terminal control characters."""
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
        self.call_after_refresh(TooSmallScreen.follow, self, None, MIN_SIZE)
        for warning in self.store.warnings if self.store else []:
            self.notify(warning, title="History", severity="warning", timeout=10)
        if self.jobs.store_error:
            self.notify(self.jobs.store_error, title="History is read-only", severity="error", timeout=15)

    def open_store(self) -> None:
        self.jobs.open_store(self.data_dir, lock_wait=STORE_LOCK_WAIT)  # on the UI thread: wait briefly

    def on_unmount(self) -> None:
        self.jobs.cancel()
        if self.store is not None:
            self.store.close()

    @property
    def progress_screen(self) -> ProgressScreen:
        return cast(ProgressScreen, self.get_screen("progress"))

    def on_resize(self, event: events.Resize) -> None:
        TooSmallScreen.follow(self, event.size, MIN_SIZE)

    # -- quitting ------------------------------------------------------------------------
    async def action_quit(self) -> None:
        ask_to_quit(self)

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

    def action_show(self, name: str) -> None:
        if self.screen.id != name and not isinstance(self.screen, ModalScreen):
            self.switch_screen(name)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name, title, help_text in SCREENS:
            yield SystemCommand(title, help_text, partial(self.action_show, name))
        yield SystemCommand("Help", "Keys of this screen (F1)", self.action_help)
        if self.running:
            yield SystemCommand("Cancel run", "Stop the current run, keeping its records (F8)", self.action_cancel_run)
        for name, title, help_text in getattr(screen, "PALETTE", ()):
            yield SystemCommand(title, help_text, getattr(screen, f"action_{name}"))

    # -- requests from the screens -----------------------------------------------------------
    def on_generate_requested(self, message: GenerateRequested) -> None:
        job = message.job
        if not self.generate_after_estimate(message):  # with a cost threshold set, a pilot goes first
            self._start_run(job.config.count, job.backend, job.schema.field_names(), "generate", job)

    def on_dataset_requested(self, message: DatasetRequested) -> None:
        self._start_run(0, message.backend, [], "dataset", message.dataset, message.config, message.backend)

    def on_compare_requested(self, message: CompareRequested) -> None:
        job = message.job  # one seed for every model: the comparison draws it when none is set
        self._start_run(job.config.count, message.specs[0], job.schema.field_names(), "compare", job, message.specs)

    def on_resume_requested(self, message: ResumeRequested) -> None:
        if not self._refuse_second_run():
            resume_or_ask(self, message.run_id, self._start_resume)

    def _start_resume(self, doc: RunDoc, spec: BackendSpec, budget: float | None = None, count: int = 0) -> None:
        if doc.status == "budget" and budget is None:  # it goes on only with a larger budget
            ask_for_budget(self, doc, lambda usd: self._start_resume(doc, spec, usd))
        elif doc.status == "done" and not count:  # to more records (an estimate's pilot)
            ask_for_count(self, doc, lambda n: self._start_resume(doc, spec, budget, n))
        else:  # a dataset goes on table by table
            job, more = ("resume_dataset", ()) if is_dataset_doc(doc) else ("resume", (count or None, budget))
            fields = list(doc.schema.get("properties") or {})
            self._start_run(count or doc.count, spec, fields, job, doc.id, spec, *more)

    def on_rerun_requested(self, message: RerunRequested) -> None:
        cast(EditorScreen, self.get_screen("editor")).load(message.schema, message.config, message.backend)
        self.switch_screen("editor")

    def on_connection_test_requested(self, message: ConnectionTestRequested) -> None:
        self._work(self.jobs.probe, message.spec, name="probe", group="probe")

    # -- runs ----------------------------------------------------------------------------
    def _refuse_second_run(self) -> bool:
        if self.running:
            self.notify("A run is already going: cancel it first (F8).", severity="warning")
        return self.running

    def _work(self, body: Any, *args: Any, name: str, group: str = "run") -> None:
        """Run a job on a thread; its errors reach on_worker_state_changed."""
        self.run_worker(partial(body, *args), thread=True, exclusive=True, exit_on_error=False, group=group, name=name)

    def on_run_begins(self, message: RunBegins) -> None:
        self.drain_events()
        self.last_event = None
        self.progress_screen.reset(message.total, message.spec, message.columns)

    def on_comparison_done(self, message: ComparisonDone) -> None:
        if len(message.run_ids) >= 2:
            self.push_screen(ComparisonScreen(message.run_ids, dict(self.settings.prices)))

    def _start_run(self, total: int, spec: BackendSpec, columns: list[str], job: str, *args: Any) -> None:
        """Show the progress screen, then run ``self.jobs.<job>(*args)`` on a thread."""
        if self._refuse_second_run():
            return
        self.last_event = None
        self.progress_screen.reset(total, spec, columns)
        self.sub_title = "starting..."
        self.switch_screen("progress")
        self._work(getattr(self.jobs, job), *args, name=job)

    def action_cancel_run(self) -> None:
        if not self.jobs.cancel():
            self.notify("No run is going.")
            return
        self.notify("Cancelling: the records accepted so far are kept.")

    def on_events_ready(self, message: EventsReady) -> None:
        self.drain_events()

    def drain_events(self) -> None:
        """The one path from a run to the screens: the progress screen, the header, a row."""
        queue = self.jobs.events
        if not queue:
            return
        events = [queue.popleft() for _ in range(len(queue))]
        self.progress_screen.take(events)
        last = self.last_event = events[-1]
        history = self.history_screen
        started = next((e for e in events if isinstance(e, RunStarted)), None)
        if started is not None:
            history.refresh_runs(select=self.running_run_id or started.run_id)  # the new run (a dataset's), selected
            self.refresh_bindings()  # the footer offers F8 (cancel run)
        # every screen's header shows the run's progress, and the history its row
        if self.running and not isinstance(last, (RunFinished, RunFailed)):
            p = last.progress
            self.sub_title = self.progress_screen.header_line(p)
            if history.is_current:
                history.show_run_progress(*self.progress_screen.history_row(last))

    def on_run_done(self, message: RunDone) -> None:
        self.drain_events()
        result = message.result
        self.last_result = result
        if self.quit_when_done:
            exit_after(self, result)
            return
        self.sub_title = f"last run {result.status}: {result.accepted}/{result.requested}"
        self.progress_screen.handle_result(result)
        self.history_screen.refresh_runs()
        failed = result.status == "failed"
        self.notify(result.error or "the run failed" if failed else result_summary(result),
                    title=f"Run {result.status}", severity="error" if failed else "information",
                    timeout=15 if failed else None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors become something a user can read and act on."""
        if event.worker.group == "run" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self.refresh_bindings()  # the run has ended: F8 (cancel run) leaves the footer
        if event.state != WorkerState.ERROR:
            return
        message = describe_failure(event.worker.error)
        title = WORKER_FAILURES.get(event.worker.name, "Something failed")
        self.notify(message, title=title, severity="error", timeout=15)
        if event.worker.group == "run":
            if self.quit_when_done:
                self.exit()
            self.sub_title = ""
            self.progress_screen.show_error(message)

    def on_probe_done(self, message: ProbeDone) -> None:
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
