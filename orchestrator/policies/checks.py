"""The checks a cascade makes on a cheap answer: `judge` (a model), `python` (a function) and
`schema` (JSON Schema). `agree` draws samples instead, so it lives with sampling."""

from __future__ import annotations

import abc
import inspect
import json
from collections.abc import Callable
from typing import Any

from .. import jsoncheck, prompts
from ..graph.context import RunContext
from ..graph.structured import VERDICT_SCHEMA, ask_structured
from ..models.base import RequestParams
from ..policyspec import CascadePolicy
from ..steps import CheckResult
from .base import Ask, Said


class Check(abc.ABC):
    name: str

    @abc.abstractmethod
    async def check(self, ctx: RunContext, ask: Ask, said: Said) -> CheckResult:
        """Whether `said`'s answer to `ask` passes, and what is wrong if not."""


class Judge(Check):
    """A model judges the answer against criteria (AutoMix-style self-verification when the
    judge is the cheap profile itself). Its call is billed to the step like any other."""

    name = "judge"

    def __init__(self, profile: str, criteria: str) -> None:
        self.profile = profile
        self.criteria = criteria

    async def check(self, ctx: RunContext, ask: Ask, said: Said) -> CheckResult:
        messages = prompts.load("judge").render(
            task=ask.text, criteria=self.criteria, answer=said.response.content
        )
        params = RequestParams(purpose=ask.params.purpose, step=ask.params.step)
        verdict, _ = await ask_structured(
            ctx.models[self.profile], messages, params, VERDICT_SCHEMA, "judge"
        )
        return CheckResult("judge", bool(verdict["passed"]), str(verdict["feedback"]))


class PythonCheck(Check):
    """A function decides: `fn(answer, task)` returns a bool, `(bool, feedback)` or
    `{"passed": bool, "feedback": str}` (sync or async)."""

    name = "python"

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    async def check(self, ctx: RunContext, ask: Ask, said: Said) -> CheckResult:
        outcome = self.function(said.response.content, ask.text)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if isinstance(outcome, dict):
            return CheckResult(
                "python", bool(outcome.get("passed")), str(outcome.get("feedback", ""))
            )
        if isinstance(outcome, tuple):
            return CheckResult("python", bool(outcome[0]), str(outcome[1]))
        return CheckResult(
            "python", bool(outcome), "" if outcome else "the check function failed it"
        )


class SchemaCheck(Check):
    """The answer must be JSON that meets a schema."""

    name = "schema"

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    async def check(self, ctx: RunContext, ask: Ask, said: Said) -> CheckResult:
        try:
            problem = jsoncheck.problem(json.loads(said.response.content), self.schema)
        except json.JSONDecodeError as exc:
            problem = f"the answer is not JSON ({exc.msg})"
        return CheckResult("schema", problem is None, problem or "")


def make_check(spec: CascadePolicy, ctx: RunContext) -> Check | None:
    """The check a cascade spec names (None for `agree`, which samples instead)."""
    if spec.check == "judge":
        return Judge(spec.judge or ctx.spec.profile_for("generate")[0], spec.criteria)
    if spec.check == "python":
        return PythonCheck(ctx.function(spec.function or "", "check"))
    if spec.check == "schema":
        return SchemaCheck(spec.json_schema or {})
    return None
