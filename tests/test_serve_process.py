"""`orchestrator serve` as a user starts it: a real process. Refusals before binding, the key
on a public address, and a server killed with SIGKILL mid-run whose run a restarted server
continues without paying twice."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator.serve import load_served
from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI
from tests.test_serve_runs import Gate
from tests.test_serve_support import KEY, PLAN, WORKFLOW, follow, solve_calls, write_workflow


class Served:
    """`orchestrator serve ARGS` in a subprocess on a free port; stderr is collected."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "serve", "--port", "0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.base = self._wait_for_port()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)

    def _wait_for_port(self) -> str:
        while True:
            try:
                line = self.lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError("serve did not start:\n" + "".join(self.log)) from None
            if "Uvicorn running on" in line:
                return line.split("running on ")[1].split()[0].replace("0.0.0.0", "127.0.0.1")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self.reader.join(30)  # every line it wrote is in `log`
        return code

    def shut_down(self) -> None:
        """Stop as a service manager does (SIGTERM); uvicorn finishes, then re-raises it."""
        assert self.stop() in (0, -signal.SIGTERM)
        assert any("Application shutdown complete" in line for line in self.log)


@contextlib.contextmanager
def server(*args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    served = Served(*args, env=env)
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait(timeout=30)


def checkpointed(home: Path, run_id: str) -> set[str]:
    """The subproblem ids whose results the run's checkpoint holds."""
    path = home / "checkpoints.sqlite"
    if not path.exists():
        return set()
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        try:
            rows = db.execute(
                "select value from writes where thread_id = ? and channel = '__return__'",
                (run_id,),
            )
            heads = [bytes(value)[:24] for (value,) in rows]
        except sqlite3.OperationalError:
            return set()
    return {sid for sid in ("fast1", "slow", "last") if any(sid.encode() in h for h in heads)}


def test_refusals_are_one_line_and_exit_2(
    openai_env: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_SERVE_KEY", raising=False)
    env: dict[str, str] = {}
    wf = str(write_workflow(tmp_path))
    public = run_cli("serve", wf, "--host", "0.0.0.0", **env)
    assert public.returncode == 2
    assert public.stderr.startswith("error: refusing to listen on 0.0.0.0 without an API key")
    assert "ORCHESTRATOR_SERVE_KEY" in public.stderr and "Traceback" not in public.stderr
    (tmp_path / "other").mkdir()
    twin = write_workflow(tmp_path / "other")
    (tmp_path / "bad.yaml").write_text(WORKFLOW + "nope: 1\n")
    for args, says in [
        (("missing.yaml",), "no such workflow file: missing.yaml"),
        ((str(tmp_path / "bad.yaml"),), "bad.yaml:7: nope: unknown key"),
        ((wf, str(twin)), "two workflows would both be served as model 'served'"),
        ((wf, "--max-concurrent-runs", "0"), "--max-concurrent-runs"),
        ((wf, "--api-key", " "), "the API key is empty"),
    ]:
        out = run_cli("serve", *args, **env)
        assert out.returncode == 2, args
        assert out.stderr.startswith("error: ") and says in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_no_workflow_serves_the_shipped_ones() -> None:
    served = load_served([])
    assert {"quickstart", "research-brief"} <= served.keys()
    assert served["quickstart"].path.name == "quickstart.yaml"


@pytest.mark.slow
def test_public_address_needs_the_key_and_never_shows_it(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    openai_env.set_plan(PLAN)
    wf = str(write_workflow(tmp_path))
    with server(wf, "--host", "0.0.0.0", env={"ORCHESTRATOR_SERVE_KEY": KEY}) as s:
        assert httpx.get(f"{s.base}/v1/models").status_code == 401
        auth = {"Authorization": f"Bearer {KEY}"}
        assert httpx.get(f"{s.base}/v1/models", headers=auth).json()["data"][0]["id"] == "served"
        body = {"model": "served", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{s.base}/v1/chat/completions", json=body, headers=auth, timeout=60)
        assert answer.status_code == 200 and KEY not in answer.text
        s.shut_down()
    assert KEY not in "".join(s.log)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_interrupted(openai_env: FakeOpenAI, tmp_path: Path) -> None:
    gate = Gate()
    openai_env.configure_model("think-model", reasoning=True, latency=gate.latency)
    openai_env.set_plan(PLAN)
    wf, home = str(write_workflow(tmp_path)), tmp_path / "home"
    try:
        with server(wf) as first:
            r = httpx.post(f"{first.base}/runs", json={"workflow": "served", "input": "task"})
            run_id = r.json()["id"]
            assert gate.arrived.wait(60)  # the slow subproblem's call is in flight
            with httpx.stream("GET", f"{first.base}/runs/{run_id}/events", timeout=60) as events:
                for line in events.iter_lines():
                    if "fast1" in line and "subproblem_finished" in line:
                        break
            assert "fast1" in checkpointed(home, run_id)
            assert first.stop(signal.SIGKILL) == -signal.SIGKILL

        with server(wf) as second:  # without --resume-interrupted: shown, not continued
            run = httpx.get(f"{second.base}/runs/{run_id}").json()
            assert run["status"] == "interrupted"
            assert httpx.get(f"{second.base}/runs").json()["data"][0]["status"] == "interrupted"
            [(_, event, state)] = follow(second.base, run_id)  # not run here: its state
            assert event == "run_finished" and state["status"] == "interrupted"
            assert {s["id"] for s in state["result"]["subproblems"]} == {"fast1", "slow", "last"}
            second.shut_down()
        assert any("1 runs were interrupted" in line for line in second.log)

        gate.open.set()  # the killed server's call gets its (unread) answer now
        with server(wf, "--resume-interrupted") as third:
            events = follow(third.base, run_id)
            assert events[-1][2]["result"]["status"] == "completed"
            run = httpx.get(f"{third.base}/runs/{run_id}").json()
            assert run["status"] == "completed" and run["output"]
            third.shut_down()
    finally:
        gate.open.set()
    requests = openai_env.requests
    assert sum(1 for r in requests if r.is_plan) == 1
    assert len(solve_calls(requests, "quick part one")) == 1
    assert len(solve_calls(requests, "final part")) == 1
    assert len(solve_calls(requests, "slow deep part")) == 2  # in flight when killed: asked again
    # Every call the run completed was billed once: the server billed one more, the answer the
    # killed server never read.
    logged = sum(p["calls"] for p in run["usage"]["by_profile"].values())
    assert len(openai_env.billed) == logged + 1
