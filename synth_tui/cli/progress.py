"""Progress of a run on stderr: records, rate, ETA, rejections, cost, and the reasons a run
gives (retries, rejections, notices).

On a terminal, rich draws a live bar; anywhere else (a log, a pipe, the tests) plain lines
come, one every two seconds and one at the end. Reasons come from outside (a server, a
model): they are cleaned by ``textsafe`` and printed as ``Text``, never read as markup.
rich's progress is imported only when a bar is drawn.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any, Self

from ..core.events import (
    Event,
    Notice,
    RateLimited,
    RecordRejected,
    RetryScheduled,
    RunFailed,
    RunFinished,
    RunStarted,
)
from ..core.textsafe import clean_line
from .output import console, is_terminal

if TYPE_CHECKING:
    from ..core.events import Progress as Figures

MAX_REJECTION_NOTES = 5  # distinct rejection reasons shown while a run goes on


def figures_text(p: Figures, final: bool, elapsed: bool = True, free: bool = False) -> str:
    """The run's figures after the count: rate, ETA (the time taken at the end, unless
    ``elapsed`` is off), rejections, cost (none shown for a ``free`` run without a price:
    the embedded model's)."""
    if p.eta is not None and not final:
        when = f"ETA {p.eta:.0f}s  "
    else:
        when = f"{p.elapsed:.1f}s  " if elapsed else ""
    cost = cost_figure(p, free)
    return f"{p.rate:.1f} rec/s  {when}rejected {p.rejected}  dup {p.duplicates}  retries {p.retries}" + (
        f"  {cost}" if cost else "")


def cost_figure(p: Figures, free: bool = False) -> str:
    """ "$0.0123", "$0.0123 of $0.0500" under a budget, "cost unknown" without a price."""
    from ..core.pricing import usd

    if p.cost_usd is None:
        return "" if free else "cost unknown"
    return usd(p.cost_usd) + (f" of {usd(p.budget_usd)}" if p.budget_usd is not None else "")


class ProgressSink:
    """An event sink that reports a run on stderr; the plain-lines form. Use it as a
    context manager, or call :meth:`close` when the run is over."""

    interval = 2.0  # seconds between two progress lines

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._rejections: set[str] = set()
        self.free = False  # the embedded model's run: no price per token, no "cost unknown"

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.free = event.backend == "local"
        note = self.note(event)
        if note is not None:
            self.line(note)
        final = isinstance(event, (RunFinished, RunFailed))
        now = time.monotonic()
        if final or now - self._last >= self.interval:
            self._last = now
            self.show(event, final)

    def note(self, event: Event) -> str | None:
        """The line an event deserves besides the figures, if any, made harmless."""
        if isinstance(event, Notice):
            return f"note: {clean_line(event.message)}"
        if isinstance(event, RateLimited):
            return f"rate limited: waiting {event.delay:.1f} s, concurrency now {event.concurrency}"
        if isinstance(event, RetryScheduled):
            return f"retry {event.attempt} in {event.delay:.1f} s: {clean_line(event.reason)[:160]}"
        if isinstance(event, RecordRejected) and not event.duplicate:
            key = event.reason[:60]
            if key not in self._rejections and len(self._rejections) < MAX_REJECTION_NOTES:
                self._rejections.add(key)
                return f"rejected a record: {clean_line(event.reason)[:160]}"
        return None

    def show(self, event: Event, final: bool) -> None:
        p = event.progress
        width = 24
        filled = int(width * p.fraction)
        self.line(f"[{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total}  "
                  f"{figures_text(p, final, free=self.free)}")

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def write_records(self, text: str) -> None:
        """Records for stdout (JSON Lines as they are accepted); write errors propagate."""
        sys.stdout.write(text)
        sys.stdout.flush()

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class QuietSink(ProgressSink):
    """-q: nothing on stderr."""

    def __call__(self, event: Event) -> None:
        pass


class LiveProgress(ProgressSink):
    """rich's progress bar on a terminal; notes are printed above it. Records streamed to
    stdout on the same terminal are printed above it too, so the bar stays at the bottom."""

    interval = 0.0  # rich redraws the bar ten times a second: every event updates its figures

    def __init__(self, stream: Any = None, label: str = "generating") -> None:
        super().__init__(stream)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[figures]}", markup=False),
            console=console(self.stream), redirect_stdout=False, redirect_stderr=False,
        )
        self._task = self._progress.add_task(clean_line(label), total=None, figures="", start=False)
        self._stdout: Any = None  # a console on stdout, when stdout is this same terminal
        self._started = False
        if is_terminal(sys.stdout) and same_file(sys.stdout, self.stream):
            self._stdout = console(sys.stdout)
            self._stdout.push_render_hook(self._progress.live)  # each write puts the bar back below

    def __call__(self, event: Event) -> None:
        if not self._started:
            self._started = True
            self._progress.start_task(self._task)
            self._progress.start()
        super().__call__(event)

    def show(self, event: Event, final: bool) -> None:
        p = event.progress
        figures = figures_text(p, final, elapsed=False, free=self.free)  # rich's column shows the time taken
        self._progress.update(self._task, completed=p.done, total=p.total, figures=figures)
        if final:
            self.close()

    def line(self, text: str) -> None:
        from rich.text import Text

        self._progress.console.print(Text(text, style="yellow"))

    def write_records(self, text: str) -> None:
        if self._stdout is None or not self._progress.live.is_started:
            return super().write_records(text)
        from rich.text import Text

        self._stdout.print(Text(text, end=""), soft_wrap=True, end="")
        sys.stdout.flush()

    def close(self) -> None:
        if self._progress.live.is_started:
            self._progress.stop()


def same_file(a: Any, b: Any) -> bool:
    """Whether two streams write to the same file (one terminal, say)."""
    try:
        one, other = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (AttributeError, ValueError, OSError):
        return False
    return (one.st_dev, one.st_ino, one.st_rdev) == (other.st_dev, other.st_ino, other.st_rdev)


def progress_sink(quiet: bool = False, label: str = "generating", stream: Any = None) -> ProgressSink:
    """The sink for this stderr: nothing with -q, a live bar on a terminal, else lines."""
    stream = stream or sys.stderr
    if quiet:
        return QuietSink(stream)
    if is_terminal(stream):
        return LiveProgress(stream, label)
    return ProgressSink(stream)
