"""Shared fixtures: ``fake_openai`` is a started FakeOpenAI that must see no invalid request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakeserver import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.schema_errors == [], "requests violated the OpenAI schema"
