"""A run's spending cap: it never spends more than its budget.

Before a request is sent, its worst case is reserved: its prompt tokens, estimated from
the text sent (the messages and the response schema, one token per 4 characters rounded
up, more once answers show the model's tokenizer needs more), plus its ``max_tokens`` of
completion, at the run's price. A request whose worst case does not fit in what is left
(the budget less what was spent and what requests in flight hold) is not started; when
its answer comes, the reservation is released and the tokens the answer reports are what
was spent. A request with no ``max_tokens`` gets one (:func:`completion_cap`), so that its
worst case is one the server enforces: 1024 tokens a record at first, then three times the
longest answer per record seen so far (at least 128), so that the run's last requests
still fit in what is left.

Spending is the run's counts (every session's tokens, retries and rejected answers
included) at its price, so a resumed run's earlier spending counts against its budget.
"""

from __future__ import annotations

import json
import math

from ..backends.base import Completion, CompletionRequest
from ..pricing import Price
from .config import Counts

CHARS_PER_TOKEN = 4  # the prompt estimate before answers say better
TOKENS_PER_MESSAGE = 8  # each message's role and separators
COMPLETION_TOKENS_PER_RECORD = 1024  # max_tokens per record asked when the run sets none, before answers
COMPLETION_TOKENS_BASE = 256
SEEN_MARGIN = 3  # once answers came: this many times the most tokens a record took
MIN_TOKENS_PER_RECORD = 128


def completion_cap(records: int, seen_per_record: float = 0.0) -> int:
    """The ``max_tokens`` a budgeted request gets when the run sets none: room for long
    records; an answer cut off at it is asked again in halves, as any truncated answer."""
    per_record = COMPLETION_TOKENS_PER_RECORD
    if seen_per_record:
        per_record = min(per_record, max(MIN_TOKENS_PER_RECORD, math.ceil(SEEN_MARGIN * seen_per_record)))
    return COMPLETION_TOKENS_BASE + per_record * records


def prompt_chars(request: CompletionRequest) -> int:
    """The characters of a request the model reads: its messages and response schema."""
    chars = sum(len(str(m.get("content") or "")) for m in request.messages)
    if request.response_schema is not None:
        chars += len(json.dumps(request.response_schema, ensure_ascii=False))
    return chars


class Budget:
    """Reservations against ``limit`` USD at ``price``; ``counts`` say what was spent."""

    def __init__(self, limit: float, price: Price, counts: Counts) -> None:
        self.limit = limit
        self.price = price
        self.counts = counts
        self.reserved = 0.0
        self._held: dict[int, float] = {}  # id(request) -> its worst case, while in flight
        self._tokens_per_char = 1 / CHARS_PER_TOKEN
        self._overrun = 1.0  # how far past max_tokens answers have gone (a server that ignores it)
        self._seen_per_record = 0.0  # the most completion tokens per record asked an answer took
        self.refused: float | None = None  # the worst case of the last request that did not fit

    @property
    def spent(self) -> float:
        return self.price.cost(self.counts.prompt_tokens, self.counts.completion_tokens)

    @property
    def left(self) -> float:
        """What requests not yet started may spend."""
        return self.limit - self.spent - self.reserved

    @property
    def in_flight(self) -> int:
        return len(self._held)

    def prompt_tokens(self, request: CompletionRequest) -> int:
        return math.ceil(prompt_chars(request) * self._tokens_per_char) + TOKENS_PER_MESSAGE * len(request.messages)

    def worst_case(self, request: CompletionRequest) -> float:
        """USD the answer to ``request`` may cost at most (its max_tokens set)."""
        cap = request.params.max_tokens or completion_cap(request.count, self._seen_per_record)
        completion = math.ceil(cap * self._overrun)
        return self.price.cost(self.prompt_tokens(request), completion)

    def reserve(self, request: CompletionRequest) -> bool:
        """Hold the worst case of ``request`` if it fits in what is left (setting its
        max_tokens when it has none); False, holding nothing, if it does not."""
        if request.params.max_tokens is None:
            request.params.max_tokens = completion_cap(request.count, self._seen_per_record)
        worst = self.worst_case(request)
        if self.spent + self.reserved + worst > self.limit:
            self.refused = worst
            return False
        self.refused = None
        self._held[id(request)] = worst
        self.reserved += worst
        return True

    def release(self, request: CompletionRequest, completion: Completion | None) -> None:
        """The request ended (``completion``: its answer, None if it got none): its
        reservation goes back; the answer's tokens, counted already, are what it spent."""
        worst = self._held.pop(id(request), None)
        if worst is None:
            return
        self.reserved = self.reserved - worst if self._held else 0.0  # no drift of float sums
        if completion is not None:
            self._learn(request, completion)

    def _learn(self, request: CompletionRequest, completion: Completion) -> None:
        """Answers that used more than was reserved make later reservations larger."""
        chars = prompt_chars(request)
        if chars and completion.prompt_tokens > self.prompt_tokens(request):
            self._tokens_per_char = max(self._tokens_per_char, completion.prompt_tokens / chars)
        if request.count and completion.finish_reason != "length":
            self._seen_per_record = max(self._seen_per_record, completion.completion_tokens / request.count)
        cap = request.params.max_tokens
        if cap and completion.completion_tokens > cap:
            self._overrun = max(self._overrun, completion.completion_tokens / cap)
