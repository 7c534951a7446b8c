"""Validating JSON values against a schema: one compiled validator, reused for every value.

Two engines decide: jsonschema-rs (fast; formats checked by jsonschema's own checks, so a
format means the same to both) and, for the words of an error or where the fast one cannot
compile a schema, jsonschema's 2020-12 validator with every keyword that runs a regular
expression moved onto the Rust engine. Nothing outside the schema is ever fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable

from .errors import SchemaError


class SchemaValidator:
    """A schema (already checked) compiled for validating many values."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._validator: Draft202012Validator | None = None
        self._fast: Any = None

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

    def is_valid(self, value: Any) -> bool:
        fast = self.fast_validator
        return fast.is_valid(value) if fast is not None else self._python_is_valid(value)

    def _python_is_valid(self, value: Any) -> bool:
        try:
            return self.validator.is_valid(value)
        except Unresolvable as exc:  # check_schema resolves every $ref: a safety net
            raise SchemaError(f"a reference cannot be resolved: {clip(str(exc))}", "schema") from None

    def errors(self, value: Any, limit: int = 5) -> list[str]:
        """Human-readable reasons why ``value`` breaks the schema (empty when valid)."""
        if self.is_valid(value):
            return []
        out = []
        try:
            for err in self.validator.iter_errors(value):
                out.append(f"{clip(err.json_path, 100)}: {_short_message(err)}")
                if len(out) >= limit:
                    break
        except Unresolvable as exc:
            raise SchemaError(f"a reference cannot be resolved: {clip(str(exc))}", "schema") from None
        if not out:  # only the fast validator objects (a stricter format, say): its words
            for err in self.fast_validator.iter_errors(value):
                path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.instance_path)
                out.append(f"{clip(path, 100)}: {clip(err.message)}")
                if len(out) >= limit:
                    break
        return out


# Patterns run on jsonschema-rs's regex engine: the Rust regex crate (linear time) for
# every pattern without lookaround or backreferences; those few run on fancy-regex's
# backtracking engine, stopped after this many steps (a few ms; past it, no match).
# Python's re is never used on a pattern: it backtracks exponentially (^(a+)+$ on 50
# a's and a "!" ran for minutes, holding the GIL, so even signals waited).
REGEX_BACKTRACK_LIMIT = 100_000


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
def compiled_pattern(pattern: str) -> Any:
    """A jsonschema-rs validator that runs one pattern (raises ValueError if it is not one)."""
    import jsonschema_rs

    return jsonschema_rs.validator_for({"pattern": pattern}, pattern_options=_pattern_options())


def pattern_search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, as JSON Schema's "pattern" means,
    on the engine that decides validity, never on Python's backtracking re."""
    return compiled_pattern(pattern).is_valid(text)


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
    return clip(message)


def clip(message: str, limit: int = 200) -> str:
    """Messages quote model output, keys included: they stay short (they go into prompts)."""
    return message if len(message) <= limit else message[: limit - 3] + "..."
