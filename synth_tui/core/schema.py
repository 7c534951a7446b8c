"""Record schemas: the short form, checking, one compiled validator per run, prompt text.

A user writes either a JSON Schema (draft 2020-12) describing one record, or the short
form ``{"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}}`` where
every top-level key is a field. The short form becomes an object schema in which every
field is required unless it says ``"required": false``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry

from .errors import SchemaError, UserInputError

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


@dataclass
class RecordSchema:
    """A checked record schema and what checking it found."""

    schema: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    short_form: bool = False
    _validator: Draft202012Validator | None = field(default=None, repr=False, compare=False)
    _fast: Any = field(default=None, repr=False, compare=False)

    @property
    def validator(self) -> Draft202012Validator:
        """One compiled validator, reused for every record (per-call validate() is 40x slower)."""
        if self._validator is None:
            self._validator = Draft202012Validator(
                self.schema,
                format_checker=FormatChecker(),
                registry=Registry(),  # empty: a remote $ref is never fetched
            )
        return self._validator

    @property
    def fast_validator(self) -> Any:
        """jsonschema-rs, ~50x faster than jsonschema here, with jsonschema's own format
        checks plugged in so that a format means the same thing to both. None when the
        package is missing or cannot compile the schema: jsonschema alone then decides."""
        if self._fast is None:
            self._fast = False
            try:
                import jsonschema_rs

                checker = FormatChecker()
                formats = {name: _format_check(checker, name) for name in checker.checkers}
                self._fast = jsonschema_rs.validator_for(self.schema, validate_formats=True, formats=formats)
            except Exception:  # ImportError, or a schema it rejects: fall back
                self._fast = False
        return self._fast or None

    def is_valid(self, record: Any) -> bool:
        fast = self.fast_validator
        return fast.is_valid(record) if fast is not None else self.validator.is_valid(record)

    def errors(self, record: Any, limit: int = 5) -> list[str]:
        """Human-readable reasons why ``record`` breaks the schema (empty when valid)."""
        if self.is_valid(record):
            return []
        out = []
        for err in self.validator.iter_errors(record):
            out.append(f"{err.json_path}: {_clip(err.message)}")
            if len(out) >= limit:
                break
        if not out:  # only the fast validator objects (a stricter format, say): its words
            for err in self.fast_validator.iter_errors(record):
                path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.instance_path)
                out.append(f"{path}: {_clip(err.message)}")
                if len(out) >= limit:
                    break
        return out

    def field_names(self) -> list[str]:
        return list(self.schema.get("properties", {}))

    def pretty(self) -> str:
        return json.dumps(self.schema, indent=2, ensure_ascii=False)


def _format_check(checker: FormatChecker, name: str) -> Any:
    return lambda value: checker.conforms(value, name)


def _clip(message: str) -> str:
    return message if len(message) <= 200 else message[:197] + "..."


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
    return check_schema(data, source)


def check_schema(data: Any, source: str = "schema") -> RecordSchema:
    if not isinstance(data, dict):
        raise SchemaError(
            f"a schema must be a JSON object, not {type(data).__name__}", source
        )
    if not data:
        raise SchemaError("the schema is empty: define at least one field", source)
    short = is_short_form(data)
    schema = expand_short_form(data, source) if short else data
    _check_meta(schema, source)
    _check_record_shape(schema, source)
    _check_refs(schema, source)
    warnings = list(_untyped_field_warnings(schema))
    return RecordSchema(schema=schema, warnings=warnings, short_form=short)


def is_short_form(data: dict[str, Any]) -> bool:
    """True when the keys are field names, each mapped to a field schema.

    Decided by the values, not the names: fields called "title", "type" or "format" are
    common. A JSON Schema has a string "type", a "$schema"/"$ref", or some value that is
    not an object ("required": [...], "title": "..."); a short form has only objects."""
    if "$schema" in data or "$ref" in data or isinstance(data.get("type"), (str, list)):
        return False
    if not all(isinstance(v, dict) or v is None for v in data.values()):
        return False
    return not data.keys() <= DICT_VALUED_KEYWORDS


def expand_short_form(fields: dict[str, Any], source: str = "schema", path: str = "$") -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in fields.items():
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
        if spec and is_short_form(spec) and all(isinstance(v, dict) for v in spec.values()):
            spec = expand_short_form(spec, source, where)  # a nested short-form object
        properties[name] = spec
        if not optional:
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


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
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def _check_refs(schema: dict[str, Any], source: str) -> None:
    for path, node in _walk(schema):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            continue
        ref = node["$ref"]
        if not ref.startswith("#"):
            raise SchemaError(
                f"remote $ref {ref!r} is not fetched: copy that schema under $defs and refer to it as #/$defs/...",
                f"{source} {path}",
            )
        target: Any = schema
        for part in ref[1:].lstrip("/").split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            else:
                raise SchemaError(f"$ref {ref!r} points at nothing in this schema", f"{source} {path}")


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


def canonical_json(record: Any) -> str:
    """One spelling per value, for exact-duplicate detection."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
