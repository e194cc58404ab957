"""The response cache: identical requests answered from cache.sqlite without reaching the server,
recorded as cached calls at cost 0 with the original usage; only complete answers stored; the
switches (`cache: true`, `--cache`, `Workflow(cache=True)`); `orchestrator cache stats|clear`."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from orchestrator import (
    AnswerToken,
    CallFinished,
    CallRecord,
    Event,
    Message,
    ModelResponse,
    OrchestratorError,
    RequestParams,
    ResponseFormat,
    RunFinished,
    RunResult,
    StorageError,
    TokenUsage,
    Usage,
    Workflow,
    parse_workflow,
)
from orchestrator.cli.view import usage_table
from orchestrator.models.budget import Budget, BudgetModel
from orchestrator.models.cache import CachedModel, request_key
from orchestrator.models.connect import connect
from orchestrator.models.ledger import Ledger, LedgerModel
from orchestrator.models.openai import ClientPool
from orchestrator.spec import ModelProfile, Price
from orchestrator.storage import open_storage
from orchestrator.storage.sqlite import CACHE_FILE
from orchestrator.testing import FunctionModel
from tests.clirun import run_cli
from tests.conftest import TEST_KEY
from tests.fakeserver import FakeOpenAI, Fault, Reply

SPEC = """
name: cached
models:
  thinker:
    model: think-model
    reasoning: true
    price: {input: 2.0, output: 8.0}
    retries: 0
%(thinker)s
  writer:
    model: write-model
    price: {input: 0.1, output: 0.4}
    retries: 0
%(writer)s
roles: {plan: writer, reason: thinker, generate: writer, synthesize: writer}
"""
PLAN = {
    "subproblems": [
        {"id": "s1", "kind": "reason", "task": "weigh the options", "depends_on": []},
        {"id": "s2", "kind": "generate", "task": "list the options", "depends_on": []},
    ]
}
TASK = "Choose a database for a small analytics service."
PRICE = Price(input=2.0, output=8.0)


def spec_text(thinker: str = "", writer: str = "") -> str:
    return SPEC % {"thinker": thinker, "writer": writer}


@pytest.fixture
def fake(openai_env: FakeOpenAI) -> FakeOpenAI:
    openai_env.configure_model("think-model", reasoning=True, trace_style="reasoning_content")
    openai_env.set_plan(PLAN)
    return openai_env


async def collect(workflow: Workflow, task: str = TASK) -> tuple[RunResult, list[Event]]:
    events = [event async for event in workflow.astream(task)]
    last = events[-1]
    assert isinstance(last, RunFinished)
    return last.result, events


def calls_of(events: list[Event]) -> list[CallRecord]:
    """The run's calls, in an order that does not depend on which parallel call ended first."""
    calls = [e.call for e in events if isinstance(e, CallFinished)]
    return sorted(calls, key=lambda c: (c.profile, c.purpose, c.step or ""))


def home() -> Path:
    """The state directory `openai_env` set up."""
    return Path(os.environ["ORCHESTRATOR_HOME"])


async def test_a_second_identical_run_is_answered_from_the_cache(fake: FakeOpenAI) -> None:
    workflow = Workflow(parse_workflow(spec_text()), cache=True)
    first, first_events = await collect(workflow)
    sent = len(fake.requests)
    second, second_events = await collect(workflow)

    assert first.status == second.status == "completed" and sent == 4  # plan, s1, s2, answer
    assert len(fake.requests) == sent, "a cached answer made a request"
    before, after = calls_of(first_events), calls_of(second_events)
    assert not any(c.cached for c in before) and all(c.cached for c in after)
    assert all(c.cost_usd > 0 for c in before) and all(c.cost_usd == 0 for c in after)
    # The original call's usage and latency, so an evaluation can still charge it in full.
    assert [(c.usage, c.latency_s, c.finish_reason) for c in after] == [
        (c.usage, c.latency_s, c.finish_reason) for c in before
    ]
    assert second.output == first.output
    streamed = "".join(e.text for e in second_events if isinstance(e, AnswerToken))
    assert streamed == second.output  # the synthesizer's hit is streamed as a live one is
    traces = [s.trace for s in second.subproblems]
    assert traces == [s.trace for s in first.subproblems] and any(traces)
    assert first.usage.cost_usd > 0 and second.usage.cost_usd == 0
    # The run log keeps the flag: the run inspected later is still all cache hits.
    logged = (await workflow.ainspect(second.run_id)).usage
    assert logged.cost_usd == 0
    assert all(p.cached_calls == p.calls > 0 for p in logged.by_profile.values())


async def test_a_streamed_hit_replays_the_answer_through_on_token(tmp_path: Path) -> None:
    asked: list[RequestParams] = []

    def answer(messages: list[Message], params: RequestParams) -> str:
        asked.append(params)
        return "the whole answer, once"

    profile = ModelProfile(model="m")
    async with open_storage(tmp_path) as storage:
        model = CachedModel(
            FunctionModel(answer), storage.cache, endpoint="profile:p", profile=profile
        )
        await model.request([Message("user", "q")], RequestParams())  # not streamed
        shown: list[str] = []
        hit = await model.request([Message("user", "q")], RequestParams(on_token=shown.append))
    assert len(asked) == 1 and hit.cached
    assert "".join(shown) == hit.content == "the whole answer, once"


async def test_samples_drawn_to_differ_get_entries_of_their_own(tmp_path: Path) -> None:
    asked: list[int] = []

    def answer(messages: list[Message], params: RequestParams) -> str:
        asked.append(params.sample)
        return f"sample {params.sample}"

    profile = ModelProfile(model="m", temperature=1.0)
    messages = [Message("user", "guess")]
    async with open_storage(tmp_path) as storage:
        model = CachedModel(
            FunctionModel(answer), storage.cache, endpoint="profile:p", profile=profile
        )
        answers = [
            (await model.request(messages, RequestParams(sample=n))).content for n in (1, 2, 1, 2)
        ]
        entries = (await storage.cache.stats()).entries
    assert asked == [1, 2] and entries == 2
    assert answers == ["sample 1", "sample 2", "sample 1", "sample 2"]


BASE = RequestParams(max_output_tokens=100)
FORMAT = ResponseFormat("plan", {"type": "object"})


@pytest.mark.parametrize(
    "change",
    [
        {"endpoint": "http://other.example/v1"},
        {"model": "another-model"},
        {"messages": [Message("user", "a different question")]},
        {"messages": [Message("instruction", "question")]},
        {"params": replace(BASE, response_format=FORMAT)},
        {"params": replace(BASE, max_output_tokens=200)},
        {"params": replace(BASE, temperature=0.7)},
        {"params": replace(BASE, sample=3)},
        {"temperature": 0.9},  # the profile's own, as sent
    ],
    ids=[
        "endpoint",
        "model",
        "message",
        "role",
        "response_format",
        "max_output_tokens",
        "temperature",
        "sample",
        "profile_temperature",
    ],
)
def test_every_part_of_the_request_that_is_sent_changes_the_key(change: dict[str, Any]) -> None:
    def key(
        endpoint: str = "http://api.example/v1",
        model: str = "m",
        messages: tuple[Message, ...] = (Message("user", "question"),),
        params: RequestParams = BASE,
        temperature: float | None = None,
    ) -> str:
        profile = ModelProfile(model=model, temperature=temperature)
        return request_key(endpoint, profile, list(messages), params)

    assert re.fullmatch(r"[0-9a-f]{64}", key())
    assert key(**change) != key()


def test_what_is_not_sent_leaves_the_key_alone() -> None:
    messages = [Message("user", "question")]
    writer = ModelProfile(model="m", temperature=0.2)
    thinker = ModelProfile(model="m", reasoning=True, reasoning_effort="low")
    same = request_key("u", writer, messages, RequestParams(temperature=0.2))
    assert same == request_key("u", writer, messages, RequestParams(on_token=print))
    # A reasoning profile sends no temperature; its effort is the override, else its own.
    assert request_key("u", thinker, messages, RequestParams(temperature=1.5)) == request_key(
        "u", thinker, messages, RequestParams(reasoning_effort="low")
    )
    assert request_key("u", thinker, messages, RequestParams(reasoning_effort="high")) != (
        request_key("u", thinker, messages, RequestParams())
    )


@pytest.mark.parametrize(
    ("behaviour", "stream"),
    [
        (Reply(content="half an answ", finish_reason="length"), False),
        (Reply(tool_calls=True), False),
        (Fault(status=500), False),
        (Reply(content="a streamed answer that breaks off", cut_after=1), True),
        (Reply(content="   "), False),
    ],
    ids=["cut-off", "tool-call", "error", "broken-stream", "blank"],
)
async def test_incomplete_answers_are_never_stored(
    fake: FakeOpenAI, behaviour: Reply | Fault, stream: bool
) -> None:
    spec = parse_workflow(spec_text())
    shown: list[str] = []
    params = RequestParams(on_token=shown.append if stream else None)
    async with open_storage(home()) as storage:
        for _ in range(2):
            fake.enqueue(behaviour)
            ledger, pool = Ledger(), ClientPool()
            models = await connect(
                spec,
                {},
                pool=pool,
                budget=Budget(None),
                ledger=ledger,
                cache=storage.cache,
                cache_all=True,
            )
            try:
                await models["writer"].request([Message("user", "hi")], params)
            except OrchestratorError:
                pass
            finally:
                await pool.aclose()
            assert not any(call.cached for call in ledger.calls)
        entries = (await storage.cache.stats()).entries
    assert entries == 0
    assert len(fake.requests) == 2, "the second request was answered from the cache"
    assert fake.pending == 0


async def test_profiles_without_cache_true_never_use_it(fake: FakeOpenAI) -> None:
    workflow = Workflow(parse_workflow(spec_text(writer="    cache: true")))
    _, first_events = await collect(workflow)
    sent = len(fake.requests)
    _, second_events = await collect(workflow)

    again = fake.requests[sent:]
    assert [r.model for r in again] == ["think-model"]  # s1, the only reasoning call
    by_profile = {(c.profile, c.cached) for c in calls_of(second_events)}
    assert by_profile == {("thinker", False), ("writer", True)}
    async with open_storage(home()) as storage:
        entries = (await storage.cache.stats()).entries
    writer_calls = [c for c in calls_of(first_events) if c.profile == "writer"]
    assert entries == len(writer_calls) == 3  # the thinker's answer was never stored


async def test_a_hit_is_settled_at_nothing_in_the_budget(tmp_path: Path) -> None:
    budget, ledger = Budget(1.0), Ledger()
    profile = ModelProfile(model="m", price=PRICE)
    usage = TokenUsage(1000, 0, 500)
    inner = FunctionModel(lambda messages, params: ModelResponse("yes", usage=usage))
    async with open_storage(tmp_path) as storage:
        cached = CachedModel(inner, storage.cache, endpoint="profile:p", profile=profile)
        recorded = LedgerModel(cached, ledger, profile="p", model="m", price=PRICE)
        model = BudgetModel(recorded, budget, PRICE)
        params = RequestParams(max_output_tokens=1000)
        for _ in range(2):
            await model.request([Message("user", "q")], params)
    billed, hit = ledger.calls
    assert billed.cost_usd > 0 and (hit.cached, hit.cost_usd, hit.usage) == (True, 0.0, usage)
    assert budget.spent_usd == pytest.approx(billed.cost_usd) and budget.reserved_usd == 0


async def test_a_cache_that_cannot_be_written_loses_no_billed_call(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def full_disk(*args: object) -> None:
        raise StorageError("cannot write cache.sqlite: the disk is full")

    monkeypatch.setattr("orchestrator.storage.sqlite_cache._in_transaction", full_disk)
    workflow = Workflow(parse_workflow(spec_text()), cache=True)
    with caplog.at_level(logging.WARNING, logger="orchestrator.storage.sqlite_cache"):
        result, events = await collect(workflow)
    assert result.status == "completed"
    assert len(calls_of(events)) == 4 and result.usage.cost_usd > 0
    assert (await workflow.ainspect(result.run_id)).usage.cost_usd == result.usage.cost_usd
    [warning] = [r.getMessage() for r in caplog.records]  # once, not once per answer
    assert "could not be stored" in warning and "disk is full" in warning
    await collect(workflow)
    assert len(fake.requests) == 8  # nothing was cached, so everything was asked again


def cli_json(*args: str) -> dict[str, Any]:
    proc = run_cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    loaded: dict[str, Any] = json.loads(proc.stdout)
    return loaded


@pytest.mark.slow
def test_run_with_cache_on_the_command_line(fake: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(spec_text(), encoding="utf-8")
    first = cli_json("run", str(path), "-i", TASK, "--cache")
    sent = len(fake.requests)
    second = cli_json("run", str(path), "-i", TASK, "--cache")
    assert len(fake.requests) == sent == 4
    assert first["usage"]["cost_usd"] > 0 and second["usage"]["cost_usd"] == 0
    profiles = second["usage"]["by_profile"].values()
    assert all(p["cached_calls"] == p["calls"] > 0 and p["cost_usd"] == 0 for p in profiles)
    assert all(p["input_tokens"] > 0 for p in profiles)  # the original usage, not zeros
    assert second["output"] == first["output"]
    # Without --cache (and no `cache: true`), the same run asks again.
    third = cli_json("run", str(path), "-i", TASK)
    assert len(fake.requests) == 2 * sent and third["usage"]["cost_usd"] > 0
    assert not any("cached_calls" in p for p in third["usage"]["by_profile"].values())


@pytest.mark.slow
async def test_cache_stats_and_clear_on_the_command_line(fake: FakeOpenAI) -> None:
    long = "a long answer " * 10_000  # clearing must give its space back
    fake.responder = lambda body: None if "response_format" in body else Reply(content=long)
    workflow = Workflow(parse_workflow(spec_text()), cache=True)
    await collect(workflow)
    await collect(workflow)  # four hits

    stats = cli_json("cache", "stats")
    assert stats["location"] == str(home() / CACHE_FILE)
    assert (stats["entries"], stats["hits"]) == (4, 4) and stats["size_bytes"] > 0
    assert stats["oldest"] <= stats["newest"]
    text = run_cli("cache", "stats")
    assert text.returncode == 0 and f"cache: {home() / CACHE_FILE}" in text.stdout
    assert "answers: 4 " in text.stdout and "hits: 4 " in text.stdout

    cleared = run_cli("cache", "clear")
    assert cleared.returncode == 0 and cleared.stdout.startswith("removed 4 cached answers")
    after = cli_json("cache", "stats")
    assert (after["entries"], after["oldest"], after["hits"]) == (0, None, 4)
    assert stats["size_bytes"] > 3 * len(long) > 10 * after["size_bytes"]
    await collect(workflow)
    assert len(fake.requests) == 8  # emptied: asked again


@pytest.mark.slow
async def test_a_corrupt_cache_file_is_one_clear_message(fake: FakeOpenAI, tmp_path: Path) -> None:
    home().mkdir(parents=True, exist_ok=True)
    corrupt = home() / CACHE_FILE
    corrupt.write_bytes(b"not a database at all\n" * 400)
    path = tmp_path / "wf.yaml"
    path.write_text(spec_text(), encoding="utf-8")

    for args in (("run", str(path), "-i", TASK, "--cache"), ("cache", "stats"), ("cache", "clear")):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.splitlines()
        assert str(corrupt) in line and "not a valid SQLite database" in line
        assert "only cached answers are lost" in line
    assert fake.requests == []  # refused before the first call
    # A run that does not cache never opens the file.
    assert run_cli("run", str(path), "-i", TASK).returncode == 0


async def test_the_cache_never_holds_the_api_key(fake: FakeOpenAI) -> None:
    workflow = Workflow(parse_workflow(spec_text()), cache=True)
    await collect(workflow)
    files = sorted(home().glob(CACHE_FILE + "*"))
    assert files and all(TEST_KEY.encode() not in f.read_bytes() for f in files)
    with sqlite3.connect(home() / CACHE_FILE) as db:
        keys = [key for (key,) in db.execute("select key from responses")]
    assert len(keys) == 4 and all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)


def test_the_usage_table_and_json_say_which_calls_came_from_the_cache() -> None:
    usage = TokenUsage(10, 0, 5)
    billed = CallRecord("p", "m", "solve", "s1", usage, 0.01, 0.1)
    calls = [billed, replace(billed, step="s2", cost_usd=0.0, cached=True)]
    totals = Usage.from_calls(calls)
    console = Console(record=True, width=200)
    console.print(usage_table(totals))
    assert "2 (1 from cache)" in console.export_text()
    assert totals.by_profile["p"].to_dict()["cached_calls"] == 1
    assert "cached_calls" not in Usage.from_calls([billed]).by_profile["p"].to_dict()
