"""Writing runs' documents: a new run, a change to one, a bulk import, and the runs a dead
process left ``running`` marked ``interrupted``. Each write takes the directory's write
lock for its moment and touches the run's own file and index row only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import DataDirLocked, StoreError, UserInputError
from .documents import valid_run_doc
from .files import RunFiles, remove_folder
from .index import CLEAN, WRITING, HistoryIndex
from .locks import HeldRuns, RunLock, WriteGate
from .rundoc import RunDoc

IMPORT_BATCH = 2000  # documents per insert while importing


class RunWriter:
    """The writes of one store. ``index`` is the store's (healing) index; ``find(run_id)``
    reads a run by id or prefix (:class:`UserInputError` when there is none) and
    ``read(run_id)`` by id (None when there is none); ``waiting(run_id)`` hands over the
    progress saved for a run and not written yet."""

    def __init__(self, files: RunFiles, index: HistoryIndex, gate: WriteGate, held: HeldRuns, *,
                 find: Callable[[str], RunDoc], read: Callable[[str], RunDoc | None],
                 waiting: Callable[[str], dict[str, Any]]) -> None:
        self.files = files
        self.index = index
        self.gate = gate
        self.held = held
        self._find = find
        self._read = read
        self._waiting = waiting

    def _save(self, doc: dict[str, Any], before: dict[str, Any] | None, *, new_folder: bool = False) -> None:
        """Write ``doc`` to its run file and the index (under the lock): the row marked
        first, the file, then the mark cleared; a failed file write puts the row back. A
        running run's save needs no mark (see below)."""
        meta = {"runs_mtime": self.files.mtime()} if new_folder else None
        if before is not None and before.get("status") == "running" and not new_folder:
            # a running run's row is read again from its file whenever a writer opens the
            # directory: the file first, then the row, and no mark is needed (a progress
            # save costs one fsynced file and one unsynced commit)
            self.files.write(doc)
            self.index.put(doc, sync=False)
            return
        self.index.put(doc, dirty=WRITING, meta=meta)
        try:
            self.files.write(doc)
        except BaseException:
            with contextlib.suppress(StoreError):
                if before is None:
                    self.index.remove([doc["id"]])
                else:
                    self.index.put(before)
            raise
        self.index.set_dirty([doc["id"]], CLEAN, sync=False)

    def create(self, doc: RunDoc) -> str:
        """Add a run to the history as ``running``: this store holds its run lock until an
        update gives it another status (or the store closes)."""
        run_id = doc.id
        with self.gate.hold():
            new_folder = self.files.make_folder(run_id)
            try:
                self.held.take(run_id, "started")
                try:
                    self._save(doc.to_dict(), self.index.get(run_id), new_folder=True)
                except BaseException:
                    self.held.release(run_id)
                    raise
            except BaseException:
                if new_folder:  # leave no folder behind for a run that never was
                    remove_folder(self.files.run_dir(run_id))
                raise
        return run_id

    def update(self, run_id: str, fields: dict[str, Any]) -> RunDoc:
        """Change fields of a run (its file re-read under the write lock). Setting
        ``status="running"`` takes the run's lock (:class:`RunInProgress` if a live
        process holds it); any other status lets go of it. Progress saved and not written
        yet is written with these fields."""
        with self.gate.hold():
            before = self._find(run_id)
            run_id = before.id
            fields = {**self._waiting(run_id), **fields}
            starting = fields.get("status") == "running" and run_id not in self.held
            if starting:
                self.held.take(run_id, "resumed")
            try:
                doc = before.with_fields(fields)
                self._save(doc.to_dict(), before.to_dict())
            except BaseException:
                if starting:
                    self.held.release(run_id)
                raise
            finally:
                if "status" in fields and fields["status"] != "running":
                    self.held.release(run_id)
            return doc

    def import_runs(self, docs: Iterable[dict[str, Any]]) -> int:
        """Add finished runs' documents in bulk: their files written without an fsync
        each, the file system synced once, then the index in one transaction. A document
        with the id of a run already here replaces it. Returns how many were added."""
        known: set[str] = set()
        added = 0
        batch: list[dict[str, Any]] = []
        with self.gate.hold():
            for doc in docs:
                if valid_run_doc(doc):
                    batch.append(doc)
                if len(batch) >= IMPORT_BATCH:
                    added += self._import_batch(batch, known)
            added += self._import_batch(batch, known)
        return added

    def _import_batch(self, batch: list[dict[str, Any]], known: set[str]) -> int:
        adopted = list(self.files.adopt_all(batch, known))
        batch.clear()
        self.files.sync()  # the files on disk before the index rows that point to them
        return self.index.put_many(adopted, meta={"runs_mtime": self.files.mtime()})

    # -- runs a dead process left running ------------------------------------------------
    def mark_interrupted(self, run_ids: Iterable[str]) -> list[str]:
        """Mark the runs of ``run_ids`` left ``running`` that no live process is
        generating as ``interrupted`` (under the write lock). Returns their ids."""
        marked = []
        for run_id in run_ids:
            if run_id in self.held:
                continue
            try:
                probe = RunLock(self.files.lock_path(run_id))
            except UserInputError:
                continue  # an id no run folder can have: leave it as it is
            try:
                if probe.try_acquire() is not None:
                    continue  # a live process is generating it
            except StoreError:
                pass  # its folder is gone or cannot be written: no process can be running it
            try:
                current = self._read(run_id)
                if current is not None and current.status == "running":  # its journal holds what it accepted
                    accepted = {**current.counts.to_dict(), "accepted": self.files.count_records(run_id)}
                    self.update(run_id, {"status": "interrupted", "counts": accepted,
                                         "error": "the process stopped while this run was going on"})
                    marked.append(run_id)
            finally:
                probe.release()
        return marked

    def reap(self) -> bool:
        """Mark runs whose process died since this store opened as interrupted, if the
        write lock is free right now (a read never waits for it). Returns whether any was
        marked."""
        if not self.gate.writable:
            return False

        def dead(run_id: str) -> bool:
            try:
                return self.held.holder(run_id) is None
            except UserInputError:
                return False  # an id no run folder can have: leave it as it is

        running = [r for r in self.index.running() if dead(r)]
        if not running:
            return False
        try:
            with self.gate.hold(wait=0, blocking=False):
                return bool(self.mark_interrupted(running))
        except DataDirLocked:
            return False
