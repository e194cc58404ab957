"""Models for testing workflows without an endpoint: `TestModel` (scripted) and `FunctionModel`.

Plug them in by profile name; everything else (planning, scheduling, budgets, the ledger, the
run log, resume) runs for real:

    from orchestrator import Workflow
    from orchestrator.testing import TestModel

    plan = [{"id": "s1", "kind": "generate", "task": "say hi", "depends_on": []}]
    wf = Workflow(spec, models={"thinker": TestModel(plan=plan), "writer": TestModel()})
    result = wf.run("a task")
    assert result.status == "completed"

Token usage is counted as one token per four characters (at least one), so costs follow the
profile's prices deterministically. For the HTTP wire itself, test against a real server.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .models.base import ChatModel, Message, ModelResponse, RequestParams, TokenUsage

__all__ = ["FunctionModel", "TestModel", "smallest_valid"]

Scripted = str | ModelResponse | BaseException
ModelFunction = Callable[
    [list[Message], RequestParams], "str | ModelResponse | Awaitable[str | ModelResponse]"
]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def smallest_valid(schema: Mapping[str, Any]) -> Any:
    """A small value that satisfies a JSON Schema of the kinds workflows use."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return smallest_valid(schema["anyOf"][0])
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {key: smallest_valid(props.get(key, {})) for key in schema.get("required", props)}
    if kind == "array":
        return [smallest_valid(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    return {"string": "a", "integer": 1, "number": 1, "boolean": True, "null": None}.get(
        str(kind), "a"
    )


async def _finish(
    response: ModelResponse, messages: list[Message], params: RequestParams
) -> ModelResponse:
    """Count usage if the response has none, and stream the answer if asked to."""
    if response.usage == TokenUsage():
        prompt = sum(_tokens(m.content) for m in messages)
        response = replace(response, usage=TokenUsage(prompt, 0, _tokens(response.content)))
    if params.on_token is not None:
        for piece in re.findall(r"\S+\s*|\s+", response.content):
            params.on_token(piece)
    return response


class TestModel(ChatModel):
    """Answers from a script, then with defaults; records every request in `requests`.

    `responses` are used in order, one per request: a string (the answer), a `ModelResponse`
    (to set finish_reason, trace or usage), or an exception to raise. Once they run out: a plan
    request gets `plan` (plan-format dicts) if given; a request with a `response_format` gets the
    smallest JSON valid against its schema; anything else gets `default`, or
    `[model] answer: <the start of the last user message>`.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        responses: Iterable[Scripted] = (),
        *,
        plan: Sequence[Mapping[str, Any]] | None = None,
        default: str | None = None,
        model: str = "test",
    ) -> None:
        self.model = model
        self.script = list(responses)
        self.plan = [dict(item) for item in plan] if plan is not None else None
        self.default = default
        self.requests: list[tuple[list[Message], RequestParams]] = []

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        self.requests.append((list(messages), params))
        if self.script:
            scripted = self.script.pop(0)
            if isinstance(scripted, BaseException):
                raise scripted
            response = scripted if isinstance(scripted, ModelResponse) else ModelResponse(scripted)
        else:
            response = ModelResponse(self._default(messages, params))
        return await _finish(response, messages, params)

    def _default(self, messages: list[Message], params: RequestParams) -> str:
        if params.purpose == "plan" and self.plan is not None:
            return json.dumps({"subproblems": self.plan})
        if params.response_format is not None:
            return json.dumps(smallest_valid(params.response_format.schema))
        if self.default is not None:
            return self.default
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        return f"[{self.model}] answer: {last[:60]}"


class FunctionModel(ChatModel):
    """Answers with `function(messages, params)`, sync or async, returning the answer text or a
    `ModelResponse`. Use it to route answers by content, step or purpose, to fail on cue, or to
    hold a call until the test releases it (await an `asyncio.Event` inside)."""

    def __init__(self, function: ModelFunction, *, model: str = "function") -> None:
        self.function = function
        self.model = model

    async def request(self, messages: list[Message], params: RequestParams) -> ModelResponse:
        result = self.function(messages, params)
        if inspect.isawaitable(result):
            result = await result
        response = result if isinstance(result, ModelResponse) else ModelResponse(str(result))
        return await _finish(response, messages, params)
