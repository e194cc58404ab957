"""Asking a model for a structured answer: JSON that meets a schema, re-asked (with what was
wrong) until it does. Endpoints differ in how well they enforce `response_format`, so every
structured answer is checked here as well."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from .. import jsoncheck
from ..errors import StructuredOutputError
from ..models.base import ChatModel, Message, ModelResponse, RequestParams, ResponseFormat

STRUCTURED_RETRIES = 2
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"passed": {"type": "boolean"}, "feedback": {"type": "string"}},
    "required": ["passed", "feedback"],
    "additionalProperties": False,
}


def response_format(name: str, schema: dict[str, Any]) -> ResponseFormat:
    """`response_format` for `schema`; strict only where OpenAI's strict mode accepts it."""
    return ResponseFormat(name.replace("-", "_"), schema, jsoncheck.is_strict(schema))


async def ask_structured(
    model: ChatModel,
    messages: list[Message],
    params: RequestParams,
    schema: dict[str, Any],
    what: str,
) -> tuple[Any, ModelResponse]:
    """The parsed value and the response that carried it; `what` names the asker in errors.

    `params.response_format` is sent if set, else one is made from `schema`.
    """
    if params.response_format is None:
        params = replace(params, response_format=response_format(what, schema))
    found = ""
    for attempt in range(STRUCTURED_RETRIES + 1):
        response = await model.request(messages, params)
        try:
            value = json.loads(response.content)
            problem = jsoncheck.problem(value, schema)
        except json.JSONDecodeError as exc:
            problem = f"the answer is not JSON ({exc.msg})"
        if problem is None:
            return value, response
        found = problem
        if attempt < STRUCTURED_RETRIES:
            again = f"That answer is not valid: {found}. Answer again, as JSON matching the schema."
            messages = [*messages, Message("assistant", response.content), Message("user", again)]
    raise StructuredOutputError(
        f"{what}: the structured answer never validated: {found}",
        profile=model.profile,
        model=model.model,
    )
