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


class _Scanner:
    """A JSON text read in place from ``pos``: whole values decoded, objects walked a
    member at a time. Every fault is the :class:`CorruptHistory` json.loads would say."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.pos = 0
        self._decoder = json.JSONDecoder()
        self.skip_space()

    def skip_space(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # matches "" anywhere

    def at(self, char: str) -> bool:
        return self.text[self.pos:self.pos + 1] == char

    def not_json(self, message: str) -> CorruptHistory:
        return CorruptHistory(f"{self.path} is not valid JSON ({json.JSONDecodeError(message, self.text, self.pos)})")

    def expect(self, char: str, message: str) -> None:
        if not self.at(char):
            raise self.not_json(message)
        self.pos += 1
        self.skip_space()

    def value(self) -> Any:
        """The value at the cursor, decoded; the cursor moves past it (and its space)."""
        try:
            value, self.pos = self._decoder.raw_decode(self.text, self.pos)
        except (ValueError, RecursionError) as exc:  # not JSON, or past Python's digit or depth limit
            raise CorruptHistory(f"{self.path} is not valid JSON ({exc})") from None
        self.skip_space()
        return value

    def members(self) -> Iterator[Any]:
        """Each key of the object at the cursor, with the cursor at its value; the caller
        moves the cursor past the value before asking for the next key."""
        self.expect("{", "Expecting value")
        first = True
        while not self.at("}"):
            if not first:
                self.expect(",", "Expecting ',' delimiter")
            first = False
            if not self.at('"'):
                raise self.not_json("Expecting property name enclosed in double quotes")
            key = self.value()
            self.expect(":", "Expecting ':' delimiter")
            yield key
        self.pos += 1
        self.skip_space()

    def end(self) -> None:
        if self.pos != len(self.text):
            raise self.not_json("Extra data")


def iter_legacy_history(path: Path) -> Iterator[dict[str, Any]]:
    """Each run document of the version before's ``history.json`` at ``path``, in the
    file's order (nothing if there is no such file). :class:`CorruptHistory` as soon as
    the file turns out not to be a history of runs; documents already given stay valid
    documents, but the caller should drop them and treat the whole file as corrupt."""
    text = _read_text(path)
    if text is None:
        return
    scan = _Scanner(path, text)

    def shape(problem: str) -> CorruptHistory:
        return CorruptHistory(f"{path} is not a run history: {problem}")

    if not scan.at("{"):
        whole = scan.value()
        scan.end()
        raise shape(check_history_shape(whole) or "it is not a JSON object of runs")
    for table in scan.members():
        if table != TABLE or not scan.at("{"):
            problem = check_history_shape({table: scan.value()})
            if problem:
                raise shape(problem)
            continue
        for doc_id in scan.members():
            doc = scan.value()
            if not str(doc_id).isdigit():
                raise shape(f"its table {TABLE!r} has a document id {doc_id!r} that is not a number")
            if not valid_run_doc(doc):
                raise shape(f"its run document {doc_id} is not a run (no id, or a field of the wrong type)")
            yield doc
    scan.end()


def legacy_exists(path: Path) -> bool:
    """Whether there is something at ``path`` (a file, or a directory or link to report)."""
    return path.is_symlink() or path.exists()


__all__ = ["iter_legacy_history", "legacy_exists"]
