"""``compare``: one schema against several models, with the same count and seed; each
model's run is a normal run in the history. Models side by side: a table on a terminal,
stable text elsewhere, ``--json`` for programs."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from .args import Subparsers, add_data_dir, add_run_options, data_dir
from .output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, is_terminal, out, out_rich, print_warnings, say, table

if TYPE_CHECKING:
    from ..core.compare import ComparisonRow


def add_parser(subparsers: Subparsers) -> None:
    c = subparsers.add_parser("compare", help="run one schema against several models with the same count and seed")
    add_run_options(c)
    c.add_argument("-m", "--model", action="append", required=True, dest="models", metavar="BACKEND:MODEL[@URL]",
                   help="a model to compare, e.g. openai:gpt-4o-mini or ollama:llama3.2@http://host:11434 (repeat)")
    c.add_argument("--price", action="append", default=[], metavar="MODEL=IN,OUT",
                   help="price per million prompt and completion tokens, for the cost estimate (repeat)")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")
    add_data_dir(c)
    c.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.compare import parse_model_spec
    from ..core.config import load_settings
    from ..core.errors import UserInputError
    from .running import load_schema, run_config

    schema = load_schema(args.schema)
    settings = load_settings()
    specs = [parse_model_spec(m) for m in args.models]
    if len(specs) < 2:
        raise UserInputError("compare needs at least two --model options")
    prices = {**settings.prices, **dict(model_price(p) for p in args.price)}
    config = run_config(args, settings)
    rows, interrupted = run_models(args, schema, config, specs, settings, data_dir(args, settings), prices)
    print_comparison(rows, args.json)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r.status == "done" for r in rows) else EXIT_FAILED


def run_models(args: argparse.Namespace, schema: Any, config: Any, specs: list[Any], settings: Any,
               directory: str | None, prices: dict[str, tuple[float, float]]) -> tuple[list[ComparisonRow], bool]:
    """One run per model through core.compare.Comparison (one seed for all, each run its
    own copy of the config); Ctrl-C stops the current run and starts no other. The rows
    of the runs that ran, and whether a signal stopped it."""
    import asyncio
    import signal

    from ..core.compare import Comparison, comparison_row
    from ..core.store import Store
    from ..core.textsafe import clean_line
    from .progress import progress_sink
    from .running import make_backend, summarize

    interrupted = False
    with Store(directory) as store:
        print_warnings(store)
        sinks: list[Any] = []

        def begin(spec: Any, run: Any) -> Any:
            label = f"{clean_line(spec.kind)}:{clean_line(spec.model)}"
            say(f"-- {label} (seed {comparison.seed})")
            sinks.append(progress_sink(args.quiet, label).__enter__())
            return sinks[-1]  # this run's event sink

        def end(result: Any) -> None:
            sinks.pop().__exit__(None, None, None)
            summarize(result, interrupted)

        comparison = Comparison(schema, config, specs,
                                lambda spec: make_backend(settings, spec, args.api_key_env, args.timeout), store,
                                on_begin=begin, on_end=end)

        async def main() -> list[Any]:
            def on_signal() -> None:
                nonlocal interrupted
                interrupted = True
                comparison.cancel()

            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
            return await comparison.execute()

        results = asyncio.run(main())
        return [comparison_row(store, r.run_id, prices) for r in results], interrupted


def print_comparison(rows: list[ComparisonRow], as_json: bool) -> None:
    from dataclasses import asdict

    from ..core.compare import format_comparison
    from ..core.export import dumps_json
    from ..core.textsafe import clean_text

    if as_json:
        out(dumps_json([asdict(r) for r in rows], indent=2))
    elif is_terminal(sys.stdout):
        out_rich(comparison_table(rows))
    else:
        out(clean_text(format_comparison(rows)))


def comparison_table(rows: list[ComparisonRow]) -> Any:
    """Models side by side: one column per model, one line per figure."""
    from ..core.compare import METRICS, metric_text

    lines = [["run", *[r.run_id for r in rows]]]
    lines += [[title, *[metric_text(r, key) for r in rows]] for key, title in METRICS]
    return table(["", *[r.label for r in rows]], lines, right=tuple(range(1, len(rows) + 1)), styles={0: "bold"})


def model_price(text: str) -> tuple[str, tuple[float, float]]:
    """``--price MODEL=INPUT,OUTPUT`` (core.pricing's syntax, the model named): compare
    runs several models, so a price says whose it is."""
    from ..core.errors import UserInputError
    from ..core.pricing import parse_price

    model, price = parse_price(text)
    if model is None:
        raise UserInputError(f"price {text!r}: write MODEL=INPUT,OUTPUT per million tokens, e.g. gpt-4o-mini=0.15,0.6")
    return model, (price.input, price.output)
