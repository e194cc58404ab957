"""Reliability: what is retried and how, what fails at once and how it reads, secrets, safe input.

Unit-level tests drive `OpenAIChatModel` (real openai client, `ClientPool`) against `FakeOpenAI`;
end-to-end tests run the real CLI in a subprocess with ORCHESTRATOR_PLAIN=1.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.errors import EndpointError, ModelError, OrchestratorError, SpecError
from orchestrator.models.base import Message, ModelResponse, RequestParams
from orchestrator.models.openai import ClientPool, OpenAIChatModel
from orchestrator.prompts import Template
from orchestrator.runtime import Workflow
from orchestrator.specload import load_workflow, parse_workflow
from tests.fakeserver import FakeOpenAI, Fault, Reply

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-VERYSECRET-987654321"
LITERAL = "sk-lit-ANOTHERSECRET-123456"
MODEL = "gpt-4o-mini"
TASK = "Name one prime number."
MESSAGES = [Message("instruction", "Be brief."), Message("user", TASK)]
RA0 = {"Retry-After": "0"}


# --- helpers ---------------------------------------------------------------------------------


async def ask(server: FakeOpenAI, extra: str = "", key: str = KEY) -> ModelResponse:
    """One `request` through a profile `p` (model MODEL) plus `extra` YAML lines."""
    spec = parse_workflow(f"name: t\nmodels:\n  p:\n    model: {MODEL}\n{extra}")
    pool = ClientPool()
    try:
        client = pool.get(server.base_url, key)
        model = OpenAIChatModel("p", spec.models["p"], client, server.base_url)
        return await model.request(MESSAGES, RequestParams())
    finally:
        await pool.aclose()


def write_workflow(tmp_path: Path, extra: str = "", api_key: str = "") -> Path:
    path = tmp_path / "wf.yaml"
    key_line = f"    api_key: {api_key}\n" if api_key else ""
    path.write_text(f"name: rel\nmodels:\n  p:\n    model: {MODEL}\n{key_line}{extra}")
    return path


def run_cli(
    home: Path, *args: str, base_url: str, key: str | None = KEY
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "ORCHESTRATOR_")) and k not in ("COLUMNS", "LINES")
    }
    env.update(OPENAI_BASE_URL=base_url, ORCHESTRATOR_HOME=str(home), ORCHESTRATOR_PLAIN="1")
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    # A piped run's "retry ..." lines tell how it got there; the error itself is one line.
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("retry ")]
    assert len(lines) == 1, f"expected a one-line error, got {proc.stderr!r}"
    return lines[0]


# --- 1. transient failures are retried -------------------------------------------------------

TRANSIENT = [
    *(
        pytest.param(Fault(status=s, headers=RA0), f"fault:{s}", id=str(s))
        for s in (408, 409, 429, 500, 502, 503, 504)
    ),
    pytest.param(Fault(drop=True), "drop", id="drop"),
    pytest.param(Fault(malformed=True), "malformed", id="malformed-html"),
    pytest.param(
        Fault(malformed=True, headers={"Content-Type": "application/json"}),
        "malformed",
        id="malformed-json",
    ),
]


@pytest.mark.parametrize(("fault", "outcome"), TRANSIENT)
async def test_transient_failure_is_retried(
    fake_openai: FakeOpenAI, fault: Fault, outcome: str
) -> None:
    fake_openai.enqueue(fault)
    response = await ask(fake_openai)
    assert response.content.startswith(f"[{MODEL}] answer")
    assert [r.outcome for r in fake_openai.requests] == [outcome, "ok"]


async def test_timeout_is_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(content="too late", latency=1.0))
    response = await ask(fake_openai, "    timeout_s: 0.3\n")
    assert response.content.startswith(f"[{MODEL}] answer")  # the second attempt's reply
    first, second = fake_openai.requests
    assert second.started - first.started >= 0.29 and second.outcome == "ok"


@pytest.mark.slow
def test_cli_survives_transient_failures(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    fake_openai.enqueue(Fault(status=503, headers=RA0))
    fake_openai.enqueue(Fault(drop=True))
    fake_openai.enqueue(Fault(malformed=True, headers={"Content-Type": "application/json"}))
    proc = run_cli(
        tmp_path,
        "run",
        str(write_workflow(tmp_path)),
        "--input",
        TASK,
        "--json",
        base_url=fake_openai.base_url,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "completed"
    assert [r.outcome for r in fake_openai.requests][:4] == ["fault:503", "drop", "malformed", "ok"]


# --- 2. permanent failures are not retried ---------------------------------------------------

# What the message must tell the user to check, per status.
HINTS = {
    400: ["check"],
    401: ["API key"],
    403: ["API key"],
    404: ["check", "model"],
    422: ["check"],
}


@pytest.mark.parametrize("status", sorted(HINTS))
async def test_permanent_error_is_not_retried(fake_openai: FakeOpenAI, status: int) -> None:
    for _ in range(3):
        fake_openai.enqueue(Fault(status=status, headers=RA0))
    with pytest.raises(EndpointError) as info:
        await ask(fake_openai)
    assert [r.outcome for r in fake_openai.requests] == [f"fault:{status}"]
    message = str(info.value)
    assert "'p'" in message and MODEL in message, message
    for hint in HINTS[status]:
        assert hint in message, (hint, message)


@pytest.mark.parametrize("status", sorted(HINTS))
def test_cli_permanent_error_exits_2(fake_openai: FakeOpenAI, tmp_path: Path, status: int) -> None:
    for _ in range(3):
        fake_openai.enqueue(Fault(status=status, headers=RA0))
    proc = run_cli(
        tmp_path,
        "run",
        str(write_workflow(tmp_path)),
        "--input",
        TASK,
        base_url=fake_openai.base_url,
    )
    line = one_line_error(proc, 2)
    assert "'p'" in line and MODEL in line, line
    for hint in HINTS[status]:
        assert hint in line, (hint, line)
    assert len(fake_openai.requests) == 1


# --- 3-5. how long to wait, and how many times ------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "least"), [({"Retry-After": "1"}, 0.95), ({"retry-after-ms": "250"}, 0.24)]
)
async def test_retry_after_is_honoured(
    fake_openai: FakeOpenAI, headers: dict[str, str], least: float
) -> None:
    fake_openai.enqueue(Fault(status=429, headers=headers))
    await ask(fake_openai)
    first, second = fake_openai.requests
    assert least <= second.started - first.ended < least + 3


async def test_backoff_without_retry_after(fake_openai: FakeOpenAI) -> None:
    for _ in range(3):
        fake_openai.enqueue(Fault(status=500))
    started = time.monotonic()
    response = await ask(fake_openai)  # default retries
    assert time.monotonic() - started < 15
    assert response.content.startswith(f"[{MODEL}] answer")
    requests = fake_openai.requests
    assert [r.outcome for r in requests] == ["fault:500"] * 3 + ["ok"]
    gaps = [b.started - a.ended for a, b in itertools.pairwise(requests)]
    assert all(gap > 0 for gap in gaps), gaps


@pytest.mark.parametrize("retries", [0, 2])
async def test_retries_setting_bounds_attempts(fake_openai: FakeOpenAI, retries: int) -> None:
    for _ in range(retries + 2):  # one more failure than allowed: a further try would show
        fake_openai.enqueue(Fault(status=503, headers=RA0))
    with pytest.raises(ModelError):
        await ask(fake_openai, f"    retries: {retries}\n")
    assert len(fake_openai.requests) == retries + 1


# --- 6. unreachable endpoint ------------------------------------------------------------------


def test_cli_unreachable_endpoint(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    wf = write_workflow(tmp_path, "    retries: 1\n")
    proc = run_cli(
        tmp_path, "run", str(wf), "--input", TASK, base_url=f"http://127.0.0.1:{port}/v1"
    )
    line = one_line_error(proc, 2)
    assert "cannot reach" in line.lower(), line
    assert "base_url" in line and "OPENAI_BASE_URL" in line, line


# --- 7. secrets never leak --------------------------------------------------------------------


def echo(status: int, secret: str) -> Fault:
    """A failure whose body echoes the key back, as OpenAI's 401 does."""
    return Fault(status=status, body={"error": {"message": f"bad key {secret}."}}, headers=RA0)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["env", "literal"])
async def test_secret_never_leaks(
    fake_openai: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    secret = KEY if source == "env" else LITERAL
    home = tmp_path / "home"
    monkeypatch.setenv("ORCHESTRATOR_HOME", str(home))
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    if source == "env":
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        wf = write_workflow(tmp_path, "    retries: 0\n", api_key="${OPENAI_API_KEY}")
    else:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        wf = write_workflow(tmp_path, "    retries: 0\n", api_key=LITERAL)
    seen: list[str] = []

    spec = load_workflow(wf)
    assert spec.models["p"].api_key and spec.models["p"].api_key.get_secret_value() == secret
    workflow = Workflow(spec)
    seen += [repr(spec), str(spec), spec.model_dump_json(), str(spec.model_dump()), repr(workflow)]

    # SDK: a 401 and a 500 whose bodies echo the key.
    fake_openai.enqueue(echo(401, secret))
    with pytest.raises(OrchestratorError) as info:
        await workflow.arun(TASK)
    seen += [str(info.value), repr(info.value), repr(info.value.args), info.value.message]
    fake_openai.enqueue(echo(500, secret))
    result = await workflow.arun(TASK)
    assert result.status == "failed" and result.error is not None
    seen += [json.dumps(result.to_dict()), repr(result)]
    assert (await workflow.arun(TASK)).status == "completed"

    # CLI: plain and --json, succeeding and failing.
    key = KEY if source == "env" else None
    for fault, code, args in [
        (None, 0, []),
        (None, 0, ["--json"]),
        (echo(401, secret), 2, ["--json"]),
        (echo(500, secret), 1, []),
        (echo(500, secret), 1, ["--json"]),
    ]:
        if fault is not None:
            fake_openai.enqueue(fault)
        proc = run_cli(
            home, "run", str(wf), "--input", TASK, *args, base_url=fake_openai.base_url, key=key
        )
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        seen += [proc.stdout, proc.stderr]

    for text in seen:
        assert secret not in text, text
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.startswith("checkpoints.sqlite") for p in files), files
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
    # ... and yet the key was really sent, on every request.
    auth = {r.headers.get("authorization") for r in fake_openai.requests}
    assert auth == {f"Bearer {secret}"}


# --- 8-9. input cannot execute code ------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        'name: !!python/object/apply:os.system ["touch {t}"]\nmodels:\n  p: {{model: m}}\n',
        '!!python/object/apply:os.system ["touch {t}"]\n',
        "name: x\nmodels:\n  p:\n    model: m\n    base_url: !!python/object/apply:os.system"
        ' ["touch {t}"]\n',
    ],
    ids=["value", "document", "nested"],
)
def test_yaml_python_tags_are_refused(tmp_path: Path, template: str) -> None:
    target = tmp_path / "pwned-XYZ"
    with pytest.raises(SpecError):
        parse_workflow(template.format(t=target))
    assert not target.exists()


def test_cli_validate_refuses_python_tag(tmp_path: Path) -> None:
    target = tmp_path / "pwned-XYZ"
    wf = tmp_path / "evil.yaml"
    wf.write_text(
        f'name: !!python/object/apply:os.system ["touch {target}"]\nmodels:\n  p: {{model: m}}\n'
    )
    proc = run_cli(tmp_path, "validate", str(wf), base_url="http://127.0.0.1:9/v1")
    one_line_error(proc, 2)
    assert not target.exists()


def test_prompt_template_cannot_execute_code(tmp_path: Path) -> None:
    target = tmp_path / "pwned-tpl"
    expr = f"{{{{ __import__('os').system('touch {target}') }}}}"
    template = Template("t", "Hi {{ name }}", f"{expr} {{{{ name }}}}")
    assert template.variables == {"name"}  # an expression is not a slot
    instruction, user = template.render(name="{{ other }}")
    assert instruction == Message("instruction", "Hi {{ other }}")  # the value is not re-expanded
    assert user == Message("user", f"{expr} {{{{ other }}}}")  # the expression stays literal text
    assert not target.exists()
    literal = Template("t", "Hi {{ name }}", "{{ __import__('os').system('x') }} {{ name }}")
    _, user = literal.render(name=r"\g<0> \1 {{ other }}")  # no regex escapes in values either
    assert user.content == r"{{ __import__('os').system('x') }} \g<0> \1 {{ other }}"
