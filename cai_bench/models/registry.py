"""The one model registry: (checkpoint kind, engine) -> backend class.

Targets are lazy "module:Class" strings (lm-eval's registry, Inspect's
`@modelapi`): listing kinds or parsing a spec imports no client library.
Three ways in, all ending in `_ENTRIES`:
- the built-ins below;
- `register(kind, engine, "module:Class")`, from anywhere (a plugin, a test);
- the entry-point group `cai_bench.models` of installed distributions:
  `toy = "my_pkg.toy:ToyModel"` (any engine) or `toy.fast = "..."` (engine `fast`),
  read when the registry is first asked.

A kind is either local (weights on this machine: `hf`, `peft`; answered by the
engine the run or command picks) or served (`openai`, `ollama`, a plugin's
`toy`; one class for every engine, and `KIND:NAME` is a checkpoint spec that
the class resolves). `is_local_kind` is the one place that says which.

This module only looks backends up (it imports nothing of cai_bench but
errors, so specs and resolution can ask it); `cai_bench.models.opener` opens them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from cai_bench.errors import UserError

ENTRY_POINT_GROUP = "cai_bench.models"
ANY_ENGINE = "*"
DEFAULT_ENGINE = "hf"


@dataclass(frozen=True)
class Entry:
    target: str  # "package.module:Class"
    local: bool | None = None  # None: read the class's `local` attribute (entry points)
    source: str = "built-in"


_ENTRIES: dict[tuple[str, str], Entry] = {}
_entry_points_read = False


def register(kind: str, engine: str, target: str, *, local: bool = False, source: str = "registered") -> None:
    """Serve checkpoints of `kind` on `engine` ("*": any engine) with the class at
    `target` ("package.module:Class"). `local` kinds are weights on this machine."""
    if not kind or not kind.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"model kind {kind!r}: letters, digits, '-' and '_' only")
    if ":" not in target:
        raise ValueError(f"backend target {target!r}: expected 'package.module:Class'")
    _ENTRIES[(kind, engine)] = Entry(target, local, source)


for _kind in ("hf", "peft"):
    register(_kind, "hf", "cai_bench.models.chat.hf_model:HFModel", local=True, source="built-in")
    register(_kind, "vllm", "cai_bench.models.chat.vllm_chat:VllmChat", local=True, source="built-in")
register("openai", ANY_ENGINE, "cai_bench.models.chat.openai_chat:OpenAIChat", source="built-in")
register("ollama", ANY_ENGINE, "cai_bench.models.chat.ollama_chat:OllamaChat", source="built-in")
del _kind


def _read_entry_points() -> None:
    """Add the `cai_bench.models` entry points (once; registered entries win)."""
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    from cai_bench.plugins import plugin_entry_points

    for name, target, source in plugin_entry_points(ENTRY_POINT_GROUP):
        kind, _, engine = name.partition(".")
        key = (kind, engine or ANY_ENGINE)
        if key not in _ENTRIES:
            _ENTRIES[key] = Entry(target, None, source)


def kinds() -> list[str]:
    """Every registered checkpoint kind, built-ins first."""
    _read_entry_points()
    return list(dict.fromkeys(k for k, _ in _ENTRIES))


def entries() -> list[tuple[str, str, Entry]]:
    """(kind, engine, entry) for every registered backend, for listings."""
    _read_entry_points()
    return [(k, e, entry) for (k, e), entry in _ENTRIES.items()]


def served_kinds() -> list[str]:
    """Kinds whose specs are `KIND:NAME` (the served ones)."""
    return [k for k in kinds() if not is_local_kind(k)]


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _entry(kind: str, engine: str) -> Entry:
    _read_entry_points()
    found = _ENTRIES.get((kind, engine)) or _ENTRIES.get((kind, ANY_ENGINE))
    if found is not None:
        return found
    engines = sorted(e for k, e in _ENTRIES if k == kind)
    if engines:
        raise UserError(f"no {engine!r} engine for {kind} checkpoints; engines: {', '.join(engines)}")
    raise UserError(f"no model backend for checkpoints of kind {kind!r}; known: {', '.join(kinds())}")


def backend_class(kind: str, engine: str = DEFAULT_ENGINE) -> Any:
    """The backend class for (kind, engine); imports its module."""
    return _import(_entry(kind, engine).target)


def is_local_kind(kind: str) -> bool:
    """Whether checkpoints of `kind` are weights on this machine (served by the chosen engine)."""
    try:
        entry = _entry(kind, DEFAULT_ENGINE)
    except UserError:
        return False
    if entry.local is not None:
        return entry.local
    return bool(getattr(_import(entry.target), "local", False))


def can_score_loglik(kind: str) -> bool:
    """Whether checkpoints of `kind` give log-likelihoods (on the in-process engine, which HHH uses)."""
    try:
        return bool(getattr(backend_class(kind, DEFAULT_ENGINE), "loglik", False))
    except UserError:
        return False


def source_of(kind: str, engine: str = DEFAULT_ENGINE) -> str:
    """Where a backend came from: built-in, registered, or an entry point."""
    return _entry(kind, engine).source


def engine_for(kind: str, engine: str) -> str:
    """The engine that answers `kind`: the chosen one for local weights; a served kind is its own."""
    return engine if is_local_kind(kind) else DEFAULT_ENGINE


def default_model(kind: str, engine: str = DEFAULT_ENGINE) -> str:
    return backend_class(kind, engine).DEFAULT_MODEL


__all__ = ["ANY_ENGINE", "DEFAULT_ENGINE", "ENTRY_POINT_GROUP", "backend_class", "can_score_loglik", "default_model",
           "engine_for", "entries", "is_local_kind", "kinds", "register", "served_kinds", "source_of"]
