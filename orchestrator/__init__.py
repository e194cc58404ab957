"""orchestrator: plan a hard task, route each subproblem to a reasoning or a generative model,
solve independent parts in parallel, synthesize, and account for every token and cent.

    from orchestrator import Workflow
    result = Workflow.from_yaml("graphs/quickstart.yaml").run("Plan a 3-day trip to Lisbon")
    print(result.output, result.usage.cost_usd)
"""

from .builder import WorkflowBuilder
from .errors import (
    BudgetExceededError,
    EndpointError,
    ModelError,
    OrchestratorError,
    PlanError,
    RunError,
    SpecError,
    StructuredOutputError,
    TruncatedError,
    UsageError,
    UserError,
)
from .events import (
    AnswerToken,
    CallFinished,
    Event,
    PlanReady,
    RunFinished,
    SubproblemFinished,
    SubproblemStarted,
)
from .models.base import CallRecord, ChatModel, Message, ModelResponse, TokenUsage
from .result import ProfileUsage, RunResult, SubproblemResult, Usage
from .runtime import Workflow
from .spec import WorkflowSpec, load_workflow, parse_workflow, workflow_json_schema

__all__ = [
    "AnswerToken",
    "BudgetExceededError",
    "CallFinished",
    "CallRecord",
    "ChatModel",
    "EndpointError",
    "Event",
    "Message",
    "ModelError",
    "ModelResponse",
    "OrchestratorError",
    "PlanError",
    "PlanReady",
    "ProfileUsage",
    "RunError",
    "RunFinished",
    "RunResult",
    "SpecError",
    "StructuredOutputError",
    "SubproblemFinished",
    "SubproblemResult",
    "SubproblemStarted",
    "TokenUsage",
    "TruncatedError",
    "Usage",
    "UsageError",
    "UserError",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowSpec",
    "load_workflow",
    "parse_workflow",
    "workflow_json_schema",
]
