"""Headless commands. ``synth-tui`` alone starts the TUI.

Exit codes: 0 success, 1 the run failed, 2 bad input (schema, arguments, settings),
130 interrupted (Ctrl-C), with the accepted records kept and resumable.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sys
import time
from typing import Any, Sequence

from .core.backends import BackendSpec, GenerationParams, backend_from_settings, resume_spec
from .core.config import load_settings
from .core.engine import Run, RunConfig, RunResult
from .core.errors import BackendError, DataDirLocked, SynthError, UserInputError
from .core.events import (
    Event, Notice, RateLimited, RecordRejected, RecordsAccepted, RetryScheduled, RunFailed, RunFinished,
)
from .core.export import (
    FORMATS, OutputWriteError, check_output_path, dumps_json, export_to_path, export_to_stdout, guess_format,
    safe_json_text,
)
from .core.fileio import TooLarge, read_capped
from .core.schema import RecordSchema, parse_schema
from .core.store import STATUSES, Store
from .textsafe import clean_line, clean_text

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class ProgressPrinter:
    """A progress line on stderr: records, rate, ETA, rejections. Plain lines when
    stderr is not a terminal, so logs stay readable."""

    def __init__(self, stream: Any = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.quiet = quiet
        self._last = 0.0
        self._notices: set[str] = set()

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, Notice):
            self._line(f"note: {clean_line(event.message)}")
        elif isinstance(event, RateLimited):
            self._line(f"rate limited: waiting {event.delay:.1f} s, concurrency now {event.concurrency}")
        elif isinstance(event, RetryScheduled):
            self._line(f"retry {event.attempt} in {event.delay:.1f} s: {clean_line(event.reason)[:160]}")
        elif isinstance(event, RecordRejected) and not event.duplicate:
            key = event.reason[:60]
            if key not in self._notices and len(self._notices) < 5:
                self._notices.add(key)
                self._line(f"rejected a record: {clean_line(event.reason)[:160]}")
        final = isinstance(event, (RunFinished, RunFailed))
        now = time.monotonic()
        if final or now - self._last >= (0.1 if self.tty else 2.0):
            self._last = now
            self._bar(event, final)

    def _bar(self, event: Event, final: bool) -> None:
        p = event.progress
        width = 24
        filled = int(width * p.fraction)
        eta = f"ETA {p.eta:.0f}s" if p.eta is not None and not final else f"{p.elapsed:.1f}s"
        text = (
            f"[{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total}  {p.rate:.1f} rec/s  {eta}  "
            f"rejected {p.rejected}  dup {p.duplicates}  retries {p.retries}"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _line(self, text: str) -> None:
        self.stream.write(("\r\x1b[2K" if self.tty else "") + text + "\n")
        self.stream.flush()


def _whole(least: int) -> Any:
    """An argparse type: a whole number of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
        return value

    return parse


def _number(least: float, most: float | None = None, *, above: bool = False) -> Any:
    """An argparse type: a finite number >= ``least`` (> with ``above``), <= ``most``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, not {text!r}")
        if value < least or (above and value == least):
            raise argparse.ArgumentTypeError(f"must be {'more than' if above else 'at least'} {least:g}, not {text}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most:g}, not {text}")
        return value

    return parse


def _add_run_options(g: argparse.ArgumentParser) -> None:
    g.add_argument("schema", help="JSON Schema or short-form schema file ('-' reads stdin)")
    g.add_argument("-n", "--count", type=_whole(1), required=True, help="number of records")
    g.add_argument("--api-key-env", help="environment variable that holds the API key")
    g.add_argument("--batch-size", type=_whole(1), help="records per request")
    g.add_argument("--concurrency", type=_whole(1), help="requests at once (default 4)")
    g.add_argument("--temperature", type=_number(0))
    g.add_argument("--top-p", type=_number(0, 1))
    g.add_argument("--max-tokens", type=_whole(1))
    g.add_argument("--seed", type=int)
    g.add_argument("--max-attempts", type=_whole(1), default=4,
                   help="requests per record, on average, before giving up")
    g.add_argument("--max-retries", type=_whole(0), default=5, help="retries of one request on transient errors")
    g.add_argument("--timeout", type=_number(0, above=True), default=300.0, help="seconds to wait for one answer")
    g.add_argument("--no-hints", action="store_true", help="do not add variation hints to prompts")
    g.add_argument("--no-balance", action="store_true", help="do not spread enum values evenly over the run")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="where history and records live (default: the user data dir, "
                   "or $SYNTH_TUI_DATA_DIR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synth-tui", description="Generate synthetic datasets with LLMs.")
    parser.add_argument("--version", action="version", version="synth-tui 0.1.0")
    parser.add_argument("--data-dir", dest="tui_data_dir", metavar="DIR",
                        help="the TUI's data directory (default: the user data dir, or $SYNTH_TUI_DATA_DIR)")
    sub = parser.add_subparsers(dest="command")

    g = sub.add_parser("generate", help="generate records from a schema file")
    _add_run_options(g)
    g.add_argument("--backend", choices=["local", "openai", "hf", "ollama"])
    g.add_argument("--model")
    g.add_argument("--base-url")
    g.add_argument("-o", "--output", help="write records to this file (default: stdout)")
    g.add_argument("--format", choices=FORMATS, help="output format (default: from -o's suffix, else jsonl)")
    g.add_argument("--force", action="store_true", help="overwrite the output file")
    g.add_argument("--no-save", action="store_true", help="do not keep this run in the history")
    _add_data_dir(g)

    c = sub.add_parser("compare", help="run one schema against several models with the same count and seed")
    _add_run_options(c)
    c.add_argument("-m", "--model", action="append", required=True, dest="models", metavar="BACKEND:MODEL[@URL]",
                   help="a model to compare, e.g. openai:gpt-4o-mini or ollama:llama3.2@http://host:11434 (repeat)")
    c.add_argument("--price", action="append", default=[], metavar="MODEL=IN,OUT",
                   help="price per million prompt and completion tokens, for the cost estimate (repeat)")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")
    _add_data_dir(c)

    h = sub.add_parser("history", help="list runs, newest first")
    h.add_argument("--status", choices=STATUSES)
    h.add_argument("--limit", type=_whole(0), default=20, help="runs to list (0: all)")
    h.add_argument("--json", action="store_true")
    _add_data_dir(h)

    s = sub.add_parser("show", help="one run's details and a sample of its records")
    s.add_argument("id")
    s.add_argument("--sample", type=_whole(0), default=5)
    s.add_argument("--json", action="store_true")
    _add_data_dir(s)

    e = sub.add_parser("export", help="export a run's records")
    e.add_argument("id")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--format", choices=FORMATS)
    e.add_argument("--force", action="store_true", help="overwrite the output file")
    _add_data_dir(e)
    e.epilog = "A FIFO, a device or /dev/stdout is written as it is; a file is replaced only when complete."

    r = sub.add_parser("resume", help="continue an interrupted, cancelled or failed run")
    r.add_argument("id")
    r.add_argument("--concurrency", type=_whole(1))
    r.add_argument("--base-url", help="resume against this base URL (needed when the run's differs from "
                   "your settings)")
    r.add_argument("--api-key-env", help="take the key from this variable (needed when the run named "
                   "another than your settings)")
    r.add_argument("-q", "--quiet", action="store_true")
    r.add_argument("-o", "--output")
    r.add_argument("--format", choices=FORMATS)
    r.add_argument("--force", action="store_true")
    _add_data_dir(r)

    q = sub.add_parser("report", help="quality report of a run: validity, duplicates, per-field figures")
    q.add_argument("id")
    q.add_argument("--json", action="store_true")
    _add_data_dir(q)

    t = sub.add_parser("templates", help="list, show, save and delete schema templates")
    tsub = t.add_subparsers(dest="action")
    tsub.add_parser("list", help="built-in and your templates (the default)")
    ts = tsub.add_parser("show", help="print a template")
    ts.add_argument("name")
    tv = tsub.add_parser("save", help="save a schema file as your template")
    tv.add_argument("name")
    tv.add_argument("file")
    tv.add_argument("--force", action="store_true", help="replace a template of yours with that name")
    td = tsub.add_parser("delete", help="delete one of your templates")
    td.add_argument("name")

    d = sub.add_parser("delete", help="delete a run and its records")
    d.add_argument("id")
    _add_data_dir(d)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from .app import run_app

        return run_app(args.tui_data_dir)
    try:
        code = COMMANDS[args.command](args)
        _flush_stdout()
        return code
    except (UserInputError, DataDirLocked) as exc:
        _error(exc)
        return EXIT_BAD_INPUT
    except SynthError as exc:
        _error(exc)
        return EXIT_FAILED


def _error(message: object) -> None:
    """An error for a person: text from outside (a server, a file) made harmless first."""
    print(f"synth-tui: error: {clean_text(message)}", file=sys.stderr)


def _stdout_gone() -> None:
    """Standard output failed or its reader left: send whatever is still buffered, and
    anything printed later, to /dev/null, so the interpreter's last flush succeeds."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        sys.stdout = open(os.devnull, "w")


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_gone()  # the reader had enough (`| head`): not an error
    except OSError as exc:
        _stdout_gone()
        raise OutputWriteError(f"cannot write to standard output: {exc.strerror or exc}") from None


def _out(text: str) -> None:
    """Print to stdout; a write that fails (`> /dev/full`) is an error, not a traceback."""
    try:
        print(text)
    except BrokenPipeError:
        _stdout_gone()
    except OSError as exc:
        _stdout_gone()
        raise OutputWriteError(f"cannot write to standard output: {exc.strerror or exc}") from None


def _data_dir(args: argparse.Namespace) -> str | None:
    return args.data_dir or load_settings().data_dir


def _print_warnings(store: Store) -> None:
    for warning in store.warnings:
        print(f"synth-tui: warning: {clean_text(warning)}", file=sys.stderr)


def _load_schema(path: str) -> RecordSchema:
    """A schema file ('-': stdin), read up to MAX_INPUT_BYTES: an endless or huge file
    (`/dev/zero`) is refused, not read until memory runs out."""
    source = "<stdin>" if path == "-" else path
    try:
        data = read_capped(path)
    except FileNotFoundError:
        raise UserInputError(f"{source}: schema file not found") from None
    except IsADirectoryError:
        raise UserInputError(f"{source}: is a directory, not a schema file") from None
    except OSError as exc:
        raise UserInputError(f"{source}: cannot read schema file: {exc.strerror or exc}") from None
    except TooLarge as exc:
        raise UserInputError(f"{source}: the schema file is too large: more than "
                             f"{exc.limit // (1024 * 1024)} MB, the most a schema may hold") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{source}: not UTF-8 text (byte {exc.start}): save the schema as UTF-8") from None
    return parse_schema(text, source)


def cmd_generate(args: argparse.Namespace) -> int:
    schema = _load_schema(args.schema)
    for warning in schema.warnings:
        print(f"synth-tui: warning: {clean_text(warning)}", file=sys.stderr)
    settings = load_settings()
    spec = BackendSpec(kind=args.backend or settings.backend, model=args.model, base_url=args.base_url)
    if args.output:  # before the first request, not after the last
        check_output_path(args.output, force=args.force)
    config = _run_config(args, settings)
    backend = _make_backend(settings, spec, args.api_key_env, args.timeout)
    store = None if args.no_save else Store(args.data_dir or settings.data_dir)
    printer = ProgressPrinter(quiet=args.quiet)
    jsonl: JsonlToStdout | None = None
    try:
        if store:
            _print_warnings(store)
        run = Run(schema, config, backend, store=store, on_event=printer)
        if not args.output and (args.format or "jsonl") == "jsonl":
            run.on_event = jsonl = JsonlToStdout(run, printer)  # records go out as they are accepted
        result, interrupted = _execute(run, backend)
    finally:
        if store:
            store.close()
    failure = jsonl.failure if jsonl is not None else None
    if jsonl is None:
        failure = _write_output(result, args.output, args.format, args.force, schema.schema)
    code = _summarize(result, interrupted)
    if failure:
        _lost_output(result, failure, saved=store is not None)
        return EXIT_FAILED
    if jsonl is not None and jsonl.reader_gone:  # the reader closed the pipe: it had enough
        print(f"output closed after {result.accepted} records; `synth-tui resume {result.run_id}` continues",
              file=sys.stderr)
        return EXIT_OK
    return code


def _lost_output(result: RunResult, failure: str, saved: bool) -> None:
    """The records could not be written where asked: say so, and where they still are."""
    _error(failure)
    if not saved:
        print(f"the run's {result.accepted} records were not kept (--no-save)", file=sys.stderr)
        return
    more = f" and `synth-tui resume {result.run_id}` finishes the run" if result.accepted < result.requested else ""
    print(f"run {result.run_id} keeps its {result.accepted} records in the history: "
          f"`synth-tui export {result.run_id} -o FILE` writes them{more}", file=sys.stderr)


class JsonlToStdout:
    """An event sink that also writes accepted records to stdout as JSON Lines. A closed
    pipe (`| head`) stops the run, keeping what was accepted; a failed write (a full disk)
    stops it too and is an error (``failure``)."""

    def __init__(self, run: Run, printer: ProgressPrinter) -> None:
        self.run = run
        self.printer = printer
        self.reader_gone = False
        self.failure: str | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RecordsAccepted) and not self.reader_gone and self.failure is None:
            try:
                sys.stdout.write("".join(dumps_json(r) + "\n" for r in event.records))
                sys.stdout.flush()
            except BrokenPipeError:
                self.reader_gone = True
                _stdout_gone()
                self.run.cancel()
            except OSError as exc:
                self.failure = f"cannot write to standard output: {exc.strerror or exc}"
                _stdout_gone()
                self.run.cancel()
        self.printer(event)


def _run_config(args: argparse.Namespace, settings: Any) -> RunConfig:
    concurrency = args.concurrency if args.concurrency is not None else settings.concurrency
    config = RunConfig(
        count=args.count, batch_size=args.batch_size, concurrency=concurrency,
        params=GenerationParams(args.temperature, args.top_p, args.max_tokens, args.seed),
        max_attempts=args.max_attempts, max_retries=args.max_retries, variation_hints=not args.no_hints,
        balance_enums=not args.no_balance,
    )
    config.check()
    return config


def _make_backend(settings: Any, spec: BackendSpec, api_key_env: str | None, timeout: float | None = None) -> Any:
    """The backend a spec names, filled in from the settings; a missing key is bad input."""
    if api_key_env:
        spec = BackendSpec(kind=spec.kind, model=spec.model, base_url=spec.base_url, api_key_env=api_key_env)
    options = {"read_timeout": timeout} if timeout else {}
    try:
        return backend_from_settings(spec, settings, **options)
    except BackendError as exc:
        raise UserInputError(str(exc)) from None


def _execute(run: Run, backend: Any) -> tuple[RunResult, bool]:
    interrupted = False

    async def main() -> RunResult:
        nonlocal interrupted
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            nonlocal interrupted
            interrupted = True
            run.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            return await run.execute()
        finally:
            await backend.aclose()

    return asyncio.run(main()), interrupted


def _write_output(result: RunResult, output: str | None, fmt: str | None, force: bool,
                  schema: dict[str, Any]) -> str | None:
    """Write the run's records to ``output`` (or stdout); what went wrong, or None."""
    fmt = fmt or guess_format(output)
    if not result.records:
        return None  # no empty file for a run that accepted nothing
    try:
        if output:
            export_to_path(lambda: result.records, output, fmt, schema=schema, force=force)
        else:
            export_to_stdout(lambda: result.records, fmt, schema)
    except BrokenPipeError:
        _stdout_gone()
    except (OutputWriteError, UserInputError) as exc:  # UserInputError: the path changed during the run
        if not output:
            _stdout_gone()
        return str(exc)
    return None


def _summarize(result: RunResult, interrupted: bool) -> int:
    print(
        f"run {result.run_id}: {result.status}, {result.accepted}/{result.requested} records, "
        f"{result.rejected} rejected, {result.duplicates} duplicates, {result.retries} retries, "
        f"{result.requests} requests, {result.prompt_tokens + result.completion_tokens} tokens, "
        f"{result.elapsed:.1f} s",
        file=sys.stderr,
    )
    if result.error:
        _error(result.error)
    if interrupted:
        print(f"interrupted: {result.accepted} records kept; `synth-tui resume {result.run_id}` continues",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if result.success else EXIT_FAILED


def _format_row(doc: dict[str, Any]) -> list[str]:
    """One history row; every cell is outside text (an edited history, a server's model
    name), so each is made one harmless line."""
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


def cmd_history(args: argparse.Namespace) -> int:
    with Store(_data_dir(args), writable=False) as store:
        _print_warnings(store)
        runs = store.list_runs(args.status, args.limit)
    if args.json:
        _out(dumps_json(runs, indent=2))
        return EXIT_OK
    if not runs:
        _out("no runs yet" + (f" with status {args.status}" if args.status else ""))
        return EXIT_OK
    rows = [["ID", "CREATED (UTC)", "STATUS", "MODEL", "RECORDS", "TIME"]] + [_format_row(d) for d in runs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    _out("\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    with Store(_data_dir(args), writable=False) as store:
        _print_warnings(store)
        doc = store.get_run(args.id)
        sample = store.read_page(doc["id"], 0, args.sample)
    if args.json:
        _out(dumps_json({"run": doc, "sample": sample}, indent=2))
        return EXIT_OK
    counts = doc.get("counts") or {}
    backend = doc.get("backend") or {}
    lines = [
        f"run       {doc['id']}",
        f"status    {doc.get('status')}",
        f"created   {doc.get('created')}   finished {doc.get('finished', '-')}",
        f"backend   {backend.get('backend')}  model {backend.get('model')}  {backend.get('base_url') or ''}".rstrip(),
        f"records   {counts.get('accepted', 0)}/{counts.get('requested', 0)} accepted, "
        f"{counts.get('rejected', 0)} rejected, {counts.get('duplicates', 0)} duplicates",
        f"requests  {counts.get('requests', 0)} ({counts.get('retries', 0)} retries), tokens "
        f"{counts.get('prompt_tokens', 0)} prompt + {counts.get('completion_tokens', 0)} completion",
        f"config    {dumps_json(doc.get('config', {}))}",
    ]
    if doc.get("error"):
        lines.append(f"error     {doc['error']}")
    lines.append("schema    " + dumps_json(doc.get("schema")))
    lines.append(f"sample ({len(sample)}):")
    lines += ["  " + dumps_json(r) for r in sample]
    _out("\n".join(clean_line(line) for line in lines))  # each from the history or a model: one harmless line
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    with Store(_data_dir(args), writable=False) as store:
        _print_warnings(store)
        doc = store.get_run(args.id)
        try:
            n = export_to_path(lambda: store.iter_records(doc["id"]), args.output, args.format,
                               schema=doc.get("schema"), force=args.force)
        except OutputWriteError as exc:
            _error(exc)
            print(f"run {doc['id']} keeps its records in the history: `synth-tui export {doc['id']} -o FILE` "
                  "writes them elsewhere", file=sys.stderr)
            return EXIT_FAILED
    print(f"wrote {n} records to {clean_line(args.output)}", file=sys.stderr)
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.output:  # before the first request, not after the last
        check_output_path(args.output, force=args.force)
    with Store(_data_dir(args)) as store:
        _print_warnings(store)
        doc = store.get_run(args.id)
        spec = resume_spec(doc.get("backend") or {}, settings, args.base_url, args.api_key_env,
                           run=f"run {doc['id']}")
        backend = _make_backend(settings, spec, None)
        overrides = {"concurrency": args.concurrency} if args.concurrency else None
        run = Run.resume(store, doc["id"], backend, on_event=ProgressPrinter(quiet=args.quiet),
                         config_overrides=overrides)
        result, interrupted = _execute(run, backend)
    failure = None
    if args.output:  # otherwise the records are in the history, where `export` finds them
        failure = _write_output(result, args.output, args.format, args.force, doc["schema"])
    code = _summarize(result, interrupted)
    if failure:
        _lost_output(result, failure, saved=True)
        return EXIT_FAILED
    return code


def cmd_compare(args: argparse.Namespace) -> int:
    import random
    from dataclasses import asdict

    from .core.compare import comparison_row, format_comparison, parse_model_spec, parse_price

    schema = _load_schema(args.schema)
    settings = load_settings()
    specs = [parse_model_spec(m) for m in args.models]
    if len(specs) < 2:
        raise UserInputError("compare needs at least two --model options")
    prices = {**settings.prices, **dict(parse_price(p) for p in args.price)}
    if args.seed is None:  # the same seed for every model, so they get the same requests
        args.seed = random.randrange(1, 2**31)
    config = _run_config(args, settings)
    backends = [_make_backend(settings, spec, args.api_key_env, args.timeout) for spec in specs]
    run_ids = []
    interrupted = False
    with Store(args.data_dir or settings.data_dir) as store:
        _print_warnings(store)
        for spec, backend in zip(specs, backends):
            print(f"-- {clean_line(spec.kind)}:{clean_line(spec.model)} (seed {args.seed})", file=sys.stderr)
            run = Run(schema, RunConfig.from_doc(config.to_doc()), backend, store=store,
                      on_event=ProgressPrinter(quiet=args.quiet))
            result, interrupted = _execute(run, backend)
            _summarize(result, interrupted)
            run_ids.append(result.run_id)
            if interrupted:
                break
        rows = [comparison_row(store, run_id, prices) for run_id in run_ids]
    if args.json:
        _out(dumps_json([asdict(r) for r in rows], indent=2))
    else:
        _out(clean_text(format_comparison(rows)))
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r.status == "done" for r in rows) else EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    from .core.report import format_report, run_report

    with Store(_data_dir(args), writable=False) as store:
        _print_warnings(store)
        doc = store.get_run(args.id)
        report = run_report(store, doc["id"])
    if args.json:
        _out(dumps_json(report.to_json(), indent=2, default=str))
    else:
        _out(clean_text(format_report(report, f"run {doc['id']} ({doc.get('status')})")))
    return EXIT_OK


def cmd_templates(args: argparse.Namespace) -> int:
    from .core import templates

    action = args.action or "list"
    if action == "list":
        _out("\n".join(f"{clean_line(name):<20} {'built-in' if templates.is_builtin(name) else 'yours'}"
                        for name in templates.template_names()))
    elif action == "show":
        _out(safe_json_text(templates.template_text(args.name)))
    elif action == "save":
        try:
            data = read_capped(args.file)
            text = data.decode("utf-8")
        except FileNotFoundError:
            raise UserInputError(f"{args.file}: schema file not found") from None
        except OSError as exc:
            raise UserInputError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise UserInputError(f"{args.file}: not UTF-8 text (byte {exc.start})") from None
        except TooLarge as exc:
            raise UserInputError(f"{args.file}: the schema file is too large: more than "
                                 f"{exc.limit // (1024 * 1024)} MB, the most a schema may hold") from None
        path = templates.save_template(args.name, text, force=args.force)
        print(f"saved template {args.name} to {path}", file=sys.stderr)
    elif action == "delete":
        templates.delete_template(args.name)
        print(f"deleted template {args.name}", file=sys.stderr)
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    with Store(_data_dir(args)) as store:
        _print_warnings(store)
        doc = store.delete_run(args.id)
    print(f"deleted run {doc['id']}", file=sys.stderr)
    return EXIT_OK


COMMANDS = {
    "generate": cmd_generate,
    "history": cmd_history,
    "show": cmd_show,
    "export": cmd_export,
    "resume": cmd_resume,
    "report": cmd_report,
    "compare": cmd_compare,
    "templates": cmd_templates,
    "delete": cmd_delete,
}
