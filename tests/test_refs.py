"""One $ref lookup (core/refs.py) for the schema checks and the report: the report reads a
reference where the validators read it."""

from __future__ import annotations

import pytest

from synth_tui.core.errors import SchemaError
from synth_tui.core.report import build_report, field_specs
from synth_tui.core.schema import check_schema

PART = "https://example.com/part/"


def obj(**props) -> dict:
    return {"type": "object", "properties": props}


def kinds(schema: dict, records: list[dict]) -> dict[str, str]:
    return {f.path: f.kind for f in build_report(iter(records), schema).fields}


def test_a_ref_inside_a_nested_id_is_read_there_by_the_validator_and_the_report():
    # the root's $defs/s is a string; the part's own $defs/s is an enum of integers
    schema = {**obj(a={"$id": PART, "$defs": {"s": {"type": "integer", "enum": [1, 2]}}, "$ref": "#/$defs/s"}),
              "$defs": {"s": {"type": "string"}}}
    checked = check_schema(schema)
    assert checked.is_valid({"a": 1}) and not checked.is_valid({"a": "x"})
    assert field_specs(schema)["a"] == {"type": "integer", "enum": [1, 2]}
    assert kinds(schema, [{"a": 1}, {"a": 2}]) == {"a": "enum"}


def test_pointers_are_unescaped_as_json_pointer_says():
    schema = {**obj(a={"$ref": "#/$defs/a~1b"}, c={"$ref": "#/$defs/t~0c"}),
              "$defs": {"a/b": {"type": "string", "enum": ["x"]}, "t~c": {"type": "integer"}}}
    check_schema(schema)
    assert field_specs(schema) == {"a": {"type": "string", "enum": ["x"]}, "c": {"type": "integer"}}


def test_defs_in_objects_and_array_items_are_flattened_by_path():
    schema = {**obj(order={"$ref": "#/$defs/order"}),
              "$defs": {"order": obj(lines={"type": "array", "items": {"$ref": "#/$defs/line"}}),
                        "line": obj(sku={"type": "string"}, qty={"type": "integer"})}}
    assert sorted(field_specs(schema)) == ["order.lines", "order.lines[].qty", "order.lines[].sku"]


@pytest.mark.parametrize("schema", [
    obj(name={"type": "string"}, children={"type": "array", "items": {"$ref": "#"}}),
    obj(a=obj(b={"$ref": "#/properties/a"})),
    {**obj(node={"$ref": "#/$defs/node"}), "$defs": {"node": obj(next={"$ref": "#/$defs/node"})}},
])
def test_a_recursive_schema_is_reported_to_its_first_repeat(schema):
    check_schema(schema)  # a valid schema: a tree, a list
    specs = field_specs(schema)  # not a RecursionError
    assert specs and all(path.count(".") <= 2 for path in specs)
    build_report(iter([{"name": "a", "children": [{"name": "b", "children": []}]}]), schema)


@pytest.mark.parametrize("schema", [
    {**obj(a={"$ref": "#/$defs/s"}), "$defs": {"s": None}},
    {**obj(a={"$ref": "#/$defs/l/0"}), "$defs": {"l": [1]}},
    {**obj(a={"$id": 5, "$ref": "#/$defs/s"}), "$defs": {"s": {"type": "string"}}},
    obj(a={"$ref": "https://example.com/remote.json"}),
    obj(a={"$ref": "#/$defs/nothing"}),
])
def test_a_damaged_stored_schema_still_gets_a_report(schema):
    # the history's schema passed the checks when the run began; a file edited since may not
    with pytest.raises(SchemaError):
        check_schema(schema)
    report = build_report(iter([{"a": "x"}, {"a": "y"}]), schema)
    assert [f.path for f in report.fields] == ["a"] and report.fields[0].kind == "string"
