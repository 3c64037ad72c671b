"""Train/eval leakage: does any training text repeat an evaluation prompt?

Every text is normalised (NFKC, case-folded, punctuation dropped, whitespace
collapsed). A pair is an *exact* overlap when the normalised texts are equal,
and a *near duplicate* when the word 5-gram containment
|grams(a) & grams(b)| / min(|grams(a)|, |grams(b)|) is at least
``NEAR_THRESHOLD`` (0.5): half of the shorter text's 5-grams appear in the
other, which catches an eval prompt pasted into a longer training prompt or
lightly edited. Texts shorter than 5 words only count when exactly equal.

`check_leakage` compares every training set with every eval set and stops the
stage (UserError) on any overlap unless `allow` (``--allow-overlap``).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cai_bench.errors import UserError

N = 5
NEAR_THRESHOLD = 0.5
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", t).split())


def ngrams(norm: str, n: int = N) -> set[tuple[str, ...]]:
    w = norm.split()
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


@dataclass
class Overlap:
    train_set: str
    eval_set: str
    exact: int = 0
    near: int = 0
    examples: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.exact + self.near


@dataclass
class LeakageReport:
    pairs: list[Overlap]
    threshold: float = NEAR_THRESHOLD

    @property
    def total(self) -> int:
        return sum(p.total for p in self.pairs)

    def as_dict(self) -> dict:
        return {"method": f"normalised exact match + word {N}-gram containment >= {self.threshold}",
                "threshold": self.threshold, "total": self.total,
                "pairs": [{"train_set": p.train_set, "eval_set": p.eval_set, "exact": p.exact, "near": p.near,
                           "examples": p.examples} for p in self.pairs]}


def _compare(train: Sequence[str], evals: Sequence[tuple[str, str]], threshold: float) -> tuple[int, int, list]:
    exact_index: dict[str, str] = {}
    gram_index: dict[tuple, set[int]] = defaultdict(set)
    eval_grams: list[set] = []
    for i, (eid, text) in enumerate(evals):
        norm = normalise(text)
        exact_index.setdefault(norm, eid)
        g = ngrams(norm)
        eval_grams.append(g)
        for gram in g:
            gram_index[gram].add(i)
    exact = near = 0
    examples: list[dict] = []
    for text in train:
        norm = normalise(text)
        if norm in exact_index:
            exact += 1
            if len(examples) < 3:
                examples.append({"kind": "exact", "eval_id": exact_index[norm], "train": text[:160]})
            continue
        g = ngrams(norm)
        if not g:
            continue
        hits: dict[int, int] = defaultdict(int)
        for gram in g:
            for i in gram_index.get(gram, ()):
                hits[i] += 1
        best = max(((c / min(len(g), len(eval_grams[i])), i) for i, c in hits.items()), default=(0.0, -1))
        if best[0] >= threshold:
            near += 1
            if len(examples) < 3:
                examples.append({"kind": "near", "eval_id": evals[best[1]][0], "containment": round(best[0], 3),
                                 "train": text[:160]})
    return exact, near, examples


def find_overlap(train_sets: Mapping[str, Sequence[str]], eval_sets: Mapping[str, Sequence[tuple[str, str]]],
                 *, threshold: float = NEAR_THRESHOLD) -> LeakageReport:
    """Overlap of every training set (texts) with every eval set ((id, text) pairs)."""
    pairs = []
    for tname, texts in train_sets.items():
        for ename, items in eval_sets.items():
            exact, near, ex = _compare(texts, items, threshold)
            pairs.append(Overlap(tname, ename, exact, near, ex))
    return LeakageReport(pairs, threshold)


def check_leakage(report: LeakageReport, *, allow: bool = False) -> list[str]:
    """Stop on overlap unless `allow`; returns warnings (overlap that was allowed)."""
    bad = [p for p in report.pairs if p.total]
    if not bad:
        return []
    shown = "; ".join(f"{p.train_set} vs {p.eval_set}: {p.exact} exact, {p.near} near-duplicate"
                      + (f" (e.g. eval {p.examples[0]['eval_id']!r})" if p.examples else "") for p in bad[:4])
    msg = (f"leakage: training data overlaps the eval prompts ({shown}; near = word {N}-gram containment >= "
           f"{report.threshold}). Fix: remove those rows or eval prompts, or pass --allow-overlap")
    if not allow:
        raise UserError(msg)
    return [msg.replace("leakage:", "leakage allowed (--allow-overlap):")]
