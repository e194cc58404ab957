"""`Workflow.as_runnable()`: invoke, ainvoke, astream, batch; inside an LCEL chain and as a node
of a LangGraph StateGraph. Models are in-process test models; runs are stored for real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from orchestrator import (
    Message,
    ModelError,
    RequestParams,
    RunError,
    RunResult,
    UsageError,
    Workflow,
    parse_workflow,
)
from orchestrator.runnable import WorkflowRunnable
from orchestrator.storage import open_storage
from orchestrator.testing import FunctionModel, TestModel

SPEC = """
name: rw
models:
  thinker: {model: think-model, reasoning: true, price: {input: 2.0, output: 8.0}}
  writer: {model: write-model, price: {input: 0.1, output: 0.4}}
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""
ANSWER = "the final answer in several words"
PLAN = [{"id": "s1", "kind": "generate", "task": "part one", "depends_on": []}]


class Writer(FunctionModel):
    """Plans one subproblem, solves it, and writes ANSWER; records every request; raises the
    `failures` given, first."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        super().__init__(self.answer, model="write-model")
        self.failures = list(failures or [])
        self.requests: list[tuple[list[Message], RequestParams]] = []

    def answer(self, messages: list[Message], params: RequestParams) -> str:
        self.requests.append((messages, params))
        if self.failures:
            raise self.failures.pop(0)
        if params.purpose == "plan":
            return json.dumps({"subproblems": PLAN})
        return ANSWER if params.purpose == "synthesize" else "part done"


def make(tmp_path: Path, failures: list[Exception] | None = None) -> tuple[Workflow, Writer]:
    writer = Writer(failures)
    models = {"writer": writer, "thinker": TestModel()}
    return Workflow(parse_workflow(SPEC), models=models, home=tmp_path), writer


@pytest.fixture
def workflow(tmp_path: Path) -> Workflow:
    return make(tmp_path)[0]


def planned_task(model: Writer) -> str:
    """The task the planner was given (its last user message)."""
    messages, _ = next(r for r in model.requests if r[1].purpose == "plan")
    return messages[-1].content


def test_invoke_takes_text_or_input_and_gives_the_answer(tmp_path: Path) -> None:
    wf, model = make(tmp_path)
    runnable = wf.as_runnable()
    assert isinstance(runnable, WorkflowRunnable)
    assert runnable.invoke("Choose a database") == ANSWER
    assert "Choose a database" in planned_task(model)
    model.requests.clear()
    assert runnable.invoke({"input": "Second task"}) == ANSWER
    assert "Second task" in planned_task(model)


def test_result_mode_gives_the_run_result(workflow: Workflow) -> None:
    result = workflow.as_runnable(result=True).invoke({"task": "a task"})
    assert isinstance(result, RunResult) and result.status == "completed"
    assert result.output == ANSWER and result.usage.by_profile["writer"].calls == 3


async def test_ainvoke(workflow: Workflow) -> None:
    assert await workflow.as_runnable().ainvoke("a task") == ANSWER


async def test_astream_yields_the_answer_as_it_is_written(workflow: Workflow) -> None:
    chunks = [chunk async for chunk in workflow.as_runnable().astream("a task")]
    assert len(chunks) == len(ANSWER.split()) and "".join(chunks) == ANSWER
    results = [chunk async for chunk in workflow.as_runnable(result=True).astream("a task")]
    assert len(results) == 1 and isinstance(results[0], RunResult)


def test_batch_runs_each_task_as_its_own_run(tmp_path: Path, workflow: Workflow) -> None:
    results = workflow.as_runnable(result=True).batch(["one", "two", "three"])
    assert [r.status for r in results] == ["completed"] * 3
    assert len({r.run_id for r in results}) == 3
    assert workflow.as_runnable().batch(["x", "y"]) == [ANSWER, ANSWER]


async def test_abatch_and_runs_are_stored(tmp_path: Path, workflow: Workflow) -> None:
    results = await workflow.as_runnable(result=True).abatch(["one", "two"])
    assert {r.status for r in results} == {"completed"}
    async with open_storage(tmp_path) as storage:
        for result in results:
            assert len(await storage.runs.calls(result.run_id)) == 3


def test_a_failed_run_raises_unless_the_result_is_asked_for(tmp_path: Path) -> None:
    broken = ModelError("writer is down", profile="writer", model="write-model")
    wf, _ = make(tmp_path, [broken])
    with pytest.raises(RunError, match="ended failed: writer is down"):
        wf.as_runnable().invoke("a task")
    wf, _ = make(tmp_path, [broken])
    result = wf.as_runnable(result=True).invoke("a task")
    assert result.status == "failed" and result.error is not None


def test_bad_input_says_what_is_accepted(workflow: Workflow) -> None:
    with pytest.raises(UsageError, match="takes a task: text"):
        workflow.as_runnable().invoke(42)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="task is empty"):
        workflow.as_runnable().invoke({"input": "  "})


def test_inside_an_lcel_chain(tmp_path: Path) -> None:
    wf, model = make(tmp_path)
    chain = ChatPromptTemplate.from_messages(
        [("system", "be brief"), ("human", "Plan a trip to {city}")]
    ) | wf.as_runnable() | RunnableLambda(str.upper)  # fmt: skip
    assert chain.invoke({"city": "Lisbon"}) == ANSWER.upper()
    assert "Plan a trip to Lisbon" in planned_task(model)
    assert "be brief" not in planned_task(model)  # the human message is the task
    text_chain = PromptTemplate.from_template("Sum {a} and {b}") | wf.as_runnable()
    assert (text_chain | StrOutputParser()).invoke({"a": 1, "b": 2}) == ANSWER


async def test_streams_through_an_lcel_chain(workflow: Workflow) -> None:
    chain = PromptTemplate.from_template("Task: {t}") | workflow.as_runnable() | StrOutputParser()
    chunks = [c async for c in chain.astream({"t": "x"})]
    assert len(chunks) > 1 and "".join(chunks) == ANSWER


class State(TypedDict, total=False):
    question: str
    answer: str
    words: int


def graph_with(workflow: Workflow) -> Any:
    solve = (
        RunnableLambda(lambda state: {"input": state["question"]})
        | workflow.as_runnable()
        | RunnableLambda(lambda answer: {"answer": answer})
    )
    builder = StateGraph(State)
    builder.add_node("solve", solve)
    builder.add_node("count", lambda state: {"words": len(state["answer"].split())})
    builder.add_edge(START, "solve")
    builder.add_edge("solve", "count")
    builder.add_edge("count", END)
    return builder.compile(checkpointer=InMemorySaver())


async def test_as_a_node_in_a_langgraph_graph(tmp_path: Path) -> None:
    wf, model = make(tmp_path)
    graph = graph_with(wf)
    config: Any = {"configurable": {"thread_id": "outer-1"}}
    final = await graph.ainvoke({"question": "Why is the sky blue?"}, config)
    assert final == {"question": "Why is the sky blue?", "answer": ANSWER, "words": 6}
    assert "Why is the sky blue?" in planned_task(model)
    # The outer graph checkpoints its own state; the workflow's run is its own thread.
    state = await graph.aget_state(config)
    assert state.values["answer"] == ANSWER and not state.next
    namespaces = {c.config["configurable"]["checkpoint_ns"] for c in graph.checkpointer.list(None)}
    assert namespaces == {""}  # no checkpoint of the workflow's own graph landed here
    again = await graph.ainvoke({"question": "And at sunset?"}, config)
    assert again["answer"] == ANSWER


def test_as_a_node_in_a_sync_graph(workflow: Workflow) -> None:
    final = graph_with(workflow).invoke(
        {"question": "q"}, {"configurable": {"thread_id": "outer-2"}}
    )
    assert final["answer"] == ANSWER and final["words"] == 6
