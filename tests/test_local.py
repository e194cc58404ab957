"""One end-to-end run on the real embedded model (llama.cpp + SmolLM2-135M): seconds, no key."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from orchestrator import Workflow
from orchestrator.models import local

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.local, pytest.mark.slow]


def test_quickstart_on_the_embedded_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # must not be used
    workflow = Workflow.from_yaml(REPO / "graphs" / "quickstart.yaml", home=tmp_path)
    result = workflow.run("Name two primary colours, in one sentence.")
    assert result.status == "completed", result.error
    assert result.output.strip()
    assert "<think>" not in result.output and "</think>" not in result.output
    assert all(s.status == "done" for s in result.subproblems) and result.subproblems
    calls = sum(p.calls for p in result.usage.by_profile.values())
    assert calls >= 3  # plan, at least one subproblem, synthesize
    profiles = result.usage.by_profile.values()
    assert all(p.model == "smollm2" and p.input_tokens > 0 for p in profiles)
    assert result.usage.cost_usd == 0.0  # no price given: free
    # One server for every local profile in the process, on loopback.
    url = local.ensure_started()
    assert urlparse(url).hostname == "127.0.0.1"
    assert local.ensure_started() == url


def test_an_evaluation_runs_offline_on_the_embedded_model(tmp_path: Path) -> None:
    """`orchestrator eval` end to end on SmolLM2: the table, summary.json and the picture."""
    from tests.clirun import run_cli

    out = tmp_path / "out"
    done = run_cli(
        "eval", str(REPO / "graphs" / "local-math.yaml"), "--dataset", "smoke", "--limit", "3",
        "--policies", "agreed", "--scorer", "numeric", "--out", str(out),
        ORCHESTRATOR_HOME=str(tmp_path / "home"), OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        timeout=280,  # a loaded 2-core machine runs a 135M model slowly; this is a hang guard
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "all-generate" in done.stdout and "agreed" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["items"] == 3 and set(summary["policies"]) == {
        "all-generate", "all-reason", "agreed",
    }  # fmt: skip
    assert (out / "frontier.svg").read_text().startswith("<svg")
    assert "frontier.svg" in (out / "report.md").read_text()


def test_the_embedded_server_serves_a_routers_embeddings() -> None:
    """A router's `embeddings:PROFILE` features work offline: the same server embeds."""
    import asyncio

    from orchestrator.eval.vectors import embed_inputs
    from orchestrator.specload import load_workflow

    spec = load_workflow(REPO / "graphs" / "local-math.yaml")
    profile = next(name for name, p in spec.models.items() if p.provider == "local")
    texts = {"a": "What is 2 + 2?", "b": "A train leaves at noon at 60 km/h.", "c": "2 + 2?"}
    got = asyncio.run(embed_inputs(spec, profile, texts))
    dims = {len(v) for v in got.vectors.values()}
    assert dims == {576} and got.input_tokens > 0
    price = spec.models[profile].price.input  # the workflow prices its local profile
    assert got.cost_usd == pytest.approx(got.input_tokens * price / 1e6)

    def cosine(x: str, y: str) -> float:
        a, b = got.vectors[x], got.vectors[y]
        return sum(p * q for p, q in zip(a, b, strict=True)) / (
            sum(p * p for p in a) ** 0.5 * sum(q * q for q in b) ** 0.5
        )

    assert cosine("a", "c") > cosine("a", "b")  # the vectors carry meaning
