"""A workflow as a LangChain `Runnable`, so it composes inside LCEL chains and LangGraph graphs.

    chain = ChatPromptTemplate.from_template("Plan a trip to {city}") | workflow.as_runnable()
    chain.invoke({"city": "Lisbon"})            # -> the answer's text

Input: a task as text, `{"input": ...}` (or `{"task": ...}`), a prompt value (a chat prompt's
last human message is the task), or a message. Output: the answer's text; a run that does not
complete raises its error (so a chain never carries on with an empty answer). With
`as_runnable(result=True)` the output is the whole `RunResult` instead, whatever its status.
`astream` yields the answer as it is written (`stream`, sync, yields it whole); `batch` and
`abatch` run tasks concurrently, one run each. Every call is a new run, stored in the
workflow's home like any other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue
from langchain_core.runnables import Runnable, RunnableConfig

from .errors import RunError, UsageError
from .events import AnswerRestarted, AnswerToken, RunFinished
from .result import RunResult

if TYPE_CHECKING:
    from .runtime import Workflow

__all__ = ["WorkflowInput", "WorkflowRunnable", "task_of"]

WorkflowInput = str | Mapping[str, Any] | PromptValue | BaseMessage
"""What a workflow runnable accepts: see `task_of`."""


def task_of(value: object) -> str:
    """The task text in a runnable's input; `UsageError` saying what is accepted otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("input", "task"):
            if isinstance(value.get(key), str):
                return str(value[key])
    if isinstance(value, ChatPromptValue):
        human = [m for m in value.messages if isinstance(m, HumanMessage)]
        return human[-1].text if human else value.to_string()
    if isinstance(value, PromptValue):
        return value.to_string()
    if isinstance(value, BaseMessage):
        return value.text
    raise UsageError(
        f"a workflow runnable takes a task: text, {{'input': text}}, a prompt or a message; "
        f"got {type(value).__name__}"
    )


def _raise_unless_completed(result: RunResult) -> None:
    if result.status != "completed":
        error = result.error
        detail = f": {error.message}" if error else ""
        raise RunError(f"run {result.run_id} ended {result.status}{detail}")


class WorkflowRunnable(Runnable[WorkflowInput, Any]):
    """`Workflow.as_runnable()`: invoke, ainvoke, stream, astream, batch and abatch."""

    def __init__(self, workflow: Workflow, *, result: bool = False) -> None:
        self.workflow = workflow
        self.result = result
        self.name = workflow.spec.name

    def __repr__(self) -> str:
        return f"WorkflowRunnable({self.workflow.spec.name!r}, result={self.result})"

    @property
    def InputType(self) -> Any:
        return WorkflowInput

    @property
    def OutputType(self) -> Any:
        return RunResult if self.result else str

    def _output(self, result: RunResult) -> RunResult | str:
        if self.result:
            return result
        _raise_unless_completed(result)
        return result.output

    async def _arun(self, value: WorkflowInput) -> RunResult | str:
        return self._output(await self.workflow.arun(task_of(value)))

    def invoke(
        self, input: WorkflowInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        def run(value: WorkflowInput) -> RunResult | str:
            return self._output(self.workflow.run(task_of(value)))

        return self._call_with_config(run, input, config, run_type="chain")

    async def ainvoke(
        self, input: WorkflowInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        return await self._acall_with_config(self._arun, input, config, run_type="chain")

    async def astream(
        self, input: WorkflowInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        async def one() -> AsyncIterator[WorkflowInput]:
            yield input

        async for chunk in self._atransform_stream_with_config(
            one(), self._stream_answer, config, run_type="chain"
        ):
            yield chunk

    async def _stream_answer(self, inputs: AsyncIterator[WorkflowInput]) -> AsyncIterator[Any]:
        """The answer's text as it streams (or the `RunResult` at the end, with `result`).

        Text already yielded cannot be withdrawn, so after an `AnswerRestarted` (a retried
        stream that answered differently) nothing more streams until the run ends; then the
        rest of the final answer follows if it extends what was sent.
        """
        async for value in inputs:
            sent, held = "", False
            async for event in self.workflow.astream(task_of(value)):
                if isinstance(event, AnswerRestarted):
                    held = True
                elif isinstance(event, AnswerToken) and not held and not self.result:
                    sent += event.text
                    yield event.text
                elif isinstance(event, RunFinished):
                    output = self._output(event.result)
                    if self.result:
                        yield output
                    elif isinstance(output, str) and output.startswith(sent) and output != sent:
                        yield output[len(sent) :]
