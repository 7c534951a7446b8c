"""Several endpoints for one run: real test servers on 127.0.0.1, one stopped mid-run,
all down, a slow one beside a fast one, one coming back; the settings' list of base URLs
and --base-url given more than once; resume with a pool's URLs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from synth_tui.core.backends import BackendSpec, ResumeNeedsConsent, backend_from_settings, create_backend, resume_spec
from synth_tui.core.backends.base import Backend, Completion, CompletionRequest
from synth_tui.core.backends.openai import OpenAIBackend
from synth_tui.core.backends.pool import SET_ASIDE_AFTER, EndpointPool
from synth_tui.core.config import load_settings
from synth_tui.core.engine import Run
from synth_tui.core.errors import BackendError, RetryableError, TimedOut, Unreachable, UserInputError
from synth_tui.core.events import RecordsAccepted
from synth_tui.core.prompts import build_messages
from synth_tui.core.schema import check_schema
from synth_tui.core.store import Store, read_jsonl

from .conftest import PERSON, ROOT, ServerProcess, cli, fast_config, free_port, write_schema
from .fake_llm import FakeLLM, Fault


class FakeAt(FakeLLM):
    """The test server on a port chosen beforehand: a server that comes back where it was."""

    def __init__(self, port: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.wanted_port = port

    async def start_async(self, port: int = 0) -> None:
        await super().start_async(port or self.wanted_port)


def pool_of(*urls: str, **kw: Any) -> EndpointPool:
    backends = [OpenAIBackend(model="test-model", base_url=url + "/v1", api_key="sk-pool-secret-123") for url in urls]
    return EndpointPool(backends, **kw)


def request(person_schema: Any) -> CompletionRequest:
    schema = person_schema.schema
    return CompletionRequest(build_messages(schema, 1), schema, 1, schema)


def by_url(pool: EndpointPool) -> dict[str, dict[str, Any]]:
    return {c["base_url"].removesuffix("/v1"): c for c in pool.endpoint_counts()}


async def run_on(pool: EndpointPool, schema: Any, count: int, **kw: Any) -> Any:
    on_event = kw.pop("on_event", None)
    async with pool:
        with Store() as store:
            return await Run(schema, fast_config(count, **kw), pool, store=store, on_event=on_event).execute()


@pytest.fixture
def two() -> Any:
    servers = [FakeLLM().start(), FakeLLM().start()]
    yield servers
    for server in servers:
        server.stop()


# -- spreading ---------------------------------------------------------------------------------
async def test_requests_spread_over_two_servers(two, person_schema):
    a, b = two
    pool = create_backend(BackendSpec("openai", "test-model", base_urls=(a.url + "/v1", b.url + "/v1")),
                          api_key="sk-pool-secret-123")
    assert isinstance(pool, EndpointPool)
    result = await run_on(pool, person_schema, 40, batch_size=2, concurrency=4)
    assert result.status == "done" and result.accepted == 40
    assert all(person_schema.is_valid(r) for r in result.records)
    assert a.count_requests >= 5 and b.count_requests >= 5
    counts = by_url(pool)
    assert counts[a.url]["answers"] == a.count_requests and counts[b.url]["answers"] == b.count_requests
    assert sum(c["answers"] for c in counts.values()) == result.requests
    assert all(c["state"] == "up" and c["set_aside"] == 0 for c in counts.values())
    described = pool.describe()
    assert described["base_urls"] == [a.url + "/v1", b.url + "/v1"] and described["base_url"] == a.url + "/v1"
    assert "sk-pool-secret" not in json.dumps(described) + json.dumps(pool.endpoint_counts())
    with Store() as store:  # the history keeps each endpoint's share of the run
        saved = {c["base_url"].removesuffix("/v1"): c for c in store.get_run(result.run_id)["counts"]["endpoints"]}
    assert saved[a.url]["answers"] == a.count_requests and saved[b.url]["answers"] == b.count_requests


async def test_one_url_is_the_backend_alone_as_before(llm):
    backend = create_backend(BackendSpec("openai", "test-model", base_urls=(llm.url + "/v1",)))
    assert type(backend) is OpenAIBackend and backend.endpoint_counts() == []
    await backend.aclose()


async def test_a_slow_endpoint_gets_fewer_requests_than_a_fast_one(person_schema):
    slow, fast = FakeLLM(delay=0.25).start(), FakeLLM().start()
    try:
        pool = pool_of(slow.url, fast.url)
        result = await run_on(pool, person_schema, 40, batch_size=1, concurrency=4)
    finally:
        slow.stop()
        fast.stop()
    assert result.status == "done" and result.accepted == 40
    assert slow.count_requests >= 1
    assert slow.count_requests * 3 < fast.count_requests, (slow.count_requests, fast.count_requests)


# -- failures ----------------------------------------------------------------------------------
async def test_a_server_stopped_mid_run_leaves_the_run_to_the_other(person_schema):
    a, b = FakeLLM(delay=0.01).start(), FakeLLM(delay=0.01).start()
    stopped = threading.Event()
    accepted = 0

    def on_event(event: Any) -> None:
        nonlocal accepted
        if isinstance(event, RecordsAccepted):
            accepted += len(event.records)
            if accepted >= 20 and not stopped.is_set():
                a.stop()  # blocks the run's loop until the server is gone: the rest is mid-run for sure
                stopped.set()

    pool = pool_of(a.url, b.url)
    try:
        result = await run_on(pool, person_schema, 200, batch_size=2, concurrency=4, on_event=on_event)
    finally:
        b.stop()
    assert stopped.is_set()
    assert result.status == "done", result.error
    assert result.accepted == 200 and all(person_schema.is_valid(r) for r in result.records)
    counts = by_url(pool)
    assert counts[a.url]["set_aside"] >= 1 and counts[a.url]["state"] != "up"
    assert counts[b.url]["answers"] > counts[a.url]["answers"]
    assert counts[a.url]["rerouted"] >= 1  # its failed requests went on to the other at once


async def test_all_endpoints_down_fails_the_run_naming_each(person_schema):
    ports = free_port(), free_port()
    pool = pool_of(*(f"http://127.0.0.1:{p}" for p in ports))
    result = await run_on(pool, person_schema, 5, concurrency=1)
    assert result.status == "failed" and result.accepted == 0
    assert "all 2 endpoints are down" in result.error
    assert all(f"127.0.0.1:{p}/v1" in result.error for p in ports)
    assert result.requests == 1  # nothing listens anywhere: stopped at once, as one server would be


async def test_all_down_mid_run_fails_after_the_retries_and_keeps_the_records(person_schema):
    a, b = FakeLLM().start(), FakeLLM().start()
    stopped = threading.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, RecordsAccepted) and not stopped.is_set():
            stopped.set()
            a.stop()
            b.stop()

    pool = pool_of(a.url, b.url)
    result = await run_on(pool, person_schema, 100, batch_size=1, concurrency=2, max_retries=3, on_event=on_event)
    assert result.status == "failed" and 1 <= result.accepted < 100
    assert "all 2 endpoints are down" in result.error and a.url in result.error and b.url in result.error


async def test_a_server_error_is_tried_again_at_once_elsewhere_and_a_streak_sets_it_aside(two, person_schema):
    a, b = two
    a.always = Fault(status=500)
    pool = pool_of(a.url, b.url, first_backoff=60)
    async with pool:
        for _ in range(SET_ASIDE_AFTER + 3):
            completion = await pool.complete(request(person_schema))
            assert json.loads(completion.text)
    counts = by_url(pool)
    assert a.count_requests == SET_ASIDE_AFTER  # then set aside: no more until its probe
    assert counts[a.url]["failures"] == SET_ASIDE_AFTER == counts[a.url]["rerouted"]
    assert counts[a.url]["state"] == "set aside" and counts[a.url]["set_aside"] == 1
    assert counts[b.url]["answers"] == SET_ASIDE_AFTER + 3


async def test_a_timeout_sets_an_endpoint_aside_at_once(two, person_schema):
    a, b = two
    a.always = Fault(delay=1.0)
    backends = [OpenAIBackend(model="test-model", base_url=s.url + "/v1", read_timeout=0.2) for s in two]
    pool = EndpointPool(backends, first_backoff=60)
    async with pool:
        for _ in range(3):
            await pool.complete(request(person_schema))
    counts = by_url(pool)
    assert a.count_requests == 1 and counts[a.url]["state"] == "set aside"
    assert "no complete answer" in pool.endpoints[0].last_error and counts[b.url]["answers"] == 3


async def test_a_set_aside_endpoint_comes_back_after_it_recovers(llm, person_schema):
    port = free_port()
    pool = pool_of(f"http://127.0.0.1:{port}", llm.url, first_backoff=0.05)
    back, url = FakeAt(port), f"http://127.0.0.1:{port}"
    try:
        async with pool:
            await pool.complete(request(person_schema))
            assert by_url(pool)[url]["state"] == "set aside"  # refused: aside at once
            back.start()
            deadline = time.monotonic() + 20
            while by_url(pool)[url]["answers"] == 0:  # its probe is due 50 ms on
                assert time.monotonic() < deadline, by_url(pool)
                await pool.complete(request(person_schema))
            for _ in range(6):
                await pool.complete(request(person_schema))
    finally:
        back.stop()
    counts = by_url(pool)[url]
    assert counts["state"] == "up" and counts["set_aside"] == 1 and counts["answers"] >= 3
    assert back.count_requests == counts["answers"]


# -- the rules, with a scripted collaborator ---------------------------------------------------
class Scripted(Backend):
    """A backend whose answers are a script: an exception to raise, or None to answer."""

    kind = "openai"

    def __init__(self, name: str, *script: Exception | None, default: Exception | None = None) -> None:
        super().__init__("m", name)
        self.script = list(script)
        self.default = default
        self.calls = 0

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        outcome = self.script.pop(0) if self.script else self.default
        await asyncio.sleep(0)
        if outcome is not None:
            raise outcome
        return Completion(text="{}")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_probe_that_fails_waits_twice_as_long_and_one_that_answers_brings_it_back(person_schema):
    clock = Clock()
    a = Scripted("http://a", Unreachable("cannot connect to http://a"), TimedOut("no complete answer from http://a"))
    pool = EndpointPool([a, Scripted("http://b")], first_backoff=2, max_backoff=60, clock=clock)
    ask = request(person_schema)
    await pool.complete(ask)  # a refused: aside for 2 s
    assert a.calls == 1 and pool.endpoints[0].aside_until == 102
    clock.now = 101.9
    await pool.complete(ask)
    assert a.calls == 1  # not due yet
    clock.now = 102
    await pool.complete(ask)  # the probe times out: aside for 4 s
    assert a.calls == 2 and pool.endpoints[0].aside_until == 106
    clock.now = 106
    await pool.complete(ask)  # the probe answers
    assert a.calls == 3 and pool.endpoints[0].state == "up"
    assert pool.endpoint_counts()[0]["set_aside"] == 2


async def test_a_rate_limit_halves_that_endpoints_limit_without_setting_it_aside(person_schema):
    busy = RetryableError("HTTP 429 from http://a", status=429)
    a = Scripted("http://a", busy)
    pool = EndpointPool([a, Scripted("http://b")])
    await pool.complete(request(person_schema))
    ends = pool.endpoints[0]
    assert ends.state == "up" and ends.limit == 1 and pool.endpoint_counts()[0]["rate_limited"] == 1


async def test_what_the_pool_raises_when_no_endpoint_can_answer(person_schema):
    ask = request(person_schema)
    refused = [Scripted(u, default=Unreachable(f"cannot connect to {u}")) for u in ("http://a", "http://b")]
    with pytest.raises(Unreachable, match="all 2 endpoints are down: cannot connect to http://a; cannot conn"):
        await EndpointPool(refused).complete(ask)
    wrong_key = [Scripted(u, default=BackendError(f"refused the API key at {u}")) for u in ("http://a", "http://b")]
    with pytest.raises(BackendError, match="all 2 endpoints are down"):
        await EndpointPool(wrong_key).complete(ask)
    failing = [Scripted(u, default=RetryableError(f"HTTP 500 from {u}", status=500)) for u in ("http://a", "http://b")]
    pool = EndpointPool(failing)
    with pytest.raises(RetryableError, match="every endpoint up failed this request") as raised:
        await pool.complete(ask)  # both still up: a transient failure, for the scheduler to retry
    assert not isinstance(raised.value, Unreachable) and raised.value.status == 500
    one_left = [Scripted("http://a", default=BackendError("HTTP 404 from http://a")), Scripted("http://b")]
    pool = EndpointPool(one_left)
    await pool.complete(ask)  # a wrong model on one server: the other answers
    assert [e.state for e in pool.endpoints] == ["set aside", "up"]


async def test_every_endpoint_at_its_limit_makes_a_request_wait_for_room(person_schema):
    gate = asyncio.Event()

    class Held(Scripted):
        async def complete(self, request: CompletionRequest) -> Completion:
            self.calls += 1
            await gate.wait()
            return Completion(text="{}")

    a, b = Held("http://a"), Held("http://b")
    pool = EndpointPool([a, b])
    for e in pool.endpoints:
        e.limit = 1
    ask = request(person_schema)
    first = [asyncio.create_task(pool.complete(ask)) for _ in range(2)]
    await asyncio.sleep(0)
    third = asyncio.create_task(pool.complete(ask))
    while a.calls + b.calls < 2:
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert a.calls + b.calls == 2 and not third.done()  # no room anywhere: it waits
    gate.set()
    await asyncio.gather(*first, third)
    assert a.calls + b.calls == 3


# -- settings, flags, resume -------------------------------------------------------------------
def write_settings(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, doc: dict[str, Any]) -> Any:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("SYNTH_TUI_CONFIG", str(path))
    return path


async def test_a_list_of_base_urls_in_the_settings_is_a_pool(tmp_path, monkeypatch):
    urls = ["http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"]
    path = write_settings(tmp_path, monkeypatch, {"backend": "openai", "backends": {"openai": {"base_url": urls}}})
    settings = load_settings()
    conf = settings.for_backend("openai")
    assert conf.base_url == urls[0] and conf.endpoint_urls() == tuple(urls)
    pool = backend_from_settings(BackendSpec("openai"), settings)
    assert isinstance(pool, EndpointPool) and [e.backend.base_url for e in pool.endpoints] == urls
    await pool.aclose()
    one = backend_from_settings(BackendSpec("openai", base_urls=("http://127.0.0.1:11/v1",)), settings)
    assert type(one) is OpenAIBackend  # a flag's one URL wins over the settings' list
    await one.aclose()
    settings.concurrency = 9
    settings.save()
    assert json.loads(path.read_text())["backends"]["openai"]["base_url"] == urls  # kept as the file had it
    conf.base_url = "http://127.0.0.1:12/v1"  # what the settings screen does: one URL replaces the list
    settings.save()
    assert json.loads(path.read_text())["backends"]["openai"]["base_url"] == "http://127.0.0.1:12/v1"


def test_base_urls_from_the_environment_and_bad_ones_in_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_TUI_BACKEND", "ollama")
    monkeypatch.setenv("SYNTH_TUI_BASE_URL", "http://gpu1:11434  http://gpu2:11434")
    assert load_settings().for_backend("ollama").endpoint_urls() == ("http://gpu1:11434", "http://gpu2:11434")
    write_settings(tmp_path, monkeypatch, {"backends": {"openai": {"base_url": ["http://a/v1", 7]}}})
    with pytest.raises(UserInputError, match=r"backends.openai.base_url must be a base URL or a list"):
        load_settings()


def test_the_same_server_twice_or_a_bad_address_among_several_is_bad_input():
    with pytest.raises(UserInputError, match="given twice"):
        create_backend(BackendSpec("openai", "m", base_urls=("http://a:1/v1", "http://a:1/v1/")))
    with pytest.raises(UserInputError, match="'ftp://b' is not an http"):
        create_backend(BackendSpec("openai", "m", base_urls=("http://a:1/v1", "ftp://b")))


def test_resume_compares_every_url_of_a_pool_with_the_settings(tmp_path, monkeypatch):
    mine = ["http://gpu1:8000/v1", "http://gpu2:8000/v1"]
    write_settings(tmp_path, monkeypatch, {"backends": {"openai": {"base_url": mine}}})
    settings = load_settings()
    recorded = {"backend": "openai", "model": "m", "base_url": mine[1], "base_urls": [mine[1], mine[0] + "/"],
                "api_key_env": "OPENAI_API_KEY"}
    assert resume_spec(recorded, settings).urls == tuple(mine)  # the same servers, in another order
    elsewhere = {**recorded, "base_urls": [mine[0], "http://evil.example/v1"]}
    with pytest.raises(ResumeNeedsConsent) as refused:
        resume_spec(elsewhere, settings, run="run r1")
    assert "--base-url http://gpu1:8000/v1 --base-url http://evil.example/v1" in refused.value.remedy("cli")
    assert "its base URLs are 'http://gpu1:8000/v1', 'http://evil.example/v1', your settings use" in str(refused.value)
    what, theirs, _mine, _flag = refused.value.differences[0]
    assert what == "base URL" and str(theirs) == "http://gpu1:8000/v1, http://evil.example/v1"
    agreed = resume_spec(elsewhere, settings, base_url=theirs)  # the TUI passes back what it showed
    assert agreed.urls == (mine[0], "http://evil.example/v1")
    assert resume_spec(elsewhere, settings, base_url=["http://x/v1"]).urls == ("http://x/v1",)


# -- the command line ------------------------------------------------------------------------------
def test_cli_base_url_twice_spreads_the_run_and_survives_a_killed_server(tmp_path):
    servers = [ServerProcess("--delay", "0.02"), ServerProcess("--delay", "0.02")]
    schema, data = write_schema(tmp_path), tmp_path / "d"
    n = 300
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "synth_tui", "generate", str(schema), "-n", str(n), "--backend", "openai",
             "--model", "test-model", "--base-url", servers[0].url + "/v1", "--base-url", servers[1].url + "/v1",
             "--batch-size", "2", "--concurrency", "4", "--data-dir", str(data), "-q"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(20)]  # records stream out as they are accepted
        servers[0].stop()
        rest, err = proc.communicate(timeout=60)
    finally:
        for server in servers:
            server.stop()
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in lines + rest.splitlines()]
    validator = check_schema(PERSON)
    assert len(records) == n and all(validator.is_valid(r) for r in records)
    journal = next((data / "runs").glob("*/records.jsonl"))
    assert len(list(read_jsonl(journal))) == n
    shown = json.loads(cli("show", journal.parent.name, "--json", "--data-dir", str(data)).stdout)["run"]
    assert shown["backend"]["base_urls"] == [s.url + "/v1" for s in servers]


def test_cli_all_endpoints_down_exits_1_naming_them(tmp_path):
    ports = free_port(), free_port()
    proc = cli("generate", str(write_schema(tmp_path)), "-n", "3", "--backend", "openai", "--model", "test-model",
               *(arg for p in ports for arg in ("--base-url", f"http://127.0.0.1:{p}/v1")),
               "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 1
    assert "all 2 endpoints are down" in proc.stderr and "Traceback" not in proc.stderr
    assert all(f"http://127.0.0.1:{p}/v1" in proc.stderr for p in ports)
