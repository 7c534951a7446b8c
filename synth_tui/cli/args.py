"""Argument types, option groups and input files that several commands share.

Only light imports here: every command module imports this to build its parser, and the
parser is built for ``--version`` too."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def whole(least: int) -> Callable[[str], int]:
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


def number(least: float, most: float | None = None, *, above: bool = False) -> Callable[[str], float]:
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


def add_run_options(g: argparse.ArgumentParser) -> None:
    """What a new run needs: the schema, the count and the knobs (generate, compare)."""
    g.add_argument("schema", help="JSON Schema or short-form schema file ('-' reads stdin), or a template's name")
    g.add_argument("-n", "--count", type=whole(1), help="number of records (with --enrich: at most this many rows)")
    g.add_argument("--api-key-env", help="environment variable that holds the API key")
    g.add_argument("--batch-size", type=whole(1), help="records per request")
    g.add_argument("--concurrency", type=whole(1), help="requests at once (default 4)")
    g.add_argument("--temperature", type=number(0))
    g.add_argument("--top-p", type=number(0, 1))
    g.add_argument("--max-tokens", type=whole(1))
    g.add_argument("--seed", type=int)
    g.add_argument("--max-attempts", type=whole(1), default=4,
                   help="requests per record, on average, before giving up")
    g.add_argument("--max-retries", type=whole(0), default=5, help="retries of one request on transient errors")
    g.add_argument("--timeout", type=number(0, above=True), default=300.0, help="seconds to wait for one answer")
    g.add_argument("--no-hints", action="store_true", help="do not add variation hints to prompts")
    g.add_argument("--no-balance", action="store_true", help="do not spread enum values evenly over the run")
    g.add_argument("--examples", metavar="FILE", help="CSV, JSONL or JSON array of rows shown to the model as "
                   "examples of style and content (a few per request)")
    g.add_argument("--examples-per-request", type=whole(1), default=3, metavar="N",
                   help="example rows per request (default 3)")
    g.add_argument("--enrich", metavar="FILE", help="CSV, JSONL or JSON array: one record per row, in order, the "
                   "row's fields kept and the schema's other fields generated")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def add_output_options(g: argparse.ArgumentParser, *, required: bool = False) -> None:
    """-o/--format/--force: where records are written (generate, resume, export)."""
    from ..core.export import FORMATS

    g.add_argument("-o", "--output", required=required,
                   help="write records to this file" + ("" if required else " (default: stdout)"))
    g.add_argument("--format", choices=FORMATS, help="output format (default: from -o's suffix, else jsonl)")
    g.add_argument("--force", action="store_true", help="overwrite the output file")


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="where history and records live (default: the user data dir, "
                   "or $SYNTH_TUI_DATA_DIR)")


def data_dir(args: argparse.Namespace, settings: Any = None) -> str | None:
    """The data directory: --data-dir, else the settings' (which read $SYNTH_TUI_DATA_DIR)."""
    if args.data_dir:
        return str(args.data_dir)
    if settings is None:
        from ..core.config import load_settings

        settings = load_settings()
    found: str | None = settings.data_dir
    return found


def read_schema_text(path: str, source: str | None = None) -> str:
    """A schema file ('-': stdin) as text, read up to the cap: an endless or huge file
    (`/dev/zero`) is refused, not read until memory runs out."""
    from ..core.errors import UserInputError
    from ..core.fileio import TooLarge, read_capped

    source = source or ("<stdin>" if path == "-" else path)
    try:
        data = read_capped(path)
    except FileNotFoundError:
        raise UserInputError(f"{source}: schema file not found",
                             cli="give a file, or a template's name (synth-tui templates lists them)") from None
    except IsADirectoryError:
        raise UserInputError(f"{source}: is a directory, not a schema file") from None
    except OSError as exc:
        raise UserInputError(f"{source}: cannot read schema file: {exc.strerror or exc}") from None
    except TooLarge as exc:
        raise UserInputError(f"{source}: the schema file is too large: more than "
                             f"{exc.limit // (1024 * 1024)} MB, the most a schema may hold") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{source}: not UTF-8 text (byte {exc.start}): save the schema as UTF-8") from None
