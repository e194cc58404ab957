"""Running an answer's code against an item's tests, for the `code` scorer.

`run_code(answer, tests)` takes the answer's last fenced ```python block (else its last bare
``` block, else the whole answer) as `solution.py`, and the tests (plain Python with asserts,
run with every public name of the solution in scope) as `test_solution.py`, in a fresh temporary
directory, and runs the tests with `python -I` in a subprocess:

- a wall-clock timeout (10 s by default); on expiry the whole process group is killed;
- an environment that is empty but for PATH and proxy variables pointing at a closed port
  (so no API key or token of ours reaches the code, and well-behaved HTTP clients fail fast);
- the working directory is the temporary directory, removed afterwards;
- resource limits: address space (1 GiB), CPU seconds (the timeout, rounded up, plus one),
  file size (16 MiB) and no core dumps;
- on Linux, no network at all when `unshare -rn` works here (`network_isolated()`): the code
  runs in a new network namespace with no interfaces up, so even 127.0.0.1 is unreachable.
  Where it does not (not Linux, no unprivileged user namespaces, some containers), the code
  runs with the machine's network.

It passes when the tests exit with status 0; the detail is the last lines of stderr.

This is NOT a security sandbox. The code runs as the same user, can read every file that user
can read and write wherever the user can, and can start processes that leave the process group.
Only run datasets and models you would let run code on this machine; use a container or a VM
for anything else.

The limits are set by a small launcher that then execs the interpreter that runs the tests,
not by a `preexec_fn`: the eval runs many items at once, and `preexec_fn` is documented as
unsafe (it can deadlock the child) in a process with threads.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import BinaryIO

__all__ = ["DEFAULT_MEMORY_MB", "DEFAULT_TIMEOUT_S", "extract_code", "network_isolated", "run_code"]

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 1024
FILE_LIMIT_BYTES = 16 << 20
STDERR_LINES = 6
_DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there
_FENCE = re.compile(r"```[ \t]*([^\n`]*)\n(.*?)```", re.S)
_PYTHON_TAGS = ("python", "python3", "py")

# Runs first in the child: limit it, then become the interpreter that runs the tests.
_LAUNCHER = """
import os, sys
try:
    import resource
except ImportError:
    resource = None
if resource is not None:
    memory, cpu, size = (int(a) for a in sys.argv[1:4])
    for name, value in (("RLIMIT_AS", memory), ("RLIMIT_CPU", cpu),
                        ("RLIMIT_FSIZE", size), ("RLIMIT_CORE", 0)):
        if hasattr(resource, name):
            resource.setrlimit(getattr(resource, name), (value, value))
os.execv(sys.executable, [sys.executable, "-I", "-c", sys.argv[4]])
"""

# Runs the tests with every public name of the solution in scope. -I leaves the current
# directory off sys.path, so it is put back; the tests are compiled under their own file name,
# so a failing assert is reported at its own line.
_RUNNER = """
import sys
sys.path.insert(0, "")
scope = {"__name__": "__main__"}
exec("from solution import *", scope)
with open("test_solution.py", encoding="utf-8") as file:
    exec(compile(file.read(), "test_solution.py", "exec"), scope)
"""


def extract_code(answer: str) -> str:
    """The code in `answer`: its last ```python block, else its last ``` block without a
    language, else the whole answer."""
    blocks = [(tag.strip().lower(), body) for tag, body in _FENCE.findall(answer)]
    for wanted in (_PYTHON_TAGS, ("",)):
        found = [body for tag, body in blocks if tag in wanted]
        if found:
            return found[-1]
    return answer


@cache
def network_isolated() -> bool:
    """Whether code can run without a network here (`unshare -rn` works)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(
            ["unshare", "-rn", "true"], capture_output=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _environment() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = _DEAD_PROXY
    return env


def run_code(
    answer: str,
    tests: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
) -> tuple[bool, str]:
    """Run the answer's code against `tests`: (passed, detail). Never raises for what the
    code does; see the module docstring for what is, and is not, contained."""
    with tempfile.TemporaryDirectory(prefix="orchestrator-code-") as tmp:
        folder = Path(tmp)
        (folder / "solution.py").write_text(extract_code(answer), encoding="utf-8")
        (folder / "test_solution.py").write_text(tests, encoding="utf-8")
        limits = [str(memory_mb << 20), str(math.ceil(timeout_s) + 1), str(FILE_LIMIT_BYTES)]
        argv = [sys.executable, "-I", "-c", _LAUNCHER, *limits, _RUNNER]
        if network_isolated():
            argv = ["unshare", "-rn", *argv]
        # stderr goes to a file, bounded by the file size limit, not to a pipe held in memory
        with open(folder / "stderr.txt", "w+b") as err:
            code = _run(argv, folder, err, timeout_s)
            err.seek(0)
            tail = _tail(err.read().decode("utf-8", "replace"), folder)
    if code is None:
        return False, f"timed out after {timeout_s:g} s" + (f": {tail}" if tail else "")
    if code == 0:
        return True, tail
    return False, tail or _status(code)


def _run(argv: list[str], cwd: Path, err: BinaryIO, timeout_s: float) -> int | None:
    """The exit status, or None on timeout; the process group is always killed after."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=err,
        start_new_session=True,  # its own process group, so a timeout kills its children too
    )
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    finally:
        _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(process.pid, signal.SIGKILL)
    else:
        process.kill()
    process.wait()


def _tail(text: str, folder: Path) -> str:
    """The last lines of stderr, without the temporary directory's name (so a detail is the
    same from one run to the next)."""
    for prefix in {str(folder.resolve()), str(folder)}:
        text = text.replace(prefix + os.sep, "")
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-STDERR_LINES:])[-600:]


def _status(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)"}.get(name, "")
        return f"killed by {name}{why}"
    return f"exit status {code}"
