"""`router`: a learned router predicts from a step's text whether the cheap role suffices.

The model is logistic regression over hashed word n-grams and character trigrams (nothing to
download), or over vectors from an OpenAI-compatible `/v1/embeddings` profile of the workflow
(the embedded llama.cpp server serves them). It is trained from evaluation outcomes by
`orchestrator eval ... --train-router FILE`: an item's label is 1 when the cheap role's answer
scored at least as well as the reasoning role's (RouteLLM's win-or-tie). Its threshold is
calibrated to a target share of steps sent to reasoning, as RouteLLM calibrates: on out-of-fold
scores (each item scored by a model that did not see it), so the share holds on new items too.

The router file is small JSON, versioned, and names the profiles and models it was trained
for; using it with others is a clear error.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import UsageError
from ..policyspec import RouterPolicy
from ..steps import CheckResult, Kind
from .base import Ask, Policy, Routed

if TYPE_CHECKING:
    from ..graph.context import EmbedderFactory, RunContext
    from ..models.embeddings import Embedder

VERSION = 2
BUCKETS = 1 << 18
SHARES = tuple(round(0.05 * i, 2) for i in range(1, 20))  # calibrated reason shares 5%..95%
_WORD = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")


def features(text: str) -> dict[int, float]:
    """Hashed, L2-normalised counts of words, word pairs, character trigrams and a few shape
    signals (how many numbers, how long) — deterministic across processes (crc32)."""
    lowered = text.lower()
    words = ["<num>" if w.isdigit() else w for w in _WORD.findall(lowered)]
    grams = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
    squeezed = re.sub(r"\s+", " ", lowered)
    grams += [f"c:{squeezed[i : i + 3]}" for i in range(max(len(squeezed) - 2, 0))]
    numbers = sum(w == "<num>" for w in words)
    grams += [f"n:{min(numbers, 12)}", f"l:{min(int(math.log2(len(words) + 1)), 12)}"]
    counts: dict[int, float] = {}
    for gram in grams:
        bucket = zlib.crc32(gram.encode()) % BUCKETS
        counts[bucket] = counts.get(bucket, 0.0) + 1.0
    norm = math.sqrt(sum(v * v for v in counts.values())) or 1.0
    return {k: v / norm for k, v in counts.items()}


def unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(math.fsum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def dense(vector: Sequence[float], center: Sequence[float]) -> dict[int, float]:
    """An embedding as features: made unit length (whatever the server returned), centred on
    the training texts' mean (embeddings share a large common direction that would swamp the
    differences), and made unit length again."""
    shifted = unit([v - c for v, c in zip(unit(vector), center, strict=True)])
    return dict(enumerate(shifted))


@dataclass(frozen=True)
class Embedding:
    """Where a router's vectors come from: a profile of the workflow, its model, the size."""

    profile: str
    model: str
    dim: int
    center: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "embeddings",
            "profile": self.profile,
            "model": self.model,
            "dim": self.dim,
            "center": [round(c, 6) for c in self.center],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Embedding:
        center = tuple(float(c) for c in data["center"])
        if len(center) != int(data["dim"]):
            raise ValueError("center and dim disagree")
        return cls(str(data["profile"]), str(data["model"]), int(data["dim"]), center)


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


@dataclass
class Logistic:
    """Sparse logistic regression, trained by AdaGrad with L2 — small and deterministic."""

    weights: dict[int, float] = field(default_factory=dict)
    bias: float = 0.0

    def score(self, x: dict[int, float]) -> float:
        return _sigmoid(self.bias + sum(self.weights.get(k, 0.0) * v for k, v in x.items()))

    def fit(self, xs: Sequence[dict[int, float]], ys: Sequence[int], *, seed: int = 0) -> Logistic:
        rate, l2, epochs = 0.5, 1e-4, 10
        squares: dict[int, float] = {}
        bias_square = 1e-8
        order = list(range(len(xs)))
        shuffle = random.Random(seed)
        for _ in range(epochs):
            shuffle.shuffle(order)
            for i in order:
                error = self.score(xs[i]) - ys[i]
                bias_square += error * error
                self.bias -= rate * error / math.sqrt(bias_square)
                for k, v in xs[i].items():
                    grad = error * v + l2 * self.weights.get(k, 0.0)
                    squares[k] = squares.get(k, 1e-8) + grad * grad
                    self.weights[k] = self.weights.get(k, 0.0) - rate * grad / math.sqrt(squares[k])
        return self


def threshold_for_share(scores: Sequence[float], share: float) -> float:
    """The threshold that sends `share` of these scores (the lowest p(cheap ok)) to reasoning."""
    ordered = sorted(scores)
    if not ordered:
        return 0.5
    cut = share * len(ordered)
    low = ordered[max(math.ceil(cut) - 1, 0)]
    high = ordered[min(math.ceil(cut), len(ordered) - 1)]
    return (low + high) / 2 if cut < len(ordered) else ordered[-1] + 1e-9


def cross_fit(
    xs: Sequence[dict[int, float]], ys: Sequence[int], folds: int, seed: int
) -> tuple[list[Logistic], list[float]]:
    """k models, each trained without one fold, and every item's score by the model that did
    not see it."""
    scores = [0.0] * len(xs)
    order = list(range(len(xs)))
    random.Random(seed).shuffle(order)
    models = []
    for fold in range(folds):
        held = set(order[fold::folds])
        model = Logistic().fit(
            [xs[i] for i in order if i not in held], [ys[i] for i in order if i not in held],
            seed=seed,
        )  # fmt: skip
        models.append(model)
        for i in held:
            scores[i] = model.score(xs[i])
    return models, scores


@dataclass(frozen=True)
class Trained:
    """A router as its file holds it."""

    cheap: dict[str, str]  # {"profile": ..., "model": ...}: the generative role it was trained for
    strong: dict[str, str]  # the reasoning role it was trained for
    models: tuple[Logistic, ...]  # the cross-fitted models; a text's hash picks its scorer
    calibration: dict[float, float]  # reason share -> threshold on p(cheap suffices)
    reason_share: float
    items: int
    embedding: Embedding | None = None  # None: hashed n-grams

    def featurize(self, text: str, vector: Sequence[float] | None = None) -> dict[int, float]:
        if self.embedding is None:
            return features(text)
        if vector is None or len(vector) != self.embedding.dim:
            got = "none" if vector is None else f"{len(vector)} dimensions"
            raise UsageError(
                f"this router reads {self.embedding.dim}-dimensional embeddings from "
                f"{self.embedding.profile} ({self.embedding.model}), got {got}: retrain it"
            )
        return dense(vector, self.embedding.center)

    def p_cheap_ok(self, text: str, vector: Sequence[float] | None = None) -> float:
        """p(the cheap role suffices) for `text` (with its embedding, for an embeddings router)."""
        scorer = self.models[zlib.crc32(text.encode()) % len(self.models)]
        return scorer.score(self.featurize(text, vector))

    def threshold(self, share: float | None = None) -> float:
        """The threshold for `share` (default: the share it was trained for), interpolated."""
        target = self.reason_share if share is None else share
        points = sorted(self.calibration.items())
        for (s0, t0), (s1, t1) in itertools.pairwise(points):
            if s0 <= target <= s1:
                return t0 + (t1 - t0) * (target - s0) / (s1 - s0)
        return points[0][1] if target < points[0][0] else points[-1][1]

    def to_json(self) -> dict[str, Any]:
        return {
            "orchestrator_router": VERSION,
            "features": "hashed-ngrams" if self.embedding is None else self.embedding.to_json(),
            "buckets": BUCKETS,
            "cheap": self.cheap,
            "strong": self.strong,
            "reason_share": self.reason_share,
            "items": self.items,
            "calibration": [[s, t] for s, t in sorted(self.calibration.items())],
            # only the weights that matter, rounded: the file stays small
            "models": [
                {
                    "bias": m.bias,
                    "weights": {str(k): round(v, 5) for k, v in m.weights.items() if abs(v) > 1e-3},
                }
                for m in self.models
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> Trained:
        kind = data.get("features", "hashed-ngrams")
        if data.get("orchestrator_router") != VERSION or (
            kind == "hashed-ngrams" and data.get("buckets") != BUCKETS
        ):
            raise UsageError(
                f"{where} is not a router file of this version (orchestrator_router: "
                f"{VERSION}): retrain it with `orchestrator eval ... --train-router`"
            )
        models = tuple(
            Logistic({int(k): float(v) for k, v in m["weights"].items()}, float(m["bias"]))
            for m in data["models"]
        )
        return cls(
            cheap=dict(data["cheap"]),
            strong=dict(data["strong"]),
            models=models,
            calibration={float(s): float(t) for s, t in data["calibration"]},
            reason_share=float(data["reason_share"]),
            items=int(data["items"]),
            embedding=None if kind == "hashed-ngrams" else Embedding.from_json(kind),
        )


def train_router(
    texts: Sequence[str],
    cheap_suffices: Sequence[bool],
    *,
    cheap: dict[str, str],
    strong: dict[str, str],
    reason_share: float = 0.3,
    seed: int = 0,
    embedding: tuple[str, str] | None = None,
    vectors: Sequence[Sequence[float]] | None = None,
) -> Trained:
    """Fit the router on outcomes and calibrate it on out-of-fold scores.

    With `embedding` (profile, model) and the texts' `vectors`, it learns from the embeddings;
    otherwise from hashed n-grams."""
    if len(texts) < 10 or len(set(cheap_suffices)) < 2:
        raise UsageError(
            "training a router needs at least 10 items on which the cheap role sometimes "
            "suffices and sometimes does not"
        )
    found = None
    if embedding is not None:
        if vectors is None or len(vectors) != len(texts) or not vectors[0]:
            raise UsageError("an embeddings router needs one vector per training text")
        dim, units = len(vectors[0]), [unit(v) for v in vectors]
        center = tuple(math.fsum(v[i] for v in units) / len(units) for i in range(dim))
        found = Embedding(embedding[0], embedding[1], dim, center)
    shell = Trained(cheap, strong, (), {}, reason_share, len(texts), found)
    xs = [shell.featurize(t, None if vectors is None else vectors[i]) for i, t in enumerate(texts)]
    ys = [int(y) for y in cheap_suffices]
    models, held_out = cross_fit(xs, ys, folds=5, seed=seed)
    calibration = {share: threshold_for_share(held_out, share) for share in SHARES}
    calibration[reason_share] = threshold_for_share(held_out, reason_share)
    return Trained(cheap, strong, tuple(models), calibration, reason_share, len(texts), found)


def save_router(trained: Trained, path: Path) -> None:
    path.write_text(json.dumps(trained.to_json(), sort_keys=True) + "\n", encoding="utf-8")


def load_router(path: Path) -> Trained:
    if not path.is_file():
        raise UsageError(
            f"no router file {path}: train one with `orchestrator eval WORKFLOW --dataset FILE "
            f"--train-router {path.name}`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the router file {path}: {exc.strerror}") from None
    except json.JSONDecodeError:
        raise UsageError(f"{path} is not a router file (not JSON)") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a router file")
    try:
        return Trained.from_json(data, str(path))
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{path} is not a valid router file: retrain it") from None


class LearnedRouter(Policy):
    """Sends a step to reasoning when the router's p(cheap suffices) is under its threshold."""

    def __init__(
        self, name: str, trained: Trained, threshold: float, embedder: EmbedderFactory | None = None
    ) -> None:
        super().__init__(name)
        self.trained = trained
        self.cut = threshold
        self._embedder = embedder
        self._embedding: Embedder | None = None

    @classmethod
    def load(cls, name: str, spec: RouterPolicy, ctx: RunContext) -> LearnedRouter:
        base = ctx.spec.base_dir
        path = Path(spec.file) if base is None else base / spec.file
        trained = load_router(path)
        here = {
            "cheap": _profile(ctx, "generate"),
            "strong": _profile(ctx, "reason"),
        }
        there = {"cheap": trained.cheap, "strong": trained.strong}
        if here != there:
            raise UsageError(
                f"router file {path} was trained for {_pair(there)}, but this workflow uses "
                f"{_pair(here)}: retrain it with `orchestrator eval ... --train-router`"
            )
        return cls(
            name, trained, trained.threshold(spec.reason_share), _embedder_for(ctx, trained, path)
        )

    async def answer(self, ctx: RunContext, ask: Ask) -> Routed:
        vector = None
        if self._embedder is not None:
            if self._embedding is None:
                wanted = cast(Embedding, self.trained.embedding)
                self._embedding = await self._embedder(wanted.profile)
            vector = (await self._embedding.embed([ask.text], step=ask.params.step))[0]
        p = self.trained.p_cheap_ok(ask.text, vector)
        cheap = p >= self.cut
        role: Kind = "generate" if cheap else "reason"
        why = f"router: p(cheap suffices) {p:.2f} {'≥' if cheap else '<'} {self.cut:.2f}"
        said = await self.say(ctx, ask, role, why)
        decision = CheckResult("router", cheap, why, round(p, 4))
        return Routed(said.response, self.route(ctx, said, checks=(decision,)))


def _embedder_for(ctx: RunContext, trained: Trained, path: Path) -> EmbedderFactory | None:
    """How this run embeds a step's text for `trained`; a clear error, before any call, if the
    workflow lacks the profile the router was trained on."""
    wanted = trained.embedding
    if wanted is None:
        return None
    profile = ctx.spec.models.get(wanted.profile)
    if profile is None or profile.model != wanted.model:
        raise UsageError(
            f"router file {path} reads embeddings from profile '{wanted.profile}' "
            f"({wanted.model}), which this workflow does not define: add it under models, "
            "or retrain the router"
        )
    if ctx.embedder is None:
        raise UsageError("this run cannot make embedding calls, which its router needs")
    return ctx.embedder


def _profile(ctx: RunContext, role: Any) -> dict[str, str]:
    name, profile = ctx.spec.profile_for(role)
    return {"profile": name, "model": profile.model}


def _pair(profiles: dict[str, dict[str, str]]) -> str:
    cheap, strong = profiles["cheap"], profiles["strong"]
    return f"{cheap['profile']} ({cheap['model']}) / {strong['profile']} ({strong['model']})"
