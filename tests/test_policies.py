"""Allocation policies on in-process test models: who answers, samples, checks, escalations,
budgets, and the route each step records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import (
    Message,
    RequestParams,
    StepResult,
    Workflow,
    WorkflowBuilder,
    WorkflowSpec,
    parse_workflow,
)
from orchestrator.specload import spec_from_dict
from orchestrator.testing import FunctionModel, TestModel

MODELS = """
models:
  thinker: {model: think-model, reasoning: true, price: {input: 2, output: 8}}
  writer: {model: write-model, price: {input: 0.1, output: 0.4}}
"""


def one_step_graph(base: Path, policy: str, **policies: dict[str, Any]) -> WorkflowSpec:
    """A graph with one generate node `answer` under `policy`; the writer and thinker are
    filled in by each test."""
    (base / "q.md").write_text("Answer.\n=== user ===\n{{ task }}\n")
    builder = (
        WorkflowBuilder("one")
        .model("thinker", "think-model", reasoning=True, price={"input": 2, "output": 8})
        .model("writer", "write-model", price={"input": 0.1, "output": 0.4})
        .node("answer", "generate", prompt="q.md", policy=policy)
    )
    data = builder.to_dict()
    data["policies"] = policies
    return spec_from_dict(data, base_dir=base)


def run(spec: Any, tmp_path: Path, **models: Any) -> Any:
    return Workflow(spec, models=models, home=tmp_path / "home").run("What is 6 * 7?")


def verdicts(*passed: bool, answer: str = "41") -> FunctionModel:
    """The writer: answers `answer`; judges in turn with `passed` (feedback names the verdict)."""
    answers = iter(passed)

    def write(messages: list[Message], params: RequestParams) -> str:
        if params.response_format is not None:
            ok = next(answers)
            return json.dumps({"passed": ok, "feedback": f"verdict {ok}: 6*7 is not 41"})
        return answer

    return FunctionModel(write)


def the_step(result: Any) -> StepResult:
    assert result.status == "completed", result.error
    [step] = result.subproblems
    return step


def test_cascade_keeps_a_cheap_answer_that_passes_its_check(tmp_path: Path) -> None:
    thinker = TestModel()
    spec = one_step_graph(tmp_path, "cascade")
    result = run(spec, tmp_path, writer=verdicts(True), thinker=thinker)
    step = the_step(result)
    assert step.output == "41" and thinker.requests == []
    route = step.route
    assert (route.policy, route.role, route.profile, route.escalations) == (
        "cascade", "generate", "writer", 0,
    )  # fmt: skip
    assert [(c.check, c.passed) for c in route.checks] == [("judge", True)]
    # The judge's call is billed to the step: two writer calls, both in the step's cost.
    assert result.usage.by_profile["writer"].calls == 2
    assert step.cost_usd == pytest.approx(result.usage.cost_usd)


def test_cascade_escalates_a_failed_check_with_the_answer_and_feedback(tmp_path: Path) -> None:
    thinker = TestModel(["42"])
    spec = one_step_graph(tmp_path, "cascade")
    result = run(spec, tmp_path, writer=verdicts(False), thinker=thinker)
    step = the_step(result)
    assert step.output == "42"
    [(messages, params)] = thinker.requests
    escalation = messages[-1].content
    assert "Its answer:\n41" in escalation and "verdict False: 6*7 is not 41" in escalation
    assert params.step == "answer"
    route = step.route
    assert (route.role, route.profile, route.escalations) == ("reason", "thinker", 1)
    assert route.why.startswith("check failed: escalated")
    assert result.usage.by_profile["writer"].calls == 2  # the cheap answer and its judge


def test_effort_ladder_and_max_escalations(tmp_path: Path) -> None:
    thinker = TestModel(["43", "42"])
    spec = one_step_graph(
        tmp_path, "careful",
        careful={"type": "cascade", "effort_ladder": ["low", "high"], "max_escalations": 2},
    )  # fmt: skip
    step = the_step(run(spec, tmp_path, writer=verdicts(False, False), thinker=thinker))
    assert [p.reasoning_effort for _, p in thinker.requests] == ["low", "high"]
    assert step.output == "42" and step.route.escalations == 2
    assert [c.passed for c in step.route.checks] == [False, False]


def test_agree_accepts_a_majority_and_escalates_a_split(tmp_path: Path) -> None:
    def samples(*answers: str) -> FunctionModel:
        def write(messages: list[Message], params: RequestParams) -> str:
            assert params.temperature == 0.7 and params.sample >= 1
            return f"The result is {answers[params.sample - 1]}."

        return FunctionModel(write)

    spec = one_step_graph(
        tmp_path, "vote",
        vote={"type": "cascade", "check": "agree", "samples": 3, "threshold": 0.6,
              "extract": "last_number"},
    )  # fmt: skip
    step = the_step(run(spec, tmp_path, writer=samples("42", "41", "42"), thinker=TestModel()))
    assert step.output == "The result is 42." and step.route.samples == 3
    [check] = step.route.checks
    assert (check.check, check.passed, check.score) == ("agree", True, pytest.approx(2 / 3))

    thinker = TestModel(["42"])
    split = the_step(run(spec, tmp_path / "b", writer=samples("40", "41", "42"), thinker=thinker))
    assert split.output == "42" and split.route.escalations == 1
    assert "1 of 3 samples agree" in thinker.requests[0][0][-1].content


def test_python_and_schema_checks(tmp_path: Path) -> None:
    spec = one_step_graph(
        tmp_path, "checked", checked={"type": "cascade", "check": "python", "function": "is_42"}
    )
    workflow = Workflow(
        spec,
        models={"writer": TestModel(default="41"), "thinker": TestModel(["42"])},
        functions={"is_42": lambda answer, task: (answer == "42", f"{answer} is not 42")},
        home=tmp_path / "home",
    )
    step = the_step(workflow.run("q"))
    assert step.output == "42" and step.route.checks[0].feedback == "41 is not 42"

    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    spec = one_step_graph(
        tmp_path, "json", json={"type": "cascade", "check": "schema", "schema": schema}
    )
    models = {"writer": TestModel(default='{"n": "x"}'), "thinker": TestModel(['{"n": 42}'])}
    step = the_step(run(spec, tmp_path / "s", **models))
    assert (
        step.output == '{"n": 42}' and "answer.n must be integer" in step.route.checks[0].feedback
    )


def test_self_consistency_votes_over_samples(tmp_path: Path) -> None:
    answers = {1: "41", 2: "42", 3: "42", 4: "39", 5: "42"}
    writer = FunctionModel(lambda m, p: f"so {answers[p.sample]}")
    spec = one_step_graph(tmp_path, "self_consistency")
    step = the_step(run(spec, tmp_path, writer=writer, thinker=TestModel()))
    assert step.output == "so 42" and step.route.samples == 5
    assert step.route.checks[0].score == pytest.approx(3 / 5)


def test_fixed_policies_ignore_the_label(tmp_path: Path) -> None:
    spec = one_step_graph(tmp_path, "all-reason")
    thinker = TestModel(["deep"])
    step = the_step(run(spec, tmp_path, writer=TestModel(), thinker=thinker))
    assert step.output == "deep" and step.route.role == "reason"


def test_default_pipeline_steps_follow_the_workflow_policy(tmp_path: Path) -> None:
    spec = parse_workflow("name: p\n" + MODELS + "policy: all-generate\n")
    plan = [{"id": "s1", "kind": "reason", "task": "hard", "depends_on": []}]
    thinker = TestModel(plan=plan)
    writer = TestModel(plan=plan)
    result = Workflow(spec, models={"thinker": thinker, "writer": writer}, home=tmp_path).run("t")
    assert result.subproblems[0].route.role == "generate"
    assert [p.purpose for _, p in thinker.requests] == ["plan"]  # the thinker only planned


def test_an_escalation_that_does_not_fit_the_budget_keeps_the_cheap_answer(
    tmp_path: Path,
) -> None:
    spec = one_step_graph(tmp_path, "cascade")
    data = spec.model_dump(by_alias=True)
    data["limits"] = {"budget_usd": 0.01}
    data["models"]["thinker"]["price"] = {"input": 1000, "output": 1000}
    tight = spec_from_dict(data, base_dir=tmp_path)
    thinker = TestModel(["never"])
    step = the_step(run(tight, tmp_path, writer=verdicts(False), thinker=thinker))
    assert step.output == "41" and thinker.requests == []
    assert step.route.why == "check failed; escalating did not fit the budget"


def test_the_live_view_summarises_each_route() -> None:
    from orchestrator import CheckResult, Route
    from orchestrator.cli.view import route_summary

    assert route_summary(Route("reason", "t", "m")) == "label"
    judged = Route(
        "reason", "t", "m", policy="cascade", checks=(CheckResult("judge", False),), escalations=1
    )
    assert route_summary(judged) == "cascade judge✗ → reason"
    voted = Route(
        "generate", "w", "m", policy="sc", samples=5,
        checks=(CheckResult("vote", True, "", 0.6),),
    )  # fmt: skip
    assert route_summary(voted) == "sc vote 3/5✓"


def test_the_builder_sets_and_defines_policies(tmp_path: Path) -> None:
    (tmp_path / "q.md").write_text("Answer.\n=== user ===\n{{ task }}\n")
    spec = (
        WorkflowBuilder("b")
        .model("thinker", "think-model", reasoning=True)
        .model("writer", "write-model")
        .policy("careful", type="cascade", check="agree", samples=4)
        .node("answer", "generate", prompt="q.md")
        .build(base_dir=tmp_path)
    )
    careful = spec.policy_named(spec.policy)
    assert spec.policy == "careful" and careful.type == "cascade" and careful.samples == 4
    assert WorkflowBuilder("c").model("w", "m").policy("all-reason").build().policy == "all-reason"
