"""The history index: ``index.sqlite``, what listing, filtering and paging the history
read, so that none of them opens a run's file or holds every run in memory.

One row per run: its id, when it was created, its status, the text a search looks in,
and a copy of its document (in a table of its own, so that scans and sorts read only the
small rows). The runs' own files (``runs/<id>/run.json``) are the truth: the index is
rebuilt from them when it is lost or corrupt, and a run file that is lost or corrupt is
restored from the index's copy.

A write marks its row ``dirty`` in the index (and syncs that to disk) before the run's
file changes, and clears the mark after. A row still marked when a writer opens the
directory was being written by a process that died: it is read again from its file
(``DELETING``: the run was being deleted, and the delete is finished).

SQLite keeps its rollback journal (not WAL) so that a read-only directory can be read
and a network file system works; its own locks let readers and the one writer share the
file. Each cost is that of the rows touched, whatever the number of runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import StoreError
from .documents import created_ts, search_text, unreadable

VERSION = 2  # PRAGMA user_version of an index; the version before kept history.json
CLEAN, WRITING, DELETING = 0, 1, 2  # a row's ``dirty``
PAGE_SIZE = 1024  # small pages: a new directory's index is ~10 KB; a run's copy takes two

SCHEMA = """
CREATE TABLE runs (
    seq INTEGER PRIMARY KEY,        -- order of arrival: runs created in one millisecond
    id TEXT NOT NULL UNIQUE,
    created_ts REAL NOT NULL,       -- seconds since the epoch (0: unknown)
    status TEXT NOT NULL,
    search TEXT NOT NULL,           -- case-folded schema title, field names, backend, model
    dirty INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_time ON runs (created_ts, seq);
CREATE INDEX runs_by_status ON runs (status, created_ts, seq);
CREATE INDEX runs_dirty ON runs (dirty) WHERE dirty != 0;
CREATE TABLE docs (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

CORRUPT_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CORRUPT_INDEX", "SQLITE_CORRUPT_SEQUENCE",
                 "SQLITE_CORRUPT_VTAB"}


class CorruptIndex(StoreError):
    """The index file is not an index of runs (or SQLite found it damaged)."""


@dataclass(frozen=True)
class RunFilter:
    """Which runs: of these statuses (None: any), created at or after ``since`` and
    before ``before`` (seconds since the epoch), whose search text holds ``search``."""

    statuses: tuple[str, ...] | None = None
    since: float | None = None
    before: float | None = None
    search: str | None = None

    @classmethod
    def make(cls, status: str | Iterable[str] | None = None, *, since: float | None = None,
             before: float | None = None, search: str | None = None) -> RunFilter:
        statuses = (status,) if isinstance(status, str) else (tuple(status) if status else None)
        return cls(statuses or None, since, before, search.casefold() if search else None)

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.statuses:
            clauses.append(f"r.status IN ({', '.join('?' * len(self.statuses))})")
            args += list(self.statuses)
        if self.since is not None:
            clauses.append("r.created_ts >= ?")
            args.append(self.since)
        if self.before is not None:
            clauses.append("r.created_ts < ?")
            args.append(self.before)
        if self.search:
            clauses.append("instr(r.search, ?) > 0")
            args.append(self.search)
        return (" AND ".join(clauses) or "1"), args


def _row(doc: dict[str, Any]) -> tuple[str, float, str, str]:
    return doc["id"], created_ts(doc.get("created")), str(doc.get("status") or ""), search_text(doc)


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False)


class IndexFile:
    """One SQLite connection to an index file (or to memory, ``path=None``), safe to use
    from several threads of one process: the file opened without ever being created by a
    reader, checked to be an index of runs (its tables made in a new file), and SQLite's
    errors turned into :class:`StoreError` (:class:`CorruptIndex` for damage)."""

    def __init__(self, path: Path | None, *, writable: bool, timeout: float = 10.0) -> None:
        self.path = path
        self.writable = writable or path is None
        self._mutex = threading.RLock()
        self._db = self._connect(path, writable, timeout)
        try:
            self._check()
            self.inode = os.stat(path).st_ino if path is not None else None
        except BaseException:
            self._db.close()
            raise

    def replaced(self) -> bool:
        """Whether the file at this index's path is another one now (a store of another
        process rebuilt it): this connection reads the old one."""
        if self.path is None:
            return False
        try:
            return os.stat(self.path).st_ino != self.inode
        except OSError:
            return True

    def _connect(self, path: Path | None, writable: bool, timeout: float) -> sqlite3.Connection:
        if path is None:
            return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if writable:
            try:
                return sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
            except sqlite3.Error as exc:
                raise self._error(exc, "open") from None
        try:  # never creates the file, never writes; a directory we may not write can be read
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise unreadable(path, "history index", exc) from None
        uri = f"file:{quote(str(path))}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA user_version").fetchone()
            return db
        except sqlite3.Error:
            # a hot journal it may not roll back (a read-only directory): read the file as it is
            db = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
            return db

    def _check(self) -> None:
        """Create the tables in a new (or empty) file; :class:`CorruptIndex` for a file
        that is no index of runs."""
        with self._mutex:
            try:
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            except sqlite3.Error as exc:
                raise self._error(exc, "read") from None
            if version == 0 and not tables:
                if not self.writable:
                    raise CorruptIndex(f"{self.path} holds no runs yet")
                try:
                    self._db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                    self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # prune gives the space back
                    self._db.executescript(f"BEGIN; {SCHEMA}; PRAGMA user_version = {VERSION}; COMMIT;")
                except sqlite3.Error as exc:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise self._error(exc, "write") from None
            elif version != VERSION or not {"runs", "docs", "meta"} <= tables:
                raise CorruptIndex(f"{self.path} is not a history index of this version (version {version})")

    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        name = getattr(exc, "sqlite_errorname", "")
        where = self.path or "the history index in memory"
        if name in CORRUPT_CODES or "malformed" in str(exc) or "not a database" in str(exc):
            return CorruptIndex(f"{where} is damaged ({exc})")
        if doing == "read":
            return StoreError(f"cannot read the history index {where}: {exc}")
        return StoreError(f"cannot {doing} {where}: {exc}")

    def close(self) -> None:
        with self._mutex:
            self._db.close()

    @contextlib.contextmanager
    def tx(self, *, sync: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``sync``: on disk when it returns (else SQLite's
        NORMAL: the order of commits survives a power cut, the last may not)."""
        with self._mutex:
            try:
                self._db.execute(f"PRAGMA synchronous = {'FULL' if sync else 'NORMAL'}")
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc, "write") from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc, "write") from None
                raise

    def read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._mutex:
            try:
                return self._db.execute(sql, tuple(args)).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc, "read") from None

    def give_back_space(self) -> None:
        """Return the pages that deleted rows left free to the file system."""
        with self._mutex:
            try:
                self._db.execute("PRAGMA incremental_vacuum")
            except sqlite3.Error as exc:
                raise self._error(exc, "write") from None

    def size(self) -> int:
        """Bytes the index file takes."""
        rows = self.read("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
        return int(rows[0][0])


class HistoryIndex:
    """The rows of the runs in an index file (or in memory, ``path=None``). Writes happen
    only under the data directory's write lock, which the caller holds."""

    def __init__(self, path: Path | None, *, writable: bool, timeout: float = 10.0) -> None:
        self._file = IndexFile(path, writable=writable, timeout=timeout)
        self.path = path
        self.writable = self._file.writable
        self._tx = self._file.tx
        self._read = self._file.read

    def replaced(self) -> bool:
        return self._file.replaced()

    def close(self) -> None:
        self._file.close()

    def size(self) -> int:
        return self._file.size()

    def give_back_space(self) -> None:
        self._file.give_back_space()

    # -- writing -------------------------------------------------------------------------
    @staticmethod
    def _put(db: sqlite3.Connection, doc: dict[str, Any], dirty: int) -> None:
        run_id, ts, status, search = _row(doc)
        db.execute(
            "INSERT INTO runs (id, created_ts, status, search, dirty) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET created_ts = excluded.created_ts, status = excluded.status, "
            "search = excluded.search, dirty = excluded.dirty",
            (run_id, ts, status, search, dirty))
        (seq,) = db.execute("SELECT seq FROM runs WHERE id = ?", (run_id,)).fetchone()
        db.execute("INSERT OR REPLACE INTO docs (seq, doc) VALUES (?, ?)", (seq, _dumps(doc)))

    def put(self, doc: dict[str, Any], *, dirty: int = CLEAN, meta: dict[str, str] | None = None,
            sync: bool = True) -> None:
        """Add or replace a run's row and its copy of the document."""
        with self._tx(sync=sync) as db:
            self._put(db, doc, dirty)
            for key, value in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def put_many(self, docs: Iterable[dict[str, Any]], *, meta: dict[str, str] | None = None) -> int:
        """Add or replace many rows in one transaction (an import, a rebuild)."""
        n = 0
        with self._tx() as db:
            for doc in docs:
                self._put(db, doc, CLEAN)
                n += 1
            for key, value in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return n

    def set_dirty(self, run_ids: Iterable[str], dirty: int, *, sync: bool = True) -> None:
        ids = list(run_ids)
        with self._tx(sync=sync) as db:
            db.executemany("UPDATE runs SET dirty = ? WHERE id = ?", [(dirty, i) for i in ids])

    def remove(self, run_ids: Iterable[str], *, meta: dict[str, str] | None = None) -> None:
        ids = list(run_ids)
        with self._tx() as db:
            for run_id in ids:
                row = db.execute("SELECT seq FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row:
                    db.execute("DELETE FROM docs WHERE seq = ?", row)
                    db.execute("DELETE FROM runs WHERE seq = ?", row)
            for key, value in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def set_meta(self, key: str, value: str) -> None:
        with self._tx(sync=False) as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def clear(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM docs")
            db.execute("DELETE FROM runs")

    # -- reading -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def get(self, run_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT d.doc FROM runs r JOIN docs d ON d.seq = r.seq WHERE r.id = ?", (run_id,))
        return json.loads(rows[0][0]) if rows else None

    def has(self, run_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM runs WHERE id = ?", (run_id,)))

    def dirty_of(self, run_id: str) -> int | None:
        rows = self._read("SELECT dirty FROM runs WHERE id = ?", (run_id,))
        return rows[0][0] if rows else None

    def with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Ids that start with ``prefix``, in order (at most ``limit``)."""
        rows = self._read("SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                          (prefix, prefix + "\U0010ffff", limit))
        return [r[0] for r in rows]

    def unsettled(self) -> list[tuple[str, str, int]]:
        """(id, status, dirty) of the rows marked dirty or ``running``: those a writer
        looks at when it opens the directory."""
        return [(r[0], r[1], r[2]) for r in self._read(
            "SELECT id, status, dirty FROM runs WHERE dirty != 0 UNION "
            "SELECT id, status, dirty FROM runs WHERE status = 'running'")]

    def running(self) -> list[str]:
        return [r[0] for r in self._read("SELECT id FROM runs WHERE status = 'running'")]

    def all_ids(self) -> Iterator[str]:
        last = -1
        while True:
            rows = self._read("SELECT seq, id FROM runs WHERE seq > ? ORDER BY seq LIMIT 5000", (last,))
            if not rows:
                return
            yield from (r[1] for r in rows)
            last = rows[-1][0]

    def query(self, where: RunFilter, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Documents of the runs ``where`` selects, newest first (runs created in the
        same instant: the later first)."""
        clause, args = where.where()
        rows = self._read(
            f"SELECT d.doc FROM runs r JOIN docs d ON d.seq = r.seq WHERE {clause} "
            "ORDER BY r.created_ts DESC, r.seq DESC LIMIT ? OFFSET ?",
            [*args, -1 if limit is None else limit, max(0, offset)])
        return [json.loads(r[0]) for r in rows]

    def count(self, where: RunFilter) -> int:
        clause, args = where.where()
        return int(self._read(f"SELECT count(*) FROM runs r WHERE {clause}", args)[0][0])

    def position(self, run_id: str, where: RunFilter) -> int | None:
        """Where run ``run_id`` stands in ``query(where)`` (0: first), or None when it is
        not among those runs."""
        clause, args = where.where()
        me = self._read(f"SELECT r.created_ts, r.seq FROM runs r WHERE r.id = ? AND {clause}", [run_id, *args])
        if not me:
            return None
        ts, seq = me[0]
        return int(self._read(
            f"SELECT count(*) FROM runs r WHERE {clause} AND (r.created_ts > ? OR (r.created_ts = ? AND r.seq > ?))",
            [*args, ts, ts, seq])[0][0])

    def oldest_first(self, where: RunFilter, after: tuple[float, int] | None, limit: int,
                     newer_than_kept: tuple[float, int] | None = None) -> list[tuple[str, float, int, str]]:
        """(id, created_ts, seq, doc) of up to ``limit`` runs ``where`` selects, oldest
        first, after the run at ``after`` (created_ts, seq) and before the one at
        ``newer_than_kept``: one batch of a prune."""
        clause, args = where.where()
        if after is not None:
            clause += " AND (r.created_ts > ? OR (r.created_ts = ? AND r.seq > ?))"
            args += [after[0], after[0], after[1]]
        if newer_than_kept is not None:
            clause += " AND (r.created_ts < ? OR (r.created_ts = ? AND r.seq < ?))"
            args += [newer_than_kept[0], newer_than_kept[0], newer_than_kept[1]]
        rows = self._read(
            f"SELECT r.id, r.created_ts, r.seq, d.doc FROM runs r JOIN docs d ON d.seq = r.seq WHERE {clause} "
            "ORDER BY r.created_ts, r.seq LIMIT ?", [*args, limit])
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def nth_newest(self, where: RunFilter, n: int) -> tuple[float, int] | None:
        """(created_ts, seq) of the ``n``-th newest run ``where`` selects (1: the newest)."""
        clause, args = where.where()
        rows = self._read(f"SELECT r.created_ts, r.seq FROM runs r WHERE {clause} "
                          "ORDER BY r.created_ts DESC, r.seq DESC LIMIT 1 OFFSET ?", [*args, n - 1])
        return (rows[0][0], rows[0][1]) if rows else None
