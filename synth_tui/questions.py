"""The App's questions to the user before it acts: quitting with a run going or settings
not saved, and resuming a run whose history names another endpoint than the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from rich.text import Text
from textual.screen import Screen

from .core.backends import BackendSpec, ResumeNeedsConsent, resume_spec
from .core.config import Settings
from .core.dataset import DatasetResult
from .core.engine import RunResult
from .core.errors import SynthError, UserInputError
from .core.store import RunDoc, Store
from .core.textsafe import clean_line
from .jobs import Jobs
from .screens.dialogs import ChoiceDialog, ConfirmDialog, NameDialog
from .screens.settings import SettingsScreen


class SynthApp(Protocol):
    """What these questions use of the App (they do not import it)."""

    settings: Settings
    jobs: Jobs
    quit_when_done: bool

    @property
    def store(self) -> Store | None: ...
    @property
    def screen(self) -> Screen[Any]: ...
    @property
    def running(self) -> bool: ...
    @property
    def settings_screen(self) -> SettingsScreen: ...
    def push_screen(self, screen: Screen[Any], callback: Any = None) -> Any: ...
    def exit(self, result: Any = None, return_code: int = 0, message: Any = None) -> None: ...
    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...
    def action_cancel_run(self) -> None: ...


def ask_to_quit(app: SynthApp) -> None:
    """Quit at once when idle; with a run going or settings not saved, ask first."""
    if isinstance(app.screen, ChoiceDialog):
        return
    if app.running:
        question = ("A run is going. Stop it and quit? The records it has made are kept, "
                    "and the run can be resumed later.")
        choices = [("keep", "escape", "Keep running"), ("stop", "s", "Stop the run and quit")]
        app.push_screen(ChoiceDialog(question, choices), lambda answer: _stop_and_quit(app, answer))
    elif app.settings_screen.unsaved:
        choices = [("save", "s", "Save and quit"), ("quit", "q", "Quit without saving"),
                   ("keep", "escape", "Keep editing")]
        app.push_screen(ChoiceDialog("The settings have changes that are not saved.", choices),
                        lambda answer: _settings_then_quit(app, answer))
    else:
        app.exit()


def _stop_and_quit(app: SynthApp, answer: str | None) -> None:
    if answer != "stop":
        return
    if not app.running:  # it ended while the question was open
        app.exit()
        return
    app.quit_when_done = True  # the App exits once the run's records are kept
    app.action_cancel_run()


def _settings_then_quit(app: SynthApp, answer: str | None) -> None:
    if answer == "quit" or (answer == "save" and app.settings_screen.action_save()):
        app.exit()


def exit_after(app: SynthApp, result: RunResult | DatasetResult) -> None:
    """Leave, saying on the terminal how many records the run kept and how to go on."""
    message = f"synth-tui: run {result.run_id} stopped with {result.accepted}/{result.requested} records"
    # a dataset stopped between tables has all it asked for so far, and tables still to make
    resumable = result.accepted < result.requested or (isinstance(result, DatasetResult) and not result.success)
    message += f"; continue it with: synth-tui resume {result.run_id}" if resumable else "."
    app.exit(message=Text(clean_line(message)))


def ask_consent_to_resume(app: SynthApp, doc: RunDoc, differences: list[tuple[str, Any, Any, str]],
                          start: Callable[[RunDoc, BackendSpec], None]) -> None:
    """The history file alone never decides where a key is sent: the user does."""
    said = "\n".join(f"  its {what}: {recorded}\n  your settings: {mine or '(default)'}"
                     for what, recorded, mine, _flag in differences)
    question = (f"Run {doc.id} was made with another endpoint than your settings name:\n{said}\n"
                "Resume it with the run's own, sending your key there?")
    recorded = {what: value for what, value, _mine, _flag in differences}

    def answer(yes: bool | None) -> None:
        if not yes:
            app.notify("Not resumed. To resume with your settings' endpoint, change them to match "
                       "or re-run the run from the history (r).", title="Resume")
            return
        try:
            spec = resume_spec(doc.backend.to_dict(), app.settings, run=f"run {doc.id}",
                               base_url=recorded.get("base URL"), api_key_env=recorded.get("key variable"))
        except UserInputError as exc:
            app.notify(exc.remedy("tui"), title="Could not resume the run", severity="error")
            return
        start(doc, spec)

    app.push_screen(ConfirmDialog(question), answer)


def ask_for_budget(app: SynthApp, doc: RunDoc, go_on: Callable[[float], None]) -> None:
    """A run stopped at its budget goes on only with a larger one: ask for it (the whole
    run's budget, what earlier sessions spent included), then ``go_on(budget)``."""
    from .core.pricing import run_cost, usd

    spent = run_cost(doc.to_dict()) or 0.0
    old = doc.config.get("budget")
    was = usd(old) if isinstance(old, (int, float)) and not isinstance(old, bool) else "its budget"

    def accept(text: str) -> None:
        try:
            budget = float(text.strip().removeprefix("$"))
        except ValueError:
            raise UserInputError(f"the budget must be a number of USD, not {text!r:.40}") from None
        if not budget > spent:  # NaN is refused too
            raise UserInputError(f"the run has spent {usd(spent)}: give a budget larger than that")
        go_on(budget)

    question = f"Run {doc.id} stopped at {was}, having spent {usd(spent)}. Go on with a budget of (USD):"
    app.push_screen(NameDialog(question, accept, hint="The whole run's: every session's spending counts against it."))


def ask_for_count(app: SynthApp, doc: RunDoc, go_on: Callable[[int], None]) -> None:
    """A done run (an estimate's pilot, say) goes on to more records: ask how many in all,
    then ``go_on(count)``."""
    done = doc.counts.accepted

    def accept(text: str) -> None:
        try:
            count = int(text.strip())
        except ValueError:
            raise UserInputError(f"the count must be a whole number, not {text!r:.40}") from None
        if count <= done:
            raise UserInputError(f"the run has {done} records: give a larger count")
        go_on(count)

    app.push_screen(NameDialog(f"Run {doc.id} is done with {done} records. Go on to how many records in all?",
                               accept, value=str(max(done * 10, done + 1)), hint="Its records are the run's start."))


def resume_or_ask(app: SynthApp, run_id: str, start: Callable[[RunDoc, BackendSpec], None]) -> None:
    """Resume with the run's own backend; where its history names another endpoint or key
    variable than the settings, only once the user has agreed."""
    store = app.store
    if store is None or not store.writable:
        app.notify(app.jobs.store_error or "the history is read-only", severity="error")
        return
    try:
        doc = store.get_run(run_id)
        spec = resume_spec(doc.backend.to_dict(), app.settings, run=f"run {doc.id}")
    except ResumeNeedsConsent as exc:
        ask_consent_to_resume(app, doc, exc.differences, start)
    except SynthError as exc:
        app.notify(exc.remedy("tui"), title="Could not resume the run", severity="error")
    else:
        start(doc, spec)
