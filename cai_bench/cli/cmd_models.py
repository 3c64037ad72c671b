"""`cai-bench models`: list known checkpoint specs and prepare bundled ones."""

from __future__ import annotations

import typer

from cai_bench.cli._app import app
from cai_bench.cli._options import LIST_FORMAT, ListFormat
from cai_bench.console import console

models_app = typer.Typer(help="Known checkpoint specs: list them, prepare bundled models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_models(fmt: ListFormat = LIST_FORMAT) -> None:
    """Show each bundled spec and whether it is available locally, then the model backends (kinds) registered.
    As json or csv, one record per bundled model (`section` bundled) and per backend (`section` backend)."""
    from cai_bench.models import BUNDLED
    from cai_bench.models.registry import entries, is_local_kind

    from cai_bench.console import Col, fitted_table, print_records, print_table

    bundled = [dict(section="bundled", spec=f"bundled:{m.name}", kind=m.kind, engine=None, weights="local",
                    installed=m.installed(), prepared=m.prepared(), install=m.pip_install,
                    description=m.description, target=None, source=None) for m in BUNDLED.values()]
    backends = [dict(section="backend", spec=None, kind=kind, engine=engine if engine != "*" else "any",
                     weights="local" if is_local_kind(kind) else "served", installed=None, prepared=None, install=None,
                     description=None, target=entry.target, source=entry.source) for kind, engine, entry in entries()]
    if fmt is not ListFormat.table:
        print_records(bundled + backends, fmt.value)
        return
    rows = [[b["spec"], b["kind"], "yes" if b["installed"] else f"no ({b['install']})", "yes" if b["prepared"] else "no",
             b["description"]] for b in bundled]
    cols = [Col("spec", keep=True), Col("kind", keep=True, drop=2), Col("installed", min_text=8),
            Col("prepared", keep=True), Col("description", drop=1)]
    print_table(fitted_table(cols, rows, title="Bundled models"))
    console.print("Other specs: hf:ORG/NAME, a local directory (model or PEFT adapter), openai:MODEL, ollama:MODEL, "
                  "or KIND:NAME for a served kind below")
    rows = [[b["kind"], b["engine"], b["weights"], b["target"], b["source"]] for b in backends]
    cols = [Col("kind", keep=True), Col("engine", keep=True), Col("weights", keep=True), Col("class", drop=1),
            Col("source", drop=2)]
    print_table(fitted_table(cols, rows, title="Model backends (cai_bench.models.registry)"))


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
