"""Custom graphs in YAML: node types, conditional edges, bounded loops, and validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import (
    Answer,
    SpecError,
    Workflow,
    WorkflowBuilder,
    load_workflow,
    parse_workflow,
)
from orchestrator.errors import format_path
from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI, Fault, Reply

MODELS = """
models:
  thinker: {model: think-model, reasoning: true}
  writer: {model: write-model}
"""
MATH = (
    "name: math\n"
    + MODELS
    + """
graph:
  output: answer
  max_iterations: 2
  nodes:
    answer: {type: generate, prompt: solve.md}
    check: {type: verify, target: answer, criteria: "The final answer is correct."}
    retry: {type: reason, prompt: retry.md, output: answer}
  edges:
    - {from: answer, to: check}
    - {from: check, to: retry, when: "not check.passed"}
    - {from: check, to: END}
    - {from: retry, to: check}
"""
)
PROMPTS = {
    "solve.md": "Solve it.\n=== user ===\n{{ task }}\n",
    "retry.md": "Try again.\n=== user ===\n{{ task }}\nWas: {{ answer }}\n"
    "Feedback: {{ check.feedback }}\n",
}


def write(tmp_path: Path, text: str) -> Path:
    for name, body in PROMPTS.items():
        (tmp_path / name).write_text(body)
    path = tmp_path / "wf.yaml"
    path.write_text(text)
    return path


def schema_name(body: dict[str, Any]) -> str | None:
    fmt = body.get("response_format") or {}
    return (fmt.get("json_schema") or {}).get("name")


@pytest.fixture
def env(openai_env: FakeOpenAI, tmp_path: Path) -> Path:
    fake_openai = openai_env
    fake_openai.configure_model("think-model", reasoning=True, trace_style="reasoning_content")
    return tmp_path


def verdicts(server: FakeOpenAI, *passed: bool) -> None:
    answers = iter(passed)

    def respond(body: dict[str, Any]) -> Reply | None:
        if schema_name(body) == "check":
            ok = next(answers)
            return Reply(content=json.dumps({"passed": ok, "feedback": f"ok={ok}: check step 2"}))
        return None

    server.responder = respond


async def test_verify_and_escalate(env: Path, fake_openai: FakeOpenAI) -> None:
    verdicts(fake_openai, False, True)
    result = await Workflow.from_yaml(write(env, MATH)).arun("What is 17 * 23?")
    assert result.status == "completed", result.error
    assert [r.model for r in fake_openai.requests] == [
        "write-model",
        "write-model",
        "think-model",
        "write-model",
    ]
    retry = fake_openai.requests[2].body["messages"][-1]["content"]
    assert "Feedback: ok=False: check step 2" in retry and "[write-model] answer" in retry
    assert result.output.startswith("[think-model] answer") and "TRACE" not in result.output
    nodes = {s.id: (s.kind, s.status, s.profile) for s in result.subproblems}
    assert nodes == {
        "answer": ("generate", "done", "writer"),
        "check": ("verify", "done", "writer"),
        "retry": ("reason", "done", "thinker"),
    }
    assert result.usage.by_profile["writer"].calls == 3
    assert result.usage.by_profile["thinker"].calls == 1


async def test_loops_are_bounded_by_max_iterations(env: Path, fake_openai: FakeOpenAI) -> None:
    verdicts(fake_openai, False, False, False, False)
    result = await Workflow.from_yaml(write(env, MATH)).arun("x")
    assert result.status == "completed"
    # Every node runs at most twice (max_iterations: 2): answer, check, retry, check, retry;
    # then the edge back to check is closed and the run ends.
    assert sum(r.model == "think-model" for r in fake_openai.requests) == 2
    assert sum(schema_name(r.body) == "check" for r in fake_openai.requests) == 2
    assert len(fake_openai.requests) == 5


async def test_map_structured_output_and_python_nodes(env: Path, fake_openai: FakeOpenAI) -> None:
    yaml_text = (
        "name: m\n"
        + MODELS
        + """
allow_python: ["tests.test_custom_graph:count_words"]
graph:
  output: report
  nodes:
    split: {type: generate, prompt: split.md, schema: {type: object, required: [parts],
            properties: {parts: {type: array, items: {type: string}}}}}
    each: {type: map, over: split.parts, node: summarise}
    summarise: {type: generate, prompt: one.md}
    count: {type: python, function: "tests.test_custom_graph:count_words"}
    report: {type: python, function: join}
  edges:
    - {from: split, to: each}
    - {from: each, to: count}
    - {from: count, to: report}
"""
    )
    (env / "split.md").write_text("{{ task }}")
    (env / "one.md").write_text("Summarise: {{ item }}")
    with pytest.raises(SpecError, match=r"wf.yaml:13: graph.nodes.each.over: .*'parts'"):
        load_workflow(write(env, yaml_text.replace("over: split.parts", "over: parts")))
    path = write(env, yaml_text)

    def respond(body: dict[str, Any]) -> Reply | None:
        if schema_name(body) == "split":
            return Reply(content=json.dumps({"parts": ["alpha", "beta", "gamma"]}))
        return None

    fake_openai.responder = respond
    fake_openai.configure_model("write-model", latency=0.3)
    workflow = Workflow(
        load_workflow(path), functions={"join": lambda s: f"{s['count']} words: {s['each']}"}
    )
    result = await workflow.arun("three things")
    assert result.status == "completed", result.error
    mapped = [r for r in fake_openai.requests if "Summarise:" in str(r.body["messages"])]
    assert sorted(r.body["messages"][-1]["content"] for r in mapped) == [
        "Summarise: alpha",
        "Summarise: beta",
        "Summarise: gamma",
    ]
    assert max(r.started for r in mapped) < min(r.ended for r in mapped)  # in parallel
    assert result.output.startswith("12 words: [")  # three answers of four words each

    # A python function not listed in allow_python is refused before anything runs.
    with pytest.raises(SpecError, match="allow_python"):
        load_workflow(write(env, yaml_text.replace('allow_python: ["tests', 'allow_python: ["x')))


def count_words(state: dict[str, Any]) -> int:
    return sum(len(str(x).split()) for x in state.get("each") or [])


async def test_human_node_pauses_for_an_answer(env: Path, fake_openai: FakeOpenAI) -> None:
    yaml_text = (
        "name: h\n"
        + MODELS
        + """
graph:
  output: final
  nodes:
    draft: {type: generate, prompt: solve.md}
    ask: {type: human, message: "Is this draft fine? {{ draft }}"}
    final: {type: generate, prompt: final.md}
  edges:
    - {from: draft, to: ask}
    - {from: ask, to: final}
"""
    )
    (env / "final.md").write_text("Revise per the reviewer: {{ ask }}\n\n{{ draft }}")
    workflow = Workflow.from_yaml(write(env, yaml_text))
    paused = await workflow.arun("write a haiku", run_id="h1")
    assert paused.status == "awaiting_input"
    assert paused.question and paused.question.startswith("Is this draft fine? [write-model]")
    done = await workflow.aresume("h1", Answer("shorter, please"))
    assert done.status == "completed"
    assert "Revise per the reviewer: shorter, please" in str(fake_openai.requests[-1].body)
    assert len(fake_openai.requests) == 2  # the draft was not written twice


BROKEN = [
    ("unknown_type", "    answer: {type: summarize, prompt: solve.md}\n", 11, "nodes.answer.type"),
    ("edge_to_missing", "    - {from: answer, to: chek}\n", 15, "edges[0].to"),
    (
        "missing_prompt",
        "    answer: {type: generate, prompt: nope.md}\n",
        11,
        "nodes.answer.prompt",
    ),
    (
        "missing_variable",
        "    answer: {type: generate, prompt: bad_var.md}\n",
        11,
        "nodes.answer.prompt",
    ),
    (
        "bad_when",
        "    - {from: check, to: retry, when: \"__import__('os')\"}\n",
        16,
        "edges[1].when",
    ),
    (
        "unknown_when_key",
        '    - {from: check, to: retry, when: "not verdict.passed"}\n',
        16,
        "edges[1].when",
    ),
]


@pytest.mark.parametrize(("case", "line_text", "line", "path"), BROKEN, ids=[b[0] for b in BROKEN])
def test_validation_names_file_path_and_line(
    tmp_path: Path, case: str, line_text: str, line: int, path: str
) -> None:
    (tmp_path / "bad_var.md").write_text("{{ task }} {{ nowhere }}")
    lines = MATH.splitlines(keepends=True)
    key = line_text.split(":")[0].strip() if "from" not in line_text else None
    index = next(
        i
        for i, text in enumerate(lines)
        if (key and text.strip().startswith(key + ":"))
        or (not key and text.strip().startswith(line_text.strip()[:22]))
    )
    lines[index] = line_text
    wf = write(tmp_path, "".join(lines))
    with pytest.raises(SpecError) as info:
        load_workflow(wf)
    assert info.value.line == line and info.value.file == str(wf)
    assert format_path(info.value.path) == f"graph.{path}"


def test_unreachable_nodes_and_unbounded_cycles(tmp_path: Path) -> None:
    unreachable = MATH.replace("    - {from: answer, to: check}\n", "")
    with pytest.raises(SpecError, match="cannot be reached"):
        load_workflow(write(tmp_path, unreachable))
    forever = MATH.replace('when: "not check.passed"', "").replace(
        "    - {from: check, to: END}\n", ""
    )
    with pytest.raises(SpecError, match=r"unbounded cycle check -> retry -> check"):
        load_workflow(write(tmp_path, forever))


def test_mermaid_of_a_custom_graph(tmp_path: Path) -> None:
    text = Workflow(load_workflow(write(tmp_path, MATH))).mermaid()
    assert text.startswith("flowchart TD")
    assert 'n_check -.->|"not check.passed"| n_retry' in text
    assert "reason · thinker: think-model" in text


def test_shipped_prompt_by_name_and_spec_without_file() -> None:
    spec = parse_workflow(
        "name: n\n" + MODELS + "graph:\n  nodes:\n    c: {type: verify, target: task, "
        "criteria: fine}\n"
    )
    assert spec.graph is not None and spec.graph.answer_key == "c"


def test_builder_mirrors_the_yaml(tmp_path: Path) -> None:
    from_file = load_workflow(write(tmp_path, MATH))
    built = (
        WorkflowBuilder("math")
        .model("thinker", "think-model", reasoning=True)
        .model("writer", "write-model")
        .graph(output="answer", max_iterations=2)
        .node("answer", "generate", prompt="solve.md")
        .node("check", "verify", target="answer", criteria="The final answer is correct.")
        .node("retry", "reason", prompt="retry.md", output="answer")
        .edge("answer", "check")
        .edge("check", "retry", when="not check.passed")
        .edge("check", "END")
        .edge("retry", "check")
    )
    same = from_file.model_dump()
    assert built.build(base_dir=tmp_path).model_dump() == same
    assert parse_workflow(built.to_yaml(), file=str(tmp_path / "x.yaml")).model_dump() == same
    with pytest.raises(SpecError, match=r"graph.edges\[4\].to: no node named 'nowhere'"):
        built.edge("retry", "nowhere").build(base_dir=tmp_path)


def test_cli_asks_a_human_node_on_stdin(env: Path, fake_openai: FakeOpenAI) -> None:
    yaml_text = (
        "name: h\n"
        + MODELS
        + "graph:\n  output: final\n  nodes:\n"
        + "    ask: {type: human, message: 'Which colour? {{ task }}'}\n"
        + "    final: {type: generate, prompt: final.md}\n"
        + "  edges:\n    - {from: ask, to: final}\n"
    )
    (env / "final.md").write_text("Paint it {{ ask }}.")
    path = write(env, yaml_text)
    out = run_cli("run", str(path), "--input", "the fence", "--json", stdin="green\n")
    assert out.returncode == 0, out.stderr
    assert "Which colour? the fence" in out.stderr
    assert json.loads(out.stdout)["status"] == "completed"
    assert fake_openai.requests[-1].body["messages"][-1]["content"] == "Paint it green."


def test_cli_plain_mode_prints_a_custom_graph_answer(env: Path, fake_openai: FakeOpenAI) -> None:
    verdicts(fake_openai, True)
    out = run_cli("run", str(write(env, MATH)), "--input", "2+2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[write-model] answer")
    assert "completed" in out.stderr


async def test_a_key_not_written_yet_renders_empty(env: Path, fake_openai: FakeOpenAI) -> None:
    # The first pass of an edit loop reads the review it has not had yet.
    (env / "edit.md").write_text("Task: {{ task }}\nLast review: {{ review.feedback }}.")
    yaml_text = (
        "name: loop\n" + MODELS + "graph:\n  output: edit\n  max_iterations: 2\n  nodes:\n"
        "    edit: {type: generate, prompt: edit.md}\n"
        "    review: {type: verify, target: edit, criteria: good}\n"
        "  edges:\n    - {from: edit, to: review}\n"
        "    - {from: review, to: edit, when: 'not review.passed'}\n"
    )

    def respond(body: dict[str, Any]) -> Reply | None:
        if schema_name(body) == "review":
            return Reply(content=json.dumps({"passed": False, "feedback": "too long"}))
        return None

    fake_openai.responder = respond
    result = await Workflow.from_yaml(write(env, yaml_text)).arun("t")
    assert result.status == "completed", result.error
    edits = [
        r.body["messages"][-1]["content"] for r in fake_openai.requests if not schema_name(r.body)
    ]
    assert edits == ["Task: t\nLast review: .", "Task: t\nLast review: too long."]


async def test_plan_node_runs_the_default_pipeline_inside_a_graph(
    env: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.set_plan(
        {
            "subproblems": [
                {"id": "s1", "kind": "reason", "task": "weigh options", "depends_on": []},
                {"id": "s2", "kind": "generate", "task": "list risks", "depends_on": ["s1"]},
            ]
        }
    )
    (env / "brief.md").write_text("Write the brief from:\n{{ research }}")
    yaml_text = (
        "name: p\n" + MODELS + "graph:\n  output: brief\n  nodes:\n"
        "    research: {type: plan}\n"
        "    brief: {type: generate, prompt: brief.md}\n"
        "  edges:\n    - {from: research, to: brief}\n"
    )
    result = await Workflow.from_yaml(write(env, yaml_text)).arun("choose a queue")
    assert result.status == "completed", result.error
    models = [r.model for r in fake_openai.requests]
    assert models == ["think-model", "think-model", "write-model", "write-model"]
    brief = fake_openai.requests[-1].body["messages"][-1]["content"]
    assert "[s1] weigh options" in brief and "[s2] list risks" in brief
    assert "TRACE" not in brief


async def test_map_items_that_finished_are_not_paid_again(
    env: Path, fake_openai: FakeOpenAI
) -> None:
    yaml_text = (
        "name: m\nmodels:\n  writer: {model: write-model, retries: 0}\n"
        "graph:\n  state: {items: [a, b, c]}\n  output: each\n  nodes:\n"
        "    each: {type: map, over: items, node: one}\n"
        "    one: {type: generate, prompt: one.md}\n"
    )
    (env / "one.md").write_text("Item {{ item }}")
    failed_once: list[str] = []

    def respond(body: dict[str, Any]) -> Reply | Fault | None:
        if body["messages"][-1]["content"] == "Item b" and not failed_once:
            failed_once.append("b")
            return Fault(status=500)
        return None

    fake_openai.responder = respond
    workflow = Workflow.from_yaml(write(env, yaml_text))
    first = await workflow.arun("t", run_id="m1")
    assert first.status == "failed"
    resumed = await workflow.aresume("m1")
    assert resumed.status == "completed", resumed.error
    asked = [r.body["messages"][-1]["content"] for r in fake_openai.requests]
    assert sorted(asked) == ["Item a", "Item b", "Item b", "Item c"]
    assert "Item a" in resumed.output and "Item c" in resumed.output


async def test_an_edge_expression_that_fails_on_the_state_fails_the_run(
    env: Path, fake_openai: FakeOpenAI
) -> None:
    (env / "n.md").write_text("{{ task }}")
    yaml_text = (
        "name: e\n" + MODELS + "graph:\n  nodes:\n"
        "    a: {type: generate, prompt: n.md}\n    b: {type: generate, prompt: n.md}\n"
        "  edges:\n    - {from: a, to: b, when: 'a > 3'}\n    - {from: a, to: END}\n"
    )
    result = await Workflow.from_yaml(write(env, yaml_text)).arun("t")
    assert result.status == "failed" and result.error
    assert result.error.type == "RunError" and "edge from 'a' to 'b'" in result.error.message
