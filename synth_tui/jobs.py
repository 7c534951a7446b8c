"""What the App's worker threads do: run the engine, and tell the App how it went.

Each job runs on a thread of its own with its own event loop. It talks to the UI only by
posting messages (``post``) and by queueing engine events in ``events``, which the App
drains ten times a second: a run of thousands of answers a second then costs the UI ten
wake-ups a second, not thousands (bench/tui_overhead.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from .core.backends import Backend, BackendSpec, backend_from_settings
from .core.compare import Comparison
from .core.config import Settings
from .core.dataset import Dataset, DatasetResult, DatasetRun
from .core.engine import Run, RunConfig, RunResult, probe_backend
from .core.errors import DataDirLocked, SynthError, UserInputError
from .core.estimate import AnswerLog, Projection
from .core.events import Event, Notice, RunFailed, RunFinished, RunStarted
from .core.store import Store
from .messages import JobSpec
from .table_events import with_table_events


class EventsReady(Message):
    """Engine events wait in the queue: drain it now (start, end, notices)."""


class RunDone(Message):
    def __init__(self, result: RunResult | DatasetResult) -> None:
        super().__init__()
        self.result = result


class RunBegins(Message):
    """A comparison moves on to its next model."""

    def __init__(self, total: int, spec: BackendSpec, columns: list[str]) -> None:
        super().__init__()
        self.total = total
        self.spec = spec
        self.columns = columns


class EstimateReady(Message):
    """A pilot finished: ``projection`` says what the job's whole run takes. With
    ``confirm_over`` (USD) it was a Generate that asks only when the cost is over it."""

    def __init__(self, job: JobSpec, projection: Projection, kind: str, confirm_over: float | None) -> None:
        super().__init__()
        self.job = job
        self.projection = projection
        self.kind = kind
        self.confirm_over = confirm_over


class ComparisonDone(Message):
    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids


class ProbeDone(Message):
    def __init__(self, kind: str, ok: bool, message: str) -> None:
        super().__init__()
        self.kind = kind
        self.ok = ok
        self.message = message


class Jobs:
    """The bodies of the App's workers; ``current`` is the run going, if any."""

    def __init__(self, settings: Settings, post: Callable[[Message], object]) -> None:
        self.settings = settings
        self.post = post
        self.store: Store | None = None
        self.store_error: str | None = None
        self.current: Run | DatasetRun | Comparison | None = None  # what cancel() stops
        self.events: deque[Event] = deque()  # appends are thread-safe
        self.batch_poll_interval = 30.0  # seconds before a batch's first poll; later polls back off

    def open_store(self, data_dir: Path, lock_wait: float) -> None:
        """The history, writable; read-only when another process is stuck writing it; none
        when the directory cannot be used (store_error says why)."""
        try:
            self.store = Store(data_dir, lock_wait=lock_wait)
        except DataDirLocked as exc:
            self.store_error = str(exc)
            self.store = Store(data_dir, writable=False)
        except SynthError as exc:
            self.store_error = str(exc)
            self.store = None

    # -- run on worker threads ---------------------------------------------------------------
    def generate(self, job: JobSpec) -> None:
        store = self._writable_store()
        backend = self._backend(job.backend)
        if job.batch_api:
            from .core.engine.batch import BatchRun

            run: Run = BatchRun(job.schema, job.config, backend, store=store, on_event=self._queue,
                                keep_records=False, options=self._batch_options())
        else:
            run = Run(job.schema, job.config, backend, store=store, on_event=self._queue, keep_records=False)
        self.post(RunDone(self._execute(run, backend)))

    def resume(self, run_id: str, spec: BackendSpec, count: int | None = None, budget: float | None = None) -> None:
        """Go on with a run; ``count``: to this many records (an estimate's pilot goes on);
        ``budget``: a larger one, for a run that stopped at its own."""
        store = self._writable_store()
        backend = self._backend(spec)
        overrides: dict[str, Any] = {"count": count} if count else {}
        if budget is not None:
            overrides["budget"] = budget
        if store.get_run(run_id).extra.get("batch"):  # a Batch API run polls the batches it recorded first
            from .core.engine.batch import BatchRun

            run: Run = BatchRun.resume_batch(store, run_id, backend, options=self._batch_options(),
                                             on_event=self._queue, keep_records=False, config_overrides=overrides)
        else:
            run = Run.resume(store, run_id, backend, on_event=self._queue, keep_records=False,
                             config_overrides=overrides)
        self.post(RunDone(self._execute(run, backend)))

    def dataset(self, dataset: Dataset, config: RunConfig, spec: BackendSpec) -> None:
        """Every table of ``dataset``, parents first, as one run in the history."""
        store = self._writable_store()
        backend = self._backend(spec)
        run = with_table_events(DatasetRun(dataset, config, backend, store=store), self._queue)
        self.post(RunDone(self._execute(run, backend)))

    def resume_dataset(self, run_id: str, spec: BackendSpec) -> None:
        """A dataset run continued table by table, from each table's next row."""
        store = self._writable_store()
        backend = self._backend(spec)
        run = with_table_events(DatasetRun.resume(store, run_id, backend), self._queue)
        self.post(RunDone(self._execute(run, backend)))

    def estimate(self, job: JobSpec, pilot_records: int, confirm_over: float | None) -> None:
        """A pilot of ``pilot_records`` with the job's settings, kept in the history as the
        start of the run; then the projection for the job's count (EstimateReady), or the
        pilot's result when it ended short or was the whole run."""
        from .core.estimate_text import pilot_projection

        store = self._writable_store()
        backend = self._backend(job.backend)
        log = AnswerLog(self._queue)
        pilot = Run(job.schema, job.config.copy(count=min(pilot_records, job.config.count)), backend,
                    store=store, on_event=log, keep_records=False)
        result = self._execute(pilot, backend)
        if result.status != "done" or result.accepted >= job.config.count:
            self.post(RunDone(result))
            return
        projection = pilot_projection(pilot, result, log.answers, job.config)
        self.post(EstimateReady(job, projection, backend.kind, confirm_over))

    def compare(self, job: JobSpec, specs: list[BackendSpec]) -> None:
        """The schema on each model in turn (core.compare.Comparison: each run its own copy
        of the config, one seed for all); cancel stops the current run and starts no other."""
        def begin(spec: BackendSpec, run: Run) -> None:
            self.post(RunBegins(job.config.count, spec, job.schema.field_names()))

        def end(result: RunResult) -> None:
            self.post(RunDone(result))

        comparison = Comparison(job.schema, job.config, specs, self._backend, self._writable_store(),
                                on_event=self._queue, on_begin=begin, on_end=end)
        self.current = comparison
        try:
            results = asyncio.run(comparison.execute())
        finally:
            self.current = None
        self.post(ComparisonDone([r.run_id for r in results]))

    def probe(self, spec: BackendSpec) -> None:
        async def go() -> tuple[bool, str]:
            async with self._backend(spec) as backend:
                return await probe_backend(backend)

        ok, message = asyncio.run(go())
        self.post(ProbeDone(spec.kind, ok, message))

    # -- shared ------------------------------------------------------------------------------
    @property
    def running(self) -> Run | DatasetRun | None:
        """The run going, a comparison's current one included."""
        going = self.current
        return going.current if isinstance(going, Comparison) else going

    def cancel(self) -> bool:
        going = self.current
        if going is None:
            return False
        going.cancel()
        return True

    def _writable_store(self) -> Store:
        if self.store is None or not self.store.writable:
            reason = (self.store_error or "the history cannot be written").rstrip(".")
            raise UserInputError(f"{reason}. This run would not be saved, so it was not started.")
        return self.store

    def _backend(self, spec: BackendSpec) -> Backend:
        return backend_from_settings(spec, self.settings)

    def _batch_options(self) -> Any:
        from .core.engine.batch import BatchOptions

        poll = self.batch_poll_interval
        return BatchOptions(poll_interval=poll, poll_cap=max(600.0, poll))

    def _execute(self, run: Run | DatasetRun, backend: Backend) -> RunResult | DatasetResult:
        async def go() -> RunResult | DatasetResult:
            async with backend:
                return await run.execute()

        self.current = run
        try:
            return asyncio.run(go())
        finally:
            self.current = None

    def _queue(self, event: Event) -> None:
        """Called on the run's thread: queue the event; start, end and notices wake the UI."""
        self.events.append(event)
        if isinstance(event, (RunStarted, RunFinished, RunFailed, Notice)):
            self.post(EventsReady())


def describe_failure(error: BaseException | None) -> str:
    """A worker's error for a person: ours say what happened; anything else is named."""
    if isinstance(error, SynthError):
        return error.remedy("tui")
    return f"unexpected error: {type(error).__name__}: {error}"
