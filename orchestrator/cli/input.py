"""Reading the task: text that is really text, or one clear message saying what is wrong."""

from __future__ import annotations

import sys

from ..errors import UsageError


def check_text(text: str, where: str) -> str:
    """`text` if it is valid text; else a UsageError naming what is wrong and where."""
    if "\x00" in text:
        raise UsageError(f"{where} contains NUL bytes: give text, not a binary file")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # argv bytes that are not UTF-8 arrive as lone surrogates (surrogateescape)
        raise UsageError(f"{where} is not UTF-8 text (at character {exc.start})") from None
    return text


def read_task(value: str) -> str:
    """The task from `--input TEXT`, or from stdin for `--input -`."""
    if value != "-":
        return check_text(value, "--input")
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("--input - reads the task from stdin, but nothing was piped in")
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"the input on stdin is not UTF-8 text (byte {exc.start}: "
            f"{data[exc.start : exc.start + 1]!r}): convert it, e.g. with iconv -t UTF-8"
        ) from None
    return check_text(text.removeprefix("\ufeff"), "the input on stdin")
