"""OpenAI-compatible servers (api.openai.com, vLLM, llama.cpp, LM Studio...)
through the official `openai` client, with structured output as
`response_format: json_schema`.

The client's own retries are off (`max_retries=0`): the shared policy in
`retry` decides, so every remote path retries the same way; `deadline` makes
the timeout bound each whole request, not each read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from cai_bench.defaults import CHAT
from cai_bench.errors import MissingDependency, UserError
from cai_bench.models.chat._remote import run_batch
from cai_bench.models.chat.circuit import Circuit
from cai_bench.models.chat.throttle import Throttle
from cai_bench.models.chat.deadline import arm
from cai_bench.redact import redact_url
from cai_bench.models.chat.base import ChatOptions, Completion, Conversation, GenParams
from cai_bench.models.chat.retry import BadReply, RetryPolicy
from cai_bench.models.chat.settings import Endpoint, openai_base_url, openai_endpoint
from cai_bench.models.contract import ServedModel


class OpenAIChat(ServedModel):
    """A model behind any server speaking the OpenAI chat-completions API."""

    kind: ClassVar[str] = "openai"
    structured: ClassVar[bool] = True
    DEFAULT_MODEL: ClassVar[str] = "gpt-4o-mini"

    def __init__(self, model: str, endpoint: Endpoint | None = None, *, concurrency: int = CHAT.concurrency,
                 retry: RetryPolicy = RetryPolicy()) -> None:
        try:
            import openai
        except ImportError:
            raise MissingDependency("the openai package", "pip install openai") from None
        self.endpoint = endpoint or openai_endpoint()
        ok, reason = self.check_key(self.endpoint)
        if not ok:
            raise UserError(f"openai:{model}: {reason}")
        self.model = model
        self.name = f"openai:{model}"
        self.concurrency = concurrency
        self.retry = retry
        self.circuit = Circuit(f"{self.name} at {redact_url(self.endpoint.base_url)}")  # stops a dead endpoint early
        self.throttle = Throttle(self.circuit.name, concurrency)  # 429/503 slow all its requests down
        # local servers ignore the key, but the client insists on one; `timeout` bounds each whole request
        http = arm(openai.DefaultHttpxClient(timeout=retry.timeout), retry.timeout)
        self.client = openai.OpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key or "not-needed",
                                    max_retries=0, timeout=retry.timeout, http_client=http)

    @classmethod
    def resolve(cls, model: str, base_url: str | None = None) -> Any:
        """Identified by endpoint + model: the endpoint this run will call (its config,
        else the environment) goes into the fingerprint."""
        from cai_bench.models.fingerprint import fingerprint_text
        from cai_bench.models.resolve import ResolvedCheckpoint

        url = openai_base_url(base_url)
        return ResolvedCheckpoint(f"openai:{model}", "openai", model, fingerprint_text("openai", url, model), model,
                                  base_url=url)

    @classmethod
    def from_checkpoint(cls, ckpt: Any, options: ChatOptions) -> "OpenAIChat":
        return cls(ckpt.model, openai_endpoint(options.base_url or ckpt.base_url, options.api_key),
                   concurrency=options.concurrency, retry=options.retry)

    @classmethod
    def open(cls, model: str, options: ChatOptions) -> "OpenAIChat":
        return cls(model, openai_endpoint(options.base_url, options.api_key), concurrency=options.concurrency,
                   retry=options.retry)

    @staticmethod
    def check_key(endpoint: Endpoint) -> tuple[bool, str]:
        if endpoint.is_public_openai and not endpoint.api_key:
            return False, ("no OpenAI API key: set OPENAI_API_KEY (or the config's api_key), or OPENAI_BASE_URL "
                           "for a local OpenAI-compatible server")
        return True, ""

    @classmethod
    def available(cls, model: str, options: ChatOptions) -> tuple[bool, str]:
        try:
            import openai  # noqa: F401
        except ImportError:
            return False, "the `openai` package is not installed (pip install openai)"
        return cls.check_key(openai_endpoint(options.base_url, options.api_key))

    def _one(self, conv: Conversation, params: GenParams, json_schema: dict[str, Any] | None) -> Completion:
        kwargs: dict[str, Any] = {"model": self.model, "messages": conv, "max_tokens": params.max_new_tokens,
                                  "temperature": params.temperature, "top_p": params.top_p}
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.top_logprobs > 0:
            kwargs.update(logprobs=True, top_logprobs=params.top_logprobs)
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": json_schema.get("title", "output"), "schema": json_schema, "strict": True}}
        resp = self.client.chat.completions.create(**kwargs)
        choices = getattr(resp, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise BadReply("the reply has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        if message is None:
            raise BadReply("the reply's choice has no message")
        content = getattr(message, "content", None)
        finish = getattr(choice, "finish_reason", None)
        if finish == "content_filter":
            return Completion.failed("refused by the server's content filter (finish_reason content_filter)")
        if not isinstance(content, str) or not content.strip():
            refusal = getattr(message, "refusal", None)
            why = f"model refusal: {refusal}" if refusal else "empty reply (no content)"
            return Completion.failed(f"{why}; finish_reason {finish}")
        usage = getattr(resp, "usage", None)
        return Completion(content, finish, getattr(usage, "completion_tokens", 0) or 0,
                          first_logprobs=_chat_first_logprobs(choice) if params.top_logprobs > 0 else None)

    def _one_raw(self, prompt: str, params: GenParams) -> Completion:
        """A blank continuation is an answer here, not a failure: the classifier said
        nothing parseable, which its parser reports (unscored), and a re-run would not change it."""
        kwargs: dict[str, Any] = {"model": self.model, "prompt": prompt, "max_tokens": params.max_new_tokens,
                                  "temperature": params.temperature, "top_p": params.top_p}
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.top_logprobs > 0:
            kwargs["logprobs"] = params.top_logprobs
        resp = self.client.completions.create(**kwargs)
        choices = getattr(resp, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise BadReply("the reply has no choices")
        choice = choices[0]
        text = getattr(choice, "text", None)
        if not isinstance(text, str):
            raise BadReply("the reply's choice has no text")
        usage = getattr(resp, "usage", None)
        first = None
        if params.top_logprobs > 0:
            top = getattr(getattr(choice, "logprobs", None), "top_logprobs", None)
            first = {str(k): float(v) for k, v in top[0].items()} if top and isinstance(top[0], dict) else None
        return Completion(text, getattr(choice, "finish_reason", None), getattr(usage, "completion_tokens", 0) or 0,
                          first_logprobs=first)

    def complete(self, prompts: Sequence[str], params: GenParams) -> list[Completion]:
        """Raw-text completion (`/v1/completions`, no chat template): the prompt is the
        model's whole input, as a classifier's published prompt is. `top_logprobs` asks
        for the first token's alternatives (the legacy `logprobs: N`)."""
        return run_batch(lambda prompt: self._one_raw(prompt, params), prompts, name=self.name,
                         endpoint=self.endpoint, policy=self.retry, concurrency=self.concurrency,
                         circuit=self.circuit)

    def chat(self, messages_batch: Sequence[Conversation], params: GenParams, *,
             json_schema: dict[str, Any] | None = None, prefill: str | None = None) -> list[Completion]:
        return run_batch(lambda conv: self._one(conv, params, json_schema), messages_batch, name=self.name,
                         endpoint=self.endpoint, policy=self.retry, concurrency=self.concurrency,
                         circuit=self.circuit, throttle=self.throttle)

    def close(self) -> None:
        self.client.close()


def _chat_first_logprobs(choice: Any) -> dict[str, float] | None:
    """The first content token's `top_logprobs` of a chat completion, or None."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    top = getattr(content[0], "top_logprobs", None) or []
    out = {str(t.token): float(t.logprob) for t in top}
    return out or {str(content[0].token): float(content[0].logprob)}
