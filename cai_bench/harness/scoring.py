"""Phase 2 of a run: score stored responses, one scorer model in memory at a time,
over every checkpoint's responses, in batches, only what is missing.

A scorer that cannot run (module missing, `available()` False, `load()` failing)
is recorded with its reason and the run goes on with the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from cai_bench.errors import UserError
from cai_bench.harness.scorers import Scorer, ScoreInput, ScoreRow, build_scorer, needs_download, scorer_ids

if TYPE_CHECKING:
    from cai_bench.harness.config import ScorerEntry
    from cai_bench.results import Store, Unit

log = logging.getLogger("cai_bench.harness")
DEFAULT_BATCH = 64


@dataclass
class ScorerStatus:
    """What happened to one scorer in this run (stored in runs.scorers_json)."""

    id: str
    config_hash: str = ""
    available: bool = True
    reason: str = ""
    scored: int = 0  # generations scored now
    reused: int = 0  # generations whose scores were already stored
    coverage: dict[str, Any] | None = None  # Coverage.as_json() over the run's scope, once scored

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def expand_entries(entries: Sequence["ScorerEntry"]) -> list["ScorerEntry"]:
    """`all` becomes every registered scorer not listed explicitly (in registry order)."""
    from cai_bench.harness.config import ScorerEntry

    explicit = [e for e in entries if e.id != "all"]
    out = list(explicit)
    if any(e.id == "all" for e in entries):
        named = {e.id for e in explicit}
        out += [ScorerEntry(id=sid) for sid in scorer_ids() if sid not in named]
    seen: set[str] = set()
    unique = []
    for e in out:
        if e.id in seen:
            raise UserError(f"scorer {e.id!r} is listed twice; give one entry with its settings")
        seen.add(e.id)
        unique.append(e)
    return unique


def prepare_scorers(entries: Sequence["ScorerEntry"], *,
                    download: bool = True) -> list[tuple[Scorer | None, ScorerStatus]]:
    """Instances (None when unavailable) with their status. Unknown ids and bad
    settings are user errors; a missing module or dependency is 'unavailable'.
    `download=False` also makes unavailable a scorer whose hub model is not cached,
    so a run nobody configured never starts a multi-GB download."""
    out: list[tuple[Scorer | None, ScorerStatus]] = []
    for entry in expand_entries(entries):
        known = scorer_ids()
        if entry.id not in known:
            raise UserError(f"unknown scorer {entry.id!r}; known: {', '.join(known)} (or 'all')")
        try:
            scorer = build_scorer(entry.id, entry.settings)
        except ImportError as exc:
            out.append((None, ScorerStatus(entry.id, available=False, reason=f"cannot import: {exc}")))
            continue
        status = ScorerStatus(entry.id, config_hash=scorer.config_hash)
        try:
            ok, reason = scorer.available()
        except Exception as exc:  # noqa: BLE001 - a broken probe means unavailable, not a crash
            ok, reason = False, f"availability check failed: {type(exc).__name__}: {exc}"
        if ok and not download:
            missing = [m for m in scorer.hub_models() if needs_download(m)]
            if missing:
                ok, reason = False, (f"{', '.join(missing)} is not in the local Hugging Face cache and the default "
                                     f"scorer set never downloads; name it (--scorer {entry.id}) to fetch it")
        if not ok:
            status.available, status.reason = False, reason or "not available"
            out.append((None, status))
        else:
            out.append((scorer, status))
    return out


def score_inputs(scorer: Scorer, inputs: Sequence[ScoreInput], batch_size: int,
                 on_batch: Callable[[list[ScoreInput], list[ScoreRow]], None]) -> None:
    """Score `inputs` in batches; a batch that raises becomes error rows, and rows
    the scorer forgot become error rows too, so every input gets every metric."""
    metrics = [m.name for m in scorer.metrics]
    for i in range(0, len(inputs), batch_size):
        batch = list(inputs[i:i + batch_size])
        try:
            rows = scorer.score(batch)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded per row, the run goes on
            log.warning("scorer %s failed on a batch: %s: %s", scorer.id, type(exc).__name__, exc)
            rows = [ScoreRow.failed(x.key, m, f"{type(exc).__name__}: {exc}") for x in batch for m in metrics]
        have = {(r.key, r.metric) for r in rows}
        rows += [ScoreRow.failed(x.key, m, "scorer returned no row") for x in batch for m in metrics
                 if (x.key, m) not in have]
        on_batch(batch, rows)


def batch_size_of(scorer: Scorer) -> int:
    return int(getattr(scorer.config, "batch_size", DEFAULT_BATCH) or DEFAULT_BATCH)


def run_scoring(store: "Store", run_id: str, units: Sequence["Unit"],
                prepared: Sequence[tuple[Scorer | None, ScorerStatus]], *, force: bool = False,
                progress: Any = None) -> list[ScorerStatus]:
    """Score every generation in `units` with each available scorer, loading one at a time."""
    statuses = [st for _, st in prepared]
    for scorer, status in prepared:
        if scorer is None:
            continue
        n_metrics = len(scorer.metrics)
        store.upsert_scorer_metrics(scorer.id, scorer.config_hash, scorer.metrics, scorer.config.public_dict())
        if force:
            store.delete_scores(units, scorer.id, scorer.config_hash)
        pending, status.reused = store.pending_scores(units, scorer.id, scorer.config_hash, n_metrics)
        if not pending:
            _set_coverage(store, units, scorer, status)
            continue
        bar = progress.add_task(f"score {scorer.id}", total=len(pending)) if progress is not None else None
        try:
            scorer.ensure_loaded()
        except UserError as exc:
            status.available, status.reason = False, f"could not load: {exc.message}"
            log.warning("scorer %s unavailable: %s", scorer.id, status.reason)
            continue
        except Exception as exc:  # noqa: BLE001 - unavailable with the reason, the run goes on
            status.available, status.reason = False, f"could not load: {type(exc).__name__}: {exc}"
            log.warning("scorer %s unavailable: %s", scorer.id, status.reason)
            continue
        try:
            inputs = [ScoreInput(key=str(p.generation_id), prompt=p.prompt, response=p.response,
                                 reference=p.reference, task_id=p.task_id, prompt_id=p.prompt_id,
                                 principle_id=p.principle_id, constitution_id=p.constitution_id,
                                 category=p.category, expect=p.expect) for p in pending]

            def save(batch: list[ScoreInput], rows: list[ScoreRow], _s: Scorer = scorer) -> None:
                store.insert_scores(run_id, _s.id, _s.config_hash, [(int(r.key), r) for r in rows])
                status.scored += len(batch)
                if bar is not None:
                    progress.advance(bar, len(batch))

            score_inputs(scorer, inputs, batch_size_of(scorer), save)
        finally:
            scorer.close()
        _set_coverage(store, units, scorer, status)
    return statuses


def _set_coverage(store: "Store", units: Sequence["Unit"], scorer: Scorer, status: ScorerStatus) -> None:
    from cai_bench.results.coverage import summarize

    cov = summarize(scorer.id, store.score_statuses(units, scorer.id, scorer.config_hash))
    status.coverage = cov.as_json()
