"""The generation engine. One run (run.py) wires four parts that each stand alone:

    planner.py    what to ask next: request sizes, enum spread, variation hints, re-asks
    scheduler.py  sending: adaptive concurrency, retries with backoff, the breaker
    acceptor.py   what to keep: parse -> validate -> checks -> dedupe -> journal
    history.py    the run's document and journal in the store; where a resume starts

config.py holds RunConfig, Counts and RunResult; probe.py the one-request backend check.
"""

from __future__ import annotations

from ..backends.base import Backend
from ..events import EventSink
from ..schema import RecordSchema
from ..store import Store
from .config import Counts, RunConfig, RunResult
from .history import ResumePoint
from .probe import probe_backend
from .run import Run


async def generate(
    schema: RecordSchema,
    config: RunConfig,
    backend: Backend,
    *,
    store: Store | None = None,
    save_to_db: bool = True,
    data_dir: str | None = None,
    on_event: EventSink | None = None,
) -> RunResult:
    """Run one generation to the end. Only tests call it (tests/test_store.py,
    tests/test_local_model.py): remove it once they call ``Run(...).execute()``.

    The run is kept in the history of ``store``, or of ``data_dir`` (default: the user
    data dir or $SYNTH_TUI_DATA_DIR), opened for this call; ``save_to_db=False`` keeps
    nothing on disk."""
    if store is not None or not save_to_db:
        return await Run(schema, config, backend, store=store, on_event=on_event).execute()
    with Store(data_dir) as own:
        return await Run(schema, config, backend, store=own, on_event=on_event).execute()


__all__ = ["Counts", "ResumePoint", "Run", "RunConfig", "RunResult", "generate", "probe_backend"]
