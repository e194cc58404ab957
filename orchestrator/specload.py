"""Reading a workflow: YAML to a `WorkflowSpec`, `${VAR}` interpolation, errors, JSON Schema.

YAML is composed with SafeLoader and built by hand from the nodes, so only plain values exist
(any other tag is refused, never constructed) and every key path keeps its line. Every problem
is one `SpecError` naming the file, the key path and the line. The models themselves, and the
checks between their fields, are in orchestrator.spec.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import ValidationError

from orchestrator.errors import SpecError
from orchestrator.spec import KeyPath, WorkflowSpec

_TAG = "tag:yaml.org,2002:"
_CONSTRUCTED = {_TAG + t for t in ("null", "bool", "int", "float")}
_AS_TEXT = {_TAG + "str", _TAG + "timestamp"}  # a date stays the text that was written
_MAX_NODES = 50_000  # a workflow has hundreds; more means aliases multiplying without end
_VAR = re.compile(r"\$\$\{|\$\{(?:(?P<name>[A-Za-z_]\w*)(?::-(?P<default>[^}]*))?\})?", re.A)


class _Builder:
    """Plain data from a composed YAML node tree, recording the line of every key path."""

    def __init__(self, file: str | None, environ: Mapping[str, str]) -> None:
        self.file, self.environ, self.nodes = file, environ, 0
        self.lines: dict[KeyPath, int] = {}
        self.loader = yaml.SafeLoader("")

    def fail(self, message: str, node: yaml.Node | None, path: KeyPath) -> SpecError:
        line = node.start_mark.line + 1 if node else _line_for(path, self.lines)
        return SpecError(message, file=self.file, path=path, line=line)

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise self.fail("the YAML expands to too many values (aliases?)", node, path)
        if isinstance(node, yaml.ScalarNode) and node.tag in _AS_TEXT:
            return _VAR.sub(lambda match: self.substitute(match, path), node.value)
        if isinstance(node, yaml.ScalarNode) and node.tag in _CONSTRUCTED:
            return self.loader.yaml_constructors[node.tag](self.loader, node)
        if isinstance(node, yaml.SequenceNode) and node.tag == _TAG + "seq":
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*path, index)))
            return items
        if isinstance(node, yaml.MappingNode) and node.tag == _TAG + "map":
            return self.mapping(node, path)
        tag = node.tag.replace(_TAG, "!!")
        raise self.fail(f"unsupported YAML tag {tag!r}: only plain values", node, path)

    def substitute(self, match: re.Match[str], path: KeyPath) -> str:
        """`${VAR}`, `${VAR:-default}` (used when VAR is unset or empty), `$${` -> `${`."""
        name, default = match["name"], match["default"]
        if match.group(0) == "$${":
            return "${"
        if name is None:
            message = "malformed ${...}: write ${VAR} or ${VAR:-default}, or $${ for a literal ${"
            raise self.fail(message, None, path)
        found = self.environ.get(name)
        if default is not None and not found:
            return default
        if found is None:
            write = f"${{{name}:-default}}"
            raise self.fail(
                f"environment variable {name} is not set; set it or write {write}", None, path
            )
        return found

    def key(self, node: yaml.Node, path: KeyPath) -> str:
        if isinstance(node, yaml.ScalarNode) and node.tag in _AS_TEXT | _CONSTRUCTED:
            return str(node.value)  # as written: `yes:` is the key "yes", not True
        raise self.fail("a key must be plain text", node, path)

    def mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        first_seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            key = self.key(key_node, path)
            if key in first_seen:
                message = f"duplicate key {key!r} (first at line {first_seen[key]})"
                raise self.fail(message, key_node, (*path, key))
            first_seen[key] = key_node.start_mark.line + 1
        flat = yaml.MappingNode(node.tag, list(node.value), node.start_mark, node.end_mark)
        self.loader.flatten_mapping(flat)  # `<<: *anchor` merges; the mapping's own keys win
        out: dict[str, Any] = {}
        for key_node, value_node in flat.value:
            key = self.key(key_node, path)
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key))
        return out


def _line_for(path: KeyPath, lines: Mapping[KeyPath, int]) -> int | None:
    """The line of `path`, else of its nearest ancestor (a missing key: its parent's line)."""
    return next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None)


_MESSAGES = {
    **dict.fromkeys(("float_parsing", "float_type"), "expected a number"),
    **dict.fromkeys(("int_parsing", "int_type", "int_from_float"), "expected a whole number"),
    **dict.fromkeys(("bool_parsing", "bool_type"), "expected true or false"),
    **dict.fromkeys(("dict_type", "model_type", "model_attributes_type"), "expected a mapping"),
    **dict.fromkeys(("too_short", "string_too_short"), "must not be empty"),
    "string_type": "expected a string",
    "literal_error": "expected {expected}",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


def _show(value: object) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _walk(loc: KeyPath) -> tuple[Any, KeyPath]:
    """The model type at `loc`, and `loc` without the tags pydantic adds for a tagged union
    (`policies.p.cascade.samples` -> `policies.p.samples`: the YAML has no `cascade` key)."""
    node: Any = WorkflowSpec
    path: list[str | int] = []
    for part in loc:
        if get_origin(node) is Annotated:
            node = get_args(node)[0]
        members = [m for m in get_args(node) if isinstance(m, type)] if get_args(node) else []
        tagged = {getattr(m.model_fields.get("type"), "default", None): m for m in members
                  if hasattr(m, "model_fields")}  # fmt: skip
        if get_origin(node) is not dict and part in tagged:
            node = tagged[part]  # the union member the tag names; the tag is not a YAML key
            continue
        path.append(part)
        if get_origin(node) is dict:
            node = get_args(node)[1]  # `part` is a key, e.g. a profile name
        else:
            field = getattr(node, "model_fields", {}).get(part)
            node = field.annotation if field else None
    return node, tuple(path)


def _fields_at(loc: KeyPath) -> list[str]:
    """The keys allowed at `loc`, e.g. ("models", "thinker", "price") -> Price's fields."""
    node, _ = _walk(loc)
    fields = getattr(node, "model_fields", {})
    return [f.alias or name for name, f in fields.items()]


def _describe(error: Any) -> str:
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    if kind == "extra_forbidden":
        key, allowed = str(loc[-1]), _fields_at(loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            return f"unknown key {key!r}; did you mean {close[0]!r}?"
        return f"unknown key {key!r}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = error.get("ctx", {})
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        tags = tags or ["label", "fixed", "cascade", "self_consistency", "router"]
        tag = ctx.get("tag")
        close = difflib.get_close_matches(str(tag), tags, n=1) if tag else []
        hint = f"; did you mean {close[0]!r}?" if close else f" (one of: {', '.join(tags)})"
        return f"unknown type {tag!r}{hint}" if tag else f"missing required key 'type'{hint}"
    if loc[-1:] == ("[key]",):
        return f"invalid profile name {value!r}: use letters, digits, _ and -, first a letter or _"
    if loc == ("models",) and kind == "too_short":
        return "define at least one model profile"
    if kind in _MESSAGES:
        ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in error.get("ctx", {}).items()}
        message = _MESSAGES[kind].format(**ctx)
        hint = " (quote it to make it text)" if kind == "string_type" and value is not None else ""
        return f"{message}, got {_show(value)}{hint}"
    return str(error["msg"]).removeprefix("Value error, ")


def _spec_error(exc: ValidationError, file: str | None, lines: Mapping[KeyPath, int]) -> SpecError:
    found = []
    for error in exc.errors(include_url=False):
        path = _walk(tuple(p for p in error["loc"] if p != "[key]"))[1]
        found.append((path, _line_for(path, lines), _describe(error)))
    (path, line, message), rest = found[0], found[1:]
    others = [str(SpecError(m, file=file, path=p, line=n)) for p, n, m in rest]
    return SpecError("\n".join([message, *others]), file=file, path=path, line=line)


def parse_workflow(
    text: str, *, file: str | None = None, environ: Mapping[str, str] | None = None
) -> WorkflowSpec:
    """Parse workflow YAML into a `WorkflowSpec`; any problem is one `SpecError` with its line."""
    builder = _Builder(file, os.environ if environ is None else environ)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _TAG + "null"):
            raise SpecError("the workflow is empty; it needs at least name: and models:", file=file)
        if not isinstance(root, yaml.MappingNode):
            got = "a list" if isinstance(root, yaml.SequenceNode) else repr(root.value)[:60]
            message = f"the top level must be a mapping (name:, models:, ...), got {got}"
            raise builder.fail(message, root, ())
        builder.lines[()] = root.start_mark.line + 1
        data = builder.build(root, ())
    except RecursionError:
        raise SpecError("the YAML nests too deeply (an alias inside itself?)", file=file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = ", ".join(filter(None, [exc.context, exc.problem])) or "syntax error"
        line = mark.line + 1 if mark else None
        if line and "${" in "".join(text.splitlines()[line - 1 : line]):
            problem += "; quote values holding ${...} inside {...} or [...]"
        raise SpecError(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    try:
        base_dir = Path(file).resolve().parent if file else None
        spec = WorkflowSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise _spec_error(exc, file, builder.lines) from None
    spec._source = file
    spec._base_dir = base_dir
    return spec


def spec_from_dict(data: Mapping[str, Any], *, base_dir: Path | None = None) -> WorkflowSpec:
    """Validate workflow data built in Python (see `WorkflowBuilder`) as if it were YAML."""
    try:
        spec = WorkflowSpec.model_validate(dict(data), context={"base_dir": base_dir})
    except ValidationError as exc:
        raise _spec_error(exc, None, {}) from None
    spec._base_dir = base_dir
    return spec


def _shipped_dirs() -> list[Traversable]:
    """Where shipped workflows live: the installed package, else a source checkout's graphs/."""
    dirs: list[Traversable] = []
    with contextlib.suppress(ImportError, TypeError, ValueError):  # not installed: no package
        dirs.append(resources.files("orchestrator._graphs"))
    checkout = Path(__file__).resolve().parent.parent / "graphs"
    if checkout.is_dir():
        dirs.append(checkout)
    return dirs


def load_workflow(path: str | os.PathLike[str]) -> WorkflowSpec:
    """Load a workflow file, or a shipped workflow by bare name (`quickstart`)."""
    text_path = str(path)
    source: Traversable = Path(path)
    is_bare = not re.search(r"[/\\.]", text_path)
    if is_bare and not Path(path).exists():
        shipped = [d / f"{text_path}.yaml" for d in _shipped_dirs()]
        source = next((f for f in shipped if f.is_file()), source)
    if isinstance(source, Path) and not source.exists():
        names = sorted(
            {f.name[:-5] for d in _shipped_dirs() for f in d.iterdir() if f.name.endswith(".yaml")}
        )
        hint = f" (shipped workflows: {', '.join(names)})" if is_bare and names else ""
        raise SpecError(f"no such workflow file: {text_path}{hint}")
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError("the workflow file is not UTF-8 text", file=str(source)) from None
    except OSError as exc:
        raise SpecError(f"cannot read the workflow: {exc.strerror}", file=str(source)) from None
    return parse_workflow(text, file=str(source) if is_bare else text_path)


def _allow_interpolation(node: Any) -> Any:
    """Let editors accept a `${VAR}` string wherever a number, boolean or fixed word goes."""
    if isinstance(node, list):
        return [_allow_interpolation(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _allow_interpolation(value) for key, value in node.items()}
    if node.get("type") in ("integer", "number", "boolean") or "enum" in node or "const" in node:
        meta = {k: node.pop(k) for k in ("title", "description", "default") if k in node}
        return {**meta, "anyOf": [node, {"type": "string", "pattern": r"\$\{"}]}
    if "patternProperties" in node:
        node.setdefault("additionalProperties", False)
    return node


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the workflow YAML, for editors and `orchestrator schema`."""
    schema = _allow_interpolation(WorkflowSpec.model_json_schema())
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
