"""Estimate before running: a pilot run measures, a projection says what N records take.

The pilot is a real run of a few records (5 by default) with the full run's settings,
kept in the history: ``resume PILOT -n N`` continues it, its records the start of the
run. Each of its answers (a RequestAnswered event) gives per-request figures, and the
projection of the records still to make after the pilot is

    records asked  = records left x (records asked / records accepted in the pilot)
    requests       = records asked / the full run's records per request, rounded up
    prompt tokens  = requests x prompt tokens per request
    completion     = records asked x completion tokens per record asked
    seconds        = requests / requests at once, rounded up, x seconds per request

at the pilot's mean figures (the estimate) and at its lowest and highest per-request ones
(the range). Rejected records cost tokens too: the share of asks that were turned away
is in "records asked". Prompt tokens are counted per request, not per record, so a pilot
asked in fewer records per request than the full run does not overstate them. With fewer
than MIN_SPREAD answers the spread says little, so the range is widened to at least
-20 % / +25 % of the estimate (prompts also grow a little as a run's list of values to
avoid fills). Tokens and cost are the whole run's, the pilot's own included; time is what
is left to run. Without a price the cost is None (unknown).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .events import Event, EventSink, RequestAnswered
from .pricing import Price

PILOT_RECORDS = 5
MIN_SPREAD = 3  # answers from which the pilot's own spread gives the range
LOW, HIGH = 0.8, 1.25  # the narrowest range around the estimate, as factors


@dataclass(frozen=True)
class Span:
    """An estimate and its range."""

    low: float
    mid: float
    high: float

    def plus(self, amount: float) -> Span:
        return Span(self.low + amount, self.mid + amount, self.high + amount)

    def times(self, factor: float) -> Span:
        return Span(self.low * factor, self.mid * factor, self.high * factor)

    def widened(self) -> Span:
        return Span(min(self.low, self.mid * LOW), self.mid, max(self.high, self.mid * HIGH))

    def rounded(self, digits: int) -> dict[str, float]:
        return {k: round(v, digits) if digits else round(v) for k, v in asdict(self).items()}

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Answer:
    records: int  # asked for
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class AnswerLog:
    """An event sink that keeps the pilot's answers and passes every event on."""

    def __init__(self, then: EventSink | None = None) -> None:
        self.answers: list[Answer] = []
        self.then = then

    def __call__(self, event: Event) -> None:
        if isinstance(event, RequestAnswered) and event.records > 0:
            self.answers.append(Answer(event.records, event.prompt_tokens, event.completion_tokens, event.seconds))
        if self.then is not None:
            self.then(event)


@dataclass(frozen=True)
class Pilot:
    """What the pilot run did, from its result."""

    run_id: str
    accepted: int
    prompt_tokens: int
    completion_tokens: int
    elapsed: float


@dataclass(frozen=True)
class Projection:
    count: int
    pilot: Pilot
    answers: int
    batch_size: int  # records per request in the full run
    concurrency: int  # requests at once in the full run
    requests: Span  # still to send
    prompt_tokens: Span  # the whole run's
    completion_tokens: Span
    seconds: Span  # to finish
    cost: Span | None  # USD, the whole run's; None: no price
    price: Price | None

    @property
    def tokens(self) -> Span:
        p, c = self.prompt_tokens, self.completion_tokens
        return Span(p.low + c.low, p.mid + c.mid, p.high + c.high)

    @property
    def tokens_per_record(self) -> float:
        """The pilot's tokens per accepted record, rejections and retries included."""
        return (self.pilot.prompt_tokens + self.pilot.completion_tokens) / max(1, self.pilot.accepted)

    @property
    def records_per_s(self) -> float:
        """The pilot's rate (its requests ran at most ``concurrency`` at once)."""
        return self.pilot.accepted / self.pilot.elapsed if self.pilot.elapsed > 0 else 0.0

    def to_doc(self) -> dict[str, Any]:
        """For --json: token counts whole, seconds to 0.1, USD to 9 places."""
        doc = asdict(self)
        for name, digits in (("requests", 0), ("prompt_tokens", 0), ("completion_tokens", 0), ("seconds", 1),
                             ("cost", 9)):
            span = getattr(self, name)
            doc[name] = None if span is None else span.rounded(digits)
        doc.update(tokens=self.tokens.rounded(0), tokens_per_record=round(self.tokens_per_record, 1),
                   records_per_s=round(self.records_per_s, 3), price=self.price.as_list() if self.price else None)
        return doc


def project(answers: Sequence[Answer], pilot: Pilot, *, count: int, batch_size: int, concurrency: int,
            price: Price | None) -> Projection:
    """What ``count`` records take, from the pilot's ``answers`` (see the module's
    docstring). ``pilot.accepted`` must be at least 1."""
    left = max(0, count - pilot.accepted)
    asked = sum(a.records for a in answers)
    requests = prompt = completion = seconds = Span(0.0, 0.0, 0.0)
    if left and answers:
        to_ask = left * asked / max(1, pilot.accepted)
        n = math.ceil(to_ask / batch_size)
        requests = Span(n, n, n)
        per_request = _span([a.prompt_tokens for a in answers], sum(a.prompt_tokens for a in answers) / len(answers))
        per_record = _span([a.completion_tokens / a.records for a in answers],
                           sum(a.completion_tokens for a in answers) / asked)
        per_answer = _span([a.seconds for a in answers], sum(a.seconds for a in answers) / len(answers))
        waves = math.ceil(n / max(1, min(concurrency, n)))
        prompt, completion, seconds = per_request.times(n), per_record.times(to_ask), per_answer.times(waves)
        if len(answers) < MIN_SPREAD:
            prompt, completion, seconds = prompt.widened(), completion.widened(), seconds.widened()
    elif left and pilot.elapsed > 0:  # no model asked (every field drawn here): time from the pilot's rate
        seconds = Span(1, 1, 1).times(left * pilot.elapsed / pilot.accepted).widened()
    prompt, completion = prompt.plus(pilot.prompt_tokens), completion.plus(pilot.completion_tokens)
    cost = None
    if price is not None:
        cost = Span(price.cost(prompt.low, completion.low), price.cost(prompt.mid, completion.mid),
                    price.cost(prompt.high, completion.high))
    return Projection(count=count, pilot=pilot, answers=len(answers), batch_size=batch_size,
                      concurrency=concurrency, requests=requests, prompt_tokens=prompt, completion_tokens=completion,
                      seconds=seconds, cost=cost, price=price)


def _span(values: Sequence[float], mean: float) -> Span:
    return Span(min(values), mean, max(values))
