"""Building an index from files: the migration of the version before's ``history.json``,
a rebuild from ``runs/*/run.json`` when the index is lost or damaged, and, for a store
that may not write, the same in memory.

A new index is built beside ``index.sqlite`` and renamed into place, and only then is
``history.json`` moved aside, so a crash at any moment leaves a directory that either
version reads in full.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..fileio import describe_os_error, fsync_dir
from .documents import CorruptHistory
from .files import RunFiles, move_aside, plural
from .index import HistoryIndex, RunFilter
from .migrate import iter_legacy_history, legacy_exists
from .repair import IndexRepair

INDEX = "index.sqlite"
LEGACY = "history.json"  # the version before's history


def _remember(known: set[str], docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for doc in docs:
        known.add(doc["id"])
        yield doc


class IndexBuilder:
    """Indexes of one data directory built from its files; what happened goes to
    ``warnings``."""

    def __init__(self, data_dir: Path, files: RunFiles, repair: IndexRepair, *, lock_wait: float) -> None:
        self.data_dir = data_dir
        self.files = files
        self.repair = repair
        self.warnings = repair.warnings
        self.lock_wait = lock_wait
        self.path = data_dir / INDEX
        self.legacy = data_dir / LEGACY

    def remove_stale_temp_files(self) -> None:
        """Leftovers of an import or a rebuild that a crash stopped."""
        for tmp in self.data_dir.glob(f".{INDEX}.*.tmp*"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def build(self) -> HistoryIndex:
        """A new index from history.json (a migration) and the run files, built beside
        the index's path and renamed into place; then history.json is moved aside. A crash
        before the rename leaves the directory as it was (under the write lock)."""
        path, legacy = self.path, self.legacy
        tmp = self.data_dir / f".{INDEX}.{secrets.token_hex(6)}.tmp"
        known: set[str] = set()
        migrated: int | None = None
        corrupt: CorruptHistory | None = None
        try:
            new = HistoryIndex(tmp, writable=True, timeout=self.lock_wait)
            try:
                if legacy_exists(legacy):
                    try:
                        migrated = new.put_many(self.files.adopt_all(iter_legacy_history(legacy), known))
                    except CorruptHistory as exc:
                        corrupt, migrated = exc, None
                        new.clear()
                        known.clear()
                found = new.put_many(self.files.scan(known), meta={"runs_mtime": self.files.mtime()})
                self.files.sync()
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
        self._say_built(found, migrated, corrupt)
        return HistoryIndex(path, writable=True, timeout=self.lock_wait)

    def _say_built(self, found: int, migrated: int | None, corrupt: CorruptHistory | None) -> None:
        legacy = self.legacy
        if corrupt is not None:
            backup = move_aside(legacy, "history.corrupt", ".json")
            self.warnings.append(f"{corrupt}. It was moved to {backup}; the history was rebuilt from "
                                 f"runs/*/run.json ({plural(found, 'run')}).")
        elif migrated is not None:
            backup = move_aside(legacy, "history.migrated", ".json")
            self.warnings.append(
                f"The history ({plural(migrated + found, 'run')}) now keeps one file per run and an index; "
                f"{legacy.name} of the version before was moved to {backup} (delete it when no older synth-tui "
                "needs it).")
        elif found:
            self.warnings.append(f"The history index {self.path} was missing; it was rebuilt from runs/*/run.json "
                                 f"({plural(found, 'run')}).")

    def merge_legacy(self, index: HistoryIndex) -> None:
        """A history.json beside the index: a migration that a crash stopped before its
        last step, or an older synth-tui that wrote here since. Its runs the index does
        not know are added; then it is moved aside (under the write lock)."""
        legacy = self.legacy
        known: set[str] = set()
        try:
            docs = [d for d in iter_legacy_history(legacy) if not index.has(d["id"])]
        except CorruptHistory as exc:
            backup = move_aside(legacy, "history.corrupt", ".json")
            found = self.repair.reconcile_folders(index)
            self.warnings.append(f"{exc}. It was moved to {backup}; the history was rebuilt from runs/*/run.json "
                                 f"({plural(found + index.count(RunFilter()), 'run')}).")
            return
        added = list(self.files.adopt_all(docs, known))
        self.files.sync()
        index.put_many(added, meta={"runs_mtime": self.files.mtime()})
        backup = move_aside(legacy, "history.migrated", ".json")
        if added:
            self.warnings.append(f"{plural(len(added), 'run')} of {legacy} (written by an older synth-tui) were "
                                 f"added to the history; the file was moved to {backup}.")

    def note_legacy(self, index: HistoryIndex) -> None:
        """A history.json beside the index that a reader finds (an older synth-tui wrote
        it): say so."""
        legacy = self.legacy
        try:
            new = sum(1 for doc in iter_legacy_history(legacy) if not index.has(doc["id"]))
        except CorruptHistory as exc:
            self.warnings.append(f"{exc}. Run synth-tui once with write access to repair it.")
            return
        if new:
            self.warnings.append(f"{legacy} (written by an older synth-tui) holds {plural(new, 'run')} not in the "
                                 "history yet: the next synth-tui that writes adds them.")
        else:
            self.warnings.append(f"{legacy} was written by an older synth-tui; the next synth-tui that writes moves "
                                 "it aside.")

    def in_memory(self) -> HistoryIndex:
        """An index in memory from history.json and the run files, for a store that may
        not write where there is no index file (or it cannot be used), with a warning."""
        legacy = self.legacy
        memory = HistoryIndex(None, writable=True)
        known: set[str] = set()
        if legacy_exists(legacy):
            try:
                memory.put_many(_remember(known, iter_legacy_history(legacy)))
            except CorruptHistory as exc:
                memory.clear()
                known.clear()
                self.warnings.append(f"{exc}. Run synth-tui once with write access to repair it.")
        found = memory.put_many(self.files.scan(known))
        if found and legacy_exists(legacy) and known:
            self.warnings.append(f"{plural(found, 'run')} missing from {legacy} are shown from runs/*/run.json; "
                                 "the next synth-tui that writes restores them.")
        elif found and not legacy_exists(legacy):
            self.warnings.append(f"the history index {self.path} is missing; the {plural(found, 'run')} in runs/ "
                                 "are shown from their files, and the next synth-tui that writes rebuilds it.")
        return memory
