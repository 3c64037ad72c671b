"""Settings that `generate` and `tasks synthesize` share for their chat model:
batching, concurrency, endpoint overrides and the retry policy's bounds."""

from __future__ import annotations

from pydantic import BaseModel

from cai_bench.models.chat import ChatOptions, RetryPolicy


class ChatSettings(BaseModel):
    batch_size: int = 16  # prompts per forward pass (in-process) / per chunk
    concurrency: int = 8  # parallel requests (served models)
    base_url: str | None = None  # else OPENAI_BASE_URL / OLLAMA_HOST (see cai_bench.models.chat.settings)
    api_key: str | None = None  # else OPENAI_API_KEY
    timeout: float = 120.0  # seconds per request (served models)
    max_attempts: int = 4  # calls per request before it counts as failed

    def chat_options(self) -> ChatOptions:
        return ChatOptions(base_url=self.base_url, api_key=self.api_key, concurrency=self.concurrency,
                           batch_size=self.batch_size,
                           retry=RetryPolicy(attempts=self.max_attempts, timeout=self.timeout))
