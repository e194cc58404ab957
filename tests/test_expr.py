"""The `when:` expression language: what it accepts, what it computes, and what it refuses."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path
from typing import Any

import pytest

from orchestrator import expr as expr_module
from orchestrator.errors import UserError
from orchestrator.expr import Expression, ExpressionError, parse_expression

STATE: dict[str, Any] = {
    "verdict": {"passed": False, "notes": {"severity": "high"}},
    "attempts": 1,
    "category": "billing",
    "items": ["a", "b", "c"],
    "draft": "an error occurred",
    "score": 0.85,
    "scores": {"x": 3, "y": 7},
    "key": "y",
    "position": 1,
    "label": "Urgent",
    "empty": [],
    "zero": 0,
    "nothing": None,
    "big": "x" * 6000,
}


def ev(text: str, state: dict[str, Any] | None = None) -> Any:
    return parse_expression(text).evaluate(STATE if state is None else state)


def rejected(text: str) -> str:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    return str(info.value)


def failed(text: str, state: dict[str, Any] | None = None) -> str:
    expression = parse_expression(text)
    with pytest.raises(ExpressionError) as info:
        expression.evaluate(STATE if state is None else state)
    return str(info.value)


# --- the examples from the brief -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state", "expected"),
    [
        ("not verdict.passed and attempts < 3", {"verdict": {"passed": False}, "attempts": 1}, 1),
        ("not verdict.passed and attempts < 3", {"verdict": {"passed": True}, "attempts": 1}, 0),
        ("not verdict.passed and attempts < 3", {"verdict": {"passed": False}, "attempts": 3}, 0),
        ("category == 'billing'", {"category": "billing"}, True),
        ("category == 'billing'", {"category": "tech"}, False),
        ("len(items) > 0", {"items": [1]}, True),
        ("len(items) > 0", {"items": []}, False),
        ("'error' in draft", {"draft": "an error occurred"}, True),
        ("'error' in draft", {"draft": "all good"}, False),
        ("score >= 0.8 or verdict.passed", {"score": 0.9, "verdict": {"passed": False}}, True),
        ("score >= 0.8 or verdict.passed", {"score": 0.5, "verdict": {"passed": True}}, True),
        ("score >= 0.8 or verdict.passed", {"score": 0.5, "verdict": {"passed": False}}, False),
    ],
)
def test_brief_examples(text: str, state: dict[str, Any], expected: bool) -> None:
    expression = parse_expression(text)
    assert expression.truthy(state) is bool(expected)
    assert expression.evaluate(state) == expected


def test_names_are_the_top_level_state_keys_read() -> None:
    assert parse_expression("not verdict.passed and attempts < 3").names == {"verdict", "attempts"}
    assert parse_expression("category == 'billing'").names == {"category"}
    assert parse_expression("len(items) > 0").names == {"items"}
    assert parse_expression("scores[key] > lower(x)").names == {"scores", "key", "x"}
    assert parse_expression("a.b.c[0] in [d, e]").names == {"a", "d", "e"}
    # Literal names and function names are not state keys.
    assert parse_expression("flag == true or other != null or x == None").names == {
        "flag",
        "other",
        "x",
    }
    assert parse_expression("max(1, 2) > min([3])").names == frozenset()
    assert isinstance(parse_expression("a").names, frozenset)


def test_expression_object() -> None:
    expression = parse_expression("  attempts < 3  ")
    assert expression.source == "attempts < 3"
    assert str(expression) == "attempts < 3"
    assert expression == parse_expression("attempts < 3")
    assert hash(expression) == hash(parse_expression("attempts < 3"))
    with pytest.raises(AttributeError):
        expression.source = "x"  # type: ignore[misc]
    assert isinstance(expression, Expression)


# --- evaluation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # literals
        ("1", 1),
        ("-2.5", -2.5),
        ("'x'", "x"),
        ('"double"', "double"),
        ("true", True),
        ("false", False),
        ("null", None),
        ("True", True),
        ("None", None),
        ("[1, 'a', null]", [1, "a", None]),
        ("(1, 2)", (1, 2)),
        ("[]", []),
        # boolean logic returns operands like Python and short-circuits
        ("attempts and category", "billing"),
        ("zero or 'fallback'", "fallback"),
        ("zero and missing_key.x", 0),
        ("not empty", True),
        ("not not items", True),
        # comparisons, chained
        ("0 < attempts < 3", True),
        ("0 < attempts < 1", False),
        ("1 == attempts != 2", True),
        ("'b' in items", True),
        ("'z' not in items", True),
        ("'x' in scores", True),
        ("'err' in draft", True),
        ("[1, 2] == [1, 2]", True),
        ("1 == 1.0", True),
        ("'1' == 1", False),
        # arithmetic
        ("attempts + 1", 2),
        ("10 - attempts * 3", 7),
        ("7 / 2", 3.5),
        ("7 % 3", 1),
        ("-attempts", -1),
        ("-(attempts + 1)", -2),
        ("(1 + 2) * 3", 9),
        ("category + '-' + label", "billing-Urgent"),
        # attribute and subscript lookups
        ("verdict.passed", False),
        ("verdict.notes.severity", "high"),
        ("items[0]", "a"),
        ("items[-1]", "c"),
        ("items[position]", "b"),
        ("scores['x']", 3),
        ("scores[key]", 7),
        ("draft[0]", "a"),
        ("verdict['notes']['severity']", "high"),
        # functions
        ("len(items)", 3),
        ("len(scores)", 2),
        ("len(draft)", 17),
        ("lower(label)", "urgent"),
        ("upper(label)", "URGENT"),
        ("lower(1)", "1"),
        ("int('42')", 42),
        ("int(score * 10)", 8),
        ("float('0.5')", 0.5),
        ("str(attempts)", "1"),
        ("abs(-3)", 3),
        ("min(3, 1, 2)", 1),
        ("max(items)", "c"),
        ("max([attempts, 5])", 5),
        ("lower(category) == 'billing' and len(items) >= 3", True),
    ],
)
def test_evaluation(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


def test_missing_names_are_none() -> None:
    state: dict[str, Any] = {}
    assert ev("missing", state) is None
    assert ev("missing == None", state) is True
    assert ev("missing == null", state) is True
    assert ev("missing != None", state) is False
    assert ev("not missing", state) is True
    assert ev("missing.deeper.still", state) is None
    assert ev("missing[0]", state) is None
    assert ev("missing['k']", state) is None
    assert ev("missing or 'default'", state) == "default"
    # None behaves as an empty container for len and in.
    assert ev("len(missing)", state) == 0
    assert ev("len(missing) > 0", state) is False
    assert ev("'x' in missing", state) is False
    assert ev("'x' not in missing", state) is True


def test_lookups_are_data_only() -> None:
    assert ev("verdict.missing") is None
    assert ev("category.upper") is None  # a str is not a mapping: no attribute access on objects
    assert ev("items.append") is None
    assert ev("attempts.real") is None
    assert ev("scores['missing']") is None
    assert ev("items[10]") is None
    assert ev("items[-10]") is None
    assert ev("nothing.x") is None

    class Obj:
        secret = "s"

    assert ev("obj.secret", {"obj": Obj()}) is None


def test_truthy() -> None:
    assert parse_expression("items").truthy(STATE) is True
    assert parse_expression("empty").truthy(STATE) is False
    assert parse_expression("missing").truthy({}) is False
    assert parse_expression("score").truthy(STATE) is True


def test_state_is_not_modified_and_expression_is_reusable() -> None:
    expression = parse_expression("attempts < 3")
    state = {"attempts": 1}
    assert expression.truthy(state)
    assert expression.truthy({"attempts": 5}) is False
    assert state == {"attempts": 1}


# --- evaluation errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("'a' < 3", "not supported between instances of 'str' and 'int'"),
        ("missing < 3", "not supported between instances of 'NoneType' and 'int'"),
        ("'a' - 1", "cannot apply - to str and int"),
        ("'a' * 3", "cannot apply * to str and int"),
        ("items + items", "cannot apply + to list and list"),
        ("'%s' % category", "cannot apply % to str and str"),
        ("category + 1", "cannot apply + to str and int"),
        ("-category", "cannot negate str"),
        ("1 / 0", "division by zero"),
        ("attempts % 0", "modulo by zero"),
        ("int('abc')", "invalid literal for int()"),
        ("float(items)", "float() argument"),
        ("abs(category)", "bad operand type for abs()"),
        ("min(empty)", "empty"),
        ("len(attempts)", "len() of int"),
        ("1 in attempts", "'in' needs a string, list or mapping"),
        ("1 in draft", "'in <string>' needs a string on the left"),
        ("items['x']", "list index must be an integer, not str"),
        ("attempts[0]", "cannot index int"),
        ("big + big", "string result longer than 10000 characters"),
    ],
)
def test_evaluation_errors(text: str, reason: str) -> None:
    message = failed(text)
    assert reason in message
    assert text in message  # the message names the expression
    assert message.startswith("cannot evaluate: ")


def test_evaluation_error_is_value_error_and_user_error() -> None:
    with pytest.raises(ValueError):
        parse_expression("'a' < 3").evaluate({})
    with pytest.raises(UserError):
        parse_expression("'a' < 3").evaluate({})
    error = ExpressionError("reason", "x < 1")
    assert error.reason == "reason"
    assert error.source == "x < 1"
    assert str(error) == "reason in expression 'x < 1'"


def test_string_cap_allows_up_to_the_limit() -> None:
    state = {"a": "x" * 5000, "b": "y" * 5000}
    assert len(ev("a + b", state)) == 10_000
    assert "longer than" in failed("a + b + 'z'", state)


def test_short_circuit_skips_failing_operands() -> None:
    assert ev("false and 'a' < 3") is False
    assert ev("true or 1 / 0") is True
    assert ev("1 > 2 > 'a'") is False  # chained comparison stops at the first false link


# --- parse-time rejection, including escape attempts -------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("__import__('os').system('x')", "unsupported syntax: method call"),
        ("__import__('os')", "unsupported syntax: function call '__import__'"),
        ("().__class__.__bases__", "unsupported syntax: dunder name '__bases__'"),
        ("().__class__", "unsupported syntax: dunder name '__class__'"),
        ("a.__class__", "unsupported syntax: dunder name '__class__'"),
        ("__builtins__", "unsupported syntax: dunder name '__builtins__'"),
        ("a['__class__'].x.__dict__", "unsupported syntax: dunder name '__dict__'"),
        (
            "open('f')",
            "unsupported syntax: function call 'open' "
            "(allowed functions: len, lower, upper, int, float, str, abs, min, max)",
        ),
        ("eval('1')", "unsupported syntax: function call 'eval'"),
        ("exec('x=1')", "unsupported syntax: function call 'exec'"),
        ("getattr(a, 'b')", "unsupported syntax: function call 'getattr'"),
        ("type(a)", "unsupported syntax: function call 'type'"),
        ("x.lower()", "unsupported syntax: method call 'x.lower()' (use lower(x))"),
        ("draft.count('e')", "unsupported syntax: method call 'draft.count('e')'"),
        ("items[0]()", "unsupported syntax: call of a computed function"),
        ("(lambda: 1)()", "unsupported syntax: call of a computed function"),
        ("[x for x in y]", "unsupported syntax: comprehension"),
        ("{x for x in y}", "unsupported syntax: comprehension"),
        ("{x: 1 for x in y}", "unsupported syntax: comprehension"),
        ("len(x for x in y)", "unsupported syntax: comprehension"),
        ("lambda: 1", "unsupported syntax: lambda"),
        ("(a := 1)", "unsupported syntax: assignment expression (:=)"),
        ('f"{a}"', "unsupported syntax: f-string"),
        ("f'{a.__class__}'", "unsupported syntax: f-string"),
        ("2**10000", "unsupported syntax: operator '**'"),
        ("a ** 2", "unsupported syntax: operator '**'"),
        ("a // 2", "unsupported syntax: operator '//'"),
        ("a << 2", "unsupported syntax: operator '<<'"),
        ("a | b", "unsupported syntax: operator '|'"),
        ("a & b", "unsupported syntax: operator '&'"),
        ("a ^ b", "unsupported syntax: operator '^'"),
        ("a @ b", "unsupported syntax: operator '@'"),
        ("~a", "unsupported syntax: unary operator '~'"),
        ("+a", "unsupported syntax: unary operator '+'"),
        ("a is None", "unsupported syntax: operator 'is' (use == or !=)"),
        ("a is not None", "unsupported syntax: operator 'is not' (use == or !=)"),
        ("a if b else c", "unsupported syntax: conditional expression"),
        ("{'a': 1}", "unsupported syntax: dict literal"),
        ("{1, 2}", "unsupported syntax: set literal"),
        ("[*items]", "unsupported syntax: starred"),
        ("max(*items)", "unsupported syntax: starred"),
        ("len(x=1)", "unsupported syntax: keyword arguments"),
        ("max(items, key=len)", "unsupported syntax: keyword arguments"),
        ("max(**a)", "unsupported syntax: keyword arguments"),
        ("items[1:2]", "unsupported syntax: slice"),
        ("items[::-1]", "unsupported syntax: slice"),
        ("items[a.b]", "unsupported syntax: index must be a constant or a name"),
        ("items[len(x)]", "unsupported syntax: index must be a constant or a name"),
        ("items[1, 2]", "unsupported syntax: index must be a constant or a name"),
        ("b'bytes'", "unsupported syntax: bytes literal"),
        ("1j", "unsupported syntax: complex literal"),
        ("...", "unsupported syntax: ellipsis literal"),
        ("await x", "unsupported syntax: await"),
        ("len()", "len() takes exactly one argument"),
        ("len(a, b)", "len() takes exactly one argument"),
        ("lower(a, b)", "lower() takes exactly one argument"),
        ("min()", "min() takes at least one argument"),
    ],
)
def test_rejected_at_parse_time(text: str, reason: str) -> None:
    message = rejected(text)
    assert reason in message
    assert text in message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a +* b", "syntax error at column 4"),
        ("a b", "syntax error at column 3"),
        ("1 +", "syntax error at end of expression"),
        ("(a", "syntax error"),
        ("'unterminated", "syntax error at column 1"),
        ("x = 1", "syntax error"),
        ("import os", "syntax error"),
        ("a; b", "syntax error"),
        ("yield x", "syntax error"),
        ("a\0b", "syntax error: source code string cannot contain null bytes"),
        ("(1 +\n * 2)", "syntax error at line 2, column 2"),
        ("", "empty expression"),
        ("   ", "empty expression"),
    ],
)
def test_syntax_errors(text: str, reason: str) -> None:
    assert reason in rejected(text)


def test_non_string_is_rejected() -> None:
    with pytest.raises(ExpressionError, match="must be a string, not int"):
        parse_expression(3)  # type: ignore[arg-type]


def test_length_limit() -> None:
    near = "a" * 500
    assert parse_expression(near).names == {near}
    message = rejected("a" * 501)
    assert "expression too long (501 characters, max 500)" in message
    assert len(message) < 200  # the message shows a shortened copy of the expression
    assert "too long" in rejected("1 + " * 10_000 + "1")
    assert "too long" in rejected("x" * 1_000_000)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 40 + "a" + ")" * 40,
        "(" * 100 + "1" + ")" * 100,
        "(" * 240 + "1" + ")" * 240,
        "[" * 40 + "]" * 40,
        "-" * 40 + "1",
        "not " * 40 + "a",
        " + ".join(["a"] * 40),
        "len(" * 40 + "x" + ")" * 40,
        "a" + ".b" * 40,
        "a" + "[0]" * 40,
    ],
)
def test_deep_nesting_is_rejected(text: str) -> None:
    message = rejected(text)
    assert "nested too deeply" in message or "syntax error" in message


def test_moderate_nesting_is_fine() -> None:
    assert ev("(" * 20 + "1" + ")" * 20, {}) == 1
    assert ev("not " * 20 + "a", {"a": True}) is True
    assert ev(" + ".join(["1"] * 20), {}) == 20
    assert ev("a" + ".b" * 20, {}) is None


def test_parse_time_checks_come_before_any_evaluation() -> None:
    # Rejected expressions never reach the interpreter, even if parts of them are harmless.
    assert "function call 'open'" in rejected("true or open('f')")
    assert "lambda" in rejected("false and (lambda: 1)")


def test_never_uses_eval_exec_or_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval/exec/compile must not be called")

    expression = parse_expression("not verdict.passed and len(items) > 0 and lower(label) == 'x'")
    for name in ("eval", "exec"):
        monkeypatch.setattr(builtins, name, forbidden)
    assert expression.truthy(STATE) is False
    # ast.parse is the only parser; the module source mentions no eval/exec/compile calls.
    source = ast.parse(Path(expr_module.__file__).read_text(encoding="utf-8"))
    called = {
        node.func.id
        for node in ast.walk(source)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__", "getattr"}
