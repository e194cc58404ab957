"""`orchestrator show RUN_ID`: a run's timeline in the terminal, as SVG (`--svg`), as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.table import Table
from rich.text import Text

from ..errors import UsageError
from ..observe.svg import profile_colours, timeline_svg
from ..observe.timeline import Timeline, TimelineBar, read_timeline
from .render import drive, write_out
from .view import add_row, wide_console

FIXED = 82  # characters of a row besides the time axis (columns and borders)
_CHARS = {"step": "━", "call": "█", "attempt": "░"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    show = sub.add_parser(
        "show", help="a run's timeline: a bar per step and call, retries, the critical path"
    )
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--json", action="store_true", help="print the timeline as JSON")
    show.add_argument("--svg", metavar="FILE", help="also write the timeline as an SVG picture")


def show(args: argparse.Namespace) -> int:
    timeline = drive(read_timeline(args.run_id))
    if args.svg:
        out = Path(args.svg)
        try:
            out.write_text(timeline_svg(timeline), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror}") from None
        print(f"wrote {out}", file=sys.stderr)
    if args.json:
        write_out(json.dumps(timeline.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        console = wide_console()
        console.print(timeline_table(timeline, max(20, console.width - FIXED)))
    return 0


def timeline_table(timeline: Timeline, width: int = 40) -> Table:
    """The timeline as a rich table: a row per bar, drawn to scale on `width` characters."""
    colours = profile_colours(timeline)
    title = (
        f"run {timeline.run_id} · {timeline.workflow} · {timeline.status} · "
        f"{timeline.wall_s:.2f}s · ${timeline.cost_usd:.6f}"
    )
    table = Table(title=title, caption=_caption(colours))
    table.add_column("", no_wrap=True, width=1)
    table.add_column("bar", no_wrap=True, width=34, overflow="ellipsis")
    table.add_column("profile", no_wrap=True, width=12, overflow="ellipsis")
    table.add_column(f"0 → {timeline.wall_s:.2f}s", no_wrap=True, width=width)
    for column in ("took", "cost $"):
        table.add_column(column, no_wrap=True, justify="right")
    scale = width / (timeline.wall_s or 1.0)
    for bar in timeline.bars:
        add_row(
            table,
            Text("★", style="bold #c2410c") if bar.critical else "",
            _label(bar),
            bar.profile,
            _drawn(bar, scale, width, colours.get(bar.profile, "white")),
            f"{bar.duration_s:.2f}s",
            f"{bar.cost_usd:.6f}",
        )
    return table


def _label(bar: TimelineBar) -> str:
    indent = "" if bar.type == "step" or bar.step is None else "  "
    text = bar.label
    if bar.type == "step":
        extra = [f"{bar.retries} retried" if bar.retries else ""]
        extra.append(f"↑{bar.escalations} escalated" if bar.escalations else "")
        extra.append(bar.status if bar.status != "done" else "")
        text = " ".join([text, *filter(None, extra)])
    elif bar.type == "attempt" and bar.detail:
        text = f"{text} ({bar.detail[:40]})"
    return indent + text


def _drawn(bar: TimelineBar, scale: float, width: int, colour: str) -> Text:
    start = min(int(bar.start_s * scale), width - 1)
    length = min(max(1, round(bar.duration_s * scale)), width - start)
    style = "#dc2626" if bar.type == "attempt" else colour
    if bar.critical:
        style += " bold"
    text = Text(" " * start)
    text.append(_CHARS[bar.type] * length, style=style)
    if bar.wait_s > 0:  # the wait before the next attempt
        waited = min(round(bar.wait_s * scale), width - start - length)
        text.append("·" * waited, style="#dc2626")
    return text


def _caption(colours: dict[str, str]) -> Text:
    caption = Text()
    for profile, colour in colours.items():
        caption.append("█ ", style=colour)
        caption.append(f"{profile}   ")
    caption.append("░ failed attempt   ", style="#dc2626")
    caption.append("★ critical path", style="#c2410c")
    return caption
