"""Quality report of a 100k-record run against reading its journal alone, in one run.

    python bench/report_scale.py [-n 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_tui.core.report import build_report  # noqa: E402
from synth_tui.core.schema import check_schema  # noqa: E402
from synth_tui.core.store import read_jsonl  # noqa: E402
from synth_tui.core.templates import TEMPLATES  # noqa: E402

SCHEMA = check_schema(TEMPLATES["customers"]).schema


def record(rng: random.Random, i: int) -> dict:
    return {"name": f"Person {rng.randint(0, 50000)}", "email": f"p{i}@example.com", "age": rng.randint(18, 95),
            "plan": rng.choice(["free", "pro", "team", "enterprise"]), "signup_date": f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "address": {"street": f"{rng.randint(1, 300)} Main St", "city": rng.choice(["Oslo", "Lima", "Accra"]),
                        "country": "NO"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    args = ap.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.jsonl"
        with open(path, "w") as fh:
            for i in range(args.n):
                fh.write(json.dumps(record(rng, i)) + "\n")
        best_read = best_report = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            count = sum(1 for _ in read_jsonl(path))
            best_read = min(best_read, time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = build_report(read_jsonl(path), SCHEMA)
            best_report = min(best_report, time.perf_counter() - t0)
        assert count == report.accepted == args.n
    print(f"{args.n:,} records, {len(report.fields)} fields (best of 3):")
    print(f"  read the journal   {best_read:6.2f} s")
    print(f"  quality report     {best_report:6.2f} s   ({best_report / best_read:.2f}x reading; target under 2 s)")


if __name__ == "__main__":
    main()
