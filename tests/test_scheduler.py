"""The request scheduler alone: its arithmetic with a fake clock, sleep and dice; its
retries and breaker against the real test server; its pool of work in flight."""

from __future__ import annotations

import asyncio

import pytest

from synth_tui.core.backends.base import CompletionRequest
from synth_tui.core.engine.config import Counts
from synth_tui.core.engine.scheduler import AdaptiveLimit, Breaker, RetryPolicy, Scheduler
from synth_tui.core.errors import BackendDown, RetryableError, Unreachable
from synth_tui.core.events import Notice, RateLimited, RetryScheduled

from . import fake_llm
from .conftest import free_port, openai_backend
from .fake_llm import Fault


class Dice:
    """A random source that always rolls the same end of the range."""

    def __init__(self, end: str) -> None:
        self.end = end

    def uniform(self, lo: float, hi: float) -> float:
        return lo if self.end == "low" else hi


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- the arithmetic ------------------------------------------------------------------------------
def test_backoff_doubles_from_base_to_cap_with_jitter_below():
    policy = RetryPolicy(max_retries=5, base=0.5, cap=8.0)
    high = [policy.delay(a, None, Dice("high")) for a in range(7)]
    low = [policy.delay(a, None, Dice("low")) for a in range(7)]
    assert high == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert low == [0.375, 0.75, 1.5, 3.0, 6.0, 6.0, 6.0]  # 75 % of the step: retries spread out


def test_retry_after_from_the_server_wins_over_backoff():
    policy = RetryPolicy(base=0.5, cap=8.0)
    assert policy.delay(0, 30.0, Dice("high")) == 30.0
    assert policy.delay(6, 0.1, Dice("low")) == 0.1


def test_retries_are_exhausted_after_max_retries():
    policy = RetryPolicy(max_retries=2)
    assert [policy.exhausted(a) for a in range(4)] == [False, False, True, True]


def test_limit_halves_on_rate_limits_at_most_once_a_second_and_climbs_back():
    clock = Clock()
    limit = AdaptiveLimit(8, clock=clock)
    limit.on_rate_limit()
    assert limit.value == 4
    clock.now += 0.5
    limit.on_rate_limit()  # the same burst of 429s: one cut
    assert limit.value == 4
    clock.now += 0.6
    limit.on_rate_limit()
    assert limit.value == 2
    for _ in range(3):
        clock.now += 1.0
        limit.on_rate_limit()
    assert limit.value == 1  # never below one
    steps = []
    for _ in range(1 + 2 + 3 + 4 + 5 + 6 + 7 + 20):  # as many successes as the limit, one more
        limit.on_success()
        steps.append(limit.value)
    assert steps[0] == 2 and steps[2] == 3 and steps[5] == 4
    assert limit.value == 8 and max(steps) == 8  # never above the maximum


def test_breaker_opens_when_most_of_the_last_requests_fail():
    breaker, policy = Breaker(), RetryPolicy(max_retries=100)
    for _ in range(5):
        breaker.success()
    for _ in range(Breaker.WINDOW - 5):
        breaker.failure()
    breaker.check(RetryableError("x"), 0, policy)  # 15 of 20 failed: still retried
    breaker.failure()  # pushes the oldest success out of the window
    with pytest.raises(BackendDown, match="most requests are failing \\(16 of the last 20\\): boom"):
        breaker.check(RetryableError("boom"), 0, policy)


def test_breaker_treats_no_connection_as_fatal_until_the_first_answer():
    breaker = Breaker()
    with pytest.raises(BackendDown, match="Is the server running"):
        breaker.check_unreachable(Unreachable("cannot connect to x"))
    breaker.success()
    breaker.check_unreachable(Unreachable("cannot connect to x"))  # a blip: retried


# -- sending, against the real test server -----------------------------------------------------
def request() -> CompletionRequest:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    return CompletionRequest([{"role": "user", "content": "one record"}], schema, 1, schema)


class Recorder:
    """Stands in for the run: the events it would emit and the sleeps it would take."""

    def __init__(self) -> None:
        self.events: list[tuple[type, dict]] = []
        self.sleeps: list[float] = []

    def emit(self, kind: type, **fields) -> None:
        self.events.append((kind, fields))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def of(self, kind: type) -> list[dict]:
        return [fields for k, fields in self.events if k is kind]


def scheduler_for(backend, *, limit: int = 4, rec: Recorder, **policy) -> Scheduler:
    """A scheduler on a clock that stands still: one cut of the limit per burst."""
    return Scheduler(backend, Counts(), limit=AdaptiveLimit(limit, clock=Clock()), policy=RetryPolicy(**policy),
                     emit=rec.emit, sleep=rec.sleep, clock=Clock(), rng=Dice("high"))


async def test_rate_limits_wait_what_the_server_says_and_lower_the_limit(llm):
    llm.faults.extend([Fault(status=429, headers={"Retry-After": "7"}), Fault(status=503),
                       Fault(status=429, headers={"retry-after-ms": "250"})])
    rec = Recorder()
    async with openai_backend(llm) as backend:
        scheduler = scheduler_for(backend, limit=8, rec=rec, base=0.5)
        completion = await scheduler.send(request())
    assert completion.text and rec.sleeps == [7.0, 1.0, 0.25]  # Retry-After, backoff, retry-after-ms
    assert [e["concurrency"] for e in rec.of(RateLimited)] == [4, 4, 4]  # one cut a second
    c = scheduler.counts
    assert (c.requests, c.retries, c.rate_limited, c.answers) == (4, 3, 3, 1)
    assert [e["attempt"] for e in rec.of(RetryScheduled)] == [1, 2, 3]


async def test_server_errors_back_off_until_the_retries_run_out(llm):
    llm.always = Fault(status=500)
    rec = Recorder()
    async with openai_backend(llm) as backend:
        scheduler = scheduler_for(backend, rec=rec, max_retries=2, base=0.5)
        with pytest.raises(BackendDown, match="giving up after 3 tries: HTTP 500"):
            await scheduler.send(request())
    assert llm.count_requests == 3 and rec.sleeps == [0.5, 1.0]
    assert scheduler.counts.retries == 2 and scheduler.counts.answers == 0


async def test_no_server_there_stops_at_the_first_request():
    from synth_tui.core.backends.openai import OpenAIBackend

    rec = Recorder()
    async with OpenAIBackend(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m") as backend:
        scheduler = scheduler_for(backend, rec=rec)
        with pytest.raises(BackendDown, match="cannot connect.*Is the server running"):
            await scheduler.send(request())
    assert scheduler.counts.requests == 1 and rec.sleeps == []


async def test_a_hang_up_after_the_first_answer_is_retried(llm):
    llm.faults.extend([Fault(), Fault(raw=fake_llm.HANG_UP)])
    rec = Recorder()
    async with openai_backend(llm) as backend:
        scheduler = scheduler_for(backend, rec=rec)
        await scheduler.send(request())
        await scheduler.send(request())
    assert scheduler.counts.retries == 1 and scheduler.counts.answers == 2
    assert "closed the connection without answering" in rec.of(RetryScheduled)[0]["reason"]


async def test_answers_count_tokens_latency_and_pass_notices_on(llm):
    llm.reject_structured = True
    rec = Recorder()
    async with openai_backend(llm) as backend:
        scheduler = scheduler_for(backend, rec=rec)
        await scheduler.send(request())
    c = scheduler.counts
    assert c.answers == 1 and c.prompt_tokens > 0 and c.completion_tokens > 0 and c.latency_ms == 0  # clock stood still
    assert "does not accept response_format" in rec.of(Notice)[0]["message"]


# -- the work in flight ----------------------------------------------------------------------------
async def test_the_pool_keeps_the_limit_and_runs_every_piece_of_work():
    rec = Recorder()
    scheduler = scheduler_for(None, limit=3, rec=rec)
    active, peak, done = 0, 0, []
    todo = list(range(10))

    async def work(i: int) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        active -= 1
        done.append(i)

    await scheduler.run(lambda: work(todo.pop(0)) if todo else None)
    assert sorted(done) == list(range(10)) and peak == 3


async def test_stop_ends_the_pool_and_cancels_what_is_in_flight():
    rec = Recorder()
    scheduler = scheduler_for(None, limit=4, rec=rec)
    never = asyncio.Event()
    started, cancelled = [], []

    async def work(i: int) -> None:
        started.append(i)
        if i == 3:
            scheduler.stop()
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    counter = iter(range(100))
    await scheduler.run(lambda: work(next(counter)))
    assert started == [0, 1, 2, 3] and sorted(cancelled) == [0, 1, 2, 3] and scheduler.stopped


async def test_the_first_failure_stops_the_others_and_propagates():
    rec = Recorder()
    scheduler = scheduler_for(None, limit=3, rec=rec)
    never = asyncio.Event()
    cancelled = []

    async def work(i: int) -> None:
        if i == 1:
            raise BackendDown("the server refused the key")
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    counter = iter(range(3))
    with pytest.raises(BackendDown, match="refused the key"):
        await scheduler.run(lambda: next((work(i) for i in counter), None))
    assert sorted(cancelled) == [0, 2]
