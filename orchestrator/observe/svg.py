"""A run's timeline as a standalone SVG picture, drawn with the stdlib only (a Gantt chart).

One row per bar, time on x from the run's start. Steps are full-height bars, their calls thinner
bars in the row under them, failed attempts red-outlined and hatched; the colour is the
profile's. Bars on the critical path have a thick orange outline and a star. Each bar's cost is
written at its right. As with orchestrator.picture, the output depends only on the input.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

from ..svgtag import Attr
from ..svgtag import tag as _tag
from .timeline import Timeline, TimelineBar

__all__ = ["PALETTE", "profile_colours", "timeline_svg"]

PALETTE = ("#8b5cf6", "#22c55e", "#3b82f6", "#f97316", "#14b8a6", "#db2777", "#ca8a04", "#64748b")
LABEL_W, PLOT_W, COST_W, ROW_H, TOP, FOOT = 230, 560, 90, 22, 56, 56
INK, GRID, CRITICAL, FAILED = "#1e293b", "#e2e8f0", "#c2410c", "#dc2626"
FONT_SIZE = 11


def profile_colours(timeline: Timeline) -> dict[str, str]:
    """A colour per profile, in the timeline's order (the palette repeats past eight)."""
    return {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(timeline.profiles)}


def timeline_svg(timeline: Timeline) -> str:
    """The picture, as a string. Bar groups carry data-id, data-type, data-profile,
    data-start, data-end, data-cost and data-critical."""
    width = LABEL_W + PLOT_W + COST_W
    height = TOP + ROW_H * len(timeline.bars) + FOOT
    scale = PLOT_W / _span(timeline.wall_s)
    colours = profile_colours(timeline)
    title = (
        f"run {timeline.run_id} · {timeline.workflow} · {timeline.status} · "
        f"{timeline.wall_s:.2f}s · ${timeline.cost_usd:.6f}"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="{FONT_SIZE}" fill="{INK}">',
        _tag("title", escape(title)),
        _defs(),
        _tag("rect", x=0, y=0, width=width, height=height, fill="#ffffff"),
        _tag("text", escape(title), x=12, y=22, font_size=14, font_weight="bold"),
        *_axis(timeline.wall_s, scale, height),
        *(_bar(i, bar, scale, colours) for i, bar in enumerate(timeline.bars)),
        _legend(colours, height),
    ]
    return "\n".join([*parts, "</svg>"]) + "\n"


def _span(wall_s: float) -> float:
    return wall_s if wall_s > 0 else 1.0


def _step(wall_s: float) -> float:
    """A round tick interval giving about five to ten ticks."""
    raw = _span(wall_s) / 6
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _axis(wall_s: float, scale: float, height: float) -> list[str]:
    out = []
    step, tick = _step(wall_s), 0.0
    while tick <= _span(wall_s) + 1e-9:
        x = LABEL_W + tick * scale
        out.append(_tag("line", x1=x, y1=TOP - 6, x2=x, y2=height - FOOT, stroke=GRID))
        label = escape(f"{tick:g}s")
        out.append(_tag("text", label, x=x, y=TOP - 10, text_anchor="middle", class_="tick"))
        tick = round(tick + step, 9)
    return out


def _defs() -> str:
    hatch = (
        '<pattern id="failed" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="#fee2e2"/><line x1="0" y1="0" x2="0" y2="6" '
        f'stroke="{FAILED}" stroke-width="2"/></pattern>'
    )
    return f"<defs>{hatch}</defs>"


def _bar(row: int, bar: TimelineBar, scale: float, colours: dict[str, str]) -> str:
    top = TOP + row * ROW_H
    x = LABEL_W + bar.start_s * scale
    width = max(bar.duration_s * scale, 1.5)
    colour = colours.get(bar.profile, PALETTE[-1])
    inset, look = _look(bar, colour)
    shape = _tag("rect", x=x, y=top + inset, width=width, height=ROW_H - 2 * inset, rx=2, **look)
    label = ("★ " if bar.critical else "") + _label(bar)
    indent = 8 if bar.type == "step" or bar.step is None else 22
    text = _tag("text", escape(label[:38]), x=indent, y=top + ROW_H / 2 + 4)
    cost = _tag(
        "text", escape(f"${bar.cost_usd:.6f}"), x=LABEL_W + PLOT_W + 6, y=top + ROW_H / 2 + 4
    )
    if bar.wait_s > 0:  # the wait before the next attempt, dotted
        y, end = top + ROW_H / 2, x + width + bar.wait_s * scale
        dots: dict[str, Attr] = {"stroke": FAILED, "stroke_dasharray": "2 3"}
        shape += _tag("line", class_="wait", x1=x + width, y1=y, x2=end, y2=y, **dots)
    tip = _tag("title", escape(_tip(bar)))
    data: dict[str, Attr] = {
        "data_id": bar.id, "data_type": bar.type, "data_profile": bar.profile,
        "data_start": f"{bar.start_s:.4f}", "data_end": f"{bar.end_s:.4f}",
        "data_cost": f"{bar.cost_usd:.8f}", "data_critical": str(bar.critical).lower(),
    }  # fmt: skip
    return _tag("g", tip + text + shape + cost, class_=f"bar {bar.type}", **data)


def _look(bar: TimelineBar, colour: str) -> tuple[float, dict[str, Attr]]:
    """How far the bar sits inside its row, and its fill and outline."""
    if bar.type == "attempt":
        look: dict[str, Attr] = {"fill": "url(#failed)", "stroke": FAILED, "stroke_width": 1}
        inset = 6.0
    elif bar.type == "call":
        look, inset = {"fill": colour, "fill_opacity": 0.75}, 6.0
    else:
        look, inset = {"fill": colour, "fill_opacity": 0.35, "stroke": colour}, 3.0
        if bar.status == "failed":
            look["stroke"] = FAILED
    if bar.critical:
        look["stroke"], look["stroke_width"] = CRITICAL, 2.5
    return inset, look


def _label(bar: TimelineBar) -> str:
    if bar.type != "step":
        return bar.label
    marks = [bar.label, f"({bar.profile})"]
    if bar.retries:
        marks.append(f"⟳{bar.retries}")
    if bar.escalations:
        marks.append(f"↑{bar.escalations}")
    if bar.status != "done":
        marks.append(bar.status)
    return " ".join(marks)


def _tip(bar: TimelineBar) -> str:
    tip = (
        f"{bar.label}: {bar.profile} ({bar.model}), {bar.start_s:.2f}s to {bar.end_s:.2f}s "
        f"({bar.duration_s:.2f}s), ${bar.cost_usd:.6f}, {bar.status}"
    )
    tip = f"{tip}: {bar.detail}" if bar.detail else tip
    return f"{tip}; waited {bar.wait_s:.2f}s" if bar.wait_s else tip


def _legend(colours: dict[str, str], height: float) -> str:
    y, x, out = height - FOOT + 28, 12.0, []
    for profile, colour in colours.items():
        out.append(_tag("rect", x=x, y=y - 9, width=12, height=10, fill=colour))
        out.append(_tag("text", escape(profile), x=x + 16, y=y))
        x += 28 + len(profile) * 6.5
    out.append(_tag("rect", x=x, y=y - 9, width=12, height=10, fill="url(#failed)"))
    out.append(_tag("text", "failed attempt", x=x + 16, y=y))
    x += 110
    out.append(_tag("rect", x=x, y=y - 9, width=12, height=10, fill="none", stroke=CRITICAL))
    out.append(_tag("text", escape("★ critical path"), x=x + 16, y=y))
    return _tag("g", "".join(out), class_="legend")
