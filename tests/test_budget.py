"""Prices, cost and the budget, against the test server (real HTTP), whose every answer
reports usage: 100 prompt tokens and 20 completion tokens a record asked."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from synth_tui.core.backends.base import Completion, CompletionRequest, GenerationParams
from synth_tui.core.engine import Counts, Run, RunConfig
from synth_tui.core.engine.budget import Budget, completion_cap
from synth_tui.core.errors import UserInputError
from synth_tui.core.events import EventLog, Progress, RequestAnswered, RunFinished
from synth_tui.core.pricing import Price, cost_text, parse_price, price_for, run_cost, usd
from synth_tui.core.store import Store, read_jsonl

from .conftest import PERSON, cli, fast_config, openai_backend, write_schema
from .fake_llm import FakeLLM, Fault, _schema_and_count

PRICE = (1.0, 10.0)  # USD per million tokens: a 10-record answer costs 0.0001 + 0.002


def server_spend(server: FakeLLM, price: tuple[float, float]) -> float:
    """What the server billed, from the requests it answered (all, in these tests)."""
    total = 0.0
    for body in server.requests:
        rf = body.get("response_format") or {}
        structured = rf.get("json_schema", {}).get("schema") if rf.get("type") == "json_schema" else None
        _, count = _schema_and_count(body, structured)
        total += (100 * price[0] + 20 * max(1, count) * price[1]) / 1e6
    return total


async def run_to_end(schema: Any, config: RunConfig, backend: Any, **kw: Any) -> tuple[Any, EventLog]:
    log = EventLog()
    async with backend:
        result = await Run(schema, config, backend, on_event=log, **kw).execute()
    return result, log


# -- cost ------------------------------------------------------------------------------------
async def test_cost_is_the_usage_at_the_price_rejected_answers_and_retries_included(llm, person_schema, tmp_path):
    llm.faults.extend([Fault(invalid=2), Fault(status=500), Fault(duplicate=True), Fault(invalid=1)])
    with Store(tmp_path / "d") as store:
        result, log = await run_to_end(person_schema, fast_config(30, price=(0.15, 0.6)), openai_backend(llm),
                                       store=store)
        doc = store.get_run(result.run_id)
    assert result.status == "done" and result.rejected >= 3 and result.retries >= 1
    answers = log.of(RequestAnswered)
    assert len(answers) == result.requests - result.retries  # every answered request, rejected ones included
    asked = sum(a.records for a in answers)
    assert asked > 30  # the rejected records were asked again, and paid for
    assert result.prompt_tokens == 100 * len(answers) and result.completion_tokens == 20 * asked
    expected = (100 * len(answers) * 0.15 + 20 * asked * 0.6) / 1e6
    assert result.cost_usd == pytest.approx(expected, rel=1e-12)
    assert doc["counts"]["cost_usd"] == pytest.approx(expected, rel=1e-6)
    assert doc["config"]["price"] == [0.15, 0.6]
    assert run_cost(doc) == pytest.approx(expected) and cost_text(doc) == usd(expected)
    costs = [e.progress.cost_usd for e in log.events]
    assert costs == sorted(costs) and costs[-1] == pytest.approx(expected)  # live, and only growing


async def test_without_a_price_the_cost_is_unknown_never_zero(llm, person_schema, tmp_path):
    with Store(tmp_path / "d") as store:
        result, log = await run_to_end(person_schema, fast_config(10), openai_backend(llm), store=store)
        doc = store.get_run(result.run_id)
    assert result.status == "done" and result.prompt_tokens > 0
    assert result.cost_usd is None and doc["counts"]["cost_usd"] is None
    assert all(e.progress.cost_usd is None for e in log.events)
    assert run_cost(doc) is None and cost_text(doc) == "unknown"
    assert cost_text({**doc.to_dict(), "backend": {"backend": "local"}}) == "-"


def test_prices_parse_in_both_forms_and_bad_ones_say_how():
    assert parse_price("0.15,0.6") == (None, Price(0.15, 0.6))
    assert parse_price("gpt-4o-mini=0.15,0.6") == ("gpt-4o-mini", Price(0.15, 0.6))
    assert parse_price("org/model:tag=1,2") == ("org/model:tag", Price(1.0, 2.0))
    for bad in ("0.15", "a,b", "=1,2", "1,2,3", "nan,1", "-1,2", "1e300,1", ""):
        with pytest.raises(UserInputError, match="price"):
            parse_price(bad)
    prices = {"m": (1.0, 2.0), "openai:m": [3, 4], "broken": ["x", 1]}
    assert price_for(prices, "openai", "m") == Price(3.0, 4.0)  # backend:model first
    assert price_for(prices, "ollama", "m") == Price(1.0, 2.0)
    assert price_for(prices, "openai", "broken") is None and price_for(prices, "openai", "other") is None
    assert usd(1234.5) == "$1,234.50" and usd(0.0123) == "$0.0123" and usd(0.00001) == "$0.000010"


# -- the budget ------------------------------------------------------------------------------
@pytest.mark.parametrize("budget, concurrency", [(0.015, 1), (0.0237, 8), (0.05, 4)])
async def test_a_run_never_spends_more_than_its_budget(llm, person_schema, tmp_path, budget, concurrency):
    config = fast_config(500, price=PRICE, budget=budget, concurrency=concurrency)
    with Store(tmp_path / "d") as store:
        result, log = await run_to_end(person_schema, config, openai_backend(llm), store=store)
        doc = store.get_run(result.run_id)
        kept = list(store.iter_records(result.run_id))
    spent = server_spend(llm, PRICE)
    assert result.status == "budget" and doc["status"] == "budget"
    assert 0 < spent <= budget and result.cost_usd == pytest.approx(spent)
    assert 0 < result.accepted < 500 and len(kept) == result.accepted == doc["counts"]["accepted"]
    assert max(e.progress.cost_usd for e in log.events) <= budget
    assert f"of {usd(budget)}" in (result.error or "") and f"{result.accepted}/500 records" in (result.error or "")
    finished = log.of(RunFinished)[-1]
    assert finished.status == "budget"
    # it stopped because the next request, down to one record, could not fit in what was left
    next_cost, left = (float(x) for x in re.findall(r"could cost up to \$([\d.]+), more than the \$([\d.]+) left",
                                                     result.error or "")[0])
    assert left < next_cost < 0.006 and left == pytest.approx(budget - spent, abs=1e-6)


async def test_every_request_sent_under_a_budget_carries_max_tokens(llm, person_schema):
    result, _ = await run_to_end(person_schema, fast_config(100, price=PRICE, budget=1.0), openai_backend(llm))
    assert result.status == "done"
    caps = [body["max_tokens"] for body in llm.requests]
    assert all(cap >= 20 * 10 for cap in caps)  # the server's answers fit under it
    assert caps[0] == completion_cap(10) and caps[-1] < caps[0]  # later caps follow the answers seen


async def test_a_budget_too_small_for_one_record_stops_before_any_request(llm, person_schema, tmp_path):
    with Store(tmp_path / "d") as store:
        result, _ = await run_to_end(person_schema, fast_config(5, price=PRICE, budget=0.001),
                                     openai_backend(llm), store=store)
    assert result.status == "budget" and result.accepted == 0 and llm.count_requests == 0
    assert "the next request could cost up to" in (result.error or "")


async def test_a_budget_too_small_for_a_full_request_asks_for_fewer_records(llm, person_schema):
    # a 10-record request reserves 10 x 1024 completion tokens at first ($0.10); a 1-record one $0.013
    result, _ = await run_to_end(person_schema, fast_config(20, price=PRICE, budget=0.016), openai_backend(llm))
    assert result.accepted >= 1 and server_spend(llm, PRICE) <= 0.016
    assert _schema_and_count(llm.requests[0], None)[1] == 1


async def test_resume_with_a_larger_budget_reaches_n_and_counts_the_whole_runs_spending(llm, person_schema, tmp_path):
    with Store(tmp_path / "d") as store:
        first, _ = await run_to_end(person_schema, fast_config(120, price=PRICE, budget=0.02), openai_backend(llm),
                                    store=store)
        assert first.status == "budget" and 0 < first.accepted < 120
        async with openai_backend(llm) as backend:
            same = await Run.resume(store, first.run_id, backend).execute()  # the same budget: nothing more fits
        assert same.status == "budget" and same.accepted == first.accepted
        async with openai_backend(llm) as backend:
            run = Run.resume(store, first.run_id, backend, config_overrides={"budget": 0.05})
            assert run.progress().cost_usd == pytest.approx(first.cost_usd)  # the earlier session's spending
            done = await run.execute()
        records = list(store.iter_records(first.run_id))
        doc = store.get_run(first.run_id)
    assert done.status == "done" and done.accepted == 120 and len(records) == 120
    assert len({json.dumps(r, sort_keys=True) for r in records}) == 120
    assert done.cost_usd == pytest.approx(server_spend(llm, PRICE)) and done.cost_usd <= 0.05
    assert doc["config"]["budget"] == 0.05 and doc["counts"]["cost_usd"] == pytest.approx(done.cost_usd, rel=1e-6)


def test_a_budget_needs_a_price_and_a_positive_amount():
    with pytest.raises(UserInputError, match="needs the model's price"):
        RunConfig(count=5, budget=1.0).check()
    for bad in (0, -1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(UserInputError, match="budget"):
            RunConfig(count=5, price=PRICE, budget=bad).check()  # type: ignore[arg-type]
    for price in ([1.0], ["a", 1], (-1, 1), (float("inf"), 1), "1,2"):
        with pytest.raises(UserInputError, match="price"):
            RunConfig(count=5, price=price).check()  # type: ignore[arg-type]
    config = RunConfig.from_doc(RunConfig(count=5, price=(1, 2), budget=3).to_doc())
    config.check()
    assert config.price == (1.0, 2.0) and config.budget == 3


def test_reservations_learn_from_answers_that_used_more_than_reserved():
    counts = Counts()
    budget = Budget(1.0, Price(1.0, 10.0), counts)
    request = CompletionRequest([{"role": "user", "content": "x" * 400}], {}, 2, None, GenerationParams(max_tokens=50))
    first = budget.worst_case(request)
    assert first == pytest.approx((100 + 8 + 50 * 10) / 1e6)  # 400 chars: 100 tokens, then the message's own
    assert budget.reserve(request) and budget.left == pytest.approx(1.0 - first)
    counts.prompt_tokens, counts.completion_tokens = 300, 150  # the server ignored max_tokens, and counts finer
    budget.release(request, Completion("{}", prompt_tokens=300, completion_tokens=150))
    assert budget.reserved == 0 and budget.in_flight == 0
    assert budget.worst_case(request) >= Price(1.0, 10.0).cost(300, 150)  # the next reservation covers such an answer


# -- the command line ------------------------------------------------------------------------
def gen(server: Any, schema: Any, n: int, data: Any, *extra: str, **kw: Any) -> Any:
    return cli("generate", str(schema), "-n", str(n), "--backend", "openai", "--base-url", server.url + "/v1",
               "--model", "test-model", "--data-dir", str(data), "-q", "-o", str(data.parent / "out.jsonl"),
               "--force", *extra, **kw)


def test_cli_budget_exits_1_with_spent_budget_records_then_resume_finishes(tmp_path, server_process):
    schema, data = write_schema(tmp_path, PERSON), tmp_path / "d"
    proc = gen(server_process, schema, 200, data, "--price", "1,10", "--budget", "0.02")
    assert proc.returncode == 1, proc.stderr
    run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
    doc = json.loads(cli("show", run_id, "--json", "--data-dir", str(data)).stdout)["run"]
    kept = doc["counts"]["accepted"]
    assert doc["status"] == "budget" and 0 < kept < 200 and doc["counts"]["cost_usd"] <= 0.02
    assert f"budget, {kept}/200 records" in proc.stderr and "of $0.0200 budget" in proc.stderr
    assert f"budget reached: spent {usd(doc['counts']['cost_usd'])} of $0.0200, {kept}/200 records kept" in proc.stderr
    assert f"synth-tui resume {run_id} --budget USD" in proc.stderr
    assert "Traceback" not in proc.stderr
    resumed = cli("resume", run_id, "--budget", "0.08", "--base-url", server_process.url + "/v1",
                  "--data-dir", str(data), "-q")
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(cli("show", run_id, "--json", "--data-dir", str(data)).stdout)["run"]
    records = list(read_jsonl(data / "runs" / run_id / "records.jsonl"))
    assert doc["status"] == "done" and len(records) == 200 and 0.02 < doc["counts"]["cost_usd"] <= 0.08
    assert "200/200 records" in resumed.stderr and "of $0.0800 budget" in resumed.stderr


def test_cli_bad_prices_and_a_budget_without_one_exit_2_before_any_request(tmp_path, capsys):
    from synth_tui.cli import main

    schema, server = write_schema(tmp_path, PERSON), FakeLLM()  # never started: nothing may be sent
    server.port = 9  # discard: a request would fail, not hang
    base = ["generate", str(schema), "-n", "5", "--backend", "openai", "--base-url", server.url + "/v1",
            "--model", "test-model", "--data-dir", str(tmp_path / "d"), "-q"]
    assert main([*base, "--budget", "1"]) == 2
    err = capsys.readouterr().err
    assert "needs the model's price" in err and "--price INPUT,OUTPUT" in err
    for price in ("abc", "1", "other-model=1,2", "=1,2", "1e400,1"):
        assert main([*base, "--price", price]) == 2, price
        err = capsys.readouterr().err
        assert "price" in err and "Traceback" not in err, (price, err)
    with pytest.raises(SystemExit) as exited:  # argparse's own check
        main([*base, "--budget", "0"])
    assert exited.value.code == 2 and "must be more than 0" in capsys.readouterr().err


def test_cli_cost_unknown_or_at_the_settings_or_flags_price(tmp_path, server_process):
    schema, data = write_schema(tmp_path, PERSON), tmp_path / "d"
    unknown = gen(server_process, schema, 5, data)
    assert unknown.returncode == 0 and "cost unknown" in unknown.stderr
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"prices": {"test-model": [1, 10]}}))
    priced = gen(server_process, schema, 10, data, env={"SYNTH_TUI_CONFIG": str(settings)})
    assert priced.returncode == 0 and "$0.002100" in priced.stderr  # 1 request: 100 in at $1, 200 out at $10
    named = gen(server_process, schema, 10, data, "--price", "test-model=2,20")
    assert named.returncode == 0 and "$0.004200" in named.stderr


def test_cli_resume_raises_the_count_of_a_finished_run(tmp_path, server_process):
    schema, data = write_schema(tmp_path, PERSON), tmp_path / "d"
    assert gen(server_process, schema, 10, data).returncode == 0
    run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
    url = ["--base-url", server_process.url + "/v1", "--data-dir", str(data), "-q"]
    again = cli("resume", run_id, *url)
    assert again.returncode == 2 and "already complete" in again.stderr and "-n N" in again.stderr
    fewer = cli("resume", run_id, "-n", "10", *url)
    assert fewer.returncode == 2 and "holds 10 records already" in fewer.stderr
    more = cli("resume", run_id, "-n", "25", *url)
    assert more.returncode == 0 and "25/25 records" in more.stderr
    assert len(list(read_jsonl(data / "runs" / run_id / "records.jsonl"))) == 25


def test_cli_tampered_price_in_the_history_is_bad_input(tmp_path, server_process):
    schema, data = write_schema(tmp_path, PERSON), tmp_path / "d"
    assert gen(server_process, schema, 3, data, "--price", "1,10", "--budget", "0.0001").returncode == 1
    run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
    path = data / "runs" / run_id / "run.json"
    data_doc = json.loads(path.read_text())
    doc = next(iter(data_doc["_default"].values()))
    assert doc["config"]["price"] == [1.0, 10.0]
    doc["config"]["price"] = ["\x1b[31mred", 10]
    path.write_text(json.dumps(data_doc))
    proc = cli("resume", run_id, "--budget", "1", "--base-url", server_process.url + "/v1", "--data-dir", str(data))
    assert proc.returncode == 2 and "price" in proc.stderr and "Traceback" not in proc.stderr
    assert "\x1b" not in proc.stderr
    shown = cli("show", run_id, "--data-dir", str(data))
    assert shown.returncode == 0


def test_progress_lines_show_the_cost_live(tmp_path, server_process):
    schema, data = write_schema(tmp_path, PERSON), tmp_path / "d"
    proc = cli("generate", str(schema), "-n", "10", "--backend", "openai", "--base-url", server_process.url + "/v1",
               "--model", "test-model", "--data-dir", str(data), "--price", "1,10", "--budget", "1", "-o",
               str(tmp_path / "o.jsonl"))
    assert proc.returncode == 0
    assert "10/10  " in proc.stderr and "$0.002100 of $1.00" in proc.stderr


def test_progress_figures_know_unknown_from_zero():
    from synth_tui.cli.progress import cost_figure

    assert cost_figure(Progress(done=0, total=1)) == "cost unknown"
    assert cost_figure(Progress(done=0, total=1), free=True) == ""
    assert cost_figure(Progress(done=0, total=1, cost_usd=0.0)) == "$0.000000"
    assert cost_figure(Progress(done=0, total=1, cost_usd=0.5, budget_usd=2)) == "$0.5000 of $2.00"
