"""The index as one store sees it: opened as the directory needs (migrated, rebuilt,
repaired), reopened when another process replaced its file, and rebuilt when SQLite finds
it damaged half way through a query."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .files import RunFiles, move_aside
from .index import CorruptIndex, HistoryIndex
from .locks import WriteGate
from .migrate import legacy_exists
from .rebuild import IndexBuilder
from .repair import IndexRepair


class OpenIndex:
    """The store's current :class:`HistoryIndex`, whose methods it answers: each call
    first reopens the file if another process replaced it, and a call that finds the file
    damaged is retried once on a rebuilt index (a read-only store: one in memory, built
    from the run files). Writes nothing unless ``gate`` is writable."""

    def __init__(self, data_dir: Path, files: RunFiles, gate: WriteGate, warnings: list[str]) -> None:
        self.gate = gate
        self.warnings = warnings
        self.repair = IndexRepair(files, warnings)
        self.builder = IndexBuilder(data_dir, files, self.repair, lock_wait=gate.wait)
        self._files = files
        self._index: HistoryIndex | None = None

    @property
    def current(self) -> HistoryIndex:
        assert self._index is not None
        return self._index

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.current, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._reopen_if_replaced()
            try:
                return getattr(self.current, name)(*args, **kwargs)
            except CorruptIndex as exc:
                self._recover(exc)
                return getattr(self.current, name)(*args, **kwargs)

        return call

    def close(self) -> None:
        if self._index is not None:
            self._index.close()

    # -- opening -------------------------------------------------------------------------
    def open_for_writing(self) -> None:
        """The index, migrated, rebuilt or repaired as the directory needs (under the
        write lock)."""
        path, builder = self.builder.path, self.builder
        builder.remove_stale_temp_files()
        index: HistoryIndex | None = None
        if path.exists() or path.is_symlink():
            try:
                index = HistoryIndex(path, writable=True, timeout=self.gate.wait)
            except CorruptIndex as exc:
                self._moved_aside(exc, "is")
        if index is not None:
            try:
                if legacy_exists(builder.legacy):
                    builder.merge_legacy(index)
                self.repair.settle(index)
                self._index = index
                return
            except CorruptIndex as exc:  # damaged past its first page
                index.close()
                self._moved_aside(exc, "is")
        self._index = builder.build()

    def _moved_aside(self, exc: CorruptIndex, tense: str) -> None:
        backup = move_aside(self.builder.path, "index.corrupt", ".sqlite")
        self.warnings.append(f"{exc}. It was moved to {backup}; the history {tense} rebuilt from runs/*/run.json.")

    def open_for_reading(self) -> None:
        """The index file as it is; where there is none (a directory of the version
        before, or one a writer never opened) or it cannot be used, one in memory built
        from the files, with a warning. Writes nothing."""
        path = self.builder.path
        if path.exists() or path.is_symlink():
            try:
                index = HistoryIndex(path, writable=False, timeout=self.gate.wait)
            except CorruptIndex as exc:
                self.warnings.append(f"{exc}. Run synth-tui once with write access to rebuild it.")
            else:
                if legacy_exists(self.builder.legacy):
                    self.builder.note_legacy(index)
                self._index = index
                return
        self._index = self.builder.in_memory()

    def _reopen_if_replaced(self) -> None:
        index = self._index
        if index is None or not index.replaced():
            return
        path = self.builder.path
        if not path.exists():
            return  # being rebuilt, or gone: the next writer rebuilds it
        with contextlib.suppress(StoreError):
            fresh = HistoryIndex(path, writable=self.gate.writable, timeout=self.gate.wait)
            self._index = fresh
            index.close()

    def _recover(self, exc: CorruptIndex) -> None:
        """An index that SQLite found damaged mid-way: moved aside and rebuilt from the
        run files (a read-only store: one in memory, from the run files)."""
        damaged = self.current
        if damaged.path is None:
            raise exc
        if not self.gate.writable:
            memory = HistoryIndex(None, writable=True)
            memory.put_many(self._files.scan(set()))
            self._index = memory
            damaged.close()
            self.warnings.append(f"{exc}. Run synth-tui once with write access to rebuild it.")
            return
        with self.gate.hold():
            damaged.close()
            if not damaged.replaced():  # else another process rebuilt it already
                self._moved_aside(exc, "was")
                self._index = self.builder.build()
            else:
                self._index = HistoryIndex(damaged.path, writable=True, timeout=self.gate.wait)
