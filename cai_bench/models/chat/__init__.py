"""The backends of the one model contract (`cai_bench.models.contract`):
in-process HF checkpoints and PEFT adapters (`hf_model`), vLLM servers,
OpenAI-compatible servers and Ollama, chosen by `cai_bench.models.registry`;
`ChatModel` (a batch of conversations in, one completion each out, JSON-schema
output where the backend has it), one retry/timeout policy (`retry`) and one
module that reads endpoints and secrets (`settings`).

`open_checkpoint`, `open_model` and friends are re-exported from
`cai_bench.models.opener` (classes from `cai_bench.models.registry`):
`run`, `generate`, `tasks synthesize`, the judge scorer, HHH and the pipeline's
guards all open their models through it.
"""

from cai_bench.models.chat.base import (
    ChatModel,
    ChatOptions,
    Completion,
    Conversation,
    EndpointError,
    GenParams,
    Message,
)
from cai_bench.models.opener import model_available, open_checkpoint, open_model
from cai_bench.models.registry import backend_class, register
from cai_bench.models.chat.retry import RetryPolicy, call_with_retries, redact
from cai_bench.models.chat.settings import Endpoint, ollama_endpoint, openai_endpoint

__all__ = [
    "ChatModel",
    "ChatOptions",
    "Completion",
    "Conversation",
    "Endpoint",
    "EndpointError",
    "GenParams",
    "Message",
    "RetryPolicy",
    "backend_class",
    "call_with_retries",
    "model_available",
    "ollama_endpoint",
    "open_checkpoint",
    "open_model",
    "openai_endpoint",
    "redact",
    "register",
]
