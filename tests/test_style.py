"""House rules that keep the package legible: small modules, short functions, one public API."""

from __future__ import annotations

import ast
from pathlib import Path

import orchestrator

PACKAGE = Path(orchestrator.__file__).parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_too_long() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_too_long() -> None:
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = size
    assert long == {}


def test_public_api_is_sorted_and_complete() -> None:
    names = orchestrator.__all__
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all(hasattr(orchestrator, name) for name in names)


def test_docstrings_point_only_inside_the_repository() -> None:
    # DESIGN.md lives outside the repository; a reader of the package cannot follow it.
    offenders = [str(p.relative_to(PACKAGE)) for p in modules() if "DESIGN.md" in p.read_text()]
    assert offenders == []
