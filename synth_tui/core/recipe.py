"""Where each field of a record comes from, and the rules the whole record keeps.

A field is drawn by a generator (``x-generator``: uuid, distributions, fake values), is a
sequence (its place in the run), is built by a template from other fields, comes from a
seed row (``--enrich``, ``from_seed``), or is written by the model: the rest. The recipe
is compiled with the schema (core/schema.py), so a bad generator or rule is a schema
error with its JSON path, before anything runs.

How a record is made: the planner draws the fixed values (``draw``), the model is asked
only for the fields left (``model_schema``) with the fixed values as facts, and the
acceptor merges the answer under the fixed values (``merge``: the model never overwrites
a drawn value), fills sequences and templates, and checks the schema, then the rules.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import UserInputError
from .generators import Generated, compile_generators
from .rules import Rule, RuleSet, compile_rules

REDRAWS = 100  # draws of a record's generated values before a rule on them is hopeless


class RuleUnsatisfiable(UserInputError):
    """Generated values kept breaking a rule that only generators can mend."""


@dataclass
class Recipe:
    generated: Generated
    rules: RuleSet
    properties: tuple[str, ...]  # the record's top-level fields, in schema order
    references: frozenset[str] = frozenset()  # fields with x-ref: a dataset's engine fills them
    _model_schemas: dict[frozenset[str], dict[str, Any] | None] = field(default_factory=dict, repr=False)

    @classmethod
    def compile(cls, schema: dict[str, Any], source: str) -> Recipe:
        return cls(
            generated=compile_generators(schema, source),
            rules=compile_rules(schema, source),
            properties=tuple(schema.get("properties") or ()),
            references=frozenset(
                name for name, spec in (schema.get("properties") or {}).items()
                if isinstance(spec, dict) and "x-ref" in spec
            ),
        )

    # -- which field comes from where -------------------------------------------------------
    def source(self, name: str) -> str:
        """generator, sequence, template, seed, reference or model."""
        g = self.generated
        if name in g.generators:
            return "generator"
        if name in g.sequences:
            return "sequence"
        if name in g.templates:
            return "template"
        if name in g.from_seed:
            return "seed"
        if name in self.references:
            return "reference"
        return "model"

    @property
    def has_generators(self) -> bool:
        return bool(self.generated.fields())

    def model_fields(self, fixed: Iterable[str] = ()) -> tuple[str, ...]:
        """The fields the model writes when ``fixed`` ones are given (a seed row's)."""
        skip = self.generated.fields() | set(fixed)
        return tuple(name for name in self.properties if name not in skip)

    def model_schema(self, schema: dict[str, Any], fixed: Iterable[str] = ()) -> dict[str, Any] | None:
        """The schema of what the model is asked for: the record's without the fields that
        are drawn, given or built, and without our own ``x-`` keywords (a server's strict
        structured output may refuse them). None: nothing is left for the model."""
        key = frozenset(fixed)
        if key not in self._model_schemas:
            if not self.has_generators and not key:
                plain = _without_extensions(schema)
                self._model_schemas[key] = schema if plain == schema else plain
            else:
                left = set(self.model_fields(key))
                self._model_schemas[key] = _only_fields(schema, left) if left else None
        return self._model_schemas[key]

    # -- making a record ---------------------------------------------------------------------
    def draw(
        self, rng: random.Random, row: dict[str, Any] | None = None, seed_row: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One record's fixed values: the generators' (drawn again while a rule that reads
        only them breaks), then ``from_seed`` columns (of ``row``, the input row being
        enriched, else of ``seed_row``, an example row) and the input row's own fields."""
        drawn: dict[str, Any] = {}
        own_rules = self._generator_rules()
        for _ in range(REDRAWS):
            drawn = self.generated.draw(rng)
            broken = [rule for rule in own_rules if not rule.holds(drawn)]
            if not broken:
                break
        else:
            why = broken[0].why_broken(drawn)
            raise RuleUnsatisfiable(
                f"no drawn record kept the rule {broken[0].text!r} ({broken[0].where}) in {REDRAWS} draws"
                + (f" (last: {why})" if why else "")
                + ": the generators of the fields it reads cannot satisfy it; widen their ranges or change the rule"
            )
        source = row if row is not None else seed_row
        if source is not None:
            for name, column in self.generated.from_seed.items():
                if column in source:
                    drawn[name] = source[column]
        if row is not None:
            drawn.update(row)
        return drawn

    def merge(self, answer: Any, fixed: dict[str, Any], position: int) -> Any:
        """The record: the model's ``answer`` under the ``fixed`` values, with sequences
        at ``position`` and templates filled. Not a dict: returned as it is (invalid)."""
        if not isinstance(answer, dict):
            return answer
        record = {name: value for name, value in answer.items() if name not in fixed}
        record.update(fixed)
        if self.generated.sequences or self.generated.templates:
            record = self.generated.fill(record, position)
        return record

    def identity(self, record: Any) -> Any:
        """What duplicate detection compares: the record without the fields that differ
        per record by construction (uuids, sequences)."""
        unique = self.generated.unique_fields
        if not unique or not isinstance(record, dict):
            return record
        return {name: value for name, value in record.items() if name not in unique}

    def broken_rules(self, record: Any) -> list[str]:
        """The reasons ``record`` breaks the rules: one per broken rule."""
        if not self.rules or not isinstance(record, dict):
            return []
        return [rule.reason for rule in self.rules.broken(record)]

    def rule_texts(self) -> list[str]:
        return [rule.text for rule in self.rules.rules]

    def _generator_rules(self) -> list[Rule]:
        """Top-level rules that read only generated fields: a redraw mends them."""
        drawn = set(self.generated.generators)
        return [rule for rule in self.rules.top_level() if rule.fields and rule.fields <= drawn]

    def check_count(self, schema: dict[str, Any], count: int) -> None:
        """A sequence must stay in its field's range over the whole run."""
        for name, sequence in self.generated.sequences.items():
            spec = (schema.get("properties") or {}).get(name) or {}
            last = sequence.at(count - 1)
            high, low = spec.get("maximum"), spec.get("minimum")
            if (isinstance(high, (int, float)) and last > high) or (isinstance(low, (int, float)) and last < low):
                bounds = " and ".join(f"{word} {value}" for word, value in (("minimum", low), ("maximum", high))
                                      if isinstance(value, (int, float)))
                raise UserInputError(
                    f"$.properties.{name}.x-generator: the sequence reaches {last} at record {count}, past the "
                    f"field's {bounds}: ask for fewer records or change the sequence's start or step"
                )


def _without_extensions(node: Any) -> Any:
    """``node`` without the ``x-`` keywords of our own (generators, rules), at any depth."""
    if isinstance(node, dict):
        return {k: _without_extensions(v) for k, v in node.items() if not (isinstance(k, str) and k.startswith("x-"))}
    if isinstance(node, list):
        return [_without_extensions(v) for v in node]
    return node


def _only_fields(schema: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    out = _without_extensions(schema)
    out["properties"] = {name: spec for name, spec in out.get("properties", {}).items() if name in keep}
    if isinstance(out.get("required"), list):
        out["required"] = [name for name in out["required"] if name in keep]
    for key in ("dependentRequired", "dependentSchemas", "minProperties", "maxProperties"):
        out.pop(key, None)  # they speak of the whole record, not of the model's part
    return out
