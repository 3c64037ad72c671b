"""The pipeline report: base -> SFT -> DPO per culture and metric, with CIs,
paired deltas, p-values and a plain-language verdict; HHH accuracy; XSTest
over-refusal; guards; data quality; leakage; training curves; provenance; and a
sample browser with every eval answer of every checkpoint side by side.

Verdict (DPO vs base, the loop's end against its start): "improved" or
"regressed" when the paired bootstrap p < 0.05 and the mean delta goes the
metric's better or worse way; otherwise "no significant change".
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cai_bench.paths import atomic_write_bytes, atomic_write_text
from cai_bench.pipeline.guards import collapse_guard, noop_dpo_guard
from cai_bench.pipeline.stages import ROLES

ALPHA = 0.05
PAIRS = (("sft", "base"), ("dpo", "sft"), ("dpo", "base"))


def _load_results(store_url: str) -> tuple[pd.DataFrame, set[str]]:
    """The store's results and the tasks whose task.yaml asks for refusal rates."""
    from cai_bench.reports.refusal import refusal_tasks
    from cai_bench.results.load import load_results_with_extras

    df, extras = load_results_with_extras(store_url)
    return df, refusal_tasks(extras.task_analyses)


def _is_refusal(text: str) -> bool:
    from cai_bench.reports.refusal import is_refusal

    return is_refusal(text)


def verdict(delta: float, p: float, direction: str) -> str:
    if not np.isfinite(p) or p >= ALPHA or delta == 0:
        return "no significant change"
    better = delta > 0 if direction != "lower" else delta < 0
    return "improved" if better else "regressed"


def compare(values: pd.DataFrame, direction: str, seed: int, key: tuple, n_boot: int) -> dict:
    """values: one row per item, one column per role (complete rows only)."""
    from cai_bench.reports.statistics import bootstrap_ci, paired_bootstrap, rng_for

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


def _complete(frame: pd.DataFrame, index: str, column: str, value: str) -> pd.DataFrame:
    wide = frame.pivot_table(index=index, columns=column, values=value, aggfunc="first")
    return wide.dropna(subset=[r for r in ROLES if r in wide.columns]) if set(ROLES) <= set(wide.columns) else \
        pd.DataFrame(columns=list(ROLES))


def build(out: Path, cfg: Any, stages: dict[str, dict]) -> dict:
    """Everything the report shows, as JSON-able data."""
    ev = stages["eval"]
    fp_role = {fp: role for role, fp in ev["fingerprints"].items()}
    df, refusal_tasks = _load_results(ev["store"])
    df = df[df["fingerprint"].isin(fp_role)].copy()
    df["role"] = df["fingerprint"].map(fp_role)
    n_boot = cfg.eval.n_boot
    rows: list[dict] = []
    ok = df[df["status"] == "ok"]
    for (task, culture, scorer, metric), g in ok.groupby(["task_id", "culture", "scorer_id", "metric"], sort=True):
        wide = _complete(g, "prompt_id", "role", "value")
        if wide.empty:
            continue
        direction = str(g["direction"].iloc[0] or "higher")
        rows.append({"task": task, "culture": culture, "metric": f"{scorer}.{metric}",
                     **compare(wide, direction, cfg.seed, (task, scorer, metric), n_boot)})
    gens = df.drop_duplicates(["task_id", "prompt_id", "role"])
    for task in sorted(refusal_tasks & set(gens["task_id"])):  # tasks declaring `analyses: [refusal]`
        xs = gens[gens["task_id"] == task]
        for expect, name, direction in (("comply", "over_refusal (safe prompts)", "lower"),
                                        ("refuse", "refusal (unsafe prompts)", "higher")):
            part = xs[xs["expect"] == expect].assign(refused=lambda f: f["response"].map(_is_refusal).astype(float))
            wide = _complete(part, "prompt_id", "role", "refused")
            if not wide.empty:
                rows.append({"task": task, "culture": str(part["culture"].iloc[0]), "metric": name,
                             **compare(wide, direction, cfg.seed, (task, name), n_boot)})
    hhh_files = ev.get("hhh") or {}
    if hhh_files and all(Path(hhh_files.get(r, "")).is_file() for r in ROLES):
        frames = []
        for r in ROLES:
            f = pd.read_json(hhh_files[r], lines=True)
            frames.append(f.assign(role=r))
        hh = pd.concat(frames)
        for view, g in hh.groupby("view", sort=True):
            wide = _complete(g, "id", "role", "correct")
            rows.append({"task": view, "culture": "HHH", "metric": "accuracy",
                         **compare(wide, "higher", cfg.seed, ("hhh", view), n_boot)})
    # guards over the held-out answers
    held = gens[gens["task_id"] == stages["task"]["eval_task_id"]].sort_values("prompt_id")
    answers = {r: held[held["role"] == r]["response"].astype(str).tolist() for r in ROLES}
    dpo_meta = _train_meta(out / "dpo")
    n_held = len(answers["base"])
    guards = [collapse_guard("sft", answers["base"], answers["sft"]),
              collapse_guard("dpo", answers["base"], answers["dpo"]),
              noop_dpo_guard(answers["sft"], answers["dpo"], dpo_meta.get("log_history") or [])]
    # the checks the sft/dpo stages ran right after training, on their first few held-out prompts
    early = [g for s in ("sft", "dpo") for g in (stages.get(s) or {}).get("guards", [])]
    final = [dict(g.as_dict(), name=f"{g.name} (all {n_held} held-out answers)") for g in guards]
    every = early + final
    return {"rows": rows, "guards": every,
            "warnings": [f"{g['name']}: " + "; ".join(g["reasons"]) for g in every if g["fired"]],
            "samples": _samples(df), "curves": {s: _curves(_train_meta(out / s)) for s in ("sft", "dpo")},
            "quality": _read_json(out / "data" / "quality.json"), "leakage": _read_json(out / "eval" / "leakage.json") or _read_json(out / "data" / "leakage.json"),
            "split": {k: v for k, v in (_read_json(out / "task" / "split.json") or {}).items()
                      if k in ("task", "seed", "eval_fraction", "per_principle")},
            "provenance": {s: _read_json(out / s / "provenance.json") for s in ("sft", "dpo")},
            "config": json.loads(cfg.model_dump_json()), "stages": stages}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _train_meta(folder: Path) -> dict:
    return _read_json(folder / "cai_bench.json") or {}


def _curves(meta: dict) -> list[dict]:
    keep = ("loss", "rewards/margins", "rewards/accuracies", "learning_rate")
    return [{"step": e.get("step"), **{k: e[k] for k in keep if k in e}}
            for e in meta.get("log_history") or [] if any(k in e for k in keep[:3])]


def _samples(df: pd.DataFrame) -> list[dict]:
    out: list[dict] = []
    gens = df.drop_duplicates(["task_id", "prompt_id", "role"])
    scores = df[df["status"] == "ok"].assign(k=lambda f: f["scorer_id"] + "." + f["metric"])
    for (task, pid), g in gens.groupby(["task_id", "prompt_id"], sort=True):
        item = {"task": task, "prompt_id": pid, "prompt": str(g["prompt"].iloc[0]),
                "reference": None if pd.isna(g["reference"].iloc[0]) else str(g["reference"].iloc[0])}
        for role in ROLES:
            r = g[g["role"] == role]
            if r.empty:
                continue
            s = scores[(scores["task_id"] == task) & (scores["prompt_id"] == pid) & (scores["role"] == role)]
            item[role] = {"response": str(r["response"].iloc[0]),
                          "scores": {k: round(float(v), 4) for k, v in zip(s["k"], s["value"])}}
        out.append(item)
    return out


def _fmt(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def markdown(data: dict) -> str:
    lines = ["# Pipeline report: base -> SFT -> DPO", ""]
    if data["warnings"]:
        lines += ["## Warnings", ""] + [f"- **{w}**" for w in data["warnings"]] + [""]
    lines += ["## Verdicts (DPO vs base, paired bootstrap, p < 0.05)", "",
              "| culture | task | metric | n | base | SFT | DPO | SFT-base (p) | DPO-SFT (p) | DPO-base (p) | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        cells = [f"{_fmt(r[x]['mean'])} [{_fmt(r[x]['lo'])}, {_fmt(r[x]['hi'])}]" for x in ROLES]
        deltas = [f"{_fmt(r[f'{a}_vs_{b}']['delta'], 3)} ({_fmt(r[f'{a}_vs_{b}']['p'], 3)})" for a, b in PAIRS]
        lines.append(f"| {r['culture']} | {r['task']} | {r['metric']} | {r['n']} | " + " | ".join(cells + deltas)
                     + f" | {r['verdict']} |")
    lines += ["", "## Guards", ""]
    for g in data["guards"]:
        lines.append(f"- {g['name']}: {'FIRED: ' + '; '.join(g['reasons']) if g['fired'] else 'ok'}")
    q = data.get("quality") or {}
    if q:
        lines += ["", "## Data quality", "", "| set | total | kept | kept % | " +
                  " | ".join(q["sft"]["dropped"]) + " | initial truncated |",
                  "|---|---|---|---|" + "---|" * len(q["sft"]["dropped"]) + "---|"]
        for name in ("sft", "prefs"):
            s = q[name]
            lines.append(f"| {name} | {s['total']} | {s['kept']} | {s['kept_fraction']:.0%} | "
                         + " | ".join(str(v) for v in s["dropped"].values()) + f" | {s['initial_truncated']} |")
    lk = data.get("leakage") or {}
    if lk:
        lines += ["", f"## Leakage ({lk['method']})", "", "| train set | eval set | exact | near |", "|---|---|---|---|"]
        lines += [f"| {p['train_set']} | {p['eval_set']} | {p['exact']} | {p['near']} |" for p in lk["pairs"]]
    if data.get("curves_png"):
        lines += ["", "## Training curves", "", f"![training curves]({data['curves_png']})"]
    for stage, curve in data["curves"].items():
        if curve:
            keys = [k for k in ("loss", "rewards/margins", "rewards/accuracies") if any(k in c for c in curve)]
            lines += ["", f"## Training curve: {stage}", "", "| step | " + " | ".join(keys) + " |",
                      "|---|" + "---|" * len(keys)]
            lines += [f"| {c['step']} | " + " | ".join(_fmt(c.get(k), 4) for k in keys) + " |" for c in curve]
    lines += ["", "## Stages", "", "| stage | seconds | cached |", "|---|---|---|"]
    for name, info in data["stages"].items():
        lines.append(f"| {name} | {_fmt(info.get('_seconds'), 1)} | {info.get('_cached', False)} |")
    lines += ["", "## Provenance", "", "```json", json.dumps(data["provenance"], indent=2, default=str), "```",
              "", "## Config", "", "```json", json.dumps(data["config"], indent=2, default=str), "```", ""]
    return "\n".join(lines)


_BROWSER = """<!doctype html><html><head><meta charset="utf-8"><title>pipeline samples</title>
<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:4px;vertical-align:top;white-space:pre-wrap;max-width:30em}small{color:#555}</style></head><body>
<h1>Every eval answer, base / SFT / DPO</h1>
<input id="q" placeholder="filter (task, prompt, answer)" size="60" oninput="f()">
<table id="t"><thead><tr><th>task</th><th>prompt</th><th>reference</th><th>base</th><th>SFT</th><th>DPO</th></tr>
</thead><tbody>{rows}</tbody></table>
<script>function f(){{var q=document.getElementById('q').value.toLowerCase();
for(const r of document.querySelectorAll('#t tbody tr')){{r.style.display=r.textContent.toLowerCase()
.includes(q)?'':'none';}}}}</script></body></html>"""


def samples_html(samples: list[dict]) -> str:
    e = html.escape
    rows = []
    for s in samples:
        cells = [e(s["task"]), e(s["prompt"]), e(s["reference"] or "")]
        for role in ROLES:
            r = s.get(role)
            cells.append("" if r is None else e(r["response"]) + "<br><small>" +
                         e(", ".join(f"{k}={v}" for k, v in r["scores"].items())) + "</small>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return _BROWSER.replace("{rows}", "".join(rows)).replace("{{", "{").replace("}}", "}")


def write(out: Path, data: dict) -> Path:
    from cai_bench.reports.plots import training_curves

    dest = out / "report"
    dest.mkdir(parents=True, exist_ok=True)
    png = training_curves(data["curves"])
    if png is not None:
        atomic_write_bytes(dest / "training_curves.png", png)
        data = dict(data, curves_png="training_curves.png")
    atomic_write_text(dest / "pipeline.md", markdown(data))
    atomic_write_text(dest / "pipeline.json", json.dumps({k: v for k, v in data.items() if k != "samples"},
                                                          indent=2, default=str) + "\n")
    atomic_write_text(dest / "samples.html", samples_html(data["samples"]))
    return dest


def print_verdicts(data: dict, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="base -> SFT -> DPO (verdict: DPO vs base, paired p < 0.05)")
    for col in ("culture", "task", "metric", "n", "base", "SFT", "DPO", "DPO-base", "p", "verdict"):
        t.add_column(col)
    colour = {"improved": "green", "regressed": "red"}
    for r in data["rows"]:
        d = r["dpo_vs_base"]
        v = r["verdict"]
        t.add_row(escape(r["culture"]), escape(r["task"]), escape(r["metric"]), str(r["n"]),
                  *(_fmt(r[x]["mean"]) for x in ROLES), _fmt(d["delta"]), _fmt(d["p"]),
                  f"[{colour[v]}]{v}[/{colour[v]}]" if v in colour else v)
    console.print(t)
    for w in data["warnings"]:
        console.print(f"[bold yellow]warning:[/bold yellow] {escape(w)}")
