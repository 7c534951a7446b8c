"""Generators of ids, categories, flags and dates: uuid, weights, bool, date and datetime."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .base import FieldGenerator, FieldShape, SpecProblem, hashable, is_number, needs_type, only_keys, shown

EPOCH = datetime(1970, 1, 1)
DATE_FORMATS = (None, "date", "date-time")


class Uuid(FieldGenerator):
    """A random (version 4) UUID, its 122 random bits from the rng."""

    kind = "uuid"

    def __init__(self, shape: FieldShape) -> None:
        needs_type(shape, "string", "uuid", "strings")

    def draw(self, rng: random.Random) -> str:
        bits = rng.getrandbits(128)
        bits = (bits & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
        text = f"{bits:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class Bool(FieldGenerator):
    """true with probability p."""

    kind = "bool"

    def __init__(self, spec: Any, shape: FieldShape) -> None:
        if not is_number(spec) or not 0 <= spec <= 1:
            raise SpecProblem(f'bool takes the probability of true, a number from 0 to 1, not {shown(spec)}')
        needs_type(shape, "boolean", "bool", "true or false")
        self.p = float(spec)

    def draw(self, rng: random.Random) -> bool:
        return rng.random() < self.p

    def declared(self) -> dict[str, Any]:
        return {"kind": "bool", "p": self.p}

    def describe(self) -> str:
        return f"bool({self.p})"


class Weights(FieldGenerator):
    """One of the listed values, each with probability proportional to its weight.

    The keys are the values for a string field; for any other field they are JSON text
    ("1", "true", "null")."""

    kind = "weights"

    def __init__(self, spec: Any, shape: FieldShape) -> None:
        if not isinstance(spec, dict) or not spec:
            raise SpecProblem('weights takes an object of values and their weights, like {"free": 0.6, "pro": 0.4}')
        self.keys: list[str] = []
        self.values: list[Any] = []
        weights: list[float] = []
        enum = shape.schema.get("enum")
        members = {hashable(m) for m in enum} if isinstance(enum, list) else None
        seen: set[Any] = set()
        for key, weight in spec.items():
            if not is_number(weight) or weight <= 0:
                raise SpecProblem(f"weights: the weight of {key!r} must be a number above 0, not {shown(weight)}")
            value = _weight_value(key, shape, members)
            if hashable(value) in seen:
                raise SpecProblem(f"weights name the value {shown(value)} twice")
            seen.add(hashable(value))
            self.keys.append(key)
            self.values.append(value)
            weights.append(float(weight))
        self.total = math.fsum(weights)
        self.shares = [w / self.total for w in weights]
        self.cumulative = list(itertools.accumulate(weights))

    def draw(self, rng: random.Random) -> Any:
        index = bisect.bisect_right(self.cumulative, rng.random() * self.total)
        return self.values[min(index, len(self.values) - 1)]

    def declared(self) -> dict[str, Any]:
        """Shares summing to 1, keyed as in the spec (a non-string value by its JSON text)."""
        return {"kind": "weights", "weights": dict(zip(self.keys, self.shares))}

    def describe(self) -> str:
        return "weights"


def _weight_value(key: str, shape: FieldShape, members: set[Any] | None) -> Any:
    """The value a weights key names; ``members`` are the enum's values (hashable()), if any."""
    if shape.allows("string") and (members is None or hashable(key) in members):
        value: Any = key
    else:
        try:
            value = json.loads(key)
        except (ValueError, RecursionError):
            if not shape.allows("string"):
                raise SpecProblem(f"weights: {key!r} is not JSON text; the keys of a {shape.type_text} field "
                                  'are its values written as JSON, like "1" or "true"') from None
            value = key  # the enum check below says what is wrong
    if members is not None and hashable(value) not in members:
        enum = shape.schema["enum"]
        listed = ", ".join(shown(m, 40) for m in enum[:20]) + (", ..." if len(enum) > 20 else "")
        raise SpecProblem(f"weights name {shown(value)}, which is not in the field's enum ({listed})")
    return value


class DateRange(FieldGenerator):
    """A day (``date``) or a second (``datetime``) in [from, to], every one equally likely,
    written as the field's format says: "date" as YYYY-MM-DD, "date-time" as RFC 3339 in UTC
    (2024-05-01T13:45:00Z); a field without a format gets the generator's own kind.

    ``to`` is inclusive: for datetime, a bare date as ``to`` means the end of that day.
    Times with an offset are turned into UTC; times without one are taken as UTC."""

    def __init__(self, kind: str, spec: Any, shape: FieldShape) -> None:
        self.kind = kind
        only_keys(spec, kind, ("from", "to"), ("from", "to"))
        needs_type(shape, "string", kind, "strings")
        if shape.format not in DATE_FORMATS:
            raise SpecProblem(f'{kind} writes dates or date-times; this field has format "{shape.format}"')
        self.text = (spec["from"], spec["to"])
        self.as_date = (shape.format or ("date" if kind == "date" else "date-time")) == "date"
        if kind == "date":
            first, last = _day(spec, "from"), _day(spec, "to")
            self.start = (first - EPOCH.date()).days * 86400
            self.end = (last - EPOCH.date()).days * 86400
            self.unit = 86400
        else:
            self.start, self.end, self.unit = _second(spec, "from", False), _second(spec, "to", True), 1
        if self.start > self.end:
            raise SpecProblem(f'{kind} "from" {spec["from"]} is after its "to" {spec["to"]}')

    def draw(self, rng: random.Random) -> str:
        steps = (self.end - self.start) // self.unit
        moment = EPOCH + timedelta(seconds=self.start + rng.randint(0, steps) * self.unit)
        if self.as_date:
            return moment.date().isoformat()
        return moment.isoformat() + "Z"

    def declared(self) -> dict[str, Any]:
        return {"kind": self.kind, "from": self.text[0], "to": self.text[1]}

    def describe(self) -> str:
        return f"{self.kind}({self.text[0]}..{self.text[1]})"


def _day(spec: dict[str, Any], key: str) -> date:
    value = spec[key]
    try:
        if not isinstance(value, str):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise SpecProblem(f'date "{key}" must be a date like "2020-01-31", not {shown(value)}') from None


def _second(spec: dict[str, Any], key: str, end_of_day: bool) -> int:
    """Seconds since 1970 in UTC; a bare date is its first second (or its last, for "to")."""
    value = spec[key]
    try:
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SpecProblem(f'datetime "{key}" must be a date-time like "2020-01-31T08:00:00Z" or a date, not '
                          f"{shown(value)}") from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise SpecProblem(f'datetime "{key}" {value} is outside the years 1 to 9999 in UTC') from None
    seconds = int((moment - EPOCH).total_seconds())
    if end_of_day and len(value) == 10:
        seconds += 86399
    return seconds
