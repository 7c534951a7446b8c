"""The engine against a real HTTP server on 127.0.0.1, with faults injected."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from synth_tui.core.backends.base import GenerationParams
from synth_tui.core.engine import Run
from synth_tui.core.events import (
    EventLog, Notice, RateLimited, RecordRejected, RecordsAccepted, RetryScheduled, RunFailed, RunFinished,
    RunStarted,
)
from synth_tui.core.schema import canonical_json, check_schema
from synth_tui.core.store import Store

from .conftest import PERSON, fast_config, free_port, ollama_backend, openai_backend
from .fake_llm import Fault, FakeLLM, ModelBehaviour


async def execute(schema, config, backend, **kw):
    """One run to its end, kept in the history of the test's data directory."""
    with Store() as store:
        return await Run(schema, config, backend, store=store, **kw).execute()


async def run_openai(llm: FakeLLM, schema, count: int, **kw):
    backend_kw = kw.pop("backend_kw", {})
    backend = openai_backend(llm, **backend_kw)
    log = EventLog()
    try:
        result = await execute(schema, fast_config(count, **kw), backend, on_event=log)
    finally:
        await backend.aclose()
    return result, log


def assert_all_valid_unique(result, schema, count):
    assert result.accepted == count == len(result.records)
    assert all(schema.is_valid(r) for r in result.records)
    assert len({canonical_json(r) for r in result.records}) == count


async def test_exactly_n_valid_records_in_batches(llm, person_schema):
    result, log = await run_openai(llm, person_schema, 23, batch_size=5, concurrency=3)
    assert result.success and result.status == "done"
    assert_all_valid_unique(result, person_schema, 23)
    assert result.requests == 5  # 5+5+5+5+3
    assert result.prompt_tokens == 500 and result.completion_tokens > 0
    started, finished = log.of(RunStarted), log.of(RunFinished)
    assert len(started) == 1 and len(finished) == 1
    assert finished[0].progress.done == 23 and finished[0].progress.total == 23
    assert sum(len(e.records) for e in log.of(RecordsAccepted)) == 23
    # every request carried the schema as structured output and variation hints
    body = llm.requests[0]
    assert body["response_format"]["type"] == "json_schema"
    assert "Make each record distinct" in body["messages"][-1]["content"]


async def test_invalid_records_are_rejected_counted_and_asked_for_again(llm, person_schema):
    llm.faults.extend([Fault(invalid=3), Fault(invalid=1)])
    result, log = await run_openai(llm, person_schema, 10, batch_size=10, concurrency=1)
    assert_all_valid_unique(result, person_schema, 10)
    assert result.rejected == 4
    rejections = log.of(RecordRejected)
    assert len(rejections) == 4
    assert all("is a required property" in r.reason for r in rejections)
    assert rejections[0].raw.startswith("{")
    assert len(result.rejections) == 4
    # the follow-up requests asked only for the missing records, with the reasons fed back
    second = llm.requests[1]["messages"][-1]["content"]
    assert "Generate 3 different records" in second
    assert "rejected for these reasons" in second and "is a required property" in second


async def test_fenced_wrapped_and_bare_answers_are_parsed(llm):
    schema = check_schema({"name": {"type": "string"}, "n": {"type": "integer"}})
    llm.faults.extend([
        Fault(content='Sure! Here you go:\n```json\n{"records": [{"name": "a", "n": 1}, {"name": "b", "n": 2}]}\n```'),
        Fault(content='[{"name": "c", "n": 3}, {"name": "d", "n": 4}]'),
        Fault(content='{"name": "e", "n": 5}\n{"name": "f", "n": 6}'),
    ])
    result, _ = await run_openai(llm, schema, 6, batch_size=2, concurrency=1)
    assert sorted(r["name"] for r in result.records) == list("abcdef")
    assert result.rejected == 0


async def test_malformed_output_is_rejected_with_the_text_kept(llm, person_schema):
    llm.faults.append(Fault(content="I cannot produce JSON today"))
    result, log = await run_openai(llm, person_schema, 3, batch_size=3, concurrency=1)
    assert_all_valid_unique(result, person_schema, 3)
    assert result.rejected == 1
    (rej,) = log.of(RecordRejected)
    assert "no JSON found" in rej.reason and rej.raw == "I cannot produce JSON today"


async def test_truncated_batch_keeps_its_whole_records_and_asks_in_halves(llm):
    schema = check_schema({"name": {"type": "string"}, "n": {"type": "integer"}})
    cut = '{"records": [{"name": "a", "n": 1}, {"name": "b", "n": 2}, {"name": "c", "n"'
    llm.faults.append(Fault(content=cut, finish_reason="length"))
    result, _ = await run_openai(llm, schema, 8, batch_size=8, concurrency=1)
    assert result.accepted == 8 and [r["name"] for r in result.records[:2]] == ["a", "b"]
    asked = [int(re.search(r"Generate (\d+)", b["messages"][-1]["content"]).group(1)) for b in llm.requests]
    assert asked == [8, 3, 3]  # 6 missing after the cut-off answer: two requests of 3


async def test_truncated_answer_names_max_tokens(llm, person_schema):
    llm.faults.append(Fault(content='{"records": [{"name": "x", "a', finish_reason="length"))
    result, log = await run_openai(llm, person_schema, 2, batch_size=2, concurrency=1)
    assert result.accepted == 2
    assert "max_tokens" in log.of(RecordRejected)[0].reason


async def test_duplicates_are_dropped_and_replaced(llm, person_schema):
    llm.faults.extend([Fault(), Fault(duplicate=True), Fault(duplicate=True)])
    result, log = await run_openai(llm, person_schema, 6, batch_size=2, concurrency=1)
    assert_all_valid_unique(result, person_schema, 6)
    assert result.duplicates == 2 and result.rejected == 0
    assert sum(1 for e in log.of(RecordRejected) if e.duplicate) == 2


async def test_429_honours_retry_after_and_lowers_concurrency(llm, person_schema):
    llm.faults.extend([Fault(status=429, headers={"Retry-After": "0.3"}), Fault(status=429, headers={"retry-after-ms": "100"})])
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result, log = await run_openai(llm, person_schema, 8, batch_size=1, concurrency=4)
    assert_all_valid_unique(result, person_schema, 8)
    assert result.retries == 2
    limited = log.of(RateLimited)
    assert [round(e.delay, 2) for e in limited] == [0.3, 0.1]
    assert limited[0].concurrency == 2  # halved from 4
    assert loop.time() - t0 >= 0.3
    assert result.requests == 10  # 8 + 2 retried


async def test_server_errors_are_retried_with_backoff(llm, person_schema):
    llm.faults.extend([Fault(status=500), Fault(status=503), Fault(status=502)])
    result, log = await run_openai(llm, person_schema, 4, batch_size=4, concurrency=1)
    assert_all_valid_unique(result, person_schema, 4)
    assert result.retries == 3
    retries = log.of(RetryScheduled)
    assert [e.attempt for e in retries] == [1, 2, 3]
    assert "HTTP 500" in retries[0].reason and "HTTP 503" in retries[1].reason


async def test_slow_answer_past_the_timeout_is_retried(llm, person_schema):
    llm.faults.append(Fault(delay=1.5))
    result, log = await run_openai(llm, person_schema, 2, batch_size=2, concurrency=1, backend_kw={"read_timeout": 0.5})
    assert result.accepted == 2 and result.retries == 1
    assert "within 0.5 s" in log.of(RetryScheduled)[0].reason


async def test_body_that_is_not_json_is_retried(llm, person_schema):
    llm.faults.append(Fault(body="<html>bad gateway</html>"))
    result, _ = await run_openai(llm, person_schema, 2, batch_size=2, concurrency=1)
    assert result.accepted == 2 and result.retries == 1


async def test_retries_are_bounded(llm, person_schema):
    llm.always = Fault(status=500)
    result, log = await run_openai(llm, person_schema, 2, batch_size=2, concurrency=1, max_retries=2)
    assert result.status == "failed" and result.accepted == 0
    assert "giving up after 3 tries" in result.error and "HTTP 500" in result.error
    assert llm.count_requests == 3
    assert log.of(RunFailed)[0].message == result.error


async def test_401_stops_at_once_with_a_message(llm, person_schema):
    llm.api_key = "right-key"
    result, _ = await run_openai(llm, person_schema, 50, batch_size=5, concurrency=2,
                                 backend_kw={"api_key": "sk-wrong-key-123456"})
    assert result.status == "failed"
    assert "refused the API key (HTTP 401" in result.error and "OPENAI_API_KEY" in result.error
    assert "sk-wrong-key-123456" not in result.error  # the server echoed it; we do not
    assert llm.count_requests <= 2  # no hammering


async def test_unknown_model_stops_with_the_model_named(llm, person_schema):
    result, _ = await run_openai(llm, person_schema, 5, backend_kw={"model": "no-such-model"})
    assert result.status == "failed"
    assert "HTTP 404" in result.error and "'no-such-model'" in result.error
    assert llm.count_requests <= 4


async def test_refused_connection_stops_quickly(person_schema):
    from synth_tui.core.backends.openai import OpenAIBackend

    backend = OpenAIBackend(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await execute(person_schema, fast_config(5), backend)
    await backend.aclose()
    assert result.status == "failed"
    assert "cannot connect" in result.error and "base URL" in result.error
    assert loop.time() - t0 < 5


async def test_most_requests_failing_stops_the_run(llm, person_schema):
    # half the answers fail: retries mend each request, but the run is sick
    llm.faults.extend([Fault(status=500) if i % 5 else Fault() for i in range(200)])
    result, _ = await run_openai(llm, person_schema, 40, batch_size=1, concurrency=1, max_retries=10)
    assert result.status == "failed" and "most requests are failing" in result.error
    assert 0 < result.accepted < 40


async def test_structured_output_rejected_falls_back_to_prompt_once(llm, person_schema):
    llm.reject_structured = True
    result, log = await run_openai(llm, person_schema, 6, batch_size=2, concurrency=1)
    assert_all_valid_unique(result, person_schema, 6)
    notices = log.of(Notice)
    assert len(notices) == 1 and "does not accept response_format" in notices[0].message
    assert "response_format" not in llm.requests[-1]
    assert "JSON Schema of one record" in llm.requests[-1]["messages"][-1]["content"]


async def test_server_that_takes_only_json_object_gets_it(llm, person_schema):
    llm.json_object_only = True  # llama-cpp-python's server: json_schema refused with HTTP 500
    result, log = await run_openai(llm, person_schema, 6, batch_size=2, concurrency=1)
    assert_all_valid_unique(result, person_schema, 6)
    assert result.retries == 0  # a refusal of the parameter is not retried as a server error
    (notice,) = log.of(Notice)
    assert "does not accept response_format json_schema" in notice.message and "using json_object" in notice.message
    assert llm.requests[-1]["response_format"]["type"] == "json_object"
    assert llm.requests[-1]["response_format"]["schema"]["properties"]["records"]["minItems"] == 2


async def test_model_that_keeps_failing_gives_up_with_reasons(llm):
    llm.models["bad"] = ModelBehaviour(invalid_share=1.0)
    schema = check_schema(PERSON)
    result, _ = await run_openai(llm, schema, 4, batch_size=2, concurrency=1, max_attempts=2,
                                 backend_kw={"model": "bad"})
    assert result.status == "failed" and result.accepted == 0
    assert "gave up after 4 requests" in result.error and "is a required property" in result.error
    assert result.rejected == 8


async def test_seed_gives_the_same_request_seeds_and_hints(llm, person_schema):
    params = GenerationParams(temperature=0.7, top_p=0.9, max_tokens=500, seed=42)
    await run_openai(llm, person_schema, 4, batch_size=2, concurrency=1, params=params)
    first = [(b["seed"], b["messages"][-1]["content"]) for b in llm.requests]
    llm.requests.clear()
    await run_openai(llm, person_schema, 4, batch_size=2, concurrency=1, params=params)
    second = [(b["seed"], b["messages"][-1]["content"]) for b in llm.requests]
    assert [s for s, _ in first] == [42, 43]
    assert [h.split("Do not reuse")[0] for _, h in first] == [h.split("Do not reuse")[0] for _, h in second]
    body = llm.requests[0]
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["max_tokens"] == 500


async def test_cancel_keeps_accepted_records(llm, person_schema):
    llm.delay = 0.05
    backend = openai_backend(llm)
    log = EventLog()
    run = Run(person_schema, fast_config(200, batch_size=2, concurrency=2), backend, on_event=log)

    def on_event(event):
        log(event)
        if isinstance(event, RecordsAccepted) and event.progress.done >= 6:
            run.cancel()

    run.on_event = on_event
    result = await run.execute()
    await backend.aclose()
    assert result.status == "cancelled"
    assert 6 <= result.accepted < 200
    assert all(person_schema.is_valid(r) for r in result.records)
    assert log.of(RunFinished)[0].status == "cancelled"


async def test_concurrency_is_used(llm, person_schema):
    llm.delay = 0.2
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result, _ = await run_openai(llm, person_schema, 16, batch_size=1, concurrency=16)
    assert result.accepted == 16
    assert loop.time() - t0 < 1.5  # 16 x 0.2 s serially would be 3.2 s


async def test_ollama_native_protocol(llm, person_schema):
    backend = ollama_backend(llm)
    params = GenerationParams(temperature=0.5, seed=7, max_tokens=300)
    result = await execute(person_schema, fast_config(6, batch_size=3, params=params), backend)
    await backend.aclose()
    assert_all_valid_unique(result, person_schema, 6)
    body = llm.requests[0]
    assert body["stream"] is False and body["format"]["properties"]["records"]["minItems"] == 3
    assert body["options"] == {"temperature": 0.5, "seed": 7, "num_predict": 300}
    assert result.completion_tokens == 120


async def test_ollama_busy_and_unknown_model(llm, person_schema):
    llm.faults.append(Fault(status=503))
    backend = ollama_backend(llm)
    log = EventLog()
    result = await execute(person_schema, fast_config(3, batch_size=3, concurrency=4), backend, on_event=log)
    assert result.accepted == 3 and result.retries == 1
    assert log.of(RateLimited)[0].concurrency == 2  # a full queue means fewer requests at once
    await backend.aclose()
    backend = ollama_backend(llm, model="llama-nope")
    result = await execute(person_schema, fast_config(3), backend)
    await backend.aclose()
    assert result.status == "failed" and "not found" in result.error and "llama-nope" in result.error


def test_missing_key_for_hosted_openai_is_a_clear_error():
    from synth_tui.core.backends.openai import HuggingFaceBackend, OpenAIBackend
    from synth_tui.core.errors import BackendError

    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        OpenAIBackend()
    with pytest.raises(BackendError, match="HF_TOKEN"):
        HuggingFaceBackend()


async def test_hf_router_sends_the_token(llm, person_schema, monkeypatch):
    from synth_tui.core.backends.openai import HuggingFaceBackend

    llm.api_key = "hf_testtoken123456"
    monkeypatch.setenv("HF_TOKEN", "hf_testtoken123456")
    backend = HuggingFaceBackend(base_url=llm.url + "/v1", model="test-model")
    result = await execute(person_schema, fast_config(2, batch_size=2), backend)
    await backend.aclose()
    assert result.accepted == 2


async def test_nested_refs_and_formats_are_enforced(llm):
    schema = check_schema({
        "type": "object",
        "$defs": {"item": {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
                           "required": ["sku", "qty"]}},
        "properties": {
            "id": {"type": "string", "format": "uuid"}, "when": {"type": "string", "format": "date-time"},
            "site": {"type": "string", "format": "uri"}, "ip": {"type": "string", "format": "ipv4"},
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1},
        },
        "required": ["id", "when", "site", "ip", "items"],
    })
    bad = {"id": "not-a-uuid", "when": "yesterday", "site": "no uri", "ip": "999.1.1.1", "items": [{"sku": "a", "qty": 1}]}
    llm.faults.append(Fault(content=json.dumps({"records": [bad]})))
    result, log = await run_openai(llm, schema, 3, batch_size=1, concurrency=1)
    assert result.accepted == 3 and result.rejected == 1
    reason = log.of(RecordRejected)[0].reason
    assert "is not a 'uuid'" in reason and "is not a 'date-time'" in reason and "is not a 'uri'" in reason


async def test_enum_values_are_spread_evenly_across_the_run(llm):
    from synth_tui.core.report import build_report

    schema = check_schema({"name": {"type": "string"},
                           "tier": {"type": "string", "enum": ["bronze", "silver", "gold"]},
                           "size": {"type": "integer", "enum": [1, 2, 3, 4, 5]}})
    balanced, _ = await run_openai(llm, schema, 30, batch_size=7, concurrency=1)
    assert [n for _, n, _, _ in build_report(balanced.records, schema.schema).fields[1].coverage] == [10, 10, 10]
    sizes = build_report(balanced.records, schema.schema).fields[2]
    assert [n for _, n, _, _ in sizes.coverage] == [6, 6, 6, 6, 6] and sizes.evenness == pytest.approx(1.0)
    assert 'tier="' in llm.requests[0]["messages"][-1]["content"]
    llm.requests.clear()
    unbalanced, _ = await run_openai(llm, schema, 30, batch_size=7, concurrency=1, balance_enums=False)
    assert 'tier="' not in llm.requests[0]["messages"][-1]["content"]
    counts = [n for _, n, _, _ in build_report(unbalanced.records, schema.schema).fields[1].coverage]
    assert sum(counts) == 30 and counts != [10, 10, 10]  # the random "model" does not spread them


async def test_a_burst_of_rate_limits_slows_the_run_but_does_not_stop_it(llm, person_schema):
    llm.faults.extend([Fault(status=429, headers={"retry-after-ms": "10"}) for _ in range(30)])
    result, log = await run_openai(llm, person_schema, 10, batch_size=1, concurrency=8, max_retries=10)
    assert result.status == "done" and result.accepted == 10
    assert len(log.of(RateLimited)) == 30 and result.retries == 30
    assert min(e.concurrency for e in log.of(RateLimited)) < 8


# -- a backend closes itself; one comparison loop; the resume path -------------------------------
async def test_a_backend_is_an_async_context_manager_that_closes_its_client(llm, person_schema):
    async with openai_backend(llm) as backend:
        result = await Run(person_schema, fast_config(2, batch_size=2), backend).execute()
        assert not backend._client.is_closed
    assert result.accepted == 2 and backend._client.is_closed
    with pytest.raises(RuntimeError):
        async with openai_backend(llm) as backend:
            raise RuntimeError("whatever happens inside")
    assert backend._client.is_closed


def two_models(llm):
    from synth_tui.core.backends import BackendSpec

    return [BackendSpec("openai", "test-model", llm.url + "/v1"), BackendSpec("openai", "second", llm.url + "/v1")]


def backend_of(spec):
    from synth_tui.core.backends.openai import OpenAIBackend

    return OpenAIBackend(base_url=spec.base_url, model=spec.model)


async def test_comparison_runs_each_model_on_its_own_copy_with_one_seed(llm, person_schema, tmp_path):
    from synth_tui.core.compare import Comparison

    llm.models["second"] = llm.models["test-model"]
    config = fast_config(4, batch_size=2, concurrency=1)
    begun, ended, made = [], [], []

    def make(spec):
        made.append(backend_of(spec))
        return made[-1]

    with Store(tmp_path / "data") as store:
        comparison = Comparison(person_schema, config, two_models(llm), make, store,
                                on_begin=lambda spec, run: begun.append((spec.model, run.config)),
                                on_end=ended.append)
        results = await comparison.execute()
        assert [store.get_run(r.run_id)["backend"]["model"] for r in results] == ["test-model", "second"]
    assert [r.accepted for r in results] == [4, 4] and ended == results
    assert config.params.seed is None  # the caller's config is left alone
    seeds = [b["seed"] for b in llm.requests]
    assert seeds[:2] == seeds[2:] == [comparison.seed, comparison.seed + 1]  # the same requests for both
    assert begun[0][1] is not begun[1][1] and begun[0][1] is not config
    assert all(b._client.is_closed for b in made)


async def test_cancelling_a_comparison_keeps_the_current_run_and_starts_no_other(llm, person_schema, tmp_path):
    from synth_tui.core.compare import Comparison

    llm.delay = 0.02
    made = []

    def make(spec):
        made.append(backend_of(spec))
        return made[-1]

    def on_event(event):
        if isinstance(event, RecordsAccepted) and event.progress.done >= 2:
            comparison.cancel()

    with Store(tmp_path / "data") as store:
        comparison = Comparison(person_schema, fast_config(50, batch_size=1, concurrency=1), two_models(llm),
                                make, store, on_event=on_event)
        results = await comparison.execute()
    assert [r.status for r in results] == ["cancelled"] and 2 <= results[0].accepted < 50
    assert all(b._client.is_closed for b in made) and len(made) == 2  # the unused one too


async def test_a_comparison_with_a_missing_key_stops_before_any_request(llm, person_schema, tmp_path):
    from synth_tui.core.backends import BackendSpec
    from synth_tui.core.backends import create_backend
    from synth_tui.core.compare import Comparison
    from synth_tui.core.errors import BackendError

    made = []

    def make(spec):
        made.append(create_backend(spec))
        return made[-1]

    specs = [BackendSpec("openai", "test-model", llm.url + "/v1"), BackendSpec("hf", "meta/llama")]
    with Store(tmp_path / "data") as store, pytest.raises(BackendError, match="HF_TOKEN"):
        await Comparison(person_schema, fast_config(2), specs, make, store).execute()
    assert llm.count_requests == 0 and made[0]._client.is_closed


async def test_a_resumed_run_starts_from_its_history(llm, person_schema, tmp_path):
    from synth_tui.core.engine import ResumePoint

    config = fast_config(6, batch_size=2, concurrency=1, params=GenerationParams(seed=5))
    with Store(tmp_path / "data") as store:
        async with openai_backend(llm) as backend:
            run = Run(person_schema, config, backend, store=store)
            run.on_event = lambda e: run.cancel() if isinstance(e, RecordsAccepted) else None
            first = await run.execute()
        assert first.status == "cancelled" and first.accepted == 2
        point = ResumePoint.load(store, first.run_id)
        assert point.records == first.records and point.counts.requests == first.requests == 1
        assert point.config == config and point.started == store.get_run(first.run_id)["created"]
        llm.requests.clear()
        async with openai_backend(llm) as backend:
            resumed = await Run(point.schema, point.config, backend, store=store, resume=point).execute()
        doc = store.get_run(first.run_id)
    assert resumed.run_id == first.run_id and resumed.status == "done" and resumed.accepted == 6
    assert [b["seed"] for b in llm.requests] == [6, 7]  # the request index goes on
    assert resumed.requests == 3 and doc["counts"]["requests"] == 3 and doc["counts"]["accepted"] == 6


async def test_elapsed_after_a_resume_is_the_runs_whole_generating_time(llm, person_schema, tmp_path):
    """The progress screen, the result and the history give one elapsed time: every
    session's generating time summed, not only the last session's."""
    from synth_tui.core.engine import Run
    from synth_tui.core.store import Store

    from .conftest import fast_config, openai_backend

    llm.delay = 0.02
    store = Store(tmp_path / "d")
    events = []
    first = Run(person_schema, fast_config(40, batch_size=1, concurrency=1), openai_backend(llm), store=store,
                on_event=lambda e: (events.append(e), len(events) == 10 and first.cancel()))
    async with first.backend:
        done = await first.execute()
    assert done.status == "cancelled"
    before = store.get_run(done.run_id)["elapsed"]
    progress = []
    async with openai_backend(llm) as backend:
        resumed = await Run.resume(store, done.run_id, backend, on_event=lambda e: progress.append(e.progress)).execute()
    assert resumed.status == "done"
    assert resumed.elapsed >= before and progress[-1].elapsed >= before
    assert abs(store.get_run(done.run_id)["elapsed"] - resumed.elapsed) < 0.01
    store.close()
