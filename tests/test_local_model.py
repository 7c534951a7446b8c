"""The embedded model, for real: llama.cpp's server (xllamacpp) with the shipped SmolLM2
GGUF in its child process, no mocks."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from synth_tui.core import prompts
from synth_tui.core.backends.base import CompletionRequest, GenerationParams
from synth_tui.core.backends.grammar import lower_schema, sanitize_pattern
from synth_tui.core.backends.local import (
    Layout,
    LocalBackend,
    ModelCrashed,
    default_layout,
    model_pool,
    resolve_model,
    with_first_letter,
)
from synth_tui.core.engine import Run, RunConfig, RunResult, probe_backend
from synth_tui.core.errors import BackendError
from synth_tui.core.events import EventLog, RecordsAccepted, RunFinished
from synth_tui.core.schema import canonical_json, check_schema
from synth_tui.core.store import Store


async def run_to_end(schema: Any, config: RunConfig, backend: Any, **kw: Any) -> RunResult:
    """One run (kept in ``store=`` if given); the backend stays open, its model processes shared."""
    return await Run(schema, config, backend, **kw).execute()

pytestmark = pytest.mark.local_model

NESTED = check_schema(
    {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 18, "maximum": 90},
        "email": {"type": "string", "format": "email"},
        "plan": {"type": "string", "enum": ["free", "pro", "team"]},
        "address": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^\\d{5}$"}},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    }
)


async def test_shipped_model_generates_valid_varied_records(tmp_path):
    store = Store(tmp_path)
    log = EventLog()
    backend = LocalBackend()
    result = await run_to_end(
        NESTED, RunConfig(count=4, params=GenerationParams(seed=3)), backend, store=store, on_event=log
    )
    assert result.success, result.error
    assert result.accepted == 4 and all(NESTED.is_valid(r) for r in result.records)
    assert len({canonical_json(r) for r in result.records}) == 4
    assert len({r["name"] for r in result.records}) > 1
    assert all(re.fullmatch(r"\d{5}", r["address"]["zip"]) for r in result.records)
    assert sum(len(e.records) for e in log.of(RecordsAccepted)) == 4 and log.of(RunFinished)
    doc = store.get_run(result.run_id)
    assert doc["status"] == "done" and doc["backend"]["backend"] == "local" and doc["counts"]["accepted"] == 4
    assert result.completion_tokens > 0
    store.close()


# llama.cpp's grammar parser recurses once per parenthesis: this overflows its stack
CRASHING_GRAMMAR = "root ::= " + "(" * 100_000 + '"a"' + ")" * 100_000


class RawGrammar(LocalBackend):
    """Decodes with a grammar as written instead of the schema's."""

    def payload(self, request):
        return {**super().payload(request), "schema": None, "grammar": CRASHING_GRAMMAR}


async def test_grammar_that_crashes_llama_cpp_is_contained():
    schema = check_schema({"site": {"type": "string", "pattern": "^[a-z]+\\.com$"}})
    result = await run_to_end(schema, RunConfig(count=3, concurrency=3), RawGrammar())
    assert result.status == "failed"
    assert "local model process stopped" in result.error and "signal 11" in result.error
    assert "grammar" in result.error
    # this process survived, and the next run starts a fresh model process
    result = await run_to_end(schema, RunConfig(count=2), LocalBackend())
    assert result.success, result.error
    assert all(r["site"].endswith(".com") for r in result.records)


def test_a_crash_stops_the_other_processes_before_the_next_run_can_use_them():
    backend = LocalBackend(layout=Layout(processes=2, threads=1, slots=1))
    pool = model_pool(backend.path, backend.layout)
    first, second = pool.processes
    # the second process is busy; the same run's crashing request waits there for its slot
    _, story = second.submit(
        {"messages": [{"role": "user", "content": "Write a very long story."}], "max_tokens": 4000}
    )
    second.submit({"messages": [{"role": "user", "content": "hi"}], "grammar": CRASHING_GRAMMAR})
    _, crashing = first.submit({"messages": [{"role": "user", "content": "hi"}], "grammar": CRASHING_GRAMMAR})
    with pytest.raises(ModelCrashed, match="signal 11"):
        crashing.result(timeout=300)
    assert not second.alive()  # stopped before the crash was told, so no later run got it
    with pytest.raises(ModelCrashed, match="signal 11"):
        story.result(timeout=300)
    fresh = model_pool(backend.path, backend.layout).processes
    assert len(fresh) == 2 and first not in fresh and second not in fresh


async def test_a_file_llama_cpp_cannot_load_fails_the_run_with_its_name(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    result = await run_to_end(check_schema({"a": {"type": "string"}}), RunConfig(count=1), LocalBackend(str(broken)))
    assert result.status == "failed"
    assert str(broken) in result.error and "GGUF" in result.error, result.error


async def test_a_request_longer_than_a_slot_fails_the_run_saying_what_to_do():
    schema = check_schema({"type": "object", "description": "word " * 2500, "properties": {"a": {"type": "string"}}})
    result = await run_to_end(schema, RunConfig(count=1), LocalBackend(layout=Layout(processes=1, threads=1, slots=1)))
    assert result.status == "failed"
    assert "too long for the local model's context" in result.error and "--batch-size" in result.error, result.error


async def test_test_connection_passes():
    ok, message = await probe_backend(LocalBackend())
    assert ok, message
    assert "followed the schema" in message


def one_record_request(schema, seed: int) -> CompletionRequest:
    return CompletionRequest(
        prompts.build_messages(schema.schema, 1), schema.schema, 1, schema.schema, GenerationParams(seed=seed)
    )


def test_slots_decode_several_requests_at_once():
    backend = LocalBackend(layout=Layout(processes=1, threads=1, slots=4))
    proc = model_pool(backend.path, backend.layout).processes[0]
    futures = [proc.submit(backend.payload(one_record_request(NESTED, seed)))[1] for seed in range(4)]
    replies = [future.result(timeout=300) for future in futures]
    assert all(NESTED.is_valid(json.loads(r["text"])) for r in replies), replies
    spans = sorted(r["span"] for r in replies)
    # decoding overlapped: some request was still decoding when the next one started
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), spans


async def test_requests_spread_over_the_processes():
    backend = LocalBackend(layout=Layout(processes=2, threads=1, slots=2))
    assert backend.max_concurrency == 4
    result = await run_to_end(NESTED, RunConfig(count=8, concurrency=4, params=GenerationParams(seed=5)), backend)
    assert result.success, result.error
    assert all(proc.answered >= 2 for proc in model_pool(backend.path, backend.layout).processes)


def test_default_layout_uses_every_core_for_the_shipped_model():
    layout = default_layout(resolve_model(None))
    cores = len(os.sched_getaffinity(0))
    assert layout.processes == min(cores, 4) and layout.processes * layout.threads <= cores
    assert LocalBackend().max_concurrency == layout.processes * layout.slots


def test_a_cancelled_request_stops_and_frees_its_slot():
    backend = LocalBackend(layout=Layout(processes=1, threads=1, slots=1))
    proc = model_pool(backend.path, backend.layout).processes[0]
    story = {"messages": [{"role": "user", "content": "Write a very long story."}], "max_tokens": 4000}
    rid, future = proc.submit(story)
    proc.cancel(rid)
    assert future.result(timeout=300) == {"id": rid, "error": "cancelled"}
    _, future = proc.submit(backend.payload(one_record_request(NESTED, 1)))
    assert "text" in future.result(timeout=300)


async def test_cancelling_a_run_keeps_its_records_and_the_next_run_works():
    backend = LocalBackend(layout=Layout(processes=2, threads=1, slots=1))
    run = None

    def on_event(event):
        if isinstance(event, RecordsAccepted):
            run.cancel()

    run = Run(NESTED, RunConfig(count=40, concurrency=2), backend, on_event=on_event)
    result = await run.execute()
    assert result.status == "cancelled" and 1 <= result.accepted < 40
    result = await run_to_end(NESTED, RunConfig(count=2, concurrency=2), backend)
    assert result.success, result.error


def test_unknown_model_names_are_clear_errors(tmp_path):
    with pytest.raises(BackendError, match="unknown local model"):
        resolve_model("gpt-9")
    with pytest.raises(BackendError, match="model file not found"):
        resolve_model(str(tmp_path / "x.gguf"))
    assert resolve_model(None).name.endswith(".gguf")


def test_lowering_for_the_grammar():
    lowered = lower_schema(NESTED.schema)
    props = lowered["properties"]
    assert props["age"]["enum"] == list(range(18, 91))
    assert "format" not in props["email"] and props["email"]["pattern"].startswith("^")
    assert props["address"]["properties"]["zip"]["pattern"] == "^[0-9]{5}$"
    assert props["name"]["maxLength"] == 60 and props["tags"]["maxItems"] == 4
    assert lowered["additionalProperties"] is False and props["address"]["additionalProperties"] is False
    assert NESTED.schema["properties"]["age"] == {"type": "integer", "minimum": 18, "maximum": 90}  # untouched
    email = check_schema({"e": {"type": "string", "format": "email"}})
    assert email.is_valid({"e": "abc.de@mail.com"})
    lettered = with_first_letter(lowered, "name", "K")
    assert lettered["properties"]["name"]["pattern"].startswith("^K")


@pytest.mark.parametrize(
    "pattern,expected",
    [
        ("^[a-z]+\\.com$", "^[a-z]+[.]com$"),
        ("^\\d{3}-\\d{4}$", "^[0-9]{3}-[0-9]{4}$"),
        ("[a-z]+", None),  # not anchored
        ("^(?=a)b$", None),  # lookahead
        ("^\\bword$", None),  # an escape llama.cpp does not know
    ],
)
def test_sanitize_pattern(pattern, expected):
    assert sanitize_pattern(pattern) == expected


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "integer", "minimum": 30000, "maximum": 250000},
        {"type": "integer", "minimum": 1, "maximum": 5000},
        {"type": "number", "minimum": 0.5, "maximum": 2000},
        {"type": "number", "minimum": -5000, "maximum": 5000},
        {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        {"type": "integer", "minimum": 7, "maximum": 7},
    ],
)
def test_wide_numeric_ranges_become_round_values_inside_them(spec):
    lowered = lower_schema({"type": "object", "properties": {"x": spec}})["properties"]["x"]
    original = check_schema({"type": "object", "properties": {"x": spec}, "required": ["x"]})
    assert 1 <= len(lowered["enum"]) <= 401
    assert all(original.is_valid({"x": v}) for v in lowered["enum"])
