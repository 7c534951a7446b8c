"""The history with many runs: a run's writes touch its own file and index row only and cost
the same beside 20 runs or thousands; reading pages and filters through the index; memory
that does not grow with the runs; prune (CLI, core, TUI); progress saves that never wait."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, Static

from synth_tui.core.errors import UserInputError
from synth_tui.core.store import DataDirLock, RunCounts, RunDoc, Store

from .conftest import ROOT, cli
from .test_tui import make_app, on_screen, started
from .waiting import notifications, until

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TITLES = ["Customer", "Order", "Invoice"]
MODELS = ["gpt-4o-mini", "llama3.2", "smollm2"]
STATUSES = ["done", "failed", "cancelled", "interrupted"]


def run_doc(i: int, days_ago: float | None = None, now: datetime = NOW) -> dict[str, Any]:
    """A finished run's document of today's shape; run i is i hours old (or ``days_ago``)
    at ``now``."""
    created = now - (timedelta(days=days_ago) if days_ago is not None else timedelta(hours=i))
    return {
        "id": f"run-{i:05d}", "created": created.isoformat(timespec="milliseconds"),
        "status": STATUSES[i % 4],
        "schema": {"title": TITLES[i % 3], "type": "object",
                   "properties": {"name": {"type": "string"}, f"field_{i % 5}": {"type": "integer"},
                                  "address": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        "config": {"count": 10, "batch_size": 5, "concurrency": 4, "params": {"seed": i}},
        "backend": {"backend": "ollama" if i % 3 == 1 else "openai", "model": MODELS[i % 3], "base_url": None},
        "counts": {"requested": 10, "accepted": i % 11, "rejected": 0},
        "elapsed": 1.5, "error": None, "finished": created.isoformat(timespec="milliseconds"),
    }


def history_of(data: Path, n: int) -> Path:
    with Store(data) as store:
        store.import_runs(run_doc(i) for i in range(n))
    return data


def file_states(data: Path, *, skip: set[str]) -> dict[str, tuple[int, int, bytes]]:
    """(inode, mtime, bytes) of every file under ``data`` but those named in ``skip``."""
    return {str(p.relative_to(data)): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(data.rglob("*")) if p.is_file() and not skip & set(p.relative_to(data).parts)}


# -- writes ---------------------------------------------------------------------------------------
def test_a_runs_progress_writes_touch_no_other_run(tmp_path):
    data = history_of(tmp_path / "d", 200)
    store = Store(data)
    others = {d.id: d for d in store.iter_runs()}
    run_id = store.create_run({"id": "live", "schema": {"type": "object"}, "config": {}})
    before = file_states(data, skip={"live", "index.sqlite", "lock"})
    for i in range(5):
        store.update_run(run_id, counts={"accepted": i})
    store.save_progress(run_id, counts={"accepted": 99})
    store.flush_progress()
    store.update_run(run_id, status="done")
    assert file_states(data, skip={"live", "index.sqlite", "lock"}) == before  # no other run's file
    assert {d.id: d for d in store.iter_runs() if d.id != "live"} == others  # nor its index copy
    assert store.get_run("live").counts.accepted == 99 and store.get_run("live").status == "done"
    assert not (data / "history.json").exists()
    store.close()


def bytes_written(action) -> int:
    """Bytes this process wrote (write(2) calls, /proc/self/io) while ``action`` ran."""
    def wchar() -> int:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
        raise AssertionError("no wchar in /proc/self/io")

    start = wchar()
    action()
    return wchar() - start


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs /proc/self/io")
def test_the_cost_of_a_write_does_not_grow_with_the_history(tmp_path):
    """What a progress save, a start and an end write, beside 20 runs and beside 4,000:
    the same. (The history.json of the version before rewrote every run each time: 200x.)"""
    written = {}
    for n in (20, 4000):
        store = Store(history_of(tmp_path / f"d{n}", n))

        def one_run(store: Store = store) -> None:
            run_id = store.create_run({"schema": {"type": "object"}, "config": {"count": 10}})
            for i in range(10):
                store.update_run(run_id, counts={"accepted": i, "requested": 10})
            store.update_run(run_id, status="done", counts={"accepted": 10, "requested": 10})

        one_run()  # the first write of a store warms what it caches
        written[n] = bytes_written(one_run)
        store.close()
    assert written[4000] < written[20] * 1.5, written


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc/self/status")
def test_memory_does_not_grow_with_the_history(tmp_path):
    """A process that opens the history for writing, lists, counts and searches it: its
    peak memory beside 3,000 runs is that beside none (the version before: +45 MB)."""
    empty, full = tmp_path / "empty", history_of(tmp_path / "full", 3000)
    Store(empty).close()
    script = textwrap.dedent("""
        import sys
        from synth_tui.core.store import Store
        with Store(sys.argv[1]) as store:
            store.list_runs(limit=20)
            store.list_runs("failed", 20, search="invoice")
            store.count_runs()
            store.get_run("run-00042") if store.count_runs() else None
        # the peak of this process's own memory (its rusage would count the parent it forked from)
        print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024)
    """)

    def peak(data: Path) -> float:
        proc = subprocess.run([sys.executable, "-c", script, str(data)], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return float(proc.stdout)

    assert peak(full) - peak(empty) < 8


# -- reading: filters and pages ---------------------------------------------------------------------
def test_filters_pages_and_positions(tmp_path):
    data = history_of(tmp_path / "d", 60)
    with Store(data, writable=False) as store:
        everything = [d.id for d in store.list_runs()]
        assert everything == [f"run-{i:05d}" for i in range(60)]  # newest first
        assert [d.id for d in store.list_runs(limit=5, offset=10)] == everything[10:15]
        assert [d.id for d in store.iter_runs(page=7)] == everything
        assert store.count_runs() == 60 and store.count_runs("failed") == 15
        assert all(d.status == "failed" for d in store.list_runs("failed"))
        assert store.count_runs(["failed", "cancelled"]) == 30
        since = store.list_runs(since=NOW - timedelta(hours=9, minutes=30))
        assert [d.id for d in since] == everything[:10]
        assert store.count_runs(since=(NOW - timedelta(hours=9, minutes=30)).replace(tzinfo=None)) == 10  # UTC
        assert store.count_runs(search="invoice") == 20  # the schema's title, any case
        assert store.count_runs(search="FIELD_3") == 12  # a field name
        assert store.count_runs(search="city") == 60  # a nested field name
        assert store.count_runs(search="llama3") == 20  # the model
        assert store.count_runs(search="ollama") == 20  # the backend
        assert store.count_runs("done", search="customer") == 5
        assert store.count_runs(search="nowhere") == 0 and store.list_runs(search="nowhere") == []
        assert store.run_position("run-00007") == 7
        assert store.run_position("run-00008", "done") == 2  # done runs are 0, 4, 8, ...
        assert store.run_position("run-00007", "done") is None


def test_cli_history_since_search_and_json(tmp_path):
    data = history_of(tmp_path / "d", 40)
    since = (NOW - timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M")
    listed = cli("history", "--since", since, "--data-dir", str(data))
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [f"run-{i:05d}" for i in range(6)]
    found = cli("history", "--search", "Invoice", "--status", "failed", "--json", "--limit", "0",
                "--data-dir", str(data))
    assert found.returncode == 0, found.stderr
    docs = json.loads(found.stdout)
    assert [d["id"] for d in docs] == [f"run-{i:05d}" for i in range(40) if i % 3 == 2 and i % 4 == 1]
    assert docs[0] == RunDoc.from_dict(run_doc(5)).to_dict()  # as the store writes it
    everything = json.loads(cli("history", "--json", "--limit", "0", "--data-dir", str(data)).stdout)
    assert len(everything) == 40
    none = cli("history", "--search", "zzz", "--data-dir", str(data))
    assert none.returncode == 0 and "no runs matching 'zzz'" in none.stdout
    bad = cli("history", "--since", "last tuesday", "--data-dir", str(data))
    assert bad.returncode == 2 and "argument --since" in bad.stderr and "Traceback" not in bad.stderr


# -- prune --------------------------------------------------------------------------------------------
def test_prune_by_age_status_and_keep(tmp_path):
    data = tmp_path / "d"
    with Store(data) as store:
        store.import_runs(run_doc(i, days_ago=i) for i in range(20))  # run i is i days old
        for i in (3, 5):
            journal = store.open_journal(f"run-{i:05d}")
            journal.append([{"n": n, "pad": "x" * 500} for n in range(50)])
            journal.close()
        now = NOW.timestamp()
        with pytest.raises(UserInputError, match="say which runs"):
            store.prune()
        with pytest.raises(UserInputError, match="never pruned"):
            store.prune(statuses=["running"])
        dry = store.prune(older_than=10.5 * 86400, dry_run=True, now=now)
        assert dry.ids == [f"run-{i:05d}" for i in range(19, 10, -1)] and dry.freed > 0
        assert store.count_runs() == 20  # a dry run removes nothing
        gone = store.prune(older_than=10.5 * 86400, now=now)
        assert gone.ids == dry.ids and gone.freed >= dry.freed
        assert not any((data / "runs" / run_id).exists() for run_id in gone.ids)
        failed = store.prune(statuses=["failed"], older_than=2.5 * 86400, now=now)
        assert failed.ids == ["run-00009", "run-00005"] and failed.records == 9 + 5
        assert failed.freed > 50 * 500  # the journal of run 5 went with it
        kept = store.prune(keep=3)
        assert [d.id for d in store.list_runs()] == ["run-00000", "run-00001", "run-00002"]
        assert len(kept.ids) == 6
        assert store.prune(keep=3).ids == []
    assert sorted(p.name for p in (data / "runs").iterdir()) == ["run-00000", "run-00001", "run-00002"]


def test_prune_never_touches_a_running_run(tmp_path):
    data = history_of(tmp_path / "d", 10)
    runner = Store(data)
    live = runner.create_run({"id": "live", "created": "2020-01-01T00:00:00+00:00", "schema": {}})
    journal = runner.open_journal(live)
    journal.append([{"a": 1}])
    journal.close()
    try:
        listed = cli("prune", "--keep", "0", "--data-dir", str(data))
        assert listed.returncode == 0, listed.stderr
        assert "removed 10 runs" in listed.stderr and "freed" in listed.stderr
        with Store(data) as other:
            assert [d.id for d in other.list_runs()] == ["live"]
            assert other.prune(run_ids=["live"]).skipped == ["live"]  # named, it is still left alone
        assert (data / "runs" / "live" / "records.jsonl").exists()
    finally:
        runner.close()


def test_cli_prune_dry_run_and_its_arguments(tmp_path):
    data = tmp_path / "d"
    with Store(data) as store:
        store.import_runs(run_doc(i, days_ago=i * 10, now=datetime.now(UTC)) for i in range(6))
    dry = cli("prune", "--older-than", "25d", "--status", "done,failed", "--dry-run", "--data-dir", str(data))
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 runs" in dry.stderr and "nothing removed" in dry.stderr
    assert "run-00004" in dry.stdout and "run-00005" in dry.stdout  # 40 and 50 days old, done and failed
    assert len(json.loads(cli("history", "--json", "--data-dir", str(data)).stdout)) == 6
    for args, said in ((["--older-than", "soon"], "argument --older-than"),
                       (["--status", "running"], "never pruned"),
                       (["--status", "weird"], "unknown status"),
                       ([], "say which runs to prune")):
        proc = cli("prune", *args, "--data-dir", str(data))
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


# -- progress saves never wait ----------------------------------------------------------------------
def test_save_progress_returns_at_once_while_another_process_writes(tmp_path):
    store = Store(tmp_path, lock_wait=30)
    run_id = store.create_run({"schema": {}})
    holder = DataDirLock(tmp_path)
    holder.acquire()  # another process in the middle of a write
    try:
        done = threading.Event()
        caller = threading.Thread(target=lambda: (store.save_progress(run_id, counts={"accepted": 7}), done.set()))
        caller.start()
        assert done.wait(10), "save_progress waited for the lock"
        assert Store(tmp_path, writable=False).get_run(run_id).counts == RunCounts()  # not written yet
    finally:
        holder.release()
    deadline = time.monotonic() + 20
    while Store(tmp_path, writable=False).get_run(run_id).counts.accepted != 7:
        assert time.monotonic() < deadline, "the progress was never written"
        time.sleep(0.02)
    store.save_progress(run_id, counts={"accepted": 8})
    doc = store.update_run(run_id, status="done", elapsed=1.0)  # takes what waits, in order
    assert doc.counts.accepted == 8 and doc.status == "done"
    store.save_progress(run_id, counts={"accepted": 9})  # after the end: dropped
    store.close()
    assert Store(tmp_path, writable=False).get_run(run_id).counts.accepted == 8


# -- the TUI --------------------------------------------------------------------------------------------
async def test_the_history_screen_pages_searches_and_prunes_marked_runs(tmp_path):
    history_of(tmp_path / "data", 250)
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot, app)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        screen = app.screen
        table = screen.query_one("#runs", DataTable)
        line = lambda: str(screen.query_one("#filter-line", Static).render())  # noqa: E731
        assert table.row_count == 100 and line().startswith("runs 1-100 of 250")
        table.focus()
        await pilot.press("end", "down")
        await until(pilot, lambda: line().startswith("runs 101-200 of 250"), "the second page")
        assert table.cursor_row == 0 and screen.selected_id() == "run-00100"
        await pilot.press("up")
        await until(pilot, lambda: line().startswith("runs 1-100 of 250"), "the first page again")
        assert table.cursor_row == 99 and screen.selected_id() == "run-00099"
        await pilot.press("f", "f")  # running runs (none), then done runs only: 63 of them, one page
        await until(pilot, lambda: line().startswith("63 runs · filter: done"), "the filter")
        await pilot.press("f", "f", "f", "f", "f")  # failed, cancelled, interrupted, budget, then all again
        await until(pilot, lambda: "filter: all" in line(), "all runs")

        await pilot.press("slash")
        await until(pilot, lambda: app.screen.query("#name"), "the search")
        app.screen.query_one("#name", Input).value = "Invoice"
        await pilot.press("enter")
        await until(pilot, lambda: "search: Invoice" in line(), "the search's runs")
        assert line().startswith("83 runs") and screen.selected_id() == "run-00002"

        table.focus()
        await pilot.press("m", "down", "m")
        await until(pilot, lambda: len(screen.marked) == 2, "two marks")
        await pilot.press("x")
        await until(pilot, lambda: app.screen.query("#yes"), "the question")
        question = str(app.screen.query_one(".dialog-title", Static).render())
        assert "Remove 2 marked runs and 7 records" in question and "frees about" in question
        await pilot.press("y")
        await until(pilot, lambda: "Removed 2 runs" in notifications(app), "the prune")
        await until(pilot, lambda: line().startswith("81 runs"), "the list without them")
        assert screen.marked == []
    with Store(tmp_path / "data", writable=False) as store:
        assert store.count_runs() == 248 and not (tmp_path / "data" / "runs" / "run-00002").exists()
