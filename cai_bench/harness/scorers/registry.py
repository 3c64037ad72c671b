"""The scorer registry: `@scorer(...)` on a class registers it with its metrics.

Three ways in, all ending in `SCORERS` (id -> class, or a lazy "module:Class"
target that is imported only when the scorer is used, lm-eval's pattern):
- the built-in scorers, listed below as lazy targets (their modules carry the
  decorator, which replaces the target with the class once imported);
- the decorator, for a class defined anywhere (a test module, a notebook);
- the Python entry-point group `cai_bench.scorers` of installed distributions:
  `toy = "my_pkg.scorers:ToyScorer"`, read when the ids are first needed.

    @scorer("toy", metrics=[MetricSpec("quality", "higher", 0.0, 1.0)])
    class ToyScorer(Scorer):
        def score(self, batch): ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TypeVar, Union

from cai_bench.errors import UserError
from cai_bench.harness.scorers.base import MetricSpec, Scorer

ENTRY_POINT_GROUP = "cai_bench.scorers"
Target = Union[str, "type[Scorer]"]

SCORERS: dict[str, Target] = {
    "similarity": "cai_bench.harness.scorers.similarity:SimilarityScorer",
    "helpfulness": "cai_bench.harness.scorers.helpfulness:HelpfulnessScorer",
    "harmlessness": "cai_bench.harness.scorers.harmlessness:HarmlessnessScorer",
    "moderation": "cai_bench.harness.scorers.moderation:ModerationScorer",
    "judge": "cai_bench.harness.scorers.judge:JudgeScorer",
    "harmbench_cls": "cai_bench.harness.scorers.harmbench_cls:HarmBenchScorer",
    "llama_guard": "cai_bench.harness.scorers.llama_guard:LlamaGuardScorer",
    "strongreject": "cai_bench.harness.scorers.strongreject:StrongRejectScorer",
}
_sources: dict[str, str] = {sid: "built-in" for sid in SCORERS}  # id -> where it came from
_entry_points_read = False

S = TypeVar("S", bound=type[Scorer])


def _target_of(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def scorer(scorer_id: str | None = None, *, metrics: Sequence[MetricSpec],
           remote: bool | None = None) -> Callable[[S], S]:
    """Class decorator: set the scorer's id and metrics and register it.

    A second registration of an id by a different class is an error (two
    scorers would share their stored scores); re-importing the same class is not."""
    specs = tuple(metrics)
    if not specs:
        raise ValueError("a scorer declares at least one metric")
    names = [m.name for m in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"metric names repeat: {names}")

    def register(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, Scorer)):
            raise TypeError(f"@scorer goes on a Scorer subclass, not {cls!r}")
        sid = scorer_id or getattr(cls, "id", None)
        if not sid or not isinstance(sid, str):
            raise ValueError(f"{cls.__qualname__}: give the scorer an id (@scorer('my_id', metrics=...))")
        if "." in sid or sid == "all":
            raise ValueError(f"scorer id {sid!r}: no dots, and 'all' is reserved")
        known = SCORERS.get(sid)
        known_target = _target_of(known) if isinstance(known, type) else known
        if known_target is not None and known_target != _target_of(cls):
            raise ValueError(f"scorer id {sid!r} is already registered by {known_target}")
        cls.id = sid
        cls.metrics = specs
        if remote is not None:
            cls.remote = remote
        SCORERS[sid] = cls
        _sources.setdefault(sid, cls.__module__)
        return cls

    return register


def _read_entry_points() -> None:
    """Add the `cai_bench.scorers` entry points as lazy targets (once; built-ins win)."""
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    from cai_bench.plugins import plugin_entry_points

    for name, target, source in plugin_entry_points(ENTRY_POINT_GROUP):
        if name not in SCORERS:
            SCORERS[name] = target
            _sources[name] = source


def scorer_ids() -> list[str]:
    """Every registered scorer id, built-ins first, in registration order."""
    _read_entry_points()
    return list(SCORERS)


def source_of(scorer_id: str) -> str:
    """Where a scorer came from: built-in, a module, or an entry point."""
    return _sources.get(scorer_id, "registered")


def scorer_class(scorer_id: str) -> type[Scorer]:
    """The scorer's class; imports its module if it is a lazy target. An unknown id
    is a user error; a target that cannot be imported raises ImportError."""
    _read_entry_points()
    target = SCORERS.get(scorer_id)
    if target is None:
        raise UserError(f"unknown scorer {scorer_id!r}; known: {', '.join(SCORERS)} (or 'all')")
    if isinstance(target, type):
        return target
    module, _, name = target.partition(":")
    obj = importlib.import_module(module)
    for part in (name or "").split("."):
        obj = getattr(obj, part, None) if part else obj
    if not (isinstance(obj, type) and issubclass(obj, Scorer)):
        raise ImportError(f"{target} is not a Scorer class")
    if not getattr(obj, "metrics", None):
        raise ImportError(f"{target} declares no metrics (use @scorer(..., metrics=[...]))")
    SCORERS[scorer_id] = obj
    return obj


def build_scorer(scorer_id: str, config: dict | None = None) -> Scorer:
    """A scorer instance from its id and a config dict (validated by its pydantic Config);
    a config with `panel:` is a panel of several scorers under this id (`scorers.panel`)."""
    from pydantic import ValidationError

    if config and "panel" in config:
        from cai_bench.harness.scorers.panel import build_panel

        return build_panel(scorer_class(scorer_id), dict(config), build_scorer)
    cls = scorer_class(scorer_id)
    try:
        return cls(config or {})
    except ValidationError as exc:
        from cai_bench.io import format_validation

        raise UserError(format_validation(f"scorer {scorer_id!r} settings", exc)) from None


__all__ = ["ENTRY_POINT_GROUP", "SCORERS", "build_scorer", "scorer", "scorer_class", "scorer_ids", "source_of"]
