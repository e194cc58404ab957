"""The workflow YAML: pydantic models, safe loading, `${VAR}` interpolation, JSON Schema.

YAML is composed with SafeLoader and built by hand from the nodes, so only plain values exist
(any other tag is refused, never constructed) and every key path keeps its line. Every problem
is one `SpecError` naming the file, the key path and the line.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlparse

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from orchestrator.errors import SpecError, register_secret
from orchestrator.graphspec import GraphSpec, check_graph

Role = Literal["plan", "reason", "generate", "synthesize"]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
InstructionRole = Literal["system", "developer"]
Provider = Literal["openai", "local"]  # local: the embedded llama.cpp model
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

    model_config = _FROZEN
    model: str = Field(min_length=1, description="The model id sent to the endpoint.")
    provider: Provider = Field(default="openai", description="`local`: the embedded model.")
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
    timeout_s: float = Field(default=120.0, gt=0, description="Seconds before a call times out.")
    retries: int = Field(default=4, ge=0, description="Retries of a transient failure.")
    fallback: str | None = Field(default=None, description="Profile to use when this one fails.")
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
        if info.field_name == "base_url" and not str(value).startswith(("http://", "https://")):
            raise PydanticCustomError("url", "expected an http:// or https:// URL")
        return value

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
    _source: str | None = PrivateAttr(None)

    @property
    def source(self) -> str | None:
        """The file the spec was read from, if any."""
        return self._source

    def used_profiles(self) -> frozenset[str]:
        """Profiles a run can call: the roles', the graph nodes', and their fallbacks."""
        used = {getattr(self.roles, role) for role in ROLES}
        if self.graph is not None:
            used |= {n.profile for n in self.graph.nodes.values() if n.profile}
        frontier = set(used)
        while frontier:
            fallback = self.models[frontier.pop()].fallback
            if fallback and fallback not in used:
                used.add(fallback)
                frontier.add(fallback)
        return frozenset(used)

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
        if self.graph is not None and not errors:
            base = (info.context or {}).get("base_dir") if info else None
            errors = check_graph(self.graph, self.models, self.allow_python, base)
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        object.__setattr__(self, "roles", Roles(**resolved))
        return self


_TAG = "tag:yaml.org,2002:"
_CONSTRUCTED = {_TAG + t for t in ("null", "bool", "int", "float")}
_AS_TEXT = {_TAG + "str", _TAG + "timestamp"}  # a date stays the text that was written
_MAX_NODES = 50_000  # a workflow has hundreds; more means aliases multiplying without end
_VAR = re.compile(r"\$\$\{|\$\{(?:(?P<name>[A-Za-z_]\w*)(?::-(?P<default>[^}]*))?\})?", re.A)


class _Builder:
    """Plain data from a composed YAML node tree, recording the line of every key path."""

    def __init__(self, file: str | None, environ: Mapping[str, str]) -> None:
        self.file, self.environ, self.nodes = file, environ, 0
        self.lines: dict[KeyPath, int] = {}
        self.loader = yaml.SafeLoader("")

    def fail(self, message: str, node: yaml.Node | None, path: KeyPath) -> SpecError:
        line = node.start_mark.line + 1 if node else _line_for(path, self.lines)
        return SpecError(message, file=self.file, path=path, line=line)

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise self.fail("the YAML expands to too many values (aliases?)", node, path)
        if isinstance(node, yaml.ScalarNode) and node.tag in _AS_TEXT:
            return _VAR.sub(lambda match: self.substitute(match, path), node.value)
        if isinstance(node, yaml.ScalarNode) and node.tag in _CONSTRUCTED:
            return self.loader.yaml_constructors[node.tag](self.loader, node)
        if isinstance(node, yaml.SequenceNode) and node.tag == _TAG + "seq":
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*path, index)))
            return items
        if isinstance(node, yaml.MappingNode) and node.tag == _TAG + "map":
            return self.mapping(node, path)
        tag = node.tag.replace(_TAG, "!!")
        raise self.fail(f"unsupported YAML tag {tag!r}: only plain values", node, path)

    def substitute(self, match: re.Match[str], path: KeyPath) -> str:
        """`${VAR}`, `${VAR:-default}` (used when VAR is unset or empty), `$${` -> `${`."""
        name, default = match["name"], match["default"]
        if match.group(0) == "$${":
            return "${"
        if name is None:
            message = "malformed ${...}: write ${VAR} or ${VAR:-default}, or $${ for a literal ${"
            raise self.fail(message, None, path)
        found = self.environ.get(name)
        if default is not None and not found:
            return default
        if found is None:
            write = f"${{{name}:-default}}"
            raise self.fail(
                f"environment variable {name} is not set; set it or write {write}", None, path
            )
        return found

    def key(self, node: yaml.Node, path: KeyPath) -> str:
        if isinstance(node, yaml.ScalarNode) and node.tag in _AS_TEXT | _CONSTRUCTED:
            return str(node.value)  # as written: `yes:` is the key "yes", not True
        raise self.fail("a key must be plain text", node, path)

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        first_seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            key = self.key(key_node, path)
            if key in first_seen:
                message = f"duplicate key {key!r} (first at line {first_seen[key]})"
                raise self.fail(message, key_node, (*path, key))
            first_seen[key] = key_node.start_mark.line + 1
        flat = yaml.MappingNode(node.tag, list(node.value), node.start_mark, node.end_mark)
        self.loader.flatten_mapping(flat)  # `<<: *anchor` merges; the mapping's own keys win
        out: dict[str, Any] = {}
        for key_node, value_node in flat.value:
            key = self.key(key_node, path)
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key))
        return out


def _line_for(path: KeyPath, lines: Mapping[KeyPath, int]) -> int | None:
    """The line of `path`, else of its nearest ancestor (a missing key: its parent's line)."""
    return next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None)


_MESSAGES = {
    **dict.fromkeys(("float_parsing", "float_type"), "expected a number"),
    **dict.fromkeys(("int_parsing", "int_type", "int_from_float"), "expected a whole number"),
    **dict.fromkeys(("bool_parsing", "bool_type"), "expected true or false"),
    **dict.fromkeys(("dict_type", "model_type", "model_attributes_type"), "expected a mapping"),
    **dict.fromkeys(("too_short", "string_too_short"), "must not be empty"),
    "string_type": "expected a string",
    "literal_error": "expected {expected}",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


def _show(value: object) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_at(loc: KeyPath) -> list[str]:
    """The keys allowed at `loc`, e.g. ("models", "thinker", "price") -> Price's fields."""
    node: Any = WorkflowSpec
    for part in loc:
        if get_origin(node) is dict:
            node = get_args(node)[1]  # `part` is a key, e.g. a profile name
        else:
            field = getattr(node, "model_fields", {}).get(part)
            node = field.annotation if field else None
    return list(getattr(node, "model_fields", {}))


def _describe(error: Any) -> str:
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    if kind == "extra_forbidden":
        key, allowed = str(loc[-1]), _fields_at(loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            return f"unknown key {key!r}; did you mean {close[0]!r}?"
        return f"unknown key {key!r}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if loc[-1:] == ("[key]",):
        return f"invalid profile name {value!r}: use letters, digits, _ and -, first a letter or _"
    if loc == ("models",) and kind == "too_short":
        return "define at least one model profile"
    if kind in _MESSAGES:
        ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in error.get("ctx", {}).items()}
        message = _MESSAGES[kind].format(**ctx)
        hint = " (quote it to make it text)" if kind == "string_type" and value is not None else ""
        return f"{message}, got {_show(value)}{hint}"
    return str(error["msg"]).removeprefix("Value error, ")


def _spec_error(exc: ValidationError, file: str | None, lines: Mapping[KeyPath, int]) -> SpecError:
    found = []
    for error in exc.errors(include_url=False):
        path = tuple(p for p in error["loc"] if p != "[key]")
        found.append((path, _line_for(path, lines), _describe(error)))
    (path, line, message), rest = found[0], found[1:]
    others = [str(SpecError(m, file=file, path=p, line=n)) for p, n, m in rest]
    return SpecError("\n".join([message, *others]), file=file, path=path, line=line)


def parse_workflow(
    text: str, *, file: str | None = None, environ: Mapping[str, str] | None = None
) -> WorkflowSpec:
    """Parse workflow YAML into a `WorkflowSpec`; any problem is one `SpecError` with its line."""
    builder = _Builder(file, os.environ if environ is None else environ)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _TAG + "null"):
            raise SpecError("the workflow is empty; it needs at least name: and models:", file=file)
        if not isinstance(root, yaml.MappingNode):
            got = "a list" if isinstance(root, yaml.SequenceNode) else repr(root.value)[:60]
            message = f"the top level must be a mapping (name:, models:, ...), got {got}"
            raise builder.fail(message, root, ())
        builder.lines[()] = root.start_mark.line + 1
        data = builder.build(root, ())
    except RecursionError:
        raise SpecError("the YAML nests too deeply (an alias inside itself?)", file=file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = ", ".join(filter(None, [exc.context, exc.problem])) or "syntax error"
        line = mark.line + 1 if mark else None
        if line and "${" in "".join(text.splitlines()[line - 1 : line]):
            problem += "; quote values holding ${...} inside {...} or [...]"
        raise SpecError(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    try:
        base_dir = Path(file).resolve().parent if file else None
        spec = WorkflowSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise _spec_error(exc, file, builder.lines) from None
    spec._source = file
    return spec


def spec_from_dict(data: Mapping[str, Any], *, base_dir: Path | None = None) -> WorkflowSpec:
    """Validate workflow data built in Python (see `WorkflowBuilder`) as if it were YAML."""
    try:
        return WorkflowSpec.model_validate(dict(data), context={"base_dir": base_dir})
    except ValidationError as exc:
        raise _spec_error(exc, None, {}) from None


def _shipped_dirs() -> list[Traversable]:
    """Where shipped workflows live: the installed package, else a source checkout's graphs/."""
    dirs: list[Traversable] = []
    with contextlib.suppress(ImportError, TypeError, ValueError):  # not installed: no package
        dirs.append(resources.files("orchestrator._graphs"))
    checkout = Path(__file__).resolve().parent.parent / "graphs"
    if checkout.is_dir():
        dirs.append(checkout)
    return dirs


def load_workflow(path: str | os.PathLike[str]) -> WorkflowSpec:
    """Load a workflow file, or a shipped workflow by bare name (`quickstart`)."""
    text_path = str(path)
    source: Traversable = Path(path)
    is_bare = not re.search(r"[/\\.]", text_path)
    if is_bare and not Path(path).exists():
        shipped = [d / f"{text_path}.yaml" for d in _shipped_dirs()]
        source = next((f for f in shipped if f.is_file()), source)
    if isinstance(source, Path) and not source.exists():
        names = sorted(
            {f.name[:-5] for d in _shipped_dirs() for f in d.iterdir() if f.name.endswith(".yaml")}
        )
        hint = f" (shipped workflows: {', '.join(names)})" if is_bare and names else ""
        raise SpecError(f"no such workflow file: {text_path}{hint}")
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError("the workflow file is not UTF-8 text", file=str(source)) from None
    except OSError as exc:
        raise SpecError(f"cannot read the workflow: {exc.strerror}", file=str(source)) from None
    return parse_workflow(text, file=str(source) if is_bare else text_path)


def _allow_interpolation(node: Any) -> Any:
    """Let editors accept a `${VAR}` string wherever a number, boolean or fixed word goes."""
    if isinstance(node, list):
        return [_allow_interpolation(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _allow_interpolation(value) for key, value in node.items()}
    if node.get("type") in ("integer", "number", "boolean") or "enum" in node or "const" in node:
        meta = {k: node.pop(k) for k in ("title", "description", "default") if k in node}
        return {**meta, "anyOf": [node, {"type": "string", "pattern": r"\$\{"}]}
    if "patternProperties" in node:
        node.setdefault("additionalProperties", False)
    return node


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the workflow YAML, for editors and `orchestrator schema`."""
    schema = _allow_interpolation(WorkflowSpec.model_json_schema())
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
