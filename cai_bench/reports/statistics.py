"""Statistics for the leaderboards: seeded bootstrap CIs, paired bootstrap deltas,
direction-normalized composites and ranks.

Every random draw comes from a generator seeded by (seed, a CRC of the cell's key),
so a cell's numbers depend only on its data and the seed, never on the order in
which cells are computed.
"""

from __future__ import annotations

import zlib
from typing import Literal

import numpy as np
import pandas as pd

from cai_bench.bootstrap_settings import N_BOOT

GroupBy = Literal["task", "culture"]
_CHUNK = 4_000_000  # bootstrap index draws held in memory at once


def rng_for(seed: int, *key: object) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("\x1f".join(map(str, key)).encode())])


def bootstrap_means(x: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """`n_boot` bootstrap means of `x` (drawn in chunks to bound memory)."""
    n = len(x)
    out = np.empty(n_boot)
    per = max(1, _CHUNK // max(n, 1))
    for start in range(0, n_boot, per):
        k = min(per, n_boot - start)
        idx = rng.integers(0, n, size=(k, n), dtype=np.int64 if n > 2**31 - 1 else np.int32)
        out[start:start + k] = x[idx].mean(axis=1)
    return out


def bootstrap_ci(x: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOT,
                 level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) with a percentile bootstrap CI; NaNs when `x` is empty."""
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(x.mean())
    if len(x) == 1 or n_boot <= 0:
        return (mean, mean, mean)
    means = bootstrap_means(x, rng, n_boot)
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return (mean, float(lo), float(hi))


def paired_bootstrap(x: np.ndarray, base: np.ndarray, rng: np.random.Generator,
                     n_boot: int = N_BOOT) -> tuple[float, float, float, float]:
    """(delta, lo, hi, p) for mean(x - base) over paired samples; two-sided p from
    the bootstrap distribution of the mean difference.

    p is never 0: the Monte-Carlo estimate is add-one smoothed, and floored at
    2^(1-n), the smallest p an exact sign-flip test can give with n pairs (with 3
    pairs nothing is significant, however large the bootstrap)."""
    d = np.asarray(x, dtype=float) - np.asarray(base, dtype=float)
    n = len(d)
    if n == 0:
        return (np.nan, np.nan, np.nan, np.nan)
    delta = float(d.mean())
    floor = 2.0 ** (1 - n) if n < 1075 else 0.0
    if np.allclose(d, d[0]):
        return (delta, delta, delta, 1.0 if d[0] == 0 else min(1.0, floor))
    means = bootstrap_means(d, rng, n_boot)
    lo, hi = np.quantile(means, [0.025, 0.975])
    tail = min(int((means <= 0).sum()), int((means >= 0).sum()))
    p = min(1.0, max(2 * (tail + 1) / (n_boot + 1), floor))
    return (delta, float(lo), float(hi), p)


def metric_key(df: pd.DataFrame) -> pd.Series:
    return df["scorer_id"].astype(str) + "." + df["metric"].astype(str)


def add_normalized(df: pd.DataFrame) -> pd.DataFrame:
    """Add `key` and `norm` (0 worst .. 1 best) to ok rows. The range is the
    metric's declared lo/hi when known, else min..max over the data."""
    ok = df[df["status"] == "ok"].copy()
    ok["key"] = metric_key(ok)
    if ok.empty:
        return ok.assign(norm=pd.Series(dtype="float64"))
    stats = ok.groupby("key").agg(dlo=("value", "min"), dhi=("value", "max"),
                                  lo_=("lo", "first"), hi_=("hi", "first"), dir_=("direction", "first"))
    declared = stats["lo_"].notna() & stats["hi_"].notna() & (stats["hi_"] > stats["lo_"])
    stats["rlo"] = np.where(declared, stats["lo_"], stats["dlo"])
    stats["rhi"] = np.where(declared, stats["hi_"], stats["dhi"])
    ok = ok.join(stats[["rlo", "rhi", "dir_"]], on="key")
    span = (ok["rhi"] - ok["rlo"]).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(span > 0, (ok["value"] - ok["rlo"]).to_numpy() / span, 0.5)
    norm = np.clip(norm, 0.0, 1.0)
    ok["norm"] = np.where(ok["dir_"].to_numpy() == "lower", 1.0 - norm, norm)
    return ok.drop(columns=["rlo", "rhi", "dir_"])


def metric_scales(df: pd.DataFrame) -> dict[str, dict]:
    """Per metric key, the scale `add_normalized` maps to 0..1: {lo, hi, direction,
    declared (True: the scorer's range; False: min..max over the data), in_composite}."""
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return {}
    ok = ok.assign(key=metric_key(ok))
    out: dict[str, dict] = {}
    for key, part in ok.groupby("key", sort=True):
        lo, hi = part["lo"].iloc[0], part["hi"].iloc[0]
        declared = bool(pd.notna(lo) and pd.notna(hi) and hi > lo)
        if not declared:
            lo, hi = float(part["value"].min()), float(part["value"].max())
        inside = part["in_composite"].astype(bool)
        out[str(key)] = {"lo": float(lo), "hi": float(hi), "direction": str(part["direction"].iloc[0]),
                         "declared": declared, "in_composite": bool(inside.any()),
                         "out_on": sorted(set(part.loc[~inside, "task_id"].astype(str))) if inside.any() else []}
    return out


def _cells(frame: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, np.ndarray]]:
    """(group key, row positions) in sorted key order; positions keep frame order."""
    groups = frame[keys].groupby(keys, sort=True).indices
    return [(k, groups[k]) for k in sorted(groups)]


def group_column(by: GroupBy) -> str:
    if by not in ("task", "culture"):
        raise ValueError(f"by must be 'task' or 'culture', not {by!r}")
    return "task_id" if by == "task" else "culture"


def excluded_keys(df: pd.DataFrame) -> list[str]:
    """`scorer.metric` keys declared out of the composite (behaviour verdicts such as a
    refusal): reported, not folded in. A key out only on some tasks (a task.yaml said
    so) is listed with them: `judge.score (on task t)`."""
    if df.empty:
        return []
    keyed = df.assign(key=metric_key(df), inside=df["in_composite"].astype(bool))
    out = []
    for key, part in keyed.groupby("key", sort=True):
        if part["inside"].all():
            continue
        tasks = sorted(set(part.loc[~part["inside"], "task_id"].astype(str)))
        out.append(str(key) if not part["inside"].any() else f"{key} (on task {', '.join(tasks)})")
    return out


def per_sample(ok: pd.DataFrame) -> pd.DataFrame:
    """One row per generation: its composite (mean normalized score over the
    composite metrics it has)."""
    comp = ok[ok["in_composite"].astype(bool)]
    return (comp.groupby(["culture", "task_id", "fingerprint", "label", "prompt_id"], sort=True)["norm"]
                .mean().rename("composite").reset_index())


def leaderboard(df: pd.DataFrame, by: GroupBy = "culture", *, seed: int = 0, n_boot: int = N_BOOT) -> pd.DataFrame:
    """One row per (group, checkpoint): n, coverage, composite, rank and per
    metric mean with a seeded bootstrap 95% CI (`<key>`, `<key>.lo`, `<key>.hi`, `<key>.n`)."""
    gcol = group_column(by)
    base_cols = ["group", "label", "fingerprint", "n", "coverage", "composite", "rank", "rank_p"]
    if df.empty:
        return pd.DataFrame(columns=base_cols)
    ok = add_normalized(df)
    totals = (df[[gcol, "fingerprint", "label"]].assign(ok_rows=(df["status"] == "ok").to_numpy())
              .groupby([gcol, "fingerprint"], sort=True)
              .agg(label=("label", "first"), rows=("ok_rows", "size"), ok_rows=("ok_rows", "sum")))
    n = (df.drop_duplicates([gcol, "fingerprint", "task_id", "prompt_id"])
           .groupby([gcol, "fingerprint"]).size().rename("n"))
    board = totals.join(n)
    board["coverage"] = board["ok_rows"] / board["rows"]
    keys = sorted(ok["key"].unique())
    inside = ok["in_composite"].astype(bool).to_numpy()
    cells: dict[tuple, dict[str, float]] = {idx: {} for idx in board.index}
    norm_means: dict[tuple, list[float]] = {idx: [] for idx in board.index}
    values, norms = ok["value"].to_numpy(dtype=float), ok["norm"].to_numpy(dtype=float)
    for (g, fp, key), idx in _cells(ok, [gcol, "fingerprint", "key"]):
        mean, lo, hi = bootstrap_ci(values[idx], rng_for(seed, by, g, fp, key), n_boot)
        cells[(g, fp)].update({key: mean, f"{key}.lo": lo, f"{key}.hi": hi, f"{key}.n": float(len(idx))})
        counted = idx[inside[idx]]  # the rows whose metric enters the composite (on their task)
        if len(counted):
            norm_means[(g, fp)].append(float(norms[counted].mean()))
    board["composite"] = [float(np.mean(v)) if v else np.nan for v in (norm_means[i] for i in board.index)]
    metric_cols = [c for k in keys for c in (k, f"{k}.lo", f"{k}.hi", f"{k}.n")]
    metric_frame = pd.DataFrame([cells[i] for i in board.index], index=board.index, columns=metric_cols)
    board = board.join(metric_frame).reset_index().rename(columns={gcol: "group"})
    # No composite (e.g. only n/a metrics) means no rank, shown as "–", sorted last.
    board["rank"], board["rank_p"] = _ranks(board, ok, gcol, by, seed, n_boot)
    board = board.sort_values(["group", "rank", "composite", "label", "fingerprint"],
                              ascending=[True, True, False, True, True], kind="mergesort").reset_index(drop=True)
    return board[base_cols + metric_cols]


RANK_ALPHA = 0.05
RANK_TEST = ("checkpoints next to each other in composite order share a rank unless their paired difference "
             "in per-prompt composite (bootstrap over the prompts both answered, Holm-corrected over the "
             f"adjacent pairs of the group) has p < {RANK_ALPHA}")


def holm(pvalues: list[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def bh(pvalues: list[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate), in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i], reverse=True)
    adjusted = [1.0] * m
    running = 1.0
    for k, i in enumerate(order):  # from the largest p down: rank m - k
        running = min(running, m * pvalues[i] / (m - k))
        adjusted[i] = min(1.0, running)
    return adjusted


CORRECTIONS = {"holm": ("Holm", holm), "bh": ("Benjamini-Hochberg", bh)}


def adjust(pvalues: list[float], method: str) -> list[float]:
    """`pvalues` corrected by `method` (holm or bh); NaNs (no test) stay NaN and are not counted."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, not {method!r}")
    real = [i for i, p in enumerate(pvalues) if p is not None and np.isfinite(p)]
    out = [float("nan")] * len(pvalues)
    for i, q in zip(real, CORRECTIONS[method][1]([float(pvalues[i]) for i in real])):
        out[i] = q
    return out


def seeds_prompts_bootstrap(d: np.ndarray, rng: np.random.Generator,
                            n_boot: int = N_BOOT) -> tuple[float, float, float, float]:
    """(mean, lo, hi, p) of a seeds x prompts matrix (e.g. paired differences per training
    seed and held-out prompt), resampling seeds and prompts together: each draw picks
    seeds and prompts with replacement, independently (a crossed two-level bootstrap),
    so the CI carries the seed-to-seed spread as well as the prompt-to-prompt one.

    One seed: exactly `paired_bootstrap` over its prompts. p is two-sided from the
    bootstrap distribution, add-one smoothed and floored like `paired_bootstrap`."""
    d = np.asarray(d, dtype=float)
    if d.ndim != 2 or d.size == 0:
        return (np.nan, np.nan, np.nan, np.nan)
    s, n = d.shape
    if s == 1:
        return paired_bootstrap(d[0], np.zeros(n), rng, n_boot)
    delta = float(d.mean())
    floor = 2.0 ** (1 - n) if n < 1075 else 0.0
    if np.allclose(d, d.flat[0]):
        return (delta, delta, delta, 1.0 if d.flat[0] == 0 else min(1.0, floor))
    means = np.empty(n_boot)
    per = max(1, _CHUNK // max(n + s, 1))
    for start in range(0, n_boot, per):
        k = min(per, n_boot - start)
        cs = rng.multinomial(s, np.full(s, 1.0 / s), size=k)  # how often each seed was drawn
        cp = rng.multinomial(n, np.full(n, 1.0 / n), size=k)  # how often each prompt was drawn
        means[start:start + k] = np.einsum("bs,sn,bn->b", cs, d, cp) / (s * n)
    lo, hi = np.quantile(means, [0.025, 0.975])
    tail = min(int((means <= 0).sum()), int((means >= 0).sum()))
    p = min(1.0, max(2 * (tail + 1) / (n_boot + 1), floor))
    return (delta, float(lo), float(hi), p)


def _ranks(board: pd.DataFrame, ok: pd.DataFrame, gcol: str, by: str, seed: int,
           n_boot: int) -> tuple[pd.Series, pd.Series]:
    """Ranks that only separate what the data separates (`RANK_TEST`), and each checkpoint's
    Holm-adjusted p against the one ranked just above it (NaN for the first)."""
    rank = pd.Series(pd.NA, index=board.index, dtype="Int64")
    rank_p = pd.Series(np.nan, index=board.index, dtype=float)
    comp = per_sample(ok)
    for g, part in board[board["composite"].notna()].groupby("group", sort=True):
        part = part.sort_values(["composite", "label", "fingerprint"], ascending=[False, True, True], kind="mergesort")
        fps = part["fingerprint"].tolist()
        wide = comp[comp[gcol] == g].pivot_table(index=["task_id", "prompt_id"], columns="fingerprint",
                                                 values="composite", aggfunc="first")
        raw = []
        for a, b in zip(fps, fps[1:]):
            pair = wide[[a, b]].dropna() if {a, b} <= set(wide.columns) else pd.DataFrame()
            if len(pair) < 2:
                raw.append(1.0)  # nothing paired to tell them apart
                continue
            *_, p = paired_bootstrap(pair[a].to_numpy(float), pair[b].to_numpy(float),
                                     rng_for(seed, by, g, a, b, "rank"), n_boot)
            raw.append(float(p))
        adjusted = holm(raw)
        current = 1
        for pos, idx in enumerate(part.index):
            if pos and adjusted[pos - 1] < RANK_ALPHA:
                current = pos + 1
            rank[idx] = current
            rank_p[idx] = adjusted[pos - 1] if pos else np.nan
    return rank, rank_p


def deltas(df: pd.DataFrame, baseline_fp: str, by: GroupBy = "culture", *, seed: int = 0,
           n_boot: int = N_BOOT) -> pd.DataFrame:
    """Per (group, checkpoint, metric incl. `composite`): mean paired difference to
    the baseline over prompts both answered, its bootstrap CI and p-value."""
    cols = ["group", "label", "fingerprint", "metric", "n_pairs", "delta", "lo", "hi", "p_value", "n_boot"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    gcol = group_column(by)
    ok = add_normalized(df)
    values = ok[[gcol, "fingerprint", "label", "task_id", "prompt_id", "key", "value"]]
    comp = per_sample(ok).rename(columns={"composite": "value"}).assign(key="composite")
    values = pd.concat([values, comp[[gcol, "fingerprint", "label", "task_id", "prompt_id", "key", "value"]]])
    base = values[values["fingerprint"] == baseline_fp]
    others = values[values["fingerprint"] != baseline_fp]
    paired = others.merge(base[[gcol, "task_id", "prompt_id", "key", "value"]],
                          on=[gcol, "task_id", "prompt_id", "key"], suffixes=("", "_base"))
    paired = paired.sort_values([gcol, "fingerprint", "key", "task_id", "prompt_id"], kind="mergesort")
    paired = paired.reset_index(drop=True)
    x, b = paired["value"].to_numpy(dtype=float), paired["value_base"].to_numpy(dtype=float)
    labels = paired["label"].to_numpy()
    rows = []
    for (g, fp, key), idx in _cells(paired, [gcol, "fingerprint", "key"]):
        delta, lo, hi, p = paired_bootstrap(x[idx], b[idx], rng_for(seed, "delta", by, g, fp, key), n_boot)
        rows.append([g, labels[idx[0]], fp, key, len(idx), delta, lo, hi, p, n_boot])
    return pd.DataFrame(rows, columns=cols)


def principle_breakdown(df: pd.DataFrame) -> pd.DataFrame:
    """Mean per-sample composite per (culture, task, principle, checkpoint)."""
    cols = ["culture", "task_id", "principle_id", "label", "fingerprint", "n", "score"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    ok = add_normalized(df)
    samples = per_sample(ok)
    pids = df.drop_duplicates(["task_id", "prompt_id"])[["task_id", "prompt_id", "principle_id"]]
    samples = samples.merge(pids, on=["task_id", "prompt_id"], how="left")
    samples = samples[samples["principle_id"].notna()]
    out = (samples.groupby(["culture", "task_id", "principle_id", "label", "fingerprint"], sort=True)["composite"]
                  .agg(n="size", score="mean").reset_index())
    return out[cols]


def weakest_principles(breakdown: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The `k` lowest-scoring principles per (culture, checkpoint)."""
    if breakdown.empty:
        return breakdown
    ordered = breakdown.sort_values(["culture", "label", "fingerprint", "score", "principle_id"], kind="mergesort")
    return ordered.groupby(["culture", "fingerprint"], sort=False).head(k).reset_index(drop=True)


def culture_matrix(board: pd.DataFrame) -> pd.DataFrame:
    """Checkpoint x culture composite (rows: labels, columns: cultures)."""
    if board.empty:
        return pd.DataFrame()
    return board.pivot_table(index="label", columns="group", values="composite", aggfunc="first").sort_index()
