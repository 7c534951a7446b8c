"""The App's estimate: a pilot run, the projection in a panel, then the rest of the run.

F6 in the editor runs a pilot of a few records (core/estimate.py) on a worker thread and
shows what the whole run would take; going on resumes the pilot to the run's count, its
records the start of the run (``resume PILOT -n N`` in the CLI). With the setting
``confirm_cost_over`` a plain Generate goes the same way, and asks only when the
estimated cost is over it (or unknown): otherwise the run goes on by itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rich.text import Text

from .core.backends import BackendSpec
from .core.estimate import PILOT_RECORDS
from .core.estimate_text import projection_text
from .core.pricing import usd
from .core.textsafe import clean_line
from .jobs import EstimateReady
from .messages import EstimateRequested, GenerateRequested, JobSpec
from .screens.estimate import EstimatePanel


def confirm_threshold(settings: Any, job: JobSpec) -> float | None:
    """The USD over which a Generate of ``job`` asks first; None: it does not ask (no
    threshold, the embedded model, or a batch, whose pilot the Batch API cannot run)."""
    if settings.confirm_cost_over is None or job.backend.kind == "local" or job.batch_api:
        return None
    return float(settings.confirm_cost_over)


def over_threshold(message: EstimateReady) -> str:
    """Why a Generate asks before going on: "" when it need not."""
    p, limit = message.projection, message.confirm_over
    if limit is None:
        return ""
    if p.cost is None:
        return f"The cost is unknown (the model has no price): you asked to confirm runs over {usd(limit)}."
    if p.cost.mid > limit:
        return f"This run would cost about {usd(p.cost.mid)}, more than {usd(limit)} (confirm_cost_over)."
    return ""


def budget_note(message: EstimateReady) -> str:
    """A line under the projection when the run's budget would stop it short of its count."""
    p, budget = message.projection, message.job.config.budget
    if budget is None or p.cost is None or p.cost.mid <= budget:
        return ""
    return (f"\nBudget: {usd(budget)} is less than this estimate: the run will stop at its budget, "
            f"short of {p.count} records.")


class Estimating:
    """The App's handlers for estimates; mixed into the App, which has ``_start_run``."""

    pilot_records = PILOT_RECORDS

    if TYPE_CHECKING:  # what it uses of the App
        settings: Any
        sub_title: str
        quit_when_done: bool
        history_screen: Any
        progress_screen: Any

        def notify(self, message: str, *, title: str = "", severity: Any = "information",
                   timeout: float | None = None, markup: bool = True) -> None: ...
        def _start_run(self, total: int, spec: BackendSpec, columns: list[str], job: str, *args: Any) -> None: ...

    def on_estimate_requested(self, message: EstimateRequested) -> None:
        if message.job.batch_api:
            self.notify("The estimate's pilot goes through the chat API, not a batch: untick Batch API to "
                        "estimate.", title="Estimate", severity="warning")
            return
        self._start_estimate(message.job, None)

    def generate_after_estimate(self, message: GenerateRequested) -> bool:
        """With a confirmation threshold, a Generate starts as an estimate: True if so."""
        threshold = confirm_threshold(self.settings, message.job)
        if threshold is None:
            return False
        self._start_estimate(message.job, threshold)
        return True

    def _start_estimate(self, job: JobSpec, confirm_over: float | None) -> None:
        pilot = min(self.pilot_records, job.config.count)
        self._start_run(pilot, job.backend, job.schema.field_names(), "estimate",
                        job, pilot, confirm_over)

    def on_estimate_ready(self, message: EstimateReady) -> None:
        p = message.projection
        if self.quit_when_done:  # ctrl+q asked to stop while the pilot ran: no panel, no run
            cast(Any, self).exit(message=Text(clean_line(
                f"synth-tui: the pilot {p.pilot.run_id} kept {p.pilot.accepted} records; "
                f"continue it with: synth-tui resume {p.pilot.run_id} -n {p.count}")))
            return
        self.sub_title = f"pilot {p.pilot.run_id}: {p.pilot.accepted}/{p.count} records"
        self.history_screen.refresh_runs()  # the pilot's row: done
        self.progress_screen.flush(final=True)  # every record of the pilot, behind the panel
        warning = over_threshold(message)
        if message.confirm_over is not None and not warning:
            self._go_on(message.job, p.pilot.run_id, p.count)
            return
        text = projection_text(p, message.kind, surface="tui") + budget_note(message)

        def answered(go_on: bool | None) -> None:
            if go_on:
                self._go_on(message.job, p.pilot.run_id, p.count)
            else:
                self.notify(f"The pilot {p.pilot.run_id} stays in the history with its {p.pilot.accepted} records: "
                            f"u there (or `synth-tui resume {p.pilot.run_id} -n {p.count}`) goes on to {p.count}.",
                            title="Estimate")

        cast(Any, self).push_screen(EstimatePanel(text, p.count, warning), answered)

    def _go_on(self, job: JobSpec, run_id: str, count: int) -> None:
        spec: BackendSpec = job.backend
        self._start_run(count, spec, job.schema.field_names(), "resume", run_id, spec, count)
