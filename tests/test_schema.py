from __future__ import annotations

import pytest

from synth_tui.core.errors import SchemaError
from synth_tui.core.schema import batch_schema, check_schema, parse_schema


def test_short_form_becomes_a_json_schema_with_required_fields():
    s = parse_schema('{"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18},'
                     ' "nick": {"type": "string", "required": false},'
                     ' "address": {"city": {"type": "string"}}}')
    assert s.short_form
    assert s.schema["type"] == "object"
    assert s.schema["required"] == ["name", "age", "address"]
    assert s.schema["properties"]["address"] == {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert s.is_valid({"name": "a", "age": 20, "address": {"city": "x"}})
    assert not s.is_valid({"name": "a", "age": 17, "address": {"city": "x"}})


def test_broken_json_reports_line_and_column():
    with pytest.raises(SchemaError) as err:
        parse_schema('{\n  "a": {"type": "string"},\n  oops\n}', "s.json")
    assert err.value.where == "s.json:3:3"


@pytest.mark.parametrize("text,fragment", [
    ("{}", "empty"),
    ("", "empty"),
    ('{"a": null}', 'field "a" is defined as null'),
    ('{"type": "object", "properties": {}}', "empty"),
    ('{"type": "object", "properties": {"a": {"type": "strnig"}}}', "$.properties.a.type"),
    ('[1, 2]', "must be a JSON object"),
    ('{"type": "string"}', "must describe an object"),
    ('{"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}', "remote $ref"),
    ('{"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}}', "points at nothing"),
])
def test_bad_schemas_are_errors_that_say_where(text, fragment):
    with pytest.raises(SchemaError) as err:
        parse_schema(text)
    assert fragment in str(err.value)


def test_field_without_type_is_a_warning_not_an_error():
    s = check_schema({"a": {"description": "anything"}, "b": {"type": "string"}})
    assert s.warnings == ['$.a: field "a" has no type, so the model may return anything for it']


def test_formats_are_enforced():
    s = check_schema({f: {"type": "string", "format": f} for f in ("email", "date", "date-time", "uuid", "uri", "ipv4")})
    good = {"email": "a@b.co", "date": "2024-02-29", "date-time": "2024-01-01T10:00:00Z",
            "uuid": "12345678-1234-4234-8234-123456789abc", "uri": "https://x.org/a", "ipv4": "10.0.0.1"}
    assert s.errors(good) == []
    for field, bad in [("email", "nope"), ("date", "2023-02-30"), ("date-time", "tomorrow"),
                       ("uuid", "xyz"), ("uri", "not a uri"), ("ipv4", "300.1.1.1")]:
        assert s.errors({**good, field: bad}), field


def test_batch_schema_keeps_local_defs_resolvable():
    s = check_schema({"type": "object", "$defs": {"n": {"type": "integer"}},
                      "properties": {"a": {"$ref": "#/$defs/n"}}, "required": ["a"]})
    wrapper = check_schema(batch_schema(s.schema, 2))
    assert wrapper.is_valid({"records": [{"a": 1}, {"a": 2}]})
    assert not wrapper.is_valid({"records": [{"a": "x"}, {"a": 2}]})


FORMAT_CORPUS = {
    "email": ["a@b", "a@b.co", "nope", "@x.com", "a b@c.com", "a@b@c"],
    "date": ["2024-02-29", "2023-02-29", "2023-02-30", "2024-13-01", "0000-01-01", "20240101"],
    "date-time": ["2024-01-01T10:00:00Z", "2024-01-01T10:00:00", "2024-01-01T25:00:00Z", "2024-02-30T10:00:00Z"],
    "uuid": ["12345678-1234-4234-8234-123456789abc", "12345678123442348234123456789abc", "zzz"],
    "uri": ["https://x.org/a", "foo:bar", "/relative", "http://exa mple.com", "http://x.org/%zz"],
    "ipv4": ["10.0.0.1", "300.1.1.1", "1.2.3", "01.2.3.4", "::1"],
}


@pytest.mark.parametrize("fmt", sorted(FORMAT_CORPUS))
def test_fast_validator_never_accepts_what_jsonschema_rejects(fmt):
    s = check_schema({"type": "object", "properties": {"v": {"type": "string", "format": fmt},
                                                       "p": {"type": "string", "pattern": "^[A-Z]{2}-\\\\d{3}$"}}})
    assert s.fast_validator is not None
    for value in FORMAT_CORPUS[fmt]:
        for code in ("AB-123", "ab-123", "AB-12"):
            record = {"v": value, "p": code}
            assert s.is_valid(record) == s.validator.is_valid(record), record
            assert bool(s.errors(record)) == (not s.is_valid(record))


@pytest.mark.parametrize("text,short", [
    ('{"title": {"type": "string"}, "year": {"type": "integer"}}', True),
    ('{"type": {"type": "string", "enum": ["a", "b"]}, "format": {"type": "string"}}', True),
    ('{"description": {"type": "string"}}', True),
    ('{"type": "object", "properties": {"a": {"type": "string"}}}', False),
    ('{"properties": {"a": {"type": "string"}}, "required": ["a"]}', False),
    ('{"properties": {"a": {"type": "string"}}}', False),
    ('{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", '
     '"properties": {"a": {"type": "string"}}}', False),
])
def test_short_form_is_told_apart_by_shape_not_key_names(text, short):
    s = parse_schema(text)
    assert s.short_form is short
    assert s.schema["properties"] and (s.schema.get("type") == "object" or not short)


def test_records_are_put_in_the_schemas_key_order():
    schema = check_schema({"name": {"type": "string"}, "age": {"type": "integer"},
                           "address": {"street": {"type": "string"}, "city": {"type": "string"}},
                           "tags": {"type": "array", "items": {"type": "object",
                                                               "properties": {"b": {}, "a": {}}}}})
    record = {"tags": [{"a": 1, "b": 2}], "address": {"city": "Porto", "street": "Rua"}, "extra": 0,
              "age": 3, "name": "Ana"}
    ordered = schema.in_order(record)
    assert ordered == record
    assert list(ordered) == ["name", "age", "address", "tags", "extra"]
    assert list(ordered["address"]) == ["street", "city"] and list(ordered["tags"][0]) == ["b", "a"]
