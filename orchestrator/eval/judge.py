"""The `judge` scorer: a model on a named profile decides whether an answer is right. Its calls
go through the same wrappers as a run's (priced, recorded in its own ledger) and its cost is
reported apart from the policy's, so judging never counts against a policy."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import UsageError
from ..graph.structured import VERDICT_SCHEMA, ask_structured
from ..models.base import ChatModel, RequestParams
from ..models.budget import Budget
from ..models.connect import connect
from ..models.ledger import Ledger
from ..models.openai import ClientPool
from ..spec import WorkflowSpec
from .dataset import Item
from .scorers import Score, judge_messages, parse_scorer


class Judge:
    """Judges answers on `profile` (a scorer's `judge:PROFILE`, else the default given, else
    the workflow's generative profile)."""

    def __init__(
        self,
        spec: WorkflowSpec,
        profile: str | None,
        models: Mapping[str, ChatModel] | None,
        home: Path,
    ) -> None:
        self.spec = spec
        self.default = profile or spec.profile_for("generate")[0]
        self.plugged = dict(models or {})
        self.home = home

    async def score(self, item: Item, answer: str, scorer: str) -> tuple[Score, float]:
        """The verdict as a score, and what judging cost."""
        profile = parse_scorer(scorer).arg or self.default
        ledger = Ledger()
        pool = ClientPool()
        try:
            if profile not in self.spec.models:
                raise UsageError(f"the judge scorer names no profile of the workflow: {profile!r}")
            models = await connect(
                self.spec, self.plugged, pool=pool, budget=Budget(None), ledger=ledger,
                profiles=frozenset({profile}),
            )  # fmt: skip
            params = RequestParams(purpose="node", step="judge")
            messages = judge_messages(item, answer, item.extra.get("criteria"))
            verdict, _ = await ask_structured(
                models[profile], messages, params, VERDICT_SCHEMA, "judge"
            )
        finally:
            await pool.aclose()
        cost = sum(c.cost_usd for c in ledger.calls)
        passed = bool(verdict["passed"])
        return Score(1.0 if passed else 0.0, passed, str(verdict["feedback"])[:200]), cost
