"""Draw a small workflow graph as a standalone SVG picture, using nothing beyond the stdlib.

A compact layered (Sugiyama-style) layout, top to bottom: cycles are broken by reversing the back
edges a depth-first search finds from the first node, layers come from the longest path, long
edges get invisible waypoints, a few barycenter sweeps reduce crossings, and x positions are
relaxed towards neighbours. Back edges are drawn as curves along the side, so loops stay visible.
The output depends only on the input: no randomness, and every ordering is stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from xml.sax.saxutils import escape, quoteattr

FONT_SIZE = 12
CHAR_W = 7.0  # approximate advance per character at FONT_SIZE
LINE_H = 16
PAD_X, PAD_Y = 14, 9
H_GAP, V_GAP = 36, 56  # between boxes in a layer, and between layers
DUMMY_W = 10  # width reserved for a long edge passing through a layer
MARGIN = 24
HEX_INSET = 12
EDGE_COLOUR, LOOP_COLOUR = "#64748b", "#c2410c"

# kind -> (fill, stroke, text colour)
_STYLE: dict[str, tuple[str, str, str]] = {
    "plan": ("#dbeafe", "#3b82f6", "#1e293b"),
    "reason": ("#ede9fe", "#8b5cf6", "#1e293b"),
    "generate": ("#dcfce7", "#22c55e", "#1e293b"),
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

Box = tuple[float, float, float, float]  # x, y, width, height


@dataclass(frozen=True)
class PicNode:
    id: str
    label: str
    kind: str = ""


@dataclass(frozen=True)
class PicEdge:
    source: str
    target: str
    label: str = ""
    dashed: bool = False


@dataclass
class _Plan:
    boxes: dict[str, Box]  # the nodes', then each long edge's slot in the layers it crosses
    slots: dict[int, list[Box]]  # forward edge index -> its slots in the layers it crosses
    back: list[int]  # edge indexes drawn as loops on the side (including self-loops)
    layer: dict[str, int]


def _size(node: PicNode) -> tuple[float, float]:
    lines = node.label.split("\n")
    width = max(len(line) for line in lines) * CHAR_W + 2 * PAD_X
    width += 2 * HEX_INSET if node.kind == "dispatch" else 0
    width += 12 if node.kind in ("start", "end") else 0
    return max(width, 64.0), len(lines) * LINE_H + 2 * PAD_Y


def _back_edges(ids: list[str], edges: Sequence[PicEdge]) -> list[int]:
    """Indexes of the edges that close a cycle, by DFS from each unseen node in input order."""
    out = {v: [k for k, e in enumerate(edges) if e.source == v] for v in ids}
    state = dict.fromkeys(ids, 0)  # 0 unseen, 1 on the DFS stack, 2 finished
    back: list[int] = []

    def visit(v: str) -> None:
        state[v] = 1
        for k in out[v]:
            if state[edges[k].target] == 1:
                back.append(k)
            elif state[edges[k].target] == 0:
                visit(edges[k].target)
        state[v] = 2

    for v in ids:
        if state[v] == 0:
            visit(v)
    return sorted(back)


def _pack(want: list[float], widths: list[float], gaps: list[float]) -> list[float]:
    """Centres as close to `want` as a left and a right pass allow, keeping order and gaps."""
    n = len(want)
    left, right = list(want), list(want)
    for i in range(1, n):
        left[i] = max(want[i], left[i - 1] + (widths[i - 1] + widths[i]) / 2 + gaps[i])
    for i in range(n - 2, -1, -1):
        right[i] = min(want[i], right[i + 1] - (widths[i] + widths[i + 1]) / 2 - gaps[i + 1])
    return [(a + b) / 2 for a, b in zip(left, right, strict=True)]


def _crossings(layers: list[list[str]], succ: dict[str, list[str]]) -> int:
    pos = {v: i for layer in layers for i, v in enumerate(layer)}
    total = 0
    for layer in layers:
        links = [(pos[a], pos[b]) for a in layer for b in succ[a]]
        total += sum(
            1 for i, (a, b) in enumerate(links) for c, d in links[i + 1 :] if (a - c) * (b - d) < 0
        )
    return total


def _plan(nodes: Sequence[PicNode], edges: Sequence[PicEdge]) -> _Plan:
    ids = [n.id for n in nodes]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate node id")
    for e in edges:
        if e.source not in ids or e.target not in ids:
            raise ValueError(f"edge {e.source!r} -> {e.target!r} names an unknown node")
    back = _back_edges(ids, edges)
    dag = [(e.source, e.target) for k, e in enumerate(edges) if k not in back]
    dag += [(edges[k].target, edges[k].source) for k in back if edges[k].source != edges[k].target]
    into = {v: [a for a, b in dag if b == v] for v in ids}

    @cache
    def depth(v: str) -> int:  # longest path from a source
        return max((depth(u) + 1 for u in into[v]), default=0)

    layer = {v: depth(v) for v in ids}
    size = {n.id: _size(n) for n in nodes}
    layers = [[v for v in ids if layer[v] == d] for d in range(max(layer.values(), default=-1) + 1)]
    succ: dict[str, list[str]] = {i: [] for i in ids}
    pred: dict[str, list[str]] = {i: [] for i in ids}
    chains: dict[int, list[str]] = {}
    for k, e in enumerate(edges):
        if k in back:
            continue
        chain = [e.source]
        for row in range(layer[e.source] + 1, layer[e.target]):
            dummy = f"\0{k}:{row}"
            layers[row].append(dummy)
            size[dummy] = (DUMMY_W, 0.0)
            succ[dummy], pred[dummy] = [], []
            chain.append(dummy)
        chain.append(e.target)
        chains[k] = chain[1:-1]
        for a, b in pairwise(chain):
            succ[a].append(b)
            pred[b].append(a)

    def sweep(order: list[list[str]], rng: range, nbrs: dict[str, list[str]]) -> None:
        pos = {v: i for lay in order for i, v in enumerate(lay)}
        for d in rng:
            bary = {
                v: sum(pos[u] for u in nbrs[v]) / len(nbrs[v]) if nbrs[v] else pos[v]
                for v in order[d]
            }
            order[d].sort(key=lambda v: (bary[v], pos[v]))
            pos.update({v: i for i, v in enumerate(order[d])})

    best, best_cross = [list(lay) for lay in layers], _crossings(layers, succ)
    for _ in range(4):
        sweep(layers, range(1, len(layers)), pred)
        sweep(layers, range(len(layers) - 2, -1, -1), succ)
        cross = _crossings(layers, succ)
        if cross < best_cross:
            best, best_cross = [list(lay) for lay in layers], cross
    layers = best

    loops = [edges[k] for k in back if edges[k].source == edges[k].target]
    ear = {e.source: 40 + _label_w(e.label) for e in loops}  # room for self-loops on the right
    real = set(ids)

    def gaps(lay: list[str]) -> list[float]:
        pairs = pairwise(lay)
        return [0.0] + [(H_GAP if {a, b} <= real else H_GAP / 2) + ear.get(a, 0) for a, b in pairs]

    cx: dict[str, float] = {}
    for lay in layers:  # start centred, then pull each layer towards its neighbours' centres
        widths = [size[v][0] for v in lay]
        cx.update(zip(lay, _pack([0.0] * len(lay), widths, gaps(lay)), strict=True))
    for rnd in range(7):  # downward rounds follow parents, upward rounds children; end downward
        nbrs, order = (pred, layers[1:]) if rnd % 2 == 0 else (succ, layers[-2::-1])
        for lay in order:
            want = [sum(cx[u] for u in nbrs[v]) / len(nbrs[v]) if nbrs[v] else cx[v] for v in lay]
            cx.update(zip(lay, _pack(want, [size[v][0] for v in lay], gaps(lay)), strict=True))
    shift = min((cx[v] - size[v][0] / 2 for v in cx), default=0.0)
    boxes: dict[str, Box] = {}
    top = 0.0
    for lay in layers:
        row_h = max(size[v][1] for v in lay)
        for v in lay:
            w, h = size[v][0], size[v][1] if v in real else row_h
            boxes[v] = (cx[v] - shift - w / 2, top + (row_h - h) / 2, w, h)
        top += row_h + V_GAP
    slots = {k: [boxes[d] for d in chain] for k, chain in chains.items()}
    return _Plan({v: boxes[v] for v in [*ids, *sorted(set(boxes) - real)]}, slots, back, layer)


def layout(nodes: Sequence[PicNode], edges: Sequence[PicEdge]) -> dict[str, Box]:
    """Each node's box (x, y, width, height), the top-left of the drawing at (0, 0)."""
    boxes = _plan(nodes, edges).boxes
    return {n.id: boxes[n.id] for n in nodes}


def _label_w(text: str) -> float:
    return len(text) * CHAR_W * 11 / 12 + 10 if text else 0.0


def _n(v: float) -> str:
    return f"{round(v, 1):g}"


def _tag(name: str, body: str | None = None, /, **attrs: str | float) -> str:
    """An element; attribute names take "-" for "_" (a trailing "_" dropped), values escaped."""
    text = "".join(
        f" {k.rstrip('_').replace('_', '-')}={quoteattr(v if isinstance(v, str) else _n(v))}"
        for k, v in attrs.items()
    )
    return f"<{name}{text}/>" if body is None else f"<{name}{text}>{body}</{name}>"


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


def render_svg(nodes: Sequence[PicNode], edges: Sequence[PicEdge], *, title: str = "") -> str:
    """The graph as a standalone SVG document (a string), drawn top to bottom."""
    plan = _plan(nodes, edges)
    boxes, slots = plan.boxes, plan.slots
    right = max((x + w for x, _, w, _ in boxes.values()), default=0.0)
    bounds = [0.0, 0.0, right, max((y + h for _, y, _, h in boxes.values()), default=0.0)]
    paths: list[str] = []
    labels: list[str] = []

    def grow(x0: float, y0: float, x1: float, y1: float) -> None:
        bounds[:] = [min(bounds[0], x0), min(bounds[1], y0), max(bounds[2], x1), max(bounds[3], y1)]

    def draw(k: int, d: str, x: float, y: float, back: bool = False) -> None:
        cls = "edge" + (" back" if back else "") + (" dashed" if edges[k].dashed else "")
        look: dict[str, str | float] = {"stroke_dasharray": "5 4"} if edges[k].dashed else {}
        look.update(fill="none", stroke=LOOP_COLOUR if back else EDGE_COLOUR, stroke_width=1.5)
        paths.append(
            _tag("path", class_=cls, d=d, marker_end=f"url(#arrow{'-loop' * back})", **look)
        )
        if text := edges[k].label:
            w = _label_w(text)
            grow(x - w / 2, y - 8, x + w / 2, y + 8)
            rect = _tag("rect", x=x - w / 2, y=y - 8, width=w, height=16, rx=3, fill="#ffffff")
            body = rect + _tag("text", escape(text), x=x, y=y + 4, fill="#475569")
            labels.append(_tag("g", body, class_="label", font_size=11, fill_opacity=0.95))

    # Forward edges leave a node's bottom and enter its top side by side, ordered by where their
    # other end lies, so that a fan does not start from a single point.
    ends: dict[int, tuple[float, float]] = {}  # where each edge heads to / comes from
    for k, s in slots.items():
        src, dst = boxes[edges[k].source], boxes[edges[k].target]
        ends[k] = (_centre(s[0] if s else dst), _centre(s[-1] if s else src))
    port: dict[tuple[int, int], float] = {}  # (edge, 0 leaving / 1 entering) -> x
    for n in nodes:
        x, _, w, _ = boxes[n.id]
        for end, attr in enumerate(("source", "target")):
            mine = sorted((ends[k][end], k) for k in slots if getattr(edges[k], attr) == n.id)
            for i, (_, k) in enumerate(mine):
                step = min(14.0, (w - 24) / max(len(mine) - 1, 1))
                port[k, end] = x + w / 2 + (i - (len(mine) - 1) / 2) * step
    for k in sorted(slots):
        _, sy, _, sh = boxes[edges[k].source]
        pts = [(port[k, 0], sy + sh)]
        for x, top, w, h in slots[k]:
            pts += [(x + w / 2, top), (x + w / 2, top + h)]
        pts.append((port[k, 1], boxes[edges[k].target][1]))
        d = f"M{_n(pts[0][0])},{_n(pts[0][1])}"
        for i, ((x0, y0), (x1, y1)) in enumerate(pairwise(pts)):
            mid, to = _n((y0 + y1) / 2), f"{_n(x1)},{_n(y1)}"
            d += f" L{to}" if i % 2 else f" C{_n(x0)},{mid} {_n(x1)},{mid} {to}"
        (x0, y0), (x1, y1) = pts[(len(pts) - 1) // 2], pts[(len(pts) + 1) // 2]
        draw(k, d, (x0 + x1) / 2, (y0 + y1) / 2)

    # Back edges run in lanes beside everything between their ends, short loops innermost.
    lanes: list[tuple[int, float, float, float]] = []  # side, top, bottom, x

    def span(e: PicEdge) -> int:
        return plan.layer[e.source] - plan.layer[e.target]

    for k in sorted(plan.back, key=lambda k: (span(edges[k]), k)):
        e = edges[k]
        sx, sy, sw, sh = boxes[e.source]
        if e.source == e.target:  # a self-loop: a small ear on the right
            r, cy = sx + sw, sy + sh / 2
            d = f"M{_n(r)},{_n(cy - 7)} C{_n(r + 36)},{_n(cy - 26)} {_n(r + 36)},{_n(cy + 26)} "
            grow(r, cy - 20, r + 30, cy + 20)
            draw(k, d + f"{_n(r)},{_n(cy + 7)}", r + 34 + _label_w(e.label) / 2, cy, True)
            continue
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
        grow(far - 2, by, far + 2, ay)
        draw(k, d + f" Q{_n(far)},{_n(by)} {_n(bx)},{_n(by)}", far, (ay + by) / 2, True)

    if title:
        grow(bounds[0], -30, bounds[2], 0)
        look = {"font_size": "14", "font_weight": "bold", "fill": "#1e293b"}
        centre_x = (bounds[0] + bounds[2]) / 2
        labels.append(_tag("text", escape(title), class_="title", x=centre_x, y=-14, **look))
    x0, y0 = bounds[0] - MARGIN, bounds[1] - MARGIN
    vw, vh = bounds[2] - bounds[0] + 2 * MARGIN, bounds[3] - bounds[1] + 2 * MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(vw)}" height="{_n(vh)}" '
        f'viewBox="{_n(x0)} {_n(y0)} {_n(vw)} {_n(vh)}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="{FONT_SIZE}" text-anchor="middle">',
        _tag("title", escape(title or "workflow")),
        _DEFS,
        _tag("rect", x=x0, y=y0, width=vw, height=vh, fill="#ffffff"),
        *paths,
        *(_node(node, boxes[node.id]) for node in nodes),
        *labels,
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
