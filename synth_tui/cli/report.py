"""``report``: the quality of a run's records (validity, duplicates, per-field figures);
a table on a terminal, stable text elsewhere, ``--json`` for programs."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .args import Subparsers, add_data_dir
from .history import opened_run
from .output import EXIT_OK, cell, is_terminal, out, out_rich, table

if TYPE_CHECKING:
    from ..core.report import QualityReport

FIELD_HEADERS = ["field", "source", "kind", "missing", "null", "unique", "figures"]


def add_parser(subparsers: Subparsers) -> None:
    q = subparsers.add_parser("report", help="quality report of a run: validity, duplicates, per-field figures")
    q.add_argument("id")
    q.add_argument("--json", action="store_true")
    add_data_dir(q)
    q.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.export import dumps_json
    from ..core.report import format_report, run_report
    from ..core.textsafe import clean_text

    with opened_run(args) as (store, doc):
        if doc.extra.get("kind") == "dataset":  # each table, integrity, children per parent
            from ..core.dataset.report import dataset_report, format_dataset_report

            tables = dataset_report(store, doc.id)
            out(dumps_json(tables.to_json(), indent=2, default=str) if args.json
                else clean_text(format_dataset_report(tables)))
            return EXIT_OK
        report = run_report(store, doc.id)
    title = f"run {doc.id} ({doc.status})"
    if args.json:
        out(dumps_json(report.to_json(), indent=2, default=str))
    elif is_terminal(sys.stdout):
        out_rich(*report_tables(report, title))
    else:
        out(clean_text(format_report(report, title)))
    return EXIT_OK


def report_tables(report: QualityReport, title: str) -> list[Any]:
    """The report for a terminal: a summary line, the top rejection reasons, the fields."""
    from ..core.report import check_lines, check_summary, describe_field, pct

    parts: list[Any] = [cell(title, "bold"), cell(
        f"{report.accepted} records · validity {pct(report.validity)} ({report.rejected} rejected) · "
        f"duplicate rate {pct(report.duplicate_rate)} ({report.duplicates} dropped)")]
    if report.cost:
        parts.append(cell(report.cost))
    if check_summary(report):
        parts.append(cell("checks: " + check_summary(report)))
    if report.top_rejections:
        reasons = [[str(n), reason] for reason, n in report.top_rejections]
        parts.append(table(["times", "top rejection reasons"], reasons, right=(0,)))
    rows = []
    for f in report.fields:
        unique = pct(f.unique_ratio) if f.kind not in ("array", "object", "empty") else "-"
        rows.append([f.path, f.source or "-", f.kind, pct(f.missing_rate), pct(f.null_rate), unique,
                     describe_field(f)])
    parts.append(table(FIELD_HEADERS, rows, right=(3, 4, 5), styles={0: "bold"}))
    parts += [cell(line) for line in check_lines(report)]
    return parts
