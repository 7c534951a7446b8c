"""The generation engine: schema + count -> N valid, varied records.

plan chunks -> concurrent requests (adaptive limit) -> parse -> validate -> dedupe
-> journal -> events. Invalid or missing records are asked for again with the reasons
fed back; transient HTTP failures are retried with backoff; failures that retrying
cannot mend stop the run at once, keeping every accepted record (resumable).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from . import prompts
from .backends.base import DEFAULT_MAX_RESPONSE_BYTES, Backend, CompletionRequest, GenerationParams
from .backends.http import Unreachable
from .errors import BackendError, ResponseTooLarge, RetryableError, StoreError, UserInputError
from .events import (
    Event, EventSink, Notice, Progress, RateLimited, RecordRejected, RecordsAccepted, Rejection,
    RetryScheduled, RunFailed, RunFinished, RunStarted,
)
from .parsing import TooDeep, UnparseableOutput, extract_records
from .report import reason_key
from .schema import RecordSchema, batch_schema, canonical_json, check_schema
from .store import Store, new_run_id, now_iso

MAX_KEPT_REJECTIONS = 1000  # raw texts kept per run for triage; counts are always exact
# answers longer than this are parsed and validated in a worker thread, so that the
# event loop (signals, cancel, the TUI's keys) never waits on them
OFF_LOOP_CHARS = 64 * 1024


@dataclass
class RunConfig:
    count: int
    batch_size: int | None = None  # None: the backend's preferred size
    concurrency: int = 4
    params: GenerationParams = field(default_factory=GenerationParams)
    max_attempts: int = 4  # requests per record slot, on average, before the run gives up
    max_retries: int = 5  # transient failures retried per request
    variation_hints: bool = True
    balance_enums: bool = True  # spread enum values evenly over the run
    retry_base: float = 0.5
    retry_cap: float = 8.0
    # an answer larger than this (4 MiB: a model's is ~1000x smaller) is a rejection, read no further
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def check(self) -> None:
        if self.count < 1:
            raise UserInputError(f"count must be at least 1, not {self.count}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UserInputError(f"records per request must be at least 1, not {self.batch_size}")
        if self.concurrency < 1:
            raise UserInputError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.max_response_bytes < 1024:
            raise UserInputError(f"the response size cap must be at least 1024 bytes, not {self.max_response_bytes}")

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["params"] = self.params.as_dict()
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "RunConfig":
        doc = dict(doc)
        params = GenerationParams(**doc.pop("params", {}))
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(params=params, **known)


@dataclass
class RunResult:
    run_id: str
    status: str  # done | failed | cancelled
    records: list[dict[str, Any]]
    requested: int
    accepted: int
    rejected: int
    duplicates: int
    retries: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    elapsed: float
    started: str
    finished: str
    error: str | None = None
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == "done"

    @property
    def data(self) -> list[dict[str, Any]]:
        return self.records


@dataclass
class _Chunk:
    count: int
    feedback: list[str] = field(default_factory=list)


class AdaptiveLimit:
    """How many requests may be in flight: halved on a rate limit (at most once a second),
    raised by one after as many successes as the current limit (AIMD)."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.value = maximum
        self._streak = 0
        self._last_cut = -math.inf

    def on_rate_limit(self) -> None:
        now = time.monotonic()
        if now - self._last_cut >= 1.0:
            self.value = max(1, self.value // 2)
            self._last_cut = now
        self._streak = 0

    def on_success(self) -> None:
        if self.value >= self.maximum:
            return
        self._streak += 1
        if self._streak >= self.value:
            self.value += 1
            self._streak = 0


class Run:
    """One generation. ``await run.execute()`` returns a RunResult; ``cancel()`` may be
    called from any thread and keeps what was accepted."""

    def __init__(
        self,
        schema: RecordSchema,
        config: RunConfig,
        backend: Backend,
        *,
        store: Store | None = None,
        on_event: EventSink | None = None,
        run_id: str | None = None,
    ) -> None:
        config.check()
        self.schema = schema
        self.config = config
        self.backend = backend
        self.store = store
        self.on_event = on_event or (lambda event: None)
        self.run_id = run_id or new_run_id()
        self.batch_size = config.batch_size or backend.preferred_batch_size
        max_c = config.concurrency
        if backend.max_concurrency:
            max_c = min(max_c, backend.max_concurrency)
        self.limit = AdaptiveLimit(max_c)
        self.fields = frozenset(schema.field_names())
        self._string_fields = prompts.string_fields(schema.schema)
        self._recent = prompts.RecentValues()
        self._balancer = prompts.EnumBalancer(schema.schema) if config.balance_enums else None
        self._response_schemas: dict[int, dict[str, Any]] = {}
        self._schema_text = json.dumps(schema.schema, ensure_ascii=False)  # sent with every prompt
        self.records: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._pending: deque[_Chunk] = deque()
        self._in_flight = 0  # records asked for by requests under way
        self._request_index = 0
        self._successes = 0
        self._recent_outcomes: deque[bool] = deque(maxlen=20)
        self.counts: Counter[str] = Counter()
        self._returned = 0  # candidate records in this session's answers
        self._duplicates_before = 0
        self.rejections: list[Rejection] = []
        self._reasons: Counter[str] = Counter()
        self._cancel = asyncio.Event()
        self._finished: asyncio.Queue[asyncio.Task[None] | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._journal = None
        self._done_before = 0
        self._start = 0.0
        self._started_iso = now_iso()
        self._last_history_write = 0.0
        self._resumed = False
        self._budget_base = 0
        self._in_history = False
        self._elapsed_before = 0.0  # time spent by earlier sessions of a resumed run

    # -- public ----------------------------------------------------------------------
    def cancel(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_cancel)
        else:
            self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _on_cancel(self) -> None:
        self._cancel.set()
        self._finished.put_nowait(None)

    @classmethod
    def resume(
        cls, store: Store, run_id: str, backend: Backend, *, on_event: EventSink | None = None,
        config_overrides: dict[str, Any] | None = None,
    ) -> "Run":
        """Continue a stopped run to its requested count with its schema and parameters."""
        doc = store.get_run(run_id)
        if doc["status"] == "done":
            raise UserInputError(f"run {doc['id']} is already complete")
        if doc["status"] == "running":
            raise UserInputError(f"run {doc['id']} is still running")
        schema = check_schema(doc["schema"], f"run {doc['id']}")
        config = RunConfig.from_doc({**doc["config"], **(config_overrides or {})})
        run = cls(schema, config, backend, store=store, on_event=on_event, run_id=doc["id"])
        run._resumed = True
        for record in store.iter_records(doc["id"]):
            key = canonical_json(record)
            if key not in run._seen:
                run._seen.add(key)
                run.records.append(record)
        run._done_before = len(run.records)
        if run._balancer is not None:
            run._balancer.observe(run.records)
        counts = doc.get("counts", {})
        for key in ("rejected", "duplicates", "retries", "requests", "prompt_tokens", "completion_tokens",
                    "answers", "latency_ms", "rate_limited"):
            run.counts[key] = int(counts.get(key, 0))
        run._request_index = run.counts["requests"]
        run._duplicates_before = run.counts["duplicates"]
        run._started_iso = doc.get("created", run._started_iso)
        run._elapsed_before = float(doc.get("elapsed") or 0.0)
        return run

    async def execute(self) -> RunResult:
        self._loop = asyncio.get_running_loop()
        self._start = time.monotonic()
        error: str | None = None
        status = "done"
        try:
            self._open_history()
            self._emit(RunStarted, backend=self.backend.kind, model=self.backend.model, resumed=self._resumed)
            await self._dispatch()
            if self._cancel.is_set() and len(self.records) < self.config.count:
                status = "cancelled"
        except (BackendError, StoreError, UserInputError) as exc:
            status, error = "failed", str(exc)
        except Exception as exc:  # a bug must not lose the records: report it as a failure
            status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        return self._finish(status, error)

    # -- dispatch --------------------------------------------------------------------
    def _needed(self) -> int:
        pending = sum(c.count for c in self._pending)
        return self.config.count - len(self.records) - self._in_flight - pending

    def _next_chunk(self) -> _Chunk | None:
        if self._pending:
            return self._pending.popleft()
        need = self._needed()
        return _Chunk(min(self.batch_size, need)) if need > 0 else None

    async def _dispatch(self) -> None:
        """Keep up to ``limit.value`` requests in flight until enough records are in.
        Finished tasks report through a queue (O(1) per completion, unlike asyncio.wait
        over every task in flight); cancel() puts a None there to wake this loop."""
        self._budget_base = self._request_index
        chunks = math.ceil(max(0, self.config.count - len(self.records)) / self.batch_size)
        budget = self._budget_base + chunks * self.config.max_attempts
        running: set[asyncio.Task[None]] = set()
        try:
            while not self._cancel.is_set():
                while len(running) < self.limit.value and len(self.records) < self.config.count:
                    if self._request_index >= budget:
                        break
                    chunk = self._next_chunk()
                    if chunk is None:
                        break
                    self._in_flight += chunk.count
                    task = asyncio.create_task(self._handle(chunk))
                    task.add_done_callback(self._finished.put_nowait)
                    running.add(task)
                if not running:
                    break
                task = await self._finished.get()
                if task is None:  # cancelled
                    break
                running.discard(task)
                task.result()  # a fatal error propagates and stops the run
            if len(self.records) < self.config.count and not self._cancel.is_set():
                raise BackendError(self._give_up_message())
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _give_up_message(self) -> str:
        problems = [f"{reason} ({n}x)" for reason, n in self._reasons.most_common(3)]
        duplicates = self.counts["duplicates"] - self._duplicates_before
        advice = "Try a larger model, fewer records per request, or a simpler schema"
        if duplicates and duplicates >= max(self._reasons.values(), default=0):
            problems.insert(
                0, f"the model kept returning duplicates: {duplicates} of {self._returned} records it returned"
            )
            advice = "Try a higher temperature, variation hints on, or a schema with more room for variety"
        if not problems:
            problems.append(f"the answers held fewer records than asked for ({self._returned} in all)")
        return (
            f"gave up after {self._request_index - self._budget_base} requests: {len(self.records)} of "
            f"{self.config.count} records accepted. Most common problems: {', '.join(problems)}. "
            f"{advice}; the run can be resumed."
        )

    async def _handle(self, chunk: _Chunk) -> None:
        request, targets = self._build_request(chunk)
        try:
            try:
                completion = await self._complete_with_retries(request)
            except ResponseTooLarge as exc:
                self._reject("too_large", str(exc), "")
                completion, accepted = None, 0
            else:
                accepted = await self._take(completion, chunk)
        finally:
            self._in_flight -= chunk.count
            if targets and self._balancer is not None:
                self._balancer.release(targets)
        # ask again for what is still missing, telling the model what went wrong; an answer
        # cut off at max_tokens asked for too much at once, so ask in halves
        missing = min(chunk.count - accepted, self._needed())
        if missing > 0:
            feedback = [reason for reason, _ in self._reasons.most_common(4)]
            if completion is not None and completion.finish_reason == "length" and missing > 1:
                self._pending.append(_Chunk(missing - missing // 2, feedback))
                self._pending.append(_Chunk(missing // 2, feedback))
            else:
                self._pending.append(_Chunk(missing, feedback))

    def _build_request(self, chunk: _Chunk) -> tuple[CompletionRequest, list[dict[str, Any]] | None]:
        index = self._request_index
        self._request_index += 1
        base_seed = self.config.params.seed
        params = GenerationParams(**self.config.params.as_dict())
        if base_seed is not None:
            params.seed = base_seed + index
        rng = letters = targets = None
        variation: dict[str, Any] = {}
        hints = self.config.variation_hints
        seeded = random.Random(f"{base_seed}:{index}" if base_seed is not None else None)
        if hints:
            rng = seeded
            letters = prompts.pick_letters(rng, chunk.count)
            if chunk.count == 1 and self._string_fields:
                variation.update(field=self._string_fields[0], letter=letters[0])
        if self._balancer is not None and self._balancer.fields:
            targets = self._balancer.targets(seeded, chunk.count)
            if chunk.count == 1:
                variation["enums"] = targets[0]
        messages = prompts.build_messages(
            self._schema_text,
            chunk.count,
            rng=rng if self.backend.hint_text else None,
            letters=letters,
            targets=targets,
            avoid=self._recent.sample() if hints and self.backend.avoid_list else None,
            feedback=chunk.feedback,
            schema_in_prompt=self.backend.schema_in_prompt,
        )
        response_schema = self._response_schemas.get(chunk.count)
        if response_schema is None:
            response_schema = self.schema.schema if chunk.count == 1 else batch_schema(self.schema.schema, chunk.count)
            self._response_schemas[chunk.count] = response_schema
        request = CompletionRequest(
            messages, self.schema.schema, chunk.count, response_schema, params, variation or None,
            max_response_bytes=self.config.max_response_bytes,
        )
        return request, targets

    async def _complete_with_retries(self, request: CompletionRequest):
        attempt = 0
        while True:
            self.counts["requests"] += 1
            started = time.monotonic()
            try:
                completion = await self.backend.complete(request)
            except Unreachable as exc:
                self._recent_outcomes.append(False)
                if self._successes == 0:
                    raise BackendError(
                        f"{exc}. Is the server running, and is the base URL right?"
                    ) from None
                delay = self._backoff(attempt, None)
                self._retry_or_fail(exc, attempt, delay)
            except RetryableError as exc:
                delay = self._backoff(attempt, exc.retry_after)
                if exc.rate_limited:  # slows the run down; only max_retries bounds it
                    self.limit.on_rate_limit()
                    self.counts["rate_limited"] += 1
                    self._emit(RateLimited, delay=delay, concurrency=self.limit.value)
                else:
                    self._recent_outcomes.append(False)
                self._retry_or_fail(exc, attempt, delay)
            else:
                self._successes += 1
                self.counts["answers"] += 1
                self.counts["latency_ms"] += round((time.monotonic() - started) * 1000)
                self._recent_outcomes.append(True)
                self.limit.on_success()
                self.counts["prompt_tokens"] += completion.prompt_tokens
                self.counts["completion_tokens"] += completion.completion_tokens
                if completion.notice:
                    self._emit(Notice, message=completion.notice)
                return completion
            attempt += 1
            self.counts["retries"] += 1
            await asyncio.sleep(delay)

    def _retry_or_fail(self, exc: Exception, attempt: int, delay: float) -> None:
        if attempt >= self.config.max_retries:
            raise BackendError(f"giving up after {attempt + 1} tries: {exc}")
        outcomes = self._recent_outcomes
        if len(outcomes) == outcomes.maxlen and outcomes.count(False) >= 0.8 * len(outcomes):
            raise BackendError(f"most requests are failing ({outcomes.count(False)} of the last {len(outcomes)}): {exc}")
        self._emit(RetryScheduled, reason=str(exc), attempt=attempt + 1, delay=delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        base = min(self.config.retry_cap, self.config.retry_base * 2**attempt)
        return base * random.uniform(0.75, 1.0)

    # -- records ---------------------------------------------------------------------
    async def _take(self, completion, chunk: _Chunk) -> int:
        """Validate and keep records from one answer; returns how many were accepted."""
        text = completion.text
        if completion.refusal:
            self._reject("refusal", f"the model refused: {completion.refusal}", text)
            return 0
        if len(text) > self.config.max_response_bytes:
            self._reject("too_large", f"the answer was longer than the cap of {self.config.max_response_bytes} "
                         "bytes (max_response_bytes)", text)
            return 0
        try:
            if len(text) > OFF_LOOP_CHARS:
                returned, examined = await asyncio.to_thread(self._examine, text, chunk.count)
            else:
                returned, examined = self._examine(text, chunk.count)
        except UnparseableOutput as exc:
            if completion.finish_reason == "length" and not isinstance(exc, TooDeep):
                self._reject("truncated", "the answer was cut off at max_tokens: raise --max-tokens", text)
            else:
                self._reject("unparseable", str(exc), text)
            return 0
        self._returned += returned
        fresh: list[dict[str, Any]] = []
        for candidate, key, errors in examined:
            if len(self.records) + len(fresh) >= self.config.count or len(fresh) >= chunk.count:
                break  # more than was asked for: the surplus is not needed
            if errors:
                self._reject("invalid", "; ".join(errors), key)
                continue
            if key in self._seen:
                self._reject("duplicate", "exact duplicate of an accepted record", key)
                continue
            self._seen.add(key)
            fresh.append(candidate)
        if fresh:
            self._accept(fresh)
        return len(fresh)

    def _examine(self, text: str, wanted: int) -> tuple[int, list[tuple[Any, str, list[str]]]]:
        """Parse and validate one answer: how many candidates it holds, and (record,
        canonical JSON, errors) for the first ones, up to ``wanted`` new valid ones (twice
        as many plus ten at most). Safe to run off the event loop: it only reads."""
        candidates = extract_records(text, self.fields)
        out = []
        valid = 0
        for candidate in candidates[: 2 * wanted + 10]:
            key = canonical_json(candidate)
            errors = self.schema.errors(candidate)
            out.append((candidate, key, errors))
            if not errors and key not in self._seen:
                valid += 1
                if valid >= wanted:
                    break
        return len(candidates), out

    def _accept(self, fresh: list[dict[str, Any]]) -> None:
        if self._journal is not None:
            self._journal.append(fresh)
        self.records.extend(fresh)
        self._recent.add(fresh, self._string_fields)
        if self._balancer is not None:
            self._balancer.observe(fresh)
        self._emit(RecordsAccepted, records=tuple(fresh))
        self._maybe_save_progress()

    def _reject(self, kind: str, reason: str, raw: str) -> None:
        if kind == "duplicate":
            self.counts["duplicates"] += 1
        else:
            self.counts["rejected"] += 1
            self._reasons[reason_key(reason)] += 1
        rejection = Rejection(reason=reason, raw=raw[:4000], kind=kind)
        if len(self.rejections) < MAX_KEPT_REJECTIONS:
            self.rejections.append(rejection)
            if self.store is not None:
                self.store.append_rejections(self.run_id, [asdict(rejection)])
        self._emit(RecordRejected, reason=reason, raw=rejection.raw, duplicate=kind == "duplicate")

    # -- events and history --------------------------------------------------------------
    def progress(self) -> Progress:
        c = self.counts
        return Progress(
            done=len(self.records),
            total=self.config.count,
            elapsed=time.monotonic() - self._start if self._start else 0.0,
            rejected=c["rejected"],
            duplicates=c["duplicates"],
            retries=c["retries"],
            requests=c["requests"],
            prompt_tokens=c["prompt_tokens"],
            completion_tokens=c["completion_tokens"],
            concurrency=self.limit.value,
            done_this_session=len(self.records) - self._done_before,
        )

    def _emit(self, kind: type[Event], **fields: Any) -> None:
        try:
            self.on_event(kind(run_id=self.run_id, progress=self.progress(), **fields))
        except Exception:  # a listener's bug must not stop generation
            pass

    def _counts_doc(self) -> dict[str, Any]:
        c = self.counts
        return {
            "requested": self.config.count,
            "accepted": len(self.records),
            **{k: c[k] for k in ("rejected", "duplicates", "retries", "requests", "rate_limited", "answers",
                                 "latency_ms")},
            "prompt_tokens": c["prompt_tokens"],
            "completion_tokens": c["completion_tokens"],
        }

    def _open_history(self) -> None:
        if self.store is None:
            return
        fields = {
            "schema": self.schema.schema,
            "config": self.config.to_doc(),
            "backend": self.backend.describe(),
            "counts": self._counts_doc(),
            "error": None,
        }
        if self._resumed:
            self.store.update_run(self.run_id, status="running", **fields)
        else:
            self.store.create_run({"id": self.run_id, **fields})
        self._in_history = True
        self._journal = self.store.open_journal(self.run_id)

    def _maybe_save_progress(self) -> None:
        now = time.monotonic()
        if self.store is not None and now - self._last_history_write >= 2.0:
            self._last_history_write = now
            self.store.update_run(self.run_id, counts=self._counts_doc())

    def _finish(self, status: str, error: str | None) -> RunResult:
        elapsed = time.monotonic() - self._start
        finished = now_iso()
        if self.store is not None:
            try:
                if self._journal is not None:
                    self._journal.close()
                if self._in_history:
                    self.store.update_run(
                        self.run_id, status=status, error=error, finished=finished,
                        counts=self._counts_doc(), elapsed=round(self._elapsed_before + elapsed, 3),
                    )
            except StoreError as exc:
                status, error = "failed", f"{error + '; ' if error else ''}{exc}"
        result = RunResult(
            run_id=self.run_id, status=status, records=self.records, requested=self.config.count,
            accepted=len(self.records), rejected=self.counts["rejected"], duplicates=self.counts["duplicates"],
            retries=self.counts["retries"], requests=self.counts["requests"],
            prompt_tokens=self.counts["prompt_tokens"], completion_tokens=self.counts["completion_tokens"],
            elapsed=elapsed, started=self._started_iso, finished=finished, error=error, rejections=self.rejections,
        )
        if status == "failed":
            self._emit(RunFailed, message=error or "")
        else:
            self._emit(RunFinished, status=status, message=error or "")
        return result


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
    """Run one generation to the end (convenience wrapper around :class:`Run`).

    The run is kept in the history of ``store``, or of ``data_dir`` (default: the user
    data dir or $SYNTH_TUI_DATA_DIR), opened for this call; ``save_to_db=False`` keeps
    nothing on disk."""
    if store is not None or not save_to_db:
        return await Run(schema, config, backend, store=store, on_event=on_event).execute()
    with Store(data_dir) as own:
        return await Run(schema, config, backend, store=own, on_event=on_event).execute()


async def probe_backend(backend: Backend) -> tuple[bool, str]:
    """Send one tiny request. Returns (usable, what happened), saying whether the backend
    answered and whether its answer followed the schema."""
    schema = check_schema({"ok": {"type": "boolean"}, "word": {"type": "string", "maxLength": 20}})
    request = CompletionRequest(
        prompts.build_messages(schema.schema, 1), schema.schema, 1, schema.schema, GenerationParams(max_tokens=64)
    )
    t0 = time.monotonic()
    try:
        completion = await backend.complete(request)
    except (BackendError, RetryableError) as exc:
        return False, f"no usable answer: {exc}"
    ms = (time.monotonic() - t0) * 1000
    where = f"{backend.kind} {backend.model} answered in {ms:.0f} ms"
    note = f" ({completion.notice})" if completion.notice else ""
    try:
        candidates = extract_records(completion.text, frozenset(schema.field_names()))
    except UnparseableOutput:
        return False, f"{where}, but not with JSON: {completion.text[:80]!r}{note}"
    errors = schema.errors(candidates[0]) if candidates else ["no record in the answer"]
    if errors:
        return False, f"{where}, but did not follow the schema: {errors[0]}{note}"
    return True, f"{where} and followed the schema{note}"
