"""Asking a person at the terminal to approve, edit or abort a plan (`--approve-plan`)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from typing import Any

from rich.table import Table
from rich.text import Text

from ..errors import UsageError
from ..result import RunResult
from ..resume import Abort, Answer, Approve, Edit
from .view import add_row, wide_console

QUESTION = "approve, edit or abort? [a/e/x] "


def plan_table(result: RunResult) -> Table:
    table = Table(title=Text(f"plan of run {result.run_id}"))
    for column in ("id", "kind", "profile (model)", "depends on", "task"):
        table.add_column(column)
    for s in result.subproblems:
        add_row(table, s.id, s.kind, f"{s.profile} ({s.model})", ", ".join(s.depends_on), s.task)
    return table


def ask_decision(result: RunResult) -> Approve | Edit | Abort:
    """Show the plan on stderr and read a decision from stdin; `edit` opens $EDITOR."""
    err = wide_console(stderr=True)
    err.print(plan_table(result))
    if result.plan_note:
        err.print(f"note: {result.plan_note}", highlight=False, markup=False)
    while True:
        err.print(QUESTION, end="")
        line = sys.stdin.readline()
        if not line:
            raise UsageError("--approve-plan needs a decision on stdin: approve, edit or abort")
        answer = line.strip().lower()
        if answer in ("a", "approve", "y", "yes"):
            return Approve()
        if answer in ("x", "abort", "n", "no"):
            return Abort()
        if answer in ("e", "edit"):
            return Edit(edit_plan(result))
        err.print(f"'{answer}' is not one of approve, edit, abort", markup=False)


def edit_plan(result: RunResult) -> list[dict[str, Any]]:
    """Open the plan as JSON in $EDITOR (default vi) and read it back."""
    plan = [s.step.to_dict() for s in result.subproblems]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plan, f, indent=2)
        path = f.name
    try:
        editor = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
        if subprocess.run([*editor, path]).returncode != 0:
            raise UsageError("the editor exited with an error; the plan was not changed")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    finally:
        os.unlink(path)
    try:
        edited = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the edited plan is not valid JSON: {exc}") from None
    if isinstance(edited, dict):
        edited = edited.get("subproblems")
    if not isinstance(edited, list):
        raise UsageError("the edited plan must be a list of subproblems")
    return edited


def ask_answer(result: RunResult) -> Answer:
    """A human node's question on stderr; the answer is the next line of stdin."""
    print(f"{result.question or 'input needed'}\n> ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise UsageError("the workflow asks a question, but stdin has no answer")
    return Answer(line.rstrip("\n"))
