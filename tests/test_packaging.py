"""The wheel carries what a `pip install` user needs: graphs, prompts, datasets and the type
marker."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_graphs_and_prompts(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("orchestrator-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "orchestrator/py.typed" in names
    for path in (REPO / "graphs").glob("*.yaml"):
        assert f"orchestrator/_graphs/{path.name}" in names
    for path in (REPO / "prompts").glob("*.md"):
        assert f"orchestrator/_prompts/{path.name}" in names
    # `orchestrator eval --dataset arithmetic` reads the shipped sets from the package, and
    # their README and LICENSE travel with them (the rows are MIT-licensed data).
    datasets = REPO / "datasets"
    shipped = [*datasets.rglob("*.jsonl"), datasets / "README.md", datasets / "LICENSE"]
    assert {"smoke.jsonl", "arithmetic.jsonl"} <= {p.name for p in shipped}
    for path in shipped:
        assert f"orchestrator/_datasets/{path.relative_to(datasets).as_posix()}" in names
    # Every module of the package is in the wheel (a subpackage missing from pyproject's
    # `packages` list would be silently left out).
    for path in (REPO / "orchestrator").rglob("*.py"):
        assert path.relative_to(REPO).as_posix() in names
