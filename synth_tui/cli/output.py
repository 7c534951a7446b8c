"""What the commands print: exit codes, errors and warnings on stderr, text and tables on
stdout.

Text from outside (a server, a file, an edited history) goes through ``textsafe`` before it
is printed. On a terminal, tables are drawn by rich from ``Text`` cells, never from markup;
anywhere else the text stays plain and stable, for scripts. A write to stdout that fails is
an :class:`OutputWriteError` (exit 1), a reader that left (``| head``) is not an error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..core.errors import SynthError
from ..core.export import OutputWriteError
from ..core.textsafe import clean_line, clean_text

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def error(message: object) -> None:
    """An error for a person, with the advice for the command line where it has some;
    text from outside (a server, a file) made harmless first."""
    if isinstance(message, SynthError):
        message = message.remedy("cli")
    print(f"synth-tui: error: {clean_text(message)}", file=sys.stderr)


def warning(message: object) -> None:
    print(f"synth-tui: warning: {clean_text(message)}", file=sys.stderr)


def say(text: str) -> None:
    """A status line on stderr; the caller has cleaned any outside part of it."""
    print(text, file=sys.stderr)


def print_warnings(store: Any) -> None:
    for message in store.warnings:
        warning(message)


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal that can take rich's drawing (not TERM=dumb)."""
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
    return tty and os.environ.get("TERM", "") not in ("dumb", "unknown")


def stdout_gone() -> None:
    """Standard output failed or its reader left: send whatever is still buffered, and
    anything printed later, to /dev/null, so the interpreter's last flush succeeds."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        sys.stdout = open(os.devnull, "w")


def _failed(exc: OSError) -> OutputWriteError:
    stdout_gone()
    return OutputWriteError(f"cannot write to standard output: {exc.strerror or exc}")


def flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()  # the reader had enough (`| head`): not an error
    except OSError as exc:
        raise _failed(exc) from None


def out(text: str) -> None:
    """Print to stdout; a write that fails (`> /dev/full`) is an error, not a traceback."""
    try:
        print(text)
    except BrokenPipeError:
        stdout_gone()
    except OSError as exc:
        raise _failed(exc) from None


def console(file: Any) -> Console:
    """A rich console that reads no markup, emoji codes or highlights in any string."""
    from rich.console import Console

    return Console(file=file, markup=False, emoji=False, highlight=False)


def out_rich(*renderables: RenderableType) -> None:
    """Draw on stdout, a terminal; a failed write is treated as in :func:`out`."""
    try:
        terminal = console(sys.stdout)
        for renderable in renderables:
            terminal.print(renderable)
    except BrokenPipeError:
        stdout_gone()
    except OSError as exc:
        raise _failed(exc) from None


def cell(value: object, style: str = "") -> Text:
    """Outside text as one table cell: one harmless line, never read as markup."""
    from rich.text import Text

    return Text(clean_line(value), style=style)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, title: object = None,
          right: Sequence[int] = (), styles: dict[int, str] | None = None) -> Any:
    """A rich table: ``right`` names the columns aligned right (figures), ``styles`` a
    style per column. Cells that are not ``Text`` already go through :func:`cell`."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=cell(title) if title is not None else None, title_justify="left", box=box.SIMPLE_HEAD,
                 header_style="bold")
    for i, header in enumerate(headers):
        grid.add_column(cell(header), justify="right" if i in right else "left",
                        style=(styles or {}).get(i, ""))
    for row in rows:
        grid.add_row(*[c if isinstance(c, Text) else cell(c) for c in row])
    return grid


def plain_columns(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns two spaces apart, trailing blanks trimmed: the
    scripts' format, stable across releases."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
