"""The history: ``history`` (list runs), ``show`` (one run and a sample of its records),
``delete`` (a run and its records).

Every value printed here comes from the history file, which a person or a program may have
edited, or from a model: each is made one harmless line first. ``--json`` prints the
documents as they are stored.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .args import Subparsers, add_data_dir, data_dir, whole
from .output import EXIT_OK, cell, is_terminal, out, out_rich, plain_columns, print_warnings, say, table

HEADERS = ["ID", "CREATED (UTC)", "STATUS", "MODEL", "RECORDS", "TIME"]
STATUS_STYLES = {"done": "green", "failed": "red", "cancelled": "yellow", "interrupted": "yellow",
                 "running": "cyan"}


def add_parser(subparsers: Subparsers) -> None:
    from ..core.store import STATUSES

    h = subparsers.add_parser("history", help="list runs, newest first")
    h.add_argument("--status", choices=STATUSES)
    h.add_argument("--limit", type=whole(0), default=20, help="runs to list (0: all)")
    h.add_argument("--json", action="store_true")
    add_data_dir(h)
    h.set_defaults(run=run_history)

    s = subparsers.add_parser("show", help="one run's details and a sample of its records")
    s.add_argument("id")
    s.add_argument("--sample", type=whole(0), default=5)
    s.add_argument("--json", action="store_true")
    add_data_dir(s)
    s.set_defaults(run=run_show)

    d = subparsers.add_parser("delete", help="delete a run and its records")
    d.add_argument("id")
    add_data_dir(d)
    d.set_defaults(run=run_delete)


def history_row(doc: dict[str, Any]) -> list[str]:
    """One history row as plain strings; each cell is made one harmless line."""
    from ..core.textsafe import clean_line

    counts = doc.get("counts") or {}
    backend = doc.get("backend") or {}
    cells = [
        doc["id"],
        str(doc.get("created") or "")[:19].replace("T", " "),
        doc.get("status", ""),
        f"{backend.get('backend', '')}:{backend.get('model', '')}",
        f"{counts.get('accepted', 0)}/{counts.get('requested', 0)}",
        f"{doc['elapsed']:.1f}s" if isinstance(doc.get("elapsed"), (int, float)) else "-",
    ]
    return [clean_line(c) for c in cells]


def run_history(args: argparse.Namespace) -> int:
    from ..core.export import dumps_json
    from ..core.store import Store

    with Store(data_dir(args), writable=False) as store:
        print_warnings(store)
        runs = store.list_runs(args.status, args.limit)
    if args.json:
        out(dumps_json(runs, indent=2))
    elif not runs:
        out("no runs yet" + (f" with status {args.status}" if args.status else ""))
    elif is_terminal(sys.stdout):
        rows = [history_row(d) for d in runs]
        styled = [[*r[:2], cell(r[2], STATUS_STYLES.get(r[2], "")), *r[3:]] for r in rows]
        out_rich(table(HEADERS, styled, right=(4, 5), styles={0: "bold"}))
    else:
        out(plain_columns([HEADERS] + [history_row(d) for d in runs]))
    return EXIT_OK


def show_lines(doc: dict[str, Any], sample: list[Any]) -> list[str]:
    from ..core.export import dumps_json

    counts = doc.get("counts") or {}
    backend = doc.get("backend") or {}
    lines = [
        f"run       {doc['id']}",
        f"status    {doc.get('status')}",
        f"created   {doc.get('created')}   finished {doc.get('finished', '-')}",
        f"backend   {backend.get('backend')}  model {backend.get('model')}  {backend.get('base_url') or ''}".rstrip(),
        (f"records   {counts.get('accepted', 0)}/{counts.get('requested', 0)} accepted, "
         f"{counts.get('rejected', 0)} rejected, {counts.get('duplicates', 0)} duplicates"),
        (f"requests  {counts.get('requests', 0)} ({counts.get('retries', 0)} retries), tokens "
         f"{counts.get('prompt_tokens', 0)} prompt + {counts.get('completion_tokens', 0)} completion"),
        f"config    {dumps_json(doc.get('config', {}))}",
    ]
    if doc.get("error"):
        lines.append(f"error     {doc['error']}")
    lines.append("schema    " + dumps_json(doc.get("schema")))
    lines.append(f"sample ({len(sample)}):")
    lines += ["  " + dumps_json(r) for r in sample]
    return lines


def run_show(args: argparse.Namespace) -> int:
    from ..core.export import dumps_json
    from ..core.store import Store
    from ..core.textsafe import clean_line

    with Store(data_dir(args), writable=False) as store:
        print_warnings(store)
        doc = store.get_run(args.id)
        sample = store.read_page(doc["id"], 0, args.sample)
    if args.json:
        out(dumps_json({"run": doc, "sample": sample}, indent=2))
    else:  # each line from the history or a model: one harmless line
        out("\n".join(clean_line(line) for line in show_lines(doc, sample)))
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    from ..core.store import Store

    with Store(data_dir(args)) as store:
        print_warnings(store)
        doc = store.delete_run(args.id)
    say(f"deleted run {doc['id']}")
    return EXIT_OK
