"""Default settings that a command-line option and a config model both state
(`tasks synthesize` / `generate` and their configs, the pipeline's `synthesize:` and `data:`),
written once so they cannot drift apart. Standard library only, so the CLI can show them in
--help without importing the packages that use them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ChatDefaults:
    """How a chat model is driven for `generate`, `tasks synthesize` and `run` (served models)."""

    batch_size: int = 16  # prompts per forward pass (in-process) / per chunk
    concurrency: int = 16  # requests in flight per served model (openai:, ollama:, judge, moderation); 429/503 lower it
    timeout: float = 120.0  # seconds per request (served models)
    max_attempts: int = 4  # calls per request before it counts as failed


@dataclass(frozen=True)
class SynthesisDefaults:
    """How a model writes a red-team task from a constitution (`tasks synthesize`)."""

    per_principle: int = 5  # prompts per principle
    max_new_tokens: int = 512
    temperature: float = 0.7
    seed: int = 0
    retries: int = 3  # extra attempts per principle when the output is invalid
    dedup_threshold: float = 0.92  # embedding cosine at which a later prompt is a near-duplicate


@dataclass(frozen=True)
class GenerationDefaults:
    """How `generate` writes CAI data (critique -> revision) and splits it."""

    selection: Literal["random", "contextual"] = "random"  # principle selection
    seed: int = 0
    top_k: int = 1  # contextual selection: draw among the K most similar principles
    temperature: float = 0.0  # greedy
    top_p: float = 1.0
    test_size: float = 0.1  # share of the records in the test split


CHAT = ChatDefaults()
GENERATION = GenerationDefaults()
SYNTHESIS = SynthesisDefaults()
