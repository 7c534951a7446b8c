"""The history as the version before kept it: ``history.json``, one TinyDB file with every
run's document in its ``_default`` table, rewritten whole on each change.

:func:`iter_legacy_history` reads such a file one document at a time (the file is parsed
in place, never turned into one object of every run), checking each as the version
before did: a file that is empty, ``null``, not JSON or of the wrong shape is corrupt.
The store's migration (see :class:`~synth_tui.core.store.Store`) feeds these documents
to a new index and then moves the file aside.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .documents import TABLE, CorruptHistory, check_history_shape, unreadable, valid_run_doc

_SPACE = re.compile(r"[ \t\n\r]*")


def _read_text(path: Path) -> str | None:
    """The file as text (None when it does not exist); the errors of the version before."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise unreadable(path, "history", exc) from None
    if not raw.strip():
        raise CorruptHistory(f"{path} is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptHistory(f"{path} is not valid JSON ({exc})") from None


def iter_legacy_history(path: Path) -> Iterator[dict[str, Any]]:
    """Each run document of the version before's ``history.json`` at ``path``, in the
    file's order (nothing if there is no such file). :class:`CorruptHistory` as soon as
    the file turns out not to be a history of runs; documents already given stay valid
    documents, but the caller should drop them and treat the whole file as corrupt."""
    text = _read_text(path)
    if text is None:
        return
    decoder = json.JSONDecoder()

    def not_json(message: str, pos: int) -> CorruptHistory:
        return CorruptHistory(f"{path} is not valid JSON ({json.JSONDecodeError(message, text, pos)})")

    def shape(problem: str) -> CorruptHistory:
        return CorruptHistory(f"{path} is not a run history: {problem}")

    def value(pos: int) -> tuple[Any, int]:
        try:
            return decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise CorruptHistory(f"{path} is not valid JSON ({exc})") from None

    def space(pos: int) -> int:
        return _SPACE.match(text, pos).end()  # type: ignore[union-attr]

    def expect(pos: int, chars: str, message: str) -> int:
        if pos >= len(text) or text[pos] not in chars:
            raise not_json(message, pos)
        return pos

    pos = space(0)
    if pos >= len(text) or text[pos] != "{":
        whole, end = value(pos)
        if space(end) != len(text):
            raise not_json("Extra data", space(end))
        raise shape(check_history_shape(whole) or "it is not a JSON object of runs")
    pos = space(pos + 1)
    first = True
    while True:
        if text[pos:pos + 1] == "}":
            pos += 1
            break
        if not first:
            pos = space(expect(pos, ",", "Expecting ',' delimiter") + 1)
        first = False
        expect(pos, '"', "Expecting property name enclosed in double quotes")
        table, pos = value(pos)
        pos = space(expect(space(pos), ":", "Expecting ':' delimiter") + 1)
        if table != TABLE or text[pos:pos + 1] != "{":
            docs, pos = value(pos)
            problem = check_history_shape({table: docs})
            if problem:
                raise shape(problem)
            pos = space(pos)
            continue
        pos = space(pos + 1)
        first_doc = True
        while True:
            if text[pos:pos + 1] == "}":
                pos = space(pos + 1)
                break
            if not first_doc:
                pos = space(expect(pos, ",", "Expecting ',' delimiter") + 1)
            first_doc = False
            expect(pos, '"', "Expecting property name enclosed in double quotes")
            doc_id, pos = value(pos)
            pos = space(expect(space(pos), ":", "Expecting ':' delimiter") + 1)
            doc, pos = value(pos)
            pos = space(pos)
            if not str(doc_id).isdigit():
                raise shape(f"its table {TABLE!r} has a document id {doc_id!r} that is not a number")
            if not valid_run_doc(doc):
                raise shape(f"its run document {doc_id} is not a run (no id, or a field of the wrong type)")
            yield doc
    if space(pos) != len(text):
        raise not_json("Extra data", space(pos))


def legacy_exists(path: Path) -> bool:
    """Whether there is something at ``path`` (a file, or a directory or link to report)."""
    return path.is_symlink() or path.exists()


__all__ = ["iter_legacy_history", "legacy_exists"]
