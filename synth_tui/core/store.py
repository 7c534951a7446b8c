"""History (TinyDB) and record journals: the one place that touches the data directory.

Layout of a data directory::

    history.json            TinyDB: one document per run (never an API key)
    lock                    flock()ed for the moment of each history write
    runs/<id>/run.json      a copy of the run's document, to rebuild a lost history
    runs/<id>/run.lock      flock()ed by the process generating the run, for as long as it runs
    runs/<id>/records.jsonl accepted records, appended as they arrive, fsynced in groups
    runs/<id>/rejects.jsonl rejected model output with its reason, for triage

TinyDB rewrites its whole file on every write and a full disk mid-write destroyed it in
our measurements, so the history goes through :class:`AtomicJSONStorage` (temp file,
fsync, rename) and records never go through TinyDB on the hot path.

Several processes share a data directory (a TUI left open, a CLI run, a second run):
each history write takes the directory's lock, re-reads the history from disk, changes
it and writes it back, so no process overwrites another's runs; the lock is held for
milliseconds, never while idle. A run in progress is known by its run lock, which the
kernel drops when its process dies: a run left ``running`` whose lock nobody holds was
stopped by a crash or a kill and is marked ``interrupted``.
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
from tinydb.table import Table

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


LOCK_WAIT = 10.0  # how long a history write waits for another process's write, in seconds


def lock_wait_setting() -> float:
    """The wait for the write lock: $SYNTH_TUI_LOCK_WAIT seconds (a slow shared disk may
    want more), else :data:`LOCK_WAIT`."""
    try:
        value = float(os.environ.get("SYNTH_TUI_LOCK_WAIT", ""))
    except ValueError:
        return LOCK_WAIT
    return value if 0 <= value < float("inf") else LOCK_WAIT


class DataDirBusy(DataDirLocked):
    """Another process held the data directory's write lock for longer than the wait.
    ``pid``: that process ("?" if unknown); ``waited``: the seconds waited."""

    def __init__(self, data_dir: Path, pid: str, waited: float) -> None:
        self.data_dir = data_dir
        self.pid = pid
        self.waited = waited
        super().__init__(
            f"the history in {data_dir} is being written by another synth-tui process (pid {pid}), which did "
            f"not finish within {waited:g} s, so nothing was saved. A history write takes a moment: try again, "
            "and if this goes on, that process is stuck; stop it"
        )


class RunInProgress(StoreError, UserInputError):
    """A run that a live process is generating: it cannot be resumed or deleted now (a
    request to change, so the CLI exits 2). ``pid``: that process, or None when it is
    this one."""

    def __init__(self, run_id: str, pid: str | None, doing: str) -> None:
        self.run_id = run_id
        self.pid = pid
        if pid is None:
            message = f"run {run_id} is still being generated, so it cannot be {doing}: cancel it first"
        else:
            message = (f"run {run_id} is being generated by another synth-tui process (pid {pid}), so it cannot "
                       f"be {doing} now: wait for it to finish, or stop it in that process first")
        super().__init__(message)


def _write_pid(fh: Any) -> None:
    with contextlib.suppress(OSError):
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()


def _read_pid(fh: Any) -> str:
    with contextlib.suppress(OSError, ValueError):
        fh.seek(0)
        return fh.read().strip() or "?"
    return "?"


class DataDirLock:
    """The data directory's write lock (``flock`` on ``<data dir>/lock``), taken for the
    moment of one history write and released at once."""

    _pause = staticmethod(time.sleep)  # the wait between two tries (tests watch it)

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "lock"
        self._fh: Any = None

    def acquire(self, wait: float = LOCK_WAIT) -> None:
        """Take the lock, waiting up to ``wait`` seconds for another process to let go
        of it; :class:`DataDirBusy` after that."""
        try:
            fh = open(self.path, "a+")  # close-on-exec: a child process never inherits the lock
        except OSError as exc:
            raise UserInputError(
                f"cannot write the data directory {self.path.parent}: {exc.strerror or exc}. Use --data-dir "
                "(or $SYNTH_TUI_DATA_DIR) for a directory you can write"
            ) from None
        deadline = time.monotonic() + wait
        pause = 0.001
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid = _read_pid(fh)
                    fh.close()
                    raise DataDirBusy(self.path.parent, pid, wait) from None
                self._pause(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.05)
            except BaseException:
                fh.close()
                raise
        _write_pid(fh)
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class RunLock:
    """``runs/<id>/run.lock``, held by the process generating the run for as long as it
    runs. The kernel lets go of it when that process dies, however it dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def try_acquire(self, wait: float = 0.0) -> str | None:
        """Take the lock; if a live process holds it, return that process's pid (after
        retrying for ``wait`` seconds: a reader may be testing it for a moment)."""
        try:
            fh = open(self.path, "a+")  # close-on-exec, as the directory's lock
        except OSError as exc:
            raise StoreError(_describe_os_error(exc, self.path)) from None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid = _read_pid(fh)
                    fh.close()
                    return pid
                time.sleep(0.01)
        _write_pid(fh)
        self._fh = fh
        return None

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def run_lock_holder(path: Path) -> str | None:
    """The pid of the live process that holds the run lock at ``path`` ("?" when it
    wrote none), or None when no process holds it. Needs no write access."""
    try:
        fh = open(path)
    except OSError:
        return None  # no lock file: nobody ever ran it here (or it was deleted)
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fh)
        except OSError:
            return None
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return None


class Store:
    """History and journals of one data directory.

    ``writable=True``: this store may write the history. Each write (create, update or
    delete of a run) takes the directory's lock for its moment, waiting up to
    ``lock_wait`` seconds (default :func:`lock_wait_setting`) for another process's
    write, and works on the history as it is
    on disk then. Opening one repairs the history and marks runs that a crash or a kill
    left ``running`` (no live process holds their run lock) as ``interrupted``.
    Read-only stores take no lock. All methods are safe to call from several threads of
    one process, and several processes may use one directory at once.
    """

    def __init__(self, data_dir: str | Path | None = None, *, writable: bool = True,
                 lock_wait: float | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.writable = writable
        self.lock_wait = lock_wait_setting() if lock_wait is None else lock_wait
        self.warnings: list[str] = []
        self._mutex = threading.RLock()  # TinyDB is not thread-safe: one thread in it at a time
        self._write_mutex = threading.RLock()  # one writing thread per store; taken before the file lock
        self._lock = DataDirLock(self.data_dir)
        self._lock_depth = 0
        self._run_locks: dict[str, RunLock] = {}  # the runs this store is generating
        self._db: TinyDB | None = None
        try:
            (self.data_dir / "runs").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"cannot use data directory {self.data_dir}: {exc.strerror or exc}") from None
        if not writable:
            self._db = self._open_history()
            return
        try:  # a temp file beside the history, as every history write makes
            check_writable(self.data_dir / "lock", force=True)
        except OSError as exc:
            raise UserInputError(
                f"cannot write the data directory {self.data_dir}: {exc.strerror or exc}. Use --data-dir "
                "(or $SYNTH_TUI_DATA_DIR) for a directory you can write"
            ) from None
        with self._writing():
            self._db = self._open_history()
            self._mark_interrupted(self._table().search(Query().status == "running"))

    # -- the write lock ------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self, wait: float | None = None, *, blocking: bool = True) -> Iterator[None]:
        """Hold the directory's write lock (once per store, however deeply nested) and
        start from the history on disk: TinyDB caches query results and the next
        document id, which another process's write makes stale. ``blocking=False``:
        :class:`DataDirLocked` at once if another thread of this process is writing."""
        self._require_writable()
        if not self._write_mutex.acquire(blocking=blocking):
            raise DataDirLocked(f"the history in {self.data_dir} is being written")
        try:
            if self._lock_depth == 0:
                self._lock.acquire(self.lock_wait if wait is None else wait)
            self._lock_depth += 1
            try:
                with self._mutex:
                    if self._lock_depth == 1 and self._db is not None:
                        self._forget_cache()
                    yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    self._lock.release()
        finally:
            self._write_mutex.release()

    def _table(self) -> Table:
        assert self._db is not None
        return self._db.table(self._db.default_table_name)

    def _forget_cache(self) -> None:
        table = self._table()
        table.clear_cache()
        table._next_id = None  # noqa: SLF001 - TinyDB keeps it from its last read; recount from the file

    # -- history -------------------------------------------------------------------------
    def _open_history(self) -> TinyDB:
        path = self.data_dir / "history.json"
        db = _history_db(path)
        try:
            docs = db.all()
        except CorruptHistory as exc:
            db.close()
            if not self.writable:
                self.warnings.append(f"{exc}. Run synth-tui once with write access to repair it.")
                return self._memory_history([], self._saved_runs(set()))
            backup = self._move_aside(path)
            db = _history_db(path)
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

    def run_holder(self, run_id: str) -> str | None:
        """Who is generating run ``run_id`` now: "self" (this store), the pid of another
        live process ("?" if it wrote none), or None (nobody: it is not in progress)."""
        if run_id in self._run_locks:
            return "self"
        return run_lock_holder(self.run_dir(run_id) / "run.lock")

    def is_live(self, run_id: str) -> bool:
        """Whether a live process (this one included) is generating run ``run_id``."""
        return self.run_holder(run_id) is not None

    def _mark_interrupted(self, docs: list[dict[str, Any]]) -> list[str]:
        """Mark the runs of ``docs`` left ``running`` that no live process is generating
        as ``interrupted`` (under the write lock). Returns their ids."""
        marked = []
        for doc in docs:
            if doc.get("status") != "running" or doc["id"] in self._run_locks:
                continue
            try:
                probe = RunLock(self.run_dir(doc["id"]) / "run.lock")
            except UserInputError:
                continue  # an id no run folder can have (an edited history): leave it as it is
            try:
                if probe.try_acquire() is not None:
                    continue  # a live process is generating it
            except StoreError:
                pass  # its folder is gone or cannot be written: no process can be running it
            try:
                current = self._table().get(Query().id == doc["id"])
                if current is not None and current.get("status") == "running":
                    self.update_run(
                        doc["id"], status="interrupted", error="the process stopped while this run was going on",
                        accepted=self.count_records(doc["id"]),
                    )
                    marked.append(doc["id"])
            finally:
                probe.release()
        return marked

    def _reap(self, docs: list[dict[str, Any]]) -> bool:
        """Mark runs of ``docs`` whose process died since this store opened as
        interrupted, if the write lock is free right now (a read never waits for it).
        Returns whether any was marked."""
        def dead(doc: dict[str, Any]) -> bool:
            try:
                return doc.get("status") == "running" and self.run_holder(doc["id"]) is None
            except UserInputError:
                return False  # an id no run folder can have: leave it as it is

        if not self.writable or not any(dead(d) for d in docs):
            return False
        try:
            with self._writing(wait=0, blocking=False):
                return bool(self._mark_interrupted(docs))
        except DataDirLocked:
            return False

    def create_run(self, doc: dict[str, Any]) -> str:
        """Add a run to the history, as ``running``: this store holds its run lock until
        an update gives it another status (or the store closes)."""
        self._require_writable()
        run_id = doc.get("id") or new_run_id()
        doc = {**doc, "id": run_id, "created": doc.get("created") or now_iso(), "status": "running"}
        doc.setdefault("records_path", str(self.run_dir(run_id) / "records.jsonl"))
        try:
            self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(_describe_os_error(exc, self.run_dir(run_id))) from exc
        with self._writing():
            self._take_run_lock(run_id, "started")
            try:
                self._table().insert(doc)
                self._write_meta(doc)
            except BaseException:
                self._release_run_lock(run_id)
                raise
        return run_id

    def update_run(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of a run in the history (re-read under the write lock). Setting
        ``status="running"`` takes the run's lock (:class:`RunInProgress` if a live
        process holds it); any other status lets go of it."""
        with self._writing():
            doc = self._get(run_id)
            run_id = doc["id"]
            starting = fields.get("status") == "running" and run_id not in self._run_locks
            if starting:
                self._take_run_lock(run_id, "resumed")
            try:
                doc.update(fields)
                self._table().update(fields, Query().id == run_id)
                self._write_meta(doc)
            except BaseException:
                if starting:
                    self._release_run_lock(run_id)
                raise
            finally:
                if "status" in fields and fields["status"] != "running":
                    self._release_run_lock(run_id)
            return doc

    def _take_run_lock(self, run_id: str, doing: str) -> None:
        lock = RunLock(self.run_dir(run_id) / "run.lock")
        holder = lock.try_acquire(wait=0.2)
        if holder is not None:
            raise RunInProgress(run_id, holder, doing)
        self._run_locks[run_id] = lock

    def _release_run_lock(self, run_id: str) -> None:
        lock = self._run_locks.pop(run_id, None)
        if lock is not None:
            lock.release()

    def _write_meta(self, doc: dict[str, Any]) -> None:
        path = self.run_dir(doc["id"]) / "run.json"
        if path.parent.is_dir():
            atomic_write_bytes(path, json.dumps(doc, ensure_ascii=False, indent=1).encode())

    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run by id, or by a unique prefix of its id (which may not be empty). A
        writable store reports a run whose process died as ``interrupted``."""
        doc = self._get(run_id)
        if doc.get("status") == "running" and self._reap([doc]):
            doc = self._get(doc["id"])
        return doc

    def _get(self, run_id: str) -> dict[str, Any]:
        if not run_id or not run_id.strip():
            raise UserInputError("a run id (or the start of one) may not be empty: `synth-tui history` lists them")
        with self._mutex:
            table = self._table()
            doc = table.get(Query().id == run_id)
            if doc is None:
                matches = table.search(Query().id.test(lambda v: isinstance(v, str) and v.startswith(run_id)))
                if len(matches) > 1:
                    raise UserInputError(f"run id {run_id!r} is ambiguous: {', '.join(m['id'] for m in matches[:5])}")
                if not matches:
                    raise UserInputError(f"no run with id {run_id!r}: `synth-tui history` lists them")
                doc = matches[0]
            return dict(doc)

    def list_runs(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, optionally of one status. A writable store reports runs
        whose process died as ``interrupted``."""
        with self._mutex:
            docs = self._table().all()
        if self._reap(docs):
            with self._mutex:
                docs = self._table().all()
        if status:
            docs = [d for d in docs if d.get("status") == status]
        # newest first; runs created in the same millisecond by insertion order
        ordered = sorted(docs, key=lambda d: (d.get("created", ""), d.doc_id), reverse=True)
        docs = [dict(d) for d in ordered]
        return docs[:limit] if limit else docs

    def delete_run(self, run_id: str) -> dict[str, Any]:
        """Remove a run and its files; :class:`RunInProgress` while it is being generated."""
        with self._writing():
            doc = self._get(run_id)
            if doc["id"] in self._run_locks:
                raise RunInProgress(doc["id"], None, "deleted")
            run_dir = self.run_dir(doc["id"])
            lock = RunLock(run_dir / "run.lock")
            try:
                holder = lock.try_acquire(wait=0.2) if run_dir.is_dir() else None
            except StoreError:
                holder = None  # a folder we cannot write: nobody runs it; unlink says why below
            if holder is not None:
                raise RunInProgress(doc["id"], holder, "deleted")
            try:
                try:  # run.json first: a run whose run.json exists comes back at the next start
                    (run_dir / "run.json").unlink(missing_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot delete run {doc['id']}: {exc.strerror or exc}") from None
                self._table().remove(Query().id == doc["id"])
            except BaseException:
                lock.release()
                raise
        try:
            for child in run_dir.glob("*"):
                with contextlib.suppress(OSError):
                    child.unlink()
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        finally:
            lock.release()
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
        """Close the history. A run still going keeps its ``running`` status and, its
        lock let go, is marked interrupted by the next store that opens."""
        with self._mutex:
            if self._db is not None:
                self._db.close()
            for run_id in list(self._run_locks):
                self._release_run_lock(run_id)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _history_db(path: Path) -> TinyDB:
    """The history file through the atomic storage, with TinyDB's query cache off:
    another process may change the file between two reads."""
    db = TinyDB(path, storage=AtomicJSONStorage)
    db.table(db.default_table_name, cache_size=0)
    return db


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
