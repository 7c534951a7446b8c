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
import errno
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
    if exc.errno == errno.ENOSPC:
        return f"the disk is full while writing {path}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"no permission to write {path}"
    return f"cannot write {path}: {exc.strerror or exc}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file + fsync + rename: the old file survives any failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(_describe_os_error(exc, path)) from exc
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class CorruptHistory(StoreError):
    pass


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptHistory(f"{self.path} is not valid JSON ({exc})") from None

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
        _drop_torn_tail(path)
        try:
            self._fh = open(path, "ab")
        except OSError as exc:
            raise StoreError(_describe_os_error(exc, path)) from exc
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def append(self, records: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
        try:
            self._fh.write(data)
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
        fh = open(self.path, "a+")
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
        self._db = self._open_history()
        if writable:
            self._mark_interrupted()

    # -- history -------------------------------------------------------------------------
    def _open_history(self) -> TinyDB:
        path = self.data_dir / "history.json"
        db = TinyDB(path, storage=AtomicJSONStorage)
        try:
            db.all()
        except CorruptHistory as exc:
            db.close()
            backup = path.with_name(f"history.corrupt-{int(time.time())}.json")
            if self.writable:
                os.replace(path, backup)
                self.warnings.append(f"{exc}. It was moved to {backup}; the history was rebuilt from runs/.")
                db = TinyDB(path, storage=AtomicJSONStorage)
                self._rebuild_history(db)
            else:
                self.warnings.append(f"{exc}. Run synth-tui once with write access to repair it.")
                db = TinyDB(storage=_MemoryStorage)
                self._rebuild_history(db)
        return db

    def _rebuild_history(self, db: TinyDB) -> None:
        docs = []
        for meta in sorted((self.data_dir / "runs").glob("*/run.json")):
            with contextlib.suppress(OSError, json.JSONDecodeError, UnicodeDecodeError):
                docs.append(json.loads(meta.read_text()))
        if docs:
            db.insert_multiple(docs)

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
        """One run by id, or by a unique prefix of its id."""
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
            self._db.remove(Query().id == doc["id"])
        run_dir = self.run_dir(doc["id"])
        for child in run_dir.glob("*"):
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
