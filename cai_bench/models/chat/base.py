"""The chat-model contract: a batch of conversations in, one completion each out.

A conversation that fails for good (after the retry policy) comes back as a
`Completion` with `error` set and no text, so one bad prompt never sinks a
batch; a fault of the whole endpoint (nothing listens, bad key, unknown
model) raises `EndpointError` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from cai_bench.defaults import CHAT
from cai_bench.errors import UserError
from cai_bench.models.chat.retry import RetryPolicy

Message = dict[str, str]
Conversation = list[Message]


@dataclass(frozen=True)
class GenParams:
    """Decoding settings shared by every backend (temperature 0 = greedy)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    top_logprobs: int = 0  # > 0: return the first generated token's most likely alternatives, where the backend can


@dataclass(frozen=True)
class Completion:
    """One reply. `finish_reason` is "stop" or "length" (token limit); `error` is set
    (and `text` empty) when this conversation failed for good. `first_logprobs`:
    when `GenParams.top_logprobs` asked and the backend gives them, the first
    generated token's most likely alternatives (token text -> natural log-prob),
    which classifiers read a class probability from (Llama Guard's P(unsafe))."""

    text: str
    finish_reason: str | None = None
    tokens: int = 0
    error: str | None = None
    first_logprobs: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, error: str) -> "Completion":
        return cls("", None, 0, error)


class EndpointError(UserError):
    """The served model cannot answer anything (unreachable, unauthorized, unknown model)."""


@dataclass(frozen=True)
class ChatOptions:
    """How to open a chat model; each backend uses the fields that concern it."""

    base_url: str | None = None  # OpenAI base URL or Ollama host; else settings (environment, default)
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = CHAT.concurrency  # requests in flight (served models)
    retry: RetryPolicy = RetryPolicy()
    batch_size: int = 16  # prompts per forward pass (in-process)
    device: str | None = None
    dtype: str = "auto"
    trust_remote_code: bool = False
    engine: str = "hf"  # local checkpoints: in-process transformers ("hf") or a vLLM server ("vllm")
    vllm: Any = None  # engine vllm: cai_bench.models.vllm_server.VllmSettings (None: its defaults)


@runtime_checkable
class ChatModel(Protocol):
    """The chat half of the model contract (`cai_bench.models.contract.Model`):
    what callers that only chat (`generate`, `tasks synthesize`, the judge) need,
    so they also take any object with `chat` and `close`."""

    name: str
    structured: ClassVar[bool]  # True when `json_schema` constrains the output server-side

    def chat(self, messages_batch: Sequence[Conversation], params: GenParams, *,
             json_schema: dict[str, Any] | None = None, prefill: str | None = None) -> list[Completion]:
        """Reply to each conversation, in order. `json_schema` asks for structured output
        where the backend supports it; `prefill` starts the assistant turn (in-process only)."""
        ...

    def close(self) -> None: ...
