"""Phase 2 of a run: score stored responses, one scorer model in memory at a time,
over every checkpoint's responses, in batches, only what is missing.

A scorer that cannot run (module missing, `available()` False, `load()` failing)
is recorded with its reason and the run goes on with the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cai_bench.console import safe
from cai_bench.errors import UserError
from cai_bench.harness.scorers import Scorer, ScoreInput, ScoreRow, build_scorer, needs_download, scorer_ids

if TYPE_CHECKING:
    from cai_bench.harness.config import ScorerEntry
    from cai_bench.harness.leases import Leases
    from cai_bench.models.resolve import ResolvedCheckpoint
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
    refused: list[str] = field(default_factory=list)  # checkpoints it may not grade: one line each (self_grading)

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


def prepare_scorers(entries: Sequence["ScorerEntry"], *, download: bool = True,
                    allow_self_grading: bool = False) -> list[tuple[Scorer | None, ScorerStatus]]:
    """Instances (None when unavailable) with their status. Unknown ids and bad
    settings are user errors; a missing module or dependency is 'unavailable'.
    `download=False` also makes unavailable a scorer whose hub model is not cached,
    so a run nobody configured never starts a multi-GB download. `allow_self_grading`
    (the run option) sets that setting on every scorer, where it is recorded."""
    out: list[tuple[Scorer | None, ScorerStatus]] = []
    for entry in expand_entries(entries):
        known = scorer_ids()
        if entry.id not in known:
            raise UserError(f"unknown scorer {entry.id!r}; known: {', '.join(known)} (or 'all')")
        settings = {**entry.settings, "allow_self_grading": True} if allow_self_grading else entry.settings
        try:
            scorer = build_scorer(entry.id, settings)
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
    if not scorer.remote:  # an in-process scorer model: torch threads for the cores others leave free
        from cai_bench.cpu_threads import apply

        apply(f"scoring with {scorer.id}", min_interval=30.0)
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
    """Inputs per `score` call; a served scorer gets at least `concurrency` of them, so that
    all its requests can be in flight at once (the judge's `batch_size` is for in-process models)."""
    size = int(getattr(scorer.config, "batch_size", DEFAULT_BATCH) or DEFAULT_BATCH)
    if scorer.remote:
        size = max(size, int(getattr(scorer.config, "concurrency", 1) or 1))
    return size


def run_scoring(store: "Store", run_id: str, units: Sequence["Unit"],
                prepared: Sequence[tuple[Scorer | None, ScorerStatus]], *, force: bool = False,
                progress: Any = None, leases: "Leases | None" = None, poll_seconds: float = 2.0,
                units_done: list[str] | None = None,
                checkpoints: Sequence["ResolvedCheckpoint"] = ()) -> list[ScorerStatus]:
    """Score every generation in `units` with each available scorer, one scorer
    model loaded at a time. The generations are cut into batches (work units)
    that this worker claims through `leases` while other workers on the same
    store claim the rest; a scorer is loaded only if a claimed batch needs it.
    A judge never grades its own model among `checkpoints` (`harness.self_grading`)."""
    from cai_bench.harness.leases import Leases, score_units
    from cai_bench.harness.self_grading import refusals

    leases = leases or Leases(store.engine)
    statuses = [st for _, st in prepared]
    all_units = units
    for scorer, status in prepared:
        if scorer is None:
            continue
        refused = refusals(scorer, checkpoints)
        status.refused = [r.line() for r in refused]
        for line in status.refused:
            log.info("%s", line)  # the CLI prints it once, from the status
        skip = {r.fingerprint for r in refused}
        units = [u for u in all_units if u.fingerprint not in skip]
        n_metrics = len(scorer.metrics)
        store.upsert_scorer_metrics(scorer.id, scorer.config_hash, scorer.metrics,
                                    {**scorer.config.public_dict(), "identity": scorer.identity()})
        if not units:  # refused for every checkpoint in scope
            continue
        if force:
            store.delete_scores(units, scorer.id, scorer.config_hash)
        pending, status.reused = store.pending_scores(units, scorer.id, scorer.config_hash, n_metrics)
        if not pending:
            _set_coverage(store, units, scorer, status)
            continue
        waiting = {p.generation_id for p in pending}
        content = store.scope_content_hashes(units)  # the prompt version each generation is scored against
        todo = [w for w in score_units(scorer.id, scorer.config_hash, store.scope_generation_ids(units),
                                       batch_size_of(scorer)) if waiting.intersection(int(i) for i in w.items)]
        leases.register(todo)
        bar = progress.add_task(safe(f"score {scorer.id}"), total=len(pending)) if progress is not None else None
        loaded = False
        try:
            while True:
                wu = leases.claim(todo)
                if wu is None:
                    if loaded:  # free the scorer model while others finish their batches
                        scorer.close()
                        loaded = False
                    if leases.all_done(todo):
                        break
                    time.sleep(poll_seconds)
                    continue
                with leases.holding(wu):
                    batch = store.pending_scores_among([int(i) for i in wu.items], scorer.id, scorer.config_hash,
                                                       n_metrics, content)
                    if batch and not loaded:
                        if not _load(scorer, status):
                            leases.release(wu)
                            break
                        loaded = True
                    if batch:
                        inputs = [ScoreInput(key=str(p.generation_id), prompt=p.prompt, response=p.response,
                                             reference=p.reference, task_id=p.task_id, prompt_id=p.prompt_id,
                                             principle_id=p.principle_id, constitution_id=p.constitution_id,
                                             category=p.category, expect=p.expect) for p in batch]

                        def save(part: list[ScoreInput], rows: list[ScoreRow], _s: Scorer = scorer) -> None:
                            store.insert_scores(run_id, _s.id, _s.config_hash, [(int(r.key), r) for r in rows],
                                                content)
                            status.scored += len(part)
                            if bar is not None:
                                progress.advance(bar, len(part))

                        try:
                            score_inputs(scorer, inputs, batch_size_of(scorer), save)
                        except BaseException:
                            leases.release(wu)
                            raise
                if leases.complete(wu, worked=bool(batch)) and batch and units_done is not None:
                    units_done.append(wu.key)
        finally:
            if loaded:
                scorer.close()
        _set_coverage(store, units, scorer, status)
    return statuses


def _set_coverage(store: "Store", units: Sequence["Unit"], scorer: Scorer, status: ScorerStatus) -> None:
    from cai_bench.results.coverage import summarize

    cov = summarize(scorer.id, store.score_statuses(units, scorer.id, scorer.config_hash))
    status.coverage = cov.as_json()


def _load(scorer: Scorer, status: ScorerStatus) -> bool:
    """Load the scorer's model; on failure mark it unavailable with the reason."""
    try:
        scorer.ensure_loaded()
        return True
    except UserError as exc:
        status.available, status.reason = False, f"could not load: {exc.message}"
    except Exception as exc:  # noqa: BLE001 - unavailable with the reason, the run goes on
        status.available, status.reason = False, f"could not load: {type(exc).__name__}: {exc}"
    log.warning("scorer %s unavailable: %s", scorer.id, status.reason)
    return False
