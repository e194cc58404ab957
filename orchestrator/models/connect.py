"""From a spec's profiles to ready models: each endpoint connected, each wrapped the same way.

Per profile, from the outside in:

    FallbackModel      (if the profile has `fallback`: that profile's own chain)
    OutputCapModel     the cap to send; cut-off reasoning asked again with a larger cap
    BudgetModel        the call's worst case reserved against `limits.budget_usd`
    LedgerModel        every billed call priced and recorded as it happens
    CachedModel        (if the profile caches) an identical request answered from the cache
    the model itself   OpenAIChatModel for an endpoint (the embedded server included), a
                       LangChainModel for `provider: langchain`, or a ChatModel the
                       application plugged in with Workflow(spec, models=...)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ..spec import WorkflowSpec
from ..storage.base import ResponseCache
from . import local
from .base import ChatModel
from .budget import Budget, BudgetModel
from .cache import CachedModel
from .cutoff import OutputCapModel
from .fallback import FallbackModel
from .langchain import cache_identity, connect_langchain
from .ledger import Ledger, LedgerModel
from .openai import ClientPool, OpenAIChatModel, resolve_endpoint


async def endpoint_model(spec: WorkflowSpec, name: str, pool: ClientPool) -> ChatModel:
    """The HTTP model for profile `name`; starts the embedded server for `provider: local`."""
    profile = spec.models[name]
    if profile.provider == "local":
        base_url = await asyncio.to_thread(local.ensure_started)
        return OpenAIChatModel(name, profile, pool.get(base_url, "local"), base_url)
    if profile.provider == "langchain":
        return connect_langchain(name, profile)
    base_url, key = resolve_endpoint(name, profile)
    return OpenAIChatModel(name, profile, pool.get(base_url, key), base_url)


def cache_endpoint(spec: WorkflowSpec, name: str, model: ChatModel, plugged: bool) -> str:
    """Where profile `name`'s answers come from, as the cache key names it."""
    if plugged:
        return f"profile:{name}"
    if spec.models[name].provider == "local":
        return "local"  # the embedded server's port changes with every process
    if spec.models[name].provider == "langchain":
        return cache_identity(spec.models[name])
    assert isinstance(model, OpenAIChatModel)
    return model.base_url


async def connect(
    spec: WorkflowSpec,
    plugged: Mapping[str, ChatModel],
    *,
    pool: ClientPool,
    budget: Budget,
    ledger: Ledger,
    cache: ResponseCache | None = None,
    cache_all: bool = False,
    cache_salt: str = "",
    profiles: frozenset[str] | None = None,
) -> dict[str, ChatModel]:
    """A wrapped model for every profile a run can use (`profiles`, default the spec's used
    ones); an unused profile needs no key.

    With `cache`, profiles with `cache: true` (every profile, with `cache_all`) answer
    identical requests from it; it is checked first, so a broken cache costs no call.
    """
    metered: dict[str, ChatModel] = {}
    checked = False
    wanted = spec.used_profiles() if profiles is None else profiles
    for name in sorted(wanted | (plugged.keys() & spec.models.keys())):
        profile = spec.models[name]
        inner = plugged.get(name) or await endpoint_model(spec, name, pool)
        if cache is not None and (cache_all or profile.cache):
            if not checked:
                await cache.check()
                checked = True
            endpoint = cache_endpoint(spec, name, inner, name in plugged)
            inner = CachedModel(inner, cache, endpoint=endpoint, profile=profile, salt=cache_salt)
        recorded = LedgerModel(
            inner, ledger, profile=name, model=profile.model, price=profile.price
        )
        budgeted = BudgetModel(recorded, budget, profile.price)
        metered[name] = OutputCapModel(budgeted, profile, budgeted=budget.limited)
    chained: dict[str, ChatModel] = {}

    def with_fallback(name: str) -> ChatModel:
        # a -> b -> c: a falls back to b, which falls back to c (the spec refuses loops)
        if name not in chained:
            fallback = spec.models[name].fallback
            chained[name] = (
                FallbackModel(metered[name], with_fallback(fallback))
                if fallback and fallback in metered
                else metered[name]
            )
        return chained[name]

    return {name: with_fallback(name) for name in metered}
