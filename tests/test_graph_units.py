"""Custom graphs on in-process test models: loops, verdicts, maps, structured answers, plan nodes.

The same graphs run over HTTP in test_custom_graph.py; here the models are `TestModel` /
`FunctionModel`, so each test is about the graph machinery alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator import Message, RequestParams, Workflow, WorkflowBuilder
from orchestrator.testing import FunctionModel, TestModel

PROMPTS = {
    "solve.md": "Solve it.\n=== user ===\n{{ task }}\n",
    "retry.md": "Try again.\n=== user ===\n{{ task }}\nWas: {{ answer }}\n"
    "Feedback: {{ check.feedback }}\n",
    "outline.md": "Outline.\n=== user ===\n{{ task }}\n",
    "section.md": "Write.\n=== user ===\n{{ item.title }} after {{ outline.title }}\n",
}


def prompts(tmp_path: Path) -> Path:
    for name, body in PROMPTS.items():
        (tmp_path / name).write_text(body)
    return tmp_path


def math_spec(base: Path, iterations: int = 2):  # type: ignore[no-untyped-def]
    return (
        WorkflowBuilder("math")
        .model("thinker", "think-model", reasoning=True, price={"input": 2, "output": 8})
        .model("writer", "write-model", price={"input": 0.1, "output": 0.4})
        .node("answer", "generate", prompt="solve.md")
        .node("check", "verify", target="answer", criteria="The answer is right.")
        .node("retry", "reason", prompt="retry.md", output="answer")
        .edge("answer", "check")
        .edge("check", "retry", when="not check.passed")
        .edge("check", "END")
        .edge("retry", "check")
        .graph(output="answer", max_iterations=iterations)
        .build(base_dir=base)
    )


def verdicts(*passed: bool) -> FunctionModel:
    """The writer: answers "17", and judges the checks in turn with `passed`."""
    answers = iter(passed)

    def write(messages: list[Message], params: RequestParams) -> str:
        if params.response_format is not None:
            ok = next(answers)
            return json.dumps({"passed": ok, "feedback": f"ok={ok}: recheck step 2"})
        return "17"

    return FunctionModel(write)


async def test_failed_check_escalates_with_the_feedback(tmp_path: Path) -> None:
    thinker = TestModel(["391"])
    models = {"thinker": thinker, "writer": verdicts(False, True)}
    workflow = Workflow(math_spec(prompts(tmp_path)), models=models, home=tmp_path)
    result = await workflow.arun("What is 17 * 23?")
    assert result.status == "completed" and result.output == "391"
    [(messages, params)] = thinker.requests
    assert params.step == "retry" and "ok=False: recheck step 2" in messages[-1].content
    assert "Was: 17" in messages[-1].content
    by_id = {s.id: s for s in result.subproblems}
    assert by_id["retry"].profile == "thinker" and by_id["retry"].cost_usd > 0
    assert by_id["check"].output.startswith('{\n  "passed": true')  # its latest verdict


async def test_a_passing_check_never_calls_the_thinker(tmp_path: Path) -> None:
    thinker = TestModel()
    models = {"thinker": thinker, "writer": verdicts(True)}
    result = await Workflow(math_spec(prompts(tmp_path)), models=models, home=tmp_path).arun("t")
    assert result.status == "completed" and result.output == "17" and thinker.requests == []
    assert {s.id: s.status for s in result.subproblems}["retry"] == "pending"


async def test_loops_end_at_max_iterations(tmp_path: Path) -> None:
    thinker = TestModel(default="still wrong")
    models = {"thinker": thinker, "writer": verdicts(*[False] * 10)}
    spec = math_spec(prompts(tmp_path), iterations=3)
    result = await Workflow(spec, models=models, home=tmp_path).arun("t")
    assert result.status == "completed"  # the loop ended; whether it passed is check's output
    assert len(thinker.requests) == 3


async def test_map_runs_a_node_per_item_and_bills_the_map_node(tmp_path: Path) -> None:
    outline = {"title": "Report", "sections": [{"title": "A"}, {"title": "B"}, {"title": "C"}]}

    def write(messages: list[Message], params: RequestParams) -> str:
        if params.response_format is not None:
            return json.dumps(outline)
        return "section: " + messages[-1].content

    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "sections": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}},
                    "required": ["title"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["title", "sections"],
        "additionalProperties": False,
    }
    spec = (
        WorkflowBuilder("report")
        .model("writer", "write-model", price={"input": 1, "output": 1})
        .node("outline", "generate", prompt="outline.md", schema=schema)
        .node("sections", "map", over="outline.sections", node="section")
        .node("section", "generate", prompt="section.md")
        .edge("outline", "sections")
        .build(base_dir=prompts(tmp_path))
    )
    writer = FunctionModel(write)
    result = await Workflow(spec, models={"writer": writer}, home=tmp_path).arun("t")
    assert result.status == "completed"
    assert result.output == "\n\n".join(f"section: {t} after Report" for t in "ABC")
    by_id = {s.id: s for s in result.subproblems}
    assert set(by_id) == {"outline", "sections"}  # the mapped node is not a step of its own
    assert by_id["sections"].cost_usd > by_id["outline"].cost_usd > 0


async def test_a_structured_answer_is_asked_again_until_it_validates(tmp_path: Path) -> None:
    thinker = TestModel()
    writer = TestModel(["17", "not json", '{"passed": "yes", "feedback": ""}'])
    writer.script.append('{"passed": true, "feedback": "fine"}')
    models = {"thinker": thinker, "writer": writer}
    result = await Workflow(math_spec(prompts(tmp_path)), models=models, home=tmp_path).arun("t")
    assert result.status == "completed" and thinker.requests == []
    retries = [m[-1].content for m, p in writer.requests if p.step == "check"][1:]
    assert "not JSON" in retries[0] and "must be boolean" in retries[1]


async def test_a_plan_node_runs_the_pipeline_inside_a_graph(tmp_path: Path) -> None:
    plan = [
        {"id": "p1", "kind": "reason", "task": "think", "depends_on": []},
        {"id": "p2", "kind": "generate", "task": "write", "depends_on": ["p1"]},
    ]
    spec = (
        WorkflowBuilder("nested")
        .model("thinker", "think-model", reasoning=True)
        .model("writer", "write-model")
        .node("work", "plan")
        .build(base_dir=tmp_path)
    )
    models = {"thinker": TestModel(plan=plan, default="thought"), "writer": TestModel()}
    result = await Workflow(spec, models=models, home=tmp_path).arun("t")
    assert result.status == "completed"
    assert "[p1] think\nthought" in result.output and "[p2] write" in result.output
