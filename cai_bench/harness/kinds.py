"""The seam between a run and its task kinds (`Task.output_type`): the protocol each kind's
part of a run follows (`KindPlan`), what it works with (`RunContext`) and the result it adds
to (`RunResult`). The runner maps each kind to its planner (`runner.PLANNERS`); the parts
live beside what they run (`runner.GenerationPlan`, `loglik.LoglikPlan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cai_bench.results import Store, Unit

if TYPE_CHECKING:
    from cai_bench.harness.config import RunConfig
    from cai_bench.harness.leases import Leases
    from cai_bench.harness.scorers.base import Scorer
    from cai_bench.harness.scoring import ScorerStatus


@dataclass
class RunResult:
    """What one worker's run did and reused; every part of the run adds its counts."""

    run_id: str
    store_url: str
    out_dir: Path
    generated: int = 0
    generations_reused: int = 0
    scored: int = 0
    scores_reused: int = 0
    models_loaded: int = 0  # generation models built in this run
    generation_errors: int = 0  # prompts that failed for good now (stored as error rows; a re-run retries them)
    loglik_scored: int = 0  # multiple_choice items (hhh_alignment) scored by log-likelihood now
    loglik_reused: int = 0  # ... and found in the store
    scorers: list["ScorerStatus"] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)  # the run's checkpoints, in the order given
    seconds: float = 0.0
    worker: str = ""  # this process's lease owner id
    units_done: list[str] = field(default_factory=list)  # keys of the work units this worker did
    circuits: list[str] = field(default_factory=list)  # endpoints that stopped answering: what was skipped, why

    def summary_line(self) -> str:
        return (f"reused from store: {self.generations_reused} responses, {self.scores_reused} scored responses; "
                f"new: {self.generated} responses, {self.scored} scored; "
                f"generation models loaded: {self.models_loaded}"
                + (f"; log-likelihood items: {self.loglik_scored} new, {self.loglik_reused} reused"
                   if self.loglik_scored or self.loglik_reused else "")
                + (f"; failed: {self.generation_errors} prompts (error rows kept; a re-run retries them)"
                   if self.generation_errors else ""))


@dataclass
class RunContext:
    """What every part of a run works with: the store, this run's id and config, progress bars,
    the result being filled in, the work leases and the prepared scorers."""

    store: Store
    run_id: str
    cfg: "RunConfig"
    progress: Any
    result: RunResult
    leases: "Leases"
    scorers: list[tuple["Scorer | None", "ScorerStatus"]]


class KindPlan(Protocol):
    """One task kind's part of a run: its work units and the steps `run` drives it through."""

    units: list[Unit]

    def sample_json(self) -> dict[str, Any]:
        """How each of its tasks' prompts were drawn (stored with the run)."""
        ...

    def register(self, store: Store) -> None:
        """Its tasks, prompts (with their hashes) and configs in the store."""
        ...

    def answer(self, ctx: RunContext) -> None:
        """Phase 1: the checkpoints' answers, one model in memory at a time, closed on return."""
        ...

    def score(self, ctx: RunContext) -> list["ScorerStatus"]:
        """Phase 2: the statuses of whatever scored its answers."""
        ...
