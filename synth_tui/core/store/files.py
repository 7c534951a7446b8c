"""The runs folder of a data directory: ``runs/<id>/`` holds a run's document
(``run.json``), its lock (``run.lock``), its accepted records (``records.jsonl``) and its
rejected output (``rejects.jsonl``). Everything here works on those files alone; what
they mean for the history (the index, the write lock) is the store's business."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import StoreError, UserInputError
from ..fileio import describe_os_error, fsync_dir
from .documents import CorruptHistory, read_run_file, valid_run_doc, write_run_file, write_run_file_unsynced
from .journal import Journal, read_jsonl, read_page


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def disk_usage(folder: Path) -> int:
    """Bytes the files of ``folder`` take on disk (as ``du`` counts them)."""
    total = 0
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def move_aside(path: Path, stem: str, suffix: str) -> Path:
    """Rename ``path`` to ``<stem>-<time><suffix>`` beside it (a damaged file kept for a
    person to look at); the new path."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
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


def remove_folder(run_dir: Path) -> int:
    """Remove a run's folder and what it holds, as far as it can; the bytes freed."""
    freed = 0
    with contextlib.suppress(OSError), os.scandir(run_dir) as entries:
        for entry in list(entries):
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    freed += disk_usage(Path(entry.path))
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                freed += getattr(st, "st_blocks", 0) * 512 or st.st_size
    with contextlib.suppress(OSError):
        run_dir.rmdir()
    return freed


class RunFiles:
    """The files of the runs of one data directory. ``warnings`` collects what a scan
    had to leave out (the store shows them)."""

    def __init__(self, data_dir: Path, warnings: list[str]) -> None:
        self.runs_dir = data_dir / "runs"
        self.warnings = warnings
        self._unsynced = False  # adopted run files that are not on disk yet

    def make(self) -> None:
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"cannot use data directory {self.runs_dir.parent}: {exc.strerror or exc}") from None

    def run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id.startswith(".") or "\0" in run_id:
            raise UserInputError(f"invalid run id {run_id!r}")
        return self.runs_dir / run_id

    def run_file(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "run.json"

    def lock_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "run.lock"

    def mtime(self) -> str:
        """The runs folder's change time: it moves when a run folder is added or removed."""
        try:
            return str(self.runs_dir.stat().st_mtime_ns)
        except OSError:
            return ""

    def make_folder(self, run_id: str) -> bool:
        """Create run ``run_id``'s folder; whether it is new."""
        run_dir = self.run_dir(run_id)
        new = not run_dir.is_dir()
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(describe_os_error(exc, run_dir)) from exc
        return new

    # -- run documents -------------------------------------------------------------------
    def read(self, run_id: str) -> dict[str, Any] | None:
        """The document in run ``run_id``'s file (None: no such file)."""
        return read_run_file(self.run_file(run_id))

    def write(self, doc: dict[str, Any]) -> None:
        write_run_file(self.run_file(doc["id"]), doc)

    def scan(self, known: set[str]) -> Iterator[dict[str, Any]]:
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
            try:
                doc = read_run_file(self.runs_dir / name / "run.json")
            except (CorruptHistory, UserInputError):
                bad.append(name)
                continue
            if doc is not None and valid_run_doc(doc):
                yield doc
        if bad:
            self.warnings.append(f"{plural(len(bad), 'run file')} in {self.runs_dir} could not be read and "
                                 f"{'is' if len(bad) == 1 else 'are'} left out: {', '.join(bad[:5])}"
                                 f"{' ...' if len(bad) > 5 else ''}")

    def names(self) -> set[str] | None:
        """The run folders' names (None: the runs folder cannot be listed)."""
        try:
            return {n for n in os.listdir(self.runs_dir) if not n.startswith(".")}
        except OSError:
            return None

    def adopt_all(self, docs: Iterable[dict[str, Any]], known: set[str]) -> Iterator[dict[str, Any]]:
        """Documents from elsewhere (the version before's history.json, an import): each
        run file is made to hold its document, without an fsync (:meth:`sync` once after);
        an id no folder can have is left out. Their ids go into ``known``."""
        for doc in docs:
            try:
                path = self.run_file(doc["id"])
            except UserInputError:
                continue
            try:
                current = read_run_file(path)
            except (CorruptHistory, UserInputError):
                current = None
            if current != doc:
                self.make_folder(doc["id"])
                write_run_file_unsynced(path, doc)
                self._unsynced = True
            known.add(doc["id"])
            yield doc

    def sync(self) -> None:
        """The run files adopted so far on disk, before an index that points to them."""
        if self._unsynced:
            os.sync()
            self._unsynced = False

    # -- records and rejections ----------------------------------------------------------
    def records_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "records.jsonl"

    def open_journal(self, run_id: str) -> Journal:
        return Journal(self.records_path(run_id))

    def iter_records(self, run_id: str) -> Iterator[dict[str, Any]]:
        return read_jsonl(self.records_path(run_id))

    def count_records(self, run_id: str) -> int:
        return sum(1 for _ in self.iter_records(run_id))

    def read_page(self, run_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        return read_page(self.records_path(run_id), offset, limit)

    def append_rejections(self, run_id: str, rejections: list[dict[str, Any]]) -> None:
        if not rejections:
            return
        path = self.run_dir(run_id) / "rejects.jsonl"
        try:
            with open(path, "ab") as fh:
                fh.write(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rejections))
        except OSError as exc:
            raise StoreError(describe_os_error(exc, path)) from exc

    def iter_rejections(self, run_id: str) -> Iterator[dict[str, Any]]:
        return read_jsonl(self.run_dir(run_id) / "rejects.jsonl")
