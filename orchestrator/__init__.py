"""orchestrator: plan a hard task, route each subproblem to a reasoning or a generative model,
solve independent parts in parallel, synthesize, and account for every token and cent.

    from orchestrator import Workflow
    result = Workflow.from_yaml("graphs/quickstart.yaml").run("Plan a 3-day trip to Lisbon")
    print(result.output, result.usage.cost_usd)

Test models for your own tests are in `orchestrator.testing` (`TestModel`, `FunctionModel`).

orchestrator logs through `logging` under the `orchestrator` logger, silent by default (a
NullHandler): a debug line per call, a warning per retried attempt, run start and finish at info.
"""

import logging

from .batch import BatchTask, TaskResult
from .builder import WorkflowBuilder
from .errors import (
    BudgetExceededError,
    DependencyFailed,
    EndpointError,
    ExpressionError,
    ModelError,
    OrchestratorError,
    PlanError,
    RunBusyError,
    RunError,
    SpecError,
    StorageError,
    StructuredOutputError,
    TruncatedError,
    UsageError,
    UserError,
)
from .events import (
    AnswerRestarted,
    AnswerToken,
    CallFinished,
    CallRetried,
    Event,
    PlanReady,
    RunFinished,
    SubproblemFinished,
    SubproblemStarted,
)
from .graphspec import EdgeSpec, GraphSpec, NodeSpec
from .models.base import (
    CallPurpose,
    CallRecord,
    ChatModel,
    Message,
    MessageRole,
    ModelResponse,
    RequestParams,
    ResponseFormat,
    TokenUsage,
)
from .models.langchain import LangChainModel
from .models.retry import FailedAttempt, RetryReason
from .models.wrapper import WrapperModel
from .policyspec import (
    CascadePolicy,
    FixedPolicy,
    LabelPolicy,
    RouterPolicy,
    SelfConsistencyPolicy,
)
from .result import Counterfactual, ErrorInfo, ProfileUsage, RunResult, Status, Usage
from .resume import Abort, Answer, Approve, Decision, Edit, Pause, PlanReview, Question
from .runnable import WorkflowInput, WorkflowRunnable
from .runtime import Workflow
from .spec import Limits, ModelProfile, Price, Role, Roles, WorkflowSpec
from .specload import load_workflow, parse_workflow, workflow_json_schema
from .steps import (
    CheckResult,
    Kind,
    Route,
    Step,
    StepKind,
    StepResult,
    StepStatus,
    SubproblemResult,
)
from .tracing import TracerProviderLike, TracingOption, flush_traces

__all__ = [
    "Abort",
    "Answer",
    "AnswerRestarted",
    "AnswerToken",
    "Approve",
    "BatchTask",
    "BudgetExceededError",
    "CallFinished",
    "CallPurpose",
    "CallRecord",
    "CallRetried",
    "CascadePolicy",
    "ChatModel",
    "CheckResult",
    "Counterfactual",
    "Decision",
    "DependencyFailed",
    "EdgeSpec",
    "Edit",
    "EndpointError",
    "ErrorInfo",
    "Event",
    "ExpressionError",
    "FailedAttempt",
    "FixedPolicy",
    "GraphSpec",
    "Kind",
    "LabelPolicy",
    "LangChainModel",
    "Limits",
    "Message",
    "MessageRole",
    "ModelError",
    "ModelProfile",
    "ModelResponse",
    "NodeSpec",
    "OrchestratorError",
    "Pause",
    "PlanError",
    "PlanReady",
    "PlanReview",
    "Price",
    "ProfileUsage",
    "Question",
    "RequestParams",
    "ResponseFormat",
    "RetryReason",
    "Role",
    "Roles",
    "Route",
    "RouterPolicy",
    "RunBusyError",
    "RunError",
    "RunFinished",
    "RunResult",
    "SelfConsistencyPolicy",
    "SpecError",
    "Status",
    "Step",
    "StepKind",
    "StepResult",
    "StepStatus",
    "StorageError",
    "StructuredOutputError",
    "SubproblemFinished",
    "SubproblemResult",
    "SubproblemStarted",
    "TaskResult",
    "TokenUsage",
    "TracerProviderLike",
    "TracingOption",
    "TruncatedError",
    "Usage",
    "UsageError",
    "UserError",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowInput",
    "WorkflowRunnable",
    "WorkflowSpec",
    "WrapperModel",
    "flush_traces",
    "load_workflow",
    "parse_workflow",
    "workflow_json_schema",
]

# A library's logger is silent unless the application configures logging (the CLI: --verbose).
logging.getLogger(__name__).addHandler(logging.NullHandler())
