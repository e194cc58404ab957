"""The evaluation inputs' embeddings, for training or sweeping a router that reads embeddings.

These calls belong to no run: they are not in any policy's cost, and what they cost is returned
so the command can say it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import UsageError
from ..models.embeddings import embedder_for
from ..models.ledger import Ledger
from ..models.openai import ClientPool
from ..spec import WorkflowSpec

BATCH = 64  # texts per request: small enough for any server's batch limit


@dataclass(frozen=True)
class Embedded:
    vectors: dict[str, list[float]]  # item id -> vector
    model: str
    input_tokens: int
    cost_usd: float


def feature_profile(value: str) -> str | None:
    """`--router-features`: `ngrams` (None) or `embeddings:PROFILE` (the profile)."""
    if value == "ngrams":
        return None
    kind, _, profile = value.partition(":")
    if kind != "embeddings" or not profile:
        raise UsageError(
            f"--router-features {value!r}: use ngrams, or embeddings:PROFILE naming a profile "
            "of the workflow whose endpoint serves /v1/embeddings"
        )
    return profile


async def embed_inputs(spec: WorkflowSpec, profile: str, inputs: Mapping[str, str]) -> Embedded:
    """Every input's vector from `profile` (a profile of `spec`), in batches."""
    if profile not in spec.models:
        known = ", ".join(sorted(spec.models))
        raise UsageError(
            f"no profile '{profile}' in workflow {spec.name} to embed with (it has: {known})"
        )
    pool, ledger = ClientPool(), Ledger()
    try:
        embedder = await embedder_for(spec, profile, pool, ledger=ledger)
        ids = sorted(inputs)
        vectors: dict[str, list[float]] = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            got = await embedder.embed([inputs[i] for i in chunk])
            vectors.update(zip(chunk, got, strict=True))
    finally:
        await pool.aclose()
    tokens = sum(c.usage.input_tokens for c in ledger.calls)
    return Embedded(vectors, embedder.model, tokens, sum(c.cost_usd for c in ledger.calls))
