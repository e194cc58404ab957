"""Separating a reasoning trace from the visible answer.

Models put their thinking in three places: a `reasoning_content` field (DeepSeek, older vLLM), a
`reasoning` field (newer vLLM) or `<think>…</think>` inside the content (local models). DeepSeek-R1
often emits only the closing tag, because its chat template already opened the block. The trace is
kept apart so it never reaches another prompt or the answer.
"""

from __future__ import annotations

import re

_OPEN = "<think>"
_CLOSE = "</think>"
_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def split_trace(content: str) -> tuple[str, str | None]:
    """Return (answer, trace) from content that may carry `<think>` blocks."""
    traces: list[str] = []

    def keep(match: re.Match[str]) -> str:
        traces.append(match.group(1).strip())
        return ""

    answer = _BLOCK.sub(keep, content)
    if _CLOSE in answer:
        # A lone closing tag: everything before it was thinking.
        before, _, answer = answer.rpartition(_CLOSE)
        traces.insert(0, before.replace(_OPEN, "").strip())
    if _OPEN in answer:
        # Cut off mid-thought: the rest is trace, and there is no answer yet.
        answer, _, rest = answer.partition(_OPEN)
        traces.append(rest.strip())
    trace = "\n\n".join(t for t in traces if t)
    return answer.strip(), trace or None


class StreamFilter:
    """Feeds streamed text through and returns only what is safe to show as answer.

    With `hold=True` (models that may open a think block implicitly) nothing is shown until a
    `</think>` arrives or the stream ends, because until then any text may turn out to be trace.
    """

    def __init__(self, *, hold: bool = False) -> None:
        self._hold = hold
        self._buffer = ""
        self._shown = 0

    def feed(self, text: str) -> str:
        self._buffer += text
        if self._hold and _CLOSE not in self._buffer:
            return ""
        return self._emit(final=False)

    def close(self) -> str:
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> str:
        visible = self._visible(final=final)
        new = visible[self._shown :]
        self._shown = len(visible)
        return new

    def _visible(self, *, final: bool) -> str:
        text = self._buffer
        if _CLOSE in text and _OPEN not in text.partition(_CLOSE)[0]:
            text = text.rpartition(_CLOSE)[2]
        text = _BLOCK.sub("", text)
        if _OPEN in text:
            text = text.partition(_OPEN)[0]
        elif not final:
            # Hold back a tail that could be the start of a tag split across chunks.
            for cut in range(min(len(text), len(_OPEN) - 1), 0, -1):
                if _OPEN.startswith(text[-cut:]) or _CLOSE.startswith(text[-cut:]):
                    text = text[:-cut]
                    break
        return text.lstrip()
