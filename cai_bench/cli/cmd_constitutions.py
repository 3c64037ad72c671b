"""`cai-bench constitutions list|show|validate`: thin wrappers over cai_bench.constitutions."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from cai_bench.console import safe as escape  # markup-escaped, control characters made visible

from cai_bench.cli._app import app
from cai_bench.cli._options import LIST_FORMAT, ListFormat
from cai_bench.console import console, err_console

constitutions_app = typer.Typer(help="List, show, validate and import constitutions.", no_args_is_help=True)
app.add_typer(constitutions_app, name="constitutions")

_DIRS = typer.Option(None, "--constitutions", "-C", help="Extra folder of constitution YAML files (repeatable).")


@constitutions_app.command("list")
def list_cmd(dirs: Optional[List[Path]] = _DIRS, fmt: ListFormat = LIST_FORMAT) -> None:
    """List constitutions on the search path (built-ins, --constitutions, $CAI_BENCH_PATH, home)."""
    from cai_bench.constitutions import list_constitutions

    from cai_bench.console import Col, fitted_table, print_records, print_table

    records = [dict(id=c.id, name=c.name, culture=c.culture, principles=len(c.principles), source=str(c.source))
               for c in list_constitutions(dirs or ())]
    if fmt is not ListFormat.table:
        print_records(records, fmt.value)
        return
    rows = [[r["id"], r["name"], r["culture"], str(r["principles"]), r["source"]] for r in records]
    cols = [Col("id", keep=True), Col("name"), Col("culture", keep=True), Col("principles", keep=True),
            Col("source", drop=1)]
    print_table(fitted_table(cols, rows))


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
    from cai_bench.console import Col, fitted_table, print_table

    cols = [Col("id", keep=True), Col("title"), Col("category", drop=2), Col("description", drop=1)]
    cols += [Col("critique"), Col("revision")] if full else []
    rows = []
    for p in c.principles:
        row = [p.id, p.title, p.category or "", p.description if full else _short(p.description)]
        if full:
            row += [p.critique, p.revision]
        rows.append(row)
    print_table(fitted_table(cols, rows, show_lines=full))


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


@constitutions_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="A list of principles: JSON/YAML list of texts (\"Please choose the "
                                "assistant response that ...\") or {critic, revision} pairs, or a text file, one per line."),
    cid: str = typer.Option(..., "--id", help="Id of the new constitution ([a-z0-9_]+)."),
    name: str = typer.Option(..., "--name", help="Its display name."),
    culture: Optional[str] = typer.Option(None, "--culture", help="Culture label (default: the id)."),
    license_: str = typer.Option("", "--license", help="The list's license, kept in the file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write it (default: "
                                       "$CAI_BENCH_HOME/constitutions/ID.yaml, found by id everywhere)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    """Turn a list of principles into a constitution file: ids and titles derived,
    "choose the response that ..." rephrased as principles; edit it, then `validate`."""
    from cai_bench.constitutions import check_new_id, validate_files
    from cai_bench.constitutions.importer import build_constitution, dump_constitution
    from cai_bench.errors import UserError
    from cai_bench.paths import atomic_write_text, cai_bench_home

    c = build_constitution(file, cid=cid, name=name, culture=culture, license=license_)
    dest = out or cai_bench_home() / "constitutions" / f"{cid}.yaml"
    if dest.exists() and not force:
        raise UserError(f"{dest} exists; pass --force to replace it, or --out another file")
    check_new_id(cid, dest)
    atomic_write_text(dest, dump_constitution(c))
    problems = validate_files([dest])
    if problems:  # never expected: the model validated before writing
        raise UserError(f"{dest}: written but invalid: {problems[0]}")
    console.print(f"wrote constitution {escape(cid)} ({len(c.principles)} principles"
                  f"{f', {len(c.few_shot)} few-shot chats' if c.few_shot else ''}) to {escape(str(dest))}")
    for p in c.principles[:3]:
        console.print(f"  {escape(p.id)}: {escape(p.description or p.title)}", highlight=False)
    if len(c.principles) > 3:
        console.print(f"  ... `cai-bench constitutions show {escape(cid)}` shows all; edit the file to refine them")
