"""Cross-field rules: the language, its meaning on real records, the schema check's errors
with their places, and hostile rules and records that must neither hang nor escape."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from synth_tui.core.errors import SchemaError
from synth_tui.core.rules import MAX_STEPS, Rule, RuleSet, compile_rules
from synth_tui.core.schema import check_schema

DATE = {"type": "string", "format": "date"}
DATE_TIME = {"type": "string", "format": "date-time"}
NUMBER = {"type": "number"}
LINE = {"type": "object", "properties": {"sku": {"type": "string"}, "price": NUMBER, "qty": {"type": "integer"}}}
ORDER = {
    "type": "object",
    "properties": {
        "start_date": DATE, "end_date": DATE, "signup_date": DATE,
        "cancel_date": {**DATE_TIME, "type": ["string", "null"]},
        "price": NUMBER, "discount": NUMBER, "total": NUMBER, "items": {"type": "array", "items": LINE},
        "plan": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}, "flag": {"type": "boolean"},
        "address": {"type": "object", "properties": {"city": {"type": "string"}, "since": DATE}},
        "name": {"type": "string"}, "count": {"type": "integer"},
    },
}
GOOD = {
    "start_date": "2024-01-01", "end_date": "2024-02-01", "signup_date": "2024-01-01", "cancel_date": None,
    "price": 10, "discount": 2.5, "total": 0.3, "items": [{"sku": "a", "price": 0.1, "qty": 1},
                                                         {"sku": "b", "price": 0.1, "qty": 2}],
    "plan": "pro", "tags": ["x", "y"], "flag": True, "address": {"city": "Leipzig", "since": "2020-05-01"},
    "name": "Lena", "count": 3,
}


def rule(text: str, schema: dict[str, Any] = ORDER) -> Rule:
    return compile_rules({**schema, "x-rules": [text]}, "s.json").rules[0]


def holds(text: str, **changes: Any) -> bool:
    return rule(text).holds({**GOOD, **changes})


def refusal(rules: Any, schema: dict[str, Any] = ORDER) -> str:
    with pytest.raises(SchemaError) as err:
        compile_rules({**schema, "x-rules": rules}, "s.json")
    return str(err.value)


@contextmanager
def finishes_within(seconds: float) -> Iterator[None]:
    began = time.perf_counter()
    yield
    assert time.perf_counter() - began < seconds


# ---------------------------------------------------------------- the issue's rules

@pytest.mark.parametrize("text,good,bad", [
    ("end_date >= start_date", {}, {"end_date": "2023-12-31"}),
    ("discount <= price", {}, {"discount": 10.5}),
    ("len(items) >= 1", {}, {"items": []}),
    ("total == round(sum(i.price * i.qty for i in items), 2)", {}, {"total": 0.31}),
    ("cancel_date == null or cancel_date >= signup_date", {"cancel_date": "2024-03-01T09:00:00Z"},
     {"cancel_date": "2023-12-31T23:59:59Z"}),
])
def test_the_issues_rules_hold_and_break(text, good, bad):
    assert holds(text, **good)
    assert not holds(text, **bad)


def test_rules_survive_the_schema_check_and_report_what_they_read():
    schema = check_schema({**ORDER, "x-rules": ["end_date >= start_date", "len(items) >= 1"]}).schema
    rules = compile_rules(schema, "s.json")
    assert [r.where for r in rules.rules] == ["$.x-rules[0]", "$.x-rules[1]"]
    assert rules.rules[0].fields == frozenset({"end_date", "start_date"})
    assert rules.rules[0].reason == "broke rule 'end_date >= start_date'"
    assert rules.broken(GOOD) == []
    assert rules.broken({**GOOD, "items": [], "end_date": "2000-01-01"}) == rules.rules
    assert rules and not compile_rules(ORDER)


# ---------------------------------------------------------------- meaning

def test_dates_compare_as_dates_not_as_text():
    assert holds("end_date > start_date", start_date="2024-9-01") is False  # not ISO: cannot compare, broken
    assert holds("end_date > start_date", end_date="2024-10-01", start_date="2024-09-30")
    assert holds("address.since < start_date")
    assert holds("start_date == '2024-01-01'") and holds("start_date < '2024-01-01T10:00:00'") is False
    assert holds("start_date > '2023-12-31T23:59:59+05:00'")  # a date against a date-time: on the date
    assert holds("end_date in ['2024-02-01', '2024-03-01']")
    assert rule("end_date > 'next week'").why_broken(GOOD) == (
        "cannot compare the date 2024-02-01 with the text 'next week'")


def test_date_times_with_and_without_a_zone_compare_without_raising():
    assert holds("cancel_date > '2024-01-01T10:00:00'", cancel_date="2024-01-01T11:00:00+00:00")
    assert holds("cancel_date > '2024-01-01T10:00:00'", cancel_date="2024-01-01T11:00:00+02:00") is False
    assert holds("cancel_date >= signup_date", cancel_date="2024-01-01T00:00:00-08:00")


def test_missing_and_null_fields_are_null_and_comparisons_with_null_are_false():
    record = {k: v for k, v in GOOD.items() if k != "discount"}
    for text, expected in [("discount == null", True), ("discount is null", True), ("discount != null", False),
                           ("discount < price", False), ("not discount < price", True),
                           ("discount + 1 > 0", False), ("len(discount) == null", True)]:
        assert rule(text).holds(record) is expected, text
        assert rule(text).holds({**record, "discount": None}) is expected, text
    assert rule("discount <= price").why_broken(record) == "it is false"
    assert holds("flag") and rule("address.city").why_broken(GOOD) == "it gives the text 'Leipzig', not true or false"


def test_dotted_paths_indexes_and_nested_objects():
    assert holds("address.city == 'Leipzig'") and holds("address['city'] == 'Leipzig'")
    assert holds("items[0].qty == 1") and holds("items[-1].sku == 'b'")
    assert holds("items[5].qty == null")  # past the end: null, not an error
    assert holds("address.city == null", address=None)
    assert rule("address.city == 'x'").why_broken({**GOOD, "address": "Leipzig"}) == (
        "address is the text 'Leipzig', not an object with a field 'city'")


def test_loops_chains_and_membership():
    assert holds("all(i.qty >= 1 for i in items)") and not holds("any(i.qty > 2 for i in items)")
    assert holds("[i.sku for i in items if i.qty > 1] == ['b']")
    assert holds("sum(i.qty for i in items if i.price > 0) == 3")
    assert holds("max(i.qty for i in items) == 2 and min(1, count, 7) == 1")
    assert holds("0 <= discount <= price <= 10") and not holds("0 <= discount <= price < 10")
    assert holds("plan in ['free', 'pro']") and holds("plan not in ('team',)") and holds("'en' in lower('LENA')")
    assert not holds("plan in ['free', 'team']") and holds("'x' in tags") and holds("'ro' in plan")
    assert holds("upper(plan) == 'PRO' if flag else false") and not holds("(1 if flag else 0) == 0")


def test_numbers_equal_within_a_tolerance_and_true_is_not_a_number():
    assert holds("total == 0.1 + 0.2") and holds("0.1 + 0.2 <= total") and not holds("0.1 + 0.2 < total")
    assert not holds("total == 0.3000001")
    assert holds("round(2.675, 2) == 2.68 and round(-0.5) == -1 and round(1234, -2) == 1200")
    assert holds("round(1e300, 15) == 1e300 and round(0.1, -15) == 0 and round(price, 15) == 10")
    assert holds("count / 2 == 1.5 and count // 2 == 1 and count % 2 == 1 and -count == -3")
    assert not holds("flag == 1") and holds("flag == true") and not holds("count == true")
    assert rule("sum([flag, 1]) == 2").why_broken(GOOD) == "sum() adds numbers, not true"
    assert rule("flag + 1 == 2").why_broken(GOOD) == "cannot compute true + the number 1"


def test_an_evaluation_error_breaks_the_rule_with_a_reason_and_never_raises():
    assert rule("name < count").why_broken(GOOD) == "cannot compare the text 'Lena' with the number 3"
    assert rule("price / (count - 3) > 1").why_broken(GOOD) == "it divides the number 10 by zero"
    assert rule("len(count) > 1").why_broken(GOOD) == "len() takes a list, a text or an object, not the number 3"
    assert rule("name * count == 'x'").why_broken(GOOD) == "cannot compute the text 'Lena' * the number 3"
    assert rule("max(tags) == 'y'").holds(GOOD) and rule("max(i.qty for i in items if false) > 0").why_broken(
        GOOD) == "max() of an empty list"
    assert rule("count > 1").why_broken(None) == "the value it checks is null, not an object"  # type: ignore[arg-type]


def test_rules_on_an_arrays_objects_break_on_one_bad_item():
    schema = {**ORDER, "properties": {**ORDER["properties"], "items": {
        "type": "array", "items": {**LINE, "x-rules": ["qty >= 1", "price * qty < 100"]}}}}
    rules = compile_rules({**schema, "x-rules": ["len(items) >= 1"]}, "s.json")
    inner = rules.rules[1]
    assert (inner.where, inner.scope, inner.fields) == ("$.properties.items.items.x-rules[0]", "$.items[*]",
                                                        frozenset({"qty"}))
    assert rules.top_level() == rules.rules[:1]
    assert rules.broken(GOOD) == []
    bad = {**GOOD, "items": [{"sku": "a", "price": 1, "qty": 1}, {"sku": "b", "price": 50, "qty": 0}]}
    assert rules.broken(bad) == [inner]
    [violation] = rules.violations(bad)
    assert (violation.at, violation.why) == ("$.items[1]", "it is false")


def test_rules_on_nested_objects_and_arrays_of_arrays():
    schema = {"type": "object", "properties": {
        "address": {"type": "object", "properties": {"zip": {"type": "string"}, "city": {"type": "string"}},
                    "x-rules": ["len(zip) == 5"]},
        "grid": {"type": "array", "items": {"type": "array", "items": {
            "type": "object", "properties": {"v": NUMBER}, "x-rules": ["v >= 0"]}}}}}
    rules = compile_rules(schema)
    assert [r.scope for r in rules.rules] == ["$.address", "$.grid[*][*]"]
    assert rules.broken({"address": {"zip": "04109"}, "grid": [[{"v": 1}], [{"v": 2}]]}) == []
    bad = {"address": {"zip": "4109"}, "grid": [[{"v": 1}], [{"v": 0}, {"v": -2}]]}
    assert rules.broken(bad) == rules.rules
    assert [v.at for v in rules.violations(bad)] == ["$.address", "$.grid[1][1]"]
    assert rules.broken({"grid": []}) == []  # no address, no items: nothing to check


def test_ref_is_followed_for_a_fields_type_and_nullable_any_of_is_unwrapped():
    schema = {"type": "object", "$defs": {"day": DATE, "line": LINE}, "properties": {
        "a": {"$ref": "#/$defs/day"}, "b": {"anyOf": [DATE, {"type": "null"}]},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}}}}
    assert rule("a < b", schema).holds({"a": "2024-01-02", "b": "2024-1-3"}) is False  # b is not ISO: broken
    assert rule("a < b", schema).holds({"a": "2024-01-02", "b": "2024-01-03"})
    assert "unknown field 'l.prcie'" in refusal(["all(l.prcie > 0 for l in lines)"], schema)


# ---------------------------------------------------------------- the schema check

@pytest.mark.parametrize("rules,expected", [
    (["end_dat >= start_date"], "s.json $.x-rules[0] col 1: rule names unknown field 'end_dat' "
                                "(did you mean 'end_date'?); fields here: address, cancel_date, count"),
    (["count > 1", "end_date >= "], "s.json $.x-rules[1] col 13: invalid syntax"),
    (["count > 1 and (price"], "s.json $.x-rules[0] col 15: '(' was never closed"),
    (["(count > 1 and\n  nope > 1)"], "s.json $.x-rules[0] line 2 col 3: rule names unknown field 'nope'"),
    (["'é' == 'é' and prcie > 0"], "s.json $.x-rules[0] col 16: rule names unknown field 'prcie'"),
    (["address.cty == 'x'"], "col 1: rule names unknown field 'address.cty' (did you mean 'city'?); "
                             "fields of address: city, since"),
    (["count.x == 1"], "col 1: count is of type integer: it has no field 'x'"),
    (["all(t.x for t in tags)"], "col 5: t is of type string: it has no field 'x'"),
    (["name[0] == 'a'"], "col 1: name is of type string, not a list"),
    (["open('x') == 1"], "col 1: calls to open are not allowed; a rule may call abs, all, any, len"),
    (["name.lower() == 'a'"], "method calls are not allowed"),
    (["len(items, 2) > 1"], "len() takes 1 argument"),
    (["round(price, ndigits=2) > 1"], "round() takes plain arguments only"),
    (["items[count].qty > 1"], "col 7: an index must be a constant"),
    (["items[0:1] == []"], "an index must be a constant"),
    (["count ** 2 > 1"], "the power operator '**' is not allowed"),
    (["count & 1 == 1"], "only + - * / // % are allowed"),
    (["f'{name}' == 'x'"], "f-strings are not allowed"),
    (["{'a': 1} == count"], "{...} objects are not allowed"),
    (["count is 1"], "'is' and 'is not' compare only with null"),
    (["sum(a * b for a in items for b in items) > 1"], "a loop in a rule has one 'for'"),
    (["all(x for (x, y) in items)"], "a loop names one variable"),
    (["count + 1"], "a rule must be a condition that is true or false"),
    (["len(items)"], "a rule must be a condition"),
    (["count > 1e999"], "numbers in a rule stay within ±2**63"),
    (["count > 99999999999999999999"], "numbers in a rule stay within ±2**63"),
    (["count > b'x'"], "bytes values are not allowed"),
    (["a" * 1001], "s.json $.x-rules[0]: the rule has 1,001 characters; a rule may have at most 1,000"),
    (["+".join(["count"] * 150) + " > 1"], "the rule is too complex (602 parts, at most 200)"),
    ([""], "s.json $.x-rules[0]: a rule must be a non-empty string"),
    ([3], "s.json $.x-rules[0]: a rule must be a non-empty string"),
    ("count > 1", "s.json $.x-rules: x-rules must be a list of rules"),
    (["count\x00 > 1"], "s.json $.x-rules[0]: a rule cannot hold a NUL character"),
], ids=lambda value: repr(value)[:40])
def test_check_errors_say_what_and_where(rules, expected):
    assert expected in refusal(rules)


def test_rules_where_they_would_not_be_applied_fail_the_check():
    for schema, where in [({**ORDER, "$defs": {"x": {**LINE, "x-rules": ["qty > 0"]}}}, "$.$defs.x.x-rules"),
                          ({**ORDER, "anyOf": [{"x-rules": ["count > 0"]}]}, "$.anyOf[0].x-rules"),
                          ({**ORDER, "additionalProperties": {"x-rules": []}}, "$.additionalProperties.x-rules")]:
        with pytest.raises(SchemaError) as err:
            compile_rules(schema, "s.json")
        assert err.value.where == f"s.json {where}" and "would not be applied" in err.value.detail


def test_rules_on_a_level_that_is_not_an_object_fail_the_check():
    for prop, fragment in [({"type": "string", "x-rules": ["count > 1"]}, "belong on an object, not on a string"),
                           ({"type": "array", "items": LINE, "x-rules": ["count > 1"]},
                            "not on an array: rules on an array's objects go under its items")]:
        schema = {"type": "object", "properties": {"p": prop, "count": NUMBER}}
        with pytest.raises(SchemaError) as err:
            compile_rules(schema, "s.json")
        assert err.value.where == "s.json $.properties.p.x-rules" and fragment in err.value.detail


def test_parsing_a_rule_raises_no_warnings():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        rule(r"name != '\d' and name != '\q'")
        refusal(["count is 1"])
    assert seen == []


def test_a_property_called_x_rules_is_a_field_not_rules():
    schema = {"type": "object", "properties": {"x-rules": {"type": "string"}, "n": NUMBER}, "x-rules": ["n > 0"]}
    assert [r.text for r in compile_rules(schema).rules] == ["n > 0"]


def test_rules_on_a_nested_level_read_that_levels_fields():
    schema = {**ORDER, "properties": {**ORDER["properties"], "items": {
        "type": "array", "items": {**LINE, "x-rules": ["qty > count"]}}}}
    message = refusal([], schema)
    assert "$.properties.items.items.x-rules[0] col 7: rule names unknown field 'count'" in message
    assert "fields here: price, qty, sku" in message


# ---------------------------------------------------------------- hostile rules and records

@pytest.mark.parametrize("text,fragment", [
    ("__import__('os') == 0", "calls to __import__ are not allowed"),
    ("__import__('os').system('true') == 0", "method calls are not allowed"),
    ("().__class__.__bases__[0] == null", "names with '__' are not allowed"),
    ("count.__class__ == null", "names with '__' are not allowed"),
    ("open('x') == null", "calls to open are not allowed"),
    ("(lambda: 1)() == 1", "calls to lambda: 1 are not allowed"),
    ("(lambda: 1) == 1", "lambda is not allowed"),
    ("(x := 1) == 1", "assignment with ':=' is not allowed"),
    ("'a' * 10**9 == name", "text cannot be repeated"),
    ("9**9**9 > 1", "the power operator '**' is not allowed"),
    ("(" * 10_000 + "count" + ")" * 10_000 + " > 1", "the rule has 20,009 characters"),
    ("(" * 300 + "count" + ")" * 300 + " > 1", "too many nested parentheses"),
    ("-" * 900 + "count > 1", "the rule is too complex"),
    ("not " * 240 + "flag", "the rule is too complex"),
    ("[i for i in items].__len__() > 0", "method calls are not allowed"),
    ("eval('1') == 1", "calls to eval are not allowed"),
    ("getattr(items, 'x') == 1", "calls to getattr are not allowed"),
    ("(yield) == 1", "yield is not allowed"),
    ("[*items] == []", "* unpacking is not allowed"),
], ids=lambda value: value[:40])
def test_hostile_rules_are_refused_at_check_time(text, fragment):
    with finishes_within(1.0):
        message = refusal([text])
    assert fragment in message


def _limit_recursion(headroom: int) -> int:
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + headroom)
    return old


def test_a_recursion_error_while_compiling_becomes_a_schema_error():
    text = "count == " + "-(" * 60 + "1" + ")" * 60
    old = _limit_recursion(40)
    try:
        with pytest.raises(SchemaError) as err:
            compile_rules({**ORDER, "x-rules": [text]}, "s.json")
    finally:
        sys.setrecursionlimit(old)
    assert err.value.detail == "the rule nests too deeply to read"
    assert rule(text).holds(GOOD) is False  # with the stack it needs, it reads fine


def test_a_recursion_error_while_evaluating_breaks_the_rule():
    deep = rule("count == " + "-(" * 60 + "3" + ")" * 60)
    assert deep.holds(GOOD)
    old = _limit_recursion(40)
    try:
        why = deep.why_broken(GOOD)
    finally:
        sys.setrecursionlimit(old)
    assert why == "it nests too deeply to evaluate here"


def test_a_million_item_list_is_refused_without_walking_it():
    nums = {"type": "object", "properties": {"nums": {"type": "array", "items": NUMBER}}}
    record = {"nums": [1] * 1_000_000}
    for text in ("sum(n for n in nums) > 0", "sum(nums) > 0", "any(nums)", "max(nums) > 0"):
        with finishes_within(0.5):
            why = rule(text, nums).why_broken(record)
        assert why == "the argument has 1,000,000 items; a rule walks at most 10,000".replace(
            "the argument", "nums" if " for " in text else "the argument"), text
    with finishes_within(0.5):
        assert rule("1 in nums", nums).why_broken(record) == f"it takes more than {MAX_STEPS:,} steps on this object"


def test_loops_within_loops_stop_at_the_step_budget():
    nums = {"type": "object", "properties": {"nums": {"type": "array", "items": NUMBER}, "s": {"type": "string"}}}
    record = {"nums": list(range(10_000)), "s": "x" * 1_000_000}
    for text in ("sum(sum(1 for b in nums) for a in nums) > 0", "sum(1 for a in nums if a in nums) > 0",
                 "sum(len(upper(s)) for a in nums) > 0", "all(s + s != '' for a in nums)", "[a for a in nums] == nums"):
        with finishes_within(1.0):
            why = rule(text, nums).why_broken(record)
        assert why in (f"it takes more than {MAX_STEPS:,} steps on this object",
                       "a text it joins is past 100,000 characters", None), (text, why)
    assert rule("sum(a for a in nums) == 49995000", nums).holds(record)  # 10,000 items is within the limits


def test_huge_numbers_and_odd_values_from_a_record_break_the_rule_and_never_raise():
    big = {**GOOD, "count": 10**4000, "price": float("inf"), "total": float("nan")}
    assert rule("count * count * count > 0").why_broken(big) == "a number it computes is past ±2**63 (or not finite)"
    assert rule("count == 1.5").holds(big) is False and rule("count > 1.5").holds(big)
    assert rule("price + 1 > 0").why_broken(big) == "a number it computes is past ±2**63 (or not finite)"
    assert rule("round(total, 2) == 1").why_broken(big) == "round() of the number nan"
    assert rule("total == total").holds(big) is False
    assert rule("total > 1").why_broken(big) == "cannot order the number nan and the number 1"
    odd = {**GOOD, "items": 5, "address": [1, 2], "tags": {"a": 1}}
    for text in ("len(items) >= 1", "all(i.qty > 0 for i in items)", "address.city == 'x'", "'a' in tags",
                 "items[0].qty == 1", "sum(i.price for i in items) > 0"):
        assert isinstance(rule(text).why_broken(odd), str), text


def test_a_ruleset_without_rules_is_falsy_and_breaks_nothing():
    rules = compile_rules(ORDER)
    assert not rules and rules.broken(GOOD) == [] and RuleSet().top_level() == []
