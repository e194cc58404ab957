"""Shared fixtures: ``fake_openai`` is a started FakeOpenAI that must see no invalid request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakeserver import FakeOpenAI
from tests.pg import PgServer, PostgresUnavailable, postgres_server


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
        assert server.schema_errors == [], "requests violated the OpenAI schema"


TEST_KEY = "sk-test-env-0000000000"


@pytest.fixture
def openai_env(
    fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> FakeOpenAI:
    """The scripted server as the default endpoint, a test key, and a fresh ORCHESTRATOR_HOME."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(tmp_path / "home"))
    return fake_openai


# --- PostgreSQL: one throwaway server per session, a fresh database per test (tests/pg.py) ---


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's ORCHESTRATOR_DATABASE_URL must not send every test's runs to their
    database: tests that want PostgreSQL set it from `pg_url`."""
    monkeypatch.delenv("ORCHESTRATOR_DATABASE_URL", raising=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        with postgres_server() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL tests need a server and none could be started: {exc}")


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a new, empty database on the session's server."""
    return pg_server.url(pg_server.create_database())
