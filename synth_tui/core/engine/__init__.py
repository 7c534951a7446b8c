"""The generation engine. One run (run.py) wires four parts that each stand alone:

    planner.py    what to ask next: request sizes, enum spread, variation hints, re-asks
    scheduler.py  sending: adaptive concurrency, retries with backoff, the breaker
    acceptor.py   what to keep: parse -> validate -> checks -> dedupe -> journal
    history.py    the run's document and journal in the store; where a resume starts

batch.py runs the same parts through the OpenAI Batch API (BatchRun, a Run).

config.py holds RunConfig, Counts and RunResult; probe.py the one-request backend check.
"""

from __future__ import annotations

from .batch import BatchOptions, BatchRun
from .config import Counts, RunConfig, RunResult
from .history import ResumePoint
from .probe import probe_backend
from .run import Run

__all__ = ["BatchOptions", "BatchRun", "Counts", "ResumePoint", "Run", "RunConfig", "RunResult", "probe_backend"]
