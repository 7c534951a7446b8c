"""Report figures against values computed by hand on fixed data; the checks against the
schema (declared distributions, free text's repeats, rule counts) on real runs."""

from __future__ import annotations

import json
import math
import random

import pytest
from textual.widgets import DataTable, Static

from synth_tui.core.backends.base import GenerationParams
from synth_tui.core.declared import RuleTally
from synth_tui.core.engine import Run, RunConfig
from synth_tui.core.fit import (
    SAMPLE_SIZE,
    Reservoir,
    chi_square_p,
    chi_square_sf,
    kolmogorov_p,
    kolmogorov_sf,
    ks_statistic,
)
from synth_tui.core.report import build_report, evenness, format_report, histogram, run_report
from synth_tui.core.schema import check_schema
from synth_tui.core.store import Store

from .conftest import fast_config, openai_backend
from .fake_llm import FakeLLM, Fault
from .test_tui import make_app, on_screen, started
from .waiting import until

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
    assert histogram([(1.0, 4), (3.0, 2)], 1, 3, bins=2) == [4, 2]  # values with their counts


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


# -- the statistics, against tabled values ------------------------------------------------------
@pytest.mark.parametrize(("x", "p"), [(0.8276, 0.5), (1.2238, 0.10), (1.3581, 0.05), (1.6276, 0.01), (1.9495, 0.001)])
def test_kolmogorov_tail_matches_the_tables(x, p):
    assert kolmogorov_sf(x) == pytest.approx(p, rel=2e-3)


def test_kolmogorov_tail_edges_and_the_small_sample_correction():
    assert kolmogorov_sf(0) == 1.0 and kolmogorov_sf(0.05) == 1.0 and kolmogorov_sf(10) < 1e-80
    assert kolmogorov_sf(1.17) == pytest.approx(kolmogorov_sf(1.19), abs=0.02)  # the two series meet
    assert kolmogorov_p(0.1, 100) == pytest.approx(kolmogorov_sf((10 + 0.12 + 0.011) * 0.1))
    assert kolmogorov_p(0.5, 0) == 1.0


@pytest.mark.parametrize(("x", "dof", "p"), [(3.841, 1, 0.05), (9.210, 2, 0.01), (11.345, 3, 0.01),
                                             (5.0, 5, 0.41588), (30.0, 10, 0.000857), (0.5, 1, 0.4795)])
def test_chi_square_tail_matches_the_tables(x, dof, p):
    assert chi_square_sf(x, dof) == pytest.approx(p, rel=2e-3)


def test_chi_square_test_of_counts():
    statistic, p, dof = chi_square_p([50, 30, 20], [50.0, 30.0, 20.0])
    assert (statistic, p, dof) == (0.0, 1.0, 2)
    statistic, p, dof = chi_square_p([10, 90], [50.0, 50.0])
    assert statistic == pytest.approx(64.0) and p < 1e-10 and dof == 1
    assert chi_square_p([5, 1], [6.0, 0.0])[1] == 0.0  # a value never expected
    assert chi_square_p([6, 0], [6.0, 0.0])[1] == 1.0  # one category left: nothing to test


def test_ks_statistic_by_hand_and_the_left_limit_of_a_discrete_cdf():
    uniform = lambda x: min(1.0, max(0.0, x))  # noqa: E731
    d, n = ks_statistic([0.3, 0.1, 0.9, 0.2], uniform)
    assert n == 4 and d == pytest.approx(0.45)  # at 0.3: 3/4 of the values against 0.3
    # whole numbers 1..4, each a quarter: the values fit exactly once each jump is read from both sides
    dice = lambda x: min(1.0, max(0.0, math.floor(x) / 4))  # noqa: E731
    values = [1, 2, 3, 4] * 50
    assert ks_statistic(values, dice, lambda x: dice(x - 0.5))[0] == 0.0
    assert ks_statistic(values, dice)[0] == pytest.approx(0.25)  # read as continuous, every jump looks off


def test_reservoir_is_bounded_reproducible_and_uniform():
    def sample():
        reservoir = Reservoir(size=1000)
        for x in range(100_000):
            reservoir.add(float(x))
        return reservoir

    first, second = sample(), sample()
    assert len(first.values) == 1000 and first.seen == 100_000
    assert first.values == second.values  # a fixed seed
    assert abs(sum(first.values) / 1000 - 50_000) < 3000  # not the first thousand: spread over all
    assert max(first.values) > 90_000


# -- generated fields against their declared distributions ----------------------------------------
GENERATED = {
    "id": {"type": "string", "x-generator": "uuid"},
    "number": {"type": "integer", "x-generator": {"sequence": {"start": 1}}},
    "age": {"type": "integer", "minimum": 18, "maximum": 95, "x-generator": {"normal": {"mean": 42, "stdev": 14}}},
    "price": {"type": "number", "minimum": 1, "multipleOf": 0.01,
              "x-generator": {"lognormal": {"mean": 3.5, "sigma": 0.6}}},
    "low": {"type": "integer", "minimum": 18, "x-generator": {"normal": {"mean": 20, "stdev": 5}}},  # clipped a lot
    "dice": {"type": "integer", "x-generator": {"uniform": {"min": 1, "max": 6}}},
    "plan": {"type": "string", "enum": ["free", "pro", "team"],
             "x-generator": {"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}},
    "active": {"type": "boolean", "x-generator": {"bool": 0.3}},
    "since": {"type": "string", "format": "date", "x-generator": {"date": {"from": "2020-01-01", "to": "2020-12-31"}}},
    "city": {"type": "string", "x-generator": {"fake": "city"}},
    "email": {"type": "string", "x-generator": {"template": "{city}@example.com"}},
}


async def generated_run(tmp_path, count: int = 2000) -> tuple[Store, str]:
    """A run of the real engine over a schema of generators only: no request is sent."""
    backend = openai_backend(FakeLLM())  # never started: a request would fail the run
    store = Store(tmp_path / "data")
    try:
        result = await Run(check_schema(GENERATED), RunConfig(count=count, params=GenerationParams(seed=1)), backend,
                           store=store).execute()
    finally:
        await backend.aclose()
    assert result.success and result.accepted == count
    return store, result.run_id


def field(report, path):
    return next(f for f in report.fields if f.path == path)


async def test_a_generated_run_matches_what_its_generators_declare(tmp_path):
    store, run_id = await generated_run(tmp_path)
    with store:
        report = run_report(store, run_id)
    sources = {f.path: f.source for f in report.fields}
    assert sources == {"id": "uuid", "number": "sequence", "age": "normal", "price": "lognormal", "low": "normal",
                       "dice": "uniform", "plan": "weights", "active": "bool", "since": "date", "city": "fake city",
                       "email": "template"}
    age = field(report, "age")
    assert age.check.declared == {"kind": "normal", "mean": 42, "stdev": 14, "min": 18, "max": 95}
    assert abs(age.mean - 42) < 1 and abs(age.stdev - 14) < 1
    for path in ("age", "price", "low", "dice"):  # rounded, stepped and clipped distributions as drawn
        check = field(report, path).check
        assert check.test == "KS" and check.tested == check.values == 2000
        assert check.p_value >= 0.01 and not check.off, (path, check)
    plan = field(report, "plan").check
    assert plan.test == "chi-square" and plan.p_value >= 0.01
    assert [(value, declared) for value, declared, _, _ in plan.shares] == [("free", 0.6), ("pro", 0.3), ("team", 0.1)]
    assert all(abs(share - declared) < 0.04 for _, declared, _, share in plan.shares)
    assert sum(n for _, _, n, _ in plan.shares) == 2000
    active = field(report, "active").check
    assert active.shares[0][:2] == ("true", 0.3) and abs(active.shares[0][3] - 0.3) < 0.04 and not active.off
    since = field(report, "since").check
    assert since.test == "" and "2020-01-01" <= since.observed_range[0] <= since.observed_range[1] <= "2020-12-31"
    assert field(report, "city").check is None and field(report, "id").check is None
    assert report.off_fields() == [] and report.rules == []
    text = format_report(report)
    assert "checks: 0 of 6 generated fields off\n" in text
    assert "normal(mean 42, stdev 14); observed mean" in text and "OFF" not in text


def draws(generator_spec, field_schema, count, seed=3):
    """``count`` values straight from a generator, as a run would draw them."""
    schema = check_schema({"v": {**field_schema, "x-generator": generator_spec}})
    generator = schema.recipe.generated.generators["v"]
    rng = random.Random(seed)
    return schema.schema, [{"v": generator.draw(rng)} for _ in range(count)]


def test_values_from_another_distribution_are_flagged():
    age = {"type": "integer", "minimum": 18, "maximum": 95}
    schema, _ = draws({"normal": {"mean": 42, "stdev": 14}}, age, 1)
    rng = random.Random(5)
    for records in ([{"v": rng.randint(18, 95)} for _ in range(2000)],  # uniform, not normal
                    [{"v": min(95, max(18, round(rng.gauss(46, 14))))} for _ in range(2000)]):  # mean off by 4
        report = build_report(records, schema)
        check = field(report, "v").check
        assert check.p_value < 0.01 and check.off
        assert report.off_fields() == [field(report, "v")]
        text = format_report(report)
        assert "checks: 1 of 1 generated fields off (v)" in text
        assert "OFF: not the declared distribution (p < 0.01)" in text


def test_a_large_field_is_tested_on_a_fixed_sample():
    schema, records = draws({"normal": {"mean": 42, "stdev": 14}}, {"type": "number"}, SAMPLE_SIZE + 5000)
    first = field(build_report(records, schema), "v").check
    second = field(build_report(records, schema), "v").check
    assert first.tested == SAMPLE_SIZE and first.values == SAMPLE_SIZE + 5000
    assert first.p_value >= 0.01 and first.p_value == second.p_value  # the same sample every time
    assert f"of a sample of {SAMPLE_SIZE:,}" in format_report(build_report(records, schema))


def test_weights_off_their_declared_shares_and_values_never_drawn():
    plan = {"type": "string", "enum": ["free", "pro", "team"]}
    schema, _ = draws({"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}, plan, 1)
    even = [{"v": ["free", "pro", "team"][i % 3]} for i in range(300)]
    check = field(build_report(even, schema), "v").check
    assert check.off and [round(share, 3) for _, _, _, share in check.shares] == [0.333] * 3
    stray = [{"v": "free"}] * 60 + [{"v": "pro"}] * 30 + [{"v": "team"}] * 9 + [{"v": "gold"}]
    check = field(build_report(stray, schema), "v").check
    assert check.shares[-1] == ("(other values)", 0.0, 1, 0.01) and check.p_value == 0.0 and check.off
    json.dumps(build_report(stray, schema).to_json(), allow_nan=False)  # no Infinity in --json


def test_a_rule_on_a_generated_field_is_named_where_its_distribution_is_off():
    schema = check_schema({"a": {"type": "integer", "x-generator": {"uniform": {"min": 1, "max": 10}}},
                           "x-rules": ["a > 5"]}).schema
    check = field(build_report([{"a": 6 + i % 5} for i in range(500)], schema), "a").check
    assert check.off and check.read_by_rule
    assert "a rule reads this field" in format_report(build_report([{"a": 6 + i % 5} for i in range(500)], schema))


# -- free text ------------------------------------------------------------------------------------
def test_the_most_common_value_of_free_text_and_its_repeats():
    schema = check_schema({
        "notes": {"type": "string"},
        "bio": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "plan": {"type": "string", "enum": ["a", "b"]},
        "code": {"type": "string", "pattern": "^[A-Z]+$"},
        "city": {"type": "string", "x-generator": {"fake": "city"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"street": {"type": "string"}},
    }).schema
    records = [{"notes": "Pays late" if i % 10 == 0 else f"note {i}", "bio": f"bio {i}", "email": "a@b.co",
                "plan": "a", "code": "X", "city": "Oslo", "tags": ["vip"], "address": {"street": "1 Main St"}}
               for i in range(200)]
    report = build_report(records, schema)
    notes, bio, street = field(report, "notes"), field(report, "bio"), field(report, "address.street")
    assert notes.top_share == pytest.approx(0.1) and notes.repeats
    assert bio.top_share == pytest.approx(1 / 200) and not bio.repeats  # each value once
    assert street.source == "model" and street.top_share == 1.0 and street.repeats  # nested text counts too
    for path in ("email", "plan", "code", "city", "tags[]"):  # formats, enums, patterns, generators, list items
        assert field(report, path).top_share is None, path
    assert report.repeating_fields() == [notes, street]
    text = format_report(report)
    assert "2 of 3 free-text fields repeat (notes, address.street)" in text
    assert "10.0%: 'Pays late' x20 · REPEATS" in text and "0.5%: no value twice" in text


def test_an_enriched_runs_fields_may_be_the_input_rows():
    schema = check_schema({"notes": {"type": "string"}}).schema
    report = build_report([{"notes": "same"}] * 10, schema, enriched=True)
    assert field(report, "notes").source == "model or row" and not report.repeating_fields()


# -- rules ----------------------------------------------------------------------------------------
RULED = {
    "price": {"type": "integer", "minimum": 20, "maximum": 30, "x-generator": {"uniform": {"min": 20, "max": 30}}},
    "code": {"type": "string"},
    "x-rules": ["code != 'BAD' or price > 100", "len(code) > 3", "price >= 20"],
}


async def ruled_run(llm, data_dir) -> str:
    """A run whose first answer breaks two rules, and whose second breaks one."""
    llm.faults.append(Fault(content=json.dumps({"code": "BAD"})))
    llm.faults.append(Fault(content=json.dumps({"code": "ok"})))
    backend = openai_backend(llm)
    try:
        with Store(data_dir) as store:
            result = await Run(check_schema(RULED), fast_config(3, batch_size=1), backend, store=store).execute()
    finally:
        await backend.aclose()
    assert result.success and result.rejected == 2
    return result.run_id


async def test_rules_are_counted_per_rule_from_a_runs_rejections(tmp_path, llm):
    run_id = await ruled_run(llm, tmp_path / "data")
    with Store(tmp_path / "data", writable=False) as store:
        report = run_report(store, run_id)
    assert [(r.text, r.where, r.broken) for r in report.rules] == [
        ("code != 'BAD' or price > 100", "$.x-rules[0]", 1),
        ("len(code) > 3", "$.x-rules[1]", 2),
        ("price >= 20", "$.x-rules[2]", 0),
    ]
    assert report.rules_counted_in_full
    text = format_report(report)
    assert "rules, the records that broke each:" in text and "      2x  len(code) > 3  ($.x-rules[1])" in text
    assert "3 rule breaks" in text
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["rules"][1] == {"text": "len(code) > 3", "where": "$.x-rules[1]", "broken": 2}


def test_rule_reasons_are_split_per_rule_and_a_partial_count_says_so():
    tally = RuleTally()
    tally.add("broke rule 'a == \"x; y\"'; broke rule 'b > 1'")  # a rule's text may hold "; "
    tally.add("$.a: 'a' is a required property")
    tally.add(None)  # a damaged history line
    assert tally.counts == {"broke rule 'a == \"x; y\"'": 1, "broke rule 'b > 1'": 1} and tally.read == 3
    [gone, kept] = sorted(tally.result(None), key=lambda r: r.text)
    assert (gone.text, gone.where, gone.broken) == ("'a == \"x; y\"'", "", 1)  # a rule the schema no longer has
    schema = check_schema({"b": {"type": "integer"}, "x-rules": ["b > 1"]}).schema
    report = build_report([{"b": 2}], schema, rejected=5, rejection_reasons=["broke rule 'b > 1'"] * 2)
    assert report.rules[0].broken == 2 and not report.rules_counted_in_full
    text = format_report(report)
    assert "counted over the 2 rejections the run kept of 5: at least as many broke each" in text
    assert "at least 2 rule breaks" in text


# -- the report screen ----------------------------------------------------------------------------
async def test_report_screen_shows_sources_checks_free_text_and_rules(tmp_path, llm):
    schema = dict(RULED, notes={"type": "string", "examples": ["Pays late", "Loyal"]})  # the test server picks one
    llm.faults.append(Fault(content=json.dumps({"code": "BAD", "notes": "x"})))
    backend = openai_backend(llm)
    try:
        with Store(tmp_path / "data") as store:
            result = await Run(check_schema(schema), fast_config(40, batch_size=10, params=GenerationParams(seed=2)),
                               backend, store=store).execute()
    finally:
        await backend.aclose()
    assert result.success
    app = make_app(tmp_path, llm)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("f4")
        await on_screen(pilot, app, "history")
        app.screen.query_one("#runs", DataTable).focus()
        await until(pilot, lambda: app.focused is app.screen.query_one("#runs"), "the run table's focus")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.id == "report" and app.screen.report is not None, "the report")
        screen = app.screen
        report = screen.report
        table = screen.query_one("#report-fields", DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["Field", "Source", "Check", "Kind", "Missing",
                                                                  "Null", "Unique"]
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        assert rows["price"][1] == "uniform" and rows["price"][2] == "ok"
        assert rows["notes"][1] == "model" and rows["notes"][2].endswith("top")
        summary = screen.query_one("#report-summary", Static).render().plain
        assert "Checks: 0 of 1 generated fields off" in summary and "free-text fields repeat (notes)" in summary
        rules = screen.query_one("#rules-text", Static).render().plain
        assert screen.query_one("#report-rules").display
        assert "1x code != 'BAD' or price > 100  $.x-rules[0]" in rules and "0x price >= 20" in rules

        for path, expected in (("price", ("declared against observed", "uniform(20..30)", "KS D", "ok: p ≥ 0.01")),
                               ("notes", ("free text", "most common value", "REPEATS"))):
            table.move_cursor(row=[f.path for f in report.fields].index(path))
            await until(pilot, lambda path=path: screen.field_shown.path == path, f"the {path} field's figures")
            figures = screen.query_one("#field-figures", Static).render().plain
            assert all(part in figures for part in expected), figures


def test_numbers_a_float_cannot_hold_are_left_out_of_the_figures():
    schema = check_schema({"n": {"type": "integer", "x-generator": {"uniform": {"min": 1, "max": 3}}}}).schema
    report = build_report([{"n": 10**400}, {"n": float("nan")}, {"n": 1}, {"n": 3}], schema)
    n = field(report, "n")
    assert (n.min, n.max, n.unique) == (1, 3, 4) and n.check.tested == 2
