"""The evaluation sets in datasets/ are well formed and their answers are right: arithmetic
matches its generator, every multiple-choice target is one of the listed options and the
letters are balanced, and every code task's reference solution passes its tests while a stub
and some near misses fail them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orchestrator.eval.sandbox import run_code

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO / "datasets"
GENERATOR = REPO / "scripts" / "make_arithmetic.py"
SOLUTIONS = DATASETS / "reference" / "code_solutions.jsonl"

# name: (id prefix, scorer, fewest rows, most rows)
SETS = {
    "arithmetic.jsonl": ("arith", "numeric", 50, 200),
    "code.jsonl": ("code", "code", 50, 200),
    "facts.jsonl": ("mc", "choice", 50, 100),
    "smoke.jsonl": ("smoke", "numeric", 10, 10),
}


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATASETS / name).read_text().splitlines()]


@pytest.mark.parametrize("name", sorted(SETS))
def test_each_set_is_well_formed(name: str) -> None:
    prefix, scorer, fewest, most = SETS[name]
    text = (DATASETS / name).read_text(encoding="ascii")
    assert text.endswith("\n") and "\n\n" not in text
    rows = load(name)
    assert fewest <= len(rows) <= most
    for row in rows:
        assert isinstance(row, dict)
        for key in ("id", "input", "target", "scorer"):
            assert isinstance(row.get(key), str), (row.get("id"), key)
        assert re.fullmatch(rf"{prefix}-\d{{3}}", row["id"]), row["id"]
        assert row["scorer"] == scorer
        assert row["input"].strip() == row["input"] and row["input"]
    ids = [row["id"] for row in rows]
    assert len(set(ids)) == len(ids)
    assert len({row["input"] for row in rows}) == len(rows), "duplicate questions"


def test_every_set_is_known_to_these_tests() -> None:
    assert sorted(p.name for p in DATASETS.glob("*.jsonl")) == sorted(SETS)


# --- arithmetic -------------------------------------------------------------------------------


def test_arithmetic_files_match_their_generator() -> None:
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_generator_check_notices_an_edit(tmp_path: Path) -> None:
    for name in ("arithmetic.jsonl", "smoke.jsonl"):
        (tmp_path / name).write_bytes((DATASETS / name).read_bytes())
    edited = (tmp_path / "smoke.jsonl").read_text().replace('"target": "', '"target": "1', 1)
    (tmp_path / "smoke.jsonl").write_text(edited)
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "smoke.jsonl" in done.stderr


@pytest.mark.parametrize("name", ["arithmetic.jsonl", "smoke.jsonl"])
def test_arithmetic_answers_are_integers(name: str) -> None:
    for row in load(name):
        assert re.fullmatch(r"-?[1-9]\d*|0", row["target"]), row
        assert isinstance(row["steps"], int) and 1 <= row["steps"] <= 6


def test_arithmetic_mixes_easy_and_hard_problems() -> None:
    steps = Counter(row["steps"] for row in load("arithmetic.jsonl"))
    total = sum(steps.values())
    assert steps[1] + steps[2] >= total * 0.25
    assert steps[4] + steps[5] + steps[6] >= total * 0.3
    assert steps[5] + steps[6] > 0


def test_smoke_problems_are_easy() -> None:
    for row in load("smoke.jsonl"):
        assert row["steps"] <= 2
        assert all(int(n) < 20 for n in re.findall(r"\d+", row["input"])), row
        assert int(row["target"]) < 100


# --- multiple choice --------------------------------------------------------------------------

OPTION = re.compile(r"^([A-E])\) (.+)$", re.MULTILINE)


def test_each_question_lists_its_answer_among_distinct_options() -> None:
    for row in load("facts.jsonl"):
        options = OPTION.findall(row["input"])
        letters = "".join(letter for letter, _ in options)
        assert letters in ("ABCD", "ABCDE"), row["id"]
        assert row["target"] in letters, row["id"]
        assert len({text for _, text in options}) == len(options), row["id"]
        assert row["input"].endswith("\nAnswer with the letter."), row["id"]


def test_the_answer_letters_are_balanced() -> None:
    rows = load("facts.jsonl")
    counts = Counter(row["target"] for row in rows)
    assert set(counts) == set("ABCD")
    for letter, count in counts.items():
        assert 0.2 <= count / len(rows) <= 0.3, (letter, counts)


# --- code -------------------------------------------------------------------------------------


def code_tasks() -> dict[str, tuple[str, str]]:
    """id -> (function name, tests)."""
    out = {}
    for row in load("code.jsonl"):
        match = re.match(r"from solution import (\w+)\n", row["tests"])
        assert match, row["id"]
        out[row["id"]] = (match.group(1), row["tests"])
    return out


def references() -> dict[str, str]:
    rows = [json.loads(line) for line in SOLUTIONS.read_text().splitlines()]
    return {row["id"]: row["solution"] for row in rows}


def passes(solution: str, tests: str) -> bool:
    """Scored as the eval scores a model's answer: the code in a ```python block, run against
    the tests in a subprocess by the `code` scorer's sandbox (its default 10 s timeout)."""
    passed, _ = run_code(f"Here it is:\n\n```python\n{solution}```\n", tests)
    return passed


def run_all(cases: dict[str, tuple[str, str]]) -> dict[str, bool]:
    """Each (solution, tests) in its own interpreter, several at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda case: passes(*case), cases.values())
        return dict(zip(cases, results, strict=True))


def test_code_rows_keep_the_answers_out() -> None:
    tasks = code_tasks()
    for row in load("code.jsonl"):
        name, _ = tasks[row["id"]]
        assert row["target"] == "" and "solution" not in row
        assert row["input"].startswith(f"Write a Python function `{name}(")
        assert row["input"].endswith("Reply with the code in a ```python block.")
    assert sorted(references()) == sorted(tasks)


def stub_for(name: str) -> str:
    return f"def {name}(*a, **k):\n    return None\n"


@pytest.mark.slow
def test_reference_solutions_pass_and_stubs_fail() -> None:
    tasks, solutions = code_tasks(), references()
    good = run_all({i: (solutions[i], tests) for i, (_, tests) in tasks.items()})
    stub = run_all({i: (stub_for(name), tests) for i, (name, tests) in tasks.items()})
    assert [i for i, ok in good.items() if not ok] == []
    assert [i for i, ok in stub.items() if ok] == []


# Plausible wrong answers: the tests must catch the edge case each one gets wrong.
NEAR_MISSES = {
    "is_leap_year": "def is_leap_year(year):\n    return year % 4 == 0\n",
    "to_roman": (
        "def to_roman(n):\n"
        "    out = ''\n"
        "    for value, letter in [(1000, 'M'), (500, 'D'), (100, 'C'), (50, 'L'), (10, 'X'),\n"
        "                          (5, 'V'), (1, 'I')]:\n"
        "        count, n = divmod(n, value)\n"
        "        out += letter * count\n"
        "    return out\n"
    ),
    "rotate_list": (
        "def rotate_list(items, k):\n    k %= len(items)\n    return items[-k:] + items[:-k]\n"
    ),
    "word_wrap": (
        "def word_wrap(text, width):\n"
        "    lines = []\n"
        "    for word in text.split():\n"
        "        if lines and len(lines[-1]) + 1 + len(word) < width:\n"
        "            lines[-1] += ' ' + word\n"
        "        else:\n"
        "            lines.append(word)\n"
        "    return lines\n"
    ),
    "eval_rpn": (
        "def eval_rpn(tokens):\n"
        "    stack = []\n"
        "    ops = {'+': int.__add__, '-': int.__sub__, '*': int.__mul__, '/': int.__floordiv__}\n"
        "    for t in tokens:\n"
        "        if t in ops:\n"
        "            b, a = stack.pop(), stack.pop()\n"
        "            stack.append(ops[t](a, b))\n"
        "        else:\n"
        "            stack.append(int(t))\n"
        "    return stack[0]\n"
    ),
    "second_largest": (
        "def second_largest(nums):\n    return sorted(nums)[-2] if len(nums) > 1 else None\n"
    ),
    "merge_intervals": (
        "def merge_intervals(intervals):\n"
        "    out = []\n"
        "    for s, e in sorted(intervals):\n"
        "        if out and s < out[-1][1]:\n"
        "            out[-1][1] = max(out[-1][1], e)\n"
        "        else:\n"
        "            out.append([s, e])\n"
        "    return out\n"
    ),
}


@pytest.mark.slow
def test_near_miss_solutions_fail() -> None:
    by_name = {name: tests for name, tests in code_tasks().values()}
    results = run_all({name: (code, by_name[name]) for name, code in NEAR_MISSES.items()})
    assert [name for name, ok in results.items() if ok] == []


# --- documentation and license ----------------------------------------------------------------


def test_the_readme_names_every_file_and_the_license() -> None:
    readme = (DATASETS / "README.md").read_text()
    files = [p for p in DATASETS.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for path in files:
        if path.name not in ("README.md", "__init__.py"):
            assert path.relative_to(DATASETS).as_posix() in readme, path
    assert "scripts/make_arithmetic.py" in readme and "MIT" in readme
    assert 'license = "MIT"' in (REPO / "pyproject.toml").read_text()
    assert "MIT License" in (DATASETS / "LICENSE").read_text()
