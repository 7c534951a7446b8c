"""Template fields: a value built from other fields of the same record, so that an email
matches its name ("{first_name}.{last_name}@{company_domain}" -> lena.vogel@acme.de).

Each substituted value is made safe for an address: ascii-folded (Müller -> muller),
lower-cased, every run of characters outside [a-z0-9._-] turned into one "-", and "-",
"." and "_" trimmed from both ends. A number or boolean is substituted as its JSON text,
a missing or null field as nothing. Literal text is kept as written; "{{" and "}}" are
literal braces. A value with no Latin letters or digits at all (a name in Han script)
folds to nothing."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import SpecProblem, shown

MAX_TEMPLATE_CHARS = 2000
# letters that Unicode decomposition does not reduce to ASCII
_FOLDS = str.maketrans({"ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE",
                        "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH",
                        "ı": "i", "ħ": "h", "Ħ": "H"})
_OUTSIDE = re.compile(r"[^a-z0-9._-]+")


def slugify(value: Any) -> str:
    """A field's value as template text (see the module docstring)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    if not value.isascii():
        value = unicodedata.normalize("NFKD", value.translate(_FOLDS)).encode("ascii", "ignore").decode("ascii")
    return _OUTSIDE.sub("-", value.lower()).strip("-._")


@dataclass(frozen=True)
class Template:
    """A field whose value is rendered from other top-level fields of the record."""

    text: str
    fields: tuple[str, ...]
    parts: tuple[tuple[bool, str], ...]  # (is_field, literal text or field name), in order

    @classmethod
    def parse(cls, text: Any) -> Template:
        if not isinstance(text, str):
            raise SpecProblem(f'template takes text like "{{first_name}}.{{last_name}}@example.com", not '
                              f"{shown(text)}")
        if len(text) > MAX_TEMPLATE_CHARS:
            raise SpecProblem(f"template is {len(text)} characters long; the most is {MAX_TEMPLATE_CHARS}")
        parts: list[tuple[bool, str]] = []
        literal: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char in "{}" and text[i + 1: i + 2] == char:
                literal.append(char)
                i += 2
            elif char == "}":
                raise SpecProblem(f'template has a "}}" with no "{{" at character {i + 1}: write "}}}}" for a brace')
            elif char == "{":
                end = text.find("}", i + 1)
                name = text[i + 1: end] if end != -1 else ""
                if end == -1 or "{" in name:
                    raise SpecProblem(f'template has a "{{" with no "}}" at character {i + 1}: write "{{{{" for a '
                                      "brace")
                if not name:
                    raise SpecProblem(f'template has an empty "{{}}" at character {i + 1}: name a field inside')
                if literal:
                    parts.append((False, "".join(literal)))
                    literal = []
                parts.append((True, name))
                i = end + 1
            else:
                literal.append(char)
                i += 1
        if literal:
            parts.append((False, "".join(literal)))
        fields = tuple(dict.fromkeys(name for is_field, name in parts if is_field))
        return cls(text, fields, tuple(parts))

    def render(self, record: Mapping[str, Any]) -> str:
        return "".join(slugify(record.get(text)) if is_field else text for is_field, text in self.parts)


def template_order(templates: Mapping[str, Template]) -> list[str]:
    """The template fields in an order where each comes after the templates it reads,
    otherwise in schema order. Raises TemplateCycle for templates that read each other in
    a circle. Iterative: a chain of thousands of templates does not exhaust the stack."""
    order: list[str] = []
    done: set[str] = set()
    for root in templates:
        if root in done:
            continue
        path = [root]  # the templates being visited, each reading the next
        pending = [iter(templates[root].fields)]
        while path:
            used = next((u for u in pending[-1] if u in templates and u not in done), None)
            if used is None:
                done.add(path[-1])
                order.append(path.pop())
                pending.pop()
            elif used in path:
                cycle = path[path.index(used):] + [used]
                raise TemplateCycle(cycle[0], " -> ".join(cycle))
            else:
                path.append(used)
                pending.append(iter(templates[used].fields))
    return order


class TemplateCycle(Exception):
    """Templates that read each other in a circle: ``field`` starts ``cycle`` ("a -> b -> a")."""

    def __init__(self, field: str, cycle: str) -> None:
        super().__init__(cycle)
        self.field = field
        self.cycle = cycle
