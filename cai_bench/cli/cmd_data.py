"""`cai-bench data list|fetch`: the data sets cai-bench reads beyond its prompts and
principles (cai_bench.data): where each one is, and the explicit, checked download of
those it may not ship."""

from __future__ import annotations

from typing import List, Optional

import typer

from cai_bench.cli._app import app
from cai_bench.console import console, safe as escape

data_app = typer.Typer(help="The data sets cai-bench reads: where each is; fetch the ones it may not ship.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("list")
def list_cmd() -> None:
    """Each known data set: here or not, where it was found (packaged, fetched, a shared data folder,
    a variable) or how to get it, and its license. Never downloads."""
    from cai_bench.console import Col, fitted_table
    from cai_bench.data import REGISTRY, locate, missing_fix
    from cai_bench.errors import UserError

    rows = []
    for ds in REGISTRY.values():
        try:
            found = locate(ds)
        except UserError as exc:  # a variable names a copy that is not there
            rows.append([ds.name, "no", exc.message, ds.license, ds.what])
            continue
        if found:
            rows.append([ds.name, "yes", f"{found.path} ({found.how})", ds.license, ds.what])
        else:
            how = f"not found. Fix: {missing_fix(ds)}" if ds.fetchable else "missing from this install (reinstall)"
            rows.append([ds.name, "no", how, ds.license, ds.what])
    cols = [Col("name", keep=True), Col("here", keep=True), Col("where", min_text=30),
            Col("license", drop=2, min_text=16), Col("what", drop=1, min_text=20)]
    console.print(fitted_table(cols, rows))


@data_app.command("fetch")
def fetch_cmd(
    names: List[str] = typer.Argument(..., help="Data set names, as `cai-bench data list` shows them (e.g. hhh)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="A mirror laid out as the shared data folder "
                                           "(BASE/<path>). (default: $CAI_BENCH_DATA_URL, else the public source)"),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0, help="Seconds to wait for the server."),
) -> None:
    """Download data sets cai-bench may not ship (no redistribution license) from their public source,
    check the pinned sha256, and keep them under $CAI_BENCH_HOME/data/. A mismatch keeps nothing."""
    from cai_bench.data import fetch, get, locate

    for name in names:
        ds = get(name)
        if not ds.fetchable:
            found = locate(ds)
            console.print(escape(f"{name}: ships with cai-bench; nothing to fetch"
                                 f"{f' ({found.path})' if found else ''}"))
            continue
        path, downloaded = fetch(ds, base_url=base_url, timeout=timeout)
        state = "fetched" if downloaded else "already here"
        console.print(escape(f"{name}: {state}: {path} (sha256 {str(ds.sha256)[:12]}... matches the pinned digest; "
                             f"license: {ds.license})"))
