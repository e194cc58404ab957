"""Driving a run's events to the screen: a live view in a terminal, plain text when piped,
nothing but the result with --json. Also the signal handling every run shares."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from rich.console import Console
from rich.live import Live
from rich.markup import escape

from ..events import CallRetried, Event, RunFinished, SubproblemFinished
from ..result import RunResult
from ..runtime import last_result
from .view import LiveRun, retry_line, usage_table, wide_console

T = TypeVar("T")


class Stopped(BaseException):
    """The process got SIGTERM: the run was stopped (and recorded as interrupted)."""

    exit_code = 128 + signal.SIGTERM


async def _stoppable(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro`; SIGTERM cancels it the way Ctrl-C does, so the run records why it ended."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    # Not the main thread, or no signals here: SIGTERM keeps its default.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await coro
    except asyncio.CancelledError:
        if terminated:
            raise Stopped() from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from synchronous code, stoppable by SIGINT and SIGTERM."""
    return asyncio.run(_stoppable(coro))


def quiet_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone, and Python would complain at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def write_out(text: str) -> None:
    """Write to stdout; a reader that went away (`| head`) does not stop the run's end."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        quiet_stdout()


def show(events: AsyncIterator[Event], *, as_json: bool) -> RunResult:
    """Drive a run's events to the screen (nothing, with --json) and return its result."""
    if as_json:
        return drive(last_result(events))
    if sys.stdout.isatty() and not os.environ.get("ORCHESTRATOR_PLAIN"):
        return drive(_live(events))
    return drive(_plain(events))


async def _live(events: AsyncIterator[Event]) -> RunResult:
    console = Console()
    view = LiveRun()
    result: RunResult | None = None
    # get_renderable: redrawn at every refresh, so a retry's wait counts down between events.
    with Live(
        view.render(),
        console=console,
        refresh_per_second=8,
        transient=False,
        get_renderable=view.render,
    ) as live:
        async for event in events:
            if isinstance(event, RunFinished):
                result = event.result
                view.finish(result)
            else:
                view.update(event)
            live.update(view.render())
    assert result is not None
    summary(console, result)
    return result


async def _plain(events: AsyncIterator[Event]) -> RunResult:
    """No terminal: one line per finished step and per retried attempt on stderr; the answer
    goes to stdout once it is final, so a stream that was cut off and retried, or reasoning a
    model left in its answer, never reaches a file or a pipe."""
    err = wide_console(stderr=True)
    result: RunResult | None = None
    async for event in events:
        if isinstance(event, SubproblemFinished):
            r = event.result
            who = f" {r.profile} ({r.model})" if r.profile else ""
            line = f"{r.status}: {r.id} ({r.kind}){who} ${r.cost_usd:.6f}"
            err.print(line, highlight=False, markup=False)
        elif isinstance(event, CallRetried):
            err.print(retry_line(event.attempt), highlight=False, markup=False, soft_wrap=True)
        elif isinstance(event, RunFinished):
            result = event.result
    assert result is not None
    if result.output:
        write_out(result.output + "\n")
    summary(err, result)
    return result


def summary(console: Console, result: RunResult) -> None:
    # soft_wrap: a long note or error stays one line (rich would wrap it at the console width).
    if result.plan_note:
        note = escape(result.plan_note)  # it quotes model output: never read it as markup
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    console.print(usage_table(result.usage))
    status = "green" if result.status == "completed" else "red"
    line = f"run {escape(result.run_id)}: [{status}]{result.status}[/]"
    if result.error:
        line += f" ({result.error.type}: {escape(result.error.message)})"
    console.print(line, highlight=False, soft_wrap=True)
