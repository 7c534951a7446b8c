"""Relational datasets: several tables with keys and references, generated together.

    spec.py   the dataset file: tables, counts, children per parent, references, checks
    rows.py   each table's rows: keys and references assigned by the engine, parent context
    run.py    one dataset run: tables parents first, one run in the history, resumable
"""

from __future__ import annotations

from .run import KIND, DatasetResult, DatasetRun, TableOutcome, tables_dir
from .spec import Dataset, Table, check_dataset, is_dataset, parse_dataset

__all__ = [
    "KIND", "Dataset", "DatasetResult", "DatasetRun", "Table", "TableOutcome", "check_dataset", "is_dataset",
    "parse_dataset", "tables_dir",
]
