"""Cost in the CLI's history, show and compare, through the real command against the test
server: a priced run's cost, an unpriced run's "unknown", each endpoint of a pool, and
compare's --price in core.pricing's syntax."""

from __future__ import annotations

import json

import pytest

from synth_tui.core.errors import UserInputError

from .conftest import cli, write_schema
from .test_cli import gen_args


def test_history_and_show_print_a_runs_cost_or_unknown(tmp_path, llm):
    data = tmp_path / "d"
    schema = write_schema(tmp_path)
    priced = cli(*gen_args(llm, schema, 6, data, "--batch-size", "3", "--price", "10,10", "--budget", "1"))
    assert priced.returncode == 0, priced.stderr
    unpriced = cli(*gen_args(llm, schema, 3, data, "--batch-size", "3"))
    assert unpriced.returncode == 0, unpriced.stderr
    runs = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)
    by_cost = {r["counts"]["cost_usd"]: r["id"] for r in runs}
    cost = next(c for c in by_cost if c is not None)
    history = cli("history", "--data-dir", str(data))
    assert history.returncode == 0 and "COST" in history.stdout.splitlines()[0]
    lines = {line.split()[0]: line for line in history.stdout.splitlines()[1:]}
    assert lines[by_cost[cost]].rstrip().endswith(f"${cost:.6f}")
    assert lines[by_cost[None]].rstrip().endswith("unknown")
    shown = cli("show", by_cost[cost], "--data-dir", str(data)).stdout
    assert f"cost      ${cost:.6f} of $1.00 budget" in shown
    assert "cost      unknown (no price)" in cli("show", by_cost[None], "--data-dir", str(data)).stdout
    report = cli("report", by_cost[cost], "--data-dir", str(data))
    assert report.returncode == 0 and f"cost ${cost:.6f} of $1.00 budget" in report.stdout
    as_json = json.loads(cli("report", by_cost[cost], "--json", "--data-dir", str(data)).stdout)
    assert as_json["cost_usd"] == pytest.approx(cost) and as_json["cost"].startswith("cost $")
    assert "cost unknown (no price)" in cli("report", by_cost[None], "--data-dir", str(data)).stdout


def test_show_prints_each_endpoint_of_a_pool(tmp_path, llm):
    from .fake_llm import FakeLLM

    second = FakeLLM(seed=1).start()
    try:
        data = tmp_path / "d"
        proc = cli(*gen_args(llm, write_schema(tmp_path), 12, data, "--batch-size", "1", "--base-url",
                             second.url + "/v1"))
        assert proc.returncode == 0, proc.stderr
        run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
        shown = cli("show", run_id, "--data-dir", str(data)).stdout
        assert f"endpoint  {llm.url}/v1: {llm.count_requests} requests" in shown
        assert f"endpoint  {second.url}/v1: {second.count_requests} requests" in shown
    finally:
        second.stop()


def test_compare_prices_use_the_one_price_parser():
    from synth_tui.cli.compare import model_price

    assert model_price("gpt-4o-mini=0.15,0.6") == ("gpt-4o-mini", (0.15, 0.6))
    assert model_price("org/model:tag=1,2") == ("org/model:tag", (1.0, 2.0))
    for bad in ("0.15,0.6", "=1,2", "m=1", "m=-1,2", "m=nan,1"):
        with pytest.raises(UserInputError):
            model_price(bad)


def test_compare_prints_each_models_cost(tmp_path, llm):
    from .fake_llm import ModelBehaviour

    llm.models.update({"one": ModelBehaviour(), "two": ModelBehaviour()})
    proc = cli("compare", str(write_schema(tmp_path)), "-n", "4", "--seed", "3", "-q", "--json",
               "-m", f"openai:one@{llm.url}/v1", "-m", f"openai:two@{llm.url}/v1",
               "--price", "one=10,10", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    rows = {row["label"]: row for row in json.loads(proc.stdout)}
    assert rows["openai:one"]["cost"] > 0 and rows["openai:two"]["cost"] is None
    bad = cli("compare", str(write_schema(tmp_path)), "-n", "4", "-q", "-m", f"openai:one@{llm.url}/v1",
              "-m", f"openai:two@{llm.url}/v1", "--price", "1,2", "--data-dir", str(tmp_path / "d"))
    assert bad.returncode == 2 and "MODEL=INPUT,OUTPUT" in bad.stderr


def test_a_hand_edited_budget_or_token_count_past_any_float_shows_no_amount_not_a_traceback(tmp_path, llm):
    data = tmp_path / "d"
    proc = cli(*gen_args(llm, write_schema(tmp_path), 3, data, "--batch-size", "3", "--price", "10,10",
                         "--budget", "1"))
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
    run_file = data / "runs" / run_id / "run.json"
    text = run_file.read_text()
    doc = json.loads(text)["_default"]["1"]
    huge = "1" + "0" * 400  # a JSON integer no float holds
    edited = text.replace(json.dumps(doc["config"]["budget"]), huge, 1)
    edited = edited.replace(f'"prompt_tokens": {doc["counts"]["prompt_tokens"]}', f'"prompt_tokens": {huge}', 1)
    assert edited.count(huge) == 2
    run_file.write_text(edited)
    shown = cli("show", run_id, "--data-dir", str(data))
    assert shown.returncode == 0, shown.stderr
    assert "of $? budget" in shown.stdout
    history = cli("history", "--data-dir", str(data))
    assert history.returncode == 0, history.stderr
