"""History at scale, side by side in one run: data directories of 0, 5,000 and 100,000 runs
(documents of today's shape: a real run's document, ~1.3 KB, with its id, time, status,
title and model varied), built with the store's bulk import.

For each directory, in fresh processes:

  run       a fast run through the CLI (local test server, 20 ms per answer, 10 records per
            request, concurrency 64, 20,000 records): records/s from the run's own elapsed
            time (best of --repeat), and the process's peak RSS
  update    one update_run of a run's counts, as the engine saves progress (median of 20)
  history   `synth-tui history --limit 20`, and with --search and --status (median of 5)
  tui       the TUI to its first painted screen, then to the history screen with its first
            page of runs (median of 5), and its peak RSS

and the ratio of each to the empty directory. Then the migration of a directory of the
version before (history.json) of --migrate runs.

    python bench/history_scale.py [--sizes 0,5000,100000] [--records 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth_tui.core.store import Store  # noqa: E402
from tests.conftest import ServerProcess  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "history_v1" / "runs" / "20261125-110305-4afbbd" / "run.json"
TITLES = ["Customer", "Order", "Invoice", "Support ticket", "Sensor reading", "Employee", None]
MODELS = [("openai", "gpt-4o-mini"), ("openai", "test-model"), ("ollama", "llama3.2"), ("local", "smollm2")]
STATUSES = ["done"] * 6 + ["failed", "cancelled", "interrupted"]
SCHEMA = {"title": "Customer", "type": "object", "properties": {
    "name": {"type": "string"}, "email": {"type": "string", "format": "email"},
    "plan": {"type": "string", "enum": ["free", "pro", "team"]}, "age": {"type": "integer", "minimum": 18}},
    "required": ["name", "email", "plan", "age"]}


def base_doc() -> dict:
    data = json.loads(FIXTURE.read_text())
    return data["_default"]["1"] if "_default" in data else data


def docs(n: int, seed: int = 1):
    """``n`` run documents of today's shape, oldest first over the last 200 days."""
    rng = random.Random(seed)
    base = base_doc()
    start = time.time() - 200 * 86400
    for i in range(n):
        doc = copy.deepcopy(base)
        when = start + i * (200 * 86400 / max(n, 1))
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(when))
        doc["id"] = f"{stamp}-{i:06x}"
        doc["created"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + ".000+00:00"
        doc["finished"] = doc["created"]
        doc["status"] = rng.choice(STATUSES)
        title = rng.choice(TITLES)
        if title:
            doc["schema"]["title"] = title
        else:
            doc["schema"].pop("title", None)
        backend, model = rng.choice(MODELS)
        doc["backend"] = {**doc["backend"], "backend": backend, "model": model}
        doc["records_path"] = ""
        yield doc


def build(data: Path, n: int) -> float:
    t0 = time.perf_counter()
    with Store(data) as store:
        store.import_runs(docs(n))
    return time.perf_counter() - t0


def build_legacy(data: Path, n: int) -> None:
    """A directory as the version before wrote it: history.json and runs/<id>/run.json."""
    (data / "runs").mkdir(parents=True)
    table = {}
    for i, doc in enumerate(docs(n, seed=2), 1):
        table[str(i)] = doc
        folder = data / "runs" / doc["id"]
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps(doc, indent=1))
        (folder / "records.jsonl").write_bytes(b"")
    (data / "history.json").write_text(json.dumps({"_default": table}))
    os.sync()


def child(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of a fresh Python process. The peak RSS is
    what the child prints as ``peak-rss KB`` on stderr (VmHWM of its own memory: the
    rusage of a child also counts the parent it was forked from)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{args} exited {proc.returncode}: {proc.stderr[-2000:]}")
    peaks = [float(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("peak-rss ")]
    return elapsed, (peaks[-1] / 1024 if peaks else 0.0), proc.stdout


PEAK = r"""
def peak_rss():
    import sys
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("peak-rss", line.split()[1], file=sys.stderr)
"""


RUN = PEAK + r"""
import sys
from synth_tui.cli import main
code = main(sys.argv[1:])
peak_rss()
sys.exit(code)
"""

UPDATE = r"""
import statistics, sys, time
from synth_tui.core.store import Store
store = Store(sys.argv[1])
run_id = store.create_run({"schema": {"type": "object"}, "config": {}, "backend": {"backend": "openai"}})
times = []
for i in range(20):
    t0 = time.perf_counter()
    store.update_run(run_id, counts={"accepted": i, "requested": 100})
    times.append(time.perf_counter() - t0)
store.update_run(run_id, status="done")
store.delete_run(run_id)
store.close()
print(statistics.median(times))
"""

TUI = PEAK + r"""
import sys, time
t0 = time.perf_counter()
from synth_tui.app import SynthApp
from textual.widgets import Static
app = SynthApp(data_dir=sys.argv[1])
marks = {}

async def go(pilot):
    await pilot.pause()
    marks["paint"] = time.perf_counter() - t0
    await pilot.press("f4")
    while not (app.screen.id == "history" and "runs" in str(app.screen.query_one("#filter-line", Static).render())):
        await pilot.pause(0.005)
    await pilot.pause()
    marks["history"] = time.perf_counter() - t0
    app.exit()

app.run(headless=True, auto_pilot=go, size=(120, 40))
print(marks["paint"], marks["history"])
peak_rss()
"""


def fast_run(data: Path, url: str, n: int, schema: Path, env: dict[str, str]) -> tuple[float, float]:
    """(records/s from the run's own elapsed time, peak RSS in MB) of one CLI run; the run
    is deleted after, so the directory keeps its size."""
    _, rss, _ = child(["-c", RUN, "generate", str(schema), "-n", str(n), "--backend", "openai", "--base-url", url,
                       "--model", "test-model", "--batch-size", "10", "--concurrency", "64", "--data-dir",
                       str(data), "-q", "-o", os.devnull], env)
    with Store(data) as store:
        (doc,) = store.list_runs(limit=1)
        assert doc["counts"]["accepted"] == n, doc
        store.delete_run(doc["id"])
    return n / doc["elapsed"], rss


def measure(data: Path, env: dict[str, str]) -> dict[str, float]:
    update = float(child(["-c", UPDATE, str(data)], env)[2])
    listing = {}
    for name, extra in (("limit", []), ("search", ["--search", "invoice"]), ("status", ["--status", "failed"])):
        listing[name] = statistics.median(
            child(["-m", "synth_tui", "history", "--limit", "20", "--data-dir", str(data), *extra], env)[0]
            for _ in range(5))
    paints, histories, tui_rss = [], [], []
    for _ in range(5):
        _, rss, out = child(["-c", TUI, str(data)], env)
        paint, history = map(float, out.split())
        paints.append(paint)
        histories.append(history)
        tui_rss.append(rss)
    return {"update": update, "history": listing["limit"], "search": listing["search"], "status": listing["status"],
            "paint": statistics.median(paints), "to_history": statistics.median(histories), "tui_rss": max(tui_rss)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0,5000,100000")
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--migrate", type=int, default=5000, help="runs in the directory of the version before")
    ap.add_argument("--keep", help="build the directories here and keep them (reused when they exist)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    server = ServerProcess("--delay", "0.02")
    url = server.url + "/v1"
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(args.keep or scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            for n in sizes:
                data = tmp / f"runs-{n}"
                if not (data / "index.sqlite").exists():
                    took = build(data, n)
                    print(f"built {n:,} runs in {took:.1f} s", file=sys.stderr)
            schema = tmp / "schema.json"
            schema.write_text(json.dumps(SCHEMA))
            env = {"SYNTH_TUI_CONFIG": str(tmp / "settings.json"), "HOME": str(tmp)}
            fast_run(tmp / f"runs-{sizes[0]}", url, args.records, schema, env)  # warm the server and the disk
            runs: dict[int, list[tuple[float, float]]] = {n: [] for n in sizes}
            for rep in range(args.repeat):  # the sizes in turn, one way then the other: drift is shared
                for n in sizes if rep % 2 == 0 else sizes[::-1]:
                    runs[n].append(fast_run(tmp / f"runs-{n}", url, args.records, schema, env))
            for n in sizes:
                results[n] = {"rate": max(r for r, _ in runs[n]), "run_rss": max(m for _, m in runs[n]),
                              **measure(tmp / f"runs-{n}", env)}
                print(f"measured {n:,}: {results[n]}", file=sys.stderr)
            migration = None
            if args.migrate:
                legacy = tmp / f"legacy-{args.migrate}"
                if legacy.exists():
                    subprocess.run(["rm", "-rf", str(legacy)], check=True)
                build_legacy(legacy, args.migrate)
                size = (legacy / "history.json").stat().st_size
                t0 = time.perf_counter()
                Store(legacy).close()
                migration = (time.perf_counter() - t0, size)
        finally:
            server.stop()
    base = results[sizes[0]]
    print(f"History at scale: a fast run ({args.records:,} records, 10 per request, concurrency 64, 20 ms server)")
    print("and the history commands, against data directories of each size (fresh processes).")
    print()
    header = ["runs in history", *(f"{n:,}" for n in sizes)]
    rows = [
        ("run: records/s", "rate", "{:,.0f}", True),
        ("run: peak RSS (MB)", "run_rss", "{:.0f}", False),
        ("one update_run (ms)", "update", "{:.1f}", False),
        ("history --limit 20 (s)", "history", "{:.2f}", False),
        ("history --search (s)", "search", "{:.2f}", False),
        ("history --status failed (s)", "status", "{:.2f}", False),
        ("TUI first paint (s)", "paint", "{:.2f}", False),
        ("TUI to history page (s)", "to_history", "{:.2f}", False),
        ("TUI peak RSS (MB)", "tui_rss", "{:.0f}", False),
    ]
    table = [header]
    for label, key, fmt, ratio in rows:
        cells = [label]
        for n in sizes:
            value = results[n][key] * (1000 if key == "update" else 1)
            text = fmt.format(value)
            if n != sizes[0]:
                if ratio:
                    text += f" ({results[n][key] / base[key]:.2f}x)"
                elif key.endswith("rss"):
                    text += f" ({round(results[n][key] - base[key]):+d})"
            cells.append(text)
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    big = results[sizes[-1]]
    print()
    print(f"targets at {sizes[-1]:,} runs: run >= 0.9x of the empty directory: {big['rate'] / base['rate']:.2f}x; "
          f"history < 1 s: {big['history']:.2f} s; first paint < 1 s: {big['paint']:.2f} s; "
          f"memory within 40 MB: run {big['run_rss'] - base['run_rss']:+.0f} MB, "
          f"TUI {big['tui_rss'] - base['tui_rss']:+.0f} MB")
    if migration:
        took, size = migration
        print(f"migration of a directory of the version before ({args.migrate:,} runs, history.json "
              f"{size / 1e6:.1f} MB): {took:.1f} s, once")


if __name__ == "__main__":
    main()
