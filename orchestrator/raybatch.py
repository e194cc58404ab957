"""`orchestrator batch --ray [ADDRESS]`: each task a Ray task, every worker on one storage.

The driver keeps what a batch keeps in one process (the queue, the results file, the progress,
the budget); each task runs in a Ray worker as an ordinary run under its batch run id. A worker
that dies mid-task (a crashed or killed process, a lost node) has its task retried by Ray on
another worker, which finds the run in the shared storage and resumes it from its checkpoint:
nothing that had finished is paid for again. Workers on several machines must share one
database (`ORCHESTRATOR_DATABASE_URL`); on one machine the state directory is shared as is.

The batch budget cannot be one object in many processes, so the driver hands each task an
allowance out of what remains (its share of the concurrency), reserved until the task returns:
the allowances never add up to more than the budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .batch import BATCH_SCOPE, Batch, BatchTask, TaskResult, TaskRunner, drive, prior
from .errors import OrchestratorError, UsageError
from .models.budget import Budget
from .result import ErrorInfo, RunResult
from .spec import WorkflowSpec
from .storage import open_storage

RETRIES = 3  # a task whose worker died is run again (resumed) up to this many times
PASSED_ENV = ("ORCHESTRATOR_HOME", "ORCHESTRATOR_DATABASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY")
"""What workers need from the driver's environment: where state is, the default endpoint."""
LOOPBACK = ("127.0.0.1", "localhost", "local", "auto")


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back for one task."""

    result: RunResult | None
    error: ErrorInfo | None
    paid_before: float
    refused: bool  # the task's allowance of the batch budget refused a call


def ray_runner(address: str | None) -> Callable[[Batch], TaskRunner]:
    """The runner for `Batch(runner=...)`: Ray at `address` (None: a local instance)."""

    def make(batch: Batch) -> TaskRunner:
        return RayRunner(batch, address)

    return make


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--ray needs Ray: pip install 'orchestrator[ray]' (or pip install ray)"
        ) from None
    return ray


class RayRunner:
    def __init__(self, batch: Batch, address: str | None) -> None:
        ray = _ray()
        remote_state = os.environ.get("ORCHESTRATOR_DATABASE_URL")
        if address and address.split(":")[0] not in LOOPBACK and not remote_state:
            raise UsageError(
                f"--ray {address}: workers on other machines cannot share this machine's "
                "state directory; set ORCHESTRATOR_DATABASE_URL to a PostgreSQL database "
                "they all reach"
            )
        if not ray.is_initialized():
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        self.ray = ray
        self.batch = batch
        self.task = ray.remote(max_retries=RETRIES, retry_exceptions=False)(run_task)
        self.env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        self.env.setdefault("ORCHESTRATOR_HOME", str(batch.workflow.home))

    async def __call__(self, task: BatchTask, run_id: str) -> TaskResult:
        budget = self.batch.budget
        allowance = self._allowance(budget)
        wf = self.batch.workflow
        ref = self.task.remote(wf.spec, wf.cache, task.input, run_id, allowance, self.env)
        actual = 0.0
        try:
            outcome: Outcome = await ref
        except self.ray.exceptions.RayError as exc:
            # The worker died on every try, or the cluster went away: the run stays
            # resumable in storage, and a rerun of the batch continues it.
            cause = type(exc).__name__.removesuffix("Error")
            message = f"the Ray worker failed ({cause}) after {RETRIES + 1} tries"
            return TaskResult(task, run_id, None, ErrorInfo("RayError", message))
        finally:
            if allowance is not None:
                budget.settle(allowance, 0.0)
        if outcome.result is not None:
            actual = outcome.result.usage.cost_usd - outcome.paid_before
        budget.spent_usd += actual + outcome.paid_before
        budget.refused = budget.refused or outcome.refused
        return TaskResult(task, run_id, outcome.result, outcome.error, outcome.paid_before)

    def _allowance(self, budget: Budget) -> float | None:
        """This task's share of what remains of the batch budget, reserved until it returns."""
        if budget.limit_usd is None:
            return None
        left = budget.limit_usd - budget.spent_usd - budget.reserved_usd
        allowance = max(left, 0.0) / self.batch.concurrency
        budget.reserved_usd += allowance
        return allowance


def run_task(
    spec: WorkflowSpec,
    cache: bool,
    task: str,
    run_id: str,
    allowance: float | None,
    env: Mapping[str, str],
) -> Outcome:
    """In a Ray worker: the task's run, started or resumed (a retry after a worker died)."""
    os.environ.update(env)
    workflow = _workflow(spec, cache, env["ORCHESTRATOR_HOME"])
    return asyncio.run(_run_task(workflow, task, run_id, allowance))


async def _run_task(workflow: Any, task: str, run_id: str, allowance: float | None) -> Outcome:
    parent = None if allowance is None else Budget(allowance, scope=BATCH_SCOPE)
    paid = 0.0
    try:
        async with open_storage(workflow.home) as storage:
            row, paid = await prior(storage, run_id)
        result = await drive(workflow, task, run_id, row, parent)
    except OrchestratorError as exc:
        return Outcome(None, ErrorInfo(type(exc).__name__, exc.message), paid, False)
    return Outcome(result, None, paid, parent is not None and parent.refused)


_workflows: dict[str, Any] = {}


def _workflow(spec: WorkflowSpec, cache: bool, home: str) -> Any:
    """One Workflow per spec in a worker: its graph is compiled once, not per task."""
    from .runtime import Workflow

    key = hashlib.sha256(f"{spec.model_dump_json()}\x1f{cache}\x1f{home}".encode()).hexdigest()
    if key not in _workflows:
        _workflows[key] = Workflow(spec, home=Path(home), cache=cache)
    return _workflows[key]
