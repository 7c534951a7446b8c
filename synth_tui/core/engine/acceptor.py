"""Which records of an answer a run keeps: parse -> validate -> checks -> dedupe -> journal.

Every candidate turned away is a rejection with its reason, counted (duplicates apart)
and kept for triage up to MAX_KEPT_REJECTIONS; the reasons feed the next requests and
the message of a run that gives up. ``checks`` run after the schema on a valid record:
cross-field rules plug in there. Values a generator drew will be merged in here too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from ..backends.base import Completion
from ..errors import TooDeep, UnparseableOutput
from ..events import Rejection
from ..parsing import extract_records
from ..report import reason_key
from ..schema import RecordSchema, canonical_json
from .config import Counts

MAX_KEPT_REJECTIONS = 1000  # raw texts kept per run for triage; counts are always exact
# answers longer than this are parsed and validated in a worker thread, so that the
# event loop (signals, cancel, the TUI's keys) never waits on them
OFF_LOOP_CHARS = 64 * 1024
RAW_CHARS = 4000  # of a rejected text kept

# a check beyond the schema: the reasons a valid record is still wrong (none: fine). It
# may run in a worker thread, so it must only read.
Check = Callable[[dict[str, Any]], list[str]]
Examined = tuple[Any, str, list[str]]  # candidate, its canonical JSON, its errors


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
        journal: Journal | None = None,
        on_accept: Callable[[list[dict[str, Any]]], None] = lambda records: None,
        on_reject: Callable[[Rejection], None] = lambda rejection: None,
    ) -> None:
        self.schema = schema
        self.count = count
        self.counts = counts
        self.max_response_bytes = max_response_bytes
        self.fields = frozenset(schema.field_names())
        self.checks = tuple(checks)
        self.journal = journal
        self.on_accept = on_accept
        self.on_reject = on_reject
        self.records: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        for record in records:
            key = canonical_json(record)
            if key not in self._seen:
                self._seen.add(key)
                self.records.append(record)
        self.rejections: list[Rejection] = []
        self.reasons: Counter[str] = Counter()  # of this session's rejections, grouped
        self.returned = 0  # candidates in this session's answers
        self._duplicates_before = counts.duplicates

    @property
    def complete(self) -> bool:
        return len(self.records) >= self.count

    async def take(self, completion: Completion, wanted: int) -> int:
        """Keep the records of one answer to a request for ``wanted``; how many were kept."""
        text = completion.text
        if completion.refusal:
            self.reject("refusal", f"the model refused: {completion.refusal}", text)
            return 0
        if len(text) > self.max_response_bytes:
            self.reject("too_large", f"the answer was longer than the cap of {self.max_response_bytes} "
                        "bytes (max_response_bytes)", text)
            return 0
        try:
            if len(text) > OFF_LOOP_CHARS:
                returned, examined = await asyncio.to_thread(self.examine, text, wanted)
            else:
                returned, examined = self.examine(text, wanted)
        except UnparseableOutput as exc:
            if completion.finish_reason == "length" and not isinstance(exc, TooDeep):
                self.reject("truncated", "the answer was cut off at max_tokens: allow more tokens per answer", text)
            else:
                self.reject("unparseable", str(exc), text)
            return 0
        self.returned += returned
        return self._keep(examined, wanted)

    def examine(self, text: str, wanted: int) -> tuple[int, list[Examined]]:
        """Parse and validate one answer: how many candidates it holds, and (record,
        canonical JSON, errors) for the first ones, up to ``wanted`` new valid ones (twice
        as many plus ten at most). Safe to run off the event loop: it only reads."""
        candidates = extract_records(text, self.fields)
        out = []
        valid = 0
        for candidate in candidates[: 2 * wanted + 10]:
            key = canonical_json(candidate)
            errors = self.errors(candidate)
            out.append((candidate, key, errors))
            if not errors and key not in self._seen:
                valid += 1
                if valid >= wanted:
                    break
        return len(candidates), out

    def errors(self, candidate: Any) -> list[str]:
        """Why a candidate is not a record: the schema first, then the checks."""
        errors = self.schema.errors(candidate)
        if not errors:
            for check in self.checks:
                errors = errors + check(candidate)
        return errors

    def _keep(self, examined: list[Examined], wanted: int) -> int:
        fresh: list[dict[str, Any]] = []
        for candidate, key, errors in examined:
            if len(self.records) + len(fresh) >= self.count or len(fresh) >= wanted:
                break  # more than was asked for: the surplus is not needed
            if errors:
                self.reject("invalid", "; ".join(errors), key)
                continue
            if key in self._seen:
                self.reject("duplicate", "exact duplicate of an accepted record", key)
                continue
            self._seen.add(key)
            fresh.append(self.schema.in_order(candidate))  # kept and exported in the schema's key order
        if fresh:
            if self.journal is not None:
                self.journal.append(fresh)
            self.records.extend(fresh)
            self.on_accept(fresh)
        return len(fresh)

    def reject(self, kind: str, reason: str, raw: str) -> None:
        """Count a candidate turned away (kind: invalid, unparseable, duplicate, refusal,
        truncated, too_large), keep it while there is room, and tell the run."""
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
            f"gave up after {requests} requests: {len(self.records)} of {self.count} records accepted. "
            f"Most common problems: {', '.join(problems)}. {advice}; the run can be resumed."
        )
