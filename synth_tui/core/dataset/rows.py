"""The rows a table's run completes: its key and reference values, assigned by the engine.

A table is generated like a run that enriches input rows: each row here fixes the
table's primary key and its references (never the model's to choose), carries the parent
row as context, and the run's generators and model fill the other fields. Everything is
drawn from (seed, table, row number), so the same rows come again on a resume: the run
skips those it holds. Memory holds keys, not rows: the parents of a ``per`` table are
streamed from their journal, other references drawn from the referenced table's keys.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import UserInputError
from .spec import Table

ROOT_SHARE = 0.2  # rows of a self-referencing table that start a tree of their own
KEY_REDRAWS = 1000  # draws of a generated key before it is called not unique enough


class TableRow(dict[str, Any]):
    """A row's fixed values, and the parent row it belongs to (context for the model)."""

    __slots__ = ("context",)

    def __init__(self, context: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.context = context


class KeyMaker:
    """A table's primary key values: its generator's (redrawn until unique), else 1, 2,
    ... for an integer key and a UUID for a string one."""

    def __init__(self, table: Table, seed: int) -> None:
        self.table = table
        self.seed = seed
        key = table.primary_key
        recipe = table.schema.recipe
        generated = recipe.generated if recipe is not None else None
        self.sequence = generated.sequences.get(key) if generated and key else None
        self.generator = generated.generators.get(key) if generated and key else None
        unique = bool(generated and key in generated.unique_fields)
        self._seen: set[Any] | None = None if unique or self.generator is None else set()
        spec = (table.schema.schema.get("properties") or {}).get(key or "", {})
        self.integer = spec.get("type") == "integer"

    def key(self, index: int) -> Any:
        if self.sequence is not None:
            return self.sequence.at(index)
        rng = random.Random(f"{self.seed}:{self.table.name}:key:{index}")
        if self.generator is None:
            return index + 1 if self.integer else str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for _ in range(KEY_REDRAWS):
            value = self.generator.draw(rng)
            if self._seen is None or value not in self._seen:
                if self._seen is not None:
                    self._seen.add(value)
                return value
        raise UserInputError(f"table {self.table.name}: its primary key's generator gave no new value in "
                             f"{KEY_REDRAWS} draws after {index} rows: give the key a uuid or sequence generator")


class TableRows:
    """A table's rows, in order, as an enriching run reads them (``rows(skip)``)."""

    format = "rows"

    def __init__(
        self, table: Table, seed: int, pools: dict[str, list[Any]],
        parents: Callable[[], Iterator[dict[str, Any]]] | None = None,
    ) -> None:
        self.table = table
        self.seed = seed
        self.pools = pools  # the keys of every table generated before this one
        self.parents = parents  # the parent table's records, in order (a ``per`` table)
        self.path = f"table {table.name}"

    def columns(self) -> list[str]:
        key = [self.table.primary_key] if self.table.primary_key else []
        return key + list(self.table.refs)

    def count(self) -> int:
        per = self.table.per
        if per is None:
            assert self.table.count is not None
            return self.table.count
        return sum(per.draw(self._parent_rng(i)) for i in range(len(self.pools[per.parent])))

    def rows(self, skip: int = 0) -> Iterator[dict[str, Any]]:
        return itertools.islice(self._all(), skip, None)

    def _parent_rng(self, index: int) -> random.Random:
        return random.Random(f"{self.seed}:{self.table.name}:per:{index}")

    def _all(self) -> Iterator[TableRow]:
        keys = KeyMaker(self.table, self.seed)
        own: list[Any] = []  # this table's keys so far, for references to its own rows
        per = self.table.per
        if per is None:
            assert self.table.count is not None
            for index in range(self.table.count):
                yield self._row(index, keys, own, None)
            return
        assert self.parents is not None
        index = 0
        for number, parent in enumerate(self.parents()):
            for _ in range(per.draw(self._parent_rng(number))):
                yield self._row(index, keys, own, parent)
                index += 1

    def _row(self, index: int, keys: KeyMaker, own: list[Any], parent: dict[str, Any] | None) -> TableRow:
        table = self.table
        rng = random.Random(f"{self.seed}:{table.name}:row:{index}")
        row = TableRow({table.per.parent: parent} if parent is not None and table.per else None)
        if table.primary_key:
            row[table.primary_key] = key = keys.key(index)
            if table.self_refs:
                own.append(key)
        for name, ref in table.refs.items():
            if parent is not None and table.per is not None and name == table.per.field:
                row[name] = parent.get(ref.column)
            elif ref.table == table.name:
                row[name] = None if len(own) < 2 or rng.random() < ROOT_SHARE else own[rng.randrange(len(own) - 1)]
            else:
                row[name] = self._pick(rng, name, ref.table, ref.nullable)
        return row

    def _pick(self, rng: random.Random, name: str, target: str, nullable: bool) -> Any:
        pool = self.pools.get(target) or []
        if pool:
            return pool[rng.randrange(len(pool))]
        if nullable:
            return None
        raise UserInputError(f"table {self.table.name}: field {name!r} must reference a row of {target!r}, "
                             f"which has none: give {target!r} rows (its count or per)")
