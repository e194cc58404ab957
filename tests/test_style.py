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


def _referenced_types(hint: object) -> set[type]:
    """Classes named anywhere inside a type hint (unions, generics, Literal excluded)."""
    import typing

    if isinstance(hint, type):
        return {hint}
    if typing.get_origin(hint) is typing.Literal:
        return set()
    found: set[type] = set()
    for arg in typing.get_args(hint):
        found |= _referenced_types(arg)
    origin = typing.get_origin(hint)
    if isinstance(origin, type):
        found.add(origin)
    return found


def test_every_type_in_a_public_signature_is_exported() -> None:
    import inspect
    import typing

    exported = {getattr(orchestrator, name) for name in orchestrator.__all__}
    missing: dict[str, str] = {}
    for name in orchestrator.__all__:
        obj = getattr(orchestrator, name)
        if not inspect.isclass(obj) or not obj.__module__.startswith("orchestrator"):
            continue
        members = [obj] + [
            m
            for attr, m in vars(obj).items()
            if not attr.startswith("_") and (inspect.isfunction(m) or isinstance(m, property))
        ]
        for member in members:
            target = member.fget if isinstance(member, property) else member
            try:
                hints = typing.get_type_hints(target)
            except (NameError, TypeError):
                continue
            for hint in hints.values():
                for cls in _referenced_types(hint):
                    ours = cls.__module__.startswith("orchestrator")
                    if ours and not cls.__name__.startswith("_") and cls not in exported:
                        missing[cls.__name__] = f"{name}.{getattr(target, '__name__', '')}"
    assert missing == {}
