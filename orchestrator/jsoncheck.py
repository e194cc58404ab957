"""Checking a model's structured answer against the JSON Schema a workflow gave for it.

Endpoints differ: OpenAI enforces a strict schema, others a best-effort grammar, some nothing.
So every structured answer is checked here too (the keywords workflows use: type, enum,
const, required, properties, additionalProperties, items, min/maxItems, anyOf), and re-asked
for with the problem when it fails. `is_strict` tells whether a schema may be sent with
OpenAI's `strict: true`, which refuses schemas that leave properties optional or open.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def problem(value: Any, schema: dict[str, Any], where: str = "the answer") -> str | None:
    """The first way `value` breaks `schema`, in words, or None if it fits."""
    if "anyOf" in schema:
        if all(problem(value, option, where) for option in schema["anyOf"]):
            return f"{where} matches none of the allowed shapes"
        return None
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        ok = any(
            isinstance(value, _TYPES.get(n, object))
            and not (n in ("integer", "number") and isinstance(value, bool))
            for n in names
        )
        if not ok:
            return f"{where} must be {' or '.join(names)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} must be one of {', '.join(map(repr, schema['enum']))}, not {value!r}"
    if "const" in schema and value != schema["const"]:
        return f"{where} must be {schema['const']!r}"
    if isinstance(value, dict):
        missing = [k for k in schema.get("required", []) if k not in value]
        if missing:
            return f"{where} is missing {', '.join(missing)}"
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(properties))
            if extra:
                return f"{where} has unexpected keys {', '.join(extra)}"
        for key, sub in properties.items():
            if key in value and (found := problem(value[key], sub, f"{where}.{key}")):
                return found
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{where} needs at least {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{where} allows at most {schema['maxItems']} items"
        for i, item in enumerate(value):
            if "items" in schema and (found := problem(item, schema["items"], f"{where}[{i}]")):
                return found
    return None


def is_strict(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts the schema: every object closed, all keys required."""
    if isinstance(schema, list):
        return all(is_strict(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required", [])) != set(properties):
            return False
    return all(is_strict(v) for k, v in schema.items() if k not in ("enum", "const", "default"))
