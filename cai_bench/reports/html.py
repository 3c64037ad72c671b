"""Render the self-contained `index.html` with Jinja2 (autoescape on: every
prompt and model output is data, never markup)."""

from __future__ import annotations

import base64
import math

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cai_bench.reports import tables
from cai_bench.reports.agreement import agreement_table, self_grading_names
from cai_bench.reports.harm import HARM_NOTE
from cai_bench.reports import validity as V
from cai_bench.reports.build import WORST_PER_CULTURE, ReportData, slug
from cai_bench.reports.training_links import TOP_K

_ENV = Environment(
    loader=PackageLoader("cai_bench.reports", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def _b64(png: bytes | None) -> str:
    return base64.b64encode(png).decode("ascii") if png else ""


def _scores_line(row: dict, keys: list[str]) -> str:
    parts = []
    for k in keys:
        v = row.get(k)
        if isinstance(v, float) and not math.isnan(v):
            parts.append(f"{k} = {v:.3f}")
    return "; ".join(parts)


def render_html(data: ReportData, *, seed: int, n_boot: int) -> str:
    cultures = []
    for c in data.cultures:
        s = slug(c)
        worst = []
        for r in data.worst[data.worst["culture"] == c].to_dict("records"):
            pid = r["principle_id"] if isinstance(r["principle_id"], str) else ""
            title = r["principle_title"] or ""
            worst.append({
                "label": r["label"], "task_id": r["task_id"], "prompt_id": r["prompt_id"],
                "principle": f"{pid} ({title})" if pid and title else pid,
                "composite": tables.fmt(r["composite"]), "scores": _scores_line(r, data.metric_keys),
                "prompt": r["prompt"] or "", "response": r["response"] or "",
            })
        cultures.append({
            "name": c, "slug": s,
            "leaderboard": tables.leaderboard_table(
                data.board, c, V.flagged_keys(data.validity) | V.culture_marks(data.culture_validity, c)[0],
                data.scales, V.culture_marks(data.culture_validity, c)[1]),
            "culture_note": V.culture_note(data.culture_validity, c),
            "validity": V.validity_table(data.validity, V.board_keys(data.board, c)),
            "validity_warnings": V.warnings(V.for_keys(data.validity, V.board_keys(data.board, c))),
            "deltas": tables.deltas_table(data.deltas, c),
            "weakest": tables.weakest_table(data.weakest, c),
            "principles": tables.principles_table(data.principles, c),
            "means_png": _b64(data.plots.get(f"means_{s}.png")),
            "dist_png": _b64(data.plots.get(f"distributions_{s}.png")),
            "worst": worst,
        })
    refusal = tables.refusal_table(data.refusal) if not data.refusal.empty else None
    harm = tables.harm_table(data.harm) if not data.harm.empty else None
    return _ENV.get_template("report.html.j2").render(
        cultures=cultures,
        n_checkpoints=data.board["fingerprint"].nunique(),
        n_rows=data.n_rows,
        latest=data.extras.latest_activity,
        baseline=data.baseline,
        matrix=tables.matrix_table(data.matrix),
        heatmap_png=_b64(data.plots.get("heatmap.png")),
        refusal=refusal,
        harm=harm,
        harm_note=HARM_NOTE,
        refusal_rule=data.refusal_rule,
        verdict_source=data.verdict_source,
        unavailable=tables.unavailable_table(data.extras.unavailable),
        coverage=tables.coverage_table(data.coverage),
        composite_note=tables.composite_note(data.scales),
        low_coverage=[c.scorer_id for c in data.coverage if c.low],
        configs=tables.configs_table(data.extras.configs),
        agreement=agreement_table(data.agreement) if not data.agreement.empty else None,
        self_grading=self_grading_names(data.extras.configs),
        left_out=tables.left_out_table(data.extras.left_out),
        checkpoints=tables.checkpoints_table(data.extras.checkpoints),
        prompt_coverage=tables.principle_coverage_table(data.extras.principle_coverage),
        worst_n=WORST_PER_CULTURE,
        excluded=", ".join(data.excluded),
        seed=seed,
        n_boot=n_boot,
        loops=[_loop_view(lr, data) for lr in data.loops],
        experiments=_experiment_views(data),
    )


def _experiment_views(data: ReportData) -> list[dict]:
    """Per experiment: its title, tables (`experiment_tables.parts`) and plots as data URIs."""
    from cai_bench.reports.experiment import experiment_plot_names
    from cai_bench.reports.experiment_tables import parts

    several = len(data.experiments) > 1
    views = []
    for rep in data.experiments:
        names = experiment_plot_names(rep, several)
        views.append({"title": rep.record.title, "parts": parts(rep),
                      "plots": [(k, _b64(data.experiment_plots[n])) for k, n in names.items()
                                if n in data.experiment_plots]})
    return views


def _loop_view(lr, data: ReportData) -> dict:  # noqa: ANN001 - reports.loop.LoopReport
    from cai_bench.reports.loop import loop_curves_name

    return {"title": lr.record.title, "warnings": lr.warnings, "no_verdict": lr.no_verdict, "meanings": lr.meanings,
            "n_boot": lr.record.n_boot, "seed": lr.record.seed, "table": tables.loop_table(lr.rows),
            "guards": [f"{g['name']}: " + ("FIRED: " + "; ".join(g["reasons"]) if g["fired"] else "ok")
                       for g in lr.guards],
            "curves_png": _b64(data.loop_plots.get(loop_curves_name(lr, len(data.loops) > 1)))}


def browser_columns(data: ReportData) -> list[tuple[str, str]]:
    """(header, fingerprint) per checkpoint: each loop's base, SFT, DPO first, then the others by label."""
    from cai_bench.reports.loop import ROLE_HEADERS
    from cai_bench.results.loops import ROLES

    cols: list[tuple[str, str]] = []
    several = len(data.loops) > 1
    for lr in data.loops:
        for role in ROLES:
            fp = lr.record.fingerprints.get(role)
            if fp and fp not in {f for _, f in cols}:
                cols.append((f"{lr.record.title}: {ROLE_HEADERS[role]}" if several else ROLE_HEADERS[role], fp))
    seen = {f for _, f in cols}
    rest = data.samples.drop_duplicates("fingerprint").sort_values(["label", "fingerprint"], kind="mergesort")
    cols += [(str(r.label), str(r.fingerprint)) for r in rest.itertuples() if r.fingerprint not in seen]
    return cols


def render_samples(data: ReportData) -> str:
    """`samples.html`: every stored answer, one row per (task, prompt), one column per checkpoint."""
    cols = browser_columns(data)
    meta = {"culture", "task_id", "constitution_id", "label", "fingerprint", "spec", "prompt_id", "principle_id",
            "principle_title", "category", "expect", "prompt", "reference", "response", "gen_hash", "composite"}
    keys = [c for c in data.samples.columns if c not in meta]
    training = data.training
    rows = []
    for (task, _pid), g in data.samples.groupby(["task_id", "prompt_id"], sort=True):
        by_fp = {r["fingerprint"]: r for r in g.to_dict("records")}
        first = g.iloc[0]
        cells = []
        for _, fp in cols:
            r = by_fp.get(fp)
            if r is None:
                cells.append(None)
                continue
            scores = ", ".join(f"{k}={round(float(r[k]), 4)}" for k in keys
                               if isinstance(r[k], float) and not math.isnan(r[k]))
            links = training.links.get((str(fp), str(task), str(_pid))) if training else None
            cells.append({"response": r["response"] or "", "scores": scores, "links": links or []})
        ref = first["reference"]
        rows.append({"task": task, "prompt": first["prompt"] or "",
                     "reference": ref if isinstance(ref, str) else "", "cells": cells})
    return _ENV.get_template("samples.html.j2").render(
        headers=[h for h, _ in cols], rows=rows, several=bool(data.loops),
        training_sets=list(training.sets.items()) if training else [],
        training_missing=training.missing if training else [], top_k=TOP_K)
