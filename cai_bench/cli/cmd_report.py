"""`cai-bench report`: rebuild the reports from the results store (no model loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from cai_bench.cli._app import app


@app.command()
def report(
    out: Path = typer.Option(Path("cai-bench-out"), "--out", "-o", help="Output folder; the report goes to OUT/report/."),
    store: Optional[str] = typer.Option(
        None, "--store", help="Results store: SQLAlchemy URL or SQLite path (default OUT/results.sqlite)."
    ),
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help="Checkpoint to compare the others against, as given to run (spec, "
        "relative or absolute path), its label or fingerprint."
    ),
    fmt: str = typer.Option("html,md,csv", "--format", help="Comma-separated: html, md, csv, parquet."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples."),
    show: bool = typer.Option(True, "--show/--no-show", help="Print the leaderboards in the terminal."),
) -> None:
    """Rebuild leaderboards, plots and index.html from the results store alone."""
    from cai_bench.console import console, err_console
    from cai_bench.reports.terminal import print_coverage, print_deltas, print_leaderboard
    from cai_bench.results import normalize_url
    from cai_bench.reports.writer import check_formats, prepare, write_files

    formats = check_formats([f.strip() for f in fmt.split(",") if f.strip()])
    url = normalize_url(store, str(out))
    data = prepare(url, baseline=baseline, formats=formats, seed=seed, n_boot=n_boot)
    report_dir = write_files(data, out, formats, seed=seed, n_boot=n_boot)
    if show:
        print_leaderboard(data.board, console, data.validity, scales=data.scales)
        print_deltas(data.deltas, data.baseline, console)
        print_coverage(data.coverage, console, err_console)
    console.print(f"report written to [bold]{escape(str(report_dir))}[/bold] ({data.n_rows} score rows)")
