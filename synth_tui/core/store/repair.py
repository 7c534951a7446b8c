"""Keeping the index and the run files in agreement: what a writer that died left half done
is finished or undone, run folders added or removed behind the history's back are taken
in, and a corrupt run file is written again from the index's copy. The run files are the
truth; every step here runs under the directory's write lock."""

from __future__ import annotations

import contextlib
from typing import Any

from ..errors import UserInputError
from .documents import CorruptHistory, write_run_file
from .files import RunFiles, move_aside, plural, remove_folder
from .index import DELETING, WRITING, HistoryIndex


class IndexRepair:
    """Repairs of one data directory's index; what they did goes to ``warnings``."""

    def __init__(self, files: RunFiles, warnings: list[str]) -> None:
        self.files = files
        self.warnings = warnings

    def settle(self, index: HistoryIndex) -> None:
        """Finish what a writer that died left half done, and take in run folders added or
        removed behind the history's back."""
        for run_id, status, dirty in index.unsettled():
            if dirty == DELETING:
                self.finish_delete(index, run_id)
            else:
                self._refresh(index, run_id, status, dirty)
        if index.meta("runs_mtime") != self.files.mtime():
            self.reconcile_folders(index)

    def finish_delete(self, index: HistoryIndex, run_id: str) -> None:
        """A delete that a crash stopped: finish it."""
        with contextlib.suppress(UserInputError):
            run_dir = self.files.run_dir(run_id)
            with contextlib.suppress(OSError):
                (run_dir / "run.json").unlink(missing_ok=True)
            remove_folder(run_dir)
        index.remove([run_id], meta={"runs_mtime": self.files.mtime()})

    def _refresh(self, index: HistoryIndex, run_id: str, status: str, dirty: int) -> None:
        """Make run ``run_id``'s index row agree with its file."""
        try:
            path = self.files.run_file(run_id)
        except UserInputError:
            index.remove([run_id])
            return
        try:
            doc = self.files.read(run_id)
        except CorruptHistory as exc:
            doc = self.restore(index, run_id, exc)
        if doc is None:
            if dirty == WRITING:  # a create that a crash stopped before the run's file existed
                journal = path.parent / "records.jsonl"
                if not (journal.exists() and journal.stat().st_size):  # nothing was generated: no run
                    remove_folder(path.parent)
                index.remove([run_id], meta={"runs_mtime": self.files.mtime()})
            else:  # the run's files are gone: someone deleted them
                index.remove([run_id])
            return
        if dirty or doc.get("status") != status:
            index.put(doc, sync=False)

    def restore(self, index: HistoryIndex, run_id: str, exc: CorruptHistory) -> dict[str, Any] | None:
        """A corrupt run file: moved aside, and written again from the index's copy."""
        path = self.files.run_file(run_id)
        copy = index.get(run_id)
        backup = move_aside(path, "run.corrupt", ".json")
        if copy is None:
            self.warnings.append(f"{exc}. It was moved to {backup}.")
            return None
        write_run_file(path, copy)
        self.warnings.append(f"{exc}. It was moved to {backup} and written again from the history index.")
        return copy

    def reconcile_folders(self, index: HistoryIndex) -> int:
        """Add runs whose folder the index does not know, drop rows whose folder is gone.
        Returns how many runs were added."""
        names = self.files.names()
        if names is None:
            return 0
        ids = set(index.all_ids())
        gone = [i for i in ids if i not in names]
        added = index.put_many(self.files.scan(ids), meta={"runs_mtime": self.files.mtime()})
        if gone:
            index.remove(gone)
        if added or gone:
            self.warnings.append(f"The history took in {plural(added, 'run')} found in runs/ and dropped "
                                 f"{plural(len(gone), 'run')} whose folder is gone.")
        return added

