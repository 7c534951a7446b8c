"""compile_generators: every ``x-generator`` of a record schema, checked and compiled.

Checking happens here, before any request: the spec's shape, whether the generator can
give the field's type and format, weights against the enum, template fields and cycles.
Then each generator draws SAMPLES values with a fixed seed and each is validated against
the field's own schema: a generator that cannot meet the field's constraints (a maxLength
a city breaks, a pattern) fails the check, not the run."""

from __future__ import annotations

import difflib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..errors import SchemaError
from ..validation import SchemaValidator
from .base import (
    FieldGenerator,
    FieldShape,
    SpecProblem,
    decimals_of,
    is_number,
    needs_type,
    number_param,
    only_keys,
    shown,
)
from .choice import Bool, DateRange, Uuid, Weights
from .fake import Fake
from .numeric import Lognormal, Normal, Uniform
from .template import Template, TemplateCycle, template_order

KEYWORD = "x-generator"
SAMPLES = 50
SAMPLE_SEED = 20240613
GENERATOR_NAMES = ("uuid", "sequence", "uniform", "normal", "lognormal", "weights", "date", "datetime", "bool",
                   "fake", "template", "from_seed")
# Faker providers people write as a generator's name: the message points them to "fake"
COMMON_PROVIDERS = frozenset({"name", "first_name", "last_name", "email", "phone_number", "street_address", "address",
                              "city", "country", "postcode", "zipcode", "company", "job", "url", "ipv4", "iban"})
# Keywords whose value is a map of names to schemas, a schema, or a list of schemas
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONE = ("items", "contains", "not", "if", "then", "else", "additionalProperties", "propertyNames",
               "unevaluatedItems", "unevaluatedProperties", "additionalItems")
_SCHEMA_LISTS = ("prefixItems", "allOf", "anyOf", "oneOf", "items")


@dataclass(frozen=True)
class Sequence:
    """start, start + step, ...: the value depends on the record's position in the run."""

    start: int | float
    step: int | float
    decimals: int | None = None  # a float sequence is written with its start's and step's decimals

    def at(self, position: int) -> int | float:
        value = self.start + self.step * position
        return round(value, self.decimals) if self.decimals is not None else value

    def last(self, count: int) -> int | float:
        """The value of the ``count``-th record, for the engine to check against the bounds."""
        if count < 1:
            raise ValueError("a run has at least one record")
        return self.at(count - 1)


@dataclass(frozen=True)
class Generated:
    """Everything x-generator in one record schema."""

    generators: dict[str, FieldGenerator] = field(default_factory=dict)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)  # each after the templates it reads
    from_seed: dict[str, str] = field(default_factory=dict)
    unique_fields: frozenset[str] = frozenset()  # uuid and sequence: different in every record

    def fields(self) -> set[str]:
        return set(self.generators) | set(self.sequences) | set(self.templates) | set(self.from_seed)

    def __bool__(self) -> bool:
        return bool(self.generators or self.sequences or self.templates or self.from_seed)

    def draw(self, rng: random.Random) -> dict[str, Any]:
        """One record's values of ``generators``, in schema order."""
        return {name: generator.draw(rng) for name, generator in self.generators.items()}

    def fill(self, record: dict[str, Any], position: int) -> dict[str, Any]:
        """A new dict: ``record``, the sequences at ``position`` (0-based over the whole run)
        and the templates rendered from it."""
        out = dict(record)
        for name, sequence in self.sequences.items():
            out[name] = sequence.at(position)
        for name, template in self.templates.items():
            out[name] = template.render(out)
        return out


def compile_generators(schema: dict[str, Any], source: str = "schema") -> Generated:
    """Check and compile every x-generator of a (JSON Schema, already expanded) record schema.

    Raises SchemaError(message, "<source> $.properties.NAME.x-generator")."""
    _check_places(schema, source)
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return Generated()
    found: dict[str, Any] = {}
    for name, subschema in properties.items():
        if isinstance(subschema, dict) and KEYWORD in subschema:
            try:
                found[name] = _compile_one(subschema[KEYWORD], FieldShape.of(name, subschema))
            except SpecProblem as exc:
                raise SchemaError(str(exc), _where(source, name)) from None
            except ArithmeticError as exc:  # a bound or step too large or small for a float
                raise SchemaError(f"numbers out of range for a generator: {exc}", _where(source, name)) from None
    if not found:
        return Generated()
    generated = _assemble(found, properties, source)
    _SampleCheck(schema, source).run(generated)
    return generated


def _where(source: str, name: str) -> str:
    return f"{source} $.properties.{name}.{KEYWORD}"


def _compile_one(spec: Any, shape: FieldShape) -> Any:
    """A FieldGenerator, Sequence, Template, or a seed column (str)."""
    if spec == "uuid":
        return Uuid(shape)
    kind = _kind_of(spec)
    value = spec[kind]
    if kind == "fake":
        only_keys(spec, "fake", ("fake", "locale"))
        return Fake(value, spec.get("locale"))  # the sample check compares its values with the field
    if len(spec) > 1:
        extra = next(k for k in spec if k != kind)
        raise SpecProblem(f'{kind} has no setting "{extra[:60]}" beside it (only fake takes one: "locale")')
    if kind in ("uniform", "normal", "lognormal"):
        return {"uniform": Uniform, "normal": Normal, "lognormal": Lognormal}[kind](value, shape)
    if kind in ("date", "datetime"):
        return DateRange(kind, value, shape)
    if kind == "weights":
        return Weights(value, shape)
    if kind == "bool":
        return Bool(value, shape)
    if kind == "sequence":
        return _sequence(value, shape)
    if kind == "template":
        needs_type(shape, "string", "template", "text")
        return Template.parse(value)
    if kind == "from_seed":
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise SpecProblem(f'from_seed takes the name of a column of the seed data, not {shown(value)}')
        return value
    raise SpecProblem(f'"{kind}" takes no settings: write "{KEYWORD}": "{kind}"')  # uuid as an object


def _kind_of(spec: Any) -> str:
    listed = ", ".join(GENERATOR_NAMES)
    if isinstance(spec, str):
        hint = f'; for a Faker value write {{"fake": "{spec}"}}' if spec in COMMON_PROVIDERS else ""
        raise SpecProblem(f"unknown generator {spec[:60]!r}{hint}; the generators are {listed}")
    if not isinstance(spec, dict) or not spec:
        raise SpecProblem(f'{KEYWORD} takes "uuid" or an object like {{"normal": {{"mean": 42, "stdev": 14}}}}, not '
                          f"{shown(spec)}")
    kinds = [k for k in spec if k in GENERATOR_NAMES]
    if len(kinds) > 1:
        raise SpecProblem(f"one generator per field: this one names {kinds[0]} and {kinds[1]}")
    if not kinds:
        first = next(iter(spec))
        near = difflib.get_close_matches(first, GENERATOR_NAMES, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        if first in COMMON_PROVIDERS:
            hint = f'; for a Faker value write {{"fake": "{first}"}}'
        raise SpecProblem(f"unknown generator {first[:60]!r}{hint}; the generators are {listed}")
    return kinds[0]


def _sequence(spec: Any, shape: FieldShape) -> Sequence:
    only_keys(spec, "sequence", ("start", "step"))
    needs_type(shape, "number", "sequence", "numbers")
    start, step = number_param(spec, "start", default=1), number_param(spec, "step", default=1)
    if step == 0:
        raise SpecProblem('sequence "step" must not be 0: every record would get the same value')
    whole = float(start).is_integer() and float(step).is_integer()
    if shape.integer and not whole:
        raise SpecProblem(f"sequence on an integer field needs whole numbers for start and step, not {start} and "
                          f"{step}")
    if whole and (shape.integer or (isinstance(start, int) and isinstance(step, int))):
        return Sequence(int(start), int(step))
    return Sequence(start, step, max(decimals_of(start), decimals_of(step)))


def _assemble(found: dict[str, Any], properties: dict[str, Any], source: str) -> Generated:
    """Sort what was compiled by what it is; check the templates' fields and order them."""
    templates = {name: item for name, item in found.items() if isinstance(item, Template)}
    for name, template in templates.items():
        for used in template.fields:
            if used not in properties:
                names = ", ".join(list(properties)[:30]) + (", ..." if len(properties) > 30 else "")
                raise SchemaError(f"template names unknown field {used[:60]!r}; fields here: {names}",
                                  _where(source, name))
    try:
        order = template_order(templates)
    except TemplateCycle as exc:
        raise SchemaError(f"templates read each other in a circle: {exc.cycle}", _where(source, exc.field)) from None
    generators = {name: item for name, item in found.items() if isinstance(item, FieldGenerator)}
    sequences = {name: item for name, item in found.items() if isinstance(item, Sequence)}
    return Generated(
        generators=generators,
        sequences=sequences,
        templates={name: templates[name] for name in order},
        from_seed={name: item for name, item in found.items() if isinstance(item, str)},
        unique_fields=frozenset(sequences) | frozenset(n for n, g in generators.items() if isinstance(g, Uuid)),
    )


class _SampleCheck:
    """Draws sample values with a fixed seed and validates each against its field's schema."""

    def __init__(self, schema: dict[str, Any], source: str) -> None:
        self.schema = schema
        self.source = source
        self.validators: dict[str, SchemaValidator] = {}

    def run(self, generated: Generated) -> None:
        rng = random.Random(SAMPLE_SEED)
        for name, generator in generated.generators.items():
            for _ in range(SAMPLES):
                self.check(name, generator.describe(), self.draw(name, generator, rng))
        for name, sequence in generated.sequences.items():
            self.check(name, "sequence", sequence.at(0))
        ready = set(generated.generators) | set(generated.sequences)
        for name, template in generated.templates.items():
            if set(template.fields) <= ready:  # fields the model or the seed fill are not known here
                ready.add(name)
        rendered = [name for name in generated.templates if name in ready]
        for position in range(SAMPLES if rendered else 0):
            record = generated.fill(generated.draw(rng), position)
            for name in rendered:
                self.check(name, f"template {generated.templates[name].text[:60]!r}", record[name])

    def draw(self, name: str, generator: FieldGenerator, rng: random.Random) -> Any:
        try:
            return generator.draw(rng)
        except SpecProblem as exc:
            raise SchemaError(str(exc), _where(self.source, name)) from None
        except Exception as exc:  # a library provider that fails (a missing optional package, ...)
            raise SchemaError(f"{generator.describe()} failed while drawing a value: {type(exc).__name__}: "
                              f"{str(exc)[:200]}", _where(self.source, name)) from None

    def check(self, name: str, what: str, value: Any) -> None:
        shape = FieldShape.of(name, self.schema["properties"][name])
        kind = _json_type(value)
        if not shape.allows(kind):
            raise SchemaError(f"{what} gives {kind} values like {shown(value, 80)}, but this field is "
                              f"{shape.type_text}", _where(self.source, name))
        validator = self.validators.get(name)
        if validator is None:
            validator = self.validators[name] = SchemaValidator(self._field_schema(name))
        if not validator.is_valid(value):
            reasons = validator.errors(value, limit=1) or ["the field's schema refuses it"]
            reason = reasons[0].split(": ", 1)[-1]
            raise SchemaError(f"{what} cannot meet the field's constraints: it drew {shown(value, 80)}, and {reason}",
                              _where(self.source, name))

    def _field_schema(self, name: str) -> dict[str, Any]:
        """The field's schema as a document of its own that still resolves $refs into the
        record schema: the record's definitions, and a $ref to the field."""
        keys = ("$id", "$defs", "definitions", "properties")
        kept: dict[str, Any] = {k: self.schema[k] for k in keys if k in self.schema}
        pointer = quote(name.replace("~", "~0").replace("/", "~1"), safe="")
        return {**kept, "$ref": f"#/properties/{pointer}"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if is_number(value):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _check_places(schema: dict[str, Any], source: str) -> None:
    """x-generator belongs on a top-level field: anywhere else is an error, not ignored."""
    for path, node, top_field in _subschemas(schema):
        spec = node.get("properties", {}).get(KEYWORD) if isinstance(node.get("properties"), dict) else None
        if isinstance(spec, dict) and spec.keys() & set(GENERATOR_NAMES):
            raise SchemaError(
                f"this field reads as an object with a field named {KEYWORD}: in the short form, a field whose "
                f"schema holds nothing but {KEYWORD} is taken for a nested object. Give it a type beside it, like "
                f'{{"type": "string", "{KEYWORD}": ...}}', f"{source} {path}")
        if KEYWORD in node and not top_field:
            raise SchemaError(
                f"{KEYWORD} works only on a field of the record itself ($.properties.NAME), not inside a nested "
                "object, an array, a combinator or $defs: move it to a top-level field, or let the model fill "
                "this one", f"{source} {path}.{KEYWORD}")


def _subschemas(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Every (sub)schema with its path and whether it is a top-level field (no recursion)."""
    stack: list[tuple[str, Any, bool]] = [("$", schema, False)]
    while stack:
        path, node, top_field = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node, top_field
        for key in _SCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                is_top = path == "$" and key == "properties"
                stack.extend((f"{path}.{key}.{name}", sub, is_top) for name, sub in node[key].items())
        for key in _SCHEMA_ONE:
            stack.append((f"{path}.{key}", node.get(key), False))
        for key in _SCHEMA_LISTS:
            if isinstance(node.get(key), list):
                stack.extend((f"{path}.{key}[{i}]", sub, False) for i, sub in enumerate(node[key]))
