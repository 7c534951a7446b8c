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


def check_batch_api(spec: Any, args: argparse.Namespace) -> None:
    """--batch-api takes the openai backend at one base URL, and no input rows."""
    from ..core.errors import UserInputError

    if spec.kind != "openai":
        raise UserInputError(f"--batch-api needs the openai backend, not {spec.kind!r}",
                             cli="add --backend openai, or leave --batch-api out")
    if len(spec.urls) > 1:
        raise UserInputError("--batch-api sends a run to one server: give --base-url once")
    if getattr(args, "enrich", None):
        raise UserInputError("--batch-api does not enrich input rows yet: leave --enrich or --batch-api out")


def batch_options(args: argparse.Namespace) -> Any:
    from ..core.engine.batch import BatchOptions

    return BatchOptions(poll_interval=args.poll_interval, poll_cap=max(600.0, args.poll_interval))
