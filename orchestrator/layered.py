"""Where a small workflow graph's boxes and edges go, for orchestrator.picture to draw.

A compact layered (Sugiyama-style) layout, top to bottom: cycles are broken by reversing the back
edges a depth-first search finds from the first node, layers come from the longest path, long
edges get invisible waypoints, a few barycenter sweeps reduce crossings, and x positions are
relaxed towards neighbours. Back edges are left to be drawn as loops along the side.
The output depends only on the input: no randomness, and every ordering is stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

FONT_SIZE = 12
CHAR_W = 7.0  # approximate advance per character at FONT_SIZE
LINE_H = 16
PAD_X, PAD_Y = 14, 9
H_GAP, V_GAP = 36, 56  # between boxes in a layer, and between layers
DUMMY_W = 10  # width reserved for a long edge passing through a layer
HEX_INSET = 12

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
class Placement:
    """What the picture is drawn from."""

    boxes: dict[str, Box]  # the nodes', then each long edge's slot in the layers it crosses
    slots: dict[int, list[Box]]  # forward edge index -> its slots in the layers it crosses
    back: list[int]  # edge indexes drawn as loops on the side (including self-loops)
    layer: dict[str, int]


def layout(nodes: Sequence[PicNode], edges: Sequence[PicEdge]) -> dict[str, Box]:
    """Each node's box (x, y, width, height), the top-left of the drawing at (0, 0)."""
    boxes = place(nodes, edges).boxes
    return {n.id: boxes[n.id] for n in nodes}


def label_width(text: str) -> float:
    """The width of an edge label's box; labels are set a point smaller than FONT_SIZE."""
    return len(text) * CHAR_W * 11 / 12 + 10 if text else 0.0


@dataclass
class _Layering:
    """The layers, top to bottom; a long edge has a waypoint in each layer it crosses."""

    layers: list[list[str]]  # node ids and waypoints, each layer in its left-to-right order
    size: dict[str, tuple[float, float]]  # width and height of every node and waypoint
    succ: dict[str, list[str]]  # the links down to the next layer, through waypoints
    pred: dict[str, list[str]]  # the same links, seen from below
    chains: dict[int, list[str]]  # forward edge index -> its waypoints, top to bottom


def place(nodes: Sequence[PicNode], edges: Sequence[PicEdge]) -> Placement:
    """Where everything goes: cycles broken, layers, waypoints, order, then x and y."""
    ids = [n.id for n in nodes]
    _check_input(ids, edges)
    back = _back_edges(ids, edges)
    layer = _longest_path_layers(ids, edges, back)
    net = _add_waypoints(nodes, edges, back, layer)
    net.layers = _reduce_crossings(net.layers, net.succ, net.pred)
    loops = [edges[k] for k in back if edges[k].source == edges[k].target]
    ear = {e.source: 40 + label_width(e.label) for e in loops}  # room for self-loops on the right
    real = set(ids)
    boxes = _boxes(net, _centres(net, real, ear), real)
    slots = {k: [boxes[d] for d in chain] for k, chain in net.chains.items()}
    return Placement({v: boxes[v] for v in [*ids, *sorted(set(boxes) - real)]}, slots, back, layer)


def _check_input(ids: list[str], edges: Sequence[PicEdge]) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate node id")
    for e in edges:
        if e.source not in ids or e.target not in ids:
            raise ValueError(f"edge {e.source!r} -> {e.target!r} names an unknown node")


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


def _longest_path_layers(
    ids: list[str], edges: Sequence[PicEdge], back: list[int]
) -> dict[str, int]:
    """Each node's layer: its longest path from a source, once the back edges are reversed."""
    dag = [(e.source, e.target) for k, e in enumerate(edges) if k not in back]
    dag += [(edges[k].target, edges[k].source) for k in back if edges[k].source != edges[k].target]
    into = {v: [a for a, b in dag if b == v] for v in ids}

    @cache
    def depth(v: str) -> int:
        return max((depth(u) + 1 for u in into[v]), default=0)

    return {v: depth(v) for v in ids}


def _add_waypoints(
    nodes: Sequence[PicNode], edges: Sequence[PicEdge], back: list[int], layer: dict[str, int]
) -> _Layering:
    """The layers in input order, each forward edge cut into one-layer links by waypoints."""
    ids = [n.id for n in nodes]
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
    return _Layering(layers, size, succ, pred, chains)


def _size(node: PicNode) -> tuple[float, float]:
    lines = node.label.split("\n")
    width = max(len(line) for line in lines) * CHAR_W + 2 * PAD_X
    width += 2 * HEX_INSET if node.kind == "dispatch" else 0
    width += 12 if node.kind in ("start", "end") else 0
    return max(width, 64.0), len(lines) * LINE_H + 2 * PAD_Y


def _reduce_crossings(
    layers: list[list[str]], succ: dict[str, list[str]], pred: dict[str, list[str]]
) -> list[list[str]]:
    """A few barycenter sweeps, down then up; the order with the fewest crossings wins."""
    order = [list(lay) for lay in layers]
    best, best_cross = [list(lay) for lay in order], _crossings(order, succ)
    for _ in range(4):
        _sweep(order, range(1, len(order)), pred)
        _sweep(order, range(len(order) - 2, -1, -1), succ)
        cross = _crossings(order, succ)
        if cross < best_cross:
            best, best_cross = [list(lay) for lay in order], cross
    return best


def _sweep(order: list[list[str]], rng: range, nbrs: dict[str, list[str]]) -> None:
    """Sort the layers in `rng`, in that order, by the mean position of their neighbours."""
    pos = {v: i for lay in order for i, v in enumerate(lay)}
    for d in rng:
        bary = {
            v: sum(pos[u] for u in nbrs[v]) / len(nbrs[v]) if nbrs[v] else pos[v] for v in order[d]
        }
        order[d].sort(key=lambda v: (bary[v], pos[v]))
        pos.update({v: i for i, v in enumerate(order[d])})


def _crossings(layers: list[list[str]], succ: dict[str, list[str]]) -> int:
    pos = {v: i for layer in layers for i, v in enumerate(layer)}
    total = 0
    for layer in layers:
        links = [(pos[a], pos[b]) for a in layer for b in succ[a]]
        total += sum(
            1 for i, (a, b) in enumerate(links) for c, d in links[i + 1 :] if (a - c) * (b - d) < 0
        )
    return total


def _centres(net: _Layering, real: set[str], ear: dict[str, float]) -> dict[str, float]:
    """The x of each box's centre, as near its neighbours' as its layer's gaps allow."""
    layers, size = net.layers, net.size
    cx: dict[str, float] = {}
    for lay in layers:  # start centred, then pull each layer towards its neighbours' centres
        widths = [size[v][0] for v in lay]
        cx.update(zip(lay, _pack([0.0] * len(lay), widths, _gaps(lay, real, ear)), strict=True))
    for rnd in range(7):  # downward rounds follow parents, upward rounds children; end downward
        nbrs, order = (net.pred, layers[1:]) if rnd % 2 == 0 else (net.succ, layers[-2::-1])
        for lay in order:
            want = [sum(cx[u] for u in nbrs[v]) / len(nbrs[v]) if nbrs[v] else cx[v] for v in lay]
            widths = [size[v][0] for v in lay]
            cx.update(zip(lay, _pack(want, widths, _gaps(lay, real, ear)), strict=True))
    return cx


def _gaps(lay: list[str], real: set[str], ear: dict[str, float]) -> list[float]:
    """The gap before each box of a layer; waypoints need less, self-loops more."""
    pairs = pairwise(lay)
    return [0.0] + [(H_GAP if {a, b} <= real else H_GAP / 2) + ear.get(a, 0) for a, b in pairs]


def _pack(want: list[float], widths: list[float], gaps: list[float]) -> list[float]:
    """Centres as close to `want` as a left and a right pass allow, keeping order and gaps."""
    n = len(want)
    left, right = list(want), list(want)
    for i in range(1, n):
        left[i] = max(want[i], left[i - 1] + (widths[i - 1] + widths[i]) / 2 + gaps[i])
    for i in range(n - 2, -1, -1):
        right[i] = min(want[i], right[i + 1] - (widths[i] + widths[i + 1]) / 2 - gaps[i + 1])
    return [(a + b) / 2 for a, b in zip(left, right, strict=True)]


def _boxes(net: _Layering, cx: dict[str, float], real: set[str]) -> dict[str, Box]:
    """Boxes around the centres, the leftmost at x = 0; a layer is as tall as its tallest node."""
    size = net.size
    shift = min((cx[v] - size[v][0] / 2 for v in cx), default=0.0)
    boxes: dict[str, Box] = {}
    top = 0.0
    for lay in net.layers:
        row_h = max(size[v][1] for v in lay)
        for v in lay:
            w, h = size[v][0], size[v][1] if v in real else row_h
            boxes[v] = (cx[v] - shift - w / 2, top + (row_h - h) / 2, w, h)
        top += row_h + V_GAP
    return boxes
