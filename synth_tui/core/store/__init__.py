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
version reads in full (:mod:`.migrate`). A store that may not write reads the old file
as it is.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import DataDirLocked, StoreError, UserInputError
from ..fileio import check_writable, describe_os_error, fsync_dir
from .documents import (
    RESUMABLE,
    STATUSES,
    AtomicJSONStorage,
    CorruptHistory,
    atomic_write_bytes,
    read_run_file,
    valid_run_doc,
    write_run_file,
    write_run_file_unsynced,
)
from .index import CLEAN, DELETING, WRITING, CorruptIndex, HistoryIndex, RunFilter
from .journal import Journal, _drop_torn_tail, _seek_line, read_jsonl, read_page
from .locks import (
    LOCK_WAIT,
    DataDirBusy,
    DataDirLock,
    RunInProgress,
    RunLock,
    lock_wait_setting,
    run_lock_holder,
)
from .migrate import iter_legacy_history, legacy_exists

__all__ = [
    "LOCK_WAIT", "RESUMABLE", "STATUSES", "AtomicJSONStorage", "CorruptHistory", "CorruptIndex", "DataDirBusy",
    "DataDirLock", "Journal", "PruneResult", "RunFilter", "RunInProgress", "RunLock", "Store", "atomic_write_bytes",
    "default_data_dir", "lock_wait_setting", "new_run_id", "now_iso", "read_jsonl", "run_lock_holder",
    "_drop_torn_tail", "_seek_line",
]

INDEX = "index.sqlite"
LEGACY = "history.json"  # the version before's history
IMPORT_BATCH = 2000  # documents per insert while importing or rebuilding
PRUNE_BATCH = 200  # runs removed per hold of the write lock


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


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _disk_usage(folder: Path) -> int:
    """Bytes the files of ``folder`` take on disk (as ``du`` counts them)."""
    total = 0
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


@dataclass
class PruneResult:
    """What a prune removed (or, ``dry_run``, would remove). ``ids``: those runs, oldest
    first; ``sample``: the documents of the first few; ``records``: their accepted
    records; ``freed``: bytes given back to the disk (run folders, and the index's space
    when it shrinks); ``skipped``: runs left alone because they are running."""

    ids: list[str] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0
    freed: int = 0
    skipped: list[str] = field(default_factory=list)
    dry_run: bool = False

    SAMPLE = 20

    def add(self, docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            self.ids.append(doc["id"])
            if len(self.sample) < self.SAMPLE:
                self.sample.append(doc)
            counts = doc.get("counts")
            if isinstance(counts, dict) and isinstance(counts.get("accepted"), int):
                self.records += counts["accepted"]


class _HealingIndex:
    """What :attr:`Store.index` gives: the store's current index, reopened when another
    process replaced its file, and one call retried on a rebuilt index when SQLite finds
    the file damaged."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        store = self._store
        attr = getattr(store._index, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            store._reopen_if_replaced()
            try:
                return getattr(store._index, name)(*args, **kwargs)
            except CorruptIndex as exc:
                store._recover_index(exc)
                return getattr(store._index, name)(*args, **kwargs)

        return call


class Store:
    """History and journals of one data directory.

    ``writable=True``: this store may write the history. Each write (create, update or
    delete of a run) takes the directory's lock for its moment, waiting up to
    ``lock_wait`` seconds (default :func:`lock_wait_setting`) for another process's
    write. Opening one migrates a directory of the version before, repairs the index,
    and marks runs that a crash or a kill left ``running`` (no live process holds their
    run lock) as ``interrupted``. Read-only stores take no lock and write nothing. All
    methods are safe to call from several threads of one process, and several processes
    may use one directory at once.
    """

    def __init__(self, data_dir: str | Path | None = None, *, writable: bool = True,
                 lock_wait: float | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.writable = writable
        self.lock_wait = lock_wait_setting() if lock_wait is None else lock_wait
        self.warnings: list[str] = []
        self._write_mutex = threading.RLock()  # one writing thread per store; taken before the file lock
        self._lock = DataDirLock(self.data_dir)
        self._lock_depth = 0
        self._run_locks: dict[str, RunLock] = {}  # the runs this store is generating
        self._index: HistoryIndex | None = None
        self._progress: dict[str, dict[str, Any]] = {}  # run id -> fields waiting for the writer thread
        self._progress_errors: dict[str, StoreError] = {}
        self._progress_wake = threading.Condition()
        self._progress_thread: threading.Thread | None = None
        self._closing = False
        self._unsynced = False  # an import wrote run files that are not on disk yet
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"cannot use data directory {self.data_dir}: {exc.strerror or exc}") from None
        if not writable:
            self._index = self._open_for_reading()
            return
        try:  # a temp file beside the history, as every history write makes
            check_writable(self.data_dir / "lock", force=True)
        except OSError as exc:
            raise UserInputError(
                f"cannot write the data directory {self.data_dir}: {exc.strerror or exc}. Use --data-dir "
                "(or $SYNTH_TUI_DATA_DIR) for a directory you can write"
            ) from None
        with self._writing():
            self._index = self._open_for_writing()
            self._mark_interrupted(self.index.running())

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def index(self) -> HistoryIndex:
        """The index, through a guard that reopens it when another process rebuilt it and
        rebuilds (or, read-only, replaces in memory) one that turns out damaged."""
        assert self._index is not None
        return _HealingIndex(self)  # type: ignore[return-value]

    def _reopen_if_replaced(self) -> None:
        index = self._index
        if index is None or not index.replaced():
            return
        path = self.data_dir / INDEX
        if not path.exists():
            return  # being rebuilt, or gone: the next writer rebuilds it
        with contextlib.suppress(StoreError):
            fresh = HistoryIndex(path, writable=self.writable, timeout=self.lock_wait)
            self._index = fresh
            index.close()

    def _recover_index(self, exc: CorruptIndex) -> None:
        """An index that SQLite found damaged mid-way: moved aside and rebuilt from the
        run files (a read-only store: one in memory, from the run files)."""
        damaged = self._index
        assert damaged is not None
        if damaged.path is None:
            raise exc
        path = damaged.path
        if not self.writable:
            memory = HistoryIndex(None, writable=True)
            memory.put_many(self._scan_run_files(set()))
            self._index = memory
            damaged.close()
            self.warnings.append(f"{exc}. Run synth-tui once with write access to rebuild it.")
            return
        with self._writing():
            damaged.close()
            if not damaged.replaced():  # else another process rebuilt it already
                backup = self._move_aside(path, "index.corrupt", ".sqlite")
                self.warnings.append(f"{exc}. It was moved to {backup}; the history was rebuilt from "
                                     "runs/*/run.json.")
                self._index = self._build_index(path, self.data_dir / LEGACY)
            else:
                self._index = HistoryIndex(path, writable=True, timeout=self.lock_wait)

    # -- the write lock ------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self, wait: float | None = None, *, blocking: bool = True) -> Iterator[None]:
        """Hold the directory's write lock (once per store, however deeply nested).
        ``blocking=False``: :class:`DataDirLocked` at once if another thread of this
        process is writing."""
        self._require_writable()
        if not self._write_mutex.acquire(blocking=blocking):
            raise DataDirLocked(f"the history in {self.data_dir} is being written")
        try:
            if self._lock_depth == 0:
                self._lock.acquire(self.lock_wait if wait is None else wait)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    self._lock.release()
        finally:
            self._write_mutex.release()

    # -- opening -------------------------------------------------------------------------
    def _runs_mtime(self) -> str:
        """The runs folder's change time: it moves when a run folder is added or removed."""
        try:
            return str(self.runs_dir.stat().st_mtime_ns)
        except OSError:
            return ""

    def _open_for_writing(self) -> HistoryIndex:
        """The index, migrated, rebuilt or repaired as the directory needs (under the lock)."""
        path = self.data_dir / INDEX
        legacy = self.data_dir / LEGACY
        self._remove_stale_temp_files()
        index: HistoryIndex | None = None
        if path.exists() or path.is_symlink():
            try:
                index = HistoryIndex(path, writable=True, timeout=self.lock_wait)
            except CorruptIndex as exc:
                backup = self._move_aside(path, "index.corrupt", ".sqlite")
                self.warnings.append(f"{exc}. It was moved to {backup}; the history is rebuilt from runs/*/run.json.")
        if index is not None:
            try:
                if legacy_exists(legacy):
                    self._merge_legacy(index, legacy)
                self._settle(index)
                return index
            except CorruptIndex as exc:  # damaged past its first page
                index.close()
                backup = self._move_aside(path, "index.corrupt", ".sqlite")
                self.warnings.append(f"{exc}. It was moved to {backup}; the history is rebuilt from "
                                     "runs/*/run.json.")
        return self._build_index(path, legacy)

    def _open_for_reading(self) -> HistoryIndex:
        """The index file as it is; where there is none (a directory of the version before,
        or one a writer never opened) or it cannot be used, one in memory built from the
        files, with a warning. Writes nothing."""
        path = self.data_dir / INDEX
        legacy = self.data_dir / LEGACY
        if path.exists() or path.is_symlink():
            try:
                index = HistoryIndex(path, writable=False, timeout=self.lock_wait)
            except CorruptIndex as exc:
                self.warnings.append(f"{exc}. Run synth-tui once with write access to rebuild it.")
            else:
                if legacy_exists(legacy):
                    self._note_legacy(index, legacy)
                return index
        memory = HistoryIndex(None, writable=True)
        known: set[str] = set()
        if legacy_exists(legacy):
            try:
                memory.put_many(self._remember(known, iter_legacy_history(legacy)))
            except CorruptHistory as exc:
                memory.clear()
                known.clear()
                self.warnings.append(f"{exc}. Run synth-tui once with write access to repair it.")
        found = memory.put_many(self._scan_run_files(known))
        if found and legacy_exists(legacy) and known:
            self.warnings.append(f"{_plural(found, 'run')} missing from {legacy} are shown from runs/*/run.json; "
                                 "the next synth-tui that writes restores them.")
        elif found and not legacy_exists(legacy):
            self.warnings.append(f"the history index {path} is missing; the {_plural(found, 'run')} in runs/ are "
                                 "shown from their files, and the next synth-tui that writes rebuilds it.")
        return memory

    @staticmethod
    def _remember(known: set[str], docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for doc in docs:
            known.add(doc["id"])
            yield doc

    def _note_legacy(self, index: HistoryIndex, legacy: Path) -> None:
        """A history.json beside the index (an older synth-tui wrote it): say so."""
        try:
            new = sum(1 for doc in iter_legacy_history(legacy) if not index.has(doc["id"]))
        except CorruptHistory as exc:
            self.warnings.append(f"{exc}. Run synth-tui once with write access to repair it.")
            return
        if new:
            self.warnings.append(f"{legacy} (written by an older synth-tui) holds {_plural(new, 'run')} not in the "
                                 "history yet: the next synth-tui that writes adds them.")
        else:
            self.warnings.append(f"{legacy} was written by an older synth-tui; the next synth-tui that writes moves "
                                 "it aside.")

    def _remove_stale_temp_files(self) -> None:
        """Leftovers of an import or a rebuild that a crash stopped."""
        for tmp in self.data_dir.glob(f".{INDEX}.*.tmp*"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _move_aside(self, path: Path, stem: str, suffix: str) -> Path:
        stamp = _stamp()
        backup = path.with_name(f"{stem}-{stamp}{suffix}")
        n = 1
        while backup.exists():
            n += 1
            backup = path.with_name(f"{stem}-{stamp}-{n}{suffix}")
        try:
            os.replace(path, backup)
        except OSError as exc:
            raise UserInputError(f"{path} cannot be moved aside: {exc.strerror or exc}") from None
        fsync_dir(path.parent)
        return backup

    def _scan_run_files(self, known: set[str]) -> Iterator[dict[str, Any]]:
        """The documents in runs/*/run.json of runs not in ``known``. A run file that is
        corrupt is skipped with a warning."""
        bad = []
        try:
            names = sorted(os.listdir(self.runs_dir))
        except OSError:
            return
        for name in names:
            if name in known or name.startswith("."):
                continue
            path = self.runs_dir / name / "run.json"
            try:
                doc = read_run_file(path)
            except (CorruptHistory, UserInputError):
                bad.append(name)
                continue
            if doc is not None and valid_run_doc(doc):
                yield doc
        if bad:
            self.warnings.append(f"{_plural(len(bad), 'run file')} in {self.runs_dir} could not be read and "
                                 f"{'is' if len(bad) == 1 else 'are'} left out: {', '.join(bad[:5])}"
                                 f"{' ...' if len(bad) > 5 else ''}")

    def _adopt(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """A document from the version before's history.json: its run file is made to
        hold it (unsynced: the caller syncs once). None for an id no folder can have."""
        try:
            run_dir = self.run_dir(doc["id"])
        except UserInputError:
            return None
        path = run_dir / "run.json"
        try:
            current = read_run_file(path)
        except (CorruptHistory, UserInputError):
            current = None
        if current != doc:
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(describe_os_error(exc, run_dir)) from exc
            write_run_file_unsynced(path, doc)
            self._unsynced = True
        return doc

    def _adopt_all(self, docs: Iterable[dict[str, Any]], known: set[str]) -> Iterator[dict[str, Any]]:
        for doc in docs:
            adopted = self._adopt(doc)
            if adopted is not None:
                known.add(adopted["id"])
                yield adopted

    def _sync_imports(self) -> None:
        if self._unsynced:
            os.sync()  # the run files an import wrote, before the index that points to them
            self._unsynced = False

    def _build_index(self, path: Path, legacy: Path) -> HistoryIndex:
        """A new index from the version before's history.json (a migration) and the run
        files, built beside ``path`` and renamed into place; then history.json is moved
        aside. A crash before the rename leaves the directory as it was."""
        tmp = self.data_dir / f".{INDEX}.{secrets.token_hex(6)}.tmp"
        known: set[str] = set()
        migrated: int | None = None
        corrupt: CorruptHistory | None = None
        try:
            new = HistoryIndex(tmp, writable=True, timeout=self.lock_wait)
            try:
                if legacy_exists(legacy):
                    try:
                        migrated = new.put_many(self._adopt_all(iter_legacy_history(legacy), known))
                    except CorruptHistory as exc:
                        corrupt, migrated = exc, None
                        new.clear()
                        known.clear()
                found = new.put_many(self._scan_run_files(known), meta={"runs_mtime": self._runs_mtime()})
                self._sync_imports()
            finally:
                new.close()
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            fsync_dir(self.data_dir)
        except OSError as exc:
            raise StoreError(describe_os_error(exc, path)) from exc
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        if corrupt is not None:
            backup = self._move_aside(legacy, "history.corrupt", ".json")
            self.warnings.append(f"{corrupt}. It was moved to {backup}; the history was rebuilt from "
                                 f"runs/*/run.json ({_plural(found, 'run')}).")
        elif migrated is not None:
            backup = self._move_aside(legacy, "history.migrated", ".json")
            self.warnings.append(
                f"The history ({_plural(migrated + found, 'run')}) now keeps one file per run and an index; "
                f"{legacy.name} of the version before was moved to {backup} (delete it when no older synth-tui "
                "needs it).")
        elif found:
            self.warnings.append(f"The history index {path} was missing; it was rebuilt from runs/*/run.json "
                                 f"({_plural(found, 'run')}).")
        return HistoryIndex(path, writable=True, timeout=self.lock_wait)

    def _merge_legacy(self, index: HistoryIndex, legacy: Path) -> None:
        """A history.json beside the index: a migration that a crash stopped before its
        last step, or an older synth-tui that wrote here since. Its runs the index does
        not know are added; then it is moved aside."""
        known: set[str] = set()
        try:
            docs = [d for d in iter_legacy_history(legacy) if not index.has(d["id"])]
        except CorruptHistory as exc:
            backup = self._move_aside(legacy, "history.corrupt", ".json")
            found = self._reconcile_folders(index)
            self.warnings.append(f"{exc}. It was moved to {backup}; the history was rebuilt from runs/*/run.json "
                                 f"({_plural(found + index.count(RunFilter()), 'run')}).")
            return
        added = list(self._adopt_all(docs, known))
        self._sync_imports()
        index.put_many(added, meta={"runs_mtime": self._runs_mtime()})
        backup = self._move_aside(legacy, "history.migrated", ".json")
        if added:
            self.warnings.append(f"{_plural(len(added), 'run')} of {legacy} (written by an older synth-tui) were "
                                 f"added to the history; the file was moved to {backup}.")

    def _settle(self, index: HistoryIndex) -> None:
        """Finish what a writer that died left half done, and take in run folders added or
        removed behind the history's back (under the lock)."""
        for run_id, status, dirty in index.unsettled():
            if dirty == DELETING:
                self._finish_delete(index, run_id)
            else:
                self._refresh(index, run_id, status, dirty)
        if index.meta("runs_mtime") != self._runs_mtime():
            self._reconcile_folders(index)

    def _refresh(self, index: HistoryIndex, run_id: str, status: str, dirty: int) -> None:
        """Make run ``run_id``'s index row agree with its file."""
        try:
            path = self.run_dir(run_id) / "run.json"
        except UserInputError:
            index.remove([run_id])
            return
        try:
            doc = read_run_file(path)
        except CorruptHistory as exc:
            doc = self._restore(index, run_id, path, exc)
        if doc is None:
            if dirty == WRITING:  # a create that a crash stopped before the run's file existed
                journal = path.parent / "records.jsonl"
                if not (journal.exists() and journal.stat().st_size):  # nothing was generated: no run
                    self._remove_folder(path.parent)
                index.remove([run_id], meta={"runs_mtime": self._runs_mtime()})
            else:  # the run's files are gone: someone deleted them
                index.remove([run_id])
            return
        if dirty or doc.get("status") != status:
            index.put(doc, sync=False)

    def _restore(self, index: HistoryIndex, run_id: str, path: Path, exc: CorruptHistory) -> dict[str, Any] | None:
        """A corrupt run file: moved aside, and written again from the index's copy."""
        copy = index.get(run_id)
        backup = self._move_aside(path, "run.corrupt", ".json")
        if copy is None:
            self.warnings.append(f"{exc}. It was moved to {backup}.")
            return None
        write_run_file(path, copy)
        self.warnings.append(f"{exc}. It was moved to {backup} and written again from the history index.")
        return copy

    def _reconcile_folders(self, index: HistoryIndex) -> int:
        """Add runs whose folder the index does not know, drop rows whose folder is gone.
        Returns how many runs were added."""
        try:
            names = {n for n in os.listdir(self.runs_dir) if not n.startswith(".")}
        except OSError:
            return 0
        ids = set(index.all_ids())
        gone = [i for i in ids if i not in names]
        added = index.put_many(self._scan_run_files(ids), meta={"runs_mtime": self._runs_mtime()})
        if gone:
            index.remove(gone)
        if added or gone:
            self.warnings.append(f"The history took in {_plural(added, 'run')} found in runs/ and dropped "
                                 f"{_plural(len(gone), 'run')} whose folder is gone.")
        return added

    # -- runs in progress ----------------------------------------------------------------
    def run_holder(self, run_id: str) -> str | None:
        """Who is generating run ``run_id`` now: "self" (this store), the pid of another
        live process ("?" if it wrote none), or None (nobody: it is not in progress)."""
        if run_id in self._run_locks:
            return "self"
        return run_lock_holder(self.run_dir(run_id) / "run.lock")

    def is_live(self, run_id: str) -> bool:
        """Whether a live process (this one included) is generating run ``run_id``."""
        return self.run_holder(run_id) is not None

    def _mark_interrupted(self, run_ids: Iterable[str]) -> list[str]:
        """Mark the runs of ``run_ids`` left ``running`` that no live process is
        generating as ``interrupted`` (under the write lock). Returns their ids."""
        marked = []
        for run_id in run_ids:
            if run_id in self._run_locks:
                continue
            try:
                probe = RunLock(self.run_dir(run_id) / "run.lock")
            except UserInputError:
                continue  # an id no run folder can have: leave it as it is
            try:
                if probe.try_acquire() is not None:
                    continue  # a live process is generating it
            except StoreError:
                pass  # its folder is gone or cannot be written: no process can be running it
            try:
                current = self._read_doc(run_id)
                if current is not None and current.get("status") == "running":
                    self.update_run(
                        run_id, status="interrupted", error="the process stopped while this run was going on",
                        accepted=self.count_records(run_id),
                    )
                    marked.append(run_id)
            finally:
                probe.release()
        return marked

    def _reap(self) -> bool:
        """Mark runs whose process died since this store opened as interrupted, if the
        write lock is free right now (a read never waits for it). Returns whether any was
        marked."""
        if not self.writable:
            return False

        def dead(run_id: str) -> bool:
            try:
                return self.run_holder(run_id) is None
            except UserInputError:
                return False  # an id no run folder can have: leave it as it is

        running = [r for r in self.index.running() if dead(r)]
        if not running:
            return False
        try:
            with self._writing(wait=0, blocking=False):
                return bool(self._mark_interrupted(running))
        except DataDirLocked:
            return False

    # -- writing runs --------------------------------------------------------------------
    def _save(self, doc: dict[str, Any], before: dict[str, Any] | None, *, new_folder: bool = False) -> None:
        """Write ``doc`` to its run file and the index (under the lock): the row marked
        first, the file, then the mark cleared; a failed file write puts the row back. A
        running run's save needs no mark (see below)."""
        meta = {"runs_mtime": self._runs_mtime()} if new_folder else None
        if before is not None and before.get("status") == "running" and not new_folder:
            # a running run's row is read again from its file whenever a writer opens the
            # directory: the file first, then the row, and no mark is needed (a progress
            # save costs one fsynced file and one unsynced commit)
            write_run_file(self.run_dir(doc["id"]) / "run.json", doc)
            self.index.put(doc, sync=False)
            return
        self.index.put(doc, dirty=WRITING, meta=meta)
        try:
            write_run_file(self.run_dir(doc["id"]) / "run.json", doc)
        except BaseException:
            with contextlib.suppress(StoreError):
                if before is None:
                    self.index.remove([doc["id"]])
                else:
                    self.index.put(before)
            raise
        self.index.set_dirty([doc["id"]], CLEAN, sync=False)

    def create_run(self, doc: dict[str, Any]) -> str:
        """Add a run to the history, as ``running``: this store holds its run lock until
        an update gives it another status (or the store closes)."""
        self._require_writable()
        run_id = doc.get("id") or new_run_id()
        doc = {**doc, "id": run_id, "created": doc.get("created") or now_iso(), "status": "running"}
        run_dir = self.run_dir(run_id)
        doc.setdefault("records_path", str(run_dir / "records.jsonl"))
        with self._writing():
            new_folder = not run_dir.is_dir()
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(describe_os_error(exc, run_dir)) from exc
            try:
                self._take_run_lock(run_id, "started")
                try:
                    self._save(doc, self.index.get(run_id), new_folder=True)
                except BaseException:
                    self._release_run_lock(run_id)
                    raise
            except BaseException:
                if new_folder:  # leave no folder behind for a run that never was
                    self._remove_folder(run_dir)
                raise
        return run_id

    def update_run(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of a run (its file re-read under the write lock). Setting
        ``status="running"`` takes the run's lock (:class:`RunInProgress` if a live
        process holds it); any other status lets go of it. Progress saved with
        :meth:`save_progress` and not written yet is written with these fields."""
        with self._writing():
            doc = self._get(run_id)
            run_id = doc["id"]
            with self._progress_wake:
                fields = {**self._progress.pop(run_id, {}), **fields}
            starting = fields.get("status") == "running" and run_id not in self._run_locks
            if starting:
                self._take_run_lock(run_id, "resumed")
            try:
                before = dict(doc)
                doc.update(fields)
                self._save(doc, before)
            except BaseException:
                if starting:
                    self._release_run_lock(run_id)
                raise
            finally:
                if "status" in fields and fields["status"] != "running":
                    self._release_run_lock(run_id)
            return doc

    def import_runs(self, docs: Iterable[dict[str, Any]]) -> int:
        """Add finished runs' documents in bulk (another data directory's, a test's, a
        benchmark's): their files written without an fsync each, the file system synced
        once, then the index in one transaction. A document with the id of a run already
        here replaces it. Returns how many were added."""
        known: set[str] = set()
        added = 0
        batch: list[dict[str, Any]] = []
        with self._writing():
            for doc in docs:
                if valid_run_doc(doc):
                    batch.append(doc)
                if len(batch) >= IMPORT_BATCH:
                    added += self._import_batch(batch, known)
            added += self._import_batch(batch, known)
        return added

    def _import_batch(self, batch: list[dict[str, Any]], known: set[str]) -> int:
        adopted = list(self._adopt_all(batch, known))
        batch.clear()
        self._sync_imports()  # the files on disk before the index rows that point to them
        return self.index.put_many(adopted, meta={"runs_mtime": self._runs_mtime()})

    def save_progress(self, run_id: str, **fields: Any) -> None:
        """Update a running run's fields (its counts) without waiting: a thread of this
        store writes them, the latest of each run only. Never blocks on the disk or the
        lock, so it may be called from an event loop. A write that failed is raised by the
        next call for that run; :meth:`update_run` and :meth:`close` write what waits."""
        error = self._progress_errors.pop(run_id, None)
        if error is not None:
            raise error
        with self._progress_wake:
            if self._closing:
                return
            self._progress[run_id] = {**self._progress.get(run_id, {}), **fields}
            if self._progress_thread is None:
                self._progress_thread = threading.Thread(target=self._write_progress, name="history-progress",
                                                         daemon=True)
                self._progress_thread.start()
            self._progress_wake.notify()

    def flush_progress(self) -> None:
        """Write the progress that waits, now, in this thread."""
        while True:
            with self._write_mutex, self._progress_wake:
                if not self._progress:
                    return
                run_id, fields = self._progress.popitem()
            self._write_one_progress(run_id, fields)

    def _write_progress(self) -> None:
        while True:
            with self._progress_wake:
                while not self._progress and not self._closing:
                    self._progress_wake.wait()
                if self._closing and not self._progress:
                    return
            with self._write_mutex:  # taken before the fields: an update_run of the run waits or takes them
                with self._progress_wake:
                    if not self._progress:
                        continue
                    run_id, fields = self._progress.popitem()
                self._write_one_progress(run_id, fields)

    def _write_one_progress(self, run_id: str, fields: dict[str, Any]) -> None:
        if run_id not in self._run_locks:
            return  # the run ended (or another store runs it): its last update has the final counts
        try:
            self.update_run(run_id, **fields)
        except (StoreError, DataDirLocked) as exc:
            self._progress_errors[run_id] = exc if isinstance(exc, StoreError) else StoreError(str(exc))
        except Exception as exc:  # noqa: BLE001 - a thread that dies would never write again
            self._progress_errors[run_id] = StoreError(f"cannot save the progress of run {run_id}: {exc}")

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

    # -- reading runs --------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run by id, or by a unique prefix of its id (which may not be empty), read
        from its own file. A writable store reports a run whose process died as
        ``interrupted``."""
        doc = self._get(run_id)
        if doc.get("status") == "running" and self._reap():
            doc = self._get(doc["id"])
        return doc

    def _read_doc(self, run_id: str) -> dict[str, Any] | None:
        """Run ``run_id``'s document from its file; the index's copy when the file is
        lost or corrupt (None when neither has it)."""
        try:
            path = self.run_dir(run_id) / "run.json"
        except UserInputError:
            return None
        try:
            doc = read_run_file(path)
        except CorruptHistory as exc:
            copy = self.index.get(run_id)
            if copy is not None and self.writable:
                with contextlib.suppress(StoreError, DataDirLocked), self._writing(wait=0, blocking=False):
                    self._restore(self.index, run_id, path, exc)
            return copy
        return doc if doc is not None else self.index.get(run_id)

    def _get(self, run_id: str) -> dict[str, Any]:
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
                  since: float | datetime | None = None, search: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, from the index: of one status (or several), created at or
        after ``since`` (a datetime, or seconds since the epoch), whose schema title,
        field names, backend or model hold ``search`` (any case); ``limit`` of them from
        ``offset``. A writable store reports runs whose process died as ``interrupted``."""
        self._reap()
        return self.index.query(self._filter(status, since, search), limit or None, offset)

    def count_runs(self, status: str | Iterable[str] | None = None, *, since: float | datetime | None = None,
                   search: str | None = None) -> int:
        """How many runs :meth:`list_runs` would list with no limit."""
        return self.index.count(self._filter(status, since, search))

    def run_position(self, run_id: str, status: str | Iterable[str] | None = None, *,
                     since: float | datetime | None = None, search: str | None = None) -> int | None:
        """Where run ``run_id`` stands in :meth:`list_runs` (0: first), or None."""
        return self.index.position(run_id, self._filter(status, since, search))

    def iter_runs(self, status: str | Iterable[str] | None = None, *, since: float | datetime | None = None,
                  search: str | None = None, page: int = 500) -> Iterator[dict[str, Any]]:
        """Every run :meth:`list_runs` would list, a page at a time (memory: one page)."""
        where = self._filter(status, since, search)
        offset = 0
        while True:
            docs = self.index.query(where, page, offset)
            yield from docs
            if len(docs) < page:
                return
            offset += page

    @staticmethod
    def _filter(status: str | Iterable[str] | None, since: float | datetime | None, search: str | None) -> RunFilter:
        if isinstance(since, datetime):
            since = (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()
        return RunFilter.make(status, since=since, search=search)

    # -- removing runs -------------------------------------------------------------------
    def delete_run(self, run_id: str) -> dict[str, Any]:
        """Remove a run and its files; :class:`RunInProgress` while it is being generated."""
        with self._writing():
            doc = self._get(run_id)
            if doc["id"] in self._run_locks:
                raise RunInProgress(doc["id"], None, "deleted")
            lock = self._lock_to_remove(doc["id"])
            try:
                self._remove([doc["id"]])
            finally:
                lock.release()
        return doc

    def _lock_to_remove(self, run_id: str) -> RunLock:
        """The run's lock, taken so that nobody resumes it while it goes;
        :class:`RunInProgress` if a live process holds it."""
        run_dir = self.run_dir(run_id)
        lock = RunLock(run_dir / "run.lock")
        try:
            holder = lock.try_acquire(wait=0.2) if run_dir.is_dir() else None
        except StoreError:
            holder = None  # a folder we cannot write: nobody runs it; the unlink says why below
        if holder is not None:
            raise RunInProgress(run_id, holder, "deleted")
        return lock

    def _remove(self, run_ids: list[str]) -> int:
        """Remove runs whose locks the caller holds (under the write lock): rows marked,
        run files unlinked (from then on they are gone), the rest of their folders, the
        rows. Returns the bytes freed."""
        freed = sum(_disk_usage(self.run_dir(run_id)) for run_id in run_ids)
        self.index.set_dirty(run_ids, DELETING)
        try:
            for run_id in run_ids:
                try:
                    (self.run_dir(run_id) / "run.json").unlink(missing_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot delete run {run_id}: {exc.strerror or exc}") from None
        except BaseException:
            with contextlib.suppress(StoreError):
                self.index.set_dirty(run_ids, CLEAN)
            raise
        for run_id in run_ids:
            self._remove_folder(self.run_dir(run_id))
        self.index.remove(run_ids, meta={"runs_mtime": self._runs_mtime()})
        return freed

    def _finish_delete(self, index: HistoryIndex, run_id: str) -> None:
        """A delete that a crash stopped: finish it."""
        with contextlib.suppress(UserInputError):
            run_dir = self.run_dir(run_id)
            with contextlib.suppress(OSError):
                (run_dir / "run.json").unlink(missing_ok=True)
            self._remove_folder(run_dir)
        index.remove([run_id], meta={"runs_mtime": self._runs_mtime()})

    @staticmethod
    def _remove_folder(run_dir: Path) -> int:
        freed = 0
        with contextlib.suppress(OSError), os.scandir(run_dir) as entries:
            for entry in list(entries):
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        freed += _disk_usage(Path(entry.path))
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
                    freed += getattr(st, "st_blocks", 0) * 512 or st.st_size
        with contextlib.suppress(OSError):
            run_dir.rmdir()
        return freed

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
        if "running" in chosen:
            raise UserInputError("a running run is never pruned: stop it first, then prune it as cancelled")
        unknown = [s for s in chosen if s not in STATUSES]
        if unknown:
            raise UserInputError(f"unknown status {unknown[0]!r}: one of {', '.join(STATUSES[1:])}")
        if older_than is None and not chosen and keep is None and run_ids is None:
            raise UserInputError("say which runs to prune: by age, by status, how many to keep, or which ones")
        if keep is not None and keep < 0:
            raise UserInputError(f"the number of runs to keep must be 0 or more, not {keep}")
        if not dry_run:
            self._require_writable()
        self._reap()
        result = PruneResult(dry_run=dry_run)
        size_before = self.index.size() if not dry_run and self.index.path else 0
        for ids in self._prune_batches(older_than, tuple(chosen), keep, run_ids, now):
            self._prune_batch(ids, result)
            if on_batch is not None:
                on_batch(len(result.ids))
        if not dry_run and result.ids and self.index.path:
            with contextlib.suppress(StoreError, DataDirLocked), self._writing():
                self.index.give_back_space()
            result.freed += max(0, size_before - self.index.size())
        return result

    def _prune_batches(self, older_than: float | None, statuses: tuple[str, ...], keep: int | None,
                       run_ids: Iterable[str] | None, now: float | None) -> Iterator[list[str]]:
        """The ids of the runs to prune, oldest first, a batch at a time."""
        if run_ids is not None:
            ids = list(dict.fromkeys(run_ids))
            for i in range(0, len(ids), PRUNE_BATCH):
                yield ids[i:i + PRUNE_BATCH]
            return
        statuses = statuses or tuple(s for s in STATUSES if s != "running")
        before = None
        if older_than is not None:
            before = (now if now is not None else datetime.now(UTC).timestamp()) - older_than
        kept_from = self.index.nth_newest(RunFilter.make(statuses), keep) if keep else None
        if keep and kept_from is None:
            return  # no more runs than those to keep
        where = RunFilter.make(statuses, before=before)
        after: tuple[float, int] | None = None
        while True:
            batch = self.index.oldest_first(where, after, PRUNE_BATCH, newer_than_kept=kept_from)
            if not batch:
                return
            after = (batch[-1][1], batch[-1][2])
            yield [row[0] for row in batch]

    def _prune_batch(self, ids: list[str], result: PruneResult) -> None:
        if result.dry_run:
            docs = []
            for run_id in ids:
                doc = self._read_doc(run_id)
                if doc is None:
                    continue
                if self._running(doc):
                    result.skipped.append(run_id)
                    continue
                docs.append(doc)
                result.freed += _disk_usage(self.run_dir(run_id))
            result.add(docs)
            return
        with self._writing():
            locks: list[RunLock] = []
            docs = []
            try:
                for run_id in ids:
                    doc = self._read_doc(run_id)
                    if doc is None:
                        continue
                    if self._running(doc):
                        result.skipped.append(run_id)
                        continue
                    try:
                        locks.append(self._lock_to_remove(doc["id"]))
                    except RunInProgress:
                        result.skipped.append(run_id)
                        continue
                    docs.append(doc)
                if docs:
                    result.freed += self._remove([d["id"] for d in docs])
                    result.add(docs)
            finally:
                for lock in locks:
                    lock.release()

    def _running(self, doc: dict[str, Any]) -> bool:
        """Whether a run is going (by its status, or because a live process holds it)."""
        if doc.get("status") == "running" or doc["id"] in self._run_locks:
            return True
        try:
            return run_lock_holder(self.run_dir(doc["id"]) / "run.lock") is not None
        except UserInputError:
            return False

    # -- records -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id.startswith(".") or "\0" in run_id:
            raise UserInputError(f"invalid run id {run_id!r}")
        return self.runs_dir / run_id

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
        return read_page(self.records_path(run_id), offset, limit)

    def append_rejections(self, run_id: str, rejections: list[dict[str, Any]]) -> None:
        if not rejections:
            return
        import json

        path = self.run_dir(run_id) / "rejects.jsonl"
        try:
            with open(path, "ab") as fh:
                fh.write(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rejections))
        except OSError as exc:
            raise StoreError(describe_os_error(exc, path)) from exc

    def iter_rejections(self, run_id: str) -> Iterator[dict[str, Any]]:
        return read_jsonl(self.run_dir(run_id) / "rejects.jsonl")

    # -- lifecycle -----------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self.writable:
            raise StoreError("this store was opened read-only")

    def close(self) -> None:
        """Write the progress that waits and close the history. A run still going keeps
        its ``running`` status and, its lock let go, is marked interrupted by the next
        store that opens."""
        with self._progress_wake:
            self._closing = True
            self._progress_wake.notify_all()
        thread = self._progress_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._progress_thread = None
        with contextlib.suppress(StoreError, DataDirLocked):
            self.flush_progress()
        with self._write_mutex:
            for run_id in list(self._run_locks):
                self._release_run_lock(run_id)
            if self._index is not None:
                self._index.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
