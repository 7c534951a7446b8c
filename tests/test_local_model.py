"""The embedded model, for real: llama.cpp with the shipped SmolLM2 GGUF, no mocks."""

from __future__ import annotations

import re

import pytest

from synth_tui.core.backends.base import GenerationParams
from synth_tui.core.backends.grammar import lower_schema, sanitize_pattern
from synth_tui.core.backends.local import LocalBackend, resolve_model, with_first_letter
from synth_tui.core.engine import RunConfig, generate
from synth_tui.core.errors import BackendError
from synth_tui.core.events import EventLog, RecordsAccepted, RunFinished
from synth_tui.core.schema import canonical_json, check_schema
from synth_tui.core.store import Store

pytestmark = pytest.mark.local_model

NESTED = check_schema({
    "name": {"type": "string"},
    "age": {"type": "integer", "minimum": 18, "maximum": 90},
    "email": {"type": "string", "format": "email"},
    "plan": {"type": "string", "enum": ["free", "pro", "team"]},
    "address": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^\\d{5}$"}},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
})


async def test_shipped_model_generates_valid_varied_records(tmp_path):
    store = Store(tmp_path)
    log = EventLog()
    backend = LocalBackend()
    result = await generate(NESTED, RunConfig(count=4, params=GenerationParams(seed=3)), backend,
                            store=store, on_event=log)
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


async def test_grammar_that_crashes_llama_cpp_is_contained():
    schema = check_schema({"site": {"type": "string", "pattern": "^[a-z]+\\.com$"}})
    raw = LocalBackend(lower=False)  # sends the pattern as written: llama.cpp segfaults on it
    result = await generate(schema, RunConfig(count=1), raw)
    assert result.status == "failed"
    assert "local model process stopped" in result.error and "signal 11" in result.error
    assert "grammar" in result.error
    # this process survived, and the next run starts a fresh model process
    result = await generate(schema, RunConfig(count=2), LocalBackend())
    assert result.success, result.error
    assert all(r["site"].endswith(".com") for r in result.records)


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
    assert NESTED.schema["properties"]["age"] == {"type": "integer", "minimum": 18, "maximum": 90}  # untouched
    email = check_schema({"e": {"type": "string", "format": "email"}})
    assert email.is_valid({"e": "abc.de@mail.com"})
    lettered = with_first_letter(lowered, "name", "K")
    assert lettered["properties"]["name"]["pattern"].startswith("^K")


@pytest.mark.parametrize("pattern,expected", [
    ("^[a-z]+\\.com$", "^[a-z]+[.]com$"),
    ("^\\d{3}-\\d{4}$", "^[0-9]{3}-[0-9]{4}$"),
    ("[a-z]+", None),  # not anchored
    ("^(?=a)b$", None),  # lookahead
    ("^\\bword$", None),  # an escape llama.cpp does not know
])
def test_sanitize_pattern(pattern, expected):
    assert sanitize_pattern(pattern) == expected


@pytest.mark.parametrize("spec", [
    {"type": "integer", "minimum": 30000, "maximum": 250000},
    {"type": "integer", "minimum": 1, "maximum": 5000},
    {"type": "number", "minimum": 0.5, "maximum": 2000},
    {"type": "number", "minimum": -5000, "maximum": 5000},
    {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    {"type": "integer", "minimum": 7, "maximum": 7},
])
def test_wide_numeric_ranges_become_round_values_inside_them(spec):
    lowered = lower_schema({"type": "object", "properties": {"x": spec}})["properties"]["x"]
    original = check_schema({"type": "object", "properties": {"x": spec}, "required": ["x"]})
    assert 1 <= len(lowered["enum"]) <= 401
    assert all(original.is_valid({"x": v}) for v in lowered["enum"])
