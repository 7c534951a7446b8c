"""The run's record in the history: its document (created or taken up again, progress
every few seconds, the end) and its journal of records and rejections, all through the
store. With no store nothing is kept. ResumePoint reads back where a stopped run stands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import StoreError, UserInputError
from ..events import Rejection
from ..schema import RecordSchema, check_schema
from ..store import Journal as RecordJournal
from ..store import Store, now_iso
from .config import Counts, RunConfig

PROGRESS_EVERY = 2.0  # seconds between progress writes to the history


@dataclass
class ResumePoint:
    """Where a stopped run stands: what its next session starts from."""

    run_id: str
    schema: RecordSchema
    config: RunConfig
    records: list[dict[str, Any]]
    counts: Counts
    started: str  # when the run was created
    elapsed: float  # seconds spent by its earlier sessions

    @classmethod
    def load(cls, store: Store, run_id: str, config_overrides: dict[str, Any] | None = None) -> ResumePoint:
        """Read a run that can be resumed (not running; not done, unless ``config_overrides``
        raise its count above the records it holds, as after an estimate's pilot) from the
        history."""
        doc = store.get_run(run_id)
        count = (config_overrides or {}).get("count")
        accepted = doc.counts.accepted
        if isinstance(count, int) and count <= accepted:
            raise UserInputError(f"run {doc.id} holds {accepted} records already: ask for more than that")
        if doc.status == "done" and count is None:
            raise UserInputError(f"run {doc.id} is already complete", cli="pass -n N to raise its count and go on")
        if doc.status == "running":
            raise UserInputError(f"run {doc.id} is still running")
        try:
            config = RunConfig.from_doc({**doc.config, **(config_overrides or {})})
        except (TypeError, ValueError) as exc:  # a document edited by hand
            raise UserInputError(f"run {doc.id}: its parameters cannot be read ({exc})") from None
        return cls(
            run_id=doc.id,
            schema=check_schema(doc.schema, f"run {doc.id}"),
            config=config,
            records=list(store.iter_records(doc.id)),
            counts=Counts.from_doc(doc.counts.to_dict()),
            started=doc.created or now_iso(),
            elapsed=doc.elapsed or 0.0,
        )


class RunRecord:
    """One run's document and journal in ``store`` (None: nothing is written)."""

    def __init__(
        self, store: Store | None, run_id: str, *, clock: Callable[[], float] = time.monotonic,
        every: float = PROGRESS_EVERY,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self._clock = clock
        self._every = every
        self._journal: RecordJournal | None = None
        self._opened = False
        self._last_write = 0.0

    def open(self, fields: dict[str, Any], *, resumed: bool) -> None:
        """Put the run in the history as running (a new document, or its own again on a
        resume) and open its journal."""
        if self.store is None:
            return
        if resumed:
            self.store.update_run(self.run_id, status="running", **fields)
        else:
            self.store.create_run({"id": self.run_id, **fields})
        self._opened = True
        self._journal = self.store.open_journal(self.run_id)

    def append(self, records: list[dict[str, Any]]) -> None:
        if self._journal is not None:
            self._journal.append(records)

    def append_rejection(self, rejection: Rejection) -> None:
        if self.store is not None:
            self.store.append_rejections(self.run_id, [asdict(rejection)])

    def save_progress(self, counts: dict[str, Any]) -> None:
        """Write the counts, at most once every few seconds."""
        now = self._clock()
        if self.store is not None and now - self._last_write >= self._every:
            self._last_write = now
            self.store.save_progress(self.run_id, counts=counts)  # written by the store's thread, off this loop

    def close(
        self, status: str, error: str | None, *, counts: dict[str, Any], elapsed: float, finished: str,
    ) -> tuple[str, str | None]:
        """Close the journal and write how the run ended. The status and error to
        report: a failure to write them makes the run failed, saying why."""
        if self.store is None:
            return status, error
        try:
            if self._journal is not None:
                self._journal.close()
            if self._opened:
                self.store.update_run(self.run_id, status=status, error=error, finished=finished, counts=counts,
                                      elapsed=round(elapsed, 3))
        except StoreError as exc:
            status, error = "failed", f"{error + '; ' if error else ''}{exc}"
        return status, error
