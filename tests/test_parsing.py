from __future__ import annotations

import pytest

from synth_tui.core.parsing import UnparseableOutput, extract_records

FIELDS = frozenset({"id", "items"})


@pytest.mark.parametrize("text,expected", [
    ('{"id": 1, "items": [1]}', [{"id": 1, "items": [1]}]),  # a record holding a list stays a record
    ('{"records": [{"id": 1}, {"id": 2}]}', [{"id": 1}, {"id": 2}]),
    ('{"data": [{"id": 1}], "count": 1}', [{"id": 1}]),
    ('[{"id": 1}, {"id": 2}]', [{"id": 1}, {"id": 2}]),
    ('```json\n[{"id": 1}]\n```', [{"id": 1}]),
    ('Here:\n```\n{"id": 1}\n```\nand\n```json\n{"id": 2}\n```', [{"id": 1}, {"id": 2}]),
    ('{"id": 1}\n{"id": 2}', [{"id": 1}, {"id": 2}]),
    ('Sure, here is the data: {"id": 1} hope it helps', [{"id": 1}]),
    ('{"people": [{"id": 1}]}', [{"id": 1}]),
])
def test_shapes(text, expected):
    assert extract_records(text, FIELDS) == expected


def test_no_json_raises():
    with pytest.raises(UnparseableOutput):
        extract_records("no data here")
