"""What an evaluation measures, computed from its per-item records alone.

`SampleRecord` is one line of `samples.jsonl`: one item, run once (`repeat`) under one policy.
It round-trips through JSON exactly, and `summarize` depends on nothing else (not even the order
of the records), so `--replay` recomputes every metric bit for bit.

Per policy (`PolicyMetrics`):

- `accuracy`: the mean score; each item's repeats are averaged first, so every item weighs the
  same. `ci95`: a 95 % percentile bootstrap interval over items (2,000 resamples, seed 0; the
  same resampled items for every policy, so intervals are paired);
- `cost_usd`: the total at list price (`list_cost_usd`: what every call would have cost
  uncached; an eval's cache saves money, it must not flatter a policy); `cost_per_item_usd`:
  per record (item × repeat); `cost_vs_all_reason`: that over all-reason's per-record cost
  (None if all-reason cost nothing);
- `reason_share`: reasoning-profile calls over all calls (None without calls);
- `pgr`: the performance gap recovered, (q − q_all-generate) / (q_all-reason − q_all-generate),
  None when the two baselines score the same;
- `latency_p50_s`, `latency_p95_s`: over records, linear interpolation between ranks;
- `pareto`: no other policy is at most as costly per item and at least as accurate, and
  strictly better in one of the two;
- and, outside summary.json's contract, `spent_usd` (what was paid: cache hits free),
  `judge_cost_usd` (judging, kept apart from the policy's cost), `errors` (runs that did not
  complete; they score 0) and `tokens_by_profile`.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from ..errors import UsageError

__all__ = [
    "BOOTSTRAP_SAMPLES",
    "GENERATE",
    "REASON",
    "PolicyMetrics",
    "SampleRecord",
    "bootstrap_ci",
    "pareto",
    "parse_samples",
    "percentile",
    "pgr",
    "summarize",
    "summary_json",
]

GENERATE, REASON = "all-generate", "all-reason"
BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class SampleRecord:
    """One item run once under one policy: its answer, score, cost, latency and route.

    `cost_usd` is what was paid (0 for cached calls), `list_cost_usd` the full price of the
    same calls; `reason_calls` of `calls` went to the reasoning profile; `tokens_by_profile`
    counts billed tokens (input + output) per profile; `route` is any JSON object (each step's
    route, as in --json); `judge_cost_usd` is the judge's, kept apart; `detail` is the score's;
    `error` says why the run did not complete (None if it did).
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    item_id: str
    policy: str
    repeat: int
    answer: str
    score: float
    passed: bool
    cost_usd: float
    list_cost_usd: float
    latency_s: float
    reason_calls: int
    calls: int
    tokens_by_profile: Mapping[str, int] = field(default_factory=dict, hash=False)
    route: Mapping[str, Any] = field(default_factory=dict, hash=False)
    judge_cost_usd: float = 0.0
    detail: str = ""
    error: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score {self.score!r} is not in [0, 1]")
        money = (self.cost_usd, self.list_cost_usd, self.judge_cost_usd, self.latency_s)
        if not all(math.isfinite(v) and v >= 0 for v in money):
            raise ValueError("costs and latency are finite and not negative")
        if not 0 <= self.reason_calls <= self.calls or self.repeat < 0:
            raise ValueError("0 <= reason_calls <= calls, and repeat >= 0")

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["tokens_by_profile"] = dict(self.tokens_by_profile)
        out["route"] = dict(self.route)
        return out

    def to_json(self) -> str:
        """One line of samples.jsonl (floats as their shortest exact repr)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> SampleRecord:
        """The record `to_json` wrote; raises ValueError naming the first problem."""
        try:
            return _RECORD.validate_json(line, strict=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "the record"
            raise ValueError(f"{where}: {error['msg']}") from None


_RECORD = TypeAdapter(SampleRecord)


def parse_samples(text: str, source: str = "samples.jsonl") -> tuple[SampleRecord, ...]:
    """The records of a samples.jsonl text; a bad line raises UsageError naming it."""
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                records.append(SampleRecord.from_json(line))
            except ValueError as exc:
                raise UsageError(f"{source}:{number}: not a sample record ({exc})") from None
    return tuple(records)


@dataclass(frozen=True)
class PolicyMetrics:
    """Every metric of one policy (see the module docstring)."""

    name: str
    items: int
    samples: int
    accuracy: float
    ci95: tuple[float, float]
    cost_usd: float
    cost_per_item_usd: float
    cost_vs_all_reason: float | None
    reason_share: float | None
    pgr: float | None
    latency_p50_s: float
    latency_p95_s: float
    pareto: bool
    spent_usd: float
    judge_cost_usd: float
    errors: int
    tokens_by_profile: Mapping[str, int] = field(hash=False)


def _mean(values: Sequence[float]) -> float:
    # fsum is correctly rounded, so the result does not depend on the order of the values
    return math.fsum(values) / len(values)


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0–100), interpolating linearly between ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("the percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"a percentile is between 0 and 100, not {p}")
    rank = p / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def bootstrap_ci(
    values: Sequence[float], n: int = BOOTSTRAP_SAMPLES, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `values`: `n` resamples with
    replacement, drawn from `random.Random(seed)`, so the same input gives the same interval."""
    if not values:
        raise ValueError("the bootstrap interval of no values")
    rng = random.Random(seed)
    size = len(values)
    means = [_mean(rng.choices(values, k=size)) for _ in range(n)]
    tail = (1 - level) / 2 * 100
    return percentile(means, tail), percentile(means, 100 - tail)


def pgr(q: float, q_generate: float, q_reason: float) -> float | None:
    """The share of the gap between all-generate and all-reason quality that `q` recovers:
    0 at all-generate, 1 at all-reason; None when there is no gap."""
    if q_reason == q_generate:
        return None
    return (q - q_generate) / (q_reason - q_generate)


def pareto(points: Mapping[str, tuple[float, float]]) -> set[str]:
    """The names of the (cost, quality) points no other point dominates: none is at most as
    costly and at least as good, and strictly better in one of the two. Equal points are both
    on the frontier."""

    def dominated(cost: float, quality: float) -> bool:
        return any(
            c <= cost and q >= quality and (c < cost or q > quality) for c, q in points.values()
        )

    return {name for name, (cost, quality) in points.items() if not dominated(cost, quality)}


def _by_policy(records: Iterable[SampleRecord]) -> dict[str, list[SampleRecord]]:
    groups: dict[str, list[SampleRecord]] = defaultdict(list)
    seen: set[tuple[str, str, int]] = set()
    for record in records:
        key = (record.policy, record.item_id, record.repeat)
        if key in seen:
            raise UsageError(f"two records of item {key[1]!r}, {key[0]}, repeat {key[2]}")
        seen.add(key)
        groups[record.policy].append(record)
    for name in (GENERATE, REASON):
        if name not in groups:
            raise UsageError(f"no {name} records: the baselines always run; was the run cut short?")
    items = {r.item_id for r in groups[GENERATE]}
    for name, group in groups.items():
        if {r.item_id for r in group} != items:
            raise UsageError(f"{name} was run on other items than {GENERATE}: cannot compare them")
    return groups


def _own(name: str, records: list[SampleRecord], seed: int, n: int) -> dict[str, Any]:
    """The metrics of one policy that need no other policy."""
    per_item: dict[str, list[float]] = defaultdict(list)
    for record in records:
        per_item[record.item_id].append(record.score)
    # Items in id order: the resamples then do not depend on the order records arrived in.
    item_means = [_mean(per_item[item]) for item in sorted(per_item)]
    calls = sum(r.calls for r in records)
    tokens: dict[str, int] = defaultdict(int)
    for record in records:
        for profile, count in record.tokens_by_profile.items():
            tokens[profile] += count
    cost = math.fsum(r.list_cost_usd for r in records)
    latencies = [r.latency_s for r in records]
    return {
        "name": name,
        "items": len(per_item),
        "samples": len(records),
        "accuracy": _mean(item_means),
        "ci95": bootstrap_ci(item_means, n=n, seed=seed),
        "cost_usd": cost,
        "cost_per_item_usd": cost / len(records),
        "reason_share": sum(r.reason_calls for r in records) / calls if calls else None,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "spent_usd": math.fsum(r.cost_usd for r in records),
        "judge_cost_usd": math.fsum(r.judge_cost_usd for r in records),
        "errors": sum(r.error is not None for r in records),
        "tokens_by_profile": dict(sorted(tokens.items())),
    }


def summarize(
    records: Iterable[SampleRecord],
    *,
    order: Sequence[str] = (),
    seed: int = 0,
    n_bootstrap: int = BOOTSTRAP_SAMPLES,
) -> dict[str, PolicyMetrics]:
    """Every policy's metrics, baselines first, then the policies in `order`, then any other
    in name order. Raises UsageError when the records cannot be compared (no baselines,
    policies run on different items, the same item and repeat twice)."""
    groups = _by_policy(records)
    names = [GENERATE, REASON, *order, *sorted(groups)]
    names = [name for i, name in enumerate(names) if name in groups and name not in names[:i]]
    own = {name: _own(name, groups[name], seed, n_bootstrap) for name in names}
    q_generate, q_reason = own[GENERATE]["accuracy"], own[REASON]["accuracy"]
    reason_cost = own[REASON]["cost_per_item_usd"]
    front = pareto({n: (m["cost_per_item_usd"], m["accuracy"]) for n, m in own.items()})
    return {
        name: PolicyMetrics(
            **metrics,
            cost_vs_all_reason=metrics["cost_per_item_usd"] / reason_cost if reason_cost else None,
            pgr=pgr(metrics["accuracy"], q_generate, q_reason),
            pareto=name in front,
        )
        for name, metrics in own.items()
    }


def summary_json(
    metrics: Mapping[str, PolicyMetrics], *, workflow: str, dataset: str
) -> dict[str, Any]:
    """summary.json, exactly:

    `{"workflow", "dataset", "items", "policies": {NAME: {"accuracy", "ci95": [lo, hi],
    "cost_usd", "cost_per_item_usd", "cost_vs_all_reason", "reason_share", "pgr",
    "latency_p50_s", "latency_p95_s", "pareto"}}, "extra": {"policies": {NAME: {"samples",
    "errors", "spent_usd", "judge_cost_usd", "tokens_by_profile"}}}}`

    Undefined values (`pgr`, `cost_vs_all_reason`, `reason_share`) are null; `items` counts
    distinct items (the baselines'); `extra` is informative, outside the contract's core.
    """
    policies: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, m in metrics.items():
        policies[name] = {
            "accuracy": m.accuracy,
            "ci95": [m.ci95[0], m.ci95[1]],
            "cost_usd": m.cost_usd,
            "cost_per_item_usd": m.cost_per_item_usd,
            "cost_vs_all_reason": m.cost_vs_all_reason,
            "reason_share": m.reason_share,
            "pgr": m.pgr,
            "latency_p50_s": m.latency_p50_s,
            "latency_p95_s": m.latency_p95_s,
            "pareto": m.pareto,
        }
        extra[name] = {
            "samples": m.samples,
            "errors": m.errors,
            "spent_usd": m.spent_usd,
            "judge_cost_usd": m.judge_cost_usd,
            "tokens_by_profile": dict(m.tokens_by_profile),
        }
    return {
        "workflow": workflow,
        "dataset": dataset,
        "items": metrics[GENERATE].items if GENERATE in metrics else 0,
        "policies": policies,
        "extra": {"policies": extra},
    }
