"""Reading what an OpenAI-compatible endpoint sent back: answer, trace, finish reason, usage.

Bodies are read as plain JSON rather than through the SDK's pydantic types, because servers
that call themselves OpenAI-compatible differ exactly where those types are strict or silent:
content as a list of parts, an `error` object inside a 200 or inside a stream, usage left out,
a stream that stops without `[DONE]`. Nothing here does I/O: `sse_events` walks the lines it
is given, and `TokenRelay` (what the streaming caller has seen, across a call's attempts) only
calls the caller's callbacks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .base import TokenUsage
from .retry import BadResponse, ServerReportedError, StreamCutOff
from .trace import StreamFilter, split_trace

CHARS_PER_TOKEN = 4
# Chat templates wrap each message in a few tokens of their own (OpenAI's: about 4).
MESSAGE_OVERHEAD_TOKENS = 4
DETAIL_LIMIT = 300
_THINKING_PARTS = frozenset({"thinking", "reasoning"})


@dataclass(frozen=True)
class WireAnswer:
    """One attempt's answer as the endpoint gave it; `usage` None when it reported none."""

    content: str
    trace: str | None
    finish_reason: str | None
    usage: TokenUsage | None


# --- pieces of a completion --------------------------------------------------------------------


def content_parts(content: object) -> tuple[str, str]:
    """(text, thinking) of a message's or delta's `content`: a string, null, or a list of parts.

    Parts are `{"type": "text", "text": ...}` (or bare strings); a `thinking` part (Mistral's
    Magistral) holds reasoning, as text or as parts of its own.
    """
    if isinstance(content, str):
        return content, ""
    if not isinstance(content, list):
        return "", ""
    text: list[str] = []
    thinking: list[str] = []
    for part in content:
        if isinstance(part, str):
            text.append(part)
        elif isinstance(part, dict):
            kind = part.get("type", "text")
            if kind in _THINKING_PARTS:
                inner = part.get(kind, part.get("text"))
                thinking.append("".join(content_parts(inner)))
            elif isinstance(part.get("text"), str):
                text.append(part["text"])
    return "".join(text), "".join(thinking)


def _field_trace(message: Mapping[str, Any]) -> str:
    """The reasoning a server put in a field of its own (DeepSeek, vLLM, OpenRouter...)."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def join_trace(content: str, field_trace: str) -> tuple[str, str | None]:
    """The visible answer, and every trace: the reasoning field's first, then any <think>."""
    answer, tagged = split_trace(content)
    traces = [t for t in (field_trace.strip(), tagged) if t]
    return answer, "\n\n".join(traces) or None


def _finish(reason: object, tool_calls: bool, answer: str) -> str | None:
    # We never send tools, so tool calls in place of text are not an answer: say so in the
    # finish reason, whatever the server claimed, and let a wrapper decide (the call was billed).
    if tool_calls and not answer:
        return "tool_calls"
    return reason if isinstance(reason, str) else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def parse_usage(raw: object) -> TokenUsage | None:
    """Billed tokens from a `usage` object; None if there is none to read."""
    if not isinstance(raw, dict) or not (
        isinstance(raw.get("prompt_tokens"), int) or isinstance(raw.get("completion_tokens"), int)
    ):
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    return TokenUsage(
        input_tokens=_count(raw.get("prompt_tokens")),
        cached_input_tokens=_count(
            prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else 0
        ),
        output_tokens=_count(raw.get("completion_tokens")),
        reasoning_tokens=_count(
            completion_details.get("reasoning_tokens")
            if isinstance(completion_details, dict)
            else 0
        ),
    )


def _tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def estimate_usage(body: Mapping[str, Any], answer: str, trace: str | None) -> TokenUsage:
    """Usage for an endpoint that reported none: about four characters per token.

    Input is the request's text (messages and the response schema), output the answer and the
    trace; marked `estimated` so the ledger can charge such a call its worst case.
    """
    messages = body.get("messages") or []
    chars = sum(len(str(m.get("content") or "")) for m in messages if isinstance(m, dict))
    if "response_format" in body:
        chars += len(json.dumps(body["response_format"]))
    return TokenUsage(
        input_tokens=_tokens(chars) + MESSAGE_OVERHEAD_TOKENS * len(messages),
        output_tokens=_tokens(len(answer) + len(trace or "")),
        estimated=True,
    )


def error_detail(error: object) -> str:
    """The message of an `error` object (or string) a server sent, cut to a readable length."""
    if isinstance(error, dict):
        message = error.get("message") or error.get("error") or json.dumps(error)
    else:
        message = error
    return str(message)[:DETAIL_LIMIT]


# --- whole bodies ------------------------------------------------------------------------------


def decode_json(raw: bytes | str) -> object:
    try:
        return json.loads(raw)
    except ValueError:  # includes bytes that are not UTF-8
        snippet = raw[:80] if isinstance(raw, str) else raw[:80].decode(errors="replace")
        raise BadResponse(f"the response is not JSON: {snippet!r}") from None


def _first_choice(data: Mapping[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                return choice
    raise BadResponse("the response is not a chat completion (no choices)")


def parse_completion(data: object) -> WireAnswer:
    """A non-streamed chat completion, already decoded from JSON."""
    if not isinstance(data, dict):
        raise BadResponse("the response is not a chat completion (not a JSON object)")
    if data.get("error"):
        raise ServerReportedError(error_detail(data["error"]))
    choice = _first_choice(data)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise BadResponse("the response is not a chat completion (no message)")
    text, thinking = content_parts(message.get("content"))
    answer, trace = join_trace(text, _field_trace(message) + thinking)
    tool_calls = bool(message.get("tool_calls") or message.get("function_call"))
    finish = _finish(choice.get("finish_reason"), tool_calls, answer)
    return WireAnswer(answer, trace, finish, parse_usage(data.get("usage")))


# --- streams -----------------------------------------------------------------------------------


async def sse_events(lines: AsyncIterator[str]) -> AsyncGenerator[tuple[str, str], None]:
    """(event, data) of each server-sent event in `lines` (the WHATWG rules, simplified).

    Comments (`:` lines, which some servers send as keep-alives) are skipped, `data` lines are
    joined, a blank line ends an event. An event left open when the lines end still counts: a
    server that omits the final blank line has still sent it.
    """
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:
        yield event, "\n".join(data)


class StreamAssembler:
    """Builds one attempt's answer from its stream events, and what of it is visible so far."""

    def __init__(self, *, hold: bool) -> None:
        self._filter = StreamFilter(hold=hold)
        self._traces: list[str] = []
        self._tool_calls = False
        self.visible = ""
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None
        self.done = False

    def feed(self, event: str, data: str) -> None:
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            obj = json.loads(data)
        except ValueError:
            if event == "error":
                raise ServerReportedError(error_detail(data)) from None
            raise BadResponse(f"a stream event is not JSON: {data[:80]!r}") from None
        if not isinstance(obj, dict):
            raise BadResponse(f"a stream event is not a JSON object: {data[:80]!r}")
        if obj.get("error") or event == "error":
            raise ServerReportedError(error_detail(obj.get("error") or obj))
        if (usage := parse_usage(obj.get("usage"))) is not None:
            self.usage = usage
        choices = obj.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._take(choice)

    def _take(self, choice: Mapping[str, Any]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text, thinking = content_parts(delta.get("content"))
            self._traces.append(_field_trace(delta) + thinking)
            self._tool_calls = self._tool_calls or bool(
                delta.get("tool_calls") or delta.get("function_call")
            )
            if text:
                self.visible = self._filter.feed(text)
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]

    def finish(self) -> WireAnswer:
        """The answer, once the stream has ended; a stream that stopped short is an error.

        Both marks are required: a finish_reason says the model stopped, `[DONE]` that the
        server sent everything after it (the usage chunk comes between the two).
        """
        if self.finish_reason is None:
            raise StreamCutOff("the stream ended before the answer did (no finish_reason)")
        if not self.done:
            raise StreamCutOff("the stream ended without its closing [DONE]")
        answer, trace = join_trace(self._filter.text, "".join(self._traces))
        finish = _finish(self.finish_reason, self._tool_calls, answer)
        return WireAnswer(answer, trace, finish, self.usage)


class TokenRelay:
    """Passes one call's visible answer to `on_token` across all its attempts, never twice.

    It remembers what was shown. An attempt whose visible text extends that only adds the rest;
    one still behind it (a retry replaying the same answer) adds nothing until it catches up.
    When an attempt's text stops matching what was shown (a retry that answers differently, or
    a lone `</think>` revealing that shown text was trace), `on_restart` is called once and the
    answer is streamed again from its start. Without `on_restart` nothing can be withdrawn, so
    from then on nothing more is streamed: the response's content is the answer.
    """

    def __init__(
        self, on_token: Callable[[str], None], on_restart: Callable[[], None] | None
    ) -> None:
        self._on_token = on_token
        self._on_restart = on_restart
        self._shown = ""
        self._muted = False

    def show(self, visible: str, *, final: bool = False) -> None:
        """`visible` is the attempt's answer so far; `final`: the attempt's finished answer."""
        shown = self._shown
        if self._muted or visible == shown:
            return
        if visible.startswith(shown):
            self._on_token(visible[len(shown) :])
        elif shown.startswith(visible) and not final:
            return  # behind what was shown: wait and see whether it catches up
        else:
            if self._on_restart is None:
                self._muted = True
                return
            self._on_restart()
            if visible:
                self._on_token(visible)
        self._shown = visible
