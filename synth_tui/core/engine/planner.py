"""What to ask the model next: how many records per request, which enum values, which
variation hints, which values to avoid, and, for records an answer did not deliver, a
request again with the reasons fed back.

Each request gets an index over the whole run (resumes continue it): a seeded run
derives the request's seed, hints and drawn values from it, so the same seed asks the
same things. A request's records start as drafts (drafts.py): the values generators drew
and the input rows being enriched are given to the model as facts, and the model is
asked only for the fields left. Drafts with nothing left for the model need no request:
their plan has none, and the run builds the records itself.
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
from ..seeds import quote_rows
from .config import RunConfig
from .drafts import Draft, DraftSource

LOCAL_BATCH = 500  # records built per plan when no model is asked


@dataclass
class Ask:
    """Records wanted from one request, and why earlier ones were turned away."""

    drafts: list[Draft]
    feedback: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.drafts)


@dataclass
class Plan:
    """An ask made into a request (None: nothing is left for the model to write)."""

    ask: Ask
    index: int
    request: CompletionRequest | None
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
        drafts: DraftSource | None = None,
    ) -> None:
        self.schema = schema
        self.config = config
        self.backend = backend  # only its prompt traits are read
        self.drafts = drafts or DraftSource(schema, config)
        self.recipe = schema.recipe
        fixed = self.drafts.fixed_fields()
        self.model_schema = self._model_schema(fixed)  # of the fields the model writes; None: no model
        self.local = self.model_schema is None
        self.batch_size = LOCAL_BATCH if self.local else config.batch_size or backend.preferred_batch_size
        asked = self.model_schema or {}
        self._string_fields = prompts.string_fields(asked)
        # the field whose first letter a backend may enforce: a name or title, not prose the
        # schema describes (a grammar's letter rule keeps a value short and plain)
        self._letter_field = next((name for name in self._string_fields
                                   if "description" not in (asked.get("properties") or {}).get(name, {})), None)
        self._recent = prompts.RecentValues()
        self._balancer = prompts.EnumBalancer(asked) if config.balance_enums and asked else None
        self._schema_texts: dict[frozenset[str], str] = {}  # the JSON sent with every prompt, made once
        self._rules = self.recipe.rule_texts() if self.recipe else []
        self._response_schemas: dict[tuple[frozenset[str], int], dict[str, Any]] = {}  # backends cache by object
        self._pending: deque[Ask] = deque()
        self._in_flight = 0  # records asked for by requests under way
        held = list(accepted)
        if self._balancer is not None:
            self._balancer.observe(held)
        # a resumed session draws other values than the sessions before it (a run with no
        # model makes no requests, so the request index alone would draw them again)
        self._drafts_key = f"drafts:{len(held)}" if held else "drafts"
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
            ask.drafts = self.drafts.redraw(ask.drafts, self._rng(self.index, self._drafts_key))
        else:
            need = self.needed(accepted)
            if need <= 0:
                return None
            ask = Ask(self.drafts.take(min(self.batch_size, need), self._rng(self.index, self._drafts_key)))
            if not ask.drafts:  # the input rows ran out
                return None
        self._in_flight += ask.count
        return self._plan(ask)

    def release(self, plan: Plan) -> None:
        """A request ended, however it ended: its records no longer count as asked for."""
        self._in_flight -= plan.ask.count
        if plan.targets and self._balancer is not None:
            self._balancer.release(plan.targets)

    def ask_again(
        self, plan: Plan, unfilled: list[Draft], accepted: int, feedback: list[str], truncated: bool,
    ) -> None:
        """Ask again for the drafts ``plan`` did not fill that the run still needs, telling
        the model what went wrong. An answer cut off at max_tokens asked for too much at
        once: ask in halves."""
        missing = min(len(unfilled), self.needed(accepted))
        if missing <= 0:
            return
        unfilled = unfilled[:missing]
        if truncated and missing > 1:
            half = missing - missing // 2
            self._pending.append(Ask(unfilled[:half], feedback))
            self._pending.append(Ask(unfilled[half:], feedback))
        else:
            self._pending.append(Ask(unfilled, feedback))

    def observe(self, records: list[dict[str, Any]]) -> None:
        """Accepted records: the values to avoid and the enum spread follow them."""
        self._recent.add(records, self._string_fields)
        if self._balancer is not None:
            self._balancer.observe(records)

    # -- one request -----------------------------------------------------------------------
    def _rng(self, index: int, purpose: str) -> random.Random:
        seed = self.config.params.seed
        return random.Random(f"{seed}:{index}{purpose}" if seed is not None else None)

    def _plan(self, ask: Ask) -> Plan:
        index = self.index
        self.index += 1
        fixed = self._fixed_in_all(ask.drafts)
        schema = self._model_schema(fixed)
        if schema is None:
            return Plan(ask, index, None, None)
        seed = self.config.params.seed
        params = GenerationParams(**self.config.params.as_dict())
        if seed is not None:
            params.seed = seed + index
        seeded = self._rng(index, "")
        hints = self.config.variation_hints
        rng = seeded if hints else None
        letters = prompts.pick_letters(seeded, ask.count) if hints else None
        variation: dict[str, Any] = {}
        if letters and ask.count == 1 and self._letter_field:
            variation.update(field=self._letter_field, letter=letters[0])
        targets = None
        if self._balancer is not None and self._balancer.fields:
            targets = self._balancer.targets(seeded, ask.count)
            if ask.count == 1:
                variation["enums"] = targets[0]
        backend = self.backend
        examples = self.drafts.example_rows()
        messages = prompts.build_messages(
            self._schema_text(fixed, schema), ask.count, rng=rng if backend.hint_text else None, letters=letters,
            targets=targets, avoid=self._recent.sample() if hints and backend.avoid_list else None,
            feedback=ask.feedback, schema_in_prompt=backend.schema_in_prompt,
            facts=None if self.drafts.plain else quote_rows([_facts(d) for d in ask.drafts]),
            examples=quote_rows(examples) if examples else None, rules=self._rules,
        )
        request = CompletionRequest(
            messages, schema, ask.count, self._response_schema(fixed, schema, ask.count), params, variation or None,
            max_response_bytes=self.config.max_response_bytes,
        )
        return Plan(ask, index, request, targets)

    def _fixed_in_all(self, drafts: list[Draft]) -> frozenset[str]:
        """The fields every one of ``drafts`` fixes: the model is asked for the others."""
        if self.drafts.plain or not drafts:
            return frozenset()
        names = set(drafts[0].fixed)
        for draft in drafts[1:]:
            names &= draft.fixed.keys()
        return frozenset(names)

    def _model_schema(self, fixed: frozenset[str]) -> dict[str, Any] | None:
        if self.recipe is None:
            return self.schema.schema
        return self.recipe.model_schema(self.schema.schema, fixed)

    def _schema_text(self, fixed: frozenset[str], schema: dict[str, Any]) -> str:
        text = self._schema_texts.get(fixed)
        if text is None:
            text = self._schema_texts[fixed] = json.dumps(schema, ensure_ascii=False)
        return text

    def _response_schema(self, fixed: frozenset[str], schema: dict[str, Any], count: int) -> dict[str, Any]:
        key = (fixed, count)
        response = self._response_schemas.get(key)
        if response is None:
            response = schema if count == 1 else batch_schema(schema, count)
            self._response_schemas[key] = response
        return response


def _facts(draft: Draft) -> dict[str, Any]:
    """What the model is told of a record: its fixed values, and the rows it belongs to."""
    if not draft.context:
        return draft.fixed
    return {"record": draft.fixed, **{f"its {table} row": row for table, row in draft.context.items()}}
