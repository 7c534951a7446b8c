"""One dataset run: its tables generated parents first, as one run in the history.

The dataset's document in the history (``kind: "dataset"``) holds the dataset file, the
seed every key and reference is drawn from, and each table's count and status. Each
table is a run of its own in a store inside the dataset's folder (``tables/``): the
engine's journal, resume and report work per table unchanged, and removing the dataset
removes them. A table run completes the rows its TableRows give (keys, references,
parent rows as context), so a resume continues each table at its next row and never
orphans or repeats one.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.base import Backend
from ..errors import BackendError, StoreError, UserInputError
from ..events import EventSink
from ..store import RunDoc, Store, new_run_id, now_iso
from .rows import TableRows
from .spec import Dataset, Table, check_dataset

KIND = "dataset"


@dataclass
class TableOutcome:
    name: str
    run_id: str | None
    status: str  # pending | running | done | failed | cancelled
    requested: int = 0
    accepted: int = 0

    def to_doc(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "requested": self.requested, "accepted": self.accepted}


@dataclass
class DatasetResult:
    run_id: str
    status: str
    tables: list[TableOutcome] = field(default_factory=list)
    error: str | None = None
    elapsed: float = 0.0

    @property
    def success(self) -> bool:
        return self.status == "done"

    @property
    def accepted(self) -> int:
        return sum(t.accepted for t in self.tables)

    @property
    def requested(self) -> int:
        return sum(t.requested for t in self.tables)


def tables_dir(store: Store, run_id: str) -> Path:
    """Where a dataset run keeps its tables' runs."""
    return store.run_dir(run_id) / "tables"


class DatasetRun:
    """``await DatasetRun(...).execute()``; ``cancel()`` from any thread keeps what was
    accepted. ``DatasetRun.resume`` continues a stopped one."""

    def __init__(
        self, dataset: Dataset, config: Any, backend: Backend, *, store: Store, on_event: EventSink | None = None,
        run_id: str | None = None, doc: RunDoc | None = None,
    ) -> None:
        self.dataset = dataset
        self.config = config  # a RunConfig: its count is each table's own
        self.backend = backend
        self.store = store
        self.on_event: EventSink = on_event or (lambda event: None)
        self.doc = doc
        self.run_id = doc.id if doc else run_id or new_run_id()
        seed = config.params.seed
        self.seed: int = _recorded_seed(doc) if doc else seed if seed is not None else random.getrandbits(48)
        self.outcomes = {name: self._outcome(name) for name in dataset.tables}
        self.current: str | None = None  # the table being generated
        self._run: Any = None
        self._error: str | None = None  # the failed table's error
        self._cancelled = False
        self._elapsed_before = (doc.elapsed or 0.0) if doc else 0.0

    @classmethod
    def resume(cls, store: Store, run_id: str, backend: Backend, *, on_event: EventSink | None = None) -> DatasetRun:
        from ..engine import RunConfig

        doc = store.get_run(run_id)
        if doc.extra.get("kind") != KIND:
            raise UserInputError(f"run {doc.id} is not a dataset run")
        if doc.status in ("done", "running"):
            raise UserInputError(f"run {doc.id} is {'already complete' if doc.status == 'done' else 'running'}")
        dataset = check_dataset(doc.schema, f"run {doc.id}")
        try:
            config = RunConfig.from_doc(doc.config)
        except (TypeError, ValueError) as exc:  # a document edited by hand
            raise UserInputError(f"run {doc.id}: its parameters cannot be read ({exc})") from None
        return cls(dataset, config, backend, store=store, on_event=on_event, doc=doc)

    def _outcome(self, name: str) -> TableOutcome:
        tables = self.doc.extra.get("tables") if self.doc is not None else None
        saved = (tables.get(name) if isinstance(tables, dict) else None) or {}
        if not isinstance(saved, dict):  # a document edited by hand
            saved = {}
        run_id, status = saved.get("run_id"), saved.get("status")
        return TableOutcome(name, run_id if isinstance(run_id, str) else None,
                            status if isinstance(status, str) else "pending",
                            _whole(saved.get("requested")), _whole(saved.get("accepted")))

    def cancel(self) -> None:
        self._cancelled = True
        if self._run is not None:
            self._run.cancel()

    # -- the run ---------------------------------------------------------------------------
    async def execute(self) -> DatasetResult:
        started = time.monotonic()
        status, error = "done", None
        try:
            self._open()
            with Store(tables_dir(self.store, self.run_id)) as tables:
                status, error = await self._tables(tables)
        except (BackendError, StoreError, UserInputError) as exc:
            status, error = "failed", str(exc)
        except Exception as exc:  # a bug must not lose the tables: report it as a failure
            status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        elapsed = self._elapsed_before + time.monotonic() - started
        try:
            self._save(status=status, error=error, finished=now_iso(), elapsed=round(elapsed, 3))
        except StoreError as exc:
            status, error = "failed", f"{error + '; ' if error else ''}{exc}"
        return DatasetResult(self.run_id, status, list(self.outcomes.values()), error, elapsed)

    def _open(self) -> None:
        fields = {"kind": KIND, "schema": self.dataset.source, "config": self.config.to_doc(),
                  "backend": self.backend.describe(), "dataset_seed": self.seed, "error": None}
        if self.doc is None:
            self.store.create_run({"id": self.run_id, **fields, **self._totals()})
        else:
            self.store.update_run(self.run_id, status="running", error=None)

    async def _tables(self, tables: Store) -> tuple[str, str | None]:
        pools: dict[str, list[Any]] = {}
        for table in self.dataset.tables.values():
            if self._cancelled:
                return "cancelled", None
            outcome = self.outcomes[table.name]
            if outcome.status != "done":
                self.current = table.name
                await self._table(table, outcome, tables, pools)
                self._save()
                if outcome.status != "done":
                    return outcome.status, self._error
            if self._referenced(table.name) and table.primary_key and outcome.run_id:
                pools[table.name] = [r.get(table.primary_key) for r in tables.iter_records(outcome.run_id)]
        self.current = None
        return "done", None

    async def _table(self, table: Table, outcome: TableOutcome, tables: Store, pools: dict[str, list[Any]]) -> None:
        from ..engine import Run

        rows = TableRows(table, self.seed, pools, self._parents(table, tables))
        if outcome.run_id is not None:
            saved = tables.get_run(outcome.run_id)
            if saved["status"] == "done":  # it ended before the dataset's document said so
                outcome.status, outcome.accepted = "done", int((saved.get("counts") or {}).get("accepted") or 0)
                return
        if outcome.run_id is None:
            count = await asyncio.to_thread(rows.count)
            outcome.requested = count
            if count == 0:  # every parent drew no children
                outcome.status = "done"
                return
            run = Run(table.schema, self.config.copy(count=count, enrich=None, examples=None), self.backend,
                      store=tables, on_event=self.on_event, keep_records=False, rows=rows)
            outcome.run_id, outcome.status = run.run_id, "running"
            self._save()  # the table's run id is in the history before its first request
        else:
            run = Run.resume(tables, outcome.run_id, self.backend, on_event=self.on_event, keep_records=False,
                             rows=rows)
        self._run = run
        result = await run.execute()
        self._run = None
        outcome.status, outcome.accepted = result.status, result.accepted
        if result.error:
            self._error = f"table {table.name}: {result.error}"

    def _parents(self, table: Table, tables: Store) -> Any:
        if table.per is None:
            return None
        parent = self.outcomes[table.per.parent]

        def records() -> Iterator[dict[str, Any]]:
            return tables.iter_records(parent.run_id) if parent.run_id else iter(())

        return records

    def _referenced(self, name: str) -> bool:
        return any(ref.table == name for t in self.dataset.tables.values() for ref in t.refs.values())

    def _totals(self) -> dict[str, Any]:
        outcomes = self.outcomes.values()
        counts = {"requested": sum(t.requested for t in outcomes), "accepted": sum(t.accepted for t in outcomes)}
        return {"counts": counts, "tables": {t.name: t.to_doc() for t in outcomes}}

    def _save(self, **fields: Any) -> None:
        self.store.update_run(self.run_id, **self._totals(), **fields)


def _recorded_seed(doc: RunDoc) -> int:
    """The seed a dataset run drew its keys from: without it, a resume would draw others."""
    seed = doc.extra.get("dataset_seed")
    if type(seed) is not int:
        raise UserInputError(f"run {doc.id}: its dataset seed cannot be read, so its keys cannot be drawn again")
    return seed


def _whole(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0
