"""Field generators (x-generator): distributions with fixed seeds and tolerances, sequences,
templates, Faker providers and locales, and every check error with its JSON path."""

from __future__ import annotations

import math
import random
import re
import statistics
import sys
import threading
import time
from collections import Counter
from datetime import date, datetime

import pytest

from synth_tui.core.errors import SchemaError
from synth_tui.core.generators import Generated, Sequence, compile_generators, slugify
from synth_tui.core.schema import RecordSchema, check_schema

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PROVIDERS = ("first_name", "last_name", "email", "phone_number", "street_address", "city", "country", "postcode",
             "company", "job", "url", "ipv4")


def compiled(fields: dict) -> Generated:
    """Short-form fields, expanded and checked as a schema file would be, then compiled."""
    return compile_generators(check_schema(fields, "s.json").schema, "s.json")


def one(field: dict) -> Generated:
    return compiled({"f": field})


def draws(field: dict, count: int = 5000, seed: int = 7) -> list:
    generator = one(field).generators["f"]
    rng = random.Random(seed)
    return [generator.draw(rng) for _ in range(count)]


def refused(fields: dict, field: str = "f") -> str:
    """The message of the SchemaError compiling ``fields`` raises, after checking its path."""
    with pytest.raises(SchemaError) as info:
        compiled(fields)
    assert info.value.where == f"s.json $.properties.{field}.x-generator"
    return info.value.detail


def ks_statistic(values: list, cdf) -> float:
    """Largest gap between the empirical CDF of ``values`` and ``cdf``, at each distinct value."""
    ordered = sorted(values)
    count = len(ordered)
    gap = 0.0
    i = 0
    while i < count:
        j = i
        while j < count and ordered[j] == ordered[i]:
            j += 1
        below = cdf(math.nextafter(ordered[i], -math.inf)) if isinstance(ordered[i], float) else cdf(ordered[i] - 0.5)
        gap = max(gap, abs(j / count - cdf(ordered[i])), abs(i / count - below))
        i = j
    return gap


# -- uuid ---------------------------------------------------------------------------------
def test_uuid_is_version_4_and_reproducible_for_the_same_seed():
    generated = one({"type": "string", "format": "uuid", "x-generator": "uuid"})
    first = [generated.draw(random.Random(3))["f"] for _ in range(2)]
    assert first[0] == first[1] and UUID4.match(first[0])
    values = draws({"type": "string", "x-generator": "uuid"}, 2000)
    assert all(UUID4.match(v) for v in values) and len(set(values)) == 2000
    assert generated.unique_fields == {"f"} and generated.generators["f"].declared() is None


def test_uuid_on_an_integer_field_is_refused():
    assert refused({"f": {"type": "integer", "x-generator": "uuid"}}) == "uuid gives strings, but this field is integer"


# -- sequence -----------------------------------------------------------------------------
def test_sequence_counts_from_start_by_step_over_the_run():
    generated = one({"type": "integer", "maximum": 5000, "x-generator": {"sequence": {"start": 1000, "step": 2}}})
    sequence = generated.sequences["f"]
    assert [sequence.at(i) for i in range(3)] == [1000, 1002, 1004]
    assert sequence.last(1) == 1000 and sequence.last(100) == 1198
    assert generated.fill({"a": 1}, 7) == {"a": 1, "f": 1014}
    assert generated.draw(random.Random(1)) == {} and generated.unique_fields == {"f"}
    assert one({"type": "integer", "x-generator": {"sequence": {}}}).sequences["f"] == Sequence(1, 1)
    with pytest.raises(ValueError):
        sequence.last(0)


def test_a_decimal_sequence_is_written_with_its_decimals():
    sequence = one({"type": "number", "x-generator": {"sequence": {"start": 0.1, "step": 0.1}}}).sequences["f"]
    assert [sequence.at(i) for i in range(4)] == [0.1, 0.2, 0.3, 0.4]


@pytest.mark.parametrize("field,message", [
    ({"type": "integer", "x-generator": {"sequence": {"start": 1.5}}}, "needs whole numbers for start and step"),
    ({"type": "integer", "x-generator": {"sequence": {"step": 0}}}, '"step" must not be 0'),
    ({"type": "string", "x-generator": {"sequence": {"start": 1}}}, "sequence gives numbers, but this field is string"),
    ({"type": "integer", "x-generator": {"sequence": {"begin": 1}}}, 'sequence has no setting "begin"'),
    ({"type": "integer", "minimum": 5, "x-generator": {"sequence": {"start": 1}}}, "1 is less than the minimum of 5"),
])
def test_bad_sequences_are_refused(field, message):
    assert message in refused({"f": field})


# -- uniform ------------------------------------------------------------------------------
def test_uniform_on_an_integer_field_draws_every_whole_number_in_range():
    values = draws({"type": "integer", "x-generator": {"uniform": {"min": 0, "max": 10}}})
    assert all(type(v) is int for v in values) and set(values) == set(range(11))
    assert abs(statistics.fmean(values) - 5) < 0.15


def test_uniform_on_a_number_field_draws_floats_in_range_matching_its_cdf():
    field = {"type": "number", "x-generator": {"uniform": {"min": 2.5, "max": 7.5}}}
    values = draws(field)
    assert all(type(v) is float and 2.5 <= v <= 7.5 for v in values)
    generator = one(field).generators["f"]
    assert generator.declared() == {"kind": "uniform", "min": 2.5, "max": 7.5}
    assert ks_statistic(values, generator.sample_cdf()) < 0.03


def test_an_integer_uniform_cdf_is_the_discrete_one():
    field = {"type": "integer", "x-generator": {"uniform": {"min": 1, "max": 4}}}
    cdf = one(field).generators["f"].sample_cdf()
    assert [cdf(x) for x in (0, 1, 2, 3.5, 4)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ks_statistic(draws(field), cdf) < 0.03


@pytest.mark.parametrize("field,message", [
    ({"type": "integer", "minimum": 1, "x-generator": {"uniform": {"min": 0, "max": 10}}},
     'uniform "min" 0 is below what the field takes (minimum 1)'),
    ({"type": "integer", "exclusiveMaximum": 10, "x-generator": {"uniform": {"min": 0, "max": 10}}},
     'uniform "max" 10 is above what the field takes (exclusiveMaximum 10)'),
    ({"type": "number", "exclusiveMinimum": 0, "x-generator": {"uniform": {"min": 0, "max": 1}}},
     'uniform "min" 0 is below what the field takes (exclusiveMinimum 0)'),
    ({"type": "number", "maximum": 1, "x-generator": {"uniform": {"min": 0, "max": 1.5}}},
     'uniform "max" 1.5 is above what the field takes (maximum 1)'),
    ({"type": "integer", "x-generator": {"uniform": {"min": 0, "max": 1.5}}}, "needs whole numbers for min and max"),
    ({"type": "number", "x-generator": {"uniform": {"min": 3, "max": 1}}}, 'uniform "min" 3 is above its "max" 1'),
    ({"type": "number", "x-generator": {"uniform": {"min": 0}}}, 'uniform needs "max"'),
    ({"type": "number", "x-generator": {"uniform": {"min": "0", "max": 1}}}, '"min" must be a number, not "0"'),
    ({"type": "number", "x-generator": {"uniform": {"min": 0, "max": 1e300}}}, "numbers here stay within"),
    ({"type": "string", "x-generator": {"uniform": {"min": 0, "max": 1}}}, "uniform gives numbers, but this field"),
    ({"type": "number", "x-generator": {"uniform": [0, 1]}}, 'uniform takes an object with "min", "max"'),
])
def test_bad_uniforms_are_refused(field, message):
    assert message in refused({"f": field})


# -- normal -------------------------------------------------------------------------------
def test_normal_has_the_declared_mean_and_stdev():
    values = draws({"type": "number", "x-generator": {"normal": {"mean": 42, "stdev": 14}}})
    assert abs(statistics.fmean(values) - 42) < 0.6
    assert abs(statistics.stdev(values) - 14) < 0.5


def test_normal_on_an_integer_field_is_rounded_and_clipped_to_its_bounds():
    field = {"type": "integer", "minimum": 18, "maximum": 95, "x-generator": {"normal": {"mean": 30, "stdev": 14}}}
    values = draws(field)
    assert all(type(v) is int and 18 <= v <= 95 for v in values)
    assert 0.15 < values.count(18) / len(values) < 0.22  # P(X < 18.5) = 0.205: the tail piles onto the bound
    generator = one(field).generators["f"]
    assert generator.declared() == {"kind": "normal", "mean": 30, "stdev": 14, "min": 18, "max": 95}
    assert ks_statistic(values, generator.sample_cdf()) < 0.03


def test_normal_respects_exclusive_bounds_and_multiple_of():
    field = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "multipleOf": 0.05,
             "x-generator": {"normal": {"mean": 0.5, "stdev": 1}}}
    values = draws(field, 2000)
    assert min(values) == 0.05 and max(values) == 0.95
    validator = RecordSchema(schema={"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                                     "multipleOf": 0.05})
    assert all(validator.is_valid(v) for v in values)


def test_a_clipped_normal_on_a_number_field_gives_floats_inside_the_exclusive_bound():
    values = draws({"type": "number", "exclusiveMinimum": 0, "x-generator": {"normal": {"mean": 0, "stdev": 1}}}, 500)
    assert min(values) > 0 and values.count(min(values)) > 200


@pytest.mark.parametrize("field,message", [
    ({"type": "number", "x-generator": {"normal": {"mean": 1, "stdev": 0}}}, '"stdev" must be above 0'),
    ({"type": "number", "x-generator": {"normal": {"mean": 1}}}, 'normal needs "stdev"'),
    ({"type": "number", "x-generator": {"normal": {"mean": True, "stdev": 1}}}, '"mean" must be a number'),
    ({"type": "integer", "minimum": 5, "maximum": 4, "x-generator": {"normal": {"mean": 1, "stdev": 1}}},
     "the field's minimum and maximum leave none"),
    ({"type": "boolean", "x-generator": {"normal": {"mean": 1, "stdev": 1}}}, "this field is boolean"),
])
def test_bad_normals_are_refused(field, message):
    assert message in refused({"f": field})


# -- lognormal ----------------------------------------------------------------------------
def test_lognormal_median_is_e_to_the_mean_and_cents_pass_multiple_of():
    field = {"type": "number", "minimum": 0, "multipleOf": 0.01,
             "x-generator": {"lognormal": {"mean": 3.5, "sigma": 0.6}}}
    values = draws(field)
    assert abs(statistics.median(values) / math.exp(3.5) - 1) < 0.05
    assert all(v == round(v, 2) for v in values)
    validator = RecordSchema(schema={"type": "number", "minimum": 0, "multipleOf": 0.01})
    assert all(validator.is_valid(v) for v in values)
    generator = one(field).generators["f"]
    assert generator.declared() == {"kind": "lognormal", "mean": 3.5, "sigma": 0.6, "min": 0}
    assert ks_statistic(values, generator.sample_cdf()) < 0.03


def test_lognormal_is_clipped_and_never_overflows():
    values = draws({"type": "integer", "maximum": 100, "x-generator": {"lognormal": {"mean": 700, "sigma": 50}}}, 500)
    assert set(values) <= set(range(101)) and 100 in values
    assert "out of range" in refused({"f": {"type": "number", "x-generator": {"lognormal": {"mean": 800, "sigma": 1}}}})
    assert '"sigma" must be above 0' in refused(
        {"f": {"type": "number", "x-generator": {"lognormal": {"mean": 1, "sigma": -1}}}})


# -- weights ------------------------------------------------------------------------------
def test_weights_give_each_value_its_share():
    field = {"type": "string", "enum": ["free", "pro", "team"],
             "x-generator": {"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}}
    counts = Counter(draws(field))
    for value, share in (("free", 0.6), ("pro", 0.3), ("team", 0.1)):
        assert abs(counts[value] / 5000 - share) < 0.03
    assert one(field).generators["f"].declared() == {"kind": "weights",
                                                     "weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}


def test_weights_need_not_sum_to_one_and_their_keys_are_json_for_other_types():
    counts = Counter(draws({"type": "integer", "x-generator": {"weights": {"1": 3, "2": 1}}}))
    assert set(counts) == {1, 2} and abs(counts[1] / 5000 - 0.75) < 0.03
    assert set(draws({"type": "boolean", "x-generator": {"weights": {"true": 1, "false": 1}}}, 200)) == {True, False}
    values = draws({"enum": ["a", 1, None], "x-generator": {"weights": {"a": 1, "1": 1, "null": 1}}}, 300)
    assert set(values) == {"a", 1, None} and not any(v is True for v in values)


@pytest.mark.parametrize("field,message", [
    ({"enum": ["free", "pro"], "x-generator": {"weights": {"free": 1, "gold": 1}}},
     'weights name "gold", which is not in the field\'s enum ("free", "pro")'),
    ({"type": "integer", "enum": [1, 2], "x-generator": {"weights": {"1": 1, "3": 1}}}, "weights name 3, which is not"),
    ({"type": "integer", "x-generator": {"weights": {"one": 1}}}, "'one' is not JSON text"),
    ({"type": "string", "x-generator": {"weights": {"a": 0}}}, "the weight of 'a' must be a number above 0"),
    ({"type": "string", "x-generator": {"weights": {}}}, "weights takes an object of values"),
    ({"type": "integer", "x-generator": {"weights": {"1": 1, "1.0": 1}}}, "weights name the value 1.0 twice"),
    ({"type": "integer", "x-generator": {"weights": {"1.5": 1}}}, "1.5 is not of type 'integer'"),
])
def test_bad_weights_are_refused(field, message):
    assert message in refused({"f": field})


# -- bool ---------------------------------------------------------------------------------
def test_bool_is_true_with_its_probability():
    values = draws({"type": "boolean", "x-generator": {"bool": 0.3}})
    assert all(type(v) is bool for v in values) and abs(values.count(True) / 5000 - 0.3) < 0.03
    assert one({"type": "boolean", "x-generator": {"bool": 0.3}}).generators["f"].declared() == {"kind": "bool",
                                                                                                 "p": 0.3}


@pytest.mark.parametrize("field,message", [
    ({"type": "boolean", "x-generator": {"bool": 1.5}}, "a number from 0 to 1, not 1.5"),
    ({"type": "boolean", "x-generator": {"bool": True}}, "a number from 0 to 1, not true"),
    ({"type": "string", "x-generator": {"bool": 0.5}}, "bool gives true or false, but this field is string"),
])
def test_bad_bools_are_refused(field, message):
    assert message in refused({"f": field})


# -- date and datetime --------------------------------------------------------------------
def test_dates_are_in_range_in_format_and_reach_both_ends():
    leap = {"from": "2024-02-28", "to": "2024-03-01"}
    values = draws({"type": "string", "format": "date", "x-generator": {"date": leap}}, 300)
    assert set(values) == {"2024-02-28", "2024-02-29", "2024-03-01"}
    wide = draws({"type": "string", "x-generator": {"date": {"from": "2020-01-01", "to": "2025-12-31"}}}, 2000)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) and "2020-01-01" <= v <= "2025-12-31" for v in wide)
    years = Counter(v[:4] for v in wide)
    assert set(years) == {"2020", "2021", "2022", "2023", "2024", "2025"} and max(years.values()) < 2000 / 6 * 1.25


def test_datetimes_are_rfc_3339_in_utc_and_in_range():
    field = {"type": "string", "format": "date-time",
             "x-generator": {"datetime": {"from": "2024-01-01T10:00:00+02:00", "to": "2024-01-01"}}}
    values = draws(field, 500)
    assert all(re.fullmatch(r"2024-01-01T(0[89]|1\d|2[0-3]):\d{2}:\d{2}Z", v) for v in values)
    assert min(values) >= "2024-01-01T08:00:00Z" and max(values) <= "2024-01-01T23:59:59Z"
    moments = [datetime.fromisoformat(v) for v in values]
    assert len(set(moments)) > 490


def test_the_field_format_decides_how_a_date_is_written():
    as_datetime = draws({"type": "string", "format": "date-time",
                         "x-generator": {"date": {"from": "2020-01-01", "to": "2020-01-31"}}}, 50)
    assert all(re.fullmatch(r"2020-01-\d\dT00:00:00Z", v) for v in as_datetime)
    as_date = draws({"type": "string", "format": "date",
                     "x-generator": {"datetime": {"from": "2020-01-01", "to": "2020-01-31"}}}, 50)
    assert all(date.fromisoformat(v).month == 1 for v in as_date)


@pytest.mark.parametrize("field,message", [
    ({"type": "integer", "x-generator": {"date": {"from": "2020-01-01", "to": "2021-01-01"}}},
     "date gives strings, but this field is integer"),
    ({"type": "string", "format": "email", "x-generator": {"date": {"from": "2020-01-01", "to": "2021-01-01"}}},
     'this field has format "email"'),
    ({"type": "string", "x-generator": {"date": {"from": "2021-01-01", "to": "2020-01-01"}}}, "is after its"),
    ({"type": "string", "x-generator": {"date": {"from": "2020-02-30", "to": "2021-01-01"}}},
     'date "from" must be a date like "2020-01-31", not "2020-02-30"'),
    ({"type": "string", "x-generator": {"datetime": {"from": "noon", "to": "2021-01-01"}}}, 'datetime "from" must be'),
    ({"type": "string", "x-generator": {"date": {"from": "2020-01-01"}}}, 'date needs "to"'),
])
def test_bad_dates_are_refused(field, message):
    assert message in refused({"f": field})


# -- fake ---------------------------------------------------------------------------------
def test_each_listed_provider_gives_values_its_field_accepts():
    fields = {name: {"type": "string", "x-generator": {"fake": name}} for name in PROVIDERS}
    fields["email"]["format"] = "email"
    fields["url"]["format"] = "uri"
    fields["ipv4"]["format"] = "ipv4"
    schema = check_schema(fields, "s.json")
    generated = compile_generators(schema.schema, "s.json")
    rng = random.Random(5)
    records = [generated.draw(rng) for _ in range(200)]
    assert all(schema.errors(record) == [] for record in records)
    for name in PROVIDERS:
        assert all(record[name] for record in records), name
    assert generated.generators["city"].declared() is None and generated.generators["city"].sample_cdf() is None


def test_de_de_gives_german_data():
    generated = compiled({"postcode": {"type": "string", "x-generator": {"fake": "postcode", "locale": "de_DE"}},
                          "phone": {"type": "string", "x-generator": {"fake": "phone_number", "locale": "de-DE"}},
                          "country": {"type": "string", "x-generator": {"fake": "country", "locale": "de_DE"}}})
    rng = random.Random(2)
    records = [generated.draw(rng) for _ in range(300)]
    assert all(re.fullmatch(r"\d{5}", r["postcode"]) for r in records)
    assert all(re.sub(r"\D", "", r["phone"]).startswith(("49", "0")) for r in records)
    countries = {r["country"] for r in records}
    assert len(countries & {"Ägypten", "Frankreich", "Spanien", "Italien", "Schweiz", "Deutschland", "Österreich",
                            "Griechenland", "Norwegen", "Schweden", "Polen", "Ungarn", "Türkei", "Indien"}) >= 3
    assert not countries & {"Egypt", "France", "Spain", "Italy", "Switzerland", "Germany", "Austria", "Greece"}


def test_any_faker_provider_by_its_name_and_values_converted_to_json():
    generated = compiled({"iban": {"type": "string", "x-generator": {"fake": "iban"}},
                          "born": {"type": "string", "format": "date", "x-generator": {"fake": "date_of_birth"}},
                          "n": {"type": "integer", "x-generator": {"fake": "pyint"}}})
    record = generated.draw(random.Random(1))
    assert re.fullmatch(r"GB\d{2}[A-Z]{4}\d{14}", record["iban"])
    assert date.fromisoformat(record["born"]) and type(record["n"]) is int


def test_fake_values_are_reproducible_for_the_same_seed():
    generated = compiled({name: {"type": "string", "x-generator": {"fake": name}} for name in PROVIDERS})
    assert generated.draw(random.Random(9)) == generated.draw(random.Random(9))
    assert generated.draw(random.Random(9)) != generated.draw(random.Random(10))


def test_runs_in_threads_draw_fake_values_from_their_own_rng():
    generated = compiled({name: {"type": "string", "x-generator": {"fake": name}} for name in PROVIDERS[:6]})

    def records(seed: int) -> list[dict]:
        rng = random.Random(seed)
        return [generated.draw(rng) for _ in range(1500)]

    alone = {seed: records(seed) for seed in (1, 2)}
    together: dict[int, list[dict]] = {}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=lambda s=seed: together.__setitem__(s, records(s))) for seed in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert together == alone


@pytest.mark.parametrize("field,message", [
    ({"type": "string", "x-generator": {"fake": "frist_name"}}, "Faker has no provider 'frist_name'; did you mean "
                                                                "first_name"),
    ({"type": "string", "x-generator": {"fake": "city", "locale": "xx_XX"}}, "Faker has no locale 'xx_XX'"),
    ({"type": "string", "x-generator": {"fake": "city", "locale": "de_DX"}}, "did you mean de_DE"),
    ({"type": "string", "x-generator": {"fake": "city", "lang": "de"}}, 'fake has no setting "lang"'),
    ({"type": "string", "x-generator": {"fake": 3}}, "fake takes the name of a Faker provider"),
    ({"type": "integer", "x-generator": {"fake": "email"}}, "fake 'email' gives string values like "),
    ({"type": "string", "x-generator": {"fake": "binary"}}, "fake 'binary' gives bytes values, which JSON cannot hold"),
    ({"type": "string", "x-generator": {"fake": "enum"}}, "Faker has no provider 'enum'"),  # it needs an argument
    ({"type": "string", "maxLength": 3, "x-generator": {"fake": "city"}},
     "fake 'city' cannot meet the field's constraints: it drew "),
    ({"type": "string", "pattern": "^[0-9]+$", "x-generator": {"fake": "postcode", "locale": "en_GB"}},
     "fake 'postcode' (en_GB) cannot meet the field's constraints"),
])
def test_bad_fakes_are_refused(field, message):
    assert message in refused({"f": field})


def test_a_constraint_behind_a_ref_is_checked_too():
    with pytest.raises(SchemaError) as info:  # checking the schema compiles its generators
        check_schema({"type": "object", "$defs": {"short": {"type": "string", "maxLength": 4}},
                      "properties": {"city": {"$ref": "#/$defs/short", "x-generator": {"fake": "city"}}}}, "s.json")
    assert "is too long" in info.value.detail and info.value.where == "s.json $.properties.city.x-generator"


# -- templates ----------------------------------------------------------------------------
@pytest.mark.parametrize("value,slug", [
    ("Müller", "muller"), ("O'Brien", "o-brien"), ("  Anne Marie ", "anne-marie"), ("Łukasz Straße", "lukasz-strasse"),
    ("Zoë.Ærø", "zoe.aero"), ("a--b__c", "a--b__c"), ("--x--", "x"), (42, "42"), (True, "true"), (None, ""),
    ("李", ""), ("ACME GmbH & Co. KG", "acme-gmbh-co.-kg"),
])
def test_slugify(value, slug):
    assert slugify(value) == slug


def test_templates_read_generated_and_model_filled_fields():
    generated = compiled({
        "first_name": {"type": "string", "x-generator": {"fake": "first_name", "locale": "de_DE"}},
        "last_name": {"type": "string"},  # filled by the model
        "company_domain": {"type": "string"},
        "email": {"type": "string", "x-generator": {"template": "{first_name}.{last_name}@{company_domain}"}},
        "note": {"type": "string", "x-generator": {"template": "{{literal}} {missing_ok} for {email}"}},
        "missing_ok": {"type": "string"},
    })
    assert list(generated.templates) == ["email", "note"]
    record = generated.fill({"first_name": "Jürgen", "last_name": "Groß-Müller", "company_domain": "ACME.de"}, 0)
    assert record["email"] == "jurgen.gross-muller@acme.de"
    assert record["note"] == "{literal}  for jurgen.gross-muller-acme.de"


def test_templates_come_after_the_templates_they_read():
    generated = compiled({
        "c": {"type": "string", "x-generator": {"template": "{b}-c"}},
        "b": {"type": "string", "x-generator": {"template": "{a}-b"}},
        "a": {"type": "string", "x-generator": {"template": "{n}"}},
        "n": {"type": "integer", "x-generator": {"sequence": {"start": 7}}},
    })
    assert list(generated.templates) == ["a", "b", "c"]
    assert generated.fill({}, 1)["c"] == "8-b-c"


@pytest.mark.parametrize("fields,field,message", [
    ({"a": {"type": "string", "x-generator": {"template": "{b}"}},
      "b": {"type": "string", "x-generator": {"template": "{a}"}}}, "a", "in a circle: a -> b -> a"),
    ({"a": {"type": "string", "x-generator": {"template": "x{a}"}}}, "a", "in a circle: a -> a"),
    ({"x": {"type": "string"}, "a": {"type": "string", "x-generator": {"template": "{b}"}},
      "b": {"type": "string", "x-generator": {"template": "{c}"}},
      "c": {"type": "string", "x-generator": {"template": "{x}{b}"}}}, "b", "in a circle: b -> c -> b"),
    ({"a": {"type": "string", "x-generator": {"template": "{nme}"}}, "name": {"type": "string"}}, "a",
     "template names unknown field 'nme'; fields here: a, name"),
    ({"a": {"type": "string", "x-generator": {"template": "{a"}}}, "a", 'a "{" with no "}" at character 1'),
    ({"a": {"type": "string", "x-generator": {"template": "a}"}}}, "a", 'a "}" with no "{" at character 2'),
    ({"a": {"type": "string", "x-generator": {"template": "{}"}}}, "a", 'an empty "{}"'),
    ({"a": {"type": "integer", "x-generator": {"template": "1"}}}, "a", "template gives text, but this field is "
                                                                        "integer"),
    ({"n": {"type": "integer", "x-generator": {"uniform": {"min": 1, "max": 9}}},
      "a": {"type": "string", "pattern": "^[a-z]+$", "x-generator": {"template": "{n}"}}}, "a",
     "template '{n}' cannot meet the field's constraints: it drew "),
])
def test_bad_templates_are_refused(fields, field, message):
    assert message in refused(fields, field)


def test_a_long_chain_of_templates_is_ordered_without_recursion():
    fields = {f"t{i}": {"type": "string", "x-generator": {"template": f"{{t{i + 1}}}"}} for i in range(3000)}
    fields["t3000"] = {"type": "string"}
    generated = compiled(fields)
    assert list(generated.templates)[0] == "t2999" and generated.fill({"t3000": "X"}, 0)["t0"] == "x"


# -- hostile specs: refused quickly, never a traceback ---------------------------------------
@pytest.mark.parametrize("field,message", [
    ({"type": "integer", "minimum": 10**400, "x-generator": {"normal": {"mean": 1, "stdev": 1}}}, None),
    ({"type": "number", "multipleOf": 1e-320, "x-generator": {"normal": {"mean": 1, "stdev": 1}}},
     "failed while drawing a value: OverflowError"),
    ({"type": "number", "multipleOf": 1e-320, "minimum": 1, "x-generator": {"normal": {"mean": 1, "stdev": 1}}},
     "numbers out of range"),
    ({"type": "number", "x-generator": {"normal": {"mean": 10**400, "stdev": 1}}}, '"mean" must be a number'),
    ({"type": "string", "x-generator": {"datetime": {"from": "0001-01-01T00:00:00+05:00", "to": "2000-01-01"}}},
     "outside the years 1 to 9999"),
    ({"type": "integer", "x-generator": {"weights": {"[" * 5000: 1}}}, "is not JSON text"),
])
def test_hostile_numbers_and_keys_are_check_errors(field, message):
    with pytest.raises(SchemaError) as info:
        compile_generators({"type": "object", "properties": {"f": field}}, "s.json")
    assert info.value.where == "s.json $.properties.f.x-generator"
    assert message is None or message in info.value.detail


def test_many_weights_over_a_large_enum_compile_in_linear_time():
    values = [f"v{i}" for i in range(50_000)]
    started = time.perf_counter()
    generated = one({"enum": values, "x-generator": {"weights": {v: 1 for v in values}}})
    assert time.perf_counter() - started < 5 and generated.draw(random.Random(1))["f"] in values


# -- seed columns, the whole record, places and shapes -------------------------------------
def test_from_seed_is_parsed_and_left_to_the_engine():
    generated = compiled({"a": {"type": "string", "x-generator": {"from_seed": "Customer Name"}}})
    assert generated.from_seed == {"a": "Customer Name"} and generated.fields() == {"a"}
    assert generated.draw(random.Random(1)) == {} and generated.fill({"a": "x"}, 0) == {"a": "x"}
    empty = {"type": "string", "x-generator": {"from_seed": ""}}
    assert "from_seed takes the name of a column" in refused({"f": empty})


def record_schema() -> dict:
    return {
        "id": {"type": "string", "format": "uuid", "x-generator": "uuid"},
        "no": {"type": "integer", "x-generator": {"sequence": {"start": 1000}}},
        "first_name": {"type": "string", "x-generator": {"fake": "first_name"}},
        "last_name": {"type": "string", "x-generator": {"fake": "last_name"}},
        "city": {"type": "string", "x-generator": {"fake": "city"}},
        "age": {"type": "integer", "minimum": 18, "maximum": 95, "x-generator": {"normal": {"mean": 42, "stdev": 14}}},
        "plan": {"enum": ["free", "pro", "team"], "x-generator": {"weights": {"free": 0.6, "pro": 0.3, "team": 0.1}}},
        "signup": {"type": "string", "format": "date", "x-generator": {"date": {"from": "2020-01-01",
                                                                                "to": "2025-12-31"}}},
        "active": {"type": "boolean", "x-generator": {"bool": 0.3}},
        "email": {"type": "string", "format": "email",
                  "x-generator": {"template": "{first_name}.{last_name}.{no}@example.com"}},
        "bio": {"type": "string"},
    }


def test_the_same_seed_gives_the_same_records_and_every_record_is_valid():
    schema = check_schema(record_schema(), "s.json")
    generated = compile_generators(schema.schema, "s.json")
    assert generated.fields() == set(record_schema()) - {"bio"}
    assert generated.unique_fields == {"id", "no"} and list(generated.generators) == [
        "id", "first_name", "last_name", "city", "age", "plan", "signup", "active"]

    def run(seed: int) -> list[dict]:
        rng = random.Random(seed)
        return [generated.fill(generated.draw(rng) | {"bio": "x"}, i) for i in range(100)]

    first = run(11)
    assert first == run(11) and first != run(12)
    assert all(schema.errors(record) == [] for record in first)
    assert len({r["email"] for r in first}) == 100 and [r["no"] for r in first] == list(range(1000, 1100))


def test_a_schema_without_generators_compiles_to_nothing():
    generated = compiled({"a": {"type": "string"}})
    assert not generated and generated.fields() == set() and generated.fill({"a": 1}, 3) == {"a": 1}


@pytest.mark.parametrize("schema,where", [
    ({"type": "object", "properties": {"a": {"type": "object", "properties": {
        "city": {"type": "string", "x-generator": {"fake": "city"}}}}}}, "$.properties.a.properties.city"),
    ({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string", "x-generator": "uuid"}}}},
     "$.properties.a.items"),
    ({"type": "object", "$defs": {"d": {"x-generator": "uuid"}}, "properties": {"a": {"$ref": "#/$defs/d"}}},
     "$.$defs.d"),
    ({"type": "object", "properties": {"a": {"anyOf": [{"type": "string", "x-generator": "uuid"}]}}},
     "$.properties.a.anyOf[0]"),
    ({"type": "object", "x-generator": "uuid", "properties": {"a": {"type": "string"}}}, "$"),
])
def test_x_generator_anywhere_but_a_top_level_field_is_refused(schema, where):
    with pytest.raises(SchemaError) as info:
        compile_generators(check_schema(schema, "s.json").schema, "s.json")
    assert info.value.where == f"s.json {where}.x-generator"
    assert "works only on a field of the record itself" in info.value.detail


def test_a_short_form_field_with_nothing_but_a_generator_is_not_taken_for_an_object():
    generated = compiled({"name": {"type": "string"}, "city": {"x-generator": {"fake": "city"}}})
    assert generated.generators["city"].kind == "fake" and "name" not in generated.fields()
    assert compiled({"id": {"x-generator": "uuid"}}).generators["id"].kind == "uuid"


@pytest.mark.parametrize("spec,message", [
    ("email", 'unknown generator \'email\'; for a Faker value write {"fake": "email"}'),
    ("uuid4", "unknown generator 'uuid4'"),
    ({"normall": {"mean": 1, "stdev": 1}}, "unknown generator 'normall'; did you mean normal?"),
    ({"normal": {"mean": 1, "stdev": 1}, "uniform": {"min": 0, "max": 1}}, "one generator per field"),
    ({"normal": {"mean": 1, "stdev": 1}, "locale": "de_DE"}, 'normal has no setting "locale" beside it'),
    ({"uuid": {}}, '"uuid" takes no settings'),
    (None, "x-generator takes \"uuid\" or an object"),
    ([], "x-generator takes \"uuid\" or an object"),
])
def test_unknown_and_misshapen_specs_are_refused(spec, message):
    assert message in refused({"f": {"type": "number", "x-generator": spec}})
