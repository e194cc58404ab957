"""`orchestrator show RUN_ID`: a run's timeline from its run log, a bar per step and per call
(failed attempts too), coloured by profile, the critical path marked, cost on every bar; in the
terminal, as JSON and as an SVG picture. Runs against the scripted server, then the real CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunResult, Workflow, parse_workflow
from orchestrator.models.base import CallRecord, TokenUsage
from orchestrator.models.retry import FailedAttempt
from orchestrator.observe.svg import timeline_svg
from orchestrator.observe.timeline import build_timeline, read_timeline
from orchestrator.steps import Step
from orchestrator.storage import RunRow, StepSpan
from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI, Fault

WORKFLOW = """
name: timeline
models:
  thinker: {model: think-model, reasoning: true, retries: 2, price: {input: 2, output: 8}}
  writer: {model: write-model, retries: 2, price: {input: 0.1, output: 0.4}}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""
# b waits for a and thinks longest: plan → a → b → synthesize decides the wall time; c does not.
PLAN = {
    "subproblems": [
        {"id": "a", "kind": "generate", "task": "gather the facts", "depends_on": []},
        {"id": "b", "kind": "reason", "task": "reason about them", "depends_on": ["a"]},
        {"id": "c", "kind": "generate", "task": "a side note", "depends_on": []},
    ]
}
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
async def finished(openai_env: FakeOpenAI, tmp_path: Path) -> RunResult:
    """A completed run whose step b's first attempt got a 503 (waiting 0.1 s), in
    ORCHESTRATOR_HOME (what the CLI reads)."""
    openai_env.set_plan(PLAN)
    openai_env.configure_model("think-model", latency=0.3, reasoning=True)
    openai_env.configure_model("write-model", latency=0.02)
    openai_env.enqueue(Fault(status=503, headers={"Retry-After": "0.1"}), model="think-model")
    result = await Workflow(parse_workflow(WORKFLOW)).arun("Explain it", run_id="shown")
    assert result.status == "completed"
    return result


def bars(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in document["bars"] if b["type"] == kind]


def show_json(run_id: str = "shown") -> dict[str, Any]:
    out = run_cli("show", run_id, "--json")
    assert out.returncode == 0, out.stderr
    document: dict[str, Any] = json.loads(out.stdout)
    return document


def test_json_has_a_bar_per_step_call_and_failed_attempt(finished: RunResult) -> None:
    document = show_json()
    assert (document["run_id"], document["status"]) == ("shown", "completed")
    steps = bars(document, "step")
    assert sorted(b["step"] for b in steps) == ["a", "b", "c"]
    calls = bars(document, "call")
    assert len(calls) == len(finished.calls) == 5  # plan, a, b, c, synthesize
    assert [c["label"] for c in calls if c["step"] is None] == ["plan", "synthesize"]
    [failed] = bars(document, "attempt")
    assert (failed["step"], failed["status"], failed["profile"]) == ("b", "status", "thinker")
    assert failed["label"] == "attempt 1/3 failed: 503" and failed["cost_usd"] == 0
    assert failed["wait_s"] == pytest.approx(0.1)
    [b] = [s for s in steps if s["step"] == "b"]
    assert b["retries"] == 1 and b["depends_on"] == ["a"] and b["profile"] == "thinker"
    # Every bar inside the run, each call inside its step, the retry before b's call.
    for bar in document["bars"]:
        assert 0 <= bar["start_s"] <= bar["end_s"] <= document["wall_s"] + 1e-3
    [b_call] = [c for c in calls if c["step"] == "b"]
    assert b["start_s"] <= failed["start_s"] < failed["end_s"] <= b_call["start_s"] <= b["end_s"]
    assert b_call["start_s"] - failed["end_s"] >= 0.1  # the wait is in the picture


def test_costs_on_each_bar_sum_to_the_runs_cost(finished: RunResult) -> None:
    document = show_json()
    calls = bars(document, "call")
    assert all(c["cost_usd"] > 0 for c in calls)
    assert sum(c["cost_usd"] for c in calls) == pytest.approx(finished.usage.cost_usd)
    assert document["cost_usd"] == pytest.approx(finished.usage.cost_usd)
    for step in bars(document, "step"):
        own = [c["cost_usd"] for c in calls if c["step"] == step["step"]]
        assert step["cost_usd"] == pytest.approx(sum(own)) and step["cost_usd"] > 0


def test_the_critical_path_is_the_chain_that_decided_the_wall_time(finished: RunResult) -> None:
    document = show_json()
    by_id = {b["id"]: b for b in document["bars"]}
    path = [by_id[i] for i in document["critical_path"]]
    assert [(b["type"], b["label"]) for b in path] == [
        ("call", "plan"), ("step", "a"), ("step", "b"), ("call", "synthesize"),
    ]  # fmt: skip
    assert {b["id"] for b in document["bars"] if b["critical"]} == set(document["critical_path"])
    ends = [b["end_s"] for b in path]
    assert ends == sorted(ends)
    assert path[-1]["end_s"] == pytest.approx(document["wall_s"], abs=0.05)
    # profiles are listed once each, in the order their colours are given
    assert sorted(document["profiles"]) == ["thinker", "writer"]


def test_svg_is_xml_with_a_group_per_bar(finished: RunResult, tmp_path: Path) -> None:
    out_file = tmp_path / "run.svg"
    out = run_cli("show", "shown", "--svg", str(out_file), "--json")
    assert out.returncode == 0, out.stderr
    assert f"wrote {out_file}" in out.stderr
    document = json.loads(out.stdout)
    root = ET.parse(out_file).getroot()
    assert root.tag == f"{SVG}svg" and root.get("viewBox")
    groups = [g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("bar ")]
    assert [g.get("data-id") for g in groups] == [b["id"] for b in document["bars"]]
    critical = [g.get("data-id") for g in groups if g.get("data-critical") == "true"]
    assert critical == document["critical_path"]
    colours = {g.get("data-profile"): g.find(f"{SVG}rect").get("fill")  # type: ignore[union-attr]
               for g in groups if g.get("data-type") == "call"}  # fmt: skip
    assert len(set(colours.values())) == 2  # one colour per profile
    assert sum(1 for _ in root.iter(f"{SVG}line") if _.get("class") == "wait") == 1


def test_terminal_view_shows_bars_retries_and_the_path(finished: RunResult) -> None:
    out = run_cli("show", "shown")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "run shown · timeline · completed" in text
    assert "b 1 retried" in text and "attempt 1/3 failed: 503" in text
    assert text.count("★") == 4 + 1  # four bars on the path, and the legend
    assert "░" in text and "━" in text and "█" in text
    assert f"{finished.usage.cost_usd:.6f}" in text


def test_unknown_run_is_one_line_and_exit_2(openai_env: FakeOpenAI) -> None:
    out = run_cli("show", "no-such-run")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: no run with id no-such")
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_unwritable_svg_is_one_line_and_exit_2(finished: RunResult, tmp_path: Path) -> None:
    out = run_cli("show", "shown", "--svg", str(tmp_path / "missing" / "run.svg"))
    assert out.returncode == 2
    assert out.stderr.startswith("error: cannot write") and out.stderr.count("\n") == 1


async def test_read_timeline_from_the_sdk(finished: RunResult) -> None:
    timeline = await read_timeline("shown")
    assert timeline.cost_usd == pytest.approx(finished.usage.cost_usd)
    assert timeline.to_dict()["critical_path"] == list(timeline.critical_path)


# --- from run-log records alone --------------------------------------------------------------


def span(
    sid: str, start: float, end: float | None, deps: tuple[str, ...] = (), **kw: Any
) -> StepSpan:
    status = kw.pop("status", "done" if end is not None else "running")
    return StepSpan(Step(sid, "generate", "", deps), "w", "wm", start, end, status,
                    kw.pop("cost", 0.0), "cascade", kw.pop("escalations", 0))  # fmt: skip


def call(
    step: str | None, start: float, latency: float, cost: float, purpose: str = "solve"
) -> CallRecord:
    return CallRecord("w", "wm", purpose, step, TokenUsage(), cost, latency,  # type: ignore[arg-type]
                      started_at=start)  # fmt: skip


def test_a_resumed_step_escalations_and_an_unfinished_step() -> None:
    run = RunRow("r", "wf", None, "task", "interrupted", None, 0.6, 1000.0, 1030.0)
    spans = [
        span("x", 1001, 1002, status="failed"),  # failed, then run again on resume
        span("x", 1010, 1012, escalations=1),
        span("y", 1012.5, None, ("x",)),  # killed while running
    ]
    calls = [call(None, 1000, 1, 0.1, "plan"), call("x", 1001, 0.5, 0.1),
             call("x", 1010, 1, 0.1), call("x", 1011, 1, 0.2), call("y", 1013, 1, 0.1)]  # fmt: skip
    attempts = [FailedAttempt("w", "wm", "solve", "x", 1, 2, "timeout", "timed out", None,
                              1001.5, 0.5, None)]  # fmt: skip
    timeline = build_timeline(run, calls, attempts, spans)
    steps = [b for b in timeline.bars if b.type == "step"]
    assert [(b.label, b.status, b.escalations, round(b.cost_usd, 6)) for b in steps] == [
        ("x", "failed", 0, 0.1), ("x", "done", 1, 0.3), ("y", "running", 0, 0.1),
    ]  # fmt: skip
    assert steps[0].retries == 1 and steps[1].retries == 0
    assert steps[2].end_s == timeline.wall_s == 30  # unfinished: drawn to the run's end
    assert timeline.critical_path == ("call:0", "step:x#1", "step:y#2")
    assert timeline.cost_usd == pytest.approx(0.6)
    svg = timeline_svg(timeline)
    ET.fromstring(svg)
    assert "↑1" in svg  # the escalation is marked on its bar


def test_an_empty_run_still_draws() -> None:
    run = RunRow("r", "wf", None, "task", "failed", "boom", 0.0, 1000.0, 1000.0)
    timeline = build_timeline(run, [], [], [])
    assert timeline.bars == () and timeline.critical_path == () and timeline.wall_s == 0
    ET.fromstring(timeline_svg(timeline))


def test_a_run_logged_before_steps_and_attempts_were_recorded_still_shows(tmp_path: Path) -> None:
    from tests.test_storage import make_old_runlog

    home = tmp_path / "home"
    home.mkdir()
    make_old_runlog(home / "runs.sqlite")  # upgraded when opened: no step or attempt rows
    out = run_cli("show", "old", "--json", ORCHESTRATOR_HOME=str(home))
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert [b["type"] for b in document["bars"]] == ["call"] * 4
    assert document["cost_usd"] == pytest.approx(1.0)
    assert [document["bars"][i]["label"] for i in (0, -1)] == ["plan", "synthesize"]
