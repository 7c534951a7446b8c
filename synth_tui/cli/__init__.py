"""Headless commands. ``synth-tui`` alone starts the TUI.

Each command module registers its sub-parser (``add_parser``) and names the function that
runs it (``run(args) -> exit code``); this module builds the parser from them and turns
errors into exit codes. Modules import the engine only when they run, so ``--version``,
``--help`` and ``history`` start quickly.

Exit codes: 0 success, 1 the run failed, 2 bad input (schema, arguments, settings),
130 interrupted (Ctrl-C), with the accepted records kept and resumable.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from . import compare, estimate, export, generate, history, prune, report, templates
from .output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, error, flush_stdout, out, say

COMMAND_MODULES = (generate, estimate, history, prune, export, report, compare, templates)


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("synth-tui")
    except PackageNotFoundError:
        return "(not installed)"


class VersionAction(argparse.Action):
    """--version, read from the installed package's metadata only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kw: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Any = None) -> None:
        out(f"synth-tui {installed_version()}")
        flush_stdout()
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synth-tui", description="Generate synthetic datasets with LLMs.")
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument("--data-dir", dest="tui_data_dir", metavar="DIR",
                        help="the data directory, for the TUI and any command (default: the user data dir, "
                             "or $SYNTH_TUI_DATA_DIR)")
    subparsers = parser.add_subparsers(dest="command")
    for module in COMMAND_MODULES:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..core.errors import DataDirLocked, SynthError, UserInputError
    from ..core.store import DataDirBusy

    args = build_parser().parse_args(argv)
    if args.tui_data_dir and hasattr(args, "data_dir") and not args.data_dir:
        args.data_dir = args.tui_data_dir  # synth-tui --data-dir DIR history: the same as history --data-dir DIR
    if args.command is None:
        from ..app import run_app

        return run_app(args.tui_data_dir)
    try:
        code: int = args.run(args)
        flush_stdout()
        return code
    except (UserInputError, DataDirLocked) as exc:
        error(exc)
        if isinstance(exc, DataDirBusy):
            say("synth-tui: to go on without waiting: --no-save (generate: nothing kept in the history) "
                 "or --data-dir DIR (a separate directory)")
        return EXIT_BAD_INPUT
    except SynthError as exc:
        error(exc)
        return EXIT_FAILED
    except KeyboardInterrupt:  # Ctrl-C before a run set its own handler (while modules load): nothing began
        say("interrupted")
        return EXIT_INTERRUPTED
