"""Estimate before running: a pilot run measures, a projection says what N records take.

The pilot is a real run of a few records (5 by default) with the full run's settings,
kept in the history: ``resume PILOT -n N`` continues it, its records the start of the
run. Each of its answers (a RequestAnswered event) gives per-request figures. For the
records still to make after the pilot:

    turned away    = the share of records asked that were not accepted (invalid,
                     duplicate, missing): they are asked again, and cost tokens too
    records asked  = records left / (1 - turned away)
    requests       = first asks (records left / the full run's records per request) x
                     the requests each leads to: an ask that misses records asks for
                     them again in a request of its own, which may miss some too
    prompt tokens  = requests x prompt tokens per request
    completion     = records asked x completion tokens per record asked
    seconds        = requests / requests at once, rounded up, x seconds per request

at the pilot's mean figures (the estimate) and at its lowest and highest per-request ones
(the range); for the range the share turned away is the 90 % interval of the pilot's
(Wilson's), as a pilot of 5 that saw none turned away says little about the rest. Prompt tokens
are counted per request, not per record, so a pilot asked in fewer records per request
than the full run does not overstate them. With fewer than MIN_SPREAD answers their
spread says little, so per-request figures get a range of at least -20 % / +25 % (prompts
also grow a little as a run's list of values to avoid fills). Tokens and cost are the
whole run's, the pilot's own included; time is what is left to run. Without a price the
cost is None (unknown).
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
MAX_TURNED_AWAY = 0.9  # past this share of records turned away a run gives up anyway
Z_90 = 1.645  # the normal quantile of a two-sided 90 % interval


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
    requests = prompt = completion = seconds = Span(0.0, 0.0, 0.0)
    if left and answers:
        asked = sum(a.records for a in answers)
        share = turned_away(asked, pilot.accepted)
        per_request = _span([a.prompt_tokens for a in answers], sum(a.prompt_tokens for a in answers) / len(answers))
        per_record = _span([a.completion_tokens / a.records for a in answers],
                           sum(a.completion_tokens for a in answers) / asked)
        per_answer = _span([a.seconds for a in answers], sum(a.seconds for a in answers) / len(answers))
        if len(answers) < MIN_SPREAD:
            per_request, per_record, per_answer = per_request.widened(), per_record.widened(), per_answer.widened()
        figures = [_rest(left, batch_size, concurrency, getattr(share, end), getattr(per_request, end),
                         getattr(per_record, end), getattr(per_answer, end)) for end in ("low", "mid", "high")]
        requests, prompt, completion, seconds = (Span(*values) for values in zip(*figures))
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


def turned_away(asked: int, accepted: int) -> Span:
    """The share of records asked that are not accepted (invalid, duplicate, missing):
    the pilot's, and for the range its Wilson score interval at 90 %, since a pilot of a
    few records that saw none turned away says little about the rest."""
    away = min(asked, max(0, asked - accepted))
    share, z2 = away / asked, Z_90 * Z_90
    centre = (share + z2 / (2 * asked)) / (1 + z2 / asked)
    half = Z_90 / (1 + z2 / asked) * math.sqrt(share * (1 - share) / asked + z2 / (4 * asked * asked))
    share = min(share, MAX_TURNED_AWAY)
    return Span(min(share, max(0.0, centre - half)), share, max(share, min(MAX_TURNED_AWAY, centre + half)))


def _rest(left: int, batch: int, at_once: int, away: float, per_request: float, per_record: float,
          per_answer: float) -> tuple[float, float, float, float]:
    """Requests, prompt tokens, completion tokens and seconds for ``left`` records."""
    away = min(away, MAX_TURNED_AWAY)
    first = math.ceil(left / batch)
    requests = math.ceil(first * asks_per_first_ask(min(batch, left), away))
    waves = math.ceil(requests / max(1, min(at_once, requests)))
    return requests, requests * per_request, left / (1 - away) * per_record, waves * per_answer


def asks_per_first_ask(size: int, away: float) -> float:
    """Requests that one ask of ``size`` records leads to, itself included: while an ask
    misses records (each with chance ``away``), they are asked for again on their own."""
    total, chance, asked = 1.0, 1.0, float(size)
    for _ in range(50):
        misses = 1 - (1 - away) ** asked  # the chance that this ask misses any record
        chance *= misses
        if chance < 1e-6:
            break
        total += chance
        asked = max(1.0, asked * away / misses)  # the records it missed, given that it missed some
    return total


def _span(values: Sequence[float], mean: float) -> Span:
    return Span(min(values), mean, max(values))
