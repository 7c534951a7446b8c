"""Model output is untrusted text: strip terminal control sequences before it reaches a
screen (CLI or TUI). The TUI also escapes Rich markup (see ``markup_safe``)."""

from __future__ import annotations

import re

# CSI / OSC / other ESC sequences, then any C0/C1 control character except tab and newline
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    return _CONTROLS.sub("\ufffd", _ESCAPES.sub("", text))


def markup_safe(text: str) -> str:
    """Clean text and escape Rich markup so ``[bold]`` shows as typed."""
    from rich.markup import escape

    return escape(clean_text(text))
