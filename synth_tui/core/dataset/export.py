"""A dataset run's tables as files: a folder with one file per table (CSV, JSON Lines,
JSON), or one SQLite database whose tables carry the dataset's keys and references.

Every table is streamed from its journal, never held. The folder formats are the
single-run exporters (core/export.py), one file per table, each replaced atomically.
The SQLite database is built in a temp file beside the target, one transaction per
table, parents first; it is renamed into place only once ``PRAGMA foreign_key_check``
has found every reference resolved, so a reader sees the old file or a whole, consistent
new one. Table and field names come from the user's file: in SQL they are always quoted.

No Parquet: pyarrow would add a 50 MB wheel (170 MB installed) to every install for a
format that any Parquet tool makes from these CSV, JSON Lines or SQLite files in one step,
and Parquet keeps neither keys nor references, which SQLite does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import SynthError, UserInputError
from ..export import OutputWriteError, check_output_path, dumps_json, export_to_path
from ..fileio import _unique_temp, describe_os_error, fsync_dir, is_written_through
from ..store import RunDoc, Store
from ..textsafe import clean_line
from .run import KIND, tables_dir
from .spec import Dataset, Table, check_dataset

FOLDER_FORMATS = ("csv", "jsonl", "json")
DATASET_FORMATS = (*FOLDER_FORMATS, "sqlite")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SQL_TYPES = {"integer": "INTEGER", "number": "REAL", "boolean": "INTEGER", "string": "TEXT",
             "object": "TEXT", "array": "TEXT"}  # objects and arrays are held as JSON text
INT64 = (-(2**63), 2**63 - 1)
FOLDER_ADVICE = {"cli": "give a folder (created if missing) for csv, jsonl or json, or a FILE.db for SQLite",
                 "tui": "give a folder for csv, jsonl or json, or a file ending in .db for SQLite"}


class DatasetIntegrityError(SynthError):
    """The stored tables break their own keys or references: the database is not written."""


# -- the stored dataset ---------------------------------------------------------------------
class DatasetTables:
    """A dataset run as stored: its dataset (tables parents first), each table's run
    document and records, read from the table's journal as they are asked for."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.doc = store.get_run(run_id)
        self.run_id: str = self.doc["id"]
        if self.doc.get("kind") != KIND:
            raise UserInputError(f"run {self.run_id} is not a dataset run: it has one table of records")
        self.dataset: Dataset = check_dataset(self.doc.get("schema"), f"run {self.run_id}")
        saved = self.doc.get("tables")
        self._saved: dict[str, Any] = saved if isinstance(saved, dict) else {}
        folder = tables_dir(store, self.run_id)
        self.store = Store(folder, writable=False) if folder.is_dir() else None

    def saved(self, name: str) -> dict[str, Any]:
        """The dataset document's entry for table ``name`` (run_id, status, requested, accepted)."""
        entry = self._saved.get(name)
        return entry if isinstance(entry, dict) else {}

    def table_run(self, name: str) -> str | None:
        run_id = self.saved(name).get("run_id")
        return run_id if isinstance(run_id, str) and self.store is not None else None

    def run_doc(self, name: str) -> RunDoc | None:
        run_id = self.table_run(name)
        return self.store.get_run(run_id) if run_id and self.store is not None else None

    def records(self, name: str) -> Iterator[dict[str, Any]]:
        """Table ``name``'s records in the order they were accepted (a line that is not an
        object is skipped, as an unreadable one is)."""
        run_id = self.table_run(name)
        if run_id is None or self.store is None:
            return
        for record in self.store.iter_records(run_id):
            if isinstance(record, dict):
                yield record

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> DatasetTables:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- where it goes --------------------------------------------------------------------------
def dataset_format(output: str | Path, fmt: str | None) -> str:
    """The format to write: ``fmt``, else SQLite for a FILE.db (.sqlite, .sqlite3), else JSON Lines."""
    if fmt is None:
        return "sqlite" if Path(output).suffix.lower() in SQLITE_SUFFIXES else "jsonl"
    if fmt not in DATASET_FORMATS:
        raise UserInputError(f"unknown format {fmt!r} for a dataset: choose one of {', '.join(DATASET_FORMATS)}")
    return fmt


def check_dataset_output(output: str | Path, fmt: str | None, *, force: bool) -> None:
    """Raise UserInputError unless the dataset can be written to ``output`` (before a run,
    not after it): a folder for csv, jsonl and json (created if missing; one that holds
    anything needs ``force``), a regular file for SQLite (an existing one needs ``force``)."""
    fmt = dataset_format(output, fmt)
    target = Path(output).expanduser()
    if fmt == "sqlite":
        _check_database(target, force)
    else:
        _check_folder(target, fmt, force)


def _check_database(target: Path, force: bool) -> None:
    if target.is_dir():
        raise UserInputError(f"{target} is a folder: a SQLite database is one file", cli="give FILE.db",
                             tui="give a file name ending in .db")
    if target.exists() and is_written_through(target):
        raise UserInputError(f"{target} is not a regular file: SQLite writes a database only to a file",
                             cli="give FILE.db", tui="give a file name ending in .db")
    check_output_path(target, force=force)


def _check_folder(target: Path, fmt: str, force: bool) -> None:
    if target.is_dir():
        if not force and _holds_anything(target):
            raise UserInputError(f"the folder {target} is not empty",
                                 cli="choose a new or empty folder, or use --force to replace the tables' files in it",
                                 tui="choose a new or empty folder, or export again to replace the tables' files")
        folder = target
    elif target.exists() or os.path.lexists(target):
        raise UserInputError(f"{target} is a file: a dataset in {fmt} is a folder with a file per table",
                             **FOLDER_ADVICE)
    elif target.suffix.lower() in (*SQLITE_SUFFIXES, *(f".{f}" for f in FOLDER_FORMATS)):
        raise UserInputError(f"{target} names a file: a dataset in {fmt} is a folder with a file per table "
                             f"(customers.{fmt}, orders.{fmt}, ...)", **FOLDER_ADVICE)
    else:
        folder = _existing_parent(target)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserInputError(f"no permission to write in {folder}")


def _holds_anything(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(True for _ in entries)
    except OSError as exc:
        raise UserInputError(f"cannot read the folder {folder}: {exc.strerror or exc}") from None


def _existing_parent(target: Path) -> Path:
    """The nearest folder above ``target`` that exists (a file on the way is an error)."""
    folder = target.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UserInputError(f"cannot make the folder {target}: {folder} is a file", **FOLDER_ADVICE)
    return folder


# -- writing --------------------------------------------------------------------------------
def export_dataset(store: Store, run_id: str, output: str | Path, fmt: str | None, *, force: bool) -> str:
    """Write dataset run ``run_id``'s tables to ``output``; what was written, for a message.
    UserInputError for a path it cannot use, OutputWriteError when a write fails on the
    way, DatasetIntegrityError when the stored tables break a key or a reference."""
    fmt = dataset_format(output, fmt)
    target = Path(output).expanduser()
    with DatasetTables(store, run_id) as tables:
        check_dataset_output(target, fmt, force=force)
        if fmt == "sqlite":
            rows = write_sqlite(tables, target)
            return f"{rows} rows in {len(tables.dataset.tables)} tables to {clean_line(target)}"
        written = _write_folder(tables, target, fmt, force)
    files = ", ".join(f"{name}.{fmt} ({n})" for name, n in written)
    return f"{sum(n for _, n in written)} rows to {clean_line(target)}{os.sep}: {files}"


def _write_folder(tables: DatasetTables, folder: Path, fmt: str, force: bool) -> list[tuple[str, int]]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot make the folder {folder}: {exc.strerror or exc}") from None
    written = []
    for name, table in tables.dataset.tables.items():
        n = export_to_path(functools.partial(tables.records, name), folder / f"{name}.{fmt}", fmt,
                           schema=table.schema.schema, force=force)
        written.append((name, n))
    return written


def write_sqlite(tables: DatasetTables, target: Path) -> int:
    """Build the database in a temp file beside ``target`` and rename it into place once
    complete and consistent; the rows written. The temp file is gone whatever failed. A
    link is followed: the file it points to is replaced, and the link kept."""
    _check_table_names(tables.dataset)
    target = Path(os.path.realpath(target))
    try:
        fd, tmp = _unique_temp(target.parent, target.name, 0o666)
        os.close(fd)
    except OSError as exc:
        raise UserInputError(describe_os_error(exc, target)) from None
    try:
        rows = _build(tables, tmp, target)
        _settle(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
    return rows


def _build(tables: DatasetTables, path: Path, target: Path) -> int:
    connection = sqlite3.connect(path, isolation_level=None)  # transactions begun and ended here
    try:
        # the temp file is thrown away on any failure: no rollback journal needed, one fsync at the end
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        rows = 0
        for table in tables.dataset.tables.values():
            rows += _fill(connection, table, tables)
        _check_references(connection, tables.dataset)
        return rows
    except sqlite3.IntegrityError as exc:
        raise DatasetIntegrityError(f"the dataset's rows break a key: {exc}; {target} was not written") from None
    except sqlite3.Error as exc:
        raise OutputWriteError(f"cannot write {target}: {exc}") from None
    except UnicodeEncodeError:  # a lone surrogate, from a journal edited by hand
        raise DatasetIntegrityError(f"a value holds text that is not valid Unicode; {target} was not written") from None
    finally:
        connection.close()


def _settle(tmp: Path, target: Path) -> None:
    """Make the finished database durable and put it in place (keeping a replaced file's mode)."""
    try:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputWriteError(describe_os_error(exc, target)) from None


def _fill(connection: sqlite3.Connection, table: Table, tables: DatasetTables) -> int:
    """Create ``table`` and insert its rows in one transaction; the rows inserted."""
    columns = table_columns(table, tables)
    connection.execute(create_table_sql(table, columns))
    names = ", ".join(quote(c) for c, _ in columns)
    marks = ", ".join("?" * len(columns))
    connection.execute("BEGIN")
    cursor = connection.executemany(f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})",
                                    _rows(tables.records(table.name), [c for c, _ in columns]))
    rows = cursor.rowcount
    for field in table.refs:  # joins look children up by these; "table.field" is never a table's name
        connection.execute(f"CREATE INDEX {quote(f'{table.name}.{field}')} ON {quote(table.name)} ({quote(field)})")
    connection.execute("COMMIT")
    return rows


def _rows(records: Iterator[dict[str, Any]], columns: list[str]) -> Iterator[tuple[Any, ...]]:
    for record in records:
        yield tuple(sql_value(record.get(column)) for column in columns)


def table_columns(table: Table, tables: DatasetTables) -> list[tuple[str, str]]:
    """(name, SQL type) of each column: the schema's fields in order, then any other key
    the records hold (looked for in one pass, unless the schema allows no other keys)."""
    schema = table.schema.schema
    properties = schema.get("properties") or {}
    columns = [(name, column_type(spec)) for name, spec in properties.items()]
    if schema.get("additionalProperties") is not False:
        seen = set(properties)
        for record in tables.records(table.name):
            for key in record:
                if key not in seen:
                    seen.add(key)
                    columns.append((key, ""))
    folded: dict[str, str] = {}
    for name, _ in columns:
        other = folded.setdefault(_fold(name), name)
        if other != name:
            raise UserInputError(f"table {table.name}: fields {other!r} and {name!r} are one column in SQLite, "
                                 "where names ignore case", cli="rename one of them, or export to a folder",
                                 tui="rename one of them, or export to a folder")
    return columns


def column_type(spec: Any) -> str:
    """The SQL type of a field: its JSON Schema type (null aside); none when it has several."""
    types = spec.get("type") if isinstance(spec, dict) else None
    named = [types] if isinstance(types, str) else [t for t in types if t != "null"] if isinstance(types, list) else []
    found = {SQL_TYPES.get(t, "") for t in named if isinstance(t, str)}
    if found == {"INTEGER", "REAL"} and "boolean" not in named:
        return "REAL"
    return found.pop() if len(found) == 1 else ""


def create_table_sql(table: Table, columns: list[tuple[str, str]]) -> str:
    parts = [" ".join([quote(name), *([kind] if kind else []), *(["NOT NULL"] if name == table.primary_key else [])])
             for name, kind in columns]
    if table.primary_key:
        parts.append(f"PRIMARY KEY ({quote(table.primary_key)})")
    for field, ref in table.refs.items():
        parts.append(f"FOREIGN KEY ({quote(field)}) REFERENCES {quote(ref.table)} ({quote(ref.column)})")
    return f"CREATE TABLE {quote(table.name)} (\n  " + ",\n  ".join(parts) + "\n)"


def quote(name: str) -> str:
    """``name`` as an SQL identifier, whatever it holds: double-quoted, quotes doubled."""
    if "\0" in name:
        raise UserInputError(f"the name {name!r} holds a NUL character, which SQLite cannot take")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UserInputError(f"the name {name!r} is not valid Unicode") from None
    return '"' + name.replace('"', '""') + '"'


def _check_table_names(dataset: Dataset) -> None:
    """Table names SQLite takes: none reserved (sqlite_...), no two that differ only in case."""
    folded: dict[str, str] = {}
    for name in dataset.tables:
        if _fold(name).startswith("sqlite_"):
            raise UserInputError(f"table {name}: SQLite keeps names that start with sqlite_ for itself",
                                 cli="rename the table, or export to a folder", tui="rename the table")
        other = folded.setdefault(_fold(name), name)
        if other != name:
            raise UserInputError(f"tables {other!r} and {name!r} are one table in SQLite, where names ignore case",
                                 cli="rename one of them, or export to a folder", tui="rename one of them")


def _fold(name: str) -> str:
    """A name as SQLite compares it: ASCII letters without case."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def sql_value(value: Any) -> Any:
    """A record's value as SQLite stores it: booleans as 0/1, objects and arrays as JSON
    text, a whole number past 64 bits as its digits."""
    if value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if INT64[0] <= value <= INT64[1] else str(value)
    return dumps_json(value)


def _check_references(connection: sqlite3.Connection, dataset: Dataset) -> None:
    """Fail loudly unless every reference resolves (``PRAGMA foreign_key_check`` finds nothing)."""
    broken = connection.execute("PRAGMA foreign_key_check").fetchmany(1000)
    if not broken:
        return
    table, rowid, parent, _ = broken[0]
    more = "1000 or more" if len(broken) == 1000 else str(len(broken))
    raise DatasetIntegrityError(f"{more} rows reference rows that do not exist (first: table {table}, row {rowid}, "
                                f"a reference to {parent}): the database was not written; "
                                "`synth-tui report ID` names the broken references")
