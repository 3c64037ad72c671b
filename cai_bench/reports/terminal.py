"""The leaderboard as Rich tables in the terminal (one per group)."""

from __future__ import annotations

import pandas as pd
from cai_bench.console import safe as escape  # markup-escaped, control characters made visible
from rich.table import Table as RichTable

from cai_bench.reports import tables


def print_leaderboard(board: pd.DataFrame, console, validity: pd.DataFrame | None = None,  # noqa: ANN001
                      scales: dict | None = None) -> None:
    """One table per group: each metric on its own scale first, then the composite,
    with the normalisation that makes the composite stated under the tables; then
    each metric's validity (and chance-level warnings) when given."""
    from cai_bench.reports import validity as V

    if board.empty:
        console.print("[yellow]no scores in the store: nothing to rank[/yellow]")
        return
    validity = validity if validity is not None else pd.DataFrame(columns=V.COLUMNS)
    flagged = V.flagged_keys(validity)
    for group in sorted(board["group"].unique()):
        t = tables.leaderboard_table(board, group, flagged, scales)
        rt = RichTable(title=f"Leaderboard: {escape(str(group))}", title_justify="left")
        for h in t.headers:
            rt.add_column(escape(h), justify="left" if h == "checkpoint" else "right",
                          no_wrap=h == "checkpoint", overflow="fold")
        for row in t.rows:
            rt.add_row(*(escape(text) for text, _ in row))
        console.print(rt)
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
    rt = RichTable(title="By task", title_justify="left")
    for h in ("task", "culture", "rank", "checkpoint", "n", "coverage", "composite"):
        rt.add_column(h, justify="left" if h in ("task", "culture", "checkpoint") else "right")
    for r in task_board.to_dict("records"):
        rt.add_row(escape(str(r["group"])), escape(str(r["culture"])), tables.rank_cell(r["rank"])[0],
                   escape(str(r["label"])), str(int(r["n"])), tables.fmt(float(r["coverage"]), 2),
                   tables.fmt(r["composite"]))
    console.print(rt)


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
    t = tables.coverage_table(coverage)
    rt = RichTable(title="Scorer coverage", title_justify="left")
    for h in t.headers:
        rt.add_column(h, justify="left" if h in ("scorer", "most common reason") else "right",
                      no_wrap=h == "scorer", overflow="fold")
    for row, cov in zip(t.rows, coverage):
        rt.add_row(*(escape(text) for text, _ in row), style="bold red" if cov.low else None)
    console.print(rt)
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
        t = tables.deltas_table(deltas, group)
        rt = RichTable(title=f"Delta vs baseline {escape(str(baseline['label']))}: {escape(str(group))}",
                       title_justify="left")
        for h in t.headers:
            rt.add_column(escape(h), justify="left" if h in ("checkpoint", "metric") else "right",
                          no_wrap=h in ("checkpoint", "metric"))
        for row in t.rows:
            rt.add_row(*(escape(text) for text, _ in row))
        console.print(rt)


def print_loop_verdicts(loops: list, console) -> None:  # noqa: ANN001 - reports.loop.LoopReport, rich Console
    """Each recorded loop's verdict table (DPO vs base), its unjudged tasks and its fired guards."""
    from cai_bench.reports.loop import fmt
    from cai_bench.results.loops import ROLES

    colour = {"improved": "green", "regressed": "red"}
    for lr in loops:
        r = lr.record
        t = RichTable(title=f"{escape(r.title)}: base -> SFT -> DPO (verdict: DPO vs base, paired p < 0.05, "
                            f"{r.n_boot} resamples)", title_justify="left")
        for col in ("culture", "task", "metric", "n", "base", "SFT", "DPO", "DPO-base", "p", "verdict"):
            t.add_column(col)
        for row in lr.rows:
            d, v = row["dpo_vs_base"], row["verdict"]
            t.add_row(escape(row["culture"]), escape(row["task"]), escape(row["metric"]), str(row["n"]),
                      *(fmt(row[x]["mean"]) for x in ROLES), fmt(d["delta"]), fmt(d["p"]),
                      f"[{colour[v]}]{v}[/{colour[v]}]" if v in colour else v)
        console.print(t)
        for x in lr.meanings:
            console.print(f"[dim]{escape(x)}[/dim]")
        for x in lr.no_verdict:
            console.print(f"[yellow]no verdict:[/yellow] {escape(x)}")
        for w in lr.warnings:
            console.print(f"[bold yellow]warning:[/bold yellow] {escape(w)}")
