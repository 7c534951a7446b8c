"""Seed data: the rows of an ``--examples`` or ``--enrich`` file.

A seed file is CSV, JSON Lines (.jsonl, .ndjson) or JSON (.json: an array of objects, or
objects one after another, pretty-printed or not); each row is an object. The files come
from outside, so nothing here trusts them: rows are streamed (a file of a million rows never
sits in memory), one row is capped at MAX_ROW_BYTES and its nesting at MAX_DEPTH without
recursing, and every problem is a UserInputError that names the file and line.

In a prompt the rows are data, never instructions: quote_rows renders them as JSON in a
block that no value can close or imitate.
"""

from __future__ import annotations

import codecs
import copy
import csv as csvlib
import itertools
import json
import math
import os
import random
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import UserInputError
from .parsing import MAX_DEPTH
from .schema import canonical_json
from .textsafe import NON_C0_CONTROLS

__all__ = ["MAX_ROW_BYTES", "ExamplePool", "SeedFile", "SeedRow", "coerce_row", "quote_rows"]

MAX_ROW_BYTES = 1 << 20  # one row: far more than an example or an input record needs
_TOO_LONG = "a row longer than 1 MiB"
CHUNK = 1 << 16  # what a JSON file is read in
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
BOM = codecs.BOM_UTF8
CSV_DELIMITERS = (",", ";", "\t")  # the first line decides; a comma when it has none of them
_SPACE = re.compile(r"[ \t\r\n]*")
_OPEN_OR_CLOSE = re.compile(r'[\[\]{}"]')
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)  # possessive: linear, no backtracking


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# NaN and Infinity are Python's extensions to JSON: no record may hold them
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


class SeedRow(dict[str, Any]):
    """A row of a seed file, and where it came from ("FILE:LINE"), for any message about it
    later (a CSV cell that is not the field's type, an input value a record changed)."""

    __slots__ = ("where",)

    def __init__(self, items: Iterable[tuple[str, Any]] | dict[str, Any], where: str) -> None:
        super().__init__(items)
        self.where = where


class SeedFile:
    """A seed file, checked when named, read row by row each time ``rows`` is called.

    The format comes from the extension; any other name is sniffed from the first byte that
    is not a space: ``[`` a JSON array, ``{`` JSON Lines, anything else CSV. A FIFO, a
    directory or a device is refused: a seed file is read more than once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with _open_regular(self.path) as raw:
            first = _first_byte(raw)
        if first is None:
            raise UserInputError(f"{self.path}: has no rows: the file is empty")
        self.format = EXTENSIONS.get(self.path.suffix.lower()) or _sniffed(first)

    def rows(self, skip: int = 0) -> Iterator[dict[str, Any]]:
        """Each row in file order, as a SeedRow; the first ``skip`` rows are read and dropped
        (a resumed run). Raises UserInputError at the first bad row, and at the end of a file
        without rows."""
        read: Callable[[IO[bytes], Path], Iterator[SeedRow]] = {
            "csv": _csv_rows, "jsonl": _jsonl_rows, "json": _json_rows,
        }[self.format]
        count = 0
        with _open_regular(self.path) as raw:
            for count, row in enumerate(read(raw, self.path), 1):
                if count > skip:
                    yield row
        if count == 0:
            raise UserInputError(f"{self.path}: has no rows", cli="give a file with at least one row")

    def count(self) -> int:
        """How many rows the file holds (the file is read through, and checked)."""
        return sum(1 for _ in self.rows())

    def columns(self) -> list[str]:
        """The names in the first row (a CSV file's header)."""
        rows = self.rows()
        try:
            return list(next(rows))
        finally:
            rows.close()  # type: ignore[attr-defined]


def _open_regular(path: Path) -> IO[bytes]:
    """``path`` opened for reading, if it is a regular file. Opened without blocking, so
    that a FIFO with no writer is refused instead of waiting forever."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file") from None
    except PermissionError:
        raise UserInputError(f"{path}: cannot be read: permission denied") from None
    except OSError as exc:
        raise UserInputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise UserInputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UserInputError(f"{path}: is {_kind_of_file(mode)}, not a regular file",
                             cli="give the path of a CSV, JSON Lines or JSON file")
    return os.fdopen(fd, "rb")


def _kind_of_file(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"


def _first_byte(raw: IO[bytes]) -> int | None:
    """The first byte that is not a space (after a UTF-8 BOM); None for an empty file."""
    data = raw.read(CHUNK).removeprefix(BOM)
    while data:
        text = data.lstrip(b" \t\r\n")
        if text:
            return text[0]
        data = raw.read(CHUNK)
    return None


def _sniffed(first: int) -> str:
    return {ord("["): "json", ord("{"): "jsonl"}.get(first, "csv")


# -- JSON Lines -----------------------------------------------------------------------
def _jsonl_rows(raw: IO[bytes], path: Path) -> Iterator[SeedRow]:
    """One object per line; blank lines are skipped, CRLF is fine."""
    for number, data in enumerate(iter(lambda: raw.readline(MAX_ROW_BYTES + 1), b""), 1):
        where = f"{path}:{number}"
        if number == 1:
            data = data.removeprefix(BOM)
        if len(data) > MAX_ROW_BYTES and not data.endswith(b"\n"):
            raise UserInputError(f"{where}: {_TOO_LONG}")
        text = _utf8(data, where)
        start = _SPACE.match(text).end()  # type: ignore[union-attr]
        if start == len(text):
            continue
        if text[start] != "{":
            raise UserInputError(f"{where}: {_not_an_object(text[start])}")
        _check_depth(text, start, where)
        try:
            value = _DECODER.decode(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{where}: invalid JSON at column {exc.colno}: {exc.msg}") from None
        except RecursionError:
            raise UserInputError(f"{where}: {_too_deep()}") from None
        except ValueError as exc:  # NaN, Infinity, a number of thousands of digits
            raise UserInputError(f"{where}: {exc}") from None
        yield SeedRow(_valid_text(value, text, where), where)


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{where}: not UTF-8 text (byte {exc.start + 1} of the line)",
                             cli="save the file as UTF-8") from None


def _not_an_object(first: str) -> str:
    kinds = {"[": "an array", '"': "a string", "t": "true", "f": "false", "n": "null"}
    found = kinds.get(first) or ("a number" if first in "-0123456789" else f"{first!r}")
    return f"a row must be a JSON object {{...}}, not {found}"


def _too_deep() -> str:
    return f"a row nests objects and arrays more than {MAX_DEPTH} levels deep"


def _check_depth(text: str, start: int, where: str) -> None:
    """Refuse a value nested deeper than MAX_DEPTH before any decoder recurses into it (a
    cheap count first: few rows hold that many brackets at all)."""
    if text.count("{", start) + text.count("[", start) <= MAX_DEPTH:
        return
    try:
        _follow_brackets(text, start, "")
    except _TooDeep:
        raise UserInputError(f"{where}: {_too_deep()}") from None


class _TooDeep(Exception):
    pass


def _follow_brackets(text: str, i: int, open_: str) -> tuple[int, str, bool]:
    """Follow a value's brackets from ``text[i]``, with the brackets in ``open_`` still open:
    (index, open brackets, done). Done: the value ends just before index, or breaks there (a
    bracket closing the wrong kind: the decoder says how). Otherwise the text ran out, and
    index is where to go on once there is more. Linear: strings are skipped whole."""
    while True:
        found = _OPEN_OR_CLOSE.search(text, i)
        if found is None:
            return len(text), open_, False
        i = found.start()
        char = found.group()
        if char == '"':
            string = _STRING.match(text, i)
            if string is None:
                return i, open_, False  # the string goes on past the text
            i = string.end()
            continue
        i += 1
        if char in "[{":
            open_ += char
            if len(open_) > MAX_DEPTH:
                raise _TooDeep
        elif not open_ or open_[-1] != _OPENER[char]:
            return i, open_, True
        else:
            open_ = open_[:-1]
            if not open_:
                return i, open_, True


_OPENER = {"]": "[", "}": "{"}


def _valid_text(value: Any, text: str, where: str) -> Any:
    """``value``, unless one of its strings holds a lone surrogate (``\\ud800``): JSON can
    spell one, but no UTF-8 file or request can carry it."""
    if "\\ud" in text or "\\uD" in text:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise UserInputError(f"{where}: a string holds a lone surrogate escape (\\ud800-\\udfff), "
                                 "which is not text") from None
    return value


# -- JSON: an array, or objects one after another -------------------------------------
class _Window:
    """A UTF-8 file decoded a chunk at a time: the text not yet consumed (from ``pos``) and
    the line ``pos`` is on. Only the row being read and one chunk are ever held."""

    def __init__(self, raw: IO[bytes], path: Path) -> None:
        self.raw, self.path = raw, path
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.text, self.pos, self.line, self.started = "", 0, 1, False

    def more(self) -> int | None:
        """Append the next chunk, dropping the consumed text: how many characters were
        dropped (indices into the text move back by that), or None at the end of the file."""
        data = self.raw.read(CHUNK)
        if not self.started:
            data, self.started = data.removeprefix(BOM), True
        try:
            chunk = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            line = self.line + self.text.count("\n", self.pos) + data[:max(exc.start, 0)].count(b"\n")
            raise UserInputError(f"{self.path}:{line}: not UTF-8 text", cli="save the file as UTF-8") from None
        if not data:
            return None
        dropped = self.pos
        self.text, self.pos = self.text[dropped:] + chunk, 0
        return dropped

    def advance(self, to: int) -> None:
        self.line += self.text.count("\n", self.pos, to)
        self.pos = to

    def at_value(self) -> bool:
        """Skip spaces; True when a character follows, False at the end of the file."""
        while True:
            self.advance(_SPACE.match(self.text, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.text):
                return True
            if self.more() is None:
                return False

    def char(self) -> str:
        return self.text[self.pos]


def _json_rows(raw: IO[bytes], path: Path) -> Iterator[SeedRow]:
    window = _Window(raw, path)
    if not window.at_value():
        return
    array = window.char() == "["
    if array:
        window.advance(window.pos + 1)
    for number in itertools.count(1):
        found = window.at_value()
        where = f"{path}:{window.line}: row {number}" if array else f"{path}:{window.line}"
        if not found:
            if array:
                raise UserInputError(f"{where}: the file ends before the array's closing ]")
            return
        if array and number == 1 and window.char() == "]":
            return  # [], and the caller says the file has no rows
        if window.char() != "{":
            raise UserInputError(f"{where}: {_not_an_object(window.char())}")
        yield SeedRow(_read_object(window, where), where)
        if array and not _after_row(window, where):
            return
    raise AssertionError("unreachable")  # pragma: no cover


def _after_row(window: _Window, where: str) -> bool:
    """Past the ``,`` after an array's row (True), or its closing ``]`` (False), and
    nothing but spaces after that."""
    if not window.at_value():
        raise UserInputError(f"{where}: the file ends before the array's closing ]")
    char = window.char()
    window.advance(window.pos + 1)
    if char == ",":
        return True
    if char != "]":
        raise UserInputError(f"{window.path}:{window.line}: expected ',' or ']' after a row, found {char!r}")
    if window.at_value():
        raise UserInputError(f"{window.path}:{window.line}: more text after the array's closing ]")
    return False


def _read_object(window: _Window, where: str) -> Any:
    """The object at the window's position, reading on until its brackets close. Tried at
    once (the row is usually whole in the window); else its brackets are followed through
    new chunks (linear, bounded by MAX_ROW_BYTES and MAX_DEPTH) and it is decoded again."""
    scan, open_, closed = window.pos, "", False
    while True:
        try:
            value, end = _DECODER.raw_decode(window.text, window.pos)
            break
        except json.JSONDecodeError as exc:
            if closed:
                line = window.line + window.text.count("\n", window.pos, exc.pos)
                raise UserInputError(f"{where}: invalid JSON at line {line}: {exc.msg}") from None
        except RecursionError:
            raise UserInputError(f"{where}: {_too_deep()}") from None
        except ValueError as exc:
            raise UserInputError(f"{where}: {exc}") from None
        while not closed:
            try:
                scan, open_, closed = _follow_brackets(window.text, scan, open_)
            except _TooDeep:
                raise UserInputError(f"{where}: {_too_deep()}") from None
            if closed:
                break
            if len(window.text) - window.pos > MAX_ROW_BYTES:
                raise UserInputError(f"{where}: {_TOO_LONG}")
            dropped = window.more()
            if dropped is None:
                raise UserInputError(f"{where}: the file ends before this row's closing }}")
            scan -= dropped
    text = window.text[window.pos:end]
    if len(text) > MAX_ROW_BYTES:
        raise UserInputError(f"{where}: {_TOO_LONG}")
    _check_depth(text, 0, where)
    window.advance(end)
    return _valid_text(value, text, where)


# -- CSV ------------------------------------------------------------------------------
class _CsvLines:
    """A CSV file's lines for csv.reader, decoded one at a time: which line a record starts
    on, for messages, and a cap on one record's bytes (an unclosed quote would otherwise
    take the rest of the file into one cell)."""

    def __init__(self, raw: IO[bytes], path: Path) -> None:
        self.raw, self.path = raw, path
        self.line, self.record_line, self.record_bytes = 0, 1, 0

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        data = self.raw.readline(MAX_ROW_BYTES + 1)
        if not data:
            raise StopIteration
        self.line += 1
        if self.line == 1:
            data = data.removeprefix(BOM)
        self.record_bytes += len(data)
        if self.record_bytes > MAX_ROW_BYTES:
            hint = ": a quote left open?" if self.line > self.record_line else ""
            raise UserInputError(f"{self.path}:{self.record_line}: {_TOO_LONG}{hint}")
        return _utf8(data, f"{self.path}:{self.line}")

    def next_record(self) -> None:
        self.record_line, self.record_bytes = self.line + 1, 0


def _csv_rows(raw: IO[bytes], path: Path) -> Iterator[SeedRow]:
    """The header names the columns; each later record is a row of strings (a short record's
    missing cells are empty). Quoted cells may hold newlines; blank lines are skipped."""
    if csvlib.field_size_limit() < MAX_ROW_BYTES:  # process-wide, and only ever raised
        csvlib.field_size_limit(MAX_ROW_BYTES)
    lines = _CsvLines(raw, path)
    first = next(lines, None)
    if first is None:
        return
    delimiter = max(CSV_DELIMITERS, key=lambda d: (first.count(d), d == ","))
    reader = csvlib.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
    names: list[str] | None = None
    while True:
        where = f"{path}:{lines.record_line}"
        try:
            cells = next(reader, None)
        except csvlib.Error as exc:
            raise UserInputError(f"{where}: {_csv_problem(exc)}") from None
        if cells is None:
            return
        lines.next_record()
        if not cells:
            continue
        if names is None:
            names = _header(cells, where)
            continue
        if len(cells) > len(names):
            raise UserInputError(f"{where}: {len(cells)} cells, but the header names {len(names)} columns")
        yield SeedRow(itertools.zip_longest(names, cells, fillvalue=""), where)


def _csv_problem(exc: csvlib.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return "the file ends inside a quoted cell (a quote left open?)"
    return f"not valid CSV: {text}"


def _header(cells: list[str], where: str) -> list[str]:
    names = [cell.strip() for cell in cells]
    seen: dict[str, int] = {}
    for column, name in enumerate(names, 1):
        if not name:
            raise UserInputError(f"{where}: column {column} of the header has no name",
                                 cli="name every column in the first line")
        if name in seen:
            raise UserInputError(f"{where}: the header names {json.dumps(name, ensure_ascii=False)} twice "
                                 f"(columns {seen[name]} and {column})")
        seen[name] = column
    return names


# -- CSV cells as the schema's types ----------------------------------------------------
class _Drop(Exception):
    """An empty cell of an optional field: the field is left out."""


_INTEGER = re.compile(r"[+-]?\d+(?:\.0*)?")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TYPE_WORDS = {"integer": "an integer", "number": "a number", "boolean": "true or false", "null": "empty",
               "object": "a JSON object", "array": "a JSON array", "string": "text"}


def coerce_row(row: dict[str, Any], schema: dict[str, Any], *, csv: bool) -> dict[str, Any]:
    """A CSV row's cells (all strings) as the JSON types of the schema's top-level fields.

    An empty cell is null where the field may be null, left out where the field is optional,
    "" where it is text, and an error otherwise. Object and array fields read the cell as
    JSON. A cell that cannot be its field's type raises UserInputError naming the file, line
    and column. JSON rows (``csv`` false), columns the schema does not name and fields of no
    stated type come back as they are: whether they belong is the engine's call."""
    if not csv:
        return row
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    where = getattr(row, "where", "") or "seed row"
    out: dict[str, Any] = {}
    for name, cell in row.items():
        spec = _resolved(properties.get(name), schema)
        kinds = _types(spec) if isinstance(cell, str) else set()
        if not kinds:
            out[name] = cell
            continue
        try:
            out[name] = _coerced(cell, kinds, optional=name not in required)
        except _Drop:
            continue
        except ValueError as exc:
            raise UserInputError(f"{where}: column {json.dumps(name, ensure_ascii=False)}: {exc}") from None
    return SeedRow(out, where) if isinstance(row, SeedRow) else out


def _resolved(spec: Any, root: dict[str, Any]) -> Any:
    """``spec``, or what its local ``$ref`` ("#/$defs/name") points to."""
    for _ in range(8):  # a chain of references; a loop of them ends here
        ref = spec.get("$ref") if isinstance(spec, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return spec
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
        spec = node
    return spec


def _types(spec: Any) -> set[str]:
    """The JSON types a field takes: its ``type``, its ``anyOf``/``oneOf`` branches' types,
    or the types of its ``enum``/``const`` values where no type is stated."""
    if not isinstance(spec, dict):
        return set()
    kinds: set[str] = set()
    for node in (spec, *(spec.get("anyOf") or ()), *(spec.get("oneOf") or ())):
        if not isinstance(node, dict):
            continue
        stated = node.get("type")
        if isinstance(stated, str):
            kinds.add(stated)
        elif isinstance(stated, list):
            kinds.update(kind for kind in stated if isinstance(kind, str))
        else:
            values = [node["const"]] if "const" in node else node.get("enum")
            if isinstance(values, list):
                kinds.update(_json_type(value) for value in values)
    return kinds & set(_TYPE_WORDS)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def _coerced(cell: str, kinds: set[str], *, optional: bool) -> Any:
    if cell == "" or (not cell.strip() and "string" not in kinds):
        if "null" in kinds:
            return None
        if optional:
            raise _Drop
        if "string" in kinds:
            return ""
        raise ValueError(f"the cell is empty, and the field needs {_words(kinds)}")
    text = cell.strip()
    for kind in ("integer", "number", "boolean", "null", "object", "array"):
        if kind in kinds:
            value = _CELL_READERS[kind](text, "string" in kinds)
            if value is not _NOT:
                return value
    if "string" in kinds:
        return cell
    shown = json.dumps(cell[:60] + ("..." if len(cell) > 60 else ""), ensure_ascii=False)
    raise ValueError(f"{shown} is not {_words(kinds)}")


def _words(kinds: set[str]) -> str:
    return " or ".join(_TYPE_WORDS[kind] for kind in sorted(kinds))


_NOT = object()  # a cell that does not read as the type tried


def _integer_cell(text: str, _text_too: bool) -> Any:
    if not _INTEGER.fullmatch(text):
        return _NOT
    try:
        return int(text.split(".")[0])
    except ValueError:  # past Python's limit of digits
        return _NOT


def _number_cell(text: str, _text_too: bool) -> Any:
    if not _NUMBER.fullmatch(text):
        return _NOT
    try:
        if not any(c in text for c in ".eE"):
            return int(text)
        value = float(text)
    except ValueError:
        return _NOT
    return value if math.isfinite(value) else _NOT


def _boolean_cell(text: str, _text_too: bool) -> Any:
    return {"true": True, "false": False}.get(text.lower(), _NOT)


def _null_cell(text: str, text_too: bool) -> Any:
    """The word null is null only where the field cannot be text (there it is a word)."""
    return None if text == "null" and not text_too else _NOT


def _json_cell(kind: type) -> Callable[[str, bool], Any]:
    opener = "{" if kind is dict else "["

    def read(text: str, _text_too: bool) -> Any:
        if not text.startswith(opener):
            return _NOT
        try:
            _check_depth(text, 0, "cell")
            value = _DECODER.decode(text)
        except (ValueError, RecursionError, UserInputError):
            return _NOT
        return value if isinstance(value, kind) else _NOT
    return read


_CELL_READERS: dict[str, Callable[[str, bool], Any]] = {
    "integer": _integer_cell, "number": _number_cell, "boolean": _boolean_cell, "null": _null_cell,
    "object": _json_cell(dict), "array": _json_cell(list),
}


# -- examples -------------------------------------------------------------------------
class ExamplePool:
    """The rows of an ``--examples`` file that requests show the model, a few at a time.

    At most ``cap`` rows are kept (a uniform reservoir sample of a larger file, so memory is
    bounded). ``take`` deals them out without replacement across the run: a shuffled order
    is consumed in turn and reshuffled when used up, so over k*n draws each row is shown
    exactly n times when k*n is a multiple of the pool, and no take repeats a row. With a
    ``schema``, CSV cells are read as its types first (coerce_row)."""

    def __init__(self, seed: SeedFile, rng: random.Random, *, cap: int = 10_000,
                 schema: dict[str, Any] | None = None) -> None:
        if cap < 1:
            raise ValueError("an example pool holds at least one row")
        self._rng = rng
        rows: list[dict[str, Any]] = []
        for seen, row in enumerate(seed.rows()):
            if schema is not None:
                row = coerce_row(row, schema, csv=seed.format == "csv")
            if len(rows) < cap:
                rows.append(dict(row))
            else:
                slot = rng.randrange(seen + 1)
                if slot < cap:
                    rows[slot] = dict(row)
        self._rows = rows
        self._known = {canonical_json(row) for row in rows}
        self._order: list[int] = []  # the rest of the current shuffle, taken from the end

    def __len__(self) -> int:
        return len(self._rows)

    def take(self, k: int) -> list[dict[str, Any]]:
        """``k`` rows (all of them when the pool is smaller), no row twice; copies, so a
        caller's change never reaches the pool."""
        picked: list[int] = []
        while len(picked) < min(k, len(self._rows)):
            if not self._order:
                self._order = self._reshuffled(set(picked))
            picked.append(self._order.pop())
        return [copy.deepcopy(self._rows[i]) for i in picked]

    def _reshuffled(self, taken: set[int]) -> list[int]:
        """A new order of every row; rows already in the take under way come last."""
        order = list(range(len(self._rows)))
        self._rng.shuffle(order)
        return [i for i in order if i in taken] + [i for i in order if i not in taken]

    def is_example(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` equals a pooled row, as a whole (the engine counts it as a
        duplicate: a copied example is not a new record)."""
        return canonical_json(record) in self._known


# -- rows in a prompt -----------------------------------------------------------------
BLOCK_START = "<<<SEED DATA BEGIN: {rows}, one JSON object per line>>>"
BLOCK_END = "<<<SEED DATA END>>>"
# Escaped in a row's JSON as \uXXXX, which means the same to any JSON reader: < and > (so
# no value spells a marker), ` (no code fence), and what could break or reorder a line:
# DEL, C1, bidi controls, the Unicode line separators, the BOM, lone surrogates. JSON
# itself already escapes quotes, backslashes and C0 controls (ESC becomes \u001b).
_QUOTED = {code: f"\\u{code:04x}" for code in (
    ord("<"), ord(">"), ord("`"), *NON_C0_CONTROLS, 0x2028, 0x2029, 0xFEFF, *range(0xD800, 0xE000))}


def quote_rows(rows: list[dict[str, Any]]) -> str:
    """Seed rows as a block of data for a prompt::

        <<<SEED DATA BEGIN: 2 rows, one JSON object per line>>>
        {"name": "Lena Vogel", "city": "Leipzig"}
        {"name": "Tom \\u003cb\\u003e", "note": "line one\\nline two"}
        <<<SEED DATA END>>>

    Each row is one line of JSON (``json.dumps``, non-ASCII kept) in which ``<``, ``>``,
    backticks, line and paragraph separators and invisible controls are written as
    ``\\uXXXX`` escapes: no value can end the block, start another, open a code fence or
    break a line, and the rows still read back unchanged with any JSON parser. The caller
    says, beside the block, that it is data and not instructions."""
    lines = [json.dumps(row, ensure_ascii=False).translate(_QUOTED) for row in rows]
    return "\n".join([BLOCK_START.format(rows="1 row" if len(rows) == 1 else f"{len(rows)} rows"), *lines, BLOCK_END])
