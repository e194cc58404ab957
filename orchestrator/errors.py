"""Every exception orchestrator raises on purpose.

```
OrchestratorError                 base; `str(e)` is one line a user can act on, never a secret
├── UserError                     the caller must change something; the CLI exits 2
│   ├── SpecError                 a workflow file is wrong (file, key path, line)
│   ├── UsageError                the SDK or CLI was called wrongly
│   ├── ExpressionError           a `when:` expression is invalid or failed on the state
│   ├── EndpointError             a model endpoint cannot serve this profile: unreachable,
│   │                             bad key, unknown model, a request it refuses (400/401/403/404)
│   ├── StorageError              the state directory or a database in it cannot be used:
│   │                             unwritable, not a directory, corrupt, or the disk is full
│   └── RunBusyError              another process is running this run right now
└── RunError                      the run itself did not complete; the CLI exits 1
    ├── ModelError                a model call failed after every retry
    │   ├── TruncatedError        the model hit its token cap with no visible answer
    │   └── StructuredOutputError the model's structured output never validated
    ├── DependencyFailed          a subproblem could not run: one it depends on failed
    ├── PlanError                 no usable plan (with `limits.on_plan_failure: fail`)
    └── BudgetExceededError       the next call could cost more than `limits.budget_usd` allows
```

Messages name the profile and model involved and say what to check next. They never contain an
API key: `redact` is applied to anything that came back from an endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "BudgetExceededError",
    "DependencyFailed",
    "EndpointError",
    "ExpressionError",
    "ModelError",
    "OrchestratorError",
    "PlanError",
    "RunBusyError",
    "RunError",
    "SpecError",
    "StorageError",
    "StructuredOutputError",
    "TruncatedError",
    "UsageError",
    "UserError",
    "redact",
]

# Shapes of common API keys; an endpoint's error text may echo the key back.
_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|(?:key|token)-[A-Za-z0-9_\-]{16,})")
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so `redact` removes it from every message, whatever its shape."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for secret in _known_secrets:
        text = text.replace(secret, "***")
    return _KEY_PATTERN.sub("***", text)


class OrchestratorError(Exception):
    """Base of every error orchestrator raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)

    @property
    def type(self) -> str:
        return type(self).__name__


class UserError(OrchestratorError):
    """Something the caller must change; the CLI exits 2."""

    exit_code = 2


class SpecError(UserError):
    """A workflow file is invalid. Carries where: file, key path and (where YAML gives it) line."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        path: Iterable[str | int] = (),
        line: int | None = None,
    ) -> None:
        self.file = file
        self.path = tuple(path)
        self.line = line
        self.detail = message
        where = []
        if file:
            where.append(file + (f":{line}" if line else ""))
        elif line:
            where.append(f"line {line}")
        if self.path:
            where.append(format_path(self.path))
        super().__init__(": ".join([*where, message]) if where else message)


class UsageError(UserError):
    """The SDK or CLI was called wrongly (missing input, unknown run id, ...)."""


class ExpressionError(UserError, ValueError):
    """An expression is invalid (at parse time) or failed on the given state (at evaluation)."""

    def __init__(self, reason: str, source: str = "") -> None:
        self.reason = reason
        self.source = source
        shown = source if len(source) <= 80 else source[:77] + "..."
        super().__init__(f"{reason} in expression {shown!r}" if source else reason)


class EndpointError(UserError):
    """A model endpoint refuses this profile's requests: fix the profile, key or URL."""

    def __init__(self, message: str, *, profile: str, model: str, status: int | None = None):
        self.profile = profile
        self.model = model
        self.status = status
        super().__init__(message)


class StorageError(UserError):
    """The state directory or a database file cannot be used; the message names the file."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(message)


class RunBusyError(UserError):
    """Another process holds this run's lease (it is running it now)."""


class RunError(OrchestratorError):
    """The run did not complete; the CLI exits 1 and the partial result is kept."""


class ModelError(RunError):
    """A model call failed after every retry."""

    def __init__(self, message: str, *, profile: str = "", model: str = ""):
        self.profile = profile
        self.model = model
        super().__init__(message)


class TruncatedError(ModelError):
    """The model spent its whole token cap (usually thinking) and returned no visible answer."""


class StructuredOutputError(ModelError):
    """The model's structured output did not validate, even after re-asking with the error."""


class DependencyFailed(RunError):
    """A subproblem cannot run because one it depends on failed."""


class PlanError(RunError):
    """No valid plan could be made and `limits.on_plan_failure` is `fail`."""


class BudgetExceededError(RunError):
    """The next call's worst case would take spending past `limits.budget_usd`."""


def format_path(path: Iterable[str | int]) -> str:
    """`("models", "thinker", "price")` -> `models.thinker.price`; list indices as `[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
