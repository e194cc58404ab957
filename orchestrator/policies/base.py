"""What a policy is: given one step, decide which role answers, how many samples, which check,
and when to escalate — calling models only through the step's `respond`, so budgets, the
ledger, retries and the cache apply to every sample, check and escalation alike.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from ..errors import BudgetExceededError
from ..graph.context import RunContext, role_route
from ..models.base import Message, ModelResponse, RequestParams
from ..steps import CheckResult, Kind, Route, Step

Respond = Callable[[Kind, Sequence[Message], RequestParams], Awaitable[ModelResponse]]
"""Ask `role` the step's question: the step's own messages for that role, then `extra`."""


@dataclass(frozen=True)
class Ask:
    """One step put to a policy.

    `label` is the role the step's label asks for (the planner's kind, or a node's type);
    `text` is what the step is about (its task; for a graph node, the run's task), for routers
    and judges; `params` are the step's own request parameters (purpose, step, format).
    """

    step: Step
    label: Kind
    text: str
    params: RequestParams
    respond: Respond


@dataclass(frozen=True)
class Routed:
    """A policy's answer to a step, and the record of how it was reached."""

    response: ModelResponse
    route: Route


@dataclass(frozen=True)
class Said:
    """One answer a role gave: the response, and the role that gave it (which is not the role
    asked for when the budget degraded it), with why."""

    response: ModelResponse
    role: Kind
    why: str


class Policy(abc.ABC):
    """Allocates one step's compute. `name` is how the workflow named it (for the route)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    async def answer(self, ctx: RunContext, ask: Ask) -> Routed:
        """Answer the step; every model call goes through `ask.respond`."""

    async def say(
        self,
        ctx: RunContext,
        ask: Ask,
        role: Kind,
        why: str,
        extra: Sequence[Message] = (),
        *,
        degrade: bool = True,
        **overrides: object,
    ) -> Said:
        """Ask `role`; with `limits.on_budget: degrade` (and `degrade`), reasoning that no
        longer fits the budget is asked of the generative role instead (and so is all later
        reasoning). `overrides` replace request parameters (temperature, sample, effort)."""
        params = replace(ask.params, **overrides)  # type: ignore[arg-type]
        degrade = degrade and role == "reason" and ctx.spec.limits.on_budget == "degrade"
        if degrade and ctx.budget.degraded:
            return await self._degraded(ask, extra, params)
        try:
            return Said(await ask.respond(role, extra, params), role, why)
        except BudgetExceededError:
            if not degrade:
                raise
            ctx.budget.degraded = True
            return await self._degraded(ask, extra, params)

    async def _degraded(self, ask: Ask, extra: Sequence[Message], params: RequestParams) -> Said:
        why = "budget: degraded from reason to generate"
        return Said(await ask.respond("generate", extra, params), "generate", why)

    def route(
        self,
        ctx: RunContext,
        said: Said,
        *,
        samples: int = 1,
        checks: Sequence[CheckResult] = (),
        escalations: int = 0,
    ) -> Route:
        """The route record of an answer `said` gave (the profile that really answered: a node
        may name its own)."""
        base = role_route(ctx.spec, said.role, said.why)
        call = said.response.call
        return replace(
            base,
            profile=call.profile if call else base.profile,
            model=call.model if call else base.model,
            policy=self.name,
            samples=samples,
            checks=tuple(checks),
            escalations=escalations,
        )
