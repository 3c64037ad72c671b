"""`cai-bench report`: rebuild the reports from the results store (no model loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from cai_bench.bootstrap_settings import MIN_N_BOOT, N_BOOT
from cai_bench.cli._app import app
from cai_bench.cli._options import STORE
from cai_bench.errors import UserError


@app.command()
def report(
    out: Path = typer.Option(Path("cai-bench-out"), "--out", "-o", help="Output folder; the report goes to OUT/report/."),
    store: Optional[str] = STORE,
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help="Checkpoint to compare the others against, as given to run (spec, "
        "relative or absolute path), its label or fingerprint."
    ),
    fmt: str = typer.Option("html,md,csv", "--format", help="Comma-separated: html, md, csv, parquet."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    n_boot: int = typer.Option(N_BOOT, "--n-boot", min=MIN_N_BOOT, help="Bootstrap resamples (a pipeline's loop "
                               "section keeps the pipeline's own eval.n_boot and seed, an experiment's section "
                               "its variants' eval.n_boot and its seed)."),
    correction: Optional[str] = typer.Option(
        None, "--correction", help="Multiple-comparison correction of an experiment's comparisons: holm or bh "
        "(Benjamini-Hochberg); default: the one the experiment recorded (holm unless it chose bh)."),
    show: bool = typer.Option(True, "--show/--no-show", help="Print the leaderboards in the terminal."),
    list_configs: bool = typer.Option(False, "--list-configs",
                                      help="List the generation and scorer configs and the runs in the store "
                                      "(with their status) and exit."),
    migrate: bool = typer.Option(False, "--migrate", help="Bring a store of an older schema version up to date "
                                 "(SQLite stores are migrated on open anyway, after a backup copy) and exit."),
) -> None:
    """Rebuild leaderboards, plots and index.html from the results store alone.

    Each task's checkpoints are compared under one generation config and each metric under one scorer config;
    the report names them and lists what it left out."""
    from cai_bench.console import console, err_console
    from cai_bench.harness.declarations import late_declarations
    from cai_bench.reports.terminal import (print_comparison, print_coverage, print_deltas, print_leaderboard,
                                           print_experiment_verdicts, print_loop_verdicts)
    from cai_bench.results import normalize_url
    from cai_bench.reports.writer import check_formats, prepare, write_files

    url = normalize_url(store, str(out))
    if migrate:
        _migrate(url, console)
        return
    if list_configs:
        _list_configs(url, console)
        return
    formats = check_formats([f.strip() for f in fmt.split(",") if f.strip()])
    if correction is not None and correction not in ("holm", "bh"):
        raise UserError(f"--correction: {correction!r} is not holm or bh")
    # rows stored before scorers/tasks declared roles get today's declarations, in memory (nothing written)
    from cai_bench.embeddings import embed  # loaded only if an experiment's training data is here to link

    data = prepare(url, baseline=baseline, formats=formats, seed=seed, n_boot=n_boot, late=late_declarations(url),
                   correction=correction, embed=embed)
    report_dir = write_files(data, out, formats, seed=seed, n_boot=n_boot)
    if show:
        print_leaderboard(data.board, console, data.validity, scales=data.scales,
                          culture_validity=data.culture_validity)
        print_deltas(data.deltas, data.baseline, console)
        print_coverage(data.coverage, console, err_console)
        print_comparison(data.extras, console)
        print_loop_verdicts(data.loops, console)
        print_experiment_verdicts(data.experiments, console)
    console.print(f"report written to [bold]{escape(str(report_dir))}[/bold] ({data.n_rows} score rows)")


def _migrate(url: str, console) -> None:  # noqa: ANN001 - rich Console
    from cai_bench.harness.declarations import fill_declarations
    from cai_bench.results import SCHEMA_VERSION, redact_url
    from cai_bench.results.engine import store_errors
    from cai_bench.results.migrations import migrate_store

    with store_errors(url):  # an unreachable server, a corrupt or read-only file: one line
        found = migrate_store(url)
        n = fill_declarations(url) if found is not None else 0
    if n:
        console.print(f"{redact_url(url)}: {n} rows stored before scorers and tasks declared roles got today's "
                      "declarations")
    if found is None:
        console.print(f"{redact_url(url)}: no results store there (nothing to migrate)")
    elif found == SCHEMA_VERSION:
        console.print(f"{redact_url(url)}: already at schema version {SCHEMA_VERSION}")
    else:
        console.print(f"{redact_url(url)}: migrated from schema version {found} to {SCHEMA_VERSION}")


def _list_configs(url: str, console) -> None:  # noqa: ANN001 - rich Console
    """One line per config and per run (long settings stay on one line: grep-able)."""
    from rich.markup import escape

    from cai_bench.reports.tables import _settings
    from cai_bench.results.inventory import inventory

    inv = inventory(url)

    def line(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    def section(title: str, rows: list[dict], show) -> None:  # noqa: ANN001 - row -> text
        line(title)
        for row in rows:
            line(f"  {show(row)}")
        if not rows:
            line("  none")

    section("[bold]Generation configs[/bold] (config: generations, checkpoints, tasks, newest; settings)",
            inv.generation, lambda g: f"{g['hash']}: {g['generations']} generations, {g['checkpoints']} checkpoints, "
            f"{g['tasks']} tasks, newest {g['newest']}; {escape(_settings(g['settings']))}")
    section("[bold]Scorer configs[/bold] (scorer config: scores, generations, newest; settings)",
            inv.scorers, lambda sc: f"{escape(sc['scorer'])} {sc['hash']}: {sc['scores']} scores, "
            f"{sc['generations']} generations, newest {sc['newest']}; {escape(_settings(sc['identity']))}")
    section("[bold]Runs[/bold] (run: status, started, finished, host, pid)",
            inv.runs, lambda r: f"{escape(str(r['run_id']))}: {escape(str(r['status']))}, {r['started_at']}, "
            f"{r['finished_at'] or '-'}, {escape(str(r['host'] or '-'))}, {r['pid'] or '-'}")
    if inv.stale_generations:
        line(f"{inv.stale_generations} stored answers are to earlier versions of prompts (kept, not reported)")
