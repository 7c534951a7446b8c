"""``estimate``: what N records of a schema would take (tokens, cost, time), measured by a
small pilot run that stays in the history as the start of the run:
``synth-tui resume PILOT_ID -n N`` continues it. The projection goes to stdout (text, or
``--json`` for programs); the pilot's progress and summary to stderr."""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Any

from .args import Subparsers, add_cost_options, add_data_dir, add_run_options, data_dir, whole
from .output import EXIT_OK, out, print_warnings, say

if TYPE_CHECKING:
    from ..core.estimate import Projection, Span


def add_parser(subparsers: Subparsers) -> None:
    from ..core.backends import BACKENDS
    from ..core.estimate import PILOT_RECORDS

    e = subparsers.add_parser("estimate", help="run a small pilot and project tokens, cost and time for N records")
    add_run_options(e)
    e.add_argument("--backend", choices=list(BACKENDS))
    e.add_argument("--model")
    e.add_argument("--base-url", action="append", help="the server's address (again for each of several)")
    add_cost_options(e, budget=False)
    e.add_argument("--pilot", type=whole(1), default=PILOT_RECORDS, metavar="N",
                   help=f"records the pilot makes (default {PILOT_RECORDS}); more give a narrower range")
    e.add_argument("--json", action="store_true", help="print the projection as JSON")
    add_data_dir(e)
    e.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.backends import BackendSpec
    from ..core.config import load_settings
    from ..core.engine import Run
    from ..core.errors import UserInputError
    from ..core.estimate import AnswerLog
    from ..core.schema import RecordSchema
    from ..core.store import Store
    from .progress import progress_sink
    from .running import execute, load_schema, make_backend, priced, run_config, summarize

    settings = load_settings()
    schema = load_schema(args.schema)
    if not isinstance(schema, RecordSchema):
        raise UserInputError("estimate takes one record schema, not a dataset file of tables")
    spec = BackendSpec(kind=args.backend or settings.backend, model=args.model, base_urls=tuple(args.base_url or ()))
    config = priced(run_config(args, settings), args, settings, spec.kind,
                    spec.model or settings.for_backend(spec.kind).model)
    pilot_config = config.copy(count=min(args.pilot, config.count))
    backend = make_backend(settings, spec, args.api_key_env, args.timeout)
    progress = progress_sink(args.quiet, "pilot")
    with Store(data_dir(args, settings)) as store:
        print_warnings(store)
        log = AnswerLog(progress)
        pilot = Run(schema, pilot_config, backend, store=store, on_event=log, keep_records=False)
        result, interrupted = execute(pilot, backend, progress)
    code = summarize(result, interrupted)
    if code != EXIT_OK:
        return code
    projection = pilot_projection(pilot, result, log, config)
    if args.json:
        from ..core.export import dumps_json

        out(dumps_json(projection.to_doc(), indent=2))
    else:
        out(projection_text(projection, backend.kind))
    if projection.count > result.accepted:
        url = "".join(f" --base-url {shlex.quote(u)}" for u in args.base_url or ())
        say(f"`synth-tui resume {result.run_id} -n {projection.count}{url}` continues the pilot to "
            f"{projection.count} records: its {result.accepted} are the start")
    return EXIT_OK


def pilot_projection(pilot: Any, result: Any, log: Any, config: Any) -> Projection:
    from ..core.estimate import Pilot, project

    limit = pilot.backend.max_concurrency or config.concurrency
    measured = Pilot(result.run_id, result.accepted, result.prompt_tokens, result.completion_tokens, result.elapsed)
    return project(log.answers, measured, count=config.count, batch_size=pilot.planner.batch_size,
                   concurrency=min(config.concurrency, limit), price=pilot.price)


def projection_text(p: Projection, kind: str) -> str:
    """The projection for people: the pilot's figures, then tokens, cost and time."""
    from ..core.pricing import usd

    requests = round(p.requests.mid)
    lines = [
        f"pilot {p.pilot.run_id}: {p.pilot.accepted} records from {plural(p.answers, 'answer')}, "
        f"{p.tokens_per_record:,.0f} tokens a record, {p.records_per_s:.2f} records/s",
        f"{p.count} records ({requests} more {'request' if requests == 1 else 'requests'} of up to "
        f"{plural(p.batch_size, 'record')}, {p.concurrency} at once):",
        f"  tokens  {span_text(p.tokens, lambda v: f'{v:,.0f}')}",
    ]
    if p.cost is not None and p.price is not None:
        lines.append(f"  cost    {span_text(p.cost, usd)}  at {p.price.text()}")
    elif kind == "local":
        lines.append("  cost    none: the embedded model runs here")
    else:
        lines.append("  cost    unknown: no price (pass --price INPUT,OUTPUT in USD per million tokens, or set "
                     "\"prices\" in the settings file)")
    lines.append(f"  time    {span_text(p.seconds, duration)} to finish")
    if (p.answers < 3 or p.pilot.accepted < 20) and requests:
        lines.append(f"  (a pilot of {plural(p.pilot.accepted, 'record')} from {plural(p.answers, 'answer')} measures "
                     "little, so the range is wide: a larger --pilot narrows it)")
    return "\n".join(lines)


def span_text(span: Span, fmt: Any) -> str:
    if fmt(span.low) == fmt(span.high):
        return fmt(span.mid)
    return f"{fmt(span.mid)}  ({fmt(span.low)} to {fmt(span.high)})"


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min" if m else f"{hours} h"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
