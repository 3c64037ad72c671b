"""`cai-bench score`: score a jsonl of responses produced elsewhere (no generation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from cai_bench.cli._app import app
from cai_bench.cli._options import SCORER_CONFIG, THREADS, TRUST_REMOTE_CODE, use_threads
from cai_bench.redact import redact_text


@app.command("score")
def score_cmd(
    file: Path = typer.Argument(..., help="jsonl rows {id, prompt, response, reference?, task?}."),
    scorer: List[str] = typer.Option(..., "--scorer", "-s", help="Scorer id or 'all'; repeatable."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write rows here (.jsonl or .csv); "
                                       "default: jsonl on stdout."),
    scorer_config: Optional[Path] = SCORER_CONFIG,
    trust_remote_code: bool = TRUST_REMOTE_CODE,
    threads: Optional[int] = THREADS,
) -> None:
    """Score responses with the given scorers; one `<scorer>.<metric>` column per metric."""
    from cai_bench.console import console, err_console, make_progress, safe
    from cai_bench.harness.config import read_scorer_config
    from cai_bench.harness.score_file import score_file, write_rows
    from cai_bench.harness.scorers import scorer_ids
    from cai_bench.trust import allow_remote_code

    use_threads(threads)

    allow_remote_code(trust_remote_code)

    names = list(dict.fromkeys(scorer))
    settings = None
    if scorer_config is not None:
        settings = read_scorer_config(scorer_config, scorer_ids() if "all" in names else names)
    with make_progress(transient=True) as progress:
        result = score_file(file, names, progress=progress, settings=settings)
    for st in result.statuses:
        if not st.available:
            err_console.print(f"[yellow]scorer {safe(st.id)} unavailable:[/yellow] {safe(redact_text(st.reason))}")
    if out is None:
        for row in result.rows:
            console.out(json.dumps(row, ensure_ascii=False), highlight=False)
    else:
        write_rows(result.rows, out)
        n = sum(st.available for st in result.statuses)
        err_console.print(f"scored {len(result.rows)} rows with {n} scorer(s) -> {out}")
