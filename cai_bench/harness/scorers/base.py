"""The scorer contract: every scorer is a class with an id, a pydantic config
(hashed for the cache), declared metrics, `available()` and a batched `score`.

A scorer loads its model in `load()` (once per run) and frees it in `close()`,
so the harness can hold one scorer model in memory at a time.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

Direction = Literal["higher", "lower"]
Status = Literal["ok", "na", "unscored", "error"]

# Config fields whose values never reach the store, logs or reports.
SECRET_FIELDS = frozenset({"api_key", "token", "password"})


@dataclass(frozen=True)
class MetricSpec:
    name: str
    direction: Direction
    lo: float | None = None
    hi: float | None = None
    description: str = ""


@dataclass(frozen=True)
class ScoreInput:
    """One response to score. `key` identifies it in the returned rows."""

    key: str
    prompt: str
    response: str
    reference: str | None = None
    task_id: str | None = None
    prompt_id: str | None = None
    principle_id: str | None = None
    constitution_id: str | None = None
    category: str | None = None
    expect: str | None = None


@dataclass
class ScoreRow:
    key: str
    metric: str
    value: float | None
    status: Status = "ok"
    error: str | None = None
    detail: dict[str, Any] | None = field(default=None)

    @classmethod
    def ok(cls, key: str, metric: str, value: float, detail: dict | None = None) -> "ScoreRow":
        return cls(key, metric, float(value), "ok", None, detail)

    @classmethod
    def na(cls, key: str, metric: str, reason: str) -> "ScoreRow":
        return cls(key, metric, None, "na", None, {"reason": reason})

    @classmethod
    def unscored(cls, key: str, metric: str, reason: str, detail: dict | None = None) -> "ScoreRow":
        return cls(key, metric, None, "unscored", reason, detail)

    @classmethod
    def failed(cls, key: str, metric: str, error: str, detail: dict | None = None) -> "ScoreRow":
        return cls(key, metric, None, "error", error, detail)


class ScorerConfig(BaseModel):
    """Base for scorer configs: frozen, unknown keys rejected, secrets excluded from the hash."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    def public_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in SECRET_FIELDS}

    def config_hash(self) -> str:
        blob = json.dumps(self.public_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Scorer(ABC):
    """Base class; subclasses set `id`, `Config`, `metrics` and implement `score`."""

    id: ClassVar[str]
    Config: ClassVar[type[ScorerConfig]] = ScorerConfig
    metrics: ClassVar[tuple[MetricSpec, ...]]
    remote: ClassVar[bool] = False  # True for scorers that call a server

    def __init__(self, config: ScorerConfig | dict[str, Any] | None = None) -> None:
        if config is None:
            config = self.Config()
        elif isinstance(config, dict):
            config = self.Config(**config)
        self.config = config

    @property
    def config_hash(self) -> str:
        return self.config.config_hash()

    def available(self) -> tuple[bool, str]:
        """(True, "") if the scorer can run here; else (False, a reason a user can act on)."""
        return True, ""

    def hub_models(self) -> list[str]:
        """Hub models `load` would fetch; runs that must not download check these."""
        return []

    def load(self) -> None:
        """Load models/clients once per run."""

    def close(self) -> None:
        """Free models so the next scorer can load."""

    @abstractmethod
    def score(self, batch: list[ScoreInput]) -> list[ScoreRow]:
        """Rows for every input: one per declared metric (ok, na, unscored or error)."""
