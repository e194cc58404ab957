"""Hardening: what a real user hits, through the real CLI in subprocesses against the scripted
server. Signals mid-run, two processes on one run, a reader that goes away, broken or full
state directories, bad and huge input, runaway plans, and template syntax inside model output.

Each failure must be ONE line on stderr (no traceback) with the right exit code, and nothing
paid for may be lost or paid twice. Nothing here sleeps to synchronise: the server holds a
request on a `threading.Event` the test controls (`Gates`), and waits poll a condition with a
deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow, load_workflow, parse_workflow
from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI, Fault, Reply

WORKFLOW = """
name: hardening
models:
  thinker: {model: think-model, reasoning: true, retries: 0, price: {input: 2, output: 8}}
  writer: {model: write-model, retries: 0, price: {input: 0.1, output: 0.4}}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""

# `slow` waits for `fast`, so when slow's request reaches the server, fast has finished.
PLAN = {
    "subproblems": [
        {"id": "fast", "kind": "generate", "task": "quick part", "depends_on": []},
        {"id": "slow", "kind": "reason", "task": "slow deep part", "depends_on": ["fast"]},
        {"id": "last", "kind": "generate", "task": "final part", "depends_on": ["slow"]},
    ]
}
ONE_STEP = {"subproblems": [{"id": "s1", "kind": "generate", "task": "summarise it"}]}
WAIT_S = 30.0  # the most any condition is waited for; the tests take far less


# --- what the server saw ------------------------------------------------------------------


def instruction(body: dict[str, Any]) -> str:
    return str(body["messages"][0]["content"])


def user_text(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def subproblem_of(body: dict[str, Any]) -> str | None:
    """The subproblem a solve request asks about; None for other requests."""
    if not instruction(body).startswith("You solve one subproblem"):
        return None
    return user_text(body).split("Your subproblem:")[-1].strip()


def is_synthesis(body: dict[str, Any]) -> bool:
    return instruction(body).startswith("You write the final answer")


def solve_counts(server: FakeOpenAI) -> Counter[str]:
    """How many times each subproblem was asked, by its task text."""
    return Counter(s for r in server.requests if (s := subproblem_of(r.body)) is not None)


def plan_count(server: FakeOpenAI) -> int:
    return sum(r.is_plan for r in server.requests)


# --- holding requests on the server --------------------------------------------------------


@dataclass
class Gate:
    """Holds the first `times` requests that `match` on the server until `release()`."""

    match: Callable[[dict[str, Any]], bool]
    times: int = 1
    held: threading.Event = field(default_factory=threading.Event)  # one is being held now
    opened: threading.Event = field(default_factory=threading.Event)
    arrivals: int = 0

    def release(self) -> None:
        self.opened.set()

    def wait_held(self) -> None:
        assert self.held.wait(WAIT_S), "the request never reached the server"


class Gates:
    """The server's latency callable: every request passes each gate in turn."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: list[Gate] = []

    def hold(self, match: Callable[[dict[str, Any]], bool], times: int = 1) -> Gate:
        gate = Gate(match, times)
        with self._lock:
            self._gates.append(gate)
        return gate

    def __call__(self, body: dict[str, Any]) -> float:
        with self._lock:
            gates = list(self._gates)
        for gate in gates:
            if not gate.match(body):
                continue
            with self._lock:
                gate.arrivals += 1
                hold = gate.arrivals <= gate.times
            if hold:
                gate.held.set()
                gate.opened.wait(WAIT_S)
        return 0.0

    def release_all(self) -> None:
        with self._lock:
            for gate in self._gates:
                gate.release()


@pytest.fixture
def gates(openai_env: FakeOpenAI) -> Iterator[Gates]:
    held = Gates()
    openai_env.configure_model("think-model", reasoning=True, latency=held)
    openai_env.configure_model("write-model", latency=held)
    openai_env.set_plan(PLAN)
    yield held
    held.release_all()  # before the server stops: a held handler thread would block it


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    return path


# --- running the CLI ----------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "ORCHESTRATOR_PLAIN": "1", **extra}


_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """A test that failed half-way must not leave its CLI processes running."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_cli(*args: str, stdin: Any = subprocess.DEVNULL, **popen: Any) -> subprocess.Popen[bytes]:
    env = cli_env(**popen.pop("env", {}))
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", *args], stdin=stdin, env=env, **popen
    )
    _started.append(proc)
    return proc


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


def run_all(*calls: tuple[tuple[str, ...], bytes | None, dict[str, str]]) -> list[Done]:
    """Run several CLI commands at once (args, stdin bytes, extra env); their results in order."""
    procs = [(start_cli(*args, stdin=subprocess.PIPE, env=env), data) for args, data, env in calls]
    done = []
    for proc, data in procs:
        out, err = proc.communicate(data or b"", timeout=WAIT_S * 2)
        done.append(Done(proc.returncode, out.decode(), err.decode()))
    return done


def one_line(err: str) -> str:
    """stderr that must be exactly one line: that line."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def listed_runs() -> dict[str, dict[str, Any]]:
    out = run_cli("runs", "--json")
    assert out.returncode == 0, out.stderr
    return {r["run_id"]: r for r in json.loads(out.stdout)}


# --- 1, 2: signals ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_mid_run_interrupts_it_and_resume_pays_nothing_twice(
    gates: Gates, fake_openai: FakeOpenAI, wf: Path, sig: int, code: int, word: str
) -> None:
    slow = gates.hold(lambda body: subproblem_of(body) == "slow deep part")
    proc = start_cli("run", str(wf), "--input", "task", "--run-id", "sig")
    slow.wait_held()  # fast has finished; slow's call is in flight on the server
    signalled = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=WAIT_S)
    assert time.monotonic() - signalled < 5, "the process did not exit promptly"
    slow.release()
    assert proc.returncode == code, err
    assert "Traceback" not in err.decode(), err
    assert err.decode().splitlines()[-1] == (
        f"{word}: run sig can be continued with `orchestrator resume sig`"
    )
    # Recorded as interrupted by the process itself (not just inferred from a dead pid).
    row = listed_runs()["sig"]
    assert (row["status"], row["error"]) == ("interrupted", "stopped before it finished")

    resumed = run_cli("resume", "sig", "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed"
    assert [s["status"] for s in result["subproblems"]] == ["done"] * 3
    assert plan_count(fake_openai) == 1  # no re-planning
    # fast had finished: never asked again; slow was in flight when stopped: asked again.
    assert solve_counts(fake_openai) == {"quick part": 1, "slow deep part": 2, "final part": 1}


# --- 3: two resumes at once ---------------------------------------------------------------


@pytest.mark.slow
def test_two_resumes_at_once_one_runs_the_other_refuses_naming_it(
    gates: Gates, fake_openai: FakeOpenAI, wf: Path
) -> None:
    fake_openai.enqueue(Fault(status=500), model="think-model")  # slow fails: resumable
    first = Workflow(load_workflow(wf)).run("task", run_id="busy")
    assert first.status == "failed"

    slow = gates.hold(lambda body: subproblem_of(body) == "slow deep part")
    runner = start_cli("resume", "busy", "--json")
    slow.wait_held()  # the first resume holds the run and is paying for slow
    other = run_cli("resume", "busy")
    assert other.returncode == 2
    assert one_line(other.stderr) == (
        f"error: run busy is being run by process {runner.pid} on {socket.gethostname()}: "
        "wait for it to finish (`orchestrator runs` shows its status), then resume it if needed"
    )
    slow.release()
    out, err = runner.communicate(timeout=WAIT_S)
    assert runner.returncode == 0, err
    assert json.loads(out)["status"] == "completed"
    assert plan_count(fake_openai) == 1
    # slow: the 500, then the one resume that ran it; nothing else twice, nothing from the other.
    assert solve_counts(fake_openai) == {"quick part": 1, "slow deep part": 2, "final part": 1}
    assert len(fake_openai.requests) == 1 + 4 + 1  # plan, four solves, one synthesis


# --- 4: a reader that goes away -----------------------------------------------------------


@pytest.mark.slow
def test_a_reader_that_stops_reading_does_not_stop_the_run(gates: Gates, wf: Path) -> None:
    synthesis = gates.hold(is_synthesis)
    proc = start_cli("run", str(wf), "--input", "task", "--run-id", "piped")
    synthesis.wait_held()
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head` exited before the answer was written
    synthesis.release()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=WAIT_S) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert err.splitlines()[-1] == "run piped: completed"
    assert listed_runs()["piped"]["status"] == "completed"


# --- 5, 6: broken state directories -------------------------------------------------------


def garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x13garbage, not SQLite at all\x00" * 200)
    return path


def assert_refused(done: Done, server: FakeOpenAI, *expected: str) -> str:
    """Exit 2, one line naming what is wrong and what to do, no call made, nothing claimed."""
    assert done.code == 2, done.err
    line = one_line(done.err)
    for part in expected:
        assert part in line, line
    claims = ("interrupted", "can be continued", "orchestrator resume", "completed")
    assert not any(claim in line for claim in claims), line
    assert server.requests == []
    return line


@pytest.mark.slow
def test_a_broken_state_directory_is_one_line_and_no_model_call(
    openai_env: FakeOpenAI, wf: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    runs_bad, checkpoints_bad = tmp_path / "runs_bad", tmp_path / "checkpoints_bad"
    garbage(runs_bad / "runs.sqlite")
    garbage(checkpoints_bad / "checkpoints.sqlite")
    run = ("run", str(wf), "--input", "task", "--run-id", "r1")
    under_file, bad_runs, bad_checkpoints = run_all(
        (run, None, {"ORCHESTRATOR_HOME": str(blocker / "sub")}),
        (run, None, {"ORCHESTRATOR_HOME": str(runs_bad)}),
        (run, None, {"ORCHESTRATOR_HOME": str(checkpoints_bad)}),
    )
    assert_refused(
        under_file, openai_env, f"{blocker} is a file, not a directory", "set ORCHESTRATOR_HOME"
    )
    assert_refused(
        bad_runs,
        openai_env,
        f"{runs_bad / 'runs.sqlite'} is not a valid SQLite database",
        "move it aside or delete it",
    )
    assert_refused(
        bad_checkpoints,
        openai_env,
        f"{checkpoints_bad / 'checkpoints.sqlite'} is not a valid SQLite database",
        "move it aside or delete it",
    )
    assert not (blocker / "sub").exists()
    # Nothing recorded a run that never started.
    if (checkpoints_bad / "runs.sqlite").exists():
        with sqlite3.connect(checkpoints_bad / "runs.sqlite") as db:
            assert db.execute("select count(*) from runs").fetchone() == (0,)


@pytest.mark.slow
def test_an_unwritable_state_directory_is_one_line_and_no_model_call(
    openai_env: FakeOpenAI, wf: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if os.geteuid() == 0:  # modes do not bind root; the immutable attribute does
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", home], capture_output=True).returncode:
            pytest.skip("running as root without a usable chattr +i: cannot make a dir unwritable")
        undo = [chattr, "-i", str(home)]
    else:
        home.chmod(0o555)
        undo = ["chmod", "755", str(home)]
    try:
        (done,) = run_all((("run", str(wf), "--input", "task"), None, {}))
    finally:
        subprocess.run(undo, check=True)
    assert_refused(
        done, openai_env, f"the state directory {home} is not writable", "make it writable"
    )
    assert list(home.iterdir()) == []


# --- 7: the disk fills up during a run ----------------------------------------------------

# Run inside a private mount namespace: a small tmpfs over the home, the run, then `runs`.
DISK_SCRIPT = """
mount -t tmpfs -o size="$SIZE" tmpfs "$ORCHESTRATOR_HOME" || exit 97
"$PY" -m orchestrator.cli run "$WF" --input task --run-id full >"$OUT/run.out" 2>"$OUT/run.err"
echo $? >"$OUT/run.rc"
"$PY" -m orchestrator.cli runs --json >"$OUT/runs.out" 2>"$OUT/runs.err"
"""


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_run_is_one_line_naming_the_file(
    gates: Gates, fake_openai: FakeOpenAI, wf: Path, tmp_path: Path
) -> None:
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("mounting a small tmpfs needs root and unshare")
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    out.mkdir()
    probe = subprocess.run([unshare, "-m", "mount", "-t", "tmpfs", "tmpfs", str(home)])
    if probe.returncode:
        pytest.skip("cannot mount a tmpfs in a private mount namespace here")
    # The databases fit in 1 MiB; the subproblems' 300 kB answers, checkpointed, do not.
    big = "x" * 300_000
    fake_openai.responder = lambda body: Reply(content=big) if subproblem_of(body) else None
    env = cli_env(
        ORCHESTRATOR_HOME=str(home), SIZE="1m", PY=sys.executable, WF=str(wf), OUT=str(out)
    )
    done = subprocess.run(
        [unshare, "-m", "sh", "-c", DISK_SCRIPT], env=env, capture_output=True, timeout=WAIT_S * 2
    )
    assert done.returncode == 0, done.stderr
    asked = fake_openai.requests
    assert [subproblem_of(r.body) for r in asked if not r.is_plan] == [
        "quick part",
        "slow deep part",
        "final part",
    ], "the run should have started (the databases fit) and solved the subproblems"
    # Their results could not be checkpointed: the run stops there, not paying for a synthesis.
    assert not any(is_synthesis(r.body) for r in asked)
    assert (out / "run.rc").read_text().strip() == "2"
    err = (out / "run.err").read_text()
    assert "Traceback" not in err, err
    line = err.splitlines()[-1]
    assert line.startswith(f"error: cannot write {home}/"), err
    assert "the disk is full" in line and "free some disk space" in line, line
    assert not any(word in err for word in ("completed", "can be continued")), err
    rows = {r["run_id"]: r for r in json.loads((out / "runs.out").read_text())}
    assert rows["full"]["status"] != "completed"


# --- 8, 9: input --------------------------------------------------------------------------


@pytest.mark.slow
def test_input_that_is_not_text_is_one_line_and_no_model_call(
    openai_env: FakeOpenAI, wf: Path, tmp_path: Path
) -> None:
    stdin = ("run", str(wf), "--input", "-")
    not_utf8, nul, argv = run_all(
        (stdin, b"caf\xe9 au lait", {}),
        (stdin, b"some text\x00then binary", {}),
        (("run", str(wf), "--input", os.fsdecode(b"caf\xe9")), None, {}),
    )
    assert_refused(
        not_utf8,
        openai_env,
        "error: the input on stdin is not UTF-8 text (byte 3: b'\\xe9'): convert it",
    )
    assert_refused(
        nul, openai_env, "error: the input on stdin contains NUL bytes: give text, not a binary"
    )
    assert_refused(argv, openai_env, "error: --input is not UTF-8 text (at character 3)")
    assert not (tmp_path / "home").exists()  # the input is read before anything is opened


@pytest.mark.slow
def test_a_5mb_task_runs_and_a_small_budget_refuses_it_naming_the_budget(
    gates: Gates, fake_openai: FakeOpenAI, wf: Path, tmp_path: Path
) -> None:
    fake_openai.set_plan(ONE_STEP)
    capped = tmp_path / "capped.yaml"
    capped.write_text(WORKFLOW + "limits: {budget_usd: 0.05, on_budget: stop}\n")
    task = "BIG TASK START " + "lorem ipsum dolor sit amet " * 200_000  # 5.4 MB
    started = time.monotonic()
    big, refused = run_all(
        (("run", str(wf), "--input", "-", "--run-id", "big"), task.encode(), {}),
        (("run", str(capped), "--input", "-", "--run-id", "capped"), task.encode(), {}),
    )
    assert big.code == 0, big.err
    assert big.err.splitlines()[-1] == "run big: completed"
    assert refused.code == 1, refused.err
    assert "Traceback" not in refused.err
    last = refused.err.splitlines()[-1]
    assert last.startswith("run capped: budget_exceeded (BudgetExceededError: plan on 'writer'")
    assert "of the $0.0500 budget: raise limits.budget_usd" in last
    # The run that completed made three calls (plan, solve, synthesis); the capped one none.
    assert [len(r.body["messages"][-1]["content"]) >= len(task) for r in fake_openai.requests] == [
        True
    ] * 3
    table = run_cli("runs")
    assert table.returncode == 0, table.stderr
    assert "BIG TASK START" in table.stdout and len(table.stdout) < 4000
    assert time.monotonic() - started < 30


# --- 10: a runaway planner ----------------------------------------------------------------


def runaway(deps: Callable[[int], list[str]], ids: Callable[[int], str]) -> Reply:
    items = [
        {"id": ids(i), "kind": "generate", "task": f"part {i}", "depends_on": deps(i)}
        for i in range(300)
    ]
    return Reply(content=json.dumps({"subproblems": items}))


@pytest.mark.slow
def test_a_planner_returning_300_subproblems_gets_short_errors_then_the_fallback(
    openai_env: FakeOpenAI, wf: Path
) -> None:
    server = openai_env
    server.configure_model("think-model", reasoning=True)
    # Each answer is too long, and otherwise broken in a way whose error could list everything.
    for reply in (
        runaway(lambda i: [f"s{(i + 1) % 300}"], lambda i: f"s{i}"),  # one big cycle
        runaway(lambda i: [], lambda i: f"d{i % 150}"),  # 150 ids, each twice
        runaway(lambda i: [], lambda i: f"p{i}"),
    ):
        server.enqueue(reply, model="write-model")
    done = run_cli("run", str(wf), "--input", "the task", "--run-id", "runaway")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "note: plan replaced by a single subproblem: the plan has 300 subproblems; the limit is 16"
    ) in done.stderr.splitlines()
    plans = [r.body for r in server.requests if r.is_plan]
    assert len(plans) == 3
    for body in plans[1:]:
        # Besides the planner's own answers, what goes back is short: no id listed 300 times.
        ours = [m["content"] for m in body["messages"] if m["role"] != "assistant"]
        errors = ours[-1]
        assert len(errors) < 400, errors
        assert len("".join(ours)) < 4000
    assert "the plan has 300 subproblems; the limit is 16" in user_text(plans[1])
    assert (
        "dependency cycle through 300 subproblems: s0 -> s1 -> s2 -> s3 -> s4 -> s5 -> s6 -> s7 "
        "-> ... -> s0"
    ) in user_text(plans[1])
    assert (
        "duplicate subproblem ids: d0, d1, d10, d100, d101, d102, d103, d104, ... (142 more)"
        in (user_text(plans[2]))
    )
    assert solve_counts(server) == {"the task": 1}  # the fallback: the whole task, once


# --- 11: template syntax in model output stays literal ------------------------------------

LITERAL = "{{ task }} ${HOME} {{ item }}"


@pytest.mark.slow
def test_template_syntax_in_model_output_is_passed_on_literally(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    server = openai_env
    server.configure_model("think-model", reasoning=True)
    server.set_plan(
        {
            "subproblems": [
                {"id": "a", "kind": "generate", "task": "first part", "depends_on": []},
                {"id": "b", "kind": "generate", "task": "second part", "depends_on": ["a"]},
            ]
        }
    )
    (tmp_path / "first.md").write_text("First.\n=== user ===\n{{ task }}\n")
    (tmp_path / "second.md").write_text("Second.\n=== user ===\nBuild on: {{ first }}\n{{ other }}")
    custom = tmp_path / "custom.yaml"
    custom.write_text(
        WORKFLOW.replace("name: hardening", "name: custom")
        + """
graph:
  output: second
  state: {other: SUBSTITUTED}
  nodes:
    first: {type: generate, prompt: first.md}
    second: {type: generate, prompt: second.md}
  edges:
    - {from: first, to: second}
    - {from: second, to: END}
"""
    )
    default = tmp_path / "wf.yaml"
    default.write_text(WORKFLOW)

    def respond(body: dict[str, Any]) -> Reply | None:
        if subproblem_of(body) == "first part":
            return Reply(content=LITERAL)
        if instruction(body) == "First.":
            return Reply(content="custom {{ other }} ${HOME} " + LITERAL)
        if is_synthesis(body) or instruction(body) == "Second.":
            return Reply(content="echo: " + user_text(body))  # the synthesizer echoes it
        return None

    server.responder = respond
    task = "a task with {{ subproblem }} and ${USER} in it"
    pipeline, graph = run_all(
        (("run", str(default), "--input", task, "--json"), None, {}),
        (("run", str(custom), "--input", task, "--json"), None, {}),
    )
    assert pipeline.code == 0 and graph.code == 0, pipeline.err + graph.err
    bodies = [r.body for r in server.requests]
    (second,) = [b for b in bodies if subproblem_of(b) == "second part"]
    assert f"Result of a:\n{LITERAL}\n" in user_text(second)
    assert task in user_text(second)  # the user's task is passed on literally too
    (synthesis,) = [b for b in bodies if is_synthesis(b)]
    assert f"[a] first part\n{LITERAL}" in user_text(synthesis)
    assert LITERAL in json.loads(pipeline.out)["output"]
    assert task in json.loads(pipeline.out)["output"]

    (node,) = [b for b in bodies if instruction(b) == "Second."]
    said = "custom {{ other }} ${HOME} " + LITERAL
    assert user_text(node) == f"Build on: {said}\nSUBSTITUTED"
    assert json.loads(graph.out)["output"] == f"echo: Build on: {said}\nSUBSTITUTED"
    assert os.environ["HOME"] not in json.loads(graph.out)["output"]


async def test_a_plan_repaired_300_times_says_so_briefly(openai_env: FakeOpenAI) -> None:
    openai_env.configure_model("think-model", reasoning=True)
    unknown = [f"ghost{i}" for i in range(300)]
    openai_env.set_plan(
        {
            "subproblems": [
                {"id": "a", "kind": "generate", "task": "one", "depends_on": unknown},
                {"id": "b", "kind": "generate", "task": "two", "depends_on": ["a", "b"]},
            ]
        }
    )
    result = await Workflow(parse_workflow(WORKFLOW)).arun("task")
    assert result.status == "completed"
    assert result.plan_note == (
        "plan repaired: "
        + "; ".join(f"dropped a's dependency on unknown id 'ghost{i}'" for i in range(8))
        + "; ... (293 more)"
    )
