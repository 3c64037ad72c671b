"""`cai-bench constitutions list|show|validate`: thin wrappers over cai_bench.constitutions."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from cai_bench.console import safe as escape  # markup-escaped, control characters made visible
from rich.table import Table

from cai_bench.cli._app import app
from cai_bench.console import console, err_console

constitutions_app = typer.Typer(help="List, show and validate constitutions.", no_args_is_help=True)
app.add_typer(constitutions_app, name="constitutions")

_DIRS = typer.Option(None, "--constitutions", "-C", help="Extra folder of constitution YAML files (repeatable).")


@constitutions_app.command("list")
def list_cmd(dirs: Optional[List[Path]] = _DIRS) -> None:
    """List constitutions on the search path (built-ins, --constitutions, $CAI_BENCH_PATH, home)."""
    from cai_bench.constitutions import list_constitutions

    from cai_bench.console import Col, fitted_table

    rows = [[c.id, c.name, c.culture, str(len(c.principles)), _short(c.source, 60)]
            for c in list_constitutions(dirs or ())]
    cols = [Col("id", keep=True), Col("name"), Col("culture", keep=True), Col("principles", keep=True),
            Col("source", drop=1)]
    console.print(fitted_table(cols, rows))


@constitutions_app.command("show")
def show_cmd(
    constitution: str = typer.Argument(..., help="Constitution id or YAML file."),
    dirs: Optional[List[Path]] = _DIRS,
    full: bool = typer.Option(False, "--full", help="Show critique and revision requests too."),
) -> None:
    """Show one constitution's principles as a table."""
    from cai_bench.constitutions import load_constitution

    c = load_constitution(constitution, dirs or ())
    console.print(f"[bold]{escape(c.id)}[/bold]: {escape(c.name)} (culture {escape(c.culture)}), "
                  f"{len(c.principles)} principles, {len(c.few_shot)} few-shot chats; license {escape(c.license or '-')}")
    if c.description:
        console.print(escape(c.description))
    from cai_bench.console import Col, fitted_table

    cols = [Col("id", keep=True), Col("title"), Col("category", drop=2), Col("description", drop=1)]
    cols += [Col("critique"), Col("revision")] if full else []
    rows = []
    for p in c.principles:
        row = [p.id, p.title, p.category or "", p.description if full else _short(p.description)]
        if full:
            row += [p.critique, p.revision]
        rows.append(row)
    console.print(fitted_table(cols, rows, show_lines=full))


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@constitutions_app.command("validate")
def validate_cmd(files: List[Path] = typer.Argument(..., help="Constitution YAML files.")) -> None:
    """Check files against the schema; prints every problem (one line each), exit 2 if any."""
    from cai_bench.constitutions import validate_files

    problems = validate_files(files)
    for p in problems:
        err_console.print(escape(p), soft_wrap=True, highlight=False)
    if problems:
        if len(problems) > 1:
            err_console.print(f"{len(problems)} problems in {len(files)} file(s)")
        raise typer.Exit(2)
    console.print(f"{len(files)} file(s) valid")
