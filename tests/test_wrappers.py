"""The model wrappers, unit by unit, on test models: ledger, budget, output cap, fallback."""

from __future__ import annotations

import pytest

from orchestrator import (
    BudgetExceededError,
    Message,
    ModelError,
    ModelResponse,
    RequestParams,
    TokenUsage,
    TruncatedError,
    parse_workflow,
)
from orchestrator.models.budget import Budget, BudgetModel
from orchestrator.models.cutoff import DEFAULT_BUDGETED_CAP, OutputCapModel, output_cap
from orchestrator.models.fallback import FallbackModel
from orchestrator.models.ledger import Ledger, LedgerModel
from orchestrator.models.pricing import input_token_bound, worst_case_usd
from orchestrator.spec import ModelProfile, Price
from orchestrator.testing import TestModel

PRICE = Price(input=2.0, output=8.0)
MESSAGES = [Message("user", "x" * 400)]


def metered(inner: TestModel, ledger: Ledger, budget: Budget, **profile: object) -> OutputCapModel:
    spec = ModelProfile(model="m", price=PRICE, **profile)  # type: ignore[arg-type]
    recorded = LedgerModel(inner, ledger, profile="p", model="m", price=PRICE)
    return OutputCapModel(BudgetModel(recorded, budget, PRICE), spec, budgeted=budget.limited)


async def test_ledger_prices_and_records_each_call_with_its_step() -> None:
    ledger = Ledger()
    usage = TokenUsage(1000, 200, 500, 100)
    model = LedgerModel(
        TestModel([ModelResponse("hi", usage=usage)]), ledger, profile="p", model="m", price=PRICE
    )
    response = await model.request(MESSAGES, RequestParams(purpose="solve", step="s7"))
    [call] = ledger.calls
    assert (call.profile, call.model, call.purpose, call.step) == ("p", "m", "solve", "s7")
    assert call.cost_usd == pytest.approx((800 * 2.0 + 200 * 2.0 + 500 * 8.0) / 1e6)
    assert response.call == call and call.started_at > 0
    assert ledger.spent("s7") == (usage, call.cost_usd)
    assert ledger.spent("other") == (TokenUsage(), 0.0)


async def test_estimated_usage_is_charged_its_worst_case() -> None:
    ledger = Ledger()
    guess = TokenUsage(10, 0, 5, estimated=True)
    model = LedgerModel(
        TestModel([ModelResponse("hi", usage=guess)]), ledger, profile="p", model="m", price=PRICE
    )
    await model.request(MESSAGES, RequestParams(max_output_tokens=100))
    worst = worst_case_usd(input_token_bound(MESSAGES, None), 100, PRICE)
    assert ledger.calls[0].usage.estimated and ledger.calls[0].cost_usd == pytest.approx(worst)


async def test_budget_refuses_a_call_whose_worst_case_does_not_fit() -> None:
    ledger = Ledger()
    inner = TestModel()
    worst = worst_case_usd(input_token_bound(MESSAGES, None), DEFAULT_BUDGETED_CAP, PRICE)
    budget = Budget(limit_usd=worst * 1.5)
    model = metered(inner, ledger, budget)
    await model.request(MESSAGES, RequestParams())
    assert budget.reserved_usd == pytest.approx(0.0)
    assert budget.spent_usd == pytest.approx(ledger.calls[0].cost_usd)
    budget.spent_usd = worst  # as if the first call had cost its worst case
    with pytest.raises(BudgetExceededError, match="budget"):
        await model.request(MESSAGES, RequestParams())
    assert len(inner.requests) == 1  # the refused call was never made


async def test_budgeted_generative_profiles_get_a_cap() -> None:
    profile = ModelProfile(model="m")
    assert output_cap(profile, budgeted=False) is None
    assert output_cap(profile, budgeted=True) == DEFAULT_BUDGETED_CAP
    inner = TestModel()
    await metered(inner, Ledger(), Budget(limit_usd=1.0)).request(MESSAGES, RequestParams())
    assert inner.requests[0][1].max_output_tokens == DEFAULT_BUDGETED_CAP


async def test_cut_off_reasoning_doubles_the_cap_and_every_call_is_in_the_ledger() -> None:
    ledger = Ledger()
    cut = ModelResponse("", finish_reason="length", usage=TokenUsage(10, 0, 100, 100))
    inner = TestModel([cut, cut, "finally"])
    model = metered(inner, ledger, Budget(None), reasoning=True, max_output_tokens=100)
    response = await model.request(MESSAGES, RequestParams(step="s1"))
    assert response.content == "finally"
    assert [p.max_output_tokens for _, p in inner.requests] == [100, 200, 400]
    assert [c.finish_reason for c in ledger.calls] == ["length", "length", "stop"]


async def test_cut_off_at_the_ceiling_raises_with_the_calls_already_recorded() -> None:
    ledger = Ledger()
    cut = ModelResponse("", finish_reason="length", usage=TokenUsage(10, 0, 100, 100))
    inner = TestModel([cut, cut])
    model = metered(
        inner, ledger, Budget(None), reasoning=True, max_output_tokens=100,
        max_output_tokens_ceiling=200,
    )  # fmt: skip
    with pytest.raises(TruncatedError, match="whole token cap"):
        await model.request(MESSAGES, RequestParams())
    assert len(ledger.calls) == 2 and all(c.cost_usd > 0 for c in ledger.calls)


async def test_a_tool_call_instead_of_text_is_a_model_error_but_billed() -> None:
    ledger = Ledger()
    tool = ModelResponse("", finish_reason="tool_calls", usage=TokenUsage(10, 0, 20))
    model = metered(TestModel([tool]), ledger, Budget(None))
    with pytest.raises(ModelError, match="tool call"):
        await model.request(MESSAGES, RequestParams())
    assert len(ledger.calls) == 1


async def test_fallback_after_a_model_error_and_a_restart_only_if_text_was_shown() -> None:
    shown: list[str] = []
    restarts: list[int] = []
    primary = TestModel([ModelError("down", profile="a", model="m")])
    fallback = TestModel(["from the fallback"])
    params = RequestParams(on_token=shown.append, on_restart=lambda: restarts.append(1))
    response = await FallbackModel(primary, fallback).request(MESSAGES, params)
    assert response.content == "from the fallback" and restarts == []
    assert "".join(shown) == "from the fallback"


async def test_fallback_does_not_hide_configuration_errors() -> None:
    from orchestrator import EndpointError

    primary = TestModel([EndpointError("bad key", profile="a", model="m")])
    fallback = TestModel(["never"])
    with pytest.raises(EndpointError):
        await FallbackModel(primary, fallback).request(MESSAGES, RequestParams())
    assert fallback.requests == []


def test_spec_fixture_is_valid() -> None:
    # The profile keys the helpers above pass exist in the spec.
    parse_workflow("name: t\nmodels: {m: {model: m, reasoning: true, max_output_tokens: 5}}")
