"""Running an evaluation: every item under every policy (the two baselines always included),
each a real run of the workflow, recorded as a `SampleRecord` the moment it is scored.

Runs, checkpoints and the response cache live under `OUT/state` (in the database instead when
ORCHESTRATOR_DATABASE_URL is set, the run ids then scoped by OUT), so an interrupted evaluation
resumes: records already in `OUT/samples.jsonl` are not run again, a run cut off mid-way is
resumed from its checkpoint, and every request answered before is answered from the cache at
no cost. The cache saves the evaluation's money but never flatters a policy: each record's
`list_cost_usd` prices every call at its full price, and its latency counts the original
latency of a cached call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..models.base import CallRecord, ChatModel
from ..models.pricing import cost_usd
from ..policyspec import BUILTIN_POLICIES
from ..result import RunResult
from ..runtime import Workflow
from ..spec import WorkflowSpec
from ..storage import database_url
from .dataset import Item
from .judge import Judge
from .metrics import GENERATE, REASON, SampleRecord, parse_samples
from .scorers import Score, parse_scorer, score

SAMPLES = "samples.jsonl"
ITEMS = "items.jsonl"


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate: which policies (the baselines are added), how many times each item
    runs, how many runs at once, where the outputs go, the default scorer, and whether the
    response cache is used (on by default: reruns are free)."""

    policies: tuple[str, ...]
    out: Path
    repeat: int = 1
    concurrency: int = 4
    scorer: str | None = None
    cache: bool = True
    judge_profile: str | None = None

    @property
    def all_policies(self) -> tuple[str, ...]:
        extra = [p for p in self.policies if p not in (GENERATE, REASON)]
        return (GENERATE, REASON, *dict.fromkeys(extra))


def check_policies(spec: WorkflowSpec, names: Sequence[str]) -> None:
    known = {*BUILTIN_POLICIES, *spec.policies}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"unknown policy {', '.join(map(repr, unknown))}: use a built-in "
            f"({', '.join(sorted(BUILTIN_POLICIES))}) or one under `policies:` in the workflow"
        )


def run_id_for(policy: str, item: Item, repeat: int, scope: str = "") -> str:
    """A stable run id per (policy, item, repeat), so an interrupted evaluation resumes it.

    `scope` sets evaluations sharing one database apart (their output directory): in a state
    directory of its own (OUT/state) an evaluation needs none."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", item.id)[:40]
    key = f"{policy}\x1f{item.id}\x1f{repeat}" + (f"\x1f{scope}" if scope else "")
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"eval-{re.sub(r'[^A-Za-z0-9._-]', '_', policy)}-{plain}-r{repeat}-{digest}"


def _list_cost(calls: Sequence[CallRecord], spec: WorkflowSpec) -> float:
    """What the calls cost at full price: a cached call at what it cost when it was made."""
    return sum(
        cost_usd(c.usage, spec.models[c.profile].price) if c.cached else c.cost_usd for c in calls
    )


def to_record(
    spec: WorkflowSpec,
    item: Item,
    policy: str,
    repeat: int,
    result: RunResult,
    scored: Score,
    judge_cost: float,
) -> SampleRecord:
    reason_profile = spec.profile_for("reason")[0]
    tokens: dict[str, int] = {}
    for call in result.calls:
        used = call.usage.input_tokens + call.usage.output_tokens
        tokens[call.profile] = tokens.get(call.profile, 0) + used
    completed = result.status == "completed"
    return SampleRecord(
        item_id=item.id,
        policy=policy,
        repeat=repeat,
        answer=result.output,
        score=scored.value if completed else 0.0,
        passed=scored.passed and completed,
        cost_usd=result.usage.cost_usd,
        list_cost_usd=_list_cost(result.calls, spec),
        # Model time: the sum of the calls' latencies (a cached call counts its original one).
        latency_s=sum(c.latency_s for c in result.calls),
        reason_calls=sum(c.profile == reason_profile for c in result.calls),
        calls=len(result.calls),
        tokens_by_profile=tokens,
        route={"steps": [s.route.to_dict() for s in result.subproblems]},
        judge_cost_usd=judge_cost,
        detail=scored.detail if completed else "",
        error=None if completed else (result.error.message if result.error else result.status),
    )


class Evaluation:
    """One evaluation's state: the workflows per policy, the records so far, the output file."""

    def __init__(
        self,
        spec: WorkflowSpec,
        items: Sequence[Item],
        options: EvalOptions,
        *,
        models: Mapping[str, ChatModel] | None = None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        check_policies(spec, options.all_policies)
        for item in items:
            parse_scorer(item.scorer or options.scorer or "exact")
        self.spec, self.items, self.options = spec, tuple(items), options
        options.out.mkdir(parents=True, exist_ok=True)
        state = options.out / "state"
        # One workflow per policy and repeat: a repeat's requests are drawn anew, not
        # answered from the cache with the first repeat's answers.
        self.workflows = {
            (name, repeat): Workflow(
                spec,
                models=models,
                functions=functions,
                home=state,
                cache=options.cache,
                policy=name,
                cache_salt=f"repeat {repeat}" if repeat else "",
            )
            for name in options.all_policies
            for repeat in range(options.repeat)
        }
        self.judge = Judge(spec, options.judge_profile, models, state)
        # With ORCHESTRATOR_DATABASE_URL, runs go to that shared database, not to OUT/state.
        self.scope = str(options.out.resolve()) if database_url() else ""
        self.samples = options.out / SAMPLES
        self.records: list[SampleRecord] = list(self._previous())
        self._lock = asyncio.Lock()

    def _previous(self) -> tuple[SampleRecord, ...]:
        if not self.samples.exists():
            return ()
        return parse_samples(self.samples.read_text(encoding="utf-8"), str(self.samples))

    def pending(self) -> list[tuple[str, Item, int]]:
        done = {(r.policy, r.item_id, r.repeat) for r in self.records}
        return [
            (policy, item, repeat)
            for policy in self.options.all_policies
            for item in self.items
            for repeat in range(self.options.repeat)
            if (policy, item.id, repeat) not in done
        ]

    def write_items(self) -> None:
        """The items' inputs beside the records, so a replay needs nothing else."""
        lines = [json.dumps({"id": i.id, "input": i.input}, ensure_ascii=False) for i in self.items]
        (self.options.out / ITEMS).write_text("\n".join(lines) + "\n", encoding="utf-8")

    async def run_one(self, policy: str, item: Item, repeat: int) -> SampleRecord:
        workflow = self.workflows[(policy, repeat)]
        run_id = run_id_for(policy, item, repeat, self.scope)
        try:
            result = await workflow.arun(item.input, run_id=run_id)
        except UsageError as exc:
            if "already exists" not in exc.message:
                raise
            result = await workflow.aresume(run_id)  # cut off last time: finish it
        scorer = item.scorer or self.options.scorer or "exact"
        if parse_scorer(scorer).kind == "judge":
            scored, judge_cost = await self.judge.score(item, result.output, scorer)
        else:
            scored, judge_cost = await asyncio.to_thread(score, item, result.output, scorer), 0.0
        record = to_record(self.spec, item, policy, repeat, result, scored, judge_cost)
        async with self._lock:
            self.records.append(record)
            with self.samples.open("a", encoding="utf-8") as out:
                out.write(record.to_json() + "\n")
        return record

    async def run(self, on_record: Callable[[SampleRecord], None] | None = None) -> None:
        self.write_items()
        slots = asyncio.Semaphore(self.options.concurrency)

        async def one(policy: str, item: Item, repeat: int) -> None:
            async with slots:
                record = await self.run_one(policy, item, repeat)
            if on_record is not None:
                on_record(record)

        await asyncio.gather(*(one(*job) for job in self.pending()))
