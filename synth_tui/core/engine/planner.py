"""What to ask the model next: how many records per request, which enum values, which
variation hints, which values to avoid, and, for records an answer did not deliver, a
request again with the reasons fed back.

Each request gets an index over the whole run (resumes continue it): a seeded run
derives the request's seed and hints from it, so the same seed asks the same things.
Field generators and parent rows will give a request its fixed values here.
"""

from __future__ import annotations

import json
import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import prompts
from ..backends.base import Backend, CompletionRequest, GenerationParams
from ..schema import RecordSchema, batch_schema
from .config import RunConfig


@dataclass
class Ask:
    """Records wanted from one request, and why earlier ones were turned away."""

    count: int
    feedback: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """An ask made into a request."""

    ask: Ask
    index: int
    request: CompletionRequest
    targets: list[dict[str, Any]] | None  # the enum values each record was asked for


class Planner:
    """Plans the requests of one run session. ``accepted`` is how many records the run
    already holds (a resumed run's), ``first_index`` the index its next request gets."""

    def __init__(
        self,
        schema: RecordSchema,
        config: RunConfig,
        backend: Backend,
        *,
        accepted: Iterable[dict[str, Any]] = (),
        first_index: int = 0,
    ) -> None:
        self.schema = schema
        self.config = config
        self.backend = backend  # only its prompt traits are read
        self.batch_size = config.batch_size or backend.preferred_batch_size
        self._string_fields = prompts.string_fields(schema.schema)
        self._recent = prompts.RecentValues()
        self._balancer = prompts.EnumBalancer(schema.schema) if config.balance_enums else None
        self._schema_text = json.dumps(schema.schema, ensure_ascii=False)  # sent with every prompt
        self._response_schemas: dict[int, dict[str, Any]] = {}  # one object per size: backends cache by it
        self._pending: deque[Ask] = deque()
        self._in_flight = 0  # records asked for by requests under way
        held = list(accepted)
        if self._balancer is not None:
            self._balancer.observe(held)
        self.index = self.first_index = first_index
        # every record slot of this session may take max_attempts requests, on average
        asks = math.ceil(max(0, config.count - len(held)) / self.batch_size)
        self.budget = first_index + asks * config.max_attempts

    @property
    def requests_made(self) -> int:
        """Requests planned in this session."""
        return self.index - self.first_index

    def needed(self, accepted: int) -> int:
        """Records not yet accepted, asked for or waiting to be asked for again."""
        pending = sum(ask.count for ask in self._pending)
        return self.config.count - accepted - self._in_flight - pending

    def next(self, accepted: int) -> Plan | None:
        """The next request, or None when nothing more is needed now or the budget of
        requests is spent. The caller must release() the plan when it is answered."""
        if self.index >= self.budget:
            return None
        if self._pending:
            ask = self._pending.popleft()
        else:
            need = self.needed(accepted)
            if need <= 0:
                return None
            ask = Ask(min(self.batch_size, need))
        self._in_flight += ask.count
        return self._plan(ask)

    def release(self, plan: Plan) -> None:
        """A request ended, however it ended: its records no longer count as asked for."""
        self._in_flight -= plan.ask.count
        if plan.targets and self._balancer is not None:
            self._balancer.release(plan.targets)

    def ask_again(self, plan: Plan, got: int, accepted: int, feedback: list[str], truncated: bool) -> None:
        """Ask again for what ``plan`` did not deliver and the run still needs, telling the
        model what went wrong. An answer cut off at max_tokens asked for too much at
        once: ask in halves."""
        missing = min(plan.ask.count - got, self.needed(accepted))
        if missing <= 0:
            return
        if truncated and missing > 1:
            self._pending.append(Ask(missing - missing // 2, feedback))
            self._pending.append(Ask(missing // 2, feedback))
        else:
            self._pending.append(Ask(missing, feedback))

    def observe(self, records: list[dict[str, Any]]) -> None:
        """Accepted records: the values to avoid and the enum spread follow them."""
        self._recent.add(records, self._string_fields)
        if self._balancer is not None:
            self._balancer.observe(records)

    # -- one request -----------------------------------------------------------------------
    def _plan(self, ask: Ask) -> Plan:
        index = self.index
        self.index += 1
        seed = self.config.params.seed
        params = GenerationParams(**self.config.params.as_dict())
        if seed is not None:
            params.seed = seed + index
        seeded = random.Random(f"{seed}:{index}" if seed is not None else None)
        hints = self.config.variation_hints
        rng = seeded if hints else None
        letters = prompts.pick_letters(seeded, ask.count) if hints else None
        variation: dict[str, Any] = {}
        if letters and ask.count == 1 and self._string_fields:
            variation.update(field=self._string_fields[0], letter=letters[0])
        targets = None
        if self._balancer is not None and self._balancer.fields:
            targets = self._balancer.targets(seeded, ask.count)
            if ask.count == 1:
                variation["enums"] = targets[0]
        backend = self.backend
        messages = prompts.build_messages(
            self._schema_text, ask.count, rng=rng if backend.hint_text else None, letters=letters,
            targets=targets, avoid=self._recent.sample() if hints and backend.avoid_list else None,
            feedback=ask.feedback, schema_in_prompt=backend.schema_in_prompt,
        )
        request = CompletionRequest(
            messages, self.schema.schema, ask.count, self._response_schema(ask.count), params, variation or None,
            max_response_bytes=self.config.max_response_bytes,
        )
        return Plan(ask, index, request, targets)

    def _response_schema(self, count: int) -> dict[str, Any]:
        schema = self._response_schemas.get(count)
        if schema is None:
            schema = self.schema.schema if count == 1 else batch_schema(self.schema.schema, count)
            self._response_schemas[count] = schema
        return schema
