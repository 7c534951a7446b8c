"""The one sanitiser for text from outside (model output, server errors, files) on its
way to a terminal, in the TUI and the CLI alike.

Nothing that could drive the terminal is sent: C0 control characters (ESC included, so no
CSI/OSC sequence survives), DEL, C1 codes and the bidirectional overrides are replaced by a
visible stand-in (``␛``, ``␇``, ``<U+009B>``, ``<U+202E>``), so the reader sees that they
were there. Tab and newline stay unless ``one_line`` asks for a single line. JSON written to
a file or a pipe never comes through here: JSON escapes its own data.

Text shown by Textual must also never be read as markup: wrap it in ``rich.text.Text``
(``plain``) or pass ``markup=False``.
"""

from __future__ import annotations

from rich.text import Text

BIDI_CONTROLS = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
# what a terminal acts on beyond C0: DEL, C1 and the bidi controls (JSON leaves them raw)
NON_C0_CONTROLS = (0x7F, *range(0x80, 0xA0), *BIDI_CONTROLS)


def _table(keep_newlines: bool) -> dict[int, str]:
    table: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20)}  # ␀ .. ␟
    table[0x7F] = "\u2421"  # ␡
    table.update({c: f"<U+{c:04X}>" for c in range(0x80, 0xA0)})
    table.update({c: f"<U+{c:04X}>" for c in BIDI_CONTROLS})
    del table[0x09]  # tab
    if keep_newlines:
        del table[0x0A]
    return table


_MULTI_LINE = _table(keep_newlines=True)
_ONE_LINE = _table(keep_newlines=False)


def clean_text(text: object, one_line: bool = False) -> str:
    """``text`` (made a string) with every terminal-driving character made visible."""
    return str(text).translate(_ONE_LINE if one_line else _MULTI_LINE)


def clean_line(text: object) -> str:
    """``clean_text`` for a table cell or a status line: newlines shown as ␊."""
    return clean_text(text, one_line=True)


def plain(text: object, style: str = "", one_line: bool = False) -> Text:
    """Outside text as a Rich ``Text``: sanitised, and never parsed as markup."""
    return Text(clean_text(text, one_line=one_line), style=style)
