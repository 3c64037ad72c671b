"""Model specs and resolution: bundled models, HF ids, local dirs, PEFT adapters,
OpenAI-compatible and Ollama endpoints. Nothing here loads weights except the
one-time materialization of a bundled model; `cai_bench.models.chat` is the one
chat-model layer (in-process HF, OpenAI-compatible, Ollama) that talks to them."""

from cai_bench.models.bundled import BUNDLED, BundledModel, bundled_path
from cai_bench.models.resolve import ResolvedCheckpoint, hub_snapshot, resolve_checkpoint
from cai_bench.models.specs import (
    BundledSpec,
    CheckpointSpec,
    HubSpec,
    LocalSpec,
    OllamaSpec,
    OpenAISpec,
    parse_spec,
)

__all__ = [
    "BUNDLED",
    "BundledModel",
    "BundledSpec",
    "CheckpointSpec",
    "HubSpec",
    "LocalSpec",
    "OllamaSpec",
    "OpenAISpec",
    "ResolvedCheckpoint",
    "bundled_path",
    "hub_snapshot",
    "parse_spec",
    "resolve_checkpoint",
]
