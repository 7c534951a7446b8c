"""``export``: a run's records from the history to a file (or a FIFO, a device, /dev/stdout)."""

from __future__ import annotations

import argparse

from .args import Subparsers, add_data_dir, add_output_options
from .history import opened_run
from .output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, error, say


def add_parser(subparsers: Subparsers) -> None:
    e = subparsers.add_parser(
        "export", help="export a run's records",
        epilog="A FIFO, a device or /dev/stdout is written as it is; a file is replaced only when complete.")
    e.add_argument("id")
    add_output_options(e, required=True)
    add_data_dir(e)
    e.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.export import OutputWriteError, export_to_path
    from ..core.textsafe import clean_line

    with opened_run(args) as (store, doc):
        if doc.extra.get("kind") == "dataset":  # every table: files in a folder, or one SQLite database
            from ..core.dataset.export import export_dataset

            say(export_dataset(store, doc.id, args.output, args.format, force=args.force))
            return EXIT_OK
        if args.format == "sqlite":
            error(f"run {doc.id} is one table: --format sqlite is for a dataset; choose jsonl, json or csv")
            return EXIT_BAD_INPUT
        try:
            n = export_to_path(lambda: store.iter_records(doc.id), args.output, args.format,
                               schema=doc.schema, force=args.force)
        except OutputWriteError as exc:
            error(exc)
            say(f"run {doc.id} keeps its records in the history: `synth-tui export {doc.id} -o FILE` "
                "writes them elsewhere")
            return EXIT_FAILED
    say(f"wrote {n} records to {clean_line(args.output)}")
    return EXIT_OK
