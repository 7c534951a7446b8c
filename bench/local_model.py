"""The shipped embedded model on a fixed schema: records/s, tokens/s, validity, and how
varied the records are with and without variation hints, in one run.

    python bench/local_model.py [-n 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_tui.core.backends.base import GenerationParams  # noqa: E402
from synth_tui.core.backends.local import LocalBackend  # noqa: E402
from synth_tui.core.engine import Run, RunConfig  # noqa: E402
from synth_tui.core.schema import canonical_json, check_schema  # noqa: E402

SCHEMA = check_schema({
    "name": {"type": "string"},
    "age": {"type": "integer", "minimum": 18, "maximum": 90},
    "email": {"type": "string", "format": "email"},
    "plan": {"type": "string", "enum": ["free", "pro", "team"]},
    "address": {"city": {"type": "string"}, "country": {"type": "string"}},
})


async def one(n: int, hints: bool, seed: int) -> dict:
    backend = LocalBackend()
    config = RunConfig(count=n, variation_hints=hints, params=GenerationParams(seed=seed), max_attempts=3)
    t0 = time.perf_counter()
    result = await Run(SCHEMA, config, backend).execute()
    elapsed = time.perf_counter() - t0
    records = result.records
    return {
        "accepted": result.accepted,
        "valid_first": result.accepted / max(1, result.accepted + result.rejected),
        "rps": result.accepted / elapsed,
        "tps": result.completion_tokens / elapsed,
        "dup_rate": result.duplicates / max(1, result.accepted + result.duplicates),
        "unique_names": len({r["name"] for r in records}),
        "unique_records": len({canonical_json(r) for r in records}),
        "error": result.error,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    asyncio.run(one(1, True, 0))  # load the model once, outside the timings
    print(f"SmolLM2-135M-Instruct Q4_1, {args.n} records, 1 per request, threads={LocalBackend().threads}")
    print(f"{'hints':>6} {'records/s':>10} {'tokens/s':>9} {'valid':>6} {'dup rate':>9} {'unique names':>13}")
    rows = {}
    for hints in (True, False):
        r = asyncio.run(one(args.n, hints, args.seed))
        rows[hints] = r
        print(f"{'on' if hints else 'off':>6} {r['rps']:>10.2f} {r['tps']:>9.1f} {r['valid_first']:>6.0%}"
              f" {r['dup_rate']:>9.0%} {r['unique_names']:>8}/{r['accepted']}" + (f"  {r['error']}" if r["error"] else ""))
    on, off = rows[True], rows[False]
    print(f"unique names with hints / without: {on['unique_names']}/{off['unique_names']}")


if __name__ == "__main__":
    main()
