"""The streamed answer, end to end: a stream cut off and retried, or reasoning a model leaves in
its answer, never shows text twice or shows trace — on piped stdout, in the live view's state,
or in the SDK's token events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import (
    AnswerRestarted,
    AnswerToken,
    PlanReady,
    RunFinished,
    Workflow,
    parse_workflow,
)
from orchestrator.cli.view import LiveRun
from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI, Reply

WORKFLOW = """
name: stream
models:
  writer: {model: write-model, retries: 2}
"""
LONG = "Five, I think, or maybe six; let me count again more carefully."
FINAL = "Four."


def drop_first_stream(server: FakeOpenAI, first: str, retried: str) -> None:
    """The first streamed request (the synthesis) answers `first` but drops after three chunks;
    its retry answers `retried`."""
    seen: list[int] = []

    def respond(body: dict[str, Any]) -> Reply | None:
        if not body.get("stream"):
            return None
        seen.append(1)
        if len(seen) == 1:
            return Reply(content=first, cut_after=3, close="drop")
        return Reply(content=retried)

    server.responder = respond


@pytest.mark.parametrize(
    ("first", "retried"), [(LONG, LONG), (LONG, FINAL)], ids=["same-text", "different-text"]
)
def test_piped_stdout_shows_the_answer_once(
    openai_env: FakeOpenAI, tmp_path: Path, first: str, retried: str
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    drop_first_stream(openai_env, first, retried)
    out = run_cli("run", str(path), "--input", "How many?")
    assert out.returncode == 0, out.stderr
    assert out.stdout == retried + "\n"  # whole, once, and nothing of the dropped attempt
    assert [r.outcome for r in openai_env.requests if r.body.get("stream")] == ["cut", "ok"]


async def test_token_events_and_the_live_view_end_with_the_answer_once(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    drop_first_stream(openai_env, LONG, FINAL)
    workflow = Workflow(parse_workflow(WORKFLOW), home=tmp_path)
    view = LiveRun()
    streamed = ""
    restarts = 0
    async for event in workflow.astream("How many?"):
        if isinstance(event, RunFinished):
            view.finish(event.result)
            result = event.result
            continue
        view.update(event)
        if isinstance(event, AnswerToken):
            streamed += event.text
        elif isinstance(event, AnswerRestarted):
            restarts, streamed = restarts + 1, ""
    assert result.output == FINAL and restarts == 1
    assert streamed == FINAL and view.answer == FINAL


@pytest.mark.parametrize("style", ["think", "lone_think"])
def test_reasoning_left_in_a_generative_answer_never_reaches_stdout(
    openai_env: FakeOpenAI, tmp_path: Path, style: str
) -> None:
    openai_env.configure_model("write-model", trace_style=style)
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    out = run_cli("run", str(path), "--input", "Say hi")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[write-model] answer")
    assert "TRACE" not in out.stdout and "think>" not in out.stdout


def test_live_view_state_restarts_its_answer() -> None:
    view = LiveRun()
    for event in (AnswerToken("Five, I"), AnswerRestarted(), AnswerToken("Four"), AnswerToken(".")):
        view.update(event)
    assert view.answer == "Four."


def test_text_that_looks_like_rich_markup_is_shown_as_written() -> None:
    """Ids, tasks, notes and errors come from models and users: `[/x]` must not break a view."""
    from rich.console import Console

    from orchestrator import ErrorInfo, Route, RunResult, Step, StepResult, Usage
    from orchestrator.cli.ask import plan_table
    from orchestrator.cli.render import summary
    from orchestrator.cli.view import runs_table
    from orchestrator.storage import RunRow

    odd = "[/nope] [bold]x"
    step = StepResult(Step(odd, "reason", odd), Route("reason", "p", odd))
    result = RunResult(
        odd, "failed", "", (step,), Usage(), ErrorInfo("ModelError", odd), plan_note=odd
    )
    view = LiveRun()
    view.update(PlanReady((step,), odd))
    console = Console(record=True, width=200)
    console.print(view.render())
    console.print(plan_table(result))
    console.print(runs_table([RunRow(odd, odd, None, odd, "failed", odd, 0.0, 0.0, 0.0)]))
    summary(console, result)
    assert console.export_text().count(odd) >= 6
