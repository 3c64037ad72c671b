"""The scorer contract: every scorer is a class with an id, a pydantic config
(hashed for the cache), declared metrics, `available()` and a batched `score`.

Each metric declares what the reports need to treat it right without knowing
the scorer: its direction, its range, whether it enters the composite, and its
role (e.g. `refusal`: a 0/1 "did it refuse?" verdict the refusal analysis reads).
The declarations are written to the results store with every score.

A scorer loads its model in `load()` (once per run) and frees it in `close()`,
so the harness can hold one scorer model in memory at a time. Loading is lazy
and lives here: the first `score()` call loads when nobody did.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from cai_bench.hashing import digest
from cai_bench.metric_roles import check_role

Direction = Literal["higher", "lower"]
Status = Literal["ok", "na", "unscored", "error"]

# Config fields whose values never reach the store, logs or reports.
SECRET_FIELDS = frozenset({"api_key", "token", "password"})
# Config fields that change how a scorer runs but never a score: left out of its identity.
RUNTIME_FIELDS = frozenset({
    "batch_size", "request_size", "concurrency", "max_attempts", "timeout", "initial_wait", "max_wait",
    "device", "trust_remote_code",
})
# Config fields that name a server: the identity holds the endpoint actually called
# (`Scorer.resolved`: config, else environment, credentials stripped) instead.
ENDPOINT_FIELDS = frozenset({"base_url", "host"})
# Metric roles whose values are 0/1 verdicts (a panel's majority, nominal agreement).
BINARY_ROLES = frozenset({"refusal", "harm"})


@dataclass(frozen=True)
class MetricSpec:
    """One metric of a scorer. `composite`: whether it enters the leaderboard's
    composite (a behaviour verdict such as a refusal does not); `role`: one of
    `ROLES` (cai_bench.metric_roles), or None for a plain score."""

    name: str
    direction: Direction
    lo: float | None = None
    hi: float | None = None
    description: str = ""
    composite: bool = True
    role: str | None = None
    binary: bool = False  # a 0/1 verdict: a panel takes the majority (scores: the mean)

    @property
    def is_binary(self) -> bool:
        """A yes/no verdict: declared so, or by a role that is one (a refusal, a harm verdict)."""
        return self.binary or self.role in BINARY_ROLES

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"metric {self.name!r}: direction must be 'higher' or 'lower', not {self.direction!r}")
        try:
            check_role(self.role)
        except ValueError as exc:
            raise ValueError(f"metric {self.name!r}: {exc}") from None
        if self.lo is not None and self.hi is not None and not self.lo < self.hi:
            raise ValueError(f"metric {self.name!r}: range [{self.lo}, {self.hi}] is empty")


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

    # True: this scorer may judge the checkpoint it is (or the base of that adapter); see
    # `harness.self_grading`. Stored with the scores and shown in the report.
    allow_self_grading: bool = False

    def public_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in SECRET_FIELDS}

    def identity_dict(self) -> dict[str, Any]:
        """The settings that can change a score: no secrets, no runtime knobs. An allowed
        self-grading is part of it (those scores are not comparable); the default adds
        nothing, so scores stored before the setting existed keep their hash."""
        out = {k: v for k, v in self.public_dict().items() if k not in RUNTIME_FIELDS | ENDPOINT_FIELDS}
        if not out.get("allow_self_grading"):
            out.pop("allow_self_grading", None)
        return out


def _loading(method):  # noqa: ANN001, ANN202
    """`score` that loads first when nothing is loaded yet."""

    @functools.wraps(method)
    def score(self: "Scorer", batch: list[ScoreInput]) -> list[ScoreRow]:
        self.ensure_loaded()
        return method(self, batch)

    score._loads_first = True  # type: ignore[attr-defined]
    return score


def _marking(method, loaded: bool):  # noqa: ANN001, ANN202
    """`load`/`close` that record whether the scorer's model is in memory."""

    @functools.wraps(method)
    def wrapper(self: "Scorer") -> None:
        method(self)
        self._is_loaded = loaded

    wrapper._marks = True  # type: ignore[attr-defined]
    return wrapper


class Scorer(ABC):
    """Base class; subclasses set `id`, `Config`, `metrics` (or use the `@scorer`
    decorator of `registry`) and implement `score`. A subclass's `score` loads
    the model first when `load` has not run (no per-scorer "if self._model is None")."""

    id: ClassVar[str]
    Config: ClassVar[type[ScorerConfig]] = ScorerConfig
    metrics: ClassVar[tuple[MetricSpec, ...]]
    remote: ClassVar[bool] = False  # True for scorers that call a server
    needs_reference: ClassVar[bool] = False  # True: a prompt without a reference answer is n/a
    _is_loaded: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        if "score" in own and not getattr(own["score"], "_loads_first", False):
            cls.score = _loading(own["score"])  # type: ignore[method-assign]
        for name, loaded in (("load", True), ("close", False)):
            if name in own and not getattr(own[name], "_marks", False):
                setattr(cls, name, _marking(own[name], loaded))

    def __init__(self, config: ScorerConfig | dict[str, Any] | None = None) -> None:
        if config is None:
            config = self.Config()
        elif isinstance(config, dict):
            config = self.Config(**config)
        self.config = config
        self._identity: dict[str, Any] | None = None

    def resolved(self) -> dict[str, Any]:
        """What besides the config settings decides a score, resolved here and now:
        the endpoint actually called (config, else environment), each model's
        revision (a hub commit, a bundled package version, a folder's fingerprint),
        rubric texts. Scorers override this; the result is part of the hash."""
        return {}

    def identity(self) -> dict[str, Any]:
        """The scorer config as stored beside its scores: settings that change a
        score plus `resolved()`; computed once per instance."""
        if self._identity is None:
            self._identity = {"scorer": self.id, "settings": self.config.identity_dict(), "resolved": self.resolved()}
        return self._identity

    @property
    def is_loaded(self) -> bool:
        return self._is_loaded

    def ensure_loaded(self) -> None:
        """`load()` unless it already ran (and `close()` did not follow)."""
        if not self._is_loaded:
            self.load()
            self._is_loaded = True

    @property
    def config_hash(self) -> str:
        """Identity of this scorer's scores: equal hashes, comparable numbers."""
        return digest(self.identity())

    def available(self) -> tuple[bool, str]:
        """(True, "") if the scorer can run here; else (False, a reason a user can act on)."""
        return True, ""

    def hub_models(self) -> list[str]:
        """Hub models `load` would fetch; runs that must not download check these."""
        return []

    def judge_models(self) -> list[tuple[str, str | None]]:
        """(checkpoint spec, endpoint) of each generative model whose verdicts this scorer
        returns, as a checkpoint would name it (`ollama:llama3.1:8b`, `bundled:NAME`, a
        path): a judge must not grade itself (`harness.self_grading`). Classifiers: none."""
        return []

    def load(self) -> None:
        """Load models/clients once per run."""

    def close(self) -> None:
        """Free models so the next scorer can load."""
        self._is_loaded = False

    @abstractmethod
    def score(self, batch: list[ScoreInput]) -> list[ScoreRow]:
        """Rows for every input: one per declared metric (ok, na, unscored or error)."""
