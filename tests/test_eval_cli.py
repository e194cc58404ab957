"""`orchestrator eval` as a user runs it: the real CLI in a subprocess, against the scripted
server in this process, with scripted truth (tests/test_eval.py's 20 items: all-generate gets
13 right, all-reason 17, the judged cascade `checked` 18).

One live evaluation is shared by the tests that only read or replay it (each CLI call costs
~1.5 s of imports); replays point at the same server, so a request they made would be seen.
Those tests are marked slow: whichever runs first pays for the evaluation (~3 s).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from orchestrator.eval.dataset import load_dataset
from orchestrator.eval.metrics import SampleRecord
from orchestrator.eval.replay import SWEEP_SHARES, read_inputs
from orchestrator.policies.router import load_router
from tests.clirun import run_cli
from tests.conftest import TEST_KEY
from tests.fakeserver import FakeOpenAI, Reply
from tests.scripted import Truth
from tests.test_eval import STRONG, WEAK, setup

REPO = Path(__file__).resolve().parents[1]
POLICY_KEYS = {
    "accuracy", "ci95", "cost_usd", "cost_per_item_usd", "cost_vs_all_reason", "reason_share",
    "pgr", "latency_p50_s", "latency_p95_s", "pareto",
}  # fmt: skip
ACCURACY = {"all-generate": 0.65, "all-reason": 0.85, "checked": 0.9}


@dataclass
class Live:
    """A finished `orchestrator eval` of the 20 scripted items under `checked`."""

    base: Path
    out: Path
    server: FakeOpenAI
    env: dict[str, str]
    run: subprocess.CompletedProcess[str]
    summary: str  # summary.json as the live run wrote it

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, **self.env)

    def replay(self, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
        """`eval --replay OUT ARGS`, and how many requests the server saw meanwhile."""
        before = len(self.server.requests)
        done = self.cli("eval", "--replay", str(self.out), *args)
        return done, len(self.server.requests) - before


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("eval-cli")
    with FakeOpenAI() as server:
        setup(base, server)  # sets server.responder = truth.responder()
        env = {
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": TEST_KEY,
            "ORCHESTRATOR_HOME": str(base / "home"),
        }
        out = base / "out"
        run = run_cli(
            "eval", str(base / "wf.yaml"), "--dataset", str(base / "data.jsonl"),
            "--policies", "checked", "--scorer", "numeric", "--out", str(out), **env,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        yield Live(base, out, server, env, run, (out / "summary.json").read_text())
        assert server.schema_errors == [], "requests violated the OpenAI schema"


@pytest.mark.slow
def test_eval_prints_the_table_and_writes_the_documented_summary(live: Live) -> None:
    for name, accuracy in ACCURACY.items():
        assert name in live.run.stdout and f"{accuracy:.1%}" in live.run.stdout
    summary = json.loads(live.summary)
    assert set(summary) == {"workflow", "dataset", "items", "policies", "extra"}
    assert (summary["workflow"], summary["items"]) == ("qa", 20)
    assert summary["dataset"] == str(live.base / "data.jsonl")
    assert list(summary["policies"]) == ["all-generate", "all-reason", "checked"]
    for name, policy in summary["policies"].items():
        assert set(policy) == POLICY_KEYS
        assert policy["accuracy"] == pytest.approx(ACCURACY[name])
        low, high = policy["ci95"]
        assert low <= policy["accuracy"] <= high
    # the cascade escalated 7 of 20 items, so it costs more than all-generate, less than all-reason
    costs = [p["cost_usd"] for p in summary["policies"].values()]
    assert costs[0] < costs[2] < costs[1]
    assert summary["policies"]["checked"]["pgr"] == pytest.approx((0.9 - 0.65) / (0.85 - 0.65))


@pytest.mark.slow
def test_eval_writes_samples_items_picture_report_and_meta(live: Live) -> None:
    lines = (live.out / "samples.jsonl").read_text().splitlines()
    records = [SampleRecord.from_json(line) for line in lines]
    items = {f"q{i:02d}" for i in range(20)}
    pairs = {(r.policy, r.item_id) for r in records}
    assert len(records) == 60 and pairs == {(p, i) for p in ACCURACY for i in items}
    inputs = read_inputs(live.out)
    assert inputs == {i.id: i.input for i in load_dataset(live.base / "data.jsonl")}
    root = ElementTree.fromstring((live.out / "frontier.svg").read_text())
    assert root.tag.endswith("svg")
    assert "![frontier](frontier.svg)" in (live.out / "report.md").read_text()
    meta = json.loads((live.out / "eval.json").read_text())
    assert meta["policies"] == ["checked"]
    assert meta["cheap"] == {"profile": "writer", "model": WEAK}
    assert meta["strong"] == {"profile": "thinker", "model": STRONG}


@pytest.mark.slow
def test_replay_makes_no_request_and_prints_the_same_summary_json(live: Live) -> None:
    done, requests = live.replay("--json")
    assert done.returncode == 0, done.stderr
    assert requests == 0
    assert json.loads(done.stdout) == json.loads(live.summary)
    assert (live.out / "summary.json").read_text() == live.summary  # rewritten bit for bit


@pytest.mark.slow
def test_missed_gates_exit_1_naming_the_policy_and_each_gate(live: Live) -> None:
    done, _ = live.replay("--min-quality", "0.99", "--max-cost", "0")
    assert done.returncode == 1
    failed = done.stderr.splitlines()
    assert failed[0] == "gate failed: checked: accuracy 0.900 < 0.99"
    assert failed[1].startswith("gate failed: checked: cost $") and failed[1].endswith(" > $0.0")
    # the baselines are references, not candidates: all-generate's 65 % does not fail the gate
    assert len(failed) == 2


@pytest.mark.slow
def test_gates_that_are_met_exit_0(live: Live) -> None:
    summary = json.loads(live.summary)["policies"]["checked"]
    # exactly at the bar passes: a gate fails only below the quality, above the cost
    done, _ = live.replay(
        "--min-quality", str(summary["accuracy"]), "--max-cost", str(summary["cost_usd"])
    )
    assert done.returncode == 0, done.stderr
    assert "gate failed" not in done.stderr


@pytest.mark.slow
def test_replay_trains_a_router_and_sweeps_it_over_ten_thresholds(
    live: Live, tmp_path: Path
) -> None:
    router = tmp_path / "r.json"
    done, requests = live.replay(
        "--train-router", str(router), "--reason-share", "0.4", "--router", str(router)
    )
    assert done.returncode == 0, done.stderr
    assert requests == 0
    trained = load_router(router)
    assert (trained.items, trained.reason_share) == (20, 0.4)
    assert trained.cheap == {"profile": "writer", "model": WEAK}
    assert trained.strong == {"profile": "thinker", "model": STRONG}
    assert "router trained on 20 items" in done.stderr
    assert "router sweep: r.json" in done.stdout
    points = json.loads((live.out / "sweep.json").read_text())
    assert [p["share"] for p in points] == list(SWEEP_SHARES)
    thresholds = [p["threshold"] for p in points]
    assert thresholds == sorted(thresholds)  # sending more to reasoning takes a higher bar
    # Each point takes every item's outcome from one baseline or the other. Reasoning costs
    # more on every item, so the cost per item lies between the baselines'; the accuracy lies
    # between the items both get right (12 of 20) and those either gets right (18).
    per_item = json.loads(live.summary)["policies"]
    low = per_item["all-generate"]["cost_per_item_usd"]
    high = per_item["all-reason"]["cost_per_item_usd"]
    for point in points:
        assert low <= point["cost_per_item_usd"] <= high
        assert 0.6 - 1e-9 <= point["accuracy"] <= 0.9 + 1e-9


@pytest.mark.slow
def test_replay_trains_and_sweeps_a_router_on_a_profiles_embeddings(
    live: Live, tmp_path: Path
) -> None:
    router = tmp_path / "e.json"
    before = len(live.server.embedding_requests)
    done, requests = live.replay(
        "--train-router", str(router), "--router-features", "embeddings:writer",
        "--router", str(router),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert requests == 0  # no chat call: only the inputs were embedded
    embedded = live.server.embedding_requests[before:]
    assert {model for model, _ in embedded} == {WEAK}
    # Every input once to train, once again to sweep: the same 20 texts.
    texts = [t for _, body in embedded for t in body["input"]]
    assert len(texts) == 40 and sorted(set(texts)) == sorted(read_inputs(live.out).values())
    assert done.stderr.count("embedded 20 inputs with writer") == 2
    trained = load_router(router)
    assert trained.embedding is not None
    assert (trained.embedding.profile, trained.embedding.model) == ("writer", WEAK)
    points = json.loads((live.out / "sweep.json").read_text())
    assert [p["share"] for p in points] == list(SWEEP_SHARES)


@pytest.mark.slow
def test_training_needs_the_profiles_eval_json_names(live: Live, tmp_path: Path) -> None:
    # An evaluation run through the SDK (`Evaluation`) writes no eval.json.
    copy = tmp_path / "sdk-eval"
    shutil.copytree(live.out, copy, ignore=shutil.ignore_patterns("eval.json", "state"))
    done = live.cli("eval", "--replay", str(copy), "--train-router", str(tmp_path / "r.json"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: no eval.json in {copy} naming the cheap and strong profiles, which a router "
        "is trained for; `orchestrator eval WORKFLOW --dataset FILE` writes it"
    )
    assert not (tmp_path / "r.json").exists()


@pytest.fixture
def broken(openai_env: FakeOpenAI, tmp_path: Path) -> Path:
    """tmp_path with wf.yaml, data.jsonl and bad.jsonl (line 3 is not JSON)."""
    setup(tmp_path, openai_env)
    rows = (tmp_path / "data.jsonl").read_text().splitlines()
    (tmp_path / "bad.jsonl").write_text("\n".join([*rows[:2], "{not json", *rows[3:]]) + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--dataset", "bad.jsonl"), "bad.jsonl:3: not JSON"),
        (("--dataset", "data.jsonl", "--policies", "checked,nosuch"), "unknown policy 'nosuch'"),
        ((), "eval needs WORKFLOW and --dataset FILE"),
        (
            ("--dataset", "data.jsonl", "--router-features", "vectors"),
            "--router-features 'vectors': use ngrams, or embeddings:PROFILE",
        ),
    ],
    ids=["bad-row", "unknown-policy", "no-dataset", "bad-features"],
)
def test_a_usage_error_exits_2_with_one_line_and_no_request(
    broken: Path, openai_env: FakeOpenAI, args: tuple[str, ...], says: str
) -> None:
    absolute = [str(broken / a) if a.endswith(".jsonl") else a for a in args]
    out = broken / "out"
    done = run_cli("eval", str(broken / "wf.yaml"), *absolute, "--out", str(out))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert says in done.stderr and "Traceback" not in done.stderr
    assert openai_env.requests == []
    assert not out.exists()  # refused before anything was written


def _smoke_truth() -> Truth:
    """Both models right on every shipped smoke item."""
    items = load_dataset(REPO / "datasets" / "smoke.jsonl")
    targets = {i.id: str(i.target) for i in items}
    right = {(i.id, model): True for i in items for model in (WEAK, STRONG)}
    return Truth(targets, right, {i.id: i.input for i in items})


@pytest.mark.slow
def test_a_shipped_dataset_resolves_by_its_bare_name(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    setup(tmp_path, openai_env)
    truth = _smoke_truth()
    scripted = truth.responder()

    def every(body: dict[str, Any]) -> Reply:  # whatever else is asked gets an answer too
        return scripted(body) or Reply(content="#### 0")

    openai_env.responder = every
    out = tmp_path / "out"
    done = run_cli("eval", str(tmp_path / "wf.yaml"), "--dataset", "smoke", "--limit", "2",
                   "--out", str(out), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert Path(summary["dataset"]).name == "smoke.jsonl" and summary["items"] == 2
    # the rows' own targets and scorer (numeric) were used: every scripted answer is right
    assert {p["accuracy"] for p in summary["policies"].values()} == {1.0}
    # --limit 2: only the first two rows were asked about (how often depends on the cache)
    asked = {truth.item_of(r.body) for r in openai_env.requests}
    assert asked == {"smoke-001", "smoke-002"}
