"""The shop dataset (customers, products, orders per customer 0-5, order items per order
1-4) end to end: generated, exported to SQLite and checked, each step in a child process
of its own, its wall time and peak resident memory (ru_maxrss of that child) read.

Generator-only: every field but the keys and references has an x-generator, so no model
request is made; the dataset is scaled to about 10k and 100k rows across its tables, so
that the larger run's memory can be held against the smaller's. Then the embedded model
(``--backend local``) writes the text fields of a small shop: rows/s and integrity.

    python bench/dataset.py [--customers 1000 10000] [--model-customers 10] [--no-model]

Target: 100,000 generator-only rows plus their SQLite export within a minute, memory bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 60.0
TARGET_ROWS = 100_000


def shop(customers: int, products: int, *, model: bool = False) -> dict:
    """The shop dataset; ``model``: the model writes names, countries, titles and currencies."""
    def drawn(generator: dict | str) -> dict:
        return {} if model else {"x-generator": generator}

    return {"tables": {
        "customers": {"count": customers, "primary_key": "id", "schema": {
            "id": {"type": "string", "format": "uuid", "x-generator": "uuid"},
            "name": {"type": "string", **drawn({"fake": "name"})},
            "country": {"type": "string", **drawn({"fake": "country"})},
            "signup": {"type": "string", "format": "date",
                       "x-generator": {"date": {"from": "2020-01-01", "to": "2025-12-31"}}}}},
        "products": {"count": products, "primary_key": "sku", "schema": {
            "sku": {"type": "string", "x-generator": {"fake": "ean13"}},
            "title": {"type": "string", **drawn({"fake": "catch_phrase"})},
            "price": {"type": "number", "minimum": 1, "maximum": 500,
                      "x-generator": {"uniform": {"min": 1, "max": 500}}}}},
        "orders": {"per": {"customers": {"min": 0, "max": 5}}, "primary_key": "id", "schema": {
            "id": {"type": "integer", "x-generator": {"sequence": {"start": 1}}},
            "customer_id": {"type": "string", "x-ref": "customers.id"},
            "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"],
                         **drawn({"weights": {"EUR": 0.5, "USD": 0.4, "GBP": 0.1}})},
            "placed": {"type": "string", "format": "date",
                       "x-generator": {"date": {"from": "2024-01-01", "to": "2025-12-31"}}},
            "total": {"type": "number", "minimum": 1, "x-generator": {"uniform": {"min": 1, "max": 2000}}}}},
        "order_items": {"per": {"orders": {"min": 1, "max": 4}}, "schema": {
            "order_id": {"type": "integer", "x-ref": "orders.id"},
            "product_sku": {"type": "string", "x-ref": "products.sku"},
            "qty": {"type": "integer", "minimum": 1, "maximum": 5, "x-generator": {"uniform": {"min": 1, "max": 5}}},
            # a price (and an order's total) keeps two rows of one parent apart: a row whose drawn values
            # repeat an earlier row's (uuids and sequences aside) is a duplicate, and a table's row keeps its draw
            "unit_price": {"type": "number", "minimum": 1, "maximum": 500,
                           "x-generator": {"uniform": {"min": 1, "max": 500}}}}},
    }}


def child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``python args`` in this repository; (seconds, peak MiB, its stdout). The peak is
    that of the child or of a process it started and waited for, whichever is larger."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the largest child's so far
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(args[:3])} failed ({proc.returncode}): {err.read()[-3000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def env_for(workdir: Path) -> dict[str, str]:
    return {**os.environ, "SYNTH_TUI_DATA_DIR": str(workdir / "data"),
            "SYNTH_TUI_CONFIG": str(workdir / "settings.json")}


def one_dataset(dataset: dict, workdir: Path, backend: list[str]) -> dict:
    """Generate, export to SQLite and report one dataset; its figures."""
    workdir.mkdir(parents=True)
    (workdir / "shop.json").write_text(json.dumps(dataset))
    env = env_for(workdir)
    gen_s, gen_mib, _ = child(["-m", "synth_tui", "generate", str(workdir / "shop.json"), "--seed", "1", "-q",
                               *backend], env)
    figures = json.loads(child([__file__, "--check", str(workdir / "data"), str(workdir / "shop.db")], env)[2])
    exp_s, exp_mib, _ = child([__file__, "--export", str(workdir / "data"), str(workdir / "shop.db")], env)
    rep_s, rep_mib, _ = child([__file__, "--report", str(workdir / "data")], env)
    return {**figures, "generate_s": gen_s, "generate_mib": gen_mib, "export_s": exp_s, "export_mib": exp_mib,
            "report_s": rep_s, "report_mib": rep_mib, "db_mib": (workdir / "shop.db").stat().st_size / 2**20}


# -- the steps a child runs -------------------------------------------------------------------
def _run_id(store) -> str:
    return store.list_runs(limit=1)[0]["id"]


def export_step(data_dir: str, target: str) -> None:
    from synth_tui.core.dataset.export import export_dataset
    from synth_tui.core.store import Store

    with Store(data_dir, writable=False) as store:
        export_dataset(store, _run_id(store), target, "sqlite", force=True)


def report_step(data_dir: str) -> None:
    from synth_tui.core.dataset.report import dataset_report
    from synth_tui.core.store import Store

    with Store(data_dir, writable=False) as store:
        dataset_report(store, _run_id(store))


def check_step(data_dir: str, target: str) -> None:
    """Rows per table and integrity, from the report and from SQLite's own check (an
    untimed export first, so that the timed one replaces a file, as a rerun would)."""
    import sqlite3

    from synth_tui.core.dataset.report import dataset_report

    export_step(data_dir, target)
    from synth_tui.core.store import Store

    with Store(data_dir, writable=False) as store:
        report = dataset_report(store, _run_id(store))
    db = sqlite3.connect(target)
    broken = len(db.execute("PRAGMA foreign_key_check").fetchall())
    print(json.dumps({"rows": {t.name: t.rows for t in report.tables}, "integrity": report.integrity,
                      "references": report.references, "consistent": report.consistent, "fk_check": broken,
                      "status": report.status}))


# -- the figures ------------------------------------------------------------------------------
def print_generator_only(results: list[dict]) -> None:
    print("generator-only shop, each step in its own process (wall seconds, peak MiB of that process)")
    print(f"{'rows':>8} {'generate s':>10} {'rows/s':>8} {'peak MiB':>8} {'sqlite s':>8} {'peak MiB':>8} "
          f"{'report s':>8} {'db MiB':>7} {'integrity':>9} {'fk_check':>8}")
    for r in results:
        rows = sum(r["rows"].values())
        print(f"{rows:>8,} {r['generate_s']:>10.1f} {rows / r['generate_s']:>8,.0f} {r['generate_mib']:>8.0f} "
              f"{r['export_s']:>8.1f} {r['export_mib']:>8.0f} {r['report_s']:>8.1f} {r['db_mib']:>7.1f} "
              f"{r['integrity'] * 100:>8.1f}% {r['fk_check']:>8}")
    big = results[-1]
    rows = sum(big["rows"].values())
    total = big["generate_s"] + big["export_s"]
    print(f"\ntables at the largest size: {', '.join(f'{k} {v:,}' for k, v in big['rows'].items())}")
    print(f"generate + SQLite export of {rows:,} rows: {total:.1f} s   target: {TARGET_ROWS:,} rows within "
          f"{TARGET_SECONDS:.0f} s ({'met' if total <= TARGET_SECONDS and rows >= 0.95 * TARGET_ROWS else 'NOT met'})")
    if len(results) > 1:
        small = results[0]
        print(f"peak memory, {sum(small['rows'].values()):,} -> {rows:,} rows: generate "
              f"{small['generate_mib']:.0f} -> {big['generate_mib']:.0f} MiB, export {small['export_mib']:.0f} -> "
              f"{big['export_mib']:.0f} MiB   target: bounded (near flat)")


def print_model(r: dict) -> None:
    rows = sum(r["rows"].values())
    print(f"\nembedded model (--backend local), {', '.join(f'{k} {v}' for k, v in r['rows'].items())}: "
          f"{r['status']}, {rows} rows in {r['generate_s']:.1f} s = {rows / r['generate_s']:.2f} rows/s, "
          f"peak {r['generate_mib']:.0f} MiB (largest process, the model's included)"
          f"; integrity {r['integrity'] * 100:.1f}% of {r['references']} "
          f"references, foreign_key_check {r['fk_check']} rows, consistent {r['consistent']}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("--export", "--report", "--check"):
        sys.path.insert(0, str(ROOT))
        step = {"--export": export_step, "--report": report_step, "--check": check_step}[sys.argv[1]]
        step(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000, 10_000],
                        help="customers at each size (rows across the tables: about 10x)")
    parser.add_argument("--model-customers", type=int, default=10)
    parser.add_argument("--no-model", action="store_true", help="skip the embedded model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [one_dataset(shop(n, max(1, n // 4)), Path(tmp) / f"gen-{n}", [])
                   for n in sorted(args.customers)]
        print_generator_only(results)
        if not args.no_model:
            n = args.model_customers
            print_model(one_dataset(shop(n, max(1, n // 2), model=True), Path(tmp) / "model",
                                    ["--backend", "local", "--concurrency", "2"]))


if __name__ == "__main__":
    main()
