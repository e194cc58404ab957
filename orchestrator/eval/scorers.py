"""Scoring one answer against one dataset item: `score(item, answer, default_scorer)`.

A scorer is named by a string, on the row (`"scorer"`) or for the whole run:

- `numeric`, `numeric:TOL`: the answer's number (GSM8K style: `#### n`, else the last number;
  `$`, `%`, `1,234` and `3/4` understood) equals the target's, within a relative 1e-6 or an
  absolute 1e-9 (`TOL` sets the absolute one);
- `exact`: the normalized answer equals the normalized target;
- `contains`: the normalized target occurs in the normalized answer;
- `choice`: the answer settles on the target's letter, A–E;
- `regex`, `regex:PATTERN`: the pattern (else the target, as a pattern) is found in the answer;
- `json:PATH`: the field `PATH` (`a.b[0]`) of the answer's JSON equals the target (numbers
  compared numerically; a text target that is JSON, like "42", is read as JSON);
- `python:MODULE:FUNCTION`: `FUNCTION(answer, item)` returns True, or a number in [0, 1]
  (partial credit; only 1 passes);
- `code`, `code:SECONDS`: the answer's code passes the row's `tests` (`eval.sandbox`);
- `judge`, `judge:PROFILE`: a model says so; the runner asks it (`judge_messages`) and reads
  its verdict (`parse_verdict`).

Extraction is `orchestrator.policies.extract`'s, so a policy that votes on answers and the eval
that scores them read the same number out of the same text. Every failure is a failed `Score`
whose `detail` says why; only a wrongly named scorer raises (`UsageError`).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Any

from .. import jsoncheck, prompts
from ..errors import UsageError
from ..graph.structured import VERDICT_SCHEMA
from ..models.base import Message
from ..policies.extract import choice, json_field, last_number, normalize, number_text
from .sandbox import DEFAULT_TIMEOUT_S, run_code

if TYPE_CHECKING:
    from .dataset import Item

__all__ = [
    "DEFAULT_CRITERIA",
    "SCORERS",
    "Score",
    "ScorerSpec",
    "check_item",
    "judge_messages",
    "parse_scorer",
    "parse_verdict",
    "score",
]

SCORERS = ("numeric", "exact", "contains", "choice", "regex", "json", "python", "code", "judge")
REL_TOL = Fraction(1, 10**6)
ABS_TOL = Fraction(1, 10**9)
DEFAULT_CRITERIA = "The answer is correct: it agrees with the reference answer."
_NO_ARG = ("exact", "contains", "choice")
_SHOWN = 80  # characters of an answer or target quoted in a detail


@dataclass(frozen=True)
class Score:
    """How an answer did: `value` in [0, 1] (partial credit from `python` scorers), `passed`
    (full credit), and `detail`, one line saying why."""

    value: float
    passed: bool
    detail: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:  # also refuses NaN
            raise ValueError(f"a score is in [0, 1], not {self.value!r}")


@dataclass(frozen=True)
class ScorerSpec:
    """A parsed scorer name: `kind` (one of SCORERS) and `arg`, what followed the first `:`."""

    kind: str
    arg: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind


def _fail(detail: str) -> Score:
    return Score(0.0, False, detail)


def _pass(detail: str = "") -> Score:
    return Score(1.0, True, detail)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…")


@cache
def parse_scorer(name: str) -> ScorerSpec:
    """`name` checked and split; a wrong one raises UsageError saying what is allowed."""
    kind, _, arg = name.partition(":")
    if kind not in SCORERS:
        raise UsageError(f"unknown scorer {name!r}; use one of {', '.join(SCORERS)}")
    if kind in _NO_ARG and arg:
        raise UsageError(f"scorer {kind!r} takes no argument (got {name!r})")
    if kind == "numeric" and arg:
        _positive(name, arg, "an absolute tolerance, like numeric:0.01", zero_ok=True)
    elif kind == "code" and arg:
        _positive(name, arg, "a timeout in seconds, like code:30", zero_ok=False)
    elif kind == "regex" and arg:
        _compile(arg, f"scorer {name!r}")
    elif kind == "json" and not arg:
        raise UsageError("scorer 'json' needs a field: json:answer or json:result.value")
    elif kind == "python":
        _function(arg)
    return ScorerSpec(kind, arg)


def _positive(name: str, arg: str, what: str, *, zero_ok: bool) -> None:
    try:
        value = float(arg)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise UsageError(f"scorer {name!r}: {arg!r} is not {what}")


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{where}: bad regular expression {pattern!r} ({exc})") from None


@cache
def _function(ref: str) -> Callable[..., Any]:
    """The scorer function `module:function`, imported once."""
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise UsageError(f"scorer 'python:{ref}': name it python:MODULE:FUNCTION")
    try:
        found = getattr(importlib.import_module(module), attr, None)
    except Exception as exc:  # anything the module raises on import is the user's to fix
        raise UsageError(
            f"scorer 'python:{ref}': cannot import {module} ({type(exc).__name__}: {exc}); "
            "make it importable (installed, or on PYTHONPATH)"
        ) from None
    if not callable(found):
        raise UsageError(f"scorer 'python:{ref}': {module} has no function {attr!r}")
    return found


def target_text(target: Any) -> str:
    """The target as text: a string as it is, any other JSON value as compact JSON."""
    if isinstance(target, str):
        return target
    return json.dumps(target, sort_keys=True, ensure_ascii=False)


def _target_number(target: Any) -> Fraction | None:
    if isinstance(target, bool):
        return None
    if isinstance(target, int):
        return Fraction(target)
    if isinstance(target, float):
        # repr, not the binary value: a target of 0.1 means the decimal 0.1
        return Fraction(repr(target)) if math.isfinite(target) else None
    if isinstance(target, str):
        return last_number(target)
    return None


def check_item(item: Item, default_scorer: str | None = None) -> None:
    """Raise UsageError if `item` cannot be scored by its scorer (or the default): a numeric
    target without a number, a regex target that does not compile, code without tests..."""
    name = item.scorer or default_scorer
    if name is None:
        return
    spec = parse_scorer(name)
    text = target_text(item.target)
    compares = spec.kind in ("exact", "contains", "choice", "json") or spec.name == "regex"
    if compares and not text.strip():
        raise UsageError(f"scorer {name!r} compares with the target, and it is empty")
    if spec.kind == "numeric" and _target_number(item.target) is None:
        raise UsageError(f"scorer {name!r}: the target {_short(text)} has no number")
    if spec.kind == "choice" and choice(text) is None:
        raise UsageError(f"scorer 'choice': the target {_short(text)} is not a letter A–E")
    if spec.name == "regex":
        _compile(text, "scorer 'regex' (the target is the pattern)")
    if spec.kind == "code":
        tests = item.extra.get("tests")
        if not isinstance(tests, str) or not tests.strip():
            raise UsageError("scorer 'code' needs a 'tests' field: Python code with asserts")


def score(item: Item, answer: str, default_scorer: str | None = None) -> Score:
    """How `answer` scores on `item`, by the item's scorer, else `default_scorer`.

    Raises UsageError for a missing or unknown scorer, and for `judge`, which needs a model:
    the runner asks one with `judge_messages` and reads it with `parse_verdict`.
    """
    name = item.scorer or default_scorer
    if name is None:
        raise UsageError(f"item {item.id!r} has no scorer; give the row one, or a default")
    spec = parse_scorer(name)
    if spec.kind == "judge":
        raise UsageError("the judge scorer needs a model: use judge_messages and parse_verdict")
    return _SCORE[spec.kind](item, answer, spec)


def _numeric(item: Item, answer: str, spec: ScorerSpec) -> Score:
    want = _target_number(item.target)
    if want is None:
        return _fail(f"the target {_short(target_text(item.target))} has no number")
    got = last_number(answer)
    if got is None:
        return _fail(f"no number in the answer (expected {number_text(want)})")
    return _close(got, want, Fraction(spec.arg) if spec.arg else ABS_TOL)


def _close(got: Fraction, want: Fraction, abs_tol: Fraction) -> Score:
    # Exact arithmetic on fractions: large integers and 1/3 compare without float rounding.
    allowed = max(REL_TOL * max(abs(got), abs(want)), abs_tol)
    if abs(got - want) <= allowed:
        return _pass(number_text(got))
    return _fail(f"expected {number_text(want)}, got {number_text(got)}")


def _exact(item: Item, answer: str, spec: ScorerSpec) -> Score:
    want, got = normalize(target_text(item.target)), normalize(answer)
    return _pass() if got == want else _fail(f"expected {_short(want)}, got {_short(got)}")


def _contains(item: Item, answer: str, spec: ScorerSpec) -> Score:
    want = normalize(target_text(item.target))
    return _pass() if want in normalize(answer) else _fail(f"{_short(want)} is not in the answer")


def _choice(item: Item, answer: str, spec: ScorerSpec) -> Score:
    want, got = choice(target_text(item.target)), choice(answer)
    if got is None:
        return _fail(f"no choice A–E in the answer (expected {want})")
    return _pass(got) if got == want else _fail(f"expected {want}, got {got}")


def _regex(item: Item, answer: str, spec: ScorerSpec) -> Score:
    pattern = spec.arg or target_text(item.target)
    found = _compile(pattern, "scorer 'regex'").search(answer)
    if found is None:
        return _fail(f"no match for {_short(pattern)}")
    return _pass(f"matched {_short(found.group(0))}")


def _json(item: Item, answer: str, spec: ScorerSpec) -> Score:
    got = json_field(answer, spec.arg)
    if got is None:
        return _fail(f"no field {spec.arg!r} in the answer's JSON")
    want: Any = item.target
    if isinstance(want, str):
        with contextlib.suppress(json.JSONDecodeError):  # a CSV target "42" means 42
            want = json.loads(want)
    if _is_number(got) and _is_number(want):
        return _close(Fraction(repr(got)), Fraction(repr(want)), ABS_TOL)
    if isinstance(got, str):
        equal = normalize(got) == normalize(target_text(item.target))
    else:  # JSON equality, with True never equal to 1
        equal = target_text(got) == target_text(want)
    if equal:
        return _pass()
    return _fail(f"{spec.arg} is {_short(target_text(got))}, expected {_short(target_text(want))}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _python(item: Item, answer: str, spec: ScorerSpec) -> Score:
    ref = f"python:{spec.arg}"
    try:
        outcome = _function(spec.arg)(answer, item)
    except Exception as exc:  # the scorer's bug fails the item, never the eval
        return _fail(f"{ref} raised {type(exc).__name__}: {exc}")
    if inspect.iscoroutine(outcome):
        outcome.close()
        return _fail(f"{ref} is async; a scorer function must return its result")
    if isinstance(outcome, bool):
        return Score(float(outcome), outcome)
    if _is_number(outcome) and 0 <= outcome <= 1:
        return Score(float(outcome), outcome == 1)
    return _fail(f"{ref} returned {_short(repr(outcome))}; expected a bool or a number in [0, 1]")


def _code(item: Item, answer: str, spec: ScorerSpec) -> Score:
    tests = item.extra.get("tests")
    if not isinstance(tests, str) or not tests.strip():
        return _fail("the item has no tests")
    timeout = float(spec.arg) if spec.arg else DEFAULT_TIMEOUT_S
    passed, detail = run_code(answer, tests, timeout_s=timeout)
    return Score(float(passed), passed, detail)


_SCORE: dict[str, Callable[[Item, str, ScorerSpec], Score]] = {
    "numeric": _numeric,
    "exact": _exact,
    "contains": _contains,
    "choice": _choice,
    "regex": _regex,
    "json": _json,
    "python": _python,
    "code": _code,
}


def judge_messages(item: Item, answer: str, criteria: str | None = None) -> list[Message]:
    """The request for a judge: the shipped `judge` prompt with the item's task, the criteria
    (`criteria`, else the row's `criteria` field, else DEFAULT_CRITERIA) followed by the
    reference answer (the target), and the answer to judge. Ask it for VERDICT_SCHEMA."""
    chosen = criteria or item.extra.get("criteria")
    text = chosen if isinstance(chosen, str) and chosen.strip() else DEFAULT_CRITERIA
    reference = target_text(item.target)
    if reference.strip():
        text += "\n\nReference answer:\n" + reference
    return prompts.load("judge").render(task=item.input, criteria=text, answer=answer)


def parse_verdict(text: str) -> Score:
    """A judge's `{"passed": bool, "feedback": str}` (a ```json fence is fine) as a Score.

    Raises ValueError when the text is no such verdict: that is the judge failing, which the
    runner reports apart from the answer failing.
    """
    verdict = json_field(text, "")  # the empty path: the whole JSON object in the text
    problem = jsoncheck.problem(verdict, VERDICT_SCHEMA, "the verdict")
    if verdict is None or problem is not None:
        raise ValueError(f"the judge's answer is not a verdict: {problem or 'no JSON object'}")
    passed = bool(verdict["passed"])
    return Score(float(passed), passed, str(verdict["feedback"]))
