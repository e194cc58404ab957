"""report.md: the summary as a Markdown table, the frontier picture, and what the columns mean.

It is written from summary.json's contract alone (`summary_json`), so a replayed summary gives
the same report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["report_md", "usd"]

_COLUMNS = (
    "policy",
    "accuracy (95 % CI)",
    "cost",
    "per item",
    "vs all-reason",
    "reasoning calls",
    "PGR",
    "p50",
    "p95",
    "Pareto",
)
_NOTES = """\
- Costs are at list price: what every call would have cost without the response cache, so a
  cached run never looks cheaper than it would be. A judge's cost, if any, is not included.
- **PGR** (performance gap recovered) = (accuracy − all-generate's) / (all-reason's −
  all-generate's): 0 is the cheap model alone, 1 the reasoning model alone; — when the two
  baselines score the same.
- **Pareto**: no other policy is at most as costly per item and at least as accurate, and
  strictly better in one of the two.
- Latencies are per item run, end to end (p50 and p95, interpolated)."""


def usd(value: float | None) -> str:
    """Dollars to three significant digits, written out: `$0.000123`, `$1.23`, `$0`."""
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    digits = max(2, 2 - math.floor(math.log10(abs(value))))
    return f"${value:,.{digits}f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _cell(text: str) -> str:
    # a policy name is the only free text in a row; keep it from breaking the table
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _row(name: str, p: Mapping[str, Any]) -> str:
    low, high = p["ci95"]
    cells = [
        _cell(name),
        f"{p['accuracy'] * 100:.1f} % ({low * 100:.1f}–{high * 100:.1f})",
        usd(p["cost_usd"]),
        usd(p["cost_per_item_usd"]),
        _share(p["cost_vs_all_reason"]),
        _share(p["reason_share"]),
        "—" if p["pgr"] is None else f"{p['pgr']:.2f}",
        f"{p['latency_p50_s']:.2f} s",
        f"{p['latency_p95_s']:.2f} s",
        "yes" if p["pareto"] else "no",
    ]
    return "| " + " | ".join(cells) + " |"


def report_md(summary: Mapping[str, Any], svg_name: str = "frontier.svg") -> str:
    """The report for a summary.json dict, with the picture `svg_name` (a relative path)."""
    head = [
        f"# Evaluation of `{summary['workflow']}`",
        "",
        f"Dataset `{summary['dataset']}`, {summary['items']} items.",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "| --- |" + " ---: |" * (len(_COLUMNS) - 2) + " :---: |",
    ]
    rows = [_row(name, policy) for name, policy in summary["policies"].items()]
    picture = ["", f"![frontier]({svg_name})", "", _NOTES, ""]
    return "\n".join(head + rows + picture)
