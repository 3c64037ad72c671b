"""`cai-bench constitutions list|show|validate`: thin wrappers over cai_bench.constitutions."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
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

    table = Table()
    table.add_column("id", no_wrap=True)
    for col in ("name", "culture", "principles", "source"):
        table.add_column(col)
    for c in list_constitutions(dirs or ()):
        table.add_row(c.id, escape(c.name), escape(c.culture), str(len(c.principles)), escape(_short(c.source, 60)))
    console.print(table)


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
    cols = ["id", "title", "category", "description"] + (["critique", "revision"] if full else [])
    table = Table(show_lines=full)
    for col in cols:
        table.add_column(col, no_wrap=col == "id")
    for p in c.principles:
        row = [p.id, p.title, p.category or "", p.description if full else _short(p.description)]
        if full:
            row += [p.critique, p.revision]
        table.add_row(*map(escape, row))
    console.print(table)


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
