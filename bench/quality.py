"""How realistic the built-in `customers` records are with the embedded default model, side by
side: the template as it was, every field written by the model (OLD_CUSTOMERS below, a copy
of it at commit ecc3cfc), against today's, whose names, emails, ages, plans and addresses are
drawn by generators and whose notes the model writes. Each figure is printed beside its
target (issue 13):

- every free-text field (a string with no enum, const, format or pattern): the most common
  value's share of the records, at most 5%; "name" in today's column is first and last name
  together, to compare with the old template's one name field
- emails at least 99% unique
- ages against the declared generator, normal(mean 42, stdev 14) clipped to 18..95 and
  rounded: a Kolmogorov-Smirnov test, p >= 0.01. The p-value is the asymptotic Kolmogorov
  series (what a KS test usually reports); for whole numbers that is conservative (too
  high), so a p-value from simulation is printed beside it: the share of samples of the
  same size, drawn by the generator itself, whose D is at least the one observed
- validity 100%: every record checked again against the schema (jsonschema, with format
  checks) and its rules, independently of the engine's own check
- records/s, once the model processes are up (their start is timed apart)

For each field the model writes, its texts' mean and longest length and the share as long as
the longest (a cap they run into), and the first few values, printed escaped.

    python bench/quality.py [--count 500] [--old-count N] [--seed 1] [--concurrency 4] [--only old|new]

--concurrency defaults to what `synth-tui generate` sends at once with default settings;
--old-count sets the old template's count alone (default: --count).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth_tui.core.backends.base import GenerationParams  # noqa: E402
from synth_tui.core.backends.local import LocalBackend, close_model_processes  # noqa: E402
from synth_tui.core.engine import Run, RunConfig  # noqa: E402
from synth_tui.core.events import Event, RecordsAccepted  # noqa: E402
from synth_tui.core.schema import RecordSchema, check_schema  # noqa: E402
from synth_tui.core.templates import TEMPLATES  # noqa: E402

# The customers template before generators (git show ecc3cfc:synth_tui/core/templates.py)
OLD_CUSTOMERS: dict[str, Any] = {
    "name": {"type": "string", "description": "full name"},
    "email": {"type": "string", "format": "email"},
    "age": {"type": "integer", "minimum": 18, "maximum": 95},
    "plan": {"type": "string", "enum": ["free", "pro", "team", "enterprise"]},
    "signup_date": {"type": "string", "format": "date"},
    "address": {
        "street": {"type": "string"},
        "city": {"type": "string"},
        "country": {"type": "string"},
    },
}

TOP_SHARE_MAX = 0.05
EMAIL_UNIQUE_MIN = 0.99
KS_P_MIN = 0.01
SIMULATIONS = 2000
SAMPLES = 4


@dataclass
class Figures:
    """What one variant's run gave."""

    label: str
    count: int
    accepted: int = 0
    start_seconds: float = 0.0  # the model processes' start (a one-record run before the timed one)
    seconds: float = 0.0
    requests: int = 0
    rejected: int = 0
    error: str | None = None
    top_shares: dict[str, tuple[float, Any]] = field(default_factory=dict)  # leaf name -> (share, value)
    lengths: dict[str, tuple[float, int, float]] = field(default_factory=dict)  # model text: mean, max, share at max
    samples: dict[str, list[Any]] = field(default_factory=dict)  # model text: the first few values
    email_unique: float = 0.0
    ages: list[int] = field(default_factory=list)
    valid: int = 0
    first_invalid: str = ""

    @property
    def rps(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


# -- the run ------------------------------------------------------------------------------------
async def generate(
    schema: RecordSchema, count: int, seed: int, concurrency: int, label: str = ""
) -> tuple[Any, float]:
    backend = LocalBackend()
    try:
        config = RunConfig(count=count, concurrency=concurrency, params=GenerationParams(seed=seed))
        started = time.perf_counter()
        result = await Run(schema, config, backend, on_event=progress_line(label) if label else None).execute()
        return result, time.perf_counter() - started
    finally:
        await backend.aclose()


def progress_line(label: str) -> Callable[[Event], None]:
    """A line on stderr every 50 records: a run of the model takes minutes."""
    shown = [0]

    def sink(event: Event) -> None:
        done = event.progress.done
        if isinstance(event, RecordsAccepted) and done >= shown[0] + 50:
            shown[0] = done - done % 50
            print(f"  {label}: {done}/{event.progress.total} records, {event.progress.elapsed:.0f} s",
                  file=sys.stderr, flush=True)

    return sink


def run_variant(label: str, template: dict[str, Any], count: int, seed: int, concurrency: int) -> Figures:
    schema = check_schema(template)
    figures = Figures(label, count)
    # the model processes start on the first request: time that apart from the run
    _, figures.start_seconds = asyncio.run(generate(schema, 1, seed + 10_000, 1))
    result, figures.seconds = asyncio.run(generate(schema, count, seed, concurrency, label))
    close_model_processes()
    figures.accepted, figures.requests, figures.rejected = result.accepted, result.requests, result.rejected
    figures.error = result.error
    measure(figures, schema, result.records)
    return figures


# -- the figures --------------------------------------------------------------------------------
def measure(figures: Figures, schema: RecordSchema, records: list[dict[str, Any]]) -> None:
    n = max(1, len(records))
    recipe = schema.recipe
    for path in free_text_paths(schema.schema):
        values = [value_at(r, path) for r in records]
        figures.top_shares[path[-1]] = top_share(values, n)
        if recipe is None or recipe.source(path[0]) == "model":
            figures.lengths[path[-1]] = text_lengths(values)
            figures.samples[path[-1]] = values[:SAMPLES]
    if "name" not in figures.top_shares and {"first_name", "last_name"} <= figures.top_shares.keys():
        names = [f"{r.get('first_name')} {r.get('last_name')}" for r in records]
        figures.top_shares["name"] = top_share(names, n)
    emails = [r.get("email") for r in records]
    figures.email_unique = len(set(emails)) / n
    figures.ages = [int(r["age"]) for r in records if isinstance(r.get("age"), (int, float))]
    for record in records:
        problems = [e.message for e in schema.validator.iter_errors(record)]
        problems += recipe.broken_rules(record) if recipe is not None else []
        if problems:
            figures.first_invalid = figures.first_invalid or problems[0][:100]
        else:
            figures.valid += 1


def free_text_paths(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of the string fields that say nothing of their values' shape: free text."""
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        if spec.get("type") == "object":
            yield from free_text_paths(spec, (*prefix, name))
        elif spec.get("type") == "string" and not {"enum", "const", "format", "pattern"} & spec.keys():
            yield (*prefix, name)


def value_at(record: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        record = record.get(key) if isinstance(record, dict) else None
    return record


def text_lengths(values: list[Any]) -> tuple[float, int, float]:
    """Mean and longest length of the texts, and the share as long as the longest: a
    length cap the texts run into shows as a large share."""
    lengths = [len(v) for v in values if isinstance(v, str)]
    if not lengths:
        return 0.0, 0, 0.0
    longest = max(lengths)
    return statistics.fmean(lengths), longest, lengths.count(longest) / len(lengths)


def top_share(values: list[Any], n: int) -> tuple[float, Any]:
    if not values:
        return 0.0, None
    value, times = Counter(values).most_common(1)[0]
    return times / n, value


# -- Kolmogorov-Smirnov against the declared generator ------------------------------------------
def ks_statistic(values: list[int], cdf: Callable[[float], float], low: int, high: int) -> float:
    """D for whole numbers: both CDFs step only at integers, so the largest gap is at one."""
    counts = Counter(values)
    n = len(values)
    seen = 0
    gap = 0.0
    for k in range(min(low, *values) - 1, max(high, *values) + 1):
        seen += counts.get(k, 0)
        gap = max(gap, abs(seen / n - cdf(k)))
    return gap


def kolmogorov_p(d: float, n: int) -> float:
    """P(D >= d) for a sample of n from a continuous distribution: the asymptotic
    Kolmogorov distribution with Stephens' small-sample correction."""
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    if lam <= 0:
        return 1.0
    if lam < 1.18:  # this series converges fast for small lambda
        x = math.exp(-(math.pi**2) / (8 * lam * lam))
        cdf = math.sqrt(2 * math.pi) / lam * sum(x ** ((2 * k - 1) ** 2) for k in range(1, 20))
        return min(1.0, max(0.0, 1.0 - cdf))
    return min(1.0, max(0.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))))


@dataclass
class KsResult:
    d: float
    p_asymptotic: float
    p_simulated: float


def age_test(ages: list[int], seed: int) -> KsResult | None:
    """The ages against today's template's age generator (the old template declared none:
    it is held to the same distribution)."""
    if len(ages) < 2:
        return None
    recipe = check_schema(TEMPLATES["customers"]).recipe
    assert recipe is not None, "today's customers template draws its ages"
    generator = recipe.generated.generators["age"]
    cdf = generator.sample_cdf()
    assert cdf is not None, "a numeric generator has a CDF"
    low, high = 18, 95
    d = ks_statistic(ages, cdf, low, high)
    rng = random.Random(f"{seed}:ks")
    n = len(ages)
    at_least = sum(
        ks_statistic([generator.draw(rng) for _ in range(n)], cdf, low, high) >= d - 1e-12 for _ in range(SIMULATIONS)
    )
    return KsResult(d, kolmogorov_p(d, n), (at_least + 1) / (SIMULATIONS + 1))


# -- printing -----------------------------------------------------------------------------------
def shown(value: Any, width: int = 26) -> str:
    text = repr(value)  # model text is printed escaped, never as it is
    return text if len(text) <= width else text[: width - 3] + "..."


def mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def cell(figures: Figures | None, text: Callable[[Figures], str]) -> str:
    return text(figures) if figures is not None else "-"


def print_table(old: Figures | None, new: Figures | None, seed: int) -> None:
    width = 40
    print(f"\n{'':<24} {'(a) old: all from the model':<{width}} {'(b) today: generators + model':<{width}} target")
    rows: list[tuple[str, Callable[[Figures], str], str]] = [
        ("records", records_text, ""),
    ]
    leaves = list(dict.fromkeys([*(old.top_shares if old else {}), *(new.top_shares if new else {})]))
    for leaf in leaves:
        rows.append((f"top value: {leaf}", functools.partial(share_text, leaf=leaf), f"<= {TOP_SHARE_MAX:.0%}"))
    for leaf in list(dict.fromkeys([*(old.lengths if old else {}), *(new.lengths if new else {})])):
        rows.append((f"model text: {leaf}", functools.partial(length_text, leaf=leaf), "length mean / max, at max"))
    rows += [
        ("emails unique", lambda f: f"{f.email_unique:.1%} {mark(f.email_unique >= EMAIL_UNIQUE_MIN)}",
         f">= {EMAIL_UNIQUE_MIN:.0%}"),
        ("age: mean / stdev", age_moments, "42 / 14 (before clipping)"),
        ("age: min..max", lambda f: f"{min(f.ages)}..{max(f.ages)}" if f.ages else "-", "18..95"),
    ]
    for label, text, target in rows:
        print(f"{label:<24} {cell(old, text):<{width}} {cell(new, text):<{width}} {target}")
    tests = {f.label: age_test(f.ages, seed) for f in (old, new) if f is not None}
    ks_rows: list[tuple[str, Callable[[KsResult], str], str]] = [
        ("age KS: D", lambda k: f"{k.d:.3f}", ""),
        ("age KS: p (asymptotic)", lambda k: f"{k.p_asymptotic:.3g} {mark(k.p_asymptotic >= KS_P_MIN)}",
         f">= {KS_P_MIN}"),
        ("age KS: p (simulated)", lambda k: f"{k.p_simulated:.3g} {mark(k.p_simulated >= KS_P_MIN)}",
         f">= {KS_P_MIN} ({SIMULATIONS} samples)"),
    ]
    for label, ks_text, target in ks_rows:
        found = [tests.get(f.label) if f is not None else None for f in (old, new)]
        cells = [ks_text(k) if k is not None else "-" for k in found]
        print(f"{label:<24} {cells[0]:<{width}} {cells[1]:<{width}} {target}")
    for label, text, target in [
        ("valid (checked again)", validity_text, "100%"),
        ("valid at first answer", lambda f: f"{f.accepted / max(1, f.accepted + f.rejected):.0%} "
         f"({f.rejected} rejected, {f.requests} requests)", ""),
        ("records/s", lambda f: f"{f.rps:.2f} ({f.seconds:.0f} s)", "none set; higher is better"),
        ("model start", lambda f: f"{f.start_seconds:.1f} s (one record)", ""),
    ]:
        print(f"{label:<24} {cell(old, text):<{width}} {cell(new, text):<{width}} {target}")


def records_text(f: Figures) -> str:
    return f"{f.accepted} of {f.count}" + (f" (run failed: {f.error[:60]})" if f.error else "")


def share_text(f: Figures, leaf: str) -> str:
    if leaf not in f.top_shares:
        return "-"
    share, value = f.top_shares[leaf]
    return f"{share:.1%} {mark(share <= TOP_SHARE_MAX)} {shown(value)}"


def length_text(f: Figures, leaf: str) -> str:
    if leaf not in f.lengths:
        return "-"
    mean, longest, at_max = f.lengths[leaf]
    return f"{mean:.1f} / {longest}, {at_max:.0%} at {longest}"


def age_moments(f: Figures) -> str:
    if len(f.ages) < 2:
        return "-"
    return f"{statistics.fmean(f.ages):.1f} / {statistics.stdev(f.ages):.1f}"


def validity_text(f: Figures) -> str:
    share = f.valid / max(1, f.accepted)
    text = f"{share:.1%} {mark(f.valid == f.accepted and f.accepted > 0)}"
    return text + (f" first problem: {f.first_invalid}" if f.first_invalid else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=500, help="records per template (default 500)")
    ap.add_argument("--old-count", type=int, help="records of the old template (default: --count)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=4, help="requests at once (default 4, the CLI's default)")
    ap.add_argument("--only", choices=("old", "new"), help="run one template only")
    args = ap.parse_args()
    old_count = args.old_count or args.count
    print(f"customers template, embedded model (SmolLM2-135M-Instruct Q4_1), seed {args.seed}, "
          f"concurrency {args.concurrency}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    old = new = None
    if args.only != "new":
        old = run_variant("old", OLD_CUSTOMERS, old_count, args.seed, args.concurrency)
        print(f"old template: {old.accepted} records in {old.seconds:.0f} s", flush=True)
    if args.only != "old":
        new = run_variant("new", TEMPLATES["customers"], args.count, args.seed, args.concurrency)
        print(f"today's template: {new.accepted} records in {new.seconds:.0f} s", flush=True)
    print_table(old, new, args.seed)
    for figures in [f for f in (old, new) if f is not None]:
        for leaf, values in figures.samples.items():
            print(f"{figures.label} {leaf}: " + ", ".join(shown(v, 60) for v in values))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (other work on this machine slows records/s)")


if __name__ == "__main__":
    main()
