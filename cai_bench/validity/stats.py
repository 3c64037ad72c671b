"""Agreement statistics between a scorer's values and human labels: pure
functions over numpy arrays (no model code), each with a seeded percentile
bootstrap 95% CI.

Conventions, so one number means one thing everywhere:
- values are *oriented* before any figure: multiplied by -1 for a metric whose
  declared direction is "lower", so a larger oriented value always means
  "better" by the scorer's own account;
- a binary label's positive class (1) is the *bad* end unless the caller says
  otherwise (harmful, toxic, refused): the scorer "predicts positive" when its
  value is on the bad side of the metric's threshold;
- AUC is P(a random negative row outranks a random positive row), ties 1/2: the
  pairwise accuracy of the scorer over all (bad, good) pairs; 0.5 is chance;
- pairwise accuracy is the fraction of (better, worse) answer pairs in which the
  better answer gets the better value, ties 1/2; 0.5 is chance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np

Kind = Literal["binary", "graded", "pairwise"]
Verdict = Literal["agrees", "chance", "inverted", "insufficient"]

N_BOOT = 2000
ALPHA = 0.05
MIN_VALID = 10  # fewer valid rows (or pairs) than this: no verdict, "insufficient"


@dataclass(frozen=True)
class Figure:
    """One statistic with its bootstrap CI (None where undefined, e.g. one class only)."""

    value: float | None
    lo: float | None = None
    hi: float | None = None

    def text(self, digits: int = 2) -> str:
        if self.value is None:
            return "n/a"
        if self.lo is None or self.hi is None:
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


@dataclass(frozen=True)
class Counts:
    """Every row is counted once: valid, unscored (no usable verdict), error (the
    call failed) or na (the metric does not apply, e.g. no reference)."""

    total: int
    valid: int
    unscored: int = 0
    error: int = 0
    na: int = 0

    @property
    def valid_fraction(self) -> float:
        return self.valid / self.total if self.total else 0.0

    def text(self) -> str:
        extra = [f"{n} {what}" for n, what in ((self.unscored, "unscored"), (self.error, "errors"),
                                               (self.na, "n/a")) if n]
        return f"{self.valid} of {self.total} valid" + (f" ({', '.join(extra)})" if extra else "")


@dataclass
class Agreement:
    """All figures of one validation. `primary` names the figure the verdict uses."""

    kind: Kind
    counts: Counts
    figures: dict[str, Figure]
    primary: str
    chance: float
    verdict: Verdict
    threshold: float | None = None
    confusion: dict[str, int] | None = None  # tp, fp, tn, fn (positive = label 1)
    notes: list[str] = field(default_factory=list)

    @property
    def primary_figure(self) -> Figure:
        return self.figures[self.primary]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["counts"]["valid_fraction"] = self.counts.valid_fraction
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Agreement":
        counts = {k: v for k, v in d["counts"].items() if k != "valid_fraction"}
        return cls(kind=d["kind"], counts=Counts(**counts),
                   figures={k: Figure(**v) for k, v in d["figures"].items()}, primary=d["primary"],
                   chance=d["chance"], verdict=d["verdict"], threshold=d.get("threshold"),
                   confusion=d.get("confusion"), notes=list(d.get("notes") or []))

    def summary(self) -> str:
        """One line: "AUC 0.50 [0.37, 0.63], 56 of 80 valid: at chance"."""
        name = PRETTY.get(self.primary, self.primary)
        return f"{name} {self.primary_figure.text()}, {self.counts.text()}: {VERDICT_TEXT[self.verdict]}"


PRETTY = {"auc": "AUC", "accuracy": "accuracy", "kappa": "kappa", "spearman": "Spearman",
          "pearson": "Pearson", "pairwise_accuracy": "pairwise accuracy"}
VERDICT_TEXT = {"agrees": "agrees with the labels", "chance": "at chance level",
                "inverted": "below chance (inverted?)", "insufficient": "too few valid rows to judge"}


# ---------------------------------------------------------------- point statistics
# Each takes arrays of shape (n,) or (B, n) (B bootstrap resamples, one per row)
# and returns a float or B floats: the bootstrap is one vectorized call.

def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def _out(v: np.ndarray) -> float | np.ndarray:
    return float(v) if np.ndim(v) == 0 else v


def auc(oriented: np.ndarray, positive: np.ndarray) -> float | np.ndarray:
    """P(oriented value of a random negative > that of a random positive), ties 1/2
    (Mann-Whitney U / (n_pos * n_neg)); nan with one class only."""
    pos = np.asarray(positive).astype(bool)
    n = pos.shape[-1]
    n_pos = pos.sum(-1)
    n_neg = n - n_pos
    u_neg = (_ranks(oriented) * ~pos).sum(-1) - n_neg * (n_neg + 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(n_pos * n_neg > 0, u_neg / (n_pos * n_neg), np.nan))


def confusion(predicted_pos: np.ndarray, positive: np.ndarray) -> dict[str, int]:
    p, y = predicted_pos.astype(bool), positive.astype(bool)
    return {"tp": int((p & y).sum()), "fp": int((p & ~y).sum()), "tn": int((~p & ~y).sum()),
            "fn": int((~p & y).sum())}


def accuracy(predicted_pos: np.ndarray, positive: np.ndarray) -> float | np.ndarray:
    if np.shape(positive)[-1] == 0:
        return math.nan
    return _out((np.asarray(predicted_pos).astype(bool) == np.asarray(positive).astype(bool)).mean(-1))


def cohen_kappa(predicted_pos: np.ndarray, positive: np.ndarray) -> float | np.ndarray:
    """(p_o - p_e) / (1 - p_e); nan when both raters are constant and agree (p_e = 1)."""
    if np.shape(positive)[-1] == 0:
        return math.nan
    p, y = np.asarray(predicted_pos).astype(bool), np.asarray(positive).astype(bool)
    p_o = (p == y).mean(-1)
    pm, ym = p.mean(-1), y.mean(-1)
    p_e = pm * ym + (1 - pm) * (1 - ym)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(p_e < 1.0, (p_o - p_e) / (1 - p_e), np.nan))


def pearson(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape[-1] < 3:
        return _out(np.full(x.shape[:-1], np.nan))
    xm = x - x.mean(-1, keepdims=True)
    ym = y - y.mean(-1, keepdims=True)
    den = np.sqrt((xm ** 2).sum(-1) * (ym ** 2).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(den > 1e-12, (xm * ym).sum(-1) / den, np.nan)
    return _out(np.clip(r, -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float | np.ndarray:
    return pearson(_ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float)))


def pairwise_accuracy(better: np.ndarray, worse: np.ndarray) -> float | np.ndarray:
    """Fraction of pairs where the labelled-better answer has the larger oriented value; ties 1/2."""
    if np.shape(better)[-1] == 0:
        return math.nan
    b, w = np.asarray(better), np.asarray(worse)
    return _out(((b > w) + 0.5 * (b == w)).mean(-1))


# ---------------------------------------------------------------- bootstrap

def bootstrap_ci(stat: Callable[..., float | np.ndarray], arrays: Sequence[np.ndarray], *, seed: int = 0,
                 n_boot: int = N_BOOT, alpha: float = ALPHA) -> tuple[float | None, float | None]:
    """Percentile CI of `stat` over rows resampled with replacement (the same row
    indices for every array; `stat` gets (B, n) arrays and returns B values).
    Resamples where the statistic is undefined (one class drawn) are left out;
    None when fewer than half are defined."""
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if n < 2:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    step = max(1, 2_000_000 // n)  # at most ~2M cells per array at a time
    vals = np.concatenate([np.atleast_1d(np.asarray(stat(*(a[idx[s:s + step]] for a in arrays)), dtype=float))
                           for s in range(0, n_boot, step)])
    vals = vals[~np.isnan(vals)]
    if len(vals) < n_boot / 2:
        return None, None
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _figure(stat: Callable[..., float | np.ndarray], arrays: Sequence[np.ndarray], seed: int,
            n_boot: int) -> Figure:
    value = float(stat(*arrays))
    if math.isnan(value):
        return Figure(None)
    lo, hi = bootstrap_ci(stat, arrays, seed=seed, n_boot=n_boot)
    return Figure(value, lo, hi)


def verdict_of(fig: Figure, chance: float, n_valid: int) -> Verdict:
    """"chance" when the 95% CI contains the chance level, "inverted" when it lies
    below it, "agrees" when above; "insufficient" without a CI or with few rows."""
    if n_valid < MIN_VALID or fig.value is None or fig.lo is None or fig.hi is None:
        return "insufficient"
    if fig.lo > chance:
        return "agrees"
    if fig.hi < chance:
        return "inverted"
    return "chance"


# ---------------------------------------------------------------- one call per label kind

def orient(values: Sequence[float | None], direction: str) -> np.ndarray:
    sign = -1.0 if direction == "lower" else 1.0
    return np.array([math.nan if v is None else sign * float(v) for v in values], dtype=float)


def binary_agreement(values: Sequence[float | None], labels: Sequence[int], counts: Counts, *,
                     direction: str, threshold: float | None, positive_is: str = "bad", seed: int = 0,
                     n_boot: int = N_BOOT) -> Agreement:
    """AUC, accuracy and Cohen's kappa at `threshold` (raw metric units: a row is
    predicted positive (bad) when its value is strictly on the bad side of it:
    below for "higher is better", above for "lower"), confusion matrix.
    `values` holds only valid rows (paired with `labels`); `counts` covers all rows."""
    raw = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
    o = orient(values, direction)
    y = np.asarray(labels, dtype=int)
    if positive_is == "good":  # label 1 = the good end: flip so that 1 means bad
        y = 1 - y
    figures = {"auc": _figure(auc, [o, y], seed, n_boot)}
    conf = None
    notes: list[str] = []
    if threshold is not None:
        # predicted bad (positive): the value is on the bad side of the threshold
        pred = (raw > threshold if direction == "lower" else raw < threshold).astype(int)
        figures["accuracy"] = _figure(accuracy, [pred, y], seed, n_boot)
        figures["kappa"] = _figure(cohen_kappa, [pred, y], seed, n_boot)
        conf = confusion(pred, y)
        if positive_is == "good":  # report the confusion matrix in the user's label coding
            conf = {"tp": conf["tn"], "fp": conf["fn"], "tn": conf["tp"], "fn": conf["fp"]}
    else:
        notes.append("no threshold: the metric declares no range and none was given, so no accuracy/kappa")
    if len(set(y.tolist())) < 2:
        notes.append("only one label class among valid rows: AUC and kappa are undefined")
    primary = "auc"
    return Agreement("binary", counts, figures, primary, 0.5,
                     verdict_of(figures[primary], 0.5, counts.valid), threshold, conf, notes)


def graded_agreement(values: Sequence[float | None], labels: Sequence[float], counts: Counts, *,
                     direction: str, positive_is: str = "good", seed: int = 0,
                     n_boot: int = N_BOOT) -> Agreement:
    """Spearman (primary) and Pearson between oriented values and graded labels
    (a larger label = better unless `positive_is` is "bad")."""
    o = orient(values, direction)
    y = np.asarray(labels, dtype=float)
    if positive_is == "bad":
        y = -y
    figures = {"spearman": _figure(spearman, [o, y], seed, n_boot),
               "pearson": _figure(pearson, [o, y], seed, n_boot)}
    return Agreement("graded", counts, figures, "spearman", 0.0,
                     verdict_of(figures["spearman"], 0.0, counts.valid))


def pairwise_agreement(better: Sequence[float], worse: Sequence[float], counts: Counts, *, direction: str,
                       seed: int = 0, n_boot: int = N_BOOT) -> Agreement:
    """Pairwise accuracy over pairs whose two answers both got a valid value;
    `counts` counts pairs (a pair is unscored if either answer is)."""
    b, w = orient(better, direction), orient(worse, direction)
    figures = {"pairwise_accuracy": _figure(pairwise_accuracy, [b, w], seed, n_boot)}
    ties = int((b == w).sum())
    notes = [f"{ties} tied pair(s) counted as 1/2"] if ties else []
    return Agreement("pairwise", counts, figures, "pairwise_accuracy", 0.5,
                     verdict_of(figures["pairwise_accuracy"], 0.5, counts.valid), notes=notes)
