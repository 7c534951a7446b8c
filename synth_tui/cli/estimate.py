"""``estimate``: what N records of a schema would take (tokens, cost, time), measured by a
small pilot run that stays in the history as the start of the run:
``synth-tui resume PILOT_ID -n N`` continues it. The projection goes to stdout (text, or
``--json`` for programs); the pilot's progress and summary to stderr."""

from __future__ import annotations

import argparse
import shlex

from .args import Subparsers, add_cost_options, add_data_dir, add_run_options, data_dir, whole
from .output import EXIT_OK, out, print_warnings, say


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
    from ..core.estimate_text import pilot_projection, projection_text
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
    projection = pilot_projection(pilot, result, log.answers, config)
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
