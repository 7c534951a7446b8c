"""What screens ask of the App, as typed messages, and what they may read from it.

Screens never import the App: they post one of these requests (it bubbles up to the
App, which owns runs and workers) and read shared state through ``context(widget)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from textual.message import Message

from .core.backends import BackendSpec
from .core.config import Settings
from .core.engine import RunConfig
from .core.schema import RecordSchema

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from .core.dataset import Dataset
    from .core.store import Store


@dataclass
class JobSpec:
    """Everything a generation needs, as the editor screen collected it."""

    schema: RecordSchema
    config: RunConfig
    backend: BackendSpec
    batch_api: bool = False  # through the OpenAI Batch API


class GenerateRequested(Message):
    def __init__(self, job: JobSpec) -> None:
        super().__init__()
        self.job = job


class EstimateRequested(Message):
    """Run a pilot of the job, project what the whole run takes, then ask to go on."""

    def __init__(self, job: JobSpec) -> None:
        super().__init__()
        self.job = job


class CompareRequested(Message):
    """Run the job's schema on each backend in turn, same count and seed, then compare."""

    def __init__(self, job: JobSpec, specs: list[BackendSpec]) -> None:
        super().__init__()
        self.job = job
        self.specs = specs


class DatasetRequested(Message):
    """Generate every table of ``dataset``, parents first, as one run in the history;
    ``config`` holds the run's parameters (each table has its own count)."""

    def __init__(self, dataset: Dataset, config: RunConfig, backend: BackendSpec) -> None:
        super().__init__()
        self.dataset = dataset
        self.config = config
        self.backend = backend


class ResumeRequested(Message):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class RerunRequested(Message):
    """Load a past run's schema, parameters and backend into the editor."""

    def __init__(self, schema: dict[str, Any], config: dict[str, Any], backend: dict[str, Any]) -> None:
        super().__init__()
        self.schema = schema
        self.config = config
        self.backend = backend


class ConnectionTestRequested(Message):
    def __init__(self, spec: BackendSpec) -> None:
        super().__init__()
        self.spec = spec


class AppContext(Protocol):
    """The App's state that screens may read."""

    settings: Settings
    store: Store | None
    data_dir: str | Path

    @property
    def running_run_id(self) -> str | None: ...


def context(node: DOMNode) -> AppContext:
    """The App behind ``node``, seen through what screens may read."""
    return cast(AppContext, node.app)
