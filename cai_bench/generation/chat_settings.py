"""Settings that `generate` and `tasks synthesize` share for their chat model:
batching, concurrency, endpoint overrides and the retry policy's bounds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from cai_bench.defaults import CHAT
from cai_bench.models.chat import ChatOptions, RetryPolicy
from cai_bench.models.vllm_server import VllmSettings


class ChatSettings(BaseModel):
    batch_size: int = CHAT.batch_size  # prompts per forward pass (in-process) / per chunk
    concurrency: int = CHAT.concurrency  # parallel requests (served models)
    base_url: str | None = None  # else OPENAI_BASE_URL / OLLAMA_HOST (see cai_bench.models.chat.settings)
    api_key: str | None = None  # else OPENAI_API_KEY
    timeout: float = CHAT.timeout  # seconds per request (served models)
    max_attempts: int = CHAT.max_attempts  # calls per request before it counts as failed
    engine: Literal["hf", "vllm"] = "hf"  # local checkpoints: in-process transformers, or a vLLM server
    vllm: VllmSettings = Field(default_factory=VllmSettings)  # engine vllm: how its server starts

    def chat_options(self) -> ChatOptions:
        return ChatOptions(base_url=self.base_url, api_key=self.api_key, concurrency=self.concurrency,
                           batch_size=self.batch_size, engine=self.engine, vllm=self.vllm,
                           retry=RetryPolicy(attempts=self.max_attempts, timeout=self.timeout))
