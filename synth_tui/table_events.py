"""What the TUI hears of a dataset run beyond its tables' own engine events.

A dataset run runs its tables one after the other, each a run of its own whose events
carry the table run's id. The job queues, in the same queue and order as those events,
``DatasetStarted`` (the dataset's id and its tables, as the history holds them: a resume
starts with some done) and, before each table's ``RunStarted``, ``TableStarted`` naming
the table. The progress screen draws a bar per table from them.

Also what the App says of a dataset run's result, and how it tells a dataset run's
history document from a run of one table.
"""

from __future__ import annotations

from dataclasses import dataclass

from .core.dataset import KIND, DatasetResult, DatasetRun
from .core.engine import RunResult
from .core.events import Event, EventSink, Progress, RunStarted
from .core.store import RunDoc


@dataclass(frozen=True)
class TableState:
    name: str
    status: str  # pending | running | done | failed | cancelled | budget
    accepted: int = 0
    requested: int = 0


@dataclass(frozen=True)
class DatasetStarted(Event):
    """A dataset run (``run_id``) begins, or resumes, with these tables, parents first."""

    tables: tuple[TableState, ...] = ()
    resumed: bool = False


@dataclass(frozen=True)
class TableStarted(Event):
    """Table ``table`` of the dataset run starts; ``run_id`` is the table's own run."""

    table: str = ""


class TableEvents:
    """A dataset run's event sink: each table's RunStarted follows a TableStarted naming it."""

    def __init__(self, run: DatasetRun, queue: EventSink) -> None:
        self.run = run
        self.queue = queue

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.queue(TableStarted(event.run_id, event.progress, table=self.run.current or ""))
        self.queue(event)


def with_table_events(run: DatasetRun, queue: EventSink) -> DatasetRun:
    """``run``, its tables' events going to ``queue`` after a DatasetStarted."""
    tables = tuple(TableState(o.name, o.status, o.accepted, o.requested) for o in run.outcomes.values())
    total = sum(t.requested for t in tables)
    queue(DatasetStarted(run.run_id, Progress(done=sum(t.accepted for t in tables), total=total), tables=tables,
                         resumed=run.doc is not None))
    run.on_event = TableEvents(run, queue)
    return run


def result_summary(result: RunResult | DatasetResult) -> str:
    """The notice at a run's end: records of a run, rows per table of a dataset."""
    if isinstance(result, DatasetResult):
        tables = ", ".join(f"{t.name} {t.accepted}" for t in result.tables)
        return f"{result.accepted}/{result.requested} rows in {len(result.tables)} tables ({tables})"
    return f"{result.accepted}/{result.requested} records, {result.rejected} rejected"


def is_dataset_doc(doc: RunDoc) -> bool:
    """A history document of a dataset run (kind "dataset")."""
    return doc.extra.get("kind") == KIND
