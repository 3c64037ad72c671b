"""Post-training guards: did SFT collapse the model, did DPO do nothing?

Both compare greedy answers to a few held-out eval prompts.

Collapse (after SFT and after DPO, against the base model's answers):
- ``distinct_2``: distinct word bigrams / all bigrams over every answer;
- ``repetition``: share of answers in which at least 30 % of the word 3-grams
  repeat an earlier 3-gram of the same answer (a loop such as "The response is
  not a response at all. The response is not ...");
- ``diversity``: distinct answers (first 12 normalised words) / answers.
The guard fires when distinct_2 or diversity falls below ``COLLAPSE_RATIO`` (0.5)
of the base's, or repetition rises by more than ``REPETITION_RISE`` (0.3).

No-op DPO (policy vs its reference, the SFT model): fires when every answer is
byte-identical to the reference's, or when the largest |rewards/margins| in the
DPO trainer log is below ``MARGIN_EPS`` (1e-3): the policy did not move.

A firing guard is a warning (console and report), never a stop: the numbers are
still worth seeing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

COLLAPSE_RATIO = 0.5
REPETITION_RISE = 0.3
LOOP_SHARE = 0.3
MARGIN_EPS = 1e-3


def _words(text: str) -> list[str]:
    return text.casefold().split()


def diversity_stats(texts: Sequence[str]) -> dict[str, float]:
    """distinct_1, distinct_2, repetition and diversity of a set of answers."""
    uni: list[str] = []
    bi: list[tuple] = []
    loops = 0
    heads = set()
    for t in texts:
        w = _words(t)
        uni += w
        bi += list(zip(w, w[1:]))
        tri = list(zip(w, w[1:], w[2:]))
        if len(tri) >= 4 and 1 - len(set(tri)) / len(tri) >= LOOP_SHARE:
            loops += 1
        heads.add(" ".join(w[:12]))
    n = max(len(texts), 1)
    return {"distinct_1": len(set(uni)) / len(uni) if uni else 0.0,
            "distinct_2": len(set(bi)) / len(bi) if bi else 0.0,
            "repetition": loops / n, "diversity": len(heads) / n, "answers": float(len(texts))}


@dataclass
class GuardResult:
    name: str
    fired: bool
    stats: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def message(self) -> str:
        return f"{self.name}: " + "; ".join(self.reasons)

    def as_dict(self) -> dict:
        return {"name": self.name, "fired": self.fired, "stats": self.stats, "reasons": self.reasons}


def collapse_guard(name: str, base: Sequence[str], tuned: Sequence[str]) -> GuardResult:
    b, t = diversity_stats(base), diversity_stats(tuned)
    reasons = []
    for key in ("distinct_2", "diversity"):
        if b[key] > 0 and t[key] < COLLAPSE_RATIO * b[key]:
            reasons.append(f"{key} {t[key]:.2f} vs base {b[key]:.2f} (< {COLLAPSE_RATIO:.0%} of base)")
    if t["repetition"] > b["repetition"] + REPETITION_RISE:
        reasons.append(f"looping answers {t['repetition']:.0%} vs base {b['repetition']:.0%}")
    return GuardResult(f"collapse after {name}", bool(reasons), {"base": b, name: t}, reasons)


def max_abs_margin(log_history: Sequence[dict]) -> float | None:
    vals = [abs(float(e["rewards/margins"])) for e in log_history if "rewards/margins" in e]
    return max(vals) if vals else None


def noop_dpo_guard(reference: Sequence[str], policy: Sequence[str], log_history: Sequence[dict]) -> GuardResult:
    same = sum(1 for a, b in zip(reference, policy) if a == b)
    n = min(len(reference), len(policy))
    margin = max_abs_margin(log_history)
    reasons = []
    if n and same == n:
        reasons.append(f"all {n} DPO answers are byte-identical to the SFT reference's")
    if margin is not None and margin < MARGIN_EPS:
        reasons.append(f"reward margins stayed ~0 (max |margin| {margin:.2g} < {MARGIN_EPS:g})")
    return GuardResult("no-op DPO", bool(reasons),
                       {"identical": same, "answers": n, "max_abs_margin": margin}, reasons)
