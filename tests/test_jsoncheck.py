"""Structured answers checked against a workflow's JSON Schema; strict-mode detection."""

from __future__ import annotations

import pytest

from orchestrator.jsoncheck import is_strict, problem

TICKET = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": ["billing", "bug"]},
        "urgency": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "owner": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["category", "urgency", "tags", "owner"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"category": "bug", "urgency": 2, "tags": ["a"], "owner": None}, None),
        ({"category": "Bug", "urgency": 2, "tags": [], "owner": None}, "must be one of"),
        ({"category": "bug", "urgency": True, "tags": [], "owner": None}, "must be integer"),
        ({"category": "bug", "urgency": 1, "tags": [1], "owner": None}, "tags[0] must be string"),
        ({"category": "bug", "urgency": 1, "tags": ["a", "b", "c"], "owner": None}, "at most 2"),
        ({"category": "bug", "urgency": 1, "tags": [], "owner": 3}, "none of the allowed"),
        ({"category": "bug", "urgency": 1, "tags": []}, "missing owner"),
        ({"category": "bug", "urgency": 1, "tags": [], "owner": None, "x": 1}, "unexpected keys x"),
        (["not", "an", "object"], "must be object"),
    ],
)
def test_problem(value: object, expected: str | None) -> None:
    found = problem(value, TICKET)
    assert found == expected if expected is None else (found is not None and expected in found)


def test_is_strict() -> None:
    assert is_strict(TICKET)
    assert not is_strict({**TICKET, "required": ["category"]})  # optional keys
    open_nested = {**TICKET, "properties": {**TICKET["properties"], "meta": {"type": "object"}}}
    open_nested["required"] = [*TICKET["required"], "meta"]
    assert not is_strict(open_nested)  # an open object inside
    assert is_strict({"type": "string", "enum": ["a"]})
