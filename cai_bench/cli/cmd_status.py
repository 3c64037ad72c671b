"""`cai-bench status`: progress of the runs on a store, per checkpoint x task and
per scorer, and the workers holding units now (read-only; safe while they run)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cai_bench.cli._app import app
from cai_bench.cli._options import STORE


@app.command()
def status(
    store: Optional[str] = STORE,
    out: Path = typer.Option(Path("cai-bench-out"), "--out", "-o", help="Output folder of the run."),
) -> None:
    """Show work done / in flight / waiting per checkpoint x task and per scorer, and the active workers."""
    from cai_bench.console import safe as escape  # markup-escaped, control characters made visible
    from sqlalchemy.exc import OperationalError

    from cai_bench.console import Col, console, fitted_table, print_table
    from cai_bench.errors import UserError
    from cai_bench.harness.leases import active_workers, progress, shares
    from cai_bench.results import make_engine, normalize_url, redact_url

    url = normalize_url(store, str(out))
    try:
        engine = make_engine(url, create=False)
    except FileNotFoundError as exc:
        raise UserError(f"--store: no results store at {exc} (run `cai-bench run` first)") from None
    try:
        rows = progress(engine)
        workers = active_workers(engine)
        done_by = shares(engine)
    except OperationalError as exc:
        raise UserError(f"--store {redact_url(url)}: {str(exc.orig).strip().splitlines()[0]}") from None
    finally:
        engine.dispose()
    if not rows:
        console.print(f"no work units in {escape(redact_url(url))} yet")
        return
    console.print(f"work in {escape(redact_url(url))} (units: chunks of prompts, batches of responses)")
    cols = [Col("phase", keep=True), Col("checkpoint/scorer", keep=True), Col("task", keep=True),
            *(Col(c, keep=True, justify="right") for c in ("items", "units", "held", "waiting"))]
    table = []
    for p in rows:
        name = p.label if p.kind == "generate" else (p.scorer_id or "")
        table.append([p.kind, name, p.task_id or "-", f"{p.items_done}/{p.items_total}",
                      f"{p.units_done}/{p.units_done + p.units_claimed + p.units_pending}", str(p.units_claimed),
                      str(p.units_pending)])
    print_table(fitted_table(cols, table))
    if workers:
        cols = [Col("worker", keep=True), Col("units held", keep=True), Col("lease expires in (s)")]
        print_table(fitted_table(cols, [[owner, str(n), f"{left:.0f}" if left > 0 else "expired (others may take over)"]
                                        for owner, n, left in workers], title="Workers holding units now"))
    if done_by:
        console.print("units done per worker: " + ", ".join(f"{escape(k or '?')}: {v}"
                                                            for k, v in sorted(done_by.items())))
