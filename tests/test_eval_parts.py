"""The evaluation's building blocks, with no model calls: datasets (and every bad row named by
its line), every scorer on real answers (code run in a subprocess: passing, failing, broken,
looping, reaching for the network), the metrics against hand-computed values, summary.json's
exact shape, samples.jsonl round trips, and the frontier picture and report."""

from __future__ import annotations

import json
import random
import socket
import statistics
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.eval import (
    GENERATE,
    REASON,
    Item,
    SampleRecord,
    Score,
    bootstrap_ci,
    frontier_svg,
    judge_messages,
    load_dataset,
    network_isolated,
    pareto,
    parse_samples,
    parse_scorer,
    parse_verdict,
    percentile,
    pgr,
    report_md,
    score,
    summarize,
    summary_json,
)
from orchestrator.eval.frontier import usd_tick
from orchestrator.eval.sandbox import extract_code, run_code

SVG = "{http://www.w3.org/2000/svg}"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def item(target: Any, scorer: str | None = None, **extra: Any) -> Item:
    return Item("x", "a task", target, scorer, MappingProxyType(extra))


# --- datasets ---------------------------------------------------------------------------------


def test_jsonl_rows_become_items(tmp_path: Path) -> None:
    text = "\n".join(
        [
            '{"id": "a", "input": "2+2?", "target": 4, "scorer": "numeric"}',
            "",  # blank lines are skipped
            '{"id": 7, "input": "capital?", "target": "Paris", "note": "geo"}',
            '{"input": "json?", "target": {"k": [1, 2]}, "scorer": "json:k"}',
            '{"id": "d", "input": "line\u2028sep", "target": "x"}',  # U+2028 inside a string
        ]
    )
    items = load_dataset(write(tmp_path, "d.jsonl", "\ufeff" + text))
    assert [i.id for i in items] == ["a", "7", "line 4", "d"]
    assert items[0].target == 4 and items[0].scorer == "numeric"
    assert items[1].scorer is None and dict(items[1].extra) == {"note": "geo"}
    assert items[2].target == {"k": [1, 2]} and items[2].line == 4
    assert items[3].input == "line\u2028sep"
    with pytest.raises(TypeError):
        items[1].extra["note"] = "changed"  # type: ignore[index]


def test_csv_rows_become_items(tmp_path: Path) -> None:
    text = (
        "id,input,target,scorer,tests\r\n"
        "a,What is 6*7?,42,numeric,\r\n"
        'b,"Write add(a, b)",,code,"assert add(1, 2) == 3\nassert add(0, 0) == 0"\r\n'
        ",Capital of France?,Paris,,\r\n"
    )
    items = load_dataset(write(tmp_path, "d.csv", text))
    assert [i.id for i in items] == ["a", "b", "line 5"]  # the third row starts on line 5
    assert items[0].target == "42" and dict(items[0].extra) == {}  # empty cells are absent
    assert items[1].extra["tests"] == "assert add(1, 2) == 3\nassert add(0, 0) == 0"
    assert items[1].target == "" and items[2].scorer is None


BAD_ROWS = [
    ("d.jsonl", '{"input": "a", "target": 1}\n{"input": "b", target}\n', 2, "not JSON"),
    ("d.jsonl", '{"input": "a", "target": 1}\n[1, 2]\n', 2, "array, not an object"),
    ("d.jsonl", '{"input": "a", "target": 1}\n\n{"target": 2}\n', 3, "input: missing"),
    ("d.jsonl", '{"input": "a"}\n', 1, "target: missing"),
    ("d.jsonl", '{"input": "a", "target": null}\n', 1, "the target is null"),
    ("d.jsonl", '{"input": "  ", "target": 1}\n', 1, "the input is empty"),
    ("d.jsonl", '{"input": 3, "target": 1}\n', 1, "input: Input should be a valid string"),
    ("d.jsonl", '{"input": "a", "target": NaN}\n', 1, "NaN is not a JSON number"),
    (
        "d.jsonl",
        '{"id": "q", "input": "a", "target": 1}\n{"id": "q", "input": "b", "target": 2}\n',
        2,
        "duplicate id 'q' (first on line 1)",
    ),
    ("d.jsonl", '{"input": "a", "target": 1, "scorer": "fuzzy"}\n', 1, "unknown scorer"),
    ("d.jsonl", '{"input": "a", "target": 1, "scorer": "regex:(unclosed"}\n', 1, "bad regular"),
    ("d.jsonl", '{"input": "a", "target": "([", "scorer": "regex"}\n', 1, "bad regular"),
    ("d.jsonl", '{"input": "a", "target": "none", "scorer": "numeric"}\n', 1, "has no number"),
    ("d.jsonl", '{"input": "a", "target": "", "scorer": "code"}\n', 1, "needs a 'tests'"),
    ("d.jsonl", '{"input": "a", "target": "Paris", "scorer": "choice"}\n', 1, "not a letter"),
    ("d.jsonl", '{"input": "a", "target": "", "scorer": "exact"}\n', 1, "it is empty"),
    ("d.jsonl", '{"input": "a", "target": 1, "scorer": "numeric:-1"}\n', 1, "tolerance"),
    ("d.csv", "id,input\na,b\n", 1, "no target column"),
    ("d.csv", "id,input,input,target\n", 1, "repeats input"),
    ("d.csv", "id,input,target\na,b,c\nd,e,f,g\n", 3, "4 fields, but the header has 3"),
    ("d.csv", 'id,input,target\na,"two\nlines",c\nb,,x\n', 4, "the input is empty"),
]


@pytest.mark.parametrize(("name", "text", "line", "says"), BAD_ROWS)
def test_a_bad_row_names_its_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, says: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(UsageError) as caught:
        load_dataset(path)
    assert caught.value.exit_code == 2
    assert caught.value.message.startswith(f"{path}:{line}: ")
    assert says in caught.value.message


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("d.jsonl", "", "no rows"),
        ("d.jsonl", "\n  \n", "no rows"),
        ("d.csv", "", "no rows"),
        ("d.csv", "id,input,target\n", "no rows"),
        ("d.txt", "x", "a .jsonl or a .csv file"),
        ("d.jsonl", b'{"input": "a", "target": 1}\n{"input": "\xff"}\n', ":2: not UTF-8"),
    ],
)
def test_a_bad_file_is_one_message(tmp_path: Path, name: str, data: str | bytes, says: str) -> None:
    with pytest.raises(UsageError, match=str(tmp_path)) as caught:
        load_dataset(write(tmp_path, name, data))
    assert says in caught.value.message


def test_missing_file_and_default_scorer(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such dataset file"):
        load_dataset(tmp_path / "absent.jsonl")
    path = write(tmp_path, "d.jsonl", '{"input": "a", "target": "no digits"}\n')
    assert load_dataset(path)[0].scorer is None  # no scorer yet: the runner's default decides
    with pytest.raises(UsageError, match=r"d\.jsonl:1: .*has no number"):
        load_dataset(path, default_scorer="numeric")  # rows are checked against the default
    with pytest.raises(UsageError, match="unknown scorer"):
        load_dataset(path, default_scorer="nope")


# --- scorers ----------------------------------------------------------------------------------

GSM8K_TARGET = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"


@pytest.mark.parametrize(
    ("target", "answer", "scorer", "passed"),
    [
        (GSM8K_TARGET, "48 + 24 = 72 clips.\n#### 72", "numeric", True),
        (GSM8K_TARGET, "She sold 72 clips, not 71", "numeric", False),  # the last number
        ("#### 1234", "The total is $1,234.", "numeric", True),
        (1234, "That costs $1,234.00 in all", "numeric", True),
        ("12.5", "The rate rose by 12.5%.", "numeric", True),
        (0.75, "It is 3/4 of the tank", "numeric", True),
        (-5, "the temperature is -5 degrees", "numeric", True),
        (0.1, "0.1", "numeric", True),
        (1_000_000, "1000000.5", "numeric", True),  # within the relative 1e-6
        (3.14, "pi is about 3.14159", "numeric", False),
        (3.14, "pi is about 3.14159", "numeric:0.01", True),
        ("paris", "**Paris.**", "exact", True),
        ("Paris", "Paris, France", "exact", False),
        ("paris", "The capital is Paris, France.", "contains", True),
        ("C", "Let me think... (B) is wrong, so the answer is (C).", "choice", True),
        ("(B)", "Answer: D", "choice", False),
        (r"\b42\b", "it is 42.", "regex", True),
        (r"\b42\b", "it is 420", "regex", False),
        ("ignored", "HELLO there", "regex:(?i)hello", True),
        (42, '```json\n{"result": {"value": 42.0}}\n```', "json:result.value", True),
        ("42", '{"result": {"value": 42}}', "json:result.value", True),  # a CSV target
        ("ok", '{"status": "OK"}', "json:status", True),
        ([1, 2], '{"ids": [1, 2]}', "json:ids", True),
        (1, '{"flag": true}', "json:flag", False),  # true is not 1
        (42, '{"other": 42}', "json:result", False),
    ],
)
def test_scorers_on_real_answers(target: Any, answer: str, scorer: str, passed: bool) -> None:
    result = score(item(target), answer, scorer)
    assert result.passed is passed and result.value == float(passed)


def test_failed_scores_say_why() -> None:
    assert score(item(72), "#### 71", "numeric").detail == "expected 72, got 71"
    assert "no number" in score(item(72), "I cannot tell", "numeric").detail
    assert "no choice" in score(item("A"), "none of them", "choice").detail
    assert "no field 'result'" in score(item(1), "not json", "json:result").detail
    assert score(item("b"), "c", "exact").detail == "expected 'b', got 'c'"


def test_the_row_scorer_wins_and_one_is_needed() -> None:
    assert score(item("paris", "exact"), "Paris", "numeric").passed
    with pytest.raises(UsageError, match="has no scorer"):
        score(item("paris"), "Paris")
    with pytest.raises(UsageError, match="needs a model"):
        score(item("paris", "judge"), "Paris")
    with pytest.raises(ValueError):
        Score(1.5, True)


@pytest.fixture
def scorer_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"evalscorers_{random.Random(str(tmp_path)).randrange(10**9)}"
    write(
        tmp_path,
        f"{name}.py",
        textwrap.dedent(
            """
            def exact(answer, item):
                return answer.strip() == item.target
            def half(answer, item):
                return 0.5
            def broken(answer, item):
                raise KeyError("tests")
            def chatty(answer, item):
                return "yes"
            """
        ),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_python_scorers(scorer_module: str) -> None:
    assert score(item("42"), " 42 ", f"python:{scorer_module}:exact").passed
    assert not score(item("42"), "41", f"python:{scorer_module}:exact").passed
    half = score(item("42"), "x", f"python:{scorer_module}:half")
    assert (half.value, half.passed) == (0.5, False)  # partial credit does not pass
    broken = score(item("42"), "x", f"python:{scorer_module}:broken")
    assert not broken.passed and broken.detail.endswith("raised KeyError: 'tests'")
    assert "Traceback" not in broken.detail
    assert "expected a bool" in score(item("42"), "x", f"python:{scorer_module}:chatty").detail
    with pytest.raises(UsageError, match="has no function 'absent'"):
        parse_scorer(f"python:{scorer_module}:absent")
    with pytest.raises(UsageError, match="cannot import no_such_module_here"):
        parse_scorer("python:no_such_module_here:fn")
    with pytest.raises(UsageError, match="python:MODULE:FUNCTION"):
        parse_scorer("python:onlymodule")


def test_judge_prompt_and_verdict() -> None:
    row = Item("j", "What is 17 * 23?", "391", "judge", MappingProxyType({}))
    messages = judge_messages(row, "It is 381.")
    user = messages[-1].content
    assert "What is 17 * 23?" in user and "Reference answer:\n391" in user
    assert "It is 381." in user and "agrees with the reference answer" in user
    assert "only integers" in judge_messages(row, "381", "only integers")[-1].content
    fenced = parse_verdict('```json\n{"passed": false, "feedback": "17*23 is 391"}\n```')
    assert fenced == Score(0.0, False, "17*23 is 391")
    assert parse_verdict('{"passed": true, "feedback": "right"}').passed
    for bad in ("looks right to me", '{"passed": "yes", "feedback": ""}', '{"passed": true}'):
        with pytest.raises(ValueError, match="not a verdict"):
            parse_verdict(bad)


# --- code -------------------------------------------------------------------------------------

ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"


def code_item(tests: str = ADD_TESTS, scorer: str = "code") -> Item:
    return item("", scorer, tests=tests)


def test_code_that_passes_its_tests() -> None:
    answer = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    assert score(code_item(), answer).passed


def test_code_that_fails_an_assert_or_does_not_parse() -> None:
    failed = score(code_item(), "def add(a, b):\n    return a - b\n")
    assert not failed.passed
    assert 'File "test_solution.py", line 1' in failed.detail  # the test's own line
    assert failed.detail.endswith("AssertionError")
    assert "orchestrator-code-" not in failed.detail  # no temporary path: details are stable
    broken = score(code_item(), "def add(a, b) return a + b")
    assert not broken.passed and "SyntaxError" in broken.detail


def test_code_that_loops_hits_the_timeout() -> None:
    result = score(code_item(scorer="code:1"), "def add(a, b):\n    while True:\n        pass\n")
    assert not result.passed and result.detail.startswith("timed out after 1 s")


def test_code_sees_no_secrets_and_little_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-0000000000")
    tests = "import os\nassert set(os.environ) <= {'PATH', 'LC_CTYPE'} | PROXIES, set(os.environ)"
    proxies = "{'http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'}"
    passed, detail = run_code(f"PROXIES = {proxies}", tests)
    assert passed, detail
    passed, detail = run_code("big = bytearray(4 * 1024**3)", "pass")
    assert not passed and detail.endswith("MemoryError")


def test_which_code_is_run() -> None:
    both = "```js\nno()\n```\n```python\nfirst()\n```\ntext\n```python\nlast()\n```"
    assert extract_code(both) == "last()\n"
    assert extract_code("```\nbare()\n```") == "bare()\n"
    assert extract_code("```js\nno()\n```\n```py\nyes()\n```") == "yes()\n"
    assert extract_code("def f(): pass") == "def f(): pass"


@pytest.mark.skipif(not network_isolated(), reason="unshare -rn does not work here")
def test_code_cannot_reach_the_network() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        connect = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)"
        # The port is reachable from an ordinary process, so only the sandbox can refuse it.
        plain = subprocess.run([sys.executable, "-c", connect], capture_output=True, timeout=10)
        assert plain.returncode == 0, plain.stderr
        passed, detail = run_code(connect, "pass")
    assert not passed and "OSError" in detail, detail


# --- metrics ----------------------------------------------------------------------------------


def test_percentile_against_hand_computed_values() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)  # rank 2.85: 3 + 0.85 * (4 - 3)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_percentile_matches_the_inclusive_quantiles() -> None:
    # statistics' "inclusive" method is the same linear interpolation as numpy's default
    rng = random.Random(3)
    values = [rng.random() for _ in range(37)]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for p in (1, 5, 37, 50, 95, 99):
        assert percentile(values, p) == pytest.approx(cuts[p - 1])


def test_bootstrap_ci_is_deterministic_and_contains_the_mean() -> None:
    values = [1.0] * 30 + [0.0] * 20
    low, high = bootstrap_ci(values)
    assert bootstrap_ci(values) == (low, high)  # same seed, same interval
    rng = random.Random(9)
    spread = [rng.random() for _ in range(40)]
    assert bootstrap_ci(spread, seed=1) != bootstrap_ci(spread)  # the seed is what decides
    assert 0.4 < low < 0.6 < high < 0.8
    wide = bootstrap_ci(values, level=0.99)
    assert wide[0] <= low and high <= wide[1]
    assert bootstrap_ci([0.5, 0.5]) == (0.5, 0.5)


def test_pgr_and_pareto() -> None:
    assert pgr(0.7, 0.5, 0.9) == pytest.approx(0.5)
    assert pgr(0.9, 0.5, 0.9) == 1.0 and pgr(0.5, 0.5, 0.9) == 0.0
    assert pgr(0.4, 0.5, 0.9) == pytest.approx(-0.25)
    assert pgr(0.7, 0.6, 0.6) is None
    points = {
        "cheap": (1.0, 0.5),
        "dear": (10.0, 0.9),
        "middle": (3.0, 0.8),
        "worse": (4.0, 0.7),  # dominated by middle
        "same-cost": (3.0, 0.75),  # as costly as middle, less accurate
        "twin": (3.0, 0.8),  # equal to middle: neither dominates
    }
    assert pareto(points) == {"cheap", "dear", "middle", "twin"}


def record(policy: str, item_id: str, score_: float, **more: Any) -> SampleRecord:
    fields: dict[str, Any] = {
        "repeat": 0,
        "answer": "a",
        "passed": score_ == 1,
        "cost_usd": 0.0,
        "list_cost_usd": 0.01,
        "latency_s": 1.0,
        "reason_calls": 0,
        "calls": 1,
    }
    fields.update(more)
    return SampleRecord(item_id=item_id, policy=policy, score=score_, **fields)


def sample_records() -> list[SampleRecord]:
    """all-generate 1/4 at $0.001, all-reason 3/4 at $0.01 (some of it cached), cascade 2/4 at
    $0.004 with 1 of 2 calls reasoning, and a repeat of one cascade item."""
    out = []
    reason: dict[str, Any] = {"reason_calls": 1, "latency_s": 10.0}
    cascade: dict[str, Any] = {"list_cost_usd": 0.004, "reason_calls": 1, "calls": 2}
    for i, (g, r, c) in enumerate([(1, 1, 1), (0, 1, 1), (0, 1, 0), (0, 0, 0)]):
        out.append(record(GENERATE, f"i{i}", g, list_cost_usd=0.001, latency_s=1.0 + i))
        paid = 0.0 if i == 0 else 0.01  # a cache hit is free but counted at list price
        tokens = {"thinker": 100}
        out.append(record(REASON, f"i{i}", r, cost_usd=paid, tokens_by_profile=tokens, **reason))
        tokens = {"writer": 10, "thinker": 50}
        out.append(record("cascade", f"i{i}", c, tokens_by_profile=tokens, **cascade))
    out.append(record("cascade", "i2", 1, repeat=1, **cascade))
    return out


def test_summarize_computes_every_metric() -> None:
    metrics = summarize(sample_records())
    assert list(metrics) == [GENERATE, REASON, "cascade"]
    generate, reason, cascade = metrics.values()
    assert (generate.accuracy, reason.accuracy) == (0.25, 0.75)
    assert cascade.items == 4 and cascade.samples == 5
    assert cascade.accuracy == 0.625  # i2's repeats (0 and 1) average to 0.5 first
    assert cascade.pgr == pytest.approx(0.75)
    assert (generate.pgr, reason.pgr) == (0.0, 1.0)
    assert reason.cost_usd == pytest.approx(0.04) and reason.spent_usd == pytest.approx(0.03)
    assert cascade.cost_per_item_usd == pytest.approx(0.004)
    assert cascade.cost_vs_all_reason == pytest.approx(0.4)
    assert generate.cost_vs_all_reason == pytest.approx(0.1)
    assert cascade.reason_share == 0.5 and generate.reason_share == 0.0
    assert generate.latency_p50_s == 2.5 and generate.latency_p95_s == pytest.approx(3.85)
    assert dict(cascade.tokens_by_profile) == {"thinker": 200, "writer": 40}
    assert (generate.pareto, reason.pareto, cascade.pareto) == (True, True, True)
    assert cascade.ci95[0] <= cascade.accuracy <= cascade.ci95[1]


def test_summarize_ignores_record_order_and_refuses_what_cannot_compare() -> None:
    records = sample_records()
    shuffled = records[:]
    random.Random(5).shuffle(shuffled)
    assert summarize(shuffled) == summarize(records)
    with pytest.raises(UsageError, match="no all-reason records"):
        summarize([r for r in records if r.policy != REASON])
    with pytest.raises(UsageError, match="other items"):
        summarize([r for r in records if (r.policy, r.item_id) != ("cascade", "i3")])
    with pytest.raises(UsageError, match="two records of item 'i0'"):
        summarize([*records, records[0]])


def test_summary_json_has_exactly_the_documented_shape() -> None:
    metrics = summarize(sample_records())
    summary = summary_json(metrics, workflow="math-verify", dataset="gsm8k.jsonl")
    assert set(summary) == {"workflow", "dataset", "items", "policies", "extra"}
    assert (summary["workflow"], summary["dataset"], summary["items"]) == (
        "math-verify",
        "gsm8k.jsonl",
        4,
    )
    assert list(summary["policies"]) == [GENERATE, REASON, "cascade"]
    keys = {
        "accuracy", "ci95", "cost_usd", "cost_per_item_usd", "cost_vs_all_reason",
        "reason_share", "pgr", "latency_p50_s", "latency_p95_s", "pareto",
    }  # fmt: skip
    for policy in summary["policies"].values():
        assert set(policy) == keys
        assert isinstance(policy["ci95"], list) and len(policy["ci95"]) == 2
        assert isinstance(policy["pareto"], bool)
    assert set(summary["extra"]["policies"]["cascade"]) == {
        "samples", "errors", "spent_usd", "judge_cost_usd", "tokens_by_profile",
    }  # fmt: skip
    json.dumps(summary, allow_nan=False)  # strict JSON: undefined values are null
    tied = summary_json(
        summarize([record(p, "i0", 1.0) for p in (GENERATE, REASON)]), workflow="w", dataset="d"
    )
    assert tied["policies"][REASON]["pgr"] is None  # the baselines tie: no gap to recover


def test_records_round_trip_and_replay_bit_for_bit() -> None:
    special = record(
        "router", "i0", 0.5, answer="Ünïcödé\n```python\nx = 1\n```", cost_usd=0.1 + 0.2,
        list_cost_usd=1 / 3, latency_s=1e-7, route={"steps": [{"id": "s1", "why": None}]},
        error="ModelError: cut off", detail="expected 2", judge_cost_usd=0.000123,
    )  # fmt: skip
    line = special.to_json()
    assert "\n" not in line
    again = SampleRecord.from_json(line)
    assert again == special and again.to_json() == line
    records = sample_records()
    text = "\n".join(r.to_json() for r in records) + "\n"
    replayed = parse_samples(text)
    assert replayed == tuple(records)
    first = summary_json(summarize(records), workflow="w", dataset="d")
    second = summary_json(summarize(replayed), workflow="w", dataset="d")
    assert json.dumps(first) == json.dumps(second)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"repeat": "0"}, "repeat"),
        ({"score": 2.0}, "not in [0, 1]"),
        ({"surprise": 1}, "surprise"),
        ({"calls": None}, "calls"),
    ],
)
def test_a_bad_sample_line_is_named(change: dict[str, Any], says: str) -> None:
    good = record(GENERATE, "i0", 1.0).to_dict()
    bad = json.dumps({**good, **change})
    with pytest.raises(UsageError, match=r"^samples\.jsonl:2: not a sample record") as caught:
        parse_samples(json.dumps(good) + "\n" + bad + "\n")
    assert says in caught.value.message


# --- frontier and report ----------------------------------------------------------------------

POINTS = {
    GENERATE: (0.0004, 0.55),
    REASON: (0.02, 0.85),
    "cascade": (0.003, 0.8),
    'odd <name> & "quotes"': (0.01, 0.6),
}


def test_frontier_svg_is_well_formed_with_a_log_axis() -> None:
    svg = frontier_svg(POINTS, title="math <verify>")
    assert svg == frontier_svg(POINTS, title="math <verify>")  # deterministic
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") == "0 0 680 440"
    ticks = [t.text for t in root.iter(f"{SVG}text") if "tick x" in (t.get("class") or "")]
    assert ticks == ["$0.0001", "$0.001", "$0.01", "$0.1"]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert 'odd <name> & "quotes"' in texts and "math <verify>" in texts
    assert "&lt;name&gt; &amp; &quot;quotes&quot;" in svg or "&lt;name&gt; &amp;" in svg
    groups = {g.get("data-name"): g for g in root.iter(f"{SVG}g") if g.get("data-name")}
    assert set(groups) == set(POINTS)
    assert groups[GENERATE].get("class") == "point baseline pareto"
    assert groups[GENERATE].find(f"{SVG}rect") is not None  # baselines are squares
    assert groups["cascade"].get("class") == "point policy pareto"
    assert groups['odd <name> & "quotes"'].get("class") == "point policy"
    (line,) = [p for p in root.iter(f"{SVG}path") if p.get("class") == "frontier"]
    assert line.get("d", "").count("L") == 2  # all-generate, cascade, all-reason
    axis = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "axis x"]
    assert axis == ["cost per item (USD, log scale)"]


def test_frontier_svg_draws_zero_cost_at_a_floor_and_says_so() -> None:
    root = ET.fromstring(frontier_svg({GENERATE: (0.0, 0.5), REASON: (0.05, 0.9)}))
    ticks = [t.text for t in root.iter(f"{SVG}text") if "tick x" in (t.get("class") or "")]
    assert ticks == ["$0.001", "$0.01", "$0.1"]  # a decade below the cheapest positive cost
    axis = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "axis x"]
    assert axis == ["cost per item (USD, log scale); $0 is drawn at $0.001"]
    ET.fromstring(frontier_svg({}))  # nothing to draw is still a picture
    assert [usd_tick(k) for k in (-5, -1, 0, 3)] == ["$0.00001", "$0.1", "$1", "$1,000"]


def test_report_embeds_the_picture_and_the_table() -> None:
    metrics = summarize(sample_records())
    summary = summary_json(metrics, workflow="math-verify", dataset="gsm8k.jsonl")
    summary["policies"]["a|b"] = summary["policies"]["cascade"] | {"pgr": None}
    report = report_md(summary)
    assert "![frontier](frontier.svg)" in report
    assert "Dataset `gsm8k.jsonl`, 4 items." in report
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 4  # the header and its rule, then one row per policy
    assert rows[4].startswith("| cascade | 62.5 % (")
    assert "| $0.0200 | $0.00400 | 40 % | 50 % | 0.75 | 1.00 s | 1.00 s | yes |" in rows[4]
    assert rows[5].startswith("| a\\|b |") and "| — |" in rows[5]
