"""Streaming CSV / JSON / JSONL writers. Memory stays bounded whatever the run's size.

CSV flattens nested objects into dotted columns (``address.city``) and writes arrays as
JSON text. Columns come from the schema first, then any extra keys found in the records
(one extra pass over the records, which are re-read from their journal, not held).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO, cast

from .errors import SynthError, UserInputError
from .fileio import check_writable, describe_os_error, replace_file
from .textsafe import NON_C0_CONTROLS

FORMATS = ("jsonl", "json", "csv")
RecordSource = Callable[[], Iterable[dict[str, Any]]]


class OutputWriteError(SynthError):
    """The output could not be written (a full disk, a closed or failing stdout). Not bad
    input: the CLI exits 1 and says where the records are kept."""


# DEL, C1 and the bidi controls: the characters beyond C0 that textsafe makes visible on screen
_JSON_SAFE = {c: f"\\u{c:04x}" for c in NON_C0_CONTROLS}


def dumps_json(value: Any, **kw: Any) -> str:
    """JSON text of ``value`` that holds no character a terminal acts on: JSON escapes C0
    controls itself; DEL, C1 codes and bidi overrides (which it would leave raw, and which
    can only occur inside strings) are written as ``\\uXXXX`` too. The data is exactly the
    same once parsed; only its spelling differs."""
    return safe_json_text(json.dumps(value, ensure_ascii=False, **kw))


def safe_json_text(text: str) -> str:
    """Valid JSON text with DEL, C1 and bidi controls written as ``\\uXXXX`` escapes: the
    same JSON value, nothing a terminal acts on (raw C0 cannot occur in valid JSON)."""
    return text.translate(_JSON_SAFE)


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
            out.write(dumps_json(record) + "\n")
            n += 1
        return n
    if fmt == "json":
        n = 0
        out.write("[")
        for record in records():
            out.write(("\n  " if n == 0 else ",\n  ") + dumps_json(record))
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


def check_output_path(path: str | Path, *, force: bool = False) -> None:
    """Raise UserInputError unless ``path`` can be written (before a run, not after it):
    an existing regular file needs ``force``; a FIFO, device or ``/dev/stdout`` is written
    through and needs none; a directory or a missing folder is an error."""
    target = Path(path).expanduser()
    try:
        check_writable(target, force=force)
    except FileExistsError:
        raise UserInputError(f"{target} already exists", cli="choose another name or use --force to overwrite it",
                             tui="choose another name, or export again to overwrite it") from None
    except OSError as exc:
        raise UserInputError(describe_os_error(exc, target)) from None


def export_to_path(
    records: RecordSource, path: str | Path, fmt: str | None = None, *,
    schema: dict[str, Any] | None = None, force: bool = False,
) -> int:
    """Export to a file atomically (a temp file with a unique name renamed into place); a
    FIFO, a device or ``/dev/stdout`` is written through. Refuses to overwrite an existing
    regular file unless ``force``. A path that cannot be written is a UserInputError; a
    write that fails on the way (a full disk) an OutputWriteError."""
    target = Path(path).expanduser()
    fmt = fmt or guess_format(target)
    if fmt not in FORMATS:
        raise UserInputError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    check_output_path(target, force=force)
    try:
        with replace_file(target, newline="") as fh:
            return write_records(records, cast(TextIO, fh), fmt, schema)  # opened in text mode
    except OSError as exc:
        raise OutputWriteError(describe_os_error(exc, target)) from None


def export_to_stdout(records: RecordSource, fmt: str, schema: dict[str, Any] | None = None) -> int:
    """Write to standard output; a failed write (``> /dev/full``) is an OutputWriteError."""
    out = sys.stdout
    try:
        if isinstance(out, io.TextIOWrapper):
            out.reconfigure(newline="")
        n = write_records(records, out, fmt, schema)
        out.flush()
        return n
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputWriteError(f"cannot write to standard output: {exc.strerror or exc}") from None
