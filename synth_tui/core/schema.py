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
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jsonschema import (
    Draft3Validator,
    Draft4Validator,
    Draft6Validator,
    Draft7Validator,
    Draft201909Validator,
    Draft202012Validator,
    FormatChecker,
    validators,
)
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.exceptions import Unresolvable

from .errors import SchemaError, UserInputError
from .refs import LocalRefs

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
# Patterns run on jsonschema-rs's regex engine: the Rust regex crate (linear time) for
# every pattern without lookaround or backreferences; those few run on fancy-regex's
# backtracking engine, stopped after this many steps (a few ms; past it, no match).
# Python's re is never used on a pattern: it backtracks exponentially (^(a+)+$ on 50
# a's and a "!" ran for minutes, holding the GIL, so even signals waited).
REGEX_BACKTRACK_LIMIT = 100_000


@dataclass
class RecordSchema:
    """A checked record schema and what checking it found."""

    schema: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    short_form: bool = False
    recipe: Recipe | None = None  # where each field comes from, and the rules (core/recipe.py)
    _validator: Draft202012Validator | None = field(default=None, repr=False, compare=False)
    _fast: Any = field(default=None, repr=False, compare=False)
    _field_validators: dict[str, RecordSchema] = field(default_factory=dict, repr=False, compare=False)

    @property
    def validator(self) -> Draft202012Validator:
        """One compiled validator, reused for every record (per-call validate() is 40x slower).

        jsonschema with its regex keywords on the Rust engine (see _LinearValidator), given
        the schema without $schema: jsonschema switches to its stock classes, and so back
        to Python's re, wherever a (sub)schema names its dialect."""
        if self._validator is None:
            self._validator = _LinearValidator(
                _without_dialect(self.schema),
                format_checker=_format_checker(),
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

                checker = _format_checker()
                # "regex" stays jsonschema-rs's own check, the engine the patterns run on
                formats = {name: _format_check(checker, name) for name in checker.checkers if name != "regex"}
                self._fast = jsonschema_rs.validator_for(
                    self.schema, validate_formats=True, formats=formats, retriever=_never_retrieve,
                    pattern_options=_pattern_options(),
                )
            except Exception:  # ImportError, or a schema it rejects: fall back
                self._fast = False
        return self._fast or None

    def is_valid(self, record: Any) -> bool:
        fast = self.fast_validator
        return fast.is_valid(record) if fast is not None else self._python_is_valid(record)

    def _python_is_valid(self, record: Any) -> bool:
        try:
            return self.validator.is_valid(record)
        except Unresolvable as exc:  # check_schema resolves every $ref: a safety net
            raise SchemaError(f"a reference cannot be resolved: {_clip(str(exc))}", "schema") from None

    def errors(self, record: Any, limit: int = 5) -> list[str]:
        """Human-readable reasons why ``record`` breaks the schema (empty when valid)."""
        if self.is_valid(record):
            return []
        out = []
        try:
            for err in self.validator.iter_errors(record):
                out.append(f"{_clip(err.json_path, 100)}: {_short_message(err)}")
                if len(out) >= limit:
                    break
        except Unresolvable as exc:
            raise SchemaError(f"a reference cannot be resolved: {_clip(str(exc))}", "schema") from None
        if not out:  # only the fast validator objects (a stricter format, say): its words
            for err in self.fast_validator.iter_errors(record):
                path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.instance_path)
                out.append(f"{_clip(path, 100)}: {_clip(err.message)}")
                if len(out) >= limit:
                    break
        return out

    def field_errors(self, name: str, value: Any) -> list[str]:
        """Why ``value`` cannot be the top-level field ``name`` (empty: it can). The
        field's schema is checked alone, with the record's definitions for its $refs."""
        validator = self._field_validators.get(name)
        if validator is None:
            spec = (self.schema.get("properties") or {}).get(name, {})
            alone = {k: v for k, v in self.schema.items() if k in ("$id", "$defs", "definitions")}
            alone.update(type="object", properties={name: spec})
            validator = self._field_validators[name] = RecordSchema(alone)
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


def _format_check(checker: FormatChecker, name: str) -> Any:
    return lambda value: checker.conforms(value, name)


# -- patterns on the Rust engine ------------------------------------------------------
def _pattern_options() -> Any:
    import jsonschema_rs

    return jsonschema_rs.FancyRegexOptions(backtrack_limit=REGEX_BACKTRACK_LIMIT)


def _never_retrieve(uri: str) -> Any:
    """jsonschema-rs's retriever: nothing outside the schema is ever read."""
    raise ValueError(f"{uri} is outside the schema and is not fetched")


@lru_cache(maxsize=1024)
def _compiled_pattern(pattern: str) -> Any:
    """A jsonschema-rs validator that runs one pattern (raises ValueError if it is not one)."""
    import jsonschema_rs

    return jsonschema_rs.validator_for({"pattern": pattern}, pattern_options=_pattern_options())


def pattern_search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, as JSON Schema's "pattern" means,
    on the engine that decides validity, never on Python's backtracking re."""
    return _compiled_pattern(pattern).is_valid(text)


@lru_cache(maxsize=1)
def _regex_format() -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for({"format": "regex"}, validate_formats=True)


def _format_checker() -> FormatChecker:
    """jsonschema's format checks, "regex" on the Rust engine (re.compile overflowed the
    stack on a value of 2000 nested parentheses)."""
    checker = FormatChecker()
    checker.checks("regex")(lambda value: not isinstance(value, str) or _regex_format().is_valid(value))
    return checker


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not pattern_search(patrn, instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for k, v in instance.items():
            if pattern_search(pattern, k):
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


def _additional_properties(validator: Any, aP: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = set(_additional_keys(instance, schema))
    if validator.is_type(aP, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], aP, path=extra)
    elif not aP and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            extras_list = sorted(extras, key=str)
            verb = "was" if len(extras_list) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({', '.join(repr(e) for e in extras_list)} {verb} unexpected)"
            )


def _additional_keys(instance: dict[str, Any], schema: dict[str, Any]) -> Iterator[str]:
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    for key in instance:
        if key not in properties and not any(pattern_search(p, key) for p in patterns):
            yield key


def _no_errors(errors: Iterator[Any]) -> bool:
    return next(iter(errors), None) is None


def _evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any) -> list[str]:
    """jsonschema's find_evaluated_property_keys_by_schema (MIT), patterns on the Rust engine."""
    if validator.is_type(schema, "boolean"):
        return []
    keys: list[str] = []
    for keyword in ("$ref", "$dynamicRef"):
        ref = schema.get(keyword)
        if ref is not None:
            resolved = validator._resolver.lookup(ref)
            keys += _evaluated_keys(
                validator.evolve(schema=resolved.contents, _resolver=resolved.resolver), instance, resolved.contents
            )
    properties = schema.get("properties")
    if validator.is_type(properties, "object"):
        keys += properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if (subschema := schema.get(keyword)) is not None:
            keys += (k for k, v in instance.items() if _no_errors(validator.descend(v, subschema)))
    for pattern in schema.get("patternProperties", {}):
        keys += (k for k in instance if pattern_search(pattern, k))
    for key, subschema in schema.get("dependentSchemas", {}).items():
        if key in instance:
            keys += _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if _no_errors(validator.descend(instance, subschema)):
                keys += _evaluated_keys(validator, instance, subschema)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys += _evaluated_keys(validator, instance, schema["if"])
            if "then" in schema:
                keys += _evaluated_keys(validator, instance, schema["then"])
        elif "else" in schema:
            keys += _evaluated_keys(validator, instance, schema["else"])
    return keys


def _unevaluated_properties(validator: Any, uP: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = set(_evaluated_keys(validator, instance, schema))
    bad = [k for k in instance if k not in evaluated and not _no_errors(
        validator.descend(instance[k], uP, path=k, schema_path=k))]
    if bad:
        listed = ", ".join(repr(k) for k in (sorted(bad, key=str) if uP is False else bad))
        verb = "was" if len(bad) == 1 else "were"
        if uP is False:
            yield ValidationError(f"Unevaluated properties are not allowed ({listed} {verb} unexpected)")
        else:
            yield ValidationError(
                f"Unevaluated properties are not valid under the given schema ({listed} {verb} unevaluated and invalid)"
            )


def _unique_key(value: Any) -> Any:
    """A hashable stand-in equal where JSON Schema calls values equal (1 == 1.0, True != 1)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, list):
        return ("l", tuple(_unique_key(v) for v in value))
    if isinstance(value, dict):
        return ("d", frozenset((k, _unique_key(v)) for k, v in value.items()))
    return ("v", value)


def _unique_items(validator: Any, uI: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """jsonschema compares objects pairwise (8,000 objects: minutes); hashing is linear."""
    if uI and validator.is_type(instance, "array"):
        keys = [_unique_key(v) for v in instance]
        if len(set(keys)) != len(keys):
            yield ValidationError(f"{instance!r} has non-unique elements")


# jsonschema 2020-12 with every keyword that runs a regex (and uniqueItems) replaced
_LinearValidator = validators.extend(Draft202012Validator, {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
    "uniqueItems": _unique_items,
})


def _without_dialect(node: Any) -> Any:
    """A copy without "$schema" keywords (property definitions named "$schema" stay)."""
    if isinstance(node, dict):
        return {k: _without_dialect(v) for k, v in node.items() if not (k == "$schema" and isinstance(v, str))}
    if isinstance(node, list):
        return [_without_dialect(v) for v in node]
    return node


def _short_message(err: ValidationError) -> str:
    """jsonschema's message with the value it quotes first cut short, so that the reason
    survives clipping ("'xxxx...' is not of type 'integer'")."""
    message = err.message
    quoted = repr(err.instance) if len(message) > 200 else ""
    if len(quoted) > 60 and message.startswith(quoted):
        message = quoted[:57] + "..." + message[len(quoted):]
    return _clip(message)


def _clip(message: str, limit: int = 200) -> str:
    """Messages quote model output, keys included: they stay short (they go into prompts)."""
    return message if len(message) <= limit else message[: limit - 3] + "..."


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
                    f"$schema {_clip(repr(dialect))} is not a JSON Schema draft this app knows, and it is never "
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
            f"remote {keyword} {_clip(repr(shown))} is not fetched: copy that schema under $defs and refer to it "
            "as #/$defs/...",
            where,
        )
    try:
        refs.lookup(ref, base)
    except Unresolvable:
        raise SchemaError(f"{keyword} {_clip(repr(ref))} points at nothing in this schema", where) from None


def _check_patterns(schema: dict[str, Any], source: str) -> None:
    """Every pattern must compile on the engine it runs on (see REGEX_BACKTRACK_LIMIT)."""
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
                _compiled_pattern(pattern)
            except Exception:
                raise SchemaError(
                    f"{_clip(repr(pattern))} is not a regular expression the validator can run "
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
