"""The progress bar of commands that run many jobs (`eval`, `batch`): done, failed, spent, ETA."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

Advance = Callable[[bool, float], None]
"""Count one job done: whether it failed, and what it spent (USD)."""


@contextlib.contextmanager
def spending_progress(label: str, total: int) -> Iterator[Advance]:
    """A transient bar on stderr for `total` jobs; yields the function that counts one."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn(
            "{task.completed}/{task.total} · {task.fields[failed]} failed · ${task.fields[usd]:.4f}"
        ),
        TimeRemainingColumn(),
    )
    totals = {"failed": 0, "usd": 0.0}
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        bar = progress.add_task(label, total=total, failed=0, usd=0.0)

        def advance(failed: bool, usd: float) -> None:
            totals["failed"] += failed
            totals["usd"] += usd
            progress.update(bar, advance=1, failed=totals["failed"], usd=totals["usd"])

        yield advance
