"""POST /v1/embeddings for the fake OpenAI server: deterministic vectors that carry the text.

A text's vector is the sum of one fixed pseudo-random ±1 direction per lower-cased word (a
random projection of its bag of words), so texts sharing words point alike, and a router
learning from these vectors has the same signal hashed n-grams give it. Usage reports one
prompt token per word.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from tests.fakehttp import Handler
from tests.fakereplies import Fault, error_body

DIM = 64
_WORD = re.compile(r"[a-z]+|\d+")


def vector(text: str, dim: int = DIM) -> list[float]:
    out = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        for i in range(dim):
            bits = zlib.crc32(f"{word}:{i // 32}".encode())
            out[i] += 1.0 if (bits >> (i % 32)) & 1 else -1.0
    return out


def respond(h: Handler, fault: Fault | None) -> dict[str, Any] | None:
    """Answer one embeddings request; returns its body (None if it was not JSON)."""
    try:
        body = json.loads(h._read_body())
    except ValueError:
        h._send_json(400, error_body(400, "We could not parse the JSON body."))
        return None
    if fault is not None:
        if fault.drop:
            h._drop()
        else:
            h._send_json(fault.status, error_body(fault.status, f"fake fault {fault.status}"))
        return body
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        h._send_json(400, error_body(400, "'input' must be a string or a list of strings"))
        return body
    data = [
        {"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(texts)
    ]
    tokens = sum(max(len(_WORD.findall(t.lower())), 1) for t in texts)
    h._send_json(
        200,
        {
            "object": "list",
            "data": data,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )
    return body
