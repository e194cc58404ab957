"""The cost/quality picture of an evaluation, as a standalone SVG drawn with the stdlib only.

Cost per item on a log x axis (decade ticks: $0.001, $0.01, ...), accuracy 0–100 % on y. Each
policy is a labelled dot, the baselines are squares (all-generate green, all-reason purple,
the colours the graph pictures use for those roles), and the Pareto frontier is a dashed line
through the policies on it, which are ringed. A log axis cannot show $0: a zero cost is drawn
at a floor one decade below the smallest positive cost, and the axis label says so.

As with orchestrator.picture, the output depends only on the input: no randomness, stable
orders, escaped text, a viewBox.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from ..svgtag import Attr
from ..svgtag import num as _n
from ..svgtag import tag as _tag
from .metrics import GENERATE, REASON, pareto

__all__ = ["frontier_svg", "usd_tick"]

WIDTH, HEIGHT = 680, 440
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 44, 84  # margins around the plot area
FONT_SIZE, LABEL_SIZE, CHAR_W = 12, 11, 6.4
INK, GRID, FRONTIER, POLICY = "#1e293b", "#e2e8f0", "#c2410c", "#3b82f6"
BASELINE_COLOURS = ("#22c55e", "#8b5cf6", "#64748b")  # generate, reason, any other

_Point = tuple[float, float]
_Box = tuple[float, float, float, float]  # x, y, width, height


def usd_tick(decade: int) -> str:
    """10**decade dollars written out: `$0.001`, `$1`, `$1,000` (no exponents, no float noise)."""
    if decade >= 0:
        return f"${10**decade:,}"
    return "$0." + "0" * (-decade - 1) + "1"


def _decades(costs: Sequence[float]) -> tuple[int, int, float | None]:
    """The first and last decade of the axis, and the floor zero costs are drawn at (or None
    if no cost is zero)."""
    positive = [c for c in costs if c > 0]
    if not positive:  # nothing to place: any decades do; zero costs sit on the first
        return -4, -3, 10.0**-4 if costs else None
    low = math.floor(math.log10(min(positive)) + 1e-9)
    high = math.ceil(math.log10(max(positive)) - 1e-9)
    floor = None
    if any(c <= 0 for c in costs):
        low -= 1
        floor = 10.0**low
    return low, max(high, low + 1), floor


class _Axes:
    """Data to picture coordinates."""

    def __init__(self, low: int, high: int, floor: float | None) -> None:
        self.low, self.high, self.floor = low, high, floor
        self.x0, self.x1 = LEFT, WIDTH - RIGHT
        self.y0, self.y1 = HEIGHT - BOTTOM, TOP

    def x(self, cost: float) -> float:
        cost = cost if cost > 0 else (self.floor or 10.0**self.low)
        share = (math.log10(cost) - self.low) / (self.high - self.low)
        return self.x0 + share * (self.x1 - self.x0)

    def y(self, quality: float) -> float:
        return self.y0 - min(max(quality, 0.0), 1.0) * (self.y0 - self.y1)


def frontier_svg(
    points: Mapping[str, _Point],
    baselines: Sequence[str] = (GENERATE, REASON),
    title: str = "",
) -> str:
    """The picture of `points` (name -> (cost per item in USD, quality in [0, 1])).

    Names in `baselines` are squares: the first green (all-generate), the second purple
    (all-reason). Point groups carry data-name, data-cost and data-quality.
    """
    axes = _Axes(*_decades([cost for cost, _ in points.values()]))
    front = pareto(points)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="{FONT_SIZE}" fill="{INK}" text-anchor="middle">',
        _tag("title", escape(title or "cost and quality")),
        _tag("rect", x=0, y=0, width=WIDTH, height=HEIGHT, fill="#ffffff"),
        *_grid(axes),
        _frontier_line(axes, points, front),
        *_points(axes, points, baselines, front),
        *_legend(axes),
    ]
    if title:
        look: dict[str, Attr] = {"font_size": 14, "font_weight": "bold"}
        parts.append(_tag("text", escape(title), class_="title", x=WIDTH / 2, y=24, **look))
    return "\n".join([*parts, "</svg>"]) + "\n"


def _grid(axes: _Axes) -> list[str]:
    """Gridlines and tick labels: one per decade on x, every 20 % on y; the axis titles."""
    out = []
    for decade in range(axes.low, axes.high + 1):
        x = axes.x(10.0**decade)
        out.append(_tag("line", x1=x, y1=axes.y1, x2=x, y2=axes.y0, stroke=GRID))
        text = escape(usd_tick(decade))
        out.append(_tag("text", text, class_="tick x", x=x, y=axes.y0 + 18))
    for percent in range(0, 101, 20):
        y = axes.y(percent / 100)
        out.append(_tag("line", x1=axes.x0, y1=y, x2=axes.x1, y2=y, stroke=GRID))
        where: dict[str, Attr] = {"text_anchor": "end", "x": axes.x0 - 8, "y": y + 4}
        out.append(_tag("text", f"{percent} %", class_="tick y", **where))
    size: dict[str, Attr] = {"width": axes.x1 - axes.x0, "height": axes.y0 - axes.y1}
    out.append(_tag("rect", x=axes.x0, y=axes.y1, fill="none", stroke="#94a3b8", **size))
    label = "cost per item (USD, log scale)"
    if axes.floor is not None:
        label += f"; $0 is drawn at {usd_tick(axes.low)}"
    middle = (axes.x0 + axes.x1) / 2
    out.append(_tag("text", escape(label), class_="axis x", x=middle, y=axes.y0 + 40))
    side, centre = axes.x0 - 44, (axes.y0 + axes.y1) / 2
    turn = f"rotate(-90 {_n(side)} {_n(centre)})"
    out.append(_tag("text", "accuracy", class_="axis y", x=side, y=centre, transform=turn))
    return out


def _frontier_line(axes: _Axes, points: Mapping[str, _Point], front: set[str]) -> str:
    ordered = sorted((points[name][0], points[name][1], name) for name in front)
    path = " ".join(
        f"{'L' if i else 'M'}{_n(axes.x(cost))},{_n(axes.y(quality))}"
        for i, (cost, quality, _) in enumerate(ordered)
    )
    look: dict[str, Attr] = {
        "fill": "none",
        "stroke": FRONTIER,
        "stroke_width": 1.5,
        "stroke_dasharray": "6 4",
    }
    return _tag("path", class_="frontier", d=path or "M0,0", **look)


def _points(
    axes: _Axes, points: Mapping[str, _Point], baselines: Sequence[str], front: set[str]
) -> list[str]:
    """Every point with its label, placed where it covers no marker and no label before it."""
    where = {name: (axes.x(cost), axes.y(quality)) for name, (cost, quality) in points.items()}
    taken: list[_Box] = [(x - 10, y - 10, 20, 20) for x, y in where.values()]  # the markers
    out = []
    # Labels are placed top to bottom, left to right: the same input, the same picture.
    for name in sorted(points, key=lambda n: (where[n][1], where[n][0], n)):
        x, y = where[name]
        label = _label(name, x, y, taken)
        out.append(_point(name, points[name], x, y, baselines, name in front, label))
    return out


def _label(name: str, x: float, y: float, taken: list[_Box]) -> str:
    """The point's label: beside it, else above or below, else further down with a leader
    line to it; the first place that is free and inside the picture."""
    width, height = len(name) * CHAR_W, 14.0
    offsets = [(12.0, 0.0), (-12.0, 0.0), (6.0, -17.0), (6.0, 17.0), (-6.0, -17.0), (-6.0, 17.0)]
    offsets += [(12.0, 17.0 * k * sign) for k in range(2, 8) for sign in (1, -1)]
    chosen = offsets[0]
    for dx, dy in offsets:
        left = x + dx if dx > 0 else x + dx - width
        box = (left, y + dy - height / 2, width, height)
        inside = box[0] >= 0 and box[0] + width <= WIDTH and TOP - 20 <= box[1] <= HEIGHT - BOTTOM
        if inside and not any(_overlap(box, other) for other in taken):
            chosen = (dx, dy)
            taken.append(box)
            break
    dx, dy = chosen
    look: dict[str, Attr] = {"font_size": LABEL_SIZE, "text_anchor": "start" if dx > 0 else "end"}
    text = _tag("text", escape(name), x=x + dx, y=y + dy + 4, **look)
    if abs(dy) <= 17:
        return text
    leader: dict[str, Attr] = {"stroke": "#94a3b8", "stroke_width": 0.8}
    return _tag("line", x1=x, y1=y, x2=x + dx - 2, y2=y + dy, **leader) + text


def _point(
    name: str,
    point: _Point,
    x: float,
    y: float,
    baselines: Sequence[str],
    on_front: bool,
    label: str,
) -> str:
    cost, quality = point
    if name in baselines:
        colour = BASELINE_COLOURS[min(list(baselines).index(name), 2)]
        shape = _tag("rect", x=x - 5, y=y - 5, width=10, height=10, fill=colour)
        kind = "baseline"
    else:
        shape = _tag("circle", cx=x, cy=y, r=5, fill=POLICY)
        kind = "policy"
    if on_front:
        ring: dict[str, Attr] = {"fill": "none", "stroke": FRONTIER, "stroke_width": 1.5}
        shape += _tag("circle", cx=x, cy=y, r=9, **ring)
    tip = _tag("title", escape(f"{name}: ${cost:.6g} per item, {quality * 100:.1f} %"))
    data: dict[str, Attr] = {
        "data_name": name,
        "data_cost": f"{cost:.6g}",
        "data_quality": f"{quality:.6g}",
    }
    pareto_class = " pareto" if on_front else ""
    # the label first, so markers stay on top of leader lines
    return _tag("g", tip + label + shape, class_=f"point {kind}{pareto_class}", **data)


def _overlap(a: _Box, b: _Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _legend(axes: _Axes) -> list[str]:
    y, x = axes.y0 + 62, axes.x0
    generate, reason = BASELINE_COLOURS[:2]
    dash: dict[str, Attr] = {"stroke": FRONTIER, "stroke_width": 1.5, "stroke_dasharray": "6 4"}
    marks = [
        _tag("rect", x=x, y=y - 9, width=10, height=10, fill=generate),
        _tag("rect", x=x + 110, y=y - 9, width=10, height=10, fill=reason),
        _tag("circle", cx=x + 225, cy=y - 4, r=5, fill=POLICY),
        _tag("line", x1=x + 290, y1=y - 4, x2=x + 316, y2=y - 4, **dash),
    ]
    words = ((16, GENERATE), (126, REASON), (236, "policy"), (322, "Pareto frontier"))
    look: dict[str, Attr] = {"font_size": LABEL_SIZE, "text_anchor": "start", "y": y}
    texts = [_tag("text", escape(word), x=x + dx, **look) for dx, word in words]
    return [_tag("g", "".join(marks + texts), class_="legend")]
