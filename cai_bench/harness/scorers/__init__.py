"""Scorer registry. Targets are lazy "module:Class" strings so that listing
scorers imports no model code (lm-eval's registry pattern)."""

from __future__ import annotations

import importlib

from cai_bench.errors import UserError
from cai_bench.harness.scorers.base import (
    MetricSpec,
    Scorer,
    ScorerConfig,
    ScoreInput,
    ScoreRow,
)
from cai_bench.harness.scorers._hf import needs_download

SCORERS: dict[str, str] = {
    "similarity": "cai_bench.harness.scorers.similarity:SimilarityScorer",
    "helpfulness": "cai_bench.harness.scorers.helpfulness:HelpfulnessScorer",
    "harmlessness": "cai_bench.harness.scorers.harmlessness:HarmlessnessScorer",
    "moderation": "cai_bench.harness.scorers.moderation:ModerationScorer",
    "judge": "cai_bench.harness.scorers.judge:JudgeScorer",
}


def scorer_class(scorer_id: str) -> type[Scorer]:
    target = SCORERS.get(scorer_id)
    if target is None:
        raise UserError(f"unknown scorer {scorer_id!r}; known: {', '.join(SCORERS)} (or 'all')")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def build_scorer(scorer_id: str, config: dict | None = None) -> Scorer:
    """A scorer instance from its id and a config dict (validated by its pydantic Config)."""
    from pydantic import ValidationError

    cls = scorer_class(scorer_id)
    try:
        return cls(config or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UserError(f"scorer {scorer_id!r} config: {problems}") from None


__all__ = [
    "SCORERS",
    "MetricSpec",
    "Scorer",
    "ScoreInput",
    "ScoreRow",
    "ScorerConfig",
    "build_scorer",
    "needs_download",
    "scorer_class",
]
