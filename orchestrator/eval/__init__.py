"""Evaluation building blocks: datasets, scorers, metrics and the report, with no model calls.

- `dataset`: `load_dataset(path)` reads JSONL or CSV rows into `Item`s, naming the line of a
  bad row;
- `scorers`: `score(item, answer, default_scorer)` -> `Score` (numeric, exact, contains,
  choice, regex, json, python, code), and the judge's prompt and verdict;
- `sandbox`: running an answer's code against tests in a subprocess (not a security sandbox);
- `metrics`: `SampleRecord` (a line of samples.jsonl), `summarize` -> `PolicyMetrics`, and
  `summary_json`, the summary.json contract;
- `frontier` and `report`: frontier.svg and report.md.

The runner (which calls the workflow under each policy) builds on these.
"""

from __future__ import annotations

from .dataset import Item, load_dataset
from .frontier import frontier_svg
from .metrics import (
    GENERATE,
    REASON,
    PolicyMetrics,
    SampleRecord,
    bootstrap_ci,
    pareto,
    parse_samples,
    percentile,
    pgr,
    summarize,
    summary_json,
)
from .report import report_md
from .sandbox import network_isolated, run_code
from .scorers import (
    Score,
    ScorerSpec,
    check_item,
    judge_messages,
    parse_scorer,
    parse_verdict,
    score,
)

__all__ = [
    "GENERATE",
    "REASON",
    "Item",
    "PolicyMetrics",
    "SampleRecord",
    "Score",
    "ScorerSpec",
    "bootstrap_ci",
    "check_item",
    "frontier_svg",
    "judge_messages",
    "load_dataset",
    "network_isolated",
    "pareto",
    "parse_samples",
    "parse_scorer",
    "parse_verdict",
    "percentile",
    "pgr",
    "report_md",
    "run_code",
    "score",
    "summarize",
    "summary_json",
]
