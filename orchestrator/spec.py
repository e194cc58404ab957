"""The workflow's pydantic models: model profiles, roles, limits, and the spec that holds them.

Validation here covers the data wherever it came from: field values, and the references between
fields (roles and fallbacks name existing profiles, the `graph:` section checks out). Reading
YAML, `${VAR}` interpolation, located error messages and the JSON Schema are in
orchestrator.specload, which builds on these models.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from orchestrator.errors import register_secret
from orchestrator.graphspec import GraphSpec, check_graph
from orchestrator.policyspec import (
    BUILTIN_POLICIES,
    AnyPolicy,
    CascadePolicy,
    LabelPolicy,
    PolicySpec,
    check_policies,
)

Role = Literal["plan", "reason", "generate", "synthesize"]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
InstructionRole = Literal["system", "developer"]
Provider = Literal["openai", "local", "langchain"]  # local: the embedded llama.cpp model
ROLES: tuple[Role, ...] = ("plan", "reason", "generate", "synthesize")
_FROZEN = ConfigDict(extra="forbid", frozen=True)
ProfileName = Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")]
KeyPath = tuple[str | int, ...]


def _ref_error(loc: KeyPath, ref: str, names: list[str], message: str = "") -> InitErrorDetails:
    """A bad reference to a profile; by default "unknown profile", with a suggestion."""
    if not message:
        close = difflib.get_close_matches(ref, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"unknown profile {ref!r}{hint} (profiles: {', '.join(names)})"
    return InitErrorDetails(type=PydanticCustomError("reference", message), loc=loc, input=ref)


class Price(BaseModel):
    """What a profile's model costs, in USD per 1M tokens."""

    model_config = _FROZEN
    input: float = Field(default=0.0, ge=0, description="USD per 1M input (prompt) tokens.")
    cached_input: float | None = Field(default=None, ge=0, description="Default: `input`.")
    output: float = Field(default=0.0, ge=0, description="USD per 1M output tokens.")

    @pydantic.model_validator(mode="after")
    def _cached_defaults_to_input(self) -> Price:
        if self.cached_input is None:
            object.__setattr__(self, "cached_input", self.input)
        return self


class ModelProfile(BaseModel):
    """One model behind one endpoint, and how to talk to it."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True)
    model: str = Field(min_length=1, description="The model id sent to the endpoint.")
    provider: Provider = Field(
        default="openai",
        description="`local`: the embedded model; `langchain`: a LangChain chat model (`class`).",
    )
    chat_class: str | None = Field(
        default=None,
        alias="class",
        description="provider: langchain: the chat model's class, as package.module:ClassName.",
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="provider: langchain: keyword arguments for the class (key, max_tokens...).",
    )
    base_url: str | None = Field(default=None, description="Default: $OPENAI_BASE_URL or OpenAI.")
    api_key: SecretStr | None = Field(default=None, description="Default: $OPENAI_API_KEY.")
    reasoning: bool = Field(default=False, description="A reasoning model (o3, R1, ...).")
    reasoning_effort: Effort | None = Field(default=None, description="For reasoning models.")
    max_output_tokens: int | None = Field(default=None, gt=0, description="Output token cap.")
    max_output_tokens_ceiling: int | None = Field(
        default=None, gt=0, description="Cut-off reasoning doubles the cap up to this (default 4x)."
    )
    temperature: float | None = Field(default=None, ge=0, le=2, description="Not for reasoning.")
    instruction_role: InstructionRole | None = Field(
        default=None, description="Default: developer if reasoning on api.openai.com, else system."
    )
    think_tags: bool | None = Field(
        default=None, description="Ask for and parse <think>...</think>; default: local reasoning."
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Seconds one attempt may take, first byte to last (default: 120; 600 for "
        "reasoning profiles).",
    )
    retries: int = Field(default=4, ge=0, description="Retries of a transient failure.")
    fallback: str | None = Field(default=None, description="Profile to use when this one fails.")
    cache: bool = Field(
        default=False,
        description="Answer a request identical to one answered before from the response cache "
        "(ORCHESTRATOR_HOME/cache.sqlite), at no cost; `orchestrator run --cache` turns it on "
        "for every profile.",
    )
    price: Price = Field(default_factory=Price, description="USD per 1M tokens.")

    @pydantic.field_validator("base_url", "api_key", mode="before")
    @classmethod
    def _check_endpoint(cls, value: object, info: pydantic.ValidationInfo) -> object:
        if value is None or value == "":
            return None  # e.g. `${VAR:-}` with VAR unset: resolved later, as if omitted
        if info.field_name == "api_key":
            secret = value.get_secret_value() if isinstance(value, SecretStr) else value
            register_secret(str(secret))
        if info.data.get("provider") == "local":
            message = f"provider: local runs the embedded model; remove {info.field_name}"
            raise PydanticCustomError("local_endpoint", message)
        if info.data.get("provider") == "langchain":
            message = (
                f"provider: langchain takes {info.field_name} in kwargs, named as the class does"
            )
            raise PydanticCustomError("langchain_endpoint", message)
        if info.field_name == "base_url" and not str(value).startswith(("http://", "https://")):
            raise PydanticCustomError("url", "expected an http:// or https:// URL")
        return value

    @pydantic.field_validator("chat_class")
    @classmethod
    def _check_class(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("provider") != "langchain":
            raise PydanticCustomError("class_provider", "class is for provider: langchain")
        from orchestrator.models.langchain import chat_class  # imports LangChain packages

        try:
            chat_class(value)
        except ValueError as exc:
            raise PydanticCustomError("chat_class", "{reason}", {"reason": str(exc)}) from None
        return value

    @pydantic.model_validator(mode="after")
    def _langchain_needs_class(self) -> ModelProfile:
        if self.provider == "langchain" and self.chat_class is None:
            message = "provider: langchain needs class: package.module:ClassName"
            raise PydanticCustomError("langchain_class", message)
        if self.kwargs and self.provider != "langchain":
            raise PydanticCustomError("kwargs_provider", "kwargs is for provider: langchain")
        return self

    @pydantic.field_validator("temperature")
    @classmethod
    def _no_temperature(cls, value: float | None, info: pydantic.ValidationInfo) -> object:
        if value is not None and info.data.get("reasoning"):
            message = "reasoning models reject temperature; remove it"
            raise PydanticCustomError("reasoning_temperature", message)
        return value

    def effective_instruction_role(self, base_url: str) -> InstructionRole:
        """`instruction_role` if set; else `developer` for reasoning models on OpenAI's own API."""
        if self.instruction_role is not None:
            return self.instruction_role
        if self.reasoning and urlparse(base_url).hostname == "api.openai.com":
            return "developer"
        return "system"

    @property
    def effective_timeout_s(self) -> float:
        """`timeout_s` if set; else 600 s for reasoning models (they think for minutes), 120 s."""
        if self.timeout_s is not None:
            return self.timeout_s
        return 600.0 if self.reasoning else 120.0

    @property
    def effective_think_tags(self) -> bool:
        """`think_tags` if set; else true for local reasoning profiles."""
        if self.think_tags is not None:
            return self.think_tags
        return self.provider == "local" and self.reasoning


class Roles(BaseModel):
    """Which profile plays each role. After validation every role names an existing profile."""

    model_config = _FROZEN
    plan: str | None = Field(default=None, description="Splits the task into subproblems.")
    reason: str | None = Field(default=None, description="Solves subproblems routed to reasoning.")
    generate: str | None = Field(default=None, description="Solves the other subproblems.")
    synthesize: str | None = Field(default=None, description="Writes the final answer.")


class Limits(BaseModel):
    """Bounds on one run."""

    model_config = _FROZEN
    concurrency: int = Field(default=8, ge=1, description="Model calls in flight at once.")
    max_subproblems: int = Field(default=16, ge=1, le=64, description="Most subproblems in a plan.")
    budget_usd: float | None = Field(default=None, gt=0, description="Spending cap, in USD.")
    on_budget: Literal["degrade", "stop"] = Field(
        default="degrade", description="At the cap: `degrade` to cheaper calls, or `stop` the run."
    )
    on_plan_failure: Literal["fallback", "fail"] = Field(
        default="fallback", description="No valid plan: `fallback` to one subproblem, or `fail`."
    )


class WorkflowSpec(BaseModel):
    """An orchestrator workflow: model profiles, the role each plays, and the run's limits."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="orchestrator workflow")
    name: str = Field(min_length=1, description="The workflow's name.")
    description: str = Field(default="", description="What the workflow is for.")
    models: dict[ProfileName, ModelProfile] = Field(
        min_length=1, description="Profile name -> model profile."
    )
    roles: Roles = Field(default_factory=Roles, description="Role -> profile name.")
    limits: Limits = Field(default_factory=Limits, description="Bounds on one run.")
    graph: GraphSpec | None = Field(
        default=None, description="A custom graph; default: plan -> solve -> synthesize."
    )
    allow_python: list[str] = Field(
        default_factory=list, description="module:function names python nodes may call."
    )
    policy: str = Field(
        default="label",
        description="How each step's compute is allocated: label, cascade, self_consistency, "
        "all-generate, all-reason, or a name under `policies`.",
    )
    policies: dict[ProfileName, PolicySpec] = Field(
        default_factory=dict, description="Policy name -> a policy with its settings."
    )
    _source: str | None = PrivateAttr(None)
    _base_dir: Path | None = PrivateAttr(None)

    @property
    def source(self) -> str | None:
        """The file the spec was read from, if any."""
        return self._source

    @property
    def base_dir(self) -> Path | None:
        """Where the graph's prompt files are found: the workflow file's directory, or the
        `base_dir` given to `WorkflowBuilder.build` (None: the current directory)."""
        return self._base_dir

    def used_profiles(self, policy: str | None = None) -> frozenset[str]:
        """Profiles a run can call, and their fallbacks: every role's in the default pipeline;
        in a custom graph, those of the nodes that call a model (a plan node also solves);
        and those the policies in play call (`policy` overrides the workflow's for every step):
        a policy other than `label` may answer with either role, and a judge on its profile."""
        roles = self.roles
        used: set[str] = set()
        if self.graph is None:
            used = {getattr(roles, role) for role in ROLES}
        for node in self.graph.nodes.values() if self.graph else ():
            if node.calls_model:
                used.add(node.profile or getattr(roles, node.role))
            if node.type == "plan":
                used |= {str(roles.reason), str(roles.generate)}
        for spec in map(self.policy_named, self._policies_in_play(policy)):
            if not isinstance(spec, LabelPolicy):
                used |= {str(roles.reason), str(roles.generate)}
            if isinstance(spec, CascadePolicy) and spec.judge:
                used.add(spec.judge)
        frontier = set(used)
        while frontier:
            fallback = self.models[frontier.pop()].fallback
            if fallback and fallback not in used:
                used.add(fallback)
                frontier.add(fallback)
        return frozenset(used)

    def _policies_in_play(self, override: str | None) -> set[str]:
        if override is not None:
            return {override}
        nodes = self.graph.nodes.values() if self.graph else ()
        return {self.policy, *(n.policy for n in nodes if n.policy)}

    def policy_named(self, name: str) -> AnyPolicy:
        """The policy `name` stands for: one defined under `policies`, else a built-in."""
        return self.policies.get(name) or BUILTIN_POLICIES[name]

    def profile_for(self, role: Role) -> tuple[str, ModelProfile]:
        """The (name, profile) that plays `role`."""
        name = getattr(self.roles, role)
        return name, self.models[name]

    @pydantic.model_validator(mode="after")
    def _check_references(self, info: pydantic.ValidationInfo) -> WorkflowSpec:
        names = list(self.models)
        errors: list[InitErrorDetails] = []
        for name, profile in self.models.items():
            ref, loc = profile.fallback, ("models", name, "fallback")
            if ref == name:
                errors.append(_ref_error(loc, ref, names, "a profile cannot fall back to itself"))
            elif ref is not None and ref not in self.models:
                errors.append(_ref_error(loc, ref, names))
        for name in names if not errors else []:
            chain, ref = [name], self.models[name].fallback
            while ref is not None and ref not in chain:
                chain, ref = [*chain, ref], self.models[ref].fallback
            if ref is not None:
                loop = "fallback loop: " + " -> ".join([*chain, ref])
                errors.append(_ref_error(("models", name, "fallback"), ref, names, loop))
                break
        resolved: dict[str, str] = {}
        for role in ROLES:
            ref = getattr(self.roles, role)
            if ref is None:  # the first profile whose `reasoning` suits the role, else the first
                thinks = role in ("plan", "reason")
                suits = [n for n in names if self.models[n].reasoning == thinks]
                resolved[role] = (suits or names)[0]
            elif ref in self.models:
                resolved[role] = ref
            else:
                errors.append(_ref_error(("roles", role), ref, names))
        base = (info.context or {}).get("base_dir") if info else None
        if self.graph is not None and not errors:
            errors = check_graph(self.graph, self.models, self.allow_python, base)
        errors += check_policies(self, base)
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        object.__setattr__(self, "roles", Roles(**resolved))
        return self
