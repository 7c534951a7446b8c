"""Hostile and careless input to the history store, the exports and the CLI: special
files, full disks, concurrent writers, tampered history files, bad arguments, and a server
whose answers hold terminal escape sequences. Real files, real processes, real servers."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from synth_tui.core.backends import BackendSpec, ResumeNeedsConsent, resume_spec
from synth_tui.core.config import load_settings
from synth_tui.core.errors import StoreError, UserInputError
from synth_tui.core.export import export_to_path
from synth_tui.core.fileio import replace_file
from synth_tui.core.store import Journal, RunBackend, RunCounts, RunDoc, Store, read_jsonl

from .conftest import ROOT, ServerProcess, cli, write_schema
from .fake_llm import FakeLLM


def gen_args(url: str, schema_path: Path, n: int, data_dir: Path, *extra: str) -> list[str]:
    return ["generate", str(schema_path), "-n", str(n), "--backend", "openai", "--base-url", url + "/v1",
            "--model", "test-model", "--data-dir", str(data_dir), *extra]


def make_run(data: Path, records: list[dict[str, Any]], run_id: str = "r1", **fields: Any) -> str:
    """A finished run in a real data directory, without a server."""
    with Store(data) as store:
        store.create_run({"id": run_id, "schema": {"type": "object"}, "backend": {"backend": "openai"}, **fields})
        journal = store.open_journal(run_id)
        journal.append(records)
        journal.close()
        store.update_run(run_id, status="done", counts={"accepted": len(records), "requested": len(records)})
    return run_id


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    yield server
    server.stop()


# -- one atomic write ----------------------------------------------------------------------
def test_replace_keeps_the_old_file_and_leaves_no_temp_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError):
        with replace_file(target) as fh:
            fh.write("half of the new")
            raise RuntimeError("the record source broke")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with replace_file(target) as fh:
        fh.write("new\n")
    assert target.read_text() == "new\n" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_settings_and_templates_go_through_the_same_write(tmp_path, monkeypatch):
    """A failing fsync leaves the old settings and template files intact and no temp file."""
    from synth_tui.core import templates

    settings = load_settings()
    settings.concurrency = 7
    path = settings.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    templates.save_template("mine", json.dumps({"a": {"type": "string"}}))
    before = {p: p.read_bytes() for p in path.parent.rglob("*") if p.is_file()}

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", failing_fsync)
        settings.concurrency = 9
        with pytest.raises(OSError):
            settings.save()
        with pytest.raises(UserInputError, match="disk is full"):
            templates.save_template("mine", json.dumps({"b": {"type": "string"}}), force=True)
    assert {p: p.read_bytes() for p in path.parent.rglob("*") if p.is_file()} == before
    assert load_settings().concurrency == 7


# -- special files are written through, never replaced ---------------------------------------
class FifoReader:
    """Reads a FIFO in a thread until its writer closes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with open(self.path, "rb") as fh:  # blocks until a writer opens the FIFO
            self.data = fh.read()

    def finish(self) -> bytes:
        """The bytes read; if nobody ever opened the FIFO for writing, unblock the reader."""
        if self.thread.is_alive() and stat.S_ISFIFO(os.stat(self.path).st_mode):
            with contextlib.suppress(OSError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        self.thread.join(10)
        return self.data


@pytest.mark.parametrize("force", [False, True])
def test_export_to_a_fifo_writes_through_it(tmp_path, force):
    data = tmp_path / "d"
    records = [{"i": i, "name": f"n{i}"} for i in range(200)]
    run_id = make_run(data, records)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    proc = cli("export", run_id, "-o", str(fifo), *(["--force"] if force else []), "--data-dir", str(data))
    got = reader.finish()
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert [json.loads(line) for line in got.splitlines()] == records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "pipe"]


def test_export_to_a_device_node_keeps_the_device(tmp_path):
    data = tmp_path / "d"
    run_id = make_run(data, [{"i": i} for i in range(50)])
    if os.geteuid() == 0:
        node = tmp_path / "null"
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a second /dev/null, in tmp
    else:
        node = Path("/dev/null")  # not root: it cannot be replaced anyway, but must be written
    proc = cli("export", run_id, "-o", str(node), "--force", "--data-dir", str(data))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.lstat(node).st_mode), "the device node was replaced by a regular file"
    assert not [p for p in node.parent.iterdir() if p.name.startswith(f".{node.name}.")]


def test_export_to_dev_stdout_and_to_a_directory(tmp_path):
    data = tmp_path / "d"
    records = [{"i": i} for i in range(5)]
    run_id = make_run(data, records)
    out = cli("export", run_id, "-o", "/dev/stdout", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == records
    (tmp_path / "folder").mkdir()
    folder = cli("export", run_id, "-o", str(tmp_path / "folder"), "--force", "--data-dir", str(data))
    assert folder.returncode == 2 and "is a directory" in folder.stderr and "Traceback" not in folder.stderr


# -- concurrent exports to one path -------------------------------------------------------------
def test_two_exports_to_one_path_at_once_do_not_mix(tmp_path):
    """The first export is held half-way until the second has finished: each must write its
    own temp file, so the file ends up exactly the last one to finish."""
    out = tmp_path / "same.jsonl"
    first = [{"who": "first", "i": i, "pad": "a" * 100} for i in range(2000)]
    second = [{"who": "second", "i": i} for i in range(3000)]
    halfway, second_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def held_records() -> Iterator[dict[str, Any]]:
        for i, record in enumerate(first):
            if i == len(first) // 2:
                halfway.set()
                assert second_done.wait(30)
            yield record

    def export_first() -> None:
        try:
            export_to_path(held_records, out, force=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            halfway.set()

    thread = threading.Thread(target=export_first)
    thread.start()
    assert halfway.wait(30)
    export_to_path(lambda: iter(second), out, force=True)
    assert read_records(out) == second
    second_done.set()
    thread.join(30)
    assert not errors, errors
    raw = out.read_bytes()
    assert b"\0" not in raw and read_records(out) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.jsonl"]


def test_two_export_processes_to_one_path(tmp_path):
    data = tmp_path / "d"
    runs = {"a": [{"run": "a", "i": i, "pad": "x" * 200} for i in range(20000)],
            "b": [{"run": "b", "i": i, "pad": "y" * 200} for i in range(20000)]}
    for run_id, records in runs.items():
        make_run(data, records, run_id)
    out = tmp_path / "same.jsonl"
    procs = [subprocess.Popen([sys.executable, "-m", "synth_tui", "export", run_id, "-o", str(out), "--force",
                               "--data-dir", str(data)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for run_id in runs]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert read_records(out) in list(runs.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "same.jsonl"]


# -- a write to stdout or -o that fails -------------------------------------------------------
def run_with_stdout(path: str, *args: str) -> subprocess.CompletedProcess:
    with open(path, "w") as sink:
        return subprocess.run([sys.executable, "-m", "synth_tui", *args], cwd=ROOT, stdout=sink,
                              stderr=subprocess.PIPE, text=True, timeout=60)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_generate_to_a_full_stdout_fails_and_keeps_the_run(tmp_path, llm, fmt):
    data = tmp_path / "d"
    proc = run_with_stdout("/dev/full", *gen_args(llm.url, write_schema(tmp_path), 50, data, "--format", fmt))
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert "cannot write to standard output: No space left on device" in proc.stderr
    (doc,) = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)
    assert f"synth-tui export {doc['id']} -o FILE" in proc.stderr
    with Store(data, writable=False) as store:
        assert store.count_records(doc["id"]) == doc["counts"]["accepted"] >= 1


def test_export_and_history_to_dev_full_fail_clearly(tmp_path):
    data = tmp_path / "d"
    run_id = make_run(data, [{"i": i} for i in range(100)])
    export = cli("export", run_id, "-o", "/dev/full", "--data-dir", str(data))
    assert export.returncode == 1, export.stderr
    assert "disk is full" in export.stderr and "Traceback" not in export.stderr
    assert f"synth-tui export {run_id} -o FILE" in export.stderr
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    history = run_with_stdout("/dev/full", "history", "--data-dir", str(data))
    assert history.returncode == 1 and "cannot write to standard output" in history.stderr
    assert "Traceback" not in history.stderr and "Exception ignored" not in history.stderr


@pytest.mark.parametrize("no_save", [False, True])
def test_an_output_that_cannot_be_created_is_refused_before_the_first_request(tmp_path, llm, no_save):
    data = tmp_path / "d"
    out = tmp_path / "nonexistent" / "dir" / "x.jsonl"
    proc = cli(*gen_args(llm.url, write_schema(tmp_path), 20, data, "-o", str(out),
                         *(["--no-save"] if no_save else [])))
    assert proc.returncode == 2, proc.stderr
    assert str(out) in proc.stderr and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    assert llm.count_requests == 0
    assert not (data / "runs").exists() or not list((data / "runs").iterdir())


def test_output_removed_during_the_run_says_where_the_records_are(tmp_path):
    """The folder of -o disappears while the run goes on: the run id and the export command."""
    srv = ServerProcess("--delay", "0.02")
    data = tmp_path / "d"
    folder = tmp_path / "out"
    folder.mkdir()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "synth_tui", *gen_args(srv.url, write_schema(tmp_path), 40, data,
                                                         "--batch-size", "1", "--concurrency", "1", "-q",
                                                         "-o", str(folder / "x.jsonl"))],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert wait_for_lines(data, 1) is not None
        folder.rmdir()
        _, err = proc.communicate(timeout=60)
    finally:
        srv.stop()
    assert proc.returncode == 1, err
    run_id = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)[0]["id"]
    assert f"synth-tui export {run_id} -o FILE" in err and "Traceback" not in err


# -- the journal is flushed before a record reaches stdout --------------------------------------
def wait_for_lines(data: Path, lines: int, timeout: float = 30) -> Path | None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((data / "runs").glob("*/records.jsonl")) if (data / "runs").exists() else []
        if found and len(found[0].read_bytes().splitlines()) >= lines:
            return found[0]
        time.sleep(0.02)
    return None


def test_every_record_on_stdout_is_in_the_journal_after_a_kill(tmp_path):
    srv = ServerProcess("--delay", "0.01")
    data = tmp_path / "d"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "synth_tui", *gen_args(srv.url, write_schema(tmp_path), 2000, data,
                                                         "--batch-size", "2", "--concurrency", "4", "-q")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        seen = [proc.stdout.readline() for _ in range(30)]  # records streamed while the run goes on
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
    finally:
        srv.stop()
    streamed = [json.loads(line) for line in b"".join(seen + [rest]).splitlines(keepends=True)
                if line.endswith(b"\n")]
    (journal,) = (data / "runs").glob("*/records.jsonl")
    kept = {json.dumps(r, sort_keys=True) for r in read_jsonl(journal)}
    assert len(streamed) >= 30
    missing = [r for r in streamed if json.dumps(r, sort_keys=True) not in kept]
    assert not missing, f"{len(missing)} of {len(streamed)} streamed records are not in the journal"


# -- a history that is empty, null or of the wrong shape ------------------------------------------
CORRUPT = {
    "empty": b"",
    "blank": b"  \n\t\n",
    "null": b"null",
    "list": b"[]",
    "table-list": b'{"_default": []}',
    "doc-without-id": b'{"_default": {"1": {"status": "done"}}}',
    "counts-string": b'{"_default": {"1": {"id": "r1", "counts": "many"}}}',
    "bad-doc-id": b'{"_default": {"x": {"id": "r1"}}}',
}


@pytest.mark.parametrize("name", list(CORRUPT))
def test_a_corrupt_history_is_rebuilt_and_never_drops_runs(tmp_path, name):
    data = tmp_path / "d"
    make_run(data, [{"i": 1}, {"i": 2}], "r1")
    make_run(data, [{"i": 3}], "r2")
    (data / "history.json").write_bytes(CORRUPT[name])
    listed = cli("history", "--data-dir", str(data))  # read-only: shows the runs, repairs nothing
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr and "warning" in listed.stderr
    assert "r1" in listed.stdout and "r2" in listed.stdout and "2/2" in listed.stdout
    assert (data / "history.json").read_bytes() == CORRUPT[name]
    store = Store(data)  # a writer moves it aside and rebuilds it
    try:
        assert any("moved to" in w and "rebuilt" in w for w in store.warnings)
        assert sorted(d.id for d in store.list_runs()) == ["r1", "r2"]
        store.create_run({"id": "r3", "schema": {}})
    finally:
        store.close()
    (backup,) = data.glob("history.corrupt-*.json")
    assert backup.read_bytes() == CORRUPT[name]
    with Store(data, writable=False) as store:
        assert sorted(d.id for d in store.list_runs()) == ["r1", "r2", "r3"]


def test_an_index_missing_runs_gets_them_back(tmp_path):
    """The run files are the truth: an index that lost a run (or was lost) gets it back,
    and no write leaves one out."""
    data = tmp_path / "d"
    make_run(data, [{"i": 1}], "r1")
    (data / "index.sqlite").unlink()
    with Store(data, writable=False) as store:
        assert [d.id for d in store.list_runs()] == ["r1"]
    with Store(data) as store:
        store.create_run({"id": "r2", "schema": {}})
    with Store(data, writable=False) as store:
        assert sorted(d.id for d in store.list_runs()) == ["r1", "r2"]


# -- a run document edited by hand -------------------------------------------------------------------
EDITED = {
    "id": "r1", "status": None, "created": None, "finished": ["x"], "elapsed": 1e300, "error": {"why": 1},
    "counts": {"accepted": "many", "requested": -5, "rejected": True, "retries": 10**30, "answers": 2.5},
    "backend": {"backend": 5, "model": ["m"], "base_url": 7, "api_key_env": None},
    "config": {"count": "ten", "batch_size": -2, "concurrency": 10**40, "params": "hot"},
    "schema": "not a schema", "records_path": 3, "version": True, "note": "kept",
}


def test_a_run_document_of_wrong_types_reads_with_safe_values():
    doc = RunDoc.from_dict(EDITED)
    assert (doc.status, doc.created, doc.finished, doc.elapsed, doc.error) == ("", "", None, None, None)
    assert doc.counts == RunCounts(retries=10**15)  # strings, bools, floats and negatives: 0; huge: capped
    assert doc.backend == RunBackend("5")  # a kind no backend has: a resume refuses it
    assert (doc.config, doc.count, doc.batch_size, doc.param("temperature")) == (EDITED["config"], 0, None, None)
    assert doc.concurrency == 10**15 and doc.schema == {} and doc.records_path is None
    assert doc.version == 1 and doc.extra == {"note": "kept"}
    for elapsed in (float("inf"), float("nan"), -1, "3", 10**400):
        assert RunDoc.from_dict({"id": "r1", "elapsed": elapsed}).elapsed is None
    assert RunDoc.from_dict({"id": "r1", "created": 20261120, "status": ["done"]}).created == ""
    again = RunDoc.from_dict(doc.to_dict())
    assert again == RunDoc.from_dict({**doc.to_dict()}) and again.version == 2 and again.extra == {"note": "kept"}
    for not_a_run in (None, [], "r1", {"status": "done"}, {"id": ""}, {"id": 5}):
        with pytest.raises(StoreError, match="not a run document"):
            RunDoc.from_dict(not_a_run)


def test_version_1s_top_level_accepted_becomes_the_count_and_is_not_written_again(tmp_path):
    old = {"id": "r1", "status": "interrupted", "counts": {"accepted": 3, "requested": 10}, "accepted": 7}
    doc = RunDoc.from_dict(old)
    assert doc.counts.accepted == 7 and "accepted" not in doc.to_dict() and doc.extra == {}
    with Store(tmp_path) as store:
        store.import_runs([old])
        assert store.get_run("r1").counts.accepted == 7
        store.update_run("r1", status="cancelled")
    written = json.loads((tmp_path / "runs" / "r1" / "run.json").read_text())["_default"]["1"]
    assert "accepted" not in written and written["counts"]["accepted"] == 7 and written["version"] == 2


def test_an_edited_run_document_is_shown_and_refused_without_a_traceback(tmp_path):
    data = tmp_path / "d"
    make_run(data, [{"i": 1}, {"i": 2}])
    (data / "runs" / "r1" / "run.json").write_text(json.dumps({"_default": {"1": {**EDITED, "status": "failed"}}}))
    (data / "index.sqlite").unlink()  # the history rebuilt from the edited file
    outputs = [cli(*args, "--data-dir", str(data)) for args in (
        ["history"], ["history", "--json"], ["show", "r1"], ["show", "r1", "--json"], ["report", "r1"],
        ["export", "r1", "-o", str(tmp_path / "out.jsonl")])]
    for proc in outputs:
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "r1" in outputs[0].stdout and "0/0" in outputs[0].stdout
    assert json.loads(outputs[1].stdout)[0]["counts"]["retries"] == 10**15
    assert read_records(tmp_path / "out.jsonl") == [{"i": 1}, {"i": 2}]
    resumed = cli("resume", "r1", "--data-dir", str(data))
    assert resumed.returncode == 2 and "Traceback" not in resumed.stderr
    assert "used the backend '5', which this version does not know" in resumed.stderr


@pytest.mark.parametrize("value", ["9" * 5000, "[" * 100_000 + "]" * 100_000], ids=["digits", "depth"])
def test_json_past_pythons_limits_makes_a_run_file_corrupt_not_a_traceback(tmp_path, value):
    """A number of more digits than Python converts, or arrays nested deeper than it
    decodes: json.loads raises ValueError and RecursionError, which are corruption here."""
    data = tmp_path / "d"
    make_run(data, [{"i": 1}])
    run_file = data / "runs" / "r1" / "run.json"
    run_file.write_text('{"_default": {"1": {"id": "r1", "counts": {"accepted": ' + value + "}}}}")
    shown = cli("show", "r1", "--data-dir", str(data))  # from the index's copy, the file left as it is
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert "records   1/1 accepted" in shown.stdout
    with Store(data) as store:  # a writer puts the index's copy back
        assert store.get_run("r1").counts.accepted == 1
    assert json.loads(run_file.read_text())["_default"]["1"]["counts"]["accepted"] == 1
    (data / "history.json").write_text('{"_default": {"1": {"id": "r2", "n": ' + value + "}}}")
    listed = cli("history", "--data-dir", str(data))  # a history.json of the version before, likewise
    assert listed.returncode == 0 and "not valid JSON" in listed.stderr and "Traceback" not in listed.stderr


# -- a disk that fills during a run ------------------------------------------------------------
def test_a_journal_write_that_fails_mid_run_ends_with_the_store_error(tmp_path):
    """No file of the CLI may grow past 16 KB (a real failing write(2), EFBIG): the
    journal hits it mid-run."""
    srv = ServerProcess()
    data = tmp_path / "d"
    script = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
              "resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384)); "
              "from synth_tui.cli import main; sys.exit(main(sys.argv[1:]))")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script, *gen_args(srv.url, write_schema(tmp_path), 400, data, "--batch-size", "10")],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
    finally:
        srv.stop()
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"synth-tui: error: cannot write \S+records\.jsonl: File too large", proc.stderr), proc.stderr
    streamed = [json.loads(line) for line in proc.stdout.splitlines()]
    (journal,) = (data / "runs").glob("*/records.jsonl")
    kept = {json.dumps(r, sort_keys=True) for r in read_jsonl(journal)}
    assert streamed and all(json.dumps(r, sort_keys=True) in kept for r in streamed)


def test_journal_close_after_a_failed_flush_raises_the_store_error(tmp_path):
    journal = Journal(tmp_path / "records.jsonl")
    journal._fh.close()
    journal._fh = open("/dev/full", "ab")  # every flush fails with ENOSPC, as on a full disk
    with pytest.raises(StoreError, match="disk is full"):
        journal.append([{"a": 1}])
    with pytest.raises(StoreError, match="disk is full"):
        journal.close()
    journal.close()  # closed: nothing more to do


# -- bad input exits 2 and says what and where ---------------------------------------------------
@pytest.mark.parametrize("flag, value, said", [
    ("--temperature", "nan", "finite"),
    ("--temperature", "-1", "at least 0"),
    ("--concurrency", "0", "at least 1"),
    ("--max-attempts", "0", "at least 1"),
    ("--timeout", "-5", "more than 0"),
    ("--timeout", "inf", "finite"),
    ("--max-tokens", "-3", "at least 1"),
    ("--batch-size", "0", "at least 1"),
    ("--top-p", "1.5", "at most 1"),
])
def test_bad_run_arguments_exit_2_naming_the_flag(tmp_path, llm, capsys, flag, value, said):
    from synth_tui.cli import main

    with pytest.raises(SystemExit) as exited:  # the real parser, in this process: quick
        main(gen_args(llm.url, write_schema(tmp_path), 3, tmp_path / "d", flag, value))
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert f"argument {flag}" in err and said in err and "Traceback" not in err
    assert llm.count_requests == 0


def test_an_endless_schema_file_is_refused(tmp_path):
    proc = cli("generate", "/dev/zero", "-n", "3", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 2
    assert "/dev/zero" in proc.stderr and "too large" in proc.stderr and "10 MB" in proc.stderr
    huge = tmp_path / "huge.json"
    huge.write_text('{"a": {"type": "string", "description": "' + "x" * (11 * 1024 * 1024) + '"}}')
    saved = cli("templates", "save", "huge", str(huge))
    assert saved.returncode == 2 and "too large" in saved.stderr


def test_delete_with_an_empty_id_deletes_nothing(tmp_path):
    data = tmp_path / "d"
    make_run(data, [{"i": 1}], "only-run")
    proc = cli("delete", "", "--data-dir", str(data))
    assert proc.returncode == 2 and "may not be empty" in proc.stderr
    with Store(data, writable=False) as store:
        assert [d.id for d in store.list_runs()] == ["only-run"]


def test_history_json_a_directory_exits_2(tmp_path, llm):
    data = tmp_path / "d"
    (data / "history.json").mkdir(parents=True)
    for args in (["history"], gen_args(llm.url, write_schema(tmp_path), 3, data)[:-2]):
        proc = cli(*args, "--data-dir", str(data))
        assert proc.returncode == 2, proc.stderr
        assert f"{data / 'history.json'} is a directory" in proc.stderr and "Traceback" not in proc.stderr
    assert llm.count_requests == 0


UNREADABLE = {  # what is made unreadable, how, the command that reads it, and what it says
    "index-chmod": ("index.sqlite", "chmod", "history", "cannot read the history index {path}: Permission denied"),
    "index-directory": ("index.sqlite", "directory", "history", "the history index {path} is a directory"),
    "runs-chmod": ("runs", "chmod", "show", "cannot read the run document {path}/r1/run.json: Permission denied"),
    "run-file-chmod": ("runs/r1/run.json", "chmod", "show", "cannot read the run document {path}: Permission denied"),
    "run-file-directory": ("runs/r1/run.json", "directory", "show", "the run document {path} is a directory"),
}


def bound_by_permissions() -> list[str] | None:
    """What runs a command as bound by file permissions as a user is: nothing for a user;
    for root, which reads any file, setpriv taking that power from the command (None
    where that cannot be done)."""
    if os.geteuid() != 0:
        return []
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    with contextlib.suppress(OSError):
        if subprocess.run([*drop, "true"], capture_output=True).returncode == 0:
            return drop
    return None


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_history_exits_2(tmp_path, case):
    """The history's index, the runs folder or a run's file that the user may not read, or
    a directory in its place: exit 2, saying which file and what to do."""
    name, how, command, said = UNREADABLE[case]
    prefix = bound_by_permissions() if how == "chmod" else []
    if prefix is None:
        pytest.skip("root reads any file, and setpriv cannot take that from it here")
    data = tmp_path / "d"
    make_run(data, [{"i": 1}])
    path = data / name
    if how == "directory":
        path.unlink()
        path.mkdir()
    else:
        path.chmod(0)
    try:
        proc = subprocess.run([*prefix, sys.executable, "-m", "synth_tui", command,
                               *(["r1"] if command == "show" else []), "--data-dir", str(data)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        path.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    assert said.format(path=path) in proc.stderr and "Traceback" not in proc.stderr
    assert ("Check its permissions" if how == "chmod" else "move it out of the way") in proc.stderr
    assert path.is_dir() == (how == "directory" or name == "runs")


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made read-only for this process: chmod for a user, immutable for root."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder read-only as root here (chattr +i)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("with_lock", [False, True])
def test_read_only_data_dir_exits_2_but_can_be_read(tmp_path, llm, with_lock):
    data = tmp_path / "d"
    make_run(data, [{"i": 1}])
    if not with_lock:
        (data / "lock").unlink()
    with read_only(data):
        proc = cli(*gen_args(llm.url, write_schema(tmp_path), 3, data))
        listed = cli("history", "--data-dir", str(data))
    assert proc.returncode == 2, proc.stderr
    assert f"cannot write the data directory {data}" in proc.stderr and "--data-dir" in proc.stderr
    assert "Traceback" not in proc.stderr and llm.count_requests == 0
    assert listed.returncode == 0 and "r1" in listed.stdout


# -- text from outside never drives the terminal --------------------------------------------------
HOSTILE = ["\x1b]52;c;aGFja2Vk\x07", "\x1b]0;title\x07", "\x1b[2J", "\x9b31m", "\u202e"]
HOSTILE_RECORDS = [
    {"name": f"n{i} {h}", f"k{i}{h}": f"v{h}", "nested": {f"in{h}": [h]}} for i, h in enumerate(HOSTILE)
]
SCHEMA_OPEN = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def completion(content: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}


class ScriptedServer:
    """An OpenAI-shaped server that answers each request with the next (status, body) of
    its script, repeating the last one."""

    def __init__(self, script: list[tuple[int, dict[str, Any]]]) -> None:
        self.script = list(script)
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests += 1
                status, body = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


TERMINAL_DRIVING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_harmless(*texts: str) -> None:
    for text in texts:
        found = TERMINAL_DRIVING.findall(text)
        assert not found, f"raw control characters reach the terminal: {found[:5]!r} in {text[:300]!r}"


def test_hostile_keys_values_and_errors_never_reach_the_terminal(tmp_path):
    hostile_error = "bad \x1b]52;c;aGk=\x07 \x1b]0;pwned\x07\x1b[2J \x9b1m \u202egnp.exe"
    srv = ScriptedServer([
        (500, {"error": {"message": hostile_error}}),  # a retry line on stderr
        (200, completion("not json at all \x1b]0;t\x07 \x9b \u202e")),  # a rejection
        (200, completion(json.dumps({"records": [{"name": 5, "\x1b[2J": "\x9b"}] + HOSTILE_RECORDS}))),
    ])
    data = tmp_path / "d"
    schema = write_schema(tmp_path, SCHEMA_OPEN)
    model = "m\x1b]0;model-title\x07\u202e"
    try:
        gen = cli("generate", str(schema), "-n", str(len(HOSTILE_RECORDS)), "--batch-size", "5", "--backend", "openai",
                  "--base-url", srv.url + "/v1", "--model", model, "--max-retries", "3", "--data-dir", str(data),
                  env={"OPENAI_API_KEY": "sk-test-0000"})
        srv.script = [(401, {"error": {"message": hostile_error}})]
        failed = cli("generate", str(schema), "-n", "2", "--backend", "openai", "--base-url", srv.url + "/v1",
                     "--model", model, "--data-dir", str(data), env={"OPENAI_API_KEY": "sk-test-0000"})
    finally:
        srv.stop()
    assert gen.returncode == 0, gen.stderr
    assert failed.returncode == 1 and "refused the API key" in failed.stderr
    assert "retry 1" in gen.stderr and "rejected a record" in gen.stderr
    assert_harmless(gen.stderr, gen.stdout, failed.stderr, failed.stdout)
    assert [json.loads(line) for line in gen.stdout.splitlines()] == HOSTILE_RECORDS  # the data, exactly
    runs = json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)
    done = next(r["id"] for r in runs if r["status"] == "done")
    bad = next(r["id"] for r in runs if r["status"] == "failed")
    outputs = [
        cli("history", "--data-dir", str(data)),
        cli("history", "--json", "--data-dir", str(data)),
        cli("show", done, "--data-dir", str(data)),
        cli("show", done, "--json", "--data-dir", str(data)),
        cli("show", bad, "--data-dir", str(data)),
        cli("report", done, "--data-dir", str(data)),
        cli("report", done, "--json", "--data-dir", str(data)),
    ]
    for proc in outputs:
        assert proc.returncode == 0, proc.stderr
        assert_harmless(proc.stdout, proc.stderr)
    history, history_json, show, show_json, show_bad, report, _ = outputs
    assert "m␛]0;model-title␇<U+202E>" in history.stdout and "failed" in history.stdout
    assert "bad ␛]52;c;aGk=␇" in show_bad.stdout
    assert "k0␛]52;c;aGFja2Vk␇" in report.stdout
    assert json.loads(show_json.stdout)["sample"] == HOSTILE_RECORDS
    assert hostile_error in next(r["error"] for r in json.loads(history_json.stdout) if r["id"] == bad)
    export = cli("export", done, "-o", str(tmp_path / "out.jsonl"), "--data-dir", str(data))
    assert export.returncode == 0
    assert read_records(tmp_path / "out.jsonl") == HOSTILE_RECORDS  # kept exactly in the file
    assert "\x1b" not in (tmp_path / "out.jsonl").read_text()  # JSON escapes it


# -- resume does not take a key's destination from the history file --------------------------------
def test_resume_spec_asks_for_consent_where_the_history_differs_from_the_settings():
    settings = load_settings()
    default = {"backend": "openai", "model": "gpt-x", "base_url": "https://api.openai.com/v1",
               "api_key_env": "OPENAI_API_KEY"}
    assert resume_spec(default, settings) == BackendSpec("openai", "gpt-x", "https://api.openai.com/v1",
                                                        "OPENAI_API_KEY")
    edited = {**default, "base_url": "http://evil.example/v1", "api_key_env": "AWS_SECRET_ACCESS_KEY"}
    with pytest.raises(ResumeNeedsConsent) as refused:
        resume_spec(edited, settings, run="run r1")
    assert [(d[0], d[1], d[3]) for d in refused.value.differences] == [
        ("base URL", "http://evil.example/v1", "--base-url"),
        ("key variable", "AWS_SECRET_ACCESS_KEY", "--api-key-env")]
    assert "--base-url http://evil.example/v1 --api-key-env AWS_SECRET_ACCESS_KEY" in refused.value.remedy("cli")  # the CLI says which flags; the TUI asks instead
    with pytest.raises(ResumeNeedsConsent) as refused_env:
        resume_spec(edited, settings, base_url="http://evil.example/v1")
    assert "--api-key-env" in refused_env.value.remedy("cli")
    spec = resume_spec(edited, settings, base_url="http://evil.example/v1", api_key_env="AWS_SECRET_ACCESS_KEY")
    assert (spec.base_url, spec.api_key_env) == ("http://evil.example/v1", "AWS_SECRET_ACCESS_KEY")
    assert resume_spec({"backend": "local", "model": "smollm2", "base_url": "http://x"}, settings).kind == "local"
    ollama = resume_spec({"backend": "ollama", "model": "m", "base_url": "http://localhost:11434/",
                          "api_key_env": "ANYTHING"}, settings)  # Ollama sends no key
    assert ollama.base_url == "http://localhost:11434"
    with pytest.raises(UserInputError, match="does not know"):
        resume_spec({"backend": "exfiltrate"}, settings)


def test_an_edited_history_cannot_send_another_variables_secret_elsewhere(tmp_path, llm):
    """The run went to server A with MY_KEY; the history is edited to server B and
    OTHER_SECRET. Resume refuses, and B never hears of it."""
    data = tmp_path / "d"
    first = cli(*gen_args(llm.url, write_schema(tmp_path), 5, data, "--api-key-env", "MY_KEY", "-q"),
                env={"MY_KEY": "sk-mine-0000", "OTHER_SECRET": "sk-other-1111"})
    assert first.returncode == 0, first.stderr
    other = FakeLLM().start()
    try:
        (run_file,) = data.glob("runs/*/run.json")  # the run's document, a TinyDB file
        history = json.loads(run_file.read_text())
        (doc,) = history["_default"].values()
        doc.update(status="interrupted", backend={**doc["backend"], "base_url": other.url + "/v1",
                                                  "api_key_env": "OTHER_SECRET"})
        run_file.write_text(json.dumps(history))
        (data / "index.sqlite").unlink()  # and the index, rebuilt from the edited file
        proc = cli("resume", doc["id"], "--data-dir", str(data),
                   env={"MY_KEY": "sk-mine-0000", "OTHER_SECRET": "sk-other-1111"})
        assert proc.returncode == 2, proc.stderr
        assert "--base-url" in proc.stderr and "--api-key-env OTHER_SECRET" in proc.stderr
        assert "sk-other" not in proc.stderr
        assert other.count_requests == 0
    finally:
        other.stop()
