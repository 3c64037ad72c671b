"""The leaderboard as Rich tables in the terminal (one per group)."""

from __future__ import annotations

import pandas as pd
from rich.text import Text

from cai_bench.console import Col, fitted_table, print_table
from cai_bench.console import safe as escape  # markup-escaped, control characters made visible
from cai_bench.reports import tables

# Columns that hold ids (never wrapped or cut, on a terminal or in a pipe), and those that stay left-aligned.
_IDS = ("checkpoint", "task", "culture", "metric", "scorer", "rank", "n", "pairs", "rows", "scored", "share", "na",
        "unscored", "error", "coverage", "composite", "composite (0..1)")
_LEFT = ("checkpoint", "task", "culture", "metric", "scorer", "most common reason")


def _cols(headers: list[str]) -> list[Col]:
    """Id and number columns are kept whole; the rest wrap at spaces, but a metric
    column never narrower than its metric key (the header's first word)."""
    return [Col(h, keep=h in _IDS, justify="left" if h in _LEFT else "right", min_text=len(h.split()[0]))
            for h in headers]


def _show(t: tables.Table, console, title: str, row_styles: list[str | None] | None = None) -> None:  # noqa: ANN001
    """A display table printed through the one CLI table helper (ids whole, full width in a pipe)."""
    rows = [[text for text, _ in row] for row in t.rows]
    print_table(fitted_table(_cols(t.headers), rows, title=title, row_styles=row_styles, out=console), console)


def print_leaderboard(board: pd.DataFrame, console, validity: pd.DataFrame | None = None,  # noqa: ANN001
                      scales: dict | None = None, culture_validity: pd.DataFrame | None = None) -> None:
    """One table per group: each metric on its own scale first, then the composite,
    with the normalisation that makes the composite stated under the tables; then
    each metric's validity (and chance-level warnings) when given."""
    from cai_bench.reports import validity as V

    if board.empty:
        console.print("[yellow]no scores in the store: nothing to rank[/yellow]")
        return
    validity = validity if validity is not None else pd.DataFrame(columns=V.COLUMNS)
    flagged = V.flagged_keys(validity)
    per_culture = culture_validity if culture_validity is not None else pd.DataFrame(columns=V.CULTURE_COLUMNS)
    for group in sorted(board["group"].unique()):
        chance, unvalidated = V.culture_marks(per_culture, group)
        _show(tables.leaderboard_table(board, group, flagged | chance, scales, unvalidated), console,
              f"Leaderboard: {group}")
        note = V.culture_note(per_culture, group)
        if note:
            console.print(escape(note), style="dim", highlight=False)
    if scales:
        console.print(escape(tables.composite_note(scales)), style="dim", highlight=False)
    print_validity(validity, console)


def print_validity(validity: pd.DataFrame, console) -> None:  # noqa: ANN001 - rich Console
    """One line per metric: its latest validation or "not validated"; flagged ones in bold."""
    if validity.empty:
        return
    console.print("[bold]scorer validity[/bold] (cai-bench scorers validate):")
    for r in validity.to_dict("records"):
        mark = "[bold yellow]⚠[/bold yellow] " if r["flagged"] else "  "
        console.print(f"{mark}{escape(r['key'])} (config {escape(r['scorer_hash'][:12])}): {escape(r['text'])}",
                      highlight=False)


def print_comparison(extras, console) -> None:  # noqa: ANN001 - StoreExtras, rich Console
    """Under which configs the leaderboard compares, what it left out, how many prompts."""
    for c in extras.configs:
        console.print(f"compared under {escape(c['kind'])} config {escape(c['hash'])} for {escape(str(c['name']))} "
                      f"({c['covered']} of {c['of']} {c['unit']}): {escape(tables._settings(c['settings']))}"
                      + (f"; engine {escape(c['engine'])}" if c.get("engine") else ""),
                      highlight=False)
    if any(c["engine"] != "hf" for c in extras.checkpoints):  # only worth a line when not all default
        console.print("engines: " + ", ".join(f"{escape(str(c['label']))} {escape(c['engine'])}"
                                              for c in extras.checkpoints), highlight=False)
    for x in extras.left_out:
        console.print(f"[yellow]left out:[/yellow] {escape(str(x['checkpoint']))} on {escape(str(x['task_id']))} "
                      f"({escape(x['what'])} {escape(x['hash'])}): {escape(x['reason'])}", highlight=False)
    tasks: dict[str, list[int]] = {}
    for c in extras.principle_coverage:
        slot = tasks.setdefault(c["task_id"], [0, 0, 0, 0])
        slot[0] += c["n"]
        slot[1] += c["of"]
        slot[2] += c["n"] > 0
        slot[3] += 1
    for task, (n, of, pn, pof) in sorted(tasks.items()):
        console.print(f"{escape(task)}: {n} of {of} prompts, {pn} of {pof} principles", highlight=False)


def print_task_leaderboard(task_board: pd.DataFrame, console) -> None:  # noqa: ANN001 - rich Console
    """One compact table for all tasks: rank, n and composite per (task, checkpoint)."""
    if task_board.empty:
        return
    headers = ["task", "culture", "rank", "checkpoint", "n", "coverage", "composite"]
    rows = [[str(r["group"]), str(r["culture"]), tables.rank_cell(r["rank"])[0], str(r["label"]), str(int(r["n"])),
             tables.fmt(float(r["coverage"]), 2), tables.fmt(r["composite"])] for r in task_board.to_dict("records")]
    print_table(fitted_table(_cols(headers), rows, title="By task", out=console), console)


def print_sample(df: pd.DataFrame, console, limit: int = 600) -> None:  # noqa: ANN001 - rich Console
    """One real answer from the run (first checkpoint, task and prompt in sort order),
    so a user sees what the model wrote and not only the numbers."""
    rows = df.dropna(subset=["response"]).sort_values(["label", "task_id", "prompt_id"], kind="mergesort")
    if rows.empty:
        return
    r = rows.iloc[0]
    response = str(r["response"]).strip()
    if len(response) > limit:
        response = response[:limit] + " …"
    console.print(f"[bold]sample answer:[/bold] {escape(str(r['label']))} on "
                  f"{escape(str(r['task_id']))}/{escape(str(r['prompt_id']))}")
    console.print(f"  [bold]prompt:[/bold] {escape(str(r['prompt']).strip(), lines=True)}")
    console.print(f"  [bold]answer:[/bold] {escape(response, lines=True)}")


def print_coverage(coverage: list, console, err_console=None) -> None:  # noqa: ANN001 - rich Consoles
    """The scorer coverage table, and a loud warning per scorer that scored under half of its rows."""
    if not coverage:
        return
    _show(tables.coverage_table(coverage), console, "Scorer coverage",
          row_styles=["bold red" if cov.low else None for cov in coverage])
    for cov in coverage:
        if cov.low:
            reason = f"; most common reason: {cov.reason_text()}" if cov.top_reason else ""
            (err_console or console).print(
                f"[bold red]warning: scorer {escape(cov.scorer_id)} scored only {cov.ok} of {cov.rows} rows "
                f"({cov.share:.0%})[/bold red]{escape(reason)}")


def print_deltas(deltas: pd.DataFrame, baseline: dict | None, console) -> None:  # noqa: ANN001 - rich Console
    """Paired deltas against the baseline, one table per culture (what `report --baseline` writes)."""
    if not baseline:
        return
    if deltas.empty:
        console.print(f"[yellow]no paired deltas: no other checkpoint shares prompts and scores with the "
                      f"baseline {escape(str(baseline['label']))}[/yellow]")
        return
    for group in sorted(deltas["group"].unique()):
        _show(tables.deltas_table(deltas, group), console, f"Delta vs baseline {baseline['label']}: {group}")


def print_loop_verdicts(loops: list, console) -> None:  # noqa: ANN001 - reports.loop.LoopReport, rich Console
    """Each recorded loop's verdict table (DPO vs base), its unjudged tasks and its fired guards."""
    from cai_bench.reports.loop import fmt
    from cai_bench.results.loops import ROLES

    colour = {"improved": "green", "regressed": "red"}
    for lr in loops:
        r = lr.record
        cols = [Col("culture", keep=True), Col("task", keep=True), Col("metric", keep=True), Col("n"),
                *(Col(x) for x in ("base", "SFT", "DPO", "DPO-base", "p", "verdict"))]
        rows = []
        for row in lr.rows:
            d, v = row["dpo_vs_base"], row["verdict"]
            rows.append([row["culture"], row["task"], row["metric"], str(row["n"]),
                         *(fmt(row[x]["mean"]) for x in ROLES), fmt(d["delta"]), fmt(d["p"]),
                         Text(v, style=colour.get(v, ""))])
        title = f"{r.title}: base -> SFT -> DPO (verdict: DPO vs base, paired p < 0.05 uncorrected, {r.n_boot} resamples)"
        print_table(fitted_table(cols, rows, title=title, out=console), console)
        for x in lr.meanings:
            console.print(f"[dim]{escape(x)}[/dim]")
        for x in lr.no_verdict:
            console.print(f"[yellow]no verdict:[/yellow] {escape(x)}")
        for w in lr.warnings:
            console.print(f"[bold yellow]warning:[/bold yellow] {escape(w)}")


def print_experiment_verdicts(reports: list, console) -> None:  # noqa: ANN001 - ExperimentReport, rich Console
    """Each experiment's corrected verdicts: the variants comparisons and each culture's own
    held-out change, then the variants without a verdict and why."""
    from cai_bench.reports.experiment_tables import method_note, transfer_lines, verdict_rows
    from cai_bench.reports.loop import fmt

    colour = {"improved": "green", "regressed": "red"}
    for rep in reports:
        rows = []
        for r in verdict_rows(rep):
            v = r["verdict"]
            rows.append([r["a"], r["b"], r["task"], r["metric"], str(r["n"]), fmt(r["delta"]),
                         f"[{fmt(r['lo'])}, {fmt(r['hi'])}]", fmt(r["p_corrected"]), Text(v, style=colour.get(v, "")),
                         r.get("holds_in_seeds", "")])
        cols = [Col("a", keep=True), Col("b", keep=True), Col("task", keep=True), Col("metric", keep=True), Col("n"),
                Col("a - b"), Col("95% CI"), Col(f"p ({rep.method_name})"), Col("verdict"), Col("seeds")]
        title = f"Experiment {rep.record.title}: corrected verdicts ({rep.method_name})"
        print_table(fitted_table(cols, rows, title=title, out=console), console)
        console.print(f"[dim]{escape(method_note(rep))}[/dim]")
        for line in transfer_lines(rep):
            console.print(f"transfer: {escape(line)}", highlight=False)
        for s in rep.stopped:
            console.print(f"[yellow]no verdict:[/yellow] {escape(s['variant'])} ({escape(s['status'])}): "
                          f"{escape(str(s['reason']))}", highlight=False)
        for b in rep.behaviour:
            if b["reading"] == "wording only":
                console.print(f"[yellow]wording only:[/yellow] {escape(b['a'])} vs {escape(b['b'])} on "
                              f"{escape(b['task'])}: the wording metrics moved, refusal and over-refusal did not",
                              highlight=False)
