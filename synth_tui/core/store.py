"""History (TinyDB) and record journals: the one place that touches the data directory.

Layout of a data directory::

    history.json            TinyDB: one document per run (never an API key)
    lock                    held by the one process that writes this directory
    runs/<id>/run.json      a copy of the run's document, to rebuild a lost history
    runs/<id>/records.jsonl accepted records, appended as they arrive, fsynced in groups
    runs/<id>/rejects.jsonl rejected model output with its reason, for triage

TinyDB rewrites its whole file on every write and a full disk mid-write destroyed it in
our measurements, so the history goes through :class:`AtomicJSONStorage` (temp file,
fsync, rename) and records never go through TinyDB on the hot path.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from .errors import DataDirLocked, StoreError, UserInputError
from .fileio import check_writable, describe_os_error, write_atomic

STATUSES = ("running", "done", "failed", "cancelled", "interrupted")
RESUMABLE = ("failed", "cancelled", "interrupted")


def now_iso() -> str:
    """UTC time to the millisecond: runs started within one second still sort in order."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def default_data_dir() -> Path:
    env = os.environ.get("SYNTH_TUI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("synth-tui", appauthor=False))


def _describe_os_error(exc: OSError, path: Path | str) -> str:
    return describe_os_error(exc, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file + fsync + rename: the old file survives any failure."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise StoreError(_describe_os_error(exc, path)) from exc


class CorruptHistory(StoreError):
    pass


def _valid_run_doc(doc: Any) -> bool:
    """Whether a history document has the shape every command relies on."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
        return False
    kinds = {"status": str, "created": str, "counts": dict, "backend": dict, "config": dict}
    return all(doc.get(k) is None or isinstance(doc[k], t) for k, t in kinds.items())


def _check_history_shape(data: Any) -> str | None:
    """Why ``data`` is not a TinyDB history of runs, or None if it is one."""
    if not isinstance(data, dict):
        return f"it holds {type(data).__name__ if data is not None else 'null'}, not a JSON object of runs"
    for table, docs in data.items():
        if not isinstance(docs, dict):
            return f"its table {table!r} is not a JSON object"
        for doc_id, doc in docs.items():
            if not str(doc_id).isdigit():
                return f"its table {table!r} has a document id {doc_id!r} that is not a number"
            if table == "_default" and not _valid_run_doc(doc):
                return f"its run document {doc_id} is not a run (no id, or a field of the wrong type)"
    return None


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind. A file that exists
    but is empty, ``null`` or of the wrong shape is corrupt, never "no runs"."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise UserInputError(
                f"the history {self.path} is a directory: move it out of the way (the history is then "
                "rebuilt from runs/), or use --data-dir for another data directory"
            ) from None
        except OSError as exc:
            raise UserInputError(
                f"cannot read the history {self.path}: {exc.strerror or exc}. Check its permissions, "
                "or use --data-dir for another data directory"
            ) from None
        if not raw.strip():
            raise CorruptHistory(f"{self.path} is empty")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptHistory(f"{self.path} is not valid JSON ({exc})") from None
        problem = _check_history_shape(data)
        if problem:
            raise CorruptHistory(f"{self.path} is not a run history: {problem}")
        return data

    def write(self, data: dict[str, Any]) -> None:
        atomic_write_bytes(self.path, json.dumps(data, ensure_ascii=False).encode())

    def close(self) -> None:
        pass


class Journal:
    """Append-only JSONL of accepted records. One writer; fsync every ``group`` records
    or ``interval`` seconds, whichever comes first, so a kill loses at most that much."""

    def __init__(self, path: Path, *, group: int = 50, interval: float = 0.5) -> None:
        self.path = path
        self.group = group
        self.interval = interval
        try:
            _drop_torn_tail(path)
            self._fh = open(path, "ab")
        except OSError as exc:
            raise StoreError(_describe_os_error(exc, path)) from exc
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write ``records`` to the file (flushed to the OS, so a kill of this process
        loses none of them once this returns; the fsync against power loss is batched)."""
        data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
        try:
            self._fh.write(data)
            self._fh.flush()
            self._unsynced += len(records)
            if self._unsynced >= self.group or time.monotonic() - self._last_sync >= self.interval:
                self.sync()
        except OSError as exc:
            raise StoreError(_describe_os_error(exc, self.path)) from exc

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fh.closed:
            return
        try:
            self.sync()
        except OSError as exc:
            raise StoreError(_describe_os_error(exc, self.path)) from exc
        finally:
            with contextlib.suppress(OSError):  # a flush that failed above fails again here
                self._fh.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left half-written, so appends start on a clean line."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else (0 if size <= 65536 else None)
        if keep is None:  # a torn line longer than 64 KiB: find its start the slow way
            fh.seek(0)
            keep = fh.read().rfind(b"\n") + 1
        fh.truncate(keep)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a journal, skipping a torn last line (and any other unreadable line)."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # torn by a kill mid-write
            try:
                yield json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue


def _seek_line(fh: Any, index: int) -> int | None:
    """Byte offset where line ``index`` starts, or None past the end."""
    if index == 0:
        return 0
    seen = 0
    pos = 0
    while chunk := fh.read(1 << 20):
        count = chunk.count(b"\n")
        if seen + count >= index:
            cut = -1
            for _ in range(index - seen):
                cut = chunk.index(b"\n", cut + 1)
            return pos + cut + 1
        seen += count
        pos += len(chunk)
    return None


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "lock"
        self._fh: Any = None

    def acquire(self) -> None:
        try:
            fh = open(self.path, "a+")
        except OSError as exc:
            raise UserInputError(
                f"cannot write the data directory {self.path.parent}: {exc.strerror or exc}. Use --data-dir "
                "(or $SYNTH_TUI_DATA_DIR) for a directory you can write"
            ) from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            fh.close()
            raise DataDirLocked(
                f"another synth-tui process (pid {pid}) is writing {self.path.parent}. "
                "Wait for it to finish, or use --data-dir for a separate directory."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class Store:
    """History and journals of one data directory.

    ``writable=True`` takes the directory's lock (one writing process at a time) and marks
    runs that a crash left ``running`` as ``interrupted``. Read-only stores take no lock.
    All methods are safe to call from several threads of one process.
    """

    def __init__(self, data_dir: str | Path | None = None, *, writable: bool = True) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.writable = writable
        self.warnings: list[str] = []
        self._mutex = threading.RLock()
        self._lock: DataDirLock | None = None
        try:
            (self.data_dir / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"cannot use data directory {self.data_dir}: {exc.strerror or exc}") from None
        if writable:
            self._lock = DataDirLock(self.data_dir)
            self._lock.acquire()
            try:  # a temp file beside the history, as every history write makes
                check_writable(self.data_dir / "lock", force=True)
            except OSError as exc:
                self._lock.release()
                raise UserInputError(
                    f"cannot write the data directory {self.data_dir}: {exc.strerror or exc}. Use --data-dir "
                    "(or $SYNTH_TUI_DATA_DIR) for a directory you can write"
                ) from None
        try:
            self._db = self._open_history()
        except BaseException:
            if self._lock:
                self._lock.release()
            raise
        if writable:
            self._mark_interrupted()

    # -- history -------------------------------------------------------------------------
    def _open_history(self) -> TinyDB:
        path = self.data_dir / "history.json"
        db = TinyDB(path, storage=AtomicJSONStorage)
        try:
            docs = db.all()
        except CorruptHistory as exc:
            db.close()
            if not self.writable:
                self.warnings.append(f"{exc}. Run synth-tui once with write access to repair it.")
                return self._memory_history([], self._saved_runs(set()))
            backup = self._move_aside(path)
            db = TinyDB(path, storage=AtomicJSONStorage)
            found = self._saved_runs(set())
            if found:
                db.insert_multiple(found)
            self.warnings.append(
                f"{exc}. It was moved to {backup}; the history was rebuilt from runs/*/run.json "
                f"({len(found)} run{'s' if len(found) != 1 else ''})."
            )
            return db
        missing = self._saved_runs({d["id"] for d in docs})
        if missing:
            n = len(missing)
            if self.writable:
                db.insert_multiple(missing)
                self.warnings.append(f"{n} run{'s' if n != 1 else ''} missing from {path} "
                                     "were restored from runs/*/run.json.")
            else:
                db.close()
                self.warnings.append(f"{n} run{'s' if n != 1 else ''} missing from {path} are shown from "
                                     "runs/*/run.json; the next synth-tui that writes restores them.")
                return self._memory_history(docs, missing)
        return db

    def _move_aside(self, path: Path) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"history.corrupt-{stamp}.json")
        n = 1
        while backup.exists():
            n += 1
            backup = path.with_name(f"history.corrupt-{stamp}-{n}.json")
        try:
            os.replace(path, backup)
        except OSError as exc:
            raise UserInputError(f"{path} is corrupt and cannot be moved aside: {exc.strerror or exc}") from None
        return backup

    @staticmethod
    def _memory_history(docs: list[dict[str, Any]], more: list[dict[str, Any]]) -> TinyDB:
        db = TinyDB(storage=_MemoryStorage)
        if docs or more:
            db.insert_multiple([dict(d) for d in docs] + more)
        return db

    def _saved_runs(self, known: set[str]) -> list[dict[str, Any]]:
        """The documents in runs/*/run.json of runs not in ``known``, oldest first."""
        docs = []
        for meta in sorted((self.data_dir / "runs").glob("*/run.json")):
            if meta.parent.name in known:
                continue
            with contextlib.suppress(OSError, ValueError):
                doc = json.loads(meta.read_bytes())
                if _valid_run_doc(doc) and doc["id"] == meta.parent.name:
                    docs.append(doc)
        docs.sort(key=lambda d: d.get("created") or "")
        return docs

    def _mark_interrupted(self) -> None:
        for doc in self._db.search(Query().status == "running"):
            self.update_run(
                doc["id"], status="interrupted", error="the process stopped while this run was going on",
                accepted=self.count_records(doc["id"]),
            )

    def create_run(self, doc: dict[str, Any]) -> str:
        self._require_writable()
        run_id = doc.get("id") or new_run_id()
        doc = {**doc, "id": run_id, "created": doc.get("created") or now_iso(), "status": "running"}
        doc.setdefault("records_path", str(self.run_dir(run_id) / "records.jsonl"))
        try:
            self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(_describe_os_error(exc, self.run_dir(run_id))) from exc
        with self._mutex:
            self._db.insert(doc)
            self._write_meta(doc)
        return run_id

    def update_run(self, run_id: str, **fields: Any) -> dict[str, Any]:
        self._require_writable()
        with self._mutex:
            doc = self.get_run(run_id)
            doc.update(fields)
            self._db.update(fields, Query().id == run_id)
            self._write_meta(doc)
            return doc

    def _write_meta(self, doc: dict[str, Any]) -> None:
        path = self.run_dir(doc["id"]) / "run.json"
        if path.parent.is_dir():
            atomic_write_bytes(path, json.dumps(doc, ensure_ascii=False, indent=1).encode())

    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run by id, or by a unique prefix of its id (which may not be empty)."""
        if not run_id or not run_id.strip():
            raise UserInputError("a run id (or the start of one) may not be empty: `synth-tui history` lists them")
        with self._mutex:
            doc = self._db.get(Query().id == run_id)
            if doc is None:
                matches = self._db.search(Query().id.test(lambda v: isinstance(v, str) and v.startswith(run_id)))
                if len(matches) > 1:
                    raise UserInputError(f"run id {run_id!r} is ambiguous: {', '.join(m['id'] for m in matches[:5])}")
                if not matches:
                    raise UserInputError(f"no run with id {run_id!r}: `synth-tui history` lists them")
                doc = matches[0]
            return dict(doc)

    def list_runs(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, optionally of one status."""
        with self._mutex:
            docs = self._db.search(Query().status == status) if status else self._db.all()
        # newest first; runs created in the same millisecond by insertion order
        ordered = sorted(docs, key=lambda d: (d.get("created", ""), d.doc_id), reverse=True)
        docs = [dict(d) for d in ordered]
        return docs[:limit] if limit else docs

    def delete_run(self, run_id: str) -> dict[str, Any]:
        self._require_writable()
        with self._mutex:
            doc = self.get_run(run_id)
            run_dir = self.run_dir(doc["id"])
            try:  # run.json first: a run whose run.json exists comes back at the next start
                (run_dir / "run.json").unlink(missing_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot delete run {doc['id']}: {exc.strerror or exc}") from None
            self._db.remove(Query().id == doc["id"])
        for child in run_dir.glob("*"):
            with contextlib.suppress(OSError):
                child.unlink()
        with contextlib.suppress(OSError):
            run_dir.rmdir()
        return doc

    # -- records -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise UserInputError(f"invalid run id {run_id!r}")
        return self.data_dir / "runs" / run_id

    def records_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "records.jsonl"

    def open_journal(self, run_id: str) -> Journal:
        self._require_writable()
        return Journal(self.records_path(run_id))

    def iter_records(self, run_id: str) -> Iterator[dict[str, Any]]:
        return read_jsonl(self.records_path(run_id))

    def count_records(self, run_id: str) -> int:
        return sum(1 for _ in self.iter_records(run_id))

    def read_page(self, run_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        """Records offset..offset+limit, found by counting newlines in raw 1 MiB chunks
        (no decoding of earlier records), so the last page of 100k is as quick as the first."""
        try:
            fh = open(self.records_path(run_id), "rb")
        except FileNotFoundError:
            return []
        with fh:
            start = _seek_line(fh, offset)
            if start is None:
                return []
            fh.seek(start)
            out = []
            for line in fh:
                if len(out) >= limit or not line.endswith(b"\n"):
                    break
                try:
                    out.append(json.loads(line))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
            return out

    def append_rejections(self, run_id: str, rejections: list[dict[str, Any]]) -> None:
        if not rejections:
            return
        path = self.run_dir(run_id) / "rejects.jsonl"
        try:
            with open(path, "ab") as fh:
                fh.write(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rejections))
        except OSError as exc:
            raise StoreError(_describe_os_error(exc, path)) from exc

    def iter_rejections(self, run_id: str) -> Iterator[dict[str, Any]]:
        return read_jsonl(self.run_dir(run_id) / "rejects.jsonl")

    # -- lifecycle -----------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self.writable:
            raise StoreError("this store was opened read-only")

    def close(self) -> None:
        with self._mutex:
            self._db.close()
        if self._lock:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _MemoryStorage(Storage):
    def __init__(self) -> None:
        self.data: dict[str, Any] | None = None

    def read(self) -> dict[str, Any] | None:
        return self.data

    def write(self, data: dict[str, Any]) -> None:
        self.data = data


def new_run_id() -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"
