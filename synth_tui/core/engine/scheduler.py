"""Requests to one backend: how many at once, which failures are retried and after how
long, and which stop the run.

- AdaptiveLimit: the requests in flight, halved on a rate limit (429, or a 503 from a
  full queue), raised by one after as many successes as the limit (AIMD).
- RetryPolicy: a transient failure waits ``base * 2**attempt`` capped at ``cap``, with
  jitter, or what the server's Retry-After said; ``max_retries`` per request.
- Breaker: no connection before the first answer, a request past its retries, or most
  of the last requests failing stops sending at once (BackendDown).
- Scheduler: sends one request under those rules, and keeps the run's work in flight.

Clocks, sleeps and randomness are parameters, so the arithmetic is testable alone.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..backends.base import Backend, Completion, CompletionRequest
from ..errors import BackendDown, RetryableError, Unreachable
from ..events import Notice, RateLimited, RetryScheduled
from .config import Counts

Emit = Callable[..., None]  # emit(EventClass, **fields): the run adds its id and progress


class AdaptiveLimit:
    """How many requests may be in flight: halved on a rate limit (at most once a second),
    raised by one after as many successes as the current limit (AIMD)."""

    def __init__(self, maximum: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = maximum
        self.value = maximum
        self._clock = clock
        self._streak = 0
        self._last_cut = -math.inf

    def on_rate_limit(self) -> None:
        now = self._clock()
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


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5  # retries per request after its first try
    base: float = 0.5  # seconds before the first retry, doubled each time
    cap: float = 8.0  # the longest wait between tries, Retry-After aside

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | Any = random) -> float:
        """Seconds to wait before try ``attempt + 2``: the server's word, else exponential
        backoff with jitter (75-100 %, so that requests failed together spread out)."""
        if retry_after is not None:
            return retry_after
        jitter: float = rng.uniform(0.75, 1.0)
        return min(self.cap, self.base * 2.0**attempt) * jitter

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_retries


class Breaker:
    """Which failures stop sending at once, rather than after retries."""

    WINDOW = 20  # the last requests watched
    FAILING_SHARE = 0.8  # of the window failed: the backend is sick

    def __init__(self) -> None:
        self.successes = 0
        self._recent: deque[bool] = deque(maxlen=self.WINDOW)

    def success(self) -> None:
        self.successes += 1
        self._recent.append(True)

    def failure(self) -> None:
        self._recent.append(False)

    def check_unreachable(self, exc: Unreachable) -> None:
        """Nothing listens there: fatal until the backend has answered once."""
        if self.successes == 0:
            raise BackendDown(f"{exc}. Is the server running, and is the base URL right?") from None

    def check(self, exc: Exception, attempt: int, policy: RetryPolicy) -> None:
        """Raise BackendDown when the failed ``attempt`` may not be retried."""
        if policy.exhausted(attempt):
            raise BackendDown(f"giving up after {attempt + 1} tries: {exc}")
        failed = self._recent.count(False)
        if len(self._recent) == self.WINDOW and failed >= self.FAILING_SHARE * self.WINDOW:
            raise BackendDown(f"most requests are failing ({failed} of the last {self.WINDOW}): {exc}")


class Scheduler:
    """Sends requests to one backend under its limit, policy and breaker, counting each
    request, retry, answer and token in ``counts``."""

    def __init__(
        self,
        backend: Backend,
        counts: Counts,
        *,
        limit: AdaptiveLimit,
        policy: RetryPolicy = RetryPolicy(),
        emit: Emit = lambda kind, **fields: None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | Any = random,
    ) -> None:
        self.backend = backend
        self.counts = counts
        self.limit = limit
        self.policy = policy
        self.breaker = Breaker()
        self._emit = emit
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._finished: asyncio.Queue[asyncio.Task[None] | None] = asyncio.Queue()
        self._stopped = False

    async def send(self, request: CompletionRequest) -> Completion:
        """The backend's answer to ``request``, transient failures retried. Raises
        BackendDown (or the backend's own BackendError) when it cannot be had."""
        attempt = 0
        while True:
            self.counts.requests += 1
            started = self._clock()
            try:
                completion = await self.backend.complete(request)
            except RetryableError as exc:
                delay = self._failed(exc, attempt)
            else:
                self._answered(completion, started)
                return completion
            attempt += 1
            self.counts.retries += 1
            await self._sleep(delay)

    def _failed(self, exc: RetryableError, attempt: int) -> float:
        """Account for a failed try; the delay before the next, or BackendDown."""
        if isinstance(exc, Unreachable):
            self.breaker.failure()
            self.breaker.check_unreachable(exc)
            delay = self.policy.delay(attempt, None, self._rng)
        else:
            delay = self.policy.delay(attempt, exc.retry_after, self._rng)
            if exc.rate_limited:  # slows the run down; only max_retries bounds it
                self.limit.on_rate_limit()
                self.counts.rate_limited += 1
                self._emit(RateLimited, delay=delay, concurrency=self.limit.value)
            else:
                self.breaker.failure()
        self.breaker.check(exc, attempt, self.policy)
        self._emit(RetryScheduled, reason=str(exc), attempt=attempt + 1, delay=delay)
        return delay

    def _answered(self, completion: Completion, started: float) -> None:
        self.breaker.success()
        self.limit.on_success()
        c = self.counts
        c.answers += 1
        c.latency_ms += round((self._clock() - started) * 1000)
        c.prompt_tokens += completion.prompt_tokens
        c.completion_tokens += completion.completion_tokens
        if completion.notice:
            self._emit(Notice, message=completion.notice)

    # -- the work in flight ----------------------------------------------------------------
    async def run(self, next_work: Callable[[], Coroutine[Any, Any, None] | None]) -> None:
        """Keep up to ``limit.value`` pieces of work from ``next_work()`` running until it
        has none left and all have ended, or stop() is called. The first that raises
        cancels the others and its error propagates. Finished tasks report through a
        queue: O(1) per completion, unlike asyncio.wait over every task in flight."""
        running: set[asyncio.Task[None]] = set()
        try:
            while not self._stopped:
                while len(running) < self.limit.value:
                    work = next_work()
                    if work is None:
                        break
                    task = asyncio.create_task(work)
                    task.add_done_callback(self._finished.put_nowait)
                    running.add(task)
                if not running:
                    break
                done = await self._finished.get()
                if done is None:  # stop() woke us
                    break
                running.discard(done)
                done.result()
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def stop(self) -> None:
        """Start nothing more and let run() return, cancelling what is in flight. Call on
        the event loop (or before run())."""
        self._stopped = True
        self._finished.put_nowait(None)

    @property
    def stopped(self) -> bool:
        return self._stopped
