"""The SVG renderer (well formed, every node and edge drawn, no overlaps), and one topology
per workflow read back from both its Mermaid text and its SVG picture: the same nodes, labels,
shapes, edges, edge labels and dashes in each."""

from __future__ import annotations

import html
import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator import load_workflow, parse_workflow
from orchestrator.diagram import PicEdge, PicNode, Topology, mermaid, render_mermaid, svg, topology
from orchestrator.picture import layout, render_svg
from orchestrator.spec import WorkflowSpec

SVG = "{http://www.w3.org/2000/svg}"

SAMPLE_NODES = [
    PicNode("start", "start", "start"),
    PicNode("plan", "plan", "plan"),
    PicNode("dispatch", "dispatch", "dispatch"),
    PicNode("reason", "reason\n(deepseek-r1)", "reason"),
    PicNode("generate", "generate", "generate"),
    PicNode("verify", "verify", "verify"),
    PicNode("synthesize", "synthesize", "python"),
    PicNode("end", "end", "end"),
]
SAMPLE_EDGES = [
    PicEdge("start", "plan"),
    PicEdge("plan", "dispatch"),
    PicEdge("dispatch", "reason", "math"),
    PicEdge("dispatch", "generate", "code"),
    PicEdge("reason", "verify"),
    PicEdge("verify", "reason", "retry", dashed=True),
    PicEdge("verify", "synthesize", "ok", dashed=True),
    PicEdge("generate", "synthesize"),
    PicEdge("synthesize", "end"),
]


def _busy_graph() -> tuple[list[PicNode], list[PicEdge]]:
    """Fan-out, a self-loop, nested loops, a long skip edge and two-line labels."""
    kinds = ["plan", "dispatch", "reason", "generate", "map", "python", "verify", "human", ""]
    nodes = [PicNode(f"n{i}", f"node {i}\nkind {kinds[i % 9]}", kinds[i % 9]) for i in range(14)]
    pairs = [(0, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 6), (6, 2), (3, 7), (4, 4), (4, 7)]
    pairs += [(5, 8), (8, 7), (8, 0), (7, 9), (9, 1), (9, 10), (10, 11), (11, 12), (12, 13)]
    pairs += [(0, 13), (6, 7), (3, 12)]
    return nodes, [PicEdge(f"n{a}", f"n{b}", f"e{a}-{b}" if a % 2 else "") for a, b in pairs]


def _dense_graph() -> tuple[list[PicNode], list[PicEdge]]:
    nodes = [PicNode(f"n{i}", f"step {i}", "reason" if i % 2 else "generate") for i in range(20)]
    edges = [
        PicEdge(f"n{i}", f"n{j}")
        for i in range(20)
        for j in (2 * i + 1, 2 * i + 2, i + 3)
        if j < 20
    ]
    return nodes, [*edges, PicEdge("n19", "n0", "again", dashed=True)]


GRAPHS = {
    "sample": (SAMPLE_NODES, SAMPLE_EDGES),
    "busy": _busy_graph(),
    "dense": _dense_graph(),
    "cycle": (
        [PicNode("a", "a"), PicNode("b", "b"), PicNode("c", "c")],
        [PicEdge("a", "b"), PicEdge("b", "c"), PicEdge("c", "a")],
    ),
    "isolated": ([PicNode("x", "x"), PicNode("y", "y"), PicNode("z", "z")], []),
}


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}tspan")] + [
        t.text or "" for t in root.iter(f"{SVG}text") if t.text
    ]


def _edge_paths(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if "edge" in p.get("class", "").split()]


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_svg_is_well_formed_with_title_and_viewbox(name: str) -> None:
    nodes, edges = GRAPHS[name]
    root = _parse(render_svg(nodes, edges, title=name))
    assert root.find(f"{SVG}title") is not None
    assert root.findtext(f"{SVG}title") == name
    x0, y0, width, height = (float(v) for v in root.get("viewBox", "").split())
    assert width > 0 and height > 0
    for x, y, w, h in layout(nodes, edges).values():  # every box inside, with some margin
        assert x0 + 10 <= x and x + w <= x0 + width - 10
        assert y0 + 10 <= y and y + h <= y0 + height - 10


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_every_node_label_is_drawn_as_text(name: str) -> None:
    nodes, edges = GRAPHS[name]
    texts = _texts(_parse(render_svg(nodes, edges)))
    for node in nodes:
        for line in node.label.split("\n"):
            assert line in texts
    assert len(_parse(render_svg(nodes, edges)).findall(f"{SVG}g[@class='node']")) == len(nodes)


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_one_path_per_edge_and_a_label_box_per_labelled_edge(name: str) -> None:
    nodes, edges = GRAPHS[name]
    root = _parse(render_svg(nodes, edges))
    paths = _edge_paths(root)
    assert len(paths) == len(edges)
    assert all(p.get("marker-end", "").startswith("url(#arrow") for p in paths)
    dashed = [p for p in paths if "dashed" in p.get("class", "").split()]
    assert len(dashed) == sum(e.dashed for e in edges)
    labels = root.findall(f".//{SVG}g[@class='label']")
    assert len(labels) == sum(bool(e.label) for e in edges)
    assert all(g.find(f"{SVG}rect") is not None for g in labels)


def test_sample_is_layered_top_to_bottom() -> None:
    boxes = layout(SAMPLE_NODES, SAMPLE_EDGES)
    order = ["start", "plan", "dispatch", "reason", "verify", "synthesize", "end"]
    tops = [boxes[v][1] for v in order]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)
    centre_y = {v: y + h / 2 for v, (_, y, _, h) in boxes.items()}
    assert centre_y["reason"] == centre_y["generate"]  # parallel branches share a layer
    root = _parse(render_svg(SAMPLE_NODES, SAMPLE_EDGES))
    assert len([p for p in _edge_paths(root) if "back" in p.get("class", "")]) == 1


def test_cycle_renders_with_its_back_edge_drawn_on_the_side() -> None:
    nodes, edges = GRAPHS["cycle"]
    boxes = layout(nodes, edges)
    assert boxes["a"][1] < boxes["b"][1] < boxes["c"][1]  # the DFS from "a" breaks c -> a
    root = _parse(render_svg(nodes, edges))
    back = [p for p in _edge_paths(root) if "back" in p.get("class", "").split()]
    assert len(back) == 1
    d = back[0].get("d", "")
    assert "Q" in d  # curved corners
    xs = [float(v.split(",")[0]) for v in d.replace("M", " ").replace("Q", " ").replace(
        "L", " ").split()]  # fmt: skip
    right = max(x + w for x, _, w, _ in boxes.values())
    left = min(x for x, _, _, _ in boxes.values())
    assert max(xs) > right or min(xs) < left  # it runs beside the boxes, not through them


def test_self_loop_and_two_node_loop() -> None:
    nodes = [PicNode("a", "a", "map"), PicNode("b", "b")]
    edges = [PicEdge("a", "a", "next"), PicEdge("a", "b"), PicEdge("b", "a", dashed=True)]
    root = _parse(render_svg(nodes, edges))
    paths = _edge_paths(root)
    assert len(paths) == 3
    assert sum("back" in p.get("class", "") for p in paths) == 2


def test_labels_ids_and_title_are_escaped() -> None:
    label = """if a < b && c > "d" or 'e'"""
    nodes = [PicNode("x\"1'", label, "verify"), PicNode("y&", "<y>\n&amp;", "odd kind <>")]
    edges = [PicEdge("x\"1'", "y&", label="<&\"'>")]
    svg = render_svg(nodes, edges, title="T <&> \"'")
    assert "&lt;" in svg and "&amp;" in svg
    assert "<y>" not in svg and "< b" not in svg
    root = _parse(svg)
    texts = _texts(root)
    assert label in texts and "<y>" in texts and "&amp;" in texts and "<&\"'>" in texts
    assert root.findtext(f"{SVG}title") == "T <&> \"'"
    ids = [g.get("data-id") for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    assert ids == ["x\"1'", "y&"]


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_output_is_deterministic(name: str) -> None:
    nodes, edges = GRAPHS[name]
    first = render_svg(nodes, edges, title="t")
    again = render_svg(list(nodes), list(edges), title="t")
    assert first == again
    assert layout(nodes, edges) == layout(list(nodes), list(edges))


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_no_node_boxes_overlap(name: str) -> None:
    nodes, edges = GRAPHS[name]
    boxes = layout(nodes, edges)
    assert list(boxes) == [n.id for n in nodes]
    for (a, (ax, ay, aw, ah)), (b, (bx, by, bw, bh)) in itertools.combinations(boxes.items(), 2):
        apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
        assert apart, f"{a} and {b} overlap"


def test_boxes_fit_their_labels_and_match_the_drawing() -> None:
    nodes, edges = GRAPHS["busy"]
    boxes = layout(nodes, edges)
    for node in nodes:
        _, _, w, h = boxes[node.id]
        lines = node.label.split("\n")
        assert w >= 7 * max(len(line) for line in lines) and h >= 12 * len(lines)
    root = _parse(render_svg(nodes, edges))
    for g in root.iter(f"{SVG}g"):
        rect = g.find(f"{SVG}rect")
        if g.get("class") != "node" or rect is None:
            continue
        drawn = tuple(float(rect.get(k, "nan")) for k in ("x", "y", "width", "height"))
        assert drawn == pytest.approx(boxes[g.get("data-id", "")], abs=0.06)


def test_kinds_pick_shapes_and_colours() -> None:
    nodes = [PicNode(k, k, k) for k in ("start", "dispatch", "reason", "generate", "end")]
    edges = [PicEdge(a.id, b.id) for a, b in itertools.pairwise(nodes)]
    root = _parse(render_svg(nodes, edges))
    groups = {g.get("data-id"): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert groups["dispatch"].find(f"{SVG}polygon") is not None
    pill = groups["start"].find(f"{SVG}rect")
    assert pill is not None and float(pill.get("rx", 0)) == float(pill.get("height", 0)) / 2
    colours = {k: g[1].get("fill") for k, g in groups.items()}  # g[0] is the tooltip <title>
    assert len({colours["reason"], colours["generate"], colours["dispatch"]}) == 3
    assert colours["start"] == colours["end"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown node"):
        render_svg([PicNode("a", "a")], [PicEdge("a", "b")])
    with pytest.raises(ValueError, match="duplicate"):
        layout([PicNode("a", "a"), PicNode("a", "again")], [])


def test_empty_graph_still_renders() -> None:
    root = _parse(render_svg([], [], title="nothing"))
    assert root.findtext(f"{SVG}title") == "nothing"


# --- one topology, two pictures -----------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
MODELS = """
models: {planner: {model: plan-model}, thinker: {model: think-model}, writer: {model: write-model}}
roles: {plan: planner, reason: thinker, generate: writer, synthesize: writer}
"""
WHEN = 'not check.passed and lower(check.feedback) != "ok"'
LOOP_AND_MAP = f"""name: loop & map{MODELS}
graph:
  state: {{items: [a, b]}}
  nodes:
    draft: {{type: generate, prompt: draft.md}}
    check: {{type: verify, target: draft, criteria: fine, profile: thinker}}
    revise: {{type: reason, prompt: draft.md, output: draft}}
    each: {{type: map, over: items, node: one}}
    one: {{type: generate, prompt: draft.md}}
    tidy: {{type: python, function: join}}
  edges:
    - {{from: draft, to: check}}
    - {{from: check, to: revise, when: '{WHEN}'}}
    - {{from: revise, to: check}}
    - {{from: check, to: each}}
    - {{from: each, to: tidy}}
"""
_NODE_LINE = re.compile(r'  (n_\w+)(\(\[|\{\{|\[)"([^"]*)"(\]\)|\}\}|\])')
_EDGE_LINE = re.compile(r'  (n_\w+) (-->|-\.->)(?:\|"([^"]*)"\|)? (n_\w+)')
_SHAPES = {"([": "stadium", "{{": "hexagon", "[": "rectangle"}
NodeRow = tuple[str, str, str]  # id, kind (or Mermaid shape), label
EdgeRow = tuple[str, str, str, bool]  # source, target, label, dashed


def _spec(tmp_path: Path, text: str) -> WorkflowSpec:
    (tmp_path / "draft.md").write_text("Draft: {{ task }}")
    return parse_workflow(text, file=str(tmp_path / "wf.yaml"))


def _unmermaid(text: str) -> str:
    text = re.sub(r"#(\d+);", r"&#\1;", re.sub(r"#([a-z]+);", r"&\1;", text))
    return html.unescape(text.replace("<br/>", "\n"))  # no raw & is left: it was #38;


def _read_mermaid(text: str, top: Topology) -> tuple[list[NodeRow], list[EdgeRow]]:
    """The nodes and edges a Mermaid flowchart declares, named by topology id (nodes in order)."""
    lines = text.split("\n")
    assert lines[:2] == [f"flowchart {top.direction}", f"  accTitle: {top.title}"]
    found = [_NODE_LINE.fullmatch(line) for line in lines[2 : 2 + len(top.nodes)]]
    assert all(found), lines
    nodes = [(m[1], _SHAPES[m[2]], _unmermaid(m[3])) for m in found if m]
    ids = {mid: node.id for (mid, _, _), node in zip(nodes, top.nodes, strict=True)}
    assert len(ids) == len(nodes)  # distinct Mermaid ids
    edges = [_EDGE_LINE.fullmatch(line) for line in lines[2 + len(nodes) :]]
    assert all(edges), lines
    rows = [(ids[m[1]], ids[m[4]], _unmermaid(m[3] or ""), m[2] == "-.->") for m in edges if m]
    return [(ids[i], shape, label) for i, shape, label in nodes], rows


def _read_svg(text: str) -> tuple[str, list[NodeRow], list[EdgeRow]]:
    """The title, nodes (in drawing order) and edges (by data-edge) an SVG picture shows."""
    root = _parse(text)
    groups = [(g.get("class"), g) for g in root.iter(f"{SVG}g")]
    boxes = [g for c, g in groups if c == "node"]
    nodes = [(g.get("data-id", ""), g.get("data-kind", ""), "\n".join(_texts(g))) for g in boxes]
    labels = {g.get("data-edge"): "".join(g.itertext()) for c, g in groups if c == "label"}
    paths = sorted(_edge_paths(root), key=lambda p: int(p.get("data-edge", "-1")))
    assert [int(p.get("data-edge", "-1")) for p in paths] == list(range(len(paths)))
    edges = [
        (p.get("data-source", ""), p.get("data-target", ""), labels.pop(p.get("data-edge"), ""),
         "dashed" in p.get("class", "").split())
        for p in paths
    ]  # fmt: skip
    assert not labels  # every label belongs to a drawn edge
    return root.findtext(f"{SVG}title") or "", nodes, edges


def _assert_both_show(top: Topology, mermaid_text: str, svg_text: str) -> None:
    """Mermaid and SVG each show exactly the topology's nodes and edges, nothing else."""
    shape = {"start": "stadium", "end": "stadium", "dispatch": "hexagon"}
    want_edges = [(e.source, e.target, e.label, e.dashed) for e in top.edges]
    m_nodes, m_edges = _read_mermaid(mermaid_text, top)
    assert m_nodes == [(n.id, shape.get(n.kind, "rectangle"), n.label) for n in top.nodes]
    assert m_edges == want_edges
    want_nodes = [(n.id, n.kind, n.label) for n in top.nodes]
    assert _read_svg(svg_text) == (top.title, want_nodes, want_edges)


def _assert_drawn_from_topology(spec: WorkflowSpec) -> Topology:
    top = topology(spec)
    assert top == topology(spec)  # a pure function of the spec
    _assert_both_show(top, mermaid(spec), svg(spec))
    return top


def test_default_pipeline_topology_feeds_both_pictures(tmp_path: Path) -> None:
    limits = "limits: {concurrency: 3, max_subproblems: 5}\n"
    top = _assert_drawn_from_topology(_spec(tmp_path, f"name: pipe{MODELS}{limits}"))
    assert (top.title, top.direction) == ("pipe", "LR")
    steps = ["plan", "dispatch", "reason", "generate", "synthesize"]
    kinds = [("START", "start"), *((s, s) for s in steps), ("END", "end")]
    assert [(n.id, n.kind) for n in top.nodes] == kinds
    labels = {n.id: n.label for n in top.nodes}
    assert labels["plan"] == "plan\nplanner: plan-model"
    assert labels["reason"] == "reason\nthinker: think-model"
    assert labels["synthesize"] == "synthesize\nwriter: write-model"
    assert labels["dispatch"] == "dispatch\n≤ 3 at once\n≤ 5 subproblems"
    labelled = [(e.source, e.target, e.label) for e in top.edges if e.label]
    assert labelled == [("dispatch", s, f"kind: {s}") for s in ("reason", "generate")]
    assert not any(e.dashed for e in top.edges)


def test_custom_graph_with_a_loop_and_a_map_feeds_both_pictures(tmp_path: Path) -> None:
    spec = _spec(tmp_path, LOOP_AND_MAP)
    top = _assert_drawn_from_topology(spec)
    assert (top.title, top.direction) == ("loop & map", "TD")
    labels = {n.id: n.label for n in top.nodes}
    assert labels["draft"] == "draft\ngenerate · writer: write-model"  # the role's profile
    assert labels["check"] == "check\nverify · thinker: think-model"  # its own profile
    assert (labels["each"], labels["tidy"]) == ("each\nmap", "tidy\npython · join")
    assert (labels["START"], labels["END"]) == ("task", "answer")
    assert [(e.source, e.target, e.label, e.dashed) for e in top.edges] == [
        ("START", "draft", "", False),
        ("each", "one", "each item of items", True),
        ("draft", "check", "", False),
        ("check", "revise", WHEN, True),
        ("revise", "check", "", False),
        ("check", "each", "", False),
        ("each", "tidy", "", False),
        ("tidy", "END", "", False),  # no edge out: the run ends there
    ]
    assert '-.->|"not check.passed and lower(check.feedback) != #quot;ok#quot;"|' in mermaid(spec)
    back = [p for p in _edge_paths(_parse(svg(spec))) if "back" in p.get("class", "").split()]
    assert [(p.get("data-source"), p.get("data-target")) for p in back] == [("revise", "check")]


@pytest.mark.parametrize("path", sorted((ROOT / "graphs").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_workflows_are_drawn_from_their_topology(path: Path) -> None:
    _assert_drawn_from_topology(load_workflow(path))


def test_node_names_that_clash_with_start_end_or_mermaid_ids(tmp_path: Path) -> None:
    nodes = "".join(f"    {n}: {{type: python, function: join}}\n" for n in ("START", "a-b", "a_b"))
    edges = "  edges:\n    - {from: START, to: a-b}\n    - {from: a-b, to: a_b}\n"
    text = f"name: clash{MODELS}graph:\n  nodes:\n{nodes}{edges}"
    top = _assert_drawn_from_topology(_spec(tmp_path, text))
    assert [n.id for n in top.nodes] == ["START_", "START", "a-b", "a_b", "END"]
    assert top.edges[0] == PicEdge("START_", "START")


def test_mermaid_escapes_labels_and_keeps_every_character() -> None:
    tricky = 'say "hi" & <b> #1 | `x`'
    nodes = (PicNode("a-b", f"{tricky}\nline 2", "start"), PicNode("a_b", "B", "dispatch"))
    edges = (PicEdge("a-b", "a_b", 'x < 3 and y == "q"'), PicEdge("a_b", "a_b", tricky, True))
    top = Topology('T "x" <&>', "TD", nodes, edges)
    text = render_mermaid(top)
    body = text.split("\n", 2)[2].replace("<br/>", "")
    assert not re.search(r'"[^"\n]*[<>&|`][^"\n]*"', body)  # each as an entity code
    assert "#quot;hi#quot;" in body
    _assert_both_show(top, text, render_svg(nodes, edges, title=top.title))
