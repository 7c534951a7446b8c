"""A "lowered" copy of a schema for llama.cpp's grammar; validation keeps the original.

llama-cpp-python's schema-to-grammar converter ignores integer ``minimum``/``maximum``
and the email/uri/ipv4 formats, and a pattern it passes through but llama.cpp cannot
parse (``\\.`` for one) segfaults the process. So, before a schema becomes a grammar:
small integer ranges become enums, those formats become safe patterns, strings and
arrays get length caps, and patterns are rewritten into the subset that parses (or
dropped, leaving the check to the validator, which makes the engine ask again).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

MAX_ENUM_RANGE = 400  # integer ranges up to this size become every value in them
GRID_VALUES = 300  # wider ranges, and numbers, become about this many round values
DEFAULT_MAX_LENGTH = 60
DEFAULT_MAX_ITEMS = 4

FORMAT_PATTERNS = {
    "email": r"^[a-z]{3,10}([.][a-z]{2,10})?@(example|mail|inbox|post)[.](com|org|net)$",
    "uri": r"^https://www[.][a-z]{3,12}[.](com|org|net)/[a-z]{3,10}$",
    "ipv4": r"^(10|172|192)[.]([1-9]?[0-9])[.]([1-9]?[0-9])[.]([1-9][0-9]?)$",
    # days 01-28 are valid in every month
    "date": r"^(19[5-9][0-9]|20[0-2][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$",
    "date-time": r"^(19[5-9][0-9]|20[0-2][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$",
}
_ESCAPES = {
    r"\.": "[.]",
    r"\d": "[0-9]",
    r"\w": "[a-zA-Z0-9_]",
    r"\s": "[ ]",
    r"\-": "[-]",
    r"\+": "[+]",
    r"\(": "[(]",
    r"\)": "[)]",
    r"\/": "/",
    r"\:": ":",
    r"\@": "@",
    r"\_": "_",
}


def sanitize_pattern(pattern: str) -> str | None:
    """The pattern in the syntax llama.cpp's grammar parser accepts, or None."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        return None  # the converter asserts on unanchored patterns
    out = pattern
    for escape, safe in _ESCAPES.items():
        out = out.replace(escape, safe)
    if "\\" in out or "(?" in out or "{," in out:
        return None  # escapes, lookarounds, open ranges: leave it to validation
    try:
        re.compile(out)
    except re.error:
        return None
    return out


def lower_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return _lower(copy.deepcopy(schema))


def _lower(node: Any) -> Any:
    if isinstance(node, list):
        return [_lower(item) for item in node]
    if not isinstance(node, dict):
        return node
    for key in ("properties", "$defs", "definitions"):
        if isinstance(node.get(key), dict):
            node[key] = {name: _lower(sub) for name, sub in node[key].items()}
    for key in ("items", "anyOf", "oneOf", "allOf", "prefixItems"):
        if key in node:
            node[key] = _lower(node[key])
    kind = node.get("type")
    if kind == "object" and "properties" in node and not {"additionalProperties", "patternProperties"} & node.keys():
        node["additionalProperties"] = False  # else the grammar lets the model add keys
    if kind in ("integer", "number") and "enum" not in node and "multipleOf" not in node:
        lo, hi = _bounds(node, kind)
        if lo is not None and hi is not None and lo <= hi:
            if kind == "integer" and hi - lo <= MAX_ENUM_RANGE:
                node["enum"] = list(range(int(lo), int(hi) + 1))
            else:
                node["enum"] = round_grid(lo, hi, integer=kind == "integer")
    if kind == "string" and not {"enum", "const"} & node.keys():
        fmt = node.pop("format", None)
        if fmt in FORMAT_PATTERNS and "pattern" not in node:
            node["pattern"] = FORMAT_PATTERNS[fmt]
        elif fmt is not None and fmt.startswith("uuid"):
            node["format"] = fmt  # the converter has a rule for uuid
        if "pattern" in node:
            safe = sanitize_pattern(node["pattern"])
            if safe is None:
                node.pop("pattern")
            else:
                node["pattern"] = safe
        if "pattern" not in node and "format" not in node:
            node.setdefault("maxLength", DEFAULT_MAX_LENGTH)
    if kind == "array" and "maxItems" not in node:
        node["maxItems"] = max(DEFAULT_MAX_ITEMS, node.get("minItems", 0))
    return node


def nice_step(raw: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that is at least ``raw``."""
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def round_grid(lo: float, hi: float, *, integer: bool) -> list[int | float]:
    """About GRID_VALUES round values inside [lo, hi] (salary 30000-250000 -> every
    1000): the grammar cannot express a range, but it can choose among these."""
    if hi == lo:
        return [int(lo) if integer else lo]
    step = nice_step((hi - lo) / GRID_VALUES)
    if integer:
        step = max(1, int(step))
    first = math.ceil(lo / step)
    values: list[int | float] = []
    k = first
    while k * step <= hi + 1e-9:
        value = k * step
        values.append(int(value) if integer or float(value).is_integer() else round(value, 10))
        k += 1
    return values or [int(lo) if integer else lo]


def _bounds(node: dict[str, Any], kind: str) -> tuple[float | None, float | None]:
    lo, hi = node.get("minimum"), node.get("maximum")
    integer = kind == "integer"
    if isinstance(node.get("exclusiveMinimum"), (int, float)):
        lo = math.floor(node["exclusiveMinimum"]) + 1 if integer else node["exclusiveMinimum"] + 1e-9
    if isinstance(node.get("exclusiveMaximum"), (int, float)):
        hi = math.ceil(node["exclusiveMaximum"]) - 1 if integer else node["exclusiveMaximum"] - 1e-9
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float))) or isinstance(lo, bool):
        return None, None
    if integer:
        return math.ceil(lo), math.floor(hi)
    return lo, hi
