"""The OpenAI Batch API against a real local server (tests/fake_batch.py): failed lines,
invalid records and unparseable output files asked for again in a follow-up batch, an
expired batch's partial output kept, a failed batch and a 401 while polling failing the
run (resumable), a slow batch polled several times, cancel, files split within the
limits, and a killed CLI that resumes polling the same batch."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synth_tui.core.backends.openai import OpenAIBackend
from synth_tui.core.engine.batch import BatchOptions, BatchRun
from synth_tui.core.events import Notice
from synth_tui.core.store import Store

from .conftest import ROOT, cli, fast_config, write_schema
from .fake_batch import FakeBatchAPI

FAST = BatchOptions(poll_interval=0.01, poll_cap=0.05)


@pytest.fixture
def api() -> Iterator[FakeBatchAPI]:
    server = FakeBatchAPI().start()
    yield server
    server.stop()


def backend(api: FakeBatchAPI) -> OpenAIBackend:
    return OpenAIBackend(model="test-model", base_url=api.url + "/v1", api_key="sk-batch-test-key")


def run_batch(api: FakeBatchAPI, schema: Any, count: int, *, store: Store | None = None,
              options: BatchOptions = FAST, events: list[Any] | None = None, **kw: Any) -> tuple[Any, BatchRun]:
    async def main() -> Any:
        async with backend(api) as b:
            run = BatchRun(schema, fast_config(count, batch_size=5, **kw), b, store=store, options=options,
                           on_event=(events.append if events is not None else None))
            return await run.execute(), run

    return asyncio.run(main())


def resume_batch(api: FakeBatchAPI, store: Store, run_id: str) -> Any:
    async def main() -> Any:
        async with backend(api) as b:
            run = BatchRun.resume_batch(store, run_id, b, options=FAST)
            return await run.execute()

    return asyncio.run(main())


def notices(events: list[Any]) -> list[str]:
    return [e.message for e in events if isinstance(e, Notice)]


def test_a_clean_batch_is_one_round_of_valid_records(api: FakeBatchAPI, person_schema: Any) -> None:
    result, run = run_batch(api, person_schema, 20)
    assert (result.status, result.accepted, run.rounds, api.creates, api.uploads) == ("done", 20, 1, 1, 1)
    assert len({json.dumps(r, sort_keys=True) for r in result.records}) == 20
    body = api.requests[0]
    assert body["model"] == "test-model" and body["response_format"]["type"] == "json_schema"
    assert result.prompt_tokens == 400 and result.requests == 4


def test_failed_lines_and_invalid_records_go_into_a_follow_up_batch(api: FakeBatchAPI, person_schema: Any) -> None:
    api.fault.failed_lines = {0, 2}
    api.fault.invalid_lines = {1}
    result, run = run_batch(api, person_schema, 20)
    assert (result.status, result.accepted, run.rounds, api.creates) == ("done", 20, 2, 2)
    reasons = [r.reason for r in result.rejections]
    assert sum("injected server error" in r for r in reasons) == 2
    assert sum("required property" in r for r in reasons) == 5
    assert result.rejected == 7


def test_an_expired_batch_keeps_its_partial_output_and_asks_for_the_rest(
    api: FakeBatchAPI, person_schema: Any,
) -> None:
    api.fault.end = "expired"
    api.fault.answered = 1  # of 4 requests
    events: list[Any] = []
    result, run = run_batch(api, person_schema, 20, events=events)
    assert (result.status, result.accepted, run.rounds, api.creates) == ("done", 20, 2, 2)
    assert any("expired" in m for m in notices(events))
    assert sum("batch expired" in r.reason for r in result.rejections) == 3


def test_a_failed_batch_fails_the_run_with_its_reason_and_resume_makes_a_new_one(
    api: FakeBatchAPI, person_schema: Any, tmp_path: Path,
) -> None:
    api.fault.end = "failed"
    with Store(tmp_path / "data") as store:
        result, _ = run_batch(api, person_schema, 10, store=store)
        assert result.status == "failed"
        assert "injected failure" in (result.error or "") and "resumed" in (result.error or "")
        assert store.get_run(result.run_id)["batch"]["active"] == []
        api.fault.end = "completed"
        again = resume_batch(api, store, result.run_id)
    assert (again.status, again.accepted, api.creates) == ("done", 10, 2)


def test_a_401_while_polling_fails_the_run_and_keeps_the_batch_for_resume(
    api: FakeBatchAPI, person_schema: Any, tmp_path: Path,
) -> None:
    api.fault.polls = 3
    api.fault.unauthorized_after = 1
    with Store(tmp_path / "data") as store:
        result, _ = run_batch(api, person_schema, 10, store=store)
        assert result.status == "failed"
        assert "refused the API key" in (result.error or "") and "sk-batch-test-key" not in (result.error or "")
        doc = store.get_run(result.run_id)
        assert doc["status"] == "failed" and len(doc["batch"]["active"]) == 1
        api.fault.unauthorized_after = None
        again = resume_batch(api, store, result.run_id)
    assert (again.status, again.accepted, api.creates) == ("done", 10, 1)  # the same batch, polled again


def test_an_output_file_that_does_not_parse_is_counted_and_asked_again(api: FakeBatchAPI, person_schema: Any) -> None:
    api.fault.garbage_output = True
    result, run = run_batch(api, person_schema, 10)
    assert (result.status, result.accepted, run.rounds, api.creates) == ("done", 10, 2, 2)
    reasons = [r.reason for r in result.rejections]
    assert sum("not JSON" in r for r in reasons) == 2  # the two lines of the broken file
    assert sum("gave no answer" in r for r in reasons) == 2  # the two requests they did not answer
    assert result.rejected == 4


def test_a_slow_batch_is_polled_until_it_ends(api: FakeBatchAPI, person_schema: Any) -> None:
    api.fault.polls = 6
    events: list[Any] = []
    result, _ = run_batch(api, person_schema, 5, events=events)
    assert (result.status, result.accepted, api.creates) == ("done", 5, 1)
    assert api.retrievals == 8  # validating, six polls in progress, completed
    said = notices(events)
    assert any("in_progress, 0 of 1 requests done" in m for m in said)
    assert any("completed, 1 of 1 requests done" in m for m in said)


def test_rounds_are_bounded(api: FakeBatchAPI, person_schema: Any) -> None:
    api.fault.batches = 10
    api.fault.invalid_lines = {0}
    result, run = run_batch(api, person_schema, 5, options=BatchOptions(poll_interval=0.01, max_rounds=3))
    assert (result.status, run.rounds, api.creates, result.accepted) == ("failed", 3, 3, 0)
    assert "after 3 batch round(s)" in (result.error or "")


def test_large_runs_split_into_several_batches(api: FakeBatchAPI, person_schema: Any) -> None:
    options = BatchOptions(poll_interval=0.01, max_requests=3)
    result, run = run_batch(api, person_schema, 40, options=options)  # 8 requests: 3 + 3 + 2
    assert (result.status, result.accepted, run.rounds, api.creates) == ("done", 40, 1, 3)
    sizes = sorted(b["request_counts"]["total"] for b in api.batches.values())
    assert sizes == [2, 3, 3]
    by_bytes = BatchOptions(poll_interval=0.01, max_bytes=1)  # one line per file, whatever its size
    api.creates = 0
    result, _ = run_batch(api, person_schema, 10, options=by_bytes)
    assert (result.status, api.creates) == ("done", 2)


def test_cancel_cancels_the_remote_batch_and_keeps_it_for_resume(
    api: FakeBatchAPI, person_schema: Any, tmp_path: Path,
) -> None:
    api.fault.polls = 10**6

    async def main(store: Store) -> Any:
        async with backend(api) as b:
            run = BatchRun(person_schema, fast_config(10, batch_size=5), b, store=store, options=FAST)

            def on_event(event: Any) -> None:
                if isinstance(event, Notice) and "in_progress" in event.message:
                    run.cancel()

            run.on_event = on_event
            return await run.execute()

    with Store(tmp_path / "data") as store:
        result = asyncio.run(main(store))
        assert (result.status, api.cancels) == ("cancelled", 1)
        assert len(store.get_run(result.run_id)["batch"]["active"]) == 1
        api.fault.polls = 0
        again = resume_batch(api, store, result.run_id)  # the cancelled batch gave nothing: a new one
    assert (again.status, again.accepted, api.creates) == ("done", 10, 2)


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_refuses_batch_api_with_another_backend(tmp_path: Path) -> None:
    proc = cli("generate", str(write_schema(tmp_path)), "-n", "3", "--backend", "ollama", "--batch-api")
    assert proc.returncode == 2 and "--batch-api needs the openai backend" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_killed_cli_resumes_polling_the_same_batch(api: FakeBatchAPI, tmp_path: Path) -> None:
    api.fault.polls = 10**6
    data = str(tmp_path / "data")
    args = ["--backend", "openai", "--base-url", api.url + "/v1", "--model", "test-model", "--data-dir", data]
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth_tui", "generate", str(write_schema(tmp_path)), "-n", "12", "--batch-api",
         "--poll-interval", "0.05", "-q", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while api.retrievals < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # polls a condition: the batch is created, recorded and being polled
    assert api.retrievals >= 2, proc.stderr.read().decode() if proc.poll() is not None else "no polls"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(data) as store:
        run_id = store.list_runs()[0]["id"]
    api.fault.polls = 0
    out = tmp_path / "out.jsonl"
    done = cli("resume", run_id, "--poll-interval", "0.05", "-o", str(out), "--base-url", api.url + "/v1",
               "--data-dir", data)
    assert done.returncode == 0, done.stderr
    assert api.creates == 1 and api.uploads == 1
    assert len(out.read_text().splitlines()) == 12


def test_ctrl_c_in_the_cli_cancels_the_remote_batch(api: FakeBatchAPI, tmp_path: Path) -> None:
    api.fault.polls = 10**6
    data = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth_tui", "generate", str(write_schema(tmp_path)), "-n", "5", "--batch-api",
         "--backend", "openai", "--base-url", api.url + "/v1", "--model", "test-model", "--data-dir", data,
         "--poll-interval", "0.05", "-q"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while api.retrievals < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # polls a condition: the batch is being polled
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert api.cancels == 1 and api.creates == 1, err
    assert "Traceback" not in err
    with Store(data) as store:
        doc = store.list_runs()[0]
    assert doc["status"] == "cancelled"
