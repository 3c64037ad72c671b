"""Endpoint settings and secrets: the one module that reads `OPENAI_API_KEY`,
`OPENAI_BASE_URL` and `OLLAMA_HOST` from the environment.

An explicit value (run config, scorer config, CLI flag) always wins over the
environment, which wins over the public default. Everything else (chat
backends, the moderation scorer, checkpoint fingerprints) asks here, so the
endpoint a fingerprint names is the one that is called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


@dataclass(frozen=True)
class Endpoint:
    """Where a served model lives; `api_key` never appears in a repr."""

    kind: Literal["openai", "ollama"]
    base_url: str
    api_key: str | None = field(default=None, repr=False)

    @property
    def is_public_openai(self) -> bool:
        """True for api.openai.com, the one OpenAI-compatible server that needs a key."""
        return self.kind == "openai" and "api.openai.com" in self.base_url


def openai_base_url(explicit: str | None = None) -> str:
    return (explicit or os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL).rstrip("/")


def openai_api_key(explicit: str | None = None) -> str | None:
    """The explicit key, else `OPENAI_API_KEY`; None when neither is set (or empty)."""
    if explicit is not None:
        return explicit or None
    return os.environ.get("OPENAI_API_KEY") or None


def ollama_host(explicit: str | None = None) -> str:
    return (explicit or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST).rstrip("/")


def openai_endpoint(base_url: str | None = None, api_key: str | None = None) -> Endpoint:
    """The OpenAI-compatible endpoint to call: config/flag, else the environment, else api.openai.com."""
    return Endpoint("openai", openai_base_url(base_url), openai_api_key(api_key))


def ollama_endpoint(host: str | None = None) -> Endpoint:
    """The Ollama server to call: config/flag, else `OLLAMA_HOST`, else the local default."""
    return Endpoint("ollama", ollama_host(host))

