"""OpenAI's chat completion bodies: the request as far as a workflow needs it, and the
`chat.completion` / `chat.completion.chunk` bodies built from a run.

`usage` is OpenAI's (`prompt_tokens` include cached ones, `completion_tokens` include reasoning)
summed over every billed call of the run, plus one extension field: `cost_usd`, the run's cost
in USD. Every body also carries `orchestrator: {"run_id", "status"}`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..result import RunResult, Usage
from .errors import ApiError


class _Open(BaseModel):
    # OpenAI adds fields often; a workflow ignores sampling parameters rather than refusing them.
    model_config = ConfigDict(extra="allow")


class ChatMessage(_Open):
    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(_Open):
    include_usage: bool = False


class ChatRequest(_Open):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None

    def task(self) -> str:
        """The last user message's text: the task the workflow runs."""
        if self.n not in (None, 1):
            raise ApiError(400, "n must be 1: a workflow gives one answer", param="n")
        for message in reversed(self.messages):
            if message.role != "user":
                continue
            content = message.content
            if isinstance(content, list):
                parts = [p.get("text") for p in content if p.get("type") == "text"]
                content = "\n".join(p for p in parts if isinstance(p, str))
            if content and content.strip():
                return content
            break
        raise ApiError(
            400, "messages: the last user message must have text (the task)", param="messages"
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def usage_body(usage: Usage) -> dict[str, Any]:
    """OpenAI's `usage` for a whole run, plus `cost_usd`."""
    profiles = usage.by_profile.values()
    prompt = sum(p.input_tokens for p in profiles)
    completion = sum(p.output_tokens for p in profiles)
    reasoning = sum(p.reasoning_tokens for p in profiles)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": sum(p.cached_input_tokens for p in profiles)},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
        "cost_usd": round(usage.cost_usd, 8),
    }


def completion_body(result: RunResult, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{result.run_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.output, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage_body(result.usage),
        "system_fingerprint": None,
        "orchestrator": {"run_id": result.run_id, "status": result.status},
    }


class Chunks:
    """The SSE frames of one streamed completion (`data: {chunk}`, then `data: [DONE]`)."""

    DONE = b"data: [DONE]\n\n"

    def __init__(self, run_id: str, model: str, include_usage: bool) -> None:
        self.run_id, self.include_usage = run_id, include_usage
        self.head = {
            "id": f"chatcmpl-{run_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
        }

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {**self.head, "choices": choices, **extra}
        if self.include_usage and "usage" not in extra:
            body["usage"] = None  # as OpenAI: null on every chunk but the last
        return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"

    def _delta(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._frame([choice], **extra)

    def role(self) -> bytes:
        return self._delta(
            {"role": "assistant", "content": ""},
            orchestrator={"run_id": self.run_id, "status": "running"},
        )

    def content(self, text: str) -> bytes:
        return self._delta({"content": text})

    def restarted(self) -> bytes:
        """The answer starts again (the text so far is withdrawn): an extension field only."""
        return self._delta({}, orchestrator={"run_id": self.run_id, "answer_restarted": True})

    def finish(self, result: RunResult) -> bytes:
        status = {"run_id": self.run_id, "status": result.status}
        return self._delta({}, "stop", orchestrator=status)

    def usage(self, result: RunResult) -> bytes:
        return self._frame([], usage=usage_body(result.usage))

    def error(self, error: ApiError) -> bytes:
        return b"data: " + json.dumps(error.body(), ensure_ascii=False).encode() + b"\n\n"


class AnswerText:
    """What of the streamed answer to send, when a retried stream restarts it.

    The text sent cannot be taken back from a client. After a restart, the new answer's tokens
    are held back while they repeat what was sent, and only what goes beyond it is sent. If the
    new answer differs, a chunk says so (`orchestrator.answer_restarted`) and the new answer
    streams from its beginning.
    """

    def __init__(self) -> None:
        self.sent = ""
        self.replay: str | None = None  # the restarted answer so far, while it repeats `sent`

    def restart(self) -> None:
        self.replay = ""

    def token(self, text: str) -> tuple[bool, str]:
        """(whether the answer diverged and restarts, the text to send now)."""
        if self.replay is None:
            self.sent += text
            return False, text
        self.replay += text
        if self.sent.startswith(self.replay):
            return False, ""
        if self.replay.startswith(self.sent):
            extra, self.sent, self.replay = self.replay[len(self.sent) :], self.replay, None
            return False, extra
        self.sent, self.replay = self.replay, None
        return True, self.sent

    def rest(self, output: str) -> str:
        """What of the final answer was not streamed (all of it, if no token came)."""
        return output[len(self.sent) :] if output.startswith(self.sent) else ""
