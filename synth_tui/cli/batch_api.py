"""--batch-api and --poll-interval: a run through the OpenAI Batch API (generate, resume)."""

from __future__ import annotations

import argparse
from typing import Any

from .args import number


def add_batch_options(g: argparse.ArgumentParser, *, flag: bool = True) -> None:
    if flag:
        g.add_argument("--batch-api", action="store_true", help="send the run through the OpenAI Batch API (openai "
                       "backend, one base URL): half price, answers within 24 h; `resume` polls the same batch")
    g.add_argument("--poll-interval", type=number(0, above=True), default=30.0, metavar="SECONDS",
                   help="with the Batch API: seconds before the first poll of a batch; later polls back off "
                   "(default 30)")


def check_batch_api(backend: Any, args: argparse.Namespace) -> None:
    """--batch-api takes the openai backend at one base URL, and no input rows."""
    from ..core.backends.openai import OpenAIBackend
    from ..core.errors import UserInputError

    if backend.kind != "openai":
        raise UserInputError(f"--batch-api needs the openai backend, not {backend.kind!r}",
                             cli="add --backend openai, or leave --batch-api out")
    if not isinstance(backend, OpenAIBackend):
        raise UserInputError("--batch-api sends a run to one server: give --base-url once")
    if getattr(args, "enrich", None):
        raise UserInputError("--batch-api does not enrich input rows yet: leave --enrich or --batch-api out")


def refuse_for_dataset(args: argparse.Namespace) -> None:
    """A dataset file's tables do not run through the Batch API yet."""
    from ..core.errors import UserInputError

    if getattr(args, "batch_api", False):
        raise UserInputError("--batch-api does not run dataset files yet: leave it out")


def batch_options(args: argparse.Namespace) -> Any:
    from ..core.engine.batch import BatchOptions

    return BatchOptions(poll_interval=args.poll_interval, poll_cap=max(600.0, args.poll_interval))


def new_run(args: argparse.Namespace, schema: Any, config: Any, backend: Any, *, store: Any, on_event: Any) -> Any:
    """The run ``generate`` makes: a BatchRun with --batch-api (checked first), else a Run.
    Saved runs keep their records in the journal, not in memory."""
    from ..core.engine import Run

    if not args.batch_api:
        return Run(schema, config, backend, store=store, on_event=on_event, keep_records=store is None)
    from ..core.engine.batch import BatchRun

    check_batch_api(backend, args)
    if getattr(args, "budget", None) is not None:
        from ..core.errors import UserInputError

        raise UserInputError("--budget does not hold back a batch yet: a batch is sent whole; leave one of them out")
    return BatchRun(schema, config, backend, store=store, on_event=on_event, keep_records=store is None,
                    options=batch_options(args))
