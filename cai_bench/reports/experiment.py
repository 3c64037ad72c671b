"""The experiment section of a report: comparisons between the variants of a
`cai-bench experiment` (results.experiments), from the store alone.

An experiment's variants are pipelines sharing one store. Variants that differ
only in `train_seed` form one *condition*; its effects are estimated over seeds
and prompts together (`statistics.seeds_prompts_bootstrap`) and each verdict says
in how many seeds it holds. Every comparison is paired on the same held-out
prompts; p-values are corrected within a family (one kind of table and one metric)
by the experiment's method (Holm unless it says Benjamini-Hochberg), and verdicts
read the corrected values. Refusal on prompts expecting a refusal and
over-refusal on prompts expecting an answer (the one refusal rule,
`reports.refusal.refusals`) are metrics like any other, so every comparison shows
behaviour beside wording.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from cai_bench.bootstrap_settings import N_BOOT
from cai_bench.reports.loop import ALPHA, REFUSAL_ROWS, verdict
from cai_bench.reports.refusal import refusals
from cai_bench.reports.statistics import (CORRECTIONS, adjust, bootstrap_ci, paired_bootstrap, rng_for,
                                          seeds_prompts_bootstrap)
from cai_bench.results import StoreExtras
from cai_bench.results.experiments import ExperimentRecord, VariantRecord
from cai_bench.results.loops import ROLES, LoopRecord

SEED_AXIS = "train_seed"
TASK_AXIS = "task"
DROP_AXIS = "data.drop_principles"
BEHAVIOUR = tuple(name for _, name, _ in REFUSAL_ROWS)  # the refusal and over-refusal metrics
KINDS = {"variants": "variant A vs B (DPO checkpoints) and DPO vs base per variant",
         "transfer": "transfer matrix: DPO vs base of the trained-on culture's variant on each culture's held-out prompts",
         "principles": "per held-out principle: DPO vs base per variant",
         "ablation": "per held-out principle: DPO of a variant trained without some principles vs DPO of the one "
                     "trained on all"}
CSV_COLUMNS = ["experiment", "family", "kind", "metric", "task", "principle", "a", "b", "n", "seeds", "delta",
               "lo", "hi", "p", "p_corrected", "method", "verdict", "holds_in_seeds"]


def value_text(v: Any) -> str:
    """An axis value as `cai-bench experiment` writes it in variant names: a list as a+b (none
    when empty), null, true/false, a path by its name."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return "+".join(value_text(x) for x in v) or "none"
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    text = str(v)
    return text.rsplit("/", 1)[-1] if "/" in text else text


@dataclass
class Condition:
    """The variants that differ only in the training seed."""

    name: str
    values: dict[str, Any]  # every axis but the seed axis
    variants: list[VariantRecord]
    loops: list[LoopRecord]  # of the done variants, in seed order
    seeds: list[Any]  # the seed of each loop (None without a seed axis)

    @property
    def ok(self) -> bool:
        return bool(self.loops)

    def fps(self, role: str) -> list[str]:
        return [lp.fingerprints.get(role, "") for lp in self.loops]

    @property
    def eval_task(self) -> str:
        return self.loops[0].eval_task


@dataclass
class ExperimentReport:
    record: ExperimentRecord
    method: str  # holm | bh
    n_boot: int
    conditions: list[Condition]
    means: list[dict[str, Any]]  # per condition, task, metric: base / SFT / DPO mean [CI] over seeds and prompts
    comparisons: list[dict[str, Any]]  # every comparison, corrected within its family (CSV_COLUMNS and more)
    stopped: list[dict[str, Any]]  # variants without a verdict: name, status, reason, gate
    behaviour: list[dict[str, Any]]  # per comparison: wording metrics beside refusal and over-refusal
    transfer: dict[str, Any] = field(default_factory=dict)  # {rows, cols, cells: {metric: [[cell]]}} or {}
    notes: list[str] = field(default_factory=list)

    @property
    def method_name(self) -> str:
        return CORRECTIONS[self.method][0]

    @property
    def seed_axis(self) -> bool:
        return SEED_AXIS in self.record.axes

    def as_json(self) -> dict[str, Any]:
        r = self.record
        return _finite({"experiment_id": r.experiment_id, "title": r.title, "axes": r.axes, "correction": self.method,
                        "correction_name": self.method_name, "n_boot": self.n_boot, "seed": r.seed,
                        "alpha": ALPHA, "stage_counts": r.stage_counts,
                        "conditions": [{"name": c.name, "values": c.values, "seeds": c.seeds,
                                        "variants": [v.name for v in c.variants]} for c in self.conditions],
                        "means": self.means, "comparisons": self.comparisons, "stopped": self.stopped,
                        "behaviour": self.behaviour, "transfer": self.transfer, "notes": self.notes})


def _finite(x: Any) -> Any:
    """NaN and infinities as null, so experiment.json is strict JSON."""
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, np.generic):
        return _finite(x.item())
    return x


# ---------------------------------------------------------------- values
def values_frame(df: pd.DataFrame, extras: StoreExtras) -> pd.DataFrame:
    """One row per (checkpoint, task, prompt, metric) with a value: every ok score as
    `scorer.metric`, and on tasks asking for refusal analysis the refusal rows (1 =
    refused) under the loop section's names and directions."""
    cols = ["fingerprint", "task_id", "prompt_id", "principle_id", "metric", "direction", "value"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    ok = df[df["status"] == "ok"]
    scores = ok.assign(metric=ok["scorer_id"].astype(str) + "." + ok["metric"].astype(str),
                       direction=ok["direction"].fillna("higher"))[cols]
    parts = [scores]
    refused = refusals(df, extras.task_analyses)
    if not refused.empty:
        pids = df.drop_duplicates(["task_id", "prompt_id"])[["task_id", "prompt_id", "principle_id"]]
        refused = refused.merge(pids, on=["task_id", "prompt_id"], how="left")
        for expect, name, direction in REFUSAL_ROWS:
            part = refused[refused["expect"] == expect]
            parts.append(part.assign(metric=name, direction=direction, value=part["refused"].astype(float))[cols])
    out = pd.concat(parts, ignore_index=True)
    return out.drop_duplicates(["fingerprint", "task_id", "prompt_id", "metric"]).reset_index(drop=True)


class _Cells:
    """Per (task, metric): a prompt x checkpoint table of values, built once."""

    def __init__(self, values: pd.DataFrame) -> None:
        self.direction = values.groupby("metric")["direction"].first().to_dict() if not values.empty else {}
        self.principle = {(t, p): pr for t, p, pr in values[["task_id", "prompt_id", "principle_id"]]
                          .drop_duplicates(["task_id", "prompt_id"]).itertuples(index=False)}
        self._wide = {key: part.pivot_table(index="prompt_id", columns="fingerprint", values="value", aggfunc="first")
                      for key, part in values.groupby(["task_id", "metric"], sort=True)}

    def metrics(self, task: str) -> list[str]:
        return sorted(m for t, m in self._wide if t == task)

    def matrix(self, task: str, metric: str, fps: list[str], principle: str | None = None) -> pd.DataFrame:
        """Prompts (rows) answered by every checkpoint in `fps` (columns)."""
        wide = self._wide.get((task, metric))
        if wide is None or not set(fps) <= set(wide.columns):
            return pd.DataFrame(columns=list(dict.fromkeys(fps)))
        part = wide[list(dict.fromkeys(fps))].dropna()
        if principle is not None:
            part = part[[self.principle.get((task, p)) == principle for p in part.index]]
        return part

    def principles(self, task: str) -> list[str]:
        return sorted({str(pr) for (t, _), pr in self.principle.items() if t == task and isinstance(pr, str)})


# ---------------------------------------------------------------- conditions
def conditions(record: ExperimentRecord, loops: dict[str, LoopRecord]) -> list[Condition]:
    """The variants grouped by every axis but the seed, in the record's order; named like a
    variant without its seed (`data.selection=random`; `all` when only the seed varies)."""
    axes = [a for a in record.axes if a != SEED_AXIS]
    groups: dict[str, Condition] = {}
    for v in record.variants:
        values = {a: v.values.get(a) for a in axes}
        name = "__".join(f"{a}={value_text(values[a])}" for a in axes) or "all"
        cond = groups.setdefault(json.dumps(values, sort_keys=True, default=str), Condition(name, values, [], [], []))
        cond.variants.append(v)
    for cond in groups.values():
        done = [v for v in cond.variants if v.status == "done" and v.loop_id in loops]
        order = [json.dumps(s, default=str) for s in record.axes.get(SEED_AXIS, [])]  # the file's seed order
        done.sort(key=lambda v: (_position(order, json.dumps(v.values.get(SEED_AXIS), default=str)), v.name))
        cond.loops = [loops[v.loop_id] for v in done]  # type: ignore[index]
        cond.seeds = [v.values.get(SEED_AXIS) for v in done]
    return list(groups.values())


def _position(order: list[str], item: str) -> int:
    return order.index(item) if item in order else len(order)


def _stopped(record: ExperimentRecord, loops: dict[str, LoopRecord]) -> list[dict[str, Any]]:
    out = []
    for v in record.variants:
        if v.status == "done" and v.loop_id in loops:
            continue
        reason = v.reason or ("no pipeline record in the store" if v.status == "done" else f"status {v.status}")
        out.append({"variant": v.name, "status": v.status, "reason": reason, "gate": v.gate})
    return out


# ---------------------------------------------------------------- comparisons
class _Comparer:
    def __init__(self, cells: _Cells, seed: int, n_boot: int, experiment: str) -> None:
        self.cells, self.seed, self.n_boot, self.experiment = cells, seed, n_boot, experiment
        self.unpaired: list[str] = []  # whole-task comparisons with no prompt answered by every checkpoint

    def estimate(self, mat: np.ndarray, key: tuple) -> tuple[float, float, float, float]:
        """(mean, lo, hi, p) of a seeds x prompts matrix."""
        return seeds_prompts_bootstrap(mat, rng_for(self.seed, *key), self.n_boot)

    def compare(self, kind: str, task: str, metric: str, a: tuple[str, list[str]], b: tuple[str, list[str]],
                seeds: list[Any], principle: str | None = None) -> dict[str, Any] | None:
        """`a` vs `b`: (name, fingerprints per seed); paired on the prompts all of them answered."""
        fps = [*a[1], *b[1]]
        wide = self.cells.matrix(task, metric, fps, principle) if all(fps) else pd.DataFrame()
        if len(wide) == 0:
            if principle is None:
                self.unpaired.append(f"{a[0]} vs {b[0]} on {task} {metric}: no prompt with a score of every "
                                     "checkpoint in the store")
            return None
        d = np.vstack([wide[x].to_numpy(float) - wide[y].to_numpy(float) for x, y in zip(a[1], b[1])])
        key = (self.experiment, task, metric, principle or "", a[0], b[0])  # same pair, same draws in any table
        delta, lo, hi, p = self.estimate(d, key)
        per_seed = []
        if len(seeds) > 1:
            for s, row in zip(seeds, d):
                sd, slo, shi, sp = paired_bootstrap(row, np.zeros(len(row)), rng_for(self.seed, *key, "seed", s),
                                                    self.n_boot)
                per_seed.append({"seed": s, "delta": sd, "lo": slo, "hi": shi, "p": sp})
        return {"experiment": self.experiment, "family": f"{kind}: {metric}", "kind": kind, "metric": metric,
                "task": task, "principle": principle or "", "a": a[0], "b": b[0], "n": int(len(wide)),
                "seeds": len(seeds), "delta": delta, "lo": lo, "hi": hi, "p": p,
                "direction": self.cells.direction.get(metric, "higher"), "per_seed": per_seed}


def correct(rows: list[dict[str, Any]], method: str) -> None:
    """Corrected p and verdict per row, within its family; per-seed tests within their
    family too, and `holds_in_seeds` says in how many seeds the verdict holds."""
    name = CORRECTIONS[method][0]
    families: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        families.setdefault(r["family"], []).append(r)
    for part in families.values():
        for r, q in zip(part, adjust([r["p"] for r in part], method)):
            r["p_corrected"], r["method"] = q, name
            r["verdict"] = verdict(r["delta"], q, r["direction"])
        seeds = [s for r in part for s in r["per_seed"]]
        for s, q in zip(seeds, adjust([s["p"] for s in seeds], method)):
            s["p_corrected"] = q
        for r in part:
            if not r["per_seed"]:
                r["holds_in_seeds"] = ""
                continue
            for s in r["per_seed"]:
                s["verdict"] = verdict(s["delta"], s["p_corrected"], r["direction"])
            held = sum(s["verdict"] == r["verdict"] for s in r["per_seed"])
            r["holds_in_seeds"] = f"{held}/{len(r['per_seed'])}"


def _axis_pairs(conds: list[Condition], axes: list[str]) -> list[tuple[str, Condition, Condition]]:
    """(axis, A, B) for every two usable conditions that differ in exactly that axis."""
    out = []
    for a, b in combinations([c for c in conds if c.ok], 2):
        diff = [x for x in axes if json.dumps(a.values.get(x), default=str) != json.dumps(b.values.get(x), default=str)]
        if len(diff) == 1:
            out.append((diff[0], a, b))
    return out


def experiment_report(df: pd.DataFrame, extras: StoreExtras, record: ExperimentRecord,
                      loops: list[LoopRecord], correction: str | None = None) -> ExperimentReport:
    """Every comparison of one experiment from the store's results frame and loop records."""
    method = correction or record.correction or "holm"
    if method not in CORRECTIONS:
        from cai_bench.errors import UserError

        raise UserError(f"correction {method!r} is not one of {', '.join(CORRECTIONS)}")
    by_id = {lp.loop_id: lp for lp in loops}
    conds = conditions(record, by_id)
    used = [lp for c in conds for lp in c.loops]
    n_boot = min((lp.n_boot for lp in used), default=N_BOOT)
    cells = _Cells(values_frame(df, extras))
    cmp = _Comparer(cells, record.seed, n_boot, record.title)
    axes = [a for a in record.axes if a != SEED_AXIS]
    eval_tasks = {c.eval_task for c in conds if c.ok}
    rows: list[dict[str, Any]] = []
    means: list[dict[str, Any]] = []
    notes: list[str] = []
    for c in (c for c in conds if c.ok):
        own = [t for t in c.loops[0].tasks if t == c.eval_task or t not in eval_tasks]
        for task in own:
            for metric in cells.metrics(task):
                means.append(_means(cmp, c, task, metric))
                row = cmp.compare("variants", task, metric, (f"{c.name}: DPO", c.fps("dpo")),
                                  (f"{c.name}: base", c.fps("base")), c.seeds)
                if row:
                    rows.append(row)
        for pr in cells.principles(c.eval_task):
            for metric in cells.metrics(c.eval_task):
                row = cmp.compare("principles", c.eval_task, metric, (f"{c.name}: DPO", c.fps("dpo")),
                                  (f"{c.name}: base", c.fps("base")), c.seeds, principle=pr)
                if row:
                    rows.append(row)
    for axis, a, b in _axis_pairs(conds, axes):
        seeds = _common_seeds(a, b)
        if not seeds:
            notes.append(f"{a.name} vs {b.name}: no training seed in common, not compared")
            continue
        fa, fb = _by_seed(a, seeds, "dpo"), _by_seed(b, seeds, "dpo")
        for task in sorted(set(a.loops[0].tasks) & set(b.loops[0].tasks)):
            for metric in cells.metrics(task):
                row = cmp.compare("variants", task, metric, (f"{a.name}: DPO", fa), (f"{b.name}: DPO", fb), seeds)
                if row:
                    row["axis"] = axis
                    rows.append(row)
    rows += _ablations(cmp, conds, axes, notes)
    transfer_rows, transfer = _transfer(cmp, conds) if TASK_AXIS in axes else ([], {})
    rows += transfer_rows
    notes += list(dict.fromkeys(cmp.unpaired))
    correct(rows, method)
    if transfer:
        _fill_transfer(transfer, transfer_rows)
    rep = ExperimentReport(record, method, n_boot, conds, means, rows, _stopped(record, by_id), [], transfer, notes)
    rep.behaviour = behaviour_rows(rows)
    return rep


def _means(cmp: _Comparer, c: Condition, task: str, metric: str) -> dict[str, Any]:
    wide = cmp.cells.matrix(task, metric, [*c.fps("base"), *c.fps("sft"), *c.fps("dpo")])
    out: dict[str, Any] = {"condition": c.name, "task": task, "metric": metric, "n": int(len(wide)),
                           "seeds": len(c.loops)}
    for role in ROLES:
        if len(wide) == 0:
            out[role] = {"mean": np.nan, "lo": np.nan, "hi": np.nan}
            continue
        mat = np.vstack([wide[fp].to_numpy(float) for fp in c.fps(role)])
        key = (cmp.experiment, "mean", c.name, task, metric, role)
        if len(mat) == 1:
            m, lo, hi = bootstrap_ci(mat[0], rng_for(cmp.seed, *key), cmp.n_boot)
        else:
            m, lo, hi, _ = cmp.estimate(mat, key)
        out[role] = {"mean": m, "lo": lo, "hi": hi}
    return out


def _common_seeds(a: Condition, b: Condition) -> list[Any]:
    return [s for s in a.seeds if s in b.seeds]


def _by_seed(c: Condition, seeds: list[Any], role: str) -> list[str]:
    return [c.loops[c.seeds.index(s)].fingerprints.get(role, "") for s in seeds]


def _ablations(cmp: _Comparer, conds: list[Condition], axes: list[str], notes: list[str]) -> list[dict[str, Any]]:
    """Per held-out principle: each ablated condition's DPO vs the DPO of the condition
    that is the same but drops nothing."""
    if DROP_AXIS not in axes:
        return []
    rows = []
    usable = [c for c in conds if c.ok]
    for c in usable:
        if not c.values.get(DROP_AXIS):
            continue
        ref = [r for r in usable if not r.values.get(DROP_AXIS)
               and all(r.values.get(x) == c.values.get(x) for x in axes if x != DROP_AXIS)]
        if not ref:
            notes.append(f"{c.name}: no variant that drops no principle to compare the ablation with")
            continue
        seeds = _common_seeds(c, ref[0])
        for pr in cmp.cells.principles(c.eval_task):
            for metric in cmp.cells.metrics(c.eval_task):
                row = cmp.compare("ablation", c.eval_task, metric, (f"{c.name}: DPO", _by_seed(c, seeds, "dpo")),
                                  (f"{ref[0].name}: DPO", _by_seed(ref[0], seeds, "dpo")), seeds, principle=pr)
                if row:
                    row["dropped"] = list(c.values.get(DROP_AXIS) or [])
                    rows.append(row)
    return rows


def _transfer(cmp: _Comparer, conds: list[Condition]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Trained-on (condition) x evaluated-on (each culture's held-out task): DPO - base."""
    usable = [c for c in conds if c.ok]
    cols = sorted({c.eval_task for c in usable})
    rows = []
    for c in usable:
        for task in cols:
            if task not in c.loops[0].tasks:
                continue
            for metric in cmp.cells.metrics(task):
                row = cmp.compare("transfer", task, metric, (f"{c.name}: DPO", c.fps("dpo")),
                                  (f"{c.name}: base", c.fps("base")), c.seeds)
                if row:
                    row["trained_on"] = c.name
                    row["own"] = task == c.eval_task
                    rows.append(row)
    return rows, {"rows": [c.name for c in usable], "cols": cols, "cells": {}}


def _fill_transfer(transfer: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    cells: dict[str, list[list[dict[str, Any] | None]]] = {}
    for r in rows:
        grid = cells.setdefault(r["metric"], [[None] * len(transfer["cols"]) for _ in transfer["rows"]])
        grid[transfer["rows"].index(r["trained_on"])][transfer["cols"].index(r["task"])] = {
            k: r[k] for k in ("delta", "lo", "hi", "p", "p_corrected", "verdict", "n", "holds_in_seeds", "own")}
    transfer["cells"] = dict(sorted(cells.items()))


def behaviour_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per comparison of the variants table (a, b, task): the wording metrics' verdicts
    beside refusal and over-refusal, and what moved: wording only, behaviour, both, neither."""
    groups: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] == "variants":
            groups.setdefault((r["a"], r["b"], r["task"]), {})[r["metric"]] = r
    out = []
    for (a, b, task), metrics in groups.items():
        wording = {m: r for m, r in metrics.items() if m not in BEHAVIOUR}
        behave = {m: metrics.get(m) for m in BEHAVIOUR}
        moved_w = any(r["verdict"] != "no significant change" for r in wording.values())
        moved_b = any(r and r["verdict"] != "no significant change" for r in behave.values())
        if not any(behave.values()):
            reading = "no refusal analysis on this task"
        else:
            reading = {(True, False): "wording only", (False, True): "behaviour only", (True, True): "wording and behaviour",
                       (False, False): "no significant change"}[(moved_w, moved_b)]
        out.append({"a": a, "b": b, "task": task,
                    "wording": {m: _short(r) for m, r in sorted(wording.items())},
                    "behaviour": {m: _short(r) if r else None for m, r in behave.items()}, "reading": reading})
    return out


def _short(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("delta", "p_corrected", "verdict", "n")}


def experiment_reports(df: pd.DataFrame, extras: StoreExtras, records: list[ExperimentRecord],
                       loops: list[LoopRecord], correction: str | None = None) -> list[ExperimentReport]:
    return [experiment_report(df, extras, r, loops, correction) for r in records]


def comparisons_frame(reports: list[ExperimentReport]) -> pd.DataFrame:
    """`comparisons.csv`: every comparison of every experiment, one row each."""
    rows = [{k: r.get(k, "") for k in CSV_COLUMNS} for rep in reports for r in rep.comparisons]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def axis_points(rep: ExperimentReport) -> dict[str, list[dict[str, Any]]]:
    """Per axis, the points of its plot: each condition's DPO - base on its own held-out
    task at its value of the axis, one series per setting of the other axes. A seed
    axis plots each seed's own estimate."""
    own = {(r["a"], r["task"], r["metric"]): r for r in rep.comparisons
           if r["kind"] == "variants" and r["a"].endswith(": DPO") and r["b"].endswith(": base")
           and r["a"][:-5] == r["b"][:-6]}
    out: dict[str, list[dict[str, Any]]] = {}
    axes = [a for a in rep.record.axes if a != SEED_AXIS]
    for axis in rep.record.axes:
        points = []
        for c in (c for c in rep.conditions if c.ok):
            rest = "__".join(f"{a}={value_text(c.values[a])}" for a in axes if a != axis)
            for (a, task, metric), r in own.items():
                if a != f"{c.name}: DPO" or task != c.eval_task:
                    continue
                if axis == SEED_AXIS:
                    points += [{"metric": metric, "value": str(s["seed"]), "series": rest, "delta": s["delta"],
                                "lo": s["lo"], "hi": s["hi"]} for s in r["per_seed"]]
                else:
                    points.append({"metric": metric, "value": value_text(c.values[axis]), "series": rest,
                                   "delta": r["delta"], "lo": r["lo"], "hi": r["hi"]})
        if points:
            out[axis] = points
    return out


def experiment_plot_names(rep: ExperimentReport, several: bool) -> dict[str, str]:
    """File name (under plots/) of each axis's plot and of the transfer heatmap."""
    from cai_bench.reports.names import slug

    prefix = f"experiment_{slug(rep.record.title)}_" if several else "experiment_"
    names = {axis: f"{prefix}{slug(axis)}.png" for axis in rep.record.axes}
    names["transfer"] = f"{prefix}transfer.png"
    return names
