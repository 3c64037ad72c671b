"""`cai-bench experiment`: variants of the CAI loop along named axes, sharing stages and one store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cai_bench.cli._app import app
from cai_bench.console import console


@app.command("experiment")
def experiment(
    config: Path = typer.Argument(..., help="Experiment YAML: base (a pipeline config) and vary (key -> values); "
                                  "see docs/experiments.md."),
    out: Optional[Path] = typer.Option(None, "--out", help="Experiment folder (default: base.out, else "
                                       "runs/experiment): variants/, stages/, results.sqlite, report/."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the variants, which stages each computes, shares "
                                 "or has cached, and the time estimate; write nothing."),
) -> None:
    """Run every variant of a pipeline config (the product of the axes), each stage computed once."""
    from cai_bench.experiment import load_experiment_file, run_experiment

    spec = load_experiment_file(config, out=out)
    exit_if_a_variant_failed(run_experiment(spec, console, dry_run=dry_run))


def exit_if_a_variant_failed(record: object) -> None:
    """Exit 1 when a variant broke (the report covers the others; a script still sees it)."""
    if record is not None and any(v.status == "failed" for v in record.variants):
        raise typer.Exit(1)
