"""A running run's progress, written by a thread of the store so that the engine's event
loop never waits on the disk or the write lock: the latest fields of each run wait here
until the thread (or the run's next update, or the store's close) writes them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import DataDirLocked, StoreError


class ProgressWriter:
    """``write(run_id, fields)`` writes a run's fields (the store's update); it runs
    holding ``mutex``, the store's writing mutex, taken before the waiting fields are
    taken so that an update of the run in another thread either waits or takes them.
    ``ours(run_id)``: whether this store still generates the run (else its fields are
    dropped: its last update has the final counts)."""

    def __init__(self, mutex: threading.RLock, write: Callable[[str, dict[str, Any]], Any],
                 ours: Callable[[str], bool]) -> None:
        self._mutex = mutex
        self._write = write
        self._ours = ours
        self._waiting: dict[str, dict[str, Any]] = {}  # run id -> fields waiting for the thread
        self._errors: dict[str, StoreError] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def save(self, run_id: str, fields: dict[str, Any]) -> None:
        """Keep ``fields`` for the thread to write, the latest of each run only. Never
        blocks on the disk or the lock. A write that failed is raised by the next call
        for that run."""
        error = self._errors.pop(run_id, None)
        if error is not None:
            raise error
        with self._wake:
            if self._closing:
                return
            self._waiting[run_id] = {**self._waiting.get(run_id, {}), **fields}
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="history-progress", daemon=True)
                self._thread.start()
            self._wake.notify()

    def take(self, run_id: str) -> dict[str, Any]:
        """The fields waiting for run ``run_id``, which the caller now writes."""
        with self._wake:
            return self._waiting.pop(run_id, {})

    def flush(self) -> None:
        """Write the fields that wait, now, in this thread."""
        while True:
            with self._mutex, self._wake:
                if not self._waiting:
                    return
                run_id, fields = self._waiting.popitem()
            self._write_one(run_id, fields)

    def stop(self) -> None:
        """Let the thread write what waits, and end it."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._thread = None

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._closing:
                    self._wake.wait()
                if self._closing and not self._waiting:
                    return
            with self._mutex:  # taken before the fields: an update of the run waits or takes them
                with self._wake:
                    if not self._waiting:
                        continue
                    run_id, fields = self._waiting.popitem()
                self._write_one(run_id, fields)

    def _write_one(self, run_id: str, fields: dict[str, Any]) -> None:
        if not self._ours(run_id):
            return  # the run ended (or another store runs it): its last update has the final counts
        try:
            self._write(run_id, fields)
        except (StoreError, DataDirLocked) as exc:
            self._errors[run_id] = exc if isinstance(exc, StoreError) else StoreError(str(exc))
        except Exception as exc:  # noqa: BLE001 - a thread that dies would never write again
            self._errors[run_id] = StoreError(f"cannot save the progress of run {run_id}: {exc}")
