"""Separating a reasoning trace from the visible answer.

Models put their thinking in three places: a `reasoning_content` field (DeepSeek, older vLLM), a
`reasoning` field (newer vLLM) or `<think>…</think>` inside the content (local models). DeepSeek-R1
often emits only the closing tag, because its chat template already opened the block. The trace is
kept apart so it never reaches another prompt or the answer.

`split_trace` reads a whole answer; `StreamFilter` reads one as it streams, and what it shows is
always computed by the same rules, so a streamed answer ends exactly as the finished one reads.
"""

from __future__ import annotations

import re

_OPEN = "<think>"
_CLOSE = "</think>"
_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def _split(content: str) -> tuple[str, list[str], bool]:
    """The answer (not yet stripped), the traces in order, and whether a block is still open."""
    traces: list[str] = []

    def keep(match: re.Match[str]) -> str:
        traces.append(match.group(1).strip())
        return ""

    answer = _BLOCK.sub(keep, content)
    if _CLOSE in answer:
        # A lone closing tag: everything before it was thinking.
        before, _, answer = answer.rpartition(_CLOSE)
        traces.insert(0, before.replace(_OPEN, "").strip())
    is_open = _OPEN in answer
    if is_open:
        # Cut off mid-thought: the rest is trace, and there is no answer yet.
        answer, _, rest = answer.partition(_OPEN)
        traces.append(rest.strip())
    return answer, traces, is_open


def split_trace(content: str) -> tuple[str, str | None]:
    """Return (answer, trace) from content that may carry `<think>` blocks."""
    answer, traces, _ = _split(content)
    trace = "\n\n".join(t for t in traces if t)
    return answer.strip(), trace or None


def _hold_partial_tag(text: str) -> str:
    """`text` without a tail that could be the start of a tag split across chunks."""
    for cut in range(min(len(text), len(_CLOSE) - 1), 0, -1):
        tail = text[-cut:]
        if _OPEN.startswith(tail) or _CLOSE.startswith(tail):
            return text[:-cut]
    return text


class StreamFilter:
    """Reads streamed content and tells how much of it is, as far as can be known, the answer.

    `feed` and `close` return the whole visible answer so far, not a delta: a lone `</think>`
    can turn text already visible into trace, and only the caller (see `wire.TokenRelay`) knows
    what it has shown. Short of that, each result extends the previous one.

    With `hold=True` (models that may open a think block implicitly) nothing is visible until a
    `</think>` arrives or the stream ends, because until then any text may turn out to be trace.
    """

    def __init__(self, *, hold: bool = False) -> None:
        self._hold = hold
        self._pieces: list[str] = []
        self._tail = ""  # the last few characters fed, to spot a tag split across chunks
        self._closed = False  # a `</think>` has been seen
        self._answer = ""  # `_split(text)[0]` of everything fed
        # True when appending text without "<" cannot change how earlier text splits (no open
        # block, no partial tag at the end): then the answer just grows by that text, and a
        # long answer is not re-scanned on every chunk.
        self._settled = True

    @property
    def text(self) -> str:
        """Everything fed so far, tags and trace included."""
        return "".join(self._pieces)

    def feed(self, piece: str) -> str:
        self._pieces.append(piece)
        self._tail = (self._tail + piece)[-(len(_CLOSE) + len(piece)) :]
        self._closed = self._closed or _CLOSE in self._tail
        if self._settled and "<" not in piece:
            self._answer += piece
        else:
            self._answer, _, is_open = _split(self.text)
            self._settled = not is_open and _hold_partial_tag(self._answer) == self._answer
        if self._hold and not self._closed:
            return ""
        # Trailing whitespace is held back too: the finished answer is stripped, and what is
        # shown must stay a prefix of it.
        return _hold_partial_tag(self._answer).strip()

    def close(self) -> str:
        """The visible answer once the stream has ended: `split_trace`'s answer."""
        return split_trace(self.text)[0]
