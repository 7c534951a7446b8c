"""``generate`` (a new run from a schema file) and ``resume`` (an interrupted, cancelled or
failed run, to its count).

Records go to stdout as JSON Lines while the run goes on, or to -o (checked before the
first request) once it is over; the history keeps them either way unless --no-save.
"""

from __future__ import annotations

import argparse
from typing import Any

from .args import Subparsers, add_cost_options, add_data_dir, add_output_options, add_run_options, data_dir, whole
from .output import EXIT_OK, print_warnings, say, warning


def add_parser(subparsers: Subparsers) -> None:
    from ..core.backends import BACKENDS
    from .batch_api import add_batch_options

    g = subparsers.add_parser("generate", help="generate records from a schema file")
    add_run_options(g)
    g.add_argument("--backend", choices=list(BACKENDS))
    g.add_argument("--model")
    g.add_argument("--base-url", action="append", help="the server's address; give it again for each server "
                   "of several to spread the run over them")
    add_cost_options(g)
    add_output_options(g)
    g.add_argument("--no-save", action="store_true", help="do not keep this run in the history")
    add_batch_options(g)
    add_data_dir(g)
    g.set_defaults(run=run_generate)

    r = subparsers.add_parser("resume", help="continue an interrupted, cancelled or failed run")
    r.add_argument("id")
    r.add_argument("-n", "--count", type=whole(1), help="raise the run's count to this many records (a finished "
                   "run, such as an estimate's pilot, goes on too)")
    r.add_argument("--concurrency", type=whole(1))
    r.add_argument("--base-url", action="append", help="resume against this base URL, once per server (needed "
                   "when the run's differ from your settings)")
    r.add_argument("--api-key-env", help="take the key from this variable (needed when the run named "
                   "another than your settings)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_cost_options(r)
    add_output_options(r)
    add_data_dir(r)
    r.set_defaults(run=run_resume)
    add_batch_options(r, flag=False)


def run_generate(args: argparse.Namespace) -> int:
    from ..core.backends import BackendSpec
    from ..core.config import load_settings
    from ..core.engine import Run
    from ..core.export import check_output_path
    from ..core.schema import RecordSchema
    from ..core.store import Store
    from .progress import progress_sink
    from .running import (
        JsonlToStdout,
        execute,
        load_schema,
        make_backend,
        priced,
        records_out,
        run_config,
        summarize,
    )

    settings = load_settings()
    schema = load_schema(args.schema)
    if not isinstance(schema, RecordSchema):  # a dataset file: several tables
        refuse_for_dataset(args)
        from .dataset import run_dataset

        return run_dataset(args, schema, settings)
    for message in schema.warnings:
        warning(message)
    spec = BackendSpec(kind=args.backend or settings.backend, model=args.model, base_urls=tuple(args.base_url or ()))
    if args.output:  # before the first request, not after the last
        check_output_path(args.output, force=args.force)
    config = priced(run_config(args, settings), args, settings, spec.kind,
                    spec.model or settings.for_backend(spec.kind).model)
    backend = make_backend(settings, spec, args.api_key_env, args.timeout)
    store = None if args.no_save else Store(data_dir(args, settings))
    progress = progress_sink(args.quiet)
    jsonl: JsonlToStdout | None = None
    try:
        if store:
            print_warnings(store)
        # saved runs keep their records in the journal, not in memory: a long run's memory stays bounded
        from .batch_api import new_run
        run: Run = new_run(args, schema, config, backend, store=store, on_event=progress)
        if not args.output and (args.format or "jsonl") == "jsonl":
            run.on_event = jsonl = JsonlToStdout(run, progress)  # records go out as they are accepted
        result, interrupted = execute(run, backend, progress)
        if jsonl is None:
            from .running import write_output

            failure = write_output(result, args.output, args.format, args.force, schema.schema, store)
        else:
            failure = jsonl.failure
    finally:
        if store:
            store.close()
    code = records_out(result, failure, summarize(result, interrupted), saved=store is not None)
    if not failure and jsonl is not None and jsonl.reader_gone:  # the reader closed the pipe: it had enough
        say(f"output closed after {result.accepted} records; `synth-tui resume {result.run_id}` continues")
        return EXIT_OK
    return code


def run_resume(args: argparse.Namespace) -> int:
    from ..core.backends import resume_spec
    from ..core.config import load_settings
    from ..core.engine import Run
    from ..core.export import check_output_path
    from ..core.store import Store
    from .progress import progress_sink
    from .running import execute, make_backend, records_out, summarize, write_output

    settings = load_settings()
    with Store(data_dir(args, settings)) as store:
        print_warnings(store)
        doc = store.get_run(args.id)
        spec = resume_spec(doc.backend.to_dict(), settings, args.base_url, args.api_key_env, run=f"run {doc.id}")
        if doc.extra.get("kind") == "dataset":  # its output (a folder, a database) is checked as a dataset's
            from .dataset import resume_dataset

            refuse_for_dataset(args)
            return resume_dataset(args, store, doc, make_backend(settings, spec, None))
        if args.output:  # before the first request, not after the last
            check_output_path(args.output, force=args.force)
        overrides = resume_overrides(args, settings, doc, spec)
        backend = make_backend(settings, spec, None)
        progress = progress_sink(args.quiet, "resuming")
        if doc.extra.get("batch"):  # a batch run: polls the batches it recorded before making new ones
            from ..core.engine.batch import BatchRun
            from .batch_api import batch_options

            run: Run = BatchRun.resume_batch(store, doc.id, backend, options=batch_options(args),
                                             on_event=progress, config_overrides=overrides, keep_records=False)
        else:
            run = Run.resume(store, doc.id, backend, on_event=progress, config_overrides=overrides,
                             keep_records=False)
        result, interrupted = execute(run, backend, progress)
        failure = None
        if args.output:  # otherwise the records are in the history, where `export` finds them
            failure = write_output(result, args.output, args.format, args.force, doc.schema, store)
    return records_out(result, failure, summarize(result, interrupted), saved=True)


def resume_overrides(args: argparse.Namespace, settings: Any, doc: Any, spec: Any) -> dict[str, Any]:
    """What a resume changes of the run's config: concurrency, count, price, budget (the
    whole run's: what it spent before counts against it)."""
    from ..core.engine import RunConfig
    from .running import run_price

    config: dict[str, Any] = doc.config
    overrides: dict[str, Any] = {"price": run_price(args, settings, spec.kind, spec.model, config.get("price"))}
    if args.budget is not None:
        overrides["budget"] = args.budget
    if args.concurrency:
        overrides["concurrency"] = args.concurrency
    if args.count:
        overrides["count"] = args.count
    budget = overrides.get("budget", config.get("budget"))
    if budget is not None:  # a budget without a price is bad input: said before a request
        RunConfig(count=1, price=overrides["price"], budget=budget).check()
    return overrides


def refuse_for_dataset(args: argparse.Namespace) -> None:
    """A dataset's tables are runs of their own, each with its count: a price, one budget
    over them all, or one count are not there yet."""
    from ..core.errors import UserInputError
    from .batch_api import refuse_for_dataset as refuse_batch

    refuse_batch(args)
    for flag, name in (("--budget", "budget"), ("--price", "price"), ("-n", "count")):
        if getattr(args, name, None) is not None and (name != "count" or args.command == "resume"):
            raise UserInputError(f"{flag} works on one schema's runs, not on a dataset file's tables yet")
