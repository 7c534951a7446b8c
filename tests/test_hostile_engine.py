"""Hostile schemas, answers and servers against the engine, the backends, the parser and
the schema checks: each is a real local server, a real file, or the real CLI in a child
process. Work that used to hang (regex backtracking, quadratic parsing) runs in a child
process with a deadline, so that without the fix a test fails instead of hanging."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import textwrap
import threading
from typing import Iterator

import pytest
from jsonschema import validators

from synth_tui.core import parsing
from synth_tui.core import schema as schema_module
from synth_tui.core.engine import Run
from synth_tui.core.errors import SchemaError
from synth_tui.core.events import EventLog, RecordRejected, RetryScheduled
from synth_tui.core.parsing import UnparseableOutput, extract_records
from synth_tui.core.schema import RecordSchema, check_schema, parse_schema

from . import fake_llm
from .conftest import ROOT, cli, fast_config, free_port, openai_backend, write_schema
from .fake_llm import FakeLLM, Fault

CATASTROPHIC = "^(a+)+$"  # Python's re backtracks 2^n times on "a" * n + "!"
HOSTILE_VALUE = "a" * 50 + "!"


def in_child(code: str, timeout: float = 30) -> str:
    """Run ``code`` in a fresh interpreter; a run past ``timeout`` fails the test."""
    try:
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s:\n{code}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


class RecordingServer:
    """A plain HTTP server that answers every GET with a permissive schema and records it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                hits.append(self.path)
                body = json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.close()


def obj(**props) -> dict:
    return {"type": "object", "properties": props or {"a": {"type": "string"}}}


# -- 1. a schema never makes the app reach out ----------------------------------------------
def hostile_schemas(url: str, meta_file: str) -> dict[str, tuple[dict, str]]:
    """name -> (schema, the JSON path the error must name)"""
    return {
        "remote $schema": ({**obj(), "$schema": f"{url}/meta.json"}, "$.$schema"),
        "file $schema": ({**obj(), "$schema": meta_file}, "$.$schema"),
        "/etc/passwd": ({**obj(), "$schema": "file:///etc/passwd"}, "$.$schema"),
        "nested $schema": (obj(a={"$schema": f"{url}/nested.json", "type": "string"}), "$.properties.a.$schema"),
        "remote $dynamicRef": (obj(a={"$dynamicRef": f"{url}/dyn.json#meta"}), "$.properties.a"),
        "$ref made remote by a nested $id": (obj(a={"$id": f"{url}/x/", "$ref": "y.json"}), "$.properties.a"),
        "$ref into a nested $id that lacks it": (
            {**obj(a={"$id": f"{url}/x/", "$ref": "#/$defs/s"}), "$defs": {"s": {"type": "string"}}},
            "$.properties.a"),
    }


def test_schema_urls_are_refused_naming_the_path_and_never_fetched(recorder, tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text("{}")
    for name, (schema, path) in hostile_schemas(recorder.url, meta.as_uri()).items():
        with pytest.raises(SchemaError) as err:
            check_schema(schema)
        assert err.value.where == f"schema {path}", name
    assert recorder.hits == []


def test_validators_never_fetch_even_for_a_schema_that_skipped_the_checks(recorder):
    # defence in depth: a RecordSchema built directly (no check_schema) still reads nothing
    for schema, _ in hostile_schemas(recorder.url, "file:///etc/passwd").values():
        record_schema = RecordSchema(schema=schema)
        try:
            record_schema.is_valid({"a": "x"})
            record_schema.errors({"a": 1})
        except SchemaError:
            pass  # an unresolvable reference, reported as the schema's fault
    assert recorder.hits == []


# the drafts jsonschema ships, as it spells them, with and without the empty fragment
DRAFTS = [cls.ID_OF(cls.META_SCHEMA).rstrip("#") for cls in (
    validators.Draft3Validator, validators.Draft4Validator, validators.Draft6Validator, validators.Draft7Validator,
    validators.Draft201909Validator, validators.Draft202012Validator)]


@pytest.mark.parametrize("dialect", DRAFTS + [d + "#" for d in DRAFTS])
def test_known_drafts_resolve_locally(dialect, recorder):
    schema = check_schema({**obj(), "$schema": dialect})
    assert schema.is_valid({"a": "x"}) and not schema.is_valid({"a": 1})
    assert recorder.hits == []


def test_refs_inside_a_nested_id_resolve_within_it():
    schema = check_schema(obj(a={"$id": "https://example.com/part/", "$defs": {"s": {"type": "integer"}},
                                 "$ref": "#/$defs/s"}))
    assert schema.is_valid({"a": 1}) and schema.errors({"a": "x"}) == ["$.a: 'x' is not of type 'integer'"]


def test_cli_refuses_a_remote_schema_url_before_any_request(recorder, llm, tmp_path):
    path = write_schema(tmp_path, {**obj(), "$schema": f"{recorder.url}/meta.json"})
    proc = cli("generate", str(path), "-n", "2", "--backend", "openai", "--base-url", llm.url + "/v1",
               "--model", "test-model", "--no-save")
    assert proc.returncode == 2, proc.stderr
    assert "$.$schema" in proc.stderr and "never fetched" in proc.stderr and "Traceback" not in proc.stderr
    assert recorder.hits == [] and llm.count_requests == 0


# -- 2. patterns run in linear time, validation off the event loop ----------------------------
def test_catastrophic_pattern_is_decided_and_explained_at_once():
    out = in_child(f"""
        import json
        from synth_tui.core.schema import check_schema
        record = {{"s": {HOSTILE_VALUE!r}, "k": {{{HOSTILE_VALUE!r}: 1}}}}
        s = check_schema({{"s": {{"type": "string", "pattern": {CATASTROPHIC!r}}},
                          "k": {{"type": "object", "patternProperties": {{{CATASTROPHIC!r}: {{"type": "string"}}}},
                                "additionalProperties": False}},
                          "u": {{"type": "object", "patternProperties": {{{CATASTROPHIC!r}: {{}}}},
                                "unevaluatedProperties": False, "required": False}}}})
        # the Python validator writes the messages; it must not run the pattern on re
        print(json.dumps([s.is_valid(record), s.errors(record),
                          [e.message for e in s.validator.iter_errors({{"u": {{{HOSTILE_VALUE!r}: 1}}}})]]))
    """)
    valid, errors, unevaluated = json.loads(out)
    assert valid is False
    assert any("does not match '^(a+)+$'" in e for e in errors)
    assert any("do not match any of the regexes" in e or "does not match any of the regexes" in e for e in errors)
    assert any("Unevaluated properties are not allowed ('aaaa" in e for e in unevaluated)


def test_catastrophic_pattern_in_a_real_run_is_rejected_and_the_run_ends(llm, tmp_path):
    schema = write_schema(tmp_path, {"s": {"type": "string", "pattern": CATASTROPHIC}})
    llm.faults.append(Fault(content=json.dumps({"s": HOSTILE_VALUE})))
    try:
        proc = cli("generate", str(schema), "-n", "2", "--batch-size", "1", "--concurrency", "1", "--backend",
                   "openai", "--base-url", llm.url + "/v1", "--model", "test-model", "--no-save", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("validation of one record hung the run")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2 and "1 rejected" in proc.stderr


def test_uniqueness_of_many_objects_is_checked_in_linear_time():
    out = in_child("""
        from synth_tui.core.schema import check_schema
        s = check_schema({"t": {"type": "array", "uniqueItems": True, "items": {"type": "object"}},
                          "n": {"type": "integer"}})
        many = [{"a": i} for i in range(30000)]
        print(s.errors({"t": many, "n": "x"}), s.errors({"t": [{"a": 1}, {"a": 1.0}], "n": 1}))
    """)
    assert "$.n: 'x' is not of type 'integer'" in out and "has non-unique elements" in out


def test_a_model_value_for_format_regex_cannot_overflow_the_stack():
    s = check_schema({"r": {"type": "string", "format": "regex"}})
    assert s.errors({"r": "^[a-z]+$"}) == []
    assert s.errors({"r": "(" * 5000})  # re.compile raised RecursionError on this


def test_patterns_the_validator_cannot_run_are_refused_at_check_time():
    with pytest.raises(SchemaError) as err:
        check_schema({"s": {"type": "string", "pattern": "(unclosed"}})
    assert err.value.where == "schema $.properties.s.pattern"


async def test_a_large_answer_is_validated_off_the_event_loop(llm):
    """A worker thread parses and validates an answer past OFF_LOOP_CHARS, so signals
    and keys are handled meanwhile."""
    threads: set[str] = set()

    class Spy(RecordSchema):
        def errors(self, record, limit=5):
            threads.add(threading.current_thread().name)
            return super().errors(record, limit)

    checked = check_schema({"name": {"type": "string"}})
    schema = Spy(schema=checked.schema)
    llm.faults.append(Fault(content=json.dumps({"name": "x" * 100_000})))
    llm.faults.append(Fault(content=json.dumps({"name": "short"})))
    backend = openai_backend(llm)
    result = await Run(schema, fast_config(2, batch_size=1, concurrency=1), backend).execute()
    await backend.aclose()
    assert result.accepted == 2
    assert threading.current_thread().name in threads and len(threads) == 2


# -- 3. parsing is linear; deep and huge answers are rejections --------------------------------
@pytest.mark.parametrize("expr", [
    '"{" * 1_000_000', '"[" * 1_000_000', '\'{"a":\' * 200_000', '"```" + " " * 200_000 + "x"',
    '\'{"a\\\\"\' * 200_000 + "\\\\"', '"{}" * 500_000',
])
def test_parsing_is_linear(expr):
    out = in_child(f"""
        import time
        from synth_tui.core.parsing import extract_records, UnparseableOutput
        text = {expr}
        t = time.perf_counter()
        try:
            found = len(extract_records(text))
        except UnparseableOutput as exc:
            found = type(exc).__name__
        print(found, time.perf_counter() - t)
    """, timeout=60)
    found, seconds = out.split()
    assert float(seconds) < 5, out  # the quadratic scan took 8 s at 200k characters


def test_deep_answers_are_refused_and_shallow_ones_kept():
    MAX_DEPTH = parsing.MAX_DEPTH
    for text in [fake_llm.nested(1000), fake_llm.nested(MAX_DEPTH + 1), "Here: " + fake_llm.nested(MAX_DEPTH + 1)]:
        with pytest.raises(UnparseableOutput, match="levels deep"):
            extract_records(text)
    assert extract_records(fake_llm.nested(MAX_DEPTH)) == [json.loads(fake_llm.nested(MAX_DEPTH - 1))]


def test_chatter_truncation_and_fences_still_parse():
    assert extract_records('```json   \n{"id": 1}\n```') == [{"id": 1}]
    assert extract_records('{"records": [{"id": 1}, {"id": 2}, {"id"') == [{"id": 1}, {"id": 2}]
    assert extract_records('see [note] then {"id": 1} and {"a": 1, oops {"id": 2}}') == [{"id": 1}, {"id": 2}]
    assert extract_records('{"s": "a } in a string ] too"}') == [{"s": "a } in a string ] too"}]


async def run_with(llm: FakeLLM, count: int = 2, backend_kw: dict | None = None, **kw):
    schema = check_schema({"name": {"type": "string"}})
    backend = openai_backend(llm, **(backend_kw or {}))
    log = EventLog()
    kw.setdefault("batch_size", 1)
    kw.setdefault("concurrency", 1)
    result = await Run(schema, fast_config(count, **kw), backend, on_event=log).execute()
    await backend.aclose()
    return result, log


async def test_a_deeply_nested_answer_is_a_counted_rejection(llm):
    llm.faults.extend([Fault(content=fake_llm.nested(1000)), Fault(content=fake_llm.nested(100))])
    result, log = await run_with(llm)
    assert result.status == "done" and result.accepted == 2 and result.rejected == 2
    assert all("levels deep" in e.reason for e in log.of(RecordRejected))


async def test_an_answer_past_the_size_cap_is_a_rejection_not_read_further(llm):
    llm.faults.append(Fault(pad=3 * 1024 * 1024))
    result, log = await run_with(llm, max_response_bytes=1024 * 1024)
    assert result.status == "done" and result.accepted == 2 and result.rejected == 1
    (rejection,) = log.of(RecordRejected)
    assert "larger than the cap of 1048576 bytes" in rejection.reason
    assert result.requests == 3 and result.retries == 0


def test_the_size_cap_is_checked():
    from synth_tui.core.engine import RunConfig
    from synth_tui.core.errors import UserInputError

    with pytest.raises(UserInputError, match="at least 1024 bytes"):
        RunConfig(count=1, max_response_bytes=10).check()


# -- 4. protocol errors are retried --------------------------------------------------------------
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("raw", ["BAD_STATUS_LINE", "NOT_HTTP", "BROKEN_CHUNKED", "SHORT_BODY", "BAD_GZIP"])
async def test_a_malformed_response_is_a_retried_transport_error(llm, raw, transport):
    llm.faults.append(Fault(raw=getattr(fake_llm, raw)))
    result, log = await run_with(llm, backend_kw={"transport": transport})
    assert result.status == "done" and result.accepted == 2, result.error
    assert result.retries == 1
    reason = log.of(RetryScheduled)[0].reason
    assert "internal error" not in reason and "\x1b" not in reason


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_hang_up_is_retried_once_the_server_has_answered(llm, transport):
    llm.faults.extend([Fault(), Fault(raw=fake_llm.HANG_UP)])
    result, log = await run_with(llm, backend_kw={"transport": transport})
    assert result.status == "done" and result.accepted == 2 and result.retries == 1
    assert "closed the connection without answering" in log.of(RetryScheduled)[0].reason


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_hang_up_before_any_answer_ends_the_run_at_once(llm, transport):
    # what a port forward or a proxy with nothing behind it does: like a refused connection
    llm.always = Fault(raw=fake_llm.HANG_UP)
    result, _ = await run_with(llm, count=5, backend_kw={"transport": transport}, concurrency=4)
    assert result.status == "failed" and result.retries == 0
    assert "closed the connection without answering" in result.error and "Is the server running" in result.error


# -- 5. the timeout bounds the whole answer ------------------------------------------------------
async def test_a_server_trickling_bytes_is_cut_off_at_the_timeout(llm):
    # one byte every 50 ms: every read is quick, the whole answer would take ~20 s
    llm.faults.append(Fault(trickle=0.05, pad=200))
    result, log = await run_with(llm, backend_kw={"read_timeout": 0.5})
    assert result.status == "done" and result.accepted == 2 and result.retries == 1
    assert "within 0.5 s" in log.of(RetryScheduled)[0].reason


# -- 6. deep schemas are refused at check time -----------------------------------------------------
def deep_short_form(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels - 1):
        schema = {"a": schema}
    return schema


def test_a_schema_past_the_depth_limit_is_refused_naming_the_path():
    MAX_SCHEMA_DEPTH = schema_module.MAX_SCHEMA_DEPTH
    with pytest.raises(SchemaError) as err:
        check_schema(deep_short_form(100))
    assert f"more than {MAX_SCHEMA_DEPTH} levels" in str(err.value)
    assert err.value.where == "schema $" + ".a" * MAX_SCHEMA_DEPTH
    with pytest.raises(SchemaError, match="levels deep"):
        parse_schema("[" * 100_000 + "]" * 100_000)
    at_limit = check_schema(deep_short_form(MAX_SCHEMA_DEPTH))
    record: object = "x"
    for _ in range(MAX_SCHEMA_DEPTH - 1):
        record = {"a": record}
    assert at_limit.is_valid(record) and at_limit.errors({"a": 1})


@pytest.mark.parametrize("command", ["generate", "templates"])
def test_cli_refuses_a_deep_schema_with_exit_2(command, tmp_path):
    path = write_schema(tmp_path, deep_short_form(150))
    args = ["templates", "save", "deep", str(path)] if command == "templates" else \
        ["generate", str(path), "-n", "1", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--no-save"]
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "levels deep" in proc.stderr and "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr


# -- 7. a run that gives up on duplicates says so ---------------------------------------------------
async def test_giving_up_on_duplicates_says_so(llm):
    llm.always = Fault(content=json.dumps({"name": "same"}))
    result, _ = await run_with(llm, count=5, max_attempts=2)
    assert result.status == "failed" and result.accepted == 1
    assert "the model kept returning duplicates: 9 of 10 records" in result.error
    assert "no reason recorded" not in result.error


# -- 8. file descriptors and refused connections ------------------------------------------------------
def test_running_out_of_file_descriptors_is_said_as_such(llm, tmp_path):
    import resource

    def low_limit() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (20, hard))

    schema = write_schema(tmp_path, {"name": {"type": "string"}})
    proc = cli("generate", str(schema), "-n", "64", "--batch-size", "1", "--concurrency", "64", "--backend", "openai",
               "--base-url", llm.url + "/v1", "--model", "test-model", "--no-save", "-q", preexec_fn=low_limit)
    assert proc.returncode == 1, proc.stderr
    assert "too many open files (its limit is 20)" in proc.stderr and "ulimit -n" in proc.stderr
    assert "Is the server running" not in proc.stderr


def test_a_refused_connection_ends_the_run_at_once_without_retries(tmp_path):
    schema = write_schema(tmp_path, {"name": {"type": "string"}})
    proc = cli("generate", str(schema), "-n", "5", "--concurrency", "1", "--backend", "openai",
               "--base-url", f"http://127.0.0.1:{free_port()}/v1", "--model", "m", "--no-save", timeout=20)
    assert proc.returncode == 1
    assert "cannot connect" in proc.stderr and "0 retries, 1 request," in proc.stderr


# -- 9. server error text is bounded -----------------------------------------------------------------
@pytest.mark.parametrize("body", [
    json.dumps({"error": {"message": "E" * 1_000_000}}), "<html>" + "E" * 1_000_000, fake_llm.nested(5000),
])
async def test_a_huge_error_body_gives_a_short_message(llm, body):
    llm.faults.append(Fault(status=400, body=body))
    result, _ = await run_with(llm)
    assert result.status == "failed"
    assert "HTTP 400" in result.error and len(result.error) < 600


def test_a_rejection_reason_stays_short_whatever_the_keys():
    # reasons are shown, stored and fed back into the next prompts: a key the size of
    # the answer must not make them that size
    schema = check_schema({"obj": {"type": "object", "additionalProperties": {"type": "integer"}}})
    (reason,) = schema.errors({"obj": {"k" * 100_000: "x" * 100_000}})
    assert len(reason) < 400 and reason.endswith("... is not of type 'integer'")
