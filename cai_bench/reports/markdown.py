"""`leaderboard.md`: the leaderboards and summary tables as GitHub Markdown."""

from __future__ import annotations

from cai_bench.reports import tables
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
        out += [f"## {tables._md_escape(c)}", "",
                tables.to_markdown(tables.leaderboard_table(data.board, c, flagged, data.scales)),
                "Scorer validity (`cai-bench scorers validate`):", "",
                tables.to_markdown(V.validity_table(data.validity, keys))]
        out += [f"**{tables._md_escape(w)}**\n" for w in V.warnings(V.for_keys(data.validity, keys))]
        if data.baseline:
            out += [f"### Delta vs baseline {tables._md_escape(data.baseline['label'])}", "",
                    tables.to_markdown(tables.deltas_table(data.deltas, c))]
        out += ["### Weakest principles", "", tables.to_markdown(tables.weakest_table(data.weakest, c))]
    out += ["## Cross-culture matrix (composite)", "", tables.to_markdown(tables.matrix_table(data.matrix))]
    if not data.refusal.empty:
        out += ["## Refusal rates (XSTest-style)", "",
                f"Verdicts: {data.verdict_source} where one exists, else {data.refusal_rule}.", "",
                tables.to_markdown(tables.refusal_table(data.refusal))]
    out += ["## Scorer coverage", "", "Score rows per scorer by status; a scorer that scored under half of its "
            "rows is marked LOW.", "", tables.to_markdown(_flag_low(tables.coverage_table(data.coverage), data))]
    out += ["## Unavailable scorers", "", tables.to_markdown(tables.unavailable_table(data.extras.unavailable))]
    out += ["## Configurations compared", "",
            "Every checkpoint of a task is ranked under one generation config and every metric under one "
            "scorer config (the one shared by the most, the latest among equals).", "",
            tables.to_markdown(tables.configs_table(data.extras.configs)),
            "### Checkpoints and engines", "", tables.to_markdown(tables.checkpoints_table(data.extras.checkpoints)),
            "### Left out", "", tables.to_markdown(tables.left_out_table(data.extras.left_out)),
            "### Prompts per principle", "", tables.to_markdown(tables.principle_coverage_table(data.extras.principle_coverage))]
    return "\n".join(out)


def _flag_low(table: tables.Table, data: ReportData) -> tables.Table:
    rows = [[(f"{row[0][0]} (LOW)", None), *row[1:]] if cov.low else row for row, cov in zip(table.rows, data.coverage)]
    return tables.Table(table.headers, rows)
