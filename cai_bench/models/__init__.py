"""Model specs and resolution (bundled models, HF ids, local dirs, PEFT adapters,
OpenAI-compatible and Ollama endpoints, plugins' served kinds) and the one model
contract: `contract.Model` (chat, and log-likelihoods where the backend can),
its backends chosen by (kind, engine) in `registry`, implemented in
`cai_bench.models.chat`. Resolving loads no weights except the one-time
materialization of a bundled model."""

from cai_bench.models.bundled import BUNDLED, BundledModel, bundled_path
from cai_bench.models.contract import Model, ServedModel, Unsupported
from cai_bench.models.opener import model_available, open_checkpoint, open_model
from cai_bench.models.registry import is_local_kind, register
from cai_bench.models.resolve import ResolvedCheckpoint, hub_snapshot, resolve_checkpoint
from cai_bench.models.specs import (
    BundledSpec,
    CheckpointSpec,
    HubSpec,
    LocalSpec,
    OllamaSpec,
    OpenAISpec,
    ServedSpec,
    parse_spec,
)

__all__ = [
    "BUNDLED",
    "BundledModel",
    "BundledSpec",
    "CheckpointSpec",
    "HubSpec",
    "LocalSpec",
    "Model",
    "OllamaSpec",
    "OpenAISpec",
    "ResolvedCheckpoint",
    "ServedModel",
    "ServedSpec",
    "Unsupported",
    "bundled_path",
    "hub_snapshot",
    "is_local_kind",
    "model_available",
    "open_checkpoint",
    "open_model",
    "parse_spec",
    "register",
    "resolve_checkpoint",
]
