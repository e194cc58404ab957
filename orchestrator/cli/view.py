"""What the CLI shows people: the live run view and the usage table (rich)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..events import (
    AnswerRestarted,
    AnswerToken,
    CallFinished,
    CallRetried,
    Event,
    PlanReady,
    SubproblemFinished,
    SubproblemStarted,
)
from ..models.base import CallRecord
from ..models.retry import FailedAttempt
from ..result import RunResult, Usage
from ..steps import Route, StepResult
from ..storage import RunRow


def add_row(table: Table, *cells: str | Text) -> None:
    """A row shown as written: ids, tasks and names come from models and users, and rich would
    read `[...]` in them as markup (and fail on a stray `[/x]`)."""
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def wide_console(*, stderr: bool = False) -> Console:
    """A console at least 120 columns wide: piped output would otherwise wrap at 80."""
    return Console(stderr=stderr, width=max(Console(stderr=stderr).width, 120))


_STATUS_STYLE = {
    "pending": "dim",
    "running": "yellow",
    "done": "green",
    "failed": "red",
    "interrupted": "red",
    "budget_exceeded": "red",
}


@dataclass
class LiveRun:
    """The state of the live view, updated event by event: a row per step, the answer."""

    rows: dict[str, StepResult] = field(default_factory=dict)
    spent: dict[str, tuple[int, float]] = field(default_factory=dict)  # step -> tokens, cost
    note: str | None = None
    answer: str = ""
    cost: float = 0.0
    phase: str = "planning"
    retrying: dict[str | None, tuple[FailedAttempt, float]] = field(default_factory=dict)
    """Calls that failed and will be tried again: step (None: plan, synthesize) -> the failed
    attempt and when (on `clock`) the next one starts."""
    clock: Callable[[], float] = time.monotonic

    def update(self, event: Event) -> None:
        if isinstance(event, PlanReady):
            self.note = event.note
            self.phase = "solving"
            self.rows.update((s.id, s) for s in event.subproblems)
        elif isinstance(event, SubproblemStarted) and event.step.id in self.rows:
            row = self.rows[event.step.id]
            self.rows[row.id] = replace(row, route=event.route, status="running")
        elif isinstance(event, SubproblemFinished) and event.result.id in self.rows:
            self.rows[event.result.id] = event.result
            self.retrying.pop(event.result.id, None)
        elif isinstance(event, CallFinished):
            self._count(event.call)
            self.retrying.pop(event.call.step, None)
        elif isinstance(event, CallRetried):
            wait = event.attempt.wait_s or 0.0
            self.retrying[event.attempt.step] = (event.attempt, self.clock() + wait)
        elif isinstance(event, AnswerToken):
            self.phase = "writing the answer"
            self.answer += event.text
        elif isinstance(event, AnswerRestarted):
            self.answer = ""  # a retried stream starts the answer again

    def _count(self, call: CallRecord) -> None:
        self.cost += call.cost_usd
        if call.step is not None:
            tokens, cost = self.spent.get(call.step, (0, 0.0))
            used = call.usage.input_tokens + call.usage.output_tokens
            self.spent[call.step] = (tokens + used, cost + call.cost_usd)

    def finish(self, result: RunResult) -> None:
        self.phase = result.status.replace("_", " ")
        if not self.answer:
            self.answer = result.output

    def _waiting(self, step: str | None) -> str | None:
        if step not in self.retrying:
            return None
        attempt, next_at = self.retrying[step]
        return retry_text(attempt, next_at - self.clock())

    def render(self) -> RenderableType:
        title = f"{self.phase} · ${self.cost:.4f} so far"
        if (waiting := self._waiting(None)) is not None:
            title += f" · {waiting}"
        table = Table(title=title, expand=True)
        for column in ("id", "kind", "profile (model)", "status", "route", "tokens", "cost $"):
            table.add_column(column, no_wrap=column != "profile (model)")
        table.add_column("task", ratio=1, overflow="ellipsis", no_wrap=True)
        for row in self.rows.values():
            tokens, cost = self.spent.get(row.id, (0, 0.0))
            add_row(
                table,
                row.id,
                row.kind,
                f"{row.profile} ({row.model})" if row.profile else "",
                self._status(row),
                route_summary(row.route) if row.status == "done" else "",
                str(tokens or ""),
                f"{cost:.4f}" if row.status in ("done", "failed") else "",
                row.task[:200],
            )
        parts: list[RenderableType] = [table]
        if self.note:
            parts.append(Text(self.note, style="italic yellow"))
        if self.answer:
            parts.append(Panel(Markdown(self.answer), title="answer"))
        return Group(*parts)

    def _status(self, row: StepResult) -> Text:
        waiting = self._waiting(row.id) if row.status == "running" else None
        if waiting is not None:
            return Text(waiting, style="magenta")
        return Text(row.status, style=_STATUS_STYLE.get(row.status, ""))


_REASON = {"timeout": "timeout", "connection": "dropped connection", "malformed": "bad body"}


def retry_text(attempt: FailedAttempt, remaining_s: float) -> str:
    """A retrying call in a few words: `retry 1/3 in 2.4s: 503`, then, once the wait is over,
    `retry 1/3: 503` (the next attempt is under way)."""
    if attempt.reason in ("status", "error"):
        why = f"{attempt.status} error" if attempt.reason == "error" else str(attempt.status)
    else:
        why = _REASON.get(attempt.reason, attempt.reason)
    count = f"retry {attempt.number}/{attempt.attempts - 1}"
    if remaining_s > 0.05:
        return f"{count} in {remaining_s:.1f}s: {why}"
    return f"{count}: {why}"


def retry_line(attempt: FailedAttempt) -> str:
    """One line for a piped run's stderr: which call, what failed, how long it waits."""
    what = attempt.step or attempt.purpose
    wait = attempt.wait_s or 0.0
    return (
        f"retry {attempt.number}/{attempt.attempts - 1} in {wait:.1f}s: {what} on "
        f"{attempt.profile} ({attempt.model}): {attempt.detail} "
        f"(attempt {attempt.number} took {attempt.duration_s:.2f}s)"
    )


def route_summary(route: Route) -> str:
    """A route in a few characters: `label`, `cascade judge✓`, `cascade judge✗ → reason`,
    `self_consistency vote 3/5`."""
    parts = [route.policy]
    for check in route.checks:
        mark = "✓" if check.passed else "✗"
        if check.score is not None and route.samples > 1:
            parts.append(
                f"{check.check} {round(check.score * route.samples)}/{route.samples}{mark}"
            )
        else:
            parts.append(f"{check.check}{mark}")
    if route.escalations:
        parts.append(
            f"→ {route.role}" + (f" ×{route.escalations}" if route.escalations > 1 else "")
        )
    return " ".join(parts)


def usage_table(usage: Usage) -> Table:
    """Per profile; `~` marks counts estimated because the endpoint reported no usage."""
    table = Table(title=f"usage · total ${usage.cost_usd:.6f}")
    for column in ("profile", "model", "calls", "input", "cached", "output", "reasoning", "cost $"):
        table.add_column(column, justify="left" if column in ("profile", "model") else "right")
    for name, p in usage.by_profile.items():
        mark = "~" if p.estimated else ""
        add_row(
            table,
            name,
            p.model,
            f"{p.calls} ({p.cached_calls} from cache)" if p.cached_calls else str(p.calls),
            f"{mark}{p.input_tokens}",
            str(p.cached_input_tokens),
            f"{mark}{p.output_tokens}",
            str(p.reasoning_tokens),
            f"{mark}{p.cost_usd:.6f}",
        )
    if (cf := usage.counterfactual) is not None:
        table.caption = (
            f"estimate, the same tokens with every call on {cf.reason_profile}: "
            f"${cf.all_reason_usd:.6f}; on {cf.generate_profile}: ${cf.all_generate_usd:.6f}"
        )
    return table


def runs_table(rows: list[RunRow]) -> Table:
    table = Table(title="runs")
    for column in ("run id", "workflow", "status", "cost $", "age", "task"):
        table.add_column(column, justify="right" if column in ("cost $", "age") else "left")
    now = time.time()
    for row in rows:
        style = _STATUS_STYLE.get({"completed": "done"}.get(row.status, row.status), "")
        add_row(
            table,
            row.run_id,
            row.workflow,
            Text(row.status, style=style),
            f"{row.cost_usd:.6f}",
            age(now - row.created_at),
            row.task[:60].replace("\n", " "),
        )
    return table


def age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"
