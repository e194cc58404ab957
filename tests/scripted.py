"""Scripted truth for evaluations against the scripted server: which model gets which item
right, how accurate a judge is, and samples that disagree when a model is wrong.

    truth = Truth(targets={"q1": "42"}, right={("q1", "weak"): False, ("q1", "strong"): True})
    server.responder = truth.responder()

A request is tied to its item by the item's input text, which appears in the prompt. Answers
end with `#### n` (GSM8K style). A wrong model answers a wrong number that depends on the
sample index (the request's `seed`), so wrong samples disagree and right ones agree. A judge
request (response_format `judge`) gets the right verdict about the answer it is shown, except
on a deterministic `1 - check_accuracy` share of (item, answer) pairs, where it is flipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakeserver import Reply

_CHECKED = re.compile(r"Answer to check:\n(.*)", re.S)


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from `parts`."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


@dataclass
class Truth:
    targets: Mapping[str, str]  # item id -> the right answer
    right: Mapping[tuple[str, str], bool]  # (item id, model) -> whether that model gets it right
    inputs: Mapping[str, str] = field(default_factory=dict)  # item id -> its input text
    check_accuracy: float = 1.0
    worked: int = 0  # characters of worked solution before the answer (realistic lengths)
    judged: list[tuple[str, bool]] = field(default_factory=list)  # (item, verdict) as answered

    def item_of(self, body: Mapping[str, Any]) -> str | None:
        prompt = "\n".join(_text(m) for m in body.get("messages") or [])
        for item, text in self.inputs.items():
            if text in prompt:
                return item
        return None

    def answer(self, item: str, model: str, sample: int) -> str:
        target = self.targets[item]
        steps = ("Take the quantities in order and keep a running total. " * 40)[: self.worked]
        if self.right.get((item, model), False):
            return f"{steps}Working it through, the result is {target}.\n#### {target}"
        wrong = int(target) + 1 + int(_unit(item, model, sample) * 7)
        return f"{steps}I think it comes to {wrong}.\n#### {wrong}"

    def verdict(self, item: str, shown: str) -> dict[str, Any]:
        found = re.findall(r"####\s*(-?\d+)", shown) or re.findall(r"-?\d+", shown)
        correct = bool(found) and found[-1] == self.targets[item]
        flipped = _unit("judge", item, shown) >= self.check_accuracy
        passed = correct != flipped
        self.judged.append((item, passed))
        feedback = "the arithmetic checks out" if passed else "step 2 is wrong; recompute"
        return {"passed": passed, "feedback": feedback}

    def responder(self) -> Callable[[dict[str, Any]], Reply | None]:
        def respond(body: dict[str, Any]) -> Reply | None:
            item = self.item_of(body)
            if item is None:
                return None  # not an item's request (a plan, say): the default reply
            fmt = (body.get("response_format") or {}).get("json_schema") or {}
            if fmt.get("name") == "judge":
                shown = _CHECKED.search(_text(body["messages"][-1]))
                return Reply(
                    content=json.dumps(self.verdict(item, shown.group(1) if shown else ""))
                )
            return Reply(content=self.answer(item, str(body["model"]), int(body.get("seed") or 0)))

        return respond
