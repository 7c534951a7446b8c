"""``generate DATASET`` and ``resume`` of a dataset run: its tables, parents first, as one
run in the history. Records go to the history (the tables' journals); ``-o DIR`` or
``-o FILE.db`` exports every table at the end (see core/dataset/export.py)."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.events import Event, RunStarted
from .args import data_dir
from .output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, error, say


class TableProgress:
    """The progress sink, with a line when each table starts."""

    def __init__(self, run: Any, progress: Any) -> None:
        self.run = run
        self.progress = progress

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.progress.line(f"table {self.run.current}: {event.progress.total} rows")
        self.progress(event)


def run_dataset(args: argparse.Namespace, dataset: Any, settings: Any) -> int:
    """Generate a dataset from the command line; the exit code."""
    from ..core.backends import BackendSpec
    from ..core.dataset import DatasetRun
    from ..core.errors import UserInputError
    from ..core.store import Store
    from .running import make_backend, run_config

    if args.no_save:
        raise UserInputError("a dataset's tables live in the history: --no-save cannot be used with a dataset")
    if args.examples or args.enrich:
        raise UserInputError("--examples and --enrich take one table's rows: give seed data per table in the "
                             "dataset file (from_seed) instead")
    if args.output:
        check_dataset_output(args.output, args.format, args.force)
    args.count = args.count or 1  # each table has its own
    config = run_config(args, settings)
    spec = BackendSpec(kind=args.backend or settings.backend, model=args.model, base_urls=tuple(args.base_url or ()))
    backend = make_backend(settings, spec, args.api_key_env, args.timeout)
    with Store(data_dir(args, settings)) as store:
        run = DatasetRun(dataset, config, backend, store=store)
        return finish(run, backend, store, args)


def resume_dataset(args: argparse.Namespace, store: Any, doc: Any, backend: Any) -> int:
    from ..core.dataset import DatasetRun

    if args.output:
        check_dataset_output(args.output, args.format, args.force)
    run = DatasetRun.resume(store, doc.id, backend)
    return finish(run, backend, store, args)


def finish(run: Any, backend: Any, store: Any, args: argparse.Namespace) -> int:
    from .progress import progress_sink
    from .running import execute

    progress = progress_sink(args.quiet, "dataset")
    run.on_event = TableProgress(run, progress)
    result, interrupted = execute(run, backend, progress)
    tables = ", ".join(f"{t.name} {t.accepted}/{t.requested}" for t in result.tables)
    say(f"run {result.run_id}: {result.status}, {result.accepted}/{result.requested} rows ({tables}), "
        f"{result.elapsed:.1f} s")
    if result.error:
        error(result.error)
    if result.success and args.output:
        from ..core.dataset.export import export_dataset

        written = export_dataset(store, result.run_id, args.output, args.format, force=args.force)
        say(f"wrote {written}")
    if interrupted:
        say(f"interrupted: the rows are kept; `synth-tui resume {result.run_id}` continues")
        return EXIT_INTERRUPTED
    if not result.success:
        say(f"`synth-tui resume {result.run_id}` continues the dataset")
        return EXIT_FAILED
    return EXIT_OK


def check_dataset_output(output: str, fmt: str | None, force: bool) -> None:
    from ..core.dataset.export import check_dataset_output as check

    check(output, fmt, force=force)
