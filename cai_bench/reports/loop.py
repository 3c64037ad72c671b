"""The loop section of a report: base -> SFT -> DPO per task and metric, for every
pipeline recorded in the store (`results.loops`).

Per task and metric of the loop's eval: means with 95 % bootstrap CIs per
checkpoint, paired deltas (SFT vs base, DPO vs SFT, DPO vs base) with p-values,
and a verdict. "improved" or "regressed" when the paired bootstrap p < 0.05 and
the mean delta goes the metric's better or worse way; otherwise "no significant
change". The p-values are uncorrected (each row its own test; the report
says so); an experiment's comparisons are corrected (`reports.experiment`).
Refusal rows (tasks declaring `analyses: [refusal]`) use the one refusal rule
of every report (`reports.refusal.refusals`). A task or metric of the eval
that gets no verdict is listed with the reason, never dropped without a word.

Everything comes from the store: `cai-bench report` rebuilds the same section
the pipeline printed. Bootstrap settings are the pipeline's (`eval.n_boot`, `seed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cai_bench.reports.guards import collapse_guard, noop_dpo_guard
from cai_bench.reports.harm import ROLE as HARM_ROLE
from cai_bench.reports.refusal import refusals
from cai_bench.reports.statistics import bootstrap_ci, paired_bootstrap, rng_for
from cai_bench.results import StoreExtras
from cai_bench.results.loops import ROLES, LoopRecord

ALPHA = 0.05
PAIRS = (("sft", "base"), ("dpo", "sft"), ("dpo", "base"))
ROLE_HEADERS = {"base": "base", "sft": "SFT", "dpo": "DPO"}
CURVE_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "learning_rate")
# behaviour rows of tasks that ask for refusal analysis: (expect, metric name, better direction)
REFUSAL_ROWS = (("refuse", "refusal rate (prompts expecting a refusal)", "higher"),
                ("comply", "over-refusal rate (prompts expecting an answer)", "lower"))


@dataclass
class LoopReport:
    record: LoopRecord
    rows: list[dict[str, Any]]  # one verdict row per (task, culture, metric)
    guards: list[dict[str, Any]]  # right after training (from the record), then on every held-out answer
    warnings: list[str]  # fired guards
    no_verdict: list[str] = field(default_factory=list)  # what the eval ran but could not judge, and why
    meanings: list[str] = field(default_factory=list)  # "metric: what it measures", one per metric of the rows
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        r = self.record
        return {"title": r.title, "rows": self.rows, "guards": self.guards, "warnings": self.warnings,
                "no_verdict": self.no_verdict, "meanings": self.meanings, "curves": self.curves, "quality": r.quality, "leakage": r.leakage,
                "split": r.split, "provenance": r.provenance, "config": r.config, "stages": r.stages,
                "checkpoints": {role: {"spec": r.specs.get(role), "fingerprint": r.fingerprints.get(role)}
                                for role in ROLES}}


def verdict(delta: float, p: float, direction: str) -> str:
    if not np.isfinite(p) or p >= ALPHA or delta == 0:
        return "no significant change"
    better = delta > 0 if direction != "lower" else delta < 0
    return "improved" if better else "regressed"


def compare(values: pd.DataFrame, direction: str, seed: int, key: tuple, n_boot: int) -> dict[str, Any]:
    """values: one row per item, one column per role (complete rows only)."""
    out: dict[str, Any] = {"n": int(len(values)), "direction": direction}
    for role in ROLES:
        m, lo, hi = bootstrap_ci(values[role].to_numpy(float), rng_for(seed, *key, role), n_boot)
        out[role] = {"mean": m, "lo": lo, "hi": hi}
    for a, b in PAIRS:
        d, lo, hi, p = paired_bootstrap(values[a].to_numpy(float), values[b].to_numpy(float),
                                        rng_for(seed, *key, a, b), n_boot)
        out[f"{a}_vs_{b}"] = {"delta": d, "lo": lo, "hi": hi, "p": p, "verdict": verdict(d, p, direction)}
    out["verdict"] = out["dpo_vs_base"]["verdict"]
    return out


def _complete(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Items answered by all three checkpoints, one column per role."""
    wide = frame.pivot_table(index="prompt_id", columns="stage", values=value, aggfunc="first")
    if not set(ROLES) <= set(wide.columns):
        return pd.DataFrame(columns=list(ROLES))
    return wide.dropna(subset=list(ROLES))


def _curves(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"step": e.get("step"), **{k: e[k] for k in CURVE_KEYS if k in e}}
            for e in history if any(k in e for k in CURVE_KEYS[:3])]


def _why_not(part: pd.DataFrame) -> str:
    """Why a (task, metric) got no verdict: its rows' statuses and first reason."""
    if part.empty:
        return "no scores stored"
    roles = sorted(set(ROLES) - set(part.loc[part["status"] == "ok", "stage"]))
    counts = part["status"].value_counts()
    reasons = part.loc[part["reason"].notna(), "reason"]
    text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if roles:
        text += f"; no usable score for {', '.join(roles)}"
    return text + (f" (e.g. {str(reasons.iloc[0])[:120]})" if len(reasons) else "")


def loop_report(df: pd.DataFrame, extras: StoreExtras, record: LoopRecord) -> LoopReport:
    """The verdicts, guards and notes of one loop from the store's results frame."""
    fp_role = {fp: role for role, fp in record.fingerprints.items()}
    mine = df[df["fingerprint"].isin(fp_role) & df["task_id"].isin(record.tasks)].copy()
    mine["stage"] = mine["fingerprint"].map(fp_role)
    seed, n_boot = record.seed, record.n_boot
    rows: list[dict[str, Any]] = []
    no_verdict: list[str] = []
    harm_rows: list[dict[str, Any]] = []  # shown after the refusal rows: the other half of that picture
    for (task, culture, scorer, metric), part in mine.groupby(["task_id", "culture", "scorer_id", "metric"],
                                                               sort=True):
        wide = _complete(part[part["status"] == "ok"], "value")
        name = f"{scorer}.{metric}"
        is_harm = "role" in part.columns and part["role"].iloc[0] == HARM_ROLE
        shown = f"harm rate ({name})" if is_harm else name
        if wide.empty:
            no_verdict.append(f"{task} {shown}: {_why_not(part)}")
            continue
        direction = str(part["direction"].iloc[0] or "higher")
        row = {"task": task, "culture": culture, "metric": shown, "measures": record.measures.get(name, ""),
               **compare(wide, direction, seed, (task, scorer, metric), n_boot)}
        (harm_rows if is_harm else rows).append(row)
    refused = refusals(mine, extras.task_analyses)
    if not refused.empty:
        refused["stage"] = refused["fingerprint"].map(fp_role)
        refused["refused"] = refused["refused"].astype(float)
        for task in sorted(set(refused["task_id"])):
            xs = refused[refused["task_id"] == task]
            for expect, name, direction in REFUSAL_ROWS:
                part = xs[xs["expect"] == expect]
                wide = _complete(part, "refused")
                if wide.empty:
                    no_verdict.append(f"{task} {name}: no prompt of the eval expects "
                                      f"{'a refusal' if expect == 'refuse' else 'an answer'}")
                    continue
                by = int(part["by_verdict"].sum())
                rows.append({"task": task, "culture": str(xs["culture"].iloc[0]), "metric": name,
                             "decided_by": f"{by} by scorer verdict, {len(part) - by} by the string rule",
                             **compare(wide, direction, seed, (task, name), n_boot)})
    rows += harm_rows
    for task in record.tasks:
        if task not in set(mine["task_id"]):
            no_verdict.append(f"{task}: no scored answers of all three checkpoints in the store")
    held = mine[mine["task_id"] == record.eval_task].drop_duplicates(["prompt_id", "stage"]).sort_values("prompt_id")
    answers = {r: held[held["stage"] == r]["response"].astype(str).tolist() for r in ROLES}
    dpo_log = record.log_history.get("dpo") or []
    n_held = len(answers["base"])
    checks = [collapse_guard("sft", answers["base"], answers["sft"]),
              collapse_guard("dpo", answers["base"], answers["dpo"]),
              noop_dpo_guard(answers["sft"], answers["dpo"], dpo_log)]
    final = [dict(g.as_dict(), name=f"{g.name} (all {n_held} held-out answers)") for g in checks]
    guards = list(record.early_guards) + final
    warnings = [f"{g['name']}: " + "; ".join(g["reasons"]) for g in guards if g["fired"]]
    curves = {s: _curves(record.log_history.get(s) or []) for s in ("sft", "dpo")}
    return LoopReport(record, rows, guards, warnings, no_verdict=no_verdict, meanings=_meanings(rows), curves=curves)


def _meanings(rows: list[dict[str, Any]]) -> list[str]:
    out: dict[str, str] = {}
    for r in rows:
        if r["metric"] in out:
            continue
        if "decided_by" in r:
            out[r["metric"]] = ("share of answers that refuse: a scorer verdict with role refusal where one was "
                                "scored, else the string rule (docs/reports.md)")
        elif r["metric"].startswith("harm rate ("):
            out[r["metric"]] = "share of answers the classifier calls harmful (a metric with role harm); lower is better"
        elif r.get("measures"):
            out[r["metric"]] = r["measures"]
    return [f"{k}: {v}" for k, v in out.items()]


def loop_reports(df: pd.DataFrame, extras: StoreExtras, records: list[LoopRecord]) -> list[LoopReport]:
    return [loop_report(df, extras, r) for r in records]


def fmt(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def loop_curves_name(lr: LoopReport, several: bool) -> str:
    """The training-curves PNG of a loop in the report folder (pipeline.md links it)."""
    from cai_bench.reports.names import slug

    return f"training_curves_{slug(lr.record.title)}.png" if several else "training_curves.png"
