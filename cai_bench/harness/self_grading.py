"""No model grades itself: a scorer whose judge is the checkpoint under test, or
the base of a checkpoint that is an adapter of it, is refused for that checkpoint.

Judges and checkpoints are compared by fingerprint (`models.fingerprint`): a
served judge `ollama:llama3.1:8b` is the checkpoint `ollama:llama3.1:8b`, a local
judge is its weights' hash, whatever path names them. The override is the
scorer setting `allow_self_grading: true` (or the run option of that name, which
sets it on every scorer); it is part of the scorer's identity, so self-graded
scores are stored under their own config and the report shows the setting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cai_bench.harness.scorers import Scorer
    from cai_bench.models.resolve import ResolvedCheckpoint

log = logging.getLogger("cai_bench.harness")


@dataclass(frozen=True)
class Refusal:
    scorer_id: str
    checkpoint: str  # its label
    fingerprint: str  # the checkpoint's
    judge: str  # the judge's spec
    relation: str  # "is the checkpoint under test" | "is the base of the adapter under test"

    def line(self) -> str:
        return (f"scorer {self.scorer_id}: refused for checkpoint {self.checkpoint}: its judge {self.judge} "
                f"{self.relation} (no self-grading); set allow_self_grading: true on the scorer or pass "
                f"--allow-self-grading to score it anyway")


def judge_spec(spec: str) -> str:
    """A local judge's model as a checkpoint spec: a bundled name or a folder as given,
    anything else a hub id."""
    if ":" in spec.split("/")[0] or Path(spec).expanduser().is_dir():
        return spec
    return f"hf:{spec}"


def judge_fingerprints(scorer: "Scorer") -> dict[str, str]:
    """fingerprint -> spec of each judge model of `scorer`; a judge that cannot be
    resolved here (a hub model not in the cache) has no fingerprint and is skipped."""
    from cai_bench.errors import UserError
    from cai_bench.models.resolve import resolve_checkpoint

    out: dict[str, str] = {}
    for spec, url in scorer.judge_models():
        try:
            ck = resolve_checkpoint(judge_spec(spec), base_url=url)
        except (UserError, OSError, ValueError) as exc:
            log.debug("judge %s of %s has no fingerprint here: %s", spec, scorer.id, exc)
            continue
        out[ck.fingerprint] = spec
    return out


def refusals(scorer: "Scorer", checkpoints: Sequence["ResolvedCheckpoint"]) -> list[Refusal]:
    """The checkpoints `scorer` must not grade (none when it allows self-grading)."""
    if getattr(scorer.config, "allow_self_grading", False) or not checkpoints:
        return []
    judges = judge_fingerprints(scorer)
    out = []
    for ck in checkpoints:
        if ck.fingerprint in judges:
            out.append(Refusal(scorer.id, ck.label, ck.fingerprint, judges[ck.fingerprint],
                               "is the checkpoint under test"))
        elif ck.metadata.get("base_fingerprint") in judges:
            out.append(Refusal(scorer.id, ck.label, ck.fingerprint, judges[ck.metadata["base_fingerprint"]],
                               "is the base of the adapter under test"))
    return out


__all__ = ["Refusal", "judge_fingerprints", "judge_spec", "refusals"]
