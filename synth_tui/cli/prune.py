"""``prune``: remove old, failed or surplus runs and their records, and say how much space
that gave back. A running run is never touched."""

from __future__ import annotations

import argparse

from .args import Subparsers, add_data_dir, data_dir, whole
from .history import HEADERS, age, history_row
from .output import EXIT_BAD_INPUT, EXIT_OK, error, out, plain_columns, print_warnings, say

PRUNABLE = ("done", "failed", "cancelled", "interrupted")


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "prune", help="remove runs and their records: old ones, of a status, or all but the newest",
        description="Remove runs and their records. The conditions given all apply: --older-than 30d "
                    "--status failed removes failed runs older than 30 days. A running run is never removed.")
    p.add_argument("--older-than", type=age, metavar="AGE",
                   help="runs created more than AGE ago: 30d, 12h, 90m, 2w")
    p.add_argument("--status", action="append", metavar="STATUS", type=statuses,
                   help=f"runs of this status ({', '.join(PRUNABLE)}); repeat it or separate with commas")
    p.add_argument("--keep", type=whole(0), metavar="N",
                   help="keep the N newest runs (of the --status given, else of all)")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    add_data_dir(p)
    p.set_defaults(run=run_prune)


def statuses(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        if name == "running":
            raise argparse.ArgumentTypeError("a running run is never pruned: stop it first")
        if name not in PRUNABLE:
            raise argparse.ArgumentTypeError(f"unknown status {name!r}: one of {', '.join(PRUNABLE)}")
    return names


def size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


def run_prune(args: argparse.Namespace) -> int:
    from ..core.store import Store

    chosen = [s for group in args.status or [] for s in group]
    if args.older_than is None and not chosen and args.keep is None:
        error("say which runs to prune: --older-than AGE, --status STATUS and/or --keep N "
              "(--dry-run shows what would go)")
        return EXIT_BAD_INPUT
    with Store(data_dir(args), writable=not args.dry_run) as store:
        print_warnings(store)
        result = store.prune(older_than=args.older_than, statuses=chosen or None, keep=args.keep,
                             dry_run=args.dry_run)
    runs = len(result.ids)
    what = f"{runs:,} run{'' if runs == 1 else 's'} ({result.records:,} records)"
    if args.dry_run:
        if result.sample:
            out(plain_columns([HEADERS] + [history_row(d) for d in result.sample]))
            if runs > len(result.sample):
                out(f"... and {runs - len(result.sample):,} more")
        say(f"would remove {what}, freeing {size(result.freed)} (dry run: nothing removed)")
    else:
        say(f"removed {what}, freed {size(result.freed)}")
    if result.skipped:
        say(f"left {len(result.skipped):,} running run{'' if len(result.skipped) == 1 else 's'} alone: "
            + ", ".join(result.skipped[:5]) + (" ..." if len(result.skipped) > 5 else ""))
    return EXIT_OK
