"""`orchestrator eval`: run a dataset under each policy, or replay a finished evaluation."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from rich.table import Table

from ..errors import UsageError
from ..eval.dataset import load_dataset
from ..eval.metrics import GENERATE, REASON, SampleRecord
from ..eval.replay import read_inputs, read_records, sweep, train_from, trainable, write_outputs
from ..eval.report import usd
from ..eval.runner import EvalOptions, Evaluation
from ..eval.vectors import Embedded, embed_inputs, feature_profile
from ..policies.router import load_router, save_router
from ..spec import WorkflowSpec
from ..specload import load_workflow
from .progress import spending_progress
from .render import drive
from .view import add_row, wide_console

META = "eval.json"


def add_parser(sub: Any) -> None:
    ev = sub.add_parser("eval", help="measure cost and quality of policies on a dataset")
    ev.add_argument("workflow", nargs="?", help="a workflow YAML file, or a shipped one's name")
    ev.add_argument("--dataset", metavar="FILE", help="JSONL or CSV rows: id, input, target")
    ev.add_argument("--policies", default="label", help="comma-separated (baselines always run)")
    ev.add_argument("--limit", type=int, help="the first N items only")
    ev.add_argument("--repeat", type=int, default=1, help="runs per item and policy")
    ev.add_argument("--concurrency", type=int, default=4, help="runs at once (default 4)")
    ev.add_argument("--out", metavar="DIR", help="where outputs go (default eval/WORKFLOW-DATA)")
    ev.add_argument("--scorer", help="scorer for rows that name none (default: exact)")
    ev.add_argument("--judge", metavar="PROFILE", help="the profile the judge scorer asks")
    ev.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    ev.add_argument("--replay", metavar="DIR", help="recompute everything from DIR, no calls")
    ev.add_argument("--router", metavar="FILE", help="with --replay: sweep this router")
    ev.add_argument("--train-router", metavar="FILE", help="train a router from the baselines")
    ev.add_argument("--reason-share", type=float, default=0.3, help="the router's target share")
    ev.add_argument(
        "--router-features",
        default="ngrams",
        metavar="ngrams|embeddings:PROFILE",
        help="what --train-router learns from: hashed n-grams (default), or the inputs' "
        "vectors from PROFILE's /v1/embeddings",
    )
    ev.add_argument("--min-quality", type=float, help="exit 1 if a policy's accuracy is lower")
    ev.add_argument("--max-cost", type=float, help="exit 1 if a policy's total cost is higher")
    ev.add_argument("--json", action="store_true", help="print summary.json")


def dataset_path(value: str) -> Path:
    """A dataset file, or the name of a shipped one (`arithmetic`): from the installed package,
    else from a source checkout's datasets/."""
    path = Path(value)
    if path.exists() or re.search(r"[/\\.]", value):
        return path
    candidates = [Path(__file__).resolve().parents[2] / "datasets" / f"{value}.jsonl"]
    with contextlib.suppress(ImportError, TypeError, ValueError):  # not installed as a package
        candidates.insert(
            0, Path(str(resources.files("orchestrator._datasets") / f"{value}.jsonl"))
        )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UsageError(f"no dataset {value!r}: give a JSONL or CSV file, or a shipped set's name")


def evaluate(args: argparse.Namespace) -> int:
    if not 0 < args.reason_share < 1:
        raise UsageError("--reason-share is a share of steps: between 0 and 1, e.g. 0.3")
    feature_profile(args.router_features)  # a typo fails before an evaluation is paid for
    if args.replay:
        return _replay(args)
    if args.router:
        raise UsageError(
            "--router sweeps a router over a finished evaluation: use it with --replay"
        )
    if not args.workflow or not args.dataset:
        raise UsageError("eval needs WORKFLOW and --dataset FILE (or --replay DIR)")
    if args.repeat < 1 or args.concurrency < 1 or (args.limit is not None and args.limit < 1):
        raise UsageError("--repeat, --concurrency and --limit must be at least 1")
    spec = load_workflow(args.workflow)
    path = dataset_path(args.dataset)
    items = load_dataset(path, default_scorer=args.scorer)[: args.limit]
    out = Path(args.out or f"eval/{spec.name}-{path.stem}")
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    options = EvalOptions(
        policies, out, args.repeat, args.concurrency, args.scorer, not args.no_cache, args.judge
    )
    evaluation = Evaluation(spec, items, options)
    _write_meta(out, spec, path, options)
    drive(_run_with_progress(evaluation))
    summary = write_outputs(
        out, evaluation.records, workflow=spec.name, dataset=str(path), order=policies
    )
    if args.train_router:
        _train(args, out, evaluation.records)
    return _report(args, summary, policies)


def _write_meta(out: Path, spec: WorkflowSpec, dataset: Path, options: EvalOptions) -> None:
    def profile(role: Any) -> dict[str, str]:
        name, p = spec.profile_for(role)
        return {"profile": name, "model": p.model}

    meta = {
        "workflow": spec.source or spec.name,
        "name": spec.name,
        "dataset": str(dataset),
        "policies": list(options.policies),
        "cheap": profile("generate"),
        "strong": profile("reason"),
    }
    (out / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


async def _run_with_progress(evaluation: Evaluation) -> None:
    with spending_progress("evaluating", len(evaluation.pending())) as advance:

        def seen(record: SampleRecord) -> None:
            advance(record.error is not None, record.cost_usd + record.judge_cost_usd)

        await evaluation.run(seen)


def _replay(args: argparse.Namespace) -> int:
    out = Path(args.replay)
    meta = _read_meta(out)
    records = read_records(out)
    policies = tuple(meta.get("policies") or ())
    summary = write_outputs(
        out,
        records,
        workflow=meta.get("name", "?"),
        dataset=meta.get("dataset", "?"),
        order=policies,
    )
    if args.train_router:
        _train(args, out, records, meta)
    if args.router:
        _print_sweep(args, out, records, Path(args.router))
    return _report(args, summary, policies)


def _read_meta(out: Path) -> dict[str, Any]:
    """OUT/eval.json, or {}: an evaluation run through the SDK (`Evaluation`) writes none."""
    path = out / META
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _train(
    args: argparse.Namespace,
    out: Path,
    records: Any,
    meta: dict[str, Any] | None = None,
) -> None:
    meta = _read_meta(out) if meta is None else meta
    if "cheap" not in meta or "strong" not in meta:
        raise UsageError(
            f"no {META} in {out} naming the cheap and strong profiles, which a router is "
            "trained for; `orchestrator eval WORKFLOW --dataset FILE` writes it"
        )
    inputs = read_inputs(out)
    embedding, vectors = None, None
    profile = feature_profile(args.router_features)
    if profile is not None:
        wanted = {i: inputs[i] for i in trainable(records, inputs)}
        embedded = _embed(args, meta, profile, wanted)
        embedding, vectors = (profile, embedded.model), embedded.vectors
    trained = train_from(
        records,
        inputs,
        cheap=meta["cheap"],
        strong=meta["strong"],
        reason_share=args.reason_share,
        embedding=embedding,
        vectors=vectors,
    )
    save_router(trained, Path(args.train_router))
    wide_console(stderr=True).print(
        f"router trained on {trained.items} items → {args.train_router} "
        f"(calibrated to send {args.reason_share:.0%} to reasoning)",
        markup=False,
        highlight=False,
    )


def _embed(
    args: argparse.Namespace, meta: dict[str, Any], profile: str, inputs: dict[str, str]
) -> Embedded:
    """The inputs' vectors from `profile` of the evaluated workflow, their cost said."""
    source = args.workflow or meta.get("workflow")
    if not source:
        raise UsageError(
            "embedding the inputs needs the workflow that defines the profile: give WORKFLOW"
        )
    embedded = drive(embed_inputs(load_workflow(source), profile, inputs))
    wide_console(stderr=True).print(
        f"embedded {len(inputs)} inputs with {profile} ({embedded.model}): "
        f"{embedded.input_tokens} tokens, {usd(embedded.cost_usd)}",
        markup=False,
        highlight=False,
    )
    return embedded


def _print_sweep(args: argparse.Namespace, out: Path, records: Any, router: Path) -> None:
    table = Table(title=f"router sweep: {router.name}")
    for column in ("target share", "threshold", "sent to reason", "accuracy", "cost/item", "PGR"):
        table.add_column(column, justify="right")
    trained, inputs = load_router(router), read_inputs(out)
    vectors = None
    if trained.embedding is not None:
        wanted = {i: inputs[i] for i in trainable(records, inputs)}
        vectors = _embed(args, _read_meta(out), trained.embedding.profile, wanted).vectors
    points = sweep(records, inputs, trained, vectors=vectors)
    for p in points:
        add_row(
            table,
            f"{p.share:.0%}",
            f"{p.threshold:.3f}",
            f"{p.routed_share:.0%}",
            f"{p.accuracy:.1%}",
            usd(p.cost_per_item_usd),
            "—" if p.pgr is None else f"{p.pgr:.2f}",
        )
    (out / "sweep.json").write_text(
        json.dumps([p.to_dict() for p in points], indent=2) + "\n", encoding="utf-8"
    )
    show(table)


def _report(args: argparse.Namespace, summary: dict[str, Any], policies: tuple[str, ...]) -> int:
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        show(summary_table(summary))
    checked = [p for p in policies if p not in (GENERATE, REASON)] or list(summary["policies"])
    failed = []
    for name in checked:
        metrics = summary["policies"][name]
        if args.min_quality is not None and metrics["accuracy"] < args.min_quality:
            failed.append(f"{name}: accuracy {metrics['accuracy']:.3f} < {args.min_quality}")
        if args.max_cost is not None and metrics["cost_usd"] > args.max_cost:
            failed.append(f"{name}: cost ${metrics['cost_usd']:.4f} > ${args.max_cost}")
    for line in failed:
        print(f"gate failed: {line}", file=sys.stderr)
    return 1 if failed else 0


def show(table: Table) -> None:
    """Print `table` on stdout; piped, as wide as it needs: at 120 columns rich would cut the
    summary's policy names and intervals to `all-gener…`, and a log has no width to fit."""
    console = wide_console()
    if not console.is_terminal:
        unbounded = console.options.update_width(10_000)
        console.width = max(console.width, console.measure(table, options=unbounded).maximum)
    console.print(table)


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"{summary['workflow']} · {summary['items']} items")
    columns = ("policy", "accuracy", "95% CI", "cost", "per item", "vs all-reason",
               "reason share", "PGR", "p50 s", "p95 s", "pareto")  # fmt: skip
    for column in columns:
        # Policy names are what the table is about: never cut them short.
        table.add_column(column, justify="left" if column == "policy" else "right",
                         no_wrap=column == "policy")  # fmt: skip
    for name, m in summary["policies"].items():
        lo, hi = m["ci95"]
        add_row(
            table,
            name,
            f"{m['accuracy']:.1%}",
            f"{lo:.1%}–{hi:.1%}",
            usd(m["cost_usd"]),
            usd(m["cost_per_item_usd"]),
            "—" if m["cost_vs_all_reason"] is None else f"{m['cost_vs_all_reason']:.0%}",
            "—" if m["reason_share"] is None else f"{m['reason_share']:.0%}",
            "—" if m["pgr"] is None else f"{m['pgr']:.2f}",
            f"{m['latency_p50_s']:.2f}",
            f"{m['latency_p95_s']:.2f}",
            "★" if m["pareto"] else "",
        )
    return table
