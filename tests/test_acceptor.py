"""The acceptor alone: which records of an answer a run keeps, which it turns away and
why, what reaches the journal (a real store in a temp dir), and the checks that rules
will plug into."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from synth_tui.core.backends.base import Completion
from synth_tui.core.engine import acceptor as acceptor_module
from synth_tui.core.engine.acceptor import Acceptor
from synth_tui.core.engine.config import Counts
from synth_tui.core.engine.drafts import Draft
from synth_tui.core.engine.history import RunRecord
from synth_tui.core.events import Rejection
from synth_tui.core.schema import check_schema
from synth_tui.core.store import Store

from . import fake_llm

SCHEMA = check_schema({"name": {"type": "string"}, "n": {"type": "integer", "minimum": 0}})


async def take(acceptor, completion, wanted: int) -> int:
    """How many of ``wanted`` records (no fixed values) one answer filled."""
    return wanted - len(await acceptor.take(completion, [Draft() for _ in range(wanted)]))


class ListJournal:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.rejections: list[Rejection] = []

    def append(self, records: list[dict[str, Any]]) -> None:
        self.records.extend(records)

    def append_rejection(self, rejection: Rejection) -> None:
        self.rejections.append(rejection)


def make(count: int = 10, **kw: Any) -> Acceptor:
    kw.setdefault("max_response_bytes", 1024 * 1024)
    return Acceptor(kw.pop("schema", SCHEMA), count, Counts(), **kw)


def answer(*records: Any, **kw: Any) -> Completion:
    return Completion(text=json.dumps({"records": list(records)}), **kw)


async def test_valid_new_records_are_kept_in_order_and_journalled_before_anyone_hears():
    journal, heard = ListJournal(), []
    acc = make(journal=journal, on_accept=lambda records: heard.append((list(records), len(journal.records))))
    got = await take(acc, answer({"name": "a", "n": 1}, {"name": "b", "n": 2}), 2)
    assert got == 2 and acc.records == [{"name": "a", "n": 1}, {"name": "b", "n": 2}]
    assert journal.records == acc.records and heard == [(acc.records, 2)]
    assert acc.returned == 2 and acc.counts == Counts()


async def test_invalid_and_duplicate_records_are_counted_apart_with_reasons():
    journal, told = ListJournal(), []
    acc = make(journal=journal, on_reject=told.append)
    await take(acc, answer({"name": "a", "n": 1}), 1)
    got = await take(acc, answer({"name": "a", "n": 1}, {"name": "b", "n": -1}, {"n": 3}, {"name": "c", "n": 3}), 3)
    assert got == 1 and [r["name"] for r in acc.records] == ["a", "c"]
    assert acc.counts.duplicates == 1 and acc.counts.rejected == 2
    assert [r.kind for r in told] == ["duplicate", "invalid", "invalid"] == [r.kind for r in journal.rejections]
    assert "less than the minimum of 0" in told[1].reason and "'name' is a required property" in told[2].reason
    assert told[0].raw == '{"n":1,"name":"a"}'  # the canonical JSON of the candidate
    # reasons are grouped (the value left out) and fed back; duplicates are not a reason
    assert acc.top_reasons(4) == ["$.n: value is less than the minimum of 0", "$: 'name' is a required property"]


async def test_only_what_was_asked_for_is_kept_and_never_past_the_count():
    acc = make(count=3)
    assert await take(acc, answer(*[{"name": str(i), "n": i} for i in range(5)]), 2) == 2
    assert await take(acc, answer(*[{"name": f"x{i}", "n": i} for i in range(5)]), 2) == 1
    assert len(acc.records) == 3 and acc.complete and acc.counts.rejected == 0  # the surplus is not a rejection


async def test_answers_without_records_are_rejections_of_their_kind():
    acc = make(max_response_bytes=2048)
    cases = [
        (Completion(text="", refusal="I will not"), "refusal", "the model refused: I will not"),
        (Completion(text="x" * 4096), "too_large", "longer than the cap of 2048 bytes"),
        (Completion(text='{"records": [{"name": "a", "n"', finish_reason="length"), "truncated", "allow more tokens per answer"),
        (Completion(text="no JSON today"), "unparseable", "no JSON found"),
        (Completion(text=fake_llm.nested(1000), finish_reason="length"), "unparseable", "levels deep"),
    ]
    told: list[Rejection] = []
    acc.on_reject = told.append
    for completion, _, _ in cases:
        assert await take(acc, completion, 1) == 0
    seen = [(r.kind, said in r.reason) for r, (_, _, said) in zip(told, cases, strict=True)]
    assert seen == [(kind, True) for _, kind, _ in cases]
    assert acc.counts.rejected == 5 and len(told[1].raw) == acceptor_module.RAW_CHARS  # raw text kept, clipped


async def test_records_it_starts_with_are_kept_once_and_count_as_seen():
    held = [{"name": "a", "n": 1}, {"name": "a", "n": 1}, {"name": "b", "n": 2}]
    acc = make(count=4, records=held)
    assert acc.records == held[1:]  # a journal repeated by a crash holds each record once
    assert await take(acc, answer({"name": "b", "n": 2}, {"name": "c", "n": 3}), 2) == 1
    assert acc.counts.duplicates == 1


async def test_checks_run_after_the_schema_and_their_reasons_are_rejections():
    calls = []

    def ordered(record: dict[str, Any]) -> list[str]:
        calls.append(record)
        return [] if record["n"] >= len(record["name"]) else ["n >= len(name) is false"]

    acc = make(checks=[ordered])
    got = await take(acc, answer({"name": "abc", "n": 5}, {"name": "abcdef", "n": 2}, {"name": "x", "n": -1}), 3)
    assert got == 1 and acc.records == [{"name": "abc", "n": 5}]
    assert len(calls) == 2  # not called on a record the schema turned away
    assert acc.reasons["n >= len(name) is false"] == 1 and acc.counts.rejected == 2


async def test_a_large_answer_is_examined_off_the_event_loop():
    threads: set[str] = set()

    def where(record: dict[str, Any]) -> list[str]:
        threads.add(threading.current_thread().name)
        return []

    acc = make(count=2, checks=[where], max_response_bytes=4 * 1024 * 1024)
    await take(acc, answer({"name": "x" * (acceptor_module.OFF_LOOP_CHARS + 1), "n": 1}), 1)
    await take(acc, answer({"name": "short", "n": 1}), 1)
    assert len(acc.records) == 2 and len(threads) == 2
    assert threading.current_thread().name in threads


async def test_kept_rejections_are_bounded_but_counts_stay_exact(monkeypatch):
    monkeypatch.setattr(acceptor_module, "MAX_KEPT_REJECTIONS", 3)
    journal, told = ListJournal(), []
    acc = make(journal=journal, on_reject=told.append)
    await take(acc, answer(*[{"name": str(i)} for i in range(8)]), 8)
    assert acc.counts.rejected == 8 and len(told) == 8
    assert len(acc.rejections) == 3 and len(journal.rejections) == 3


async def test_giving_up_names_the_commonest_problem():
    acc = make(count=5)
    await take(acc, answer({"name": "a", "n": 1}, {"name": "a", "n": 1}, {"name": "a", "n": 1}), 3)
    assert acc.give_up_message(4).startswith("gave up after 4 requests: 1 of 5 records accepted. ")
    assert "the model kept returning duplicates: 2 of 3 records it returned" in acc.give_up_message(4)
    acc = make(count=5)
    await take(acc, answer({"n": 1}), 1)
    assert "$: 'name' is a required property (1x)" in acc.give_up_message(1)
    assert "Try a larger model" in acc.give_up_message(1)


@pytest.mark.parametrize("kept", [True, False])
async def test_the_journal_is_the_runs_record_in_a_real_store(tmp_path, kept):
    with Store(tmp_path / "data") as store:
        history = RunRecord(store if kept else None, "r1")
        history.open({"schema": SCHEMA.schema, "config": {}, "backend": {}, "counts": {}, "error": None},
                     resumed=False)
        acc = make(journal=history)
        await take(acc, answer({"name": "a", "n": 1}, {"name": "b"}), 2)
        status, error = history.close("done", None, counts={}, elapsed=1.5, finished="now")
        assert (status, error) == ("done", None)
        if kept:
            assert list(store.iter_records("r1")) == [{"name": "a", "n": 1}]
            assert [r["kind"] for r in store.iter_rejections("r1")] == ["invalid"]
            assert store.get_run("r1")["status"] == "done" and store.get_run("r1")["elapsed"] == 1.5
        else:
            assert store.list_runs() == []


async def test_kept_records_follow_the_schemas_key_order():
    from synth_tui.core.schema import check_schema

    acceptor = make(1, schema=check_schema({"name": {"type": "string"}, "age": {"type": "integer"}}))
    await take(acceptor, Completion(text='{"age": 3, "name": "Ana"}'), 1)
    assert [list(r) for r in acceptor.records] == [["name", "age"]]
