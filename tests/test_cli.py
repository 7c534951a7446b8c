"""The CLI as a user runs it: real processes, a real server, real files."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from synth_tui.core.schema import check_schema
from synth_tui.core.store import read_jsonl

from .conftest import PERSON, ROOT, ServerProcess, cli, write_schema


def gen_args(server, schema_path, n, data_dir, *extra):
    return ["generate", str(schema_path), "-n", str(n), "--backend", "openai", "--base-url", server.url + "/v1",
            "--model", "test-model", "--data-dir", str(data_dir), *extra]


def test_generate_to_stdout_and_history(tmp_path, server_process):
    schema = write_schema(tmp_path)
    proc = cli(*gen_args(server_process, schema, 15, tmp_path / "d", "--batch-size", "4"))
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    validator = check_schema(PERSON)
    assert len(records) == 15 and all(validator.is_valid(r) for r in records)
    assert "15/15" in proc.stderr and "done" in proc.stderr
    hist = cli("history", "--data-dir", str(tmp_path / "d"))
    assert hist.returncode == 0 and "done" in hist.stdout and "15/15" in hist.stdout
    runs = json.loads(cli("history", "--json", "--data-dir", str(tmp_path / "d")).stdout)
    shown = cli("show", runs[0]["id"], "--data-dir", str(tmp_path / "d"))
    assert shown.returncode == 0 and "15/15 accepted" in shown.stdout and "sample (5)" in shown.stdout


def test_bad_schema_exits_2_with_line_and_column(tmp_path):
    path = write_schema(tmp_path, '{\n  "name": {"type": "string"},\n  "age": {"type": "integer",}\n}')
    proc = cli("generate", str(path), "-n", "3", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert f"{path}:3:" in proc.stderr and "invalid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_schema_breaking_the_meta_schema_names_the_path(tmp_path):
    path = write_schema(tmp_path, {"age": {"type": "integer", "minimum": "eighteen"}})
    proc = cli("generate", str(path), "-n", "3", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert "$.properties.age.minimum" in proc.stderr and "'eighteen' is not of type 'number'" in proc.stderr


def test_bad_arguments_exit_2(tmp_path):
    path = write_schema(tmp_path)
    assert cli("generate", str(path), "-n", "0", "--data-dir", str(tmp_path)).returncode == 2
    missing = cli("generate", str(tmp_path / "nope.json"), "-n", "3")
    assert missing.returncode == 2 and "schema file not found" in missing.stderr
    nokey = cli("generate", str(path), "-n", "3", "--backend", "openai")
    assert nokey.returncode == 2 and "OPENAI_API_KEY" in nokey.stderr


def test_failed_run_exits_1_and_is_in_history(tmp_path):
    srv = ServerProcess("--api-key", "the-right-key")
    try:
        schema = write_schema(tmp_path)
        proc = cli(*gen_args(srv, schema, 5, tmp_path / "d"), env={"OPENAI_API_KEY": "sk-fake-SECRET-0123456789"})
    finally:
        srv.stop()
    assert proc.returncode == 1
    assert "refused the API key" in proc.stderr and "SECRET" not in proc.stderr
    assert proc.stdout == ""
    failed = json.loads(cli("history", "--json", "--status", "failed", "--data-dir", str(tmp_path / "d")).stdout)
    assert len(failed) == 1 and "HTTP 401" in failed[0]["error"]


def test_api_key_never_lands_on_disk(tmp_path):
    key = "sk-fake-SECRET-0123456789abcdef"
    srv = ServerProcess("--api-key", key)
    try:
        schema = write_schema(tmp_path)
        data = tmp_path / "d"
        proc = cli(*gen_args(srv, schema, 8, data, "-o", str(tmp_path / "out.csv")), env={"OPENAI_API_KEY": key})
        assert proc.returncode == 0, proc.stderr
        run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
        for fmt in ("jsonl", "json"):
            assert cli("export", run_id, "-o", str(tmp_path / f"out.{fmt}"), "--data-dir", str(data)).returncode == 0
    finally:
        srv.stop()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for path in files:
        assert key.encode() not in path.read_bytes(), path
        assert b"SECRET" not in path.read_bytes(), path
    assert key not in proc.stderr and key not in proc.stdout


def test_export_refuses_to_overwrite_without_force(tmp_path, server_process):
    schema = write_schema(tmp_path)
    data = tmp_path / "d"
    assert cli(*gen_args(server_process, schema, 3, data)).returncode == 0
    run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
    out = tmp_path / "x.jsonl"
    out.write_text("precious\n")
    proc = cli("export", run_id, "-o", str(out), "--data-dir", str(data))
    assert proc.returncode == 2 and "already exists" in proc.stderr and out.read_text() == "precious\n"
    assert cli("export", run_id, "-o", str(out), "--force", "--data-dir", str(data)).returncode == 0
    assert len(out.read_text().splitlines()) == 3
    bad = cli("export", run_id, "-o", str(tmp_path / "no" / "such" / "dir.jsonl"), "--data-dir", str(data))
    assert bad.returncode == 2 and "cannot write" in bad.stderr


def wait_for_journal(data, lines: int, timeout: float = 30):
    """The run's journal once it holds ``lines`` records (they appear at each fsync group)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((data / "runs").glob("*/records.jsonl")) if (data / "runs").exists() else []
        if found and len(found[0].read_bytes().splitlines()) >= lines:
            return found[0]
        time.sleep(0.02)
    return None


def test_sigkill_mid_run_then_resume_gives_exactly_n(tmp_path, server_process):
    schema = write_schema(tmp_path)
    data = tmp_path / "d"
    n = 300  # ~1.5 s of requests at the server's delay: the kill lands mid-run
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth_tui", *gen_args(server_process, schema, n, data, "--batch-size", "2",
                                                     "--concurrency", "2", "-q")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    journal = wait_for_journal(data, 20)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert journal is not None
    kept = len(list(read_jsonl(journal)))
    assert 20 <= kept < n
    run_id = journal.parent.name
    hist = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)
    assert hist[0]["status"] == "running"  # nobody has opened the directory for writing yet
    resumed = cli("resume", run_id, "--base-url", server_process.url + "/v1", "--data-dir", str(data))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{n}/{n} records" in resumed.stderr
    records = list(read_jsonl(journal))
    validator = check_schema(PERSON)
    assert len(records) == n
    assert len({json.dumps(r, sort_keys=True) for r in records}) == n
    assert all(validator.is_valid(r) for r in records)
    doc = json.loads(cli("show", run_id, "--json", "--data-dir", str(data)).stdout)["run"]
    assert doc["status"] == "done" and doc["counts"]["accepted"] == n


def test_ctrl_c_exits_130_and_keeps_records(tmp_path, server_process):
    schema = write_schema(tmp_path)
    data = tmp_path / "d"
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth_tui", *gen_args(server_process, schema, 500, data, "--batch-size", "1",
                                                     "--concurrency", "1", "-o", str(tmp_path / "o.jsonl"))],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert wait_for_journal(data, 1) is not None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "cancelled" in err and "synth-tui resume" in err
    written = (tmp_path / "o.jsonl").read_text().splitlines()
    assert 0 < len(written) < 500
    doc = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]
    assert doc["status"] == "cancelled" and doc["counts"]["accepted"] == len(written)


def test_corrupted_history_gives_a_message_not_a_traceback(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "history.json").write_text("{not json")
    proc = cli("history", "--data-dir", str(data))
    assert proc.returncode == 0
    assert "is not valid JSON" in proc.stderr and "Traceback" not in proc.stderr


def test_csv_export_columns_and_values(tmp_path):
    from synth_tui.core.export import export_to_path

    records = [
        {"name": "Zoë, \"the\" one", "note": "line1\nline2", "address": {"city": "Köln", "geo": {"lat": 1.5}},
         "tags": ["a", "b"], "ok": True, "missing": None},
        {"name": "plain", "note": "", "address": {"city": "Oslo", "geo": {"lat": -2}}, "tags": [], "ok": False,
         "missing": None, "extra": 7},
    ]
    schema = {"type": "object", "properties": {
        "name": {"type": "string"}, "note": {"type": "string"}, "ok": {"type": "boolean"},
        "address": {"type": "object", "properties": {"city": {"type": "string"},
                                                     "geo": {"type": "object", "properties": {"lat": {"type": "number"}}}}},
        "tags": {"type": "array"}, "missing": {"type": "null"}}}
    out = tmp_path / "r.csv"
    assert export_to_path(lambda: iter(records), out, schema=schema) == 2
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", "note", "ok", "address.city", "address.geo.lat", "tags", "missing", "extra"]
    assert rows[1] == ['Zoë, "the" one', "line1\nline2", "true", "Köln", "1.5", '["a", "b"]', "", ""]
    assert rows[2] == ["plain", "", "false", "Oslo", "-2", "[]", "", "7"]
    for fmt in ("json", "jsonl"):
        path = tmp_path / f"r.{fmt}"
        export_to_path(lambda: iter(records), path)
        text = path.read_text(encoding="utf-8")
        loaded = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
        assert loaded == records
    empty = tmp_path / "e.json"
    export_to_path(lambda: iter([]), empty)
    assert json.loads(empty.read_text()) == []


def test_templates_list_save_show_delete(tmp_path):
    listed = cli("templates")
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert listed.returncode == 0 and len(names) >= 10 and "orders" in names
    schema = write_schema(tmp_path, {"title": {"type": "string"}, "year": {"type": "integer"}})
    assert cli("templates", "save", "books", str(schema)).returncode == 0
    assert "books                yours" in cli("templates").stdout
    assert json.loads(cli("templates", "show", "books").stdout) == {"title": {"type": "string"},
                                                                     "year": {"type": "integer"}}
    again = cli("templates", "save", "books", str(schema))
    assert again.returncode == 2 and "--force" in again.stderr
    bad = write_schema(tmp_path, '{"a": null}', "bad.json")
    refused = cli("templates", "save", "broken", str(bad))
    assert refused.returncode == 2 and "defined as null" in refused.stderr
    builtin = cli("templates", "delete", "orders")
    assert builtin.returncode == 2 and "built-in" in builtin.stderr
    shadow = cli("templates", "save", "shop", str(schema))  # the shop dataset would be hidden behind it
    assert shadow.returncode == 2 and "built-in dataset template" in shadow.stderr
    assert cli("templates", "delete", "books").returncode == 0
    assert "books" not in cli("templates").stdout


def test_compare_two_models_side_by_side(tmp_path):
    srv = ServerProcess("--models", "steady", "--invalid-share", "flaky=0.4")
    try:
        schema = write_schema(tmp_path, {"name": {"type": "string"},
                                         "tier": {"type": "string", "enum": ["a", "b"]}})
        proc = cli("compare", str(schema), "-n", "20", "--seed", "5", "--batch-size", "5",
                   "-m", f"openai:steady@{srv.url}/v1", "-m", f"openai:flaky@{srv.url}/v1",
                   "--price", "steady=1,2", "--json", "--data-dir", str(tmp_path / "d"))
    finally:
        srv.stop()
    assert proc.returncode == 0, proc.stderr
    steady, flaky = json.loads(proc.stdout)
    assert steady["label"] == "openai:steady" and flaky["label"] == "openai:flaky"
    assert steady["accepted"] == flaky["accepted"] == 20
    assert steady["validity"] == 1.0 and flaky["validity"] < 0.9
    assert flaky["tokens_per_record"] > steady["tokens_per_record"]
    assert steady["cost"] == pytest.approx((400 * 1 + 400 * 2) / 1e6) and flaky["cost"] is None
    runs = json.loads(cli("history", "--json", "--data-dir", str(tmp_path / "d")).stdout)
    assert {r["id"] for r in runs} == {steady["run_id"], flaky["run_id"]}
    assert all(r["config"]["params"]["seed"] == 5 for r in runs)


def test_report_command(tmp_path, server_process):
    schema = write_schema(tmp_path)
    data = tmp_path / "d"
    assert cli(*gen_args(server_process, schema, 12, data)).returncode == 0
    run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
    text = cli("report", run_id, "--data-dir", str(data))
    assert text.returncode == 0 and "12 records · validity 100.0%" in text.stdout
    assert "address.city" in text.stdout and "age" in text.stdout
    doc = json.loads(cli("report", run_id, "--json", "--data-dir", str(data)).stdout)
    age = next(f for f in doc["fields"] if f["path"] == "age")
    assert 18 <= age["min"] <= age["max"] <= 90 and len(age["histogram"]) == 10


def test_jsonl_streams_to_stdout_and_a_closed_pipe_stops_the_run(tmp_path, server_process):
    schema = write_schema(tmp_path)
    data = tmp_path / "d"
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth_tui", *gen_args(server_process, schema, 400, data, "--batch-size", "1",
                                                     "--concurrency", "1", "-q")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    first = [proc.stdout.readline() for _ in range(3)]  # records arrive while the run goes on
    assert all(json.loads(line)["name"] for line in first)
    proc.stdout.close()  # the reader goes away, as with `| head -3`
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "cancelled" in err
    doc = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]
    assert doc["status"] == "cancelled" and 3 <= doc["counts"]["accepted"] < 400


def test_resume_needs_consent_for_the_runs_endpoint_and_key_variable(tmp_path):
    """The history says where the run went and which variable held its key; the history
    alone does not get to send a key anywhere: the user names both, or resume refuses."""
    key = "sk-custom-0123456789"
    srv = ServerProcess("--api-key", key, "--delay", "0.02")
    try:
        data = tmp_path / "d"
        env = {"MY_LLM_KEY": key}
        proc = subprocess.Popen(
            [sys.executable, "-m", "synth_tui", *gen_args(srv, write_schema(tmp_path), 300, data, "--batch-size", "1",
                                                         "--concurrency", "1", "--api-key-env", "MY_LLM_KEY", "-q",
                                                         "-o", str(tmp_path / "o.jsonl"))],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        journal = wait_for_journal(data, 1)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        assert journal is not None and proc.returncode == 130
        run_id = journal.parent.name
        refused = cli("resume", run_id, "--data-dir", str(data), env=env)
        assert refused.returncode == 2
        assert f"--base-url {srv.url}/v1" in refused.stderr and "--api-key-env MY_LLM_KEY" in refused.stderr
        assert "Traceback" not in refused.stderr
        half = cli("resume", run_id, "--base-url", srv.url + "/v1", "--data-dir", str(data), env=env)
        assert half.returncode == 2 and "--api-key-env MY_LLM_KEY" in half.stderr and "--base-url" not in half.stderr
        resumed = cli("resume", run_id, "--base-url", srv.url + "/v1", "--api-key-env", "MY_LLM_KEY",
                      "--data-dir", str(data), env=env)  # no OPENAI_API_KEY
    finally:
        srv.stop()
    assert resumed.returncode == 0, resumed.stderr
    assert "300/300 records" in resumed.stderr
    history = [data / "index.sqlite", *data.glob("runs/*/run.json")]
    assert all(key.encode() not in path.read_bytes() for path in history)


# -- on a terminal: rich progress and tables, outside text never markup -------------------------
def _drain(fd: int, chunks: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every writer of the terminal is gone
            return
        if not chunk:
            return
        chunks.append(chunk)


def cli_on_terminal(*args: str, streams: tuple[str, ...] = ("stderr",), timeout: float = 60):
    """The real CLI with ``streams`` (stdout, stderr) on a pseudo-terminal 200 columns wide,
    the others captured: (exit code, what the terminal got, what was captured)."""
    import fcntl
    import pty
    import struct
    import termios
    import threading

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"}
    for var in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(var, None)
    files = {name: slave if name in streams else subprocess.PIPE for name in ("stdout", "stderr")}
    proc = subprocess.Popen([sys.executable, "-m", "synth_tui", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            text=True, **files)
    os.close(slave)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(master, chunks), daemon=True)
    reader.start()
    out, err = proc.communicate(timeout=timeout)
    reader.join(timeout)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace"), out if "stdout" not in streams else err


HOSTILE = "[bold red]busy[/bold red] \x1b]0;pwned\x07 [link=http://evil.example]here[/link]"


def test_progress_on_a_terminal_is_a_live_bar_and_reasons_are_never_markup(tmp_path, llm):
    from .fake_llm import Fault

    llm.faults.extend([
        Fault(status=503, headers={"retry-after-ms": "10"}, body=json.dumps({"error": {"message": HOSTILE}})),
        Fault(content=json.dumps({"n": "[red]oops[/red]"})),
    ])
    schema = write_schema(tmp_path, {"n": {"type": "integer"}})
    code, terminal, out = cli_on_terminal(*gen_args(llm, schema, 3, tmp_path / "d", "--batch-size", "1",
                                                    "--concurrency", "1", "-o", str(tmp_path / "o.jsonl")))
    assert code == 0, terminal
    assert "━" in terminal and "3/3" in terminal  # rich's bar, not the plain lines
    assert "[####" not in terminal
    assert "[bold red]busy[/bold red] ␛]0;pwned␇ [link=http://evil.example]here[/link]" in terminal
    assert "'[red]oops[/red]' is not of type 'integer'" in terminal
    assert "\x1b]" not in terminal and "\x07" not in terminal  # no OSC from the server, nor a rich hyperlink
    assert "run " in terminal and "done, 3/3 records" in terminal
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 3 and out == ""


def test_records_streamed_to_the_same_terminal_are_printed_above_the_bar(tmp_path, llm):
    from .fake_llm import Fault

    llm.faults.extend(Fault(content=json.dumps({"s": f"[b]{i}[/b]"})) for i in range(3))
    schema = write_schema(tmp_path, {"s": {"type": "string"}})
    code, terminal, _ = cli_on_terminal(*gen_args(llm, schema, 3, tmp_path / "d", "--batch-size", "1",
                                                  "--concurrency", "1", "--no-save"), streams=("stdout", "stderr"))
    assert code == 0, terminal
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal).replace("\r", "\n")
    records = [json.loads(line) for line in shown.split("\n") if line.startswith("{")]
    assert sorted(r["s"] for r in records) == ["[b]0[/b]", "[b]1[/b]", "[b]2[/b]"]
    assert "━" in shown and "3/3" in shown


def test_history_report_and_compare_are_tables_on_a_terminal(tmp_path, llm):
    from .fake_llm import ModelBehaviour

    data = tmp_path / "d"
    schema = write_schema(tmp_path)
    model = "[bold]m[/bold]\x1b]52;c;aGk=\x07"  # a model name is outside text too
    llm.models.update({model: ModelBehaviour(), "one": ModelBehaviour(), "two": ModelBehaviour()})
    assert cli(*gen_args(llm, schema, 4, data)[:-4], "--model", model, "--data-dir", str(data)).returncode == 0
    code, terminal, _ = cli_on_terminal("history", "--data-dir", str(data), streams=("stdout",))
    assert code == 0 and "─" in terminal and "STATUS" in terminal and "4/4" in terminal
    assert "openai:[bold]m[/bold]␛]52;c;aGk=␇" in terminal and "\x1b]" not in terminal
    run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
    code, terminal, _ = cli_on_terminal("report", run_id, "--data-dir", str(data), streams=("stdout",))
    assert code == 0 and "─" in terminal and "validity 100.0%" in terminal and "address.city" in terminal
    code, terminal, _ = cli_on_terminal("history", "--json", "--data-dir", str(data), streams=("stdout",))
    assert code == 0 and json.loads(terminal)[0]["backend"]["model"] == model  # --json is JSON anywhere
    code, terminal, _ = cli_on_terminal(
        "compare", str(schema), "-n", "4", "--seed", "3", "-q", "-m", f"openai:one@{llm.url}/v1",
        "-m", f"openai:two@{llm.url}/v1", "--data-dir", str(data), streams=("stdout",))
    assert code == 0 and "─" in terminal and "openai:one" in terminal and "openai:two" in terminal
    assert "validity" in terminal and "100.0%" in terminal


def test_version_comes_from_the_installed_package(monkeypatch, capsys):
    import importlib.metadata

    from synth_tui.cli import main

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.8.7" if name == "synth-tui" else "?")
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == "synth-tui 9.8.7\n"


@pytest.mark.parametrize("argv", [["--version"], ["history"], ["--help"]])
def test_commands_that_run_nothing_do_not_load_the_engine(tmp_path, argv):
    script = ("import json, sys\nfrom synth_tui.cli import main\n"
              f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
              "heavy = ['synth_tui.core.engine', 'httpx', 'jsonschema', 'rich.progress', 'rich.table']\n"
              "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.splitlines()[-1]) == []


def test_the_top_level_data_dir_applies_to_commands(tmp_path, server_process):
    data = tmp_path / "d"
    assert cli(*gen_args(server_process, write_schema(tmp_path), 2, data)).returncode == 0
    listed = cli("--data-dir", str(data), "history", "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1


def test_a_base_url_that_is_no_address_is_bad_input_before_any_run(tmp_path):
    data = tmp_path / "d"
    proc = cli("generate", str(write_schema(tmp_path)), "-n", "2", "--backend", "openai", "--base-url", "notaurl",
               "--model", "m", "--data-dir", str(data))
    assert proc.returncode == 2 and "is not an http:// or https:// address" in proc.stderr
    assert json.loads(cli("history", "--json", "--data-dir", str(data)).stdout) == []


def test_core_errors_give_each_interface_its_own_advice():
    from synth_tui.core.errors import UserInputError
    from synth_tui.core.export import check_output_path

    import pytest as _pytest

    with _pytest.raises(UserInputError) as caught:
        check_output_path(__file__)
    assert "--force" not in str(caught.value) and "--force" not in caught.value.remedy("tui")
    assert "--force" in caught.value.remedy("cli")


def test_generate_takes_a_templates_name(tmp_path, server_process):
    proc = cli("generate", "products", "-n", "3", "--backend", "openai", "--base-url", server_process.url + "/v1",
               "--model", "test-model", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 3 and "price" in proc.stdout
    missing = cli("generate", "no-such-thing", "-n", "1", "--data-dir", str(tmp_path / "d"))
    assert missing.returncode == 2 and "a template's name" in missing.stderr
