"""Pulling the answer out of a model's text, so answers can be compared, voted on and scored.

`extract(text, how)` with `how` one of:

- `text`: the text normalized (case, spaces, surrounding punctuation and markdown);
- `last_number`: the last number, GSM8K style: `#### 42` wins if present; thousands separators,
  `$`, `%` (a unit: `25%` is 25), signs and simple fractions (`3/4`) are understood; returned
  in a canonical form;
- `choice`: a multiple-choice letter A–E (`(B)`, `Answer: C`, `the answer is d`);
- `regex:PATTERN`: the last match (its first group, if it has one);
- `json:field.path`: a field of the JSON object in the text (a ```json fence is fine).

None means nothing could be extracted: such answers never agree with anything.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from typing import Any

_NUMBER = re.compile(
    r"(?<![\w.])[-+−]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?%?(?![\w])"
)
_GSM_ANSWER = re.compile(r"####\s*(.+)")
_CHOICE_PATTERNS = (
    re.compile(r"answer\s*(?:is|:)?\s*\(?([A-E])\)?(?![A-Za-z])", re.I),
    re.compile(r"^\s*\(?([A-E])[).:]", re.M),
    re.compile(r"\(([A-E])\)"),
    re.compile(r"(?<![A-Za-z])([A-E])(?![A-Za-z])"),
)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def normalize(text: str) -> str:
    """Lower case, single spaces, no markdown emphasis or surrounding punctuation."""
    text = re.sub(r"[*_`]+", "", text).strip().lower()
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .,;:!?\"'()[]")


def parse_number(token: str) -> Fraction | None:
    """A number token as `_NUMBER` matches it, exactly: `$1,234.50` -> 1234.5, `3/4` -> 0.75.

    `%` is read as a unit, not a scale: `25%` is 25, as answer keys write "25" for it.
    """
    cleaned = token.replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    cleaned = cleaned.rstrip("%")
    try:
        if "/" in cleaned:
            top, bottom = cleaned.split("/")
            value = Fraction(top) / Fraction(bottom)
        else:
            value = Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None
    return value


def last_number(text: str) -> Fraction | None:
    """The answer's number: after `####` if present, else the last number in the text."""
    marked = _GSM_ANSWER.findall(text)
    if marked:
        text = marked[-1]
    for token in reversed(_NUMBER.findall(text)):
        value = parse_number(token)
        if value is not None:
            return value
    return None


def number_text(value: Fraction) -> str:
    """A canonical spelling: `42`, `-0.5`, `0.333333` (six decimals at most)."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


def choice(text: str) -> str | None:
    """The multiple-choice letter the text settles on."""
    for pattern in _CHOICE_PATTERNS:
        found = pattern.findall(text)
        if found:
            return str(found[-1]).upper()
    return None


def json_field(text: str, path: str) -> Any:
    """The value at `path` (`a.b[0].c`) of the JSON object in `text`, or None."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text[text.find("{") : text.rfind("}") + 1]
    try:
        value: Any = json.loads(body)
    except json.JSONDecodeError:
        return None
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
    return value


def regex(text: str, pattern: str) -> str | None:
    """The last match of `pattern` in `text` (its first group, if it has one)."""
    matches = list(re.finditer(pattern, text))
    if not matches:
        return None
    last = matches[-1]
    return last.group(1) if last.re.groups else last.group(0)


def extract(text: str, how: str) -> str | None:
    """The comparable answer in `text` (see the module docstring for `how`)."""
    if how == "text":
        return normalize(text) or None
    if how == "last_number":
        number = last_number(text)
        return None if number is None else number_text(number)
    if how == "choice":
        return choice(text)
    if how.startswith("regex:"):
        found = regex(text, how[len("regex:") :])
        return None if found is None else normalize(found)
    if how.startswith("json:"):
        value = json_field(text, how[len("json:") :])
        if value is None:
            return None
        return normalize(value) if isinstance(value, str) else json.dumps(value, sort_keys=True)
    raise ValueError(f"unknown extraction {how!r}")
