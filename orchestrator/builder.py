"""`WorkflowBuilder`: the workflow YAML, written in Python. Each method mirrors one YAML key, and
`build()` runs the same validation, so a builder and a file describe the same workflow.

    spec = (
        WorkflowBuilder("math")
        .model("thinker", "o4-mini", reasoning=True)
        .model("writer", "gpt-4o-mini")
        .node("answer", "generate", prompt="solve.md")
        .node("check", "verify", target="answer", criteria="The answer is right.")
        .node("retry", "reason", prompt="retry.md", output="answer")
        .edge("answer", "check")
        .edge("check", "retry", when="not check.passed")
        .edge("check", "END")
        .edge("retry", "check")
        .graph(output="answer")
        .build()
    )
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .spec import WorkflowSpec
from .specload import spec_from_dict


class WorkflowBuilder:
    def __init__(self, name: str, description: str = "") -> None:
        self._data: dict[str, Any] = {"name": name, "models": {}}
        if description:
            self._data["description"] = description

    def model(self, name: str, model: str, **profile: Any) -> WorkflowBuilder:
        """`models.<name>`: `model` plus any profile key (reasoning=True, price={...}, ...)."""
        self._data["models"][name] = {"model": model, **profile}
        return self

    def roles(self, **roles: str) -> WorkflowBuilder:
        """`roles`: plan=, reason=, generate=, synthesize= profile names."""
        self._data.setdefault("roles", {}).update(roles)
        return self

    def limits(self, **limits: Any) -> WorkflowBuilder:
        """`limits`: concurrency=, max_subproblems=, budget_usd=, on_budget=, ..."""
        self._data.setdefault("limits", {}).update(limits)
        return self

    def policy(self, name: str, **settings: Any) -> WorkflowBuilder:
        """`policy`: the workflow's policy. With settings, `name` is also defined under
        `policies` (e.g. `.policy("careful", type="cascade", check="agree", samples=5)`)."""
        self._data["policy"] = name
        if settings:
            self._data.setdefault("policies", {})[name] = settings
        return self

    def allow_python(self, *functions: str) -> WorkflowBuilder:
        """`allow_python`: module:function names python nodes may import and call."""
        self._data.setdefault("allow_python", []).extend(functions)
        return self

    def graph(self, **options: Any) -> WorkflowBuilder:
        """`graph`: output=, entry=, max_iterations=, state={...}."""
        self._graph().update(options)
        return self

    def node(self, name: str, type: str, **fields: Any) -> WorkflowBuilder:
        """`graph.nodes.<name>`: a node of `type`; `schema=` is the node's JSON Schema."""
        self._graph().setdefault("nodes", {})[name] = {"type": type, **fields}
        return self

    def edge(self, source: str, to: str, *, when: str | None = None) -> WorkflowBuilder:
        """`graph.edges`: from `source` to `to` (a node or "END"), optionally `when`."""
        edge: dict[str, Any] = {"from": source, "to": to}
        if when is not None:
            edge["when"] = when
        self._graph().setdefault("edges", []).append(edge)
        return self

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def to_yaml(self) -> str:
        """The same workflow as YAML, to save as a file."""
        return yaml.safe_dump(self._data, sort_keys=False, allow_unicode=True)

    def build(self, *, base_dir: str | Path | None = None) -> WorkflowSpec:
        """Validate like a YAML file; prompt paths are relative to `base_dir` (default: cwd)."""
        return spec_from_dict(self.to_dict(), base_dir=Path(base_dir or Path.cwd()).resolve())

    def _graph(self) -> dict[str, Any]:
        graph: dict[str, Any] = self._data.setdefault("graph", {})
        return graph
