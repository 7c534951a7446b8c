"""The history and the record journals: the one place that touches the data directory.

Layout of a data directory::

    index.sqlite             the history index: a row and a copy of the document of every run,
                             for listing, filtering and paging (rebuilt from runs/ when lost)
    lock                     flock()ed for the moment of each history write
    runs/<id>/run.json       the run's document: a TinyDB file that holds it (never an API key)
    runs/<id>/run.lock       flock()ed by the process generating the run, for as long as it runs
    runs/<id>/records.jsonl  accepted records, appended as they arrive, fsynced in groups
    runs/<id>/rejects.jsonl  rejected model output with its reason, for triage
    history.migrated-*.json  the version before's history, kept after its migration

Every change to a run writes that run's file and its row in the index, and nothing
else, so a progress save costs the same beside 100 runs or 100,000; reading a page of
runs reads that page from the index. Writes go through a temp file, an fsync and a
rename (run files, :mod:`.documents`) or an SQLite transaction (the index,
:mod:`.index`): a crash or a full disk leaves the previous state whole. A run file is
the truth; the index is rebuilt from the run files when it is lost or corrupt, and a
write marks its index row before it touches the run file, so a writer that died half
way is finished, or undone, by the next one. Records never go through either on the hot
path (:mod:`.journal`).

Several processes share a data directory (a TUI left open, a CLI run, a second run):
each history write takes the directory's lock (:mod:`.locks`) for its moment, never
while idle. A run in progress is known by its run lock, which the kernel drops when its
process dies: a run left ``running`` whose lock nobody holds was stopped by a crash or a
kill and is marked ``interrupted``.

A directory of the version before (``history.json``, one TinyDB file of every run,
rewritten whole on each change) is migrated by the first store that may write it: the
new index is built beside it and put in place with a rename, and only then is
``history.json`` moved aside, so a crash at any moment leaves a directory that either
version reads in full (:mod:`.rebuild`, :mod:`.migrate`). A store that may not write
reads the old file as it is.

The parts, each a module: :mod:`.files` (the run folders), :mod:`.opening` (the index,
opened, reopened and rebuilt as needed), :mod:`.repair` (index and files brought into
agreement), :mod:`.writes` (documents written), :mod:`.progress` (progress written off
the caller's thread) and :mod:`.prune` (delete and prune); :class:`Store` composes them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from ..errors import DataDirLocked, StoreError, UserInputError
from ..fileio import check_writable
from .documents import RESUMABLE, STATUSES, AtomicJSONStorage, CorruptHistory, atomic_write_bytes
from .files import RunFiles
from .index import CorruptIndex, HistoryIndex, RunFilter
from .journal import Journal, _drop_torn_tail, _seek_line, read_jsonl
from .locks import (
    LOCK_WAIT,
    DataDirBusy,
    DataDirLock,
    HeldRuns,
    RunInProgress,
    RunLock,
    WriteGate,
    lock_wait_setting,
    run_lock_holder,
)
from .opening import OpenIndex
from .progress import ProgressWriter
from .prune import PruneResult, Remover, check_prune_request
from .rundoc import RunBackend, RunCounts, RunDoc
from .writes import RunWriter

__all__ = [
    "LOCK_WAIT", "RESUMABLE", "STATUSES", "AtomicJSONStorage", "CorruptHistory", "CorruptIndex", "DataDirBusy",
    "DataDirLock", "Journal", "PruneResult", "RunBackend", "RunCounts", "RunDoc", "RunFilter", "RunInProgress",
    "RunLock", "Store", "atomic_write_bytes",
    "default_data_dir", "lock_wait_setting", "new_run_id", "now_iso", "read_jsonl", "run_lock_holder",
    "_drop_torn_tail", "_seek_line",
]


def now_iso() -> str:
    """UTC time to the millisecond: runs started within one second still sort in order."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def default_data_dir() -> Path:
    env = os.environ.get("SYNTH_TUI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("synth-tui", appauthor=False))


def new_run_id() -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


class Store:
    """History and journals of one data directory.

    ``writable=True``: this store may write the history. Each write (create, update or
    delete of a run) takes the directory's lock for its moment, waiting up to
    ``lock_wait`` seconds (default :func:`lock_wait_setting`) for another process's
    write. Opening one migrates a directory of the version before, repairs the index,
    and marks runs that a crash or a kill left ``running`` (no live process holds their
    run lock) as ``interrupted``. Read-only stores take no lock and write nothing. All
    methods are safe to call from several threads of one process, and several processes
    may use one directory at once. The store reads runs itself and hands the rest to
    its parts (see the module's docstring).
    """

    def __init__(self, data_dir: str | Path | None = None, *, writable: bool = True,
                 lock_wait: float | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.writable = writable
        self.lock_wait = lock_wait_setting() if lock_wait is None else lock_wait
        self.warnings: list[str] = []
        self.files = RunFiles(self.data_dir, self.warnings)
        self._gate = WriteGate(self.data_dir, writable=writable, wait=self.lock_wait)
        self._held = HeldRuns(self.files.lock_path)  # the runs this store is generating
        self._index = OpenIndex(self.data_dir, self.files, self._gate, self.warnings)
        self._progress = ProgressWriter(self._gate.mutex, self._write_progress, lambda run_id: run_id in self._held)
        self._writer = RunWriter(self.files, self.index, self._gate, self._held, find=self._get,
                                 read=self._read_doc, waiting=self._progress.take)
        self._remover = Remover(self.files, self.index, self._gate, self._held, read=self._read_doc)
        self.files.make()
        if not writable:
            self._index.open_for_reading()
            return
        try:  # a temp file beside the history, as every history write makes
            check_writable(self.data_dir / "lock", force=True)
        except OSError as exc:
            raise UserInputError(
                f"cannot write the data directory {self.data_dir}: {exc.strerror or exc}. Use --data-dir "
                "(or $SYNTH_TUI_DATA_DIR) for a directory you can write"
            ) from None
        with self._gate.hold():
            self._index.open_for_writing()
            self._writer.mark_interrupted(self.index.running())

    @property
    def index(self) -> HistoryIndex:
        """The index, through a guard that reopens it when another process rebuilt it and
        rebuilds (or, read-only, replaces in memory) one that turns out damaged."""
        return cast(HistoryIndex, self._index)

    # -- writing runs --------------------------------------------------------------------
    def create_run(self, doc: RunDoc | dict[str, Any]) -> str:
        """Add a run to the history, as ``running`` (``doc``: its document's fields; a new
        id unless it has one): this store holds its run lock until an update gives it
        another status (or the store closes)."""
        self._gate.require_writable()
        fields = doc.to_dict() if isinstance(doc, RunDoc) else dict(doc)
        run_id = fields.get("id") or new_run_id()
        fields.update(id=run_id, created=fields.get("created") or now_iso(), status="running")
        fields["records_path"] = fields.get("records_path") or str(self.files.records_path(run_id))
        return self._writer.create(RunDoc.from_dict(fields))

    def update_run(self, run_id: str, **fields: Any) -> RunDoc:
        """Change fields of a run (its file re-read under the write lock). Setting
        ``status="running"`` takes the run's lock (:class:`RunInProgress` if a live
        process holds it); any other status lets go of it. Progress saved with
        :meth:`save_progress` and not written yet is written with these fields."""
        return self._writer.update(run_id, fields)

    def import_runs(self, docs: Iterable[RunDoc | dict[str, Any]]) -> int:
        """Add finished runs' documents in bulk (another data directory's, a test's, a
        benchmark's), as they are: their files written without an fsync each, the file
        system synced once, then the index in one transaction. A document with the id of
        a run already here replaces it. Returns how many were added."""
        return self._writer.import_runs(d.to_dict() if isinstance(d, RunDoc) else d for d in docs)

    def save_progress(self, run_id: str, **fields: Any) -> None:
        """Update a running run's fields (its counts) without waiting: a thread of this
        store writes them, the latest of each run only. Never blocks on the disk or the
        lock, so it may be called from an event loop. A write that failed is raised by the
        next call for that run; :meth:`update_run` and :meth:`close` write what waits."""
        self._progress.save(run_id, fields)

    def flush_progress(self) -> None:
        """Write the progress that waits, now, in this thread."""
        self._progress.flush()

    def _write_progress(self, run_id: str, fields: dict[str, Any]) -> None:
        self.update_run(run_id, **fields)

    # -- runs in progress ----------------------------------------------------------------
    def is_live(self, run_id: str) -> bool:
        """Whether a live process (this one included) is generating run ``run_id``."""
        return self._held.holder(run_id) is not None

    # -- reading runs --------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunDoc:
        """One run by id, or by a unique prefix of its id (which may not be empty), read
        from its own file. A writable store reports a run whose process died as
        ``interrupted``."""
        doc = self._get(run_id)
        if doc.status == "running" and self._writer.reap():
            doc = self._get(doc.id)
        return doc

    def _read_doc(self, run_id: str) -> RunDoc | None:
        """Run ``run_id``'s document from its file; the index's copy when the file is
        lost or corrupt (None when neither has it)."""
        try:
            self.files.run_dir(run_id)
        except UserInputError:
            return None
        try:
            doc = self.files.read(run_id)
        except CorruptHistory as exc:
            doc = self.index.get(run_id)
            if doc is not None and self.writable:
                with contextlib.suppress(StoreError, DataDirLocked), self._gate.hold(wait=0, blocking=False):
                    self._index.repair.restore(self.index, run_id, exc)
        else:
            doc = doc if doc is not None else self.index.get(run_id)
        return None if doc is None else RunDoc.from_dict(doc)

    def _get(self, run_id: str) -> RunDoc:
        if not run_id or not run_id.strip():
            raise UserInputError("a run id (or the start of one) may not be empty: the history lists them")
        doc = self._read_doc(run_id)
        if doc is not None:
            return doc
        matches = self.index.with_prefix(run_id, 6)
        if len(matches) > 1:
            raise UserInputError(f"run id {run_id!r} is ambiguous: {', '.join(matches[:5])}")
        doc = self._read_doc(matches[0]) if matches else None
        if doc is None:
            raise UserInputError(f"no run with id {run_id!r}: the history lists them")
        return doc

    def list_runs(self, status: str | Iterable[str] | None = None, limit: int | None = None, *, offset: int = 0,
                  since: float | datetime | None = None, search: str | None = None) -> list[RunDoc]:
        """Runs, newest first, from the index: of one status (or several), created at or
        after ``since`` (a datetime, or seconds since the epoch), whose schema title,
        field names, backend or model hold ``search`` (any case); ``limit`` of them from
        ``offset``. A writable store reports runs whose process died as ``interrupted``."""
        self._writer.reap()
        return [RunDoc.from_dict(d) for d in self.index.query(self._filter(status, since, search), limit or None,
                                                               offset)]

    def count_runs(self, status: str | Iterable[str] | None = None, *, since: float | datetime | None = None,
                   search: str | None = None) -> int:
        """How many runs :meth:`list_runs` would list with no limit."""
        return self.index.count(self._filter(status, since, search))

    def run_position(self, run_id: str, status: str | Iterable[str] | None = None, *,
                     since: float | datetime | None = None, search: str | None = None) -> int | None:
        """Where run ``run_id`` stands in :meth:`list_runs` (0: first), or None."""
        return self.index.position(run_id, self._filter(status, since, search))

    def iter_runs(self, status: str | Iterable[str] | None = None, *, since: float | datetime | None = None,
                  search: str | None = None, page: int = 500) -> Iterator[RunDoc]:
        """Every run :meth:`list_runs` would list, a page at a time (memory: one page)."""
        where = self._filter(status, since, search)
        offset = 0
        while True:
            docs = self.index.query(where, page, offset)
            yield from map(RunDoc.from_dict, docs)
            if len(docs) < page:
                return
            offset += page

    @staticmethod
    def _filter(status: str | Iterable[str] | None, since: float | datetime | None, search: str | None) -> RunFilter:
        if isinstance(since, datetime):
            since = (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()
        return RunFilter.make(status, since=since, search=search)

    # -- removing runs -------------------------------------------------------------------
    def delete_run(self, run_id: str) -> RunDoc:
        """Remove a run and its files; :class:`RunInProgress` while it is being generated."""
        with self._gate.hold():
            doc = self._get(run_id)
            self._remover.delete(doc.id)
        return doc

    def prune(self, *, older_than: float | None = None, statuses: Iterable[str] | None = None,
              keep: int | None = None, run_ids: Iterable[str] | None = None, dry_run: bool = False,
              now: float | None = None, on_batch: Callable[[int], None] | None = None) -> PruneResult:
        """Remove runs and their files: those created more than ``older_than`` seconds
        ago, of ``statuses``, all but the ``keep`` newest (of those statuses), all these
        conditions at once; or the runs ``run_ids`` names. A running run is never
        removed, nor one that a live process is generating. ``dry_run``: remove nothing,
        say what would go. The write lock is taken for a batch of runs at a time, so other
        processes' writes go on meanwhile; ``on_batch(n)`` is told the runs removed so far."""
        chosen = [s for s in statuses or () if s]
        check_prune_request(older_than, chosen, keep, run_ids)
        if not dry_run:
            self._gate.require_writable()
        self._writer.reap()
        return self._remover.prune(chosen, older_than=older_than, keep=keep, run_ids=run_ids, dry_run=dry_run,
                                   now=now, on_batch=on_batch)

    # -- records -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """A run's own folder (a dataset keeps its tables' store in it)."""
        return self.files.run_dir(run_id)

    def open_journal(self, run_id: str) -> Journal:
        self._gate.require_writable()
        return self.files.open_journal(run_id)

    def iter_records(self, run_id: str) -> Iterator[dict[str, Any]]:
        return self.files.iter_records(run_id)

    def count_records(self, run_id: str) -> int:
        return self.files.count_records(run_id)

    def read_page(self, run_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        """Records offset..offset+limit, found by counting newlines in raw 1 MiB chunks
        (no decoding of earlier records), so the last page of 100k is as quick as the first."""
        return self.files.read_page(run_id, offset, limit)

    def append_rejections(self, run_id: str, rejections: list[dict[str, Any]]) -> None:
        self.files.append_rejections(run_id, rejections)

    def iter_rejections(self, run_id: str) -> Iterator[dict[str, Any]]:
        return self.files.iter_rejections(run_id)

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Write the progress that waits and close the history. A run still going keeps
        its ``running`` status and, its lock let go, is marked interrupted by the next
        store that opens."""
        self._progress.stop()
        with contextlib.suppress(StoreError, DataDirLocked):
            self._progress.flush()
        with self._gate.mutex:
            self._held.release_all()
            self._index.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
