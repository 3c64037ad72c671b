"""The one chat-model layer: `ChatModel` (a batch of conversations in, one
completion each out, JSON-schema output where the backend has it) for
in-process HF checkpoints and PEFT adapters, OpenAI-compatible servers and
Ollama, registered by checkpoint kind; one retry/timeout policy (`retry`) and
one module that reads endpoints and secrets (`settings`).

`generate`, `tasks synthesize`, the judge scorer and `run`'s served
checkpoints all go through here.
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
from cai_bench.models.chat.registry import (
    BACKENDS,
    backend_class,
    model_available,
    open_checkpoint,
    open_model,
    register,
)
from cai_bench.models.chat.retry import RetryPolicy, call_with_retries, redact
from cai_bench.models.chat.settings import Endpoint, ollama_endpoint, openai_endpoint

__all__ = [
    "BACKENDS",
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
