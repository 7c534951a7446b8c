"""Record schemas: the short form, checking, one compiled validator per run, prompt text.

A user writes either a JSON Schema (draft 2020-12) describing one record, or the short
form ``{"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}}`` where
every top-level key is a field. The short form becomes an object schema in which every
field is required unless it says ``"required": false``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonschema import (
    Draft3Validator,
    Draft4Validator,
    Draft6Validator,
    Draft7Validator,
    Draft201909Validator,
    Draft202012Validator,
)
from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

from .errors import SchemaError, UserInputError
from .refs import LocalRefs
from .validation import SchemaValidator, clip, compiled_pattern

if TYPE_CHECKING:
    from .recipe import Recipe

# Keywords whose value is a schema or a map of schemas: a dict holding only these is a
# schema, even though all its values are dicts like a short form's.
DICT_VALUED_KEYWORDS = frozenset(
    {"properties", "$defs", "definitions", "patternProperties", "dependentSchemas", "items", "not",
     "additionalProperties", "contains", "propertyNames", "if", "then", "else"}
)
# What makes a field's shape known (a field with none of these gets a warning).
TYPING_KEYWORDS = frozenset(
    {"type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf", "properties", "items", "prefixItems"}
)
# Nesting of objects and arrays a schema document may have. jsonschema checks a schema
# recursively: at ~100 levels it overflows Python's stack. Real record schemas stay far
# below this; a short form doubles it when expanded, which still checks fine.
MAX_SCHEMA_DEPTH = 32
# The meta-schemas jsonschema ships: a $schema naming one of them is resolved locally.
# Any other $schema is a URL a validator would fetch (jsonschema-rs did, file:// too).
KNOWN_DIALECTS = frozenset(
    cls.ID_OF(cls.META_SCHEMA).rstrip("#")
    for cls in (Draft3Validator, Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator,
                Draft202012Validator)
)
@dataclass
class RecordSchema:
    """A checked record schema and what checking it found; it validates records with one
    compiled validator (core/validation.py)."""

    schema: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    short_form: bool = False
    recipe: Recipe | None = None  # where each field comes from, and the rules (core/recipe.py)
    _compiled: SchemaValidator | None = field(default=None, repr=False, compare=False)
    _field_validators: dict[str, SchemaValidator] = field(default_factory=dict, repr=False, compare=False)

    @property
    def compiled(self) -> SchemaValidator:
        if self._compiled is None:
            self._compiled = SchemaValidator(self.schema)
        return self._compiled

    @property
    def validator(self) -> Any:
        """jsonschema's validator (the one whose errors are reported)."""
        return self.compiled.validator

    @property
    def fast_validator(self) -> Any:
        return self.compiled.fast_validator

    def is_valid(self, record: Any) -> bool:
        return self.compiled.is_valid(record)

    def errors(self, record: Any, limit: int = 5) -> list[str]:
        """Human-readable reasons why ``record`` breaks the schema (empty when valid)."""
        return self.compiled.errors(record, limit)

    def field_errors(self, name: str, value: Any) -> list[str]:
        """Why ``value`` cannot be the top-level field ``name`` (empty: it can). The
        field's schema is checked alone, with the record's definitions for its $refs."""
        validator = self._field_validators.get(name)
        if validator is None:
            spec = (self.schema.get("properties") or {}).get(name, {})
            alone = {k: v for k, v in self.schema.items() if k in ("$id", "$defs", "definitions")}
            alone.update(type="object", properties={name: spec})
            validator = self._field_validators[name] = SchemaValidator(alone)
        return validator.errors({name: value}, limit=1)

    def field_names(self) -> list[str]:
        return list(self.schema.get("properties", {}))

    def in_order(self, record: Any) -> Any:
        """``record`` with its keys in the schema's order, nested objects and arrays of
        objects too (a model, or a grammar, may return them in any order); keys the schema
        does not name follow, as they came."""
        return _ordered(record, self.schema)

    def pretty(self) -> str:
        return json.dumps(self.schema, indent=2, ensure_ascii=False)


def load_schema_file(path: str | Path) -> RecordSchema:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{p}: schema file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{p}: cannot read schema file: {exc}") from None
    return parse_schema(text, source=str(p))


def parse_schema(text: str, source: str = "schema") -> RecordSchema:
    """Parse, expand and check schema text. Raises SchemaError naming the place."""
    if not text.strip():
        raise SchemaError("the schema is empty: define at least one field", source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"invalid JSON: {exc.msg}", f"{source}:{exc.lineno}:{exc.colno}") from None
    except RecursionError:
        raise SchemaError(_too_deep(), source) from None
    return check_schema(data, source)


def check_schema(data: Any, source: str = "schema") -> RecordSchema:
    if not isinstance(data, dict):
        raise SchemaError(
            f"a schema must be a JSON object, not {type(data).__name__}", source
        )
    if not data:
        raise SchemaError("the schema is empty: define at least one field", source)
    _check_depth(data, source)  # first: every later step recurses
    short = is_short_form(data)
    schema = expand_short_form(data, source) if short else data
    _check_meta(schema, source)
    _check_dialects(schema, source)
    _check_record_shape(schema, source)
    _check_refs(schema, source)
    _check_patterns(schema, source)
    warnings = list(_untyped_field_warnings(schema))
    from .recipe import Recipe  # its generators bring a fake-data library: only when a schema is checked

    recipe = Recipe.compile(schema, source)
    return RecordSchema(schema=schema, warnings=warnings, short_form=short, recipe=recipe)


def is_short_form(data: dict[str, Any]) -> bool:
    """True when the keys are field names, each mapped to a field schema.

    Decided by the values, not the names: fields called "title", "type" or "format" are
    common. A JSON Schema has a string "type", a "$schema"/"$ref", or some value that is
    not an object ("required": [...], "title": "..."); a short form has only objects."""
    if "$schema" in data or "$ref" in data or isinstance(data.get("type"), (str, list)):
        return False
    if "x-generator" in data:  # a field's schema that only says how it is generated
        return False
    fields = {k: v for k, v in data.items() if not _extension(k)}  # x-rules sit beside the fields
    if not fields or not all(isinstance(v, dict) or v is None for v in fields.values()):
        return False
    return not fields.keys() <= DICT_VALUED_KEYWORDS


def _extension(key: str) -> bool:
    """Our own keywords (x-generator, x-rules), which JSON Schema leaves alone."""
    return isinstance(key, str) and key.startswith("x-")


def expand_short_form(fields: dict[str, Any], source: str = "schema", path: str = "$") -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    extensions = {name: spec for name, spec in fields.items() if _extension(name)}
    for name, spec in fields.items():
        if name in extensions:
            continue
        where = f"{path}.{name}"
        if spec is None:
            raise SchemaError(
                f'field "{name}" is defined as null; give it a schema such as {{"type": "string"}}',
                f"{source} {where}",
            )
        if not isinstance(spec, dict):
            raise SchemaError(
                f'field "{name}" must be an object such as {{"type": "string"}}, not {json.dumps(spec)}',
                f"{source} {where}",
            )
        spec = dict(spec)
        optional = spec.pop("optional", False) is True
        req_flag = spec.get("required")
        if isinstance(req_flag, bool):
            spec.pop("required")
            optional = optional or req_flag is False
        if spec and is_short_form(spec) and all(isinstance(v, dict) for k, v in spec.items() if not _extension(k)):
            spec = expand_short_form(spec, source, where)  # a nested short-form object
        properties[name] = spec
        if not optional:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required, **extensions}


def _check_meta(schema: dict[str, Any], source: str) -> None:
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    error = best_match(meta.iter_errors(schema))
    if error is not None:
        raise SchemaError(error.message, f"{source} {error.json_path}")


def _check_record_shape(schema: dict[str, Any], source: str) -> None:
    kind = schema.get("type")
    if kind not in (None, "object") or ("properties" not in schema and "$ref" not in schema):
        raise SchemaError(
            'a record schema must describe an object: {"type": "object", "properties": {...}}',
            source,
        )
    props = schema.get("properties")
    if isinstance(props, dict) and not props:
        raise SchemaError("the schema is empty: define at least one field under properties", source)
    for name, spec in (props or {}).items():
        if spec is None:  # already caught by the meta-schema, kept for clarity
            raise SchemaError(f'field "{name}" is defined as null', f"{source} $.properties.{name}")


def _walk(node: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every value in a JSON document with its path, parents first (no recursion)."""
    stack = [(path, node)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, dict):
            stack.extend((f"{path}.{key}", value) for key, value in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", value) for i, value in reversed(list(enumerate(node))))


def _too_deep() -> str:
    return (f"the schema nests objects and arrays more than {MAX_SCHEMA_DEPTH} levels deep: "
            "flatten it, or define repeated parts once under $defs")


def _check_depth(data: Any, source: str) -> None:
    stack = [(data, "$", 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise SchemaError(_too_deep(), f"{source} {path}")
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}", depth + 1) for k, v in node.items() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node) if isinstance(v, (dict, list)))


def _check_dialects(schema: dict[str, Any], source: str) -> None:
    """A $schema must name a draft jsonschema ships; anything else is a URL (or a file)
    a validator would read, so it is refused before any request."""
    for path, node in _walk(schema):
        if isinstance(node, dict) and isinstance(node.get("$schema"), str):
            dialect = node["$schema"]
            if dialect.removesuffix("#") not in KNOWN_DIALECTS:
                raise SchemaError(
                    f"$schema {clip(repr(dialect))} is not a JSON Schema draft this app knows, and it is never "
                    f'fetched: use "{Draft202012Validator.META_SCHEMA["$id"]}" or leave $schema out',
                    f"{source} {path}.$schema",
                )


def _check_refs(schema: dict[str, Any], source: str) -> None:
    """Every $ref and $dynamicRef must point inside this schema, resolved the way the
    validators resolve it (core/refs.py): against the nearest enclosing $id. Nothing is
    ever fetched."""
    refs = LocalRefs(schema)
    stack: list[tuple[str, Any, str]] = [("$", schema, refs.root_uri)]
    while stack:
        path, node, base = stack.pop()
        if isinstance(node, list):
            stack.extend((f"{path}[{i}]", v, base) for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        if node is not schema:
            base = refs.base_inside(node, base)
        for keyword in ("$ref", "$dynamicRef"):
            if isinstance(node.get(keyword), str):
                _check_ref(refs, base, keyword, node[keyword], f"{source} {path}")
        if "$recursiveRef" in node and node["$recursiveRef"] != "#":
            raise SchemaError('$recursiveRef can only be "#"', f"{source} {path}")
        stack.extend((f"{path}.{k}", v, base) for k, v in node.items())


def _check_ref(refs: LocalRefs, base: str, keyword: str, ref: str, where: str) -> None:
    if not refs.is_local(ref, base):
        target = refs.target(ref, base)
        shown = ref if target == ref else f"{ref} (that is {target})"
        raise SchemaError(
            f"remote {keyword} {clip(repr(shown))} is not fetched: copy that schema under $defs and refer to it "
            "as #/$defs/...",
            where,
        )
    try:
        refs.lookup(ref, base)
    except Unresolvable:
        raise SchemaError(f"{keyword} {clip(repr(ref))} points at nothing in this schema", where) from None


def _check_patterns(schema: dict[str, Any], source: str) -> None:
    """Every pattern must compile on the engine it runs on (see validation.REGEX_BACKTRACK_LIMIT)."""
    for path, node in _walk(schema):
        if not isinstance(node, dict):
            continue
        found = []
        if isinstance(node.get("pattern"), str):
            found.append((node["pattern"], f"{path}.pattern"))
        if isinstance(node.get("patternProperties"), dict):
            found += [(p, f"{path}.patternProperties") for p in node["patternProperties"]]
        for pattern, where in found:
            try:
                compiled_pattern(pattern)
            except Exception:
                raise SchemaError(
                    f"{clip(repr(pattern))} is not a regular expression the validator can run "
                    "(ECMA 262 syntax, as JSON Schema uses)",
                    f"{source} {where}",
                ) from None


def _untyped_field_warnings(schema: dict[str, Any], path: str = "$") -> Iterator[str]:
    for name, spec in (schema.get("properties") or {}).items():
        where = f"{path}.{name}"
        if isinstance(spec, dict):
            if not TYPING_KEYWORDS & spec.keys():
                yield f'{where}: field "{name}" has no type, so the model may return anything for it'
            if isinstance(spec.get("properties"), dict):
                yield from _untyped_field_warnings(spec, where)
            items = spec.get("items")
            if isinstance(items, dict) and isinstance(items.get("properties"), dict):
                yield from _untyped_field_warnings(items, f"{where}[]")


def batch_schema(schema: dict[str, Any], count: int) -> dict[str, Any]:
    """The structured-output schema for a request that asks for ``count`` records."""
    record = {k: v for k, v in schema.items() if k not in ("$defs", "definitions", "$schema", "$id")}
    wrapper: dict[str, Any] = {
        "type": "object",
        "properties": {
            "records": {"type": "array", "items": record, "minItems": count, "maxItems": count}
        },
        "required": ["records"],
        "additionalProperties": False,
    }
    for key in ("$defs", "definitions"):
        if key in schema:
            wrapper[key] = schema[key]
    return wrapper


def _ordered(value: Any, schema: Any) -> Any:
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return value
        named = [k for k in properties if k in value]
        rest = [k for k in value if k not in properties]
        return {k: _ordered(value[k], properties[k]) for k in named} | {k: value[k] for k in rest}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_ordered(item, schema["items"]) for item in value]
    return value


def canonical_json(record: Any) -> str:
    """One spelling per value, for exact-duplicate detection."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
