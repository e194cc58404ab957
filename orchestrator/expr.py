"""A small, safe expression language for conditional edges: `when: "attempts < 3 and not ok"`.

The text is parsed with `ast.parse(mode="eval")`, checked against an allowlist of node types and
walked by the small interpreter below: nothing is ever handed to eval, exec or compile-to-code.

Semantics (data only, no objects):

- A name reads a top-level state key. A key that is not set yet evaluates to None, not an error,
  so `missing == None` and `not missing` are true. `true`, `false`, `null` are literals too.
- `a.b` is a mapping lookup (`state["a"]["b"]`); it is None when `a` is not a mapping or has no
  key `b`. `a[k]` takes a constant or a name and indexes a mapping, list, tuple or string; a
  missing key, an out-of-range index or a None base gives None.
- None acts as an empty container for `len` and `in`: `len(missing) == 0`, `'x' in missing` is
  false. Other type errors (`'a' < 3`, `missing < 3`, `'a' - 1`) raise ExpressionError.
- Operators: `and or not`, `== != < <= > >= in not in` (chained), unary `-`, `+ - * / %` on
  numbers and `+` on strings. Functions: len, lower, upper, int, float, str, abs, min, max, where
  `lower(x)` is `str(x).lower()`. No `**`, methods, comprehensions, lambdas, `:=` or f-strings.
- Bounds: source <= 500 characters, nesting <= 32 levels, strings built by `+` <= 10,000 chars.
"""

from __future__ import annotations

import ast
import io
import operator
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import ExpressionError

__all__ = ["Expression", "ExpressionError", "parse_expression"]

MAX_SOURCE = 500
MAX_DEPTH = 32
MAX_STRING = 10_000
_LITERAL_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}


def _tname(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float)


def _len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise TypeError(f"len() of {_tname(value)}")


def _contains(item: Any, container: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, str) and not isinstance(item, str):
        raise TypeError(f"'in <string>' needs a string on the left, not {_tname(item)}")
    if isinstance(container, str | list | tuple | Mapping):
        return item in container
    raise TypeError(f"'in' needs a string, list or mapping on the right, not {_tname(container)}")


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "lower": lambda value: str(value).lower(),
    "upper": lambda value: str(value).upper(),
    "int": int,
    "float": float,
    "str": str,
    "abs": abs,
    "min": min,
    "max": max,
}
_VARIADIC = {"min", "max"}
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: _contains,
    ast.NotIn: lambda item, container: not _contains(item, container),
}
_DESCRIPTIONS: dict[type[ast.AST], str] = {
    ast.NamedExpr: "assignment expression (:=)",
    ast.JoinedStr: "f-string",
    ast.IfExp: "conditional expression (x if c else y)",
    ast.Dict: "dict literal",
    ast.Set: "set literal",
    **dict.fromkeys([ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp], "comprehension"),
}


def _symbol(op: ast.AST) -> str:
    """`ast.Pow()` -> `**`, written out by ast.unparse (which only prints, never runs code)."""
    x, y = ast.Name("x"), ast.Name("y")
    node: ast.AST
    if isinstance(op, ast.cmpop):
        node = ast.Compare(x, [op], [y])
    elif isinstance(op, ast.unaryop):
        node = ast.UnaryOp(op, y)
    elif isinstance(op, ast.operator):
        node = ast.BinOp(x, op, y)
    else:
        return type(op).__name__
    return ast.unparse(node).removeprefix("x").removesuffix("y").strip()


def _unsupported(what: str, source: str) -> ExpressionError:
    return ExpressionError(f"unsupported syntax: {what}", source)


def _check(node: ast.AST, depth: int, names: set[str], source: str) -> None:
    """Reject anything outside the allowlist; collect the state names the expression reads."""

    def visit(*children: ast.AST) -> None:
        for child in children:
            _check(child, depth + 1, names, source)

    def ident(name: str) -> None:
        if name.startswith("__"):
            raise _unsupported(f"dunder name {name!r}", source)

    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression nested too deeply (max {MAX_DEPTH} levels)", source)
    match node:
        case ast.Constant(value=value):
            if value is not None and not isinstance(value, str | int | float):
                raise _unsupported(f"{_tname(value)} literal", source)
        case ast.Name(id=name):
            ident(name)
            if name not in _LITERAL_NAMES:
                names.add(name)
        case ast.List(elts=elts) | ast.Tuple(elts=elts) | ast.BoolOp(values=elts):
            visit(*elts)
        case ast.UnaryOp(op=ast.Not() | ast.USub(), operand=operand):
            visit(operand)
        case ast.UnaryOp(op=bad_op) | ast.BinOp(op=bad_op) if type(bad_op) not in _BINOPS:
            unary = "unary " if isinstance(bad_op, ast.unaryop) else ""
            raise _unsupported(f"{unary}operator {_symbol(bad_op)!r}", source)
        case ast.BinOp(left=left, right=right):
            visit(left, right)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            for cmp in ops:
                if type(cmp) not in _CMPOPS:
                    hint = " (use == or !=)" if isinstance(cmp, ast.Is | ast.IsNot) else ""
                    raise _unsupported(f"operator {_symbol(cmp)!r}{hint}", source)
            visit(left, *comparators)
        case ast.Attribute(value=value, attr=attr):
            ident(attr)
            visit(value)
        case ast.Subscript(value=value, slice=index):
            if not isinstance(index, ast.Name | ast.Slice) and not _constant_index(index):
                raise _unsupported("index must be a constant or a name", source)
            visit(value, index)
        case ast.Call():
            visit(*_call_arguments(node, source))
        case _:
            raise _unsupported(_DESCRIPTIONS.get(type(node), type(node).__name__.lower()), source)


def _call_arguments(node: ast.Call, source: str) -> list[ast.expr]:
    """The arguments of a call to an allowed function with as many as it takes, else an error."""
    match node:
        case ast.Call(func=ast.Name(id=fname), args=args, keywords=keywords):
            if fname not in _FUNCTIONS:
                what = f"function call {fname!r} (allowed functions: {', '.join(_FUNCTIONS)})"
                raise _unsupported(what, source)
            if keywords:
                raise _unsupported("keyword arguments", source)
            if not args or (len(args) != 1 and fname not in _VARIADIC):
                many = "at least one argument" if fname in _VARIADIC else "exactly one argument"
                raise ExpressionError(f"{fname}() takes {many}", source)
            return args
        case ast.Call(func=ast.Attribute(value=value, attr=attr)):
            hint = f" (use {attr}({ast.unparse(value)}))" if attr in _FUNCTIONS else ""
            raise _unsupported(f"method call '{ast.unparse(node)}'{hint}", source)
    raise _unsupported("call of a computed function", source)


def _constant_index(index: ast.AST) -> bool:
    """`0`, `-1` or `'key'`."""
    if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub):
        return isinstance(index.operand, ast.Constant) and type(index.operand.value) is int
    return isinstance(index, ast.Constant) and type(index.value) in (int, str)


def _bracket_depth(source: str) -> int:
    """How deeply (), [] and {} nest; redundant parentheses leave no trace in the AST."""
    depth = deepest = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.OP and token.string in {"(", "[", "{"}:
                depth += 1
                deepest = max(deepest, depth)
            elif token.type == tokenize.OP and token.string in {")", "]", "}"}:
                depth -= 1
    except (tokenize.TokenError, SyntaxError):
        pass  # ast.parse accepted it; the AST depth check still bounds the work
    return deepest


def _index(base: Any, key: Any) -> Any:
    if base is None:
        return None
    if isinstance(base, Mapping):
        return base.get(key)
    if isinstance(base, str | list | tuple):
        if isinstance(key, bool) or not isinstance(key, int):
            raise TypeError(f"{_tname(base)} index must be an integer, not {_tname(key)}")
        return base[key] if -len(base) <= key < len(base) else None
    raise TypeError(f"cannot index {_tname(base)}")


def _arith(op: ast.operator, left: Any, right: Any) -> Any:
    if isinstance(op, ast.Add) and isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_STRING:
            raise ValueError(f"string result longer than {MAX_STRING} characters")
        return left + right
    if not (_is_number(left) and _is_number(right)):
        raise TypeError(f"cannot apply {_symbol(op)} to {_tname(left)} and {_tname(right)}")
    return _BINOPS[type(op)](left, right)


def _eval(node: ast.AST, state: Mapping[str, Any]) -> Any:
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            return _LITERAL_NAMES[name] if name in _LITERAL_NAMES else state.get(name)
        case ast.List(elts=elts):
            return [_eval(elt, state) for elt in elts]
        case ast.Tuple(elts=elts):
            return tuple(_eval(elt, state) for elt in elts)
        case ast.BoolOp(op=op, values=values):
            result: Any = None
            for value in values:
                result = _eval(value, state)
                if (not result) if isinstance(op, ast.And) else result:
                    break
            return result
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _eval(operand, state)
        case ast.UnaryOp(operand=operand):
            value = _eval(operand, state)
            if not _is_number(value):
                raise TypeError(f"cannot negate {_tname(value)}")
            return -value
        case ast.BinOp(op=op, left=left, right=right):
            return _arith(op, _eval(left, state), _eval(right, state))
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            current = _eval(left, state)
            for cmp, comparator in zip(ops, comparators, strict=True):
                following = _eval(comparator, state)
                if not _CMPOPS[type(cmp)](current, following):
                    return False
                current = following
            return True
        case ast.Attribute(value=value, attr=attr):
            base = _eval(value, state)
            return base.get(attr) if isinstance(base, Mapping) else None
        case ast.Subscript(value=value, slice=index):
            return _index(_eval(value, state), _eval(index, state))
        case ast.Call(func=ast.Name(id=fname), args=args):
            return _FUNCTIONS[fname](*(_eval(arg, state) for arg in args))
    raise TypeError(f"unsupported node {type(node).__name__}")  # unreachable after _check


@dataclass(frozen=True)
class Expression:
    """A parsed, checked expression; `names` are the top-level state keys it reads."""

    source: str
    names: frozenset[str]
    tree: ast.Expression = field(repr=False, compare=False)

    def evaluate(self, state: Mapping[str, Any]) -> Any:
        """The expression's value on `state`; unset keys read as None. Raises ExpressionError."""
        try:
            return _eval(self.tree.body, state)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ExpressionError(f"cannot evaluate: {exc}", self.source) from None

    def truthy(self, state: Mapping[str, Any]) -> bool:
        return bool(self.evaluate(state))

    def __str__(self) -> str:
        return self.source


def parse_expression(text: str) -> Expression:
    """Parse and check `text`; raises ExpressionError saying what is wrong and where."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, not {_tname(text)}")
    source = text.strip()
    if not source:
        raise ExpressionError("empty expression")
    if len(source) > MAX_SOURCE:
        raise ExpressionError(
            f"expression too long ({len(source)} characters, max {MAX_SOURCE})", source
        )
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        line = f"line {exc.lineno}, " if exc.lineno and exc.lineno > 1 else ""
        where = f" at {line}column {exc.offset}" if exc.offset else ""
        where = " at end of expression" if exc.offset == 0 else where
        raise ExpressionError(f"syntax error{where}: {exc.msg}", source) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"syntax error: {exc}", source) from None
    names: set[str] = set()
    _check(tree.body, 1, names, source)
    if _bracket_depth(source) > MAX_DEPTH:
        raise ExpressionError(f"expression nested too deeply (max {MAX_DEPTH} levels)", source)
    return Expression(source, frozenset(names), tree)
