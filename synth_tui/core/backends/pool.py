"""Several servers of one kind, serving the same model, as one backend: how a run
scales past one server (``--base-url`` given more than once, or a list in the settings).

Each endpoint keeps its own in-flight limit and health:

- Limit: none of its own until it answers 429 or 503; then the requests it had in flight,
  halved (at most once a second), raised by one after as many answers as the limit
  (AIMD, as the run's own limit).
- Health: a refused connection, a timeout, a fatal answer there (a wrong key or model on
  that server) or SET_ASIDE_AFTER failures in a row (5xx, a dropped connection) set it
  aside. After a backoff, doubled each time its probe fails (up to a cap), the next
  request is its probe; an answer brings it back.

A request goes to the endpoint with the most free capacity: of those up and under their
limit, the one with the fewest requests in flight (the least recently chosen on a tie),
so a slow server holds a few while a fast one takes the rest. A failure on one endpoint
is tried again at once on another that is up and has not had this request. The pool
raises only when no endpoint could answer the request: Unreachable or BackendError when
every endpoint is set aside with nothing listening or for good (as one server would),
else a RetryableError. So the run's scheduler retries with its backoff, and its breaker
stops the run, only when all are down. When all are set aside, a request is the probe of
the one due soonest: the scheduler's backoff paces those probes.

The run's concurrency stays the total in flight, spread over the endpoints: two servers
that each take 8 at once want ``--concurrency 16``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import BackendError, RetryableError, TimedOut, TooManyOpenFiles, Unreachable
from .base import Backend, Completion, CompletionRequest

SET_ASIDE_AFTER = 3  # failures in a row that set an endpoint aside
FIRST_BACKOFF = 2.0  # seconds before a set-aside endpoint's first probe
MAX_BACKOFF = 60.0  # the longest wait between probes
MAX_WAIT = 1.0  # seconds a request waits for capacity before it looks again
REASON_CHARS = 200  # of an endpoint's last error, quoted when all are down


@dataclass
class EndpointCounts:
    """What one endpoint did in this session, for progress and the run's history."""

    requests: int = 0  # sent to it, probes and reroutes included
    answers: int = 0
    failures: int = 0  # failed requests, rate limits aside
    rate_limited: int = 0  # 429 or 503 answers
    set_aside: int = 0  # times it was set aside
    rerouted: int = 0  # requests it failed that went on to another endpoint


class Endpoint:
    """One server of a pool: its backend, its in-flight limit, its health, its counts."""

    def __init__(self, backend: Backend, *, first_backoff: float, max_backoff: float,
                 clock: Callable[[], float]) -> None:
        self.backend = backend
        self.counts = EndpointCounts()
        self.in_flight = 0
        self.limit: int | None = backend.max_concurrency  # None: no limit of its own yet
        self.aside_until: float | None = None  # None: up
        self.probing = False  # its probe is in flight
        self.last_error = ""
        self.last_failure: Exception | None = None
        self.last_chosen = 0  # when it was last chosen, in the pool's count of choices
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._backoff = first_backoff
        self._clock = clock
        self._in_a_row = 0
        self._streak = 0  # answers since the limit last rose
        self._last_cut = -math.inf

    @property
    def up(self) -> bool:
        return self.aside_until is None

    @property
    def has_room(self) -> bool:
        return self.limit is None or self.in_flight < self.limit

    def due(self, now: float) -> bool:
        """Set aside, its backoff over, no probe in flight: the next request probes it."""
        return self.aside_until is not None and not self.probing and now >= self.aside_until

    @property
    def state(self) -> str:
        return "up" if self.up else "probing" if self.probing else "set aside"

    def answered(self) -> None:
        self.counts.answers += 1
        self._in_a_row = 0
        self._back_up()
        if self.limit is not None:
            self._streak += 1
            if self._streak >= self.limit:
                self.limit += 1
                self._streak = 0

    def failed(self, exc: Exception, probe: bool) -> None:
        """Account for a failed request; set the endpoint aside when the failure says so.
        While it is aside, only its probe's failure counts against it again."""
        self.last_failure = exc
        self.last_error = " ".join(str(exc).split())
        rate_limited = isinstance(exc, RetryableError) and exc.rate_limited
        if rate_limited:
            self.counts.rate_limited += 1
            self._cut_limit()
            if isinstance(exc, RetryableError) and exc.status == 429:  # busy, not broken: it answers
                self._back_up()
                return
        else:
            self.counts.failures += 1
        if self.aside_until is not None:
            if probe:
                self._set_aside()
            return
        self._in_a_row += 1
        if isinstance(exc, (Unreachable, TimedOut, BackendError)) or self._in_a_row >= SET_ASIDE_AFTER:
            self._set_aside()

    def _back_up(self) -> None:
        """It answered: up again, if it was set aside."""
        if self.aside_until is not None:
            self.aside_until = None
            self._backoff = self._first_backoff

    def _cut_limit(self) -> None:
        now = self._clock()
        if now - self._last_cut >= 1.0:
            self.limit = max(1, self.in_flight // 2)
            self._last_cut = now
        self._streak = 0

    def _set_aside(self) -> None:
        self.aside_until = self._clock() + self._backoff
        self._backoff = min(self._max_backoff, self._backoff * 2)
        self._in_a_row = 0
        self.counts.set_aside += 1

    def describe(self) -> dict[str, Any]:
        return {"base_url": self.backend.base_url, "state": self.state, "in_flight": self.in_flight,
                "limit": self.limit, **asdict(self.counts)}


class EndpointPool(Backend):
    """Spreads one run's requests over several backends of one kind and model (several
    base URLs); see the module's docstring for how."""

    def __init__(self, backends: Sequence[Backend], *, first_backoff: float = FIRST_BACKOFF,
                 max_backoff: float = MAX_BACKOFF, clock: Callable[[], float] = time.monotonic) -> None:
        if len(backends) < 2:
            raise ValueError("a pool needs at least two endpoints")
        first = backends[0]
        super().__init__(first.model, first.base_url)
        self.kind = first.kind
        # how requests are asked for is the kind's: the same for every endpoint
        self.preferred_batch_size = first.preferred_batch_size
        self.schema_in_prompt = first.schema_in_prompt
        self.avoid_list = first.avoid_list
        self.hint_text = first.hint_text
        limits = [b.max_concurrency for b in backends]
        self.max_concurrency = None if any(n is None for n in limits) else sum(n or 0 for n in limits)
        self.endpoints = [Endpoint(b, first_backoff=first_backoff, max_backoff=max_backoff, clock=clock)
                          for b in backends]
        self._clock = clock
        self._choices = 0
        self._freed = asyncio.Event()  # a request ended: room, or a probe's outcome

    async def complete(self, request: CompletionRequest) -> Completion:
        tried: list[Endpoint] = []
        while True:
            chosen = await self._choose(tried)
            if chosen is None:
                raise self._exhausted(tried)
            endpoint, probe = chosen
            if tried:
                tried[-1].counts.rerouted += 1
            try:
                return await self._send(endpoint, request, probe)
            except TooManyOpenFiles:
                raise  # this process's limit, not the endpoint's fault
            except (RetryableError, BackendError):
                tried.append(endpoint)

    async def _send(self, endpoint: Endpoint, request: CompletionRequest, probe: bool) -> Completion:
        endpoint.in_flight += 1
        endpoint.counts.requests += 1
        try:
            completion = await endpoint.backend.complete(request)
        except TooManyOpenFiles:
            raise
        except (RetryableError, BackendError) as exc:
            endpoint.failed(exc, probe)
            raise
        else:
            endpoint.answered()
            return completion
        finally:
            endpoint.in_flight -= 1
            if probe:
                endpoint.probing = False
            self._freed.set()

    async def _choose(self, tried: list[Endpoint]) -> tuple[Endpoint, bool] | None:
        """The endpoint for the next try of a request and whether it is a probe, waiting
        while every candidate is at its limit; None when no endpoint is left to try."""
        while True:
            now = self._clock()
            untried = [e for e in self.endpoints if e not in tried]
            due = [e for e in untried if e.due(now)]
            if due:
                return self._chosen(min(due, key=lambda e: e.aside_until or 0.0), probe=True)
            up = [e for e in untried if e.up]
            if not up:
                return self._last_resort(untried, tried)
            room = [e for e in up if e.has_room]
            if room:
                return self._chosen(min(room, key=lambda e: (e.in_flight, e.last_chosen)), probe=False)
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), timeout=self._wait_time(now))
            except TimeoutError:
                pass

    def _last_resort(self, untried: list[Endpoint], tried: list[Endpoint]) -> tuple[Endpoint, bool] | None:
        """No untried endpoint is up. When none at all is and this request has tried none,
        it probes the set-aside endpoint due soonest; else the request has run out."""
        if tried or any(e.up for e in self.endpoints):
            return None
        waiting = [e for e in untried if not e.probing]
        if not waiting:
            return None
        return self._chosen(min(waiting, key=lambda e: e.aside_until or 0.0), probe=True)

    def _chosen(self, endpoint: Endpoint, probe: bool) -> tuple[Endpoint, bool]:
        self._choices += 1
        endpoint.last_chosen = self._choices
        if probe:
            endpoint.probing = True
        return endpoint, probe

    def _wait_time(self, now: float) -> float:
        """How long to wait for room: until the next probe is due, at most MAX_WAIT."""
        pending = [e.aside_until - now for e in self.endpoints if e.aside_until is not None and not e.probing]
        return max(0.0, min([MAX_WAIT, *pending]))

    def _exhausted(self, tried: list[Endpoint]) -> Exception:
        """The error for a request no endpoint could answer. Some endpoint still up: a
        transient failure, retried later. All set aside: as one server would fail, with
        every endpoint's last error; Unreachable and BackendError only when every one
        failed so (nothing listens, or refused for good)."""
        last = tried[-1].last_failure if tried else None
        status = last.status if isinstance(last, RetryableError) else None
        retry_after = last.retry_after if isinstance(last, RetryableError) else None
        if any(e.up for e in self.endpoints):
            said = "; ".join(self._reason(e) for e in tried) or "no endpoint had room"
            return RetryableError(f"every endpoint up failed this request: {said}", status=status,
                                  retry_after=retry_after)
        message = f"all {len(self.endpoints)} endpoints are down: " + "; ".join(self._reason(e) for e in self.endpoints)
        failures = [e.last_failure for e in self.endpoints]
        if all(isinstance(f, (Unreachable, BackendError)) for f in failures):
            if any(isinstance(f, Unreachable) for f in failures):
                return Unreachable(message)
            return BackendError(message)
        return RetryableError(message, status=status, retry_after=retry_after)

    @staticmethod
    def _reason(endpoint: Endpoint) -> str:
        url = endpoint.backend.base_url
        error = endpoint.last_error or "no answer yet"
        if len(error) > REASON_CHARS:
            error = error[: REASON_CHARS - 3] + "..."
        return error if url and url in error else f"{url}: {error}"

    async def aclose(self) -> None:
        results = await asyncio.gather(*(e.backend.aclose() for e in self.endpoints), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def describe(self) -> dict[str, Any]:
        # the first endpoint's description (its key variable, never a key), every URL beside it
        return {**self.endpoints[0].backend.describe(), "base_urls": [e.backend.base_url for e in self.endpoints]}

    def endpoint_counts(self) -> list[dict[str, Any]]:
        return [e.describe() for e in self.endpoints]
