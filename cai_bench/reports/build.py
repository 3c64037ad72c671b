"""Assemble everything a report shows from the long results frame, once, so the
HTML, Markdown and CSV writers only format."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cai_bench.bootstrap_settings import N_BOOT
from cai_bench.errors import UserError
from cai_bench.results.coverage import Coverage, summarize_frame
from cai_bench.reports import statistics
from cai_bench.results import StoreExtras
from cai_bench.reports.names import slug  # noqa: F401 - writers and html take it from here
from cai_bench.reports.harm import harm_rates
from cai_bench.reports.refusal import RULE_DESCRIPTION, refusal_rates, verdict_keys, verdict_rule
from cai_bench.reports.validity import culture_frame, validity_frame

WORST_PER_CULTURE = 10
WEAKEST_PRINCIPLES = 3


@dataclass
class ReportData:
    board: pd.DataFrame  # leaderboard by culture
    task_board: pd.DataFrame  # leaderboard by task (with its culture)
    cultures: list[str]
    baseline: dict[str, str] | None  # {fingerprint, label, spec}
    deltas: pd.DataFrame
    matrix: pd.DataFrame
    principles: pd.DataFrame
    weakest: pd.DataFrame
    refusal: pd.DataFrame
    samples: pd.DataFrame  # one row per generation, wide metric columns + composite
    worst: pd.DataFrame
    extras: StoreExtras
    metric_keys: list[str]
    n_rows: int
    plots: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes
    coverage: list[Coverage] = field(default_factory=list)  # per scorer: ok/na/unscored/error + top reason
    validity: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.validity.validity_frame
    scales: dict[str, dict] = field(default_factory=dict)  # metric key -> its own scale and composite mapping
    refusal_rule: str = RULE_DESCRIPTION
    verdict_source: str = field(default_factory=lambda: verdict_rule([]))  # which scorer verdicts decided
    excluded: list[str] = field(default_factory=list)  # metric keys declared out of the composite
    loops: list = field(default_factory=list)  # reports.loop.LoopReport per pipeline recorded in the store
    loop_plots: dict[str, bytes] = field(default_factory=dict)  # training curves PNG per loop
    experiments: list = field(default_factory=list)  # reports.experiment.ExperimentReport per experiment recorded
    experiment_plots: dict[str, bytes] = field(default_factory=dict)  # a PNG per axis, the transfer heatmap
    training: object = None  # reports.training_links.TrainingLinks for the sample browser (html only)
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.agreement.agreement_frame
    culture_validity: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.validity.culture_frame
    harm: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.harm.harm_rates: next to refusal


def resolve_baseline(df: pd.DataFrame, baseline: str | None) -> dict[str, str] | None:
    """Find the baseline checkpoint as it was given to `run`: its spec
    (`bundled:NAME`, `hf:ORG/NAME`), a local path (relative or absolute, compared
    after resolving it), its label, or its fingerprint (or a prefix of 6+ characters)."""
    if not baseline:
        return None
    from pathlib import Path

    ck = df.drop_duplicates("fingerprint")[["fingerprint", "label", "spec"]]
    wanted = {baseline}
    path = Path(baseline).expanduser()
    if path.exists():  # a local checkpoint is stored under its resolved path
        wanted.add(str(path.resolve()))
    hit = ck[ck["spec"].isin(wanted) | (ck["label"] == baseline) | (ck["fingerprint"] == baseline)]
    if len(hit) > 1:  # a spec or path beats a label that happens to equal it
        exact = hit[hit["spec"].isin(wanted) | (hit["fingerprint"] == baseline)]
        hit = exact if len(exact) == 1 else hit
    if hit.empty and len(baseline) >= 6:
        hit = ck[ck["fingerprint"].str.startswith(baseline)]
    if len(hit) != 1:
        known = ", ".join(f"{r.label} ({r.spec or r.fingerprint[:12]})" for r in ck.itertuples())
        why = "matches no checkpoint" if hit.empty else "matches several checkpoints"
        raise UserError(f"--baseline {baseline!r} {why} in the store; known: {known}")
    r = hit.iloc[0]
    return {"fingerprint": r["fingerprint"], "label": r["label"], "spec": r["spec"]}


def _samples(df: pd.DataFrame, ok: pd.DataFrame, extras: StoreExtras) -> pd.DataFrame:
    unit = ["culture", "task_id", "fingerprint", "prompt_id"]
    meta_cols = ["constitution_id", "label", "spec", "principle_id", "category", "expect", "prompt",
                 "reference", "response", "gen_hash"]
    base = df.drop_duplicates(unit)[unit + meta_cols]
    wide = ok.pivot_table(index=unit, columns="key", values="value", aggfunc="first")
    wide.columns = [str(c) for c in wide.columns]
    comp = statistics.per_sample(ok).set_index(unit)["composite"]
    out = base.join(comp, on=unit).join(wide, on=unit)
    out["principle_title"] = [extras.principle_titles.get((t, p), "") if isinstance(p, str) else ""
                              for t, p in zip(out["task_id"], out["principle_id"])]
    order = ["culture", "task_id", "constitution_id", "label", "fingerprint", "spec", "prompt_id",
             "principle_id", "principle_title", "category", "expect", "prompt", "reference", "response",
             "gen_hash", "composite", *sorted(wide.columns)]
    return out[order].sort_values(["culture", "task_id", "label", "fingerprint", "prompt_id"],
                                  kind="mergesort").reset_index(drop=True)


def build(df: pd.DataFrame, extras: StoreExtras, *, baseline: str | None = None, seed: int = 0,
          n_boot: int = N_BOOT, with_plots: bool = True, validity: dict | None = None,
          loops: list | None = None, experiments: list | None = None, correction: str | None = None,
          embed: Callable[[Sequence[str]], np.ndarray] | None = None, panel_rows: pd.DataFrame | None = None,
          culture_validity: dict | None = None) -> ReportData:
    """`validity`: {(scorer, hash, metric): Validity} from `reports.validity.load_validity`;
    `loops`: the store's `results.loops.LoopRecord`s (each gets its base -> SFT -> DPO section);
    `experiments`: its `results.experiments.ExperimentRecord`s (each gets its comparison section,
    corrected by `correction` or the method the experiment recorded); `embed` (e.g.
    `cai_bench.embeddings.embed`, passed in so that reports never import model code) links
    each variant's held-out answers to its nearest training prompts in the sample browser;
    `panel_rows`: judge panels' rows with their members' verdicts (`reports.agreement.load_panel_rows`);
    `culture_validity`: {(scorer, hash, metric, culture): Validity} (`reports.validity.load_culture_validity`)."""
    board = statistics.leaderboard(df, "culture", seed=seed, n_boot=n_boot)
    task_board = statistics.leaderboard(df, "task", seed=seed, n_boot=n_boot)
    cultures = df.drop_duplicates("task_id").set_index("task_id")["culture"]
    task_board.insert(1, "culture", task_board["group"].map(cultures))
    base = resolve_baseline(df, baseline)
    dl = (statistics.deltas(df, base["fingerprint"], "culture", seed=seed, n_boot=n_boot) if base
          else pd.DataFrame(columns=["group", "label", "fingerprint", "metric", "n_pairs", "delta", "lo", "hi",
                                     "p_value", "n_boot"]))
    ok = statistics.add_normalized(df)
    principles = statistics.principle_breakdown(df)
    if not principles.empty:
        principles["title"] = [extras.principle_titles.get((t, p), "")
                               for t, p in zip(principles["task_id"], principles["principle_id"])]
    else:
        principles["title"] = []
    samples = _samples(df, ok, extras)
    worst = (samples[samples["composite"].notna()]
             .sort_values(["culture", "composite", "label", "task_id", "prompt_id"], kind="mergesort")
             .groupby("culture", sort=True).head(WORST_PER_CULTURE).reset_index(drop=True))
    keys = sorted(ok["key"].unique()) if not ok.empty else []
    matrix = statistics.culture_matrix(board)
    data = ReportData(
        board=board, task_board=task_board, cultures=sorted(board["group"].unique()), baseline=base, deltas=dl, matrix=matrix,
        principles=principles, weakest=statistics.weakest_principles(principles, WEAKEST_PRINCIPLES),
        refusal=refusal_rates(df, extras.task_analyses), harm=harm_rates(df), samples=samples, worst=worst, extras=extras,
        metric_keys=keys, n_rows=len(df), coverage=summarize_frame(df), scales=statistics.metric_scales(df),
        validity=validity_frame(df, validity or {}), culture_validity=culture_frame(df, culture_validity or {}),
        verdict_source=verdict_rule(verdict_keys(df, extras.task_analyses)), excluded=statistics.excluded_keys(df),
    )
    if panel_rows is not None and not panel_rows.empty:
        from cai_bench.reports.agreement import agreement_frame

        data.agreement = agreement_frame(panel_rows, df, seed=seed, n_boot=n_boot)
    if loops:
        from cai_bench.reports.loop import loop_reports

        data.loops = loop_reports(df, extras, loops)
    if with_plots:
        from cai_bench.reports import plots

        if not matrix.empty:
            data.plots["heatmap.png"] = plots.heatmap(matrix)
        for c in data.cultures:
            data.plots[f"means_{slug(c)}.png"] = plots.metric_means(board, c)
            data.plots[f"distributions_{slug(c)}.png"] = plots.distributions(df, c)
    if experiments:
        _add_experiments(data, df, experiments, loops or [], correction, with_plots, embed)
    if data.loops:  # beside pipeline.md, which links them, whatever the formats
        from cai_bench.reports.loop import loop_curves_name
        from cai_bench.reports.plots import training_curves

        for lr in data.loops:
            png = training_curves(lr.curves)
            if png is not None:
                data.loop_plots[loop_curves_name(lr, len(data.loops) > 1)] = png
    return data


def _add_experiments(data: ReportData, df: pd.DataFrame, records: list, loops: list, correction: str | None,
                     with_plots: bool, embed: Callable[[Sequence[str]], np.ndarray] | None) -> None:
    """The experiment sections, their plots and (for the sample browser) the links from
    each variant's held-out answers to its training data."""
    from cai_bench.reports.experiment import axis_points, experiment_reports, experiment_plot_names

    data.experiments = experiment_reports(df, data.extras, records, loops, correction)
    if not with_plots:
        return
    from cai_bench.reports import plots
    from cai_bench.reports.training_links import training_links

    several = len(data.experiments) > 1
    for rep in data.experiments:
        names = experiment_plot_names(rep, several)
        for axis, points in axis_points(rep).items():
            data.experiment_plots[names[axis]] = plots.axis_effects(points, axis)
        if rep.transfer.get("cells"):
            t = rep.transfer
            data.experiment_plots[names["transfer"]] = plots.transfer_heatmap(t["rows"], t["cols"], t["cells"])
    names = {v.loop_id: v.name for rep in data.experiments for v in rep.record.variants}
    variants = [(f"{rep.record.title}: {names[lp.loop_id]}" if several else names[lp.loop_id], lp)
                for rep in data.experiments for c in rep.conditions for lp in c.loops]
    seen: set[str] = set()
    variants = [(n, lp) for n, lp in variants if not (lp.loop_id in seen or seen.add(lp.loop_id))]
    data.training = training_links(data.samples, variants, embed)
