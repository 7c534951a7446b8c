"""Turn a model's text into candidate records.

Models answer with plain JSON, JSON in a code fence, a wrapper object such as
``{"records": [...]}``, a bare array, one object per line, or JSON after a sentence of
chatter. Every shape is accepted here; whether a candidate is a valid record is the
validator's call, not this module's.

The text is untrusted: every step is linear in its length, nothing recurses on its
nesting, and an answer nested deeper than MAX_DEPTH is refused (a record that deep
would overflow the validators' stacks).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import TooDeep, UnparseableOutput

__all__ = ["MAX_DEPTH", "MAX_VALUES", "TooDeep", "UnparseableOutput", "extract_records"]

WRAPPER_KEYS = ("records", "data", "items", "results", "rows", "entries", "objects")
# Levels of objects and arrays an answer may nest: a schema has at most 32 (schema.py),
# a wrapper adds two, a short form's expansion doubles nothing in the records.
MAX_DEPTH = 64
# JSON values taken from one answer: far more records than anyone asks for at once
MAX_VALUES = 10_000

_OPENER = re.compile(r"[{\[]")
# inside a JSON value: a whole string (or the rest of the text, if it never ends) or a
# bracket. Both alternatives always match where they start, so the scan is linear.
_TOKEN = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)|[{}\[\]]', re.DOTALL)
_CLOSER = {"}": "{", "]": "["}


def extract_records(text: str, fields: frozenset[str] = frozenset()) -> list[Any]:
    """Candidate records found in ``text``; raises UnparseableOutput when there is no JSON.

    ``fields`` are the record's property names: an object whose keys are all fields is a
    record even when one of them holds a list (an order with its ``items``)."""
    body = text.strip()
    fenced = _fenced_blocks(body)
    if fenced:
        body = "\n".join(part.strip() for part in fenced)
    value = _loads_leniently(body)
    return _unwrap(value, fields)


def _fenced_blocks(body: str) -> list[str]:
    """The contents of ```-fenced blocks, without their language tag."""
    parts = body.split("```")
    blocks = []
    for inner in parts[1:-1:2]:  # between an opening and a closing fence
        first, newline, rest = inner.partition("\n")
        tag = first.strip()
        if newline and (not tag or tag.replace("-", "").replace("_", "").isalnum()):
            inner = rest
        blocks.append(inner)
    return blocks


def _loads_leniently(body: str) -> Any:
    try:
        return _loads(body)
    except json.JSONDecodeError:
        pass
    lines = [ln.strip().rstrip(",") for ln in body.splitlines() if ln.strip()]
    if len(lines) > 1:
        try:
            return [_loads(ln) for ln in lines]  # JSON Lines
        except json.JSONDecodeError:
            pass
    values = _embedded_values(body)
    if not values:
        snippet = body[:80].replace("\n", " ")
        raise UnparseableOutput(f"no JSON found in the model's answer: {snippet!r}")
    return values[0] if len(values) == 1 else values


def _loads(text: str) -> Any:
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(_too_deep()) from None
    if _depth_over(value, MAX_DEPTH):
        raise TooDeep(_too_deep())
    return value


def _too_deep() -> str:
    return f"the answer nests objects and arrays more than {MAX_DEPTH} levels deep"


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return False


def _embedded_values(body: str) -> list[Any]:
    """The outermost complete JSON objects and arrays in text with chatter around them.

    Each opening bracket outside a value is decoded where it stands. Where that fails,
    one pass matches brackets (strings skipped whole) to the end of that value; a value
    that is not JSON as a whole, or never closes (an answer cut off at max_tokens),
    gives up the complete values inside it instead. At most MAX_VALUES are taken."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    inner: list[tuple[int, int]] = []  # closed spans inside the open outermost value
    open_: list[tuple[str, int]] = []
    pos, n = 0, len(body)
    while pos < n and len(values) < MAX_VALUES:
        if not open_:
            m = _OPENER.search(body, pos)
            if m is None:
                break
            try:
                value, end = decoder.raw_decode(body, m.start())
            except json.JSONDecodeError:
                open_.append((m.group(), m.start()))  # match its brackets instead
                pos = m.end()
                continue
            except RecursionError:
                raise TooDeep(_too_deep()) from None
            if _depth_over(value, MAX_DEPTH):
                raise TooDeep(_too_deep())
            values.append(value)
            pos = end
            continue
        m = _TOKEN.search(body, pos)
        if m is None:
            break
        token, pos = m.group(), m.end()
        if token in "{[":
            open_.append((token, m.start()))
            if len(open_) > MAX_DEPTH:
                raise TooDeep(_too_deep())
        elif token in "}]" and open_[-1][0] == _CLOSER[token]:  # a stray closer is skipped
            _, start = open_.pop()
            if open_:
                inner.append((start, pos))
            else:  # the outermost value closed, and it did not decode as a whole
                values += _inner_values(body, inner)
                inner = []
    return (values + _inner_values(body, inner))[:MAX_VALUES]


def _inner_values(body: str, spans: list[tuple[int, int]]) -> list[Any]:
    """The outermost of ``spans`` that parse, each tried before the spans inside it."""
    values: list[Any] = []
    taken_until = -1
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):  # outer before inner
        if start < taken_until:
            continue  # inside a value already taken
        try:
            values.append(json.loads(body[start:end]))
        except json.JSONDecodeError:
            continue  # its inner spans come next
        taken_until = end
    return values


def _unwrap(value: Any, fields: frozenset[str]) -> list[Any]:
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            # an array of wrapper objects (several fenced blocks, say) flattens
            out.extend(_unwrap(item, fields) if _is_wrapper(item, fields) else [item])
        return out
    if _is_wrapper(value, fields):
        return _unwrap(_wrapped_list(value), fields)
    return [value]


def _wrapped_list(value: dict[str, Any]) -> list[Any]:
    for key in WRAPPER_KEYS:
        if isinstance(value.get(key), list):
            return value[key]
    return next(v for v in value.values() if isinstance(v, list))


def _is_wrapper(value: Any, fields: frozenset[str]) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    if fields and value.keys() <= fields:
        return False  # every key is a record field: this is a record
    list_keys = [k for k, v in value.items() if isinstance(v, list)]
    if len(list_keys) != 1:
        return False
    return len(value) == 1 or list_keys[0] in WRAPPER_KEYS
