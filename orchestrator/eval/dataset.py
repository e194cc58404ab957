"""Evaluation datasets: `load_dataset(path)` reads JSONL or CSV rows into `Item`s.

A row is `{"id", "input", "target", "scorer"?, ...}`:

- `input` (required): the task, a non-empty string;
- `target` (required, not null): what a right answer matches. In JSONL any JSON value (a
  number, a string, an object for `json:` fields...); in CSV, text;
- `id` (optional): a string or an integer, unique in the file; a row without one is called
  `line N`, after the line it starts on (so it is still unique, and easy to find);
- `scorer` (optional): the row's scorer (`orchestrator.eval.scorers`), else the run's default;
- any other field lands in `Item.extra`: `tests` for `code` rows, `criteria` for `judge` rows...

The format follows the extension: `.jsonl` / `.ndjson` (one JSON object per line; blank lines
are skipped) or `.csv` (a header row naming the columns; `input` and `target` are required,
`id` and `scorer` optional, other columns extra; quoted cells may span lines; empty cells of
`id`, `scorer` and extra columns count as absent). Files are UTF-8 (a BOM is fine).

A bad row raises `UsageError` naming the file, the line the row starts on, and what to do: not
JSON, not an object, a missing or empty `input` or `target`, a duplicate id, an unknown
scorer, a target the scorer cannot use (no number for `numeric`, a bad pattern for `regex`, no
`tests` for `code`). An empty file is an error too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError, field_validator

from ..errors import UsageError
from .scorers import check_item, parse_scorer

__all__ = ["Item", "load_dataset"]

_JSONL = (".jsonl", ".ndjson")
_CSV = (".csv",)
_FIELDS = ("id", "input", "target", "scorer")
_SHAPE = 'each row is {"id", "input", "target", "scorer"?}'


@dataclass(frozen=True)
class Item:
    """One dataset row. `extra` holds the row's other fields, read-only; `line` is where the
    row starts in its file (0 for items made in code)."""

    id: str
    input: str
    target: Any = field(hash=False)
    scorer: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    line: int = field(default=0, compare=False)


class _Row(BaseModel):
    """The shape every row must have, whichever the file format."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: StrictStr | StrictInt | None = None
    input: StrictStr
    target: Any
    scorer: StrictStr | None = None

    @field_validator("input")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the input is empty")
        return value

    @field_validator("target")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("the target is null")
        return value


def load_dataset(path: str | Path, default_scorer: str | None = None) -> tuple[Item, ...]:
    """The items of a JSONL or CSV file, in file order; each row is checked against its scorer
    (or `default_scorer`, checked first). Raises UsageError for a bad file or row."""
    path = Path(path)
    if default_scorer is not None:
        parse_scorer(default_scorer)
    suffix = path.suffix.lower()
    if suffix not in _JSONL + _CSV:
        raise UsageError(f"{path}: a dataset is a .jsonl or a .csv file")
    text = _read(path)
    rows = _jsonl_rows(text, path) if suffix in _JSONL else _csv_rows(text, path)
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        item = _item(row, line, path, default_scorer)
        if item.id in first_line:
            raise UsageError(
                f"{path}:{line}: duplicate id {item.id!r} (first on line {first_line[item.id]});"
                " give every row its own id"
            )
        first_line[item.id] = line
        items.append(item)
    if not items:
        raise UsageError(f"{path}: no rows; {_SHAPE}")
    return tuple(items)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such dataset file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _jsonl_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    # Split on "\n" only: str.splitlines would also split at U+2028 inside a JSON string.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{path}:{number}: not JSON ({exc.msg}, column {exc.colno}); "
                "each line must be one JSON object"
            ) from None
        except ValueError as exc:
            raise UsageError(f"{path}:{number}: {exc}; use a number or null") from None
        if not isinstance(row, dict):
            kind = type(row).__name__.replace("dict", "object").replace("list", "array")
            raise UsageError(f"{path}:{number}: a JSON {kind}, not an object; {_SHAPE}")
        yield number, row


def _csv_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _header(reader, path)
    end = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UsageError(f"{path}:{end + 1}: not valid CSV ({exc})") from None
        start, end = end + 1, reader.line_num
        if not cells:
            continue  # a blank line
        if len(cells) != len(header):
            raise UsageError(
                f"{path}:{start}: {len(cells)} fields, but the header has {len(header)}; "
                "quote cells that contain commas or line breaks"
            )
        row: dict[str, Any] = dict(zip(header, cells, strict=True))
        for name in header:
            if name not in ("input", "target") and row[name] == "":
                del row[name]  # CSV cannot leave a cell out: an empty one is absent
        yield start, row


def _header(reader: Iterator[list[str]], path: Path) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise UsageError(f"{path}: no rows; the first line names the columns") from None
    except csv.Error as exc:
        raise UsageError(f"{path}:1: not valid CSV ({exc})") from None
    missing = [name for name in ("input", "target") if name not in header]
    if missing:
        raise UsageError(
            f"{path}:1: the header has no {' or '.join(missing)} column; "
            f"name the columns id,input,target (scorer and others optional)"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated or "" in header:
        what = f"repeats {', '.join(repeated)}" if repeated else "has an unnamed column"
        raise UsageError(f"{path}:1: the header {what}; name every column once")
    return header


def _item(row: dict[str, Any], line: int, path: Path, default_scorer: str | None) -> Item:
    try:
        valid = _Row.model_validate(row)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = str(error["loc"][0]) if error["loc"] else "the row"
        why = (
            "missing" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
        )
        raise UsageError(f"{path}:{line}: {where}: {why}; {_SHAPE}") from None
    extra = {key: value for key, value in row.items() if key not in _FIELDS}
    item_id = str(valid.id) if valid.id is not None else f"line {line}"
    item = Item(item_id, valid.input, valid.target, valid.scorer, MappingProxyType(extra), line)
    try:
        check_item(item, default_scorer)
    except UsageError as exc:
        raise UsageError(f"{path}:{line}: {exc.message}") from None
    return item
