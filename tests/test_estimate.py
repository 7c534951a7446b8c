"""estimate: a pilot run measures, a projection says what N records take; the pilot is the
start of the run. Against the test server (100 prompt tokens an answer, 20 completion
tokens a record asked) and, for "time only", the embedded model."""

from __future__ import annotations

import json
import math

import pytest

from synth_tui.core.estimate import Answer, AnswerLog, Pilot, asks_per_first_ask, project, turned_away
from synth_tui.core.events import Progress, RequestAnswered
from synth_tui.core.pricing import Price
from synth_tui.core.store import read_jsonl

from .conftest import PERSON, cli, write_schema

PRICE = Price(1.0, 10.0)


def pilot(accepted: int = 5, prompt: int = 100, completion: int = 100, elapsed: float = 1.0) -> Pilot:
    return Pilot("pilot-run", accepted, prompt, completion, elapsed)


def test_projection_counts_prompts_per_request_and_completions_per_record():
    answers = [Answer(5, 100, 100, 0.5)]  # a pilot of 5 in one request; the full run asks 10 at a time
    p = project(answers, pilot(), count=60, batch_size=10, concurrency=4, price=PRICE)
    assert p.requests.mid == 6  # 55 records left, 10 a request
    assert p.prompt_tokens.mid == 100 + 6 * 100 and p.completion_tokens.mid == 100 + 55 * 20
    assert p.tokens.mid == 1900 and p.cost is not None
    assert p.cost.mid == pytest.approx(PRICE.cost(700, 1200))
    assert p.seconds.mid == pytest.approx(2 * 0.5)  # 6 requests, 4 at once: two rounds
    # one answer has no spread: per-request figures get the narrowest range around the estimate
    assert p.tokens.low == pytest.approx(100 + 6 * 80 + 100 + 55 * 16)
    # and 5 records with none turned away do not say that none will be: up to 35 % may be
    away = turned_away(5, 5).high
    requests = math.ceil(6 * asks_per_first_ask(10, away))
    assert p.requests.high == requests and away == pytest.approx(0.351, abs=0.001)
    assert p.tokens.high == pytest.approx(100 + requests * 125 + 100 + 55 / (1 - away) * 25)
    assert p.tokens_per_record == 40 and p.records_per_s == 5


def test_projection_of_a_pilot_with_rejections_asks_again_for_the_records_turned_away():
    answers = [Answer(4, 90, 60, 0.2), Answer(4, 110, 100, 0.6), Answer(4, 100, 80, 0.4)]  # 12 asked, 8 kept
    p = project(answers, pilot(accepted=8, prompt=300, completion=240, elapsed=1.2), count=108, batch_size=4,
                concurrency=2, price=None)
    assert p.cost is None
    requests = math.ceil(25 * asks_per_first_ask(4, 1 / 3))  # 100 left: 25 first asks, each asked again in part
    assert p.requests.mid == requests and 25 * 2 < requests < 25 * 3
    assert p.completion_tokens.mid == pytest.approx(240 + 100 * 1.5 * 20)  # a third of the asks turned away
    assert p.prompt_tokens.mid == pytest.approx(300 + requests * 100)
    assert p.seconds.mid == pytest.approx(math.ceil(requests / 2) * 0.4)
    for span in (p.requests, p.prompt_tokens, p.completion_tokens, p.seconds):
        assert span.low < span.mid < span.high  # the spread of three answers, and of the share turned away
    done = project(answers, pilot(accepted=8), count=8, batch_size=4, concurrency=2, price=PRICE)
    assert done.requests.mid == 0 and done.seconds.mid == 0 and done.tokens.mid == 200  # the pilot was the run


def test_asks_again_and_the_share_turned_away():
    assert asks_per_first_ask(10, 0.0) == 1
    assert asks_per_first_ask(1, 0.5) == pytest.approx(2, rel=1e-4)  # one record, a coin's toss each time
    assert 1 < asks_per_first_ask(10, 0.1) < asks_per_first_ask(10, 0.2) < asks_per_first_ask(10, 0.4)
    assert asks_per_first_ask(10, 0.9) < 100  # bounded, however bad
    for asked, accepted in ((5, 5), (5, 0), (12, 8), (1000, 850), (3, 7)):
        span = turned_away(asked, accepted)
        assert 0 <= span.low <= span.mid <= span.high <= 0.9
    assert turned_away(1000, 850).high - turned_away(1000, 850).low < 0.05  # a large pilot: a narrow range


def test_answer_log_keeps_answers_and_passes_every_event_on():
    seen: list = []
    log = AnswerLog(seen.append)
    event = RequestAnswered(run_id="r", progress=Progress(0, 1), records=3, prompt_tokens=7, completion_tokens=9,
                            seconds=0.25)
    log(event)
    assert log.answers == [Answer(3, 7, 9, 0.25)] and seen == [event]


def estimate(server, schema, n, data, *extra):
    return cli("estimate", str(schema), "-n", str(n), "--backend", "openai", "--base-url", server.url + "/v1",
               "--model", "test-model", "--data-dir", str(data), *extra)


def run_cost(run_id, data):
    doc = json.loads(cli("show", run_id, "--json", "--data-dir", str(data)).stdout)["run"]
    return doc, doc["counts"]["cost_usd"]


def test_estimate_then_resume_the_pilot_to_n_costs_what_was_projected(tmp_path, server_process):
    schema, data, url = write_schema(tmp_path, PERSON), tmp_path / "d", server_process.url + "/v1"
    proc = estimate(server_process, schema, 60, data, "--price", "1,10", "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    projected = json.loads(proc.stdout)
    run_id = projected["pilot"]["run_id"]
    assert projected["pilot"]["accepted"] == 5 and projected["count"] == 60 and projected["price"] == [1.0, 10.0]
    assert f"synth-tui resume {run_id} -n 60 --base-url {url}" in proc.stderr
    pilot_doc, _ = run_cost(run_id, data)
    assert pilot_doc["status"] == "done" and pilot_doc["counts"]["requested"] == 5  # a real run, in the history
    pilot_records = list(read_jsonl(data / "runs" / run_id / "records.jsonl"))
    resumed = cli("resume", run_id, "-n", "60", "--base-url", url, "--data-dir", str(data), "-q")
    assert resumed.returncode == 0, resumed.stderr
    doc, actual = run_cost(run_id, data)
    records = list(read_jsonl(data / "runs" / run_id / "records.jsonl"))
    assert doc["status"] == "done" and len(records) == 60 and records[:5] == pilot_records  # the pilot is the start
    cost, tokens = projected["cost"], projected["tokens"]
    assert cost["low"] <= actual <= cost["high"], (cost, actual)
    assert tokens["low"] <= doc["counts"]["prompt_tokens"] + doc["counts"]["completion_tokens"] <= tokens["high"]
    # a fresh run of 60 (no pilot) costs a little less, and is in the range too
    fresh = cli("generate", str(schema), "-n", "60", "--backend", "openai", "--base-url", url, "--model",
                "test-model", "--data-dir", str(data), "--price", "1,10", "-q", "-o", str(tmp_path / "o.jsonl"))
    assert fresh.returncode == 0
    fresh_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
    assert cost["low"] <= run_cost(fresh_id, data)[1] <= cost["high"]


def test_estimate_as_text_without_a_price_and_bad_input(tmp_path, server_process):
    schema, data = write_schema(tmp_path, PERSON), tmp_path / "d"
    proc = estimate(server_process, schema, 1000, data, "--pilot", "12", "--batch-size", "4")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("pilot ") and "12 records from 3 answers" in lines[0]
    assert "1000 records (247 more requests of up to 4 records, 4 at once):" in lines[1]
    assert any(line.startswith("  tokens  ") for line in lines)
    assert any(line.startswith("  cost    unknown: no price") for line in lines)
    assert any(line.startswith("  time    ") and line.endswith("to finish") for line in lines)
    assert "pilot" in proc.stderr and "cost unknown" in proc.stderr  # the pilot's progress and summary
    bad = estimate(server_process, "shop", 10, data)  # the built-in dataset template
    assert bad.returncode == 2 and "not a dataset file" in bad.stderr
    bad = estimate(server_process, schema, 10, data, "--pilot", "0")
    assert bad.returncode == 2


@pytest.mark.local_model
def test_estimate_with_the_embedded_model_is_time_only(tmp_path):
    schema = write_schema(tmp_path, {"name": {"type": "string"}, "age": {"type": "integer"}})
    proc = cli("estimate", str(schema), "-n", "20", "--pilot", "2", "--backend", "local", "--data-dir",
               str(tmp_path / "d"), "-q", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "  cost    none: the embedded model runs here" in proc.stdout and "to finish" in proc.stdout
    assert "cost unknown" not in proc.stderr
