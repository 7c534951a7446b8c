"""A dataset file: several tables, each a record schema with its size, its primary key
and its references to other tables, checked as a whole before anything runs.

    {"tables": {
       "customers": {"count": 200, "primary_key": "id", "schema": {...}},
       "orders": {"per": {"customers": {"min": 0, "max": 5}}, "primary_key": "id",
                  "schema": {"customer_id": {"type": "string", "x-ref": "customers.id"}, ...}}}}

``count`` fixes a table's size; ``per`` gives children per row of a parent table (uniform
between min and max, or ``{"weights": {"0": 0.2, "1": 0.5, ...}}``); a field's
``x-ref: "table.column"`` points at that table's primary key. Tables are generated
parents first; a cycle is refused, a table pointing at itself (a nullable field: a
manager) is filled from its earlier rows.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from ..errors import SchemaError
from ..schema import RecordSchema, check_schema

MAX_COUNT = 10_000_000
MAX_PER = 10_000
TABLE_KEYS = {"count", "per", "primary_key", "schema", "description"}


@dataclass(frozen=True)
class Ref:
    """A field's reference to ``table``'s primary key ``column``."""

    table: str
    column: str
    nullable: bool


@dataclass(frozen=True)
class Per:
    """Children per row of ``parent``, through the reference field ``field``."""

    parent: str
    field: str
    low: int
    high: int
    weights: tuple[tuple[int, float], ...] = ()

    def draw(self, rng: random.Random) -> int:
        if self.weights:
            values, weights = zip(*self.weights)
            return int(rng.choices(values, weights)[0])
        return rng.randint(self.low, self.high)


@dataclass
class Table:
    name: str
    schema: RecordSchema
    count: int | None
    per: Per | None
    primary_key: str | None
    refs: dict[str, Ref] = field(default_factory=dict)

    @property
    def self_refs(self) -> dict[str, Ref]:
        return {name: ref for name, ref in self.refs.items() if ref.table == self.name}


@dataclass
class Dataset:
    tables: dict[str, Table]  # parents before children
    source: dict[str, Any]  # the file as written: what the history keeps

    def children_of(self, name: str) -> list[Table]:
        return [t for t in self.tables.values() if t.per is not None and t.per.parent == name]


def is_dataset(data: Any) -> bool:
    """A dataset file, not a record schema: its top level is {"tables": {...}}."""
    return isinstance(data, dict) and isinstance(data.get("tables"), dict) and "properties" not in data


def parse_dataset(text: str, source: str = "dataset") -> Dataset:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"invalid JSON: {exc.msg}", f"{source}:{exc.lineno}:{exc.colno}") from None
    except RecursionError:
        raise SchemaError("the file nests too deep", source) from None
    return check_dataset(data, source)


def check_dataset(data: Any, source: str = "dataset") -> Dataset:
    """The dataset ``data`` describes, or SchemaError naming the place that is wrong."""
    if not is_dataset(data):
        raise SchemaError('a dataset is an object {"tables": {"name": {...}, ...}}', source)
    extra = set(data) - {"tables", "description", "$schema"}
    if extra:
        raise SchemaError(f"unknown key {sorted(extra)[0]!r} beside \"tables\"", source)
    if not data["tables"]:
        raise SchemaError("the dataset has no tables", f"{source} $.tables")
    names = list(data["tables"])
    tables = {name: _table(name, spec, f"{source} $.tables.{name}", names) for name, spec in data["tables"].items()}
    for table in tables.values():
        _check_refs(table, tables, f"{source} $.tables.{table.name}")
    return Dataset(_in_order(tables, source), data)


def _table(name: str, spec: Any, where: str, names: list[str]) -> Table:
    if not isinstance(name, str) or not name.isidentifier():
        raise SchemaError(f"a table name must be letters, digits and _ (not starting with a digit), not {name!r}",
                          where)
    if not isinstance(spec, dict):
        raise SchemaError('a table is an object: {"count": N, "schema": {...}}', where)
    extra = set(spec) - TABLE_KEYS
    if extra:
        raise SchemaError(f"unknown key {sorted(extra)[0]!r}; a table takes {', '.join(sorted(TABLE_KEYS))}", where)
    if "schema" not in spec:
        raise SchemaError("the table has no schema", where)
    schema = check_schema(spec["schema"], f"{where}.schema")
    count, per = spec.get("count"), spec.get("per")
    if (count is None) == (per is None):
        raise SchemaError('give the table either "count" (its size) or "per" (children per parent row)', where)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT):
        raise SchemaError(f"count must be a whole number from 1 to {MAX_COUNT:,}", f"{where}.count")
    key = spec.get("primary_key")
    properties = schema.schema.get("properties") or {}
    if key is not None and (not isinstance(key, str) or key not in properties):
        raise SchemaError(f"primary_key names no field of the table: {key!r}", f"{where}.primary_key")
    table = Table(name, schema, count, None, key, _refs(schema, where, names))
    if per is not None:
        table.per = _per(per, table, f"{where}.per")
    return table


def _refs(schema: RecordSchema, where: str, names: list[str]) -> dict[str, Ref]:
    refs = {}
    required = set(schema.schema.get("required") or ())
    for name, spec in (schema.schema.get("properties") or {}).items():
        if not isinstance(spec, dict) or "x-ref" not in spec:
            continue
        target = spec["x-ref"]
        here = f"{where}.schema.{name}.x-ref"
        if not isinstance(target, str) or target.count(".") != 1:
            raise SchemaError(f'x-ref is "table.column", not {json.dumps(target)[:80]}', here)
        if "x-generator" in spec:
            raise SchemaError("a reference's values come from the table it points at: drop its x-generator", here)
        types = spec.get("type")
        nullable = name not in required or types == "null" or (isinstance(types, list) and "null" in types)
        table, column = target.split(".")
        if table not in names:
            raise SchemaError(f"x-ref names table {table!r}, which the dataset does not have (it has: "
                              f"{', '.join(names)})", here)
        refs[name] = Ref(table, column, nullable)
    return refs


def _per(per: Any, table: Table, where: str) -> Per:
    if not isinstance(per, dict) or len(per) != 1:
        raise SchemaError('per names one parent table: {"customers": {"min": 0, "max": 5}}', where)
    [(parent, spread)] = per.items()
    through = [name for name, ref in table.refs.items() if ref.table == parent and parent != table.name]
    if not through:
        raise SchemaError(f"per names {parent!r}, which no field of this table references (x-ref)", where)
    here = f"{where}.{parent}"
    if not isinstance(spread, dict):
        raise SchemaError('give {"min": 0, "max": 5} or {"weights": {"0": 0.2, "1": 0.8}}', here)
    if "weights" in spread:
        weights = _weights(spread["weights"], here)
        counts = [n for n, _ in weights]
        return Per(parent, through[0], min(counts), max(counts), weights)
    low, high = spread.get("min"), spread.get("max")
    for value, key in ((low, "min"), (high, "max")):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_PER:
            raise SchemaError(f"{key} must be a whole number from 0 to {MAX_PER:,}", f"{here}.{key}")
    assert isinstance(low, int) and isinstance(high, int)
    if high < low:
        raise SchemaError(f"max ({high}) is less than min ({low})", here)
    return Per(parent, through[0], low, high)


def _weights(weights: Any, where: str) -> tuple[tuple[int, float], ...]:
    if not isinstance(weights, dict) or not weights:
        raise SchemaError('weights map a number of children to its weight: {"0": 0.2, "1": 0.8}', f"{where}.weights")
    out = []
    for key, weight in weights.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) <= MAX_PER):
            raise SchemaError(f"a weight's key is a number of children from 0 to {MAX_PER:,}, not {key!r}",
                              f"{where}.weights")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not weight > 0 or weight == float("inf"):
            raise SchemaError(f"the weight of {key} must be a positive number", f"{where}.weights.{key}")
        out.append((int(key), float(weight)))
    return tuple(out)


def _check_refs(table: Table, tables: dict[str, Table], where: str) -> None:
    for name, ref in table.refs.items():
        here = f"{where}.schema.{name}.x-ref"
        target = tables.get(ref.table)
        if target is None:
            raise SchemaError(f"x-ref names table {ref.table!r}, which the dataset does not have "
                              f"(it has: {', '.join(tables)})", here)
        if ref.column not in (target.schema.schema.get("properties") or {}):
            raise SchemaError(f"x-ref names column {ref.column!r}, which table {ref.table!r} does not have", here)
        if target.primary_key != ref.column:
            raise SchemaError(f"x-ref must name the primary key of {ref.table!r} (its primary_key is "
                              f"{target.primary_key!r}): only a key is unique", here)
        if ref.table == table.name and not ref.nullable:
            raise SchemaError("a reference to the table's own rows must be nullable (optional, or type null): "
                              "the first row has none before it", here)
    key = table.primary_key
    if key is not None:
        _check_key(table, key, f"{where}.schema.{key}")


def _check_key(table: Table, key: str, where: str) -> None:
    """The engine assigns key values: it must know how (a generator, or a plain type)."""
    spec = (table.schema.schema.get("properties") or {})[key]
    if key in table.refs:
        raise SchemaError("a primary key cannot also be a reference", where)
    generated = table.schema.recipe.generated if table.schema.recipe is not None else None
    if generated is not None and (key in generated.generators or key in generated.sequences):
        return
    if generated is not None and key in generated.fields():
        raise SchemaError("a primary key is assigned before the record is made: give it a drawn generator "
                          '(e.g. "uuid", {"sequence": ...}, {"fake": ...}), not a template or seed column', where)
    plain_string = spec.get("type") == "string" and not ({"pattern", "enum", "const", "maxLength"} & spec.keys()) \
        and spec.get("format") in (None, "uuid")
    if spec.get("type") != "integer" and not plain_string:
        raise SchemaError('give the primary key an x-generator (e.g. "uuid" or {"sequence": {"start": 1}}): '
                          "the engine assigns keys, never the model", where)


def _in_order(tables: dict[str, Table], source: str) -> dict[str, Table]:
    """Tables with every table after those it references (self-references aside)."""
    needs = {name: {r.table for r in t.refs.values() if r.table != name} for name, t in tables.items()}
    ordered: dict[str, Table] = {}
    while len(ordered) < len(tables):
        ready = [name for name in tables if name not in ordered and needs[name] <= ordered.keys()]
        if not ready:
            cycle = _cycle(needs, ordered)
            raise SchemaError(f"the tables reference each other in a cycle: {cycle}", f"{source} $.tables")
        for name in ready:
            ordered[name] = tables[name]
    return ordered


def _cycle(needs: dict[str, set[str]], done: dict[str, Any]) -> str:
    start = next(name for name in needs if name not in done)
    path = [start]
    while True:
        step = sorted(n for n in needs[path[-1]] if n not in done)[0]
        if step in path:
            loop = path[path.index(step):] + [step]
            return " -> ".join(loop)
        path.append(step)
