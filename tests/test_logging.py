"""orchestrator logs through `logging`: silent by default (a NullHandler on the `orchestrator`
logger), a debug line per call, a warning per retried attempt, info when a run starts and ends;
`--verbose`/`-v` (info) and `-vv` (debug) in the CLI. No secret ever reaches a log line, even
when the endpoint echoes the key back in its error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from orchestrator import Workflow, parse_workflow
from orchestrator.observe.logs import RedactingFormatter, verbose
from tests.clirun import run_cli
from tests.fakeserver import FakeOpenAI, Fault

# Not shaped like a key (no sk- prefix): only its registration as a secret can hide it.
SECRET = "plain-Secret-Value-42x"
WORKFLOW = """
name: logs
models:
  writer: {model: write-model, retries: 2, price: {input: 1, output: 2}}
"""
ECHO = {"error": {"message": f"overloaded; your key {SECRET} / Bearer {SECRET}"}}


def echoing_fault(server: FakeOpenAI) -> None:
    """The next request gets a 503 whose message echoes the key it was sent."""
    server.enqueue(Fault(status=503, body=ECHO, headers={"Retry-After": "0"}))


def test_the_package_logger_is_silent_by_default() -> None:
    logger = logging.getLogger("orchestrator")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)


async def test_calls_retries_and_the_run_are_logged_without_secrets(
    openai_env: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    echoing_fault(openai_env)
    caplog.set_level(logging.DEBUG, logger="orchestrator")
    workflow = Workflow(parse_workflow(WORKFLOW), home=tmp_path)
    result = await workflow.arun("What is 2+3?", run_id="logged")
    assert result.status == "completed"
    ours = [r for r in caplog.records if r.name.startswith("orchestrator")]
    by_level = {level: [r.getMessage() for r in ours if r.levelno == level]
                for level in (logging.DEBUG, logging.INFO, logging.WARNING)}  # fmt: skip
    calls = [m for m in by_level[logging.DEBUG] if m.startswith("call ")]
    assert len(calls) == len(result.calls) == 3  # plan, s1, synthesize
    assert "call plan on writer (write-model)" in calls[0] and "$" in calls[0]
    [warning] = by_level[logging.WARNING]
    assert warning.startswith("attempt 1/3 of plan on writer (write-model) failed: HTTP 503")
    assert "retrying in 0.0s" in warning
    assert by_level[logging.INFO][0] == "run logged of logs started"
    assert by_level[logging.INFO][-1] == "run logged completed"
    formatted = "\n".join(RedactingFormatter().format(r) for r in ours)
    assert SECRET not in formatted and SECRET not in caplog.text
    assert "***" in warning  # the echoed key was there, and was removed


def test_redacting_formatter_removes_secrets_in_arguments() -> None:
    from orchestrator.errors import register_secret

    register_secret(SECRET)
    record = logging.LogRecord("orchestrator.x", logging.INFO, __file__, 1, "key %s", (SECRET,),
                               None)  # fmt: skip
    assert RedactingFormatter("%(message)s").format(record) == "key ***"


def test_verbose_attaches_one_stderr_handler_at_the_level_asked() -> None:
    logger = logging.getLogger("orchestrator")
    level = logger.level
    assert verbose(0) is None
    for count, expected in ((1, logging.INFO), (2, logging.DEBUG), (3, logging.DEBUG)):
        handler = verbose(count)
        try:
            assert handler in logger.handlers and logger.level == expected
        finally:
            logger.removeHandler(handler)  # type: ignore[arg-type]
            logger.setLevel(level)


def cli_run(
    server: FakeOpenAI, tmp_path: Path, before: tuple[str, ...] = (), after: tuple[str, ...] = ()
) -> tuple[str, str]:
    """`orchestrator BEFORE run WF --input ... AFTER`, with an echoing 503 first."""
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    echoing_fault(server)
    args = (*before, "run", str(path), "--input", "2+3?", *after)
    out = run_cli(*args, OPENAI_API_KEY=SECRET)
    assert out.returncode == 0, out.stderr
    return out.stdout, out.stderr


def test_cli_vv_logs_debug_lines_and_no_secret(openai_env: FakeOpenAI, tmp_path: Path) -> None:
    stdout, stderr = cli_run(openai_env, tmp_path, ("-vv",))
    assert " DEBUG orchestrator.models.ledger: call plan on writer" in stderr
    assert " WARNING orchestrator.models.retry: attempt 1/3 of plan" in stderr
    assert " INFO orchestrator.run: run " in stderr
    assert SECRET not in stderr + stdout
    assert "Bearer ***" in stderr  # in the retry's detail, redacted
    assert "HTTP Request:" not in stderr  # httpx's and openai's loggers are left alone


def test_cli_v_after_the_command_logs_info_not_debug(
    openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    _, stderr = cli_run(openai_env, tmp_path, ("--verbose",), ("-v",))  # counted: -vv
    assert " DEBUG " in stderr
    _, stderr = cli_run(openai_env, tmp_path, after=("-v",))
    assert " INFO orchestrator.run: run " in stderr and " WARNING " in stderr
    assert " DEBUG " not in stderr
    assert SECRET not in stderr


def test_cli_without_verbose_logs_nothing(openai_env: FakeOpenAI, tmp_path: Path) -> None:
    _, stderr = cli_run(openai_env, tmp_path)
    assert " WARNING " not in stderr and " INFO " not in stderr
    assert stderr.count("retry 1/2") == 1  # the piped run's own retry line is still there
