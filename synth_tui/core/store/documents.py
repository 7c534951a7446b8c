"""A run's document: ``runs/<id>/run.json``, a TinyDB file that holds that one document.

The document is the run's record (schema, parameters, backend and model, never a key;
status, counts, errors, timings). Its file is the truth about the run; the history index
holds a copy to list and filter runs without opening their files.

Each write goes through :class:`AtomicJSONStorage` (temp file, fsync, rename), so a
crash or a full disk leaves the previous file whole. A file that exists but is empty,
``null``, not JSON or of the wrong shape is corrupt, never "no run". A ``run.json`` as
the version before the per-run history wrote it (the bare document, not a TinyDB file)
reads as the same document, and the next write turns it into a TinyDB file.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from ..errors import StoreError, UserInputError
from ..fileio import describe_os_error, write_atomic

STATUSES = ("running", "done", "failed", "cancelled", "interrupted", "budget")
RESUMABLE = ("failed", "cancelled", "interrupted", "budget")  # budget: a run stopped at its budget
TABLE = "_default"  # the TinyDB table of a run file, as of the version before's history.json


class CorruptHistory(StoreError):
    pass


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file + fsync + rename: the old file survives any failure."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise StoreError(describe_os_error(exc, path)) from exc


def valid_run_doc(doc: Any) -> bool:
    """Whether a history document has the shape every command relies on."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
        return False
    kinds = {"status": str, "created": str, "counts": dict, "backend": dict, "config": dict}
    return all(doc.get(k) is None or isinstance(doc[k], t) for k, t in kinds.items())


def check_history_shape(data: Any) -> str | None:
    """Why ``data`` is not a TinyDB history of runs, or None if it is one."""
    if not isinstance(data, dict):
        return f"it holds {type(data).__name__ if data is not None else 'null'}, not a JSON object of runs"
    for table, docs in data.items():
        if not isinstance(docs, dict):
            return f"its table {table!r} is not a JSON object"
        for doc_id, doc in docs.items():
            if not str(doc_id).isdigit():
                return f"its table {table!r} has a document id {doc_id!r} that is not a number"
            if table == TABLE and not valid_run_doc(doc):
                return f"its run document {doc_id} is not a run (no id, or a field of the wrong type)"
    return None


MISSING: Any = object()  # read_json_file's answer for a file that does not exist


def unreadable(path: Path, what: str, exc: OSError) -> UserInputError:
    """The message for a history file that is a directory or that we may not read."""
    if isinstance(exc, IsADirectoryError):
        return UserInputError(
            f"the {what} {path} is a directory: move it out of the way (the history is then rebuilt from "
            "runs/), or use another data directory")
    return UserInputError(f"cannot read the {what} {path}: {exc.strerror or exc}. Check its permissions, or use "
                          "another data directory")


def read_json_file(path: Path, what: str) -> Any:
    """The JSON in ``path`` (:data:`MISSING` when there is no such file). A directory or a file we
    may not read is :class:`UserInputError`; an empty or unparsable one :class:`CorruptHistory`."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # NotADirectory: runs/<id> is a file, no run there
        return MISSING
    except OSError as exc:
        raise unreadable(path, what, exc) from None
    if not raw.strip():
        raise CorruptHistory(f"{path} is empty")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or past Python's digit or depth limit
        raise CorruptHistory(f"{path} is not valid JSON ({exc})") from None


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind. A file that exists
    but is empty, ``null`` or of the wrong shape is corrupt, never "no runs"."""

    what = "history"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        data = read_json_file(self.path, self.what)
        if data is MISSING:
            return None
        problem = check_history_shape(data)
        if problem:
            raise CorruptHistory(f"{self.path} is not a run history: {problem}")
        return data

    def write(self, data: dict[str, Any]) -> None:
        atomic_write_bytes(self.path, json.dumps(data, ensure_ascii=False).encode())

    def close(self) -> None:
        pass


class RunFileStorage(AtomicJSONStorage):
    """TinyDB storage of one run's ``run.json``: a TinyDB file with the run's document,
    or the bare document as the version before wrote it (read as the same thing)."""

    what = "run document"

    def read(self) -> dict[str, Any] | None:
        data = read_json_file(self.path, self.what)
        if data is MISSING:
            return None
        if isinstance(data, dict) and TABLE not in data and "id" in data:
            data = {TABLE: {"1": data}}  # the version before's bare copy of the document
        problem = check_history_shape(data)
        if problem or not data.get(TABLE):
            raise CorruptHistory(f"{self.path} is not a run document: {problem or 'it holds no run'}")
        return data

    def write(self, data: dict[str, Any]) -> None:
        atomic_write_bytes(self.path, json.dumps(data, ensure_ascii=False, indent=1).encode())


def read_run_file(path: Path) -> dict[str, Any] | None:
    """The run document in ``path`` (a ``runs/<id>/run.json``), None when there is no
    such file; :class:`CorruptHistory` when it holds no run, or another run than its
    folder's. (Read through the storage alone: an import reads thousands of them.)"""
    data = RunFileStorage(path).read()
    if data is None:
        return None
    doc = dict(next(iter(data[TABLE].values())))
    if doc["id"] != path.parent.name:
        raise CorruptHistory(f"{path} holds run {doc['id']!r}, not {path.parent.name!r}")
    return doc


def write_run_file(path: Path, doc: dict[str, Any]) -> None:
    """Put ``doc`` in its ``run.json`` (TinyDB document 1), atomically: the whole
    document, whatever the file held (a key the document no longer has is gone)."""
    RunFileStorage(path).write({TABLE: {"1": doc}})


def write_run_file_unsynced(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to a new or replaced ``run.json`` without an fsync, for a bulk
    import that syncs the whole file system once at its end (temp file + rename, so a
    crash leaves the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.import.tmp")
    try:
        tmp.write_bytes(json.dumps({TABLE: {"1": doc}}, ensure_ascii=False, indent=1).encode())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise StoreError(describe_os_error(exc, path)) from exc


# -- what the index keeps of a document ---------------------------------------------------
def created_ts(created: Any) -> float:
    """Seconds since the epoch of a document's ``created`` (UTC when it names no zone);
    0 when it has none or it is not a time, so such runs sort oldest."""
    if not isinstance(created, str) or not created:
        return 0.0
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    value = when.timestamp()
    return value if math.isfinite(value) else 0.0


def _field_names(schema: Any, out: list[str], depth: int = 0) -> None:
    if not isinstance(schema, dict) or depth > 6 or len(out) > 200:
        return
    props = schema.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            out.append(str(name))
            _field_names(sub, out, depth + 1)
    items = schema.get("items")
    if isinstance(items, dict):
        _field_names(items, out, depth + 1)
    if depth == 0 and not isinstance(props, dict):  # the short form: field names at the top
        for name, sub in schema.items():
            if isinstance(sub, dict) and not name.startswith("$") and name not in ("items", "definitions", "$defs"):
                out.append(str(name))


def search_text(doc: dict[str, Any]) -> str:
    """What ``search`` looks in: the schema's title, its field names, the backend and
    the model; case-folded."""
    schema = doc.get("schema")
    parts: list[str] = []
    if isinstance(schema, dict):
        title = schema.get("title")
        if isinstance(title, str):
            parts.append(title)
        _field_names(schema, parts)
    backend = doc.get("backend")
    if isinstance(backend, dict):
        parts += [str(backend.get(k)) for k in ("backend", "model") if backend.get(k)]
    return "\n".join(parts).casefold()[:8192]
