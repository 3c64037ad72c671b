"""`cai-bench models`: list known checkpoint specs and prepare bundled ones."""

from __future__ import annotations

import typer

from cai_bench.cli._app import app
from cai_bench.console import console

models_app = typer.Typer(help="Known checkpoint specs: list them, prepare bundled models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_models() -> None:
    """Show each bundled spec and whether it is available locally."""
    from cai_bench.models import BUNDLED

    from cai_bench.console import Col, fitted_table

    rows = [[f"bundled:{m.name}", m.kind, "yes" if m.installed() else f"no ({m.pip_install})",
             "yes" if m.prepared() else "no", m.description] for m in BUNDLED.values()]
    cols = [Col("spec", keep=True), Col("kind", keep=True, drop=2), Col("installed", min_text=8),
            Col("prepared", keep=True), Col("description", drop=1)]
    console.print(fitted_table(cols, rows, title="Bundled models"))
    console.print("Other specs: hf:ORG/NAME, a local directory (model or PEFT adapter), openai:MODEL, ollama:MODEL, "
                  "or KIND:NAME for a served kind below")
    from cai_bench.models.registry import entries, is_local_kind

    backends = [[kind, engine if engine != "*" else "any", "local" if is_local_kind(kind) else "served",
                 entry.target, entry.source] for kind, engine, entry in entries()]
    cols = [Col("kind", keep=True), Col("engine", keep=True), Col("weights", keep=True), Col("class", drop=1),
            Col("source", drop=2)]
    console.print(fitted_table(cols, backends, title="Model backends (cai_bench.models.registry)"))


@models_app.command("prepare")
def prepare(spec: str = typer.Argument(..., help="Checkpoint spec, e.g. bundled:smollm2-135m-instruct")) -> None:
    """Materialize a checkpoint locally (once) and print its path."""
    from cai_bench.models import BUNDLED, BundledSpec, parse_spec, resolve_checkpoint

    parsed = parse_spec(spec)
    if isinstance(parsed, BundledSpec):
        path = BUNDLED[parsed.name].prepare()
        console.print(str(path))
        return
    resolved = resolve_checkpoint(parsed)
    console.print(resolved.adapter or resolved.model)
