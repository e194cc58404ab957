"""Draw a small workflow graph as a standalone SVG picture, using nothing beyond the stdlib.

orchestrator.layered decides where the boxes and the edges' waypoints go, top to bottom. This
module draws them: forward edges as curves through their waypoints, back edges as curves along
the side (so loops stay visible), self-loops as small ears, and labels on top of everything.
The output depends only on the input: no randomness, and every ordering is stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from xml.sax.saxutils import escape

from .layered import (
    FONT_SIZE,
    HEX_INSET,
    LINE_H,
    Box,
    PicEdge,
    PicNode,
    Placement,
    label_width,
    layout,
    place,
)
from .svgtag import num as _n
from .svgtag import tag as _tag

__all__ = ["Box", "PicEdge", "PicNode", "layout", "render_svg"]

MARGIN = 24
EDGE_COLOUR, LOOP_COLOUR = "#64748b", "#c2410c"

# kind -> (fill, stroke, text colour)
_STYLE: dict[str, tuple[str, str, str]] = {
    "plan": ("#dbeafe", "#3b82f6", "#1e293b"),
    "reason": ("#ede9fe", "#8b5cf6", "#1e293b"),
    "generate": ("#dcfce7", "#22c55e", "#1e293b"),
    "synthesize": ("#d1fae5", "#059669", "#1e293b"),
    "verify": ("#ffedd5", "#f97316", "#1e293b"),
    "human": ("#fef9c3", "#ca8a04", "#1e293b"),
    "python": ("#f1f5f9", "#64748b", "#1e293b"),
    "map": ("#ccfbf1", "#14b8a6", "#1e293b"),
    "dispatch": ("#fce7f3", "#db2777", "#1e293b"),
    "start": ("#334155", "#1e293b", "#ffffff"),
    "end": ("#334155", "#1e293b", "#ffffff"),
}
_DEFAULT_STYLE = ("#ffffff", "#64748b", "#1e293b")

_DEFS = (
    "<defs>"
    + "".join(
        f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
        f'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        for name, colour in (("arrow", EDGE_COLOUR), ("arrow-loop", LOOP_COLOUR))
    )
    + "</defs>"
)

_Port = tuple[int, int]  # (forward edge index, 0 where it leaves / 1 where it enters)
_Lane = tuple[int, float, float, float]  # side (1 right, -1 left), top, bottom, x


def render_svg(nodes: Sequence[PicNode], edges: Sequence[PicEdge], *, title: str = "") -> str:
    """The graph as a standalone SVG document (a string), drawn top to bottom.

    Node groups carry data-id and data-kind; edge paths carry data-edge (the edge's index),
    data-source and data-target, and an edge's label group the same data-edge.
    """
    placement = place(nodes, edges)
    canvas = _Canvas(edges, placement.boxes)
    _draw_forward_edges(canvas, nodes, placement)
    _draw_back_edges(canvas, placement)
    if title:
        _draw_title(canvas, title)
    return _document(canvas, nodes, placement.boxes, title)


def _extent(boxes: dict[str, Box]) -> tuple[float, float]:
    """The right and the bottom of all the boxes, or 0 without any."""
    right = max((x + w for x, _, w, _ in boxes.values()), default=0.0)
    return right, max((y + h for _, y, _, h in boxes.values()), default=0.0)


class _Canvas:
    """The edge paths and labels drawn so far, and the bounds of all that is drawn."""

    def __init__(self, edges: Sequence[PicEdge], boxes: dict[str, Box]) -> None:
        self.edges = edges
        self.bounds = [0.0, 0.0, *_extent(boxes)]
        self.paths: list[str] = []
        self.labels: list[str] = []

    def grow(self, x0: float, y0: float, x1: float, y1: float) -> None:
        bounds = self.bounds
        bounds[:] = [min(bounds[0], x0), min(bounds[1], y0), max(bounds[2], x1), max(bounds[3], y1)]

    def edge(self, k: int, d: str, x: float, y: float, back: bool = False) -> None:
        """Edge `k` along the path `d`, with its label (if any) centred on (x, y)."""
        edge = self.edges[k]
        cls = "edge" + (" back" if back else "") + (" dashed" if edge.dashed else "")
        look: dict[str, str | float] = {"stroke_dasharray": "5 4"} if edge.dashed else {}
        look.update(fill="none", stroke=LOOP_COLOUR if back else EDGE_COLOUR, stroke_width=1.5)
        look.update(data_edge=str(k), data_source=edge.source, data_target=edge.target)
        self.paths.append(
            _tag("path", class_=cls, d=d, marker_end=f"url(#arrow{'-loop' * back})", **look)
        )
        if text := edge.label:
            w = label_width(text)
            self.grow(x - w / 2, y - 8, x + w / 2, y + 8)
            rect = _tag("rect", x=x - w / 2, y=y - 8, width=w, height=16, rx=3, fill="#ffffff")
            body = rect + _tag("text", escape(text), x=x, y=y + 4, fill="#475569")
            tags: dict[str, str | float] = {"data_edge": str(k), "font_size": 11}
            self.labels.append(_tag("g", body, class_="label", fill_opacity=0.95, **tags))


def _ports(
    nodes: Sequence[PicNode], placement: Placement, edges: Sequence[PicEdge]
) -> dict[_Port, float]:
    """Where forward edges leave a node's bottom and enter its top: side by side, ordered by
    where their other end lies, so that a fan does not start from a single point."""
    boxes, slots = placement.boxes, placement.slots
    ends: dict[int, tuple[float, float]] = {}  # where each edge heads to / comes from
    for k, s in slots.items():
        src, dst = boxes[edges[k].source], boxes[edges[k].target]
        ends[k] = (_centre(s[0] if s else dst), _centre(s[-1] if s else src))
    port: dict[_Port, float] = {}
    for n in nodes:
        x, _, w, _ = boxes[n.id]
        for end, attr in enumerate(("source", "target")):
            mine = sorted((ends[k][end], k) for k in slots if getattr(edges[k], attr) == n.id)
            for i, (_, k) in enumerate(mine):
                step = min(14.0, (w - 24) / max(len(mine) - 1, 1))
                port[k, end] = x + w / 2 + (i - (len(mine) - 1) / 2) * step
    return port


def _draw_forward_edges(canvas: _Canvas, nodes: Sequence[PicNode], placement: Placement) -> None:
    """Each forward edge from its port down through its waypoints, labelled at its middle."""
    edges, boxes = canvas.edges, placement.boxes
    port = _ports(nodes, placement, edges)
    for k in sorted(placement.slots):
        _, sy, _, sh = boxes[edges[k].source]
        pts = [(port[k, 0], sy + sh)]
        for x, top, w, h in placement.slots[k]:
            pts += [(x + w / 2, top), (x + w / 2, top + h)]
        pts.append((port[k, 1], boxes[edges[k].target][1]))
        (x0, y0), (x1, y1) = pts[(len(pts) - 1) // 2], pts[(len(pts) + 1) // 2]
        canvas.edge(k, _through(pts), (x0 + x1) / 2, (y0 + y1) / 2)


def _through(pts: list[tuple[float, float]]) -> str:
    """A path through `pts`: curves between layers, straight through each waypoint."""
    d = f"M{_n(pts[0][0])},{_n(pts[0][1])}"
    for i, ((x0, y0), (x1, y1)) in enumerate(pairwise(pts)):
        mid, to = _n((y0 + y1) / 2), f"{_n(x1)},{_n(y1)}"
        d += f" L{to}" if i % 2 else f" C{_n(x0)},{mid} {_n(x1)},{mid} {to}"
    return d


def _draw_back_edges(canvas: _Canvas, placement: Placement) -> None:
    """Back edges run in lanes beside everything between their ends, short loops innermost."""
    edges, right = canvas.edges, _extent(placement.boxes)[0]
    lanes: list[_Lane] = []

    def span(e: PicEdge) -> int:
        return placement.layer[e.source] - placement.layer[e.target]

    for k in sorted(placement.back, key=lambda k: (span(edges[k]), k)):
        if edges[k].source == edges[k].target:
            _draw_self_loop(canvas, k, placement.boxes[edges[k].source])
        else:
            _draw_side_loop(canvas, k, placement.boxes, right, lanes)


def _draw_self_loop(canvas: _Canvas, k: int, box: Box) -> None:
    """A self-loop: a small ear on the node's right."""
    sx, sy, sw, sh = box
    r, cy = sx + sw, sy + sh / 2
    d = f"M{_n(r)},{_n(cy - 7)} C{_n(r + 36)},{_n(cy - 26)} {_n(r + 36)},{_n(cy + 26)} "
    canvas.grow(r, cy - 20, r + 30, cy + 20)
    label_x = r + 34 + label_width(canvas.edges[k].label) / 2
    canvas.edge(k, d + f"{_n(r)},{_n(cy + 7)}", label_x, cy, True)


def _draw_side_loop(
    canvas: _Canvas, k: int, boxes: dict[str, Box], right: float, lanes: list[_Lane]
) -> None:
    """A back edge out of its source's side, along a lane clear of the boxes between its ends
    and of the lanes already taken there, into its target's side, on the source's half."""
    e = canvas.edges[k]
    sx, sy, sw, sh = boxes[e.source]
    tx, ty, tw, th = boxes[e.target]
    side = 1 if sx + sw / 2 >= right / 2 else -1
    ay, by = sy + sh / 2, ty + th / 2
    near = [b for b in boxes.values() if b[1] < sy + sh and b[1] + b[3] > ty]
    far = max(side * (x + w / 2) + w / 2 for x, _, w, _ in near) * side + side * 22
    for lane in sorted(c[3] * side for c in lanes if c[0] == side and c[1] < ay and c[2] > by):
        far = max(far * side, lane + 14) * side
    lanes.append((side, by, ay, far))
    ax, bx = (sx + sw, tx + tw) if side > 0 else (sx, tx)
    r = min(24.0, (ay - by) / 2)
    d = f"M{_n(ax)},{_n(ay)} Q{_n(far)},{_n(ay)} {_n(far)},{_n(ay - r)} L{_n(far)},{_n(by + r)}"
    canvas.grow(far - 2, by, far + 2, ay)
    canvas.edge(k, d + f" Q{_n(far)},{_n(by)} {_n(bx)},{_n(by)}", far, (ay + by) / 2, True)


def _draw_title(canvas: _Canvas, title: str) -> None:
    bounds = canvas.bounds
    canvas.grow(bounds[0], -30, bounds[2], 0)
    look = {"font_size": "14", "font_weight": "bold", "fill": "#1e293b"}
    centre_x = (bounds[0] + bounds[2]) / 2
    canvas.labels.append(_tag("text", escape(title), class_="title", x=centre_x, y=-14, **look))


def _document(canvas: _Canvas, nodes: Sequence[PicNode], boxes: dict[str, Box], title: str) -> str:
    """The SVG document: edges under nodes, labels over both, a margin all round."""
    bounds = canvas.bounds
    x0, y0 = bounds[0] - MARGIN, bounds[1] - MARGIN
    vw, vh = bounds[2] - bounds[0] + 2 * MARGIN, bounds[3] - bounds[1] + 2 * MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(vw)}" height="{_n(vh)}" '
        f'viewBox="{_n(x0)} {_n(y0)} {_n(vw)} {_n(vh)}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="{FONT_SIZE}" text-anchor="middle">',
        _tag("title", escape(title or "workflow")),
        _DEFS,
        _tag("rect", x=x0, y=y0, width=vw, height=vh, fill="#ffffff"),
        *canvas.paths,
        *(_node(node, boxes[node.id]) for node in nodes),
        *canvas.labels,
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _centre(box: Box) -> float:
    return box[0] + box[2] / 2


def _node(node: PicNode, box: Box) -> str:
    x, y, w, h = box
    fill, stroke, ink = _STYLE.get(node.kind, _DEFAULT_STYLE)
    paint: dict[str, str | float] = {"fill": fill, "stroke": stroke, "stroke_width": 1.5}
    if node.kind == "dispatch":
        cy, i = y + h / 2, HEX_INSET
        corners = [(x + i, y), (x + w - i, y), (x + w, cy), (x + w - i, y + h), (x + i, y + h)]
        points = " ".join(f"{_n(a)},{_n(b)}" for a, b in [*corners, (x, cy)])
        shape = _tag("polygon", points=points, **paint)
    else:
        rx = h / 2 if node.kind in ("start", "end") else 8
        shape = _tag("rect", x=x, y=y, width=w, height=h, rx=rx, **paint)
    lines = node.label.split("\n")
    base = y + h / 2 - (len(lines) - 1) * LINE_H / 2 + 4
    spans = "".join(
        _tag("tspan", escape(line), x=x + w / 2, y=base + i * LINE_H)
        for i, line in enumerate(lines)
    )
    tip = _tag("title", escape(f"{node.id} ({node.kind})" if node.kind else node.id))
    body = tip + shape + _tag("text", spans, fill=ink)
    return _tag("g", body, class_="node", data_id=node.id, data_kind=node.kind)
