"""End to end: the real `orchestrator` CLI in a subprocess against the fake OpenAI server.

Each test writes a workflow (a reasoning `thinker` and a `writer`) to tmp_path, runs
`python -m orchestrator.cli` with the fake's base URL, and checks the DESIGN.md contract:
the `--json` shape, routing, trace isolation, cost, exit codes, and that the key never leaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.fakeserver import FakeOpenAI, Fault, Recorded, Reply

SECRET = "sk-test-SECRET123456"
THINKER, WRITER = "o4-mini", "gpt-4o-mini"
ROOT = Path(__file__).resolve().parent.parent
# Billed per request by `Script`: (prompt, cached, completion, reasoning) tokens.
BILLED = {THINKER: (1000, 400, 300, 120), WRITER: (500, 100, 80, 0)}
# USD per 1M tokens, as in the YAML below: (input, cached_input, output); writer's cached = input.
PRICE = {THINKER: (1.10, 0.275, 4.40), WRITER: (0.15, 0.15, 0.60)}
ANSWERS = {"TASK_ALPHA": "ALPHA-RESULT", "TASK_BETA": "BETA-RESULT", "TASK_GAMMA": "GAMMA-RESULT"}
PLAN = {
    "subproblems": [
        {"id": "s1", "kind": "reason", "task": "TASK_ALPHA: weigh the options", "depends_on": []},
        {"id": "s2", "kind": "generate", "task": "TASK_BETA: list the options", "depends_on": []},
        {
            "id": "s3",
            "kind": "generate",
            "task": "TASK_GAMMA: write it up",
            "depends_on": ["s1", "s2"],
        },
    ]
}
CYCLIC = {
    "subproblems": [
        {"id": "s1", "kind": "reason", "task": "TASK_ALPHA", "depends_on": ["s2"]},
        {"id": "s2", "kind": "generate", "task": "TASK_BETA", "depends_on": ["s1"]},
    ]
}
TASK = "Choose a database for a small analytics service."
SUBPROBLEM_KEYS = {"id", "kind", "profile", "model", "status", "output", "route"}
PROFILE_KEYS = {
    "model",
    "calls",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
}


def last_user(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m["role"] == "user"]
    return str(users[-1]["content"]) if users else ""


def script(body: dict[str, Any]) -> Reply:
    """Plans come from `set_plan`; a solve naming one TASK_ keyword gets that keyword's answer;
    anything else (the synthesizer) echoes its prompt, so a leaked trace would show in the answer.
    Every reply bills the fixed token counts in BILLED."""
    prompt, cached, completion, reasoning = BILLED[body["model"]]
    user = last_user(body)
    keys = [k for k in ANSWERS if k in user]
    if "response_format" in body:
        content = None
    elif len(keys) == 1:
        content = ANSWERS[keys[0]]
    else:
        content = "FINAL ANSWER\n" + user
    return Reply(
        content=content,
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        reasoning_tokens=reasoning,
    )


def write_workflow(tmp_path: Path, thinker: str = "", writer: str = "") -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: cli-test\n"
        "models:\n"
        "  thinker:\n"
        f"    model: {THINKER}\n"
        "    api_key: ${OPENAI_API_KEY}\n"
        "    reasoning: true\n"
        "    reasoning_effort: low\n"
        "    max_output_tokens: 2000\n"
        "    price: {input: 1.10, cached_input: 0.275, output: 4.40}\n"
        f"{thinker}"
        "  writer:\n"
        f"    model: {WRITER}\n"
        "    temperature: 0.2\n"
        "    price: {input: 0.15, output: 0.60}\n"
        f"{writer}"
        "roles: {plan: thinker, reason: thinker, generate: writer, synthesize: writer}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.configure_model(THINKER, reasoning=True, cached_tokens=400)
    fake_openai.configure_model(WRITER, cached_tokens=100)
    fake_openai.set_plan(PLAN)
    fake_openai.responder = script
    return fake_openai


@pytest.fixture
def cli(fake: FakeOpenAI, tmp_path: Path) -> Any:
    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "ORCHESTRATOR_")) and k not in ("COLUMNS", "LINES")
        }
        env.update(
            OPENAI_BASE_URL=fake.base_url,
            OPENAI_API_KEY=SECRET,
            ORCHESTRATOR_HOME=str(tmp_path),
            ORCHESTRATOR_PLAIN="1",
        )
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )
        assert SECRET not in proc.stdout and SECRET not in proc.stderr
        return proc

    return run


def run_json(cli: Any, wf: Path, *extra: str, code: int = 0) -> dict[str, Any]:
    proc = cli("run", str(wf), "--input", TASK, "--json", *extra)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)  # the whole stdout is the one JSON object


def assert_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Exit `code`, no traceback, one message line (argparse's usage synopsis aside)."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and not line.startswith(("usage:", " "))
    ]
    assert len(lines) == 1, f"expected a one-line error, got {proc.stderr!r}"
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def assert_no_secret_on_disk(home: Path) -> None:
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.startswith("checkpoints.sqlite") for p in files), files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def solve_requests(fake: FakeOpenAI) -> dict[str, Recorded]:
    """Solve requests by the TASK_ keyword they carry (the synthesizer's carries several)."""
    out = {}
    for r in fake.requests:
        keys = [k for k in ANSWERS if k in last_user(r.body)]
        if not r.is_plan and len(keys) == 1:
            out[keys[0]] = r
    return out


def expected_profile(model: str, calls: int) -> dict[str, Any]:
    prompt, cached, completion, reasoning = BILLED[model]
    p_in, p_cached, p_out = PRICE[model]
    cost = ((prompt - cached) * p_in + cached * p_cached + completion * p_out) / 1e6
    return {
        "model": model,
        "calls": calls,
        "input_tokens": calls * prompt,
        "cached_input_tokens": calls * cached,
        "output_tokens": calls * completion,
        "reasoning_tokens": calls * reasoning,
        "cost_usd": pytest.approx(calls * cost, abs=1e-8),
    }


# --- run --json ------------------------------------------------------------------------------


@pytest.mark.parametrize("trace_style", ["reasoning_content", "think"])
def test_run_json_contract_routing_traces_and_cost(
    cli: Any, fake: FakeOpenAI, tmp_path: Path, trace_style: Any
) -> None:
    fake.configure_model(THINKER, reasoning=True, trace_style=trace_style, cached_tokens=400)
    result = run_json(cli, write_workflow(tmp_path))

    assert set(result) == {"run_id", "status", "output", "subproblems", "usage", "error"}
    assert result["status"] == "completed" and result["error"] is None
    assert isinstance(result["run_id"], str) and result["run_id"]
    subs = result["subproblems"]
    assert [set(s) for s in subs] == [SUBPROBLEM_KEYS] * 3
    assert [
        (s["id"], s["kind"], s["profile"], s["model"], s["status"], s["output"]) for s in subs
    ] == [
        ("s1", "reason", "thinker", THINKER, "done", "ALPHA-RESULT"),
        ("s2", "generate", "writer", WRITER, "done", "BETA-RESULT"),
        ("s3", "generate", "writer", WRITER, "done", "GAMMA-RESULT"),
    ]

    # Routing, as the server saw it: plan and reason on the thinker, the rest on the writer.
    solves = solve_requests(fake)
    assert {k: r.model for k, r in solves.items()} == {
        "TASK_ALPHA": THINKER,
        "TASK_BETA": WRITER,
        "TASK_GAMMA": WRITER,
    }
    assert [r.model for r in fake.requests if r.is_plan] == [THINKER]
    assert all(r.outcome == "ok" for r in fake.requests)
    assert len(fake.requests) == 5  # plan, three solves, synthesize

    # The dependent gets its dependencies' answers; no trace reaches any prompt or the answer.
    dependent = last_user(solves["TASK_GAMMA"].body)
    assert "ALPHA-RESULT" in dependent and "BETA-RESULT" in dependent
    for r in fake.requests:
        assert "TRACE" not in json.dumps(r.body), r.body
    assert result["output"].startswith("FINAL ANSWER")
    assert "ALPHA-RESULT" in result["output"] and "GAMMA-RESULT" in result["output"]
    assert "TRACE" not in result["output"] and "think>" not in result["output"]

    # Reasoning-model rules (127.0.0.1 is not api.openai.com, so the role is "system").
    for r in fake.requests:
        roles = [m["role"] for m in r.body["messages"]]
        assert "developer" not in roles and roles[0] == "system"
        if r.model == THINKER:
            assert "max_completion_tokens" in r.body and "max_tokens" not in r.body
            assert "temperature" not in r.body and "top_p" not in r.body
        else:
            assert r.body.get("temperature") == 0.2

    # Cost: the formula over the usage the server billed, with the cached price mattering.
    calls = {m: sum(r.model == m for r in fake.requests) for m in (THINKER, WRITER)}
    usage = result["usage"]
    assert set(usage) == {"cost_usd", "by_profile", "counterfactual"}
    assert set(usage["by_profile"]) == {"thinker", "writer"}
    assert all(set(p) == PROFILE_KEYS for p in usage["by_profile"].values())
    assert usage["by_profile"]["thinker"] == expected_profile(THINKER, calls[THINKER])
    assert usage["by_profile"]["writer"] == expected_profile(WRITER, calls[WRITER])
    total = sum(expected_profile(m, n)["cost_usd"].expected for m, n in calls.items())
    assert usage["cost_usd"] == pytest.approx(total, abs=1e-8)

    # Counterfactual: every billed call's tokens at one profile's prices; the writer does not
    # reason, so the thinker's reasoning tokens are dropped when re-priced at its rates.
    def at(model: str, prompt: int, cached: int, out: int) -> float:
        p_in, p_cached, p_out = PRICE[model]
        return ((prompt - cached) * p_in + cached * p_cached + out * p_out) / 1e6

    billed = [BILLED[m] for m in (THINKER, WRITER) for _ in range(calls[m])]
    assert usage["counterfactual"] == {
        "all_reason_usd": pytest.approx(sum(at(THINKER, p, c, o) for p, c, o, _ in billed)),
        "all_generate_usd": pytest.approx(sum(at(WRITER, p, c, o - r) for p, c, o, r in billed)),
        "reason_profile": "thinker",
        "generate_profile": "writer",
        "estimate": True,
    }
    assert_no_secret_on_disk(tmp_path)


def test_input_from_stdin_and_run_id(cli: Any, fake: FakeOpenAI, tmp_path: Path) -> None:
    wf = write_workflow(tmp_path)
    proc = cli("run", str(wf), "--input", "-", "--json", "--run-id", "my-run-42", stdin=TASK)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["run_id"] == "my-run-42" and result["status"] == "completed"
    plan = next(r for r in fake.requests if r.is_plan)
    assert TASK in last_user(plan.body)


def test_instruction_role_developer_is_forced(cli: Any, fake: FakeOpenAI, tmp_path: Path) -> None:
    wf = write_workflow(tmp_path, thinker="    instruction_role: developer\n")
    assert run_json(cli, wf)["status"] == "completed"
    for r in fake.requests:
        first = r.body["messages"][0]["role"]
        assert first == ("developer" if r.model == THINKER else "system"), (r.model, first)


def test_plain_mode_answer_on_stdout_usage_on_stderr(
    cli: Any, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.configure_model(THINKER, reasoning=True, trace_style="reasoning_content")
    proc = cli("run", str(write_workflow(tmp_path)), "--input", TASK)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("FINAL ANSWER")
    assert "ALPHA-RESULT" in proc.stdout and "TRACE" not in proc.stdout
    assert "usage" not in proc.stdout and "cost" not in proc.stdout
    for word in ("usage", "thinker", "writer", THINKER, "completed"):
        assert word in proc.stderr, word
    assert "Traceback" not in proc.stderr


# --- exit codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("missing-file", ["missing.yaml"]),
        ("yaml-syntax", ["wf.yaml:3"]),
        ("unknown-key", ["wf.yaml:14", "models.writer", "colour"]),
        ("unset-var", ["wf.yaml:10", "ORCH_TEST_UNSET_VAR"]),
        ("missing-input", ["--input"]),
    ],
)
def test_usage_and_spec_errors_exit_2(
    cli: Any, tmp_path: Path, case: str, needles: list[str]
) -> None:
    wf = tmp_path / "wf.yaml"
    if case == "missing-file":
        wf = tmp_path / "missing.yaml"
    elif case == "yaml-syntax":
        wf.write_text("name: broken\ndescription: a workflow\n  models: oops\n")
    elif case == "unknown-key":
        write_workflow(tmp_path, writer="    colour: blue\n")
    elif case == "unset-var":
        write_workflow(tmp_path, thinker="    base_url: ${ORCH_TEST_UNSET_VAR}\n")
    else:
        write_workflow(tmp_path)
    args = ["run", str(wf)] if case == "missing-input" else ["run", str(wf), "--input", TASK]
    assert_error(cli(*args), 2, *needles)


@pytest.mark.slow
def test_permanent_500_fails_with_exit_1_and_keeps_finished_work(
    cli: Any, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.configure_model(THINKER, reasoning=True, latency=0.3)  # s1 lands after s2 failed
    fake.enqueue(Fault(status=500), model=WRITER)
    wf = write_workflow(tmp_path, writer="    retries: 0\n")
    result = run_json(cli, wf, code=1)
    assert result["status"] == "failed" and result["output"] == ""
    assert result["error"] and result["error"]["message"]
    by_id = {s["id"]: s for s in result["subproblems"]}
    assert (by_id["s1"]["status"], by_id["s1"]["output"]) == ("done", "ALPHA-RESULT")
    assert by_id["s2"]["status"] == "failed"
    assert by_id["s3"]["status"] != "done"
    assert [r.outcome for r in fake.requests if r.model == WRITER] == ["fault:500"]
    assert result["usage"]["by_profile"]["thinker"]["calls"] == 2  # plan + s1, still billed
    assert_no_secret_on_disk(tmp_path)


def test_bad_key_401_exits_2_naming_profile_without_the_key(
    cli: Any, fake: FakeOpenAI, tmp_path: Path
) -> None:
    echo = {
        "error": {
            "message": f"Incorrect API key provided: {SECRET}.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    fake.enqueue(Fault(status=401, body=echo), model=THINKER)
    proc = cli("run", str(write_workflow(tmp_path)), "--input", TASK, "--json")
    line = assert_error(proc, 2, "thinker")
    assert "api key" in line.lower()
    assert len(fake.requests) == 1  # a bad key is not retried
    assert_no_secret_on_disk(tmp_path)


# --- validate, graph, schema -------------------------------------------------------------------


@pytest.mark.slow
def test_validate_graph_and_schema(cli: Any, tmp_path: Path) -> None:
    wf = write_workflow(tmp_path)
    proc = cli("validate", str(wf))
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc
    picture = tmp_path / "pic.svg"
    proc = cli("graph", str(wf), "--out", str(picture))
    assert proc.returncode == 0 and proc.stdout.startswith("flowchart"), proc
    assert "thinker" in proc.stdout and "writer" in proc.stdout
    svg = ElementTree.fromstring(picture.read_text())
    assert svg.tag.endswith("svg") and "thinker" in picture.read_text()
    proc = cli("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["additionalProperties"] is False
    assert {"name", "models", "roles", "limits"} <= set(schema["properties"])


# --- plan repair, re-plan, fallback --------------------------------------------------------------


def test_plan_with_self_and_unknown_dependency_is_repaired(
    cli: Any, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.set_plan(
        {
            "subproblems": [
                {"id": "s1", "kind": "reason", "task": "TASK_ALPHA", "depends_on": ["s1", "s9"]},
                {"id": "s2", "kind": "generate", "task": "TASK_BETA", "depends_on": ["s1"]},
            ]
        }
    )
    result = run_json(cli, write_workflow(tmp_path))
    assert result["status"] == "completed"
    assert [(s["id"], s["status"]) for s in result["subproblems"]] == [
        ("s1", "done"),
        ("s2", "done"),
    ]
    assert sum(r.is_plan for r in fake.requests) == 1  # repaired, not re-planned
    assert "ALPHA-RESULT" in last_user(solve_requests(fake)["TASK_BETA"].body)


def test_cyclic_plan_is_replanned_with_the_error(
    cli: Any, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.enqueue(Reply(content=json.dumps(CYCLIC)), model=THINKER)
    result = run_json(cli, write_workflow(tmp_path))
    assert result["status"] == "completed"
    assert [s["id"] for s in result["subproblems"]] == ["s1", "s2", "s3"]
    plans = [r for r in fake.requests if r.is_plan]
    assert len(plans) == 2
    assert "cycle" in last_user(plans[1].body).lower()


def test_plan_that_stays_invalid_falls_back_to_one_subproblem(
    cli: Any, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.set_plan(CYCLIC)
    result = run_json(cli, write_workflow(tmp_path))
    assert result["status"] == "completed"
    assert [(s["id"], s["kind"], s["profile"], s["status"]) for s in result["subproblems"]] == [
        ("s1", "reason", "thinker", "done")
    ]
    assert sum(r.is_plan for r in fake.requests) >= 2
