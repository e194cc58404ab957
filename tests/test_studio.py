"""LangGraph Studio: langgraph.json's graphs, `orchestrator.langgraph`'s factories in process, and
the real in-memory LangGraph API server (`langgraph dev`) driven by its `langgraph_sdk` client,
with the workflow's models on the scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from langgraph_sdk import get_client

import orchestrator.langgraph as studio
from orchestrator import Workflow, parse_workflow
from orchestrator.storage import open_storage
from tests.fakeserver import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = """
name: studio-test
models:
  thinker: {model: think-model, reasoning: true, price: {input: 2.0, output: 8.0}}
  writer: {model: write-model, price: {input: 0.1, output: 0.4}}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""
PLAN = {
    "subproblems": [
        {"id": "s1", "kind": "reason", "task": "think", "depends_on": []},
        {"id": "s2", "kind": "generate", "task": "write", "depends_on": ["s1"]},
    ]
}
# Nothing may leave the machine: no analytics, no version check, no tracing; any other
# outbound HTTP goes to a local "proxy" that only counts who knocked.
OFFLINE = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "NO_PROXY": "127.0.0.1,localhost",
}


class Proxy:
    """A listening socket that never answers: connections wait in its backlog to be counted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def knocked(self) -> int:
        self.sock.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


def test_langgraph_json_serves_every_shipped_workflow() -> None:
    config = json.loads((REPO / "langgraph.json").read_text())
    graphs = config["graphs"]
    shipped = {p.stem for p in (REPO / "graphs").glob("*.yaml")}
    assert set(graphs) == shipped == set(studio.SHIPPED)
    for name, ref in graphs.items():
        module, _, attr = ref.partition(":")
        assert module == "orchestrator.langgraph" and attr == name.replace("-", "_")
        graph = getattr(studio, attr)()  # loads the workflow; no model is called
        assert graph.name == name
        assert "task" in graph.get_input_jsonschema()["properties"]
        assert {"run", "answer"} <= set(graph.get_graph().nodes)


@pytest.fixture
def fake_env(openai_env: FakeOpenAI) -> FakeOpenAI:
    openai_env.configure_model("think-model", reasoning=True, trace_style="reasoning_content")
    openai_env.set_plan(PLAN)
    return openai_env


async def test_the_graph_runs_a_workflow_and_pauses_for_approval(
    fake_env: FakeOpenAI, tmp_path: Path
) -> None:
    graph = studio.workflow_graph(Workflow(parse_workflow(WORKFLOW), home=tmp_path))
    graph = graph.copy(update={"checkpointer": InMemorySaver()})
    config: Any = {"configurable": {"thread_id": "t1"}}
    parts = [p async for p in graph.astream({"task": "a task"}, config, stream_mode="custom")]
    assert "plan" in parts[0] and [p["subproblem"]["id"] for p in parts if "subproblem" in p] == [
        "s1",
        "s2",
    ]
    tokens = "".join(p["answer_token"] for p in parts if "answer_token" in p)
    state = (await graph.aget_state(config)).values
    assert state["status"] == "completed" and tokens == state["output"] != ""
    assert state["cost_usd"] > 0 and state["usage"]["by_profile"]["thinker"]["calls"] == 1

    config = {"configurable": {"thread_id": "t2"}}
    await graph.ainvoke({"task": "a task", "approve_plan": True}, config)
    paused = await graph.aget_state(config)
    assert paused.values["status"] == "awaiting_approval" and paused.next == ("answer",)
    assert paused.interrupts[0].value["run_id"] == paused.values["run_id"]
    final = await graph.ainvoke(Command(resume="approve"), config)
    assert final["status"] == "completed" and final["run_id"] == paused.values["run_id"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def api_server(
    fake_env: FakeOpenAI, tmp_path: Path
) -> Iterator[tuple[str, Path, list[str], Proxy]]:
    """`langgraph dev` on 127.0.0.1, serving a workflow whose models are the scripted server."""
    proxy = Proxy()
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "studio_graph.py").write_text(
        textwrap.dedent(
            f"""\
            from orchestrator import Workflow
            from orchestrator.langgraph import workflow_graph

            WORKFLOW = Workflow.from_yaml({str(tmp_path / "wf.yaml")!r})

            def make():
                return workflow_graph(WORKFLOW)
            """
        )
    )
    config = {"dependencies": ["."], "graphs": {"studio-test": "./studio_graph.py:make"}}
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    port = _free_port()
    args = [sys.executable, "-m", "langgraph_cli", "dev", "--no-browser", "--no-reload"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--server-log-level", "INFO"]
    server = subprocess.Popen(
        args,
        cwd=tmp_path,
        env={**os.environ, **OFFLINE, "HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            lines.append(line)
            if "Application startup complete" in line:
                ready.set()
        ready.set()  # the server exited: stop waiting

    threading.Thread(target=read, daemon=True).start()
    try:
        ready.wait(timeout=120)  # a guard against a hang on a loaded machine, not a speed test
        assert server.poll() is None and ready.is_set(), "".join(lines[-40:])
        yield f"http://127.0.0.1:{port}", tmp_path / "home", lines, proxy
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        proxy.sock.close()


async def test_the_langgraph_api_server_runs_a_workflow(
    api_server: tuple[str, Path, list[str], Proxy], fake_env: FakeOpenAI
) -> None:
    url, home, log, proxy = api_server
    client = get_client(url=url)
    assistants = await client.assistants.search(graph_id="studio-test")
    assert len(assistants) == 1
    schemas = await client.assistants.get_schemas(assistants[0]["assistant_id"])
    assert "task" in schemas["input_schema"]["properties"]

    thread = await client.threads.create()
    parts: list[Any] = []
    async for part in client.runs.stream(
        thread["thread_id"], "studio-test", input={"task": "Choose a database"},
        stream_mode=["custom", "values"],
    ):  # fmt: skip
        parts.append(part)
    assert not [p for p in parts if p.event == "error"], parts
    state = (await client.threads.get_state(thread["thread_id"]))["values"]
    assert state["task"] == "Choose a database" and state["status"] == "completed"
    assert state["output"].startswith("[write-model] answer") and state["cost_usd"] > 0
    assert [s["id"] for s in state["subproblems"]] == ["s1", "s2"]
    tokens = "".join(p.data["answer_token"] for p in parts if p.event == "custom"
                     and "answer_token" in p.data)  # fmt: skip
    assert tokens == state["output"]
    assert len(fake_env.requests) == 4  # plan, two subproblems, synthesis: each paid once
    async with open_storage(home) as storage:
        assert len(await storage.runs.calls(state["run_id"])) == 4

    # A run that stops for plan approval interrupts the thread; resuming it finishes the run.
    thread = await client.threads.create()
    await client.runs.wait(
        thread["thread_id"], "studio-test", input={"task": "x", "approve_plan": True}
    )
    paused = await client.threads.get_state(thread["thread_id"])
    assert paused["values"]["status"] == "awaiting_approval" and paused["next"] == ["answer"]
    final = await client.runs.wait(
        thread["thread_id"], "studio-test", command={"resume": "approve"}
    )
    assert isinstance(final, dict) and final["status"] == "completed"
    assert not [line for line in log if "Traceback" in line], "".join(log[-40:])
    assert proxy.knocked() == 0  # nothing tried to leave the machine


async def test_a_human_node_asks_through_an_interrupt(tmp_path: Path) -> None:
    spec = parse_workflow(
        textwrap.dedent(
            """\
            name: ask
            models: {w: {model: w}}
            graph:
              nodes:
                ask: {type: human, message: "Which colour?"}
                write: {type: python, function: echo}
              edges: [{from: ask, to: write}]
            """
        )
    )
    echo = {"echo": lambda state: f"chose {state['ask']}"}
    graph = studio.workflow_graph(Workflow(spec, functions=echo, home=tmp_path))
    graph = graph.copy(update={"checkpointer": InMemorySaver()})
    config: Any = {"configurable": {"thread_id": "h"}}
    await graph.ainvoke({"task": "paint the fence"}, config)
    paused = await graph.aget_state(config)
    assert paused.values["status"] == "awaiting_input"
    assert paused.interrupts[0].value["question"] == "Which colour?"
    final = await graph.ainvoke(Command(resume="green"), config)
    assert final["status"] == "completed" and final["output"] == "chose green"
