"""A run through the OpenAI Batch API: the planner's requests for every record still
wanted go into one JSONL input file (split within the provider's limits), the batch is
created, and its ids are written to the run's document before the process waits, so a
killed or closed synth-tui resumes polling the same batch and never pays for it twice.
The answers go through the same Acceptor as any answer; what is missing or invalid goes
into a follow-up batch, for at most ``max_rounds`` rounds.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from ..backends.base import Backend
from ..backends.openai import OpenAIBackend
from ..backends.openai_files import TERMINAL, BatchClient, batch_line
from ..errors import BackendError, RetryableError, UserInputError
from ..events import BatchPolled, Notice
from ..store import Store
from .drafts import Draft
from .planner import Ask, Plan
from .run import Run

MAX_REQUESTS = 50_000  # per input file, the provider's limit
MAX_BYTES = 200 * 1024 * 1024
MAX_ROUNDS = 3
POLL_RETRIES = 8  # transient failures in a row while polling before the run fails


@dataclass
class BatchOptions:
    poll_interval: float = 30.0  # seconds before the first poll; later polls back off
    poll_cap: float = 600.0
    max_rounds: int = MAX_ROUNDS
    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES


class BatchRun(Run):
    """A Run whose requests go through the Batch API. Build it as a Run, with ``options``."""

    def __init__(self, *args: Any, options: BatchOptions | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if not isinstance(self.backend, OpenAIBackend) or type(self.backend).kind != "openai":
            raise UserInputError("the Batch API needs the openai backend (one base URL)")
        self.openai: OpenAIBackend = self.backend
        self.options = options or BatchOptions()
        self.client = BatchClient(self.backend)
        self.rounds = 0
        self._state: dict[str, Any] = {"round": 0, "active": []}

    @classmethod
    def resume_batch(cls, store: Store, run_id: str, backend: Backend, *, options: BatchOptions,
                     **kw: Any) -> BatchRun:
        """Continue a stopped batch run: first the batches it recorded, then new rounds."""
        run = cls.resume(store, run_id, backend, **kw)
        assert isinstance(run, BatchRun)
        run.options = options
        return run

    # Run.execute drives a batch run too: its document, its rounds and how it ends short
    def _document(self) -> dict[str, Any]:
        """The run's document with its batches; a resumed run first takes up those it
        recorded (read when the run opens, so a store error fails the run as any)."""
        if self._resumed:
            self._state = self._recorded_state()
        return {**super()._document(), "batch": self._state}

    async def _generate(self) -> None:
        await self._all_rounds()

    def _short(self) -> tuple[str, str | None]:
        if not self.cancelled:
            raise BackendError(self._short_message())
        return "cancelled", None

    def _recorded_state(self) -> dict[str, Any]:
        if self.store is None:
            return self._state
        state = self.store.get_run(self.run_id).get("batch")
        return state if isinstance(state, dict) and isinstance(state.get("active"), list) else self._state

    def _short_message(self) -> str:
        return f"after {self.rounds} batch round(s), {self.acceptor.give_up_message(self.planner.requests_made)}"

    # -- rounds ----------------------------------------------------------------------------
    async def _all_rounds(self) -> None:
        if self._state["active"]:  # a resumed run waits for the batches it already paid for
            await self._finish_batches(self._resumed_plans())
        while not self.acceptor.complete and not self.cancelled and self.rounds < self.options.max_rounds:
            plans = await self._collect_plans()
            if not plans:
                break
            self._state["round"] += 1
            self.rounds += 1
            await self._submit(plans)
            await self._finish_batches({p.custom_id: p for p in plans})

    async def _collect_plans(self) -> list[BatchPlan]:
        """Every request the planner has for the records still wanted; drafts that need no
        model are built here at once."""
        plans: list[BatchPlan] = []
        while (plan := self.planner.next(self.acceptor.accepted)) is not None:
            if plan.request is None:
                try:
                    unfilled = await self.acceptor.build(plan.ask.drafts)
                finally:
                    self.planner.release(plan)
                self.planner.ask_again(plan, unfilled, self.acceptor.accepted, self.acceptor.top_reasons(4), False)
                continue
            plans.append(BatchPlan(f"r{self._state['round'] + 1}-{plan.index}", plan))
        return plans

    async def _submit(self, plans: list[BatchPlan]) -> None:
        """Upload the plans' requests in files within the limits and create a batch of
        each; every batch is in the run's document before anything waits on it."""
        model = self.backend.model
        for part, chunk in enumerate(self._chunks(plans, model)):
            if self.cancelled:
                return
            data = b"".join(line for _, line in chunk)
            file_id = await self.client.upload(data, f"{self.run_id}-{self._state['round']}-{part}.jsonl")
            batch = await self.client.create(file_id, {"synth_tui_run": self.run_id})
            self._state["active"].append({
                "batch_id": batch["id"], "input_file_id": file_id,
                "requests": {p.custom_id: p.saved() for p, _ in chunk},
            })
            self._save_state()
            self._emit(Notice, message=f"round {self._state['round']}: batch {batch['id']} created, "
                       f"{len(chunk)} requests in {file_id}")

    def _chunks(self, plans: list[BatchPlan], model: str) -> list[list[tuple[BatchPlan, bytes]]]:
        chunks: list[list[tuple[BatchPlan, bytes]]] = [[]]
        size = 0
        for plan in plans:
            assert plan.plan.request is not None
            line = batch_line(plan.custom_id, model, plan.plan.request)
            full = len(chunks[-1]) >= self.options.max_requests or size + len(line) > self.options.max_bytes
            if chunks[-1] and full:
                chunks.append([])
                size = 0
            chunks[-1].append((plan, line))
            size += len(line)
        return [c for c in chunks if c]

    def _resumed_plans(self) -> dict[str, BatchPlan]:
        """The recorded batches' requests, as plans the planner hands out no more."""
        plans: dict[str, BatchPlan] = {}
        for entry in self._state["active"]:
            for custom_id, saved in entry.get("requests", {}).items():
                fixed = saved if isinstance(saved, list) else [{}] * int(saved)
                drafts = [Draft(fixed=dict(f)) for f in fixed]
                plans[custom_id] = BatchPlan(custom_id, Plan(Ask(drafts), -1, None, None), resumed=True)
        return plans

    async def _finish_batches(self, plans: dict[str, BatchPlan]) -> None:
        """Wait for every active batch, take its answers, and ask again for what none gave."""
        for entry in list(self._state["active"]):
            batch = await self._wait(entry["batch_id"])  # cancelled: it cancels the remote batch
            if self.cancelled:  # kept in the document: a resume takes what the batch did before it stopped
                continue
            if batch["status"] == "failed":
                self._state["active"].remove(entry)  # a resume makes a new batch: this one did nothing
                self._save_state()
                raise BackendError(f"batch {entry['batch_id']} failed: {_batch_errors(batch)}. "
                                   "The run can be resumed.")
            answered = await self._take_outputs(batch, plans)
            for custom_id in entry.get("requests", {}):
                plan = plans.get(custom_id)
                if plan is not None and custom_id not in answered:
                    self.acceptor.reject("unparseable", f"batch {batch['id']} gave no answer to {custom_id} "
                                         f"(batch {batch['status']})", "")
                    self._settle(plan, plan.plan.ask.drafts, False)
            self._state["active"].remove(entry)
            self._save_state()
            self.history.save_progress(self._counts_doc())

    def _settle(self, plan: BatchPlan, unfilled: list[Draft], truncated: bool) -> None:
        if not plan.resumed:
            self.planner.release(plan.plan)
            self.planner.ask_again(plan.plan, unfilled, self.acceptor.accepted, self.acceptor.top_reasons(4),
                                   truncated)

    async def _wait(self, batch_id: str) -> dict[str, Any]:
        """Poll a batch with backoff until it ends, telling its status and request counts;
        cancelling the run cancels the batch."""
        interval = self.options.poll_interval
        failures = 0
        said = ""
        while True:
            try:
                batch = await self.client.retrieve(batch_id)
                failures = 0
            except RetryableError as exc:
                failures += 1
                if failures > POLL_RETRIES:
                    raise BackendError(f"batch {batch_id}: {exc}. The run can be resumed.") from None
                batch = {"id": batch_id, "status": "unknown"}
            said = self._tell(batch, said)
            if batch["status"] in TERMINAL:
                return batch
            try:
                await asyncio.wait_for(self._cancel.wait(), timeout=interval)
            except TimeoutError:
                interval = min(self.options.poll_cap, interval * 1.5)
                continue
            await self._cancel_remote(batch_id)
            return {"id": batch_id, "status": "cancelling"}

    async def _cancel_remote(self, batch_id: str) -> None:
        try:
            await self.client.cancel(batch_id)
            self._emit(Notice, message=f"batch {batch_id} cancelled")
        except (BackendError, RetryableError) as exc:
            self._emit(Notice, message=f"could not cancel batch {batch_id}: {exc}")

    def _tell(self, batch: dict[str, Any], said: str) -> str:
        counts = _dict(batch.get("request_counts"))
        text = (f"batch {batch.get('id')}: {batch.get('status')}, {counts.get('completed', 0)} of "
                f"{counts.get('total', '?')} requests done, {counts.get('failed', 0)} failed")
        if text != said:
            self._emit(Notice, message=text)
        self._emit(BatchPolled, batch_id=str(batch.get("id") or "")[:100], status=str(batch.get("status") or "")[:40],
                   completed=_whole(counts.get("completed")), failed=_whole(counts.get("failed")),
                   total=_whole(counts.get("total")))
        return text

    async def _take_outputs(self, batch: dict[str, Any], plans: dict[str, BatchPlan]) -> set[str]:
        """Feed the output file's answers to the acceptor; the error file's lines are
        failed requests. The custom ids answered (well or not)."""
        answered: set[str] = set()
        for key in ("output_file_id", "error_file_id"):
            file_id = batch.get(key)
            if not isinstance(file_id, str) or not file_id:
                continue
            number = 0
            async for raw in self.client.lines(file_id, self.config.max_response_bytes + 65536):
                number += 1
                await self._take_line(raw, f"{file_id}:{number}", plans, answered)
        return answered

    async def _take_line(self, raw: bytes | None, where: str, plans: dict[str, BatchPlan], answered: set[str]) -> None:
        line = _parse_line(raw)
        if isinstance(line, str):
            self.acceptor.reject("unparseable", f"{where}: {line}", (raw or b"")[:200].decode("utf-8", "replace"))
            return
        custom_id, status, body, error = line
        plan = plans.get(custom_id)
        if plan is None or custom_id in answered:
            return  # not a request of this run, or answered already
        answered.add(custom_id)
        self.counts.requests += 1
        if status != 200 or error is not None:
            self.acceptor.reject("unparseable", f"{where}: request {custom_id} failed: {error or status}", "")
            self._settle(plan, plan.plan.ask.drafts, False)
            return
        try:
            completion = self.openai._completion(body, None)
        except RetryableError as exc:
            self.acceptor.reject("unparseable", f"{where}: {exc}", json.dumps(body)[:200])
            self._settle(plan, plan.plan.ask.drafts, False)
            return
        self.counts.prompt_tokens += completion.prompt_tokens
        self.counts.completion_tokens += completion.completion_tokens
        unfilled = await self.acceptor.take(completion, plan.plan.ask.drafts)
        self._settle(plan, unfilled, completion.finish_reason == "length")

    def _save_state(self) -> None:
        if self.store is not None:
            self.store.update_run(self.run_id, batch=self._state)


@dataclass
class BatchPlan:
    """A planned request and its line's custom id in a batch."""

    custom_id: str
    plan: Plan
    resumed: bool = False  # from a recorded batch: not the planner's to release

    def saved(self) -> Any:
        """What a resume needs of it: how many records, or each one's fixed values."""
        drafts = self.plan.ask.drafts
        return [d.fixed for d in drafts] if any(d.fixed for d in drafts) else len(drafts)


def _parse_line(raw: bytes | None) -> tuple[str, int, dict[str, Any], Any] | str:
    """custom_id, status code, body and error of one output or error line, or why not."""
    if raw is None:
        return "a line longer than the cap (max_response_bytes): not read"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(data, dict) or not isinstance(data.get("custom_id"), str):
        return "a line without a custom_id"
    response = _dict(data.get("response"))
    body = _dict(response.get("body"))
    status = response.get("status_code")
    status = status if isinstance(status, int) else 0
    error = data.get("error") or (body.get("error") if status != 200 else None)
    if isinstance(error, dict):
        error = error.get("message") or json.dumps(error)
    return data["custom_id"][:200], status, body, None if error is None else str(error)[:300]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _batch_errors(batch: dict[str, Any]) -> str:
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    if isinstance(data, list) and data:
        return "; ".join(str(e.get("message") if isinstance(e, dict) else e)[:200] for e in data[:3])
    return "the provider gave no reason"


def _whole(value: Any) -> int:
    """A request count as the provider wrote it, or 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
