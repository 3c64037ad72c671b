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
    from cai_bench.console import Col, console, fitted_table, print_table
    from cai_bench.results import normalize_url, redact_url

    url = normalize_url(store, str(out))
    rows, workers, done_by = _read_progress(url)
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


def _read_progress(url: str) -> tuple[list, list, dict]:
    """Progress, active workers and units done per worker, read without writing the store
    (a read-only file, folder or database works); an unreachable server, a corrupt or
    empty file is one line (exit 2), never a traceback."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from cai_bench.errors import UserError
    from cai_bench.harness.leases import active_workers, progress, shares
    from cai_bench.redact import redact_text
    from cai_bench.results import redact_url
    from cai_bench.results.engine import open_engine

    try:
        engine = open_engine(url, create=False, read_only=True)
    except FileNotFoundError as exc:
        raise UserError(f"--store: no results store at {exc} (run `cai-bench run` first)") from None
    try:
        if not inspect(engine).has_table("work_units"):
            return [], [], {}
        return progress(engine), active_workers(engine), shares(engine)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        lines = str(orig if orig is not None else exc).strip().splitlines()
        raise UserError(f"store {redact_url(url)}: {redact_text(lines[0] if lines else type(exc).__name__)}") \
            from None
    finally:
        engine.dispose()
