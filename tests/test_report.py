"""Report figures against values computed by hand on fixed data."""

from __future__ import annotations

import math

import pytest

from synth_tui.core.report import build_report, evenness, histogram

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "plan": {"type": "string", "enum": ["free", "pro", "team"]},
        "nick": {"type": ["string", "null"]},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
RECORDS = [
    {"name": "Ann", "age": 20, "plan": "free", "nick": None, "address": {"city": "Oslo"}, "tags": ["a", "b"]},
    {"name": "Bob", "age": 30, "plan": "free", "nick": "bb", "address": {"city": "Oslo"}, "tags": []},
    {"name": "Ann", "age": 40, "plan": "pro", "address": {"city": "Lima"}, "tags": ["a"]},
    {"name": "Cleo", "age": 50, "plan": "free", "nick": None, "address": {"city": "Oslo"}, "tags": ["c"]},
]


@pytest.fixture
def report():
    return build_report(iter(RECORDS), SCHEMA, rejected=1, duplicates=2,
                        rejection_reasons=["$.age: bad", "$.age: bad", "$: 'name' is a required property"])


def by_path(report, path):
    return next(f for f in report.fields if f.path == path)


def test_validity_and_duplicates(report):
    assert report.accepted == 4
    assert report.validity == pytest.approx(4 / 5)
    assert report.duplicate_rate == pytest.approx(2 / 6)
    assert report.top_rejections[0] == ("$.age: bad", 2)


def test_numbers(report):
    age = by_path(report, "age")
    assert (age.min, age.max, age.mean) == (20, 50, 35)
    assert age.stdev == pytest.approx(math.sqrt(((15**2) * 2 + (5**2) * 2) / 4))  # population stdev 11.18
    assert age.histogram == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]
    assert age.unique_ratio == 1.0


def test_strings_missing_nulls_unique(report):
    name = by_path(report, "name")
    assert name.unique == 3 and name.unique_ratio == pytest.approx(3 / 4)
    assert name.top_values == [("Ann", 2)]
    assert (name.length_min, name.length_max, name.length_mean) == (3, 4, 3.25)
    nick = by_path(report, "nick")
    assert nick.missing == 1 and nick.missing_rate == pytest.approx(1 / 4)
    assert nick.nulls == 2 and nick.null_rate == pytest.approx(2 / 3)


def test_enum_coverage_against_uniform(report):
    plan = by_path(report, "plan")
    assert plan.kind == "enum"
    assert [(v, n) for v, n, _, _ in plan.coverage] == [("free", 3), ("pro", 1), ("team", 0)]
    assert plan.coverage[0][2] == pytest.approx(0.75) and plan.coverage[0][3] == pytest.approx(1 / 3)
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(3)
    assert plan.evenness == pytest.approx(expected)  # 0.512


def test_nested_paths_and_arrays(report):
    city = by_path(report, "address.city")
    assert city.unique == 2 and city.top_values == [("Oslo", 3)]
    tags = by_path(report, "tags")
    assert (tags.length_min, tags.length_max, tags.length_mean) == (0, 2, 1.0)
    items = by_path(report, "tags[]")
    assert items.present == 4 and items.unique == 3


def test_evenness_and_histogram_edges():
    assert evenness([5, 5, 5]) == pytest.approx(1.0)
    assert evenness([9, 0, 0]) == 0.0
    from array import array

    assert histogram(array("d", [1, 1, 1]), 1, 1) == [3] + [0] * 9


def test_kinds_use_the_schemas_words_and_values_their_json_spelling():
    from synth_tui.core.report import build_report, describe_field, format_report

    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"},
                                               "x": {"type": "number"}}}
    records = [{"n": i, "ok": i % 3 == 0, "x": i / 2, "line\nbreak": 1} for i in range(9)]
    report = build_report(records, schema)
    kinds = {f.path: f.kind for f in report.fields}
    assert kinds["n"] == "integer" and kinds["x"] == "number" and kinds["ok"] == "boolean"
    ok = next(f for f in report.fields if f.path == "ok")
    assert describe_field(ok) in ("false: 6, true: 3", "true: 3, false: 6")
    text = format_report(report)
    assert "line␊break" in text and "line\nbreak" not in text  # a key cannot start a line of its own
