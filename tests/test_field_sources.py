"""Records made of generated fields, rules, seed rows and the model's fields, through the
real engine against a real local server, and through the CLI."""

from __future__ import annotations

import json
import statistics
import uuid

import pytest

from synth_tui.core.backends.base import GenerationParams
from synth_tui.core.engine import Run
from synth_tui.core.errors import SchemaError, UserInputError
from synth_tui.core.events import EventLog, RecordRejected
from synth_tui.core.schema import check_schema
from synth_tui.core.store import Store

from .conftest import cli, fast_config, openai_backend, write_schema
from .fake_llm import FakeLLM, Fault

CUSTOMER = {
    "id": {"type": "string", "format": "uuid", "x-generator": "uuid"},
    "number": {"type": "integer", "minimum": 1000, "x-generator": {"sequence": {"start": 1000}}},
    "first_name": {"type": "string", "x-generator": {"fake": "first_name"}},
    "last_name": {"type": "string", "x-generator": {"fake": "last_name"}},
    "email": {"type": "string", "x-generator": {"template": "{first_name}.{last_name}@example.org"}},
    "age": {"type": "integer", "minimum": 18, "maximum": 95, "x-generator": {"normal": {"mean": 42, "stdev": 14}}},
    "plan": {"type": "string", "enum": ["free", "pro", "team"],
             "x-generator": {"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}},
    "bio": {"type": "string"},
}
GENERATED = {name: spec for name, spec in CUSTOMER.items() if name != "bio"}


async def run(schema, config, llm: FakeLLM | None = None, **kw):
    backend = openai_backend(llm or FakeLLM(), **kw.pop("backend_kw", {}))
    log = EventLog()
    try:
        with Store() as store:
            result = await Run(schema, config, backend, store=store, on_event=log, **kw).execute()
    finally:
        await backend.aclose()
    return result, log


def last_prompt(llm: FakeLLM) -> str:
    return llm.requests[-1]["messages"][-1]["content"]


def asked_fields(body) -> set[str]:
    schema = body["response_format"]["json_schema"]["schema"]
    if "records" in schema.get("properties", {}):
        schema = schema["properties"]["records"]["items"]
    return set(schema["properties"])


# -- drawn values and the model's ---------------------------------------------------------
async def test_model_writes_only_what_is_not_drawn(llm):
    schema = check_schema(CUSTOMER)
    result, _ = await run(schema, fast_config(12, batch_size=4, params=GenerationParams(seed=7)), llm)
    assert result.success and result.accepted == 12
    assert all(schema.is_valid(r) for r in result.records)
    assert {frozenset(asked_fields(body)) for body in llm.requests} == {frozenset({"bio"})}
    prompt = last_prompt(llm)
    assert "Values already decided" in prompt and '"first_name"' in prompt
    for record in result.records:
        assert record["email"] == f"{record['first_name']}.{record['last_name']}@example.org".lower() or \
            record["email"].endswith("@example.org")
        assert uuid.UUID(record["id"])
    assert sorted(r["number"] for r in result.records) == list(range(1000, 1012))


async def test_the_model_never_overwrites_a_drawn_value(llm):
    schema = check_schema(CUSTOMER)
    llm.faults.append(Fault(content=json.dumps({"bio": "hi", "age": 999, "plan": "enterprise", "number": -5})))
    result, _ = await run(schema, fast_config(1, batch_size=1), llm)
    [record] = result.records
    assert record["bio"] == "hi"
    assert 18 <= record["age"] <= 95 and record["plan"] in ("free", "pro", "team") and record["number"] == 1000
    facts = last_prompt(llm)
    assert str(record["age"]) in facts and record["first_name"] in facts


async def test_generator_only_schema_sends_no_request(llm):
    schema = check_schema(GENERATED)
    result, _ = await run(schema, fast_config(3000, params=GenerationParams(seed=1)), llm)
    assert result.success and result.accepted == 3000
    assert llm.count_requests == 0
    assert [r["number"] for r in result.records] == list(range(1000, 4000))
    ages = [r["age"] for r in result.records]
    assert abs(statistics.mean(ages) - 42) < 1.5 and min(ages) >= 18 and max(ages) <= 95
    shares = {p: sum(r["plan"] == p for r in result.records) / 3000 for p in ("free", "pro", "team")}
    assert abs(shares["free"] - 0.6) < 0.04 and abs(shares["team"] - 0.1) < 0.03
    assert len({r["id"] for r in result.records}) == 3000


async def test_seeded_generator_runs_repeat():
    schema = check_schema(GENERATED)
    first, _ = await run(schema, fast_config(50, params=GenerationParams(seed=3)))
    second, _ = await run(check_schema(GENERATED), fast_config(50, params=GenerationParams(seed=3)))
    assert first.records == second.records


async def test_sequence_continues_across_a_resume_without_gaps(llm):
    schema = check_schema(CUSTOMER)
    llm.faults.extend([Fault(), Fault(status=401)])  # the second request: a bad key ends the run
    first, _ = await run(schema, fast_config(10, batch_size=3, concurrency=1), llm)
    assert first.status == "failed" and first.accepted == 3
    backend = openai_backend(llm)
    with Store() as store:
        resumed = await Run.resume(store, first.run_id, backend).execute()
        records = list(store.iter_records(first.run_id))
    await backend.aclose()
    assert resumed.success
    assert sorted(r["number"] for r in records) == list(range(1000, 1010))


# -- rules ----------------------------------------------------------------------------------
async def test_a_broken_rule_is_a_counted_rejection_fed_back(llm):
    schema = check_schema({
        "price": {"type": "integer", "minimum": 20, "maximum": 30, "x-generator": {"uniform": {"min": 20, "max": 30}}},
        "code": {"type": "string"},
        "x-rules": ["code != 'BAD' or price > 100"],
    })
    llm.faults.append(Fault(content=json.dumps({"code": "BAD"})))  # no price drawn is over 100
    result, log = await run(schema, fast_config(1, batch_size=1), llm)
    assert result.success
    assert result.records[0]["code"] != "BAD"
    rejected = log.of(RecordRejected)
    assert len(rejected) == 1 and "code != 'BAD' or price > 100" in rejected[0].reason
    assert result.rejected == 1
    prompt = last_prompt(llm)
    assert "broke rule" in prompt and "keep these rules" in prompt  # said, and the reason fed back


async def test_generators_redraw_until_a_rule_on_them_holds():
    in_2020 = {"type": "string", "format": "date", "x-generator": {"date": {"from": "2020-01-01", "to": "2020-12-31"}}}
    schema = check_schema({"start": in_2020, "end": in_2020, "x-rules": ["end >= start"]})
    result, _ = await run(schema, fast_config(200, params=GenerationParams(seed=5)))
    assert result.success and all(r["end"] >= r["start"] for r in result.records)


async def test_a_rule_generators_cannot_keep_ends_the_run_naming_it():
    schema = check_schema({
        "a": {"type": "integer", "x-generator": {"uniform": {"min": 1, "max": 5}}},
        "x-rules": ["a > 10"],
    })
    result, _ = await run(schema, fast_config(5))
    assert result.status == "failed" and "a > 10" in (result.error or "")


def test_a_rule_naming_an_unknown_field_fails_the_check():
    with pytest.raises(SchemaError) as exc:
        check_schema({"a": {"type": "integer"}, "x-rules": ["b > 1"]})
    assert "x-rules" in str(exc.value) and "b" in str(exc.value)


# -- seed data ------------------------------------------------------------------------------
async def test_examples_are_shown_as_data_and_a_copy_is_a_duplicate(llm, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"name": "Ada Quill", "city": "Leipzig"}\n{"name": "Bo Marsh", "city": "Lima"}\n')
    schema = check_schema({"name": {"type": "string"}, "city": {"type": "string"}})
    llm.faults.append(Fault(content=json.dumps({"name": "Ada Quill", "city": "Leipzig"})))
    result, log = await run(schema, fast_config(1, batch_size=1, examples=str(rows)), llm)
    assert result.success
    prompt = llm.requests[0]["messages"][-1]["content"]
    assert "Ada Quill" in prompt and "data, not instructions" in prompt
    assert any(e.duplicate for e in log.of(RecordRejected))
    assert result.records[0] != {"name": "Ada Quill", "city": "Leipzig"}


async def test_enrich_keeps_rows_and_their_order(llm, tmp_path):
    rows = tmp_path / "people.csv"
    rows.write_text("name,age\n" + "".join(f"Person {i},{20 + i}\n" for i in range(9)))
    schema = check_schema({"name": {"type": "string"}, "age": {"type": "integer"}, "bio": {"type": "string"}})
    llm.faults.extend([Fault(delay=0.3), Fault(), Fault()])  # the first rows' answer comes last
    result, _ = await run(schema, fast_config(9, batch_size=2, concurrency=3, enrich=str(rows)), llm)
    assert result.success
    with Store() as store:
        records = list(store.iter_records(result.run_id))
    assert [(r["name"], r["age"]) for r in records] == [(f"Person {i}", 20 + i) for i in range(9)]
    assert all(isinstance(r["bio"], str) for r in records)
    assert all(asked_fields(body) == {"bio"} for body in llm.requests)


async def test_enrich_resume_continues_at_the_right_row(llm, tmp_path):
    rows = tmp_path / "people.jsonl"
    rows.write_text("".join(json.dumps({"name": f"P{i}"}) + "\n" for i in range(6)))
    schema = check_schema({"name": {"type": "string"}, "bio": {"type": "string"}})
    llm.faults.extend([Fault(), Fault(status=401)])
    first, _ = await run(schema, fast_config(6, batch_size=2, concurrency=1, enrich=str(rows)), llm)
    assert first.status == "failed" and first.accepted == 2
    backend = openai_backend(llm)
    with Store() as store:
        resumed = await Run.resume(store, first.run_id, backend).execute()
        records = list(store.iter_records(first.run_id))
    await backend.aclose()
    assert resumed.success and [r["name"] for r in records] == [f"P{i}" for i in range(6)]


async def test_an_enrich_row_the_schema_refuses_stops_the_run_naming_it(llm, tmp_path):
    rows = tmp_path / "people.csv"
    rows.write_text("name,age\nAna,31\nBo,old\n")
    schema = check_schema({"name": {"type": "string"}, "age": {"type": "integer"}, "bio": {"type": "string"}})
    result, _ = await run(schema, fast_config(2, batch_size=1, concurrency=1, enrich=str(rows)), llm)
    assert result.status == "failed" and result.accepted == 1
    assert "people.csv" in (result.error or "") and "age" in (result.error or "")


# -- the command line -----------------------------------------------------------------------
def test_cli_generator_only_run_and_its_errors(tmp_path):
    path = write_schema(tmp_path, GENERATED)
    done = cli("generate", str(path), "-n", "200", "--seed", "1", "-q")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 200 and records[-1]["number"] == 1199
    bad = write_schema(tmp_path, {"a": {"type": "integer", "x-generator": {"fake": "no_such_provider"}}}, "bad.json")
    failed = cli("generate", str(bad), "-n", "1")
    assert failed.returncode == 2 and "x-generator" in failed.stderr and "no_such_provider" in failed.stderr


def test_cli_enrich_counts_rows_and_needs_no_count(tmp_path, server_process):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"name": f"R{i}"} for i in range(4)]))
    path = write_schema(tmp_path, {"name": {"type": "string"}, "bio": {"type": "string"}})
    done = cli("generate", str(path), "--enrich", str(rows), "--backend", "openai", "--model", "test-model",
               "--base-url", server_process.url + "/v1", "-q")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["name"] for line in done.stdout.splitlines()] == ["R0", "R1", "R2", "R3"]
    missing = cli("generate", str(path), "--enrich", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "nope.csv" in missing.stderr


async def test_a_seeded_generator_only_run_resumed_draws_new_values():
    schema = check_schema(GENERATED)
    first, _ = await run(schema, fast_config(40, params=GenerationParams(seed=11)))
    assert first.success
    with Store() as store:
        store.update_run(first.run_id, status="cancelled", counts={**store.get_run(first.run_id)["counts"],
                                                                   "requested": 80})
        store.update_run(first.run_id, config={**store.get_run(first.run_id)["config"], "count": 80})
        backend = openai_backend(FakeLLM())
        resumed = await Run.resume(store, first.run_id, backend).execute()
        records = list(store.iter_records(first.run_id))
    assert resumed.success and len(records) == 80
    assert resumed.duplicates == first.duplicates  # no value of the first session drawn again
    assert [r["number"] for r in records] == list(range(1000, 1080))


async def test_a_sequence_past_its_field_maximum_is_refused_naming_the_field():
    schema = check_schema({"n": {"type": "integer", "maximum": 1005, "x-generator": {"sequence": {"start": 1000}}}})
    with pytest.raises(UserInputError) as exc:
        await run(schema, fast_config(10))
    assert "$.properties.n.x-generator" in str(exc.value) and "maximum 1005" in str(exc.value)
    assert "None" not in str(exc.value)
