"""Chat backends by checkpoint kind (the scheme of a spec). Targets are lazy
"module:Class" strings, so listing or resolving imports no client library.

Adding a backend is one module with a class implementing `ChatModel` (plus
the classmethods `from_checkpoint(ckpt, options)`, `open(model, options)` and
`available(model, options)`) and one `register(kind, "module:Class")` call.
"""

from __future__ import annotations

import importlib
from typing import Any

from cai_bench.errors import UserError
from cai_bench.models.chat.base import ChatModel, ChatOptions

BACKENDS: dict[str, str] = {
    "hf": "cai_bench.models.chat.hf_chat:HFChat",
    "peft": "cai_bench.models.chat.hf_chat:HFChat",
    "openai": "cai_bench.models.chat.openai_chat:OpenAIChat",
    "ollama": "cai_bench.models.chat.ollama_chat:OllamaChat",
}


VLLM = "cai_bench.models.chat.vllm_chat:VllmChat"  # local checkpoints when ChatOptions.engine is "vllm"


def _target(kind: str, options: ChatOptions) -> Any:
    """The class for `kind`: local checkpoints go to vLLM when the options ask for it."""
    if kind in ("hf", "peft") and options.engine == "vllm":
        module, _, name = VLLM.partition(":")
        return getattr(importlib.import_module(module), name)
    return backend_class(kind)


def register(kind: str, target: str) -> None:
    """Serve checkpoints of `kind` with the class at `target` ("package.module:Class")."""
    BACKENDS[kind] = target


def backend_class(kind: str) -> Any:
    target = BACKENDS.get(kind)
    if target is None:
        raise UserError(f"no chat backend for checkpoints of kind {kind!r}; known: {', '.join(sorted(BACKENDS))}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def open_checkpoint(ckpt: Any, options: ChatOptions = ChatOptions()) -> ChatModel:
    """The chat model for a resolved checkpoint (or a spec string, resolved here)."""
    if isinstance(ckpt, str):
        from cai_bench.models.resolve import resolve_checkpoint

        ckpt = resolve_checkpoint(ckpt, openai_base_url=options.base_url, ollama_host=options.base_url)
    return _target(ckpt.kind, options).from_checkpoint(ckpt, options)


def open_model(kind: str, model: str | None, options: ChatOptions = ChatOptions()) -> ChatModel:
    """A chat model named the way scorer configs name them: a backend kind plus a
    model name (served name, or an in-process spec/folder/hub id); None is the
    backend's default model."""
    cls = _target(kind, options)
    return cls.open(model or cls.DEFAULT_MODEL, options)


def model_available(kind: str, model: str | None, options: ChatOptions = ChatOptions()) -> tuple[bool, str]:
    cls = _target(kind, options)
    return cls.available(model or cls.DEFAULT_MODEL, options)
