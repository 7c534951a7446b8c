"""A data directory of the version before (tests/fixtures/history_v1: history.json with every
run's document, runs/<id>/run.json a bare copy) is migrated by the first store that may
write it, atomically: killed at any moment, the old layout is still there, whole, and the
next store finishes the job. Every run stays listed, exportable and resumable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from synth_tui.core.store import RunDoc, Store, read_jsonl

from .conftest import ROOT, cli

FIXTURE = Path(__file__).parent / "fixtures" / "history_v1"
KILLED = "20261125-110308-ff5acc"  # still "running" in history.json, with 6 records in its journal
CANCELLED = "20261125-110307-5f0df6"


def legacy_docs(data: Path) -> dict[str, dict]:
    return {d["id"]: d for d in json.loads((data / "history.json").read_text())["_default"].values()}


@pytest.fixture
def old_dir(tmp_path: Path) -> Path:
    data = tmp_path / "d"
    shutil.copytree(FIXTURE, data)
    return data


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_first_writer_migrates_and_every_run_stays(old_dir):
    before = legacy_docs(old_dir)
    history_bytes = (old_dir / "history.json").read_bytes()
    newest_first = [d["id"] for d in sorted(before.values(), key=lambda d: d["created"], reverse=True)]
    files = snapshot(old_dir)
    with Store(old_dir, writable=False) as reader:  # a reader reads the old file and writes nothing
        assert [d.id for d in reader.list_runs()] == newest_first
        assert reader.get_run(KILLED).status == "running"
    assert snapshot(old_dir) == files

    with Store(old_dir) as store:
        assert any("now keeps one file per run" in w for w in store.warnings)
        assert [d.id for d in store.list_runs()] == newest_first
        for run_id, doc in before.items():
            got = store.get_run(run_id)
            if run_id == KILLED:  # its process is long gone: interrupted, with what its journal holds
                assert got.status == "interrupted" and got.counts.accepted == 6
            else:
                assert got == RunDoc.from_dict(doc) and got.version == 1  # read as it was written
            assert store.count_records(run_id) == len(list(read_jsonl(FIXTURE / "runs" / run_id / "records.jsonl")))
        assert store.get_run(KILLED[:17]).id == KILLED
    assert not (old_dir / "history.json").exists() and (old_dir / "index.sqlite").exists()
    (kept,) = old_dir.glob("history.migrated-*.json")
    assert kept.read_bytes() == history_bytes  # the old history, as it was, for an older synth-tui
    assert not list(old_dir.glob(".index.sqlite.*"))
    # a run file the migration or a write touched is a TinyDB file now; the others are read as they are
    touched = json.loads((old_dir / "runs" / KILLED / "run.json").read_text())
    assert touched["_default"]["1"]["status"] == "interrupted"

    with Store(old_dir) as again:  # opened again: nothing more to do, nothing to say
        assert again.warnings == [] and len(again.list_runs()) == 5


def test_migrated_runs_export_and_resume(old_dir, llm):
    Store(old_dir).close()
    out = old_dir.parent / "done.csv"
    exported = cli("export", "20261125-110305", "-o", str(out), "--data-dir", str(old_dir))
    assert exported.returncode == 0, exported.stderr
    assert len(out.read_text().splitlines()) == 13  # header and 12 records
    resumed = cli("resume", CANCELLED, "--base-url", llm.url + "/v1", "--data-dir", str(old_dir), "-q")
    assert resumed.returncode == 0, resumed.stderr
    with Store(old_dir, writable=False) as store:
        doc = store.get_run(CANCELLED)
        assert doc.status == "done" and doc.counts.accepted == 200
        records = list(store.iter_records(CANCELLED))
    assert len(records) == 200 and len({json.dumps(r, sort_keys=True) for r in records}) == 200


KILL_AT = {
    # while the run files are being rewritten (each run file differs from history.json here)
    "run-files": "files.write_run_file_unsynced = kill_after(files.write_run_file_unsynced, 2)",
    # the new index complete beside the old history, not yet renamed into place
    "index-rename": "os.replace = kill_when(os.replace, lambda src, dst, *a, **k: str(dst).endswith('index.sqlite'))",
    # the index in place, history.json not yet moved aside
    "history-aside": "os.replace = kill_when(os.replace, lambda src, dst, *a, **k: str(src).endswith('history.json'))",
}


@pytest.mark.parametrize("point", list(KILL_AT))
def test_a_migration_killed_at_any_step_leaves_a_whole_directory(old_dir, point):
    for doc in legacy_docs(old_dir).values():  # run files older than history.json: each is rewritten
        (old_dir / "runs" / doc["id"] / "run.json").write_text(json.dumps({**doc, "error": "stale copy"}))
    history_bytes = (old_dir / "history.json").read_bytes()
    expected = legacy_docs(old_dir)
    script = textwrap.dedent(f"""
        import os, signal, sys
        import synth_tui.core.store as st
        import synth_tui.core.store.files as files

        def kill_after(fn, n):
            calls = []
            def wrapped(*a, **k):
                calls.append(1)
                if len(calls) > n:
                    os.kill(os.getpid(), signal.SIGKILL)
                return fn(*a, **k)
            return wrapped

        def kill_when(fn, test):
            def wrapped(*a, **k):
                if test(*a, **k):
                    os.kill(os.getpid(), signal.SIGKILL)
                return fn(*a, **k)
            return wrapped

        {KILL_AT[point]}
        st.Store({str(old_dir)!r})
        print("not killed")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, (proc.stdout, proc.stderr)
    if point != "history-aside":  # the old layout is still the directory's, whole
        assert (old_dir / "history.json").read_bytes() == history_bytes
        assert not (old_dir / "index.sqlite").exists()
    else:  # the switch happened; the old file waits to be moved aside
        assert (old_dir / "history.json").read_bytes() == history_bytes
        assert (old_dir / "index.sqlite").exists()
    with Store(old_dir) as store:  # the next store finishes the job
        docs = {d.id: d for d in store.list_runs()}
        assert set(docs) == set(expected)
        for run_id, doc in expected.items():
            got = store.get_run(run_id)
            assert got.error != "stale copy"  # history.json's documents won
            if run_id != KILLED:
                assert got == RunDoc.from_dict(doc) == docs[run_id]
    assert not (old_dir / "history.json").exists()
    assert len(list(old_dir.glob("history.migrated-*.json"))) == 1
    assert not [p for p in old_dir.iterdir() if p.name.startswith(".index.sqlite")]


def test_a_history_json_written_beside_the_index_is_taken_in(tmp_path):
    """An older synth-tui ran here after the migration: its runs join the history."""
    data = tmp_path / "d"
    with Store(data) as store:
        store.create_run({"id": "new-1", "schema": {}})
        store.update_run("new-1", status="done")
    old_doc = {"id": "old-1", "created": "2026-01-01T00:00:00+00:00", "status": "done", "schema": {},
               "counts": {"accepted": 0, "requested": 1}}
    (data / "runs" / "old-1").mkdir()
    (data / "runs" / "old-1" / "run.json").write_text(json.dumps(old_doc))
    stale = {"id": "new-1", "status": "failed", "created": "2020-01-01T00:00:00+00:00"}
    (data / "history.json").write_text(json.dumps({"_default": {"1": stale, "2": old_doc}}))
    with Store(data, writable=False) as reader:
        assert any("holds 1 run not in the history yet" in w for w in reader.warnings)
    with Store(data) as store:
        assert any("1 run of" in w and "were added" in w for w in store.warnings)
        assert {d.id: d.status for d in store.list_runs()} == {"new-1": "done", "old-1": "done"}
    assert not (data / "history.json").exists()


def test_a_reader_of_an_old_directory_with_a_corrupt_history_shows_the_run_files(old_dir):
    (old_dir / "history.json").write_text('{"_default": {"1": {"id": ')
    with Store(old_dir, writable=False) as reader:
        assert len(reader.list_runs()) == 5 and any("not valid JSON" in w for w in reader.warnings)
    with Store(old_dir) as store:
        assert any("moved to" in w and "rebuilt" in w for w in store.warnings)
        assert len(store.list_runs()) == 5
    assert list(old_dir.glob("history.corrupt-*.json"))


def test_a_create_or_delete_that_a_kill_stopped_half_way_is_settled(tmp_path):
    """The index row is marked before the run file changes: a row left marked is finished
    (a delete) or undone (a create whose file never came) by the next writer."""
    from synth_tui.core.store.index import DELETING, WRITING

    data = tmp_path / "d"
    with Store(data) as store:
        for run_id in ("keep", "half-created", "half-deleted"):
            store.create_run({"id": run_id, "schema": {}})
            store.update_run(run_id, status="done")
        (data / "runs" / "half-created" / "run.json").unlink()  # the create's file never came
        store.index.set_dirty(["half-created"], WRITING)
        store.index.set_dirty(["half-deleted"], DELETING)
        (data / "runs" / "half-deleted" / "run.json").unlink()
    with Store(data) as store:
        assert [d.id for d in store.list_runs()] == ["keep"]
    assert sorted(os.listdir(data / "runs")) == ["keep"]


def test_a_progress_save_killed_between_the_run_file_and_the_index_is_settled(tmp_path):
    """A running run's save writes its file, then its row: a kill between the two leaves a
    row behind its file, which the next writer reads again (the run is then interrupted)."""
    data = tmp_path / "d"
    script = textwrap.dedent(f"""
        import os, signal
        from synth_tui.core.store import Store
        from synth_tui.core.store.index import HistoryIndex

        put = HistoryIndex.put
        def put_or_die(self, doc, **kw):
            if (doc.get("counts") or {{}}).get("accepted") == 5:
                os.kill(os.getpid(), signal.SIGKILL)
            return put(self, doc, **kw)
        HistoryIndex.put = put_or_die
        store = Store({str(data)!r})
        run_id = store.create_run({{"id": "r1", "schema": {{}}}})
        journal = store.open_journal(run_id)
        for i in range(1, 10):
            journal.append([{{"i": i}}])  # the records first, then their count (as a run saves them)
            store.update_run(run_id, counts={{"accepted": i}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    with Store(data, writable=False) as reader:  # the index as the kill left it: one save behind
        assert reader.list_runs()[0].counts.accepted == 4
        assert reader.get_run("r1").counts.accepted == 5  # the run's file: the truth
    with Store(data) as store:
        (doc,) = store.list_runs()
        assert doc.counts.accepted == 5 and doc.status == "interrupted"
