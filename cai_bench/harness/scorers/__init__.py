"""Scorers: the contract (`base`), the registry with its `@scorer` decorator and
entry points (`registry`), and the built-in scorers. Listing scorer ids imports
no model code; each scorer module imports torch/transformers only when it loads."""

from __future__ import annotations

from cai_bench.harness.scorers._hf import needs_download
from cai_bench.harness.scorers.base import (
    MetricSpec,
    Scorer,
    ScorerConfig,
    ScoreInput,
    ScoreRow,
)
from cai_bench.harness.scorers.registry import (
    ENTRY_POINT_GROUP,
    SCORERS,
    build_scorer,
    scorer,
    scorer_class,
    scorer_ids,
    source_of,
)
from cai_bench.metric_roles import ROLES

__all__ = [
    "ENTRY_POINT_GROUP",
    "ROLES",
    "SCORERS",
    "MetricSpec",
    "Scorer",
    "ScoreInput",
    "ScoreRow",
    "ScorerConfig",
    "build_scorer",
    "needs_download",
    "scorer",
    "scorer_class",
    "scorer_ids",
    "source_of",
]
