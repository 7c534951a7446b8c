"""Typed progress events. The engine emits them; the CLI and the TUI only listen.

Every event carries a :class:`Progress` snapshot, so a listener that missed earlier
events can still draw a correct progress bar from the latest one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    elapsed: float = 0.0  # the run's generating time, earlier sessions (before a resume) included
    rejected: int = 0
    duplicates: int = 0
    retries: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    concurrency: int = 0
    done_this_session: int = 0  # accepted since this process started the run (rate, ETA)
    session_elapsed: float | None = None  # seconds since this process started it; None: elapsed
    cost_usd: float | None = None  # spent by every session, at the run's price; None: no price, unknown
    budget_usd: float | None = None  # the most the run may spend; None: no budget
    endpoints: tuple[dict[str, Any], ...] = ()  # a run over several servers: what each did; () for one

    @property
    def rate(self) -> float:
        """Accepted records per second since the run (or this resume) started."""
        seconds = self.elapsed if self.session_elapsed is None else self.session_elapsed
        return self.done_this_session / seconds if seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds to go at the current rate, or None before the first record."""
        rate = self.rate
        if rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / rate)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Event:
    run_id: str
    progress: Progress


@dataclass(frozen=True)
class RunStarted(Event):
    backend: str = ""
    model: str = ""
    resumed: bool = False


@dataclass(frozen=True)
class RecordsAccepted(Event):
    records: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class RecordRejected(Event):
    reason: str = ""
    raw: str = ""
    duplicate: bool = False
    kind: str = "invalid"  # as Rejection.kind: invalid, rule, duplicate, unparseable, refusal, truncated, too_large


@dataclass(frozen=True)
class RequestAnswered(Event):
    """A request got its answer (whatever became of its records): what it cost in tokens
    and how long it took, retries included. The estimate's pilot measures these."""

    records: int = 0  # records it asked for
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class RetryScheduled(Event):
    reason: str = ""
    attempt: int = 0
    delay: float = 0.0


@dataclass(frozen=True)
class RateLimited(Event):
    delay: float = 0.0
    concurrency: int = 0


@dataclass(frozen=True)
class Notice(Event):
    """Something a user should know once, e.g. a fallback from structured output."""

    message: str = ""


@dataclass(frozen=True)
class BatchPolled(Event):
    """A Batch API run polled its batch: the provider's status and request counts."""

    batch_id: str = ""
    status: str = ""  # validating | in_progress | finalizing | completed | failed | expired | ...
    completed: int = 0
    failed: int = 0
    total: int = 0  # 0: not told yet


@dataclass(frozen=True)
class RunFinished(Event):
    status: str = "done"  # done | cancelled | budget (spent: resumable with a larger one)
    message: str = ""


@dataclass(frozen=True)
class RunFailed(Event):
    message: str = ""


@dataclass
class Rejection:
    """A rejected candidate record, kept for triage."""

    reason: str
    raw: str
    kind: str = "invalid"  # invalid | unparseable | duplicate | refusal | truncated


EventSink = Callable[[Event], None]


@dataclass
class EventLog:
    """An EventSink that keeps what it is given (handy for scripts and tests)."""

    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
