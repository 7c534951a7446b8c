"""Removing runs: one run (``delete``), or many at once by age, status or number kept, or
by id (``prune``), a batch of runs per hold of the write lock so that other processes'
writes go on meanwhile. A run that is going is never removed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..errors import DataDirLocked, StoreError, UserInputError
from .documents import STATUSES
from .files import RunFiles, disk_usage, remove_folder
from .index import CLEAN, DELETING, HistoryIndex, RunFilter
from .locks import HeldRuns, RunInProgress, WriteGate
from .rundoc import RunDoc

PRUNE_BATCH = 200  # runs removed per hold of the write lock


@dataclass
class PruneResult:
    """What a prune removed (or, ``dry_run``, would remove). ``ids``: those runs, oldest
    first; ``sample``: the documents of the first few; ``records``: their accepted
    records; ``freed``: bytes given back to the disk (run folders, and the index's space
    when it shrinks); ``skipped``: runs left alone because they are running."""

    ids: list[str] = field(default_factory=list)
    sample: list[RunDoc] = field(default_factory=list)
    records: int = 0
    freed: int = 0
    skipped: list[str] = field(default_factory=list)
    dry_run: bool = False

    SAMPLE = 20

    def add(self, docs: list[RunDoc]) -> None:
        for doc in docs:
            self.ids.append(doc.id)
            if len(self.sample) < self.SAMPLE:
                self.sample.append(doc)
            self.records += doc.counts.accepted


def check_prune_request(older_than: float | None, statuses: list[str], keep: int | None,
                        run_ids: Iterable[str] | None) -> None:
    """:class:`UserInputError` for a prune that names no runs or names them wrongly."""
    if "running" in statuses:
        raise UserInputError("a running run is never pruned: stop it first, then prune it as cancelled")
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise UserInputError(f"unknown status {unknown[0]!r}: one of {', '.join(STATUSES[1:])}")
    if older_than is None and not statuses and keep is None and run_ids is None:
        raise UserInputError("say which runs to prune: by age, by status, how many to keep, or which ones")
    if keep is not None and keep < 0:
        raise UserInputError(f"the number of runs to keep must be 0 or more, not {keep}")


class Remover:
    """The removals of one store. ``read(run_id)`` reads a run's document (None when
    there is none)."""

    def __init__(self, files: RunFiles, index: HistoryIndex, gate: WriteGate, held: HeldRuns, *,
                 read: Callable[[str], RunDoc | None]) -> None:
        self.files = files
        self.index = index
        self.gate = gate
        self.held = held
        self._read = read

    def delete(self, run_id: str) -> None:
        """Remove a run and its files (under the write lock, which the caller holds);
        :class:`RunInProgress` while it is being generated."""
        if run_id in self.held:
            raise RunInProgress(run_id, None, "deleted")
        lock = self.held.lock_to_remove(run_id)
        try:
            self._remove([run_id])
        finally:
            lock.release()

    def _remove(self, run_ids: list[str]) -> int:
        """Remove runs whose locks the caller holds (under the write lock): rows marked,
        run files unlinked (from then on they are gone), the rest of their folders, the
        rows. Returns the bytes freed."""
        freed = sum(disk_usage(self.files.run_dir(run_id)) for run_id in run_ids)
        self.index.set_dirty(run_ids, DELETING)
        try:
            for run_id in run_ids:
                try:
                    self.files.run_file(run_id).unlink(missing_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot delete run {run_id}: {exc.strerror or exc}") from None
        except BaseException:
            with contextlib.suppress(StoreError):
                self.index.set_dirty(run_ids, CLEAN)
            raise
        for run_id in run_ids:
            remove_folder(self.files.run_dir(run_id))
        self.index.remove(run_ids, meta={"runs_mtime": self.files.mtime()})
        return freed

    def prune(self, statuses: list[str], *, older_than: float | None, keep: int | None,
              run_ids: Iterable[str] | None, dry_run: bool, now: float | None,
              on_batch: Callable[[int], None] | None) -> PruneResult:
        """Remove the runs a checked request (:func:`check_prune_request`) names; see
        :meth:`Store.prune <synth_tui.core.store.Store.prune>`."""
        result = PruneResult(dry_run=dry_run)
        size_before = self.index.size() if not dry_run and self.index.path else 0
        for ids in self._batches(older_than, tuple(statuses), keep, run_ids, now):
            self._batch(ids, result)
            if on_batch is not None:
                on_batch(len(result.ids))
        if not dry_run and result.ids and self.index.path:
            with contextlib.suppress(StoreError, DataDirLocked), self.gate.hold():
                self.index.give_back_space()
            result.freed += max(0, size_before - self.index.size())
        return result

    def _batches(self, older_than: float | None, statuses: tuple[str, ...], keep: int | None,
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

    def _batch(self, ids: list[str], result: PruneResult) -> None:
        """Remove one batch of runs (a dry run: count what they hold), each one's lock
        held meanwhile so that nobody resumes it; a run that is going is skipped."""
        with contextlib.ExitStack() as locks:
            if not result.dry_run:
                locks.enter_context(self.gate.hold())
            docs = []
            for run_id in ids:
                doc = self._read(run_id)
                if doc is None:
                    continue
                if not self._may_go(doc, locks, result.dry_run):
                    result.skipped.append(run_id)
                    continue
                docs.append(doc)
            if docs:
                going = [d.id for d in docs]
                result.freed += (sum(disk_usage(self.files.run_dir(i)) for i in going) if result.dry_run
                                 else self._remove(going))
            result.add(docs)

    def _may_go(self, doc: RunDoc, locks: contextlib.ExitStack, dry_run: bool) -> bool:
        """Whether a run may be removed: not going, and (unless ``dry_run``) its lock
        taken, to be let go of with ``locks``."""
        if self.held.is_going(doc.id, doc.status):
            return False
        if not dry_run:
            try:
                locks.callback(self.held.lock_to_remove(doc.id).release)
            except RunInProgress:
                return False
        return True
