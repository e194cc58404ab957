"""The real `orchestrator` command in a subprocess, as a user runs it (plain output, no TTY)."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(
    *args: str, stdin: str | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `orchestrator ARGS` with this process's environment plus `env`; stdin from `stdin`.
    `timeout` is a guard against a hang, not a speed assertion."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "ORCHESTRATOR_PLAIN": "1", **env},
    )
