"""The `policy:` and `policies:` keys: how each step's compute is allocated.

    policy: cascade                      # workflow-wide: a built-in name, or one defined below
    policies:
      careful: {type: cascade, check: agree, samples: 5, threshold: 0.8, extract: last_number}
    graph:
      nodes:
        answer: {type: generate, prompt: solve.md, policy: careful}   # per node

Built-in names: `label` (the planner's label, or the node's type, picks the role: the default),
`cascade`, `self_consistency`, `all-generate`, `all-reason`. `router` needs a trained file, so
it is always defined under `policies:` (`{type: router, file: router.json}`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    from .spec import WorkflowSpec

_FROZEN = ConfigDict(extra="forbid", frozen=True)
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
_EXTRACT = re.compile(r"^(text|last_number|choice|regex:.+|json:[A-Za-z0-9_.\-\[\]]+)$", re.S)
EXTRACT_HELP = "text, last_number, choice, regex:PATTERN (group 1 if any) or json:field.path"


def _check_extract(value: str) -> str:
    if not _EXTRACT.match(value):
        raise ValueError(f"extract must be one of {EXTRACT_HELP}")
    if value.startswith("regex:"):
        try:
            re.compile(value[6:])
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
    return value


class LabelPolicy(BaseModel):
    """The planner's label (a custom graph: the node's type) picks the role."""

    model_config = _FROZEN
    type: Literal["label"] = "label"


class FixedPolicy(BaseModel):
    """Every step on one role, whatever its label (the evaluation baselines)."""

    model_config = _FROZEN
    type: Literal["fixed"] = "fixed"
    role: Literal["reason", "generate"] = Field(description="The role that answers every step.")


class CascadePolicy(BaseModel):
    """The cheap role answers first; a check decides; a failed check escalates to reasoning."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    type: Literal["cascade"] = "cascade"
    check: Literal["judge", "agree", "python", "schema"] = Field(
        default="judge", description="How the cheap answer is checked."
    )
    criteria: str = Field(
        default="The answer is correct, complete and answers what was asked.",
        description="judge: what a good answer meets.",
    )
    judge: str | None = Field(
        default=None, description="judge: the profile that judges (default: roles.generate)."
    )
    samples: int = Field(default=3, ge=2, le=16, description="agree: cheap samples drawn.")
    threshold: float = Field(
        default=0.6, gt=0, le=1, description="agree: the share that must agree to accept."
    )
    extract: str = Field(default="text", description=f"agree: the answer compared: {EXTRACT_HELP}.")
    function: str | None = Field(
        default=None, description="python: a registered function, or module:function allowed."
    )
    json_schema: dict[str, Any] | None = Field(
        default=None, alias="schema", description="schema: the JSON Schema the answer must meet."
    )
    effort_ladder: list[Effort] = Field(
        default_factory=list, description="reasoning_effort of each successive escalation."
    )
    max_escalations: int = Field(default=1, ge=1, le=5, description="Most escalations per step.")
    temperature: float = Field(
        default=0.7, ge=0, le=2, description="agree: sampling temperature (generative profiles)."
    )

    @field_validator("extract")
    @classmethod
    def _extract(cls, value: str) -> str:
        return _check_extract(value)


class SelfConsistencyPolicy(BaseModel):
    """k samples on a role, then a majority vote over an extracted answer."""

    model_config = _FROZEN
    type: Literal["self_consistency"] = "self_consistency"
    role: Literal["reason", "generate"] = Field(default="generate", description="Who samples.")
    samples: int = Field(default=5, ge=2, le=32, description="Samples drawn.")
    extract: str = Field(default="last_number", description=f"The answer voted on: {EXTRACT_HELP}.")
    temperature: float = Field(
        default=0.7, ge=0, le=2, description="Sampling temperature (generative profiles)."
    )

    @field_validator("extract")
    @classmethod
    def _extract(cls, value: str) -> str:
        return _check_extract(value)


class RouterPolicy(BaseModel):
    """A learned router: predicts from a step's text whether the cheap role suffices."""

    model_config = _FROZEN
    type: Literal["router"] = "router"
    file: str = Field(description="The router file `orchestrator eval --train-router` wrote.")
    reason_share: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Target share of steps sent to reasoning (default: the file's calibration).",
    )


AnyPolicy = LabelPolicy | FixedPolicy | CascadePolicy | SelfConsistencyPolicy | RouterPolicy
PolicySpec = Annotated[
    LabelPolicy | FixedPolicy | CascadePolicy | SelfConsistencyPolicy | RouterPolicy,
    Field(discriminator="type"),
]

BUILTIN_POLICIES: dict[str, AnyPolicy] = {
    "label": LabelPolicy(),
    "cascade": CascadePolicy(),
    "self_consistency": SelfConsistencyPolicy(),
    "all-generate": FixedPolicy(role="generate"),
    "all-reason": FixedPolicy(role="reason"),
}


def check_policies(spec: WorkflowSpec, base_dir: Path | None) -> list[InitErrorDetails]:
    """Every policy named exists, and each policy's references hold, as located errors."""
    return [
        InitErrorDetails(type=PydanticCustomError("policy", message), loc=loc, input=None)
        for loc, message in _policy_problems(spec, base_dir)
    ]


def _policy_problems(
    spec: WorkflowSpec, base_dir: Path | None
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    known = sorted({*BUILTIN_POLICIES, *spec.policies})
    named: list[tuple[tuple[str | int, ...], str]] = [(("policy",), spec.policy)]
    if spec.graph is not None:
        named += [
            (("graph", "nodes", name, "policy"), node.policy)
            for name, node in spec.graph.nodes.items()
            if node.policy is not None
        ]
    for where, name in named:
        if name not in known:
            hint = (
                " (a router is defined under policies, with its file)" if name == "router" else ""
            )
            yield where, f"unknown policy {name!r}{hint}; known: {', '.join(known)}"
    for name, policy in spec.policies.items():
        loc: tuple[str | int, ...] = ("policies", name)
        # A router's file is read when a run starts: it is trained after the workflow is
        # written (`orchestrator eval ... --train-router FILE`).
        if isinstance(policy, CascadePolicy):
            yield from _cascade_problems(spec, loc, policy)


def _cascade_problems(
    spec: WorkflowSpec, loc: tuple[str | int, ...], policy: CascadePolicy
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if policy.judge is not None and policy.judge not in spec.models:
        yield (*loc, "judge"), f"unknown profile {policy.judge!r}"
    if policy.check == "python":
        if policy.function is None:
            yield (
                (*loc, "function"),
                "a python check needs function: (a registered name or module:function)",
            )
        elif ":" in policy.function and policy.function not in spec.allow_python:
            yield (*loc, "function"), f"{policy.function} runs code: list it under allow_python"
    if policy.check == "schema" and policy.json_schema is None:
        yield (*loc, "schema"), "a schema check needs schema: (the JSON Schema answers must meet)"
