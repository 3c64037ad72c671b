"""Models served by Ollama through the official `ollama` client, with
structured output as Ollama's `format` (a JSON schema). Host: the config,
else `OLLAMA_HOST` (see `settings`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from cai_bench.defaults import CHAT
from cai_bench.errors import MissingDependency
from cai_bench.models.chat._remote import run_batch
from cai_bench.models.chat.circuit import Circuit
from cai_bench.models.chat.throttle import Throttle
from cai_bench.models.chat.deadline import arm
from cai_bench.redact import redact_url
from cai_bench.models.chat.base import ChatOptions, Completion, Conversation, GenParams
from cai_bench.models.chat.retry import BadReply, RetryPolicy
from cai_bench.models.chat.settings import Endpoint, ollama_endpoint, ollama_host
from cai_bench.models.contract import ServedModel


class OllamaChat(ServedModel):
    """A model on an Ollama server (`/api/chat`)."""

    kind: ClassVar[str] = "ollama"
    structured: ClassVar[bool] = True
    DEFAULT_MODEL: ClassVar[str] = "llama3.1:8b"

    def __init__(self, model: str, endpoint: Endpoint | None = None, *, concurrency: int = CHAT.concurrency,
                 retry: RetryPolicy = RetryPolicy()) -> None:
        try:
            import ollama
        except ImportError:
            raise MissingDependency("the ollama package", "pip install ollama") from None
        self.endpoint = endpoint or ollama_endpoint()
        self.model = model
        self.name = f"ollama:{model}"
        self.concurrency = concurrency
        self.retry = retry
        self.circuit = Circuit(f"{self.name} at {redact_url(self.endpoint.base_url)}")  # stops a dead endpoint early
        self.throttle = Throttle(self.circuit.name, concurrency)  # 429/503 slow all its requests down
        self.client = ollama.Client(host=self.endpoint.base_url, timeout=retry.timeout)
        arm(self.client._client, retry.timeout)  # the timeout bounds each whole request, not each read

    @classmethod
    def resolve(cls, model: str, base_url: str | None = None) -> Any:
        """Identified by host + model (the host from the config, else `OLLAMA_HOST`)."""
        from cai_bench.models.fingerprint import fingerprint_text
        from cai_bench.models.resolve import ResolvedCheckpoint

        host = ollama_host(base_url)
        return ResolvedCheckpoint(f"ollama:{model}", "ollama", model, fingerprint_text("ollama", host, model), model,
                                  base_url=host)

    @classmethod
    def from_checkpoint(cls, ckpt: Any, options: ChatOptions) -> "OllamaChat":
        return cls(ckpt.model, ollama_endpoint(options.base_url or ckpt.base_url),
                   concurrency=options.concurrency, retry=options.retry)

    @classmethod
    def open(cls, model: str, options: ChatOptions) -> "OllamaChat":
        return cls(model, ollama_endpoint(options.base_url), concurrency=options.concurrency, retry=options.retry)

    @classmethod
    def available(cls, model: str, options: ChatOptions) -> tuple[bool, str]:
        """The server answers and has the model pulled."""
        try:
            import ollama
        except ImportError:
            return False, "the `ollama` package is not installed (pip install ollama)"
        host = ollama_endpoint(options.base_url).base_url
        try:
            probe = ollama.Client(host=host, timeout=min(options.retry.timeout, 5.0))
            arm(probe._client, min(options.retry.timeout, 5.0))
            listed = probe.list()
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            return False, f"Ollama server not reachable at {host} ({type(exc).__name__}); start `ollama serve`"
        names = {m.model for m in listed.models}
        if model not in names and f"{model}:latest" not in names:
            return False, f"Ollama at {host} has no model {model!r}; run `ollama pull {model}`"
        return True, ""

    def _one(self, conv: Conversation, params: GenParams, json_schema: dict[str, Any] | None) -> Completion:
        options: dict[str, Any] = {"num_predict": params.max_new_tokens, "temperature": params.temperature,
                                   "top_p": params.top_p}
        if params.seed is not None:
            options["seed"] = params.seed
        extra: dict[str, Any] = {"logprobs": True, "top_logprobs": params.top_logprobs} if params.top_logprobs else {}
        resp = self.client.chat(model=self.model, messages=conv, options=options, format=json_schema, **extra)
        message = getattr(resp, "message", None)
        if message is None:
            raise BadReply("the reply has no message")
        content = getattr(message, "content", None)
        if not isinstance(content, str) or not content.strip():
            return Completion.failed(f"empty reply (no content); done_reason {getattr(resp, 'done_reason', None)}")
        return Completion(content, getattr(resp, "done_reason", None), getattr(resp, "eval_count", 0) or 0,
                          first_logprobs=_first_logprobs(resp) if params.top_logprobs else None)

    def _one_raw(self, prompt: str, params: GenParams) -> Completion:
        """A blank continuation is an answer (its parser says unscored), not a failure."""
        options: dict[str, Any] = {"num_predict": params.max_new_tokens, "temperature": params.temperature,
                                   "top_p": params.top_p}
        if params.seed is not None:
            options["seed"] = params.seed
        extra: dict[str, Any] = {"logprobs": True, "top_logprobs": params.top_logprobs} if params.top_logprobs else {}
        resp = self.client.generate(model=self.model, prompt=prompt, raw=True, options=options, **extra)
        text = getattr(resp, "response", None)
        if not isinstance(text, str):
            raise BadReply("the reply has no response")
        return Completion(text, getattr(resp, "done_reason", None), getattr(resp, "eval_count", 0) or 0,
                          first_logprobs=_first_logprobs(resp) if params.top_logprobs else None)

    def complete(self, prompts: Sequence[str], params: GenParams) -> list[Completion]:
        """Raw-text completion (`/api/generate` with `raw: true`, no template). Log-probs
        come back where the server supports them (Ollama 0.12.11 and later)."""
        return run_batch(lambda prompt: self._one_raw(prompt, params), prompts, name=self.name,
                         endpoint=self.endpoint, policy=self.retry, concurrency=self.concurrency,
                         circuit=self.circuit)

    def chat(self, messages_batch: Sequence[Conversation], params: GenParams, *,
             json_schema: dict[str, Any] | None = None, prefill: str | None = None) -> list[Completion]:
        return run_batch(lambda conv: self._one(conv, params, json_schema), messages_batch, name=self.name,
                         endpoint=self.endpoint, policy=self.retry, concurrency=self.concurrency,
                         circuit=self.circuit, throttle=self.throttle)

    def close(self) -> None:
        client = getattr(self.client, "_client", None)
        if client is not None:
            client.close()


def _first_logprobs(resp: Any) -> dict[str, float] | None:
    """The first token's `top_logprobs` of an Ollama reply, or None (an older server sends none)."""
    logprobs = getattr(resp, "logprobs", None)
    if not logprobs:
        return None
    first = logprobs[0]
    top = getattr(first, "top_logprobs", None) or []
    out = {str(t.token): float(t.logprob) for t in top}
    return out or {str(first.token): float(first.logprob)}
