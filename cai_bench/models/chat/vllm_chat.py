"""Local checkpoints on vLLM (`engine: vllm`): a vLLM server process
(`cai_bench.models.vllm_server`) for the checkpoint's base, asked through the
OpenAI backend. vLLM implements `response_format: json_schema` as constrained
decoding (structured outputs), so `structured` is True: even a small local
judge or task writer returns schema-valid JSON.

One class serves both uses: `from_checkpoint` starts a server of its own and
stops it on `close` (generate, tasks synthesize, the judge); `on_server`
asks a server someone else owns (`run`, where several adapters of one base
share one server).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from cai_bench.models.chat.base import ChatOptions
from cai_bench.models.chat.openai_chat import OpenAIChat
from cai_bench.models.chat.settings import Endpoint


LOCAL_TIMEOUT = 1800.0  # seconds per request: a batch on a busy local server, not a flaky network


def local_options(options: ChatOptions) -> ChatOptions:
    """Options for our own server: the whole batch in flight (vLLM batches the
    concurrent requests itself), and a per-request timeout for generation, not
    for a network: with N requests in flight each one takes about N times as
    long, and a request that timed out would only be generated again."""
    from cai_bench.models.chat.retry import RetryPolicy

    r = options.retry
    return replace(options, concurrency=max(options.concurrency, options.batch_size),
                   retry=RetryPolicy(attempts=min(r.attempts, 2), timeout=max(r.timeout, LOCAL_TIMEOUT),
                                     initial_wait=r.initial_wait, max_wait=r.max_wait))


class VllmChat(OpenAIChat):
    """A local checkpoint (or one LoRA adapter of its base) served by vLLM."""

    kind: ClassVar[str] = "vllm"
    structured: ClassVar[bool] = True
    DEFAULT_MODEL: ClassVar[str] = "bundled:smollm2-135m-instruct"

    def __init__(self, server: Any, adapter: str | None, label: str, options: ChatOptions, *,
                 owns_server: bool) -> None:
        super().__init__(server.request_model(adapter), Endpoint("openai", server.base_url, "local-vllm"),
                         concurrency=options.concurrency, retry=options.retry)
        self.name = f"vllm:{label}"
        self.server = server
        self.owns_server = owns_server

    @classmethod
    def on_server(cls, server: Any, ckpt: Any, options: ChatOptions) -> "VllmChat":
        """`ckpt` (its base, or one of its LoRA adapters) on a running server the caller stops."""
        return cls(server, ckpt.adapter, ckpt.label, options, owns_server=False)

    @classmethod
    def from_checkpoint(cls, ckpt: Any, options: ChatOptions) -> "VllmChat":
        """Start a server for this one checkpoint; `close` stops it."""
        from cai_bench.errors import UserError
        from cai_bench.models.vllm_server import VllmServer, VllmSettings, adapter_names

        if not ckpt.is_local:
            raise UserError(f"{ckpt.spec}: engine vllm serves local checkpoints (folders, bundled:, hf:, adapters)")
        settings = options.vllm if options.vllm is not None else VllmSettings()
        adapters = {name: path for path, name in adapter_names([ckpt.adapter]).items()} if ckpt.adapter else {}
        server = VllmServer(ckpt.model, settings, adapters=adapters).start()
        try:
            return cls.on_server(server, ckpt, local_options(options)).owning()
        except BaseException:
            server.stop()
            raise

    @classmethod
    def open(cls, model: str, options: ChatOptions) -> "VllmChat":
        from cai_bench.models.resolve import resolve_checkpoint

        return cls.from_checkpoint(resolve_checkpoint(model), options)

    @classmethod
    def available(cls, model: str, options: ChatOptions) -> tuple[bool, str]:
        import os

        from cai_bench.models.vllm_server import vllm_python

        python = vllm_python(options.vllm.python if options.vllm is not None else None)
        if not os.path.exists(python):
            return False, f"no python at {python} for vLLM (generation.vllm.python / CAI_BENCH_VLLM_PYTHON)"
        return True, ""

    def owning(self) -> "VllmChat":
        self.owns_server = True
        return self

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.owns_server:
                self.server.stop()
