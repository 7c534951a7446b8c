"""Streaming CSV / JSON / JSONL writers. Memory stays bounded whatever the run's size.

CSV flattens nested objects into dotted columns (``address.city``) and writes arrays as
JSON text. Columns come from the schema first, then any extra keys found in the records
(one extra pass over the records, which are re-read from their journal, not held).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

from .errors import UserInputError

FORMATS = ("jsonl", "json", "csv")
RecordSource = Callable[[], Iterable[dict[str, Any]]]


def guess_format(path: str | Path | None, default: str = "jsonl") -> str:
    if path:
        suffix = Path(path).suffix.lower().lstrip(".")
        if suffix in FORMATS:
            return suffix
    return default


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def schema_columns(schema: dict[str, Any] | None, prefix: str = "") -> list[str]:
    cols: list[str] = []
    for name, spec in ((schema or {}).get("properties") or {}).items():
        if isinstance(spec, dict) and spec.get("type") == "object" and spec.get("properties"):
            cols.extend(schema_columns(spec, f"{prefix}{name}."))
        else:
            cols.append(f"{prefix}{name}")
    return cols


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def write_records(records: RecordSource, out: TextIO, fmt: str, schema: dict[str, Any] | None = None) -> int:
    """Write every record to ``out`` in ``fmt``; returns how many were written."""
    if fmt == "jsonl":
        n = 0
        for record in records():
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
        return n
    if fmt == "json":
        n = 0
        out.write("[")
        for record in records():
            out.write(("\n  " if n == 0 else ",\n  ") + json.dumps(record, ensure_ascii=False))
            n += 1
        out.write("\n]\n" if n else "]\n")
        return n
    if fmt == "csv":
        columns = schema_columns(schema)
        known = set(columns)
        for record in records():  # first pass: keys the schema did not name
            for key in flatten(record):
                if key not in known:
                    known.add(key)
                    columns.append(key)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        n = 0
        for record in records():
            flat = flatten(record)
            writer.writerow([csv_cell(flat.get(col)) for col in columns])
            n += 1
        return n
    raise UserInputError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")


def export_to_path(
    records: RecordSource, path: str | Path, fmt: str | None = None, *,
    schema: dict[str, Any] | None = None, force: bool = False,
) -> int:
    """Export to a file atomically (a temp file renamed into place). Refuses to overwrite
    an existing file unless ``force``."""
    target = Path(path).expanduser()
    fmt = fmt or guess_format(target)
    if fmt not in FORMATS:
        raise UserInputError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if target.exists() and not force:
        raise UserInputError(f"{target} already exists: choose another name or use --force to overwrite it")
    if target.is_dir():
        raise UserInputError(f"{target} is a directory: give a file name")
    tmp = target.with_name(f".{target.name}.part")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            n = write_records(records, fh, fmt, schema)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        reason = "the disk is full" if exc.errno == 28 else (exc.strerror or str(exc))
        raise UserInputError(f"cannot write {target}: {reason}") from None
    return n


def export_to_stdout(records: RecordSource, fmt: str, schema: dict[str, Any] | None = None) -> int:
    out = sys.stdout
    if isinstance(out, io.TextIOWrapper):
        out.reconfigure(newline="")
    return write_records(records, out, fmt, schema)
