"""`leaderboard.md`: the leaderboards and summary tables as GitHub Markdown."""

from __future__ import annotations

from cai_bench.reports import tables
from cai_bench.reports.harm import HARM_NOTE
from cai_bench.reports import validity as V
from cai_bench.reports.build import ReportData


def render_markdown(data: ReportData) -> str:
    out = ["# cai-bench leaderboard", ""]
    if data.extras.latest_activity:
        out += [f"Newest result in the store: {data.extras.latest_activity}.", ""]
    out += ["Metric cells are mean [95% bootstrap CI] on the metric's own scale (in the header). "
            "Ranked by the composite: " + tables.composite_note(data.scales), ""]
    flagged = V.flagged_keys(data.validity)
    for c in data.cultures:
        keys = V.board_keys(data.board, c)
        chance, unvalidated = V.culture_marks(data.culture_validity, c)
        note = V.culture_note(data.culture_validity, c)
        out += [f"## {tables._md_escape(c)}", "",
                tables.to_markdown(tables.leaderboard_table(data.board, c, flagged | chance, data.scales,
                                                            unvalidated)),
                *([tables._md_escape(note), ""] if note else []),
                "Scorer validity (`cai-bench scorers validate`):", "",
                tables.to_markdown(V.validity_table(data.validity, keys))]
        out += [f"**{tables._md_escape(w)}**\n" for w in V.warnings(V.for_keys(data.validity, keys))]
        if data.baseline:
            out += [f"### Delta vs baseline {tables._md_escape(data.baseline['label'])}", "",
                    tables.to_markdown(tables.deltas_table(data.deltas, c))]
        out += ["### Weakest principles", "", tables.to_markdown(tables.weakest_table(data.weakest, c))]
    if not data.agreement.empty:
        from cai_bench.reports.agreement import agreement_table

        out += ["## Judge panels: agreement", "",
                "Each panel metric's score (the panel's verdicts: mean of scores, strict majority of yes/no) "
                "beside its members' agreement, Krippendorff's alpha (nominal for yes/no, interval for scores; "
                "1 = perfect, 0 = chance) with a 95% bootstrap CI over rows.", "",
                tables.to_markdown(agreement_table(data.agreement))]
    out += ["## Cross-culture matrix (composite)", "", tables.to_markdown(tables.matrix_table(data.matrix))]
    if not data.refusal.empty:
        out += ["## Refusal rates (XSTest-style)", "",
                f"Verdicts: {data.verdict_source} where one exists, else {data.refusal_rule}.", "",
                tables.to_markdown(tables.refusal_table(data.refusal))]
    if not data.harm.empty:
        out += ["## Harm rates", "", HARM_NOTE, "", tables.to_markdown(tables.harm_table(data.harm))]
    out += ["## Scorer coverage", "", "Score rows per scorer by status; a scorer that scored under half of its "
            "rows is marked LOW.", "", tables.to_markdown(_flag_low(tables.coverage_table(data.coverage), data))]
    out += ["## Unavailable scorers", "", tables.to_markdown(tables.unavailable_table(data.extras.unavailable))]
    out += ["## Configurations compared", "",
            "Every checkpoint of a task is ranked under one generation config and every metric under one "
            "scorer config (the one shared by the most, the latest among equals).", "",
            tables.to_markdown(tables.configs_table(data.extras.configs)),
            *_self_grading(data),
            "### Checkpoints and engines", "", tables.to_markdown(tables.checkpoints_table(data.extras.checkpoints)),
            "### Left out", "", tables.to_markdown(tables.left_out_table(data.extras.left_out)),
            "### Prompts per principle", "", tables.to_markdown(tables.principle_coverage_table(data.extras.principle_coverage))]
    return "\n".join(out)


def _self_grading(data: ReportData) -> list[str]:
    """A line per scorer config that was allowed to grade its own model."""
    from cai_bench.reports.agreement import self_grading_names

    names = self_grading_names(data.extras.configs)
    return ([f"**Self-grading allowed** (`allow_self_grading: true`): {tables._md_escape(', '.join(names))}; "
             "its scores of the checkpoint it is were not refused.", ""] if names else [])


def _flag_low(table: tables.Table, data: ReportData) -> tables.Table:
    rows = [[(f"{row[0][0]} (LOW)", None), *row[1:]] if cov.low else row for row, cov in zip(table.rows, data.coverage)]
    return tables.Table(table.headers, rows)


def render_loop_markdown(loops: list) -> str:  # list[reports.loop.LoopReport]
    """`pipeline.md`: the loop section of every pipeline recorded in the store."""
    from cai_bench.reports.loop import fmt

    several = len(loops) > 1
    lines = ["# Pipeline report: base -> SFT -> DPO", ""]
    for lr in loops:
        h = "##" if not several else "###"
        if several:
            lines += [f"## {tables._md_escape(lr.record.title)}", ""]
        lines += _loop_lines(lr, h, fmt, several)
    return "\n".join(lines)


def _loop_lines(lr, h: str, fmt, several: bool) -> list[str]:  # noqa: ANN001 - LoopReport, formatter
    import json

    from cai_bench.reports.loop import PAIRS
    from cai_bench.results.loops import ROLES

    e = tables._md_escape
    r = lr.record
    lines = []
    if lr.warnings:
        lines += [f"{h} Warnings", ""] + [f"- **{e(w)}**" for w in lr.warnings] + [""]
    lines += [f"{h} Checkpoints", "", "| role | spec | fingerprint |", "|---|---|---|"]
    lines += [f"| {role} | {e(str(r.specs.get(role, '')))} | {str(r.fingerprints.get(role, ''))[:16]} |"
              for role in ROLES]
    lines += ["", f"{h} Verdicts (DPO vs base, paired bootstrap, p < 0.05)", "",
              "p-values are uncorrected: each row is its own test, not corrected for the number of rows (an experiment's comparisons are, in experiment.md).", "",
              f"Bootstrap: {r.n_boot} resamples, seed {r.seed}. Each metric measures what its scorer says "
              "(docs/scorers.md); refusal rows use scorer verdicts with role `refusal` where scored, else the "
              "string rule (docs/reports.md).", "",
              "| culture | task | metric | n | base | SFT | DPO | SFT-base (p) | DPO-SFT (p) | DPO-base (p) | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in lr.rows:
        cells = [f"{fmt(row[x]['mean'])} [{fmt(row[x]['lo'])}, {fmt(row[x]['hi'])}]" for x in ROLES]
        deltas = [f"{fmt(row[f'{a}_vs_{b}']['delta'], 3)} ({fmt(row[f'{a}_vs_{b}']['p'], 3)})" for a, b in PAIRS]
        lines.append(f"| {e(row['culture'])} | {e(row['task'])} | {e(row['metric'])} | {row['n']} | "
                     + " | ".join(cells + deltas) + f" | {row['verdict']} |")
    if lr.meanings:
        lines += ["", "What each metric measures:", ""] + [f"- {e(x)}" for x in lr.meanings]
    refusal_rows = [row for row in lr.rows if "decided_by" in row]
    if refusal_rows:
        lines += ["", "Refusal verdicts decided: " + "; ".join(f"{e(row['task'])} {e(row['metric'])}: "
                                                           f"{row['decided_by']}" for row in refusal_rows)]
    if lr.no_verdict:
        lines += ["", f"{h} Evaluated but without a verdict", ""] + [f"- {e(x)}" for x in lr.no_verdict]
    lines += ["", f"{h} Guards", ""]
    for g in lr.guards:
        lines.append(f"- {g['name']}: {'FIRED: ' + '; '.join(g['reasons']) if g['fired'] else 'ok'}")
    q = r.quality or {}
    if q:
        lines += ["", f"{h} Data quality", "", "| set | total | kept | kept % | " +
                  " | ".join(q["sft"]["dropped"]) + " | initial truncated |",
                  "|---|---|---|---|" + "---|" * len(q["sft"]["dropped"]) + "---|"]
        for name in ("sft", "prefs"):
            s = q[name]
            lines.append(f"| {name} | {s['total']} | {s['kept']} | {s['kept_fraction']:.0%} | "
                         + " | ".join(str(v) for v in s["dropped"].values()) + f" | {s['initial_truncated']} |")
    lk = r.leakage or {}
    if lk:
        lines += ["", f"{h} Leakage ({lk['method']})", "", "| train set | eval set | exact | near |",
                  "|---|---|---|---|"]
        lines += [f"| {e(p['train_set'])} | {e(p['eval_set'])} | {p['exact']} | {p['near']} |" for p in lk["pairs"]]
    from cai_bench.reports.loop import loop_curves_name

    png = loop_curves_name(lr, several)
    if any(lr.curves.values()):
        lines += ["", f"{h} Training curves", "", f"![training curves]({png})"]
    for stage, curve in lr.curves.items():
        if curve:
            keys = [k for k in ("loss", "rewards/margins", "rewards/accuracies") if any(k in c for c in curve)]
            lines += ["", f"{h} Training curve: {stage}", "", "| step | " + " | ".join(keys) + " |",
                      "|---|" + "---|" * len(keys)]
            lines += [f"| {c['step']} | " + " | ".join(fmt(c.get(k), 4) for k in keys) + " |" for c in curve]
    lines += ["", f"{h} Stages", "", "| stage | seconds | cached |", "|---|---|---|"]
    for name, info in r.stages.items():
        lines.append(f"| {name} | {fmt(info.get('seconds'), 1)} | {info.get('cached', False)} |")
    lines += ["", f"{h} Provenance", "", "```json", json.dumps(r.provenance, indent=2, default=str), "```",
              "", f"{h} Config", "", "```json", json.dumps(r.config, indent=2, default=str), "```", ""]
    return lines


def render_experiment_markdown(reports: list, plot_names: list[dict[str, str]], plots: dict[str, bytes]) -> str:
    """`experiment.md`: every experiment recorded in the store (reports.experiment.ExperimentReport),
    its tables (`experiment_tables.parts`) and plots (under plots/)."""
    from cai_bench.reports.experiment_tables import parts

    e = tables._md_escape
    several = len(reports) > 1
    lines = ["# Experiment report", ""]
    for rep, names in zip(reports, plot_names):
        if several:
            lines += [f"## {e(rep.record.title)}", ""]
        else:
            lines += [f"Experiment: {e(rep.record.title)}", ""]
        h = "###" if several else "##"
        for part in parts(rep):
            lines += [f"{h} {e(part.heading)}", "", e(part.note), ""]
            if part.table is not None:
                lines += [tables.to_markdown(part.table)]
        shown = [(k, n) for k, n in names.items() if n in plots]
        if shown:
            lines += [f"{h} Plots", ""]
            lines += [f"![{e(k)}](plots/{n})" for k, n in shown] + [""]
    return "\n".join(lines)
