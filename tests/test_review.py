"""Human approval of the plan: a LangGraph interrupt after planning; approve, edit or abort."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import Abort, Approve, Edit, UsageError, Workflow, parse_workflow
from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI

WORKFLOW = """
name: review
models:
  thinker: {model: think-model, reasoning: true}
  writer: {model: write-model}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""
PLAN = {
    "subproblems": [
        {"id": "s1", "kind": "reason", "task": "analyse", "depends_on": []},
        {"id": "s2", "kind": "generate", "task": "write", "depends_on": ["s1"]},
    ]
}


@pytest.fixture
def workflow(openai_env: FakeOpenAI) -> Workflow:
    fake_openai = openai_env
    fake_openai.configure_model("think-model", reasoning=True)
    fake_openai.set_plan(PLAN)
    return Workflow(parse_workflow(WORKFLOW))


def solves(server: FakeOpenAI) -> list[str]:
    return [
        r.body["messages"][-1]["content"].split("Your subproblem:")[-1].strip()
        for r in server.requests
        if "You solve one subproblem" in r.body["messages"][0]["content"]
    ]


async def test_pause_then_approve(workflow: Workflow, fake_openai: FakeOpenAI) -> None:
    paused = await workflow.arun("task", run_id="a", approve_plan=True)
    assert paused.status == "awaiting_approval"
    assert [(s.id, s.status, s.task) for s in paused.subproblems] == [
        ("s1", "pending", "analyse"),
        ("s2", "pending", "write"),
    ]
    assert len(fake_openai.requests) == 1  # only the plan
    with pytest.raises(UsageError, match="waiting for plan approval"):
        await workflow.aresume("a")
    done = await workflow.aresume("a", Approve())
    assert done.status == "completed" and done.output
    assert solves(fake_openai) == ["analyse", "write"]
    assert sum(r.is_plan for r in fake_openai.requests) == 1
    with pytest.raises(UsageError, match="not waiting"):
        await workflow.aresume("a", Approve())


async def test_edit_is_validated_then_used(workflow: Workflow, fake_openai: FakeOpenAI) -> None:
    await workflow.arun("task", run_id="e", approve_plan=True)
    cyclic = [
        {"id": "x", "kind": "generate", "task": "a", "depends_on": ["y"]},
        {"id": "y", "kind": "generate", "task": "b", "depends_on": ["x"]},
    ]
    with pytest.raises(UsageError, match="cycle"):
        await workflow.aresume("e", Edit(cyclic))
    edited = [{"id": "only", "kind": "generate", "task": "the edited step", "depends_on": []}]
    done = await workflow.aresume("e", Edit(edited))
    assert done.status == "completed" and [s.id for s in done.subproblems] == ["only"]
    assert done.plan_note == "plan edited at review"
    assert solves(fake_openai) == ["the edited step"]


async def test_abort(workflow: Workflow, fake_openai: FakeOpenAI) -> None:
    await workflow.arun("task", run_id="x", approve_plan=True)
    aborted = await workflow.aresume("x", Abort())
    assert aborted.status == "failed" and aborted.error and aborted.error.type == "PlanRejected"
    assert solves(fake_openai) == []


def cli(tmp_path: Path, *args: str, stdin: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    return run_cli(
        "run", str(path), "--input", "task", "--approve-plan", "--json", *args, stdin=stdin, **env
    )


@pytest.mark.slow
def test_cli_approve_edit_abort(
    workflow: Workflow, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    approved = cli(tmp_path, stdin="approve\n")
    assert approved.returncode == 0, approved.stderr
    assert "s1" in approved.stderr and "analyse" in approved.stderr  # the plan was shown
    assert json.loads(approved.stdout)["status"] == "completed"

    aborted = cli(tmp_path, stdin="abort\n")
    assert aborted.returncode == 1 and json.loads(aborted.stdout)["status"] == "failed"

    # The editor gets the plan as JSON; this one replaces it with a single step.
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import json, sys\n"
        "plan = [{'id': 'e1', 'kind': 'generate', 'task': 'edited by hand', 'depends_on': []}]\n"
        "open(sys.argv[1], 'w').write(json.dumps(plan))\n"
    )
    before = len(solves(fake_openai))
    edited = cli(tmp_path, stdin="edit\n", EDITOR=f"{sys.executable} {editor}")
    assert edited.returncode == 0, edited.stderr
    assert [s["id"] for s in json.loads(edited.stdout)["subproblems"]] == ["e1"]
    assert solves(fake_openai)[before:] == ["edited by hand"]


@pytest.mark.slow
def test_cli_paused_run_resumes_later(workflow: Workflow, tmp_path: Path) -> None:
    first = cli(tmp_path, "--run-id", "later", stdin="")  # nobody answered
    assert first.returncode == 2 and "needs a decision" in first.stderr
    listed = run_cli("runs", "--json")
    assert json.loads(listed.stdout)[0]["status"] == "awaiting_approval"
    resumed = run_cli("resume", "later", "--json", stdin="approve\n")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "completed"
