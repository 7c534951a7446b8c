"""History and journals on real files in a temp dir."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from synth_tui.core.engine import Run
from synth_tui.core.errors import DataDirLocked, StoreError
from synth_tui.core.store import DataDirBusy, DataDirLock, Journal, RunBackend, RunInProgress, Store, read_jsonl

from .conftest import ROOT, fast_config, openai_backend


async def test_run_is_kept_in_history_with_its_records(tmp_path, llm, person_schema):
    store = Store(tmp_path / "data")
    backend = openai_backend(llm)
    result = await Run(person_schema, fast_config(12, batch_size=4), backend, store=store).execute()
    await backend.aclose()
    doc = store.get_run(result.run_id)
    assert doc.status == "done"
    assert doc.counts.accepted == 12 and doc.counts.requested == 12
    assert doc.schema == person_schema.schema
    assert doc.backend == RunBackend("openai", "test-model", llm.url + "/v1",
                                     "OPENAI_API_KEY")  # the variable's name, not the key
    assert doc.batch_size == 4
    assert list(store.iter_records(result.run_id)) == result.records
    assert store.get_run(result.run_id[:17]).id == result.run_id  # unique prefix
    store.close()


async def test_failed_run_is_saved_with_its_error(tmp_path, llm, person_schema):
    llm.api_key = "k"
    store = Store(tmp_path / "data")
    backend = openai_backend(llm, api_key="wrong")
    result = await Run(person_schema, fast_config(3), backend, store=store).execute()
    await backend.aclose()
    (doc,) = store.list_runs(status="failed")
    assert doc.id == result.run_id and "HTTP 401" in doc.error
    store.close()


def test_list_filter_delete(tmp_path):
    store = Store(tmp_path)
    a = store.create_run({"id": "a1", "created": "2026-01-01T00:00:00+00:00"})
    b = store.create_run({"id": "b2", "created": "2026-01-02T00:00:00+00:00"})
    store.update_run(a, status="done")
    assert [d.id for d in store.list_runs()] == ["b2", "a1"]
    assert [d.id for d in store.list_runs(status="done")] == ["a1"]
    j = store.open_journal(b)
    j.append([{"x": 1}])
    j.close()
    with pytest.raises(RunInProgress, match="b2 is still being generated"):
        store.delete_run(b)
    store.update_run(b, status="cancelled")
    store.delete_run(b)
    assert [d.id for d in store.list_runs()] == ["a1"]
    assert not (tmp_path / "runs" / "b2").exists()
    store.close()


def test_runs_left_running_are_marked_interrupted(tmp_path):
    store = Store(tmp_path)
    run_id = store.create_run({"schema": {}})
    j = store.open_journal(run_id)
    j.append([{"a": 1}, {"a": 2}])
    j.close()
    store.close()  # as if the process died: the status is still "running"
    store = Store(tmp_path)
    doc = store.get_run(run_id)
    assert doc.status == "interrupted" and doc.counts.accepted == 2  # what its journal holds
    store.close()


def test_torn_last_line_is_dropped_and_appends_continue(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3, "b"')
    assert list(read_jsonl(path)) == [{"a": 1}, {"a": 2}]
    j = Journal(path)
    j.append([{"a": 4}])
    j.close()
    assert list(read_jsonl(path)) == [{"a": 1}, {"a": 2}, {"a": 4}]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_failed_history_write_keeps_the_previous_history(tmp_path, monkeypatch, code):
    store = Store(tmp_path)
    store.create_run({"id": "keep-me", "schema": {"a": 1}})
    kept = tmp_path / "runs" / "keep-me" / "run.json"
    before = kept.read_bytes()

    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StoreError) as err:
        store.create_run({"id": "lost", "schema": {"big": "x" * 10000}})
    with pytest.raises(StoreError):
        store.update_run("keep-me", status="done")
    assert ("disk is full" in str(err.value)) if code == errno.ENOSPC else ("cannot write" in str(err.value))
    monkeypatch.undo()
    assert kept.read_bytes() == before
    assert not list(tmp_path.glob("runs/*/.run.json.*.tmp")) and not (tmp_path / "runs" / "lost").exists()
    store.close()  # the index was put back as it was: a reader (which marks nothing) sees it running
    with Store(tmp_path, writable=False) as reader:
        assert [(d.id, d.status) for d in reader.list_runs()] == [("keep-me", "running")]


def test_file_size_limit_mid_write_keeps_history_readable(tmp_path):
    """A real failing write(2): the child may not grow any file past the index's size
    and a few KB, and its run's document is 20 KB."""
    store = Store(tmp_path)
    store.create_run({"id": "first", "schema": {}})
    store.update_run("first", status="done")
    store.close()
    limit = (tmp_path / "index.sqlite").stat().st_size + 8192
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        from synth_tui.core.store import Store
        from synth_tui.core.errors import StoreError
        s = Store({str(tmp_path)!r})
        try:
            s.create_run({{"id": "second", "schema": {{"pad": "x" * 20000}}}})
        except StoreError as e:
            print("ERR", e)
            sys.exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "ERR cannot write" in proc.stdout
    assert [d.id for d in Store(tmp_path, writable=False).list_runs()] == ["first"]
    assert not (tmp_path / "runs" / "second").exists()


@pytest.mark.parametrize("damage", [b"", b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 8000],
                         ids=["empty", "garbage", "damaged-pages"])
def test_corrupted_index_is_backed_up_and_rebuilt(tmp_path, damage):
    store = Store(tmp_path)
    store.create_run({"id": "r1", "schema": {"x": 1}})
    store.update_run("r1", status="done")
    store.close()
    (tmp_path / "index.sqlite").write_bytes(damage)
    with Store(tmp_path, writable=False) as reader:  # a reader shows the runs from their files, writes nothing
        assert reader.get_run("r1").status == "done" and [d.id for d in reader.list_runs()] == ["r1"]
        assert reader.warnings
    assert (tmp_path / "index.sqlite").read_bytes() == damage
    store = Store(tmp_path)
    assert [d.id for d in store.list_runs()] == ["r1"]
    assert store.get_run("r1").status == "done"  # rebuilt from runs/r1/run.json
    if damage:
        assert any("moved to" in w for w in store.warnings)
        (backup,) = tmp_path.glob("index.corrupt-*.sqlite")
        assert backup.read_bytes() == damage
    store.close()


def test_an_index_damaged_past_its_first_page_is_rebuilt_when_it_is_found(tmp_path):
    """SQLite finds the damage only when a query reads the bad pages: the store moves the
    index aside and rebuilds it then (a reader: from the run files, in memory)."""
    docs = [{"id": f"r{i:04d}", "created": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00", "status": "done",
             "schema": {"title": "x" * 300}, "counts": {"accepted": i}} for i in range(400)]
    with Store(tmp_path) as store:
        store.import_runs(docs)
        opened = Store(tmp_path)  # open before the damage, as a TUI left open
    path = tmp_path / "index.sqlite"
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 3)
        fh.write(b"\xff" * (size // 3))
    with Store(tmp_path, writable=False) as reader:
        assert len(reader.list_runs()) == 400 and any("damaged" in w for w in reader.warnings)
    assert len(opened.list_runs()) == 400 and any("moved to" in w for w in opened.warnings)
    assert opened.get_run("r0399").counts.accepted == 399
    with Store(tmp_path) as store:  # the rebuilt index, as any other
        assert store.warnings == [] and store.count_runs() == 400
    opened.close()
    assert len(list(tmp_path.glob("index.corrupt-*.sqlite"))) == 1


def test_a_corrupt_run_file_is_restored_from_the_index(tmp_path):
    store = Store(tmp_path)
    store.create_run({"id": "r1", "schema": {"x": 1}})
    store.update_run("r1", status="done", counts={"accepted": 3})
    store.close()
    run_file = tmp_path / "runs" / "r1" / "run.json"
    run_file.write_text('{"_default": {"1": {"id": "r1", "sta')
    with Store(tmp_path, writable=False) as reader:
        assert reader.get_run("r1").counts.accepted == 3  # the index's copy
    assert run_file.read_text().endswith('"sta')
    with Store(tmp_path) as store:
        assert store.get_run("r1").counts.accepted == 3
        assert any("written again from the history index" in w for w in store.warnings)
    assert json.loads(run_file.read_text())["_default"]["1"]["status"] == "done"
    (backup,) = run_file.parent.glob("run.corrupt-*.json")
    assert backup.read_text().endswith('"sta')


def test_two_writable_stores_share_a_directory_without_losing_runs(tmp_path):
    """Each write starts from the file: TinyDB's cached next id and query results of one
    store would otherwise overwrite, or hide, what the other wrote."""
    first, second = Store(tmp_path), Store(tmp_path)
    first.create_run({"id": "a"})
    second.create_run({"id": "b"})
    assert [d.id for d in first.list_runs(status="running")] == ["b", "a"]
    first.create_run({"id": "c"})  # after another store's insert: a new document id, not b's
    second.update_run("b", status="done")
    assert [d.id for d in first.list_runs(status="running")] == ["c", "a"]  # not a cached answer
    first.update_run("a", status="done")
    first.update_run("c", status="done")
    for store in (first, second, Store(tmp_path, writable=False)):
        assert {d.id: d.status for d in store.list_runs()} == {"a": "done", "b": "done", "c": "done"}
    first.close()
    second.close()


def test_a_live_run_is_left_alone_and_a_dead_one_is_marked_interrupted(tmp_path):
    runner = Store(tmp_path)
    run_id = runner.create_run({"schema": {}})
    other = Store(tmp_path)  # opening marks dead runs only
    assert other.get_run(run_id).status == "running" and other.is_live(run_id)
    with pytest.raises(RunInProgress, match=f"another synth-tui process \\(pid {os.getpid()}\\)"):
        other.delete_run(run_id)
    with pytest.raises(RunInProgress, match="cannot be resumed"):
        other.update_run(run_id, status="running")
    assert runner.get_run(run_id).status == "running"
    runner.close()  # its lock goes, as when a process dies
    assert not other.is_live(run_id)
    doc = other.get_run(run_id)  # a store that stays open notices too
    assert doc.status == "interrupted" and "stopped" in doc.error
    other.update_run(run_id, status="running")  # resumable now
    other.update_run(run_id, status="done")
    other.delete_run(run_id)
    other.close()


def test_a_history_write_waits_for_another_writer(tmp_path, monkeypatch):
    store = Store(tmp_path)
    holder = DataDirLock(tmp_path)
    holder.acquire()
    waiting = threading.Event()
    pause = DataDirLock._pause
    monkeypatch.setattr(DataDirLock, "_pause", staticmethod(lambda s: (waiting.set(), pause(s))))
    done: list[str] = []
    writer = threading.Thread(target=lambda: done.append(store.create_run({"id": "waited"})))
    writer.start()
    assert waiting.wait(10), "the write did not wait for the lock"
    assert not done
    holder.release()
    writer.join(10)
    assert done == ["waited"] and store.get_run("waited").status == "running"
    store.close()


def test_a_lock_held_too_long_gives_a_message_and_changes_nothing(tmp_path):
    store = Store(tmp_path, lock_wait=0.2)
    holder = DataDirLock(tmp_path)
    holder.acquire()
    try:
        with pytest.raises(DataDirBusy) as caught:
            store.create_run({"id": "late"})
        with pytest.raises(DataDirBusy):
            Store(tmp_path, lock_wait=0.1)
    finally:
        holder.release()
    message = str(caught.value)
    assert f"another synth-tui process (pid {os.getpid()})" in message and "within 0.2 s" in message
    assert "nothing was saved" in message and "--" not in message  # the CLI adds its flags
    assert caught.value.pid == str(os.getpid())
    assert isinstance(caught.value, DataDirLocked)  # what the CLI and the App already catch
    assert store.list_runs() == [] and not (tmp_path / "runs" / "late" / "run.json").exists()
    Store(tmp_path, writable=False).close()  # readers never wait
    store.create_run({"id": "now"})
    store.close()


async def test_resume_continues_without_duplicates(tmp_path, llm, person_schema):
    store = Store(tmp_path)
    backend = openai_backend(llm)
    run = Run(person_schema, fast_config(30, batch_size=3, concurrency=2), backend, store=store)

    def stop_early(event):
        if event.progress.done >= 9:
            run.cancel()

    run.on_event = stop_early
    first = await run.execute()
    assert first.status == "cancelled" and 9 <= first.accepted < 30
    assert store.get_run(first.run_id).status == "cancelled"
    resumed = await Run.resume(store, first.run_id, backend).execute()
    await backend.aclose()
    assert resumed.status == "done" and resumed.accepted == 30
    records = list(store.iter_records(first.run_id))
    assert len(records) == 30 and len({json.dumps(r, sort_keys=True) for r in records}) == 30
    assert store.get_run(first.run_id).counts.accepted == 30
    store.close()


def test_read_page_anywhere_in_a_journal(tmp_path):
    store = Store(tmp_path)
    run_id = store.create_run({"schema": {}})
    j = store.open_journal(run_id)
    j.append([{"i": i, "pad": "x" * (i % 50)} for i in range(5000)])
    j.close()
    assert [r["i"] for r in store.read_page(run_id, 0, 3)] == [0, 1, 2]
    assert [r["i"] for r in store.read_page(run_id, 4321, 3)] == [4321, 4322, 4323]
    assert [r["i"] for r in store.read_page(run_id, 4998, 20)] == [4998, 4999]
    assert store.read_page(run_id, 5000, 20) == []
    store.close()



def test_runs_started_in_the_same_second_list_newest_first(tmp_path):
    store = Store(tmp_path)
    ids = [store.create_run({"schema": {}}) for _ in range(5)]
    assert [d.id for d in store.list_runs()] == ids[::-1]
    store.close()
