"""What a run is asked to do (RunConfig), what it has done so far (Counts) and what it
gives back (RunResult)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..backends.base import DEFAULT_MAX_RESPONSE_BYTES, GenerationParams
from ..errors import UserInputError
from ..events import Rejection
from ..pricing import checked_price
from ..store import RunCounts


@dataclass
class RunConfig:
    count: int
    batch_size: int | None = None  # None: the backend's preferred size
    concurrency: int = 4
    params: GenerationParams = field(default_factory=GenerationParams)
    max_attempts: int = 4  # requests per record slot, on average, before the run gives up
    max_retries: int = 5  # transient failures retried per request
    variation_hints: bool = True
    balance_enums: bool = True  # spread enum values evenly over the run
    retry_base: float = 0.5
    retry_cap: float = 8.0
    # an answer larger than this (4 MiB: a model's is ~1000x smaller) is a rejection, read no further
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    examples: str | None = None  # a seed file whose rows are shown as examples (absolute path)
    examples_per_request: int = 3
    enrich: str | None = None  # a seed file: one record per row, the row's fields kept (absolute path)
    # USD per million (prompt, completion) tokens of the run's model; None: its cost is unknown
    price: tuple[float, float] | None = None
    budget: float | None = None  # USD the whole run (every session) may spend; needs a price

    def check(self) -> None:
        if self.count < 1:
            raise UserInputError(f"count must be at least 1, not {self.count}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UserInputError(f"records per request must be at least 1, not {self.batch_size}")
        if self.concurrency < 1:
            raise UserInputError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.max_response_bytes < 1024:
            raise UserInputError(f"the response size cap must be at least 1024 bytes, not {self.max_response_bytes}")
        if not 1 <= self.examples_per_request <= 20:
            raise UserInputError(f"examples per request must be 1 to 20, not {self.examples_per_request}")
        if self.price is not None:
            price = checked_price(self.price, "the run's price")
            self.price = (price.input, price.output)
        self._check_budget()

    def _check_budget(self) -> None:
        if self.budget is None:
            return
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)) \
                or not math.isfinite(self.budget) or self.budget <= 0:
            raise UserInputError(f"the budget must be a positive number of USD, not {self.budget!r:.40}")
        if self.price is None:
            raise UserInputError(
                "a budget needs the model's price: without one the run's cost is unknown",
                cli="pass --price INPUT,OUTPUT (USD per million tokens), or set it under \"prices\" in the "
                    "settings file",
                tui="set the model's price in the settings file (\"prices\")")

    def copy(self, **changes: Any) -> RunConfig:
        """An independent copy (its own params), with ``changes`` applied."""
        changes.setdefault("params", dataclasses.replace(self.params))
        return dataclasses.replace(self, **changes)

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["params"] = self.params.as_dict()
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RunConfig:
        doc = dict(doc)
        params = GenerationParams(**doc.pop("params", {}))
        if isinstance(doc.get("price"), list):  # JSON holds the pair as a list
            doc["price"] = tuple(doc["price"])
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(params=params, **known)


@dataclass
class Counts:
    """What a run has done, over all its sessions: a resumed run starts from the counts
    in its history. The scheduler counts requests, the acceptor rejections."""

    requests: int = 0  # sent, retries included
    retries: int = 0
    answers: int = 0  # requests that got an answer
    latency_ms: int = 0  # summed over the answers
    rate_limited: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rejected: int = 0
    duplicates: int = 0

    def to_doc(self, requested: int, accepted: int) -> dict[str, Any]:
        """The run document's ``counts``, as the store's typed record names them."""
        return RunCounts(requested=requested, accepted=accepted, **asdict(self)).to_dict()

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Counts:
        return cls(**{name: int(doc.get(name) or 0) for name in cls.__dataclass_fields__})


@dataclass
class RunResult:
    run_id: str
    status: str  # done | failed | cancelled | budget
    records: list[dict[str, Any]]
    requested: int
    accepted: int
    rejected: int
    duplicates: int
    retries: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    elapsed: float
    started: str
    finished: str
    error: str | None = None
    rejections: list[Rejection] = field(default_factory=list)
    cost_usd: float | None = None  # every session's, at the run's price; None: no price, unknown
    budget_usd: float | None = None
    backend: str = ""  # its kind: "local" runs here, with no price per token

    @property
    def success(self) -> bool:
        return self.status == "done"
