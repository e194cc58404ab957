"""Prompt templates: plain text with `{{ name }}` slots, nothing executable.

A template holds the instruction, then a line `=== user ===`, then the user message. A slot is a
state key, optionally followed by keys into it (`{{ verdict.feedback }}`). Slots are filled by
plain substitution, never evaluated, and a filled-in value is never expanded again, so a
template cannot run code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any

from .errors import UsageError
from .models.base import Message

_SLOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
_SEPARATOR = "=== user ==="


def show(value: Any) -> str:
    """A state value as prompt text: strings as they are, a list of strings one after another,
    everything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "\n\n".join(value)  # e.g. a map node's answers, one after another
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


@dataclass(frozen=True)
class Template:
    name: str
    instruction: str
    user: str

    @cached_property
    def variables(self) -> frozenset[str]:
        """The state keys the template reads (the first part of each slot); found once, as
        every render checks them."""
        slots = _SLOT.findall(self.instruction) + _SLOT.findall(self.user)
        return frozenset(slot.split(".")[0] for slot in slots)

    def render(self, values: Mapping[str, Any] | None = None, **more: Any) -> list[Message]:
        scope = {**(values or {}), **more}
        missing = self.variables - scope.keys()
        if missing:
            raise UsageError(f"prompt '{self.name}' needs {', '.join(sorted(missing))}")

        def lookup(match: re.Match[str]) -> str:
            root, *keys = match.group(1).split(".")
            value = scope[root]
            for key in keys:
                value = value.get(key) if isinstance(value, Mapping) else None
            return show(value)

        def fill(text: str) -> str:
            return _SLOT.sub(lookup, text).strip()

        messages = [Message("instruction", fill(self.instruction))] if self.instruction else []
        return [*messages, Message("user", fill(self.user))]


def parse(name: str, text: str) -> Template:
    instruction, sep, user = text.partition(_SEPARATOR)
    if not sep:
        instruction, user = "", text
    return Template(name, instruction.strip(), user.strip())


@cache
def load(name: str) -> Template:
    """A shipped template by name (`plan`, `solve_reason`, ...)."""
    try:
        text = resources.files("orchestrator._prompts").joinpath(f"{name}.md").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        raise UsageError(f"no prompt template named '{name}' in prompts/") from None
    return parse(name, text)
