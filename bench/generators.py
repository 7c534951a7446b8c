"""Generator-only runs: records/s and peak memory, at two sizes side by side in one run.

A schema whose every field has a generator (uuid, sequence, fake names and city,
a template email, normal age, weighted plan, date, bool) makes no model request. Each
size runs `synth-tui generate` in a child process of its own, records streamed to the
journal (history on disk, the way a user runs it) and to /dev/null, and its wall time
and peak resident memory (ru_maxrss) are read. Memory is bounded when the larger run's
peak stays near the smaller's.

    python bench/generators.py [--sizes 10000 100000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = {
    "id": {"type": "string", "format": "uuid", "x-generator": "uuid"},
    "number": {"type": "integer", "x-generator": {"sequence": {"start": 1}}},
    "first_name": {"type": "string", "x-generator": {"fake": "first_name"}},
    "last_name": {"type": "string", "x-generator": {"fake": "last_name"}},
    "email": {"type": "string", "x-generator": {"template": "{first_name}.{last_name}@example.com"}},
    "city": {"type": "string", "x-generator": {"fake": "city"}},
    "age": {"type": "integer", "minimum": 18, "maximum": 95, "x-generator": {"normal": {"mean": 42, "stdev": 14}}},
    "plan": {"type": "string", "enum": ["free", "pro", "team"],
             "x-generator": {"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}},
    "signup_date": {"type": "string", "format": "date",
                    "x-generator": {"date": {"from": "2020-01-01", "to": "2025-12-31"}}},
    "active": {"type": "boolean", "x-generator": {"bool": 0.8}},
}


def one_run(size: int, workdir: Path) -> tuple[float, float]:
    """Seconds and peak MiB of one `generate -n size` in a child process."""
    schema = workdir / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    env = {**os.environ, "SYNTH_TUI_DATA_DIR": str(workdir / f"data-{size}-{time.monotonic_ns()}"),
           "SYNTH_TUI_CONFIG": str(workdir / "settings.json")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    with open(os.devnull, "w") as sink:
        done = subprocess.run([sys.executable, "-m", "synth_tui", "generate", str(schema), "-n", str(size),
                               "--seed", "1", "-q"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.PIPE,
                              text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"generate -n {size} failed: {done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far: run sizes from small to large
    return seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    best: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for size in sizes:
                seconds, peak = one_run(size, Path(tmp))
                old = best.get(size)
                best[size] = (min(seconds, old[0]) if old else seconds, peak)
    print(f"{'records':>9} {'seconds':>8} {'records/s':>10} {'peak MiB':>9}")
    for size in sizes:
        seconds, peak = best[size]
        print(f"{size:>9,} {seconds:>8.2f} {size / seconds:>10,.0f} {peak:>9.0f}")
    small, large = sizes[0], sizes[-1]
    print(f"\n{large:,} vs {small:,} records: time x{best[large][0] / best[small][0]:.1f} "
          f"for x{large / small:.0f} the records; peak memory x{best[large][1] / best[small][1]:.2f}")
    print("target: 100,000 records well under 30 s, memory bounded")


if __name__ == "__main__":
    main()
