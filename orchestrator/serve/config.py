"""What a server serves and how: the workflows by model name, its limits and its key.

Everything here is checked before the server binds a port, so a bad workflow file, two files
with one name, or a public address without a key end `orchestrator serve` with one line.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import UsageError
from ..runtime import Workflow
from ..specload import load_workflow

KEY_ENV = "ORCHESTRATOR_SERVE_KEY"
DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: a task is text; a bigger body is a mistake or an attack


@dataclass(frozen=True)
class Served:
    """One workflow behind the server: `name` is its model name (the file's stem)."""

    name: str
    workflow: Workflow
    path: Path
    """The resolved file it was loaded from; runs in the run log are matched to it by path."""


@dataclass(frozen=True)
class ServeConfig:
    """How the app behaves; `api_key` None means no key is asked for (loopback only)."""

    workflows: Mapping[str, Served]
    api_key: str | None = field(default=None, repr=False)
    max_concurrent_runs: int = 64
    max_body_bytes: int = DEFAULT_MAX_BODY
    resume_interrupted: bool = False
    retry_after_s: int = 1
    """What a 429 tells the client to wait before trying again."""

    def served_path(self, workflow_path: str | None) -> Served | None:
        """The served workflow a run-log row's workflow file is, if any."""
        if not workflow_path:
            return None
        resolved = Path(workflow_path).resolve()
        return next((s for s in self.workflows.values() if s.path == resolved), None)


def shipped_workflow_files() -> list[Path]:
    """The shipped workflows (graphs/): from the installed package, else the checkout."""
    found: dict[str, Path] = {}
    checkout = Path(__file__).resolve().parents[2] / "graphs"
    dirs = [checkout]
    with contextlib.suppress(ImportError, TypeError, ValueError):  # a checkout: not installed
        dirs.insert(0, Path(str(resources.files("orchestrator._graphs"))))
    for directory in dirs:
        if directory.is_dir():
            for file in sorted(directory.glob("*.yaml")):
                found.setdefault(file.stem, file)
    return [found[name] for name in sorted(found)]


def load_served(paths: Sequence[str]) -> dict[str, Served]:
    """Load every workflow file by model name; no paths: the shipped workflows.

    Raises SpecError (a bad file) or UsageError (two files with one stem) before any port
    is bound.
    """
    files = [Path(p) for p in paths] if paths else shipped_workflow_files()
    served: dict[str, Served] = {}
    for file in files:
        if not file.is_file():
            raise UsageError(f"no such workflow file: {file}")
        resolved = file.resolve()
        name = resolved.stem
        if name in served:
            raise UsageError(
                f"two workflows would both be served as model {name!r}: {served[name].path} "
                f"and {resolved}; rename one of the files"
            )
        served[name] = Served(name, Workflow(load_workflow(resolved)), resolved)
    if not served:
        raise UsageError("no workflows to serve: give one or more workflow YAML files")
    return served


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def resolve_key(flag: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """--api-key, else $ORCHESTRATOR_SERVE_KEY (set but empty counts as unset)."""
    key = flag if flag is not None else (environ.get(KEY_ENV) or None)
    if key is not None and not key.strip():
        raise UsageError(f"the API key is empty: give --api-key or set {KEY_ENV} to a secret")
    return key


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to serve anything but loopback without a key: anyone who can reach the port
    could otherwise spend the model budget."""
    if api_key is None and not is_loopback(host):
        raise UsageError(
            f"refusing to listen on {host} without an API key: anyone who can reach it could "
            f"run workflows at your cost; set {KEY_ENV} (or --api-key), or bind 127.0.0.1"
        )


def check_limits(max_concurrent_runs: int, max_body_bytes: int, port: int) -> None:
    if max_concurrent_runs < 1:
        raise UsageError("--max-concurrent-runs must be at least 1")
    if max_body_bytes < 1024:
        raise UsageError("--max-body-bytes must be at least 1024")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port number (0-65535)")
