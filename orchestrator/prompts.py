"""Prompt templates from `prompts/`: plain text with `{{ name }}` slots, nothing executable.

A template file holds the instruction, then a line `=== user ===`, then the user message. Slots
are filled by plain substitution, never evaluated, so a template cannot run code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .errors import UsageError
from .models.base import Message

_SLOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SEPARATOR = "=== user ==="


@dataclass(frozen=True)
class Template:
    name: str
    instruction: str
    user: str

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(_SLOT.findall(self.instruction) + _SLOT.findall(self.user))

    def render(self, **values: str) -> list[Message]:
        missing = self.variables - values.keys()
        if missing:
            raise UsageError(f"prompt '{self.name}' needs {', '.join(sorted(missing))}")

        def fill(text: str) -> str:
            return _SLOT.sub(lambda m: values[m.group(1)], text).strip()

        messages = [Message("instruction", fill(self.instruction))] if self.instruction else []
        return [*messages, Message("user", fill(self.user))]


@cache
def load(name: str) -> Template:
    """A shipped template by name (`plan`, `solve_reason`, ...)."""
    try:
        text = resources.files("orchestrator._prompts").joinpath(f"{name}.md").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        raise UsageError(f"no prompt template named '{name}'") from None
    instruction, sep, user = text.partition(_SEPARATOR)
    if not sep:
        instruction, user = "", text
    return Template(name, instruction.strip(), user.strip())
