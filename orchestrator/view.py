"""What the CLI shows people: the live run view and the usage table (rich)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .events import (
    AnswerToken,
    CallFinished,
    Event,
    PlanReady,
    SubproblemFinished,
    SubproblemStarted,
)
from .result import RunResult, Usage
from .runlog import RunRow


def wide_console(*, stderr: bool = False) -> Console:
    """A console at least 120 columns wide: piped output would otherwise wrap at 80."""
    return Console(stderr=stderr, width=max(Console(stderr=stderr).width, 120))


_STATUS_STYLE = {
    "waiting": "dim",
    "running": "yellow",
    "done": "green",
    "failed": "red",
    "interrupted": "red",
    "budget_exceeded": "red",
}


@dataclass
class _Row:
    id: str
    kind: str
    task: str
    profile: str
    model: str
    status: str = "waiting"
    tokens: int = 0
    cost: float = 0.0


@dataclass
class LiveRun:
    """The state of the live view, updated event by event."""

    rows: dict[str, _Row] = field(default_factory=dict)
    note: str | None = None
    answer: str = ""
    cost: float = 0.0
    phase: str = "planning"

    def update(self, event: Event) -> None:
        if isinstance(event, PlanReady):
            self.note = event.note
            self.phase = "solving"
            for item in event.subproblems:
                self.rows[item.id] = _Row(item.id, item.kind, item.task, item.profile, item.model)
        elif isinstance(event, SubproblemStarted) and event.id in self.rows:
            self.rows[event.id].status = "running"
        elif isinstance(event, SubproblemFinished) and event.id in self.rows:
            self.rows[event.id].status = event.status
        elif isinstance(event, CallFinished):
            call = event.call
            self.cost += call.cost_usd
            # purpose is "solve:<id>" or "node:<name>": the row that paid for the call
            row = self.rows.get(call.purpose.partition(":")[2])
            if row is not None:
                row.tokens += call.usage.input_tokens + call.usage.output_tokens
                row.cost += call.cost_usd
        elif isinstance(event, AnswerToken):
            self.phase = "writing the answer"
            self.answer += event.text

    def finish(self, result: RunResult) -> None:
        self.phase = result.status.replace("_", " ")
        if not self.answer:
            self.answer = result.output

    def render(self) -> RenderableType:
        table = Table(title=f"{self.phase} · ${self.cost:.4f} so far", expand=True)
        for column in ("id", "kind", "profile (model)", "status", "tokens", "cost $"):
            table.add_column(column, no_wrap=column != "profile (model)")
        table.add_column("task", ratio=1, overflow="ellipsis", no_wrap=True)
        for row in self.rows.values():
            table.add_row(
                row.id,
                row.kind,
                f"{row.profile} ({row.model})",
                Text(row.status, style=_STATUS_STYLE.get(row.status, "")),
                str(row.tokens or ""),
                f"{row.cost:.4f}" if row.status in ("done", "failed") else "",
                row.task,
            )
        parts: list[RenderableType] = [table]
        if self.note:
            parts.append(Text(self.note, style="italic yellow"))
        if self.answer:
            parts.append(Panel(Markdown(self.answer), title="answer"))
        return Group(*parts)


def usage_table(usage: Usage) -> Table:
    table = Table(title=f"usage · total ${usage.cost_usd:.6f}")
    for column in ("profile", "model", "calls", "input", "cached", "output", "reasoning", "cost $"):
        table.add_column(column, justify="left" if column in ("profile", "model") else "right")
    for name, p in usage.by_profile.items():
        table.add_row(
            name,
            p.model,
            str(p.calls),
            str(p.input_tokens),
            str(p.cached_input_tokens),
            str(p.output_tokens),
            str(p.reasoning_tokens),
            f"{p.cost_usd:.6f}",
        )
    return table


def runs_table(rows: list[RunRow]) -> Table:
    table = Table(title="runs")
    for column in ("run id", "workflow", "status", "cost $", "age", "task"):
        table.add_column(column, justify="right" if column in ("cost $", "age") else "left")
    now = time.time()
    for row in rows:
        style = _STATUS_STYLE.get({"completed": "done"}.get(row.status, row.status), "")
        table.add_row(
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
