"""What an evaluation directory says without calling any model: every metric recomputed from
`samples.jsonl`, the outputs written again, a router trained from the baselines' outcomes, and
a router's thresholds swept over the recorded outcomes (as RouteLLM's evaluator does).

A sweep needs no new runs: at each threshold, an item routed to the cheap role scores and
costs what all-generate recorded for it, one routed to reasoning what all-reason recorded.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..policies.router import Trained, train_router
from .frontier import frontier_svg
from .metrics import GENERATE, REASON, SampleRecord, parse_samples, pgr, summarize, summary_json
from .report import report_md
from .runner import ITEMS, SAMPLES


def read_records(out: Path) -> tuple[SampleRecord, ...]:
    path = out / SAMPLES
    if not path.is_file():
        raise UsageError(f"no {SAMPLES} in {out}: give the --out directory of an evaluation")
    return parse_samples(path.read_text(encoding="utf-8"), str(path))


def read_inputs(out: Path) -> dict[str, str]:
    path = out / ITEMS
    if not path.is_file():
        raise UsageError(f"no {ITEMS} in {out}: it is written when an evaluation starts")
    inputs = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line) if line.strip() else None
            if row is not None:
                inputs[str(row["id"])] = str(row["input"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UsageError(f'{path}:{number}: not an item line ({{"id", "input"}})') from None
    return inputs


def write_outputs(
    out: Path, records: Sequence[SampleRecord], *, workflow: str, dataset: str, order: Sequence[str]
) -> dict[str, Any]:
    """summary.json, report.md and frontier.svg from the records; the summary."""
    metrics = summarize(records, order=order)
    summary = summary_json(metrics, workflow=workflow, dataset=dataset)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    points = {name: (m.cost_per_item_usd, m.accuracy) for name, m in metrics.items()}
    (out / "frontier.svg").write_text(
        frontier_svg(points, title=f"{workflow} on {Path(dataset).name}"), encoding="utf-8"
    )
    (out / "report.md").write_text(report_md(summary), encoding="utf-8")
    return summary


def _per_item(records: Sequence[SampleRecord], policy: str) -> dict[str, tuple[float, float]]:
    """Each item's mean score and mean list cost under `policy` (repeats averaged)."""
    groups: dict[str, list[SampleRecord]] = defaultdict(list)
    for record in records:
        if record.policy == policy:
            groups[record.item_id].append(record)
    return {
        item: (
            math.fsum(r.score for r in rs) / len(rs),
            math.fsum(r.list_cost_usd for r in rs) / len(rs),
        )
        for item, rs in groups.items()
    }


def router_outcomes(records: Sequence[SampleRecord]) -> dict[str, bool]:
    """Per item, whether the cheap role sufficed: it scored at least what reasoning scored."""
    cheap, strong = _per_item(records, GENERATE), _per_item(records, REASON)
    return {item: cheap[item][0] >= strong[item][0] for item in cheap if item in strong}


def train_from(
    records: Sequence[SampleRecord],
    inputs: Mapping[str, str],
    *,
    cheap: dict[str, str],
    strong: dict[str, str],
    reason_share: float,
    embedding: tuple[str, str] | None = None,
    vectors: Mapping[str, Sequence[float]] | None = None,
) -> Trained:
    """A router from the baselines' outcomes; with `embedding` (profile, model), learning from
    the inputs' `vectors` (by item id) instead of hashed n-grams."""
    ids = trainable(records, inputs)
    outcomes = router_outcomes(records)
    return train_router(
        [inputs[i] for i in ids],
        [outcomes[i] for i in ids],
        cheap=cheap,
        strong=strong,
        reason_share=reason_share,
        embedding=embedding,
        vectors=None if vectors is None else [vectors[i] for i in ids],
    )


def trainable(records: Sequence[SampleRecord], inputs: Mapping[str, str]) -> list[str]:
    """The items a router learns from: both baselines recorded, input known."""
    return sorted(i for i in router_outcomes(records) if i in inputs)


SWEEP_SHARES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # ten thresholds


@dataclass(frozen=True)
class SweepPoint:
    share: float  # the reasoning share the threshold was calibrated for
    threshold: float
    routed_share: float  # the share of items it sent to reasoning here
    accuracy: float
    cost_per_item_usd: float
    pgr: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sweep(
    records: Sequence[SampleRecord],
    inputs: Mapping[str, str],
    trained: Trained,
    shares: Sequence[float] = SWEEP_SHARES,
    vectors: Mapping[str, Sequence[float]] | None = None,
) -> list[SweepPoint]:
    """The router at each calibrated share, scored on the recorded baseline outcomes (an
    embeddings router scores the inputs' `vectors`, by item id)."""
    cheap, strong = _per_item(records, GENERATE), _per_item(records, REASON)
    items = sorted(i for i in cheap if i in strong and i in inputs)
    if not items:
        raise UsageError("no item has both baselines recorded: nothing to sweep")
    p = {i: trained.p_cheap_ok(inputs[i], None if vectors is None else vectors[i]) for i in items}
    q_gen = math.fsum(cheap[i][0] for i in items) / len(items)
    q_reason = math.fsum(strong[i][0] for i in items) / len(items)
    points = []
    for share in shares:
        cut = trained.threshold(share)
        chosen = [strong[i] if p[i] < cut else cheap[i] for i in items]
        accuracy = math.fsum(c[0] for c in chosen) / len(items)
        points.append(
            SweepPoint(
                share=share,
                threshold=cut,
                routed_share=sum(p[i] < cut for i in items) / len(items),
                accuracy=accuracy,
                cost_per_item_usd=math.fsum(c[1] for c in chosen) / len(items),
                pgr=pgr(accuracy, q_gen, q_reason),
            )
        )
    return points
