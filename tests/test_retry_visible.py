"""Retries and waits are visible: every failed attempt of a model call becomes a `CallRetried`
event as it fails (reason, attempt, wait), a line on stderr when the run is piped, a row in the
run log (unbilled, with its reason and duration), and a retrying call in the live view.

Against the scripted server over real sockets: 503s with Retry-After, dropped connections,
bodies that are not JSON, errors inside a 200, and responses that never complete (timeouts).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from orchestrator import (
    CallFinished,
    CallRetried,
    EndpointError,
    Event,
    FailedAttempt,
    RunFinished,
    Workflow,
    parse_workflow,
)
from orchestrator.cli.view import LiveRun, retry_line, retry_text
from orchestrator.storage import open_storage
from tests.clirun import run_cli
from tests.conftest import TEST_KEY
from tests.fakeserver import FakeOpenAI, Fault

# The plan and the answer come from `writer`; the one step (s1, generate) from `gen`, so faults
# queued for gen-model hit the step's call and nothing else.
WORKFLOW = """
name: retries
models:
  writer: {model: write-model, retries: 3, price: {input: 1, output: 2}}
  gen: {model: gen-model, retries: 3, timeout_s: 0.5, price: {input: 3, output: 6}}
roles: {plan: writer, reason: writer, generate: gen, synthesize: writer}
"""
PLAN = {"subproblems": [{"id": "s1", "kind": "generate", "task": "add it up"}]}
NOW = {"Retry-After": "0"}


@pytest.fixture
def server(openai_env: FakeOpenAI) -> FakeOpenAI:
    openai_env.set_plan(PLAN)
    return openai_env


async def run(home: Path, run_id: str = "r1", yaml: str = WORKFLOW) -> list[Event]:
    workflow = Workflow(parse_workflow(yaml), home=home)
    return [event async for event in workflow.astream("What is 2+3?", run_id=run_id)]


async def logged(home: Path, run_id: str = "r1") -> list[FailedAttempt]:
    async with open_storage(home) as storage:
        return await storage.runs.attempts(run_id)


def retried(events: list[Event]) -> list[FailedAttempt]:
    return [e.attempt for e in events if isinstance(e, CallRetried)]


async def test_each_kind_of_failure_is_an_event_with_reason_attempt_and_wait(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.enqueue(Fault(status=503, headers={"Retry-After": "0.2"}), model="gen-model")
    server.enqueue(Fault(drop=True), model="gen-model")
    server.enqueue(Fault(malformed=True), model="gen-model")
    events = await run(tmp_path)
    result = events[-1]
    assert isinstance(result, RunFinished) and result.result.status == "completed"
    attempts = retried(events)
    assert [(a.reason, a.status, a.number, a.attempts) for a in attempts] == [
        ("status", 503, 1, 4),
        ("connection", None, 2, 4),
        ("malformed", None, 3, 4),
    ]
    assert all((a.profile, a.model, a.step, a.purpose) == ("gen", "gen-model", "s1", "solve")
               for a in attempts)  # fmt: skip
    assert attempts[0].wait_s == pytest.approx(0.2)  # the server's Retry-After
    assert attempts[0].detail == "HTTP 503: fake fault 503"
    assert "dropped" in attempts[1].detail and "not JSON" in attempts[2].detail
    assert all(a.wait_s is not None and 0 <= a.wait_s < 20 for a in attempts)
    # Each CallRetried comes as its attempt fails, before the step's one CallFinished.
    of_s1 = [e for e in events if isinstance(e, CallRetried) or (
        isinstance(e, CallFinished) and e.call.step == "s1")]  # fmt: skip
    assert [type(e).__name__ for e in of_s1] == ["CallRetried"] * 3 + ["CallFinished"]
    step_calls = [e.call for e in events if isinstance(e, CallFinished) and e.call.step == "s1"]
    assert len(step_calls) == 1  # failed attempts are not billed calls
    assert step_calls[0].started_at >= attempts[-1].started_at + attempts[-1].duration_s


async def test_the_run_log_keeps_failed_attempts_unbilled(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.enqueue(Fault(status=429, headers={"Retry-After": "0.1"}), model="gen-model")
    server.enqueue(Fault(status=200, body={"error": {"message": "upstream hiccup"}}, headers=NOW),
                   model="gen-model")  # fmt: skip
    events = await run(tmp_path)
    rows = await logged(tmp_path)
    assert rows == retried(events)  # the same records, in order
    assert [(r.reason, r.status) for r in rows] == [("status", 429), ("error", 200)]
    assert "upstream hiccup" in rows[1].detail
    assert all(r.duration_s > 0 and r.started_at > 0 for r in rows)
    final = events[-1]
    assert isinstance(final, RunFinished)
    billed = sum(e.call.cost_usd for e in events if isinstance(e, CallFinished))
    assert final.result.usage.cost_usd == pytest.approx(billed)  # nothing for the attempts
    assert final.result.usage.by_profile["gen"].calls == 1


async def test_timeouts_are_retried_visibly_and_the_last_failure_is_logged(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    # Two attempts, both timing out (the body trickles forever): one retry, then the call fails.
    yaml = WORKFLOW.replace("retries: 3, timeout_s: 0.5", "retries: 1, timeout_s: 0.4")
    for _ in range(2):
        server.enqueue(Fault(trickle=0.05), model="gen-model")
    events = await run(tmp_path, yaml=yaml)
    final = events[-1]
    assert isinstance(final, RunFinished) and final.result.status == "failed"
    [event] = retried(events)
    assert (event.reason, event.number, event.attempts) == ("timeout", 1, 2)
    assert "timeout_s=0.4" in event.detail
    rows = await logged(tmp_path)
    assert [(r.reason, r.number) for r in rows] == [("timeout", 1), ("timeout", 2)]
    assert rows[1].wait_s is None  # no attempt followed: the call failed
    assert all(r.duration_s == pytest.approx(0.4, abs=0.3) for r in rows)


async def test_a_refused_request_is_logged_once_without_retry(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.enqueue(Fault(status=401, body={"error": {"message": f"bad key {TEST_KEY}"}}),
                   model="gen-model")  # fmt: skip
    with pytest.raises(EndpointError, match="HTTP 401"):  # the caller must fix it: raised
        await run(tmp_path)
    [row] = await logged(tmp_path)
    assert (row.reason, row.status, row.number, row.wait_s) == ("status", 401, 1, None)
    assert TEST_KEY not in row.detail and "***" in row.detail  # the echoed key is redacted


def test_piped_runs_print_a_line_per_retry(server: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    server.enqueue(Fault(status=503, headers={"Retry-After": "0.1"}), model="gen-model")
    server.enqueue(Fault(drop=True), model="gen-model")
    server.enqueue(Fault(status=503, headers=NOW), model="write-model")  # the plan's call
    out = run_cli("run", str(path), "--input", "What is 2+3?", "--run-id", "piped")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("retry ")]
    assert len(lines) == 3, out.stderr
    assert lines[0] == (
        "retry 1/3 in 0.0s: plan on writer (write-model): HTTP 503: fake fault 503 "
        + lines[0][lines[0].index("(attempt 1 took") :]
    )
    assert lines[1].startswith("retry 1/3 in 0.1s: s1 on gen (gen-model): HTTP 503: fake fault")
    assert (
        lines[2].startswith("retry 2/3 in ")
        and "s1 on gen (gen-model): the connection" in (lines[2])
    )
    assert "(attempt 2 took" in lines[2]
    assert "retry" not in out.stdout  # the answer alone goes to stdout


def test_json_runs_print_no_retry_lines(server: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    server.enqueue(Fault(status=503, headers=NOW), model="gen-model")
    out = run_cli("run", str(path), "--input", "What is 2+3?", "--json")
    assert out.returncode == 0, out.stderr
    assert "retry" not in out.stderr


def attempt(step: str | None, number: int = 2, wait: float = 3.1) -> FailedAttempt:
    return FailedAttempt("gen", "gen-model", "solve" if step else "plan", step, number, 4,
                         "status", "HTTP 503: busy", 503, 0.0, 0.1, wait)  # fmt: skip


def rendered(view: LiveRun) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(view.render())
    return console.export_text()


async def test_the_live_view_shows_a_retrying_call_until_it_answers(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.enqueue(Fault(status=503, headers=NOW), model="gen-model")
    events = await run(tmp_path)
    view = LiveRun()
    seen_retrying = False
    for event in events[:-1]:
        view.update(event)
        text = rendered(view)
        if isinstance(event, CallRetried):
            assert "retry 1/3: 503" in text  # the wait (0 s) is over: the next attempt runs
            seen_retrying = True
        if isinstance(event, CallFinished) and event.call.step == "s1":
            assert "retry" not in text  # answered: the row is a row again
    assert seen_retrying


def test_the_live_view_counts_the_wait_down() -> None:
    now = [100.0]
    view = LiveRun(clock=lambda: now[0])
    view.update(CallRetried(attempt(None, number=1, wait=30)))
    assert "planning · $0.0000 so far · retry 1/3 in 30.0s: 503" in rendered(view)
    now[0] += 12.5  # redrawn at every refresh: the wait counts down
    assert "planning · $0.0000 so far · retry 1/3 in 17.5s: 503" in rendered(view)
    now[0] += 20  # the wait is over: the next attempt is under way
    assert "planning · $0.0000 so far · retry 1/3: 503" in rendered(view)
    assert retry_text(attempt("s1"), 3.1) == "retry 2/3 in 3.1s: 503"
    assert retry_text(attempt("s1"), 0) == "retry 2/3: 503"
    timeout = FailedAttempt("g", "m", "solve", "s1", 1, 2, "timeout", "timed out", None, 0, 1, 0)
    assert retry_text(timeout, 0.5) == "retry 1/1 in 0.5s: timeout"
    assert retry_line(attempt("s1")) == (
        "retry 2/3 in 3.1s: s1 on gen (gen-model): HTTP 503: busy (attempt 2 took 0.10s)"
    )
