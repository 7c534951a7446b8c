"""One generation: schema + count -> N valid, varied records.

The planner says what to ask, the scheduler sends it (adaptive limit, retries, breaker),
the acceptor keeps what is valid and new (parse, validate, dedupe, journal), and the
run's record keeps the history. Invalid or missing records are asked for again with the
reasons fed back; failures that retrying cannot mend stop the run at once, keeping every
accepted record (resumable). The run emits typed events (core/events.py) as it goes.

With a price (``config.price``) the run counts its cost; with a budget (budget.py) it
starts no request whose worst case could take it past the budget, and when the next one
cannot fit it ends with status ``budget``, keeping every record (resumable with a larger
budget).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from ..backends.base import Backend, Completion
from ..errors import BackendError, ResponseTooLarge, StoreError, UserInputError
from ..events import (
    Event,
    EventSink,
    Progress,
    RecordRejected,
    RecordsAccepted,
    Rejection,
    RequestAnswered,
    RunFailed,
    RunFinished,
    RunStarted,
)
from ..pricing import Price, usd
from ..schema import RecordSchema
from ..store import Store, new_run_id, now_iso
from .acceptor import Acceptor
from .budget import Budget
from .config import Counts, RunConfig, RunResult
from .drafts import DraftSource, InputRows
from .history import ResumePoint, RunRecord
from .planner import Plan, Planner
from .scheduler import AdaptiveLimit, RetryPolicy, Scheduler


class Run:
    """One generation. ``await run.execute()`` returns a RunResult; ``cancel()`` may be
    called from any thread and keeps what was accepted. ``resume`` (see Run.resume)
    continues a stopped run from where its history says it stands."""

    def __init__(
        self,
        schema: RecordSchema,
        config: RunConfig,
        backend: Backend,
        *,
        store: Store | None = None,
        on_event: EventSink | None = None,
        run_id: str | None = None,
        resume: ResumePoint | None = None,
        keep_records: bool = True,
        rows: InputRows | None = None,
    ) -> None:
        config.check()
        self.schema = schema
        self.config = config
        self.backend = backend
        self.store = store
        self.on_event: EventSink = on_event or (lambda event: None)
        self.run_id = resume.run_id if resume else run_id or new_run_id()
        self.counts = resume.counts if resume else Counts()
        self._resumed = resume is not None
        self._started_iso = resume.started if resume else now_iso()
        self._elapsed_before = resume.elapsed if resume else 0.0  # earlier sessions' time
        self.history = RunRecord(store, self.run_id)
        if schema.recipe is not None:
            schema.recipe.check_count(schema.schema, config.count)
        held = resume.records if resume else []
        drafts = DraftSource(schema, config, accepted=len(held), rows=rows)
        self.acceptor = Acceptor(
            schema, config.count, self.counts, max_response_bytes=config.max_response_bytes,
            records=held, examples=drafts.examples, journal=self.history, keep=keep_records or store is None,
            on_accept=self._accepted, on_reject=self._rejected,
        )
        self._done_before = self.acceptor.kept
        self.planner = Planner(
            schema, config, backend, accepted=held, first_index=self.counts.requests, drafts=drafts,
        )
        limit = min(config.concurrency, backend.max_concurrency or config.concurrency)
        self.scheduler = Scheduler(
            backend, self.counts, limit=AdaptiveLimit(limit), emit=self._emit,
            policy=RetryPolicy(config.max_retries, config.retry_base, config.retry_cap),
        )
        self.price = Price(*config.price) if config.price is not None else None
        self.budget = Budget(config.budget, self.price, self.counts) \
            if config.budget is not None and self.price is not None else None
        self._waiting: Plan | None = None  # planned, but its worst case did not fit in the budget yet
        self._cancel = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start = 0.0

    @classmethod
    def resume(
        cls, store: Store, run_id: str, backend: Backend, *, on_event: EventSink | None = None,
        config_overrides: dict[str, Any] | None = None, keep_records: bool = True, rows: InputRows | None = None,
    ) -> Run:
        """Continue a stopped run to its requested count with its schema and parameters."""
        point = ResumePoint.load(store, run_id, config_overrides)
        return cls(point.schema, point.config, backend, store=store, on_event=on_event, resume=point,
                   keep_records=keep_records, rows=rows)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The accepted records, when the run keeps them in memory (``keep_records``, or
        no store): else they are in the store's journal only."""
        return self.acceptor.records

    # -- cancel ------------------------------------------------------------------------------
    def cancel(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_cancel)
        else:
            self._on_cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _on_cancel(self) -> None:
        self._cancel.set()
        self.scheduler.stop()

    # -- the run -------------------------------------------------------------------------------
    async def execute(self) -> RunResult:
        self._loop = asyncio.get_running_loop()
        self._start = time.monotonic()
        error: str | None = None
        status = "done"
        try:
            self.history.open(self._document(), resumed=self._resumed)
            self._emit(RunStarted, backend=self.backend.kind, model=self.backend.model, resumed=self._resumed)
            await self._generate()
            if self.acceptor.kept < self.config.count:
                status, error = self._short()
        except (BackendError, StoreError, UserInputError) as exc:
            status, error = "failed", str(exc)
        except Exception as exc:  # a bug must not lose the records: report it as a failure
            status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        return self._finish(status, error)

    async def _generate(self) -> None:
        """Ask for records until the run has them all, or cannot have more now."""
        await self.scheduler.run(self._next_work)

    def _short(self) -> tuple[str, str | None]:
        """How a run that ended short of its count ended: cancelled, at its budget, or
        given up (raised, with why)."""
        if self.cancelled:
            return "cancelled", None
        if self._waiting is not None:
            return "budget", self._budget_message()
        raise BackendError(self.acceptor.give_up_message(self.planner.requests_made))

    def _next_work(self) -> Coroutine[Any, Any, None] | None:
        """The next request's work for the scheduler, or None when none is due now."""
        waiting, self._waiting = self._waiting, None
        if self.acceptor.complete:
            if waiting is not None:
                self.planner.release(waiting)
            return None
        plan = waiting or self.planner.next(self.acceptor.accepted)
        if plan is None:
            return None
        if self.budget is not None and plan.request is not None and not self.budget.reserve(plan.request):
            if self.budget.in_flight == 0 and plan.ask.count > 1:  # a smaller request may still fit: halves
                self.planner.release(plan)
                self.planner.budget += 1  # a request never sent: not one of the run's tries
                self.planner.ask_again(plan, plan.ask.drafts, self.acceptor.accepted, plan.ask.feedback, True)
                return self._next_work()
            self._waiting = plan  # tried again when a request in flight ends; none in flight: the run ends
            return None
        return self._handle(plan)

    async def _handle(self, plan: Plan) -> None:
        completion = None
        drafts = plan.ask.drafts
        try:
            if plan.request is None:  # nothing left for the model: the drafts are the records
                unfilled = await self.acceptor.build(drafts)
            else:
                try:
                    completion = await self._send(plan)
                except ResponseTooLarge as exc:
                    self.acceptor.reject("too_large", str(exc), "")
                    unfilled = drafts
                else:
                    unfilled = await self.acceptor.take(completion, drafts)
        finally:
            self.planner.release(plan)
            if self.budget is not None and plan.request is not None:
                self.budget.release(plan.request, completion)
        truncated = completion is not None and completion.finish_reason == "length"
        self.planner.ask_again(plan, unfilled, self.acceptor.accepted, self.acceptor.top_reasons(4), truncated)

    async def _send(self, plan: Plan) -> Completion:
        assert plan.request is not None
        started = time.monotonic()
        completion = await self.scheduler.send(plan.request)
        self._emit(RequestAnswered, records=plan.ask.count, prompt_tokens=completion.prompt_tokens,
                   completion_tokens=completion.completion_tokens, seconds=time.monotonic() - started)
        return completion

    def _budget_message(self) -> str:
        """Why a run stopped at its budget: spent, budget, records, what the next needed."""
        assert self.budget is not None and self._waiting is not None
        self.planner.release(self._waiting)
        b = self.budget
        return (f"budget reached: spent {usd(b.spent)} of {usd(b.limit)}, {self.acceptor.kept}/{self.config.count} "
                f"records kept; the next request could cost up to {usd(b.refused or 0.0)}, more than the "
                f"{usd(max(0.0, b.limit - b.spent))} left (fewer max tokens or records per request make it "
                "smaller). Resume with a larger budget to go on: what the run spent so far counts against it")

    def cost(self) -> float | None:
        """USD the run has spent, every session, at its price; None without a price."""
        return None if self.price is None else self.price.cost(self.counts.prompt_tokens, self.counts.completion_tokens)

    def _accepted(self, records: list[dict[str, Any]]) -> None:
        self.planner.observe(records)
        self._emit(RecordsAccepted, records=tuple(records))
        self.history.save_progress(self._counts_doc())

    def _rejected(self, rejection: Rejection) -> None:
        self._emit(RecordRejected, reason=rejection.reason, raw=rejection.raw, duplicate=rejection.kind == "duplicate",
                   kind=rejection.kind)

    # -- events and history --------------------------------------------------------------------
    def progress(self) -> Progress:
        c = self.counts
        session = time.monotonic() - self._start if self._start else 0.0
        return Progress(
            done=self.acceptor.kept, total=self.config.count,
            elapsed=self._elapsed_before + session, session_elapsed=session,
            rejected=c.rejected, duplicates=c.duplicates, retries=c.retries, requests=c.requests,
            prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
            concurrency=self.scheduler.limit.value, done_this_session=self.acceptor.kept - self._done_before,
            cost_usd=self.cost(), budget_usd=self.config.budget,
            endpoints=tuple(self.backend.endpoint_counts()),  # copies, made on the run's own thread
        )

    def _emit(self, event: type[Event], /, **fields: Any) -> None:
        try:
            self.on_event(event(run_id=self.run_id, progress=self.progress(), **fields))
        except Exception:  # a listener's bug must not stop generation
            pass

    def _counts_doc(self) -> dict[str, Any]:
        cost = self.cost()
        doc: dict[str, Any] = {**self.counts.to_doc(self.config.count, self.acceptor.kept),
               "cost_usd": None if cost is None else round(cost, 9)}
        endpoints = self.backend.endpoint_counts()  # several servers: each one's requests, answers, set-asides
        if endpoints:
            doc["endpoints"] = endpoints
        return doc

    def _document(self) -> dict[str, Any]:
        return {
            "schema": self.schema.schema, "config": self.config.to_doc(), "backend": self.backend.describe(),
            "counts": self._counts_doc(), "error": None,
        }

    def _finish(self, status: str, error: str | None) -> RunResult:
        elapsed = self._elapsed_before + time.monotonic() - self._start  # summed over resumes, as history says
        finished = now_iso()
        status, error = self.history.close(
            status, error, counts=self._counts_doc(), elapsed=elapsed, finished=finished,
        )
        c = self.counts
        result = RunResult(
            run_id=self.run_id, status=status, records=self.records, requested=self.config.count,
            accepted=self.acceptor.kept, rejected=c.rejected, duplicates=c.duplicates, retries=c.retries,
            requests=c.requests, prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
            elapsed=elapsed, started=self._started_iso, finished=finished, error=error,
            rejections=self.acceptor.rejections, cost_usd=self.cost(), budget_usd=self.config.budget,
            backend=self.backend.kind,
        )
        if status == "failed":
            self._emit(RunFailed, message=error or "")
        else:
            self._emit(RunFinished, status=status, message=error or "")
        return result
