"""Store scaling, side by side in one run.

  store   records go through the Store as the engine sends them: create_run, journal
          appends of 10 records (fsync in groups of 50), a history update every 2 s,
          a final update
  plain   the same records appended to a JSONL file, fsync every 50 records
for 10k and 100k records; then exports of 1M records to JSONL, JSON and CSV. Every
measurement runs in a fresh child process, so its peak RSS is its own.

    python bench/store_scale.py [--export-records 1000000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"},
    "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}}}}


def make_record(i: int) -> dict:
    return {"id": i, "name": f"Person {i} Ünïcode", "email": f"p{i}@example.com",
            "address": {"city": f"City {i % 997}", "zip": f"{i % 99999:05d}"}, "tags": ["a", f"t{i % 7}"],
            "bio": "Lorem ipsum dolor sit amet, consectetur adipiscing elit, with a comma, and \"quotes\"."}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def via_store(tmp: str, n: int) -> float:
    from synth_tui.core.store import Store

    store = Store(Path(tmp) / "data")
    t0 = time.perf_counter()
    run_id = store.create_run({"schema": SCHEMA, "config": {"count": n}})
    journal = store.open_journal(run_id)
    last = time.monotonic()
    batch = []
    for i in range(n):
        batch.append(make_record(i))
        if len(batch) == 10:
            journal.append(batch)
            batch = []
            if time.monotonic() - last >= 2.0:
                store.update_run(run_id, counts={"accepted": i + 1})
                last = time.monotonic()
    journal.append(batch) if batch else None
    journal.close()
    store.update_run(run_id, status="done", counts={"accepted": n})
    elapsed = time.perf_counter() - t0
    assert store.count_records(run_id) == n
    store.close()
    return elapsed


def via_plain(tmp: str, n: int) -> float:
    path = Path(tmp) / "plain.jsonl"
    t0 = time.perf_counter()
    with open(path, "ab") as fh:
        for i in range(n):
            fh.write(json.dumps(make_record(i), ensure_ascii=False).encode() + b"\n")
            if (i + 1) % 50 == 0:
                fh.flush()
                os.fsync(fh.fileno())
        fh.flush()
        os.fsync(fh.fileno())
    return time.perf_counter() - t0


def write_source(path: str, n: int) -> None:
    with open(path, "wb") as fh:
        for i in range(n):
            fh.write(json.dumps(make_record(i), ensure_ascii=False).encode() + b"\n")


def export(source: str, out: str, fmt: str) -> float:
    from synth_tui.core.export import export_to_path
    from synth_tui.core.store import read_jsonl

    t0 = time.perf_counter()
    export_to_path(lambda: read_jsonl(Path(source)), out, fmt, schema=SCHEMA, force=True)
    return time.perf_counter() - t0


def _child(conn, fn, args) -> None:
    base = peak_mb()
    seconds = fn(*args)
    conn.send((seconds, peak_mb(), base))


def measure(fn, *args) -> tuple[float, float, float]:
    """(seconds, peak RSS MB, RSS MB before the work) of fn in a fresh process."""
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_child, args=(child, fn, args))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--export-records", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("persist: seconds (peak RSS MB)")
        times = {}
        for n in (10_000, 100_000):
            s, s_mb, _ = measure(via_store, tempfile.mkdtemp(dir=tmp), n)
            p, p_mb, _ = measure(via_plain, tempfile.mkdtemp(dir=tmp), n)
            times[n] = s
            print(f"  {n:>7} records  store {s:6.2f}s ({s_mb:5.0f} MB)   plain JSONL {p:6.2f}s ({p_mb:5.0f} MB)"
                  f"   store/plain {s / p:4.2f}")
        print(f"  scaling: store 100k / 10k = {times[100_000] / times[10_000]:.1f}x (linear would be 10x)")
        source = os.path.join(tmp, "source.jsonl")
        write_source(source, args.export_records)
        size = os.path.getsize(source) / 1e6
        print(f"export of {args.export_records:,} records ({size:.0f} MB of JSONL): seconds (peak RSS MB, baseline)")
        for fmt in ("jsonl", "json", "csv"):
            out = os.path.join(tmp, f"out.{fmt}")
            s, mb, base = measure(export, source, out, fmt)
            print(f"  {fmt:5}  {s:6.2f}s  peak {mb:5.0f} MB (process before export {base:.0f} MB)")
            os.unlink(out)


if __name__ == "__main__":
    main()
