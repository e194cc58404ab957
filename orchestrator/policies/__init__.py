"""Policies: per step, which role answers, how many samples, which check, when to escalate.

A policy wraps, it does not fork: it calls models through the step's `respond`, so budgets,
the ledger, retries and the cache apply to every sample and every check alike, and it records
each decision on the step's `Route`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..policyspec import (
    CascadePolicy,
    FixedPolicy,
    LabelPolicy,
    RouterPolicy,
    SelfConsistencyPolicy,
)
from .base import Ask, Policy, Respond, Routed, Said
from .cascade import Cascade
from .checks import make_check
from .label import Fixed, Label
from .sampling import SelfConsistency

if TYPE_CHECKING:
    from ..graph.context import RunContext

__all__ = ["Ask", "Policy", "Respond", "Routed", "Said", "make_policy"]


def make_policy(name: str, ctx: RunContext) -> Policy:
    """The policy the workflow calls `name`, ready for this run."""
    spec = ctx.spec.policy_named(name)
    if isinstance(spec, LabelPolicy):
        return Label(name)
    if isinstance(spec, FixedPolicy):
        return Fixed(name, spec)
    if isinstance(spec, CascadePolicy):
        return Cascade(name, spec, make_check(spec, ctx))
    if isinstance(spec, SelfConsistencyPolicy):
        return SelfConsistency(name, spec)
    assert isinstance(spec, RouterPolicy)
    from .router import LearnedRouter

    return LearnedRouter.load(name, spec, ctx)
