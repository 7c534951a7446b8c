"""Which records of an answer a run keeps: parse -> merge -> validate -> rules -> dedupe
-> journal.

The n-th record of an answer completes the n-th draft of its request: the model's
fields go under the draft's fixed values (it never overwrites one), sequences and
templates are filled, then the whole record is checked: the schema, then the schema's
cross-field rules, then ``checks``. Every candidate turned away is a rejection with its
reason, counted (duplicates apart) and kept for triage up to MAX_KEPT_REJECTIONS; the
reasons feed the next requests and the message of a run that gives up. Records that
enrich input rows are journaled in the rows' order.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from ..backends.base import Completion
from ..errors import TooDeep, UnparseableOutput
from ..events import Rejection
from ..parsing import extract_records
from ..report import reason_key
from ..schema import RecordSchema, canonical_json
from ..seeds import ExamplePool
from .config import Counts
from .drafts import Draft

MAX_KEPT_REJECTIONS = 1000  # raw texts kept per run for triage; counts are always exact
# answers longer than this are parsed and validated in a worker thread, so that the
# event loop (signals, cancel, the TUI's keys) never waits on them
OFF_LOOP_CHARS = 64 * 1024
RAW_CHARS = 4000  # of a rejected text kept

# a check beyond the schema: the reasons a valid record is still wrong (none: fine). It
# may run in a worker thread, so it must only read.
Check = Callable[[dict[str, Any]], list[str]]
# a candidate (merged with its draft), the digest duplicates are found by, why it
# is turned away (empty: it is not), the rejection's kind, and the draft it fills
Examined = tuple[Any, bytes, list[str], str, Draft | None]


class Journal(Protocol):
    """Where accepted records and kept rejections go, in the order they are decided."""

    def append(self, records: list[dict[str, Any]]) -> None: ...

    def append_rejection(self, rejection: Rejection) -> None: ...


class Acceptor:
    """Decides the records of a run. ``records`` are those it already holds (a resumed
    run's; repeats among them are dropped); ``count`` is how many the run wants."""

    def __init__(
        self,
        schema: RecordSchema,
        count: int,
        counts: Counts,
        *,
        max_response_bytes: int,
        records: Iterable[dict[str, Any]] = (),
        checks: Sequence[Check] = (),
        examples: ExamplePool | None = None,
        journal: Journal | None = None,
        keep: bool = True,
        on_accept: Callable[[list[dict[str, Any]]], None] = lambda records: None,
        on_reject: Callable[[Rejection], None] = lambda rejection: None,
    ) -> None:
        self.schema = schema
        self.count = count
        self.counts = counts
        self.max_response_bytes = max_response_bytes
        self.recipe = schema.recipe
        self.fields = frozenset(schema.field_names())
        self.checks = tuple(checks)
        self.examples = examples
        self.journal = journal
        self.on_accept = on_accept
        self.on_reject = on_reject
        self.keep = keep  # records stay in memory (else only in the journal, and counted)
        self.records: list[dict[str, Any]] = []
        self.kept = 0
        self._seen: set[bytes] = set()  # digests of what duplicates are found by: 16 bytes a record
        for record in records:
            key = self._key(record)
            if key not in self._seen:
                self._seen.add(key)
                self.kept += 1
                if keep:
                    self.records.append(record)
        self._waiting: dict[int, dict[str, Any]] = {}  # enriched rows' records, until those before them come
        self.rejections: list[Rejection] = []
        self.reasons: Counter[str] = Counter()  # of this session's rejections, grouped
        self.returned = 0  # candidates in this session's answers
        self._duplicates_before = counts.duplicates

    @property
    def complete(self) -> bool:
        return self.kept >= self.count

    @property
    def accepted(self) -> int:
        """Records kept, those waiting for an earlier input row's included."""
        return self.kept + len(self._waiting)

    async def take(self, completion: Completion, drafts: list[Draft]) -> list[Draft]:
        """Keep the records of one answer to a request for ``drafts``; the drafts it left
        unfilled."""
        text = completion.text
        if completion.refusal:
            self.reject("refusal", f"the model refused: {completion.refusal}", text)
            return drafts
        if len(text) > self.max_response_bytes:
            self.reject("too_large", f"the answer was longer than the cap of {self.max_response_bytes} "
                        "bytes (max_response_bytes)", text)
            return drafts
        try:
            if len(text) > OFF_LOOP_CHARS:
                returned, examined = await asyncio.to_thread(self.examine, text, drafts)
            else:
                returned, examined = self.examine(text, drafts)
        except UnparseableOutput as exc:
            if completion.finish_reason == "length" and not isinstance(exc, TooDeep):
                self.reject("truncated", "the answer was cut off at max_tokens: allow more tokens per answer", text)
            else:
                self.reject("unparseable", str(exc), text)
            return drafts
        self.returned += returned
        return self._keep(examined, drafts)

    async def build(self, drafts: list[Draft]) -> list[Draft]:
        """Keep the records ``drafts`` make on their own (nothing is left for the model),
        built off the event loop; the drafts left unfilled."""
        examined = await asyncio.to_thread(self._examine_all, [{} for _ in drafts], drafts)
        self.returned += len(drafts)
        # a record that completes its own input row is that row's, even when another row's
        # record is equal to it (two line items alike): no model wrote it to repeat itself
        return self._keep(examined, drafts, dedupe=not any(d.row is not None for d in drafts))

    def examine(self, text: str, drafts: list[Draft]) -> tuple[int, list[Examined]]:
        """Parse one answer, merge each candidate with its draft and check it: how many
        candidates the answer holds, and what was found of the first ones (twice as many
        as wanted plus ten at most). Safe to run off the event loop: it only reads."""
        candidates = extract_records(text, self.fields)
        return len(candidates), self._examine_all(candidates[: 2 * len(drafts) + 10], drafts)

    def _examine_all(self, candidates: list[Any], drafts: list[Draft]) -> list[Examined]:
        out: list[Examined] = []
        spare = all(not d.fixed and d.row is None for d in drafts)  # any candidate may fill any draft
        valid = 0
        for i, candidate in enumerate(candidates):
            draft = drafts[i] if i < len(drafts) else Draft() if spare else None
            if draft is None:
                break  # more records than drafts: the rest have no values to complete
            if self.recipe is not None and (draft.fixed or self.recipe.has_generators):
                candidate = self.recipe.merge(candidate, draft.fixed, self._position(draft, valid))
            key = self._key(candidate)
            errors, kind = self.errors(candidate)
            out.append((candidate, key, errors, kind, draft))
            if not errors and key not in self._seen:
                valid += 1
                if valid >= len(drafts):
                    break
        return out

    def errors(self, candidate: Any) -> tuple[list[str], str]:
        """Why a candidate is not a record, and the kind of rejection: the schema first,
        then the rules, then the checks."""
        errors = self.schema.errors(candidate)
        if errors:
            return errors, "invalid"
        if self.recipe is not None:
            errors = self.recipe.broken_rules(candidate)
            if errors:
                return errors, "rule"
        for check in self.checks:
            errors = errors + check(candidate)
        return errors, "invalid"

    def _keep(self, examined: list[Examined], drafts: list[Draft], *, dedupe: bool = True) -> list[Draft]:
        fresh: list[dict[str, Any]] = []
        filled: set[int] = set()
        for candidate, key, errors, kind, draft in examined:
            if self.accepted + len(fresh) >= self.count or len(filled) >= len(drafts):
                break  # more than was asked for: the surplus is not needed
            if errors:
                self.reject(kind, "; ".join(errors), canonical_json(candidate))
                continue
            if dedupe and key in self._seen:
                self.reject("duplicate", "exact duplicate of an accepted record", canonical_json(candidate))
                continue
            if self.examples is not None and self.examples.is_example(candidate):
                self.reject("duplicate", "a copy of one of the example rows", canonical_json(candidate))
                continue
            self._seen.add(key)
            if draft is not None and self.recipe is not None and self.recipe.generated.sequences:
                candidate = self.recipe.generated.fill(candidate, self._position(draft, len(fresh)))
            record = self.schema.in_order(candidate)  # kept and exported in the schema's key order
            if draft is not None and draft.row is not None:
                self._waiting[draft.row] = record
            else:
                fresh.append(record)
            filled.add(id(draft))
        self._commit(fresh + self._ready())
        if any(d.fixed or d.row is not None for d in drafts):
            return [d for d in drafts if id(d) not in filled]
        return drafts[len(filled):]

    def _ready(self) -> list[dict[str, Any]]:
        """Waiting records whose earlier rows are all in, in row order."""
        out: list[dict[str, Any]] = []
        while self.kept + len(out) in self._waiting:
            out.append(self._waiting.pop(self.kept + len(out)))
        return out

    def _commit(self, fresh: list[dict[str, Any]]) -> None:
        if fresh:
            if self.journal is not None:
                self.journal.append(fresh)
            self.kept += len(fresh)
            if self.keep:
                self.records.extend(fresh)
            self.on_accept(fresh)

    def _position(self, draft: Draft, offset: int) -> int:
        """The record's place in the run (sequences count with it): its input row's, or
        the next free one."""
        return draft.row if draft.row is not None else self.accepted + offset

    def _key(self, record: Any) -> bytes:
        text = canonical_json(self.recipe.identity(record) if self.recipe is not None else record)
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def reject(self, kind: str, reason: str, raw: str) -> None:
        """Count a candidate turned away (kind: invalid, rule, unparseable, duplicate,
        refusal, truncated, too_large), keep it while there is room, and tell the run."""
        if kind == "duplicate":
            self.counts.duplicates += 1
        else:
            self.counts.rejected += 1
            self.reasons[reason_key(reason)] += 1
        rejection = Rejection(reason=reason, raw=raw[:RAW_CHARS], kind=kind)
        if len(self.rejections) < MAX_KEPT_REJECTIONS:
            self.rejections.append(rejection)
            if self.journal is not None:
                self.journal.append_rejection(rejection)
        self.on_reject(rejection)

    def top_reasons(self, n: int) -> list[str]:
        return [reason for reason, _ in self.reasons.most_common(n)]

    def give_up_message(self, requests: int) -> str:
        """Why a run that spent its ``requests`` ends short, and what to try."""
        problems = [f"{reason} ({n}x)" for reason, n in self.reasons.most_common(3)]
        duplicates = self.counts.duplicates - self._duplicates_before
        advice = "Try a larger model, fewer records per request, or a simpler schema"
        if duplicates and duplicates >= max(self.reasons.values(), default=0):
            problems.insert(
                0, f"the model kept returning duplicates: {duplicates} of {self.returned} records it returned"
            )
            advice = "Try a higher temperature, variation hints on, or a schema with more room for variety"
        if not problems:
            problems.append(f"the answers held fewer records than asked for ({self.returned} in all)")
        return (
            f"gave up after {requests} requests: {self.kept} of {self.count} records accepted. "
            f"Most common problems: {', '.join(problems)}. {advice}; the run can be resumed."
        )
