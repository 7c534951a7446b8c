"""The history: ``history`` (list runs, newest first, filtered), ``show`` (one run and a
sample of its records), ``delete`` (a run and its records). ``prune`` is in prune.py.

Every value printed here comes from the history file, which a person or a program may have
edited, or from a model: each is made one harmless line first. ``--json`` prints the run
documents as the store writes them (:meth:`RunDoc.to_dict`).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .args import Subparsers, add_data_dir, data_dir, whole
from .output import EXIT_OK, cell, is_terminal, out, out_rich, plain_columns, print_warnings, say, table

if TYPE_CHECKING:
    from ..core.store import RunDoc, Store

HEADERS = ["ID", "CREATED (UTC)", "STATUS", "MODEL", "RECORDS", "TIME", "COST"]
STATUS_STYLES = {"done": "green", "failed": "red", "cancelled": "yellow", "interrupted": "yellow",
                 "running": "cyan"}


def add_parser(subparsers: Subparsers) -> None:
    from ..core.store import STATUSES

    h = subparsers.add_parser("history", help="list runs, newest first")
    h.add_argument("--status", choices=STATUSES)
    h.add_argument("--limit", type=whole(0), default=20, help="runs to list (0: all)")
    h.add_argument("--since", type=moment, metavar="DATE",
                   help="runs created at or after DATE: 2026-11-01, an ISO time (UTC unless it says), or an age "
                        "such as 7d, 12h, 30m, 2w")
    h.add_argument("--search", metavar="TEXT",
                   help="runs whose schema title, field names, backend or model hold TEXT (any case)")
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


AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def age(text: str) -> float:
    """An argparse type: an age such as 30d, 12h, 90m, 2w or 45s, in seconds."""
    match = AGE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected an age such as 30d, 12h, 90m or 2w, not {text!r}")
    return float(match.group(1)) * AGE_UNITS[match.group(2).lower()]


def moment(text: str) -> datetime:
    """An argparse type: a date (2026-11-01), an ISO time (UTC unless it names a zone),
    or an age before now (7d)."""
    if AGE.match(text):
        return datetime.now(UTC) - timedelta(seconds=age(text))
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date (2026-11-01), an ISO time (2026-11-01T09:30) or an age (7d), not {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def history_row(doc: RunDoc) -> list[str]:
    """One history row as plain strings; each cell is made one harmless line."""
    from ..core.pricing import cost_text
    from ..core.textsafe import clean_line

    cells = [
        doc.id,
        doc.created[:19].replace("T", " "),
        doc.status,
        doc.backend.label,
        f"{doc.counts.accepted}/{doc.counts.requested}",
        f"{doc.elapsed:.1f}s" if doc.elapsed is not None else "-",
        cost_text(doc.to_dict()),
    ]
    return [clean_line(c) for c in cells]


def run_history(args: argparse.Namespace) -> int:
    from ..core.export import dumps_json
    from ..core.store import Store

    with Store(data_dir(args), writable=False) as store:
        print_warnings(store)
        query = {"since": args.since, "search": args.search}
        if args.json:
            runs = store.iter_runs(args.status, **query) if not args.limit else store.list_runs(
                args.status, args.limit, **query)
            write_json_list((doc.to_dict() for doc in runs), dumps_json)
            return EXIT_OK
        runs = store.list_runs(args.status, args.limit, **query)
    if not runs:
        out("no runs yet" if not (args.status or args.since or args.search) else "no runs " + described(args))
    elif is_terminal(sys.stdout):
        rows = [history_row(d) for d in runs]
        styled = [[*r[:2], cell(r[2], STATUS_STYLES.get(r[2], "")), *r[3:]] for r in rows]
        out_rich(table(HEADERS, styled, right=(4, 5, 6), styles={0: "bold"}))
    else:
        out(plain_columns([HEADERS] + [history_row(d) for d in runs]))
    return EXIT_OK


def described(args: argparse.Namespace) -> str:
    """The filters asked for, in words (the search text made one harmless line)."""
    from ..core.textsafe import clean_line

    parts = []
    if args.status:
        parts.append(f"with status {args.status}")
    if args.since:
        parts.append(f"since {args.since.astimezone(UTC).isoformat(timespec='seconds')}")
    if args.search:
        parts.append(f"matching {clean_line(args.search)!r}")
    return " ".join(parts)


def write_json_list(docs: Any, dumps_json: Any) -> None:
    """A JSON list written a document at a time: every run of a large history without
    holding them all (each held back until the next says whether a comma follows)."""
    held = None
    out("[")
    for doc in docs:
        if held is not None:
            out(held + ",")
        held = "\n".join("  " + line for line in dumps_json(doc, indent=2).splitlines())
    if held is not None:
        out(held)
    out("]")


def show_lines(doc: RunDoc, sample: list[Any]) -> list[str]:
    from ..core.export import dumps_json
    from ..core.spending import run_endpoint_lines, run_spent_line

    counts, backend = doc.counts, doc.backend
    lines = [
        f"run       {doc.id}",
        f"status    {doc.status}",
        f"created   {doc.created}   finished {doc.finished or '-'}",
        f"backend   {backend.kind}  model {backend.model}  {backend.base_url or ''}".rstrip(),
        (f"records   {counts.accepted}/{counts.requested} accepted, "
         f"{counts.rejected} rejected, {counts.duplicates} duplicates"),
        (f"requests  {counts.requests} ({counts.retries} retries), tokens "
         f"{counts.prompt_tokens} prompt + {counts.completion_tokens} completion"),
        f"cost      {run_spent_line(doc.to_dict()).removeprefix('cost ') or 'none: the embedded model runs here'}",
        *(f"endpoint  {line}" for line in run_endpoint_lines(doc.to_dict())),
        f"config    {dumps_json(doc.config)}",
    ]
    if doc.error:
        lines.append(f"error     {doc.error}")
    lines.append("schema    " + dumps_json(doc.schema))
    lines.append(f"sample ({len(sample)}):")
    lines += ["  " + dumps_json(r) for r in sample]
    return lines


@contextlib.contextmanager
def opened_run(args: argparse.Namespace) -> Iterator[tuple[Store, RunDoc]]:
    """The history of ``--data-dir``, read-only (its warnings printed), and the run that
    ``args.id`` names: what show, export and report start from."""
    from ..core.store import Store

    with Store(data_dir(args), writable=False) as store:
        print_warnings(store)
        yield store, store.get_run(args.id)


def run_show(args: argparse.Namespace) -> int:
    from ..core.export import dumps_json
    from ..core.textsafe import clean_line

    with opened_run(args) as (store, doc):
        sample = store.read_page(doc.id, 0, args.sample)
    if args.json:
        out(dumps_json({"run": doc.to_dict(), "sample": sample}, indent=2))
    else:  # each line from the history or a model: one harmless line
        out("\n".join(clean_line(line) for line in show_lines(doc, sample)))
    return EXIT_OK


def run_delete(args: argparse.Namespace) -> int:
    from ..core.store import Store

    with Store(data_dir(args)) as store:
        print_warnings(store)
        doc = store.delete_run(args.id)
    say(f"deleted run {doc.id}")
    return EXIT_OK
