"""Model comparison: one schema, several backend/model pairs, the same count and seed.

Each model's data is a normal run in the history; the comparison is computed from those
runs, so any runs can be compared later (the TUI's history does that for marked runs).
Comparison runs the models one after the other, for the CLI and the TUI alike.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .backends import BACKENDS, Backend, BackendSpec
from .engine import Run, RunConfig, RunResult
from .errors import UserInputError
from .events import EventSink
from .pricing import price_for, run_price
from .report import pct, run_report
from .schema import RecordSchema
from .store import Store


class Comparison:
    """Run ``schema`` on each of ``specs`` in turn, each a normal run in ``store`` with its
    own copy of ``config``. Without a seed in ``config`` one is drawn, the same for every
    model, so that they get the same requests.

    ``make_backend(spec)`` builds each backend, all before the first run (a missing key
    stops the comparison before it starts); each is closed after its run.
    ``on_begin(spec, run)`` is called before each run starts and may return the event
    sink for that run (otherwise ``on_event``); ``on_end(result)`` after it ends.
    ``cancel()``, from any thread, stops the current run (keeping its records) and
    starts no other; a cancelled run ends the comparison too."""

    def __init__(
        self,
        schema: RecordSchema,
        config: RunConfig,
        specs: Sequence[BackendSpec],
        make_backend: Callable[[BackendSpec], Backend],
        store: Store,
        *,
        on_event: EventSink | None = None,
        on_begin: Callable[[BackendSpec, Run], EventSink | None] | None = None,
        on_end: Callable[[RunResult], None] | None = None,
    ) -> None:
        self.seed: int = config.params.seed if config.params.seed is not None else random.randrange(1, 2**31)
        self.config = config.copy()
        self.config.params.seed = self.seed
        self.schema = schema
        self.specs = list(specs)
        self.make_backend = make_backend
        self.store = store
        self.on_event = on_event
        self.on_begin = on_begin
        self.on_end = on_end
        self.current: Run | None = None
        self._stopped = False

    def cancel(self) -> None:
        self._stopped = True
        if self.current is not None:
            self.current.cancel()

    @property
    def cancelled(self) -> bool:
        return self._stopped

    async def execute(self) -> list[RunResult]:
        """The results of the runs that ran, in the order of ``specs``."""
        backends: list[Backend] = []
        try:
            for spec in self.specs:
                backends.append(self.make_backend(spec))
            results: list[RunResult] = []
            while backends and not self._stopped:
                spec = self.specs[len(results)]
                async with backends.pop(0) as backend:
                    run = self._start(spec, backend)
                    results.append(await run.execute())
                if self.on_end is not None:
                    self.on_end(results[-1])
                if run.cancelled:
                    break
            return results
        finally:
            for backend in backends:  # built, never used
                await backend.aclose()

    def _start(self, spec: BackendSpec, backend: Backend) -> Run:
        run = Run(self.schema, self.config.copy(), backend, store=self.store, on_event=self.on_event)
        self.current = run
        if self.on_begin is not None:
            sink = self.on_begin(spec, run)
            if sink is not None:
                run.on_event = sink
        if self._stopped:  # cancelled while the run was being set up
            run.cancel()
        return run


@dataclass
class ComparisonRow:
    label: str
    run_id: str
    status: str
    accepted: int
    requested: int
    validity: float | None  # None: no records to judge by (a run that failed at once)
    duplicate_rate: float | None
    records_per_s: float | None
    latency_ms: float | None
    tokens_per_record: float | None
    cost: float | None  # in the price's currency, None when no price is configured
    enum_evenness: float | None
    unique_ratio: float | None
    missing_rate: float | None


def parse_model_spec(text: str, default_kind: str = "openai") -> BackendSpec:
    """``backend:model[@base_url]``, or ``model`` for the default backend.

    Examples: ``openai:gpt-4o-mini``, ``ollama:llama3.2@http://gpu:11434``,
    ``hf:meta-llama/Llama-3.1-8B-Instruct:novita``, ``local:smollm2``."""
    spec, _, base_url = text.partition("@")
    kind, sep, model = spec.partition(":")
    if not sep or kind not in BACKENDS:
        kind, model = default_kind, spec
    if not model:
        raise UserInputError(f"model {text!r}: write backend:model, e.g. openai:gpt-4o-mini")
    return BackendSpec(kind=kind, model=model, base_url=base_url or None)


def comparison_row(store: Store, run_id: str, prices: dict[str, tuple[float, float]] | None = None) -> ComparisonRow:
    doc = store.get_run(run_id)
    counts = doc.counts
    report = run_report(store, doc.id)
    accepted = counts.accepted or report.accepted  # the journal's count, where the document has none
    # the price given for its model (``model`` or ``backend:model``), else the one the run was costed at
    price = price_for(prices or {}, doc.backend.kind, doc.backend.model) or run_price(doc.to_dict())
    cost = price.cost(counts.prompt_tokens, counts.completion_tokens) if price is not None else None
    missing = [f.missing_rate for f in report.fields if "[]" not in f.path]
    judged = report.accepted + report.rejected > 0  # without records, no share means anything
    return ComparisonRow(
        label=doc.backend.label,
        run_id=doc.id,
        status=doc.status,
        accepted=accepted,
        requested=counts.requested,
        validity=report.validity if judged else None,
        duplicate_rate=report.duplicate_rate if judged else None,
        records_per_s=accepted / doc.elapsed if doc.elapsed else None,
        latency_ms=counts.latency_ms / counts.answers if counts.answers else None,
        tokens_per_record=counts.tokens / accepted if accepted and counts.tokens else None,
        cost=cost,
        enum_evenness=report.enum_evenness() if report.accepted else None,
        unique_ratio=report.mean_unique_ratio() if report.accepted else None,
        missing_rate=sum(missing) / len(missing) if missing and report.accepted else None,
    )


METRICS: list[tuple[str, str]] = [
    ("status", "status"),
    ("records", "records"),
    ("validity", "validity"),
    ("duplicate_rate", "duplicate rate"),
    ("records_per_s", "records/s"),
    ("latency_ms", "latency (mean)"),
    ("tokens_per_record", "tokens/record"),
    ("cost", "cost"),
    ("enum_evenness", "enum evenness"),
    ("unique_ratio", "unique values"),
    ("missing_rate", "missing fields"),
]


def metric_text(row: ComparisonRow, key: str) -> str:
    if key == "records":
        return f"{row.accepted}/{row.requested}"
    value = getattr(row, key)
    if value is None:
        return "-"
    if key in ("validity", "duplicate_rate", "unique_ratio", "missing_rate"):
        return pct(value)
    if key == "records_per_s":
        return f"{value:.2f}"
    if key == "latency_ms":
        return f"{value:.0f} ms"
    if key == "tokens_per_record":
        return f"{value:.0f}"
    if key == "cost":
        return f"{value:.4f}"
    if key == "enum_evenness":
        return f"{value:.2f}"
    return str(value)


def format_comparison(rows: list[ComparisonRow]) -> str:
    """Models side by side: one column per model, one line per figure."""
    header = ["", *[r.label for r in rows]]
    table = [header, ["run", *[r.run_id for r in rows]]]
    table += [[title, *[metric_text(r, key) for r in rows]] for key, title in METRICS]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table)
