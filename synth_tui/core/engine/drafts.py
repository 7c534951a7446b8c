"""The fixed values of the records a run is about to ask for: drafts.

A draft is one record slot: the values drawn by the schema's generators, and with
``--enrich`` the input row it completes (kept exactly, in input order). A record the
model fails to deliver is asked for again with its draft, so a row is never skipped and
a drawn value never changes under a retry. ``--examples`` rows are taken from here too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import UserInputError
from ..recipe import Recipe
from ..schema import RecordSchema
from ..seeds import ExamplePool, SeedFile, coerce_row
from .config import RunConfig


@dataclass
class Draft:
    """One record slot: its fixed values and, enriching, its input row's number."""

    fixed: dict[str, Any] = field(default_factory=dict)
    row: int | None = None
    context: dict[str, Any] | None = None  # rows the record belongs to (a dataset's parent row)
    given: dict[str, Any] | None = None  # the input row itself: kept when the draft is drawn again


class InputRows(Protocol):
    """Rows a run completes one record each: an enrich file, or a dataset table's keys."""

    path: Any
    format: str

    def rows(self, skip: int = 0) -> Iterator[dict[str, Any]]: ...

    def columns(self) -> list[str]: ...


class DraftSource:
    """Drafts for a run whose ``accepted`` records are already held (a resume's): input
    rows (``rows``, else the config's enrich file) continue after them."""

    def __init__(
        self, schema: RecordSchema, config: RunConfig, *, accepted: int = 0, rows: InputRows | None = None,
    ) -> None:
        self.schema = schema
        self.recipe: Recipe | None = schema.recipe
        self.config = config
        self._rows: Iterator[dict[str, Any]] | None = None
        self._next_row = accepted
        self.enrich: InputRows | None = rows
        self.example_file: SeedFile | None = None
        self.examples: ExamplePool | None = None
        seed = config.params.seed
        if config.enrich and rows is None:
            self.enrich = SeedFile(config.enrich)
        if self.enrich is not None:
            self._rows = self.enrich.rows(skip=accepted)
        if config.examples:
            pool_rng = random.Random(f"{seed}:examples" if seed is not None else None)
            self.example_file = SeedFile(config.examples)
            self.examples = ExamplePool(self.example_file, pool_rng, schema=schema.schema)
        self._check_seed_columns()

    @property
    def plain(self) -> bool:
        """No fixed values ever: every record is the model's alone."""
        return self.enrich is None and (self.recipe is None or not self.recipe.has_generators)

    def fixed_fields(self) -> frozenset[str]:
        """Fields every draft fixes (the generators', the enrich file's first row's)."""
        names: set[str] = set(self.recipe.generated.fields()) if self.recipe else set()
        if self.enrich is not None:
            names |= set(self.enrich.columns())
        return frozenset(names)

    def take(self, count: int, rng: random.Random) -> list[Draft]:
        """Up to ``count`` new drafts (fewer when the enrich file runs out)."""
        if self.plain:
            return [Draft() for _ in range(count)]
        drafts = []
        for _ in range(count):
            row: dict[str, Any] | None = None
            number: int | None = None
            if self._rows is not None:
                row = next(self._rows, None)
                if row is None:
                    break
                number = self._next_row
                self._next_row += 1
                row = self._checked_row(row, number)
            fixed = self.recipe.draw(rng, row, self._seed_row(row)) if self.recipe else dict(row or {})
            drafts.append(Draft(fixed, number, getattr(row, "context", None), row))
        return drafts

    def redraw(self, drafts: list[Draft], rng: random.Random) -> list[Draft]:
        """Drafts to ask for again: an input row stays the row it is (its place and its
        values); drawn values are drawn anew, since the ones that failed may be why (a
        duplicate, a rule)."""
        if self.plain or self.recipe is None or not self.recipe.has_generators:
            return drafts
        return [Draft(self.recipe.draw(rng, d.given, self._seed_row(d.given)), d.row, d.context, d.given)
                for d in drafts]

    def _seed_row(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        """An example row for ``from_seed`` fields when no input row gives them."""
        if row is not None or self.examples is None or self.recipe is None or not self.recipe.generated.from_seed:
            return None
        return self.examples.take(1)[0]

    def example_rows(self) -> list[dict[str, Any]]:
        if self.examples is None:
            return []
        return self.examples.take(self.config.examples_per_request)

    def _checked_row(self, row: dict[str, Any], number: int) -> dict[str, Any]:
        """An input row made of the schema's types (CSV cells are text), each of its
        fields valid on its own: a row the record could never keep stops the run here."""
        assert self.enrich is not None
        where = f"{self.enrich.path}: row {number + 1}"
        row = coerce_row(row, self.schema.schema, csv=self.enrich.format == "csv")
        properties = self.schema.schema.get("properties") or {}
        closed = self.schema.schema.get("additionalProperties") is False
        for name, value in row.items():
            if name not in properties:
                if closed:
                    raise UserInputError(f"{where}: column {name!r} is not a field of the schema, which allows no "
                                         "others; remove the column or add the field")
                continue
            problems = self.schema.field_errors(name, value)
            if problems:
                raise UserInputError(f"{where}: field {name!r}: {problems[0]}; fix the row (it is kept as it is)")
        return row

    def _check_seed_columns(self) -> None:
        """Every ``from_seed`` column exists in a seed file the run has."""
        if self.recipe is None or not self.recipe.generated.from_seed:
            return
        seed = self.enrich or self.example_file
        if seed is None:
            raise UserInputError(
                "fields take values from seed data (from_seed) but the run has no seed file",
                cli="pass --enrich FILE or --examples FILE", tui="choose an enrich or examples file",
            )
        columns = set(seed.columns())
        for name, column in self.recipe.generated.from_seed.items():
            if column not in columns:
                raise UserInputError(f"field {name!r} takes seed column {column!r}, which {seed.path} does not have "
                                     f"(it has: {', '.join(sorted(columns)) or 'none'})")
