"""Turn a model's text into candidate records.

Models answer with plain JSON, JSON in a code fence, a wrapper object such as
``{"records": [...]}``, a bare array, one object per line, or JSON after a sentence of
chatter. Every shape is accepted here; whether a candidate is a valid record is the
validator's call, not this module's.
"""

from __future__ import annotations

import json
import re
from typing import Any

FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
WRAPPER_KEYS = ("records", "data", "items", "results", "rows", "entries", "objects")


class UnparseableOutput(ValueError):
    """The text holds no JSON value at all."""


def extract_records(text: str, fields: frozenset[str] = frozenset()) -> list[Any]:
    """Candidate records found in ``text``; raises UnparseableOutput when there is no JSON.

    ``fields`` are the record's property names: an object whose keys are all fields is a
    record even when one of them holds a list (an order with its ``items``)."""
    body = text.strip()
    fenced = FENCE.findall(body)
    if fenced:
        body = "\n".join(part.strip() for part in fenced)
    value = _loads_leniently(body)
    return _unwrap(value, fields)


def _loads_leniently(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        pass
    lines = [ln.strip().rstrip(",") for ln in body.splitlines() if ln.strip()]
    if len(lines) > 1:
        try:
            return [json.loads(ln) for ln in lines]  # JSON Lines
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    values = []
    pos = 0
    while True:
        starts = [i for i in (body.find("{", pos), body.find("[", pos)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        try:
            value, end = decoder.raw_decode(body, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        values.append(value)
        pos = end
    if not values:
        snippet = body[:80].replace("\n", " ")
        raise UnparseableOutput(f"no JSON found in the model's answer: {snippet!r}")
    return values[0] if len(values) == 1 else values


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
