"""Running a generation from the command line, for generate, resume and compare: the
schema file, the run's config and backend, the event loop with Ctrl-C, where the records
go, and the summary.

Imported only by the commands that run something, when they run: it brings the engine in.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
from typing import Any, Protocol, TypeVar

from ..core.backends import BackendSpec, GenerationParams, backend_from_settings
from ..core.engine import Run, RunConfig, RunResult
from ..core.errors import BackendError, UserInputError
from ..core.events import Event, RecordsAccepted
from ..core.export import OutputWriteError, dumps_json, export_to_path, export_to_stdout, guess_format
from ..core.schema import parse_schema
from .args import read_schema_text
from .output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, error, say, stdout_gone
from .progress import ProgressSink

Result = TypeVar("Result", covariant=True)


def load_schema(path: str) -> Any:
    """A schema file ('-': stdin), or a template named so (`generate products`) when no
    file of that name exists: a RecordSchema, or a Dataset for a file of tables."""
    from ..core.dataset.templates import dataset_names, dataset_text
    from ..core.templates import template_names, template_text

    source = "<stdin>" if path == "-" else path
    if path != "-" and not os.path.exists(path) and path in template_names():
        text, source = template_text(path), f"template {path}"
    elif path != "-" and not os.path.exists(path) and path in dataset_names():
        text, source = dataset_text(path), f"dataset template {path}"
    else:
        text = read_schema_text(path, source)
    if text.lstrip().startswith("{") and '"tables"' in text:
        from ..core.dataset import check_dataset, is_dataset

        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # parse_schema says what is wrong with it, and where
            data = None
        if is_dataset(data):
            return check_dataset(data, source)
    return parse_schema(text, source)


def run_config(args: argparse.Namespace, settings: Any) -> RunConfig:
    concurrency = args.concurrency if args.concurrency is not None else settings.concurrency
    examples = seed_path(args.examples, "--examples")
    enrich = seed_path(args.enrich, "--enrich")
    count = args.count
    if enrich:
        from ..core.seeds import SeedFile

        rows = SeedFile(enrich).count()
        count = min(count, rows) if count else rows
    elif count is None:
        raise UserInputError("the number of records is missing: pass -n N (or --enrich FILE: one record per row)")
    config = RunConfig(
        count=count, batch_size=args.batch_size, concurrency=concurrency,
        params=GenerationParams(args.temperature, args.top_p, args.max_tokens, args.seed),
        max_attempts=args.max_attempts, max_retries=args.max_retries, variation_hints=not args.no_hints,
        balance_enums=not args.no_balance, examples=examples, examples_per_request=args.examples_per_request,
        enrich=enrich,
    )
    config.check()
    return config


def priced(config: RunConfig, args: argparse.Namespace, settings: Any, kind: str, model: str | None) -> RunConfig:
    """``config`` with the run's price (--price, else the settings' for its model) and
    --budget, checked: a budget without a price is bad input."""
    price = run_price(args, settings, kind, model)
    config = config.copy(price=price, budget=getattr(args, "budget", None))
    config.check()
    return config


def run_price(args: argparse.Namespace, settings: Any, kind: str, model: str | None,
              recorded: Any = None) -> tuple[float, float] | None:
    """The price a run is costed at: --price, else the price the run already has
    (``recorded``, on a resume), else the settings' for its model, else None."""
    from ..core.pricing import checked_price, parse_price, price_for

    if getattr(args, "price", None):
        named, price = parse_price(args.price)
        if named is not None and named not in (model, f"{kind}:{model}"):
            raise UserInputError(f"--price {args.price!r} is for the model {named!r}, but the run's is {model!r}",
                                 cli="write --price INPUT,OUTPUT for the run's model")
    elif recorded is not None:
        price = checked_price(recorded, "the run's price in its history")
    else:
        found = price_for(settings.prices, kind, model)
        if found is None:
            return None
        price = found
    return (price.input, price.output)


def seed_path(path: str | None, flag: str) -> str | None:
    """A seed file's absolute path (a resume finds it from anywhere), checked readable now."""
    if not path:
        return None
    from ..core.seeds import SeedFile

    return str(SeedFile(os.path.abspath(path)).path)


def make_backend(settings: Any, spec: BackendSpec, api_key_env: str | None, timeout: float | None = None) -> Any:
    """The backend a spec names, filled in from the settings; a missing key is bad input."""
    if api_key_env:
        spec = dataclasses.replace(spec, api_key_env=api_key_env)
    options = {"read_timeout": timeout} if timeout else {}
    try:
        return backend_from_settings(spec, settings, **options)
    except BackendError as exc:
        raise UserInputError(str(exc)) from None


class Runnable(Protocol[Result]):
    """A run, or a dataset run: cancel() keeps what was accepted."""

    def cancel(self) -> None: ...

    async def execute(self) -> Result: ...


def execute(run: Runnable[Result], backend: Any, progress: ProgressSink) -> tuple[Result, bool]:
    """Run to the end on a fresh event loop; Ctrl-C or SIGTERM cancels the run, which keeps
    what it accepted. The backend is closed and the progress display put away, whatever
    happens. Returns the result and whether a signal ended it."""
    interrupted = False

    async def main() -> Result:
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            nonlocal interrupted
            interrupted = True
            run.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        async with backend:
            return await run.execute()

    with progress:
        result = asyncio.run(main())
    return result, interrupted


class JsonlToStdout:
    """An event sink that also writes accepted records to stdout as JSON Lines. A closed
    pipe (`| head`) stops the run, keeping what was accepted; a failed write (a full disk)
    stops it too and is an error (``failure``)."""

    def __init__(self, run: Run, progress: ProgressSink) -> None:
        self.run = run
        self.progress = progress
        self.reader_gone = False
        self.failure: str | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RecordsAccepted) and not self.reader_gone and self.failure is None:
            try:
                self.progress.write_records("".join(dumps_json(r) + "\n" for r in event.records))
            except BrokenPipeError:
                self.reader_gone = True
                stdout_gone()
                self.run.cancel()
            except OSError as exc:
                self.failure = f"cannot write to standard output: {exc.strerror or exc}"
                stdout_gone()
                self.run.cancel()
        self.progress(event)


def write_output(result: RunResult, output: str | None, fmt: str | None, force: bool,
                 schema: dict[str, Any], store: Any = None) -> str | None:
    """Write the run's records to ``output`` (or stdout); what went wrong, or None. The
    records come from the store's journal when it has them, else from memory."""
    fmt = fmt or guess_format(output)
    if not result.accepted:
        return None  # no empty file for a run that accepted nothing

    def records() -> Any:
        return store.iter_records(result.run_id) if store is not None else result.records

    try:
        if output:
            export_to_path(records, output, fmt, schema=schema, force=force)
        else:
            export_to_stdout(records, fmt, schema)
    except BrokenPipeError:
        stdout_gone()
    except (OutputWriteError, UserInputError) as exc:  # UserInputError: the path changed during the run
        if not output:
            stdout_gone()
        return str(exc)
    return None


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summarize(result: RunResult, interrupted: bool) -> int:
    """The run's last line on stderr, its error if any; the exit code it deserves."""
    say(f"run {result.run_id}: {result.status}, {result.accepted}/{result.requested} records, "
        f"{result.rejected} rejected, {result.duplicates} duplicates, {result.retries} retries, "
        f"{plural(result.requests, 'request')}, {result.prompt_tokens + result.completion_tokens} tokens"
        f"{cost_part(result)}, {result.elapsed:.1f} s")
    if result.error:
        error(result.error)
    if result.status == "budget":
        say(f"`synth-tui resume {result.run_id} --budget USD` goes on with a larger budget: the whole run's "
            "spending counts against it")
    if interrupted:
        say(f"interrupted: {result.accepted} records kept; `synth-tui resume {result.run_id}` continues")
        return EXIT_INTERRUPTED
    return EXIT_OK if result.success else EXIT_FAILED


def cost_part(result: RunResult) -> str:
    """The summary's cost: ", $0.0123" (", ... of $1.00 budget"), ", cost unknown" without a
    price, nothing for the embedded model given none."""
    from ..core.pricing import usd

    if result.cost_usd is None:
        return "" if result.backend == "local" else ", cost unknown (no price)"
    budget = f" of {usd(result.budget_usd)} budget" if result.budget_usd is not None else ""
    return f", {usd(result.cost_usd)}{budget}"


def lost_output(result: RunResult, failure: str, saved: bool) -> None:
    """The records could not be written where asked: say so, and where they still are."""
    error(failure)
    if not saved:
        say(f"the run's {result.accepted} records were not kept (--no-save)")
        return
    more = f" and `synth-tui resume {result.run_id}` finishes the run" if result.accepted < result.requested else ""
    say(f"run {result.run_id} keeps its {result.accepted} records in the history: "
        f"`synth-tui export {result.run_id} -o FILE` writes them{more}")


def records_out(result: RunResult, failure: str | None, code: int, saved: bool) -> int:
    """The exit code once the records had somewhere to go: a failed write is exit 1."""
    if failure:
        lost_output(result, failure, saved)
        return EXIT_FAILED
    return code
