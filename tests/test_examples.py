"""The shipped example workflows in graphs/, run end to end against the fake OpenAI server.

Every workflow file is validated and drawn (Mermaid and SVG). Every workflow that talks to an
OpenAI-compatible endpoint (all but the ones on the embedded `provider: local` model) runs
through the SDK with a responder that answers schema'd nodes with valid JSON; then each
example's routing is checked on its own: which node ran on which model, what each prompt was
given, and what came out. The `fake_openai` fixture fails any test whose requests violate
OpenAI's published request schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from orchestrator import Workflow, load_workflow, parse_workflow
from orchestrator.cli import main
from orchestrator.graphspec import resolve_prompt
from tests.fakeserver import FakeOpenAI, Reply

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = sorted((ROOT / "graphs").glob("*.yaml"))
THINKER, WRITER = "o4-mini", "gpt-4o-mini"  # the examples' default models
HEADER = "# yaml-language-server: $schema=../schema/workflow.schema.json"


def on_local_model(path: Path) -> bool:
    """Workflows on the embedded model (the quickstart) need no endpoint: not run here."""
    return any(p.provider == "local" for p in load_workflow(path).models.values())


REMOTE = [p for p in GRAPHS if not on_local_model(p)]


def graph_file(name: str) -> Path:
    return ROOT / "graphs" / f"{name}.yaml"


def schema_name(body: dict[str, Any]) -> str | None:
    fmt = body.get("response_format") or {}
    return (fmt.get("json_schema") or {}).get("name")


def text_of(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body.get("messages") or [])


def sample(schema: dict[str, Any]) -> Any:
    """A value valid for a (strict-mode) JSON schema: enums take their first choice."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {key: sample(sub) for key, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample(schema.get("items", {"type": "string"})) for _ in range(2)]
    return {"boolean": True, "integer": 1, "number": 1.5}.get(str(kind), f"sample {kind}")


def verdict(passed: bool, feedback: str) -> str:
    return json.dumps({"passed": passed, "feedback": feedback})


class Script:
    """Answers each request as the graph node that sent it, and records the node and model.

    A request is matched to its node by its instruction (the rendered system message, which
    for these templates has no slots); structured requests also carry the node's name. Each
    node answers with its queued replies in order, then with `<NODE #k>`.
    """

    def __init__(self, server: FakeOpenAI, path: Path) -> None:
        spec = load_workflow(path)
        assert spec.graph is not None
        self.by_instruction = {
            resolve_prompt(node.prompt or "verify", None).instruction: name
            for name, node in spec.graph.nodes.items()
            if node.type in ("reason", "generate", "verify")
        }
        self.replies: dict[str, list[str]] = {}
        self.calls: list[tuple[str, str, str]] = []  # (node, model, user message)
        self._lock = threading.Lock()
        server.responder = self.respond

    def respond(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        node = self.by_instruction.get(messages[0]["content"], f"? {schema_name(body)}")
        with self._lock:
            self.calls.append((node, body["model"], messages[-1]["content"]))
            queued = self.replies.get(node) or []
            count = sum(c[0] == node for c in self.calls)
            content = queued.pop(0) if queued else f"<{node.upper()} #{count}>"
        return Reply(content=content)

    @property
    def route(self) -> list[tuple[str, str]]:
        return [(node, model) for node, model, _ in self.calls]

    def prompt(self, node: str, index: int = 0) -> str:
        return [user for name, _, user in self.calls if name == node][index]


@pytest.fixture
def server(fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-examples-000000")
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path / "home"))
    for var in ("THINK_MODEL", "WRITE_MODEL"):
        monkeypatch.delenv(var, raising=False)
    # The server checks reasoning-model rules for o4-mini and sends a trace that must stay out
    # of every prompt and answer.
    fake_openai.configure_model(THINKER, reasoning=True, trace_style="reasoning_content")
    fake_openai.configure_model(WRITER)
    return fake_openai


def no_trace_leaked(server: FakeOpenAI, output: str) -> None:
    assert "TRACE(" not in output
    assert not any("TRACE(" in text_of(r.body) for r in server.requests)


# -- every file: valid, drawable, shipped prompts -------------------------------------------


def test_the_examples_are_all_here() -> None:
    names = {p.stem for p in GRAPHS}
    assert {
        "research-brief", "code-change", "math-verify", "support-triage", "data-report",
        "math-cascade", "math-vote", "math-router", "local-math",
    } <= names  # fmt: skip
    assert "quickstart" in names and graph_file("quickstart") not in REMOTE


@pytest.mark.parametrize("path", GRAPHS, ids=[p.stem for p in GRAPHS])
def test_validates_and_draws(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert path.read_text(encoding="utf-8").splitlines()[0] == HEADER
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
    svg = tmp_path / f"{path.stem}.svg"
    assert main(["graph", str(path), "--out", str(svg)]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.startswith("flowchart")
    spec = load_workflow(path)
    for name in spec.graph.nodes if spec.graph else ():
        assert f"{name}<br/>" in mermaid
    assert ElementTree.parse(svg).getroot().tag.endswith("svg")
    # Prompts are shipped templates, by name, so a pip-installed workflow finds them too.
    for name, node in (spec.graph.nodes if spec.graph else {}).items():
        if node.prompt is not None:
            assert "/" not in node.prompt and not node.prompt.endswith(".md"), name
            assert (ROOT / "prompts" / f"{node.prompt}.md").is_file(), node.prompt


@pytest.mark.parametrize("path", REMOTE, ids=[p.stem for p in REMOTE])
def test_runs_on_any_endpoint_without_edits(path: Path) -> None:
    """Two profiles, no endpoint or key in the file, models chosen by THINK_MODEL/WRITE_MODEL."""
    text = path.read_text(encoding="utf-8")
    env = {"THINK_MODEL": "deepseek-reasoner", "WRITE_MODEL": "qwen3-8b"}
    spec = parse_workflow(text, environ=env)
    assert set(spec.models) == {"thinker", "writer"}
    thinker, writer = spec.models["thinker"], spec.models["writer"]
    assert thinker.reasoning and not writer.reasoning
    assert (thinker.model, writer.model) == ("deepseek-reasoner", "qwen3-8b")
    assert all(p.base_url is None and p.api_key is None for p in spec.models.values())
    assert thinker.price.output > 0 and writer.price.output > 0
    defaults = parse_workflow(text, environ={})
    assert (defaults.models["thinker"].model, defaults.models["writer"].model) == (THINKER, WRITER)


# -- every remote file runs end to end --------------------------------------------------------


def with_router(path: Path, tmp_path: Path) -> Path:
    """A copy of a router workflow beside a router trained on toy outcomes (as a user trains
    one with `orchestrator eval --train-router` before using it)."""
    from orchestrator.policies.router import save_router, train_router

    spec = load_workflow(path)
    (cheap, c), (strong, r) = spec.profile_for("generate"), spec.profile_for("reason")
    texts = [f"problem {i} with {'many hard steps ' * (i % 3)}" for i in range(20)]
    trained = train_router(
        texts, [i % 3 == 0 for i in range(20)],
        cheap={"profile": cheap, "model": c.model}, strong={"profile": strong, "model": r.model},
    )  # fmt: skip
    save_router(trained, tmp_path / "router.json")
    copy = tmp_path / path.name
    copy.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return copy


@pytest.mark.parametrize("path", REMOTE, ids=[p.stem for p in REMOTE])
async def test_every_example_runs_end_to_end(
    path: Path, server: FakeOpenAI, tmp_path: Path
) -> None:
    if "type: router" in path.read_text(encoding="utf-8"):
        path = with_router(path, tmp_path)
    spec = load_workflow(path)
    server.set_plan(
        {
            "subproblems": [
                {"id": "s1", "kind": "reason", "task": "weigh it", "depends_on": []},
                {"id": "s2", "kind": "generate", "task": "list it", "depends_on": []},
            ]
        }
    )

    def respond(body: dict[str, Any]) -> Reply | None:
        fmt = (body.get("response_format") or {}).get("json_schema")
        if fmt is None or fmt["name"] == "plan":
            return None  # plain text, or the scripted plan
        return Reply(content=json.dumps(sample(fmt["schema"])))

    server.responder = respond
    result = await Workflow.from_yaml(path).arun("Example task: make it better.")
    assert result.status == "completed", result.error
    assert result.output.strip()
    assert {r.model for r in server.requests} <= {THINKER, WRITER}
    assert all(r.outcome == "ok" for r in server.requests)
    ran = [s for s in result.subproblems if s.status != "pending"]
    assert ran and all(s.status == "done" for s in ran)
    for sub in ran:
        if spec.graph is not None and sub.kind in ("reason", "generate", "verify"):
            expected = "thinker" if sub.kind == "reason" else "writer"
            assert (sub.profile, sub.model) == (expected, spec.models[expected].model), sub.id
    assert set(result.usage.by_profile) <= {"thinker", "writer"}
    assert result.usage.cost_usd > 0
    no_trace_leaked(server, result.output)


# -- research-brief: the default pipeline ------------------------------------------------------


async def test_research_brief_routes_by_kind(server: FakeOpenAI) -> None:
    server.set_plan(
        {
            "subproblems": [
                {"id": "s1", "kind": "reason", "task": "ALPHA: weigh spot", "depends_on": []},
                {"id": "s2", "kind": "generate", "task": "BETA: list options", "depends_on": []},
            ]
        }
    )
    result = await Workflow.from_yaml(graph_file("research-brief")).arun("Move to spot?")
    assert result.status == "completed", result.error
    requests = server.requests
    assert requests[0].is_plan and requests[0].model == THINKER
    solved = {
        key: r.model for r in requests[1:-1] for key in ("ALPHA", "BETA") if key in text_of(r.body)
    }
    assert len(requests) == 4 and solved == {"ALPHA": THINKER, "BETA": WRITER}
    synthesis = requests[-1]
    assert synthesis.model == WRITER and synthesis.body.get("stream")
    assert "[o4-mini] answer" in text_of(synthesis.body)  # it sees the reasoning result
    assert {s.id: s.profile for s in result.subproblems} == {"s1": "thinker", "s2": "writer"}
    no_trace_leaked(server, result.output)


# -- code-change: architect designs, editor edits, reviewer checks, one revision -----------------

CODE_TASK = """Add a `timeout` parameter (seconds, default 10) to fetch() and pass it to the client.

# http_util.py
def fetch(client, url):
    return client.get(url)
"""


async def test_code_change_architect_then_editor(server: FakeOpenAI) -> None:
    script = Script(server, graph_file("code-change"))
    script.replies = {
        "architect": ["DESIGN: add timeout: float = 10 to fetch; pass timeout=timeout"],
        "editor": ["--- a/http_util.py\n+++ b/http_util.py\n@@ EDIT-1"],
        "review": [verdict(True, "implements the design")],
    }
    result = await Workflow.from_yaml(graph_file("code-change")).arun(CODE_TASK)
    assert result.status == "completed", result.error
    assert script.route == [("architect", THINKER), ("editor", WRITER), ("review", WRITER)]
    assert "def fetch(client, url)" in script.prompt("architect")
    editor = script.prompt("editor")
    assert "def fetch(client, url)" in editor and "DESIGN: add timeout" in editor
    assert "DESIGN: add timeout" in script.prompt("review") and "EDIT-1" in script.prompt("review")
    assert result.output == "--- a/http_util.py\n+++ b/http_util.py\n@@ EDIT-1"
    no_trace_leaked(server, result.output)


async def test_code_change_revises_once_with_the_feedback(server: FakeOpenAI) -> None:
    script = Script(server, graph_file("code-change"))
    script.replies = {
        "editor": ["EDIT-1"],
        "review": [
            verdict(False, "the call site still omits timeout"),
            verdict(False, "still wrong"),
        ],
        "revise": ["EDIT-2"],
    }
    result = await Workflow.from_yaml(graph_file("code-change")).arun(CODE_TASK)
    assert result.status == "completed", result.error
    # One revision at most (revise: max_iterations 1), and the revision is reviewed too.
    assert [node for node, _ in script.route] == [
        "architect",
        "editor",
        "review",
        "revise",
        "review",
    ]
    assert dict(script.route)["revise"] == WRITER
    revise = script.prompt("revise")
    assert "EDIT-1" in revise and "the call site still omits timeout" in revise
    assert "<ARCHITECT #1>" in revise and "def fetch(client, url)" in revise
    assert "EDIT-2" in script.prompt("review", 1)
    assert result.output == "EDIT-2"
    assert result.usage.by_profile["thinker"].calls == 1


# -- math-verify: the cheap model answers, the thinker only redoes what failed --------------------


async def test_math_passing_check_never_calls_the_thinker(server: FakeOpenAI) -> None:
    script = Script(server, graph_file("math-verify"))
    script.replies = {"answer": ["17 * 23 = 391\nAnswer: 391"], "check": [verdict(True, "ok")]}
    result = await Workflow.from_yaml(graph_file("math-verify")).arun("What is 17 * 23?")
    assert result.status == "completed", result.error
    assert script.route == [("answer", WRITER), ("check", WRITER)]
    assert "What is 17 * 23?" in script.prompt("check") and "391" in script.prompt("check")
    assert result.output == "17 * 23 = 391\nAnswer: 391"
    assert "thinker" not in result.usage.by_profile


async def test_math_failed_check_escalates_to_the_thinker(server: FakeOpenAI) -> None:
    script = Script(server, graph_file("math-verify"))
    script.replies = {
        "answer": ["17 * 23 = 381\nAnswer: 381"],
        "check": [verdict(False, "step 1: 17 * 23 is 391, not 381"), verdict(True, "ok")],
        "escalate": ["17 * 23 = 391\nAnswer: 391"],
    }
    result = await Workflow.from_yaml(graph_file("math-verify")).arun("What is 17 * 23?")
    assert result.status == "completed", result.error
    assert script.route == [
        ("answer", WRITER),
        ("check", WRITER),
        ("escalate", THINKER),
        ("check", WRITER),
    ]
    escalate = script.prompt("escalate")
    assert "Answer: 381" in escalate and "17 * 23 is 391, not 381" in escalate
    assert "Answer: 391" in script.prompt("check", 1)  # the escalated answer is checked
    assert result.output == "17 * 23 = 391\nAnswer: 391"
    assert result.usage.by_profile["thinker"].calls == 1
    no_trace_leaked(server, result.output)


async def test_math_escalation_is_bounded(server: FakeOpenAI) -> None:
    script = Script(server, graph_file("math-verify"))
    script.replies = {"check": [verdict(False, f"wrong #{i}") for i in range(1, 9)]}
    result = await Workflow.from_yaml(graph_file("math-verify")).arun("Hard problem")
    assert result.status == "completed", result.error
    # Two escalations at most, and every answer (the first and both retries) is checked.
    assert [node for node, _ in script.route] == [
        "answer",
        "check",
        "escalate",
        "check",
        "escalate",
        "check",
    ]
    assert "wrong #2" in script.prompt("escalate", 1)
    assert result.output == "<ESCALATE #2>"


# -- support-triage: classify cheaply, route bugs and urgent tickets to the thinker -------------

TICKETS = [
    ("bug", "normal", "Export to CSV crashes with error E502 since yesterday.", "diagnose"),
    ("how-to", "low", "How do I add a teammate to my workspace?", "reply"),
    ("billing", "high", "You charged my card three times this morning!", "diagnose"),
    ("account", "normal", "Please change the email on my account.", "reply"),
]


@pytest.mark.parametrize(
    ("category", "urgency", "ticket", "expected"), TICKETS, ids=[t[0] for t in TICKETS]
)
async def test_support_triage_routes(
    server: FakeOpenAI, category: str, urgency: str, ticket: str, expected: str
) -> None:
    script = Script(server, graph_file("support-triage"))
    summary = f"SUMMARY of the {category} ticket"
    script.replies = {
        "classify": [json.dumps({"category": category, "urgency": urgency, "summary": summary})],
        "diagnose": ["ENGINEERING NOTE"],
        "reply": ["CUSTOMER REPLY"],
    }
    result = await Workflow.from_yaml(graph_file("support-triage")).arun(ticket)
    assert result.status == "completed", result.error
    model = THINKER if expected == "diagnose" else WRITER
    assert script.route == [("classify", WRITER), (expected, model)]
    assert (THINKER in {r.model for r in server.requests}) == (expected == "diagnose")
    classify = server.requests[0].body["response_format"]["json_schema"]
    assert classify["name"] == "classify" and classify["strict"] is True
    assert classify["schema"]["properties"]["category"]["enum"] == [
        "billing",
        "bug",
        "how-to",
        "account",
        "other",
    ]
    assert ticket in script.prompt(expected) and summary in script.prompt(expected)
    assert result.output == ("ENGINEERING NOTE" if expected == "diagnose" else "CUSTOMER REPLY")
    statuses = {s.id: s.status for s in result.subproblems}
    assert statuses == {
        "classify": "done",
        "diagnose": "done" if expected == "diagnose" else "pending",
        "reply": "done" if expected == "reply" else "pending",
    }


def test_support_triage_cli_json(server: FakeOpenAI, tmp_path: Path) -> None:
    script = Script(server, graph_file("support-triage"))
    script.replies = {
        "classify": [json.dumps({"category": "bug", "urgency": "high", "summary": "E502"})],
        "diagnose": ["ENGINEERING NOTE: E502 on export"],
    }
    env = {**os.environ, "ORCHESTRATOR_PLAIN": "1"}  # the fixture set the endpoint and home
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "run",
            str(graph_file("support-triage")),
            "--input",
            "Export crashes with E502 for our whole team.",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"run_id", "status", "output", "subproblems", "usage", "error"}
    assert data["status"] == "completed" and data["error"] is None
    assert data["output"] == "ENGINEERING NOTE: E502 on export"
    assert [(s["id"], s["status"]) for s in data["subproblems"]] == [
        ("classify", "done"),
        ("diagnose", "done"),
        ("reply", "pending"),
    ]
    for sub in data["subproblems"]:
        assert set(sub) == {"id", "kind", "profile", "model", "status", "output", "route"}
    assert set(data["usage"]) == {"cost_usd", "by_profile", "counterfactual"}
    assert {name: p["model"] for name, p in data["usage"]["by_profile"].items()} == {
        "writer": WRITER,
        "thinker": THINKER,
    }
    assert "sk-test-examples" not in done.stdout + done.stderr


# -- data-report: the thinker analyses, cheap models outline, write sections in parallel --------

DATA = """Sales by month (CSV):
month,region,units,revenue
2024-01,north,120,2400
2024-01,south,80,1600
2024-02,north,130,2600
2024-02,south,20,400
"""
OUTLINE = {
    "title": "Q1 sales",
    "sections": [
        {"heading": "Summary", "brief": "total revenue 7000"},
        {"heading": "Trends", "brief": "north +8.33%"},
        {"heading": "Anomalies", "brief": "south fell 75% in February"},
    ],
}


async def test_data_report_sections_in_parallel(server: FakeOpenAI) -> None:
    server.configure_model(WRITER, latency=0.3)
    script = Script(server, graph_file("data-report"))
    script.replies = {
        "analyse": ["FINDINGS: total revenue 7000; south revenue 1600 -> 400 (-75.00%)"],
        "outline": [json.dumps(OUTLINE)],
    }
    result = await Workflow.from_yaml(graph_file("data-report")).arun(DATA)
    assert result.status == "completed", result.error
    nodes = [node for node, _ in script.route]
    assert nodes == ["analyse", "outline", "section", "section", "section", "report"]
    assert dict(script.route) == {
        "analyse": THINKER,
        "outline": WRITER,
        "section": WRITER,
        "report": WRITER,
    }
    assert "2024-02,south,20,400" in script.prompt("analyse")
    assert "FINDINGS: total revenue 7000" in script.prompt("outline")
    sections = [r for r in server.requests if "Brief:" in text_of(r.body)]
    for part in OUTLINE["sections"]:  # one request per section, given its heading and brief
        given = f"{part['heading']}\n\nBrief:\n{part['brief']}"
        asked = [r for r in sections if given in text_of(r.body)]
        assert len(asked) == 1, part
    assert all("FINDINGS: total revenue 7000" in text_of(r.body) for r in sections)
    assert max(r.started for r in sections) < min(r.ended for r in sections)  # in parallel
    report = script.prompt("report")
    assert "Title: Q1 sales" in report
    assert all(f"<SECTION #{i}>" in report for i in (1, 2, 3))
    assert result.output == "<REPORT #1>"
    assert result.usage.by_profile["thinker"].calls == 1
    no_trace_leaked(server, result.output)
