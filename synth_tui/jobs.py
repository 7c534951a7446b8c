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

from textual.message import Message

from .core.backends import Backend, BackendSpec, backend_from_settings
from .core.compare import Comparison
from .core.config import Settings
from .core.dataset import Dataset, DatasetResult, DatasetRun
from .core.engine import Run, RunConfig, RunResult, probe_backend
from .core.errors import DataDirLocked, SynthError, UserInputError
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
        run = Run(job.schema, job.config, backend, store=store, on_event=self._queue, keep_records=False)
        self.post(RunDone(self._execute(run, backend)))

    def resume(self, run_id: str, spec: BackendSpec) -> None:
        store = self._writable_store()
        backend = self._backend(spec)
        self.post(RunDone(self._execute(Run.resume(store, run_id, backend, on_event=self._queue, keep_records=False),
                                        backend)))

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
