"""Cross-field rules: ``"x-rules": ["end_date >= start_date", "len(items) >= 1"]`` on any
object level of a schema, checked on every record after validation.

A rule is a Python expression read by the stdlib ``ast`` parser and compiled, node by node
from a whitelist, into a tree of small functions of our own; no text is ever handed to
``eval`` or ``compile``. We write this rather than use simpleeval because checking a schema
needs a static pass that simpleeval does not give (which fields a rule reads, and at which
column, so that a misspelt field fails the check, not the run), and because the meaning
wanted here is JSON's, not Python's: null-safe comparisons, ISO dates compared as dates,
true/false not numbers, floats equal within a tolerance.

The language
  literals      1, 2.5, "text", true, false, null (and True, False, None)
  fields        end_date: a field of the object the rule sits on; address.city and
                items[0].qty (a constant index; a missing one is null) for nested values.
                A name that is not a property at its level fails the schema check;
                true, false and null are the constants even where a field has that name,
                and a nested field whose name is no identifier reads as address["zip code"].
  comparisons   == != < <= > >=, chains (0 <= a <= b), in / not in (a list or text),
                is / is not null
  logic         and, or, not, x if cond else y
  arithmetic    + - * / // % and unary -; + also joins two texts
  loops         one ``for`` with optional ``if``, over a list: sum(i.price * i.qty for i in items),
                all(i.qty > 0 for i in items), [i.sku for i in items if i.gift]
  functions     len, sum, min, max, abs, round, any, all, lower, upper; nothing else is
                callable, and ``a.b`` is always the field b of the object a.

Meaning
  - null-safe: a field that is missing or JSON null is null. ``x == null`` is true for
    both, ``==``/``!=`` treat null as a value equal only to null, and every other
    comparison with null is false; arithmetic and functions given null give null, so
    ``cancel_date == null or cancel_date >= signup_date`` holds when there is no
    cancel date. A rule holds only when it gives true: null or false breaks it.
  - a field whose schema says ``format: date`` or ``date-time`` is read as a date (or a
    date-time), and a text compared with one is read as ISO 8601. A date against a
    date-time compares on the date; a date-time without a zone counts as UTC.
  - numbers: int and float compare as numbers; true/false are not numbers. Two numbers
    are equal within 1e-9 relative (1e-12 absolute), so a computed total compares with
    a rounded one (<= and >= count that as equal, < and > need more); round() rounds
    half away from zero on the decimal written (round(2.675, 2) is 2.68).
  - a comparison of different kinds (text < number) or any other evaluation error
    breaks the rule with that reason; it never raises out of ``holds``.

Limits, so that no schema or record can hang the process or fill its memory: a rule has
at most 1,000 characters and 200 syntax nodes, a loop walks at most 10,000 items, one
evaluation at most 250,000 steps; no ``**``, no text repetition, numbers computed past
±2**63 and texts joined past 100,000 characters break the rule.

Where rules go: the record, an object under ``properties`` (nested as deep as it goes) and
the objects of an array's ``items``, where a rule is checked on every item. ``$ref`` is
followed to know a field's type, never to find rules: x-rules under ``$defs``, ``anyOf``
and the like would not be applied, so they fail the check.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from .errors import SchemaError

MAX_RULE_CHARS = 1000
MAX_RULE_NODES = 200
MAX_LOOP_ITEMS = 10_000
MAX_STEPS = 250_000
MAX_TEXT = 100_000
MAX_INT = 2**63
REL_TOLERANCE = 1e-9
ABS_TOLERANCE = 1e-12
NAMED_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}
DATE_FORMATS = ("date", "date-time")
EACH = None  # a step into every item of an array, in a scope's steps

Fn = Callable[["_Env"], Any]


class RuleFailure(Exception):
    """An evaluation that cannot go on: the rule is broken, for this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Env:
    """One evaluation: the object the rule reads, loop variables, and steps taken."""

    __slots__ = ("obj", "names", "steps")

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.names: dict[str, Any] = {}
        self.steps = 0

    def charge(self, steps: int) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise RuleFailure(f"it takes more than {MAX_STEPS:,} steps on this object")


@dataclass(frozen=True)
class Rule:
    """One compiled rule: ``holds(obj)`` on the object at its level (``scope``)."""

    text: str
    where: str  # its place in the schema: "$.x-rules[2]", "$.properties.items.items.x-rules[0]"
    scope: str  # JSON path of the objects it applies to: "$", "$.address", "$.items[*]"
    fields: frozenset[str]  # the names it reads at its own level
    run: Fn = field(repr=False, compare=False)
    route: tuple[str | None, ...] = field(default=(), repr=False, compare=False)  # steps from a record to its objects

    @property
    def reason(self) -> str:
        """The rejection reason a report groups by: one text per rule."""
        return f"broke rule {self.text!r}"

    def holds(self, obj: dict[str, Any]) -> bool:
        return self.why_broken(obj) is None

    def why_broken(self, obj: dict[str, Any]) -> str | None:
        """None when the rule holds on ``obj``, else why not, in a few words."""
        if not isinstance(obj, dict):
            return f"the value it checks is {_show(obj)}, not an object"
        try:
            result = self.run(_Env(obj))
        except RuleFailure as exc:
            return exc.reason
        except RecursionError:
            return "it nests too deeply to evaluate here"
        except Exception as exc:  # holds() never raises: any failure breaks the rule
            return f"it cannot be evaluated ({type(exc).__name__})"
        if result is True:
            return None
        if result is False or result is None:
            return f"it is {_show(result)}"
        return f"it gives {_show(result)}, not true or false"


@dataclass(frozen=True)
class Violation:
    """A rule broken by a record: the first object at its level that breaks it."""

    rule: Rule
    at: str  # JSON path of that object in the record: "$", "$.items[2]"
    why: str


@dataclass
class RuleSet:
    """Every rule of a schema, checked on whole records."""

    rules: list[Rule] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def top_level(self) -> list[Rule]:
        return [rule for rule in self.rules if rule.scope == "$"]

    def broken(self, record: dict[str, Any]) -> list[Rule]:
        """Every rule broken anywhere in ``record``; [] when all hold."""
        return [violation.rule for violation in self.violations(record)]

    def violations(self, record: dict[str, Any]) -> list[Violation]:
        """One per broken rule, naming where and why (for a repair prompt)."""
        out = []
        for rule in self.rules:
            for at, obj in _objects_at(record, rule.route):
                why = rule.why_broken(obj)
                if why is not None:
                    out.append(Violation(rule, _json_path(rule.route, at), why))
                    break
        return out


def _objects_at(record: Any, steps: tuple[str | None, ...]) -> list[tuple[tuple[int, ...], Any]]:
    """The objects a scope names in a record, each with its array indexes on the way; none
    where a part is missing."""
    level: list[tuple[tuple[int, ...], Any]] = [((), record)]
    for step in steps:
        if step is EACH:
            level = [((*at, i), item) for at, value in level if isinstance(value, list) for i, item in enumerate(value)]
        else:
            level = [(at, value[step]) for at, value in level if isinstance(value, dict) and step in value]
    return [(at, value) for at, value in level if isinstance(value, dict)]


def _json_path(steps: tuple[str | None, ...], indexes: tuple[int, ...]) -> str:
    """'$.orders[2].lines[0]' from a route and the indexes taken at its EACH steps."""
    taken = iter(indexes)
    return "$" + "".join(f"[{next(taken)}]" if step is EACH else f".{step}" for step in steps)


# ---------------------------------------------------------------- compiling a schema's rules

def compile_rules(schema: dict[str, Any], source: str = "schema") -> RuleSet:
    """Every x-rules list of ``schema`` compiled. Raises SchemaError naming the rule's place:
    not a list of strings, a rule that does not parse, something outside the language, a
    field that is not a property at its level, a rule too long or complex, rules where they
    would not be applied."""
    rules = []
    for where, node, level in _schema_nodes(schema):
        if "x-rules" not in node:
            continue
        steps, scope = _rules_level(schema, node, level, f"{source} {where}.x-rules")
        for i, text in enumerate(node["x-rules"]):
            place = f"{where}.x-rules[{i}]"
            if not isinstance(text, str) or not text.strip():
                raise SchemaError('a rule must be a non-empty string, such as "end_date >= start_date"',
                                  f"{source} {place}")
            rules.append(_compile_rule(text, node, schema, f"{source} {place}", place, scope, steps))
    return RuleSet(rules)


def _rules_level(schema: dict[str, Any], node: dict[str, Any], level: Level | None, place: str) -> Level:
    """The level of ``node``'s x-rules, refused unless they are a list on an object whose
    rules are applied."""
    if level is None:
        raise SchemaError(
            "x-rules here would not be applied: rules go on the record, on an object under "
            "properties, or on the objects of an array's items ($ref, $defs, anyOf and the like "
            "are not followed)", place)
    if not isinstance(node["x-rules"], list):
        raise SchemaError('x-rules must be a list of rules, such as ["end_date >= start_date"]', place)
    kind = _kind_of(_resolve(schema, node))
    if kind not in (None, "object"):
        hint = ": rules on an array's objects go under its items" if kind == "array" else ""
        article = "an" if kind[0] in "aeiou" else "a"
        raise SchemaError(f"x-rules belong on an object, not on {article} {kind}{hint}", place)
    return level


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else",
               "unevaluatedItems", "unevaluatedProperties", "additionalItems")
_SCHEMA_LISTS = ("items", "prefixItems", "anyOf", "oneOf", "allOf")
Level = tuple[tuple[str | None, ...], str]


def _schema_nodes(schema: Any) -> Iterator[tuple[str, dict[str, Any], Level | None]]:
    """Every subschema in document order, with its schema path and, where rules on it are
    applied, its level: the steps into a record and the scope's JSON path."""
    stack: list[tuple[str, Any, Level | None]] = [("$", schema, ((), "$"))]
    while stack:
        where, node, level = stack.pop()
        if not isinstance(node, dict):
            continue
        yield where, node, level
        children: list[tuple[str, Any, Level | None]] = []
        for key in _SCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                for name, child in node[key].items():
                    inner = (level[0] + (name,), f"{level[1]}.{name}") if level and key == "properties" else None
                    children.append((f"{where}.{key}.{name}", child, inner))
        for key in _SCHEMA_ONE:
            if isinstance(node.get(key), dict):
                inner = (level[0] + (EACH,), f"{level[1]}[*]") if level and key == "items" else None
                children.append((f"{where}.{key}", node[key], inner))
        for key in _SCHEMA_LISTS:
            if isinstance(node.get(key), list):
                children.extend((f"{where}.{key}[{i}]", child, None) for i, child in enumerate(node[key]))
        stack.extend(reversed(children))


def _compile_rule(text: str, level: dict[str, Any], root: dict[str, Any], place: str, where: str,
                  scope: str, steps: tuple[str | None, ...]) -> Rule:
    def refuse(message: str, position: str = "") -> SchemaError:
        return SchemaError(message, f"{place} {position}" if position else place)

    if len(text) > MAX_RULE_CHARS:
        raise refuse(f"the rule has {len(text):,} characters; a rule may have at most {MAX_RULE_CHARS:,}")
    if "\x00" in text:
        raise refuse("a rule cannot hold a NUL character")
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" and the like: never printed on a terminal
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise refuse(exc.msg, _position(text, exc.lineno or 1, exc.offset)) from None
    except (RecursionError, MemoryError):
        raise refuse("the rule nests too deeply to read") from None
    except ValueError as exc:
        raise refuse(f"the rule cannot be read: {exc}") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_RULE_NODES:
        raise refuse(f"the rule is too complex ({nodes} parts, at most {MAX_RULE_NODES}): split it into several rules")
    compiler = _Compiler(text, level, root)
    try:
        run = compiler.condition(tree.body)
    except _Refused as exc:
        raise refuse(exc.message, compiler.position(exc.node)) from None
    except RecursionError:
        raise refuse("the rule nests too deeply to read") from None
    return Rule(text, where, scope, frozenset(compiler.fields), run, steps)


def _position(text: str, lineno: int, col: int | None) -> str:
    """'col 12' (1-based characters), with the line when the rule has several."""
    line = text.split("\n")[lineno - 1] if 0 < lineno <= text.count("\n") + 1 else text
    column = col if col and col > 0 else len(line) + 1
    return f"col {column}" if lineno == 1 else f"line {lineno} col {column}"


# ---------------------------------------------------------------- what the schema says about a value

def _resolve(root: dict[str, Any], node: Any) -> dict[str, Any] | None:
    """The schema ``node`` stands for: a local $ref followed, a nullable anyOf/oneOf of one
    real branch unwrapped. None when unknown (the rule's reads are then not checked)."""
    for _ in range(16):
        if not isinstance(node, dict):
            return None
        ref = node.get("$ref")
        if isinstance(ref, str):
            node = _pointer(root, ref)
            continue
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list):
                real = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
                if len(real) == 1:
                    node = real[0]
                    break
        else:
            return node
    return None


def _pointer(root: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _kind_of(schema: dict[str, Any] | None) -> str | None:
    kind = schema.get("type") if schema else None
    return kind if isinstance(kind, str) else None


def _reads_dates(schema: dict[str, Any] | None) -> bool:
    return schema is not None and schema.get("format") in DATE_FORMATS


# ---------------------------------------------------------------- the compiler

class _Refused(Exception):
    def __init__(self, node: ast.AST, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


Value = tuple[Fn, dict[str, Any] | None]  # how to compute it, and its schema where known

_REFUSED_NAMES = {
    ast.Lambda: "lambda is", ast.NamedExpr: "assignment with ':=' is", ast.Dict: "{...} objects are",
    ast.DictComp: "dict comprehensions are", ast.SetComp: "set comprehensions are", ast.JoinedStr: "f-strings are",
    ast.Starred: "* unpacking is", ast.Slice: "slices are", ast.Await: "await is", ast.Yield: "yield is",
    ast.YieldFrom: "yield is", ast.FormattedValue: "f-strings are",
}
_VALUE_FUNCTIONS = frozenset({"len", "sum", "min", "max", "abs", "round", "lower", "upper"})


class _Compiler:
    """Turns one rule's syntax tree into functions of an _Env, refusing what the language
    does not have, and noting the fields it reads."""

    def __init__(self, text: str, level: dict[str, Any], root: dict[str, Any]) -> None:
        self.text = text
        self.root = root
        resolved = _resolve(root, level) or {}
        props = level.get("properties", resolved.get("properties"))
        self.props: dict[str, Any] = props if isinstance(props, dict) else {}
        self.fields: set[str] = set()
        self.loop_vars: dict[str, dict[str, Any] | None] = {}

    def position(self, node: ast.AST) -> str:
        lineno, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        line = self.text.split("\n")[lineno - 1].encode()
        return _position(self.text, lineno, len(line[:col].decode(errors="ignore")) + 1)

    def condition(self, node: ast.expr) -> Fn:
        """The rule's top: it must be able to give true or false."""
        run, _ = self.value(node)
        constant = isinstance(node, ast.Constant) and not isinstance(node.value, bool)
        collection = isinstance(node, (ast.BinOp, ast.List, ast.Tuple, ast.Set, ast.ListComp, ast.GeneratorExp))
        negation = isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not)
        computed = isinstance(node, ast.Call) and getattr(node.func, "id", "") in _VALUE_FUNCTIONS
        if constant or collection or negation or computed:
            raise _Refused(node, "a rule must be a condition that is true or false, such as 'len(items) >= 1'")
        return run

    def value(self, node: ast.AST) -> Value:
        handler = self._HANDLERS.get(type(node))
        if handler is None:
            what = _REFUSED_NAMES.get(type(node), f"'{self.segment(node)}' is")
            raise _Refused(node, f"{what} not allowed in a rule")
        return handler(self, node)

    def run(self, node: ast.AST) -> Fn:
        return self.value(node)[0]

    def segment(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.text, node) or type(node).__name__
        return text if len(text) <= 40 else text[:39] + "…"

    def _constant(self, node: ast.Constant) -> Value:
        value = node.value
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise _Refused(node, f"{type(value).__name__} values are not allowed in a rule")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not _in_range(value):
            raise _Refused(node, f"numbers in a rule stay within ±2**63, not {self.segment(node)}")
        return (lambda env: value), None

    def _name(self, node: ast.Name) -> Value:
        name = _no_dunder(node, node.id)
        if name in self.loop_vars:
            return (lambda env: env.names[name]), self.loop_vars[name]
        if name in NAMED_CONSTANTS:
            constant = NAMED_CONSTANTS[name]
            return (lambda env: constant), None
        if name not in self.props:
            raise _Refused(node, _unknown_field(name, "", self.props))
        self.fields.add(name)
        schema = _resolve(self.root, self.props[name])
        if _reads_dates(schema):
            return (lambda env: _as_moment(env.obj.get(name))), schema
        return (lambda env: env.obj.get(name)), schema

    def _attribute(self, node: ast.Attribute) -> Value:
        attr = _no_dunder(node, node.attr)
        base, schema = self.value(node.value)
        owner = self.segment(node.value)
        member = self._member(node, schema, attr, owner)
        dates = _reads_dates(member)

        def get(env: _Env) -> Any:
            obj = base(env)
            if obj is None:
                return None
            if not isinstance(obj, dict):
                raise RuleFailure(f"{owner} is {_show(obj)}, not an object with a field '{attr}'")
            return _as_moment(obj.get(attr)) if dates else obj.get(attr)
        return get, member

    def _member(self, node: ast.AST, schema: dict[str, Any] | None, key: str, owner: str) -> dict[str, Any] | None:
        """The schema of field ``key`` of a value of ``schema``; refused where the schema
        says there is no such field."""
        props = schema.get("properties") if schema else None
        if isinstance(props, dict):
            if key not in props:
                raise _Refused(node, _unknown_field(key, owner, props))
            return _resolve(self.root, props[key])
        kind = _kind_of(schema)
        if kind not in (None, "object"):
            raise _Refused(node, f"{owner} is of type {kind}: it has no field '{key}'")
        return None

    def _element(self, node: ast.AST, schema: dict[str, Any] | None, owner: str) -> dict[str, Any] | None:
        kind = _kind_of(schema)
        if kind not in (None, "array"):
            raise _Refused(node, f"{owner} is of type {kind}, not a list")
        return _resolve(self.root, schema.get("items")) if schema else None

    def _subscript(self, node: ast.Subscript) -> Value:
        index = _constant_index(node.slice)
        if index is None:
            raise _Refused(node.slice, "an index must be a constant, as in items[0] or items[-1]")
        if isinstance(index, str):
            return self._attribute(ast.copy_location(ast.Attribute(node.value, index, ast.Load()), node))
        base, schema = self.value(node.value)
        owner = self.segment(node.value)
        item = self._element(node, schema, owner)
        dates = _reads_dates(item)

        def get(env: _Env) -> Any:
            seq = base(env)
            if seq is None:
                return None
            if not isinstance(seq, list):
                raise RuleFailure(f"{owner} is {_show(seq)}, not a list")
            value = seq[index] if -len(seq) <= index < len(seq) else None
            return _as_moment(value) if dates else value
        return get, item

    def _collection(self, node: ast.List | ast.Tuple | ast.Set) -> Value:
        parts = [self.run(element) for element in node.elts]
        return (lambda env: [part(env) for part in parts]), None

    def _bool_op(self, node: ast.BoolOp) -> Value:
        parts = [self.run(value) for value in node.values]
        if isinstance(node.op, ast.And):
            return (lambda env: all(bool(part(env)) for part in parts)), None
        return (lambda env: any(bool(part(env)) for part in parts)), None

    def _unary_op(self, node: ast.UnaryOp) -> Value:
        operand = self.run(node.operand)
        if isinstance(node.op, ast.Not):
            return (lambda env: not operand(env)), None
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            sign = -1 if isinstance(node.op, ast.USub) else 1
            return (lambda env: _signed(sign, operand(env))), None
        raise _Refused(node, "the operator '~' is not allowed in a rule")

    def _bin_op(self, node: ast.BinOp) -> Value:
        symbol, function = _ARITHMETIC.get(type(node.op), ("", None))
        if function is None:
            if isinstance(node.op, ast.Pow):
                raise _Refused(node, "the power operator '**' is not allowed in a rule")
            raise _Refused(node, f"'{self.segment(node)}': only + - * / // % are allowed in a rule")
        if symbol == "*" and any(isinstance(side, ast.Constant) and isinstance(side.value, str)
                                 for side in (node.left, node.right)):
            raise _Refused(node, "text cannot be repeated with * in a rule")
        left, right = self.run(node.left), self.run(node.right)
        return (lambda env: _arithmetic(symbol, function, left(env), right(env), env)), None

    def _compare(self, node: ast.Compare) -> Value:
        first = self.run(node.left)
        tests: list[tuple[Callable[[Any, Any, _Env], bool], Fn]] = []
        operands = [node.left, *node.comparators]
        for i, (op, right) in enumerate(zip(node.ops, node.comparators)):
            if isinstance(op, (ast.Is, ast.IsNot)) and not any(_is_null(side) for side in operands[i:i + 2]):
                raise _Refused(node, "'is' and 'is not' compare only with null; use == or != here")
            tests.append((_COMPARISONS[type(op)], self.run(right)))

        def compare(env: _Env) -> bool:
            left = first(env)
            for test, operand in tests:
                right = operand(env)
                if not test(left, right, env):
                    return False
                left = right
            return True
        return compare, None

    def _if_exp(self, node: ast.IfExp) -> Value:
        test, body, orelse = self.run(node.test), self.run(node.body), self.run(node.orelse)
        return (lambda env: body(env) if test(env) else orelse(env)), None

    def _call(self, node: ast.Call) -> Value:
        name = getattr(node.func, "id", None) if isinstance(node.func, ast.Name) else None
        allowed = ", ".join(sorted(_FUNCTIONS))
        if isinstance(node.func, ast.Attribute):
            raise _Refused(node, f"method calls are not allowed (write lower(x), not x.lower()); a rule may call "
                                 f"{allowed}")
        if name is None or name not in _FUNCTIONS or name in self.loop_vars:
            raise _Refused(node, f"calls to {self.segment(node.func)} are not allowed; a rule may call {allowed}")
        function, least, most = _FUNCTIONS[name]
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise _Refused(node, f"{name}() takes plain arguments only")
        if not least <= len(node.args) <= most:
            wanted = str(least) if least == most else f"{least} to {most}" if most < 99 else f"at least {least}"
            raise _Refused(node, f"{name}() takes {wanted} argument{'' if wanted == '1' else 's'}")
        args = [self.run(arg) for arg in node.args]
        return (lambda env: function(env, [arg(env) for arg in args])), None

    def _loop(self, node: ast.ListComp | ast.GeneratorExp) -> Value:
        if len(node.generators) != 1 or node.generators[0].is_async:
            raise _Refused(node, "a loop in a rule has one 'for'")
        loop = node.generators[0]
        if not isinstance(loop.target, ast.Name):
            raise _Refused(loop.target, "a loop names one variable, as in 'for i in items'")
        var = _no_dunder(loop.target, loop.target.id)
        if var in NAMED_CONSTANTS:
            raise _Refused(loop.target, f"'{var}' cannot be a loop variable")
        source, schema = self.value(loop.iter)
        owner = self.segment(loop.iter)
        item = self._element(loop.iter, schema, owner)
        outer = self.loop_vars.get(var, _UNSET)
        self.loop_vars[var] = item
        try:
            conditions = [self.run(condition) for condition in loop.ifs]
            element = self.run(node.elt)
        finally:
            if outer is _UNSET:
                del self.loop_vars[var]
            else:
                self.loop_vars[var] = outer  # type: ignore[assignment]
        cost = sum(1 for part in (node.elt, *loop.ifs) for _ in ast.walk(part))
        return _looper(var, owner, source, conditions, element, cost, _reads_dates(item)), None

    _HANDLERS: dict[type, Callable[..., Value]] = {
        ast.Constant: _constant, ast.Name: _name, ast.Attribute: _attribute, ast.Subscript: _subscript,
        ast.List: _collection, ast.Tuple: _collection, ast.Set: _collection, ast.BoolOp: _bool_op,
        ast.UnaryOp: _unary_op, ast.BinOp: _bin_op, ast.Compare: _compare, ast.IfExp: _if_exp,
        ast.Call: _call, ast.ListComp: _loop, ast.GeneratorExp: _loop,
    }


_UNSET = object()


def _looper(var: str, owner: str, source: Fn, conditions: list[Fn], element: Fn, cost: int, dates: bool) -> Fn:
    def loop(env: _Env) -> list[Any] | None:
        seq = source(env)
        if seq is None:
            return None
        _walkable(seq, owner)
        names, out = env.names, []
        outer = names.get(var, _UNSET)
        try:
            for item in seq:
                env.charge(cost)
                names[var] = _as_moment(item) if dates else item
                if all(condition(env) for condition in conditions):
                    out.append(element(env))
        finally:
            if outer is _UNSET:
                names.pop(var, None)
            else:
                names[var] = outer
        return out
    return loop


def _no_dunder(node: ast.AST, name: str) -> str:
    if "__" in name:
        raise _Refused(node, f"names with '__' are not allowed in a rule ('{name}')")
    return name


def _unknown_field(name: str, owner: str, props: dict[str, Any]) -> str:
    known = sorted(props)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listed = ", ".join(known[:20]) + (", …" if len(known) > 20 else "") if known else "none"
    path = f"{owner}.{name}" if owner else name
    here = f"fields of {owner}" if owner else "fields here"
    return f"rule names unknown field '{path}'{hint}; {here}: {listed}"


def _constant_index(node: ast.AST) -> int | str | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        value = node.operand.value
        return -value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)) and not isinstance(node.value, bool):
        return node.value
    return None


def _is_null(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and node.value is None) or (isinstance(node, ast.Name) and node.id == "null")


# ---------------------------------------------------------------- values: what the operators mean

def _show(value: Any) -> str:
    """A value as a reason names it: short, JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"[:60]
    if isinstance(value, str):
        return f"the text {value[:40]!r}" + ("…" if len(value) > 40 else "")
    if isinstance(value, datetime):
        return f"the date-time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _in_range(number: int | float) -> bool:
    return -MAX_INT <= number <= MAX_INT if isinstance(number, int) else math.isfinite(number)


def _bounded(number: int | float) -> int | float:
    if not _in_range(number):
        raise RuleFailure("a number it computes is past ±2**63 (or not finite)")
    return number


def _close(a: int | float, b: int | float) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    try:
        return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
    except OverflowError:  # an int too large for a float is not close to any float
        return False


def _parse_moment(text: str) -> date | None:
    if len(text) > 40:
        return None
    try:
        return date.fromisoformat(text) if len(text) <= 10 else datetime.fromisoformat(text)
    except ValueError:
        return None


def _as_moment(value: Any) -> Any:
    """A date field's value as a date or date-time; a text that is neither stays text."""
    if isinstance(value, str):
        moment = _parse_moment(value)
        return value if moment is None else moment
    return value


def _moment_pair(a: Any, b: Any) -> tuple[date, date]:
    """Two values of which one is a date or date-time, made comparable: a text is read as
    ISO 8601, a date against a date-time compares on the date, a date-time without a zone
    is UTC."""
    pair = []
    for value in (a, b):
        moment = _parse_moment(value) if isinstance(value, str) else value
        if not isinstance(moment, date):
            raise RuleFailure(f"cannot compare {_show(a)} with {_show(b)}")
        pair.append(moment)
    first, second = pair
    if type(first) is date or type(second) is date:
        return _day(first), _day(second)
    return _utc(first), _utc(second)  # type: ignore[arg-type]


def _day(moment: date) -> date:
    return moment.date() if isinstance(moment, datetime) else moment


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _equal(a: Any, b: Any, env: _Env) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if _is_number(a) and _is_number(b):  # true and false are not numbers: they fall to the last line
        return _close(a, b)
    if isinstance(a, date) or isinstance(b, date):
        try:
            first, second = _moment_pair(a, b)
        except RuleFailure:
            return False
        return first == second
    if isinstance(a, list) and isinstance(b, list):
        env.charge(len(a))
        return len(a) == len(b) and all(_equal(x, y, env) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _order(a: Any, b: Any) -> int:
    """-1, 0 or 1; numbers within the tolerance are equal. Raises RuleFailure for kinds
    that have no order between them."""
    if _is_number(a) and _is_number(b):
        if a != a or b != b:  # NaN
            raise RuleFailure(f"cannot order {_show(a)} and {_show(b)}")
        return 0 if _close(a, b) else (-1 if a < b else 1)
    if isinstance(a, date) or isinstance(b, date):
        a, b = _moment_pair(a, b)
    elif not (isinstance(a, str) and isinstance(b, str)):
        raise RuleFailure(f"cannot compare {_show(a)} with {_show(b)}")
    return (a > b) - (a < b)


def _ordered(test: Callable[[int], bool]) -> Callable[[Any, Any, _Env], bool]:
    return lambda a, b, env: a is not None and b is not None and test(_order(a, b))


def _contains(item: Any, container: Any, env: _Env) -> bool:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise RuleFailure(f"cannot look for {_show(item)} in {_show(container)}")
        env.charge(len(container) // 100)
        return item in container
    if isinstance(container, list):
        env.charge(len(container))
        return any(_equal(item, element, env) for element in container)
    raise RuleFailure(f"'in' looks in a list or a text, not in {_show(container)}")


_COMPARISONS: dict[type, Callable[[Any, Any, _Env], bool]] = {
    ast.Eq: _equal, ast.Is: _equal,
    ast.NotEq: lambda a, b, env: not _equal(a, b, env), ast.IsNot: lambda a, b, env: not _equal(a, b, env),
    ast.Lt: _ordered(lambda o: o < 0), ast.LtE: _ordered(lambda o: o <= 0),
    ast.Gt: _ordered(lambda o: o > 0), ast.GtE: _ordered(lambda o: o >= 0),
    ast.In: lambda a, b, env: b is not None and _contains(a, b, env),
    ast.NotIn: lambda a, b, env: b is not None and not _contains(a, b, env),
}

_ARITHMETIC: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub), ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv), ast.FloorDiv: ("//", operator.floordiv), ast.Mod: ("%", operator.mod),
}


def _signed(sign: int, value: Any) -> Any:
    if value is None:
        return None
    if not _is_number(value):
        raise RuleFailure(f"cannot negate {_show(value)}" if sign < 0 else f"{_show(value)} is not a number")
    return _bounded(-value if sign < 0 else value)


def _arithmetic(symbol: str, function: Callable[[Any, Any], Any], a: Any, b: Any, env: _Env) -> Any:
    if a is None or b is None:
        return None
    if _is_number(a) and _is_number(b):
        try:
            return _bounded(function(a, b))
        except ZeroDivisionError:
            raise RuleFailure(f"it divides {_show(a)} by zero") from None
        except OverflowError:
            raise RuleFailure("a number it computes is past ±2**63 (or not finite)") from None
    if symbol == "+" and isinstance(a, str) and isinstance(b, str):
        if len(a) + len(b) > MAX_TEXT:
            raise RuleFailure(f"a text it joins is past {MAX_TEXT:,} characters")
        env.charge((len(a) + len(b)) // 100)
        return a + b
    raise RuleFailure(f"cannot compute {_show(a)} {symbol} {_show(b)}")


# ---------------------------------------------------------------- the functions a rule may call

def _walkable(seq: Any, owner: str = "the argument") -> list[Any]:
    if not isinstance(seq, list):
        raise RuleFailure(f"{owner} is {_show(seq)}, not a list")
    if len(seq) > MAX_LOOP_ITEMS:
        raise RuleFailure(f"{owner} has {len(seq):,} items; a rule walks at most {MAX_LOOP_ITEMS:,}")
    return seq


def _listed(env: _Env, args: list[Any]) -> list[Any] | None:
    """The items an aggregate works on: its one list argument, or its arguments."""
    seq = args[0] if len(args) == 1 else args
    if seq is None:
        return None
    env.charge(len(_walkable(seq)))
    return None if any(item is None for item in seq) else seq


def _length(env: _Env, args: list[Any]) -> int | None:
    value = args[0]
    if value is None or isinstance(value, (str, list, dict)):
        return None if value is None else len(value)
    raise RuleFailure(f"len() takes a list, a text or an object, not {_show(value)}")


def _sum(env: _Env, args: list[Any]) -> int | float | None:
    seq = _listed(env, args)
    if seq is None:
        return None
    for item in seq:
        if not _is_number(item):
            raise RuleFailure(f"sum() adds numbers, not {_show(item)}")
    total = sum(seq) if all(isinstance(item, int) for item in seq) else math.fsum(seq)
    return _bounded(total)


def _extreme(sign: int) -> Callable[[_Env, list[Any]], Any]:
    def extreme(env: _Env, args: list[Any]) -> Any:
        seq = _listed(env, args)
        if seq is None:
            return None
        if not seq:
            raise RuleFailure(f"{'max' if sign > 0 else 'min'}() of an empty list")
        best = seq[0]
        for item in seq[1:]:
            if _order(item, best) * sign > 0:
                best = item
        return best
    return extreme


def _number_argument(name: str, value: Any) -> None:
    if not _is_number(value):
        raise RuleFailure(f"{name}() takes a number, not {_show(value)}")


def _abs(env: _Env, args: list[Any]) -> int | float | None:
    if args[0] is None:
        return None
    _number_argument("abs", args[0])
    return abs(args[0])


def _round(env: _Env, args: list[Any]) -> int | float | None:
    """Half away from zero on the shortest decimal that writes the float."""
    value, digits = args[0], (args[1] if len(args) > 1 else 0)
    if value is None or digits is None:
        return None
    _number_argument("round", value)
    if not isinstance(digits, int) or isinstance(digits, bool) or not -15 <= digits <= 15:
        raise RuleFailure(f"round() takes a number of digits from -15 to 15, not {_show(digits)}")
    if not _in_range(value):
        raise RuleFailure(f"round() of {_show(value)}")
    exact = Decimal(value if isinstance(value, int) else repr(value))
    rounded = exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP, context=_ROUNDING)
    if len(args) == 1 or isinstance(value, int):
        return int(rounded)
    return float(rounded)


_ROUNDING = Context(prec=400, Emax=999, Emin=-999)  # room for any float within ±2**63 to 15 digits


def _truth_of_all(wanted: bool) -> Callable[[_Env, list[Any]], bool | None]:
    def test(env: _Env, args: list[Any]) -> bool | None:
        seq = args[0]
        if seq is None:
            return None
        env.charge(len(_walkable(seq)))
        return all(bool(item) for item in seq) if wanted else any(bool(item) for item in seq)
    return test


def _case(change: Callable[[str], str], name: str) -> Callable[[_Env, list[Any]], str | None]:
    def apply(env: _Env, args: list[Any]) -> str | None:
        text = args[0]
        if text is None:
            return None
        if not isinstance(text, str):
            raise RuleFailure(f"{name}() takes a text, not {_show(text)}")
        env.charge(len(text) // 100)
        return change(text)
    return apply


_FUNCTIONS: dict[str, tuple[Callable[[_Env, list[Any]], Any], int, int]] = {
    "len": (_length, 1, 1), "sum": (_sum, 1, 1), "min": (_extreme(-1), 1, 99), "max": (_extreme(1), 1, 99),
    "abs": (_abs, 1, 1), "round": (_round, 1, 2), "any": (_truth_of_all(False), 1, 1),
    "all": (_truth_of_all(True), 1, 1), "lower": (_case(str.lower, "lower"), 1, 1),
    "upper": (_case(str.upper, "upper"), 1, 1),
}
